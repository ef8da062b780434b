#!/usr/bin/env python3
"""The smallest fair benchmark client on a well-kept HTTP library: aiohttp, for client_capacity.py.

Runs in ``.cache/bench-venv`` (aiohttp is there for SGLang's client). It does what sparkfleet's
load loop does and nothing more: ``--concurrency`` closed-loop users POST streaming chat requests,
read the SSE lines, ``json.loads`` each event, stamp each content chunk, take ``usage`` from the
stream. No connection cap (``limit=0``) and a 1 MiB read buffer, so the library, not a setting, is
measured. It prints one JSON line: ``completed``, ``errors``, ``duration``, ``request_throughput``,
``output_throughput``, ``median_tpot_ms``. This answers the question "what if the module ran in the
bench venv on aiohttp": its ceiling on the same server and core, next to sparkfleet's and SGLang's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import sys
import time
from typing import Any


async def run(a: argparse.Namespace) -> dict[str, Any]:
    aiohttp = importlib.import_module("aiohttp")  # only in the bench venv (untyped here on purpose)

    url = a.base_url.rstrip("/") + "/v1/chat/completions"
    payload = {
        "model": a.model,
        "messages": [{"role": "user", "content": "word " * a.input_len}],
        "max_tokens": a.output_len,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    order = iter(range(a.num_prompts))
    done: list[tuple[float, float, int]] = []  # (latency, ttft, output tokens)
    errors = [0]
    perf = time.perf_counter
    loads = json.loads
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=a.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, read_bufsize=1 << 20) as session:

        async def one() -> None:
            start = perf()
            first = 0.0
            out = 0
            chunks = 0
            finished = False
            async with session.post(url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                async for line in resp.content:
                    if not line.startswith(b"data: "):
                        continue
                    data = line[6:].rstrip(b"\r\n")
                    if data == b"[DONE]":
                        finished = True
                        continue
                    obj = loads(data)
                    choices = obj.get("choices")
                    if choices:
                        delta = choices[0].get("delta") or {}
                        if delta.get("content"):
                            chunks += 1
                            if not first:
                                first = perf()
                    usage = obj.get("usage")
                    if usage:
                        out = int(usage.get("completion_tokens") or 0)
            if not finished:
                raise RuntimeError("stream ended without [DONE]")
            done.append((perf() - start, first - start, out or chunks))

        async def user() -> None:
            for _ in order:
                try:
                    await one()
                except Exception:  # counted, as the other clients count failed requests
                    errors[0] += 1

        t0 = perf()
        await asyncio.gather(*(user() for _ in range(min(a.concurrency, a.num_prompts))))
        duration = perf() - t0
    tpot = [(lat - ttft) / (n - 1) * 1000 for lat, ttft, n in done if n > 1]
    return {
        "client": "aiohttp-minimal",
        "aiohttp": aiohttp.__version__,
        "completed": len(done),
        "errors": errors[0],
        "num_prompts": a.num_prompts,
        "duration": duration,
        "request_throughput": len(done) / duration,
        "output_throughput": sum(n for _, _, n in done) / duration,
        "median_tpot_ms": statistics.median(tpot) if tpot else None,
        "total_input_tokens": 0,
        "total_output_tokens": sum(n for _, _, n in done),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--num-prompts", type=int, default=3000)
    ap.add_argument("--input-len", type=int, default=32)
    ap.add_argument("--output-len", type=int, default=64)
    ap.add_argument("--timeout-s", type=float, default=120.0)
    ap.add_argument("--output-file", required=True, help="append the JSON result line here")
    a = ap.parse_args(argv)
    result = asyncio.run(run(a))
    with open(a.output_file, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    return 0 if result["completed"] else 1


if __name__ == "__main__":
    sys.exit(main())
