#!/usr/bin/env python3
"""What does a no-op rerun of site.yml cost the controller's CPU, per host (issue 20, item 5)?

    python3 bench/rerun_cpu.py --up                # start the demo lab, converge it once, then measure
    python3 bench/rerun_cpu.py                     # the demo lab is up and converged: 2 rounds
    python3 bench/rerun_cpu.py --rounds 3 --only project --top 20
    python3 bench/rerun_cpu.py --paths fast        # the converged-host fast path only

On the demo lab (``inventories/demo``, the 3 hosts of ``spark-lab``), it times no-op reruns of ``site.yml``,
alternating two configurations (A B, B A, ...), each along two paths:

- fast: ``site.yml`` as a rerun runs it, every host converged, so the converge stages skip them (the converged-host
  fast path: docs/development.md, "Reruns"); preflight, the check and the benchmark stage still run;
- full: ``-e sparkfleet_full_converge=true``, every host converged in full (what a rerun cost before the fast path,
  and what a host that drifted costs);

and the configurations:

- project: this repository's ``ansible.cfg`` as it is (forks, pipelining, ControlPersist 120 s, fact cache);
- defaults: Ansible's real defaults (forks 5, no pipelining, implicit gathering, no fact cache, and ssh's own
  ``-C -o ControlMaster=auto -o ControlPersist=60s``), keeping only the settings that find this project's content.

Controller CPU is user + system time of ``ansible-playbook`` and every process under it (workers, ssh clients:
``os.wait4``), plus the ssh ControlPersist masters it leaves behind (this script makes itself their subreaper,
ends them after the run and adds what they used): what one controller spends to drive the lab. A small callback
(written into a temporary directory, enabled for the run) counts the task results (one per host and task, loop
items apart) and attributes CPU to each task: the controller's usage between one task's start and the next.
The benchmark stage (tasks named ``... | Benchmark ...``: verify's and the gateway's load generation) is real
work, reported apart: its wall time, and the controller CPU during its tasks.

It prints each run, the top tasks of the last project run by CPU and by results, the medians, the controller
CPU per host of each configuration along each path (with and without the benchmark stage), and last the ratio
defaults/project of controller CPU per host on the fast path. It leaves the lab as it found it (``--up`` starts it and
leaves it up). Standard library only: run it with any Python 3.10+ from the repository root.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "lab" / ".state" / "bench-rerun-cpu"
LAB = ROOT / "lab" / "sparkfleet_lab.py"
DEFAULT_INVENTORY = ROOT / "inventories" / "demo"
DEFAULT_LIMIT = "spark-lab"
# The settings of ansible.cfg that say where this project's content is: the "defaults" configuration keeps these
# and nothing else, so both configurations run the same roles and modules.
CONTENT_KEYS = (
    "roles_path",
    "library",
    "module_utils",
    "collections_path",
    "collections_paths",
    "interpreter_python",
    "force_valid_group_names",
)
PATH_KEYS = ("roles_path", "library", "module_utils", "collections_path", "collections_paths")
# Tasks that generate load against a service: the benchmark stage (real work, reported apart from overhead).
BENCH_TASK = re.compile(r"\| Benchmark\b")
CALLBACK_NAME = "sparkfleet_rerun_cpu"
PR_SET_CHILD_SUBREAPER = 36

# The callback: loaded by ansible-playbook from a temporary directory (ANSIBLE_CALLBACK_PLUGINS). It runs in the
# controller's main process: the CPU between two task starts (its own and its reaped workers') is the first task's.
CALLBACK_SOURCE = """
from __future__ import annotations

import json
import multiprocessing
import os
import resource
import time

from ansible.plugins.callback import CallbackBase


