"""What a lab admin expects on every host after site.yml (testinfra, over Molecule's docker connection)."""

from __future__ import annotations

import json

SERVICE = "sparkfleet-standin-tiny-llama"


def test_systemd_running(host):  # type: ignore[no-untyped-def]
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded")


def test_docker_engine_answers(host):  # type: ignore[no-untyped-def]
    assert host.service("docker").is_running
    assert host.service("docker").is_enabled
    assert host.run("docker info --format '{{.ServerVersion}}'").rc == 0


def test_lab_users_can_use_docker(host):  # type: ignore[no-untyped-def]
    for user in ("student1", "student2"):
        assert "docker" in host.user(user).groups


def test_daemon_json_is_valid_json(host):  # type: ignore[no-untyped-def]
    daemon = host.file("/etc/docker/daemon.json")
    if daemon.exists:
        json.loads(daemon.content_string)
        assert daemon.mode & 0o002 == 0


def test_bench_venv_has_its_pinned_tools(host):  # type: ignore[no-untyped-def]
    res = host.run("/opt/sparkfleet/venv/bin/python -c 'import jsonschema; print(jsonschema.__version__)'")
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "4.23.0"


def test_service_unit_enabled_active_and_restarting(host):  # type: ignore[no-untyped-def]
    svc = host.service(SERVICE)
    assert svc.is_enabled
    assert svc.is_running
    unit = host.run(f"systemctl show {SERVICE} -p Restart -p FragmentPath").stdout
    assert "Restart=always" in unit


def test_service_answers_a_chat_completion(host):  # type: ignore[no-untyped-def]
    body = json.dumps(
        {"model": "sparkfleet/tiny-llama", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    )
    res = host.run(
        "curl -sf -m 60 -H 'content-type: application/json' -d %s http://127.0.0.1:8080/v1/chat/completions",
        body,
    )
    assert res.rc == 0, res.stderr
    reply = json.loads(res.stdout)
    assert reply["choices"][0]["message"]["role"] == "assistant"
    assert reply["usage"]["completion_tokens"] > 0


def test_no_world_writable_sparkfleet_files(host):  # type: ignore[no-untyped-def]
    res = host.run("find /etc/sparkfleet /opt/sparkfleet /etc/systemd/system -xdev -perm -0002 -type f 2>/dev/null")
    assert res.stdout.strip() == ""
