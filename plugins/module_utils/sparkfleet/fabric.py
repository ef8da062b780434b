"""The fabric between the hosts of a service that spans hosts: facts of one host, and checks across the hosts.

One host's facts (``gather``, the body of the ``sparkfleet_fabric_facts`` module) come from the tools the field
notes name, read as they print: ``ibdev2netdev`` (which RDMA device is which netdev, and which are ``(Up)``;
sysfs ``/sys/class/infiniband/*/device/net`` when the tool is missing), ``ip -j addr`` (MTU, state, addresses),
``ethtool`` (link speed; ``/sys/class/net/*/speed`` without it), the NVIDIA driver's version, the machine's
architecture and the IDs of the images the host holds. ``check_group`` judges the facts of every host of one
group together. The measured check (NCCL's ``all_gather_perf`` across the hosts) is ``fabric_perf.py``.

Every problem names the host, the interface and the fix (FIELD-NOTES "one model across Sparks (the fabric)").
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .gpu import subprocess_runner

FACT = "sparkfleet_fabric"
RECOMMENDED_MTU = 9000
# ethtool on a good CX-7 link (one half of the QSFP port).
DEFAULT_MIN_SPEED_MBPS = 200000
NETPLAN_HINT = "netplan, e.g. /etc/netplan/40-cx7.yaml, then netplan apply"

Runner = Callable[[list[str]], tuple[int, str, str]]

# ibdev2netdev: "rocep1s0f1 port 1 ==> enp1s0f1np1 (Up)"
_IBDEV_RE = re.compile(r"^\s*(?P<rdma>\S+)\s+port\s+(?P<port>\d+)\s+==>\s+(?P<netdev>\S+)\s+\((?P<state>[^)]*)\)\s*$")
_SPEED_RE = re.compile(r"^\s*Speed:\s*(?:(?P<mbps>\d+)Mb/s|(?P<other>.*))\s*$", re.MULTILINE)
_LINK_RE = re.compile(r"^\s*Link detected:\s*(?P<v>yes|no)\s*$", re.MULTILINE)


# ------------------------------------------------------------------ parsers (one host)


def parse_ibdev2netdev(text: str) -> list[dict[str, Any]]:
    """``ibdev2netdev`` -> [{rdma, port, netdev, up}] in the order printed."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        match = _IBDEV_RE.match(line)
        if match:
            out.append(
                {
                    "rdma": match.group("rdma"),
                    "port": int(match.group("port")),
                    "netdev": match.group("netdev"),
                    "up": match.group("state").strip().lower() == "up",
                }
            )
    return out


def parse_ip_addr(text: str) -> dict[str, dict[str, Any]]:
    """``ip -j addr`` -> {ifname: {mtu, operstate, up, addresses: ["192.168.100.11/24", ...] (IPv4 first)}}."""
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping) or not item.get("ifname"):
            continue
        addrs = [a for a in item.get("addr_info") or [] if isinstance(a, Mapping) and a.get("local")]
        v4 = [f"{a['local']}/{a.get('prefixlen', 32)}" for a in addrs if a.get("family") == "inet"]
        v6 = [f"{a['local']}/{a.get('prefixlen', 128)}" for a in addrs
              if a.get("family") == "inet6" and a.get("scope") != "link"]  # fmt: skip
        flags = [str(f) for f in item.get("flags") or []]
        out[str(item["ifname"])] = {
            "mtu": int(item.get("mtu") or 0),
            "operstate": str(item.get("operstate") or "UNKNOWN").lower(),
            "up": "UP" in flags and "LOWER_UP" in flags,
            "addresses": v4 + v6,
        }
    return out


def parse_ethtool(text: str) -> dict[str, Any]:
    """``ethtool IFACE`` -> {speed_mbps (None when unknown), link (None when not printed)}."""
    speed = _SPEED_RE.search(text or "")
    link = _LINK_RE.search(text or "")
    return {
        "speed_mbps": int(speed.group("mbps")) if speed and speed.group("mbps") else None,
        "link": (link.group("v") == "yes") if link else None,
    }


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(65536).strip()
    except OSError:
        return ""


