"""The fabric of services across hosts (plugins/module_utils/sparkfleet/fabric.py): the tools' output parsed as they
print it (tests/fixtures/fabric/, hand-made from upstream examples: see its README), one host's facts, the checks
across a group's hosts. NCCL's all_gather_perf (the measured check) is tests/unit/test_fabric_perf.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import fabric
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.fabric import (
    check_group,
    gather,
    parse_ethtool,
    parse_ibdev2netdev,
    parse_ip_addr,
    pick_endpoint,
    read_sysfs_rdma,
)

from tests.unit.module_fakes import ExitJson

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fabric"
IMAGE = "lmsysorg/sglang:latest-cu130"


def fx(name: str) -> str:
    return (FIXTURES / name).read_text()


def fake_tools(
    ip_json: str = "ip-addr-spark-03.json",
    ibdev: str | None = "ibdev2netdev-spark.txt",
    ethtool: str = "ethtool-enp1s0f1np1-200g.txt",
    image_id: str = "sha256:" + "1" * 64,
) -> Any:
    """The tools of one host, answering from the fixtures (``ibdev`` None: the tool is not installed)."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        if argv[0] == "ibdev2netdev":
            return (0, fx(ibdev), "") if ibdev else (127, "", "ibdev2netdev: not found")
        if argv[:3] == ["ip", "-j", "addr"]:
            return 0, fx(ip_json), ""
        if argv[0] == "ethtool":
            if argv[1].endswith("f0np0"):
                return 0, fx("ethtool-enp1s0f0np0-down.txt"), ""
            return 0, fx(ethtool), ""
        if argv[:3] == ["docker", "image", "inspect"]:
            return (0, image_id + "\n", "") if image_id else (1, "", "Error: No such image")
        return 127, "", f"{argv[0]}: not found"

    return run


def host_facts(**kw: Any) -> dict[str, Any]:
    arch = kw.pop("architecture", "aarch64")
    return gather(fake_tools(**kw), images=[IMAGE], sys_root="/nonexistent", proc_root="/nonexistent",
                  architecture=arch)  # fmt: skip


# ------------------------------------------------------------------ parsers


def test_ibdev2netdev_lists_both_halves_and_their_state() -> None:
    devs = parse_ibdev2netdev(fx("ibdev2netdev-spark.txt"))
    assert [(d["rdma"], d["netdev"], d["up"]) for d in devs] == [
        ("rocep1s0f0", "enp1s0f0np0", False),
        ("rocep1s0f1", "enp1s0f1np1", True),
        ("roceP2p1s0f0", "enP2p1s0f0np0", False),
        ("roceP2p1s0f1", "enP2p1s0f1np1", True),
    ]
    assert all(d["port"] == 1 for d in devs)
    assert not any(d["up"] for d in parse_ibdev2netdev(fx("ibdev2netdev-spark-down.txt")))
    assert parse_ibdev2netdev("garbage\n\n") == []


def test_ip_json_gives_mtu_state_and_ipv4_first() -> None:
    links = parse_ip_addr(fx("ip-addr-spark-03.json"))
    assert links["enp1s0f1np1"] == {"mtu": 9000, "operstate": "up", "up": True, "addresses": ["192.168.100.13/24"]}
    assert links["enp1s0f0np0"]["up"] is False and links["enp1s0f0np0"]["addresses"] == []
    assert links["lo"]["addresses"][0] == "127.0.0.1/8"
    assert parse_ip_addr("not json") == {}


@pytest.mark.parametrize(
    ("name", "speed", "link"),
    [
        ("ethtool-enp1s0f1np1-200g.txt", 200000, True),
        ("ethtool-enp1s0f1np1-100g.txt", 100000, True),
        ("ethtool-enp1s0f0np0-down.txt", None, False),
    ],
)
def test_ethtool_speed(name: str, speed: int | None, link: bool) -> None:
    assert parse_ethtool(fx(name)) == {"speed_mbps": speed, "link": link}


