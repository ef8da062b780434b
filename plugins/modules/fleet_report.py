#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: build the fleet report from sparkfleet.benchmark/v1 reports."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Build the sparkfleet fleet report (Markdown, HTML with plots, JSON) from benchmark reports
description:
  - Reads the C(sparkfleet.benchmark/v1) JSON reports that M(sparkfleet.fleet.llm_benchmark) wrote on each host and
    the play fetched to the controller, and writes C(fleet-report.md), C(fleet-report.html) and
    C(fleet-report.json) into O(dest).
  - The Markdown has one table (a row per host and service - PASS/FAIL, profile, model, output tokens/s at each
    concurrency, p90 time to first token, cache-hit rate, decode speed against the bandwidth ceiling, failed checks),
    then the failures, then the flags.
  - The HTML page is self-contained - inline CSS and SVG, no JavaScript, nothing loaded from the network - with
    throughput against concurrency (one line per host and service) and a box plot of time to first token per host.
  - Hosts whose output throughput is more than O(slow_margin) below the median of the hosts serving the same model
    with the same engine and profile are flagged as slow.
  - A report that cannot be read or does not follow the schema becomes a FAIL row and a warning, never a crash,
    so the fleet report always exists; an entry of O(expected) without a report becomes a FAIL row too.
  - The results of the measured fabric check (C(playbooks/fabric_check.yml)), kept in C(fabric/) beside the run
    directories (the parent of O(dest)), are shown as a fabric line per service across hosts - its bus bandwidth
    against the threshold, pass or fail, the hosts and interfaces - (with O(plans), only the services across hosts
    planned now, on the same hosts); a file there that is not one of them is skipped with a flag.
  - Runs on the controller (C(delegate_to=localhost)). Playbooks run it as the action plugin of the same name, in
    the controller's own process (no module is started); this module file documents it and runs the same code.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  inputs:
    description:
      - Report files, or directories searched recursively for C(*.json) (the module's own outputs are skipped).
      - Paths that do not exist are ignored, so a run whose every benchmark failed still gets a report.
    type: list
    elements: path
    required: true
  dest:
    description: Directory the three report files are written to (created when missing).
    type: path
    required: true
  expected:
    description:
      - One entry per host and service that should have a report, with metadata the report lacks.
      - Keys C(host) and C(service) (required), C(profile), C(model), C(engine), C(model_params_b), C(model_dtype),
        C(error) (why there is no report, for example the benchmark module's failure message; a FAIL row), and
        C(not_run) (why it was deliberately not benchmarked, for example check mode; a NOT RUN row, not a failure).
    type: list
    elements: dict
    default: []
  plans:
    description:
      - Per host in the run, the services its plan expects (C(ansible_facts.sparkfleet_plan.services), each with
        C(name), C(status) and C(reason)). When given, the report reconciles them with what is serving and verified
        (RV(reconciliation)); null leaves the reconciliation out.
    type: dict
  reconciliation:
    description: >-
      A reconciliation made earlier in the run (RV(reconciliation) of the verify stage's report), kept as it is when
      a later stage rebuilds the run's report without O(plans).
    type: dict
  orphans:
    description: Per host, the names of sparkfleet services it runs that its plan does not list.
    type: dict
    default: {}
  outcomes:
    description: >-
      Per host, what happened to it in this run (C(updated), C(unchanged), C(rolled back ...), C(not reached ...),
      C(unreachable)); the report says why each host serves the version it serves, and it is the reason given for
      each of its planned services that is not serving.
    type: dict
    default: {}
  answers:
    description:
      - Per host, what each of its planned services answers now, whichever version - service name to the result of
        M(sparkfleet.fleet.llm_service_health) on the plan's URL and health paths (C(healthy), C(msg), C(models)).
        A rollout probes every host at its end (C(sparkfleet_rollout_answers)).
      - When given, a service serves when it answers (updated - this run's version - or rolled back or not reached -
        the previous version, by the host's O(outcomes)), is missing when it does not (down), and a host in
        O(plans) that is not in O(answers) is down or unreachable. This run's version that answers but failed its
        benchmark is still missing.
      - Null (the default) counts a service as serving when it passed this run's benchmark.
    type: dict
  profiles:
    description:
      - The platform profiles (C(sparkfleet_profiles)); only C(memory_bandwidth_gbps) is read, for the decode ceiling
        C(bandwidth_GBps * 1e9 / (model_params_b * 1e9 * bytes_per_dtype)) tokens/s per user.
    type: dict
    default: {}
  slow_margin:
    description: Flag a host slower than the fleet median by more than this fraction (0.2 = 20%).
    type: float
    default: 0.2
  run_id:
    description: Name of this run, shown in the title and the JSON summary.
    type: str
    default: ""
  generated_at:
    description:
      - Timestamp shown in the report. The module reads no clock of its own, so equal inputs give equal files.
    type: str
    default: ""
  latest_link:
    description: When set, a relative symlink at this path is pointed at O(dest) (for example C(reports/latest)).
    type: path
  record:
    description:
      - What produced this run, shown in the report's C(This run) section and kept in O(history) - for example
        C(inventory) (the inventory sources), C(limit), C(play) and C(ansible) (the ansible-core version).
      - Never pass secrets here. The variables are recorded as one digest per host of its plan (O(plans)).
    type: dict
  source_dir:
    description: >-
      The project's checkout on the controller; its git commit (and whether tracked files differ from it) is recorded
      (nothing when it is not a git checkout).
    type: path
  history:
    description:
      - Keep one summary per run in C(history.jsonl) beside the run directories (the parent of O(dest)), newest last;
        a rebuild of the same O(run_id) replaces its line.
      - Each passing host and service whose output throughput at a concurrency fell by more than O(slow_margin) since
        the previous kept run (same model and engine) is flagged as slower than the last run.
    type: bool
    default: false
  history_keep:
    description: How many runs C(history.jsonl) keeps.
    type: int
    default: 50
attributes:
  check_mode:
    support: full
    details: Writes nothing; RV(written) lists what would be written.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Files are rewritten only when their content differs.
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
notes:
  - Every string taken from a report, the inventory or C(history.jsonl) is HTML-escaped in the page (text and
    attribute values; the page has no links, so no URL becomes an C(href)) and pipe-escaped in the Markdown.
  - A line of C(history.jsonl) that is not one of the module's (not JSON, not an object, a value of the wrong type,
    longer than 1 MiB, not UTF-8) is skipped with a note in the report's flags that names the line and why, never a
    failure; only the newest 16 MiB of the file are read.
seealso:
  - module: sparkfleet.fleet.llm_benchmark
"""

EXAMPLES = r"""
- name: Verify | Build the fleet report
  sparkfleet.fleet.fleet_report:
    inputs: ["{{ playbook_dir }}/../reports/20261123T101500Z"]
    dest: "{{ playbook_dir }}/../reports/20261123T101500Z"
    latest_link: "{{ playbook_dir }}/../reports/latest"
    profiles: "{{ sparkfleet_profiles }}"
    expected:
      - {host: spark-01, service: sglang-qwen3-8b, profile: dgx_spark, model_params_b: 8.2, model_dtype: bf16}
  delegate_to: localhost
  run_once: true
  register: fleet

- name: Verify | Print the fleet report
  ansible.builtin.debug:
    msg: "{{ fleet.markdown_lines }}"
"""

RETURN = r"""
markdown:
  description: The Markdown report, as written to C(fleet-report.md).
  returned: always
  type: str
markdown_lines:
  description: The same report as a list of lines (for C(ansible.builtin.debug)).
  returned: always
  type: list
  elements: str
files:
  description: Paths of the three report files.
  returned: always
  type: list
  elements: str
written:
  description: Files written by this run (in check mode, those that would be).
  returned: always
  type: list
  elements: str
inputs:
  description: The report files that were read.
  returned: always
  type: list
  elements: str
summary:
  description: >-
    Counts and lists (C(passed), C(failed), C(failed_hosts), C(slow_hosts), C(slower_than_last_run), C(failures),
    C(flags), C(run_record), C(previous_run), C(fabric) - the fabric check's results shown, ...).
  returned: always
  type: dict
  sample: {"schema": "sparkfleet.fleet_report/v1", "total": 4, "passed": 3, "failed": 1, "failed_hosts": ["spark-03"]}
reconciliation:
  description: >-
    Planned vs serving, when O(plans) is given - C(expected), C(serving) (services that answer, whichever version),
    C(serving_other_version) (how many of them serve another version than this run's - C(rolled back),
    C(not reached), C(of an unknown version)), C(probed) (whether O(answers) was given), C(hosts) (per host -
    C(expected), C(serving), C(outcome), C(serves) - C(this run's version), C(the previous version),
    C(an unknown version) or C(nothing) - C(why) - C(updated), C(unchanged), C(rolled back), C(not reached), C(down),
    C(down or unreachable), ... - and C(models), the model IDs the probe saw), C(missing) (host, service, reason,
    by_choice), C(orphans), C(not_benchmarked) (host, service and how it is verified instead, for example a Dynamo
    worker through its frontend; never counted as missing), C(across_hosts) (only with services across hosts: one
    entry per service - C(service), C(head), C(hosts), C(nnodes), C(serving), C(down), the hosts that failed it),
    C(ok) (false when a service is missing other than by explicit choice, or a service across hosts is down) and
    C(line) (C(expected N, serving M ...), for example
    C(expected 3, serving 3 (1 rolled back, 2 not reached))).
  returned: when plans is given
  type: dict
rows:
  description: One dict per host and service, as in C(fleet-report.json).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.write import ReportError, generate

ARGUMENT_SPEC: dict = {
    "inputs": {"type": "list", "elements": "path", "required": True},
    "dest": {"type": "path", "required": True},
    "expected": {"type": "list", "elements": "dict", "default": []},
    "profiles": {"type": "dict", "default": {}},
    "slow_margin": {"type": "float", "default": 0.2},
    "run_id": {"type": "str", "default": ""},
    "generated_at": {"type": "str", "default": ""},
    "latest_link": {"type": "path"},
    "plans": {"type": "dict"},
    "reconciliation": {"type": "dict"},
    "orphans": {"type": "dict", "default": {}},
    "outcomes": {"type": "dict", "default": {}},
    "answers": {"type": "dict"},
    "record": {"type": "dict"},
    "source_dir": {"type": "path"},
    "history": {"type": "bool", "default": False},
    "history_keep": {"type": "int", "default": 50},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    try:
        result = generate(check_mode=module.check_mode, **p)
    except (ReportError, OSError) as exc:
        module.fail_json(msg=f"fleet_report: {exc}")
    # Ansible's own warnings channel, not a `warnings` key of the result (deprecated in exit_json).
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