def read_sysfs_rdma(sys_root: str = "/sys") -> list[dict[str, Any]]:
    """What ``ibdev2netdev`` prints, from sysfs: /sys/class/infiniband/<dev>/device/net/<netdev> and the port's
    state (``4: ACTIVE`` is up)."""
    base = os.path.join(sys_root, "class", "infiniband")
    try:
        devices = sorted(os.listdir(base))
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for dev in devices:
        try:
            netdevs = sorted(os.listdir(os.path.join(base, dev, "device", "net")))
        except OSError:
            continue
        try:
            ports = sorted(os.listdir(os.path.join(base, dev, "ports")), key=lambda p: int(p) if p.isdigit() else 0)
        except OSError:
            ports = ["1"]
        port = ports[0] if ports else "1"
        state = _read(os.path.join(base, dev, "ports", port, "state"))
        for netdev in netdevs:
            out.append({"rdma": dev, "port": int(port) if port.isdigit() else 1, "netdev": netdev,
                        "up": "ACTIVE" in state.upper()})  # fmt: skip
    return out


def sysfs_link(netdev: str, sys_root: str = "/sys") -> dict[str, Any]:
    """/sys/class/net/<netdev>/{speed,mtu,operstate} (speed -1 or unreadable: None)."""
    base = os.path.join(sys_root, "class", "net", netdev)
    speed = _read(os.path.join(base, "speed"))
    mtu = _read(os.path.join(base, "mtu"))
    return {
        "speed_mbps": int(speed) if speed.isdigit() and int(speed) > 0 else None,
        "mtu": int(mtu) if mtu.isdigit() else None,
        "operstate": _read(os.path.join(base, "operstate")).lower() or "unknown",
    }


def driver_version(sys_root: str = "/sys", proc_root: str = "/proc") -> str:
    """The loaded NVIDIA kernel module's version ('' without it)."""
    version = _read(os.path.join(sys_root, "module", "nvidia", "version"))
    if version:
        return version
    match = re.search(
        r"Kernel Module\s+(?:for\s+\S+\s+)?([0-9][0-9.]+)",
        _read(os.path.join(proc_root, "driver", "nvidia", "version")),
    )
    return match.group(1) if match else ""


def gather(
    run: Runner,
    *,
    images: Sequence[str] = (),
    sys_root: str = "/sys",
    proc_root: str = "/proc",
    architecture: str | None = None,
) -> dict[str, Any]:
    """One host's fabric facts: ``{source, interfaces: [{rdma, port, netdev, up, operstate, mtu, speed_mbps,
    addresses}], architecture, driver_version, images: {ref: id or ''}, problems}``."""
    problems: list[str] = []
    rc, out, _err = run(["ibdev2netdev"])
    source = "ibdev2netdev"
    rdma = parse_ibdev2netdev(out) if rc == 0 else []
    if rc != 0 or not rdma:
        source = "sysfs"
        rdma = read_sysfs_rdma(sys_root)
    rc, out, err = run(["ip", "-j", "addr"])
    links = parse_ip_addr(out) if rc == 0 else {}
    if rc != 0:
        problems.append(f"ip -j addr failed: {err.strip()[:200]}")
    interfaces: list[dict[str, Any]] = []
    for dev in rdma:
        netdev = dev["netdev"]
        link = links.get(netdev, {})
        sysfs = sysfs_link(netdev, sys_root)
        rc, out, _err = run(["ethtool", netdev])
        speed = parse_ethtool(out)["speed_mbps"] if rc == 0 else None
        interfaces.append(
            {
                **dev,
                "operstate": link.get("operstate") or sysfs["operstate"],
                "mtu": link.get("mtu") or sysfs["mtu"],
                "speed_mbps": speed if speed is not None else sysfs["speed_mbps"],
                "addresses": list(link.get("addresses") or []),
            }
        )
    ids: dict[str, str] = {}
    for image in images:
        rc, out, _err = run(["docker", "image", "inspect", "--format", "{{.Id}}", image])
        ids[image] = out.strip() if rc == 0 else ""
    return {
        "source": source,
        "interfaces": interfaces,
        "architecture": architecture if architecture is not None else platform.machine(),
        "driver_version": driver_version(sys_root, proc_root),
        "images": ids,
        "problems": problems,
    }


# ------------------------------------------------------------------ one host's endpoint


def _ipv4(addresses: Sequence[str]) -> list[str]:
    return [a for a in addresses if ":" not in a]


def usable(iface: Mapping[str, Any]) -> bool:
    """An interface NCCL can use: its RDMA port up, the netdev up, an address."""
    return bool(iface.get("up")) and iface.get("operstate") in ("up", "unknown") and bool(iface.get("addresses"))