def test_gather_joins_the_tools() -> None:
    facts = host_facts()
    assert facts["source"] == "ibdev2netdev"
    f1 = next(i for i in facts["interfaces"] if i["netdev"] == "enp1s0f1np1")
    assert f1 == {"rdma": "rocep1s0f1", "port": 1, "netdev": "enp1s0f1np1", "up": True, "operstate": "up",
                  "mtu": 9000, "speed_mbps": 200000, "addresses": ["192.168.100.13/24"]}  # fmt: skip
    f0 = next(i for i in facts["interfaces"] if i["netdev"] == "enp1s0f0np0")
    assert f0["speed_mbps"] is None and f0["operstate"] == "down"
    assert facts["images"] == {IMAGE: "sha256:" + "1" * 64}
    assert facts["architecture"] == "aarch64"


def _sysfs(root: Path) -> None:
    """A sysfs tree as the kernel lays it out for a Spark's first half (two RDMA devices, one up)."""
    for dev, netdev, state in (("rocep1s0f0", "enp1s0f0np0", "1: DOWN"), ("rocep1s0f1", "enp1s0f1np1", "4: ACTIVE")):
        (root / "class/infiniband" / dev / "device/net" / netdev).mkdir(parents=True)
        (root / "class/infiniband" / dev / "ports/1").mkdir(parents=True)
        (root / "class/infiniband" / dev / "ports/1/state").write_text(state + "\n")
        net = root / "class/net" / netdev
        net.mkdir(parents=True)
        (net / "speed").write_text("200000\n" if "ACTIVE" in state else "-1\n")
        (net / "mtu").write_text("9000\n")
        (net / "operstate").write_text("up\n" if "ACTIVE" in state else "down\n")
    (root / "module/nvidia").mkdir(parents=True)
    (root / "module/nvidia/version").write_text("580.95.05\n")


def test_without_ibdev2netdev_sysfs_tells_the_same(tmp_path: Path) -> None:
    _sysfs(tmp_path)
    assert [(d["rdma"], d["netdev"], d["up"]) for d in read_sysfs_rdma(str(tmp_path))] == [
        ("rocep1s0f0", "enp1s0f0np0", False),
        ("rocep1s0f1", "enp1s0f1np1", True),
    ]
    facts = gather(fake_tools(ibdev=None, ethtool="ethtool-enp1s0f0np0-down.txt"), sys_root=str(tmp_path),
                   architecture="aarch64")  # fmt: skip
    assert facts["source"] == "sysfs"
    assert facts["driver_version"] == "580.95.05"
    f1 = next(i for i in facts["interfaces"] if i["netdev"] == "enp1s0f1np1")
    assert f1["speed_mbps"] == 200000  # ethtool knew no speed: sysfs's
    assert pick_endpoint(facts) == {"interface": "enp1s0f1np1", "address": "192.168.100.13", "hca": ["rocep1s0f1"]}


def test_pick_endpoint_first_usable_or_the_named_one() -> None:
    facts = host_facts()
    assert pick_endpoint(facts) == {
        "interface": "enp1s0f1np1",  # by name, case aside: the first half of the port
        "address": "192.168.100.13",
        "hca": ["roceP2p1s0f1", "rocep1s0f1"],
    }
    assert pick_endpoint(facts, "enP2p1s0f1np1")["address"] == "192.168.200.13"
    assert pick_endpoint(host_facts(ibdev="ibdev2netdev-spark-down.txt"))["address"] == ""


# ------------------------------------------------------------------ across the hosts


def pair(**over: Any) -> dict[str, dict[str, Any]]:
    return {"spark-03": host_facts(), "spark-04": host_facts(ip_json="ip-addr-spark-04.json", **over)}


PORT = {"spark-03": {"interface": "enp1s0f1np1"}, "spark-04": {"interface": "enp1s0f1np1"}}


def test_a_good_pair_passes() -> None:
    assert check_group(pair(), PORT, images=[IMAGE]) == ([], [])


