"""The lab tool: inventory parsing and the one-line failures a newcomer sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import sparkfleet_lab as lab

ROOT = Path(__file__).resolve().parents[2]


def test_demo_inventory_hosts_match_the_lab_spec() -> None:
    spec = lab.load_lab(ROOT / "inventories" / "demo")
    assert spec["hosts"] == {
        "spark-01": "172.30.42.11",
        "spark-02": "172.30.42.12",
        "station-01": "172.30.42.13",
    }
    assert spec["network"] == "sparkfleet-demo"


def test_missing_lab_spec_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    a:\n      ansible_host: 10.0.0.1\n")
    with pytest.raises(lab.LabError, match=r"lab\.yml"):
        lab.load_lab(tmp_path)


def test_inventory_without_addresses_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "lab.yml").write_text("network: n\nsubnet: 10.9.0.0/24\nimage: x\n")
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    a: {}\n")
    with pytest.raises(lab.LabError, match="no host with ansible_host"):
        lab.load_lab(tmp_path)


@pytest.mark.parametrize("command", ["images", "up", "down", "status"])
def test_no_docker_cli_says_what_to_install(tmp_path: Path, command: str) -> None:
    env = dict(os.environ, PATH=str(tmp_path))  # an empty PATH: no docker here
    res = subprocess.run(
        [sys.executable, str(ROOT / "lab" / "sparkfleet_lab.py"), command],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "docker CLI not found" in lines[0]
    assert "install Docker Engine" in lines[0]


def test_engine_not_answering_says_how_to_fix(tmp_path: Path) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:/usr/bin:/bin")
    res = subprocess.run(
        [sys.executable, str(ROOT / "lab" / "sparkfleet_lab.py"), "up"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert res.returncode == 2
    assert "Docker engine does not answer" in res.stderr
    assert "systemctl start docker" in res.stderr
