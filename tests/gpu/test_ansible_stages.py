"""Ansible's stages that make sense on a GPU machine without Docker or systemd, with a local connection:
preflight (GPU detection, the serving plan) and verify (llm_benchmark against the running server, the fleet
report), from ansible-core alone (lab/gpu/inventory.yml; on the device machine from the carried wheels)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gpu.conftest import ON_CPU, Server

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(importlib.util.find_spec("ansible.cli") is None, reason="ansible-core is not installed"),
]


def test_preflight_and_verify_with_a_local_connection(server: Server, out_dir: Path) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    child_env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        LC_ALL="C.UTF-8",
        LANG="C.UTF-8",
        SPARKFLEET_GPU_PORT=port,
        SPARKFLEET_GPU_MODEL=server.model,
        SPARKFLEET_GPU_OUT=str(out_dir),
        # On the CPU there is no GPU to serve on: the service asks for none, as the demo lab's do.
        SPARKFLEET_GPU_SERVICE_GPU="none" if ON_CPU else "auto",
    )
    argv = [sys.executable, "-m", "ansible", "playbook", "-i", str(ROOT / "lab/gpu/inventory.yml")]
    argv += [str(ROOT / "playbooks/preflight.yml"), str(ROOT / "playbooks/verify.yml")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=child_env, cwd=ROOT, check=False)
    (out_dir / "ansible.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "failed=0" in proc.stdout
    runs = sorted(p for p in (out_dir / "ansible").iterdir() if p.is_dir() and not p.is_symlink())
    assert runs, "the verify stage wrote no report"
    fleet = json.loads((runs[-1] / "fleet-report.json").read_text())
    (row,) = fleet["rows"]
    assert row["host"] == "gpu-device"
    assert row["profile"] == ("none" if ON_CPU else "hopper")
    report = json.loads((runs[-1] / "gpu-device" / "transformers-serve.json").read_text())
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["readiness"] == statuses["chat"] == statuses["load"] == "pass", statuses
    assert (runs[-1] / "fleet-report.html").stat().st_size > 1000
