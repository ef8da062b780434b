"""The llm_benchmark module's body: parameters in, report out. Standard library only."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from . import checks as bench_checks
from .run import BenchConfig, redact, run_benchmark, write_report


def check_names() -> list[str]:
    """The module's ``checks`` choices and default: every check of the registry, in run order."""
    return bench_checks.names()


def config_from_params(params: dict[str, Any]) -> BenchConfig:
    """A BenchConfig from the module's (already type-checked) parameters: every parameter that is a field of
    BenchConfig (the checks' Settings included) and is set; report_path and fail_on_threshold stay here."""
    names = {f.name for f in fields(BenchConfig)}
    return BenchConfig(**{name: value for name, value in params.items() if name in names and value is not None})


def run_module(module: Any) -> None:
    """Run the benchmark for an AnsibleModule and exit through it (fail_json or exit_json)."""
    params = module.params
    secret = params.get("api_key")
    try:
        report = run_benchmark(config_from_params(params))
    except ValueError as exc:
        module.fail_json(msg=f"llm_benchmark: bad parameters, nothing was sent: {redact(str(exc), secret)}")
        return
    except Exception as exc:  # the module never raises: an unexpected error is a failed task with its reason
        module.fail_json(
            msg=f"llm_benchmark: the benchmark stopped on an unexpected error: {type(exc).__name__}: "
            f"{redact(str(exc), secret)}"
        )
        return
    written = False
    if params.get("report_path") and not module.check_mode:
        try:
            write_report(report, params["report_path"])
        except OSError as exc:
            module.fail_json(
                msg=f"llm_benchmark: cannot write report_path {params['report_path']}: {exc}", report=report
            )
            return
        written = True
    if params.get("fail_on_threshold", True) and not report["ok"]:
        module.fail_json(
            msg=f"benchmark of {report['model']} at {report['base_url']} failed: " + "; ".join(report["failures"]),
            report=report,
            report_written=written,
            changed=False,
        )
        return
    module.exit_json(changed=False, report=report, report_written=written)
