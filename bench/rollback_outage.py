#!/usr/bin/env python3
"""The outage a client sees when a change's server exits at once, until the old version serves again.

On the demo lab (`make demo` first), with a client polling one service the whole time: a change whose server exits
at once (an argument llama-server refuses) is applied to one host with playbooks/serving.yml, twice in one run:

- baseline: ``llm_serving_fail_after_exits=0``, the health gate waits for systemd's start limit (what sparkfleet
  did before: about 170 s of outage on the demo lab);
- sparkfleet: the default, the version is judged failed after two exits and rolled back.

Printed: for each, when the client first failed, when it was answered again, the outage and the run's wall time;
then the ratio baseline / sparkfleet of the outage, measured in this run. Goal (issue 23): the old version serving
again 45 s or less after the change started.

    .venv/bin/python bench/rollback_outage.py [--host spark-01] [--url http://172.30.42.11:8080/v1/models]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The demo's stand-in command with an argument llama-server refuses: the container exits at once.
BROKEN_COMMAND = [
    "--port", "8080", "--alias", "sparkfleet/tiny-llama", "--parallel", "4", "--ctx-size", "8192",
    "--threads", "1", "--threads-batch", "1", "--poll", "0", "--no-such-flag",
]  # fmt: skip


class Poller(threading.Thread):
    """GET url every `every` seconds; keeps (monotonic time, answered) of each request."""

    def __init__(self, url: str, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.samples: list[tuple[float, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:  # noqa: S310 - the lab's own URL
                    ok = resp.status == 200
            except OSError:
                ok = False
            self.samples.append((t, ok))
            self.stop.wait(max(0.0, self.every - (time.monotonic() - t)))


def outage(samples: list[tuple[float, bool]], start: float) -> dict[str, float]:
    """Seconds after `start`: the first failed request, the first answer after the last failure, and the outage."""
    failed = [t for t, ok in samples if t >= start and not ok]
    if not failed:
        return {"first_failure_s": 0.0, "answered_again_s": 0.0, "outage_s": 0.0}
    back = next((t for t, ok in samples if t > failed[-1] and ok), samples[-1][0])
    return {"first_failure_s": failed[0] - start, "answered_again_s": back - start, "outage_s": back - failed[0]}


def change(host: str, url: str, fail_after_exits: int, inventory: str) -> dict[str, float]:
    extra = {"demo_standin_command": BROKEN_COMMAND, "llm_serving_fail_after_exits": fail_after_exits}
    poller = Poller(url)
    poller.start()
    time.sleep(2)
    start = time.monotonic()
    cmd = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "playbooks/serving.yml", "-i", inventory, "-l", host,
           "-e", json.dumps(extra)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})  # fmt: skip
    wall = time.monotonic() - start
    time.sleep(3)
    poller.stop.set()
    poller.join()
    if proc.returncode == 0:
        sys.exit(f"the broken change was not refused (rc 0): is the demo lab up and converged?\n{proc.stdout[-2000:]}")
    if "rolled back" not in proc.stdout:
        sys.exit(f"the broken change was not rolled back:\n{proc.stdout[-3000:]}")
    return {**outage(poller.samples, start), "run_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="spark-01")
    ap.add_argument("--url", default="http://172.30.42.11:8080/v1/models")
    ap.add_argument("--inventory", default="inventories/demo/hosts.yml")
    args = ap.parse_args()
    results = {}
    for label, exits in (("baseline (start limit)", 0), ("sparkfleet (2 exits)", 2)):
        print(f"== {label}: a change whose server exits at once, on {args.host}", flush=True)
        r = change(args.host, args.url, exits, args.inventory)
        results[label] = r
        print(
            f"   client failed {r['first_failure_s']:.1f} s after the change started, answered again at "
            f"{r['answered_again_s']:.1f} s: outage {r['outage_s']:.1f} s; the run took {r['run_s']:.1f} s"
        )
    base, new = results["baseline (start limit)"], results["sparkfleet (2 exits)"]
    ratio = base["outage_s"] / new["outage_s"] if new["outage_s"] else float("inf")
    print(
        f"== outage ratio baseline / sparkfleet: {ratio:.2f}x ({base['outage_s']:.1f} s -> {new['outage_s']:.1f} s); "
        f"old version serving again {new['answered_again_s']:.1f} s after the change started (goal: 45 s)"
    )


if __name__ == "__main__":
    main()
