"""The repository as the collection sparkfleet.fleet: one definition of its requirements, the link, FQCN everywhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LINK = ROOT / "collections" / "ansible_collections" / "sparkfleet" / "fleet"
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())


def _yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text())


def test_requirements_galaxy_and_awx_agree() -> None:
    """requirements.yml (Galaxy users, ansible-lint) links to collections/requirements.yml (AWX/AAP);
    galaxy.yml's dependencies are the same names and ranges."""
    root = ROOT / "requirements.yml"
    assert root.is_symlink()
    assert root.resolve() == (ROOT / "collections" / "requirements.yml").resolve()
    reqs = _yaml(ROOT / "collections" / "requirements.yml")
    assert isinstance(reqs, dict)
    wanted = {c["name"]: c["version"] for c in reqs["collections"]}
    galaxy = _yaml(ROOT / "galaxy.yml")
    assert isinstance(galaxy, dict)
    assert galaxy["dependencies"] == wanted


def test_the_link_is_the_repository() -> None:
    assert LINK.is_symlink()
    assert LINK.resolve() == ROOT
    galaxy = _yaml(ROOT / "galaxy.yml")
    assert isinstance(galaxy, dict)
    assert (galaxy["namespace"], galaxy["name"]) == ("sparkfleet", "fleet")
    assert "collections" in galaxy["build_ignore"]


def _yaml_files() -> list[Path]:
    dirs = ("roles", "playbooks", "molecule")
    files = [p for d in dirs for p in (ROOT / d).rglob("*.yml") if not p.is_symlink()]
    return [*files, ROOT / "site.yml"]


def test_our_modules_and_roles_are_called_by_fqcn() -> None:
    """A short name would only work through a search path, and ansible.cfg has none for them."""
    task = re.compile(rf"^\s*-?\s*({'|'.join(MODULES)}):\s*$", re.MULTILINE)
    role = re.compile(rf"^\s*-?\s*(role|name):\s*({'|'.join(ROLES)})\s*$", re.MULTILINE)
    found = []
    for path in _yaml_files():
        text = path.read_text()
        found += [f"{path.relative_to(ROOT)}: {m.group(0).strip()}" for m in task.finditer(text)]
        found += [f"{path.relative_to(ROOT)}: {m.group(0).strip()}" for m in role.finditer(text)]
    assert found == []


def test_modules_import_module_utils_by_the_collection_path() -> None:
    for name in MODULES:
        text = (ROOT / "plugins" / "modules" / f"{name}.py").read_text()
        imports = re.findall(r"^from (\S+) import", text, re.MULTILINE)
        ours = [i for i in imports if "sparkfleet" in i]
        assert ours, name
        assert all(i.startswith("ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet") for i in ours)


def test_one_way_to_find_our_content() -> None:
    """Roles, modules and module_utils are found through the collection only: no search path points into the tree."""
    old = ("ANSIBLE_LIBRARY", "ANSIBLE_MODULE_UTILS", "ANSIBLE_ROLES_PATH")
    sources = [*ROOT.glob("*.cfg"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "molecule").rglob("*.py")]
    sources += [p for p in (ROOT / "molecule").rglob("*.yml") if not p.is_symlink()]
    found = [f"{p.relative_to(ROOT)}: {name}" for p in sources for name in old if name in p.read_text()]
    found = [f for f in found if not f.startswith("tests/unit/test_collection.py")]
    config = (ROOT / "ansible.cfg").read_text()
    found += [k for k in ("library =", "module_utils =", "roles_path =") if k in config]
    assert found == []


def test_playbooks_find_the_collection_without_any_configured_path(tmp_path: Path) -> None:
    """AWX/AAP sets its own collections path (ANSIBLE_COLLECTIONS_PATH overrides ansible.cfg): site.yml finds the
    collection through collections/ beside it, the stage playbooks through playbooks/collections."""
    link = ROOT / "playbooks" / "collections"
    assert link.is_symlink() and link.resolve() == (ROOT / "collections").resolve()
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(tmp_path), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    playbooks = [ROOT / "site.yml", *sorted((ROOT / "playbooks").glob("*.yml"))]
    res = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--syntax-check",
            "-i",
            "localhost,",
            *map(str, playbooks),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