def pick_endpoint(facts: Mapping[str, Any], interface: str = "") -> dict[str, Any]:
    """The endpoint of a host from its facts: ``interface`` when given, else the first usable CX-7 netdev (by name,
    case aside: enp1s0f1np1 before enP2p1s0f1np1);
    {interface, address (no prefix), hca: the up RDMA devices}. Empty values when nothing fits."""
    ifaces = [i for i in facts.get("interfaces") or [] if isinstance(i, Mapping)]
    hca = sorted({str(i["rdma"]) for i in ifaces if i.get("up") and i.get("rdma")})
    if interface:
        chosen = next((i for i in ifaces if i.get("netdev") == interface), None)
    else:
        candidates = sorted(
            (i for i in ifaces if usable(i)), key=lambda i: (not _ipv4(i["addresses"]), str(i["netdev"]).casefold())
        )
        chosen = candidates[0] if candidates else None
    if chosen is None:
        return {"interface": interface, "address": "", "hca": hca}
    addresses = _ipv4(chosen.get("addresses") or []) or list(chosen.get("addresses") or [])
    address = addresses[0].split("/", 1)[0] if addresses else ""
    return {"interface": str(chosen.get("netdev") or ""), "address": address, "hca": hca}


# ------------------------------------------------------------------ across the hosts of a group


def _find(facts: Mapping[str, Any], netdev: str) -> Mapping[str, Any] | None:
    return next((i for i in facts.get("interfaces") or [] if isinstance(i, Mapping) and i.get("netdev") == netdev),
                None)  # fmt: skip