def _cpu():
    # Reap finished workers first, so their CPU lands on the task they ran.
    multiprocessing.active_children()
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "@NAME@"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._tasks = []
        self._cur = None
        self._t0 = time.monotonic()

    def _close(self):
        if self._cur is not None:
            self._cur["cpu"] = _cpu() - self._cur.pop("_cpu0")
            self._cur["wall"] = time.monotonic() - self._cur.pop("_wall0")
            self._tasks.append(self._cur)
            self._cur = None

    def _start(self, task, handler=False):
        self._close()
        self._cur = {"name": task.get_name(), "path": task.get_path() or "", "action": task.action,
                     "handler": handler, "results": 0, "items": 0, "changed": 0, "skipped": 0,
                     "_cpu0": _cpu(), "_wall0": time.monotonic()}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task, handler=True)

    def _result(self, result, skipped=False):
        if self._cur is not None:
            self._cur["results"] += 1
            self._cur["changed"] += 1 if result._result.get("changed") else 0
            self._cur["skipped"] += 1 if skipped else 0

    def v2_runner_on_ok(self, result):
        self._result(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result)

    def v2_runner_on_skipped(self, result):
        self._result(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._result(result)

    def _item(self, result):
        if self._cur is not None:
            self._cur["items"] += 1

    v2_runner_item_on_ok = _item
    v2_runner_item_on_failed = _item
    v2_runner_item_on_skipped = _item

    def v2_playbook_on_stats(self, stats):
        self._close()
        hosts = {h: stats.summarize(h) for h in sorted(stats.processed)}
        doc = {"tasks": self._tasks, "hosts": hosts, "wall": time.monotonic() - self._t0, "main_cpu": _cpu()}
        with open(os.environ["SPARKFLEET_RERUN_CPU_OUT"], "w") as fh:
            json.dump(doc, fh)
""".replace("@NAME@", CALLBACK_NAME)


class BenchError(Exception):
    """The measurement could not be made; the message says what and how to fix it."""


@dataclass
class TaskCost:
    name: str
    path: str
    results: int
    items: int
    cpu: float
    wall: float
    changed: int


@dataclass
class RunResult:
    config: str
    hosts: int
    seconds: float
    cpu: float
    ssh_master_cpu: float
    bench_cpu: float
    bench_wall: float
    results: int
    items: int
    changed: int
    tasks: list[TaskCost] = field(default_factory=list)
    path: str = "fast"

    @property
    def label(self) -> str:
        """The configuration, and "full" for the full path: "project", "defaults full"."""
        return self.config if self.path == "fast" else f"{self.config} {self.path}"

    @property
    def cpu_per_host(self) -> float:
        return self.cpu / self.hosts

    @property
    def results_per_host(self) -> float:
        return self.results / self.hosts


# --- the two configurations, the two paths ------------------------------------------------------------

PATHS = ("fast", "full")
# What a path adds to ansible-playbook's arguments.
PATH_ARGS = {"fast": [], "full": ["-e", "sparkfleet_full_converge=true"]}


def ansible_bin(name: str) -> str:
    venv = ROOT / ".venv" / "bin" / name
    if venv.exists():
        return str(venv)
    found = shutil.which(name)
    if not found:
        raise BenchError(f"{name} not found: run `make venv` (the pinned toolchain is in .venv)")
    return found


def write_defaults_cfg(project_cfg: Path, out: Path) -> None:
    """Ansible's real defaults plus only the settings that find this project's content (paths made absolute).

    No ssh_args: ssh then runs with Ansible's default ``-C -o ControlMaster=auto -o ControlPersist=60s``.
    """
    src = configparser.ConfigParser(interpolation=None)
    src.read(project_cfg)
    lines = ["# bench/rerun_cpu.py: Ansible's defaults, and where this project's content is.", "[defaults]"]
    for key in CONTENT_KEYS:
        if src.has_option("defaults", key):
            value = src.get("defaults", key)
            if key in PATH_KEYS:
                value = os.pathsep.join(
                    p if p.startswith(("/", "~")) else str((project_cfg.parent / p).resolve())
                    for p in value.split(os.pathsep)
                )
            lines.append(f"{key} = {value}")
    lines += ["forks = 5", "gathering = implicit", "", "[ssh_connection]", "pipelining = false"]
    out.write_text("\n".join(lines) + "\n")


def enabled_callbacks(cfg: Path) -> str:
    src = configparser.ConfigParser(interpolation=None)
    src.read(cfg)
    have = src.get("defaults", "callbacks_enabled", fallback="")
    return ",".join([c.strip() for c in have.split(",") if c.strip()] + [CALLBACK_NAME])


def env_for(config: str, cfg: Path, run_dir: Path, plugin_dir: Path, out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(cfg)
    env["ANSIBLE_CALLBACK_PLUGINS"] = str(plugin_dir)
    env["ANSIBLE_CALLBACKS_ENABLED"] = enabled_callbacks(cfg)
    env["SPARKFLEET_RERUN_CPU_OUT"] = str(out)
    # A new ControlPersist directory per run: no connection carries over from the previous run.
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(run_dir / "cp")
    if config == "project":
        # Its own fact cache, reused by the later project runs (what a rerun finds).
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(WORK / "facts-project")
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


# --- CPU accounting --------------------------------------------------------------------------------


def become_subreaper() -> bool:
    """Orphaned descendants (ssh ControlPersist masters) are reparented to this process, so their CPU counts."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def own_children() -> list[int]:
    me = str(os.getpid())
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses; the fields after the last ')' do not.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == me:
            out.append(int(entry.name))
    return out


def reap_leftovers(timeout_s: float = 10.0) -> float:
    """End the processes the run left behind (ssh masters), wait for them, return the CPU they used."""
    cpu = 0.0
    pids = own_children()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while True:
            try:
                done, _status, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                cpu += usage.ru_utime + usage.ru_stime
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout_s
            time.sleep(0.05)
    return cpu


# --- one run ---------------------------------------------------------------------------------------


def summarize(
    config: str, doc: dict[str, Any], seconds: float, cpu: float, ssh_cpu: float, *, path: str = "fast"
) -> RunResult:
    hosts = doc.get("hosts", {})
    tasks = [
        TaskCost(t["name"], t.get("path", ""), t["results"], t["items"], t["cpu"], t["wall"], t.get("changed", 0))
        for t in doc.get("tasks", [])
    ]
    bench = [t for t in tasks if BENCH_TASK.search(t.name)]
    return RunResult(
        config=config,
        hosts=max(len(hosts), 1),
        seconds=seconds,
        cpu=cpu,
        ssh_master_cpu=ssh_cpu,
        bench_cpu=sum(t.cpu for t in bench),
        bench_wall=sum(t.wall for t in bench),
        results=sum(t.results for t in tasks),
        items=sum(t.items for t in tasks),
        changed=sum(h.get("changed", 0) for h in hosts.values()),
        tasks=tasks,
        path=path,
    )


def run_site(
    config: str,
    cfg: Path,
    inv: Path,
    limit: str,
    *,
    plugin_dir: Path,
    log_dir: Path,
    timeout_s: float,
    extra: list[str],
    path: str = "fast",
) -> RunResult:
    # Short: ssh's ControlPersist socket lives below it (a Unix socket path holds 107 bytes).
    run_dir = Path(tempfile.mkdtemp(prefix=f"{config[:1]}{path[:1]}-", dir=log_dir))
    (run_dir / "cp").mkdir()
    out = run_dir / "cpu.json"
    argv = [ansible_bin("ansible-playbook"), str(ROOT / "site.yml"), "-i", str(inv / "hosts.yml"), "-l", limit]
    argv += PATH_ARGS[path] + extra
    started = time.monotonic()
    with (run_dir / "stdout.txt").open("w") as fh:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env_for(config, cfg, run_dir, plugin_dir, out), stdout=fh, stderr=subprocess.STDOUT
        )
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                reap_leftovers()
                raise BenchError(f"{config}: site.yml ran past {timeout_s:.0f} s (output: {run_dir}/stdout.txt)")
            time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    cpu = usage.ru_utime + usage.ru_stime
    ssh_cpu = reap_leftovers()
    if proc.returncode != 0 or not out.exists():
        raise BenchError(f"{config}: site.yml failed (rc {proc.returncode}); its output is {run_dir}/stdout.txt")
    res = summarize(config, json.loads(out.read_text()), seconds, cpu + ssh_cpu, ssh_cpu, path=path)
    shutil.rmtree(run_dir / "cp", ignore_errors=True)
    return res


