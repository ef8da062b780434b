"""Verify the seed's Dynamo deployment on two lab hosts: NVIDIA Dynamo's frontend (KV-aware routing) in front of
two mocker workers on two hosts, found through etcd; real units, a real worker stopped and brought back.

Tests run in file order; each leaves both workers registered and the frontend serving."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from labtest import chat, lab_host, wait_until

FRONTEND = "http://127.0.0.1:8000"
MODEL = "sparkfleet/tiny"
ADDRESSES = {"sfm-dynamo-a": "172.30.66.11", "sfm-dynamo-b": "172.30.66.12"}
REPORTS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports" / "latest"
testinfra_hosts = ["sfm-dynamo-a"]


def _host(name: str) -> Any:
    return lab_host(name)


def _wait(cond: Callable[[], bool], timeout: float = 90.0, step: float = 1.0) -> bool:
    return wait_until(cond, timeout, step)


def _chat(host: Any, content: str, max_tokens: int = 8) -> tuple[int, dict[str, Any]]:
    return chat(host, FRONTEND, MODEL, content, max_tokens)


def _content(reply: dict[str, Any]) -> str:
    return str(((reply.get("choices") or [{}])[0].get("message") or {}).get("content") or "")


def _workers(host: Any) -> list[str]:
    """The frontend's instances of the workers' generate endpoint, as their advertised TCP addresses."""
    out = host.run(f"curl -s --max-time 5 {FRONTEND}/health")
    try:
        health = json.loads(out.stdout)
    except json.JSONDecodeError:
        return []
    return sorted(
        str(i.get("transport", {}).get("tcp", ""))
        for i in health.get("instances", [])
        if i.get("endpoint") == "generate"
    )


def _generated(host: Any) -> int:
    """Requests this host's mocker has served on its generate endpoint (its system port's Prometheus metrics)."""
    metrics = host.run("curl -s --max-time 5 http://127.0.0.1:9090/metrics").stdout
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("dynamo_component_requests_total{") and 'dynamo_endpoint="generate"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def test_units_run_and_workers_advertise_their_host_s_address(host: Any) -> None:
    for name in ("dynamo-etcd", "dynamo-frontend", "mocker-a"):
        assert host.service(f"sparkfleet-{name}.service").is_running, name
    worker_b = _host("sfm-dynamo-b")
    assert worker_b.service("sparkfleet-mocker-b.service").is_running
    assert "--router-mode kv" in host.file("/etc/systemd/system/sparkfleet-dynamo-frontend.service").content_string
    for h, name in ((host, "mocker-a"), (worker_b, "mocker-b")):
        env = h.file(f"/etc/sparkfleet/serving/{name}.env")
        assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
        text = h.run(f"cat /etc/sparkfleet/serving/{name}.env").stdout
        address = ADDRESSES["sfm-dynamo-a" if name == "mocker-a" else "sfm-dynamo-b"]
        for var in ("DYN_TCP_RPC_HOST", "DYN_TCP_RESPONSE_STREAM_HOST", "DYN_EVENT_PLANE_HOST"):
            assert f"{var}={address}\n" in text, (name, var)
        assert "ETCD_ENDPOINTS=http://172.30.66.11:2379\n" in text
        assert "DYN_REQUEST_PLANE=tcp\n" in text


def test_the_benchmark_through_the_frontend_passed_and_the_report_is_written() -> None:
    report = json.loads((REPORTS / "fleet-report.json").read_text())
    rows = {(r["host"], r["service"]): r for r in report["rows"]}
    assert list(rows) == [("sfm-dynamo-a", "dynamo-frontend")]  # workers and etcd are not LLM endpoints
    row = rows[("sfm-dynamo-a", "dynamo-frontend")]
    assert row["status"] == "PASS", row
    markdown = (REPORTS / "fleet-report.md").read_text()
    assert "expected 1, serving 1" in markdown
    assert "- not benchmarked: sfm-dynamo-b/mocker-b: a Dynamo worker: verified through its frontend" in markdown
    assert "MISSING" not in markdown
    assert (REPORTS / "sfm-dynamo-a" / "dynamo-frontend.json").is_file()


def test_both_workers_are_registered_at_their_hosts_addresses(host: Any) -> None:
    workers = _workers(host)
    assert len(workers) == 2, workers
    assert [w.split(":", 1)[0] for w in workers] == ["172.30.66.11", "172.30.66.12"]
    code, reply = _chat(host, "hello from the lab")
    assert code == 200, reply
    assert re.search(r"[a-z]{3}", _content(reply)), reply  # visible words, not empty text


def test_kv_aware_routing_reuses_a_cached_prefix(host: Any) -> None:
    prompt = " ".join(f"word{i} of a long shared prefix" for i in range(40))
    assert _chat(host, prompt)[0] == 200
    code, reply = _chat(host, prompt)
    assert code == 200
    assert reply["usage"]["prompt_tokens_details"]["cached_tokens"] > 0, reply["usage"]


def test_a_worker_stopped_the_frontend_keeps_serving_with_the_other(host: Any) -> None:
    worker_b = _host("sfm-dynamo-b")
    served_a = _generated(host)
    worker_b.run("systemctl stop sparkfleet-mocker-b.service")
    try:
        # Every request while the frontend learns of it, and after, is answered by worker a.
        for i in range(10):
            code, reply = _chat(host, f"while b is stopped {i}")
            assert code == 200, reply
            assert _content(reply), reply
        assert _wait(lambda: len(_workers(host)) == 1, timeout=60), _workers(host)
        assert _workers(host)[0].startswith("172.30.66.11:")
        for i in range(5):
            code, reply = _chat(host, f"only a is left {i}")
            assert code == 200 and _content(reply), reply
        assert _generated(host) >= served_a + 15
    finally:
        worker_b.run("systemctl start sparkfleet-mocker-b.service")


def _burst(host: Any, count: int) -> list[str]:
    """``count`` chats at once, each opening with its own words: no prefix that a worker has cached, so the KV
    router chooses by load (a shared prefix would send them all to the worker that holds it). HTTP codes."""
    calls = []
    for i in range(count):
        body = json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": f"{uuid.uuid4().hex} {i}"}], "max_tokens": 64}
        )
        calls.append(
            f"curl -s --max-time 30 -o /dev/null -w '%{{http_code}}\\n' -H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)} {FRONTEND}/v1/chat/completions &"
        )
    return host.run(" ".join(calls) + " wait").stdout.split()


def _routes_to(host: Any, worker: Any) -> bool:
    """Bursts of fresh prompts, every one answered, until the frontend has sent one to ``worker`` (its own generate
    counter rises); False after ten bursts."""
    for _ in range(10):
        codes = _burst(host, 4)
        assert codes == ["200"] * 4, codes
        if _generated(worker) > 0:
            return True
    return False


def test_the_worker_back_rejoins_and_is_routed_to_again(host: Any) -> None:
    worker_b = _host("sfm-dynamo-b")
    assert worker_b.service("sparkfleet-mocker-b.service").is_running
    assert _wait(lambda: len(_workers(host)) == 2, timeout=120), _workers(host)
    assert _generated(worker_b) == 0  # a new process: its counters start again
    assert _routes_to(host, worker_b), "the frontend never routed a request to the worker that came back"


def test_a_worker_killed_is_restarted_and_the_frontend_serves_throughout(host: Any) -> None:
    """A crash, not a clean stop: worker b's container killed (SIGKILL: no deregistration, its etcd lease stays
    until it expires). Every request meanwhile is answered; systemd (Restart=always) brings b back, it registers
    anew, its dead instance leaves the list, and the frontend routes to it again."""
    worker_b = _host("sfm-dynamo-b")
    assert _wait(lambda: len(_workers(host)) == 2, timeout=120), _workers(host)

    def restarts() -> str:
        return str(worker_b.run("systemctl show -p NRestarts --value sparkfleet-mocker-b.service").stdout.strip())

    before = restarts()
    (old_b,) = [w for w in _workers(host) if w.startswith("172.30.66.12:")]
    killed = worker_b.run("docker kill --signal KILL sparkfleet-mocker-b")
    assert killed.rc == 0, killed.stderr
    for i in range(10):
        code, reply = _chat(host, f"while b is down {i}")
        assert code == 200 and _content(reply), reply
    assert _wait(lambda: restarts() != before and worker_b.service("sparkfleet-mocker-b.service").is_running, 120)

    # Back in the list at b's address as a new instance, and only once: the killed one leaves when its etcd lease
    # expires (it is never renewed again), so the next test finds two workers.
    def b_instances() -> list[str]:
        return [w for w in _workers(host) if w.startswith("172.30.66.12:")]

    assert _wait(lambda: len(b_instances()) == 1 and b_instances()[0] != old_b, timeout=120), _workers(host)
    assert _routes_to(host, worker_b), "the frontend never routed a request to the worker systemd restarted"
