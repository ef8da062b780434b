"""Tests of the bench helpers that need no lab: `.venv/bin/pytest bench/test_bench.py`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import ansible_overhead as ao
from bench import benchlib as bl
from bench import rerun_cpu as rc
from bench import rollback_outage as ro
from bench import sglang_client


@pytest.mark.parametrize(
    ("base_url", "host", "port", "url", "host_port"),
    [
        ("", "127.0.0.1", 30000, "http://127.0.0.1:30000", "127.0.0.1:30000"),
        ("", "::1", 8080, "http://[::1]:8080", "[::1]:8080"),
        ("", "[::1]", 8080, "http://[::1]:8080", "[::1]:8080"),
        ("", "localhost", 1, "http://localhost:1", "localhost:1"),
        ("http://127.0.0.1:9", "ignored", 5, "http://127.0.0.1:9", "http://127.0.0.1:9"),
    ],
)
def test_stubs_match_sglang_network_semantics(base_url: str, host: str, port: int, url: str, host_port: str) -> None:
    assert sglang_client.resolve_base_url(base_url, host, port) == url
    assert sglang_client.resolve_host_port(base_url, host, port) == host_port


def _read_response(sock: socket.socket) -> tuple[str, bytes]:
    """Read one chunked HTTP/1.1 response; returns (head, de-chunked body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, rest = buf.partition(b"\r\n\r\n")
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        body += rest[:size]
        rest = rest[size + 2 :]
        if size == 0:
            return head.decode(), body


@pytest.fixture
def fast_server() -> Iterator[int]:
    port = bl.free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "fast_sse_server.py"), "--port", str(port), "--chunks", "5"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        bl.wait_http_ok(f"http://127.0.0.1:{port}/health", 10)
        yield port
    finally:
        bl.stop_process(proc)


