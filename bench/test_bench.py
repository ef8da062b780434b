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
from bench import benchlib as bl
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
