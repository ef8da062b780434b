#!/usr/bin/env python3
"""A STAND-IN for NCCL's ``all_gather_perf`` (nccl-tests), for the lab only: no GPU, no NCCL, nothing is measured.

The lab has no ConnectX-7 and no NCCL (../shared/TEST-NOTES.md), so ``molecule/multihost`` runs the measured fabric
check (playbooks/fabric_check.yml) with this program in place of the tool and ``mpirun_standin.py`` in place of
OpenMPI's mpirun. It prints the real tool's output shape from a fixture (tests/fixtures/fabric/all_gather_perf-*.txt,
hand-made from the nccl-tests README: see its README): the fixture's header and table header, a rank line per host
of this run (SPARKFLEET_STANDIN_HOSTS, set by the mpirun stand-in), then one result row per size from ``-b`` to
``-e`` (step factor ``-f``), each with the out-of-place and in-place bus bandwidth of the fixture's largest row, and
the summary lines. A fixture without a result row (a run that died) is printed as it is, its hosts replaced by this
run's, and the stand-in exits 2.

The fixture: SPARKFLEET_STANDIN_FIXTURE, else ``all_gather_perf.fixture`` beside this file (the lab copies the one a
test wants there).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from pathlib import Path

ROW = re.compile(r"^\s*\d+\s+\d+\s")
RANK = re.compile(r"^(#\s*Rank\s+)\d+(\s+Group\s+\d+\s+Pid\s+)\d+(\s+on\s+)\S+(\s+device.*)$")
SIZE = re.compile(r"^([1-9][0-9]*)([KMGkmg]?)$")


def parse_size(text: str) -> int:
    """nccl-tests' size grammar: a whole number, K/M/G in powers of 1024."""
    match = SIZE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}")
    return int(match.group(1)) * 1024 ** " KMG".index((match.group(2) or " ").upper())


def sizes(minimum: int, maximum: int, factor: int) -> list[int]:
    out = [minimum]
    while out[-1] * max(factor, 2) <= maximum:
        out.append(out[-1] * max(factor, 2))
    return out


def _time(us: float) -> str:
    return f"{us:7.2f}" if us < 100 else f"{us:7.0f}"


def row(size: int, ranks: int, oop_busbw: float, ip_busbw: float) -> str:
    """One result row as nccl-tests prints it (all_gather: busbw = algbw x (ranks - 1) / ranks)."""
    cells = [f"{size:12d}  {size // 4:12d}  {'float':>8s}  {'none':>6s}  {-1:6d}"]
    for busbw in (oop_busbw, ip_busbw):
        algbw = busbw * ranks / (ranks - 1) if ranks > 1 else busbw
        time_us = size / (algbw * 1e9) * 1e6 if algbw > 0 else 0.0
        cells.append(f"  {_time(time_us)}  {algbw:6.2f}  {busbw:6.2f}  {0:6d}")
    return "".join(cells)


def render(fixture: str, hosts: list[str], minimum: int, maximum: int, factor: int) -> tuple[str, int]:
    """(what the tool would print, its exit code) for this run from the fixture."""
    lines = fixture.splitlines()
    table = [line for line in lines if ROW.match(line)]
    if not table:
        # A run that died: as the fixture prints it, its hosts (by rank) replaced by this run's.
        named = [m.group(1) for m in (re.search(r"\son\s+(\S+)\s+device", x) for x in lines if RANK.match(x)) if m]
        for old, new in zip(named, hosts, strict=False):
            fixture = re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w.-])", new, fixture)
        return fixture if fixture.endswith("\n") else fixture + "\n", 2
    largest = max(table, key=lambda line: int(line.split()[0])).split()
    oop_busbw, ip_busbw = float(largest[-6]), float(largest[-2])
    ranks = max(len(hosts), 1)
    rank_lines = [line for line in lines if RANK.match(line)]
    template = (
        rank_lines[0] if rank_lines else "#  Rank  0 Group  0 Pid      0 on  localhost device  0 [0000:01:00] stand-in"
    )
    first_rank = lines.index(rank_lines[0]) if rank_lines else 3
    header_end = next(i for i, line in enumerate(lines) if ROW.match(line))
    out = [
        f"# nThread 1 nGpus 1 minBytes {minimum} maxBytes {maximum} step: {factor}(factor) warmup iters: 5 "
        "iters: 20 agg iters: 1 validation: 1 graph: 0",
        "#",
        "# Using devices",
    ]
    for rank, host in enumerate(hosts or [socket.gethostname()]):
        out.append(RANK.sub(rf"\g<1>{rank}\g<2>{os.getpid() + rank}\g<3>{host}\g<4>", template))
    # The table's header: what the fixture prints between its rank lines and its first row.
    out += [line for line in lines[first_rank:header_end] if not RANK.match(line)]
    measured = sizes(minimum, maximum, factor)
    out += [row(size, ranks, oop_busbw, ip_busbw) for size in measured]
    out += [
        "# Out of bounds values : 0 OK",
        f"# Avg bus bandwidth    : {(oop_busbw + ip_busbw) / 2:g} ",
        "#",
    ]
    return "\n".join(out) + "\n", 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="all_gather_perf", description=__doc__)
    ap.add_argument("-b", "--minbytes", type=parse_size, default=parse_size("32M"))
    ap.add_argument("-e", "--maxbytes", type=parse_size, default=parse_size("32M"))
    ap.add_argument("-f", "--stepfactor", type=int, default=2)
    ap.add_argument("-g", "--ngpus", type=int, default=1)
    ap.add_argument("-c", "--check", type=int, default=1)
    ap.add_argument("-n", "--iters", type=int, default=20)
    ap.add_argument("-w", "--warmup_iters", type=int, default=5)
    args = ap.parse_args(argv)
    if args.minbytes > args.maxbytes:
        print(f"invalid sizes: minBytes {args.minbytes} > maxBytes {args.maxbytes}", file=sys.stderr)
        return 1
    path = Path(os.environ.get("SPARKFLEET_STANDIN_FIXTURE") or Path(__file__).with_name("all_gather_perf.fixture"))
    try:
        fixture = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"all_gather_perf stand-in: no fixture to replay ({path}: {exc.strerror})", file=sys.stderr)
        return 1
    hosts = [h for h in os.environ.get("SPARKFLEET_STANDIN_HOSTS", "").split(",") if h]
    text, rc = render(fixture, hosts, args.minbytes, args.maxbytes, args.stepfactor)
    sys.stdout.write(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
