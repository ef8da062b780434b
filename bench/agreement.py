#!/usr/bin/env python3
"""Do sparkfleet's benchmark client and SGLang's report the same numbers for the same server and load?

Starts the real stand-in server (``sparkfleet-lab/llm-standin:llama.cpp``: llama.cpp's ``llama-server``,
continuous batching over 8 slots, a tiny random model) on 127.0.0.1, checks that the tokenizer SGLang's
client uses is the server's own (id for id, through ``/tokenize``), then runs the two clients on one
workload (concurrency, number of prompts, input and output length, ``ignore_eos``), interleaved
A B B A A B ... so slow drift on the shared machine hits both alike. Each client measures and reports
itself: sparkfleet's ``load[0]`` (``output_throughput``, ``tpot_ms.p50``) and SGLang's JSON line
(``output_throughput``, ``median_tpot_ms``). The script prints every run, the medians, and as its LAST
line the ratios sparkfleet / SGLang of output throughput and of median TPOT, each with whether it is
within the tolerance (default 5%).

``--aa`` runs SGLang's client on both sides instead: the ratio then shows the noise of the method itself.

Needs: the lab images (``make images``), ``bench/setup_sglang_client.sh`` (the peer's venv and the
tokenizer), and ``bin/sparkfleet-bench``. Exit status: 0 when measured (whatever the ratios), 1 with
``--strict`` when a ratio is outside the tolerance, 2 when nothing could be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Run as a script (bench/agreement.py): make the repository root importable for `bench.benchlib`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import benchlib as bl


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="runs of each client (default 5)")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent requests (default 8 = the stand-in's slots)")
    ap.add_argument("--num-prompts", type=int, default=64, help="requests per run (default 64)")
    ap.add_argument("--input-len", type=int, default=128, help="prompt tokens per request (default 128)")
    ap.add_argument("--output-len", type=int, default=128, help="output tokens per request (default 128)")
    ap.add_argument(
        "--sglang-dataset",
        default="custom",
        choices=["custom", "random-ids"],
        help="SGLang's prompts: custom = random words sized with the server's /tokenize like sparkfleet's "
        "(default); random-ids = SGLang's decoded random ids (the server sees 1.5-2.6x the tokens)",
    )
    ap.add_argument("--tolerance", type=float, default=0.05, help="agreement band, as a fraction (default 0.05)")
    ap.add_argument("--backend", default="sglang-oai-chat", choices=["sglang-oai-chat", "vllm-chat"])
    ap.add_argument("--image", default=bl.STANDIN_IMAGE, help=f"stand-in image (default {bl.STANDIN_IMAGE})")
    ap.add_argument("--model", default="sparkfleet/tiny-llama", help="served model name (the image's --alias)")
    ap.add_argument("--tokenizer", type=Path, default=bl.BENCH_TOKENIZER, help="HF tokenizer dir for SGLang's client")
    ap.add_argument("--run-timeout", type=float, default=120.0, help="seconds one client run may take (default 120)")
    ap.add_argument("--aa", action="store_true", help="A/A check: SGLang's client on both sides (noise of the method)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a ratio is outside the tolerance")
    ap.add_argument(
        "--no-pin",
        action="store_true",
        help="do not hold the server to the first core and the clients to the others",
    )
    ap.add_argument("--keep", type=Path, help="keep each run's raw JSON in this directory")
    a = ap.parse_args(argv)
    for name in ("rounds", "concurrency", "num_prompts", "input_len", "output_len"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.output_len < 2:
        ap.error("--output-len must be at least 2 (TPOT needs two tokens)")
    if not 0 < a.tolerance < 1:
        ap.error("--tolerance is a fraction between 0 and 1, e.g. 0.05")
    return a


def check_tokenizer(base_url: str, tokenizer: Path, image: str) -> None:
    """Re-export the tokenizer from the image and compare it with the running server's /tokenize."""
    fin = bl.run(
        [
            str(bl.BENCH_VENV_PYTHON),
            str(bl.ROOT / "bench" / "export_tokenizer.py"),
            *("--image", image, str(tokenizer), "--check-url", base_url),
        ],
        timeout_s=120,
    )
    if fin.rc != 0:
        raise bl.BenchError(f"tokenizer check failed:\n{bl.tail(fin.output)}")
    print(f"tokenizer: {json.loads(fin.output.strip().splitlines()[-1])}")


_WORD_TEXT = (
    "time year people way day man thing woman life child world school state family student group country "
    "problem hand part place case week company system program question work number night point home water "
    "room mother area money story fact month lot right study book eye job word business issue side kind head "
    "house service friend father power hour game line end member law car city community name team minute idea"
)
WORDS = _WORD_TEXT.split()