# --- the report ------------------------------------------------------------------------------------


def top_tasks(run: RunResult, n: int) -> list[str]:
    """The run's tasks grouped by name and file (a task in a loop of includes appears once), by CPU and by count."""
    groups: dict[tuple[str, str], list[TaskCost]] = {}
    for t in run.tasks:
        path = re.sub(r"^.*?/roles/", "roles/", t.path)
        groups.setdefault((t.name, path), []).append(t)
    rows = [
        (sum(t.cpu for t in ts), sum(t.results for t in ts), sum(t.items for t in ts), len(ts), name, path)
        for (name, path), ts in groups.items()
    ]
    lines = [f"top {n} tasks of the last {run.label} run by controller CPU (s, all hosts)"]
    lines.append("     cpu  results  items  runs  task")
    for cpu, res, items, runs, name, path in sorted(rows, reverse=True)[:n]:
        lines.append(f"  {cpu:6.2f} {res:8d} {items:6d} {runs:5d}  {name}  [{path}]")
    lines.append(f"top {n} tasks of the last {run.label} run by task results (one per host and task)")
    for cpu, res, items, runs, name, path in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)[:n]:
        lines.append(f"  {cpu:6.2f} {res:8d} {items:6d} {runs:5d}  {name}  [{path}]")
    return lines


