"""The fleet report (module_utils/sparkfleet/report/) on hand-made benchmark reports (tests/fixtures/reports)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import contracts
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import html_page as rep_html
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import markdown as rep_md
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import model as rep_model
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import svg as rep_svg
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import write as rep_write

from tests.conftest import FIXTURES, ROOT

FLEET = FIXTURES / "reports" / "fleet"
SVG_NS = "{http://www.w3.org/2000/svg}"
PROFILES: dict[str, Any] = yaml.safe_load((ROOT / "group_vars/all/profiles.yml").read_text())["sparkfleet_profiles"]
HOSTS = ["spark-01", "spark-02", "spark-03", "station-01"]
EXPECTED = [{"host": h, "service": "sglang-qwen3-8b", "model_params_b": 8.2, "model_dtype": "bf16"} for h in HOSTS]


def fixture(host: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FLEET / host / "sglang-qwen3-8b.json").read_text())
    return data


def write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def fleet_of(files: list[Path], expected: list[dict[str, Any]] | None = None, margin: float = 0.2) -> rep_model.Fleet:
    return rep_model.build_fleet(
        files, EXPECTED if expected is None else expected, profiles=PROFILES, slow_margin=margin
    )


@pytest.fixture
def fleet() -> rep_model.Fleet:
    return fleet_of(rep_model.find_report_files([str(FLEET)]))


def svgs(page: str) -> list[ET.Element]:
    # Our own generated page, parsed to prove it is well-formed XML.
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]  # noqa: S314 - our own output


# ---------------------------------------------------------------- reading and validating


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda r: r.update(schema="sparkfleet.benchmark/v2"), "schema is 'sparkfleet.benchmark/v2'"),
        (lambda r: r.pop("host"), "'host' must be a non-empty string"),
        (lambda r: r.update(service=""), "'service' must be a non-empty string"),
        (lambda r: r.update(ok="yes"), "'ok' must be true or false"),
        (lambda r: r.update(load={}), "'load' must be a list"),
        (lambda r: r["load"][0].update(concurrency="8"), "load[0] must be an object with an integer 'concurrency'"),
        (lambda r: r["load"][1].update(concurrency=True), "load[1] must be an object"),
    ],
)
def test_validate_report_names_the_problem(mutate: Any, problem: str) -> None:
    report = copy.deepcopy(fixture("spark-01"))
    mutate(report)
    assert any(problem in p for p in rep_model.validate_report(report)), rep_model.validate_report(report)


def test_fixtures_follow_the_schema() -> None:
    for host in HOSTS:
        assert rep_model.validate_report(fixture(host)) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not JSON"), ("[1, 2]", "not a JSON object"), ('{"schema": "x"}', "not a sparkfleet.benchmark/v1")],
)
def test_load_report_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path / "bad.json", content)
    with pytest.raises(rep_model.ReportError, match=re.escape(message)):
        rep_model.load_report(path)


def test_find_report_files_skips_our_outputs_and_missing_paths(tmp_path: Path) -> None:
    write(tmp_path / "h1" / "svc.json", fixture("spark-01"))
    write(tmp_path / "fleet-report.json", {"schema": contracts.FLEET_SCHEMA})
    found = rep_model.find_report_files([str(tmp_path), str(tmp_path / "h1" / "svc.json"), str(tmp_path / "nope")])
    assert [p.name for p in found] == ["svc.json"]


# ---------------------------------------------------------------- the decode ceiling


@pytest.mark.parametrize(
    ("bandwidth", "params_b", "dtype", "expected"),
    [
        (273, 8.2, "bf16", 273 / 16.4),  # Spark, 8B BF16: 16.6 tok/s per user
        (273, 8.0, "fp8", 273 / 8.0),
        (8000, 8.2, "BF16", 8000 / 16.4),  # dtype is case-insensitive
        (273, 70.0, "fp4", 273 / 35.0),
        (None, 8.2, "bf16", None),  # profile none / generic_nvidia: bandwidth unknown
        (273, None, "bf16", None),
        (273, 8.2, None, None),
        (273, 8.2, "q5_k_m", None),  # unknown dtype: no guess
        (273, 0.0, "bf16", None),
    ],
)
def test_ceiling(bandwidth: float | None, params_b: float | None, dtype: str | None, expected: float | None) -> None:
    got = rep_model.ceiling_tps_per_user(bandwidth, params_b, dtype)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_ceiling_percentage_uses_the_lowest_concurrency_per_user_rate(fleet: rep_model.Fleet) -> None:
    row = {r.host: r for r in fleet.rows}["spark-01"]
    per_user_c1 = fixture("spark-01")["load"][0]["per_user_output_tps"]["p50"]
    assert row.decode_concurrency == 1
    assert row.decode_tps_per_user == per_user_c1
    assert row.ceiling_pct == pytest.approx(100 * per_user_c1 / (273 / 16.4))


def test_no_ceiling_without_model_size(tmp_path: Path) -> None:
    f = rep_model.build_fleet(
        [FLEET / "spark-01" / "sglang-qwen3-8b.json"],
        [{"host": "spark-01", "service": "sglang-qwen3-8b"}],
        profiles=PROFILES,
    )
    assert f.rows[0].ceiling_pct is None
    assert "| n/a |" in "\n".join(rep_md.render_markdown(f))


# ---------------------------------------------------------------- rows, failures, flags


def test_rows_status_and_numbers(fleet: rep_model.Fleet) -> None:
    by_host = {r.host: r for r in fleet.rows}
    assert [r.host for r in fleet.rows] == HOSTS
    assert {h: r.status for h, r in by_host.items()} == {
        "spark-01": "PASS",
        "spark-02": "PASS",
        "spark-03": "FAIL",
        "station-01": "PASS",
    }
    s3 = by_host["spark-03"]
    raw = fixture("spark-03")
    assert s3.throughput == {e["concurrency"]: e["output_throughput"] for e in raw["load"]}
    assert s3.p90_ttft_ms == raw["load"][-1]["ttft_ms"]["p90"]
    assert s3.p90_ttft_concurrency == 32
    assert s3.cache_hit_rate == raw["multi_turn"]["cache_hit_rate"]["achieved"]
    assert s3.failed_checks == ["streaming", "max_p90_ttft_ms@32", "max_error_rate@32"]
    assert fleet.concurrencies == [1, 8, 32]


def test_slow_host_is_flagged_against_its_peers_only(fleet: rep_model.Fleet) -> None:
    by_host = {r.host: r for r in fleet.rows}
    assert by_host["spark-02"].slow_at == [1, 8, 32]
    assert [h for h, r in by_host.items() if r.flagged] == ["spark-02"]  # the Station is not a Spark's peer
    assert len(by_host["spark-02"].flags) == 1
    assert "26% below" in by_host["spark-02"].flags[0]


@pytest.mark.parametrize(("margin", "flagged"), [(0.1, True), (0.25, True), (0.3, False)])
def test_slow_margin_is_configurable(margin: float, flagged: bool) -> None:
    f = fleet_of(rep_model.find_report_files([str(FLEET)]), margin=margin)
    assert {r.host: r.flagged for r in f.rows}["spark-02"] is flagged


def test_group_of_one_is_never_slow(tmp_path: Path) -> None:
    slow = fixture("spark-02")
    f = fleet_of([write(tmp_path / "a.json", slow), FLEET / "station-01" / "sglang-qwen3-8b.json"], expected=[])
    assert not any(r.flagged for r in f.rows)


def test_missing_report_becomes_a_fail_row_with_the_reason(fleet: rep_model.Fleet) -> None:
    expected: list[dict[str, Any]] = [
        *EXPECTED,
        {"host": "spark-04", "service": "svc", "error": "llm_benchmark failed: connection refused"},
    ]
    f = fleet_of(rep_model.find_report_files([str(FLEET)]), expected=expected)
    row = {r.host: r for r in f.rows}["spark-04"]
    assert row.status == "FAIL"
    assert "spark-04/svc: llm_benchmark failed: connection refused" in f.failures
    assert rep_model.summary(f)["failed_hosts"] == ["spark-03", "spark-04"]


def test_broken_file_is_a_fail_row_and_a_warning_not_a_crash(tmp_path: Path) -> None:
    bad = write(tmp_path / "h" / "broken.json", '{"schema": "sparkfleet.benchmark/v1", "host": 1}')
    f = fleet_of([FLEET / "spark-01" / "sglang-qwen3-8b.json", bad], expected=[])
    assert [r.status for r in f.rows] == ["PASS", "FAIL"]
    assert len(f.warnings) == 1
    assert "broken.json" in f.warnings[0]


def test_ok_false_without_failures_still_fails(tmp_path: Path) -> None:
    r = fixture("spark-01")
    r["ok"] = False
    f = fleet_of([write(tmp_path / "x.json", r)], expected=[])
    assert f.rows[0].status == "FAIL"
    assert f.failures == ["spark-01/sglang-qwen3-8b: the benchmark reported ok=false without naming a failure"]


def test_failed_check_without_failure_text_is_listed(tmp_path: Path) -> None:
    r = fixture("spark-01")
    r["checks"][1]["status"] = "fail"
    f = fleet_of([write(tmp_path / "x.json", r)], expected=[])
    assert f.rows[0].status == "FAIL"
    assert f.failures == ["spark-01/sglang-qwen3-8b: failed models"]


def test_duplicate_reports_keep_the_later_one(tmp_path: Path) -> None:
    old, new = fixture("spark-01"), fixture("spark-01")
    old["started_at"], new["started_at"] = "2026-11-22T10:00:00+00:00", "2026-11-23T10:00:00+00:00"
    new["load"][0]["output_throughput"] = 42.0
    f = fleet_of([write(tmp_path / "b.json", new), write(tmp_path / "a.json", old)], expected=[])
    assert len(f.rows) == 1
    assert f.rows[0].throughput[1] == 42.0
    assert "two reports for spark-01/sglang-qwen3-8b" in f.warnings[0]


def test_not_reported_checks_are_flags(tmp_path: Path) -> None:
    r = fixture("spark-01")
    r["checks"][5]["status"] = "not_reported"
    f = fleet_of([write(tmp_path / "x.json", r)], expected=[])
    assert f.rows[0].status == "PASS"
    assert f.flags == ["spark-01/sglang-qwen3-8b: not reported by the server: cache_report"]


def test_null_and_nan_numbers_are_not_shown_as_numbers(tmp_path: Path) -> None:
    r = fixture("spark-01")
    r["multi_turn"]["cache_hit_rate"]["achieved"] = None
    r["load"][2]["ttft_ms"]["p90"] = float("nan")
    f = fleet_of([write(tmp_path / "x.json", r)], expected=[])
    assert f.rows[0].cache_hit_rate is None
    assert f.rows[0].p90_ttft_ms is None


# ---------------------------------------------------------------- Markdown


def test_markdown_table_failures_flags(fleet: rep_model.Fleet) -> None:
    lines = rep_md.render_markdown(fleet)
    table = [ln for ln in lines if ln.startswith("|")]
    assert table[0] == (
        "| host | service | result | profile | model | tok/s c1 | tok/s c8 | tok/s c32 "
        "| p90 TTFT | cache hit | decode vs ceiling | failed checks |"
    )
    assert len(table) == 2 + len(HOSTS)
    assert all(ln.count(" | ") == table[0].count(" | ") for ln in table[2:])
    assert "| spark-02 | sglang-qwen3-8b | PASS (slow) | dgx_spark |" in "\n".join(table)
    assert lines.index("## Failures (3)") < lines.index("## Flags (1)")
    assert "- spark-03/sglang-qwen3-8b: check streaming: 3 streams cut before [DONE]" in lines
    assert "3 of 4 services passed." in lines


def test_markdown_escapes_pipes_and_newlines(tmp_path: Path) -> None:
    r = fixture("spark-01")
    r["model"] = "evil|model\nname"
    f = fleet_of([write(tmp_path / "x.json", r)], expected=[])
    row = next(ln for ln in rep_md.render_markdown(f) if ln.startswith("| spark-01"))
    assert "evil\\|model name" in row
    assert row.count(" | ") == rep_md.render_markdown(f)[4].count(" | ")


# ---------------------------------------------------------------- HTML and SVG


def test_html_is_self_contained(fleet: rep_model.Fleet) -> None:
    page = rep_html.render_html(fleet)
    assert "<script" not in page.lower()
    assert re.findall(r"(?:src|href)\s*=", page) == []
    assert re.findall(r"https?://", page) == ["http://"] * page.count('xmlns="http://www.w3.org/2000/svg"')
    assert "@import" not in page and "url(" not in page


def test_svgs_are_well_formed_with_one_polyline_per_host(fleet: rep_model.Fleet) -> None:
    plots = svgs(rep_html.render_html(fleet))
    assert [p.get("id") for p in plots] == ["throughput-plot", "ttft-plot"]
    lines = plots[0].findall(f"{SVG_NS}polyline")
    assert sorted(p.get("data-host") or "" for p in lines) == HOSTS
    for p in lines:  # one point per concurrency level, all inside the plot
        pts = [tuple(map(float, xy.split(","))) for xy in (p.get("points") or "").split()]
        assert len(pts) == 3
        assert all(0 <= x <= 1100 and 0 <= y <= 400 for x, y in pts)
    boxes = plots[1].findall(f"{SVG_NS}g")
    assert sorted(b.get("data-host") or "" for b in boxes) == HOSTS
    assert all(len(b.findall(f"{SVG_NS}rect")) == 1 for b in boxes)


def test_flagged_host_is_marked_in_plots_and_table(fleet: rep_model.Fleet) -> None:
    page = rep_html.render_html(fleet)
    plots = svgs(page)
    flagged = {p.get("data-host"): p.get("data-flagged") for p in plots[0].findall(f"{SVG_NS}polyline")}
    assert flagged == {"spark-01": "false", "spark-02": "true", "spark-03": "false", "station-01": "false"}
    slow_line = next(p for p in plots[0].findall(f"{SVG_NS}polyline") if p.get("data-host") == "spark-02")
    assert slow_line.get("stroke-dasharray")
    legend = [t.text for t in plots[0].iter(f"{SVG_NS}text") if "flagged" in (t.get("class") or "")]
    assert legend == ["spark-02/sglang-qwen3-8b \u2691 slow"]
    assert page.count('<tr class="flagged" data-flagged="true">') == 1
    assert re.search(r'<tr class="flagged" data-flagged="true"><td class="nowrap">spark-02<br>', page)


def test_log_axis_only_when_values_span_more_than_20x(fleet: rep_model.Fleet, tmp_path: Path) -> None:
    assert "output tokens/s (log scale)" in rep_svg.svg_throughput(fleet)  # 9.4 to 4,630 tok/s
    files = []
    for h in ("spark-01", "spark-02"):
        r = fixture(h)
        r["load"] = r["load"][1:]  # c8 and c32 only: 63 to 265 tok/s
        files.append(write(tmp_path / h / "x.json", r))
    linear = rep_svg.svg_throughput(fleet_of(files, expected=[]))
    assert "log scale" not in linear
    ET.fromstring(linear)  # noqa: S314 - our own output, parsed to prove it is well-formed


def test_everything_from_a_report_is_escaped(tmp_path: Path) -> None:
    r = fixture("spark-01")
    r["host"] = 'h<1>&"2"'
    r["model"] = "<script>alert('x')</script>"
    r["failures"] = ["<img src=x onerror=alert(1)>"]
    r["ok"] = False
    f = fleet_of([write(tmp_path / "x.json", r)], expected=[])
    page = rep_html.render_html(f)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    for svg in svgs(page):  # still well-formed XML with hostile strings inside
        assert svg.tag == f"{SVG_NS}svg"
    assert [p.get("data-host") for p in svgs(page)[0].findall(f"{SVG_NS}polyline")] == ['h<1>&"2"']


def test_plots_without_data_say_so(tmp_path: Path) -> None:
    f = fleet_of([], expected=[{"host": "a", "service": "s", "error": "down"}])
    page = rep_html.render_html(f)
    plots = svgs(page)
    assert "no load data" in ET.tostring(plots[0], encoding="unicode")
    assert "no TTFT samples" in ET.tostring(plots[1], encoding="unicode")


@pytest.mark.parametrize(
    ("samples", "median", "outliers"),
    [([5.0], 5.0, []), ([1.0, 2.0, 3.0, 4.0, 100.0], 3.0, [100.0]), ([10.0, 10.0, 10.0, 10.0], 10.0, [])],
)
def test_box_stats(samples: list[float], median: float, outliers: list[float]) -> None:
    st = rep_svg._box_stats(samples)
    assert st["median"] == median
    assert st["outliers"] == outliers
    assert st["lo"] <= st["q1"] <= st["median"] <= st["q3"] <= st["hi"]


@pytest.mark.parametrize(
    ("value", "top", "step"), [(0, 1.0, 0.2), (4630, 5000, 1000), (93.2, 100, 20), (12, 12.5, 2.5), (0.7, 0.8, 0.2)]
)
def test_nice_max(value: float, top: float, step: float) -> None:
    got_top, got_step = rep_svg._nice_max(value)
    assert (got_top, got_step) == (pytest.approx(top), pytest.approx(step))


# ---------------------------------------------------------------- writing


def generate(tmp_path: Path, check_mode: bool = False, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "inputs": [str(FLEET)],
        "dest": str(tmp_path / "run1"),
        "expected": EXPECTED,
        "profiles": PROFILES,
        "slow_margin": 0.2,
        "run_id": "run1",
        "generated_at": "2026-11-23 10:15:00 UTC",
        "latest_link": str(tmp_path / "latest"),
        "check_mode": check_mode,
    }
    args.update(kw)
    return rep_write.generate(**args)


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    result = generate(tmp_path, check_mode=True)
    assert result["changed"] is True
    assert sorted(Path(p).name for p in result["written"]) == sorted(rep_model.OUTPUT_FILES)
    assert list(tmp_path.iterdir()) == []
    assert result["markdown_lines"][0] == "# sparkfleet fleet report (run1)"


def test_writes_three_files_and_latest_link_then_is_idempotent(tmp_path: Path) -> None:
    first = generate(tmp_path)
    assert first["changed"] is True
    for name in rep_model.OUTPUT_FILES:
        assert (tmp_path / "run1" / name).is_file()
    assert (tmp_path / "latest").is_symlink()
    assert (tmp_path / "latest" / "fleet-report.md").read_text() == first["markdown"]
    data = json.loads((tmp_path / "run1" / "fleet-report.json").read_text())
    assert data["schema"] == contracts.FLEET_SCHEMA
    assert (data["passed"], data["failed"], data["slow_hosts"]) == (3, 1, ["spark-02"])
    second = generate(tmp_path)
    assert second["changed"] is False
    assert second["written"] == []
    third = generate(tmp_path, dest=str(tmp_path / "run2"), run_id="run2")
    assert third["changed"] is True
    assert (tmp_path / "latest").resolve() == (tmp_path / "run2").resolve()


def test_report_dir_as_input_ignores_its_own_outputs(tmp_path: Path) -> None:
    run = tmp_path / "run1"
    write(run / "spark-01" / "svc.json", fixture("spark-01"))
    generate(tmp_path, inputs=[str(run)], expected=[])
    again = generate(tmp_path, inputs=[str(run)], expected=[])
    assert again["inputs"] == [str(run / "spark-01" / "svc.json")]
    assert again["changed"] is False


def test_latest_must_not_clobber_a_real_directory(tmp_path: Path) -> None:
    (tmp_path / "latest").mkdir()
    with pytest.raises(rep_model.ReportError, match="is not a symlink"):
        generate(tmp_path)


@pytest.mark.parametrize("margin", [-0.1, 1.0, 5])
def test_bad_margin_is_refused_before_anything_is_written(tmp_path: Path, margin: float) -> None:
    with pytest.raises(rep_model.ReportError, match="slow_margin must be"):
        generate(tmp_path, slow_margin=margin)
    assert list(tmp_path.iterdir()) == []


def test_expected_entries_need_host_and_service(tmp_path: Path) -> None:
    with pytest.raises(rep_model.ReportError, match=re.escape("expected[1] must be a dict with 'host' and 'service'")):
        generate(tmp_path, expected=[EXPECTED[0], {"host": "x"}])


def test_written_files_are_not_world_writable(tmp_path: Path) -> None:
    generate(tmp_path)
    for name in rep_model.OUTPUT_FILES:
        assert (tmp_path / "run1" / name).stat().st_mode & 0o777 == 0o644


def test_not_run_rows_are_neither_passes_nor_failures() -> None:
    f = fleet_of([], expected=[{"host": "a", "service": "s", "not_run": "under --check no load is generated"}])
    assert [r.status for r in f.rows] == ["NOT RUN"]
    assert f.failures == []
    assert f.flags == ["a/s: not run: under --check no load is generated"]
    data = rep_model.summary(f)
    assert (data["passed"], data["failed"], data["not_run"], data["failed_hosts"]) == (0, 0, 1, [])
    assert "0 of 1 services passed, 1 not run." in rep_md.render_markdown(f)
    assert '<span class="badge notrun">NOT RUN</span>' in rep_html.render_html(f)


# ---------------------------------------------------------------- hostile values everywhere in the page

SCRIPT = "<script>alert(1)</script>"
ATTR = '"onmouseover=alert(2) x="'
CLOSE = "</svg></table><script>alert(3)</script>"
JS_URL = "javascript:alert(4)"


class _Page(HTMLParser):
    """Every element, attribute and text of a page, as a browser's tokenizer sees them."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.ends: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((name, value or "") for name, value in attrs)

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _hostile_page(tmp_path: Path) -> str:
    host = f"spark{ATTR}"
    r = fixture("spark-01")
    r.update(host=host, service=CLOSE, model=SCRIPT, engine=ATTR, profile=JS_URL, ok=False, failures=[ATTR + SCRIPT])
    r["checks"] = [{"name": CLOSE, "status": "fail"}, {"name": SCRIPT, "status": "not_reported"}]
    g = fixture("spark-02")
    g.update(host=SCRIPT, service=f"gateway:{SCRIPT}", model=SCRIPT)
    reports = tmp_path / "reports"
    write(reports / "a.json", r)
    write(reports / "g.json", g)
    dest = tmp_path / "out" / "r2"
    history = tmp_path / "out" / contracts.HISTORY_FILE
    previous = {"schema": contracts.HISTORY_SCHEMA, "run_id": SCRIPT + ATTR, "record": {"commit": CLOSE},
                "passed": 1, "total": 1, "rows": [{"host": host, "service": CLOSE, "model": SCRIPT, "engine": ATTR,
                                                    "output_tps": {"1": 1e9, "8": 1e9, "32": 1e9}}]}  # fmt: skip
    write(history, json.dumps(previous) + "\n" + SCRIPT + "\n")
    rep_write.generate(
        inputs=[str(reports)],
        dest=str(dest),
        expected=[{"host": JS_URL, "service": ATTR, "error": CLOSE}],
        profiles=PROFILES,
        slow_margin=0.2,
        run_id=ATTR,
        generated_at=SCRIPT,
        latest_link=None,
        check_mode=False,
        plans={
            host: [{"name": CLOSE, "status": "deploy"}],
            JS_URL: [{"name": ATTR, "status": "skipped", "reason": SCRIPT}],
        },
        orphans={host: [SCRIPT]},
        outcomes={host: f"rolled back ({ATTR}); {SCRIPT}"},
        answers={host: {CLOSE: {"healthy": False, "msg": CLOSE + JS_URL}}},
        record={"inventory": [JS_URL], "limit": ATTR, "play": CLOSE},
        history=True,
    )
    return (dest / "fleet-report.html").read_text()


