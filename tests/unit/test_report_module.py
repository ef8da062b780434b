"""The fleet_report module file itself: AnsibleModule parsing, check mode, failures, warnings."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from tests.conftest import FIXTURES
from tests.unit.module_fakes import ExitJson, FailJson, exit_json, fail_json

module_entry: Any = importlib.import_module("ansible_collections.sparkfleet.fleet.plugins.modules.fleet_report")
FLEET = FIXTURES / "reports" / "fleet"


def run(args: dict[str, Any], check_mode: bool = False, expect: type[Exception] = ExitJson) -> dict[str, Any]:
    warned: list[str] = []
    full = dict(args)
    if check_mode:
        full["_ansible_check_mode"] = True
    with (
        patch_module_args(full),
        mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json),
        mock.patch.object(basic.AnsibleModule, "warn", lambda self, msg: warned.append(msg)),
        pytest.raises(expect) as caught,
    ):
        module_entry.main()
    result: dict[str, Any] = caught.value.args[0]
    result["warned"] = warned
    return result


def test_module_writes_the_report(tmp_path: Path) -> None:
    result = run({"inputs": [str(FLEET)], "dest": str(tmp_path / "r"), "latest_link": str(tmp_path / "latest")})
    assert result["changed"] is True
    assert result["summary"]["failed_hosts"] == ["spark-03"]
    assert result["summary"]["slow_hosts"] == ["spark-02"]
    assert result["markdown_lines"][0] == "# sparkfleet fleet report"
    assert json.loads((tmp_path / "latest" / "fleet-report.json").read_text())["total"] == 4
    assert result["warned"] == []


def test_module_check_mode(tmp_path: Path) -> None:
    result = run({"inputs": [str(FLEET)], "dest": str(tmp_path / "r")}, check_mode=True)
    assert result["changed"] is True
    assert len(result["written"]) == 3
    assert not (tmp_path / "r").exists()


def test_module_warns_about_unusable_inputs(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.json").write_text("{")
    result = run({"inputs": [str(tmp_path / "in")], "dest": str(tmp_path / "r")})
    assert len(result["warned"]) == 1
    assert "bad.json: not JSON" in result["warned"][0]
    assert result["summary"]["failed"] == 1


def test_module_fails_with_a_clear_message_on_bad_parameters(tmp_path: Path) -> None:
    result = run({"inputs": [str(FLEET)], "dest": str(tmp_path / "r"), "slow_margin": 1.5}, expect=FailJson)
    assert result["msg"].startswith("fleet_report: slow_margin must be at least 0 and below 1")
    assert not (tmp_path / "r").exists()
