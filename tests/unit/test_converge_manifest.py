"""The converged-host fast path's manifest is complete by construction (docs/development.md, "Reruns").

Every role that a converge stage of site.yml runs says, in one task at the end of its ``tasks/main.yml``, what it
manages (``set_fact: <role>_managed``): paths and names as the same variables its tasks write them, whose
state the stamp records on the host at the end of a full converge. This test reads every task (and handler) of those
roles, finds each one that writes (a file, directory, package, venv, group membership, unit, image...) and fails
unless what it writes is named in the role's declaration:

- the variables of its target (``dest``, ``path``, ``name``, ...) and its literal parts (``/workers.json``) appear in
  the declaration; for a target that is the loop's item, the loop's path-like variables do;
- or a comment right above the task says which kind of the declaration records its effect
  (``# manifest: images -- docker load puts the archive's image on the host``) or, for what is not desired state,
  why (``# manifest: none -- the benchmark's reports, outputs of the run``).

A new task that writes somewhere the declaration does not name fails here, not on a lab host whose fast path missed
a change.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import converge

from tests.conftest import ROOT

# The plays of site.yml that change hosts (the converge stages); their roles are the ones the manifest covers.
CONVERGE_PLAYBOOKS = ("host_runtime.yml", "serving.yml", "gateway.yml", "metrics.yml")
PATTERN = "sparkfleet_converged"
# Module -> the arguments that name what it writes. A task with one of these modules writes (a read-only use of a
# module is told apart below: a compare of model_stage_manifest, a command with changed_when: false).
WRITERS: dict[str, tuple[str, ...]] = {
    "ansible.builtin.template": ("dest",),
    "ansible.builtin.copy": ("dest",),
    "ansible.builtin.file": ("path", "dest"),
    "ansible.builtin.get_url": ("dest",),
    "ansible.builtin.unarchive": ("dest",),
    "ansible.builtin.lineinfile": ("path", "dest"),
    "ansible.builtin.blockinfile": ("path", "dest"),
    "ansible.builtin.replace": ("path",),
    "ansible.builtin.assemble": ("dest",),
    "ansible.builtin.apt": ("name", "deb"),
    "ansible.builtin.package": ("name",),
    "ansible.builtin.pip": ("virtualenv",),
    "ansible.builtin.user": ("name",),
    "ansible.builtin.group": ("name",),
    "ansible.builtin.systemd_service": ("name",),
    "ansible.builtin.systemd": ("name",),
    "ansible.builtin.service": ("name",),
    "ansible.posix.synchronize": ("dest",),
    "sparkfleet.fleet.docker_daemon_json": ("path",),
    "sparkfleet.fleet.model_stage_manifest": ("path",),
    "sparkfleet.fleet.llm_service_lkg": ("name",),
    "ansible.builtin.command": ("argv", "cmd", "_raw_params"),
    "ansible.builtin.shell": ("cmd", "_raw_params"),
}
COMMANDS = {"ansible.builtin.command", "ansible.builtin.shell"}
# What a loop's item stands for when a target is the item itself: the loop's variables whose names say path,
# name list or directory.
PATHLIKE = re.compile(r"(dir|dirs|file|files|path|paths|home|directories|users|packages|keyring|spec|venv)$")
MARKER = re.compile(r"#\s*manifest:\s*([a-z, ]+?)\s*--\s*(\S.*)$")
JINJA = re.compile(r"\{\{(.*?)\}\}", re.S)
STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
FILTER = re.compile(r"\|\s*[A-Za-z_][\w.]*")
CALL = re.compile(r"[A-Za-z_][\w.]*\s*\(")
CHAIN = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
KEYWORDS = {"if", "else", "and", "or", "not", "in", "is", "true", "false", "none", "True", "False", "None", "list"}


def _plans_only(play: dict[str, Any]) -> bool:
    """A play that only makes the plan when the run has none (the preflight role, which changes nothing)."""
    return not play.get("roles") and "sparkfleet.fleet.preflight" in yaml.safe_dump(play.get("tasks") or [])


def _converge_roles() -> list[str]:
    roles: set[str] = set()
    for name in CONVERGE_PLAYBOOKS:
        for play in yaml.safe_load((ROOT / "playbooks" / name).read_text()):
            if PATTERN not in str(play.get("hosts", "")) or _plans_only(play):
                continue
            for entry in play.get("roles") or []:
                roles.add(str(entry["role"] if isinstance(entry, dict) else entry).split(".")[-1])
            text = yaml.safe_dump(play.get("tasks") or [])
            roles.update(m.split(".")[-1] for m in re.findall(r"name: (sparkfleet\.fleet\.\w+)", text))
    return sorted(roles)


def _task_lines(path: Path) -> dict[int, list[str]]:
    """Line of each task's first key -> the comment lines right above it."""
    lines = path.read_text().splitlines()
    out: dict[int, list[str]] = {}
    for i, line in enumerate(lines):
        if re.match(r"^\s*- (name|ansible\.|sparkfleet\.)", line):
            above: list[str] = []
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("#"):
                above.insert(0, lines[j].strip())
                j -= 1
            out[i + 1] = above
    return out


