"""The benchmark checks: one module per check, and CHECKS, the one registry of them.

CHECKS lists every check in the order a run runs them. The runner (run.py), the thresholds (thresholds.py), the
module's parameters (module.py) and the generated documentation (lab/gen_bench_docs.py) read it; nothing else names
a check. A new check is one module here that defines ``CHECK`` (a base.Check: name, run, description, report
section, thresholds) plus its test, and one line below (docs/development.md, "Add a benchmark check").

Each module is imported by name, not discovered: Ansible's AnsiballZ bundles only the module_utils a module
imports statically.
"""

from __future__ import annotations

from . import chat, json_schema, load, multi_turn, readiness
from .base import PROMPT_WORDS, Check, Context, Outcome, Settings, Threshold, entry
from .readiness import readiness_paths

CHECKS: tuple[Check, ...] = (
    readiness.CHECK,
    chat.CHECK,
    json_schema.CHECK,
    multi_turn.CHECK,
    load.CHECK,
)


def names() -> list[str]:
    """The check names in run order (what ``checks`` selects, and its default)."""
    return [check.name for check in CHECKS]


def by_name(name: str) -> Check | None:
    return next((check for check in CHECKS if check.name == name), None)


def threshold_of(key: str) -> tuple[Check, Threshold] | None:
    """The check that measures threshold ``key``, and its threshold; None for an unknown key."""
    for check in CHECKS:
        for threshold in check.thresholds:
            if threshold.matches(key):
                return check, threshold
    return None


def threshold_names() -> list[str]:
    """Every threshold name (a family of names as its pattern), in run order of the checks."""
    return [threshold.name for check in CHECKS for threshold in check.thresholds]


__all__ = [
    "CHECKS",
    "PROMPT_WORDS",
    "Check",
    "Context",
    "Outcome",
    "Settings",
    "Threshold",
    "by_name",
    "entry",
    "names",
    "readiness_paths",
    "threshold_names",
    "threshold_of",
]
