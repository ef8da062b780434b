"""Verify llm_serving on a lab host: real units, a real OpenAI-compatible server (the llama.cpp stand-in),
real restarts. Tests run in file order; each leaves both services healthy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = {"standin-a": 8080, "standin-b": 8081}


def _healthy(host: Any, port: int) -> bool:
    return host.run(f"curl -sf -o /dev/null http://127.0.0.1:{port}/v1/models").rc == 0


def _container_id(host: Any, name: str) -> str:
    return host.check_output(f"docker ps -q --no-trunc --filter name=^/sparkfleet-{name}$")


def _active_since(host: Any, name: str) -> str:
    return host.check_output(f"systemctl show -p ActiveEnterTimestampMonotonic --value sparkfleet-{name}.service")


def _wait(host: Any, cond: Callable[[], bool], timeout: float = 120.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(2)
    return False


def _all_back(host: Any, before: dict[str, str]) -> bool:
    return all(_container_id(host, n) not in ("", before[n]) and _healthy(host, p) for n, p in SERVICES.items())


def _converge(extra_vars: dict[str, Any]) -> str:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        ANSIBLE_FORCE_VALID_GROUP_NAMES="ignore",
        ANSIBLE_INTERPRETER_PYTHON="/usr/bin/python3",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
    )
    res = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(ROOT / "molecule" / "serving" / "converge.yml"),
            "-e",
            json.dumps(extra_vars),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return res.stdout


def _changed(output: str) -> int:
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)
    m = re.search(r"sfm-serving-station\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert m, output[-2000:]
    return int(m.group(1))


@pytest.mark.parametrize(("name", "port"), SERVICES.items())
def test_units_active_enabled_and_answer_chat(host: Any, name: str, port: int) -> None:
    svc = host.service(f"sparkfleet-{name}.service")
    assert svc.is_running
    assert svc.is_enabled
    unit = host.file(f"/etc/systemd/system/sparkfleet-{name}.service")
    assert "Ansible managed" in unit.content_string
    assert "Restart=always" in unit.content_string
    env_file = host.file(f"/etc/sparkfleet/serving/{name}.env")
    assert env_file.user == "root"
    assert env_file.mode == 0o600
    body = json.dumps(
        {"model": "any", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 8, "temperature": 0}
    )
    out = host.check_output(
        f"curl -sf -X POST -H 'Content-Type: application/json' -d '{body}' http://127.0.0.1:{port}/v1/chat/completions"
    )
    reply = json.loads(out)
    assert reply["object"] == "chat.completion"
    assert reply["usage"]["completion_tokens"] > 0
    assert "content" in reply["choices"][0]["message"]


def test_env_file_reaches_the_container(host: Any) -> None:
    env = host.check_output("docker exec sparkfleet-standin-a printenv SPARKFLEET_TEST_ENV")
    assert env == "visible-in-env-file"


def test_docker_kill_is_restarted_healthy(host: Any) -> None:
    before = _container_id(host, "standin-a")
    b_before = _container_id(host, "standin-b")
    assert before
    host.run("docker kill sparkfleet-standin-a")
    assert _wait(host, lambda: _container_id(host, "standin-a") not in ("", before) and _healthy(host, 8080))
    assert _container_id(host, "standin-b") == b_before  # only the killed one


def test_docker_restart_brings_both_back(host: Any) -> None:
    before = {n: _container_id(host, n) for n in SERVICES}
    assert host.run("systemctl restart docker").rc == 0
    assert _wait(host, lambda: _all_back(host, before), timeout=180)


def test_changed_argument_restarts_only_that_service(host: Any) -> None:
    before = {n: (_container_id(host, n), _active_since(host, n)) for n in SERVICES}
    out = _converge({"serving_test_extra_args": ["--threads", "1"]})
    assert _changed(out) > 0
    after = {n: (_container_id(host, n), _active_since(host, n)) for n in SERVICES}
    assert after["standin-a"][0] != before["standin-a"][0]
    assert after["standin-a"][1] != before["standin-a"][1]
    assert after["standin-b"] == before["standin-b"]
    assert "--threads 1" in host.file("/etc/systemd/system/sparkfleet-standin-a.service").content_string
    # The same vars again: nothing changes, nothing restarts.
    out = _converge({"serving_test_extra_args": ["--threads", "1"]})
    assert _changed(out) == 0
    again = {n: (_container_id(host, n), _active_since(host, n)) for n in SERVICES}
    assert again == after
    # Back to the scenario's own vars (idempotence already ran on them).
    _converge({})
    assert _healthy(host, 8080)


def test_absent_removes_unit_env_and_container(host: Any) -> None:
    out = _converge({"serving_test_b_state": "absent"})
    assert _changed(out) > 0
    assert not host.file("/etc/systemd/system/sparkfleet-standin-b.service").exists
    assert not host.file("/etc/sparkfleet/serving/standin-b.env").exists
    assert _container_id(host, "standin-b") == ""
    assert _healthy(host, 8080)
    out = _converge({"serving_test_b_state": "absent"})
    assert _changed(out) == 0
    _converge({})
    assert _healthy(host, 8081)


def test_a_service_dropped_from_the_inventory_is_reported_then_removed_on_request(host: Any) -> None:
    out = _converge({"serving_test_only_a": True})
    assert "standin-b: sparkfleet-standin-b.service runs from an earlier run" in " ".join(out.split())
    assert "llm_serving_remove_orphans: true to remove it" in " ".join(out.split())
    assert host.file("/etc/systemd/system/sparkfleet-standin-b.service").exists
    assert _healthy(host, 8081)  # reported, never silently removed
    out = _converge({"serving_test_only_a": True, "llm_serving_remove_orphans": True})
    assert _changed(out) > 0
    assert not host.file("/etc/systemd/system/sparkfleet-standin-b.service").exists
    assert _container_id(host, "standin-b") == ""
    _converge({})
    assert _healthy(host, 8081)
