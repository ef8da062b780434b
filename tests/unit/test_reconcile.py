"""Nothing silently missing: the fleet report reconciles every host's plan with what is serving."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    assert [(h["host"], h["expected"], h["serving"], h["outcome"], h["serves"]) for h in rec["hosts"]] == [
        ("dynamo-a", 1, 1, None, "this run's version"),
        ("dynamo-b", 0, 0, None, None),
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


# ---------------------------------------------------------------- a rollout stopped at its canary: what answers

NOT_REACHED = "not reached: the rollout stopped before this host (it keeps serving its version)"
ROLLED_BACK = (
    "rolled back (standin failed its health gate: the unit is in state failed (it exited too often: systemd's "
    "start limit was hit)); the previous version serves again"
)
UP = {"healthy": True, "msg": "healthy: /v1/models 200", "models": ["sparkfleet/tiny-llama"]}
DOWN = {"healthy": False, "msg": "not healthy yet: /v1/models -> [Errno 111] Connection refused"}


def _three(
    outcomes: dict[str, str], answers: Mapping[str, Any] | None, rows: list[Row] | None = None
) -> dict[str, Any]:
    services = make_plan([CPU], NO_GPU).services
    plans = {h: services for h in ("spark-01", "spark-02", "station-01")}
    return reconcile(rows or [], plans, outcomes=outcomes, answers=answers)


def _hosts(rec: dict[str, Any]) -> dict[str, tuple[int, str, str]]:
    return {h["host"]: (h["serving"], h["serves"], h["why"]) for h in rec["hosts"]}


def test_a_rollout_stopped_at_its_canary_still_serves_everywhere() -> None:
    # The canary (station-01) failed and was rolled back, the other two were never reached: all three answer.
    outcomes = {"spark-01": NOT_REACHED, "spark-02": NOT_REACHED, "station-01": ROLLED_BACK}
    answers = {h: {"standin": UP} for h in ("spark-01", "spark-02", "station-01")}
    rec = _three(outcomes, answers)
    assert rec["line"] == "expected 3, serving 3 (1 rolled back, 2 not reached)"
    assert rec["ok"] is True
    assert rec["missing"] == []
    assert rec["serving_other_version"] == {"rolled back": 1, "not reached": 2}
    assert _hosts(rec) == {
        "spark-01": (1, "the previous version", "not reached"),
        "spark-02": (1, "the previous version", "not reached"),
        "station-01": (1, "the previous version", "rolled back"),
    }
    assert rec["hosts"][0]["models"] == ["sparkfleet/tiny-llama"]
    assert rec["hosts"][2]["outcome"] == ROLLED_BACK  # the whole outcome is kept for the table's last column


def test_updated_rolled_back_not_reached_and_down_each_say_what_they_serve() -> None:
    services = make_plan([CPU], NO_GPU).services
    plans = {h: services for h in ("a-updated", "b-rolled-back", "c-not-reached", "d-down", "e-unreachable")}
    outcomes = {
        "a-updated": "updated",
        "b-rolled-back": ROLLED_BACK,
        "c-not-reached": NOT_REACHED,
        "d-down": NOT_REACHED,
        "e-unreachable": "the host failed or was unreachable before verification",
    }
    answers = {
        "a-updated": {"standin": UP},
        "b-rolled-back": {"standin": UP},
        "c-not-reached": {"standin": UP},
        "d-down": {"standin": DOWN},
    }  # e-unreachable never answered the probe
    # The rolled-back host's failed benchmark belongs to the version that no longer serves.
    rows = [_passed("a-updated", "standin"), Row(host="b-rolled-back", service="standin", failed_checks=["chat"])]
    rec = reconcile(rows, plans, outcomes=outcomes, answers=answers)
    assert rec["line"] == "expected 5, serving 3 (1 rolled back, 1 not reached; 0 skipped by choice, 2 missing)"
    assert rec["ok"] is False
    assert _hosts(rec) == {
        "a-updated": (1, "this run's version", "updated"),
        "b-rolled-back": (1, "the previous version", "rolled back"),
        "c-not-reached": (1, "the previous version", "not reached"),
        "d-down": (0, "nothing", "not reached; down"),
        "e-unreachable": (0, "unknown", "down or unreachable"),
    }
    reasons = {m["host"]: m["reason"] for m in rec["missing"]}
    assert reasons == {
        "d-down": "down: does not answer its health paths: not healthy yet: /v1/models -> [Errno 111] Connection "
        f"refused ({NOT_REACHED})",
        "e-unreachable": "down or unreachable: the host failed or was unreachable before verification",
    }


def test_this_runs_version_that_answers_but_failed_its_benchmark_is_missing() -> None:
    failed = Row(host="spark-01", service="standin", benchmark_ok=True, failed_checks=["chat"])
    rec = _three({h: "updated" for h in ("spark-01", "spark-02", "station-01")},
                 {h: {"standin": UP} for h in ("spark-01", "spark-02", "station-01")},
                 [failed, _passed("spark-02", "standin"), _passed("station-01", "standin")])  # fmt: skip
    assert rec["line"] == "expected 3, serving 2 (0 skipped by choice, 1 missing)"
    assert [(m["host"], m["reason"]) for m in rec["missing"]] == [("spark-01", "failed verification: chat")]


def test_a_host_that_did_not_answer_the_probe_is_down_or_unreachable_whatever_it_did_before() -> None:
    outcomes = {"spark-01": NOT_REACHED, "spark-02": NOT_REACHED, "station-01": ROLLED_BACK}
    rec = _three(outcomes, {"spark-01": {"standin": UP}, "station-01": {"standin": UP}})
    assert rec["line"] == "expected 3, serving 2 (1 rolled back, 1 not reached; 0 skipped by choice, 1 missing)"
    [m] = rec["missing"]
    assert m["host"] == "spark-02"
    assert m["reason"] == (
        f"down or unreachable: the host did not answer the probe at the end of the run (its outcome: {NOT_REACHED})"
    )
    assert _hosts(rec)["spark-02"] == (0, "unknown", "down or unreachable")


def test_a_probe_result_of_any_shape_is_read_without_a_crash() -> None:
    answers = {"spark-01": {"standin": True}, "spark-02": {"standin": "yes"}, "station-01": {"standin": {"msg": 3}}}
    rec = _three({}, answers)
    assert rec["line"] == "expected 3, serving 1 (0 skipped by choice, 2 missing)"
    assert {m["host"] for m in rec["missing"]} == {"spark-02", "station-01"}


def test_the_markdown_shows_what_each_host_serves_and_why() -> None:
    outcomes = {"spark-01": NOT_REACHED, "spark-02": NOT_REACHED, "station-01": ROLLED_BACK}
    fleet = Fleet(rows=[], concurrencies=[], slow_margin=0.2)
    fleet.reconciliation = _three(outcomes, {h: {"standin": UP} for h in outcomes})
    lines = render_markdown(fleet)
    assert lines[-1] == "**expected 3, serving 3 (1 rolled back, 2 not reached)**"
    assert "| host | expected | serving | serves | why | this run |" in lines
    assert f"| spark-01 | 1 | 1 | the previous version (sparkfleet/tiny-llama) | not reached | {NOT_REACHED} |" in lines
    assert not any(line.startswith("- MISSING") for line in lines)


def test_without_a_probe_the_benchmark_is_the_evidence_as_before() -> None:
    # site.yml probes nothing: a rolled-back host without a passing benchmark is missing, with its outcome.
    rec = _three({"station-01": ROLLED_BACK}, None, [_passed("spark-01", "standin"), _passed("spark-02", "standin")])
    assert rec["line"] == "expected 3, serving 2 (0 skipped by choice, 1 missing)"
    assert rec["probed"] is False
    assert [(m["host"], m["reason"]) for m in rec["missing"]] == [("station-01", ROLLED_BACK)]
    assert _hosts(rec)["station-01"] == (0, "not verified", "rolled back")  # not known to answer, nor not to
