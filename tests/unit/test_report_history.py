"""A record of every run (report/history.py): what produced the report, history.jsonl, slower than the last run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import contracts
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import history as rep_history
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import write as rep_write
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.model import ReportError

from tests.conftest import FIXTURES

FLEET = FIXTURES / "reports" / "fleet"
PLANS: dict[str, Any] = {
    h: [{"name": "sglang-qwen3-8b", "status": "deploy", "reason": ""}]
    for h in ("spark-01", "spark-02", "spark-03", "station-01")
}
RECORD = {
    "inventory": ["/lab/inventories/spark-lab/hosts.yml"],
    "limit": "spark-lab",
    "play": "Stage 4",
    "ansible": "2.19.4",
}


def scaled_copy(dest: Path, host: str, factor: float) -> Path:
    """The real fleet fixture, copied, with one host's output throughput multiplied by ``factor``."""
    shutil.copytree(FLEET, dest)
    path = dest / host / "sglang-qwen3-8b.json"
    data = json.loads(path.read_text())
    for level in data["load"]:
        level["output_throughput"] = level["output_throughput"] * factor
    path.write_text(json.dumps(data))
    return dest


def generate(reports: Path, run_id: str, check_mode: bool = False, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "inputs": [str(reports)],
        "dest": str(reports.parent / "out" / run_id),
        "expected": [],
        "profiles": {},
        "slow_margin": 0.2,
        "run_id": run_id,
        "generated_at": "2026-12-01 10:00:00 UTC",
        "latest_link": None,
        "check_mode": check_mode,
        "plans": PLANS,
        "record": RECORD,
        "history": True,
    }
    args.update(kw)
    return rep_write.generate(**args)


def history_lines(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "out" / contracts.HISTORY_FILE).read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_first_run_records_what_produced_it_and_starts_the_history(tmp_path: Path) -> None:
    result = generate(fleet_copy(tmp_path), "r1")
    lines = history_lines(tmp_path)
    assert [e["run_id"] for e in lines] == ["r1"]
    assert lines[0]["schema"] == contracts.HISTORY_SCHEMA
    assert lines[0]["record"]["limit"] == "spark-lab"
    assert sorted(lines[0]["record"]["plan_digests"]) == sorted(PLANS)
    md = result["markdown"]
    assert "## This run" in md
    assert "- inventory: /lab/inventories/spark-lab/hosts.yml" in md
    assert "- previous run: none kept" in md
    assert "4 host plans, 1 distinct" in md
    assert result["summary"]["previous_run"] is None
    # The reconciliation stays the report's last line (make demo prints it).
    assert result["markdown_lines"][-1].startswith("**expected 4")
    html = (tmp_path / "out" / "r1" / "fleet-report.html").read_text()
    assert 'id="run"' in html


def fleet_copy(tmp_path: Path) -> Path:
    return scaled_copy(tmp_path / "reports", "spark-01", 1.0)


def test_a_host_slower_than_the_last_run_is_flagged(tmp_path: Path) -> None:
    # Run 1: spark-01 at 1.5x its fixture throughput; run 2: the real fixture, a third lower.
    generate(scaled_copy(tmp_path / "before", "spark-01", 1.5), "r1", dest=str(tmp_path / "out" / "r1"))
    result = generate(scaled_copy(tmp_path / "reports", "spark-01", 1.0), "r2")
    assert result["summary"]["slower_than_last_run"] == ["spark-01"]
    row = next(r for r in result["rows"] if r["host"] == "spark-01")
    assert row["slower_at"] == [1, 8, 32]
    assert any("slower than the last run (r1)" in f and "-33%" in f for f in result["summary"]["flags"])
    assert "previous run: r1" in result["markdown"]
    assert "slower since then: spark-01" in result["markdown"]
    assert "(slower than last run)" in result["markdown"]
    # Hosts that kept their speed are not flagged.
    others = [r for r in result["rows"] if r["host"] != "spark-01"]
    assert all(r["slower_at"] == [] for r in others)
    assert [e["run_id"] for e in history_lines(tmp_path)] == ["r1", "r2"]


def test_within_the_margin_or_a_new_model_is_not_slower(tmp_path: Path) -> None:
    # 1.2x before: now 17% lower, inside the 20% margin.
    generate(scaled_copy(tmp_path / "before", "spark-01", 1.2), "r1", dest=str(tmp_path / "out" / "r1"))
    assert generate(fleet_copy(tmp_path), "r2")["summary"]["slower_than_last_run"] == []
    # 1.5x before, but the previous run served another model there: not comparable.
    generate(scaled_copy(tmp_path / "before2", "spark-01", 1.5), "r3", dest=str(tmp_path / "out" / "r3"))
    path = tmp_path / "out" / contracts.HISTORY_FILE
    entries = history_lines(tmp_path)
    for row in entries[-1]["rows"]:
        row["model"] = "another/model"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert generate(tmp_path / "reports", "r4")["summary"]["slower_than_last_run"] == []


