"""serving/state.py (module llm_service_state): everything the serving role reads from a host, in one call."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.contracts import OWNED_MARKER, owned_marker
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving import probes, state

# Captured on a lab host (lab/sparkfleet_lab.py, Debian bookworm, systemd 252) running the demo's stand-in.
SS = """LISTEN 0      4096    127.0.0.1:44821 0.0.0.0:*
LISTEN 0      4096   127.0.0.11:35281 0.0.0.0:*
LISTEN 0      4096      0.0.0.0:8080  0.0.0.0:*
LISTEN 0      128       0.0.0.0:22    0.0.0.0:*
LISTEN 0      128          [::]:22       [::]:*
"""
SYSTEMCTL_VERSION = "systemd 252 (252.39-1~deb12u2)\n+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT\n"
SHOW = """Id=sparkfleet-standin-tiny-llama.service
ActiveState=active
UnitFileState=enabled

Id=sparkfleet-standin-b.service
ActiveState=inactive
UnitFileState=
"""
PS = "standin-tiny-llama\t0.0.0.0:8080->8080/tcp\n"
EXEC = (
    "[Service]\nExecStart=/usr/bin/docker run --rm --name sparkfleet-standin-tiny-llama"
    " --label org.sparkfleet.service=standin-tiny-llama img\n"
)
UNIT = "#\n# Ansible managed\n#\n" + owned_marker("standin-tiny-llama", probe_url="http://127.0.0.1:8080") + "\n" + EXEC
# Units that only look like sparkfleet's: the label and the name pattern (what teardown used to go by), another
# service's marker copied in, a marker that is not JSON, a marker of another version, a marker too far down.
LOOKALIKES = {
    "sparkfleet-lookalike.service": EXEC.replace("standin-tiny-llama", "lookalike"),
    "sparkfleet-copied.service": UNIT,
    "sparkfleet-notjson.service": OWNED_MARKER + "{service: notjson}\n" + EXEC,
    "sparkfleet-v2.service": OWNED_MARKER + '{"v": 2, "service": "v2"}\n' + EXEC,
    "sparkfleet-late.service": "#\n" * 9 + owned_marker("late") + "\n" + EXEC,
}
PLAN = {"services": [{"name": "standin-tiny-llama"}, {"name": "standin-b"}, {"bad": "entry"}]}


class Runner:
    def __init__(self, answers: dict[str, tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return self.answers.get(argv[0] if argv[0] != "systemctl" else f"systemctl {argv[1]}", (0, "", ""))


def host(tmp_path: Path) -> tuple[Path, Path]:
    units = tmp_path / "system"
    env = tmp_path / "serving"
    units.mkdir()
    env.mkdir(mode=0o700)
    os.chmod(env, 0o700)
    (units / "sparkfleet-standin-tiny-llama.service").write_text(UNIT)
    (units / "sparkfleet-not-ours.service").write_text("[Service]\nExecStart=/bin/true\n")
    (units / "other.service").write_text(UNIT)
    for name, text in LOOKALIKES.items():
        (units / name).write_text(text)
    (units / "sparkfleet-linked.service").symlink_to(units / "sparkfleet-standin-tiny-llama.service")
    (env / "standin-tiny-llama.env").write_text(owned_marker("standin-tiny-llama") + "\nA=1\n")
    (env / "standin-b.env").write_text("A=1\n")
    os.chmod(env / "standin-tiny-llama.env", 0o600)
    return units, env


def answers() -> dict[str, tuple[int, str, str]]:
    return {
        "ss": (0, SS, ""),
        "/usr/bin/docker": (0, PS, ""),
        "systemctl --version": (0, SYSTEMCTL_VERSION, ""),
        "systemctl show": (0, SHOW, ""),
    }


def test_one_call_reads_everything_the_role_needs(tmp_path: Path) -> None:
    units, env = host(tmp_path)
    run = Runner(answers())
    got = state.read_state(PLAN, str(units), str(env), "/usr/bin/docker", run)
    assert got["problems"] == []
    assert probes.parse_listening_ports(got["listening"]) == {44821, 35281, 8080, 22}
    assert got["own_containers"] == PS
    assert got["systemd_version"] == 252
    # Only sparkfleet-<name>.service units (regular files) that carry sparkfleet's marker for <name>.
    assert got["units"] == [str(units / "sparkfleet-standin-tiny-llama.service")]
    assert got["files"][str(env / "standin-tiny-llama.env")]["owned"] is True
    assert got["files"][str(env / "standin-b.env")]["owned"] is False
    assert got["env_files"] == [str(env / "standin-tiny-llama.env")]
    assert got["files"][str(units / "sparkfleet-standin-tiny-llama.service")]["owned"] is True
    unit = got["files"][str(units / "sparkfleet-standin-tiny-llama.service")]
    assert unit["exists"] and unit["checksum"] == hashlib.sha1(UNIT.encode()).hexdigest()  # noqa: S324
    envf = got["files"][str(env / "standin-tiny-llama.env")]
    assert envf["mode"] == "0600" and envf["checksum"]
    assert "content" not in envf
    assert got["files"][str(env)]["isdir"] and got["files"][str(env)]["mode"] == "0700"
    assert got["files"][str(units / "sparkfleet-standin-b.service")]["exists"] is False
    assert got["unit_states"] == {
        "sparkfleet-standin-tiny-llama.service": {"active": True, "enabled": True},
        "sparkfleet-standin-b.service": {"active": False, "enabled": False},
    }
    # One systemctl show for every planned unit, not one call each.
    assert sum(c[:2] == ["systemctl", "show"] for c in run.calls) == 1


def test_failed_probes_are_named(tmp_path: Path) -> None:
    units, env = host(tmp_path)
    bad = answers() | {"/usr/bin/docker": (1, "", "Cannot connect to the Docker daemon"), "ss": (127, "", "nope")}
    got = state.read_state(PLAN, str(units), str(env), "/usr/bin/docker", Runner(bad))
    assert any("docker ps failed (rc 1): Cannot connect to the Docker daemon" in p for p in got["problems"])
    assert any(p.startswith("ss -ltnH failed (rc 127)") for p in got["problems"])


def test_no_services_no_systemctl_show_and_missing_dirs(tmp_path: Path) -> None:
    run = Runner(answers())
    got = state.read_state({}, str(tmp_path / "none"), str(tmp_path / "none2"), "/usr/bin/docker", run)
    assert got["units"] == [] and got["unit_states"] == {}
    assert got["files"] == {str(tmp_path / "none2"): state.file_state(str(tmp_path / "none2"))}
    assert not any(c[:2] == ["systemctl", "show"] for c in run.calls)


def test_systemd_version_and_show_failures() -> None:
    assert state.systemd_version(SYSTEMCTL_VERSION) == 252
    assert state.systemd_version("") == 0
    assert state.systemd_version("systemd unknown") == 0
    failing = Runner({"systemctl show": (1, "", "no bus")})
    assert state.unit_states(["a.service"], failing) == {"a.service": {"active": False, "enabled": False}}


def test_the_real_runner_reports_a_missing_command() -> None:
    rc, _, err = state.subprocess_runner(5)(["/nonexistent/sparkfleet-command"])
    assert rc == 127 and err
