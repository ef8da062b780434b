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
