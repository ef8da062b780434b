"""The benchmark client against REAL small servers on this machine (tests/unit/netservers.py).

One test (or a few) per defect of issue 11: wrong-shaped JSON, IPv6 literals, CR/LF in headers,
bodiless 1xx/204/304 answers, malformed Content-Length, proxies from the environment (the same
rule as the health gate's netenv.http_get), TLS with a private CA, client certificates and the
insecure switch, SSE BOM and unknown fields, load levels without content, transient server errors.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import netenv
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.http_client import HTTPClient
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.run import (
    BenchConfig,
    run_benchmark,
    validate_config,
)

from tests.unit.netservers import (
    GOOD_STREAM,
    MODEL,
    USAGE,
    Pki,
    Request,
    chunk,
    delta,
    event,
    has_ipv6_loopback,
    make_pki,
    non_loopback_ipv4,
    openai_handler,
    proxy,
    response,
    serve,
    sse_response,
)

ALL = ["readiness", "chat", "json_schema", "multi_turn", "load"]
PROXY_VARS = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without the caller's proxy settings; each sets what it needs."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def _cfg(url: str, **over: Any) -> BenchConfig:
    base: dict[str, Any] = {
        "base_url": url,
        "model": MODEL,
        "checks": ["readiness", "chat", "load"],
        "concurrency": [2],
        "num_prompts": 4,
        "input_len": 16,
        "output_len": 4,
        "multi_turn_conversations": 2,
        "multi_turn_turns": 2,
        "timeout_s": 5.0,
        "ready_timeout_s": 0.5,
        "ready_interval_s": 0.1,
        "retry_backoff_s": 0.01,
    }
    base.update(over)
    return BenchConfig(**base)


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


# --- JSON that parses but has the wrong shape ---------------------------------------------------

WRONG_SHAPES: list[tuple[str, Any]] = [
    ("choices of strings", {"choices": ["x"]}),
    ("usage a number", {"choices": [{"message": {"content": "hi"}}], "usage": 7}),
    ("message a string", {"choices": [{"message": "hi"}], "usage": USAGE}),
    ("a list", [1, 2]),
    ("choices an object", {"choices": {"0": {}}}),
]


@pytest.mark.parametrize(("label", "body"), WRONG_SHAPES, ids=[w[0] for w in WRONG_SHAPES])
def test_wrong_shaped_json_is_a_failed_check_not_a_lost_report(label: str, body: Any) -> None:
    bad = json.dumps(body).encode()
    stream_bad = event(body) + b"data: [DONE]\n\n"
    handler = openai_handler(chat=lambda _r: response(200, raw=bad), stream=lambda _r: sse_response(stream_bad))
    with serve(handler) as server:
        report = run_benchmark(_cfg(server.url, checks=ALL))
    statuses = _statuses(report)
    assert statuses["readiness"] == "pass"
    for name in ("chat", "json_schema", "multi_turn", "load"):
        assert statuses[name] == "fail", (label, name, report["checks"])
    assert (
        "JSON object" in _checks(report)["chat"]["message"] or "without choices" in _checks(report)["chat"]["message"]
    )
    assert report["ok"] is False and report["schema"] == "sparkfleet.benchmark/v1"


def test_wrong_shaped_usage_in_a_stream_fails_the_request_with_its_reason() -> None:
    stream = event(delta("a")) + event({"choices": [], "usage": 7}) + b"data: [DONE]\n\n"
    with serve(openai_handler(stream=lambda _r: sse_response(stream))) as server:
        report = run_benchmark(_cfg(server.url, checks=["load"]))
    row = report["load"][0]
    assert row["errors"] == 4
    assert "usage is not a JSON object: 7" in row["error_samples"][0]["message"]


# --- IPv6 literal base URL ----------------------------------------------------------------------


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_ipv6_literal_base_url_sends_a_bracketed_host() -> None:
    with serve(openai_handler(), host="::1") as server:
        report = run_benchmark(_cfg(server.url))
        status, _ = netenv.http_get(f"{server.url}/health", 5)
    assert _statuses(report) == {"readiness": "pass", "chat": "pass", "load": "pass"}, report["failures"]
    hosts = {r.headers["host"] for r in server.requests}
    assert hosts == {f"[::1]:{server.port}"}
    assert status == 200


def test_an_unbracketed_ipv6_base_url_is_refused_with_the_fix() -> None:
    problems = validate_config(_cfg("http://::1:30000"))
    assert any("write an IPv6 address in brackets, http://[::1]:30000" in p for p in problems), problems


# --- header values ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sk-secret\n", "sk-secret\r\nX-Injected: 1", "sk-\x00secret", "sk-s\u00e9cret\u2603"])
def test_an_api_key_that_cannot_be_a_header_is_refused_before_any_request(key: str) -> None:
    with serve(openai_handler()) as server:
        problems = validate_config(_cfg(server.url, api_key=key))
        assert any(p.startswith("api_key cannot be sent") for p in problems), problems
        assert not any("secret" in p for p in problems)  # never echoed
        with pytest.raises(ValueError, match="api_key") as info:
            run_benchmark(_cfg(server.url, api_key=key))
        assert "secret" not in str(info.value)
    assert server.requests == []  # nothing reached the server
    with pytest.raises(ValueError, match=r"CR or LF|control|Latin-1"):
        HTTPClient("http://127.0.0.1:9", {"Authorization": f"Bearer {key}"})
    with pytest.raises(ValueError, match=r"CR or LF|control|Latin-1"):
        netenv.http_get("http://127.0.0.1:9/health", 1, headers={"Authorization": key})


def test_the_api_key_is_sent_and_redacted_where_a_server_echoes_it() -> None:
    def chat(req: Request) -> bytes:
        return response(401, {"error": f"bad token {req.headers.get('authorization')}"})

    with serve(openai_handler(chat=chat)) as server:
        report = run_benchmark(_cfg(server.url, checks=["chat"], api_key="sk-very-secret-42"))
    assert server.requests[0].headers["authorization"] == "Bearer sk-very-secret-42"
    text = json.dumps(report)
    assert "sk-very-secret-42" not in text and "********" in text
    assert report["network"]["api_key"] is True


# --- bodiless answers and framing -----------------------------------------------------------------


def _client_call(url: str, path: str, method: str = "GET") -> tuple[Any, float]:
    async def go() -> Any:
        async with HTTPClient(url) as client:
            first = await asyncio.wait_for(client.request(method, path), 5)
            second = await asyncio.wait_for(client.request("GET", "/health"), 5)  # the connection is still usable
            return first, second

    start = time.monotonic()
    result = asyncio.run(go())
    return result, time.monotonic() - start


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204),
        (b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", 304),
        (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + response(200, {"ok": 1}), 200),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + response(200, {"ok": 1}), 200),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 204),
    ],
    ids=["204", "304", "103-then-200", "100-then-200", "204-with-length"],
)
def test_bodiless_and_interim_answers_do_not_hang(answer: bytes, status: int) -> None:
    def handle(req: Request) -> bytes:
        return answer if req.path == "/special" else response(200, {"status": "ok"})

    with serve(handle) as server:
        (first, second), took = _client_call(server.url, "/special")
    assert first.status == status and second.status == 200
    assert took < 3  # no wait for a body that never comes (the old client waited for the 5 s timeout)
    assert first.body == (b'{"ok": 1}' if status == 200 else b"")


def test_a_204_chat_answer_fails_fast_with_its_status() -> None:
    handler = openai_handler(
        chat=lambda _r: b"HTTP/1.1 204 No Content\r\n\r\n", stream=lambda _r: b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    with serve(handler) as server:
        start = time.monotonic()
        report = run_benchmark(_cfg(server.url, checks=["chat"], timeout_s=10.0))
    assert time.monotonic() - start < 5
    message = _checks(report)["chat"]["message"]
    assert "non-streaming: HTTP 204" in message and "streaming: HTTP 204" in message


@pytest.mark.parametrize("length", ["abc", "-1", "5, 6", "0x10", "١٢"])
def test_a_malformed_content_length_is_a_protocol_failure(length: str) -> None:
    raw = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}".encode()
    with serve(openai_handler(chat=lambda _r: raw)) as server:
        report = run_benchmark(_cfg(server.url, checks=["chat", "json_schema"], transient_retries=0))
    checks = _checks(report)
    assert checks["chat"]["status"] == "fail" and checks["json_schema"]["status"] == "fail"
    assert "malformed Content-Length" in checks["chat"]["message"]
    assert "malformed Content-Length" in checks["json_schema"]["message"]


def test_repeated_equal_content_length_is_accepted() -> None:
    body = json.dumps({"status": "ok"}).encode()
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n%s" % (len(body), len(body), body)
    with serve(lambda _r: raw) as server:
        (first, second), _ = _client_call(server.url, "/x")
    assert first.status == 200 and first.body == body and second.status == 200


# --- SSE ----------------------------------------------------------------------------------------


def test_sse_with_a_bom_and_unknown_fields_passes() -> None:
    events = (
        b"\xef\xbb\xbf"
        + b": comment\nfoo: bar\nevent: message\n"
        + GOOD_STREAM.replace(b"data: [DONE]", b"x-vendor: 1\ndata: [DONE]")
    )
    with serve(openai_handler(stream=lambda _r: sse_response(events))) as server:
        report = run_benchmark(_cfg(server.url))
    assert _statuses(report) == {"readiness": "pass", "chat": "pass", "load": "pass"}, report["failures"]
    assert report["load"][0]["ttft_ms"]["p50"] is not None


# --- a load level without content --------------------------------------------------------------


def test_a_load_level_where_no_content_chunk_arrived_fails() -> None:
    empty = event(delta("", "length")) + event({"choices": [], "usage": USAGE}) + b"data: [DONE]\n\n"
    with serve(openai_handler(stream=lambda _r: sse_response(empty))) as server:
        report = run_benchmark(_cfg(server.url, checks=["load"], concurrency=[1, 2]))
    load = _checks(report)["load"]
    assert load["status"] == "fail"
    assert "none of the 4 completed requests streamed a content chunk" in load["message"]
    assert all(row["ttft_ms"]["p50"] is None and row["without_content"] == 4 for row in report["load"])


# --- transient server errors ---------------------------------------------------------------------


def _flaky(fail_first: int, status: int = 500) -> tuple[Any, list[int]]:
    calls = [0]

    def chat(req: Request) -> bytes:
        calls[0] += 1
        if calls[0] <= fail_first:
            return response(status, {"error": {"message": "does not match the expected peg-native format"}})
        return openai_handler()(req) or b""

    return chat, calls


def test_a_transient_500_in_json_schema_is_retried_and_reported() -> None:
    chat, calls = _flaky(2)
    with serve(openai_handler(chat=chat)) as server:
        report = run_benchmark(_cfg(server.url, checks=["json_schema"]))
    check = _checks(report)["json_schema"]
    assert check["status"] == "pass" and calls[0] == 3
    assert check["details"]["attempts"] == 3 and len(check["details"]["transient_errors"]) == 2
    assert "after 2 transient server error(s), retried" in check["message"]
    assert any("json_schema: passed after 2 transient" in w for w in report["warnings"])
    assert report["ok"] is True


def test_a_persistent_500_fails_after_the_retries() -> None:
    chat, calls = _flaky(100)
    with serve(openai_handler(chat=chat)) as server:
        report = run_benchmark(_cfg(server.url, checks=["json_schema"], transient_retries=2))
    check = _checks(report)["json_schema"]
    assert check["status"] == "fail" and calls[0] == 3
    assert "HTTP 500" in check["message"] and "2 earlier attempt(s) failed too" in check["message"]


def test_a_client_error_is_not_retried() -> None:
    chat, calls = _flaky(100, status=400)
    with serve(openai_handler(chat=chat)) as server:
        report = run_benchmark(_cfg(server.url, checks=["json_schema"]))
    assert _checks(report)["json_schema"]["status"] == "fail" and calls[0] == 1


# --- proxies from the environment ----------------------------------------------------------------


def test_loopback_is_never_proxied_by_the_benchmark_or_the_health_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(openai_handler()) as server, proxy(("127.0.0.1", server.port)) as prx:
        monkeypatch.setenv("http_proxy", prx.url)
        monkeypatch.setenv("HTTPS_PROXY", prx.url)
        report = run_benchmark(_cfg(server.url))
        status, _ = netenv.http_get(f"{server.url}/health", 5)
        localhost_status, _ = netenv.http_get(f"http://localhost:{server.port}/health", 5)
    assert report["ok"] is True and status == 200 and localhost_status == 200
    assert prx.seen == []
    assert report["network"]["proxy"] is None


def _lab_address() -> str:
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


@pytest.mark.parametrize("upper", [False, True], ids=["http_proxy", "HTTP_PROXY"])
def test_a_lab_address_goes_through_http_proxy_for_both_clients(monkeypatch: pytest.MonkeyPatch, upper: bool) -> None:
    address = _lab_address()
    with serve(openai_handler(), host=address) as server, proxy((address, server.port)) as prx:
        monkeypatch.setenv("HTTP_PROXY" if upper else "http_proxy", prx.url.replace("http://", "http://u:p%40ss@"))
        report = run_benchmark(_cfg(server.url))
        status, _ = netenv.http_get(f"{server.url}/health", 5)
    assert report["ok"] is True, report["failures"]
    assert status == 200
    # Absolute-form targets through the proxy, from the benchmark and from the health gate's GET.
    assert f"{server.url}/v1/chat/completions" in prx.targets
    assert prx.targets.count(f"{server.url}/health") >= 2
    assert report["network"]["proxy"] == prx.url.replace("http://", "http://u:***@")
    assert "p%40ss" not in json.dumps(report)
    auth = {r.headers.get("proxy-authorization") for r in prx.seen}
    assert auth == {"Basic dTpwQHNz"}  # u:p@ss


@pytest.mark.parametrize("entry", ["{ip}", "{net}/24", "*", "other.example, {ip}:{port}"])
def test_no_proxy_bypasses_the_proxy_for_both_clients(monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    address = _lab_address()
    with serve(openai_handler(), host=address) as server, proxy((address, server.port)) as prx:
        net = address.rsplit(".", 1)[0] + ".0"
        monkeypatch.setenv("http_proxy", prx.url)
        monkeypatch.setenv("NO_PROXY", entry.format(ip=address, net=net, port=server.port))
        report = run_benchmark(_cfg(server.url))
        status, _ = netenv.http_get(f"{server.url}/health", 5)
    assert report["ok"] is True and status == 200
    assert prx.seen == [] and report["network"]["proxy"] is None


def test_use_proxy_false_connects_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    address = _lab_address()
    with serve(openai_handler(), host=address) as server:
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
        assert run_benchmark(_cfg(server.url, use_proxy=False))["ok"] is True
        failed = run_benchmark(_cfg(server.url, checks=["chat"]))
    assert "through proxy http://127.0.0.1:9" in _checks(failed)["chat"]["message"]


def test_a_socks_proxy_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("all_proxy", "socks5://127.0.0.1:1080")
    problems = validate_config(_cfg("http://192.0.2.7:8000"))
    assert any("is not an http:// proxy" in p for p in problems), problems


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    made = make_pki(tmp_path_factory.mktemp("pki"))
    if made is None:
        pytest.skip("the openssl CLI is not installed: no test certificates")
    yield made


def test_tls_with_a_private_ca(pki: Pki) -> None:
    with serve(openai_handler(), tls=pki.server_context()) as server:
        start = time.monotonic()
        unknown = run_benchmark(_cfg(server.url, checks=["readiness"], ready_timeout_s=30.0))
        assert time.monotonic() - start < 5  # a certificate that does not verify is not waited for
        assert unknown["checks"][0]["details"]["attempts"] == 1
        trusted = run_benchmark(_cfg(server.url, ca_path=str(pki.ca)))
        wrong_ca = run_benchmark(_cfg(server.url, checks=["chat"], ca_path=str(pki.other_ca)))
        status, _ = netenv.http_get(f"{server.url}/health", 5, ca_file=str(pki.ca))
        status_unknown, reason = netenv.http_get(f"{server.url}/health", 5)
    message = _checks(unknown)["readiness"]["message"]
    assert "TLS handshake with 127.0.0.1" in message and "CERTIFICATE_VERIFY_FAILED" in message
    assert "set ca_path" in message
    assert trusted["ok"] is True, trusted["failures"]
    assert trusted["network"]["tls"] == {
        "verify": True,
        "insecure": False,
        "ca_path": str(pki.ca),
        "client_cert": None,
    }
    assert trusted["warnings"] == []
    assert "CERTIFICATE_VERIFY_FAILED" in _checks(wrong_ca)["chat"]["message"]
    assert status == 200 and status_unknown == 0 and "CERTIFICATE_VERIFY_FAILED" in reason


def test_the_insecure_switch_works_and_the_report_says_so(pki: Pki) -> None:
    with serve(openai_handler(), tls=pki.server_context()) as server:
        report = run_benchmark(_cfg(server.url, validate_certs=False))
        status, _ = netenv.http_get(f"{server.url}/health", 5, insecure=True)
    assert report["ok"] is True and status == 200
    assert report["network"]["tls"]["insecure"] is True
    assert any("TLS certificate verification was OFF" in w for w in report["warnings"])


def test_a_client_certificate_for_a_server_that_asks_for_one(pki: Pki) -> None:
    with serve(openai_handler(), tls=pki.server_context(require_client_cert=True)) as server:
        without = run_benchmark(_cfg(server.url, checks=["chat"], ca_path=str(pki.ca), transient_retries=0))
        with_cert = run_benchmark(
            _cfg(server.url, ca_path=str(pki.ca), client_cert=str(pki.client_cert), client_key=str(pki.client_key))
        )
        status, _ = netenv.http_get(
            f"{server.url}/health", 5, ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key)
        )
    assert _checks(without)["chat"]["status"] == "fail"
    assert with_cert["ok"] is True, with_cert["failures"]
    assert with_cert["network"]["tls"]["client_cert"] == str(pki.client_cert)
    assert status == 200


def test_https_through_a_connect_proxy(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(openai_handler(), tls=pki.server_context()) as server, proxy(("127.0.0.1", server.port)) as prx:
        # "localhost.sparkfleet.test" is not loopback by name; only the proxy knows where it is.
        monkeypatch.setenv("https_proxy", prx.url)
        url = f"https://127.0.0.1:{server.port}".replace("127.0.0.1", "lab-nim.sparkfleet.test")
        report = run_benchmark(_cfg(url, validate_certs=False))
        status, _ = netenv.http_get(f"{url}/health", 5, insecure=True)
    assert report["ok"] is True, report["failures"]
    assert status == 200
    assert prx.connects[0] == f"lab-nim.sparkfleet.test:{server.port}"


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"ca_path": "/nonexistent/ca.pem"}, "ca_path /nonexistent/ca.pem is not a readable file"),
        ({"client_key": __file__}, "client_key needs client_cert"),
        ({"ca_path": __file__}, "cannot load the CA file"),
        ({"transient_retries": -1}, "transient_retries must be zero or a positive integer"),
    ],
)
def test_tls_parameter_problems_are_refused_before_any_request(over: dict[str, Any], fragment: str) -> None:
    problems = validate_config(_cfg("https://127.0.0.1:9", **over))
    assert any(fragment in p for p in problems), problems


def test_chunk_helper_round_trip() -> None:
    # The helper the servers above use, so a failure there is not mistaken for the client's.
    assert chunk(b"abc") == b"3\r\nabc\r\n"


def test_report_of_a_plain_http_server_has_no_tls_section(tmp_path: Path) -> None:
    with serve(openai_handler()) as server:
        report = run_benchmark(_cfg(server.url, checks=["chat"]))
    assert report["network"] == {"proxy": None, "tls": None, "api_key": False}
