"""Nothing silently missing: the fleet report reconciles every host's plan with what is serving."""

from __future__ import annotations

from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.markdown import render_markdown
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.model import Fleet, Row
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.reconcile import reconcile
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import orphan_names

from tests.unit.service_helpers import NO_GPU, make_plan

CPU = {"name": "standin", "engine": "openai", "image": "x/y:1", "model": "m", "gpu": "none", "port": 8080}
GPU = {"name": "sglang", "engine": "sglang", "image": "x/y:1", "model": "m", "port": 30000}


def _passed(host: str, service: str) -> Row:
    return Row(host=host, service=service, benchmark_ok=True)


def test_every_planned_service_is_serving() -> None:
    plans = {"spark-01": make_plan([CPU], NO_GPU).services, "spark-02": make_plan([CPU], NO_GPU).services}
    rec = reconcile([_passed("spark-01", "standin"), _passed("spark-02", "standin")], plans)
    assert rec["line"] == "expected 2, serving 2"
    assert rec["ok"] is True


def test_skipped_by_choice_is_reported_but_does_not_fail() -> None:
    plan = make_plan([CPU, GPU], NO_GPU, skip_gpu_services_without_gpu=True)
    rec = reconcile([_passed("spark-01", "standin")], {"spark-01": plan.services})
    assert rec["line"] == "expected 2, serving 1 (1 skipped by choice, 0 missing)"
    assert rec["ok"] is True
    assert rec["missing"][0]["by_choice"] is True
    assert "nvidia-smi is not on the PATH" in rec["missing"][0]["reason"]


def test_a_failed_check_an_unreached_host_and_a_rollback_are_missing_with_their_reason() -> None:
    services = make_plan([CPU], NO_GPU).services
    failed = Row(host="spark-01", service="standin", benchmark_ok=True, failed_checks=["chat"])
    plans = {"spark-01": services, "spark-02": services, "spark-03": services}
    outcomes = {"spark-02": "the host failed or was unreachable before verification", "spark-03": "rolled back"}
    rec = reconcile([failed], plans, outcomes=outcomes)
    assert rec["line"] == "expected 3, serving 0 (0 skipped by choice, 3 missing)"
    assert rec["ok"] is False
    reasons = {m["host"]: m["reason"] for m in rec["missing"]}
    assert reasons == {
        "spark-01": "failed verification: chat",
        "spark-02": "the host failed or was unreachable before verification",
        "spark-03": "rolled back",
    }


def test_absent_services_are_not_expected_and_orphans_are_listed() -> None:
    services = make_plan([CPU, {**CPU, "name": "old", "port": 8081, "state": "absent"}], NO_GPU).services
    rec = reconcile([_passed("spark-01", "standin")], {"spark-01": services}, orphans={"spark-01": ["forgotten"]})
    assert rec["expected"] == 1
    assert rec["orphans"] == [{"host": "spark-01", "service": "forgotten"}]
    assert rec["line"] == "expected 1, serving 1; 1 not in the inventory but running"


def test_the_markdown_ends_with_the_fleet_line() -> None:
    services = make_plan([CPU], NO_GPU).services
    fleet = Fleet(rows=[], concurrencies=[], slow_margin=0.2)
    fleet.reconciliation = reconcile([], {"spark-01": services})
    lines = render_markdown(fleet)
    assert lines[-1] == "**expected 1, serving 0 (0 skipped by choice, 1 missing)**"
    assert "- MISSING: spark-01/standin: no result for this service" in lines


def test_orphans_are_units_the_plan_does_not_name() -> None:
    units = ["/etc/systemd/system/sparkfleet-standin.service", "/etc/systemd/system/sparkfleet-old-model.service"]
    assert orphan_names(units, {"standin"}) == ["old-model"]


