"""One home for each host path: ``plugins/module_utils/sparkfleet/paths.py`` (Python) and ``roles/sparkfleet_paths``
(Ansible), held equal here. Every role's own path variable defaults to a ``sparkfleet_paths_*`` variable, every
Python default imports the constant; a role, a playbook or another Python module that spells one of the paths
itself fails here (docs/development.md, "Host paths")."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import gpu, paths

from lab import gen_role_docs
from tests.conftest import ROOT

ROLE = ROOT / "roles" / "sparkfleet_paths"
PREFIX = "sparkfleet_paths_"
DEPENDENCY = "sparkfleet.fleet.sparkfleet_paths"
# Every host path of the table; a literal one is spelled nowhere else.
TABLE = sorted(set(paths.ROLE_VARIABLES.values()), key=len, reverse=True)
# Where the roles and playbooks say what a host gets (argument specs and READMEs are documentation).
ROLE_PARTS = ("defaults", "tasks", "templates", "vars", "handlers")
SUFFIXES = {".yml", ".yaml", ".j2"}
# Python strings that name a path of the table without being one of sparkfleet's: Docker's own drop-in directory
# (DGX OS's docker-override.conf, in a message of daemon_json.py).
NOT_OURS = ("/docker.service.d",)
DOCS = {"DOCUMENTATION", "EXAMPLES", "RETURN"}
# A reference to another of the shared variables (the only Jinja the shared role uses).
REFERENCE = re.compile(r"\{\{ (sparkfleet_paths_[a-z0-9_]+) \}\}")
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))


def _literal(value: str) -> re.Pattern[str]:
    """``value`` as a path of its own: not a prefix of a longer name (/usr/bin/docker is not /usr/bin/dockerd)."""
    return re.compile(re.escape(value) + r"(?![A-Za-z0-9_.-])")


LITERALS = [(value, _literal(value)) for value in TABLE]


def _spelled(text: str) -> list[str]:
    return [value for value, pattern in LITERALS if pattern.search(text)]


def _rendered_defaults() -> dict[str, str]:
    """The shared role's defaults with their references to each other resolved, as Ansible resolves them."""
    raw: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    values = {k: str(v) for k, v in raw.items()}
    for _ in range(len(values)):
        known = dict(values)

        def resolve(m: re.Match[str], known: dict[str, str] = known) -> str:
            return known[m.group(1)]

        values = {k: REFERENCE.sub(resolve, v) for k, v in values.items()}
    assert not [v for v in values.values() if "{" in v], values
    return values


def test_the_shared_role_defaults_are_the_python_constants() -> None:
    values = _rendered_defaults()
    assert all(k.startswith(PREFIX) for k in values), sorted(values)
    assert {k.removeprefix(PREFIX): v for k, v in values.items()} == paths.ROLE_VARIABLES


def test_every_path_is_absolute_and_plain() -> None:
    for key, value in paths.ROLE_VARIABLES.items():
        assert value.startswith("/") and not value.endswith("/"), key
        assert "//" not in value and "/./" not in value and "/../" not in value, key


def test_the_shared_role_declares_each_variable_with_its_default() -> None:
    """roles/sparkfleet_paths: defaults only (no tasks), each variable declared as a path in its argument spec."""
    assert not (ROLE / "tasks").exists()
    options = gen_role_docs.load_specs(ROLE)["main"]["options"]
    defaults = gen_role_docs.load_defaults(ROLE)
    assert list(options) == list(defaults)
    assert {k: o["type"] for k, o in options.items()} == dict.fromkeys(defaults, "path")


def _role_files(role: Path) -> list[Path]:
    return [p for part in ROLE_PARTS for p in sorted((role / part).rglob("*")) if p.suffix in SUFFIXES]


def _playbooks() -> list[Path]:
    found = [p for p in sorted((ROOT / "playbooks").rglob("*")) if p.suffix in SUFFIXES and p.is_file()]
    return [ROOT / "site.yml", *(p for p in found if "collections" not in p.relative_to(ROOT).parts)]


def _roles() -> list[Path]:
    return [r for r in gen_role_docs.roles() if r != ROLE]


def test_no_role_or_playbook_spells_a_host_path() -> None:
    found = []
    for path in [f for role in _roles() for f in _role_files(role)] + _playbooks():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{path.relative_to(ROOT)}:{lineno}: {v}" for v in _spelled(line)]
    assert found == [], "a literal host path: use the role's path variable (sparkfleet_paths_*):\n" + "\n".join(found)