def _post(base_url: str, path: str, payload: dict[str, object]) -> dict[str, object]:
    import urllib.request

    req = urllib.request.Request(  # noqa: S310 - base_url is http://127.0.0.1:<port>, built here
        f"{base_url}{path}", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - same loopback URL
        result: dict[str, object] = json.load(resp)
        return result


def _count(base_url: str, text: str) -> int:
    tokens = _post(base_url, "/tokenize", {"content": text, "add_special": False})["tokens"]
    assert isinstance(tokens, list)
    return len(tokens)


def sglang_prompt_file(base_url: str, model: str, w: bl.Workload, seed: int, path: Path) -> float:
    """Prompts for SGLang's `custom` dataset: random words whose chat prompt the SERVER counts as about
    w.input_len tokens (template included), like sparkfleet's. Returns their mean server-side length.

    SGLang's `random-ids` prompts are decoded random token ids; re-tokenized by the server they come out
    1.5x to 2.6x longer than asked (128 ids became 198-330 prompt tokens here), so the two clients would
    not be sending the same load.
    """
    import random

    usage = _post(
        base_url,
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": "word"}], "max_tokens": 1},
    )["usage"]
    assert isinstance(usage, dict)
    overhead = int(usage["prompt_tokens"]) - _count(base_url, "word")
    target = max(1, w.input_len - overhead)
    rng = random.Random(seed)
    lengths = []
    with path.open("w") as f:
        for i in range(w.num_prompts):
            words = [f"[{seed}-{i}]"] + [rng.choice(WORDS) for _ in range(target)]
            n = _count(base_url, " ".join(words))
            for _ in range(8):  # scale the word count by the measured tokens per word; bounded
                if n == target:
                    break
                want = max(2, round(len(words) * target / n)) if n > 0 else len(words) + 1
                if want == len(words):
                    want += 1 if n < target else -1
                if want < len(words):
                    del words[max(2, want) :]
                else:
                    words += [rng.choice(WORDS) for _ in range(want - len(words))]
                n = _count(base_url, " ".join(words))
            lengths.append(n + overhead)
            conv = [{"from": "human", "value": " ".join(words)}, {"from": "gpt", "value": "ok"}]
            f.write(json.dumps({"conversations": conv}) + "\n")
    return sum(lengths) / len(lengths)


def warm_up(base_url: str, model: str) -> None:
    """A few requests so the first measured run does not pay for a cold server."""
    import urllib.request

    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "warm up " * 32}], "max_tokens": 32}
    ).encode()
    for _ in range(4):
        req = urllib.request.Request(  # noqa: S310 - base_url is http://127.0.0.1:<port>, built here
            f"{base_url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - same loopback URL
            resp.read()


def one_run(
    client: str, a: argparse.Namespace, base_url: str, work: bl.Workload, *, tmp: Path, idx: int, seed_flag: bool
) -> bl.RunResult:
    seed = 1000 + idx  # a new prompt set every run, for both clients, so no run rides the last one's prefix cache
    if client == "sparkfleet":
        out = tmp / f"{idx:02d}-sparkfleet.json"
        argv = bl.sparkfleet_argv(base_url, a.model, work, out, seed if seed_flag else None)
        fin = bl.run(argv, a.run_timeout, cpus=a.client_cpus)
        res = bl.parse_sparkfleet(out, fin)
    else:
        out = tmp / f"{idx:02d}-{client}.jsonl"
        prompts = None
        if a.sglang_dataset == "custom":
            prompts = tmp / f"{idx:02d}-{client}-prompts.jsonl"
            server_len = sglang_prompt_file(base_url, a.model, work, seed, prompts)
        argv = bl.sglang_argv(
            base_url, a.model, work, out, tokenizer=a.tokenizer, seed=seed, backend=a.backend, dataset_path=prompts
        )
        fin = bl.run(argv, a.run_timeout, cpus=a.client_cpus)
        res = bl.parse_sglang(out, fin)
        res.client = client
        if prompts is not None:  # what the server counts, template included (SGLang counts the text alone)
            res.extra["mean_input_tokens"] = round(server_len, 2)
    if res.completed == 0:
        raise bl.BenchError(f"{client} run {idx}: no request completed; output:\n{bl.tail(fin.output)}")
    if a.keep:
        a.keep.mkdir(parents=True, exist_ok=True)
        (a.keep / out.name).write_text(out.read_text())
    return res


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    bl.install_cleanup()
    names = ("sglang-a", "sglang-b") if a.aa else ("sparkfleet", "sglang")
    try:
        bl.require_sglang_client(a.tokenizer)
        seed_flag = False
        if not a.aa:
            bl.require_sparkfleet_cli()
            seed_flag = "--seed" in bl.sparkfleet_help()
        port = bl.free_port()
        container = f"sfbench-agree-{os.getpid()}"
        base_url = f"http://{bl.LOOPBACK}:{port}"
        t0 = time.monotonic()
        load0 = os.getloadavg()[0]
        split = None if a.no_pin else bl.split_cores()
        a.client_cpus = split[1] if split else None
        bl.start_standin(a.image, container, port, cpus=split[0] if split else None)
        waited = bl.wait_http_ok(f"{base_url}/health", 60, alive=lambda: bl.container_dead(container))
        pin = f"server on cores {sorted(split[0])}, clients on {sorted(split[1])}" if split else "not pinned"
        print(f"server: {a.image} as {container} on {base_url} (ready in {waited:.1f}s), {pin}")
        check_tokenizer(base_url, a.tokenizer, a.image)
        warm_up(base_url, a.model)
        work = bl.Workload(a.concurrency, a.num_prompts, a.input_len, a.output_len, ignore_eos=True)
        print(
            f"workload: concurrency {work.concurrency}, {work.num_prompts} prompts, input {work.input_len}, "
            f"output {work.output_len} tokens, ignore_eos; {a.rounds} rounds, order A B B A ...; "
            f"seed per run: {'both' if seed_flag or a.aa else 'SGLang only (sparkfleet-bench has no --seed)'}; "
            f"SGLang prompts: {a.sglang_dataset}"
        )
        print(
            f"{'run':>3}  {'client':<10} {'out tok/s':>10} {'req/s':>8} {'TPOT p50 ms':>11} {'ok':>4} {'err':>3}"
            f" {'in tok':>7} {'out tok':>7} {'wall s':>6}"
        )
        results: dict[str, list[bl.RunResult]] = {n: [] for n in names}
        idx = 0
        with tempfile.TemporaryDirectory(prefix="sfbench-agree-") as tmpdir:
            for rnd in range(a.rounds):
                order = names if rnd % 2 == 0 else names[::-1]
                for client in order:
                    idx += 1
                    kind = "sglang" if client.startswith("sglang-") else client
                    r = one_run(kind, a, base_url, work, tmp=Path(tmpdir), idx=idx, seed_flag=seed_flag)
                    r.client = client
                    results[client].append(r)
                    print(
                        f"{idx:>3}  {client:<10} {r.output_throughput:>10.1f} {r.request_throughput:>8.2f} "
                        f"{bl.fmt(r.median_tpot_ms, 3):>11} {r.completed:>4} {r.errors:>3} "
                        f"{bl.fmt(r.extra.get('mean_input_tokens')):>7} {bl.fmt(r.extra.get('mean_output_tokens')):>7} "
                        f"{r.wall_s:>6.1f}",
                        flush=True,
                    )
        med = {
            n: (
                bl.median([r.output_throughput for r in rs]),
                bl.median([r.median_tpot_ms for r in rs]),
            )
            for n, rs in results.items()
        }
        for n in names:
            print(f"median {n:<10} output {bl.fmt(med[n][0])} tok/s, TPOT p50 {bl.fmt(med[n][1], 3)} ms")
        # Each round's two runs ran back to back: their ratio cancels drift slower than a round.
        a_runs, b_runs = results[names[0]], results[names[1]]
        pairs = list(zip(a_runs, b_runs, strict=True))
        paired_thr = bl.median([bl.ratio(x.output_throughput, y.output_throughput) for x, y in pairs])
        paired_tpot = bl.median([bl.ratio(x.median_tpot_ms, y.median_tpot_ms) for x, y in pairs])
        print(
            f"median of per-round ratios {names[0]}/{names[1]}: output throughput {bl.fmt(paired_thr, 3)}, "
            f"TPOT {bl.fmt(paired_tpot, 3)}"
        )
        errors = sum(r.errors for rs in results.values() for r in rs)
        a_name, b_name = names
        thr = bl.ratio(med[a_name][0], med[b_name][0])
        tpot = bl.ratio(med[a_name][1], med[b_name][1])
        print(
            f"elapsed {time.monotonic() - t0:.0f}s, failed requests {errors}, "
            f"load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} cores"
        )
    except bl.BenchError as exc:
        print(f"agreement: not measured: {exc}", file=sys.stderr)
        return 2

    def verdict(x: float | None) -> str:
        if x is None:
            return "n/a"
        return f"{x:.3f} ({'within' if abs(x - 1) <= a.tolerance else 'OUTSIDE'} {a.tolerance:.0%})"

    print(f"agreement {a_name}/{b_name}: output throughput ratio {verdict(thr)}, median TPOT ratio {verdict(tpot)}")
    inside = all(x is not None and abs(x - 1) <= a.tolerance for x in (thr, tpot))
    return 1 if a.strict and not inside else 0


if __name__ == "__main__":
    sys.exit(main())
