"""Role variables have one declaration, meta/argument_specs.yml: the README tables are generated from it
(lab/gen_role_docs.py), and it agrees with defaults/main.yml, the values Ansible uses."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import gen_role_docs
from tests.conftest import ROOT

ROLES = gen_role_docs.roles()
IDS = [r.name for r in ROLES]


@functools.cache
def _rendered() -> dict[Path, str]:
    """What the generator writes now (once per test session)."""
    return gen_role_docs.rendered()


def _own(role: Path, var: str) -> bool:
    """A variable of the role itself: named after it (docs/development.md). Others are shared inputs (the
    inventory's, group_vars', another role's), declared where a role reads them but defaulted elsewhere."""
    return var.startswith(f"{role.name}_")


def _options(role: Path) -> dict[str, dict[str, dict[str, Any]]]:
    return {name: dict(entry.get("options") or {}) for name, entry in gen_role_docs.load_specs(role).items()}


def test_every_role_has_a_readme_and_argument_specs_with_a_main_entry_point() -> None:
    assert IDS, "no roles found"
    for role in ROLES:
        assert (role / "README.md").is_file(), role.name
        assert "main" in gen_role_docs.load_specs(role), f"{role.name}: meta/argument_specs.yml has no main"


@pytest.mark.parametrize("role", ROLES, ids=IDS)
def test_the_readme_holds_the_generated_block_as_the_generator_writes_it(role: Path) -> None:
    readme = role / "README.md"
    text = readme.read_text()
    assert text.count(gen_role_docs.BEGIN) == 1, f"{readme.relative_to(ROOT)}: no generated variables block"
    assert text.count(gen_role_docs.END) == 1, f"{readme.relative_to(ROOT)}: no end of the generated block"
    stale = f"{readme.relative_to(ROOT)} is stale: run python3 -m lab.gen_role_docs"
    assert _rendered()[readme] == text, stale


@pytest.mark.parametrize("role", ROLES, ids=IDS)
def test_every_generated_row_has_five_cells(role: Path) -> None:
    """A ``|`` in a description or a default is escaped, so no row grows a cell (GitHub would drop the rest)."""
    text = _rendered()[role / "README.md"]
    block = text[text.index(gen_role_docs.BEGIN) : text.index(gen_role_docs.END)]
    rows = [line for line in block.splitlines() if line.startswith("|")]
    assert rows
    bad = [row[:80] for row in rows if len(re.findall(r"(?<!\\)\|", row)) != 6]
    assert bad == []


def test_the_readme_has_no_hand_written_variable_table_left() -> None:
    """Outside the generated block no table row starts with a role variable of the role."""
    rows = []
    for role in ROLES:
        text = (role / "README.md").read_text()
        start, end = text.index(gen_role_docs.BEGIN), text.index(gen_role_docs.END)
        outside = text[:start] + text[end:]
        rows += [
            f"{role.name}: {line[:60]}"
            for line in outside.splitlines()
            if line.startswith(f"| `{role.name}_") and line.split("`")[1] in _options(role)["main"]
        ]
    assert rows == [], "hand-written variable rows outside the generated block:\n" + "\n".join(rows)


def test_the_generator_check_mode_passes_from_the_command_line() -> None:
    argv = [sys.executable, "-m", "lab.gen_role_docs", "--check"]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_check_mode_names_a_stale_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    role = tmp_path / "roles" / "demo_role"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    spec = {"argument_specs": {"main": {"short_description": "A demo", "options": {
        "demo_role_port": {"type": "int", "default": 8000, "description": "The C(port)."}}}}}  # fmt: skip
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(spec))
    (role / "defaults" / "main.yml").write_text("demo_role_port: 8000\n")
    readme = role / "README.md"
    readme.write_text(f"# demo_role\n\n## Variables\n\n{gen_role_docs.BEGIN}\nold\n{gen_role_docs.END}\n")
    monkeypatch.setattr(gen_role_docs, "ROOT", tmp_path)
    monkeypatch.setattr(gen_role_docs, "ROLES", tmp_path / "roles")
    assert gen_role_docs.main(["--check"]) == 1
    assert "stale (run python3 -m lab.gen_role_docs): roles/demo_role/README.md" in capsys.readouterr().out
    assert "old" in readme.read_text()
    assert gen_role_docs.main([]) == 0
    assert "| `demo_role_port` | int | `8000` |  | The `port`. |" in readme.read_text()
    assert gen_role_docs.main(["--check"]) == 0
    readme.write_text("# demo_role\n")
    assert gen_role_docs.main(["--check"]) == 2


