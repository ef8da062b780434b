"""Checks on the hosts after site.yml converged (testinfra)."""

from __future__ import annotations


def test_systemd_running(host):  # type: ignore[no-untyped-def]
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded")


def test_docker_engine_answers(host):  # type: ignore[no-untyped-def]
    assert host.service("docker").is_running
    assert host.run("docker info --format '{{.ServerVersion}}'").rc == 0
