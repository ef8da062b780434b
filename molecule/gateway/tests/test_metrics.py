"""Verify roles/metrics in the gateway scenario: Prometheus on the gateway host scraping both stand-ins, the gateway
and node exporter (targets from the plan), the rules promtool checked, and a stopped stand-in's alert firing in
Prometheus's own API. metrics-stage.yml sets 2 s scrapes and evaluations and a 4 s down_for.

Runs after test_gateway.py (file order); leaves both workers and the gateway healthy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from labtest import lab_host, wait_until

PROM = "http://127.0.0.1:9090"
testinfra_hosts = ["sfm-gateway-a"]


def _api(host: Any, path: str) -> dict[str, Any]:
    out = host.run(f"curl -s --max-time 5 {PROM}{path}")
    try:
        result: dict[str, Any] = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {}
    return result


def _targets(host: Any) -> dict[tuple[str, str, str], str]:
    """(job, host, service) -> health of every active target."""
    active = (_api(host, "/api/v1/targets").get("data") or {}).get("activeTargets") or []
    return {
        (t["labels"].get("job", ""), t["labels"].get("host", ""), t["labels"].get("service", "")): t.get("health", "")
        for t in active
    }


def _firing(host: Any, name: str) -> list[dict[str, str]]:
    alerts = (_api(host, "/api/v1/alerts").get("data") or {}).get("alerts") or []
    return [a["labels"] for a in alerts if a["labels"].get("alertname") == name and a.get("state") == "firing"]


EXPECTED = {
    ("sparkfleet-services", "sfm-gateway-a", "standin"),
    ("sparkfleet-services", "sfm-gateway-b", "standin"),
    ("sparkfleet-nodes", "sfm-gateway-a", ""),
    ("sparkfleet-nodes", "sfm-gateway-b", ""),
    ("sparkfleet-gateway", "sfm-gateway-a", "gateway"),
    ("prometheus", "sfm-gateway-a", ""),
}


def test_prometheus_scrapes_every_stand_in_the_gateway_and_the_hosts(host: Any) -> None:
    assert host.service("prometheus").is_running
    assert wait_until(lambda: _targets(host) == dict.fromkeys(EXPECTED, "up"), 60, 2), _targets(host)
    # The stand-in's own metrics (llama.cpp --metrics), under the one name the rules give them.
    query = _api(host, "/api/v1/query?query=llamacpp:requests_processing")
    assert {r["metric"]["host"] for r in query["data"]["result"]} == {"sfm-gateway-a", "sfm-gateway-b"}


def test_the_rules_are_loaded_with_the_verify_limits(host: Any) -> None:
    groups = {g["name"]: g for g in _api(host, "/api/v1/rules")["data"]["groups"]}
    assert {r["name"] for r in groups["sparkfleet-alerts"]["rules"]} >= {"SparkfleetServiceDown", "SparkfleetTTFTHigh"}
    limits = {(r["labels"]["host"], r["name"]) for r in groups["sparkfleet-limits"]["rules"]}
    assert ("sfm-gateway-b", "sparkfleet:verify_min_output_tps") in limits


def test_a_stopped_stand_in_fires_service_down_in_prometheus(host: Any) -> None:
    b = lab_host("sfm-gateway-b")
    assert not _firing(host, "SparkfleetServiceDown")
    b.run("systemctl stop sparkfleet-standin.service")
    try:
        assert wait_until(lambda: bool(_firing(host, "SparkfleetServiceDown")), 60, 1), _api(host, "/api/v1/alerts")
        (fired,) = _firing(host, "SparkfleetServiceDown")
        assert (fired["host"], fired["service"], fired["severity"]) == ("sfm-gateway-b", "standin", "critical")
    finally:
        b.run("systemctl start sparkfleet-standin.service")
    assert wait_until(lambda: b.run("curl -sf -o /dev/null http://127.0.0.1:8080/health").rc == 0, 120, 2)
    assert wait_until(lambda: not _firing(host, "SparkfleetServiceDown"), 60, 1)
    # The gateway has the worker back before the next scenario step.
    assert wait_until(
        lambda: '"healthy_workers":2' in host.run("curl -s http://127.0.0.1:30080/readiness").stdout.replace(" ", ""),
        120,
        2,
    )


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _address(container: str) -> str:
    """The container's address on the scenario's network, which the controller routes to (docker's bridge)."""
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
    out = subprocess.run(["docker", "inspect", "-f", fmt, container], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run does)")
def test_a_lab_admin_sees_the_lab_series_on_prometheus_graph_page(host: Any) -> None:
    """What a lab admin opens: Prometheus's graph page (the classic UI Debian's package serves), rendered by a real
    headless browser from the controller, its table listing the stand-ins' own series of both hosts."""
    assert CHROMIUM is not None
    query = urllib.parse.urlencode({"g0.expr": "llamacpp:requests_processing", "g0.tab": "1"})
    url = f"http://{_address('sfm-gateway-a')}:9090/classic/graph?{query}"
    # --no-sandbox: CI runs tests as root, where Chromium's sandbox refuses to start.
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
               "--virtual-time-budget=15000"]  # fmt: skip

    def rendered() -> str:
        proc = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False)
        return proc.stdout

    dom = ""

    def both_hosts() -> bool:
        nonlocal dom
        dom = rendered()
        return all(f'host="{h}"' in dom for h in ("sfm-gateway-a", "sfm-gateway-b"))

    assert wait_until(both_hosts, 90, 3), dom[-3000:]
    assert "llamacpp:requests_processing{" in dom
    # The page as the admin sees it, kept for a human to look at (.cache/molecule/prometheus-graph.png).
    out = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", ".")) / ".cache" / "molecule" / "prometheus-graph.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*browser, f"--screenshot={out}", "--window-size=1280,900", url],
                   capture_output=True, timeout=120, check=False)  # fmt: skip
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, len(data)