def test_hostile_values_stay_text_in_the_html(tmp_path: Path, fleet: rep_model.Fleet) -> None:
    page = _hostile_page(tmp_path)
    parsed, normal = _Page(page), _Page(rep_html.render_html(fleet))
    # No element and no attribute that the page would not have anyway: nothing was injected.
    assert "script" not in parsed.tags
    assert set(parsed.tags) <= set(normal.tags) | {"small"}
    names = {name for name, _value in parsed.attrs}
    assert not any(n.startswith("on") for n in names), names
    assert names <= {name for name, _value in normal.attrs}
    assert not any(n in ("href", "src", "action", "formaction", "xlink:href") for n in names)
    assert not any(v.strip().lower().startswith("javascript:") for _n, v in parsed.attrs)
    # Every element closes where the page closes it (no </svg> or </table> from a value).
    assert parsed.tags.count("svg") == parsed.ends.count("svg") == 2
    assert parsed.tags.count("table") == parsed.ends.count("table")
    # The values are all there, as text (and in the data- attributes, as values).
    text = "".join(parsed.text)
    for value in (SCRIPT, ATTR, CLOSE, JS_URL):
        assert value in text, value
    assert ("data-host", f"spark{ATTR}") in parsed.attrs
    assert f"rolled back ({ATTR}); {SCRIPT}" in text  # the host's outcome, in the table of what each host serves
    assert "history: line 2 skipped: not JSON" in text
    for svg in svgs(page):  # the plots are still well-formed XML
        assert svg.tag == f"{SVG_NS}svg"


def test_a_reconciliation_passed_in_is_escaped_too() -> None:
    # The gateway's rebuild passes the verify stage's reconciliation back in: its values are not trusted either.
    fleet = rep_model.Fleet(rows=[], concurrencies=[], slow_margin=0.2)
    fleet.reconciliation = {
        "expected": SCRIPT, "serving": ATTR, "ok": False, "line": CLOSE, "probed": True,
        "serving_other_version": {SCRIPT: 1}, "hosts": [{"host": ATTR, "outcome": SCRIPT}, "junk"],
        "missing": [{"host": SCRIPT, "service": ATTR, "reason": CLOSE}, 3], "orphans": "junk",
    }  # fmt: skip
    parsed = _Page(rep_html.render_html(fleet))
    assert "script" not in parsed.tags
    assert not any(n.startswith("on") for n, _v in parsed.attrs)
    text = "".join(parsed.text)
    assert f"{ATTR} / {SCRIPT}" in text and CLOSE in text
    lines = rep_md.render_markdown(fleet)  # the Markdown reads it without a crash too
    assert f"- MISSING: {SCRIPT}/{ATTR}: {CLOSE}" in lines
