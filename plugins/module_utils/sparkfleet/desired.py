"""The desired state of a host, as the controller sees it before a run changes anything (the converged-host fast
path: converge.py, the action plugin sparkfleet_converge).

Its digest is made of components, each a sha256 (``converge.value_hash``): a secret enters only so, and the stamp
on the host and every message name components, never values.

- ``content``: the collection's content, the code that runs (``roles/``, ``plugins/``, ``playbooks/``,
  ``site.yml``), hashed once per host and run (a few milliseconds);
- ``ansible``: Ansible's version;
- ``var:<name>``: every variable a role declares in its ``meta/argument_specs.yml`` (the one definition of role
  inputs, read here, never listed twice) and every role's own variable (``vars/main.yml``: what the roles derive
  from facts and other hosts, such as who may reach a worker), each as this host sees it; one computed from the
  plans or the GPU facts enters through the plans;
- ``plan:<host>`` and ``address:<host>``: every play host's plan (what preflight planned, less its observations:
  the summary line, warnings, the GPU's memory in use, which services an earlier run installed) and addresses, the
  inputs one host takes from the others (the gateway's backends, the metrics targets, a multi-host head address);
- ``controller:<path>``: the controller files the run reads into the host (image archives, model sources): size
  and mtime of each file, wherever a role may find a relative one.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .converge import value_hash

# What the collection's content is: the code that runs (its documentation and Python's caches are not).
CONTENT_PARTS = ("roles", "plugins", "playbooks", "site.yml")
NOT_CONTENT = (".pyc", ".pyo", ".md")
# The plan's parts a converge reads; the rest of it is observation.
PLAN_KEYS = ("profile", "serving_gpu", "services", "errors")
GPU_OBSERVED = ("memory_used_mib",)
# A variable computed from the plans or the GPU facts is covered by the plans' components (and would carry what
# preflight only observed, such as the memory a GPU uses now).
PLAN_DERIVED = ("sparkfleet_plan", "nvidia_gpu")


def templated(value: Any) -> bool:
    """Whether a value holds a template anywhere (a constant needs no templating: most role defaults)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(templated(k) or templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(templated(v) for v in value)
    return False


# "{{ name }}" and "{{ name | default(<literal>) }}": most role defaults; resolved without Jinja (a template costs a
# compile per host and run, the main cost of the digest).
REFERENCE = re.compile(
    r"^\s*\{\{\s*([A-Za-z_]\w*)\s*(?:\|\s*default\(\s*('[^'\\{}]*'|\"[^\"\\{}]*\"|\[\]|\{\}|-?\d+(?:\.\d+)?"
    r"|true|false|True|False)\s*\))?\s*\}\}\s*$"
)
# A name only this run gives a value to: a role's registered results and loop variables (__<role>_...), a loop's item.
RUNTIME_NAME = re.compile(r"\b(__[a-z][a-z0-9_]*|item)\b")
LITERALS = {"true": True, "false": False, "True": True, "False": False}


class Unevaluated(Exception):
    """A variable whose value needs this run's results (a loop's item, a registered result)."""


class Evaluator:
    """Variables as a host sees them: ``env`` (name -> raw value, Ansible's precedence already applied), each value
    resolved once. A plain reference resolves to the value it names, a default to its literal; a template that names
    one of this run's results, directly or through another variable, is Unevaluated without templating (what a run
    reads from the host, such as the packages dpkg lists, is not an input); any other goes to ``template``."""

    def __init__(self, env: Mapping[str, Any], template: Callable[[Any], Any]) -> None:
        self.env = env
        self.template = template
        self.memo: dict[str, Any] = {}
        self.busy: set[str] = set()
        self.runtime_memo: dict[str, bool] = {}

    def runtime(self, name: str) -> bool:
        """Whether a variable's template names one of this run's results, itself or through a variable it names
        (``x | default([])`` of a registered ``x`` is what the run reads, not an input)."""
        if name not in self.runtime_memo:
            self.runtime_memo[name] = False  # a cycle is not a run's result
            names = RUNTIME_NAME.findall(str(self.env.get(name, "")))
            self.runtime_memo[name] = any(n not in self.env or self.runtime(n) for n in names)
        return self.runtime_memo[name]

    def value(self, name: str) -> Any:
        if name in self.memo:
            if isinstance(self.memo[name], Unevaluated):
                raise self.memo[name]
            return self.memo[name]
        try:
            out = self._resolve(name)
        except Unevaluated as exc:
            self.memo[name] = exc
            raise
        self.memo[name] = out
        return out

    def _resolve(self, name: str) -> Any:
        raw = self.env[name]
        if not templated(raw):
            return plain(raw)
        match = REFERENCE.match(raw) if isinstance(raw, str) else None
        if match and match.group(1) not in self.busy:
            ref, default = match.groups()
            if ref in self.env:
                self.busy.add(name)
                try:
                    return self.value(ref)
                finally:
                    self.busy.discard(name)
            if default is not None:
                return LITERALS.get(default) if default in LITERALS else plain(ast.literal_eval(default))
            raise Unevaluated(name)
        if self.runtime(name):
            raise Unevaluated(name)
        try:
            return plain(self.template(raw))
        except Exception as exc:  # a template that fails needs what only the run has
            raise Unevaluated(name) from exc


def plan_derived(raw: Any) -> bool:
    """Whether a variable's definition reads the plans or the GPU facts."""
    text = str(raw)
    return any(name in text for name in PLAN_DERIVED)


def content_hash(root: str | Path, parts: Sequence[str] = CONTENT_PARTS) -> str:
    """sha256 over every file of the collection's content (relative path and bytes, in sorted order; Python's
    caches, Markdown and links to directories left out: ``playbooks/group_vars`` is the inventory's side)."""
    base = Path(root)
    h = hashlib.sha256()
    for part in parts:
        top = base / part
        if top.is_file():
            files = [top]
        elif top.is_dir():
            files = []
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not os.path.islink(Path(dirpath, d)))
                files += [Path(dirpath, f) for f in sorted(filenames) if not f.endswith(NOT_CONTENT)]
        else:
            continue
        for f in files:
            h.update(str(f.relative_to(base)).encode() + b"\0")
            try:
                h.update(f.read_bytes())
            except OSError as exc:  # a dangling link: its target is part of what runs
                h.update(f"unreadable: {exc.strerror}".encode())
            h.update(b"\0")
    return h.hexdigest()


