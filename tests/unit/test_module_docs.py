"""Every module's DOCUMENTATION, EXAMPLES and RETURN parse the way ansible-doc parses them (by FQCN)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
ANSIBLE_DOC = Path(sys.executable).with_name("ansible-doc")


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_parses(name: str) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    res = subprocess.run(
        [str(ANSIBLE_DOC), "--json", f"sparkfleet.fleet.{name}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)[f"sparkfleet.fleet.{name}"]
    assert doc["doc"]["module"] == name
    assert doc["doc"]["short_description"]
    for option, spec in (doc["doc"].get("options") or {}).items():
        descriptions = spec["description"] if isinstance(spec["description"], list) else [spec["description"]]
        assert all(isinstance(d, str) for d in descriptions), f"{name}: option {option} has a non-text description"
    # attributes come from the doc fragment sparkfleet.fleet.attributes (one text each), support from the module
    attributes = doc["doc"]["attributes"]
    assert {"check_mode", "diff_mode", "idempotent"} <= set(attributes), name
    assert all(a["description"] and a["support"] in ("full", "partial", "none") for a in attributes.values()), name
    assert isinstance(yaml.safe_load(doc["examples"]), list), f"{name}: EXAMPLES is not a YAML list of tasks"
    assert isinstance(doc["return"], dict), f"{name}: RETURN does not parse"
