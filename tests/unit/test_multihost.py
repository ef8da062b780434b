"""One model across hosts: the parser's checks, each host's piece of the plan (service/multihost.py) and the check
across the hosts' plans (service/groups.py, run by the sparkfleet_topology module). Every refusal names the
service, the host and the fix, before any host changes."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.groups import check_groups
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.multihost import member
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.topology import run_module

from tests.unit.module_fakes import ExitJson
from tests.unit.service_helpers import NO_GPU, SPARK_GPU, STATION_GPU, make_plan
from tests.unit.test_fabric import FakeModule, host_facts
from tests.unit.test_multihost_golden import GROUPS, LAB, LAB_SPLIT, LLAMA_70B, PAIR, vars_fabric

FABRIC = vars_fabric(["spark-01", "spark-02", "spark-03", "spark-04"])
OWN = {"name": "qwen3-8b", "engine": "sglang", "image": "lmsysorg/sglang:latest-cu130", "model": "Qwen/Qwen3-8B",
       "model_params_b": 8.2, "model_dtype": "bf16", "mem_fraction": 0.3}  # fmt: skip


def plan_of(host: str, services: list[dict[str, Any]], gpu: dict[str, Any] | None = None, **over: Any) -> Any:
    kw: dict[str, Any] = {"host": host, "groups": GROUPS, "fabric": FABRIC, **over}
    return make_plan(services, SPARK_GPU if gpu is None else gpu, **kw)


def errors_of(host: str, services: list[dict[str, Any]], **over: Any) -> list[str]:
    return list(plan_of(host, services, **over).errors)


def plans(
    svc: dict[str, Any], hosts: list[str] = PAIR, per_host: dict[str, dict[str, Any]] | None = None, **common: Any
) -> dict[str, Any]:
    return {h: plan_of(h, [svc], **{**common, **(per_host or {}).get(h, {})}).as_fact() for h in hosts}


# ------------------------------------------------------------------ the parser's checks


@pytest.mark.parametrize(
    ("over", "where", "text"),
    [
        ({"group": None, "hosts": ["spark-03"]}, "hosts", "names one host"),
        ({"hosts": PAIR}, "group", "is set together with hosts"),
        ({"group": None, "hosts": PAIR, "nodes": 2}, "nodes", "is set without group"),
        ({"group": None, "hosts": PAIR, "head": "spark-09"}, "head", "'spark-09' is not one of hosts"),
        ({"group": None, "hosts": ["spark-03", "spark-03"]}, "hosts[1]", "is listed twice"),
        ({"distributed_backend": "ray"}, "distributed_backend", "'ray' is not a backend of engine sglang: use native"),
        ({"extra_args": ["--tp-size", "2"]}, "extra_args", "sets --tp-size, which sparkfleet sets on every host"),
        ({"extra_args": ["--dist-init-addr=10.0.0.1:5000"]}, "extra_args", "sets --dist-init-addr"),
        (
            {"engine": "nim", "image": "nvcr.io/nim/meta/llama-3.3-70b-instruct:1.0.0"},
            "group",
            "engine nim runs on one host only",
        ),
    ],
)
def test_bad_keys_are_refused(over: dict[str, Any], where: str, text: str) -> None:
    svc = {k: v for k, v in {**LLAMA_70B, **over}.items() if v is not None}
    errors = errors_of("spark-03", [svc], ngc_api_key="nvapi-" + "A" * 30)
    assert any(e.startswith(f"llm_serving_services[0] (llama-70b).{where} ") and text in e for e in errors), errors


def test_parallelism_keys_without_hosts_are_refused() -> None:
    svc = {k: v for k, v in LLAMA_70B.items() if k != "group"}
    errors = errors_of("spark-03", [{**svc, "model_params_b": 8.0}])
    assert errors == [
        "llm_serving_services[0] (llama-70b).tensor_parallel is set, but the service does not span hosts: set hosts "
        "(or group), or remove it"
    ]


def test_the_rpc_split_has_no_tp() -> None:
    errors = errors_of("lab-spark-01", [{**LAB_SPLIT, "tensor_parallel": 2}], gpu=NO_GPU)
    assert any(".tensor_parallel is set, but llama-cpp (rpc) splits the model by layer on its own" in e
               for e in errors)  # fmt: skip


# ------------------------------------------------------------------ each host's piece


def test_each_host_plans_its_own_piece() -> None:
    head = plan_of("spark-03", [LLAMA_70B])
    worker = plan_of("spark-04", [LLAMA_70B])
    assert head.errors == worker.errors == []
    [h], [w] = head.services, worker.services
    assert (h["multihost"]["rank"], h["multihost"]["role"]) == (0, "head")
    assert (w["multihost"]["rank"], w["multihost"]["role"]) == (1, "worker")
    for piece in (h["multihost"], w["multihost"]):
        assert piece["hosts"] == PAIR and piece["nnodes"] == 2 and piece["tp"] == 2 and piece["pp"] == 1
        assert piece["head_address"] == "192.168.100.13" and piece["dist_port"] == 20000
    assert h["verify"]["enabled"] is True and w["verify"]["enabled"] is False  # verify benchmarks the head only
    assert w["health_paths"] == []


def test_tensor_parallel_defaults_to_the_number_of_hosts() -> None:
    svc = {k: v for k, v in LLAMA_70B.items() if k != "tensor_parallel"}
    [s] = plan_of("spark-04", [svc]).services
    assert s["multihost"]["tp"] == 2


def test_a_host_outside_the_service_ignores_it() -> None:
    """Declared in group_vars/all: spark-01 is not one of its hosts, plans it not, and its own service on the same
    port is no clash."""
    plan = plan_of("spark-01", [LLAMA_70B, OWN])
    assert plan.errors == []
    assert [s["name"] for s in plan.services] == ["qwen3-8b"]
    assert member(LLAMA_70B, "spark-01", GROUPS) is False and member(LLAMA_70B, "spark-04", GROUPS) is True
    assert member(OWN, "spark-01", GROUPS) is True


def test_nodes_takes_the_first_hosts_of_the_group() -> None:
    svc = {**LLAMA_70B, "group": "spark_four", "nodes": 2}
    assert [s["multihost"]["rank"] for s in plan_of("spark-02", [svc]).services] == [1]
    assert plan_of("spark-03", [svc]).services == []


@pytest.mark.parametrize(
    ("over", "text"),
    [
        ({"tensor_parallel": 3}, "tensor_parallel 3 x pipeline_parallel 1 = 3 is not a multiple of its 2 hosts"),
        ({"group": "nope"}, "group 'nope' is not a group of the inventory"),
        ({"group": "spark_four", "nodes": 5}, "nodes is 5, but group 'spark_four' has 4 host(s)"),
        (
            {"group": None, "hosts": ["spark-03", "spark-99"]},
            "hosts names 'spark-99', which is not a host of the inventory",
        ),
    ],
)
def test_ranks_that_cannot_cover_the_group(over: dict[str, Any], text: str) -> None:
    svc = {k: v for k, v in {**LLAMA_70B, **over}.items() if v is not None}
    errors = errors_of("spark-03", [svc])
    assert any(e.startswith("llm_serving_services[0] (llama-70b): ") and text in e for e in errors), errors


def test_more_ranks_than_gpus_on_a_host() -> None:
    errors = errors_of("spark-03", [{**LLAMA_70B, "tensor_parallel": 4}])
    assert any("puts 2 ranks on each host, but spark-03 gives it 1 GPU(s)" in e for e in errors), errors


def test_a_host_without_a_fabric_address_names_the_variable() -> None:
    fabric = {**FABRIC, "spark-04": {}}
    errors = errors_of("spark-04", [LLAMA_70B], fabric=fabric)
    assert errors == [
        "llm_serving_services[0] (llama-70b): host spark-04 has no fabric address: set sparkfleet_fabric_address "
        "(its ConnectX-7 address, e.g. 192.168.100.11) in its host vars, or gather the fabric facts "
        "(sparkfleet.fleet.sparkfleet_fabric_facts) with an up CX-7 interface that has an address"
    ]
    assert errors_of("spark-03", [LLAMA_70B], fabric=fabric) == []  # the head's own endpoint is fine


@pytest.mark.parametrize(
    ("over", "named"),
    [
        ({"interface": "enp1s0f1np1\nLD_PRELOAD=/tmp/x.so"}, "sparkfleet_fabric_interface"),
        ({"interface": "enp1s0f1np1 eth0"}, "sparkfleet_fabric_interface"),
        ({"interface": "a" * 16}, "sparkfleet_fabric_interface"),  # the kernel's limit is 15
        ({"interface": "-enp1"}, "sparkfleet_fabric_interface"),
        ({"hca": ["rocep1s0f1", "roce,x"]}, "sparkfleet_fabric_hca"),
        ({"hca": "rocep1s0f1,mlx5_0\nNCCL_DEBUG=INFO"}, "sparkfleet_fabric_hca"),
    ],
)
def test_fabric_names_that_would_reach_the_env_file_unchecked_are_refused(over: dict[str, Any], named: str) -> None:
    fabric = {**FABRIC, "spark-04": {**FABRIC["spark-04"], **over}}
    errors = errors_of("spark-04", [LLAMA_70B], fabric=fabric)
    assert len(errors) == 1 and f"host spark-04: {named} " in errors[0], errors
    assert "\n" not in errors[0]
    # Names as ibdev2netdev prints them pass.
    good = {**FABRIC, "spark-04": {**FABRIC["spark-04"], "interface": "enP2p1s0f1np1", "hca": "roceP2p1s0f1,mlx5_0"}}
    assert errors_of("spark-04", [LLAMA_70B], fabric=good) == []


def test_the_fabric_address_comes_from_the_facts_when_no_variable_sets_it() -> None:
    fabric: dict[str, dict[str, Any]] = {
        "spark-03": {"facts": host_facts()},
        "spark-04": {"facts": host_facts(ip_json="ip-addr-spark-04.json")},
    }
    [s] = plan_of("spark-04", [LLAMA_70B], fabric=fabric).services
    assert (s["multihost"]["address"], s["multihost"]["interface"]) == ("192.168.100.14", "enp1s0f1np1")
    fabric["spark-04"]["address"] = "192.168.100.44"  # the host variable wins
    [s] = plan_of("spark-04", [LLAMA_70B], fabric=fabric).services
    assert s["multihost"]["address"] == "192.168.100.44"


def test_no_host_name_no_piece() -> None:
    errors = errors_of("", [LLAMA_70B])
    assert errors[0] == (
        "llm_serving_services[0] (llama-70b) spans hosts, but the plan was made without this host's inventory name "
        "(the preflight role passes it as host): run playbooks/preflight.yml"
    )


def test_weights_beyond_the_groups_memory() -> None:
    # 70B bf16 is about 85 GB per Spark at TP=2: it fits. 235B bf16 (about 282 GB per Spark) does not.
    big = {**LLAMA_70B, "model_params_b": 235.0}
    [error] = errors_of("spark-03", [big])
    assert error.startswith("llm_serving_services[0] (llama-70b) needs about 282.0 GB on spark-03")
    assert "564.0 GB for the group of 2 hosts" in error and "the weights do not fit the group's memory" in error
    assert "Fix: more hosts" in error
    four = {**big, "group": "spark_four", "tensor_parallel": 4, "model_dtype": "int4"}
    assert errors_of("spark-01", [four]) == []  # 235B int4 over four Sparks: about 35 GB each


def test_a_host_in_two_groups_on_one_port() -> None:
    other = {**LLAMA_70B, "name": "qwen-235b", "port": 30001, "model_params_b": 30.0, "mem_fraction": 0.4}
    first = {**LLAMA_70B, "model_params_b": 30.0, "mem_fraction": 0.4}
    errors = errors_of("spark-03", [first, other])
    assert any(
        "(qwen-235b) takes port 20000 on spark-03 (its dist_port), which llm_serving_services[0] (llama-70b) also "
        "takes (its dist_port)"
        in e
        and "Fix: set dist_port" in e
        for e in errors
    ), errors
    errors = errors_of("spark-03", [first, {**OWN, "port": 20000, "mem_fraction": 0.4}])
    assert any("(qwen3-8b) takes port 20000 on spark-03 (its port)" in e for e in errors), errors
    ok = {**other, "dist_port": 20001}
    assert errors_of("spark-03", [first, ok]) == []


# ------------------------------------------------------------------ across the hosts' plans


def test_a_clean_pair() -> None:
    out = check_groups(plans(LLAMA_70B), PAIR)
    assert out.errors == []
    assert out.groups["llama-70b"] == {
        "engine": "sglang", "backend": "native", "head": "spark-03", "hosts": PAIR, "ranks": {"spark-03": 0,
        "spark-04": 1}, "nnodes": 2, "tp": 2, "pp": 1, "status": "deploy", "ok": True,
    }  # fmt: skip


def test_a_host_outside_the_limit() -> None:
    out = check_groups({"spark-03": plan_of("spark-03", [LLAMA_70B]).as_fact()}, ["spark-03"])
    assert out.errors == [
        "service llama-70b (llm_serving_services[0] (llama-70b)): host(s) spark-04 of the service are not in this run "
        "(the limit or the play covers spark-03): a service across hosts is deployed on all of its hosts together. "
        "Fix: run with --limit spark-03,spark-04 (or no limit), or change hosts"
    ]


def test_a_host_that_does_not_list_the_service() -> None:
    every = {"spark-03": plan_of("spark-03", [LLAMA_70B]).as_fact(), "spark-04": plan_of("spark-04", [OWN]).as_fact()}
    [error] = check_groups(every, PAIR).errors
    assert "host(s) spark-04 are among its hosts but do not plan it" in error and "group_vars" in error


def test_the_head_missing() -> None:
    every = plans(LLAMA_70B)
    every["spark-03"]["services"] = []
    errors = check_groups(every, PAIR).errors
    assert any("spark-03 are among its hosts but do not plan it" in e for e in errors), errors


def test_ranks_that_do_not_cover_the_hosts() -> None:
    every = plans(LLAMA_70B)
    every["spark-04"]["services"][0]["multihost"]["rank"] = 0
    every["spark-04"]["services"][0]["multihost"]["role"] = "head"
    errors = check_groups(every, PAIR).errors
    assert any("hosts spark-03 and spark-04 both hold rank 0: each rank once" in e for e in errors), errors
    every["spark-04"]["services"][0]["multihost"]["rank"] = 5
    errors = check_groups(every, PAIR).errors
    assert any("ranks [5] are outside 0..1" in e for e in errors), errors


def test_hosts_of_different_profiles_or_architectures() -> None:
    every = plans(LLAMA_70B, per_host={"spark-04": {"gpu": STATION_GPU}})
    errors = check_groups(every, PAIR).errors
    assert any("its hosts have different profiles (spark-03 dgx_spark, spark-04 dgx_station)" in e for e in errors)
    facts = {"spark-03": host_facts(), "spark-04": host_facts(ip_json="ip-addr-spark-04.json", architecture="x86_64")}
    errors = check_groups(plans(LLAMA_70B), PAIR, facts).errors
    assert any("different architectures (spark-03 aarch64, spark-04 x86_64)" in e for e in errors), errors


def test_a_group_that_would_run_on_some_hosts_only() -> None:
    every = plans(LLAMA_70B, per_host={"spark-04": {"gpu": NO_GPU, "skip_gpu_services_without_gpu": True}})
    errors = check_groups(every, PAIR).errors
    assert any("its hosts would not run it together (spark-03 deploy" in e and "spark-04 skipped" in e
               for e in errors), errors  # fmt: skip


def test_definitions_that_differ() -> None:
    every = {"spark-03": plan_of("spark-03", [LLAMA_70B]).as_fact(),
             "spark-04": plan_of("spark-04", [{**LLAMA_70B, "image": "lmsysorg/sglang:v0.5.5"}]).as_fact()}  # fmt: skip
    [error] = check_groups(every, PAIR).errors
    assert "host spark-04 plans it differently from spark-03 (image)" in error


def test_a_worker_without_the_image() -> None:
    facts = {"spark-03": host_facts(), "spark-04": host_facts(ip_json="ip-addr-spark-04.json", image_id="")}
    facts = {h: {**f, "images": {LLAMA_70B["image"]: f["images"][next(iter(f["images"]))]}} for h, f in facts.items()}
    errors = check_groups(plans(LLAMA_70B), PAIR, facts).errors
    assert any(
        "worker spark-04 does not hold image lmsysorg/sglang:latest-cu130, which the head spark-03 holds" in e
        and "pin the image by digest" in e
        for e in errors
    ), errors
    pinned = {**LLAMA_70B, "image": "lmsysorg/sglang@sha256:" + "c" * 64}
    assert check_groups(plans(pinned), PAIR, facts).errors == []  # a digest pulls the same build everywhere


def test_the_fabric_of_the_group_is_checked() -> None:
    facts = {"spark-03": host_facts(), "spark-04": host_facts(ip_json="ip-addr-spark-04-mtu1500.json")}
    fabric = {h: {"facts": f} for h, f in facts.items()}
    out = check_groups(plans(LLAMA_70B, fabric=fabric), PAIR, facts)
    assert out.errors == [
        "service llama-70b (llm_serving_services[0] (llama-70b)): the fabric MTU differs between hosts (spark-03 "
        "enp1s0f1np1 9000, spark-04 enp1s0f1np1 1500): a mismatch stalls NCCL on large messages. Fix: one MTU "
        "(9000) on every host's interface (netplan, e.g. /etc/netplan/40-cx7.yaml, then netplan apply)"
    ]
    down = {"spark-03": host_facts(), "spark-04": host_facts(ip_json="ip-addr-spark-04.json",
                                                             ibdev="ibdev2netdev-spark-down.txt")}  # fmt: skip
    errors = check_groups(plans(LLAMA_70B), PAIR, down).errors
    assert any("host spark-04: interface enp1s0f1np1 (rocep1s0f1) is down" in e for e in errors), errors


def test_the_lab_split_plans_and_passes() -> None:
    fabric = vars_fabric(LAB, net="10.10.0", hca=False)
    every = {h: plan_of(h, [LAB_SPLIT], gpu=NO_GPU, fabric=fabric).as_fact() for h in LAB}
    out = check_groups(every, LAB)
    assert out.errors == []
    assert out.groups["standin-split"]["ranks"] == {"lab-spark-01": 0, "lab-spark-02": 1, "lab-spark-03": 2}
    [head] = every["lab-spark-01"]["services"]
    assert head["multihost"]["start_first"] == "workers"  # the RPC servers must listen before the head connects


def test_the_topology_module_returns_the_groups() -> None:
    every = plans(LLAMA_70B)
    module = FakeModule({"plans": copy.deepcopy(every), "addresses": {}, "ssh_ports": {}, "serial": None,
                         "play_hosts": ["spark-03"], "fabric": {}})  # fmt: skip
    with pytest.raises(ExitJson) as exc:
        run_module(module)
    result = exc.value.args[0]
    assert result["groups"]["llama-70b"]["hosts"] == PAIR
    assert any("host(s) spark-04 of the service are not in this run" in e for e in result["errors"])


def test_the_docs_two_spark_example_plans_on_both_hosts() -> None:
    """docs/multi-host.md: its inventory and its service, planned on each host and checked across them."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "multi-host.md").read_text()
    inventory, services = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)[:2]]
    children = inventory["all"]["children"]
    hostvars = children["dgx_spark"]["hosts"]
    groups = {"all": list(hostvars), **{g: list(c["hosts"]) for g, c in children.items()}}
    fabric = {h: {"interface": v["sparkfleet_fabric_interface"], "address": v["sparkfleet_fabric_address"]}
              for h, v in hostvars.items()}  # fmt: skip
    every = {h: plan_of(h, services["llm_serving_services"], groups=groups, fabric=fabric).as_fact() for h in hostvars}
    assert [p["errors"] for p in every.values()] == [[], []]
    out = check_groups(every, list(hostvars))
    assert out.errors == []
    assert out.groups["llama-70b"]["ranks"] == {"spark-03": 0, "spark-04": 1}