def med(results: list[RunResult], label: str, attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in results if r.label == label)


LABELS = ("project", "project full", "defaults", "defaults full")


def report(results: list[RunResult]) -> list[str]:
    labels = [c for c in LABELS if any(r.label == c for r in results)]
    hosts = max(results[0].hosts, 1) if results else 1
    lines = [
        "",
        "medians               wall s  CPU s  CPU s/host  ssh masters  benchmark CPU / wall  results/host  changed",
    ]
    for c in labels:
        ch = max(r.changed for r in results if r.label == c)
        m = {a: med(results, c, a) for a in ("seconds", "cpu", "cpu_per_host", "ssh_master_cpu", "bench_cpu")}
        m["bench_wall"], m["results_per_host"] = med(results, c, "bench_wall"), med(results, c, "results_per_host")
        lines.append(
            f"  {c:13}  {m['seconds']:8.1f} {m['cpu']:6.1f} {m['cpu_per_host']:11.2f} {m['ssh_master_cpu']:12.2f}"
            f" {m['bench_cpu']:9.2f} /{m['bench_wall']:6.1f} {m['results_per_host']:13.0f} {ch:8d}"
        )
    for config in ("project", "defaults"):
        paths = [
            (label, path) for label, path in ((config, "fast path"), (f"{config} full", "full path")) if label in labels
        ]
        if not paths:
            continue
        text = []
        for label, path in paths:
            per_host = med(results, label, "cpu_per_host")
            bench = med(results, label, "bench_cpu") / hosts
            text.append(f"{path} {per_host:.2f} ({per_host - bench:.2f} without the benchmark stage's {bench:.2f})")
        lines.append(f"{config}: controller CPU-s per host for a no-op rerun: {'; '.join(text)}; goal <= 3.00")
    if "project" in labels and "defaults" in labels:
        ratio = med(results, "defaults", "cpu_per_host") / med(results, "project", "cpu_per_host")
        wall = med(results, "defaults", "seconds") / med(results, "project", "seconds")
        lines.append(
            f"defaults/project controller CPU per host: {ratio:.2f}x ({med(results, 'defaults', 'cpu_per_host'):.2f}"
            f" vs {med(results, 'project', 'cpu_per_host'):.2f} CPU-s/host; wall {wall:.2f}x)"
        )
    return lines


