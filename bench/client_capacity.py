#!/usr/bin/env python3
"""How many requests and streamed chunks per second can each benchmark CLIENT drive?

Starts ``bench/fast_sse_server.py`` (asyncio, raw HTTP/1.1, OpenAI chat SSE, ``--chunks`` one-token
chunks per response with no delay, usage in the last chunk) held to the first core, then runs
sparkfleet's client (``bin/sparkfleet-bench --checks load``) and SGLang's (``sglang.benchmark.serving``
through ``bench/sglang_client.py``) held to the second core, one at a time, interleaved A B B A ...,
at a high concurrency. Each client's own ``request_throughput`` and ``output_throughput`` (= chunks/s:
one token per chunk, the usage says ``--chunks``) are the measurement; the server's own counters and
CPU time are printed beside them, so a run where the SERVER was the limit (CPU near 100% of its core)
is marked, not passed off as the client's ceiling. The LAST line is the ratio sparkfleet / SGLang of
requests/s and of chunks/s (medians).

``--with-aiohttp`` adds a third client, ``bench/aiohttp_client.py``: the smallest fair client on
aiohttp in the bench venv (no connection cap, 1 MiB buffer), i.e. what running the module on a
well-kept HTTP library instead of the standard library would give. Its ratio is printed before the
last line; the last line stays sparkfleet / SGLang.

``--profile`` runs sparkfleet's client once more under cProfile and prints the top entries.
Exit status: 0 when measured, 2 when nothing could be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script (bench/client_capacity.py): make the repository root importable for `bench.benchlib`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import benchlib as bl

SERVER = bl.ROOT / "bench" / "fast_sse_server.py"
AIOHTTP_CLIENT = bl.ROOT / "bench" / "aiohttp_client.py"
MODEL = "sfbench/fast-sse"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, default=256, help="concurrent requests (default 256)")
    ap.add_argument("--num-prompts", type=int, default=3000, help="requests per run (default 3000)")
    ap.add_argument("--chunks", type=int, default=64, help="streamed chunks (tokens) per response (default 64)")
    ap.add_argument("--input-len", type=int, default=32, help="prompt tokens per request (default 32)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each client (default 2)")
    ap.add_argument("--tokenizer", type=Path, default=bl.BENCH_TOKENIZER, help="HF tokenizer dir for SGLang's client")
    ap.add_argument("--run-timeout", type=float, default=180.0, help="seconds one client run may take (default 180)")
    ap.add_argument("--no-pin", action="store_true", help="do not hold the server and the clients to separate cores")
    ap.add_argument("--profile", action="store_true", help="also profile sparkfleet's client (cProfile, top entries)")
    ap.add_argument(
        "--with-aiohttp", action="store_true", help="also run bench/aiohttp_client.py (a minimal aiohttp client)"
    )
    ap.add_argument("--profile-top", type=int, default=20, help="entries of the profile to print (default 20)")
    a = ap.parse_args(argv)
    for name in ("concurrency", "num_prompts", "chunks", "input_len", "rounds"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.chunks < 2:
        ap.error("--chunks must be at least 2")
    return a


def start_server(port: int, chunks: int, cpu: int | None) -> subprocess.Popen[str]:
    argv = [sys.executable, str(SERVER), "--port", str(port), "--chunks", str(chunks)]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    bl.on_exit(f"fast_sse_server {proc.pid}", lambda: bl.stop_process(proc))

    def dead() -> str | None:
        if proc.poll() is None:
            return None
        return f"fast_sse_server exited with {proc.returncode}: {bl.tail(proc.stdout.read() if proc.stdout else '')}"

    bl.wait_http_ok(f"http://{bl.LOOPBACK}:{port}/health", 20, alive=dead)
    return proc


def server_stats(base_url: str) -> dict[str, float]:
    status, body = bl.http_get(f"{base_url}/sfbench/stats")
    if status != 200:
        raise bl.BenchError(f"{base_url}/sfbench/stats answered HTTP {status}")
    return {k: float(v) for k, v in json.loads(body).items()}


def one_run(
    client: str, a: argparse.Namespace, base_url: str, tmp: Path, idx: int
) -> tuple[bl.RunResult, dict[str, float]]:
    work = bl.Workload(a.concurrency, a.num_prompts, a.input_len, a.chunks, ignore_eos=True)
    before = server_stats(base_url)
    if client == "sparkfleet":
        out = tmp / f"{idx:02d}-sparkfleet.json"
        fin = bl.run(bl.sparkfleet_argv(base_url, MODEL, work, out, seed=idx), a.run_timeout, cpus=a.client_cpus)
        res = bl.parse_sparkfleet(out, fin)
    elif client == "aiohttp":
        out = tmp / f"{idx:02d}-aiohttp.jsonl"
        argv = [str(bl.BENCH_VENV_PYTHON), str(AIOHTTP_CLIENT), "--base-url", base_url, "--model", MODEL]
        argv += ["--concurrency", str(a.concurrency), "--num-prompts", str(a.num_prompts)]
        argv += ["--input-len", str(a.input_len), "--output-len", str(a.chunks), "--output-file", str(out)]
        fin = bl.run(argv, a.run_timeout, cpus=a.client_cpus)
        res = bl.parse_sglang(out, fin)
        res.client = "aiohttp"
    else:
        out = tmp / f"{idx:02d}-sglang.jsonl"
        argv = bl.sglang_argv(base_url, MODEL, work, out, tokenizer=a.tokenizer, seed=idx, backend="sglang-oai-chat")
        fin = bl.run(argv, a.run_timeout, cpus=a.client_cpus)
        res = bl.parse_sglang(out, fin)
    after = server_stats(base_url)
    served: dict[str, float] = {
        "requests": int(after["requests"] - before["requests"]),
        "chunks": int(after["chunks"] - before["chunks"]),
        "connections": int(after["connections"] - before["connections"]),
        # Server CPU over the client's whole process lifetime (startup included), as a share of one core.
        "cpu_share": (after["cpu_s"] - before["cpu_s"]) / max(after["monotonic"] - before["monotonic"], 1e-9),
        "cpu_s": after["cpu_s"] - before["cpu_s"],
    }
    if res.completed == 0:
        raise bl.BenchError(f"{client} run {idx}: no request completed; output:\n{bl.tail(fin.output)}")
    return res, served


def profile_sparkfleet(a: argparse.Namespace, base_url: str, tmp: Path) -> None:
    """Run sparkfleet's client in this process under cProfile (pinned like the measured runs)."""
    work = bl.Workload(a.concurrency, a.num_prompts, a.input_len, a.chunks, ignore_eos=True)
    out = tmp / "profile-sparkfleet.json"
    argv = bl.sparkfleet_argv(base_url, MODEL, work, out, seed=999)
    prof = tmp / "sparkfleet.prof"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), *argv]
    fin = bl.run(cmd, a.run_timeout, cpus=a.client_cpus)
    if not prof.exists():
        raise bl.BenchError(f"profiling run wrote no profile (rc={fin.rc}):\n{bl.tail(fin.output)}")
    res = bl.parse_sparkfleet(out, fin)
    print(
        f"\nprofile of sparkfleet's client under cProfile (slower than unprofiled: "
        f"{res.request_throughput:,.0f} req/s, {res.output_throughput:,.0f} chunks/s), top {a.profile_top} by own time:"
    )
    stats = pstats.Stats(str(prof), stream=sys.stdout)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(a.profile_top)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    bl.install_cleanup()
    names: tuple[str, ...] = ("sparkfleet", "sglang", "aiohttp") if a.with_aiohttp else ("sparkfleet", "sglang")
    try:
        bl.require_sglang_client(a.tokenizer)
        bl.require_sparkfleet_cli()
        split = None if a.no_pin else bl.split_cores()
        a.client_cpus = split[1] if split else None
        port = bl.free_port()
        base_url = f"http://{bl.LOOPBACK}:{port}"
        t0 = time.monotonic()
        start_server(port, a.chunks, min(split[0]) if split else None)
        pin = f"server on core {sorted(split[0])}, clients on {sorted(split[1])}" if split else "not pinned"
        print(f"server: bench/fast_sse_server.py on {base_url}, {a.chunks} chunks per response, {pin}")
        print(
            f"workload: concurrency {a.concurrency}, {a.num_prompts} requests per run, input {a.input_len} tokens, "
            f"{a.rounds} rounds, order A B B A ...; load average before: {os.getloadavg()[0]:.2f} "
            f"on {os.cpu_count()} cores"
        )
        print(
            f"{'run':>3}  {'client':<10} {'req/s':>8} {'chunks/s':>10} {'ok':>5} {'err':>4} {'dur s':>6} "
            f"{'wall s':>6}  server: {'req':>5} {'conns':>5} {'cpu%':>5}"
        )
        results: dict[str, list[bl.RunResult]] = {n: [] for n in names}
        saturated: list[int] = []
        idx = 0
        with tempfile.TemporaryDirectory(prefix="sfbench-cap-") as tmpdir:
            for rnd in range(a.rounds):
                for client in names if rnd % 2 == 0 else names[::-1]:
                    idx += 1
                    r, served = one_run(client, a, base_url, Path(tmpdir), idx)
                    results[client].append(r)
                    # The server's share of its core during the client's measured window is at least
                    # cpu_s / duration_s when all of its work fell inside that window.
                    busy = served["cpu_s"] / r.duration_s if r.duration_s > 0 else 0.0
                    if busy >= 0.9:
                        saturated.append(idx)
                    print(
                        f"{idx:>3}  {client:<10} {r.request_throughput:>8,.0f} {r.output_throughput:>10,.0f} "
                        f"{r.completed:>5} {r.errors:>4} {r.duration_s:>6.2f} {r.wall_s:>6.1f}  "
                        f"server: {served['requests']:>5} {served['connections']:>5} {busy:>5.0%}",
                        flush=True,
                    )
            if a.profile:
                profile_sparkfleet(a, base_url, Path(tmpdir))
        med = {
            n: (bl.median([r.request_throughput for r in rs]), bl.median([r.output_throughput for r in rs]))
            for n, rs in results.items()
        }
        for n in names:
            print(f"median {n:<10} {bl.fmt(med[n][0], 0)} req/s, {bl.fmt(med[n][1], 0)} chunks/s")
        if saturated:
            print(
                f"note: in runs {saturated} the server used >= 90% of its core while the client measured: "
                "there the server, not the client, may have been the limit"
            )
        print(f"elapsed {time.monotonic() - t0:.0f}s, load average after: {os.getloadavg()[0]:.2f}")
    except bl.BenchError as exc:
        print(f"client_capacity: not measured: {exc}", file=sys.stderr)
        return 2
    req = bl.ratio(med["sparkfleet"][0], med["sglang"][0])
    chunks = bl.ratio(med["sparkfleet"][1], med["sglang"][1])

    def show(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}x"

    if "aiohttp" in med:
        print(
            "client capacity aiohttp-minimal/sglang: requests/s "
            f"{show(bl.ratio(med['aiohttp'][0], med['sglang'][0]))}, "
            f"chunks/s {show(bl.ratio(med['aiohttp'][1], med['sglang'][1]))}; sparkfleet/aiohttp-minimal: requests/s "
            f"{show(bl.ratio(med['sparkfleet'][0], med['aiohttp'][0]))}"
        )

    print(f"client capacity sparkfleet/sglang: requests/s {show(req)}, chunks/s {show(chunks)} (goal >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
