"""Helpers shared by bench/agreement.py and bench/client_capacity.py. Standard library only.

Both scripts compare two benchmark CLIENTS on one server: sparkfleet's (``bin/sparkfleet-bench``) and
SGLang's (``sglang.benchmark.serving``, run through ``bench/sglang_client.py`` in ``.cache/bench-venv``).
This module builds their command lines, runs them with a time limit, reads the numbers each writes,
and makes sure every process and container a script started is gone when it exits.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPARKFLEET_CLI = ROOT / "bin" / "sparkfleet-bench"
BENCH_VENV_PYTHON = ROOT / ".cache" / "bench-venv" / "bin" / "python"
BENCH_TOKENIZER = ROOT / ".cache" / "bench-tokenizer"
SGLANG_RUNNER = ROOT / "bench" / "sglang_client.py"
STANDIN_IMAGE = "sparkfleet-lab/llm-standin:llama.cpp"
LOOPBACK = "127.0.0.1"


class BenchError(Exception):
    """A run could not be measured; the message says what and how to fix it."""


# --- cleanup -----------------------------------------------------------------------------------

_cleanups: list[tuple[str, Callable[[], None]]] = []


def on_exit(what: str, fn: Callable[[], None]) -> None:
    """Run fn when the script ends (normally, by exception, SIGINT or SIGTERM); newest first."""
    _cleanups.append((what, fn))


def forget(fn: Callable[[], None]) -> None:
    _cleanups[:] = [(w, f) for w, f in _cleanups if f is not fn]


def _run_cleanups() -> None:
    while _cleanups:
        what, fn = _cleanups.pop()
        try:
            fn()
        except Exception as exc:  # cleanup must go on with the rest
            print(f"cleanup: {what}: {exc}", file=sys.stderr)


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """atexit + SIGTERM/SIGHUP -> SystemExit, so try/finally blocks and atexit both run."""
    atexit.register(_run_cleanups)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 3.0) -> None:
    """Stop a process started with start_new_session=True, and its children (its process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait(grace_s)


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Finished:
    argv: list[str]
    rc: int
    output: str
    wall_s: float


def pinned(argv: Sequence[str], cpus: set[int] | None) -> list[str]:
    """argv run with its CPU affinity set to cpus (inherited by every thread and child it starts)."""
    if not cpus:
        return list(argv)
    code = (
        "import os, sys; os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(',')}); "
        "os.execvp(sys.argv[2], sys.argv[2:])"
    )
    return [sys.executable, "-c", code, ",".join(str(c) for c in sorted(cpus)), *argv]


def run(
    argv: Sequence[str], timeout_s: float, cpus: set[int] | None = None, env: dict[str, str] | None = None
) -> Finished:
    """Run a command to completion (or kill it at timeout_s), output captured, cleaned up on exit."""
    full = pinned(argv, cpus)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )

    def stop() -> None:
        stop_process(proc)

    on_exit(f"process {proc.pid}", stop)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        stop_process(proc)
        out = proc.communicate()[0]
        raise BenchError(
            f"{' '.join(argv[:3])} ... ran past {timeout_s:g}s and was stopped; last output:\n{tail(out)}"
        ) from exc
    finally:
        forget(stop)
    return Finished(list(argv), proc.returncode, out, time.perf_counter() - t0)


def tail(text: str | None, lines: int = 15) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise BenchError(f"refusing {url}: the bench scripts only talk to {LOOPBACK}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback http URL, checked above
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_http_ok(url: str, timeout_s: float, alive: Callable[[], str | None] | None = None) -> float:
    """Poll url until it answers 200; returns seconds waited. alive() returning text = gave up early."""
    t0 = time.monotonic()
    last = "no answer"
    while time.monotonic() - t0 < timeout_s:
        if alive is not None:
            dead = alive()
            if dead:
                raise BenchError(dead)
        try:
            status, body = http_get(url, timeout_s=2.0)
            if status == 200:
                return time.monotonic() - t0
            last = f"HTTP {status}: {body[:200]!r}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"{url} did not answer 200 within {timeout_s:g}s (last: {last})")


# --- the stand-in server -----------------------------------------------------------------------


STANDIN_CMD = ("--port", "8080", "--alias", "sparkfleet/tiny-llama", "--parallel", "8", "--ctx-size", "16384")


def start_standin(image: str, name: str, port: int, cpus: set[int] | None = None) -> None:
    """docker run the stand-in on 127.0.0.1:port; removed on exit (docker rm -f).

    With cpus, the container is held to those cores and llama.cpp runs that many threads.
    """
    extra_args: list[str] = []
    docker_args: list[str] = []
    if cpus:
        docker_args = ["--cpuset-cpus", ",".join(str(c) for c in sorted(cpus))]
        extra_args = [*STANDIN_CMD, "--threads", str(len(cpus)), "--threads-batch", str(len(cpus))]
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode != 0:
        raise BenchError(f"image {image} not found: build the lab images first (make images)")
    cmd = ["docker", "run", "-d", "--rm", "--name", name, "-p", f"{LOOPBACK}:{port}:8080", *docker_args, image]
    cmd += extra_args
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)

    def remove() -> None:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)

    on_exit(f"container {name}", remove)
    if res.returncode != 0:
        raise BenchError(f"docker run failed: {res.stderr.strip()}")


def container_dead(name: str) -> str | None:
    res = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True, check=False
    )
    if res.returncode != 0 or res.stdout.strip() != "true":
        logs = subprocess.run(["docker", "logs", "--tail", "20", name], capture_output=True, text=True, check=False)
        return f"container {name} is not running: {tail(logs.stdout + logs.stderr)}"
    return None


