#!/usr/bin/env python3
"""What does a no-op rerun of site.yml cost at fleet scale, with this project's Ansible settings and without?

    python3 bench/ansible_overhead.py                    # 1, 4 and 16 lab hosts, 2 rounds
    python3 bench/ansible_overhead.py --sizes 1,4 --rounds 3 --keep

It starts up to 16 lab hosts (containers with systemd, sshd and Docker, ``lab/sparkfleet_lab.py``) on their own
network, gives each the demo lab's service (the llama.cpp stand-in from its image archive) and a light
verification, converges them once with ``site.yml``, then times no-op reruns of ``site.yml`` limited to the
first 1, 4 and 16 hosts, alternating two configurations in one run (A B, B A, ...):

- project: this repository's ``ansible.cfg`` as it is (forks, pipelining, ControlPersist, fact cache, callbacks);
- defaults: Ansible's defaults, as the issue defines them: forks 5, no pipelining, no fact cache, no
  ControlPersist (``-o ControlMaster=no``), keeping only the settings that find this project's content.

Every run gets a new ControlPersist directory (connections never carry over between runs) and its own fact
cache directory reused only by later runs of the same configuration. The benchmark stage (the verify tasks that
generate load) is real work, not overhead: its wall time is read from the run's JSON callback and reported
separately. The script prints each run, then the medians, then the ratios, last: defaults/project at each size
and time(largest)/time(1), with and without the benchmark stage. It removes the hosts on exit unless --keep.
Standard library only, and self-contained: run it with any Python 3.10+ from the repository root.
"""

from __future__ import annotations

import argparse
import configparser
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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "lab" / ".state"
WORK = STATE / "bench-overhead"
LAB = ROOT / "lab" / "sparkfleet_lab.py"
NETWORK = "sparkfleet-bench"
SUBNET_PREFIX = "172.30.48"
HOST_IMAGE = "sparkfleet-lab/host:bookworm"
STANDIN_IMAGE = "sparkfleet-lab/llm-standin:llama.cpp"
STANDIN_ARCHIVE = STATE / "images" / "llm-standin.tar"
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


class BenchError(Exception):
    """The measurement could not be made; the message says what and how to fix it."""


@dataclass
class RunResult:
    config: str
    size: int
    seconds: float
    bench_seconds: float
    changed: int
    failed: int
    tasks: int

    @property
    def overhead(self) -> float:
        return max(self.seconds - self.bench_seconds, 0.0)


# --- the lab ---------------------------------------------------------------------------------------


def ansible_bin(name: str) -> str:
    venv = ROOT / ".venv" / "bin" / name
    if venv.exists():
        return str(venv)
    found = shutil.which(name)
    if not found:
        raise BenchError(f"{name} not found: run `make venv` (the pinned toolchain is in .venv)")
    return found


def lab_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def host_names(n: int) -> list[str]:
    return [f"bench-{i:02d}" for i in range(1, n + 1)]