def test_a_port_down_names_host_interface_and_fix() -> None:
    problems, _ = check_group(pair(ibdev="ibdev2netdev-spark-down.txt"), PORT, label="service llama-70b")
    assert len(problems) == 1
    assert problems[0].startswith("service llama-70b: host spark-04: interface enp1s0f1np1 (rocep1s0f1) is down")
    assert "Fix:" in problems[0]


def test_no_usable_interface_at_all() -> None:
    problems, _ = check_group(pair(ibdev="ibdev2netdev-spark-down.txt"))
    assert any("host spark-04: no CX-7 interface up with an address" in p and "rocep1s0f1 -> enp1s0f1np1 (Down)" in p
               for p in problems)  # fmt: skip


def test_different_ports_on_the_hosts() -> None:
    ports = {"spark-03": {"interface": "enp1s0f1np1"}, "spark-04": {"interface": "enP2p1s0f1np1"}}
    problems, _ = check_group(pair(), ports)
    assert any("different fabric ports (spark-03 enp1s0f1np1, spark-04 enP2p1s0f1np1)" in p for p in problems)
    # ... and so on different subnets (each half its own subnet).
    assert any("different subnets" in p for p in problems)


def test_mtu_differs_between_hosts_and_1500_is_warned() -> None:
    facts = {"spark-03": host_facts(), "spark-04": host_facts(ip_json="ip-addr-spark-04-mtu1500.json")}
    problems, warnings = check_group(facts, PORT)
    assert problems == [
        "the fabric MTU differs between hosts (spark-03 enp1s0f1np1 9000, spark-04 enp1s0f1np1 1500): a mismatch "
        "stalls NCCL on large messages. Fix: one MTU (9000) on every host's interface (netplan, e.g. "
        "/etc/netplan/40-cx7.yaml, then netplan apply)"
    ]
    assert warnings == [
        "host spark-04: interface enp1s0f1np1 has MTU 1500; 9000 is recommended on the fabric (the CX-7 netdevs "
        "default to 1500). Fix: mtu: 9000 in netplan, e.g. /etc/netplan/40-cx7.yaml, then netplan apply"
    ]


def test_duplicate_address() -> None:
    facts = {"spark-03": host_facts(), "spark-04": host_facts(ip_json="ip-addr-spark-04-same-address.json")}
    problems, _ = check_group(facts, PORT)
    assert any("hosts spark-03 and spark-04 both have fabric address 192.168.100.13" in p for p in problems)


def test_slow_link() -> None:
    problems, _ = check_group(pair(ethtool="ethtool-enp1s0f1np1-100g.txt"), PORT)
    assert any("host spark-04: interface enp1s0f1np1 links at 100000 Mb/s" in p and "firmware" in p for p in problems)


def test_driver_architecture_and_image_must_match() -> None:
    facts = pair(image_id="sha256:" + "2" * 64, architecture="x86_64")
    facts["spark-04"]["driver_version"] = "580.82.07"
    facts["spark-03"]["driver_version"] = "580.95.05"
    problems, _ = check_group(facts, PORT, images=[IMAGE])
    text = "\n".join(problems)
    assert "different architectures (spark-03 aarch64, spark-04 x86_64)" in text
    assert "different NVIDIA drivers (spark-03 580.95.05, spark-04 580.82.07)" in text
    assert f"image {IMAGE} has different IDs on the hosts" in text


# ------------------------------------------------------------------ the module's body


class FakeModule:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def exit_json(self, **kwargs: Any) -> None:
        raise ExitJson(kwargs)


def test_the_module_returns_the_fact() -> None:
    module = FakeModule({"images": [IMAGE], "timeout": 5})
    with pytest.raises(ExitJson) as exc:
        fabric.run_module(module, fake_tools())
    result = exc.value.args[0]
    assert result["changed"] is False
    facts = result["ansible_facts"][fabric.FACT]
    assert len(facts["interfaces"]) == 4 and facts["images"][IMAGE].startswith("sha256:")
    assert copy.deepcopy(facts) == facts  # plain data: JSON-able for Ansible
