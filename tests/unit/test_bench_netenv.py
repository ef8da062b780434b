"""netenv.proxy_for: the proxy rule shared by the health gate and the benchmark (docs/benchmark.md)."""

from __future__ import annotations

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.netenv import (
    base_url_for,
    no_proxy_matches,
    proxy_for,
    redact_url,
)

P = "http://proxy.lab:3128"


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        # Which variable: by scheme, lower case wins, all_proxy as the fallback.
        ("http://spark-01:30000", {"http_proxy": P}, P),
        ("http://spark-01:30000", {"HTTP_PROXY": P}, P),
        ("http://spark-01:30000", {"http_proxy": P, "HTTP_PROXY": "http://other:1"}, P),
        ("http://spark-01:30000", {"https_proxy": P}, None),
        ("https://nim.lab", {"HTTPS_PROXY": P}, P),
        ("https://nim.lab", {"http_proxy": P}, None),
        ("https://nim.lab", {"ALL_PROXY": P}, P),
        ("http://spark-01", {"all_proxy": P, "http_proxy": "http://first:1"}, "http://first:1"),
        ("http://spark-01", {"http_proxy": ""}, None),
        ("http://spark-01", {"http_proxy": "proxy.lab:3128"}, P),  # no scheme: http://
        # httpoxy: in a CGI environment HTTP_PROXY may come from a request header; http_proxy is kept.
        ("http://spark-01", {"HTTP_PROXY": P, "REQUEST_METHOD": "GET"}, None),
        ("http://spark-01", {"http_proxy": P, "REQUEST_METHOD": "GET"}, P),
        # Loopback is never proxied.
        ("http://127.0.0.1:30000", {"http_proxy": P}, None),
        ("http://127.8.9.1:30000", {"http_proxy": P}, None),
        ("http://localhost:30000", {"http_proxy": P}, None),
        ("http://api.localhost:30000", {"http_proxy": P}, None),
        ("http://[::1]:30000", {"http_proxy": P}, None),
        ("http://[::ffff:127.0.0.1]:30000", {"http_proxy": P}, None),
        ("http://[fd00::2]:30000", {"http_proxy": P}, P),
        # no_proxy / NO_PROXY
        ("http://spark-01.lab.example:30000", {"http_proxy": P, "no_proxy": "lab.example"}, None),
        ("http://spark-01.lab.example:30000", {"http_proxy": P, "no_proxy": ".lab.example"}, None),
        ("http://lab.example:30000", {"http_proxy": P, "NO_PROXY": ".lab.example"}, None),
        ("http://otherlab.example:30000", {"http_proxy": P, "no_proxy": "lab.example"}, P),
        ("http://SPARK-01.Lab.Example.:30000", {"http_proxy": P, "no_proxy": "lab.example"}, None),
        ("http://spark-01:30000", {"http_proxy": P, "no_proxy": "*"}, None),
        ("http://spark-01:30000", {"http_proxy": P, "no_proxy": "a, spark-01 b"}, None),
        ("http://spark-01:30000", {"http_proxy": P, "no_proxy": "", "NO_PROXY": "spark-01"}, P),  # lower wins
        ("http://10.1.2.3:30000", {"http_proxy": P, "no_proxy": "10.1.2.3"}, None),
        ("http://10.1.2.3:30000", {"http_proxy": P, "no_proxy": "10.1.0.0/16"}, None),
        ("http://10.2.2.3:30000", {"http_proxy": P, "no_proxy": "10.1.0.0/16"}, P),
        ("http://[fd00::2]:30000", {"http_proxy": P, "no_proxy": "fd00::/8"}, None),
        ("http://[fd00::2]:30000", {"http_proxy": P, "no_proxy": "fd00::2"}, None),
        ("http://[fd00::2]:30000", {"http_proxy": P, "no_proxy": "[fd00::2]:30000"}, None),
        ("http://spark-01:30000", {"http_proxy": P, "no_proxy": "spark-01:30000"}, None),
        ("http://spark-01:8000", {"http_proxy": P, "no_proxy": "spark-01:30000"}, P),
        ("http://10.1.2.3:30000", {"http_proxy": P, "no_proxy": "10.1.2"}, P),  # not a suffix rule for IPs
        ("ftp://spark-01", {"all_proxy": P}, None),
    ],
)
def test_proxy_for(url: str, env: dict[str, str], expected: str | None) -> None:
    assert proxy_for(url, env) == expected


def test_no_proxy_ignores_garbage_entries() -> None:
    assert not no_proxy_matches("spark-01", 80, "300.1.1.1/8, ., :, [")


def test_redact_url() -> None:
    assert redact_url("http://user:pw@proxy:3128") == "http://user:***@proxy:3128"
    assert redact_url("http://proxy:3128") == "http://proxy:3128"
    assert redact_url(None) is None


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("", "http://127.0.0.1:30000"),
        ("0.0.0.0", "http://127.0.0.1:30000"),  # noqa: S104 - a bind address as input
        ("::", "http://[::1]:30000"),
        ("[::]", "http://[::1]:30000"),
        ("fd00::2", "http://[fd00::2]:30000"),
        ("10.1.2.3", "http://10.1.2.3:30000"),
        ("spark-01.lab", "http://spark-01.lab:30000"),
    ],
)
def test_base_url_for_a_bind_address(bind: str, url: str) -> None:
    assert base_url_for(bind, 30000) == url
