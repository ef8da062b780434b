"""The benchmark's happy path against the REAL stand-in server (llama.cpp's llama-server, tiny model).

Small sweeps on purpose (concurrency 1 and 4, few prompts, short outputs): the machine is shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.run import BenchConfig, run_benchmark

ROOT = Path(__file__).resolve().parents[2]
StandinServer = Any  # conftest.StandinServer: a NamedTuple (base_url, model)
pytestmark = pytest.mark.lab


def _cfg(server: StandinServer, **over: Any) -> BenchConfig:
    base: dict[str, Any] = {
        "base_url": server.base_url,
        "model": server.model,
        "service": "standin",
        "concurrency": [1, 4],
        "num_prompts": 8,
        "input_len": 48,
        "output_len": 16,
        "multi_turn_conversations": 6,
        "multi_turn_turns": 3,
        "multi_turn_input_len": 24,
        "multi_turn_output_len": 8,
        "shared_prefix_len": 96,
        "timeout_s": 60.0,
        "ready_timeout_s": 30.0,
    }
    base.update(over)
    return BenchConfig(**base)


def test_every_check_passes_on_the_real_server(standin_server: StandinServer) -> None:
    report = run_benchmark(_cfg(standin_server, thresholds={"max_error_rate": 0, "min_output_tps": {"4": 1}}))
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses == {
        "readiness": "pass",
        "chat": "pass",
        "json_schema": "pass",
        "multi_turn": "pass",
        "prefix_cache": "pass",
        "load": "pass",
    }, report["failures"]
    assert report["ok"] is True
    assert json.loads(json.dumps(report)) == report  # plain JSON
    for row in report["load"]:
        assert row["completed"] == 8 and row["errors"] == 0
        assert row["token_source"] == "usage"
        assert row["output_throughput"] > 0 and row["request_throughput"] > 0
        assert row["ttft_ms"]["p50"] > 0 and row["e2e_ms"]["p99"] >= row["e2e_ms"]["p50"]
        assert row["mean_input_tokens"] > 20  # calibrated prompts of about input_len tokens
    multi = report["multi_turn"]
    assert [t["turn"] for t in multi["per_turn"]] == [1, 2, 3]
    # Later turns resend the history: more prompt tokens, and llama.cpp reports cached ones.
    assert multi["per_turn"][2]["median_prompt_tokens"] > multi["per_turn"][0]["median_prompt_tokens"]
    assert multi["per_turn"][2]["median_cached_tokens"] is not None
    assert 0 < multi["cache_hit_rate"]["expected"] <= 1
    assert multi["cache_hit_rate"]["achieved"] is not None
    assert [t["status"] for t in report["thresholds"]] == ["pass", "pass", "pass"]


def test_ignore_eos_gives_fixed_output_lengths(standin_server: StandinServer) -> None:
    report = run_benchmark(_cfg(standin_server, checks=["load"], concurrency=[4], ignore_eos=True, output_len=24))
    row = report["load"][0]
    assert row["completed"] == 8
    assert row["mean_output_tokens"] == 24.0
    assert row["tpot_ms"]["p50"] is not None


def test_wrong_model_is_a_failed_readiness(standin_server: StandinServer) -> None:
    report = run_benchmark(_cfg(standin_server, model="Qwen/Qwen3-8B", checks=["readiness"]))
    check = report["checks"][0]
    assert check["status"] == "fail"
    assert "'Qwen/Qwen3-8B' is not served" in check["message"] and standin_server.model in check["message"]


def test_cli_with_the_system_python(standin_server: StandinServer, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    args = [python, str(ROOT / "bin" / "sparkfleet-bench"), "--base-url", standin_server.base_url]
    args += ["--model", standin_server.model, "--checks", "readiness,chat,load", "--concurrency", "1,4"]
    args += ["--num-prompts", "4", "--input-len", "32", "--output-len", "8", "--json-out", str(out)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "out tok/s" in done.stdout and done.stdout.rstrip().endswith("OK")
    report = json.loads(out.read_text())
    assert report["schema"] == "sparkfleet.benchmark/v1" and report["ok"] is True
    failing = subprocess.run(
        [*args, "--thresholds", '{"min_output_tps": {"4": 1e12}}'],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failing.returncode == 1
    assert "threshold min_output_tps@4" in failing.stdout


def test_module_through_ansible_in_check_mode(standin_server: StandinServer, tmp_path: Path) -> None:
    ansible = Path(sys.executable).parent / "ansible"
    if not ansible.exists():
        pytest.skip("ansible is not installed next to this Python")
    report_path = tmp_path / "bench.json"
    module_args = {
        "base_url": standin_server.base_url,
        "model": standin_server.model,
        "checks": ["readiness", "chat"],
        "report_path": str(report_path),
        "api_key": "sk-test-secret-value",
    }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    env.update(
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
    )
    args = [
        str(ansible),
        "localhost",
        "-i",
        str(inventory),
        "-m",
        "sparkfleet.fleet.llm_benchmark",
        "-a",
        json.dumps(module_args),
    ]
    for check_mode, written in ((True, False), (False, True)):
        done = subprocess.run(
            [*args, "--check"] if check_mode else args,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "sk-test-secret-value" not in done.stdout + done.stderr
        result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
        assert result["changed"] is False
        assert result["report"]["ok"] is True
        assert result["report_written"] is written
        assert report_path.exists() is written
    assert "sk-test-secret-value" not in report_path.read_text()
    assert oct(report_path.stat().st_mode & 0o777) == "0o644"
