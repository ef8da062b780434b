"""Benchmark verification of an OpenAI-compatible LLM server: the ``sparkfleet.benchmark/v1`` report.

Used by the ``llm_benchmark`` module and by ``bin/sparkfleet-bench`` (``main``). Standard library
only; see docs/benchmark.md for what each check measures and how.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..contracts import BENCHMARK_SCHEMA
from ..files import write_atomic
from ..netenv import check_header_value, proxy_for, redact_url, ssl_context
from ..service.model import ENGINES
from . import checks as bench_checks
from . import schema as bench_schema
from . import thresholds as bench_thresholds
from .checks import Context, Settings, entry
from .checks.base import fmt
from .http_client import HTTPClient

SCHEMA = BENCHMARK_SCHEMA


@dataclass
class BenchConfig(Settings):
    """Every parameter of a run (module and CLI share it)."""

    base_url: str = ""
    service: str = ""
    host: str = ""
    profile: str | None = None
    # Every check of the registry (bench/checks), in run order.
    checks: list[str] = field(default_factory=bench_checks.names)
    thresholds: dict[str, Any] | None = None
    api_key: str | None = None
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    validate_certs: bool = True
    use_proxy: bool = True


REDACTED = "********"


def _section(check: bench_checks.Check) -> str:
    """Report sections in the order of their names (load, multi_turn), whatever the checks' run order."""
    return check.section


