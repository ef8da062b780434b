"""docker_daemon_json: pure helpers (table-driven) and the real module on temporary files."""

from __future__ import annotations

import importlib
import json
import os
import stat
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.daemon_json import (
    DaemonJsonError,
    dockerd_flag_keys,
    find_conflicts,
    load_config,
    merge_settings,
    remove_settings,
    render_config,
)

from tests.unit.module_fakes import ExitJson, FailJson, exit_json, fail_json

module_entry: Any = importlib.import_module("ansible_collections.sparkfleet.fleet.plugins.modules.docker_daemon_json")
NVIDIA = {"nvidia": {"path": "nvidia-container-runtime", "args": []}}
# What `systemctl show docker.service --property=ExecStart` prints on DGX OS with its docker-override.conf.
DGX_SHOW = (
    "ExecStart={ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// "
    "--containerd=/run/containerd/containerd.sock --default-ulimit memlock=-1:-1 --log-level=warn "
    "--insecure-registry 10.0.0.0/8 -D ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; "
    "pid=0 ; code=(null) ; status=0/0 }"
)


def run(args: dict[str, Any], check_mode: bool = False, diff: bool = False) -> dict[str, Any]:
    """Run the real module (AnsibleModule and all) with exit_json/fail_json raising; warnings in "warned"."""
    warned: list[str] = []
    full = dict(args)
    if check_mode:
        full["_ansible_check_mode"] = True
    if diff:
        full["_ansible_diff"] = True
    with (
        patch_module_args(full),
        mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json),
        mock.patch.object(basic.AnsibleModule, "warn", lambda self, msg: warned.append(msg)),
        pytest.raises(ExitJson) as caught,
    ):
        module_entry.main()
    result: dict[str, Any] = caught.value.args[0]
    result["warned"] = warned
    return result


def run_fail(args: dict[str, Any]) -> dict[str, Any]:
    with (
        patch_module_args(args),
        mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json),
        pytest.raises(FailJson) as caught,
    ):
        module_entry.main()
    result: dict[str, Any] = caught.value.args[0]
    return result


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("current", "settings", "expected"),
    [
        ({}, {"a": 1}, {"a": 1}),
        ({"a": 1}, {"a": 2}, {"a": 2}),
        (
            {"runtimes": NVIDIA},
            {"runtimes": {"crun": {"path": "crun"}}},
            {"runtimes": {**NVIDIA, "crun": {"path": "crun"}}},
        ),
        (
            {"log-opts": {"max-size": "10m"}},
            {"log-opts": {"max-file": "3"}},
            {"log-opts": {"max-size": "10m", "max-file": "3"}},
        ),
        ({"dns": ["1.1.1.1"]}, {"dns": ["9.9.9.9"]}, {"dns": ["9.9.9.9"]}),
        ({"a": "x"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ],
)
def test_merge_settings(current: dict[str, Any], settings: dict[str, Any], expected: dict[str, Any]) -> None:
    before = json.dumps(current)
    assert merge_settings(current, settings) == expected
    assert json.dumps(current) == before  # input untouched


@pytest.mark.parametrize(
    ("current", "settings", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
        ({"a": 1}, {"zzz": None}, {"a": 1}),
        ({"runtimes": {**NVIDIA, "crun": {}}}, {"runtimes": {"crun": None}}, {"runtimes": NVIDIA}),
        ({"runtimes": {"crun": {}}, "x": 1}, {"runtimes": {"crun": None}}, {"x": 1}),
        ({"log-opts": {"max-size": "1m"}}, {"log-opts": {}}, {}),
        ({"log-opts": {"max-size": "1m"}}, {"log-opts": "anything"}, {}),
    ],
)
def test_remove_settings(current: dict[str, Any], settings: dict[str, Any], expected: dict[str, Any]) -> None:
    assert remove_settings(current, settings) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("{", "not valid JSON (line 1"), ("[1, 2]", "JSON list, not an object"), ('"x"', "JSON str")],
)
def test_load_config_rejects(text: str, message: str) -> None:
    with pytest.raises(DaemonJsonError, match=message.replace("(", r"\(")):
        load_config(text, "/etc/docker/daemon.json")


def test_load_config_empty_file_is_empty_object() -> None:
    assert load_config("  \n") == {}


def test_dockerd_flag_keys_from_systemctl_show() -> None:
    keys = dockerd_flag_keys(DGX_SHOW)
    assert keys == {
        "hosts": "-H",
        "default-ulimits": "--default-ulimit",
        "log-level": "--log-level",
        "insecure-registries": "--insecure-registry",
        "debug": "-D",
    }


def test_dockerd_flag_keys_from_execstart_lines() -> None:
    unit = (
        "ExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS --data-root=/srv/docker --config-file /x.json\n"
    )
    assert dockerd_flag_keys(unit) == {"hosts": "-H", "data-root": "--data-root"}


