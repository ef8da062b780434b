"""Write the registry of benchmark checks (plugins/module_utils/sparkfleet/bench/checks/__init__.py, CHECKS) into the
files that show it.

- ``plugins/modules/llm_benchmark.py``: its DOCUMENTATION's line per check, the ``checks`` option (choices and
  default in run order) and the threshold names of the ``thresholds`` option;
- ``docs/benchmark.md``: the table of checks.

Each block sits between ``BEGIN generated: <block>`` / ``END generated: <block>`` markers. ``python3 -m
lab.gen_bench_docs`` rewrites them; ``--check`` exits 1 when a file differs from the registry
(tests/unit/test_recipes.py runs the same).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import checks  # noqa: E402

from lab.generated_block import IndentedDumper, replace_between, update_files  # noqa: E402

MODULE = ROOT / "plugins" / "modules" / "llm_benchmark.py"
DOCS = ROOT / "docs" / "benchmark.md"
CHECKS_DIR = "plugins/module_utils/sparkfleet/bench/checks"
TAG = "(python3 -m lab.gen_bench_docs)"


def _replace(text: str, block: str, body: str, comment: str, close: str = "") -> str:
    begin = f"{comment} BEGIN generated: {block} {TAG}{close}"
    return replace_between(text, begin, f"{comment} END generated: {block}{close}", body)


class _Dumper(IndentedDumper):
    """Block style, lists indented under their key, no anchors; a list of words in flow style ([a, b])."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    words = all(isinstance(item, str) and re.fullmatch(r"[\w.-]+", item) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=words)


_Dumper.add_representer(list, _list)


def _yaml(value: Any, indent: int) -> str:
    body = yaml.dump(value, Dumper=_Dumper, sort_keys=False, width=112 - indent, default_flow_style=False)
    return "".join(f"{' ' * indent}{line}\n" if line else "\n" for line in body.splitlines())


def markdown(text: str) -> str:
    """Ansible doc markup as Markdown: C(x), O(x), V(x) as `x`."""
    return re.sub(r"\b[COV]\(([^()]*)\)", r"`\1`", text)


def description_block() -> str:
    return _yaml([check.description for check in checks.CHECKS], 2)


def checks_option_block() -> str:
    names = checks.names()
    option = {
        "description": f"The checks to run, in the order {', '.join(names)}.",
        "type": "list",
        "elements": "str",
        "choices": names,
        "default": names,
    }
    return _yaml(option, 4)


def thresholds_block() -> str:
    lines = [
        f"Of the C({check.name}) check " + ", ".join(f"C({threshold.name})" for threshold in check.thresholds) + "."
        for check in checks.CHECKS
        if check.thresholds
    ]
    return _yaml(lines, 6)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def docs_table() -> str:
    rows = [
        "| check | report entries | report section | thresholds | module | what it does |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for check in checks.CHECKS:
        module = check.run.__module__.rsplit(".", 1)[-1]
        cells = [
            f"`{check.name}`",
            ", ".join(f"`{name}`" for name in check.entry_names),
            f"`{check.section}`" if check.section else "-",
            ", ".join(f"`{threshold.name}`" for threshold in check.thresholds) or "-",
            f"`{CHECKS_DIR}/{module}.py`",
            markdown(check.description),
        ]
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def rendered() -> dict[Path, str]:
    text = MODULE.read_text()
    text = _replace(text, "checks", description_block(), "  #")
    text = _replace(text, "checks option", checks_option_block(), "    #")
    text = _replace(text, "thresholds", thresholds_block(), "      #")
    return {MODULE: text, DOCS: _replace(DOCS.read_text(), "checks", docs_table(), "<!--", " -->")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs from the registry")
    args = parser.parse_args(argv)
    return update_files(rendered(), args.check, ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
