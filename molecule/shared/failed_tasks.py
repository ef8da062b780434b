#!/usr/bin/env python3
"""Print the failed tasks of an Ansible/Molecule log: each failure under the task and play it belongs to.

`make molecule` prints this after a scenario fails, so the last lines of a long CI log say which task failed on
which host and why, not only Molecule's "Ansible return code was 2". Colour codes are removed; a long failure
message is cut to a few lines (the whole log stays in .cache/molecule/<scenario>.log).

    python3 molecule/shared/failed_tasks.py .cache/molecule/dynamo.log
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Molecule prints a command's output in a box ("  │ " before each line) and wraps it at the terminal's width.
BOX = re.compile(r"^\s*│ ?")
BOX_EDGE = re.compile(r"^\s*[┌└]─")
HEADER = re.compile(r"^(PLAY|TASK|RUNNING HANDLER) \[(?P<name>.*)\] \**$")
FAILURE = re.compile(r"^(fatal|failed): \[|FAILED! =>|^ERROR! |^\[ERROR\]: ")
# A failure's own lines: its JSON and indented continuation, up to the next host result or header.
NEXT = re.compile(r"^(ok|changed|skipping|fatal|failed|included|ignoring): |^(PLAY|TASK|RUNNING HANDLER) \[|^$")


def unwrap(lines: list[str]) -> list[str]:
    """Ansible's own lines: Molecule's box removed, a header wrapped over several lines joined again."""
    out: list[str] = []
    joined = 0
    for raw in lines:
        if BOX_EDGE.match(raw):
            continue
        line = BOX.sub("", raw, count=1)
        if joined:
            out[-1] = f"{out[-1]} {line.strip()}"
        else:
            out.append(line)
        # A header ends with its row of stars; until then (a few lines at most) the next lines are its rest.
        last = out[-1]
        opened = re.match(r"(PLAY|TASK|RUNNING HANDLER) \[", last) and not last.endswith("*")
        joined = joined + 1 if opened and joined < 4 else 0
    return out


def failed_tasks(text: str, max_lines: int = 8) -> list[str]:
    """The failures in `text`, each as 'play > task' then its first `max_lines` lines."""
    lines = unwrap([ANSI.sub("", line).rstrip() for line in text.splitlines()])
    play = task = ""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        header = HEADER.match(line)
        if header:
            if line.startswith("PLAY"):
                play, task = header["name"], ""
            else:
                task = header["name"]
        elif FAILURE.search(line) and not line.startswith("ignoring"):
            block = [line]
            i += 1
            while i < len(lines) and not NEXT.search(lines[i]):
                block.append(lines[i])
                i += 1
            if any(b.strip() == "...ignoring" for b in block):
                continue
            out.append(f"-- {play} > {task}" if task else f"-- {play or 'playbook'}")
            out.extend(block[:max_lines])
            if len(block) > max_lines:
                out.append(f"   ... {len(block) - max_lines} more line(s)")
            continue
        i += 1
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: failed_tasks.py LOG", file=sys.stderr)
        return 2
    found = failed_tasks(Path(argv[1]).read_text(encoding="utf-8", errors="replace"))
    print("\n".join(found) if found else "(no failed task in the log: see Molecule's own error above)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
