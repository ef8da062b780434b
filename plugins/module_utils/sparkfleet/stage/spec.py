"""The inputs of the model_stage role, checked on the controller before any host changes.

Each entry of ``model_stage_models`` names a Hub repo id (``org/name``) and one source: ``source_dir`` (a
directory on the controller) or ``seed_host`` (an inventory host that already holds the model, at ``source_dir``
on that host or, by default, in its own Hugging Face cache). Every problem becomes one line naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MODELS_VAR = "model_stage_models"
# Hub repo ids: org/name, each part a letter or digit then letters, digits, '.', '_', '-'; never '--' or '..'
# (the Hub refuses them, and '--' is the separator of the cache's models--org--name directories).
REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*\Z")
REVISION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
DEFAULT_REVISION = "sparkfleet-staged"
KEYS = ("repo", "source_dir", "seed_host", "revision")


def hub_dir_name(repo: str) -> str:
    """models--org--name: the directory of a repo in the Hugging Face hub cache."""
    return "models--" + repo.replace("/", "--")


def repo_problem(repo: Any) -> str | None:
    if not isinstance(repo, str) or not repo:
        return "is missing: give the Hub repo id, for example Qwen/Qwen3-8B"
    if not REPO_RE.fullmatch(repo) or "--" in repo or ".." in repo:
        return f"{repo!r} is not a Hub repo id of the form org/name (for example Qwen/Qwen3-8B)"
    return None


def resolve_dir(path: str, search_dirs: Sequence[str], is_dir: Callable[[str], bool]) -> str | None:
    """An absolute directory, or a relative one tried against each of ``search_dirs`` in order."""
    expanded = os.path.expanduser(path)
    if os.path.isabs(expanded):
        return os.path.normpath(expanded) if is_dir(expanded) else None
    for base in search_dirs:
        if base:
            candidate = os.path.normpath(os.path.join(base, expanded))
            if is_dir(candidate):
                return candidate
    return None


def check_models(
    models: Any,
    *,
    hosts: Sequence[str],
    hub_dir: str,
    search_dirs: Sequence[str] = (),
    is_dir: Callable[[str], bool] = os.path.isdir,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Normalize ``model_stage_models``: ([{repo, hub_name, source, source_dir, seed_host, revision}], errors)."""
    if models is None:
        return [], []
    if not isinstance(models, list):
        return [], [f"{MODELS_VAR} must be a list of {{repo, source_dir | seed_host}}, not {type(models).__name__}"]
    out: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(models):
        where = f"{MODELS_VAR}[{i}]"
        if not isinstance(entry, Mapping):
            errors.append(f"{where} must be a mapping with repo and source_dir or seed_host, not {entry!r}")
            continue
        repo = entry.get("repo")
        if isinstance(repo, str) and repo:
            where = f"{MODELS_VAR}[{i}] ({repo})"
        unknown = sorted(str(k) for k in entry if k not in KEYS)
        if unknown:
            errors.append(f"{where} has unknown keys {unknown}: the keys are {list(KEYS)}")
        problem = repo_problem(repo)
        if problem:
            errors.append(f"{where}.repo {problem}")
            continue
        if not isinstance(repo, str):  # repo_problem refuses every other type
            raise AssertionError(f"{where}.repo is not a string")
        if repo in seen:
            errors.append(f"{where}.repo {repo} is already listed as {MODELS_VAR}[{seen[repo]}]: list each model once")
            continue
        seen[repo] = i
        revision = entry.get("revision", DEFAULT_REVISION)
        if not isinstance(revision, str) or not REVISION_RE.fullmatch(revision):
            errors.append(
                f"{where}.revision {revision!r} must be 1-100 letters, digits, '.', '_' or '-' (a snapshot name)"
            )
            continue
        source_dir = entry.get("source_dir")
        seed_host = entry.get("seed_host")
        if source_dir is not None and (not isinstance(source_dir, str) or not source_dir.strip()):
            errors.append(f"{where}.source_dir must be a directory path, not {source_dir!r}")
            continue
        if seed_host is not None and (not isinstance(seed_host, str) or not seed_host):
            errors.append(f"{where}.seed_host must be an inventory host name, not {seed_host!r}")
            continue
        norm: dict[str, Any] = {
            "repo": repo,
            "hub_name": hub_dir_name(repo),
            "revision": revision,
            "seed_host": seed_host or "",
        }
        if seed_host:
            if seed_host not in hosts:
                errors.append(
                    f"{where}.seed_host {seed_host} is not a host of the inventory: name a host that already holds "
                    "the model (it needs rsync and SSH access to the other hosts)"
                )
                continue
            norm["source"] = "seed"
            norm["source_dir"] = source_dir or f"{hub_dir.rstrip('/')}/{hub_dir_name(repo)}"
        elif source_dir:
            resolved = resolve_dir(source_dir, search_dirs, is_dir)
            if resolved is None:
                tried = "" if os.path.isabs(os.path.expanduser(source_dir)) else f" (tried against {list(search_dirs)})"
                errors.append(
                    f"{where}.source_dir {source_dir} is not a directory on the controller{tried}: give the "
                    "directory holding the model's files (or its models--org--name hub cache directory)"
                )
                continue
            norm["source"] = "controller"
            norm["source_dir"] = resolved
        else:
            errors.append(f"{where} needs source_dir (a controller directory) or seed_host (an inventory host)")
            continue
        out.append(norm)
    return out, errors


def run_check_module(module: Any) -> None:
    """Body of the model_stage_check module: normalized models, or one failure listing every problem."""
    p = module.params
    models, errors = check_models(
        p["models"],
        hosts=list(p["hosts"] or []),
        hub_dir=p["hub_dir"],
        search_dirs=list(p["search_dirs"] or []),
    )
    if errors:
        module.fail_json(
            msg=f"{MODELS_VAR} has {len(errors)} problem(s); nothing was changed: " + "; ".join(errors), errors=errors
        )
    module.exit_json(changed=False, models=models)
