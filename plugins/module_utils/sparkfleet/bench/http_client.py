"""A lean asyncio HTTP/1.1 client for benchmarking OpenAI-compatible servers. Standard library only.

Why not urllib or aiohttp: urllib blocks a thread per request, and aiohttp (what SGLang's
``bench_serving`` uses) is not in the system Python and caps a session at 100 connections with a
64 KiB read buffer. This client opens one connection per in-flight request (no cap below the
caller's concurrency), keeps connections alive between requests, reads in large blocks, and
decodes chunked transfer encoding and server-sent events itself, several events per read.

Failures raise :class:`BenchHTTPError` with a ``kind`` (``connect``, ``status``, ``protocol``,
``stream_cut``, ``timeout``) and a message that names the URL and what was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

READ_SIZE = 1 << 20
STREAM_LIMIT = 1 << 24
MAX_HEAD = 1 << 16
_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"


class BenchHTTPError(Exception):
    """A request failed. ``kind``: connect | status | protocol | stream_cut | timeout."""

    def __init__(self, kind: str, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.body = body


@dataclass
class Response:
    """A complete (non-streaming) response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON; BenchHTTPError(protocol) when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BenchHTTPError(
                "protocol", f"HTTP {self.status} body is not JSON ({exc}): {_snippet(self.body)}", self.status
            ) from exc


