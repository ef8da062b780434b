"""A real OpenAI-compatible server on the GPU, then the project's benchmark against it.

The server is `transformers serve` (the one that runs on the device machine: no Docker, no network) with a
randomly initialised model of Qwen3-8B's shape in bf16 whose every token decodes to a visible word
(lab/gpu/make_random_model.py, lab/gpu/visible_tokenizer.py): chat replies and streams carry text, so chat,
TTFT and the JSON-schema check measure something. The benchmark is llm_benchmark's own code
(plugins/module_utils/sparkfleet/bench/), the fleet report the report code (.../report/).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import gpu
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.run import (
    BenchConfig,
    format_summary,
    run_benchmark,
    write_report,
)
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.write import generate

from tests.conftest import ROOT
from tests.gpu.conftest import ON_CPU, Server, env

pytestmark = pytest.mark.gpu

SERVICE = "transformers-serve"
# Memory bandwidth by GPU, vendor datasheets (GB/s). group_vars/all/profiles.yml has one figure per profile, and
# hopper's is the H100 SXM's 3350; the fleet report of an H200 is computed with the H200's own 4800.
BANDWIDTH_GBPS = {"H200": 4800.0, "H100": 3350.0}


def _gpu_facts() -> dict[str, Any]:
    if ON_CPU:
        return {"profile": "none", "serving_gpu": None}
    facts: dict[str, Any] = gpu.detect(gpu.system_probe()).facts
    return facts


def host_label(facts: dict[str, Any]) -> str:
    serving = facts.get("serving_gpu") or {}
    for word in BANDWIDTH_GBPS:
        if gpu.name_matches(str(serving.get("name", "")), word):
            return f"{word.lower()}-device"
    return "cpu-local" if ON_CPU else "gpu-device"


def profiles_for(facts: dict[str, Any]) -> dict[str, Any]:
    """The project's profiles, with the detected GPU's own bandwidth in its profile (see BANDWIDTH_GBPS)."""
    profiles: dict[str, Any] = yaml.safe_load((ROOT / "group_vars/all/profiles.yml").read_text())["sparkfleet_profiles"]
    serving = facts.get("serving_gpu") or {}
    profile = facts.get("profile")
    for word, gbps in BANDWIDTH_GBPS.items():
        if profile in profiles and gpu.name_matches(str(serving.get("name", "")), word):
            profiles[profile] = {**profiles[profile], "memory_bandwidth_gbps": gbps}
    return profiles


def _post(url: str, payload: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    req = urllib.request.Request(  # noqa: S310 - a local URL
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        body: dict[str, Any] = json.loads(resp.read())
    return body


def visible(text: str) -> int:
    return sum(1 for c in text if c.isalnum())


def test_chat_reply_is_visible_text(server: Server) -> None:
    body = _post(
        server.base_url + "/v1/chat/completions",
        {"model": server.model, "max_tokens": 32, "messages": [{"role": "user", "content": "Say hello."}]},
    )
    content = body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] > 0
    assert visible(content) >= 20, f"the reply should be visible words, got {content!r}"


def test_stream_carries_content_chunks(server: Server) -> None:
    payload = {
        "model": server.model,
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Name three colours of the rainbow."}],
    }
    req = urllib.request.Request(  # noqa: S310 - a local URL
        server.base_url + "/v1/chat/completions",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    t0 = time.perf_counter()
    first: float | None = None
    text: list[str] = []
    with urllib.request.urlopen(req, timeout=300) as resp:  # noqa: S310
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    first = first or time.perf_counter()
                    text.append(piece)
    assert first is not None, "no content chunk arrived"
    assert len(text) >= 8 and visible("".join(text)) >= 10, text
    assert first - t0 < 60


def _bench_config(server: Server, facts: dict[str, Any]) -> BenchConfig:
    num_prompts = os.environ.get("SPARKFLEET_GPU_NUM_PROMPTS")
    return BenchConfig(
        base_url=server.base_url,
        model=server.model,
        engine="openai",
        service=SERVICE,
        host=host_label(facts),
        profile=str(facts.get("profile") or ""),
        checks=["readiness", "chat", "json_schema", "multi_turn", "load"],
        concurrency=[int(c) for c in env("SPARKFLEET_GPU_CONCURRENCY", "1,8,32,64").split(",")],
        num_prompts=int(num_prompts) if num_prompts else None,
        input_len=int(env("SPARKFLEET_GPU_INPUT_LEN", "256")),
        output_len=int(env("SPARKFLEET_GPU_OUTPUT_LEN", "32")),
        multi_turn_conversations=int(env("SPARKFLEET_GPU_MULTI_TURN_CONVERSATIONS", "8")),
        multi_turn_turns=int(env("SPARKFLEET_GPU_MULTI_TURN_TURNS", "3")),
        timeout_s=300.0,
        ready_timeout_s=120.0,
    )


def test_benchmark_sweep_and_fleet_report(server: Server, out_dir: Path) -> None:
    facts = _gpu_facts()
    cfg = _bench_config(server, facts)
    report = run_benchmark(cfg)
    report["sparkfleet_gpu_run"] = {  # how it was made; extra keys are allowed by the report contract
        "server": "transformers serve " + " ".join(str(a) for a in list(server.model_info.get("serve_argv") or [])[2:]),
        "model": {k: v for k, v in server.model_info.items() if k != "serve_argv"},
        "gpu": facts.get("serving_gpu"),
        "driver_version": facts.get("driver_version"),
        "cuda_version": facts.get("cuda_version"),
    }
    bench_dir = out_dir / "bench"
    write_report(report, str(bench_dir / cfg.host / f"{SERVICE}.json"))
    summary = format_summary(report)
    (out_dir / "benchmark.txt").write_text(summary + "\n")
    print(summary)

    meta = {
        "host": cfg.host,
        "service": SERVICE,
        "profile": cfg.profile,
        "model": cfg.model,
        "engine": "openai",
        "model_params_b": 8.19 if not ON_CPU else None,
        "model_dtype": "bf16" if not ON_CPU else None,
    }
    fleet = generate(
        inputs=[str(bench_dir)],
        dest=str(out_dir / "fleet"),
        expected=[meta],
        profiles=profiles_for(facts),
        slow_margin=0.2,
        run_id=report["started_at"],
        generated_at=report["started_at"],
        latest_link=None,
        check_mode=False,
    )
    print("\n".join(fleet["markdown_lines"]))

    checks = {c["name"]: c for c in report["checks"]}
    for name in ("readiness", "chat", "multi_turn", "load"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["chat"]["details"]["streaming"]["ttft_ms"] is not None
    assert checks["chat"]["details"]["non_streaming"]["content_chars"] > 0
    # transformers serve accepts response_format and ignores it (it logs "Ignoring unsupported fields"): the
    # check then fails on a reply of visible words that is not JSON. A server that constrains output passes.
    schema = checks["json_schema"]
    if schema["status"] != "pass":
        assert "not JSON" in schema["message"] or "does not match" in schema["message"], schema
        assert visible(schema["details"].get("reply", "")) > 0, schema
    levels = {int(e["concurrency"]): e for e in report["load"]}
    assert sorted(levels) == sorted(cfg.concurrency)
    for c, entry in levels.items():
        assert entry["errors"] == 0 and entry["completed"] == entry["num_requests"] > 0, (c, entry["error_samples"])
        assert entry["output_throughput"] > 0, c
        assert entry["ttft_ms"]["p50"] is not None, f"no TTFT at concurrency {c}: no content chunk arrived"
        assert entry["tpot_ms"]["p50"] is not None, c
    (row,) = fleet["rows"]
    assert row["host"] == cfg.host
    assert (out_dir / "fleet" / "fleet-report.html").stat().st_size > 1000
