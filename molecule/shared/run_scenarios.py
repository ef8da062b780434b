"""Run Molecule scenarios, a few at a time, each into its own log; report each as it ends, failures last.

    python molecule/shared/run_scenarios.py [--jobs N] [--times FILE] [--job NAME=COMMAND ...] [SCENARIO ...]

Each scenario runs `molecule test -s <name>` with its whole output in .cache/molecule/<name>.log (nothing is
interleaved on the terminal). Scenarios have their own hosts and networks, so they can run side by side; a lab host
spends much of a scenario waiting (systemd booting, a health gate polling, docker loading an archive): one job keeps
less than half a core busy (its controller, its containers and the ones nested in them, by their cgroups' CPU time),
so three at once on two cores (the default) recover that wait. The longest jobs start first (ORDER), so the last to
start are short ones. When one fails, its failed tasks (molecule/shared/failed_tasks.py) are printed last, so the
end of a CI log names the task and the host. --jobs 1 runs them one after another. --times appends "molecule
<name><TAB>seconds<TAB>rc" lines for lab/stage_times.py. --job runs another command as one more job of the same
pool, with its output in .cache/<NAME>.log, in ORDER among the scenarios (make test gives it the integration tests,
in three jobs: they and the scenarios share the slots, so neither waits for the other to finish).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / ".cache" / "molecule"
# Longest first (measured on the 2-core machine, make test's stage table), so the last to start is a short one.
# The --job names of make test (the integration tests in three jobs) are placed among the scenarios; a job or
# scenario not named here starts after these, jobs first.
ORDER = (
    "gateway", "multihost", "integration", "integration-served", "integration-rest", "integration-fleet", "teardown",
    "serving", "dynamo", "llm_verify", "preflight",
)  # fmt: skip


def scenarios(given: list[str]) -> list[str]:
    found = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    unknown = sorted(set(given) - set(found))
    if unknown:
        sys.exit(f"run_scenarios: no such scenario {', '.join(unknown)} (known: {', '.join(found)})")
    return given or found


def in_order(jobs: list[str], scenario_names: list[str]) -> list[str]:
    """ORDER's jobs and scenarios first, in its order; then the other jobs as given, then the other scenarios."""
    todo = [*jobs, *scenario_names]
    return sorted(todo, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n not in jobs, todo.index(n)))


def log_of(name: str, extra: dict[str, str]) -> Path:
    return ROOT / ".cache" / f"{name}.log" if name in extra else LOGS / f"{name}.log"


def run_one(name: str, extra: dict[str, str]) -> tuple[str, int, float]:
    start = time.monotonic()
    molecule = Path(sys.executable).parent / "molecule"
    argv = ["bash", "-c", extra[name]] if name in extra else [str(molecule), "test", "-s", name]
    with log_of(name, extra).open("w", encoding="utf-8") as out:
        rc = subprocess.call(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                             env={**os.environ, "PY_COLORS": "0", "ANSIBLE_FORCE_COLOR": "0"})  # fmt: skip
    return name, rc, time.monotonic() - start


def label(name: str, extra: dict[str, str]) -> str:
    return name if name in extra else f"molecule test -s {name}"


def failed_tasks(name: str) -> str:
    script = ROOT / "molecule" / "shared" / "failed_tasks.py"
    proc = subprocess.run([sys.executable, str(script), str(LOGS / f"{name}.log")], capture_output=True,
                          text=True, check=False)  # fmt: skip
    lines = proc.stdout.splitlines()[-150:]
    return "\n".join(lines) or "(no failed task found: see the log)"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("SPARKFLEET_MOLECULE_JOBS", "3")))
    ap.add_argument("--times", type=Path)
    ap.add_argument("--job", action="append", default=[], metavar="NAME=COMMAND")
    ap.add_argument("scenario", nargs="*")
    args = ap.parse_args(argv)
    extra = dict(j.split("=", 1) for j in args.job if "=" in j)
    todo = in_order(list(extra), scenarios(args.scenario))
    LOGS.mkdir(parents=True, exist_ok=True)
    print(f"== {len(todo)} job(s), {args.jobs} at a time: {', '.join(todo)}; logs in .cache/", flush=True)
    failed: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        pending: set[Future[tuple[str, int, float]]] = set()
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < max(1, args.jobs):
                name = queue.pop(0)
                print(f"== {label(name, extra)}: started", flush=True)
                pending.add(pool.submit(run_one, name, extra))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                name, rc, secs = fut.result()
                verdict = "passed" if rc == 0 else f"FAILED (rc {rc})"
                print(f"== {label(name, extra)}: {verdict} in {int(secs) // 60} min {int(secs) % 60:02d} s",
                      flush=True)  # fmt: skip
                if args.times:
                    with args.times.open("a", encoding="utf-8") as fh:
                        fh.write(f"  {name if name in extra else 'molecule ' + name}\t{secs:.0f}\t{rc}\n")
                if rc != 0:
                    failed.append(name)
                    queue.clear()  # a failure ends the run: what has started finishes, nothing new starts
    for name in failed:
        log = log_of(name, extra)
        print(f"\n== {label(name, extra)} failed; the end of its log ({log.relative_to(ROOT)}):")
        print("\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-60:]))
        if name not in extra:
            print(f"\n== molecule {name}: its failed tasks")
            print(failed_tasks(name))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
