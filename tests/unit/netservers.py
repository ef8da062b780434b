"""Small REAL servers for the benchmark's network tests: a scripted HTTP/1.1 server (IPv4 or IPv6,
plain or TLS, optionally asking for a client certificate), a forwarding HTTP proxy (absolute-form
and CONNECT), and a throw-away CA made with the openssl CLI.

Each server runs in a thread on a free port of this machine and records what it received, so a
test can assert on the bytes that actually crossed the socket.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL = "fake/model"


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}


Handler = Callable[[Request], bytes | None]


def response(status: int, obj: Any = None, *, headers: str = "", raw: bytes | None = None) -> bytes:
    body = raw if raw is not None else (b"" if obj is None else json.dumps(obj).encode())
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        headers.encode(),
        body,
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}]}


USAGE: dict[str, Any] = {"prompt_tokens": 40, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 8}}


def sse_response(raw_events: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + chunk(raw_events) + b"0\r\n\r\n"


GOOD_STREAM = (
    b"".join(event(delta(t)) for t in ("a", "b", "c", "d"))
    + event(delta("", "length"))
    + event({"choices": [], "usage": USAGE})
    + b"data: [DONE]\n\n"
)


def openai_handler(
    chat: Callable[[Request], bytes | None] | None = None,
    stream: Callable[[Request], bytes | None] | None = None,
) -> Handler:
    """A well-behaved OpenAI-compatible server; chat/stream override the chat completion answers."""

    def handle(req: Request) -> bytes | None:
        if req.path in ("/health", "/health_generate"):
            return response(200, {"status": "ok"})
        if req.path == "/v1/models":
            return response(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        if req.path != "/v1/chat/completions":
            return response(404, {"error": "not found"})
        payload = req.json()
        if payload.get("stream"):
            return stream(req) if stream else sse_response(GOOD_STREAM)
        if chat:
            return chat(req)
        content = '{"city": "Lyon", "population": 5, "tags": ["river"]}' if "response_format" in payload else "hi"
        return response(
            200,
            {
                "model": MODEL,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": USAGE,
            },
        )

    return handle


def _read_request(sock: socket.socket, buf: bytes) -> tuple[Request | None, bytes]:
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buf) < length:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    return Request(method, target, headers, buf[:length]), buf[length:]


class _Handler(socketserver.BaseRequestHandler):
    server: ScriptedServer

    def handle(self) -> None:
        sock = self.request
        if self.server.tls is not None:
            try:
                sock = self.server.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.server.tls_errors.append(str(exc))
                return
        buf = b""
        try:
            while True:
                req, buf = _read_request(sock, buf)
                if req is None:
                    return
                self.server.requests.append(req)
                out = self.server.handler(req)
                if out is None:
                    return
                sock.sendall(out)
        except OSError:
            return


class ScriptedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: Handler, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), _Handler)
        self.handler = handler
        self.host = host
        self.tls = tls
        self.requests: list[Request] = []
        self.tls_errors: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


@contextmanager
def serve(handler: Handler, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[ScriptedServer]:
    server = ScriptedServer(handler, host, tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --- a forwarding proxy --------------------------------------------------------------------------


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: ForwardProxy

    def handle(self) -> None:
        client = self.request
        buf = b""
        try:
            req, buf = _read_request(client, buf)
            if req is None:
                return
            self.server.seen.append(req)
            if req.method == "CONNECT":
                self.server.connects.append(req.target)
                upstream = socket.create_connection(self.server.backend)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if buf:
                    upstream.sendall(buf)
                self._pipe(client, upstream)
                return
            # Absolute-form: forward this request and every later one on the connection to the backend.
            upstream = socket.create_connection(self.server.backend)
            while req is not None:
                if req.method != "CONNECT":
                    self.server.targets.append(req.target)
                path = "/" + req.target.split("://", 1)[-1].split("/", 1)[-1] if "://" in req.target else req.target
                head = f"{req.method} {path} HTTP/1.1\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in req.headers.items() if k != "proxy-authorization"
                )
                upstream.sendall(head.encode("latin-1") + b"\r\n" + req.body)
                # Relay the answer until the client sends its next request.
                relay_done = self._relay_until_request(client, upstream)
                if not relay_done:
                    return
                req, buf = _read_request(client, buf)
                if req is not None:
                    self.server.seen.append(req)
        except OSError:
            return

    def _relay_until_request(self, client: socket.socket, upstream: socket.socket) -> bool:
        while True:
            ready, _, _ = select.select([client, upstream], [], [], 30)
            if not ready:
                return False
            if upstream in ready:
                data = upstream.recv(65536)
                if not data:
                    return False
                client.sendall(data)
            if client in ready:
                return True

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        while True:
            ready, _, _ = select.select([a, b], [], [], 30)
            if not ready:
                return
            for src in ready:
                data = src.recv(65536)
                if not data:
                    return
                (b if src is a else a).sendall(data)


class ForwardProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy that sends EVERY request (whatever host it names) to one backend address."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, backend: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.backend = backend
        self.seen: list[Request] = []
        self.targets: list[str] = []
        self.connects: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def proxy(backend: tuple[str, int]) -> Iterator[ForwardProxy]:
    server = ForwardProxy(backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --- a throw-away CA -------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path = field(default_factory=Path)

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca)
        return ctx


def make_pki(directory: Path) -> Pki | None:
    """A CA, a server certificate for 127.0.0.1/localhost/::1 and a client certificate; None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    for name in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=sparkfleet test {name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem")  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "san.cnf"]), ("client", [])):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")  # fmt: skip
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", f"{name}.pem", *ext)  # fmt: skip
    return Pki(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "client.pem",
        directory / "client.key",
        directory / "other-ca.pem",
    )


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback (a server can bind it), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the route picks our address
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address  # noqa: S104 - a comparison


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
