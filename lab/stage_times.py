"""Each stage of `make test` timed, and the table of them printed at the end (a benchmark figure, not a test).

python lab/stage_times.py run FILE NAME -- COMMAND...   run COMMAND, append "NAME<TAB>seconds<TAB>rc" to FILE
python lab/stage_times.py table FILE                     print the stages' wall times
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def run(record: Path, name: str, command: list[str]) -> int:
    start = time.monotonic()
    rc = subprocess.call(command)
    record.parent.mkdir(parents=True, exist_ok=True)
    with record.open("a", encoding="utf-8") as fh:
        fh.write(f"{name}\t{time.monotonic() - start:.0f}\t{rc}\n")
    return rc


def fmt(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60} min {s % 60:02d} s"


def table(record: Path) -> str:
    rows = []
    for line in record.read_text(encoding="utf-8").splitlines() if record.is_file() else []:
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].isdigit():
            rows.append((parts[0], int(parts[1]), parts[2]))
    if not rows:
        return "no stage was timed"
    width = max(len(r[0]) for r in rows)
    out = [f"{'stage':<{width}}  {'wall time':>12}  result", f"{'-' * width}  {'-' * 12}  ------"]
    out += [f"{name:<{width}}  {fmt(secs):>12}  {'ok' if rc == '0' else 'FAILED (rc ' + rc + ')'}"
            for name, secs, rc in rows]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) >= 5 and argv[0] == "run" and argv[3] == "--":
        return run(Path(argv[1]), argv[2], argv[4:])
    if len(argv) == 2 and argv[0] == "table":
        print(table(Path(argv[1])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