@pytest.mark.parametrize(
    ("value", "shown"),
    [("/opt/x", "`/opt/x`"), ("0755", "`'0755'`"), ("", "`''`"), (None, "`null`"), (True, "`true`"),
     ([1, 8, 32], "`[1, 8, 32]`"), ({"log-opts": {"max-file": "3"}}, "`{log-opts: {max-file: '3'}}`"),
     ("{{ a | default([]) }}", "`{{ a \\| default([]) }}`"),
     ("{{ a\n   | b }}", gen_role_docs.COMPUTED), ("{{ " + "x" * 80 + " }}", gen_role_docs.COMPUTED)],
)  # fmt: skip
def test_a_default_is_shown_as_yaml_prints_it_or_named_when_computed(value: object, shown: str) -> None:
    assert gen_role_docs.show_default(value) == shown


@pytest.mark.parametrize(
    ("description", "line"),
    [(["One C(x).", "Two\n  O(y=1) and V(z)."], "One `x`. Two `y=1` and `z`."),
     ("a | b in C(c | d)", "a \\| b in `c \\| d`"),
     ("unit x-<name>.service, C(<dir>/x), each *.env", "unit x-\\<name>.service, `<dir>/x`, each \\*.env"),
     ("I(must) and B(never), L(docs, https://x.y/z)", "*must* and **never**, [docs](https://x.y/z)"),
     ("a < b and ABC(x)", "a < b and ABC(x)")],
)  # fmt: skip
def test_a_description_is_one_line_with_ansible_markup_rendered(description: str | list[str], line: str) -> None:
    assert gen_role_docs.one_line(description) == line


def test_every_default_is_declared_in_the_main_entry_point() -> None:
    missing = []
    for role in ROLES:
        main = _options(role)["main"]
        missing += [
            f"{role.name}: {var}"
            for var in gen_role_docs.load_defaults(role)
            if not var.startswith("__") and var not in main
        ]
    assert missing == [], "in defaults/main.yml, not declared in meta/argument_specs.yml (main):\n" + "\n".join(missing)


def test_every_declared_variable_of_a_role_has_a_default_unless_required() -> None:
    missing = []
    for role in ROLES:
        defaults = gen_role_docs.load_defaults(role)
        for entry, options in _options(role).items():
            missing += [
                f"{role.name} ({entry}): {var}"
                for var, opt in options.items()
                if _own(role, var) and not opt.get("required") and var not in defaults
            ]
    assert missing == [], "declared, not required, no value in defaults/main.yml:\n" + "\n".join(missing)


def test_a_shared_input_is_not_defaulted_by_the_role_that_declares_it() -> None:
    """A variable named after another role or the project (sparkfleet_*) belongs to its owner: the role that
    reads it gives it no value (a second default would make an input left unset, such as
    sparkfleet_profile_override, look set)."""
    shadowed = []
    for role in ROLES:
        defaults = gen_role_docs.load_defaults(role)
        for entry, options in _options(role).items():
            shadowed += [f"{role.name} ({entry}): {v}" for v in options if not _own(role, v) and v in defaults]
    assert shadowed == [], "shared inputs given a value in the reading role's defaults:\n" + "\n".join(shadowed)


def test_a_declared_default_is_the_value_of_defaults_main() -> None:
    differ = []
    for role in ROLES:
        defaults = gen_role_docs.load_defaults(role)
        for entry, options in _options(role).items():
            differ += [
                f"{role.name} ({entry}): {var}: spec {opt['default']!r}, defaults/main.yml {defaults[var]!r}"
                for var, opt in options.items()
                if "default" in opt and var in defaults and opt["default"] != defaults[var]
            ]
    assert differ == [], "the declared default is not the value Ansible uses:\n" + "\n".join(differ)


def test_every_declared_variable_has_a_type_and_a_description() -> None:
    bare = []
    for role in ROLES:
        for entry, options in _options(role).items():
            bare += [
                f"{role.name} ({entry}): {var} lacks {key}"
                for var, opt in options.items()
                for key in ("type", "description")
                if not opt.get(key)
            ]
    assert bare == [], "\n".join(bare)
