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
HEADER = re.compile(r"^(PLAY|TASK|RUNNING HANDLER) \[(?P<name>.*)\] \**$")
FAILURE = re.compile(r"^(fatal|failed): \[|FAILED! =>|^ERROR! |^\[ERROR\]: ")
# A failure's own lines: its JSON and indented continuation, up to the next host result or header.
NEXT = re.compile(r"^(ok|changed|skipping|fatal|failed|included|ignoring): |^(PLAY|TASK|RUNNING HANDLER) \[|^$")


def failed_tasks(text: str, max_lines: int = 8) -> list[str]:
    """The failures in `text`, each as 'play > task' then its first `max_lines` lines."""
    lines = [ANSI.sub("", line).rstrip() for line in text.splitlines()]
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
