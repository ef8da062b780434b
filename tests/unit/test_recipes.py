"""The two recipes of docs/development.md hold: a new engine is one entry in ENGINES plus its golden test, a new
benchmark check is one module in the registry (bench/checks) plus its test.

A fake check and a fake engine are registered in-process and must reach every reader (runner, thresholds, report,
module, CLI, docs generator) without another edit; nothing outside the registries restates them; the paths the
recipes name exist.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import checks as bench_checks
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import module as bench_module
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import run as bench_run
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import thresholds
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.checks import readiness_paths
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.checks.base import (
    Check,
    Context,
    Outcome,
    entry,
    global_threshold,
)
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import model as report_model
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service import model as service_model

from lab import gen_bench_docs
from tests.conftest import ROOT

CHECKS_DIR = ROOT / "plugins" / "module_utils" / "sparkfleet" / "bench" / "checks"
GOLDEN = ROOT / "tests" / "unit" / "golden"
# Where a hand-written list of engines or checks would be a second table (generated blocks excepted).
SCANNED = ("plugins", "roles", "lab", "bench", "bin", "playbooks", "docs", "group_vars", "inventories", "molecule")


# --- a new benchmark check -----------------------------------------------------------------------


def _module_files() -> set[str]:
    return {p.stem for p in CHECKS_DIR.glob("*.py")} - {"__init__", "base"}


def test_every_check_module_is_in_the_registry_and_back() -> None:
    registered = {check.run.__module__.rsplit(".", 1)[-1] for check in bench_checks.CHECKS}
    assert registered == _module_files()
    for stem in _module_files():
        module = getattr(bench_checks, stem)
        assert module.CHECK in bench_checks.CHECKS, f"{stem}.py defines CHECK but CHECKS does not list it"
        assert module.CHECK.name == module.NAME
    names = bench_checks.names()
    assert len(names) == len(set(names))
    entries = [name for check in bench_checks.CHECKS for name in check.entry_names]
    assert len(entries) == len(set(entries)), "two checks write report entries of the same name"
    keys = bench_checks.threshold_names()
    assert len(keys) == len(set(keys))


def test_the_registry_imports_each_check_module_by_name() -> None:
    """AnsiballZ bundles only what is imported statically: no discovery (pkgutil, importlib) in the package."""
    tree = ast.parse((CHECKS_DIR / "__init__.py").read_text())
    relative = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1]
    imported = {alias.name for node in relative if not node.module for alias in node.names}
    assert imported == _module_files()
    for path in CHECKS_DIR.glob("*.py"):
        text = path.read_text()
        assert "pkgutil" not in text and "importlib" not in text and "__import__" not in text, path


async def _fake_run(ctx: Context) -> Outcome:
    return Outcome(
        [
            entry("fake", "fail", "the fake check always fails", {"seen": ctx.s.model}),
            entry("fake_extra", "pass", "ok"),
        ],
        section={"value_ms": 7.0},
    )


def _fake_value(report: dict[str, Any]) -> float | None:
    return float(report["fake"]["value_ms"]) if report.get("fake") else None


FAKE_CHECK = Check(
    name="fake",
    run=_fake_run,
    description="C(fake) is registered by tests/unit/test_recipes.py and measures O(model) in C(value_ms).",
    entries=("fake", "fake_extra"),
    section="fake",
    section_empty=None,
    thresholds=(
        global_threshold(
            "fake", "max_fake_ms", kind="max", measure=_fake_value, missing="not measured", description="the fake value"
        ),
    ),
    summary=lambda section: [f"fake section: {section['value_ms']} ms"],
)


@pytest.fixture
def fake_check(monkeypatch: pytest.MonkeyPatch) -> Check:
    monkeypatch.setattr(bench_checks, "CHECKS", (*bench_checks.CHECKS, FAKE_CHECK))
    return FAKE_CHECK


def test_a_new_check_reaches_the_runner_the_report_and_the_summary(fake_check: Check) -> None:
    cfg = bench_run.BenchConfig(
        base_url="http://127.0.0.1:9", model="m", service="s", checks=["fake"], thresholds={"max_fake_ms": 5}
    )
    assert bench_run.validate_config(cfg) == []
    report = bench_run.run_benchmark(cfg)  # the fake check sends nothing: no server needed
    assert report["settings"]["checks"] == ["fake"]
    assert [(c["name"], c["status"]) for c in report["checks"]] == [("fake", "fail"), ("fake_extra", "pass")]
    assert report["fake"] == {"value_ms": 7.0}
    assert report["load"] == [] and report["multi_turn"] is None  # the other sections, empty, as before
    [threshold] = report["thresholds"]
    assert (threshold["name"], threshold["status"], threshold["measured"]) == ("max_fake_ms", "fail", 7.0)
    assert report["ok"] is False and report["failures"][0] == "fake: the fake check always fails"
    assert "fake section: 7.0 ms" in bench_run.format_summary(report)
    # The fleet report reads it like any other check.
    assert report_model.validate_report(report) == []
    row = report_model.row_from_report(report, "fake.json", None, {})
    assert row.failed_checks == ["fake", "max_fake_ms"]


def test_a_new_check_reaches_the_parameters_thresholds_module_and_cli(fake_check: Check) -> None:
    assert bench_run.BenchConfig(base_url="http://h:1", model="m").checks[-1] == "fake"
    assert bench_module.check_names()[-1] == "fake"
    assert bench_run.build_parser().parse_args(["--base-url", "http://h:1", "--model", "m"]).checks[-1] == "fake"
    assert "max_fake_ms" in thresholds.known_names()
    assert thresholds.validate({"max_fake_ms": 5}, [1]) == []
    assert thresholds.validate({"max_fake_ms": "slow"}, [1]) == ["thresholds.max_fake_ms must be a number, got 'slow'"]
    [skipped] = thresholds.evaluate({"max_fake_ms": 5}, {}, ["readiness"])
    assert skipped["status"] == "skip" and skipped["message"] == "the fake check was not run"
    problems = bench_run.validate_config(bench_run.BenchConfig(base_url="http://h:1", model="m", checks=["nope"]))
    assert any("choose from readiness, chat, json_schema, multi_turn, load, fake" in p for p in problems)


def test_a_new_check_reaches_the_generated_docs(fake_check: Check) -> None:
    rendered = gen_bench_docs.rendered()
    module_doc = rendered[gen_bench_docs.MODULE]
    assert "  - C(fake) is registered by tests/unit/test_recipes.py" in module_doc
    assert "choices: [readiness, chat, json_schema, multi_turn, load, fake]" in module_doc
    assert "C(max_fake_ms)" in module_doc
    row = "| `fake` | `fake`, `fake_extra` | `fake` | `max_fake_ms` | `plugins/module_utils/sparkfleet/bench/checks/"
    assert row in rendered[gen_bench_docs.DOCS]


def test_the_generated_docs_are_fresh() -> None:
    for path, text in gen_bench_docs.rendered().items():
        assert path.read_text() == text, f"{path} is stale: run python3 -m lab.gen_bench_docs"
    out = subprocess.run(
        [sys.executable, "-m", "lab.gen_bench_docs", "--check"], cwd=ROOT, capture_output=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_module_reads_its_choices_from_the_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """llm_benchmark's argument spec: the checks from the registry, any engine of ENGINES (checked at run time)."""
    from ansible_collections.sparkfleet.fleet.plugins.modules import llm_benchmark

    spec: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def capture(argument_spec: dict[str, Any], **_kw: Any) -> None:
        spec.update(argument_spec)
        raise Stop

    monkeypatch.setattr(llm_benchmark, "AnsibleModule", capture)
    with pytest.raises(Stop):
        llm_benchmark.main()
    assert spec["checks"]["choices"] == spec["checks"]["default"] == bench_checks.names()
    assert "choices" not in spec["engine"]
    # Every other option is a BenchConfig field that config_from_params passes through (the pacing ones are not
    # options).
    fields = {f.name for f in dataclasses.fields(bench_run.BenchConfig)} - {"ready_interval_s", "retry_backoff_s"}
    assert set(spec) - {"report_path", "fail_on_threshold"} == fields


