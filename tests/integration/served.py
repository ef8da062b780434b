"""One lab host converged with site.yml, shared by the integration tests that need a serving host
(tests/integration/conftest.py's session fixture ``served_host``): booted, prepared, run once with
``site.yml --check`` while still fresh (it must pass and change nothing), then converged once.

It serves the stand-in ``GOOD`` (port 8080) and gives the lab users (``LAB_USERS``) docker. What a lab admin
expects of it right after converge is test_converged_site.py. Tests that change it put it back (test_rollback.py
ends serving ``GOOD`` alone), and the tests that compare the host before and after do it within one test.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_host_runtime import HOST_IMAGE, LabHost, _start

ROOT = Path(__file__).resolve().parent.parent.parent
SITE = ROOT / "site.yml"
ARCHIVE = ROOT / "lab" / ".state" / "images" / "llm-standin.tar"
WHEELHOUSE = ROOT / "lab" / ".state" / "wheelhouse"
NAME = "sfi-served-spark"
# The lab host image's two lab users (lab/sparkfleet_lab.py), given docker by the docker_host role.
LAB_USERS = ["student1", "student2"]

GOOD = {
    "name": "standin",
    "engine": "openai",
    "image": "sparkfleet-lab/llm-standin:llama.cpp",
    "image_archive": str(ARCHIVE),
    "model": "sparkfleet/tiny-llama",
    "gpu": "none",
    "port": 8080,
    "container_port": 8080,
    "command": ["--port", "8080", "--alias", "sparkfleet/tiny-llama", "--threads", "1", "--poll", "0"],
}


def _inventory(workdir: Path, container: str) -> None:
    inventory = workdir / "inventory"
    inventory.mkdir()
    host = {
        "ansible_connection": "community.docker.docker",
        "ansible_host": container,
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    (inventory / "hosts.yml").write_text(json.dumps({"all": {"children": {"spark-lab": {"hosts": {NAME: host}}}}}))
    group_vars = inventory / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    for name in ("profiles.yml", "verify.yml"):
        (group_vars / name).symlink_to(ROOT / "group_vars" / "all" / name)
    (group_vars / "demo-verify.yml").symlink_to(ROOT / "inventories" / "demo" / "group_vars" / "all" / "verify.yml")
    settings = {
        "bench_venv_wheelhouse": str(WHEELHOUSE),
        "llm_verify_report_dir": str(workdir / "reports"),
        "llm_serving_health_timeout_s": 300,
        "llm_serving_services": [GOOD],
        "sparkfleet_lab_users": LAB_USERS,
        # Every rerun here tests the real full converge (test_ansible_runner.py's changed=0 among them), never the
        # converged-host fast path: test_fast_path.py alone asks for that (docs/development.md, "Reruns").
        "sparkfleet_full_converge": True,
    }
    (group_vars / "lab.yml").write_text(json.dumps(settings))


def host_state(host: LabHost) -> str:
    """A checksum of what a run could change: /etc (units, env files, daemon.json), the unit directory and
    the running containers with their start times."""
    out = host.sh(
        "find /etc /etc/systemd/system -xdev -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum; "
        "ls -la --time-style=+%s /etc/systemd/system | sha256sum; "
        "docker ps -aq | xargs -r docker inspect --format '{{.Name}} {{.Image}} {{.State.Status}} {{.State.StartedAt}}'"
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@contextlib.contextmanager
def inventory_host(tmp_path_factory: pytest.TempPathFactory, prefix: str) -> Iterator[LabHost]:
    """A lab host booted and prepared, with the inventory of _inventory (the stand-in, GOOD); removed after."""
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    if subprocess.run(["docker", "image", "inspect", HOST_IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"image {HOST_IMAGE} is absent: run `make images`")
    if not ARCHIVE.is_file() or not WHEELHOUSE.is_dir():
        pytest.skip(f"{ARCHIVE} or {WHEELHOUSE} is absent: run `make images`")
    workdir = tmp_path_factory.mktemp(prefix)
    container = f"sfi-{prefix}-{uuid.uuid4().hex[:8]}"
    _inventory(workdir, container)
    _start(container)
    host = LabHost(container, workdir)
    try:
        rc, output = host.playbook(ROOT / "molecule" / "shared" / "prepare.yml")
        assert rc == 0, f"prepare failed:\n{output[-4000:]}"
        yield host
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=False)


def converged_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    with inventory_host(tmp_path_factory, "served") as host:
        # --check on a host that has none of it yet: every stage must get through without a change to lean on.
        before = host_state(host)
        rc, output = host.playbook(SITE, "--check")
        assert rc == 0, f"site.yml --check on the fresh host failed:\n{output[-6000:]}"
        assert host_state(host) == before, "site.yml --check changed the fresh host"
        rc, output = host.playbook(SITE)
        assert rc == 0, f"converge failed:\n{output[-6000:]}"
        yield host
