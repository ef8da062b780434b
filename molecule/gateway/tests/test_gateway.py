"""Verify llm_gateway on two lab hosts: smg in front of two llama.cpp stand-ins, real units, real faults.

Tests run in file order; each leaves both workers and the gateway healthy."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from labtest import lab_host, wait_until

ROOT = Path(__file__).resolve().parents[3]
# host_vars/sfm-gateway-a.yml's sparkfleet_gateway_api_key: a leading '-', a backslash, quotes, spaces, '$', '%'.
KEY = "-molecule \\key \"not\" 'secret' $HOME %s 0123"
# What systemd's EnvironmentFile quoting, a shell or a launcher passing "--api-key", key would have made of it.
MANGLED = [
    "molecule \\key \"not\" 'secret' $HOME %s 0123",  # the leading '-' lost
    "-molecule key \"not\" 'secret' $HOME %s 0123",  # the backslash unquoted away
    "-molecule \\key not secret $HOME %s 0123",  # the quotes unquoted away
    "-molecule \\key \"not\" 'secret' /root %s 0123",  # $HOME expanded
    "-molecule",  # split at the first space
    KEY[:-1],
]
GW = "http://127.0.0.1:30080"
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
testinfra_hosts = ["sfm-gateway-a"]


def _host(name: str) -> Any:
    return lab_host(name)


def _wait(cond: Callable[[], bool], timeout: float = 120.0, step: float = 2.0) -> bool:
    return wait_until(cond, timeout, step)


def _readiness(host: Any) -> dict[str, Any]:
    out = host.run(f"curl -s --max-time 5 {GW}/readiness")
    try:
        result: dict[str, Any] = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {}
    return result


def _ready(host: Any, healthy: int, total: int) -> bool:
    r = _readiness(host)
    return r.get("healthy_workers") == healthy and r.get("total_workers") == total


def _chat(host: Any, content: str, key: str | None = KEY) -> tuple[int, dict[str, Any]]:
    body = json.dumps(
        {"model": "sparkfleet/tiny-llama", "messages": [{"role": "user", "content": content}], "max_tokens": 4}
    )
    auth = "-H " + shlex.quote(f"Authorization: Bearer {key}") if key else ""
    out = host.run(
        f"curl -s --max-time 60 -o /tmp/gw-reply -w '%{{http_code}}' {auth} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)} {GW}/v1/chat/completions; echo; cat /tmp/gw-reply"
    )
    code, _, reply = out.stdout.partition("\n")
    try:
        parsed = json.loads(reply)
    except json.JSONDecodeError:
        parsed = {}
    return int(code or 0), parsed


def _served(host: Any) -> int:
    """Requests the stand-in on this host has finished (llama.cpp logs one slot release per request)."""
    out = host.run("docker logs sparkfleet-standin 2>&1 | grep -c 'stop processing'")
    return int(out.stdout.strip() or 0)


def _playbook(playbook: str, extra_vars: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        ANSIBLE_FORCE_VALID_GROUP_NAMES="ignore",
        ANSIBLE_INTERPRETER_PYTHON="/usr/bin/python3",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            INVENTORY,
            str(ROOT / "molecule" / "gateway" / playbook),
            "-e",
            json.dumps(extra_vars),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_unit_runs_with_restart_policy_and_the_key_only_in_a_0600_file(host: Any) -> None:
    svc = host.service("sparkfleet-gateway.service")
    assert svc.is_running
    assert svc.is_enabled
    unit = host.file("/etc/systemd/system/sparkfleet-gateway.service").content_string
    assert "Ansible managed" in unit
    assert "Restart=always" in unit
    assert "--policy cache_aware" in unit
    assert "--discovery-provider file" in unit
    assert "--port 30080" in unit
    assert KEY not in unit
    assert "EnvironmentFile" not in "".join(line for line in unit.splitlines() if not line.startswith("#"))
    key_file = host.file("/etc/sparkfleet/gateway/api-key")
    assert (key_file.user, key_file.group, key_file.mode) == ("root", "root", 0o600)
    # The key's bytes and nothing else (no newline, no quoting).
    on_host = host.check_output("base64 -w0 /etc/sparkfleet/gateway/api-key")
    assert on_host == base64.b64encode(KEY.encode()).decode()
    assert not host.file("/etc/sparkfleet/gateway/gateway.env").exists
    # Not on any command line, not in the gateway's environment, not in the journal.
    assert KEY not in host.check_output("ps -eo args")
    pid = host.check_output("systemctl show -p MainPID --value sparkfleet-gateway.service")
    assert "SPARKFLEET_GATEWAY_API_KEY" not in host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert KEY not in host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert KEY not in host.check_output(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
    assert KEY not in host.run("journalctl -u sparkfleet-gateway --no-pager").stdout
    manifest = json.loads(host.file("/etc/sparkfleet/gateway/workers.json").content_string)
    assert manifest == {
        "version": 1,
        "workers": [{"url": "http://sfm-gateway-a:8080"}, {"url": "http://sfm-gateway-b:8080"}],
    }


def test_readiness_counts_both_workers_and_prometheus_answers(host: Any) -> None:
    assert _ready(host, 2, 2)
    assert "smg_" in host.check_output("curl -sf http://127.0.0.1:29000/metrics")


def test_prometheus_listens_on_loopback_only_and_the_api_on_every_interface(host: Any) -> None:
    listening = host.check_output("ss -Hltn")
    assert re.search(r"\s127\.0\.0\.1:29000\s", listening), listening
    assert not re.search(r"\s(0\.0\.0\.0|\*|\[::\]):29000\s", listening), listening
    assert re.search(r"\s0\.0\.0\.0:30080\s", listening), listening
    other = _host("sfm-gateway-b")
    # From the other host: the API answers, the metrics port refuses the connection.
    api = other.run("curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://172.30.61.11:30080/health")
    assert api.stdout == "200"
    assert other.run("curl -s -o /dev/null --max-time 5 http://172.30.61.11:29000/metrics").rc != 0


def test_workers_behind_the_keyed_gateway_are_closed_to_everyone_else(host: Any) -> None:
    """Nobody bypasses the key by talking to a worker: b's worker answers the gateway's host (a) and b itself,
    and refuses every other address of the lab network (a itself is its own gateway host: it answers a alone)."""
    other = _host("sfm-gateway-b")
    assert host.run("curl -sf -o /dev/null --max-time 5 http://172.30.61.12:8080/v1/models").rc == 0
    assert other.run("curl -sf -o /dev/null --max-time 5 http://127.0.0.1:8080/v1/models").rc == 0
    # b is not a gateway host: a's worker drops it (no answer, not even a refusal)
    assert other.run("curl -s -o /dev/null --max-time 5 http://172.30.61.11:8080/v1/models").rc == 28
    rules = other.check_output("iptables -S SPARKFLEET-DOCKER")
    assert "--ctorigdstport 8080 --ctdir ORIGINAL -j DROP" in rules, rules
    # a (the gateway's host, by its default route's address) is the only source allowed
    assert re.findall(r"-s (\S+) ", rules) == ["172.30.61.11/32"], rules
    assert "sparkfleet-firewall.service" in other.check_output("systemctl list-units --no-legend sparkfleet-firewall*")
    # The run said who may reach each port.
    unit = other.check_output("cat /etc/systemd/system/sparkfleet-firewall.service")
    assert unit.splitlines()[3].startswith("# org.sparkfleet.owned ")


def test_requests_without_the_key_are_refused(host: Any) -> None:
    assert _chat(host, "hello", key=None)[0] == 401
    assert _chat(host, "hello", key="wrong-key-wrong-key")[0] == 401
    # The hostile key reached smg exactly: every mangled form of it is refused.
    assert {m: _chat(host, "hello", key=m)[0] for m in MANGLED} == dict.fromkeys(MANGLED, 401)
    assert host.run(f"curl -s -o /dev/null -w '%{{http_code}}' {GW}/workers").stdout == "401"
    code, reply = _chat(host, "hello")
    assert code == 200
    assert reply["usage"]["completion_tokens"] > 0


def test_check_diff_after_converge_changes_nothing_on_the_gateway_host() -> None:
    """The gateway stage under --check --diff on the converged lab: changed=0 (nothing copied, pip not asked)."""
    res = _playbook("gateway-stage.yml", {}, "--check", "--diff")
    out = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr)
    assert res.returncode == 0, out[-3000:]
    recap = dict(re.findall(r"^(sfm-gateway-[ab])\s*:\s*ok=\d+\s+changed=(\d+)", out, re.MULTILINE))
    assert recap == {"sfm-gateway-a": "0", "sfm-gateway-b": "0"}, out[-3000:]
    assert KEY not in out


def test_the_class_endpoint_file_names_the_url_and_the_variable_never_the_key() -> None:
    text = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports" / "gateway-endpoint.txt").read_text()
    assert "http://172.30.42.11" not in text
    assert "http://172.30.61.11:30080/v1" in text
    assert "sparkfleet_gateway_api_key" in text
    assert "HTTP 200" in text
    assert KEY not in text


def test_report_through_the_gateway_and_the_comparison() -> None:
    latest = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports" / "latest"
    report = json.loads((latest / "sfm-gateway-a" / "gateway-sparkfleet_tiny-llama.json").read_text())
    assert report["service"] == "gateway:sparkfleet/tiny-llama"
    assert report["ok"], report["failures"]
    assert KEY not in json.dumps(report)
    md = (latest / "fleet-report.md").read_text()
    assert "## Through the gateway" in md
    assert "cache hit" in md
    assert "Through the gateway" in (latest / "fleet-report.html").read_text()


def test_distinct_prompts_use_both_workers() -> None:
    a, b = _host("sfm-gateway-a"), _host("sfm-gateway-b")
    before = (_served(a), _served(b))
    for i in range(16):
        assert _chat(a, f"conversation {i} " + "x" * (i * 7) + f" distinct prefix {i * 7919}")[0] == 200
    assert _served(a) > before[0]
    assert _served(b) > before[1]


def test_a_killed_worker_is_retried_elsewhere_and_used_again_when_back() -> None:
    a, b = _host("sfm-gateway-a"), _host("sfm-gateway-b")
    b.run("docker kill sparkfleet-standin")
    b.run("systemctl stop sparkfleet-standin.service")
    codes = [_chat(a, f"while b is down {i} " + "y" * i)[0] for i in range(12)]
    assert codes == [200] * 12
    assert _wait(lambda: _readiness(a).get("healthy_workers") == 1, timeout=90)
    b.run("systemctl start sparkfleet-standin.service")
    assert _wait(lambda: b.run("curl -sf -o /dev/null http://127.0.0.1:8080/health").rc == 0, timeout=120)
    assert _wait(lambda: _ready(a, 2, 2), timeout=120)
    before = _served(b)
    for i in range(16):
        assert _chat(a, f"after b is back {i} " + "z" * (i * 5) + f" {i * 104729}")[0] == 200
    assert _served(b) > before


def test_the_health_gate_names_the_missing_worker_and_why() -> None:
    a, b = _host("sfm-gateway-a"), _host("sfm-gateway-b")
    b.run("systemctl stop sparkfleet-standin.service")
    try:
        res = _playbook("gateway-stage.yml", {"gateway_test_health_timeout_s": 45, "gateway_test_verify": False})
        out = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr).replace("\\n", " ").split())
        assert res.returncode != 0
        assert "missing: sfm-gateway-b/standin (sparkfleet/tiny-llama)" in out, out[-3000:]
        assert "http://sfm-gateway-b:8080" in out
        assert "not reachable from the gateway host" in out or "answers /health with HTTP" in out
        assert KEY not in out + res.stderr
    finally:
        b.run("systemctl start sparkfleet-standin.service")
    assert _wait(lambda: _ready(a, 2, 2), timeout=150)


def test_drain_removes_a_host_and_undrain_puts_it_back() -> None:
    a, b = _host("sfm-gateway-a"), _host("sfm-gateway-b")
    res = _playbook("drain.yml", {"gateway_test_action": "drain", "gateway_test_hosts": ["sfm-gateway-b"]})
    assert res.returncode == 0, res.stdout[-3000:]
    manifest = json.loads(a.file("/etc/sparkfleet/gateway/workers.json").content_string)
    assert manifest["workers"] == [{"url": "http://sfm-gateway-a:8080"}]
    assert _ready(a, 1, 1)
    before = _served(b)
    for i in range(8):
        assert _chat(a, f"drained {i} " + "d" * (i * 9))[0] == 200
    assert _served(b) == before
    res = _playbook("drain.yml", {"gateway_test_action": "undrain", "gateway_test_hosts": ["sfm-gateway-b"]})
    assert res.returncode == 0, res.stdout[-3000:]
    assert _ready(a, 2, 2)
    assert json.loads(a.file("/etc/sparkfleet/gateway/drained.json").content_string) == {"hosts": []}


def test_a_killed_gateway_is_brought_back_by_systemd(host: Any) -> None:
    pid = host.check_output("systemctl show -p MainPID --value sparkfleet-gateway.service")
    host.run("systemctl kill -s KILL sparkfleet-gateway.service")

    def back() -> bool:
        now = host.check_output("systemctl show -p MainPID --value sparkfleet-gateway.service")
        return now not in ("0", pid) and _ready(host, 2, 2)

    assert _wait(back, timeout=120)
    assert _chat(host, "after the gateway restart")[0] == 200


@pytest.mark.parametrize("path", ["/etc/sparkfleet/gateway/workers.plan.json"])
def test_the_plan_file_says_where_each_worker_comes_from(host: Any, path: str) -> None:
    plan = json.loads(host.file(path).content_string)
    assert [(w["host"], w["service"]) for w in plan["workers"]] == [
        ("sfm-gateway-a", "standin"),
        ("sfm-gateway-b", "standin"),
    ]