# --- a new engine ----------------------------------------------------------------------------------


def test_every_engine_has_a_golden_unit() -> None:
    units = "\n".join(p.read_text() for p in GOLDEN.glob("*.service"))
    missing = [name for name in service_model.ENGINES if f"--label org.sparkfleet.engine={name} " not in units]
    assert missing == [], f"no golden unit renders {missing}: add an example to ENGINE_EXAMPLES (test_serving_golden)"


def test_the_service_model_reads_the_engine_table() -> None:
    [engine_field] = [f for f in service_model.FIELDS if f.name == "engine"]
    assert tuple(engine_field.choices) == tuple(service_model.ENGINES)


def test_the_benchmark_takes_every_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = dataclasses.replace(
        service_model.ENGINES["vllm"], name="fake-engine", default_port=7000, health_paths=("/ready", "/v1/models")
    )
    monkeypatch.setitem(service_model.ENGINES, "fake-engine", fake)
    for name, engine in service_model.ENGINES.items():
        cfg = bench_run.BenchConfig(base_url="http://h:1", model="m", engine=name)
        assert bench_run.validate_config(cfg) == [], name
        args = bench_run.build_parser().parse_args(["--base-url", "http://h:1", "--model", "m", "--engine", name])
        assert args.engine == name
        assert readiness_paths(name) == ([p for p in engine.health_paths if p != "/v1/models"] or ["/health"])
    assert readiness_paths("fake-engine") == ["/ready"]
    bad = bench_run.validate_config(bench_run.BenchConfig(base_url="http://h:1", model="m", engine="tgi"))
    assert any("engine must be one of the service model's engines" in p and "fake-engine" in p for p in bad)


