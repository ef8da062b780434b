"""What the generators (lab/gen_service_docs.py, lab/gen_bench_docs.py) share: a block of a file between a BEGIN
and an END marker line, rewritten whole, and YAML dumped the way yamllint's indentation rule wants it."""

from __future__ import annotations

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