def check_group(
    facts_by_host: Mapping[str, Mapping[str, Any]],
    endpoints: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    label: str = "",
    images: Sequence[str] = (),
    min_speed_mbps: int = DEFAULT_MIN_SPEED_MBPS,
    recommended_mtu: int = RECOMMENDED_MTU,
) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the fabric of one group's hosts. ``endpoints``: host -> {interface, address} the plan
    uses (else picked from the facts); ``images``: references every host must hold with one ID; ``label`` leads
    every line (the service)."""
    lead = f"{label}: " if label else ""
    problems: list[str] = []
    warnings: list[str] = []
    hosts = sorted(facts_by_host)
    chosen: dict[str, dict[str, Any]] = {}
    for host in hosts:
        facts = facts_by_host[host]
        given = (endpoints or {}).get(host) or {}
        ep = pick_endpoint(facts, str(given.get("interface") or ""))
        if given.get("address"):
            ep["address"] = str(given["address"])
        listing = ", ".join(f"{i.get('rdma')} -> {i.get('netdev')} ({'Up' if i.get('up') else 'Down'})"
                            for i in facts.get("interfaces") or []) or "no RDMA device"  # fmt: skip
        iface = _find(facts, ep["interface"]) if ep["interface"] else None
        if iface is None:
            what = f"interface {ep['interface']}" if ep["interface"] else "no CX-7 interface up with an address"
            problems.append(
                f"{lead}host {host}: {what} (ibdev2netdev: {listing}). Fix: cable the same QSFP port on every host, "
                f"bring its netdev up with an address ({NETPLAN_HINT}), or set sparkfleet_fabric_interface"
            )
            continue
        chosen[host] = {**ep, "iface": iface}
        name = ep["interface"]
        if not iface.get("up") or iface.get("operstate") not in ("up", "unknown"):
            problems.append(
                f"{lead}host {host}: interface {name} ({iface.get('rdma')}) is down (RDMA port "
                f"{'Up' if iface.get('up') else 'Down'}, link {iface.get('operstate')}). Fix: check the cable and "
                f"the peer's port, then `ip link set {name} up` ({NETPLAN_HINT})"
            )
        speed = iface.get("speed_mbps")
        if isinstance(speed, int) and speed < min_speed_mbps:
            problems.append(
                f"{lead}host {host}: interface {name} links at {speed} Mb/s, below {min_speed_mbps} Mb/s. Fix: the "
                "cable or switch port (`ethtool` should say Speed: 200000Mb/s); firmware older than 2026-04 runs the "
                "second half of the port at half speed: update it"
            )
        elif speed is None:
            warnings.append(f"{lead}host {host}: the link speed of {name} is unknown (no ethtool, no sysfs speed)")
        mtu = iface.get("mtu")
        if isinstance(mtu, int) and mtu != recommended_mtu:
            warnings.append(
                f"{lead}host {host}: interface {name} has MTU {mtu}; {recommended_mtu} is recommended on the fabric "
                f"(the CX-7 netdevs default to 1500). Fix: mtu: {recommended_mtu} in {NETPLAN_HINT}"
            )
    _same_across(lead, chosen, problems)
    for key, what, fix in (
        ("architecture", "architecture", "every host of a group must be the same kind of machine"),
        ("driver_version", "NVIDIA driver", "update them to one version through DGX OS updates"),
    ):
        values = {h: str(facts_by_host[h].get(key) or "") for h in hosts}
        if len({v for v in values.values() if v}) > 1:
            listing = ", ".join(f"{h} {v or 'unknown'}" for h, v in values.items())
            problems.append(f"{lead}the hosts run different {what}s ({listing}): {fix}")
    for image in images:
        ids = {h: str((facts_by_host[h].get("images") or {}).get(image) or "") for h in hosts}
        held = {v for v in ids.values() if v}
        if len(held) > 1:
            listing = ", ".join(f"{h} {v[:19] or 'none'}" for h, v in ids.items())
            problems.append(
                f"{lead}image {image} has different IDs on the hosts ({listing}): NCCL and the engine must match "
                "on every host. Fix: pin the image by digest (repo@sha256:...) or deliver one archive (image_archive)"
            )
    return problems, warnings


def _same_across(lead: str, chosen: Mapping[str, Mapping[str, Any]], problems: list[str]) -> None:
    """The same port, one MTU, unique addresses on one subnet."""
    if len(chosen) < 2:
        return
    ports = {h: str(c["interface"]) for h, c in chosen.items()}
    if len(set(ports.values())) > 1:
        listing = ", ".join(f"{h} {p}" for h, p in ports.items())
        problems.append(
            f"{lead}the hosts use different fabric ports ({listing}): use the same port on every host (the same "
            "QSFP cage and half), set sparkfleet_fabric_interface to it on each"
        )
    mtus = {h: c["iface"].get("mtu") for h, c in chosen.items()}
    if len({m for m in mtus.values() if m}) > 1:
        listing = ", ".join(f"{h} {ports[h]} {m}" for h, m in mtus.items())
        problems.append(
            f"{lead}the fabric MTU differs between hosts ({listing}): a mismatch stalls NCCL on large messages. Fix: "
            f"one MTU ({RECOMMENDED_MTU}) on every host's interface ({NETPLAN_HINT})"
        )
    seen: dict[str, str] = {}
    networks: dict[str, str] = {}
    for host, c in chosen.items():
        address = str(c.get("address") or "")
        if not address:
            continue
        if address in seen:
            problems.append(
                f"{lead}hosts {seen[address]} and {host} both have fabric address {address} ({ports[host]}): give "
                "each host its own address (sparkfleet_fabric_address, netplan)"
            )
        seen.setdefault(address, host)
        prefix = next((a.split("/", 1)[1] for a in c["iface"].get("addresses") or []
                       if a.split("/", 1)[0] == address and "/" in a), "24")  # fmt: skip
        try:
            networks[host] = str(ipaddress.ip_interface(f"{address}/{prefix}").network)
        except ValueError:
            problems.append(f"{lead}host {host}: fabric address {address!r} is not an IP address")
    if len(set(networks.values())) > 1:
        listing = ", ".join(f"{h} {ports.get(h, '?')} {n}" for h, n in networks.items())
        problems.append(
            f"{lead}the fabric addresses are on different subnets ({listing}): put the same half of the port on one "
            f"subnet on every host ({NETPLAN_HINT})"
        )


def run_module(module: Any, run: Runner | None = None) -> None:
    """The body of the sparkfleet_fabric_facts module (``run``: a test's fake of the tools)."""
    runner = run if run is not None else subprocess_runner(float(module.params.get("timeout") or 30))
    facts = gather(runner, images=list(module.params.get("images") or []))
    for problem in facts["problems"]:
        module.warn(problem)
    module.exit_json(changed=False, ansible_facts={FACT: facts})


__all__ = [
    "FACT",
    "check_group",
    "gather",
    "parse_ethtool",
    "parse_ibdev2netdev",
    "parse_ip_addr",
    "pick_endpoint",
    "read_sysfs_rdma",
    "run_module",
]