def test_a_rebuild_of_the_same_run_replaces_its_line_and_keep_trims(tmp_path: Path) -> None:
    reports = fleet_copy(tmp_path)
    for run_id in ("r1", "r2", "r2", "r3"):
        generate(reports, run_id)
    assert [e["run_id"] for e in history_lines(tmp_path)] == ["r1", "r2", "r3"]
    generate(reports, "r4", history_keep=2)
    assert [e["run_id"] for e in history_lines(tmp_path)] == ["r3", "r4"]
    with pytest.raises(ReportError, match="history_keep must be at least 1"):
        generate(reports, "r5", history_keep=0)


def test_check_mode_writes_no_history_and_lines_not_ours_are_skipped(tmp_path: Path) -> None:
    reports = fleet_copy(tmp_path)
    result = generate(reports, "r1", check_mode=True)
    assert not (tmp_path / "out" / contracts.HISTORY_FILE).exists()
    assert str(tmp_path / "out" / contracts.HISTORY_FILE) in result["written"]
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / contracts.HISTORY_FILE).write_text('{"not": "ours"}\nnot json\n')
    result = generate(reports, "r1")
    assert len(result["warnings"]) == 2
    assert [e["run_id"] for e in history_lines(tmp_path)] == ["r1"]


def test_without_history_or_record_the_report_is_as_before(tmp_path: Path) -> None:
    result = generate(fleet_copy(tmp_path), "r1", history=False, record=None, plans=None)
    assert "## This run" not in result["markdown"]
    assert not (tmp_path / "out" / contracts.HISTORY_FILE).exists()