class _Loader(yaml.SafeLoader):
    pass


def _mapping_with_line(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
    data = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    data["__line__"] = node.start_mark.line + 1
    return data


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _tasks(items: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for task in items or []:
        if not isinstance(task, dict):
            continue
        out.append(task)
        for key in ("block", "rescue", "always"):
            out += _tasks(task.get(key))
    return out


def _writes(task: dict[str, Any]) -> tuple[str, Any] | None:
    """(module, target) when the task writes on the managed host; None otherwise."""
    if str(task.get("delegate_to", "")).strip() == "localhost":
        return None  # the controller's files: reports, caches
    for module, keys in WRITERS.items():
        if module not in task:
            continue
        args = task[module]
        if not isinstance(args, dict):
            args = {"_raw_params": args}
        if module in COMMANDS and task.get("changed_when") is False:
            return None  # a read-only probe
        if module == "sparkfleet.fleet.model_stage_manifest" and args.get("manifest") != "record":
            return None  # a compare, or the controller's cache of a source
        if module == "ansible.builtin.systemd_service" and "name" not in args:
            return None  # daemon-reload only
        target = next((args[k] for k in keys if k in args), None)
        return module, target
    return None


def _tokens(text: str) -> tuple[set[str], set[str]]:
    """A target's variables (the last name of each chain, filters and calls left out) and its literal parts."""
    variables: set[str] = set()
    for raw in JINJA.findall(text):
        expr = CALL.sub(" ", FILTER.sub(" ", STRING.sub(" ", raw)))
        for chain in CHAIN.findall(expr):
            last = chain.split(".")[-1]
            if chain.split(".")[0] in KEYWORDS or last in KEYWORDS or chain.isdigit():
                continue
            variables.add(chain)
    literals = {p.strip() for p in JINJA.sub("\0", text).split("\0") if len(p.strip()) > 1}
    return variables, literals


def _declaration(role: str) -> tuple[str, dict[str, Any]]:
    """The text and the value of the role's ``set_fact: <role>_managed`` task."""
    path = ROOT / "roles" / role / "tasks" / "main.yml"
    for task in _tasks(yaml.safe_load(path.read_text())):
        facts = task.get("ansible.builtin.set_fact") or {}
        if isinstance(facts, dict) and f"{role}{converge.MANAGED_SUFFIX}" in facts:
            value = facts[f"{role}{converge.MANAGED_SUFFIX}"]
            return yaml.safe_dump({"value": value, "vars": task.get("vars") or {}}, width=1000), value
    return "", {}


def _findings(role: str) -> list[str]:
    text, declared = _declaration(role)
    problems: list[str] = []
    files = sorted((ROOT / "roles" / role / "tasks").glob("*.yml")) + sorted(
        (ROOT / "roles" / role).glob("handlers/*.yml")
    )
    for path in files:
        comments = _task_lines(path)
        for task in _tasks(yaml.load(path.read_text(), Loader=_Loader)):  # noqa: S506 - SafeLoader with line numbers
            found = _writes(task)
            if found is None:
                continue
            module, target = found
            where = f"{path.relative_to(ROOT)}:{task['__line__']} {task.get('name', module)}"
            if not text:
                problems.append(
                    f"{where}: writes, but roles/{role}/tasks/main.yml has no {role}{converge.MANAGED_SUFFIX}"
                )
                continue
            marker = next((m for c in comments.get(task["__line__"], []) if (m := MARKER.search(c))), None)
            if marker:
                kinds = [k for k in re.split(r"[ ,]+", marker.group(1).strip()) if k]
                unknown = [k for k in kinds if k != "none" and (k not in converge.KINDS or not declared.get(k))]
                if unknown:
                    problems.append(
                        f"{where}: its manifest comment names {unknown}, which the declaration does not hold"
                    )
                continue
            target_text = yaml.safe_dump(target, width=1000) if not isinstance(target, str) else target
            variables, literals = _tokens(target_text)
            loop = task.get("loop")
            item_only = variables and all(v.split(".")[0] == "item" for v in variables)
            if item_only:
                loop_vars, _lit = _tokens(yaml.safe_dump(loop, width=1000) if loop is not None else "")
                variables = {v for v in loop_vars if PATHLIKE.search(v.split(".")[-1])}
                if not variables:
                    problems.append(f"{where}: writes the loop's item ({loop!r}); name it in the declaration")
                    continue
            variables = {v for v in variables if v.split(".")[0] != "item"}
            missing = sorted(v for v in variables if not re.search(rf"\b{re.escape(v.split('.')[-1])}\b", text))
            missing += sorted(repr(lit) for lit in literals if lit not in text)
            if missing or not (variables or literals):
                problems.append(f"{where}: writes {target_text.strip()!r}; the declaration lacks {missing or 'it'}")
    return problems


ROLES = _converge_roles()


def test_the_converge_stages_run_these_roles() -> None:
    assert ROLES == [
        "bench_venv",
        "docker_host",
        "hf_cache",
        "llm_gateway",
        "llm_serving",
        "metrics",
        "model_stage",
        "ngc_login",
        "nvidia_toolkit",
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_write_of_a_converge_role_is_in_its_manifest(role: str) -> None:
    assert _findings(role) == []


@pytest.mark.parametrize("role", ROLES)
def test_the_declaration_is_the_last_task_and_names_known_kinds(role: str) -> None:
    tasks = yaml.safe_load((ROOT / "roles" / role / "tasks" / "main.yml").read_text())
    last = tasks[-1]
    assert f"{role}{converge.MANAGED_SUFFIX}" in (last.get("ansible.builtin.set_fact") or {}), role
    assert set(last["ansible.builtin.set_fact"][f"{role}{converge.MANAGED_SUFFIX}"]) <= set(converge.KINDS)


def test_a_new_write_outside_the_declaration_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: a copy of the bench_venv role with one more file written is caught, and so is a command
    that changes the host without saying what records it."""
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(ROOT / "roles" / "bench_venv", root / "roles" / "bench_venv")
    extra = root / "roles" / "bench_venv" / "tasks" / "extra.yml"
    extra.write_text(
        "---\n"
        "- name: Bench venv | Write a marker\n"
        "  ansible.builtin.copy:\n"
        "    content: x\n"
        '    dest: "{{ bench_venv_path }}/../sparkfleet-extra.txt"\n'
        "    mode: '0644'\n"
        "\n"
        "- name: Bench venv | Touch something\n"
        "  ansible.builtin.command: touch /etc/sparkfleet-touched\n"
        "\n"
        "# manifest: none -- a probe\n"
        "- name: Bench venv | Read something\n"
        "  ansible.builtin.command: cat /etc/hostname\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", root)
    found = _findings("bench_venv")
    assert any("Write a marker" in p and "sparkfleet-extra.txt" in p for p in found), found
    assert any("Touch something" in p for p in found), found
    assert not any("Read something" in p for p in found), found


def test_the_converge_plays_leave_converged_hosts_out() -> None:
    """Every play of a converge stage that changes hosts excludes the group; the plays that only plan do not."""
    seen = 0
    for name in CONVERGE_PLAYBOOKS:
        for play in yaml.safe_load((ROOT / "playbooks" / name).read_text()):
            hosts = str(play.get("hosts", ""))
            if _plans_only(play):
                continue
            seen += 1
            assert PATTERN in hosts and "'sparkfleet_converged' in groups" in hosts, (name, play.get("name"))
    assert seen >= 5
