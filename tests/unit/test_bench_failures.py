"""The benchmark against small fake servers that misbehave on purpose.

Each failure (refused connection, HTTP 500, a stream cut mid-way, malformed SSE, a timeout, the
wrong model) must become a clear failed check that keeps what was measured before it.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.run import (
    BenchConfig,
    format_summary,
    run_benchmark,
    validate_config,
)

from tests.unit.netservers import USAGE, chunk, delta, event

MODEL = "fake/model"


class FakeHandler(socketserver.BaseRequestHandler):
    """A keep-alive HTTP/1.1 server whose chat endpoint misbehaves per the server's ``mode``."""

    server: FakeServer

    def handle(self) -> None:
        sock = self.request
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            while len(buf) < length:
                buf += sock.recv(65536)
            body, buf = buf[:length], buf[length:]
            self.server.requests.append(path)
            if not self.route(sock, method, path, json.loads(body) if body else {}):
                return
            if self.server.mode == "oneshot":
                # Closes every connection after one response, without saying so: the client's
                # kept-alive connection is stale and it must retry on a fresh one.
                time.sleep(0.01)
                return

    def respond(self, sock: socket.socket, status: int, obj: Any) -> None:
        raw = json.dumps(obj).encode()
        sock.sendall(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (status, len(raw), raw)
        )

    def route(self, sock: socket.socket, method: str, path: str, payload: dict[str, Any]) -> bool:
        mode = self.server.mode
        if path == "/health":
            self.respond(sock, 200, {"status": "ok"})
            return True
        if path == "/v1/models":
            self.respond(sock, 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            return True
        if path != "/v1/chat/completions":
            self.respond(sock, 404, {"error": "not found"})
            return True
        if mode == "http500":
            self.respond(sock, 500, {"error": {"message": "CUDA out of memory", "code": 500}})
            return True
        if not payload.get("stream"):
            content = '{"city": "Lyon", "population": 5, "tags": ["river"]}' if "response_format" in payload else "hi"
            if mode == "slow":
                time.sleep(self.server.delay)
            self.respond(
                sock,
                200,
                {
                    "model": MODEL,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                    "usage": USAGE,
                },
            )
            return True
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        if mode == "slow":
            sock.sendall(chunk(event(delta("a"))))
            time.sleep(self.server.delay)
        if mode == "queue":
            time.sleep(self.server.delay)
        events = [event(delta(t)) for t in ("a", "b", "c", "d")]
        if mode == "cut":
            sock.sendall(b"".join(chunk(e) for e in events[:3]))
            sock.shutdown(socket.SHUT_RDWR)
            return False
        if mode == "malformed":
            sock.sendall(chunk(events[0]) + chunk(b"this is not an event\n\n"))
            sock.sendall(chunk(event({"usage": USAGE})) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            return True
        if mode == "notsse":
            sock.sendall(chunk(json.dumps(delta("a")).encode() + b"\n\n") + b"0\r\n\r\n")
            return True
        if mode == "badjson":
            sock.sendall(chunk(events[0]) + chunk(b"data: {not json\n\n") + b"0\r\n\r\n")
            return True
        if mode == "nodone":
            sock.sendall(b"".join(chunk(e) for e in events) + b"0\r\n\r\n")
            return True
        # Good: events split across chunk boundaries, several per write, then usage and [DONE].
        raw = b"".join(events) + event(delta("", "length")) + event({"choices": [], "usage": USAGE})
        raw += b"data: [DONE]\n\n"
        sock.sendall(b"".join(chunk(raw[i : i + 37]) for i in range(0, len(raw), 37)) + b"0\r\n\r\n")
        return True


class FakeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.mode = mode
        self.delay = delay
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def _serve(mode: str, delay: float = 0.0) -> Iterator[FakeServer]:
    server = FakeServer(mode, delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    mode, delay = request.param if isinstance(request.param, tuple) else (request.param, 0.0)
    yield from _serve(mode, delay)


def _cfg(url: str, **over: Any) -> BenchConfig:
    base: dict[str, Any] = {
        "base_url": url,
        "model": MODEL,
        "checks": ["readiness", "chat", "load"],
        "concurrency": [1, 4],
        "num_prompts": 6,
        "input_len": 16,
        "output_len": 4,
        "multi_turn_conversations": 3,
        "multi_turn_turns": 2,
        "timeout_s": 5.0,
        "ready_timeout_s": 0.5,
        "ready_interval_s": 0.1,
    }
    base.update(over)
    return BenchConfig(**base)


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


@pytest.mark.parametrize("fake", ["good"], indirect=True)
def test_good_server_passes_everything(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, checks=["readiness", "chat", "json_schema", "multi_turn", "load"]))
    checks = _checks(report)
    assert {n: c["status"] for n, c in checks.items()} == {
        "readiness": "pass",
        "chat": "pass",
        "json_schema": "pass",
        "multi_turn": "pass",
        "prefix_cache": "pass",
        "load": "pass",
    }
    assert report["ok"] is True and report["failures"] == []
    assert report["schema"] == "sparkfleet.benchmark/v1"
    for row in report["load"]:
        assert row["completed"] == 6 and row["errors"] == 0
        assert row["total_output_tokens"] == 6 * USAGE["completion_tokens"]  # from usage, not chunks
        assert row["token_source"] == "usage"
        assert row["ttft_ms"]["p50"] is not None and len(row["ttft_samples_ms"]) == 6
    assert report["multi_turn"]["per_turn"][1]["median_cached_tokens"] == 8.0
    assert "OK" in format_summary(report)
    # Keep-alive: far fewer connections than requests is not observable here, but every path was served.
    assert fake.requests.count("/v1/chat/completions") >= 2 * 6 + 2


def test_connection_refused_fails_readiness_and_skips_the_rest() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    report = run_benchmark(_cfg(f"http://127.0.0.1:{port}"))
    checks = _checks(report)
    assert checks["readiness"]["status"] == "fail"
    assert "cannot connect" in checks["readiness"]["message"]
    assert "not ready after" in checks["readiness"]["message"]
    assert checks["chat"]["status"] == "skip" and checks["load"]["status"] == "skip"
    assert report["ok"] is False
    assert report["failures"][0].startswith("readiness: not ready")


def test_connection_refused_without_readiness_fails_the_check_itself() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    report = run_benchmark(_cfg(f"http://127.0.0.1:{port}", checks=["chat"]))
    assert _checks(report)["chat"]["status"] == "fail"
    assert "cannot connect" in _checks(report)["chat"]["message"]


@pytest.mark.parametrize("fake", ["http500"], indirect=True)
def test_http_500(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, checks=["readiness", "chat", "json_schema", "load"], concurrency=[2]))
    checks = _checks(report)
    assert checks["readiness"]["status"] == "pass"
    assert checks["chat"]["status"] == "fail" and "HTTP 500" in checks["chat"]["message"]
    assert "CUDA out of memory" in checks["chat"]["message"]
    assert checks["json_schema"]["status"] == "fail" and "HTTP 500" in checks["json_schema"]["message"]
    assert checks["load"]["status"] == "fail"
    row = report["load"][0]
    assert (row["completed"], row["errors"]) == (0, 6)
    assert "HTTP 500" in row["error_samples"][0]["message"]


@pytest.mark.parametrize("fake", ["cut"], indirect=True)
def test_stream_cut_midway_keeps_partial_results(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, concurrency=[2]))
    checks = _checks(report)
    assert checks["chat"]["status"] == "fail"
    assert "connection closed in the middle of a chunked body" in checks["chat"]["message"]
    assert checks["chat"]["details"]["streaming"]["content_chunks"] == 3  # what arrived before the cut
    row = report["load"][0]
    assert row["errors"] == 6
    assert "after 3 content chunks" in row["error_samples"][0]["message"]
    assert report["ok"] is False