def lab(command: str, inv: Path) -> None:
    py = ROOT / ".venv" / "bin" / "python"
    res = subprocess.run(
        [str(py if py.exists() else sys.executable), str(LAB), command, "--inventory", str(inv)], cwd=ROOT, check=False
    )
    if res.returncode != 0:
        raise BenchError(f"lab {command} failed (rc {res.returncode}): see the lines above")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inventory", default=str(DEFAULT_INVENTORY), help="lab inventory directory (default demo)")
    ap.add_argument("--limit", default=DEFAULT_LIMIT, help="-l of every run (default spark-lab)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each configuration (default 2)")
    ap.add_argument("--only", choices=("project", "defaults"), help="time one configuration only")
    ap.add_argument(
        "--paths",
        default=",".join(PATHS),
        help="the paths to time, in order: fast (a rerun), full (-e sparkfleet_full_converge=true); default fast,full",
    )
    ap.add_argument("--up", action="store_true", help="start the lab and converge it once first (left up)")
    ap.add_argument("--top", type=int, default=15, help="tasks listed by CPU and by results (default 15)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one site.yml run may take (default 1800)")
    ap.add_argument("extra", nargs="*", help="more ansible-playbook arguments, after --")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        print("rerun_cpu: --rounds takes at least 1", file=sys.stderr)
        return 2
    paths = [p for p in args.paths.split(",") if p]
    if not paths or any(p not in PATHS for p in paths):
        print(f"rerun_cpu: --paths takes {', '.join(PATHS)} (comma-separated), not {args.paths!r}", file=sys.stderr)
        return 2
    inv = Path(args.inventory).resolve()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not become_subreaper():
        print("rerun_cpu: cannot become a subreaper: ssh ControlPersist masters are not counted", file=sys.stderr)
    try:
        WORK.mkdir(parents=True, exist_ok=True)
        log_dir = Path(tempfile.mkdtemp(prefix="runs-", dir=WORK))
        plugin_dir = log_dir / "callback"
        plugin_dir.mkdir()
        (plugin_dir / f"{CALLBACK_NAME}.py").write_text(CALLBACK_SOURCE)
        project_cfg = ROOT / "ansible.cfg"
        defaults_cfg = WORK / "ansible-defaults.cfg"
        write_defaults_cfg(project_cfg, defaults_cfg)
        cfgs = {"project": project_cfg, "defaults": defaults_cfg}
        kw: dict[str, Any] = {"plugin_dir": plugin_dir, "log_dir": log_dir, "timeout_s": args.timeout}
        if args.up:
            lab("up", inv)
            print("converging once (project configuration, not timed as a rerun)", flush=True)
            first = run_site("project", project_cfg, inv, args.limit, extra=args.extra, **kw)
            print(f"  first converge: {first.seconds:.1f} s, changed={first.changed}", flush=True)
        results: list[RunResult] = []
        for rnd in range(args.rounds):
            order = ("project", "defaults") if rnd % 2 == 0 else ("defaults", "project")
            for config, path in [(c, p) for c in order for p in paths]:
                if args.only and config != args.only:
                    continue
                res = run_site(config, cfgs[config], inv, args.limit, extra=args.extra, path=path, **kw)
                results.append(res)
                print(
                    f"  round {rnd + 1} {res.label:13}: {res.seconds:6.1f} s wall, {res.cpu:6.1f} CPU-s"
                    f" ({res.cpu_per_host:5.2f}/host, ssh masters {res.ssh_master_cpu:4.2f}),"
                    f" {res.results} task results ({res.results_per_host:.0f}/host) + {res.items} loop items,"
                    f" benchmark {res.bench_cpu:4.2f} CPU-s / {res.bench_wall:5.1f} s, changed={res.changed}",
                    flush=True,
                )
        print(f"each run's output and per-task costs (cpu.json): {log_dir}")
        last = [r for r in results if r.label == "project"] or results
        for line in top_tasks(last[-1], args.top) + report(results):
            print(line)
        return 0
    except BenchError as exc:
        print(f"rerun_cpu: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
