"""execution-environment.yml (ansible-builder schema v3): its build context is written with no container runtime,
and what it installs is what CI tests (requirements.txt, collections/requirements.yml)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EE = ROOT / "execution-environment.yml"
BUILDER = Path(sys.executable).with_name("ansible-builder")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_the_pins_are_the_tested_ones() -> None:
    ee = yaml.safe_load(EE.read_text())
    tested = _pins(ROOT / "requirements.txt")
    deps = ee["dependencies"]
    assert ee["version"] == 3
    for key in ("ansible_core", "ansible_runner"):
        name, version = deps[key]["package_pip"].split("==")
        assert tested[name] == version, key
    for line in deps["python"]:
        name, version = line.split("==")
        assert tested[name] == version, line
    assert deps["galaxy"] == "collections/requirements.yml"


@pytest.mark.skipif(not BUILDER.exists(), reason="ansible-builder is not installed (requirements-dev.txt)")
def test_ansible_builder_writes_the_build_context(tmp_path: Path) -> None:
    ctx = tmp_path / "context"
    res = subprocess.run(
        [str(BUILDER), "create", "-f", str(EE), "-c", str(ctx), "--output-filename", "Containerfile"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    containerfile = (ctx / "Containerfile").read_text()
    assert "quay.io/centos/centos:stream9" in containerfile
    assert 'ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"' in containerfile
    assert "ansible-galaxy collection install" in containerfile
    build = ctx / "_build"
    assert yaml.safe_load((build / "requirements.yml").read_text()) == yaml.safe_load(
        (ROOT / "collections" / "requirements.yml").read_text()
    )
    assert _pins(build / "requirements.txt") == {"docker": "7.1.0", "jinja2": "3.1.6", "pyyaml": "6.0.3",
                                                 "requests": "2.32.5"}  # fmt: skip
    assert "openssh-clients [platform:rpm]" in (build / "bindep.txt").read_text()