def spec_options(specs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Role -> its ``meta/argument_specs.yml`` document -> every variable any entry point declares:
    name -> {"roles": [...], "no_log": bool} (no_log when any declaration says so)."""
    out: dict[str, dict[str, Any]] = {}
    for role in sorted(specs):
        doc = specs[role] or {}
        entry_points = doc.get("argument_specs") if isinstance(doc, Mapping) else None
        for entry in (entry_points or {}).values():
            for name, option in ((entry or {}).get("options") or {}).items():
                seen = out.setdefault(str(name), {"roles": [], "no_log": False})
                if role not in seen["roles"]:
                    seen["roles"].append(role)
                seen["no_log"] = seen["no_log"] or bool((option or {}).get("no_log"))
    return out


def components(
    *,
    content: str,
    ansible_version: str,
    variables: Mapping[str, Any],
    plans: Mapping[str, Any],
    addresses: Mapping[str, Any],
    controller_files: Mapping[str, Any],
) -> dict[str, str]:
    """The desired state's components, each a sha256: the collection's content, Ansible's version, every variable
    (declared inputs and the roles' own variables, as this host sees them), every play host's plan and addresses,
    and the controller files the run reads (image archives, model sources)."""
    out = {"content": content, "ansible": value_hash(ansible_version)}
    out.update({f"var:{k}": value_hash(v) for k, v in variables.items()})
    out.update({f"plan:{h}": value_hash(p) for h, p in plans.items()})
    out.update({f"address:{h}": value_hash(a) for h, a in addresses.items()})
    out.update({f"controller:{p}": value_hash(f) for p, f in controller_files.items()})
    return out


def tree_fingerprint(path: str | Path) -> dict[str, Any]:
    """A controller file or directory as the run would read it: size and mtime of the file, or of every file below
    the directory (a rebuilt archive or a changed model source changes it)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return {"exists": False}
    if not stat.S_ISDIR(st.st_mode):
        return {"exists": True, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    entries = []
    for dirpath, dirnames, filenames in os.walk(p):
        dirnames.sort()
        for f in sorted(filenames):
            try:
                fst = os.stat(Path(dirpath, f))
            except OSError:
                continue
            entries.append((str(Path(dirpath, f).relative_to(p)), fst.st_size, fst.st_mtime_ns))
    return {"exists": True, "files": value_hash(entries), "count": len(entries)}


def plain(value: Any) -> Any:
    """A templated value as plain data: dicts, lists, str, int, float, bool, None (anything else as its str())."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def plan_inputs(plan: Any) -> Any:
    """What of a host's plan a converge reads: its profile, serving GPU (less the memory in use), services and
    whether it has problems."""
    if not isinstance(plan, Mapping):
        return None
    out = {k: plain(plan.get(k)) for k in PLAN_KEYS}
    out["errors"] = bool(plan.get("errors"))
    gpu = out.get("serving_gpu")
    if isinstance(gpu, dict):
        out["serving_gpu"] = {k: v for k, v in gpu.items() if k not in GPU_OBSERVED}
    return out


def search_dirs(extra: Any, inventory_dir: str, playbook_dir: str) -> list[str]:
    """Every controller directory a role tries a relative controller path against: its own list (image archives:
    ``llm_serving_archive_search_dirs``, models: ``model_stage_search_dirs``), then the inventory, the repository and
    the playbooks' directories (tests/unit/test_converge.py holds the roles' lists to these)."""
    dirs = [str(d) for d in extra] if isinstance(extra, list) else []
    for base in (inventory_dir, playbook_dir):
        if base:
            dirs += [base, f"{base}/..", f"{base}/../.."]
    return dirs


def _candidates(path: str, dirs: Sequence[str]) -> list[str]:
    expanded = os.path.expanduser(path)
    if os.path.isabs(expanded):
        return [os.path.normpath(expanded)]
    return list(dict.fromkeys(os.path.normpath(os.path.join(d, expanded)) for d in dirs if d))


def controller_inputs(
    plan: Mapping[str, Any], variables: Mapping[str, Any], *, inventory_dir: str, playbook_dir: str
) -> dict[str, Any]:
    """The controller files the run reads into this host, by size and mtime: each deployed service's image archive
    and each model staged from a controller directory (``model_stage_models``). A relative path is fingerprinted
    wherever a role may find it (every candidate that exists), so the one the role picks is among them."""
    out: dict[str, Any] = {}
    archive_dirs = search_dirs(variables.get("llm_serving_archive_search_dirs"), inventory_dir, playbook_dir)
    wanted: list[tuple[str, list[str]]] = [
        (str(svc["image_archive"]), archive_dirs)
        for svc in plan.get("services") or []
        if isinstance(svc, Mapping) and svc.get("status") == "deploy" and svc.get("image_archive")
    ]
    model_dirs = search_dirs(variables.get("model_stage_search_dirs"), inventory_dir, playbook_dir)
    models = variables.get("model_stage_models")
    for model in models if isinstance(models, list) else []:
        if isinstance(model, Mapping) and model.get("source_dir") and not model.get("seed_host"):
            wanted.append((str(model["source_dir"]), model_dirs))
    for path, dirs in wanted:
        found = [c for c in _candidates(path, dirs) if os.path.exists(c)]
        for candidate in found:
            out[candidate] = tree_fingerprint(candidate)
        if not found:
            out[path] = {"exists": False}
    return out
