"""The fleet-level Dynamo checks (service/topology.py): one frontend per deployment, workers on GPU hosts, one
discovery per deployment that fits its hosts, etcd's peer port, and the reachability probes preflight runs."""

from __future__ import annotations

from typing import Any

from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.topology import check_topology

from tests.unit.service_helpers import NO_GPU, SPARK_GPU, make_plan

ETCD = "http://10.0.0.11:2379"


def _svc(name: str, engine: str, **kw: Any) -> dict[str, Any]:
    base = {"name": name, "engine": engine, "image": "repo/dynamo:1.6.1", "model": "m", "dynamo_deployment": "d",
            "dynamo_discovery": ETCD}  # fmt: skip
    return {**base, **kw}


FRONTEND = _svc("fe", "dynamo-frontend")
ETCD_SVC = _svc("etcd", "dynamo-etcd", model="etcd")
MOCKER = _svc("w", "dynamo-mocker", extra_args=["--model-path", "/models/tiny"])
SGLANG = _svc("w", "dynamo-sglang")


def _plans(**hosts: tuple[list[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for host, (services, gpu) in hosts.items():
        plan = make_plan(services, gpu)
        assert plan.errors == [], plan.errors
        out[host] = plan.as_fact()
    return out


ADDRESSES = {"a": ["10.0.0.11"], "b": ["10.0.0.12"], "c": ["10.0.0.13"]}


def test_the_lab_deployment_is_clean_and_probes_each_worker_host() -> None:
    plans = _plans(a=([ETCD_SVC, FRONTEND, MOCKER], NO_GPU), b=([MOCKER], NO_GPU))
    topo = check_topology(plans, ADDRESSES)
    assert topo.errors == []
    assert topo.probes == [{"from_host": "a", "to_host": "b", "address": "10.0.0.12", "port": 22, "deployment": "d"}]
    assert topo.deployments["d"]["frontends"] == ["a"]


def test_two_frontends_in_one_deployment_are_refused() -> None:
    plans = _plans(a=([ETCD_SVC, FRONTEND, MOCKER], NO_GPU), b=([FRONTEND], NO_GPU))
    [err] = check_topology(plans, ADDRESSES).errors
    assert "dynamo_deployment 'd' has 2 frontends" in err and "a: llm_serving_services[1] (fe)" in err


def test_workers_without_a_frontend_are_refused() -> None:
    plans = _plans(a=([ETCD_SVC, MOCKER], NO_GPU))
    [err] = check_topology(plans, ADDRESSES).errors
    assert "no dynamo-frontend" in err and "engine dynamo-frontend" in err


def test_a_frontend_without_workers_is_refused() -> None:
    plans = _plans(a=([ETCD_SVC, FRONTEND], NO_GPU))
    [err] = check_topology(plans, ADDRESSES).errors
    assert "but no worker" in err


def test_an_sglang_worker_on_a_host_without_a_gpu_profile_is_refused() -> None:
    plans = _plans(a=([ETCD_SVC, FRONTEND], NO_GPU), b=([SGLANG], SPARK_GPU))
    plans["c"] = {"profile": "none", "services": [{**plans["b"]["services"][0], "where": "llm_serving_services[0]"}]}
    errors = check_topology(plans, ADDRESSES).errors
    assert any("host c has no GPU profile" in e and "dynamo-mocker" in e for e in errors), errors
    assert not any("host b" in e for e in errors)


def test_file_discovery_across_hosts_is_refused() -> None:
    file = {"dynamo_discovery": "file"}
    plans = _plans(a=([{**FRONTEND, **file}], NO_GPU), b=([{**MOCKER, **file}], NO_GPU))
    [err] = check_topology(plans, ADDRESSES).errors
    assert "spans hosts a, b with dynamo_discovery file" in err and "dynamo-etcd" in err


def test_file_discovery_on_one_host_is_fine() -> None:
    file = {"dynamo_discovery": "file"}
    plans = _plans(a=([{**FRONTEND, **file}, {**MOCKER, **file}], NO_GPU))
    topo = check_topology(plans, ADDRESSES)
    assert topo.errors == [] and topo.probes == []


def test_an_etcd_url_no_etcd_service_answers_is_refused() -> None:
    plans = _plans(a=([FRONTEND, MOCKER], NO_GPU))
    [err] = check_topology(plans, ADDRESSES).errors
    assert f"dynamo_discovery {ETCD}, but no dynamo-etcd service" in err


def test_mixed_discovery_is_refused() -> None:
    plans = _plans(a=([ETCD_SVC, FRONTEND, MOCKER], NO_GPU), b=([{**MOCKER, "dynamo_discovery": "file"}], NO_GPU))
    [err] = check_topology(plans, ADDRESSES).errors
    assert "mixes dynamo_discovery values" in err


def test_a_port_on_etcds_peer_port_is_refused() -> None:
    plans = _plans(a=([ETCD_SVC, {**FRONTEND, "port": 2380}, MOCKER], NO_GPU))
    [err] = check_topology(plans, ADDRESSES).errors
    assert "uses port 2380, which etcd (dynamo-etcd on port 2379) takes for its peer URL" in err


def test_parse_refuses_a_gpu_on_cpu_engines_and_none_on_sglang_workers() -> None:
    assert any("runs on the CPU" in e for e in make_plan([{**MOCKER, "gpu": 0}], SPARK_GPU).errors)
    assert any("needs a GPU" in e for e in make_plan([{**SGLANG, "gpu": "none"}], SPARK_GPU).errors)
    assert any("not a Dynamo engine" in e for e in make_plan(
        [{"name": "s", "engine": "sglang", "image": "a/b:1", "model": "m", "dynamo_deployment": "x"}], SPARK_GPU
    ).errors)  # fmt: skip
    assert any("must be file" in e for e in make_plan([{**MOCKER, "dynamo_discovery": "etcd"}], NO_GPU).errors)


def test_workers_and_etcd_are_not_benchmarked_the_frontend_is() -> None:
    plan = make_plan([ETCD_SVC, FRONTEND, MOCKER], NO_GPU).as_fact()
    enabled = {s["name"]: s["verify"]["enabled"] for s in plan["services"]}
    assert enabled == {"etcd": False, "fe": True, "w": False}


def test_a_first_etcd_deploy_is_served_first_and_alone_or_refused() -> None:
    plans = _plans(a=([ETCD_SVC, FRONTEND, MOCKER], NO_GPU), b=([MOCKER], NO_GPU))
    # The molecule/dynamo shape: etcd's host first and alone, then the rest.
    assert check_topology(plans, ADDRESSES, serial=[1, "100%"], play_hosts=["a", "b"]).errors == []
    # One batch, or the worker's host first: refused before any host changes, naming the fix.
    for serial, order in (("100%", ["a", "b"]), ([1, "100%"], ["b", "a"])):
        (error,) = check_topology(plans, ADDRESSES, serial=serial, play_hosts=order).errors
        assert "a: llm_serving_services[0] (etcd) is deployed for the first time" in error
        assert "sparkfleet_rollout_batch: [1, 100%]" in error and "--limit a" in error
    # A rerun: etcd's unit is there, any order is fine; and no order check without the serving play's batches.
    plans["a"]["installed"] = ["etcd", "fe", "w"]
    assert check_topology(plans, ADDRESSES, serial="100%", play_hosts=["b", "a"]).errors == []
    plans["a"]["installed"] = []
    assert check_topology(plans, ADDRESSES).errors == []


def test_a_deployment_on_one_host_needs_no_order() -> None:
    plans = _plans(a=([ETCD_SVC, FRONTEND, MOCKER], NO_GPU), b=([], NO_GPU))
    assert check_topology(plans, ADDRESSES, serial="100%", play_hosts=["b", "a"]).errors == []