def test_git_state_of_a_checkout(tmp_path: Path) -> None:
    assert rep_history.git_state(str(tmp_path)) == {}
    assert rep_history.git_state(None) == {}
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a").write_text("1")
    subprocess.run([*git, "add", "a"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    state = rep_history.git_state(str(tmp_path))
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "a").write_text("2")
    assert rep_history.git_state(str(tmp_path))["dirty"] is True
    record = rep_history.run_record(RECORD, str(tmp_path), PLANS)
    assert record["commit"] == state["commit"] and record["limit"] == "spark-lab"


def test_plan_digests_follow_the_variables() -> None:
    same = rep_history.run_record(None, None, {"a": [{"name": "x", "port": 1}], "b": [{"port": 1, "name": "x"}]})
    assert same["plan_digests"]["a"] == same["plan_digests"]["b"]
    other = rep_history.run_record(None, None, {"a": [{"name": "x", "port": 2}]})
    assert other["plan_digests"]["a"] != same["plan_digests"]["a"]


# ---------------------------------------------------------------- a history.jsonl that is not all ours


def _valid(run_id: Any, **extra: Any) -> dict[str, Any]:
    return {"schema": contracts.HISTORY_SCHEMA, "run_id": run_id, "rows": [], "record": {}, **extra}


MALFORMED: list[tuple[str, str]] = [
    ("not json", "not JSON (Expecting value)"),
    ("[1, 2]", "JSON list, not an object"),
    ('"a string"', "JSON str, not an object"),
    ('{"schema": "someone.else/v1", "run_id": "x"}', f"not a {contracts.HISTORY_SCHEMA} line"),
    (json.dumps(_valid("")), "run_id must be a non-empty string of at most 200 characters"),
    (json.dumps(_valid("x" * 201)), "run_id must be a non-empty string of at most 200 characters"),
    (json.dumps(_valid(7)), "run_id must be a non-empty string"),
    (json.dumps(_valid("r", record=["commit"])), "record must be an object"),
    (json.dumps(_valid("r", record={"commit": {"sha": 1}})), "record.commit must be a string"),
    (json.dumps(_valid("r", passed=True)), "passed must be a count (an integer, 0 or more)"),
    (json.dumps(_valid("r", total="4")), "total must be a count"),
    (json.dumps(_valid("r", rows="spark-01")), "rows must be a list"),
    (json.dumps(_valid("r", rows=[["spark-01"]])), "rows[0] must be an object"),
    (json.dumps(_valid("r", rows=[{"host": 1}])), "rows[0].host must be a string"),
    (json.dumps(_valid("r", rows=[{"output_tps": [1.0]}])), "rows[0].output_tps must be an object of finite numbers"),
    (json.dumps(_valid("r", rows=[{"output_tps": {"1": "fast"}}])), "rows[0].output_tps must be an object"),
    (json.dumps(_valid("r", rows=[{"output_tps": {"1": float("nan")}}])),  # NaN: JSON that Python reads
     "rows[0].output_tps must be an object of finite numbers"),
    ('{"schema": "%s", "run_id": "r", "rows": [{"output_tps": {"1": %s}}]}' % (contracts.HISTORY_SCHEMA, "9" * 400),  # noqa: UP031 - braces of JSON
     "rows[0].output_tps must be an object of finite numbers"),
    ("[" * 100_000, "not JSON (nested too deeply)"),
    ("1" * 5000, "not JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "note"), MALFORMED, ids=[n.split("(")[0].strip() for _, n in MALFORMED])
def test_a_malformed_history_line_is_skipped_with_a_note(tmp_path: Path, line: str, note: str) -> None:
    path = tmp_path / contracts.HISTORY_FILE
    path.write_text(json.dumps(_valid("r0")) + "\n" + line + "\n" + json.dumps(_valid("r1")) + "\n")
    history = rep_history.load_history(path)
    assert [e["run_id"] for e in history.entries] == ["r0", "r1"]
    [got] = history.notes
    assert got.startswith(f"history: line 2 skipped: {note}"), got
    assert history.writable is True


def test_bad_lines_never_stop_the_report_and_their_notes_are_in_it(tmp_path: Path) -> None:
    reports = fleet_copy(tmp_path)
    generate(reports, "r1")
    path = tmp_path / "out" / contracts.HISTORY_FILE
    good = path.read_bytes()
    huge = json.dumps(_valid("huge", pad="x" * rep_history.HISTORY_MAX_LINE_BYTES)).encode()
    path.write_bytes(good + b"not json\n" + b"\xff\xfe{}\n" + huge + b"\n" + b'{"schema": 1}\n')
    result = generate(reports, "r2")
    assert result["warnings"] == [
        "history: line 2 skipped: not JSON (Expecting value)",
        "history: line 3 skipped: not UTF-8 text",
        f"history: line 4 skipped: {len(huge):,} bytes, longer than a line may be (1,048,576)",
        f"history: line 5 skipped: not a {contracts.HISTORY_SCHEMA} line",
    ]
    assert "- report input: history: line 2 skipped: not JSON (Expecting value)" in result["markdown_lines"]
    assert result["summary"]["previous_run"] == "r1"  # the good line still counts
    # The rewritten history keeps only its own lines.
    assert [e["run_id"] for e in history_lines(tmp_path)] == ["r1", "r2"]


def test_the_notes_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / contracts.HISTORY_FILE
    path.write_text("junk\n" * 500)
    history = rep_history.load_history(path)
    assert len(history.notes) == rep_history.HISTORY_MAX_NOTES + 1
    assert history.notes[-1] == f"history: {500 - rep_history.HISTORY_MAX_NOTES} more lines skipped"


def test_only_the_newest_part_of_a_huge_history_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [json.dumps(_valid(f"r{i:03d}")) + "\n" for i in range(100)]
    path = tmp_path / contracts.HISTORY_FILE
    path.write_text("".join(lines))
    budget = sum(len(x) for x in lines[-10:]) + 5  # the 10 newest lines and the end of one more
    monkeypatch.setattr(rep_history, "HISTORY_MAX_BYTES", budget)
    history = rep_history.load_history(path)
    assert [e["run_id"] for e in history.entries] == [f"r{i:03d}" for i in range(90, 100)]
    assert history.notes == [
        f"history: the file holds {path.stat().st_size:,} bytes; only its newest {budget:,} were read "
        "(the line numbers below count from there)"
    ]
    # A budget that ends exactly at a line's start keeps that line whole.
    monkeypatch.setattr(rep_history, "HISTORY_MAX_BYTES", budget - 5)
    assert len(rep_history.load_history(path).entries) == 10


def test_a_history_that_cannot_be_read_is_noted_and_left_alone(tmp_path: Path) -> None:
    reports = fleet_copy(tmp_path)
    (tmp_path / "out" / contracts.HISTORY_FILE).mkdir(parents=True)  # a directory where the file should be
    result = generate(reports, "r1")
    [note] = result["warnings"]
    assert note.startswith("history: ") and note.endswith("cannot be read (Is a directory); it is left as it is")
    assert (tmp_path / "out" / "r1" / "fleet-report.md").is_file()
    assert (tmp_path / "out" / contracts.HISTORY_FILE).is_dir()
    assert not any(w.endswith(contracts.HISTORY_FILE) for w in result["written"])