def test_find_conflicts() -> None:
    assert find_conflicts({"log-level": "info", "hosts": [], "log-driver": "x"}, dockerd_flag_keys(DGX_SHOW)) == [
        "hosts",
        "log-level",
    ]


# ---------------------------------------------------------------- the module on real files


def test_four_steps_apply_apply_remove_remove(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    settings = {"log-driver": "json-file", "log-opts": {"max-size": "50m"}}
    first = run({"path": str(path), "settings": settings})
    assert first["changed"] is True
    assert json.loads(path.read_text()) == settings
    assert run({"path": str(path), "settings": settings})["changed"] is False
    removed = run({"path": str(path), "settings": settings, "state": "absent"})
    assert removed["changed"] is True
    assert json.loads(path.read_text()) == {}
    assert run({"path": str(path), "settings": settings, "state": "absent"})["changed"] is False


def test_existing_nvidia_runtime_survives_merge_and_removal(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    # As nvidia-ctk runtime configure --runtime=docker writes it.
    path.write_text(json.dumps({"runtimes": NVIDIA}, indent=4))
    run({"path": str(path), "settings": {"runtimes": {"crun": {"path": "/usr/bin/crun"}}, "live-restore": True}})
    data = json.loads(path.read_text())
    assert data["runtimes"]["nvidia"] == NVIDIA["nvidia"]
    assert data["runtimes"]["crun"] == {"path": "/usr/bin/crun"}
    assert data["live-restore"] is True
    run({"path": str(path), "state": "absent", "settings": {"runtimes": {"crun": None}, "live-restore": None}})
    assert json.loads(path.read_text()) == {"runtimes": NVIDIA}


def test_check_mode_reports_change_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"runtimes": {}}\n')
    result = run({"path": str(path), "settings": {"debug": True}}, check_mode=True, diff=True)
    assert result["changed"] is True
    assert path.read_text() == '{"runtimes": {}}\n'
    assert '"debug": true' in result["diff"]["after"]
    assert result["diff"]["before"] == '{"runtimes": {}}\n'


def test_unchanged_file_is_not_rewritten_even_if_formatted_differently(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    text = '{"debug":true,\n "runtimes":{}}'
    path.write_text(text)
    assert run({"path": str(path), "settings": {"debug": True}})["changed"] is False
    assert path.read_text() == text


def test_keeps_mode_of_existing_file_and_sets_mode_of_new(tmp_path: Path) -> None:
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    existing.chmod(0o600)
    run({"path": str(existing), "settings": {"debug": True}})
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    new = tmp_path / "sub" / "new.json"
    run({"path": str(new), "settings": {"debug": True}, "mode": "0640"})
    assert stat.S_IMODE(new.stat().st_mode) == 0o640


def test_invalid_json_fails_and_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true,}')
    result = run_fail({"path": str(path), "settings": {"debug": False}})
    assert "not valid JSON" in result["msg"]
    assert path.read_text() == '{"debug": true,}'


def test_backup(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"a": 1}')
    result = run({"path": str(path), "settings": {"b": 2}, "backup": True})
    assert Path(result["backup_file"]).read_text() == '{"a": 1}'
    assert run({"path": str(path), "settings": {"b": 2}, "backup": True}).get("backup_file") is None


def test_conflict_dropped_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    result = run(
        {
            "path": str(path),
            "settings": {"log-level": "info", "log-driver": "json-file"},
            "dockerd_command_line": DGX_SHOW,
        }
    )
    assert result["dropped_keys"] == ["log-level"]
    assert json.loads(path.read_text()) == {"log-driver": "json-file"}
    assert any("--log-level" in w for w in result["warned"])


def test_conflict_fail_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("{}")
    result = run_fail(
        {
            "path": str(path),
            "settings": {"hosts": ["unix:///run/docker.sock"]},
            "dockerd_command_line": DGX_SHOW,
            "on_conflict": "fail",
        }
    )
    assert "hosts (-H)" in result["msg"]
    assert "docker-override.conf" in result["msg"]
    assert path.read_text() == "{}"


def test_existing_conflicting_key_is_reported_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    result = run({"path": str(path), "settings": {"log-driver": "local"}, "dockerd_command_line": DGX_SHOW})
    assert result["conflicting_keys"] == ["debug"]
    assert any("refuse to start" in w for w in result["warned"])
    assert json.loads(path.read_text()) == {"debug": True, "log-driver": "local"}


def test_validate_command_rejects_before_replacing(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("{}")
    result = run_fail({"path": str(path), "settings": {"a": 1}, "validate": "false %s"})
    assert "validate command rejected" in result["msg"]
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]  # temporary file cleaned up
    assert run({"path": str(path), "settings": {"a": 1}, "validate": "python3 -m json.tool %s"})["changed"] is True


def test_render_config_is_stable() -> None:
    assert render_config({"b": 1, "a": {"c": []}}) == '{\n  "b": 1,\n  "a": {\n    "c": []\n  }\n}\n'
    assert os.linesep == "\n"
