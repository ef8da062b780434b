"""Roles talk through documented outputs: a role's private names (``__<role>_...``) are used only inside it.

What one role hands another (or a playbook) is a public fact or return value named in its README, never a
``__`` variable: the rollout reads ``llm_serving_changed`` and ``llm_verify_failed``, the gateway reads
``llm_verify_fleet`` and ``llm_verify_expected``. Tests may look inside a role (the golden tests render its
templates with its own variables); playbooks, other roles, Molecule scenarios and modules' examples may not.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
# Longest first: __sparkfleet_teardown_x is sparkfleet_teardown's, not some shorter role's.
PRIVATE = re.compile(r"\b__(" + "|".join(sorted(map(re.escape, ROLES), key=len, reverse=True)) + r")_[a-z0-9_]+")
SCANNED = ("roles", "playbooks", "molecule", "plugins")
SUFFIXES = {".yml", ".yaml", ".j2", ".py"}


def _files() -> list[Path]:
    out = [ROOT / "site.yml"]
    for top in SCANNED:
        out += [
            p for p in (ROOT / top).rglob("*") if p.suffix in SUFFIXES and p.is_file() and "collections" not in p.parts
        ]
    return out


def test_no_role_reads_another_roles_private_names() -> None:
    found = []
    for path in _files():
        rel = path.relative_to(ROOT)
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for m in PRIVATE.finditer(line):
                owner = m.group(1)
                if rel.parts[:2] != ("roles", owner):
                    found.append(f"{rel}:{lineno}: {m.group(0)} is private to roles/{owner}")
    assert found == [], "\n".join(found)


def test_the_public_outputs_are_documented() -> None:
    outputs = {
        "llm_serving": ["llm_serving_changed", "llm_serving_outcome", "llm_serving_rolled_back"],
        "llm_verify": ["llm_verify_failed", "llm_verify_fleet", "llm_verify_expected", "llm_verify_report_run_dir"],
        "preflight": ["preflight_plan_made"],
    }
    missing = [f"{role}: {name}" for role, names in outputs.items() for name in names
               if f"`{name}`" not in (ROOT / "roles" / role / "README.md").read_text()]  # fmt: skip
    assert missing == [], missing


def test_the_scan_sees_the_roles() -> None:
    assert {"llm_serving", "llm_verify", "preflight", "sparkfleet_teardown"} <= set(ROLES)
    assert PRIVATE.search("{{ __llm_serving_spec.present }}")
    assert not PRIVATE.search("{{ llm_serving_changed }}")
