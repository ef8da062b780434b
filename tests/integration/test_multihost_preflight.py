"""playbooks/preflight.yml on two local hosts with a service across hosts (docs/multi-host.md): each host plans
its own piece, and what cannot run is refused before any host changes (changed=0), naming the service, the host
and the fix (issue 21, item 5)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_preflight_playbook import ANSIBLE_PLAYBOOK, PLAYBOOK, ROOT

pytestmark = pytest.mark.lab

HOSTS = ["mh-a", "mh-b"]
SPLIT: dict[str, Any] = {
    "name": "tiny-split",
    "engine": "llama-cpp",
    "image": "sparkfleet-lab/llm-standin:llama.cpp",
    "model": "sparkfleet/tiny-llama",
    "gpu": "none",
    "hosts": HOSTS,
}


def inventory(tmp_path: Path, addresses: dict[str, str]) -> Path:
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    hosts = {h: {**local, **({"sparkfleet_fabric_address": addresses[h]} if h in addresses else {})} for h in HOSTS}
    path = tmp_path / "hosts-multihost.yml"
    path.write_text(json.dumps({"all": {"hosts": hosts, "children": {"pair": {"hosts": {h: {} for h in HOSTS}}}}}))
    return path


def run(
    tmp_path: Path, services: list[dict[str, Any]], *args: str, addresses: dict[str, str] | None = None
) -> tuple[int, str]:
    """ansible-playbook playbooks/preflight.yml on the two local hosts; (rc, output)."""
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip(f"{ANSIBLE_PLAYBOOK} not found: make venv")
    given = {"mh-a": "10.10.0.11", "mh-b": "10.10.0.12"} if addresses is None else addresses
    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps({"llm_serving_services": services, "sparkfleet_profile_override": "none"}))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
    }
    argv = [str(ANSIBLE_PLAYBOOK), str(PLAYBOOK), "-i", str(inventory(tmp_path, given)), "-e", f"@{varsfile}", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output: str, host: str) -> dict[str, int]:
    for line in output.splitlines():
        if line.startswith(host + " ") and "changed=" in line:
            return {k: int(v) for k, v in (p.split("=") for p in line.split(":", 1)[1].split())}
    raise AssertionError(output[-3000:])


def test_each_host_plans_its_piece_and_the_group_passes(tmp_path: Path) -> None:
    """Under --check --diff, as a dry run of site.yml starts."""
    rc, output = run(tmp_path, [SPLIT], "--check", "--diff")
    assert rc == 0, output[-4000:]
    assert "mh-a: profile none" in output and "mh-b: profile none" in output
    assert all(recap(output, h)["changed"] == 0 for h in HOSTS)


def test_bad_groups_are_refused_before_any_change(tmp_path: Path) -> None:
    services: list[dict[str, Any]] = [
        SPLIT,
        {**SPLIT, "name": "no-head", "port": 8081, "dist_port": 50053, "head": "mh-c"},
        {**SPLIT, "name": "by-group", "port": 8082, "dist_port": 50054, "hosts": None, "group": "pair", "nodes": 3},
    ]
    rc, output = run(tmp_path, services, addresses={"mh-a": "10.10.0.11"})
    assert rc != 0
    flat = " ".join(output.split())
    for text in (
        "(no-head).head 'mh-c' is not one of hosts (mh-a, mh-b): the head is one of them",
        "(by-group): nodes is 3, but group 'pair' has 2 host(s) (mh-a, mh-b): lower nodes or add hosts to the group",
        "(tiny-split): host mh-b has no fabric address: set sparkfleet_fabric_address",
    ):
        assert text in flat, output[-5000:]
    assert "nothing was changed" in output
    assert all(recap(output, h)["changed"] == 0 for h in HOSTS)


def test_a_host_of_the_group_outside_the_limit_is_refused(tmp_path: Path) -> None:
    rc, output = run(tmp_path, [SPLIT], "--limit", "mh-a")
    assert rc != 0
    flat = " ".join(output.split())
    assert "host(s) mh-b of the service are not in this run" in flat, output[-4000:]
    assert "Fix: run with --limit mh-a,mh-b (or no limit)" in flat
    assert recap(output, "mh-a")["changed"] == 0