def split_cores() -> tuple[set[int], set[int]] | None:
    """(server cores, client cores): the first core this process may use for the server, the rest for
    the clients; None on a single core."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return {cores[0]}, set(cores[1:])


# --- the two clients ---------------------------------------------------------------------------


@dataclass
class Workload:
    concurrency: int
    num_prompts: int
    input_len: int
    output_len: int
    ignore_eos: bool = True


@dataclass
class RunResult:
    """The numbers one client reported for one run (its own measurement window)."""

    client: str
    output_throughput: float
    request_throughput: float
    median_tpot_ms: float | None
    completed: int
    errors: int
    duration_s: float
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def require_sparkfleet_cli() -> Path:
    if not SPARKFLEET_CLI.exists():
        raise BenchError(
            f"{SPARKFLEET_CLI.relative_to(ROOT)} not found: sparkfleet's benchmark client is not in this checkout yet"
        )
    return SPARKFLEET_CLI


def require_sglang_client(tokenizer: Path) -> Path:
    if not BENCH_VENV_PYTHON.exists():
        raise BenchError(f"{BENCH_VENV_PYTHON.relative_to(ROOT)} not found: run bench/setup_sglang_client.sh first")
    if not (tokenizer / "tokenizer.json").exists():
        raise BenchError(f"tokenizer {tokenizer} not found: run bench/setup_sglang_client.sh first")
    return BENCH_VENV_PYTHON


def sparkfleet_help() -> str:
    res = subprocess.run([str(SPARKFLEET_CLI), "--help"], capture_output=True, text=True, check=False, timeout=60)
    return res.stdout + res.stderr


def sparkfleet_argv(base_url: str, model: str, w: Workload, json_out: Path, seed: int | None) -> list[str]:
    argv = [
        str(SPARKFLEET_CLI),
        "--base-url",
        base_url,
        "--model",
        model,
        "--checks",
        "load",
        "--concurrency",
        str(w.concurrency),
        "--num-prompts",
        str(w.num_prompts),
        "--input-len",
        str(w.input_len),
        "--output-len",
        str(w.output_len),
        "--json-out",
        str(json_out),
    ]
    if w.ignore_eos:
        argv.append("--ignore-eos")
    if seed is not None:
        argv += ["--seed", str(seed)]
    return argv


def parse_sparkfleet(report_path: Path, fin: Finished) -> RunResult:
    if not report_path.exists():
        raise BenchError(f"sparkfleet-bench (rc={fin.rc}) wrote no {report_path}; output:\n{tail(fin.output)}")
    report = json.loads(report_path.read_text())
    rows = report.get("load") or []
    if not rows:
        raise BenchError(f"sparkfleet-bench (rc={fin.rc}) report has no load[] entry; output:\n{tail(fin.output)}")
    row = rows[0]
    tpot = (row.get("tpot_ms") or {}).get("p50")
    return RunResult(
        client="sparkfleet",
        output_throughput=float(row["output_throughput"]),
        request_throughput=float(row["request_throughput"]),
        median_tpot_ms=None if tpot is None else float(tpot),
        completed=int(row["completed"]),
        errors=int(row.get("errors") or 0),
        duration_s=float(row.get("duration_s") or 0.0),
        wall_s=fin.wall_s,
        extra={"mean_input_tokens": row.get("mean_input_tokens"), "mean_output_tokens": row.get("mean_output_tokens")},
    )


def sglang_argv(
    base_url: str,
    model: str,
    w: Workload,
    out_file: Path,
    *,
    tokenizer: Path,
    seed: int,
    backend: str,
    dataset_path: Path | None = None,
) -> list[str]:
    """SGLang's client on `random-ids` prompts, or with dataset_path on a `custom` JSONL of conversations
    (fixed output length w.output_len)."""
    if dataset_path is not None:
        data = ["--dataset-name", "custom", "--dataset-path", str(dataset_path)]
        data += ["--sharegpt-output-len", str(w.output_len)]
    else:
        data = ["--dataset-name", "random-ids", "--random-input-len", str(w.input_len)]
        data += ["--random-output-len", str(w.output_len), "--random-range-ratio", "1.0"]
    argv = [
        str(BENCH_VENV_PYTHON),
        str(SGLANG_RUNNER),
        "--backend",
        backend,
        "--base-url",
        base_url,
        "--model",
        model,
        "--tokenizer",
        str(tokenizer),
        *data,
        "--num-prompts",
        str(w.num_prompts),
        "--max-concurrency",
        str(w.concurrency),
        "--request-rate",
        "inf",
        "--seed",
        str(seed),
        "--output-file",
        str(out_file),
        "--disable-tqdm",
        "--ready-check-timeout-sec",
        "30",
    ]
    if not w.ignore_eos:
        argv.append("--disable-ignore-eos")
    return argv


def parse_sglang(out_file: Path, fin: Finished) -> RunResult:
    if not out_file.exists() or not out_file.read_text().strip():
        raise BenchError(f"SGLang's client (rc={fin.rc}) wrote no {out_file}; output:\n{tail(fin.output)}")
    row = json.loads(out_file.read_text().strip().splitlines()[-1])
    completed = int(row["completed"])
    return RunResult(
        client="sglang",
        output_throughput=float(row["output_throughput"]),
        request_throughput=float(row["request_throughput"]),
        median_tpot_ms=None if row.get("median_tpot_ms") is None else float(row["median_tpot_ms"]),
        completed=completed,
        errors=int(row.get("num_prompts") or completed) - completed,
        duration_s=float(row["duration"]),
        wall_s=fin.wall_s,
        extra={
            "mean_input_tokens": round(row["total_input_tokens"] / completed, 2) if completed else None,
            "mean_output_tokens": round(row["total_output_tokens"] / completed, 2) if completed else None,
        },
    )


# --- numbers -----------------------------------------------------------------------------------


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"