@pytest.mark.parametrize("fake", ["malformed"], indirect=True)
def test_a_line_that_is_no_sse_field_is_ignored(fake: FakeServer) -> None:
    # The SSE specification says to ignore unknown fields: the stream still counts.
    report = run_benchmark(_cfg(fake.url, checks=["chat"]))
    assert _checks(report)["chat"]["status"] == "pass", report["failures"]


@pytest.mark.parametrize("fake", ["notsse"], indirect=True)
def test_a_stream_of_no_sse_at_all_fails_and_says_what_was_ignored(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, checks=["chat"], transient_retries=0))
    message = _checks(report)["chat"]["message"]
    assert "stream ended without [DONE] or a finish_reason after 0 content chunks" in message
    assert "lines that are not SSE data were ignored" in message and '{"choices"' in message


@pytest.mark.parametrize("fake", ["badjson"], indirect=True)
def test_sse_data_that_is_not_json(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, checks=["chat"]))
    assert "malformed SSE event: data is not JSON" in _checks(report)["chat"]["message"]


@pytest.mark.parametrize("fake", ["nodone"], indirect=True)
def test_stream_without_done_or_finish_reason(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, checks=["chat"]))
    assert "stream ended without [DONE] or a finish_reason after 4 content chunks" in _checks(report)["chat"]["message"]