def test_fast_server_streams_k_chunks_usage_and_done_on_one_connection(fast_server: int) -> None:
    body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "one two three"}]})
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    with socket.create_connection(("127.0.0.1", fast_server), timeout=5) as sock:
        for _ in range(2):  # keep-alive: the second request on the same connection
            sock.sendall(request)
            head, payload = _read_response(sock)
            assert head.startswith("HTTP/1.1 200")
            assert "text/event-stream" in head
            events = [e[len("data: ") :] for e in payload.decode().split("\n\n") if e]
            assert events[-1] == "[DONE]"
            objs = [json.loads(e) for e in events[:-1]]
            content = [o["choices"][0]["delta"].get("content") for o in objs if o["choices"]]
            assert sum(1 for c in content if c) == 5
            assert objs[-1]["choices"] == []
            assert objs[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    status, stats = bl.http_get(f"http://127.0.0.1:{fast_server}/sfbench/stats")
    assert status == 200
    assert json.loads(stats)["requests"] == 2


def test_fast_server_non_streaming_and_404(fast_server: int) -> None:
    status, _ = bl.http_get(f"http://127.0.0.1:{fast_server}/nope")
    assert status == 404
    status, models = bl.http_get(f"http://127.0.0.1:{fast_server}/v1/models")
    assert status == 200
    assert json.loads(models)["data"][0]["id"] == "sfbench/fast-sse"


def test_http_get_refuses_non_loopback() -> None:
    with pytest.raises(bl.BenchError, match=r"only talk to 127\.0\.0\.1"):
        bl.http_get("http://10.0.0.1:80/health")


def test_pinned_process_runs_on_the_given_core() -> None:
    core = min(os.sched_getaffinity(0))
    fin = bl.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"], 30, cpus={core})
    assert fin.rc == 0
    assert fin.output.strip() == f"[{core}]"


def test_run_stops_a_command_past_its_limit() -> None:
    t0 = time.monotonic()
    with pytest.raises(bl.BenchError, match="ran past"):
        bl.run([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], 1.0)
    assert time.monotonic() - t0 < 10


def test_parse_sparkfleet_and_sglang(tmp_path: Path) -> None:
    fin = bl.Finished(["x"], 0, "", 1.5)
    spark = tmp_path / "s.json"
    spark.write_text(
        json.dumps(
            {
                "load": [
                    {
                        "output_throughput": 100.5,
                        "request_throughput": 2.0,
                        "tpot_ms": {"p50": 3.25},
                        "completed": 10,
                        "errors": 1,
                        "duration_s": 5.0,
                    }
                ]
            }
        )
    )
    r = bl.parse_sparkfleet(spark, fin)
    assert (r.output_throughput, r.median_tpot_ms, r.completed, r.errors) == (100.5, 3.25, 10, 1)
    sg = tmp_path / "g.jsonl"
    line = {
        "output_throughput": 50.0,
        "request_throughput": 1.0,
        "median_tpot_ms": 4.0,
        "completed": 9,
        "num_prompts": 10,
        "duration": 9.0,
        "total_input_tokens": 90,
        "total_output_tokens": 180,
    }
    sg.write_text(json.dumps({**line, "output_throughput": 1.0}) + "\n" + json.dumps(line) + "\n")
    g = bl.parse_sglang(sg, fin)  # the last line is this run's
    assert (g.output_throughput, g.median_tpot_ms, g.completed, g.errors) == (50.0, 4.0, 9, 1)
    with pytest.raises(bl.BenchError, match="wrote no"):
        bl.parse_sglang(tmp_path / "missing.jsonl", fin)
    with pytest.raises(bl.BenchError, match="no load"):
        (tmp_path / "empty.json").write_text("{}")
        bl.parse_sparkfleet(tmp_path / "empty.json", fin)


def test_ratio_and_median() -> None:
    assert bl.ratio(3.0, 2.0) == 1.5
    assert bl.ratio(1.0, 0.0) is None
    assert bl.ratio(None, 1.0) is None
    assert bl.median([3.0, None, 1.0, 2.0]) == 2.0
    assert bl.median([None]) is None


# --- ansible_overhead.py: the parts that need no lab ---------------------------------------------


def _task(name: str, start: str, end: str) -> dict[str, object]:
    return {"task": {"name": name, "duration": {"start": start, "end": end}}, "hosts": {}}


def test_overhead_benchmark_stage_is_the_union_of_benchmark_tasks() -> None:
    doc = {
        "plays": [
            {
                "tasks": [
                    _task("Serving | Write the unit", "2026-12-01T10:00:00.000000Z", "2026-12-01T10:00:05.000000Z"),
                    _task("Verify | Benchmark the service", "2026-12-01T10:00:10Z", "2026-12-01T10:00:20.000000Z"),
                    # Overlapping (another host's benchmark): counted once.
                    _task("Gateway | Benchmark through the gateway", "2026-12-01T10:00:15Z", "2026-12-01T10:00:25Z"),
                    _task("Verify | Benchmark the service", "2026-12-01T10:00:30Z", "2026-12-01T10:00:31Z"),
                    {"task": {"name": "Verify | Benchmark the service", "duration": {"start": "2026-12-01T10:00:40Z"}}},
                ]
            }
        ]
    }
    seconds, tasks = ao.bench_seconds(doc)
    assert seconds == pytest.approx(16.0)
    assert tasks == 5


def test_overhead_defaults_cfg_keeps_only_where_the_content_is(tmp_path: Path) -> None:
    out = tmp_path / "defaults.cfg"
    ao.write_defaults_cfg(Path(__file__).resolve().parent.parent / "ansible.cfg", out)
    text = out.read_text()
    assert "forks = 5" in text and "pipelining = false" in text and "ControlMaster=no" in text
    assert "fact_caching" not in text and "ControlPersist" not in text and "forks = 25" not in text
    line = next(ln for ln in text.splitlines() if ln.startswith("collections_path"))
    first = line.split("=", 1)[1].strip().split(os.pathsep)[0]
    assert Path(first).is_absolute() and (Path(first) / "ansible_collections").is_dir()


def test_overhead_report_prints_the_ratios_last() -> None:
    runs = [
        ao.RunResult("project", 1, 30.0, 2.0, 0, 0, 130),
        ao.RunResult("defaults", 1, 90.0, 3.0, 0, 0, 134),
        ao.RunResult("project", 16, 45.0, 20.0, 0, 0, 130),
        ao.RunResult("defaults", 16, 300.0, 25.0, 0, 0, 134),
    ]
    lines = ao.report(runs, [1, 16])
    assert lines[-4] == "defaults/project at  1 hosts: 3.00x total, 3.11x without the benchmark"
    assert lines[-2] == "time(16)/time(1), project: 1.50x total, 0.89x without the benchmark"
    assert lines[-1].startswith("time(16)/time(1), defaults:")


def test_overhead_refuses_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert ao.main(["--sizes", "1,x"]) == 2
    assert ao.main(["--sizes", "1,32"]) == 2
    assert "--sizes" in capsys.readouterr().err


def test_rollback_outage_is_from_the_first_failure_to_the_first_answer_after_the_last() -> None:
    samples = [(9.0, True), (10.5, True), (12.0, False), (13.0, True), (14.0, False), (20.0, False), (21.5, True)]
    got = ro.outage(samples, start=10.0)
    assert got == {"first_failure_s": 2.0, "answered_again_s": 11.5, "outage_s": 9.5}
    assert ro.outage([(11.0, True)], start=10.0)["outage_s"] == 0.0


# --- rerun_cpu.py: the parts that need no lab ------------------------------------------------------


def test_rerun_cpu_defaults_cfg_is_ansibles_real_defaults(tmp_path: Path) -> None:
    out = tmp_path / "defaults.cfg"
    rc.write_defaults_cfg(Path(__file__).resolve().parent.parent / "ansible.cfg", out)
    text = out.read_text()
    assert "forks = 5" in text and "pipelining = false" in text and "gathering = implicit" in text
    # No ssh_args: ssh keeps Ansible's default -C -o ControlMaster=auto -o ControlPersist=60s.
    assert "ssh_args" not in text and "ControlMaster" not in text and "fact_caching" not in text
    line = next(ln for ln in text.splitlines() if ln.startswith("collections_path"))
    assert Path(line.split("=", 1)[1].strip().split(os.pathsep)[0]).is_absolute()


def test_rerun_cpu_enables_its_callback_next_to_the_configs(tmp_path: Path) -> None:
    cfg = tmp_path / "a.cfg"
    cfg.write_text("[defaults]\ncallbacks_enabled = ansible.posix.profile_tasks\n")
    assert rc.enabled_callbacks(cfg) == f"ansible.posix.profile_tasks,{rc.CALLBACK_NAME}"
    cfg.write_text("[defaults]\nforks = 5\n")
    assert rc.enabled_callbacks(cfg) == rc.CALLBACK_NAME
    compile(rc.CALLBACK_SOURCE, "callback", "exec")
    assert f'CALLBACK_NAME = "{rc.CALLBACK_NAME}"' in rc.CALLBACK_SOURCE


def _doc(bench_cpu: float) -> dict[str, object]:
    task = {"path": "/x/roles/r/tasks/main.yml:3", "items": 0, "wall": 1.0, "changed": 0}
    return {
        "hosts": {"a": {"changed": 0}, "b": {"changed": 1}},
        "tasks": [
            {**task, "name": "R | Write", "results": 2, "cpu": 1.0},
            {**task, "name": "Verify | Benchmark the service", "results": 2, "cpu": bench_cpu, "wall": 30.0},
            {**task, "name": "R | Write", "results": 2, "cpu": 0.5, "items": 4},
        ],
    }


def test_rerun_cpu_summary_counts_results_and_the_benchmark_apart() -> None:
    run = rc.summarize("project", _doc(2.0), seconds=60.0, cpu=8.0, ssh_cpu=0.5)
    assert (run.hosts, run.results, run.items, run.changed) == (2, 6, 4, 1)
    assert run.cpu_per_host == 4.0 and run.results_per_host == 3.0
    assert (run.bench_cpu, run.bench_wall) == (2.0, 30.0)
    top = rc.top_tasks(run, 1)
    assert top[2].split()[:4] == ["2.00", "2", "0", "1"]
    assert top[4].split()[:4] == ["1.50", "4", "4", "2"] and "[roles/r/tasks/main.yml:3]" in top[4]


def test_rerun_cpu_report_prints_each_path_and_the_ratio_last() -> None:
    runs = [
        rc.summarize("project", _doc(1.0), seconds=60.0, cpu=6.0, ssh_cpu=0.0),
        rc.summarize("defaults", _doc(1.0), seconds=90.0, cpu=9.0, ssh_cpu=0.0),
    ]
    lines = rc.report(runs)
    assert lines[-3].startswith("project: controller CPU-s per host for a no-op rerun: fast path 3.00 (2.50 without")
    assert lines[-1] == "defaults/project controller CPU per host: 1.50x (4.50 vs 3.00 CPU-s/host; wall 1.50x)"
    assert rc.report(runs[:1])[-1].startswith("project: controller CPU-s per host for a no-op rerun: fast path 3.00")
    full = rc.summarize("project", _doc(2.0), seconds=120.0, cpu=20.0, ssh_cpu=0.0, path="full")
    assert full.label == "project full"
    line = rc.report([runs[0], full])[-1]
    assert line == (
        "project: controller CPU-s per host for a no-op rerun: fast path 3.00 (2.50 without the benchmark stage's"
        " 0.50); full path 10.00 (9.00 without the benchmark stage's 1.00); goal <= 3.00"
    )