def test_a_role_that_reads_a_shared_path_depends_on_the_shared_role() -> None:
    """Its defaults are then there when the role is used alone (a role dependency's defaults are the role's)."""
    missing = []
    for role in _roles():
        reads = any(PREFIX in p.read_text() for p in _role_files(role))
        meta = yaml.safe_load((role / "meta" / "main.yml").read_text()) or {}
        deps = [d["role"] if isinstance(d, dict) else d for d in meta.get("dependencies") or []]
        if reads and DEPENDENCY not in deps:
            missing.append(role.name)
    assert missing == [], f"read sparkfleet_paths_* without the dependency {DEPENDENCY} in meta/main.yml: {missing}"


def _strings(tree: ast.Module) -> list[tuple[int, str]]:
    """The str constants of a module but its documentation: the docstrings and DOCUMENTATION, EXAMPLES, RETURN."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in DOCS for t in node.targets):
            skip.update(id(n) for n in ast.walk(node.value))
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
    ]


def test_no_python_module_spells_a_host_path() -> None:
    """paths.py is the one home; gpu.py keeps a copy of Docker's path because it imports nothing of the package
    (it runs on its own), held equal below."""
    own = {ROOT / "plugins" / "module_utils" / "sparkfleet" / name for name in ("paths.py", "gpu.py")}
    found = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        if path in own:
            continue
        for lineno, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            if any(n in text for n in NOT_OURS):
                continue
            found += [f"{path.relative_to(ROOT)}:{lineno}: {v}" for v in _spelled(text)]
    assert found == [], "a literal host path: import it from module_utils/sparkfleet/paths.py:\n" + "\n".join(found)


def test_the_standalone_gpu_detection_reads_the_same_daemon_json() -> None:
    assert gpu.DOCKER_DAEMON_JSON == paths.DOCKER_DAEMON_JSON


def test_the_scans_see_what_they_look_for() -> None:
    assert _spelled('dest: "/etc/systemd/system/{{ unit }}.service"') == [paths.UNIT_DIR]
    assert _spelled("ExecStart=/usr/bin/dockerd -H fd://") == []
    assert paths.HF_HUB_DIR in _spelled(f"path: {paths.HF_HUB_DIR}/models--x")
    tree = ast.parse(f'"""{paths.UNIT_DIR}"""\nDOCUMENTATION = "{paths.UNIT_DIR}"\nX = f"{paths.LKG_DIR}/{{name}}"\n')
    assert [text for _, text in _strings(tree)] == [f"{paths.LKG_DIR}/"]
    assert len(_roles()) >= 10 and len(_playbooks()) >= 5


class _Spec(Exception):
    """Raised by the fake AnsibleModule with the argument spec a module builds."""


class _FakeModule:
    def __init__(self, argument_spec: dict[str, Any], **_kwargs: Any) -> None:
        raise _Spec(argument_spec)


def _argument_spec(name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    module = importlib.import_module(f"ansible_collections.sparkfleet.fleet.plugins.modules.{name}")
    monkeypatch.setattr(module, "AnsibleModule", _FakeModule)
    with pytest.raises(_Spec) as caught:
        module.main()
    spec: dict[str, Any] = caught.value.args[0]
    return spec


@pytest.mark.parametrize("name", MODULES)
def test_a_module_documents_the_constant_its_spec_defaults_to(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCUMENTATION is a literal (ansible-doc and validate-modules read it as text); where an option defaults to a
    host path, the spec takes the constant and the documentation says the same value."""
    module = importlib.import_module(f"ansible_collections.sparkfleet.fleet.plugins.modules.{name}")
    if not _spelled(module.DOCUMENTATION) and "sparkfleet.paths import" not in Path(module.__file__ or "").read_text():
        return
    options = yaml.safe_load(module.DOCUMENTATION).get("options") or {}
    documented = {k: o["default"] for k, o in options.items() if o.get("default") in paths.ROLE_VARIABLES.values()}
    spec = _argument_spec(name, monkeypatch)
    in_spec = {k: o["default"] for k, o in spec.items() if o.get("default") in paths.ROLE_VARIABLES.values()}
    assert documented == in_spec