@pytest.mark.parametrize("fake", [("slow", 1.5)], indirect=True)
def test_timeout(fake: FakeServer) -> None:
    start = time.monotonic()
    report = run_benchmark(_cfg(fake.url, checks=["chat", "load"], concurrency=[2], num_prompts=2, timeout_s=0.4))
    assert time.monotonic() - start < 10
    checks = _checks(report)
    assert "timeout: no complete answer within timeout_s=0.4s" in checks["chat"]["message"]
    assert checks["chat"]["details"]["streaming"]["content_chunks"] == 1
    assert report["load"][0]["errors"] == 2
    assert "(after 1 content chunks)" in report["load"][0]["error_samples"][0]["message"]


@pytest.mark.parametrize("fake", ["oneshot"], indirect=True)
def test_stale_keep_alive_connections_are_retried(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, concurrency=[1, 2]))
    assert [c["status"] for c in report["checks"]] == ["pass", "pass", "pass"], report["failures"]
    assert [row["completed"] for row in report["load"]] == [6, 6]


@pytest.mark.parametrize("fake", ["good"], indirect=True)
def test_wrong_model_name(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, model="other/model", checks=["readiness", "chat"]))
    checks = _checks(report)
    assert checks["readiness"]["status"] == "fail"
    assert "model 'other/model' is not served" in checks["readiness"]["message"]
    assert MODEL in checks["readiness"]["message"]
    assert checks["chat"]["status"] == "pass"  # the server is up: the other checks still run
    assert report["ok"] is False


@pytest.mark.parametrize("fake", [("queue", 0.2)], indirect=True)
def test_open_loop_counts_time_waiting_for_a_slot(fake: FakeServer) -> None:
    # 4 requests arrive almost at once, one slot, each takes >= 0.2 s: the last one waits ~0.6 s for
    # its slot, and that wait must be in its TTFT and E2E (the clock starts at the arrival).
    report = run_benchmark(
        _cfg(fake.url, checks=["load"], concurrency=[1], num_prompts=4, request_rate=1000.0, timeout_s=5.0)
    )
    row = report["load"][0]
    assert row["mode"] == "poisson" and row["completed"] == 4
    assert max(row["ttft_samples_ms"]) > 550
    assert row["queue_ms"]["p99"] > 500
    assert row["e2e_ms"]["p99"] > 750


@pytest.mark.parametrize("fake", [("queue", 0.2)], indirect=True)
def test_closed_loop_has_no_queue(fake: FakeServer) -> None:
    report = run_benchmark(_cfg(fake.url, checks=["load"], concurrency=[1], num_prompts=3))
    row = report["load"][0]
    assert row["mode"] == "closed"
    assert row["queue_ms"]["p99"] < 50
    assert row["ttft_ms"]["p50"] > 190  # the server waits 0.2 s before the first chunk


@pytest.mark.parametrize("fake", ["good"], indirect=True)
def test_thresholds_fail_the_report(fake: FakeServer) -> None:
    report = run_benchmark(
        _cfg(fake.url, checks=["load"], concurrency=[1], thresholds={"min_output_tps": {"1": 1e9}, "max_error_rate": 0})
    )
    entries = {t["name"]: t for t in report["thresholds"]}
    assert entries["min_output_tps@1"]["status"] == "fail"
    assert entries["max_error_rate@1"]["status"] == "pass"
    assert report["ok"] is False
    assert report["failures"] == [f"threshold min_output_tps@1: {entries['min_output_tps@1']['message']}"]


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"base_url": "localhost:8000"}, "base_url must be http://HOST:PORT"),
        ({"model": ""}, "model must name the served model"),
        ({"checks": ["chat", "speed"]}, "checks has unknown entries ['speed']"),
        ({"concurrency": [0, 8]}, "concurrency must be a list of positive integers"),
        ({"input_len": 0}, "input_len must be a positive integer"),
        ({"request_rate": -1.0}, "request_rate must be a positive number"),
        ({"engine": "tgi"}, "engine must be one of"),
        ({"thresholds": {"min_output_tps": {"32": 1}}}, "concurrency 32, which is not in the sweep"),
    ],
)
def test_bad_parameters_are_refused_before_any_request(over: dict[str, Any], fragment: str) -> None:
    problems = validate_config(_cfg("http://127.0.0.1:9", **over))
    assert any(fragment in p for p in problems), problems
    with pytest.raises(ValueError, match=r"must|unknown|not in"):
        run_benchmark(_cfg("http://127.0.0.1:9", **over))