def write_inventory(n: int, inv: Path) -> None:
    """A lab inventory of n hosts with the demo lab's service and a light verification (absolute paths)."""
    (inv / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    hosts = "\n".join(
        f"        {h}:\n          ansible_host: {SUBNET_PREFIX}.{10 + i}" for i, h in enumerate(host_names(n), 1)
    )
    (inv / "hosts.yml").write_text(
        "---\n# bench/ansible_overhead.py: generated, removed with the lab.\n"
        f"all:\n  children:\n    bench:\n      hosts:\n{hosts}\n"
    )
    (inv / "lab.yml").write_text(f"---\nnetwork: {NETWORK}\nsubnet: {SUBNET_PREFIX}.0/24\nimage: {HOST_IMAGE}\n")
    key = STATE / "id_ed25519"
    demo = ROOT / "inventories" / "demo" / "group_vars" / "all"
    connection = (demo / "connection.yml").read_text()
    connection = re.sub(r"ansible_ssh_private_key_file: .*", f"ansible_ssh_private_key_file: {key}", connection)
    (inv / "group_vars" / "all" / "connection.yml").write_text(connection)
    (inv / "group_vars" / "all" / "bench.yml").write_text(
        "---\n"
        f"bench_venv_wheelhouse: {STATE / 'wheelhouse'}\n"
        "preflight_gpu_expected: false\n"
        "llm_serving_services:\n"
        "  - name: standin-tiny-llama\n"
        "    engine: openai\n"
        f"    image: {STANDIN_IMAGE}\n"
        f"    image_archive: {STANDIN_ARCHIVE}\n"
        "    model: sparkfleet/tiny-llama\n"
        "    gpu: none\n"
        "    port: 8080\n"
        "    container_port: 8080\n"
        '    command: ["--port", "8080", "--alias", "sparkfleet/tiny-llama", "--parallel", "2", "--ctx-size",'
        ' "4096", "--threads", "1", "--threads-batch", "1", "--poll", "0"]\n'
        "# A light verification: the hosts share this machine's cores; one host benchmarks at a time.\n"
        "llm_verify_concurrency: [1, 8]\n"
        "llm_verify_num_prompts: 8\n"
        "llm_verify_output_len: 16\n"
        "llm_verify_multi_turn_conversations: 2\n"
        "llm_verify_multi_turn_turns: 2\n"
        "llm_verify_timeout_s: 300\n"
        "llm_verify_throttle: 1\n"
        f"llm_verify_report_dir: {WORK / 'reports'}\n"
    )


def lab(command: str, inv: Path) -> None:
    res = subprocess.run([lab_python(), str(LAB), command, "--inventory", str(inv)], cwd=ROOT, check=False)
    if res.returncode != 0:
        raise BenchError(f"lab {command} failed (rc {res.returncode}): see the lines above")


# --- the two configurations ------------------------------------------------------------------------


def write_defaults_cfg(project_cfg: Path, out: Path) -> None:
    """Ansible's defaults plus only the settings that find this project's content (paths made absolute)."""
    src = configparser.ConfigParser(interpolation=None)
    src.read(project_cfg)
    lines = ["# bench/ansible_overhead.py: Ansible's defaults, and where this project's content is.", "[defaults]"]
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
    lines.append("ssh_args = -C -o ControlMaster=no")
    out.write_text("\n".join(lines) + "\n")


def env_for(config: str, cfg: Path, run_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(cfg)
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    # A new ControlPersist directory per run: no connection carries over from the previous run.
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(run_dir / "cp")
    if config == "project":
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(WORK / "facts-project")
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


# --- one run ---------------------------------------------------------------------------------------


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def bench_seconds(doc: dict[str, Any]) -> tuple[float, int]:
    """Wall time during which a benchmark task ran (union of intervals), and the number of tasks."""
    spans: list[tuple[float, float]] = []
    tasks = 0
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            tasks += 1
            info = task.get("task", {})
            dur = info.get("duration", {})
            if BENCH_TASK.search(info.get("name", "")) and dur.get("start") and dur.get("end"):
                spans.append((_stamp(dur["start"]), _stamp(dur["end"])))
    total = 0.0
    last_end = float("-inf")
    for start, end in sorted(spans):
        if end <= last_end:
            continue
        total += end - max(start, last_end)
        last_end = end
    return total, tasks


def run_site(config: str, cfg: Path, size: int, inv: Path, *, log_dir: Path, timeout_s: float) -> RunResult:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{config}-{size}-", dir=log_dir))
    (run_dir / "cp").mkdir()
    argv = [ansible_bin("ansible-playbook"), str(ROOT / "site.yml"), "-i", str(inv / "hosts.yml")]
    argv += ["-l", ",".join(host_names(size))]
    out = run_dir / "stdout.json"
    started = time.monotonic()
    with out.open("w") as fh:
        try:
            proc = subprocess.run(
                argv,
                cwd=ROOT,
                env=env_for(config, cfg, run_dir),
                stdout=fh,
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{config}, {size} hosts: site.yml ran past {timeout_s:.0f} s (output: {out})") from exc
    seconds = time.monotonic() - started
    text = out.read_text()
    # The JSON document is printed at the end; other callbacks (profile_tasks) may print lines before it.
    start = 0 if text.startswith("{") else text.find("\n{") + 1
    try:
        doc, _ = json.JSONDecoder().raw_decode(text[start:]) if start >= 0 else ({}, 0)
    except json.JSONDecodeError as exc:
        raise BenchError(
            f"{config}, {size} hosts: no JSON result (rc {proc.returncode}): {proc.stderr[-800:]}"
        ) from exc
    stats = doc.get("stats", {})
    failed = sum(s.get("failures", 0) + s.get("unreachable", 0) for s in stats.values())
    if proc.returncode != 0 or failed:
        raise BenchError(f"{config}, {size} hosts: site.yml failed (rc {proc.returncode}); the run's output is {out}")
    bench, tasks = bench_seconds(doc)
    changed = sum(s.get("changed", 0) for s in stats.values())
    shutil.rmtree(run_dir / "cp", ignore_errors=True)
    return RunResult(config, size, seconds, bench, changed, failed, tasks)


# --- the report ------------------------------------------------------------------------------------


def med(results: list[RunResult], config: str, size: int, attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in results if r.config == config and r.size == size)


def report(results: list[RunResult], sizes: list[int]) -> list[str]:
    lines = ["", "medians (s)          total   benchmark  overhead   changed"]
    for size in sizes:
        for config in ("project", "defaults"):
            ch = max(r.changed for r in results if r.config == config and r.size == size)
            lines.append(
                f"  {config:9} {size:>2} hosts {med(results, config, size, 'seconds'):7.1f}"
                f" {med(results, config, size, 'bench_seconds'):9.1f} {med(results, config, size, 'overhead'):9.1f}"
                f" {ch:9d}"
            )
    lines.append("")
    for size in sizes:
        total = med(results, "defaults", size, "seconds") / med(results, "project", size, "seconds")
        over = med(results, "defaults", size, "overhead") / med(results, "project", size, "overhead")
        lines.append(f"defaults/project at {size:>2} hosts: {total:.2f}x total, {over:.2f}x without the benchmark")
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        for config in ("project", "defaults"):
            total = med(results, config, hi, "seconds") / med(results, config, lo, "seconds")
            over = med(results, config, hi, "overhead") / med(results, config, lo, "overhead")
            lines.append(f"time({hi})/time({lo}), {config}: {total:.2f}x total, {over:.2f}x without the benchmark")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,4,16", help="host counts to time (default 1,4,16; at most 16)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each configuration at each size (default 2)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one site.yml run may take (default 1800)")
    ap.add_argument("--keep", action="store_true", help="leave the hosts running (a later run reuses them)")
    args = ap.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        print(f"ansible_overhead: --sizes {args.sizes!r}: give host counts such as 1,4,16", file=sys.stderr)
        return 2
    if not sizes or sizes[0] < 1 or sizes[-1] > 16 or args.rounds < 1:
        print("ansible_overhead: --sizes takes counts from 1 to 16 and --rounds at least 1", file=sys.stderr)
        return 2
    inv = WORK / "inventory"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for image in (HOST_IMAGE, STANDIN_IMAGE):
            if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode:
                raise BenchError(f"image {image} not found: run `make images` first")
        if not STANDIN_ARCHIVE.exists():
            raise BenchError(f"{STANDIN_ARCHIVE} not found: run `make images` first")
        WORK.mkdir(parents=True, exist_ok=True)
        write_inventory(sizes[-1], inv)
        lab("up", inv)
        project_cfg = ROOT / "ansible.cfg"
        defaults_cfg = WORK / "ansible-defaults.cfg"
        write_defaults_cfg(project_cfg, defaults_cfg)
        cfgs = {"project": project_cfg, "defaults": defaults_cfg}
        log_dir = Path(tempfile.mkdtemp(prefix="runs-", dir=WORK))
        print(f"converging {sizes[-1]} hosts once (project configuration, not timed as a rerun)", flush=True)
        first = run_site("project", project_cfg, sizes[-1], inv, log_dir=log_dir, timeout_s=args.timeout)
        print(f"  first converge: {first.seconds:.1f} s, changed={first.changed}", flush=True)
        results: list[RunResult] = []
        for rnd in range(args.rounds):
            order = ("project", "defaults") if rnd % 2 == 0 else ("defaults", "project")
            for size in sizes:
                for config in order:
                    res = run_site(config, cfgs[config], size, inv, log_dir=log_dir, timeout_s=args.timeout)
                    results.append(res)
                    print(
                        f"  round {rnd + 1} {config:9} {size:>2} hosts: {res.seconds:6.1f} s"
                        f" (benchmark {res.bench_seconds:5.1f} s, {res.tasks} tasks, changed={res.changed})",
                        flush=True,
                    )
        print(f"each run's JSON output (per-task timings): {log_dir}")
        for line in report(results, sizes):
            print(line)
        return 0
    except BenchError as exc:
        print(f"ansible_overhead: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and inv.exists():
            lab("down", inv)


if __name__ == "__main__":
    sys.exit(main())