# The seed's Dynamo deployment as molecule/dynamo plans it: etcd, the frontend and a worker on one host, a worker
# on another. Only the frontend is benchmarked; the workers and etcd are never missing, and the report says how
# each is verified instead.
_ETCD = "http://10.10.0.11:2379"
_DYN = {"image": "x/dynamo:1", "dynamo_deployment": "lab", "dynamo_discovery": _ETCD}
_MOCKER = {**_DYN, "engine": "dynamo-mocker", "model": "tiny", "extra_args": ["--model-path", "/models/tiny"]}
DYNAMO_A = [
    {**_DYN, "name": "dynamo-etcd", "engine": "dynamo-etcd", "model": "etcd"},
    {**_DYN, "name": "dynamo-frontend", "engine": "dynamo-frontend", "model": "tiny"},
    {**_MOCKER, "name": "mocker-a"},
]
DYNAMO_B = [{**_MOCKER, "name": "mocker-b"}]


def _dynamo_plans() -> dict[str, list[dict[str, object]]]:
    plans = {"dynamo-a": make_plan(DYNAMO_A, NO_GPU), "dynamo-b": make_plan(DYNAMO_B, NO_GPU)}
    assert all(p.errors == [] for p in plans.values()), {h: p.errors for h, p in plans.items()}
    return {host: plan.services for host, plan in plans.items()}


def test_dynamo_workers_and_etcd_are_not_missing_when_the_frontend_serves() -> None:
    rec = reconcile([_passed("dynamo-a", "dynamo-frontend")], _dynamo_plans())
    assert rec["line"] == "expected 1, serving 1"
    assert rec["ok"] is True
    assert rec["missing"] == []
    assert rec["hosts"] == [
        {"host": "dynamo-a", "expected": 1, "serving": 1, "outcome": None},
        {"host": "dynamo-b", "expected": 0, "serving": 0, "outcome": None},
    ]
    verified = {(n["host"], n["service"]): n["verified"] for n in rec["not_benchmarked"]}
    assert verified == {
        ("dynamo-a", "dynamo-etcd"): "Dynamo discovery (etcd): verified by its health gate",
        ("dynamo-a", "mocker-a"): "a Dynamo worker: verified through its frontend dynamo-a/dynamo-frontend "
        "(and its health gate)",
        ("dynamo-b", "mocker-b"): "a Dynamo worker: verified through its frontend dynamo-a/dynamo-frontend "
        "(and its health gate)",
    }


def test_a_failed_dynamo_frontend_is_the_one_missing_service() -> None:
    failed = Row(host="dynamo-a", service="dynamo-frontend", benchmark_ok=True, failed_checks=["chat"])
    rec = reconcile([failed], _dynamo_plans())
    assert rec["ok"] is False
    assert [(m["host"], m["service"], m["reason"]) for m in rec["missing"]] == [
        ("dynamo-a", "dynamo-frontend", "failed verification: chat")
    ]


def test_the_markdown_lists_how_unbenchmarked_services_are_verified() -> None:
    fleet = Fleet(rows=[], concurrencies=[], slow_margin=0.2)
    fleet.reconciliation = reconcile([_passed("dynamo-a", "dynamo-frontend")], _dynamo_plans())
    lines = render_markdown(fleet)
    assert lines[-1] == "**expected 1, serving 1**"
    assert (
        "- not benchmarked: dynamo-b/mocker-b: a Dynamo worker: verified through its frontend "
        "dynamo-a/dynamo-frontend (and its health gate)" in lines
    )
    assert not any(line.startswith("- MISSING") for line in lines)


def test_a_service_with_verify_disabled_is_listed_not_missing() -> None:
    services = make_plan([{**CPU, "verify": {"enabled": False}}], NO_GPU).services
    rec = reconcile([], {"spark-01": services})
    assert rec["line"] == "expected 0, serving 0"
    [entry] = rec["not_benchmarked"]
    assert (entry["host"], entry["service"]) == ("spark-01", "standin")
    assert entry["verified"] == "verify.enabled is false: verified by its health gate only"
