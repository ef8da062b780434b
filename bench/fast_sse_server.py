#!/usr/bin/env python3
"""A minimal, fast OpenAI-style streaming server for measuring benchmark CLIENTS (not servers).

asyncio protocol on raw HTTP/1.1 with keep-alive; standard library only. ``POST /v1/chat/completions``
with ``"stream": true`` answers ``--chunks`` SSE chunks of one token each, then a finish chunk, then a
usage chunk (``stream_options.include_usage`` style: ``choices: []`` and ``usage``), then ``data: [DONE]``,
every event in its own chunk of the chunked transfer encoding, all written at once with no delay.
Without ``stream`` it answers one JSON completion. ``prompt_tokens`` is the number of whitespace-separated
words in the messages (what a client's calibration needs to see a count that grows with the prompt).
Also ``GET /health``, ``GET /v1/models`` and ``GET /sfbench/stats`` (requests and chunks served, CPU
seconds used: the driver reads it to tell whether the server, not the client, was the limit).

    python bench/fast_sse_server.py --port 18080 --chunks 64 [--cpu 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time

MODEL = "sfbench/fast-sse"
_ID = "chatcmpl-sfbench"


def _event(obj: dict[str, object]) -> bytes:
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


class Renderer:
    """Pre-renders everything that does not change between requests."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        base = {"id": _ID, "object": "chat.completion.chunk", "created": 0, "model": MODEL}
        first = _event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "tok"}}]})
        token = _event({**base, "choices": [{"index": 0, "delta": {"content": " tok"}}]})
        finish = _event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
        self.head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n"
        )
        self.body_start = first + token * (chunks - 1) + finish
        self.usage_prefix = json.dumps({**base, "choices": []}, separators=(",", ":"))[:-1].encode()
        done = b"data: [DONE]\n\n"
        self.tail = b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done)

    def stream(self, prompt_tokens: int, keep_alive: bool) -> bytes:
        usage = b'%s,"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}' % (
            self.usage_prefix,
            prompt_tokens,
            self.chunks,
            prompt_tokens + self.chunks,
        )
        data = b"data: " + usage + b"\n\n"
        conn = b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n"
        return self.head + conn + self.body_start + b"%x\r\n%s\r\n" % (len(data), data) + self.tail

    def whole(self, prompt_tokens: int, keep_alive: bool) -> bytes:
        body = json.dumps(
            {
                "id": _ID,
                "object": "chat.completion",
                "created": 0,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "tok" + " tok" * (self.chunks - 1)},
                        "finish_reason": "length",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": self.chunks,
                    "total_tokens": prompt_tokens + self.chunks,
                },
            }
        ).encode()
        return _plain(200, body, keep_alive)


def _plain(status: int, body: bytes, keep_alive: bool, ctype: bytes = b"application/json") -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"Error")
    conn = b"keep-alive" if keep_alive else b"close"
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n%s" % (
        status,
        reason,
        ctype,
        len(body),
        conn,
        body,
    )


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.chunks = 0
        self.connections = 0


def _prompt_tokens(payload: dict[str, object]) -> int:
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return 0
    return sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, renderer: Renderer, stats: Stats) -> None:
        self.renderer = renderer
        self.stats = stats
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                self._reply(_plain(400, b'{"error":"bad request line"}', False), False)
                return
            method, path, version = parts
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            conn = headers.get("connection", "").lower()
            keep = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
            self._reply(self._handle(method, path.split("?", 1)[0], body, keep), keep)

    def _handle(self, method: str, path: str, body: bytes, keep: bool) -> bytes:
        r = self.renderer
        if method == "POST" and path == "/v1/chat/completions":
            try:
                payload = json.loads(body)
            except ValueError:
                return _plain(400, b'{"error":"body is not JSON"}', keep)
            self.stats.requests += 1
            self.stats.chunks += r.chunks
            if payload.get("stream"):
                return r.stream(_prompt_tokens(payload), keep)
            return r.whole(_prompt_tokens(payload), keep)
        if method == "GET" and path == "/health":
            return _plain(200, b'{"status":"ok"}', keep)
        if method == "GET" and path == "/v1/models":
            return _plain(
                200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode(), keep
            )
        if method == "GET" and path == "/sfbench/stats":
            t = os.times()
            stats = {
                "requests": self.stats.requests,
                "chunks": self.stats.chunks,
                "connections": self.stats.connections,
                "cpu_s": t.user + t.system,
                "monotonic": time.monotonic(),
            }
            return _plain(200, json.dumps(stats).encode(), keep)
        return _plain(404, b'{"error":"not found"}', keep)

    def _reply(self, data: bytes, keep: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(data)
        if not keep:
            self.transport.close()
            self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, chunks: int) -> None:
    loop = asyncio.get_running_loop()
    renderer = Renderer(chunks)
    stats = Stats()
    server = await loop.create_server(lambda: HTTPProtocol(renderer, stats), host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fast_sse_server: http://{host}:{port} chunks={chunks} pid={os.getpid()}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--chunks", type=int, default=64, help="content chunks (tokens) per response (default 64)")
    ap.add_argument("--cpu", type=int, help="pin this process to one core")
    a = ap.parse_args()
    if a.chunks < 1:
        ap.error("--chunks must be at least 1")
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    asyncio.run(serve("127.0.0.1", a.port, a.chunks))


if __name__ == "__main__":
    main()
