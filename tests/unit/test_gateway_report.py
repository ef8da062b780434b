"""The gateway against the hosts (module_utils/sparkfleet/report/gateway.py) and its place in the fleet report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import gateway as rep_gw
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import write as rep_write
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.model import Row

from tests.conftest import FIXTURES

FLEET = FIXTURES / "reports" / "fleet"


def row(host: str, service: str, tps: dict[int, float], hit: float | None, model: str = "m", **kw: Any) -> Row:
    return Row(host=host, service=service, model=model, throughput=tps, cache_hit_rate=hit, benchmark_ok=True, **kw)


@pytest.mark.parametrize(
    ("service", "expected"),
    [("gateway:m", True), ("gateway:org/model-b", True), ("gateway-m", False), ("sglang-qwen3-8b", False)],
)
def test_is_gateway_row(service: str, expected: bool) -> None:
    assert rep_gw.is_gateway_row(row("h", service, {}, None)) is expected


@pytest.mark.parametrize(
    ("tps", "expected"),
    [({}, (None, None)), ({1: 10.0, 8: 50.0, 32: 40.0}, (50.0, 8)), ({1: 5.0, 8: 5.0}, (5.0, 1))],
)
def test_peak(tps: dict[int, float], expected: tuple[float | None, int | None]) -> None:
    assert rep_gw.peak(tps) == expected


def test_compare_sums_the_hosts_peaks_and_averages_their_hit_rates() -> None:
    rows = [
        row("a", "s", {1: 10.0, 8: 40.0}, 0.8),
        row("b", "s", {1: 12.0, 8: 60.0}, 0.6),
        row("c", "other", {1: 99.0}, 0.1, model="other-model"),
        row("d", "broken", {}, None, error="no report"),
        row("gw", "gateway:m", {1: 11.0, 8: 45.0, 16: 80.0}, 0.7),
    ]
    (c,) = rep_gw.compare(rows)
    assert (c.gateway, c.model, c.workers) == ("gw", "m", 2)
    assert (c.gateway_peak_tps, c.gateway_peak_concurrency, c.direct_sum_tps) == (80.0, 16, 100.0)
    assert c.throughput_ratio == pytest.approx(0.8)
    assert c.gateway_cache_hit == 0.7
    assert c.direct_cache_hit == pytest.approx(0.7)


def test_compare_without_direct_rows_or_measurements() -> None:
    (c,) = rep_gw.compare([row("gw", "gateway:m", {}, None)])
    assert c.workers == 0
    assert c.direct_sum_tps is None
    assert c.throughput_ratio is None
    assert rep_gw.table_cells(c) == ["gw", "m", "0", "n/a", "n/a", "n/a", "n/a", "n/a"]


def test_no_gateway_no_section() -> None:
    rows = [row("a", "s", {1: 1.0}, 0.5)]
    assert rep_gw.compare(rows) == []
    assert rep_gw.markdown_lines(rows) == []
    assert rep_gw.html_section(rows, str) == ""


def test_markdown_and_html_sections() -> None:
    rows = [row("a", "s", {8: 40.0}, 0.5), row("gw", "gateway:m", {8: 30.0}, 0.5)]
    lines = rep_gw.markdown_lines(rows)
    assert lines[0] == "## Through the gateway"
    assert "| gw | m | 1 | 30.0 @c8 | 40.0 | 0.75 | 50% | 50% |" in lines
    html = rep_gw.html_section([row("<x>", "gateway:m", {}, None)], lambda s: s.replace("<", "&lt;"))
    assert 'id="gateway"' in html
    assert "&lt;x>" in html


def _report(host: str, service: str, model: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FLEET / "spark-01" / "sglang-qwen3-8b.json").read_text())
    data = copy.deepcopy(data)
    data.update(host=host, service=service, model=model)
    return data


def test_the_fleet_report_carries_the_gateway_section(tmp_path: Path) -> None:
    model = _report("spark-01", "x", "m")["model"] or "m"
    for host, service in [("spark-01", "sglang-qwen3-8b"), ("spark-02", "sglang-qwen3-8b"), ("gw", f"gateway:{model}")]:
        path = tmp_path / "run" / host / f"{service.replace(':', '-').replace('/', '_')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_report(host, service, model)))
    result = rep_write.generate(
        inputs=[str(tmp_path / "run")],
        dest=str(tmp_path / "run"),
        expected=[],
        profiles={},
        slow_margin=0.2,
        run_id="t",
        generated_at="",
        latest_link=None,
        check_mode=False,
    )
    md = result["markdown_lines"]
    start = md.index("## Through the gateway")
    assert md.index("## Failures (0)") > start
    table = [line for line in md[start:] if line.startswith("| gw |")]
    assert len(table) == 1
    assert "| 2 |" in table[0]
    assert "0.50" in table[0]  # one host's peak against the sum of two identical hosts
    assert 'id="gateway"' in (tmp_path / "run" / "fleet-report.html").read_text()


def test_a_report_without_a_gateway_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "run" / "spark-01" / "s.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_report("spark-01", "s", "m")))
    result = rep_write.generate(
        inputs=[str(tmp_path / "run")],
        dest=str(tmp_path / "run"),
        expected=[],
        profiles={},
        slow_margin=0.2,
        run_id="",
        generated_at="",
        latest_link=None,
        check_mode=True,
    )
    assert not any("gateway" in line for line in result["markdown_lines"])
