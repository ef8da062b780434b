"""What a lab admin expects of a host right after site.yml, on the shared converged lab host (served.py).

systemd running, the Docker engine answering and enabled, the lab users in the docker group, a valid daemon.json that
only root may write, the bench venv with its pinned tools, the service's unit enabled, active and restarting, a chat
completion answered by the service, and no world-writable file of sparkfleet's. The host was also run with
``site.yml --check`` while still fresh (served.py), and test_ansible_runner.py reruns site.yml with changed=0.
"""

from __future__ import annotations

import json
import shlex

import pytest

from tests.integration.served import GOOD, LAB_USERS
from tests.integration.test_host_runtime import LabHost

pytestmark = pytest.mark.lab

SERVICE = f"sparkfleet-{GOOD['name']}"


def _out(host: LabHost, command: str) -> str:
    res = host.sh(command)
    assert res.returncode == 0, f"{command}: {res.stderr}"
    return res.stdout.strip()


def test_systemd_running(served_host: LabHost) -> None:
    assert served_host.sh("systemctl is-system-running").stdout.strip() in ("running", "degraded")


def test_docker_engine_answers(served_host: LabHost) -> None:
    assert _out(served_host, "systemctl is-active docker") == "active"
    assert _out(served_host, "systemctl is-enabled docker") == "enabled"
    assert _out(served_host, "docker info --format '{{.ServerVersion}}'")


def test_lab_users_can_use_docker(served_host: LabHost) -> None:
    for user in LAB_USERS:
        assert "docker" in _out(served_host, f"id -nG {user}").split(), user


def test_daemon_json_is_valid_json(served_host: LabHost) -> None:
    if served_host.sh("test -e /etc/docker/daemon.json").returncode == 0:
        json.loads(_out(served_host, "cat /etc/docker/daemon.json"))
        assert int(_out(served_host, "stat -c %a /etc/docker/daemon.json"), 8) & 0o002 == 0


def test_bench_venv_has_its_pinned_tools(served_host: LabHost) -> None:
    version = "/opt/sparkfleet/venv/bin/python -c 'import jsonschema; print(jsonschema.__version__)'"
    assert _out(served_host, version) == "4.23.0"


def test_service_unit_enabled_active_and_restarting(served_host: LabHost) -> None:
    assert _out(served_host, f"systemctl is-enabled {SERVICE}") == "enabled"
    assert _out(served_host, f"systemctl is-active {SERVICE}") == "active"
    assert "Restart=always" in _out(served_host, f"systemctl show {SERVICE} -p Restart -p FragmentPath")


def test_service_answers_a_chat_completion(served_host: LabHost) -> None:
    body = json.dumps({"model": GOOD["model"], "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8})
    url = f"http://127.0.0.1:{GOOD['port']}/v1/chat/completions"
    reply = json.loads(
        _out(served_host, f"curl -sf -m 60 -H 'content-type: application/json' -d {shlex.quote(body)} {url}")
    )
    assert reply["choices"][0]["message"]["role"] == "assistant"
    assert reply["usage"]["completion_tokens"] > 0


def test_no_world_writable_sparkfleet_files(served_host: LabHost) -> None:
    found = served_host.sh("find /etc/sparkfleet /opt/sparkfleet /etc/systemd/system -xdev -perm -0002 -type f")
    assert found.stdout.strip() == ""