def _headers(cfg: BenchConfig) -> dict[str, str] | None:
    return {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else None


def _tls(cfg: BenchConfig) -> ssl.SSLContext | None:
    """The TLS context for an https:// base_url (ValueError naming a file that does not load)."""
    if not cfg.base_url.startswith("https://"):
        return None
    return ssl_context(
        ca_file=cfg.ca_path, cert_file=cfg.client_cert, key_file=cfg.client_key, insecure=not cfg.validate_certs
    )


def _proxy(cfg: BenchConfig, environ: Mapping[str, str] | None = None) -> str | None:
    return proxy_for(cfg.base_url, os.environ if environ is None else environ) if cfg.use_proxy else None


def redact(value: Any, secret: str | None) -> Any:
    """value with every occurrence of secret (the API key) replaced, in every string at any depth."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, REDACTED) if secret in value else value
    if isinstance(value, dict):
        return {k: redact(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secret) for v in value]
    return value


def validate_config(cfg: BenchConfig) -> list[str]:
    """Problems with the parameters, each naming the parameter and the fix; empty when valid."""
    problems: list[str] = []
    if not cfg.base_url.startswith(("http://", "https://")):
        problems.append(f"base_url must be http://HOST:PORT (optionally https), got {cfg.base_url!r}")
    if not cfg.model:
        problems.append("model must name the served model (what /v1/models lists), got an empty string")
    if cfg.engine not in ENGINES:
        problems.append(f"engine must be one of the service model's engines {', '.join(ENGINES)}, got {cfg.engine!r}")
    problems += _check_selection(cfg) + _check_sizes(cfg) + _check_network(cfg)
    if not problems and cfg.base_url.startswith(("http://", "https://")):
        try:
            HTTPClient(cfg.base_url, _headers(cfg), tls=_tls(cfg), proxy=_proxy(cfg))
        except ValueError as exc:
            problems.append(str(exc))
    problems.extend(bench_thresholds.validate(cfg.thresholds, list(cfg.concurrency or [])))
    return problems


def _check_selection(cfg: BenchConfig) -> list[str]:
    """The checks chosen and the load sweep."""
    problems: list[str] = []
    known = bench_checks.names()
    unknown = [c for c in cfg.checks if c not in known]
    if unknown:
        problems.append(f"checks has unknown entries {unknown}: choose from {', '.join(known)}")
    if not cfg.checks:
        problems.append(f"checks is empty: choose one or more of {', '.join(known)}")
    if bench_checks.load.NAME in cfg.checks:
        if not cfg.concurrency or any(not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in cfg.concurrency):
            problems.append(
                f"concurrency must be a list of positive integers such as [1, 8, 32, 64], got {cfg.concurrency!r}"
            )
        if cfg.request_rate is not None and cfg.request_rate <= 0:
            problems.append(f"request_rate must be a positive number of requests/s or null, got {cfg.request_rate!r}")
    return problems


def _check_sizes(cfg: BenchConfig) -> list[str]:
    """Lengths, counts and timeouts."""
    problems: list[str] = []
    for name in (
        "input_len",
        "output_len",
        "multi_turn_conversations",
        "multi_turn_turns",
        "multi_turn_input_len",
        "multi_turn_output_len",
        "shared_prefix_len",
        "json_schema_max_tokens",
    ):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            problems.append(f"{name} must be a positive integer, got {value!r}")
    if cfg.num_prompts is not None and cfg.num_prompts < 1:
        problems.append(
            f"num_prompts must be a positive integer or null (max(4 x concurrency, 16)), got {cfg.num_prompts!r}"
        )
    if cfg.timeout_s <= 0:
        problems.append(f"timeout_s must be a positive number of seconds, got {cfg.timeout_s!r}")
    if cfg.ready_timeout_s < 0:
        problems.append(f"ready_timeout_s must be zero or more seconds, got {cfg.ready_timeout_s!r}")
    if cfg.json_schema is not None and not isinstance(cfg.json_schema, dict):
        problems.append("json_schema must be a JSON-schema dict (bound strings with maxLength, arrays with maxItems)")
    if not isinstance(cfg.transient_retries, int) or cfg.transient_retries < 0:
        problems.append(f"transient_retries must be zero or a positive integer, got {cfg.transient_retries!r}")
    return problems


def _check_network(cfg: BenchConfig) -> list[str]:
    """The API key and the TLS files."""
    problems: list[str] = []
    if cfg.api_key is not None:
        try:
            check_header_value("Authorization", cfg.api_key)
        except ValueError as exc:
            # Never echo the key itself.
            problems.append(f"api_key cannot be sent: {exc}")
    for name in ("ca_path", "client_cert", "client_key"):
        path = getattr(cfg, name)
        if path and not os.path.isfile(path):
            problems.append(f"{name} {path} is not a readable file")
    if cfg.client_key and not cfg.client_cert:
        problems.append("client_key needs client_cert (the certificate the key belongs to)")
    return problems


async def arun(cfg: BenchConfig) -> dict[str, Any]:
    """Run the selected checks and return the report (never raises for a server's misbehaviour)."""
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    headers = _headers(cfg)
    tls = _tls(cfg)
    proxy = _proxy(cfg)
    https = cfg.base_url.startswith("https://")
    warnings: list[str] = []
    selected = [c for c in bench_checks.CHECKS if c.name in cfg.checks]
    if https and not cfg.validate_certs:
        warnings.append(
            "TLS certificate verification was OFF (validate_certs: false / --insecure): "
            "the server's identity was not checked"
        )
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "host": cfg.host or socket.gethostname(),
        "service": cfg.service,
        "engine": cfg.engine,
        "base_url": cfg.base_url,
        "model": cfg.model,
        "profile": cfg.profile,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": 0.0,
        "ok": False,
        "validator": bench_schema.VALIDATOR,
        "settings": {
            "checks": [c.name for c in selected],
            "concurrency": list(cfg.concurrency),
            "num_prompts": cfg.num_prompts,
            "input_len": cfg.input_len,
            "output_len": cfg.output_len,
            "ignore_eos": cfg.ignore_eos,
            "request_rate": cfg.request_rate,
            "timeout_s": cfg.timeout_s,
            "transient_retries": cfg.transient_retries,
        },
        "network": {
            "proxy": redact_url(proxy),
            "tls": (
                {
                    "verify": cfg.validate_certs,
                    "insecure": not cfg.validate_certs,
                    "ca_path": cfg.ca_path,
                    "client_cert": cfg.client_cert,
                }
                if https
                else None
            ),
            "api_key": bool(cfg.api_key),
        },
        "warnings": warnings,
        "checks": [],
        # Each check's own section of the report (load, multi_turn), empty until it runs.
        **{c.section: copy.deepcopy(c.section_empty) for c in sorted(bench_checks.CHECKS, key=_section) if c.section},
        "thresholds": [],
        "failures": [],
    }
    async with HTTPClient(cfg.base_url, headers, tls=tls, proxy=proxy) as client:
        ctx = Context(client, cfg, cfg.thresholds)
        stop = ""
        for check in selected:
            name = check.name
            if stop:
                report["checks"].append(entry(name, "skip", f"skipped: {stop}"))
                continue
            try:
                outcome = await check.run(ctx)
            except Exception as exc:  # the report must survive any bug or surprise: it becomes a failed check
                report["checks"].append(
                    entry(name, "fail", f"the {name} check stopped on an unexpected error: {type(exc).__name__}: {exc}")
                )
                continue
            report["checks"].extend(outcome.entries)
            if check.section:
                report[check.section] = outcome.section
            stop = outcome.stop
    for check in report["checks"]:
        retried = check["details"].get("transient_errors")
        if retried and check["status"] == "pass":
            warnings.append(f"{check['name']}: passed after {len(retried)} transient server error(s): {retried[0]}")
    try:
        report["thresholds"] = bench_thresholds.evaluate(cfg.thresholds, report, [c.name for c in selected])
    except Exception as exc:  # same promise for the threshold evaluation
        report["thresholds"] = [
            {
                "name": "thresholds",
                "limit": 0,
                "measured": None,
                "status": "fail",
                "message": f"threshold evaluation stopped on an unexpected error: {type(exc).__name__}: {exc}",
            }
        ]
    report["failures"] = [f"{c['name']}: {c['message']}" for c in report["checks"] if c["status"] == "fail"] + [
        f"threshold {t['name']}: {t['message']}" for t in report["thresholds"] if t["status"] == "fail"
    ]
    report["ok"] = not report["failures"]
    report["duration_s"] = round(time.monotonic() - t0, 3)
    redacted: dict[str, Any] = redact(report, cfg.api_key)
    return redacted


def run_benchmark(cfg: BenchConfig) -> dict[str, Any]:
    """Validate, then run; raises ValueError listing every parameter problem before any request."""
    problems = validate_config(cfg)
    if problems:
        raise ValueError("; ".join(problems))
    return asyncio.run(arun(cfg))


def write_report(report: dict[str, Any], path: str) -> None:
    """Write the report as JSON atomically (0644: it holds no secret), in a directory made 0750 when missing (the
    roles leave making it to this: one task less per host and run)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o750, exist_ok=True)
    write_atomic(path, json.dumps(report, indent=2, sort_keys=False) + "\n")


def format_summary(report: dict[str, Any]) -> str:
    """A readable summary: checks, each check's own section (the load table, multi-turn turns), thresholds, the
    verdict."""
    lines = [
        f"sparkfleet-bench  {report['model']} at {report['base_url']} ({report['engine']}), "
        f"host {report['host']}, {report['duration_s']:.1f}s, validator {report['validator']}",
    ]
    proxy = (report.get("network") or {}).get("proxy")
    if proxy:
        lines.append(f"through proxy {proxy}")
    lines += [f"WARNING: {w}" for w in report.get("warnings") or []]
    lines += ["", f"{'check':<14}{'status':<14}message"]
    for check in report["checks"]:
        lines.append(f"{check['name']:<14}{check['status']:<14}{check['message']}")
    for registered in sorted(bench_checks.CHECKS, key=_section):
        if registered.summary is not None and report.get(registered.section):
            lines += ["", *registered.summary(report[registered.section])]
    if report["thresholds"]:
        lines += ["", f"{'threshold':<28}{'limit':>10} {'measured':>10}  status"]
        for thr in report["thresholds"]:
            lines.append(f"{thr['name']:<28}{thr['limit']:>10g} {fmt(thr['measured'], 3):>10}  {thr['status']}")
    lines += ["", "OK" if report["ok"] else f"FAILED: {len(report['failures'])} failure(s)"]
    lines += [f"  - {failure}" for failure in report["failures"]]
    return "\n".join(lines)


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,8,32,64, got {text!r}") from exc


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparkfleet-bench",
        description="Verify and benchmark an OpenAI-compatible LLM server; exit 0 when every check passes.",
    )
    parser.add_argument("--base-url", required=True, help="server URL, e.g. http://127.0.0.1:30000")
    parser.add_argument("--model", required=True, help="the served model name (what /v1/models lists)")
    parser.add_argument(
        "--engine", default="openai", choices=list(ENGINES), help="the service's engine: picks the health endpoints"
    )
    parser.add_argument(
        "--health-path",
        action="append",
        default=[],
        dest="health_paths",
        help="a health endpoint readiness waits for, in order (repeat; default: the engine's)",
    )
    parser.add_argument("--service", default="", help="service label for the report")
    parser.add_argument("--host", default="", help="host label for the report (default: this host's name)")
    parser.add_argument("--profile", default=None, help="platform profile label for the report")
    checks = bench_checks.names()
    parser.add_argument("--checks", type=_csv, default=checks, help=f"comma list of {','.join(checks)}")
    parser.add_argument("--concurrency", type=_csv_ints, default=[1, 8, 32, 64], help="comma list of levels")
    parser.add_argument("--num-prompts", type=int, default=None, help="requests per level (default max(4c,16))")
    parser.add_argument("--input-len", type=int, default=256, help="approximate prompt tokens per request")
    parser.add_argument("--output-len", type=int, default=128, help="max_tokens per request")
    parser.add_argument("--ignore-eos", action="store_true", help="send ignore_eos for fixed output lengths")
    parser.add_argument("--request-rate", type=float, default=None, help="Poisson arrivals per second (open loop)")
    parser.add_argument("--multi-turn-conversations", type=int, default=20)
    parser.add_argument("--multi-turn-turns", type=int, default=5)
    parser.add_argument("--multi-turn-input-len", type=int, default=64)
    parser.add_argument("--multi-turn-output-len", type=int, default=32)
    parser.add_argument("--shared-prefix-len", type=int, default=256)
    parser.add_argument("--json-schema", default=None, help="JSON schema file for the json_schema check")
    parser.add_argument("--thresholds", default=None, help='JSON dict, e.g. \'{"min_output_tps": {"32": 100}}\'')
    parser.add_argument("--timeout-s", type=float, default=120.0, help="per-request timeout")
    parser.add_argument("--ready-timeout-s", type=float, default=300.0, help="readiness wait budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--transient-retries", type=int, default=3, help="retries of chat/json_schema on HTTP 429/5xx (default 3)"
    )
    parser.add_argument("--ca-path", default=None, help="PEM file of the CA(s) that sign the server's certificate")
    parser.add_argument(
        "--client-cert", default=None, help="PEM client certificate (with its key, or see --client-key)"
    )
    parser.add_argument("--client-key", default=None, help="PEM private key of --client-cert")
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate (the report says so)"
    )
    parser.add_argument(
        "--no-proxy", action="store_true", help="ignore http_proxy/https_proxy/all_proxy (connect directly)"
    )
    parser.add_argument("--json-out", default=None, help="write the JSON report here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        schema = None
        if args.json_schema:
            with open(args.json_schema, encoding="utf-8") as handle:
                schema = json.load(handle)
        thresholds = json.loads(args.thresholds) if args.thresholds else None
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"sparkfleet-bench: cannot read --json-schema/--thresholds: {exc}\n")
        return 2
    cfg = BenchConfig(
        base_url=args.base_url,
        model=args.model,
        engine=args.engine,
        health_paths=args.health_paths,
        service=args.service,
        host=args.host,
        profile=args.profile,
        checks=args.checks,
        concurrency=args.concurrency,
        num_prompts=args.num_prompts,
        input_len=args.input_len,
        output_len=args.output_len,
        ignore_eos=args.ignore_eos,
        request_rate=args.request_rate,
        multi_turn_conversations=args.multi_turn_conversations,
        multi_turn_turns=args.multi_turn_turns,
        multi_turn_input_len=args.multi_turn_input_len,
        multi_turn_output_len=args.multi_turn_output_len,
        shared_prefix_len=args.shared_prefix_len,
        json_schema=schema,
        thresholds=thresholds,
        timeout_s=args.timeout_s,
        ready_timeout_s=args.ready_timeout_s,
        seed=args.seed,
        transient_retries=args.transient_retries,
        api_key=os.environ.get("SPARKFLEET_BENCH_API_KEY") or None,
        ca_path=args.ca_path,
        client_cert=args.client_cert,
        client_key=args.client_key,
        validate_certs=not args.insecure,
        use_proxy=not args.no_proxy,
    )
    try:
        report = run_benchmark(cfg)
    except ValueError as exc:
        sys.stderr.write(f"sparkfleet-bench: {redact(str(exc), cfg.api_key)}\n")
        return 2
    if args.json_out:
        write_report(report, args.json_out)
    sys.stdout.write(format_summary(report) + "\n")
    return 0 if report["ok"] else 1
