"""The llm_benchmark module's body: parameters in, report out. Standard library only."""

from __future__ import annotations

from typing import Any

from .run import BenchConfig, redact, run_benchmark, write_report

_PASSTHROUGH = (
    "base_url",
    "model",
    "engine",
    "health_paths",
    "service",
    "host",
    "profile",
    "checks",
    "concurrency",
    "num_prompts",
    "input_len",
    "output_len",
    "ignore_eos",
    "request_rate",
    "multi_turn_conversations",
    "multi_turn_turns",
    "multi_turn_input_len",
    "multi_turn_output_len",
    "shared_prefix_len",
    "json_schema",
    "json_schema_max_tokens",
    "thresholds",
    "timeout_s",
    "ready_timeout_s",
    "api_key",
    "seed",
    "transient_retries",
    "ca_path",
    "client_cert",
    "client_key",
    "validate_certs",
    "use_proxy",
)


def config_from_params(params: dict[str, Any]) -> BenchConfig:
    """A BenchConfig from the module's (already type-checked) parameters."""
    return BenchConfig(**{name: params[name] for name in _PASSTHROUGH if params.get(name) is not None})


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
