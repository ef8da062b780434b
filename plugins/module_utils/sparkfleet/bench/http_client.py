"""A lean asyncio HTTP/1.1 client for benchmarking OpenAI-compatible servers. Standard library only.

Why not urllib or aiohttp: urllib blocks a thread per request, and aiohttp (what SGLang's
``bench_serving`` uses) is not in the system Python and caps a session at 100 connections with a
64 KiB read buffer. This client opens one connection per in-flight request (no cap below the
caller's concurrency), keeps connections alive between requests, reads in large blocks, and
decodes chunked transfer encoding and server-sent events itself, several events per read.

Failures raise :class:`BenchHTTPError` with a ``kind`` (``connect``, ``status``, ``protocol``,
``stream_cut``, ``timeout``) and a message that names the URL and what was seen.

Framing follows RFC 9112: 1xx interim responses are skipped, 204/304 (and HEAD) have no body,
``Transfer-Encoding: chunked`` wins over ``Content-Length``, a malformed or conflicting
``Content-Length`` is a protocol error, and a body without framing is read until the server closes.
Proxies come from :func:`sparkfleet.netenv.proxy_for` (the health gate's rule): an ``http://`` target
goes through an HTTP proxy in absolute form, an ``https://`` target through a ``CONNECT`` tunnel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..netenv import check_header_value, proxy_authorization, redact_url

READ_SIZE = 1 << 20
STREAM_LIMIT = 1 << 24
MAX_HEAD = 1 << 16
_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"
_BOM = b"\xef\xbb\xbf"


class BenchHTTPError(Exception):
    """A request failed. ``kind``: connect | status | protocol | stream_cut | timeout.

    ``permanent``: waiting will not fix it (a certificate that does not verify, a proxy that refuses the
    tunnel), so readiness stops polling at once instead of waiting ``ready_timeout_s``.
    """

    def __init__(
        self, kind: str, message: str, status: int | None = None, body: str = "", *, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.body = body
        self.permanent = permanent


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
    ignored_lines: int = 0
    last_ignored: bytes = b""


class SSEParser:
    """Incremental server-sent-events parser: ``feed(bytes)`` returns the data of completed events.

    As the SSE specification (HTML Living Standard, 9.2.6) says: a UTF-8 BOM at the start of the
    stream is dropped; events end at a blank line; ``\\r\\n``, ``\\r`` and ``\\n`` all end a line,
    also when a chunk boundary splits them; ``data:`` lines of one event are joined with ``\\n``;
    comments (``:``), the ``event``/``id``/``retry`` fields and every unknown field are ignored.
    Lines that are not ``data`` are counted in ``ignored`` (the last kept in ``last_ignored``) so a
    caller can say why a stream delivered nothing.
    """

    __slots__ = ("_buf", "_pending_cr", "_start", "ignored", "last_ignored")

    def __init__(self) -> None:
        self._buf = b""
        self._pending_cr = False
        self._start: bytes | None = b""  # bytes seen before the BOM decision; None once decided
        self.ignored = 0
        self.last_ignored = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._start is not None:
            data = self._start + data
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._start = data  # maybe a BOM split across reads
                return []
            self._start = None
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
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
        self._pending_cr = False
        if self._start:
            rest = self._start + rest
            self._start = None
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
            elif name not in (b"event", b"id", b"retry"):
                # event, id, retry mean nothing here; any other field is ignored, as the specification says.
                self.ignored += 1
                self.last_ignored = line[:200]
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
    """Keep-alive HTTP/1.1 client for one base URL. Use ``async with`` or call ``close()``.

    ``tls``: the SSL context for an ``https://`` base URL (default: the system's CAs, verified);
    ``proxy``: an ``http://[user:password@]host:port`` proxy URL (what ``netenv.proxy_for`` returns)
    or None for a direct connection. ValueError for a URL, header or proxy that cannot be used.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        proxy: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        try:
            port = parts.port
        except ValueError as exc:
            hint = ": write an IPv6 address in brackets, http://[::1]:30000" if parts.netloc.count(":") > 1 else ""
            raise ValueError(f"base_url has an invalid port: {base_url!r}{hint}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must look like http://HOST:PORT, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = tls if tls is not None else ssl.create_default_context()
        self.prefix = parts.path.rstrip("/")
        # An IPv6 literal goes into Host (and an absolute request target) in brackets (RFC 9110 7.2).
        host_text = f"[{self.host}]" if ":" in self.host else self.host
        host_header = host_text if port is None else f"{host_text}:{self.port}"
        extra: dict[str, str] = dict(headers or {})
        self.proxy = proxy
        self.proxy_host = ""
        self.proxy_port = 0
        self._target = self.prefix
        if proxy:
            pparts = urlsplit(proxy)
            if pparts.scheme != "http" or not pparts.hostname:
                raise ValueError(
                    f"proxy {redact_url(proxy)} is not an http:// proxy (HTTPS and SOCKS proxies are not supported): "
                    "fix http_proxy/https_proxy, or list the server in no_proxy"
                )
            self.proxy_host = pparts.hostname
            self.proxy_port = pparts.port or 80
            auth = proxy_authorization(proxy)
            if self.ssl is None:
                # Plain HTTP through a proxy: absolute-form request target, credentials on every request.
                self._target = f"http://{host_header}{self.prefix}"
                if auth:
                    extra["Proxy-Authorization"] = auth
            self._connect_head = (
                f"CONNECT {host_text}:{self.port} HTTP/1.1\r\nHost: {host_text}:{self.port}\r\n"
                + (f"Proxy-Authorization: {auth}\r\n" if auth else "")
                + "\r\n"
            ).encode("latin-1")
        for name, value in extra.items():
            if not name or any(c in name for c in " \t\r\n:"):
                raise ValueError(f"invalid HTTP header name {name!r}")
            check_header_value(name, value)
        tail = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
        self._head_tail = f"Host: {host_header}\r\nUser-Agent: sparkfleet-bench\r\n{tail}".encode("latin-1")
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

    def _where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        via = f" through proxy {redact_url(self.proxy)}" if self.proxy else ""
        return f"{host}:{self.port}{via}"

    async def _connect(self) -> _Conn:
        try:
            if not self.proxy:
                reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=STREAM_LIMIT)
            elif self.ssl is None:
                reader, writer = await asyncio.open_connection(self.proxy_host, self.proxy_port, limit=STREAM_LIMIT)
            else:
                sock = await self._tunnel()
                reader, writer = await asyncio.open_connection(
                    sock=sock, ssl=self.ssl, server_hostname=self.host, limit=STREAM_LIMIT
                )
        except ssl.SSLError as exc:
            hint = (
                ": set ca_path to the CA that signed the server's certificate (or validate_certs: false to "
                "skip verification, which the report marks)"
                if isinstance(exc, ssl.SSLCertVerificationError)
                else ""
            )
            raise BenchHTTPError(
                "connect", f"TLS handshake with {self._where()} failed: {exc.reason or exc}{hint}", permanent=bool(hint)
            ) from exc
        except OSError as exc:
            raise BenchHTTPError("connect", f"cannot connect to {self._where()}: {exc.strerror or exc}") from exc
        return _Conn(reader, writer)

    async def _tunnel(self) -> socket.socket:
        """A TCP connection to the server through the proxy's CONNECT, ready for the TLS handshake."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.proxy_host, self.proxy_port, type=socket.SOCK_STREAM)
        sock: socket.socket | None = None
        error: OSError = OSError(f"no address for proxy host {self.proxy_host}")
        for family, kind, proto, _canonname, addr in infos:
            candidate = socket.socket(family, kind, proto)
            candidate.setblocking(False)
            try:
                await loop.sock_connect(candidate, addr)
            except OSError as exc:
                candidate.close()
                error = exc
                continue
            sock = candidate
            break
        if sock is None:
            raise error
        try:
            await loop.sock_sendall(sock, self._connect_head)
            head = b""
            while _HEAD_END not in head:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    raise OSError("the proxy closed the connection during CONNECT")
                head += data
                if len(head) > MAX_HEAD:
                    raise OSError("the proxy's CONNECT answer is too long")
            status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            fields = status_line.split(" ", 2)
            if len(fields) < 2 or fields[1] != "200":
                raise BenchHTTPError(
                    "connect",
                    f"proxy {redact_url(self.proxy)} refused CONNECT to {self.host}:{self.port}: {status_line[:120]!r}",
                    permanent=len(fields) >= 2 and fields[1] in ("403", "407"),
                )
        except BaseException:
            sock.close()
            raise
        return sock

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
        head = f"{method} {self._target}{path} HTTP/1.1\r\nAccept: {accept}\r\n".encode("latin-1") + self._head_tail
        if body is None:
            return head + _CRLF
        return head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async def _send(
        self, method: str, path: str, body: bytes | None, accept: str
    ) -> tuple[_Conn, int, dict[str, str], _Framing]:
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
                framing = _framing(method, status, headers)
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
            return conn, status, headers, framing
        raise BenchHTTPError("protocol", f"{method} {self.url(path)}: the server closed the connection twice")

    async def _read_head(self, conn: _Conn, reused: bool) -> tuple[int, dict[str, str]]:
        """The final response head; 1xx interim responses (100 Continue, 103 Early Hints) are skipped."""
        while True:
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
            reused = False
            lines = head.split("\r\n")
            status_line = lines[0].split(" ", 2)
            if (
                len(status_line) < 2
                or not status_line[0].startswith("HTTP/")
                or len(status_line[1]) != 3
                or not status_line[1].isdigit()
            ):
                raise BenchHTTPError("protocol", f"not an HTTP response: {lines[0][:120]!r}")
            status = int(status_line[1])
            if status == 101:
                raise BenchHTTPError("protocol", "the server switched protocols (HTTP 101), which was not asked for")
            if 100 <= status < 200:
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    key = name.strip().lower()
                    value = value.strip()
                    # Repeated fields combine into one comma-separated value (RFC 9110 5.3).
                    headers[key] = f"{headers[key]}, {value}" if key in headers else value
            headers[":version"] = status_line[0]
            return status, headers

    async def _body(self, conn: _Conn, framing: _Framing, info: StreamInfo | None) -> AsyncIterator[bytes]:
        """Yield the decoded body in pieces, as many complete chunks per read as have arrived."""
        if framing.kind == "chunked":
            async for piece in self._chunked(conn):
                yield piece
        elif framing.kind == "length":
            remaining = framing.length
            while remaining > 0:
                if not conn.buf and not await conn.fill():
                    raise BenchHTTPError(
                        "stream_cut", f"connection closed with {remaining} of the Content-Length bytes missing"
                    )
                piece = bytes(conn.buf[:remaining])
                del conn.buf[: len(piece)]
                remaining -= len(piece)
                yield piece
        elif framing.kind == "close":
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
                if size < 0 or size_field[:1] in (b"+", b"-"):
                    raise BenchHTTPError("protocol", f"bad chunk size {size_field[:40]!r} in a chunked body")
                if size == 0:
                    # Last chunk: optional trailers, then a blank line.
                    if buf[nl : nl + 4] == _HEAD_END:
                        pos = nl + 4
                    else:
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
                if buf[stop : stop + 2] != _CRLF:
                    raise BenchHTTPError("protocol", "a chunk of a chunked body is not followed by CRLF")
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
        conn, status, headers, framing = await self._send(method, path, body, "application/json")
        keep = _keep_alive(headers) and framing.reusable
        try:
            pieces = [piece async for piece in self._body(conn, framing, None)]
        except BaseException:
            conn.close()
            raise
        self._release(conn, keep)
        return Response(status, headers, b"".join(pieces))

    async def stream_events(self, path: str, payload: Any, info: StreamInfo) -> AsyncIterator[list[bytes]]:
        """POST payload and yield the data of server-sent events, a list per read.

        A non-2xx status raises BenchHTTPError(status) with the body; a body that is not an
        event stream raises BenchHTTPError(protocol); a transport cut raises (stream_cut).
        ``info.clean_end`` tells whether the body ended by its framing; ``info.ignored_lines`` and
        ``info.last_ignored`` what the SSE parser skipped.
        """
        body = json.dumps(payload).encode()
        conn, status, headers, framing = await self._send("POST", path, body, "text/event-stream")
        info.status = status
        info.headers = headers
        keep = _keep_alive(headers) and framing.reusable
        ok = False
        try:
            if status >= 300 or status == 204:
                raw = b"".join([piece async for piece in self._body(conn, framing, None)])
                ok = True
                raise BenchHTTPError(
                    "status", f"HTTP {status} from POST {self.url(path)}: {_snippet(raw)}", status, _snippet(raw)
                )
            ctype = headers.get("content-type", "")
            if "text/event-stream" not in ctype:
                raw = b"".join([piece async for piece in self._body(conn, framing, None)])
                ok = True
                raise BenchHTTPError(
                    "protocol",
                    f"POST {self.url(path)} answered Content-Type {ctype or 'none'!r}, not an event stream: "
                    f"{_snippet(raw)}",
                    status,
                )
            parser = SSEParser()
            try:
                async for piece in self._body(conn, framing, info):
                    events = parser.feed(piece)
                    if events:
                        yield events
                tail = parser.flush()
                if tail:
                    yield tail
            finally:
                info.ignored_lines = parser.ignored
                info.last_ignored = parser.last_ignored
            ok = True
        finally:
            self._release(conn, ok and keep)


@dataclass(frozen=True)
class _Framing:
    """How a response body ends: none, length (Content-Length), chunked, or close (read until EOF)."""

    kind: str
    length: int = 0
    reuse: bool = True

    @property
    def reusable(self) -> bool:
        return self.reuse and self.kind != "close"


_NO_BODY = _Framing("none")


def _framing(method: str, status: int, headers: dict[str, str]) -> _Framing:
    """RFC 9112 6.3: the length of a response body, or BenchHTTPError(protocol) when it cannot be known."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return _NO_BODY
    te = headers.get("transfer-encoding")
    if te is not None:
        if te.lower().rsplit(",", 1)[-1].strip() == "chunked":
            # With both, Transfer-Encoding wins; such a response may be an attack: do not reuse the connection.
            return _Framing("chunked", reuse="content-length" not in headers)
        return _Framing("close")
    if "content-length" in headers:
        raw = headers["content-length"]
        values = {v.strip() for v in raw.split(",")}
        if len(values) != 1 or not all(v.isdigit() and v.isascii() for v in values):
            raise BenchHTTPError("protocol", f"malformed Content-Length {raw[:60]!r} in the response")
        return _Framing("length", int(values.pop()))
    return _Framing("close")


def _keep_alive(headers: dict[str, str]) -> bool:
    conn = headers.get("connection", "").lower()
    if headers.get(":version") == "HTTP/1.0":
        return "keep-alive" in conn
    return "close" not in conn


def _snippet(raw: bytes, limit: int = 300) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."
