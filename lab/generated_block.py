"""What the generators (lab/gen_service_docs.py, lab/gen_bench_docs.py, lab/gen_role_docs.py) share: a block of a
file between a BEGIN and an END marker line, rewritten whole; the files written or, with --check, named when stale;
YAML dumped the way yamllint's indentation rule wants it."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with the lines after the line holding ``begin`` and before the first line holding ``end`` after it
    replaced by ``body`` (whole lines, ending with a newline); ValueError when a marker is missing."""
    start = text.index(begin)
    start = text.index("\n", start) + 1
    stop = text.index(end, start)
    stop = text.rindex("\n", 0, stop) + 1
    return text[:start] + body + text[stop:]


class IndentedDumper(yaml.SafeDumper):
    """Lists indented under their key, as yamllint's default indentation rule wants."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def update_files(texts: dict[Path, str], check: bool, root: Path, stale: str = "stale") -> int:
    """Write each file whose text differs from the generator's (with ``check``, only name it) and say which; 1 when
    ``check`` found a stale file, else 0."""
    changed = [path for path, text in texts.items() if path.read_text() != text]
    for path in changed:
        if not check:
            path.write_text(texts[path])
        sys.stdout.write(f"{stale if check else 'rewrote'}: {path.relative_to(root)}\n")
    return 1 if changed and check else 0
