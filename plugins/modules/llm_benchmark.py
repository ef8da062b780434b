#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module llm_benchmark: verify and benchmark an OpenAI-compatible LLM server."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: llm_benchmark
short_description: Verify and benchmark an OpenAI-compatible LLM server (SGLang, NIM, vLLM, any OpenAI server)
description:
  - Runs selected checks against a serving endpoint and returns one C(sparkfleet.benchmark/v1) report.
  # BEGIN generated: checks (python3 -m lab.gen_bench_docs)
  - C(readiness) waits for the service's health endpoints (O(health_paths), else its engine's in the service model's
    engine table), then checks that C(/v1/models) lists O(model); when the server never becomes healthy the checks
    after it are C(skip).
  - C(chat) sends a non-streaming and a streaming chat completion (the stream must end, content chunks must arrive,
    usage must be present).
  - C(json_schema) asks for a C(response_format) of type C(json_schema) and validates the reply (with C(jsonschema)
    when importable, else a built-in validator; the report's C(validator) says which).
  - C(multi_turn) runs O(multi_turn_conversations) conversations of O(multi_turn_turns) turns in parallel, then a
    shared-prefix run that compares the expected and the achieved prefix-cache hit rate (entry C(prefix_cache)).
  - C(load) sweeps O(concurrency) levels with streaming requests and reports TTFT, ITL, TPOT, end-to-end latency,
    throughput and per-user output rate. Token counts come from the server's C(usage).
  # END generated: checks
  - Each threshold in O(thresholds) becomes its own pass/fail entry. A failing server never makes the
    module error out by itself; with O(fail_on_threshold) the task fails when the report is not C(ok).
  - Standard library only on the target (its own asyncio HTTP/1.1 client), so it runs with the system Python.
  - C(https://) servers are verified against the system's CAs or O(ca_path), optionally with a client
    certificate; proxies follow the usual environment variables (O(use_proxy)).
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  base_url:
    description: Server URL as seen from the host that runs the module, for example C(http://127.0.0.1:30000).
    type: str
    required: true
  model:
    description: The served model name, what C(/v1/models) lists and what requests carry.
    type: str
    required: true
  engine:
    description:
      - The service's engine, any engine of C(llm_serving_services) (sparkfleet's one engine table,
        C(plugins/module_utils/sparkfleet/service/model.py)); another name is refused before any request.
      - Without O(health_paths) readiness waits for the engine's health endpoints from that table (C(/health) when
        the engine has none but C(/v1/models), which decides when C(/health) answers 404).
    type: str
    default: openai
  health_paths:
    description: The service's health endpoints in order (the plan's C(health_paths)); readiness waits for the first
      that answers, C(/v1/models) is checked after. Empty - the engine's.
    type: list
    elements: str
    default: []
  service:
    description: Service name for the report (the C(llm_serving_services) entry).
    type: str
    default: ""
  host:
    description: Host label for the report; empty means the target's host name.
    type: str
    default: ""
  profile:
    description: Platform profile label for the report (C(dgx_spark), C(dgx_station), ...).
    type: str
  checks:
    # BEGIN generated: checks option (python3 -m lab.gen_bench_docs)
    description: The checks to run, in the order readiness, chat, json_schema, multi_turn, load.
    type: list
    elements: str
    choices: [readiness, chat, json_schema, multi_turn, load]
    default: [readiness, chat, json_schema, multi_turn, load]
    # END generated: checks option
  concurrency:
    description: Concurrency levels of the load sweep.
    type: list
    elements: int
    default: [1, 8, 32, 64]
  num_prompts:
    description: Requests per concurrency level; unset means max(4 x concurrency, 16).
    type: int
  input_len:
    description: Approximate prompt tokens per load request (random words, calibrated with the server's count).
    type: int
    default: 256
  output_len:
    description: C(max_tokens) per load request.
    type: int
    default: 128
  ignore_eos:
    description: Send C(ignore_eos) so that every load request generates O(output_len) tokens (SGLang, vLLM, llama.cpp).
    type: bool
    default: false
  request_rate:
    description:
      - Poisson arrival rate in requests per second (open loop, waiting for a slot counts in latency).
      - Unset means closed loop, each of the concurrent users sends its next request when the last one ends.
    type: float
  multi_turn_conversations:
    description: Parallel conversations of the multi_turn check (and requests of its shared-prefix run).
    type: int
    default: 20
  multi_turn_turns:
    description: Turns per conversation.
    type: int
    default: 5
  multi_turn_input_len:
    description: Approximate tokens of each new user message in a conversation.
    type: int
    default: 64
  multi_turn_output_len:
    description: C(max_tokens) of each multi-turn reply.
    type: int
    default: 32
  shared_prefix_len:
    description: Approximate tokens of the prefix shared by the shared-prefix run's requests.
    type: int
    default: 256
  json_schema:
    description: JSON schema for the json_schema check; unset means a small bounded schema.
      Bound strings (C(maxLength), C(pattern)) and arrays (C(maxItems)) or grammar decoding may never end.
    type: dict
  json_schema_max_tokens:
    description: C(max_tokens) of the json_schema request.
    type: int
    default: 256
  thresholds:
    description:
      - Limits, each evaluated into its own entry of the report's C(thresholds).
      - The C(load) check's are per concurrency level (a number for every level, or a dict keyed by level or
        C(all)); the others take one number.
      # BEGIN generated: thresholds (python3 -m lab.gen_bench_docs)
      - Of the C(multi_turn) check C(min_cache_hit_rate), C(max_turn_p90_ms).
      - Of the C(load) check C(min_output_tps), C(min_total_tps), C(min_request_throughput), C(min_per_user_tps),
        C(min_worst_user_tps), C(max_error_rate), C(max_<mean|p50|p90|p99>_<ttft|itl|tpot|e2e>_ms).
      # END generated: thresholds
    type: dict
  timeout_s:
    description: Per-request timeout in seconds.
    type: float
    default: 120
  ready_timeout_s:
    description: How long the readiness check waits for the server to become healthy, in seconds.
    type: float
    default: 300
  api_key:
    description:
      - Bearer token for servers that want one (sent as the C(Authorization) header); never logged, replaced by
        C(********) wherever a server echoes it into a message or the report.
      - A value with a CR, LF or other control character (a key read from a file with its newline) is refused
        before any request; strip it (C(| trim)).
    type: str
  ca_path:
    description: PEM file of the CA certificate(s) that sign an C(https://) server's certificate (a lab's private CA,
      for example the one of the TLS proxy in front of NIM). Unset means the system's CAs.
    type: path
  client_cert:
    description: PEM client certificate for servers or TLS proxies that ask for one (mutual TLS); it may hold
      the private key too.
    type: path
  client_key:
    description: PEM private key of O(client_cert) when it is in its own file.
    type: path
  validate_certs:
    description:
      - Verify an C(https://) server's certificate and host name. V(false) is the explicit insecure switch;
        the report then says so (C(network.tls.insecure) and a C(warnings) entry).
    type: bool
    default: true
  use_proxy:
    description:
      - Use the proxy that C(http_proxy), C(https_proxy), C(all_proxy) (either case) and C(no_proxy) name
        for O(base_url), the same rule as the serving health gate (module_utils C(sparkfleet.netenv)).
        Loopback addresses are never proxied. V(false) always connects directly.
    type: bool
    default: true
  transient_retries:
    description:
      - How many times the chat and json_schema checks retry a request that got a transient server error
        (HTTP 429, 500, 502, 503, 504, or a stream cut mid-way), with a back-off of 0.5 s, 1 s, 2 s...
      - Every retry is in the check's C(details.transient_errors) and the report's C(warnings); load requests
        are never retried (their errors are the error rate).
    type: int
    default: 3
  seed:
    description: Seed of the random prompts and arrivals.
    type: int
    default: 0
  report_path:
    description: Write the report as JSON here on the target (mode 0644). Not written in check mode.
    type: path
  fail_on_threshold:
    description: Fail the task when the report is not C(ok) (a check or a threshold failed). The report is
      returned either way.
    type: bool
    default: true
attributes:
  check_mode:
    details: The benchmark only reads from the server, so it runs in check mode too; O(report_path) is
      not written in check mode.
  idempotent:
    details: It changes nothing on the host; C(changed) is always false (writing O(report_path) is not counted).
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
notes:
  - Latency starts when a request is scheduled. With O(request_rate) that is its Poisson arrival time, so
    time spent waiting for a concurrency slot is counted.
  - See docs/benchmark.md for every metric's definition.
"""

EXAMPLES = r"""
- name: Benchmark | Verify the SGLang service
  sparkfleet.fleet.llm_benchmark:
    base_url: http://127.0.0.1:30000
    model: Qwen/Qwen3-8B
    engine: sglang
    service: sglang-qwen3-8b
    concurrency: [1, 8, 32]
    thresholds:
      min_output_tps: {"32": 300}
      max_p90_ttft_ms: 2000
      max_error_rate: 0.0
      min_cache_hit_rate: 0.5
    report_path: /var/lib/sparkfleet/reports/sglang-qwen3-8b.json
  register: bench

- name: Benchmark | Quick smoke test without failing the play
  sparkfleet.fleet.llm_benchmark:
    base_url: http://127.0.0.1:8000
    model: meta/llama-3.1-8b-instruct
    engine: nim
    checks: [readiness, chat, json_schema]
    fail_on_threshold: false
"""

RETURN = r"""
report:
  description:
    - The C(sparkfleet.benchmark/v1) report, also written to O(report_path).
    - Top level C(schema), C(host), C(service), C(engine), C(base_url), C(model), C(profile), C(started_at),
      C(duration_s), C(ok), C(validator) (C(jsonschema) or C(builtin)), C(settings), C(network) (C(proxy)
      without its password, C(tls) with C(verify) and C(insecure), C(api_key) true when one was sent),
      C(warnings), C(checks), C(load), C(multi_turn), C(thresholds), C(failures).
    - C(checks) items have C(name), C(status) (pass, fail, skip, not_reported), C(message), C(details).
    - C(load) items (one per level) have C(concurrency), C(request_rate), C(num_requests), C(completed), C(errors),
      C(duration_s), C(request_throughput), C(output_throughput), C(total_throughput), C(ttft_ms), C(itl_ms),
      C(tpot_ms), C(e2e_ms) (each C(mean), C(p50), C(p90), C(p99)), C(per_user_output_tps) (C(mean), C(p50),
      C(min)) and C(ttft_samples_ms).
    - C(multi_turn) has C(conversations), C(turns), C(per_turn) (C(turn), C(median_ms), C(p90_ms),
      C(median_prompt_tokens), C(median_cached_tokens), null when not reported) and C(cache_hit_rate)
      (C(expected), C(achieved), null when not reported).
    - C(thresholds) items have C(name), C(limit), C(measured), C(status) (pass, fail, skip), C(message).
  returned: always
  type: dict
report_written:
  description: Whether O(report_path) was written.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.module import check_names, run_module


def main() -> None:
    argument_spec = dict(
        base_url=dict(type="str", required=True),
        model=dict(type="str", required=True),
        engine=dict(type="str", default="openai"),
        health_paths=dict(type="list", elements="str", default=[]),
        service=dict(type="str", default=""),
        host=dict(type="str", default=""),
        profile=dict(type="str"),
        checks=dict(type="list", elements="str", default=check_names(), choices=check_names()),
        concurrency=dict(type="list", elements="int", default=[1, 8, 32, 64]),
        num_prompts=dict(type="int"),
        input_len=dict(type="int", default=256),
        output_len=dict(type="int", default=128),
        ignore_eos=dict(type="bool", default=False),
        request_rate=dict(type="float"),
        multi_turn_conversations=dict(type="int", default=20),
        multi_turn_turns=dict(type="int", default=5),
        multi_turn_input_len=dict(type="int", default=64),
        multi_turn_output_len=dict(type="int", default=32),
        shared_prefix_len=dict(type="int", default=256),
        json_schema=dict(type="dict"),
        json_schema_max_tokens=dict(type="int", default=256, no_log=False),
        thresholds=dict(type="dict"),
        timeout_s=dict(type="float", default=120.0),
        ready_timeout_s=dict(type="float", default=300.0),
        api_key=dict(type="str", no_log=True),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        use_proxy=dict(type="bool", default=True),
        transient_retries=dict(type="int", default=3),
        seed=dict(type="int", default=0),
        report_path=dict(type="path"),
        fail_on_threshold=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module)


if __name__ == "__main__":
    main()
