"""A service across hosts as the later stages read its plan (docs/multi-host.md): who may reach the rendezvous
port (serving/exposure.py), the fleet report's one service on N hosts and its workers verified through the head
(report/reconcile.py), and the fabric checks kept to the engines that use NCCL over RDMA (service/groups.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.markdown import render_markdown
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.model import Fleet, Row
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.reconcile import reconcile
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.groups import check_groups
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.exposure import (
    RESTRICTED,
    firewall_rules,
    piece_exposure,
)

from tests.unit.service_helpers import NO_GPU, SPARK_GPU, make_plan
from tests.unit.test_fabric import host_facts
from tests.unit.test_multihost_golden import GROUPS, LAB, LAB_SPLIT, LLAMA_70B, PAIR, vars_fabric

LAB_FABRIC = vars_fabric(LAB, net="10.10.0", hca=False)
PAIR_FABRIC = vars_fabric(PAIR)


def lab_plans() -> dict[str, Any]:
    every = {h: make_plan([LAB_SPLIT], NO_GPU, host=h, groups=GROUPS, fabric=LAB_FABRIC) for h in LAB}
    assert all(p.errors == [] for p in every.values()), {h: p.errors for h, p in every.items()}
    return every


def test_a_workers_rpc_port_is_reachable_from_its_head_only() -> None:
    every = lab_plans()
    [worker] = every["lab-spark-02"].services
    [entry] = piece_exposure(worker)
    assert (entry["port"], entry["reach"], entry["allow"], entry["path"]) == (
        50052,
        RESTRICTED,
        ["10.10.0.11/32"],
        "host",
    )
    assert entry["listen"] == "10.10.0.12"
    rules = firewall_rules([entry], "lab-spark-02")["v4"]
    assert "-A SPARKFLEET-INPUT -p tcp --dport 50052 -s 10.10.0.11/32 -j RETURN" in rules
    assert "-A SPARKFLEET-INPUT -p tcp --dport 50052 -j DROP" in rules
    # The head connects to its workers: nothing of it listens on the RPC port.
    [head] = every["lab-spark-01"].services
    assert piece_exposure(head) == []


def test_a_heads_rendezvous_is_reachable_from_its_workers_only() -> None:
    head = make_plan([LLAMA_70B], host="spark-03", groups=GROUPS, fabric=PAIR_FABRIC).services[0]
    [entry] = piece_exposure(head)
    assert (entry["port"], entry["allow"]) == (20000, ["192.168.100.12/32"])
    worker = make_plan([LLAMA_70B], host="spark-04", groups=GROUPS, fabric=PAIR_FABRIC).services[0]
    assert piece_exposure(worker) == []


def test_a_service_on_one_host_has_no_rendezvous_port() -> None:
    svc = make_plan([{**LAB_SPLIT, "hosts": None}], NO_GPU).services[0]
    assert piece_exposure(svc) == []


def test_the_report_shows_one_service_on_n_hosts_and_workers_verified_through_the_head() -> None:
    services = {h: p.services for h, p in lab_plans().items()}
    rec = reconcile([Row(host="lab-spark-01", service="standin-split", benchmark_ok=True)], services)
    assert rec["line"] == "expected 1, serving 1"
    assert rec["ok"] is True
    assert rec["across_hosts"] == [
        {"service": "standin-split", "head": "lab-spark-01", "hosts": LAB, "nnodes": 3, "serving": True, "down": []}
    ]
    verified = {(n["host"], n["service"]): n["verified"] for n in rec["not_benchmarked"]}
    assert verified[("lab-spark-03", "standin-split")] == (
        "worker (rank 2 of 3) of a service across hosts: verified through its head lab-spark-01 (and its health gate)"
    )
    fleet = Fleet(rows=[], concurrencies=[], slow_margin=0.2)
    fleet.reconciliation = rec
    lines = render_markdown(fleet)
    assert (
        "- across hosts: standin-split: one service on 3 hosts (head lab-spark-01; lab-spark-01, lab-spark-02, "
        "lab-spark-03): serving" in lines
    )


def test_a_failed_worker_host_fails_the_whole_service() -> None:
    services = {h: p.services for h, p in lab_plans().items()}
    rows = [Row(host="lab-spark-01", service="standin-split", benchmark_ok=True)]
    rec = reconcile(rows, services, outcomes={"lab-spark-03": "unreachable: the host did not answer"})
    [group] = rec["across_hosts"]
    assert (group["serving"], group["down"]) == (False, ["lab-spark-03"])
    assert rec["ok"] is False


def test_a_fleet_without_services_across_hosts_reports_as_before() -> None:
    services = make_plan([{**LAB_SPLIT, "hosts": None}], NO_GPU).services
    rec = reconcile([Row(host="h", service="standin-split", benchmark_ok=True)], {"h": services})
    assert "across_hosts" not in rec


def test_the_rpc_split_is_not_held_to_the_cx7_checks() -> None:
    """llama.cpp's RPC backend runs over TCP on any network (the lab has no ConnectX-7); NCCL engines are."""
    facts = {h: {**host_facts(), "interfaces": []} for h in LAB}
    plans = {h: p.as_fact() for h, p in lab_plans().items()}
    assert check_groups(plans, LAB, facts).errors == []
    pair = {h: make_plan([LLAMA_70B], host=h, groups=GROUPS, fabric=PAIR_FABRIC).as_fact() for h in PAIR}
    errors = check_groups(pair, PAIR, {h: {**host_facts(), "interfaces": []} for h in PAIR}).errors
    assert any("host spark-03: interface enp1s0f1np1 (ibdev2netdev: no RDMA device)" in e for e in errors), errors


def test_the_readme_two_spark_example_plans_on_both_hosts() -> None:
    """README.md's "One model across several Sparks": its inventory and service, planned on each host (a Spark's
    GPU) and checked across them."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "spark_pair" in b]
    data = yaml.safe_load(block)
    children = data["all"]["children"]
    hostvars = children["dgx_spark"]["hosts"]
    groups = {"all": list(hostvars), **{g: list(c["hosts"]) for g, c in children.items()}}
    fabric = {h: {"interface": v["sparkfleet_fabric_interface"], "address": v["sparkfleet_fabric_address"]}
              for h, v in hostvars.items()}  # fmt: skip
    every = {
        h: make_plan(data["llm_serving_services"], SPARK_GPU, host=h, groups=groups, fabric=fabric).as_fact()
        for h in hostvars
    }
    assert [p["errors"] for p in every.values()] == [[], []]
    out = check_groups(every, list(hostvars))
    assert out.errors == []
    assert out.groups["llama-70b"]["ranks"] == {"spark-03": 0, "spark-04": 1}


def test_the_hosts_of_a_group_are_served_in_one_batch() -> None:
    plans = {h: p.as_fact() for h, p in lab_plans().items()}
    assert check_groups(plans, LAB, serial="100%").errors == []
    assert check_groups(plans, LAB, serial=3).errors == []
    [error] = check_groups(plans, LAB, serial=[1, "100%"]).errors
    assert error == (
        "service standin-split (llm_serving_services[0] (standin-split)): its hosts would be served in different "
        "batches (batch 1: lab-spark-01; batch 2: lab-spark-02, lab-spark-03; sparkfleet_rollout_batch): a service "
        "across hosts starts on all of its hosts together. Fix: a batch that holds all of them "
        "(sparkfleet_rollout_batch: 100%, or list them next to each other and a batch size that keeps them together)"
    )