def _hand_written_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a file outside its generated blocks."""
    out = []
    generated = False
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if "BEGIN generated" in line:
            generated = True
        elif "END generated" in line:
            generated = False
        elif not generated:
            out.append((number, line))
    return out


def _scanned_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for top in SCANNED:
        files += [
            p for p in (ROOT / top).rglob("*") if p.is_file() and p.suffix in (".py", ".yml", ".md", ".j2", ".sh")
        ]
    return [p for p in files if ".state" not in p.parts]


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w./-]){re.escape(name)}(?![\w-])")


def test_no_second_table_of_engines_or_checks() -> None:
    engines = [_word(name) for name in service_model.ENGINES]
    check_words = [_word(name) for name in bench_checks.names()]
    model_file = ROOT / "plugins" / "module_utils" / "sparkfleet" / "service" / "model.py"
    found = []
    for path in _scanned_files():
        if path == model_file or path.parent == CHECKS_DIR:
            continue
        for number, line in _hand_written_lines(path):
            if sum(1 for w in engines if w.search(line)) >= 3:
                found.append(f"{path.relative_to(ROOT)}:{number}: engines: {line.strip()[:100]}")
            if all(w.search(line) for w in check_words):
                found.append(f"{path.relative_to(ROOT)}:{number}: checks: {line.strip()[:100]}")
    assert found == [], "a list of engines or checks outside their one table:\n" + "\n".join(found)


# --- the recipes themselves --------------------------------------------------------------------------


def _recipes() -> str:
    text = (ROOT / "docs" / "development.md").read_text()
    start = text.index("## Recipes")
    return text[start : text.index("\n## ", start + 1)]


def test_the_recipes_name_files_that_exist() -> None:
    text = _recipes()
    assert "### Add an engine" in text and "### Add a benchmark check" in text
    paths = [p for p in re.findall(r"`([\w./<>-]+\.(?:py|md|service|txt))`", text) if "/" in p]
    assert len(paths) >= 8, paths
    for named in paths:
        candidates = [ROOT / named, ROOT / "plugins" / "module_utils" / "sparkfleet" / named]
        if "<" in named:  # a file the recipe adds: its folder exists
            candidates = [c.parent for c in candidates]
        assert any(c.exists() for c in candidates), f"docs/development.md names {named}, which does not exist"
    for module in re.findall(r"-m (lab\.\w+)", text):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
    for name in re.findall(r"`(ENGINE_EXAMPLES|ENGINES|CHECKS|ARG_BUILDERS)`", text):
        assert name in (ROOT / _defined_in(name)).read_text(), name


def _defined_in(name: str) -> str:
    return {
        "ENGINE_EXAMPLES": "tests/unit/test_serving_golden.py",
        "ENGINES": "plugins/module_utils/sparkfleet/service/model.py",
        "CHECKS": "plugins/module_utils/sparkfleet/bench/checks/__init__.py",
        "ARG_BUILDERS": "plugins/module_utils/sparkfleet/serving/render.py",
    }[name]