@dataclass
class StreamInfo:
    """What a streaming response has delivered so far (kept when the stream fails)."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    clean_end: bool = False


class SSEParser:
    """Incremental server-sent-events parser: ``feed(bytes)`` returns the data of completed events.

    Events end at a blank line; ``\\r\\n``, ``\\r`` and ``\\n`` all end a line, also when a chunk
    boundary splits them. ``data:`` lines of one event are joined with ``\\n``; comments (``:``)
    and the ``event``/``id``/``retry`` fields are accepted and ignored. Any other line is counted
    in ``malformed`` and kept in ``last_malformed``, so the caller can fail the stream on it.
    """

    __slots__ = ("_buf", "_pending_cr", "last_malformed", "malformed")

    def __init__(self) -> None:
        self._buf = b""
        self._pending_cr = False
        self.malformed = 0
        self.last_malformed = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._pending_cr:
            data = b"\r" + data
            self._pending_cr = False
        if b"\r" in data:
            if data.endswith(b"\r"):
                # A "\r" at the end may be the first half of "\r\n": decide with the next feed.
                data = data[:-1]
                self._pending_cr = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + data if self._buf else data
        parts = buf.split(b"\n\n")
        self._buf = parts.pop()
        out: list[bytes] = []
        for part in parts:
            # Fast path: one "data: <payload>" line, what every LLM server sends.
            if part.startswith(b"data: ") and b"\n" not in part:
                out.append(part[6:])
                continue
            payload = self._event(part)
            if payload is not None:
                out.append(payload)
        return out

    def flush(self) -> list[bytes]:
        """At the end of the stream: an event not followed by a blank line still counts."""
        rest = self._buf
        self._buf = b""
        if self._pending_cr:
            self._pending_cr = False
        if not rest.strip(b"\n"):
            return []
        payload = self._event(rest)
        return [] if payload is None else [payload]

    def _event(self, part: bytes) -> bytes | None:
        data: list[bytes] = []
        for line in part.split(b"\n"):
            if not line or line.startswith(b":"):
                continue
            name, sep, value = line.partition(b":")
            if sep and value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name in (b"event", b"id", b"retry"):
                continue
            else:
                self.malformed += 1
                self.last_malformed = line[:200]
        if not data:
            return None
        return b"\n".join(data)


class _Conn:
    __slots__ = ("buf", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()

    async def fill(self) -> bool:
        data = await self.reader.read(READ_SIZE)
        if not data:
            return False
        self.buf += data
        return True

    def usable(self) -> bool:
        return not self.buf and not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.close()


class _StaleConnection(Exception):
    """A kept-alive connection the server had closed: retry once on a fresh one."""


class HTTPClient:
    """Keep-alive HTTP/1.1 client for one base URL. Use ``async with`` or call ``close()``."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must look like http://HOST:PORT, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        self.prefix = parts.path.rstrip("/")
        host_header = self.host if parts.port is None else f"{self.host}:{self.port}"
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head_tail = f"Host: {host_header}\r\nUser-Agent: sparkfleet-bench\r\n{extra}".encode("latin-1")
        self._idle: list[_Conn] = []

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        await asyncio.sleep(0)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=STREAM_LIMIT)
        except OSError as exc:
            raise BenchHTTPError(
                "connect", f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        return _Conn(reader, writer)

    def _acquire(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            conn.close()
        return None

    def _release(self, conn: _Conn, keep: bool) -> None:
        if keep and not conn.buf:
            self._idle.append(conn)
        else:
            conn.close()

    def _build(self, method: str, path: str, body: bytes | None, accept: str) -> bytes:
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\nAccept: {accept}\r\n".encode("latin-1") + self._head_tail
        if body is None:
            return head + _CRLF
        return head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async def _send(self, method: str, path: str, body: bytes | None, accept: str) -> tuple[_Conn, int, dict[str, str]]:
        data = self._build(method, path, body, accept)
        for attempt in (0, 1):
            conn = self._acquire() if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            try:
                conn.writer.write(data)
                await conn.writer.drain()
                status, headers = await self._read_head(conn, reused)
            except _StaleConnection:
                conn.close()
                continue
            except (OSError, EOFError) as exc:
                conn.close()
                if reused:
                    continue
                raise BenchHTTPError(
                    "protocol", f"{method} {self.url(path)}: connection failed before a response: {exc}"
                ) from exc
            except BaseException:
                conn.close()
                raise
            return conn, status, headers
        raise BenchHTTPError("protocol", f"{method} {self.url(path)}: the server closed the connection twice")

    async def _read_head(self, conn: _Conn, reused: bool) -> tuple[int, dict[str, str]]:
        while True:
            end = conn.buf.find(_HEAD_END)
            if end >= 0:
                break
            if len(conn.buf) > MAX_HEAD:
                raise BenchHTTPError("protocol", f"response head longer than {MAX_HEAD} bytes")
            if not await conn.fill():
                if reused and not conn.buf:
                    raise _StaleConnection
                raise BenchHTTPError(
                    "protocol", f"connection closed before a complete response head: {_snippet(bytes(conn.buf))}"
                )
        head = bytes(conn.buf[:end]).decode("latin-1")
        del conn.buf[: end + 4]
        lines = head.split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
            raise BenchHTTPError("protocol", f"not an HTTP response: {lines[0][:120]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        headers[":version"] = status_line[0]
        return int(status_line[1]), headers

    async def _body(self, conn: _Conn, headers: dict[str, str], info: StreamInfo | None) -> AsyncIterator[bytes]:
        """Yield the decoded body in pieces, as many complete chunks per read as have arrived."""
        te = headers.get("transfer-encoding", "").lower()
        if "chunked" in te:
            async for piece in self._chunked(conn):
                yield piece
        elif "content-length" in headers:
            remaining = int(headers["content-length"])
            while remaining > 0:
                if not conn.buf and not await conn.fill():
                    raise BenchHTTPError(
                        "stream_cut", f"connection closed with {remaining} of the Content-Length bytes missing"
                    )
                piece = bytes(conn.buf[:remaining])
                del conn.buf[: len(piece)]
                remaining -= len(piece)
                yield piece
        else:
            if conn.buf:
                piece = bytes(conn.buf)
                conn.buf.clear()
                yield piece
            while await conn.fill():
                piece = bytes(conn.buf)
                conn.buf.clear()
                yield piece
        if info is not None:
            info.clean_end = True

    async def _chunked(self, conn: _Conn) -> AsyncIterator[bytes]:
        buf = conn.buf
        while True:
            out: list[bytes] = []
            pos = 0
            finished = False
            while True:
                nl = buf.find(_CRLF, pos)
                if nl < 0:
                    break
                size_field = bytes(buf[pos:nl]).split(b";", 1)[0].strip()
                try:
                    size = int(size_field, 16)
                except ValueError as exc:
                    raise BenchHTTPError("protocol", f"bad chunk size {size_field[:40]!r} in a chunked body") from exc
                if size == 0:
                    # Last chunk: optional trailers, then a blank line.
                    end = buf.find(_HEAD_END, nl)
                    if end < 0:
                        break
                    pos = end + 4
                    finished = True
                    break
                start = nl + 2
                stop = start + size
                if len(buf) < stop + 2:
                    break
                out.append(bytes(buf[start:stop]))
                pos = stop + 2
            if pos:
                del buf[:pos]
            if out:
                yield b"".join(out) if len(out) > 1 else out[0]
            if finished:
                return
            if not await conn.fill():
                raise BenchHTTPError(
                    "stream_cut", "connection closed in the middle of a chunked body (no terminating chunk)"
                )
            buf = conn.buf

    async def request(self, method: str, path: str, payload: Any = None) -> Response:
        """Send one request and read the whole response (any status)."""
        body = None if payload is None else json.dumps(payload).encode()
        conn, status, headers = await self._send(method, path, body, "application/json")
        keep = _keep_alive(headers)
        try:
            pieces = [piece async for piece in self._body(conn, headers, None)]
        except BaseException:
            conn.close()
            raise
        self._release(conn, keep and ("content-length" in headers or "chunked" in headers.get("transfer-encoding", "")))
        return Response(status, headers, b"".join(pieces))

    async def stream_events(self, path: str, payload: Any, info: StreamInfo) -> AsyncIterator[list[bytes]]:
        """POST payload and yield the data of server-sent events, a list per read.

        A non-2xx status raises BenchHTTPError(status) with the body; a body that is not an
        event stream raises BenchHTTPError(protocol); a transport cut raises (stream_cut).
        ``info.clean_end`` tells whether the body ended by its framing.
        """
        body = json.dumps(payload).encode()
        conn, status, headers = await self._send("POST", path, body, "text/event-stream")
        info.status = status
        info.headers = headers
        keep = _keep_alive(headers)
        ok = False
        try:
            if status >= 300:
                raw = b"".join([piece async for piece in self._body(conn, headers, None)])
                ok = True
                raise BenchHTTPError(
                    "status", f"HTTP {status} from POST {self.url(path)}: {_snippet(raw)}", status, _snippet(raw)
                )
            ctype = headers.get("content-type", "")
            if "text/event-stream" not in ctype:
                raw = b"".join([piece async for piece in self._body(conn, headers, None)])
                ok = True
                raise BenchHTTPError(
                    "protocol",
                    f"POST {self.url(path)} answered Content-Type {ctype or 'none'!r}, not an event stream: "
                    f"{_snippet(raw)}",
                    status,
                )
            parser = SSEParser()
            async for piece in self._body(conn, headers, info):
                events = parser.feed(piece)
                if parser.malformed:
                    raise BenchHTTPError(
                        "protocol", f"malformed SSE line in the stream: {parser.last_malformed[:120]!r}"
                    )
                if events:
                    yield events
            tail = parser.flush()
            if parser.malformed:
                raise BenchHTTPError("protocol", f"malformed SSE line in the stream: {parser.last_malformed[:120]!r}")
            if tail:
                yield tail
            ok = True
        finally:
            framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
            self._release(conn, ok and keep and framed)


def _keep_alive(headers: dict[str, str]) -> bool:
    conn = headers.get("connection", "").lower()
    if headers.get(":version") == "HTTP/1.0":
        return "keep-alive" in conn
    return "close" not in conn


def _snippet(raw: bytes, limit: int = 300) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."
