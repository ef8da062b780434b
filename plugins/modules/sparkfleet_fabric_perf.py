#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sparkfleet_fabric_perf: NCCL's all_gather_perf across the hosts of a service across hosts,
against a bus bandwidth threshold (sparkfleet/fabric_perf.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sparkfleet_fabric_perf
short_description: Measure the fabric of services across hosts with NCCL's all_gather_perf
description:
  - The measured check of docs/multi-host.md. From every host's plan it takes the deployed services across hosts
    (one measurement per set of hosts), and for each group this host heads (O(host) is the group's head) runs
    OpenMPI's C(mpirun) with one app context per host, in rank order - C(-np 1 -H ADDRESS:1) on the host's fabric
    address, the host's NCCL environment from its piece of the plan as C(-x NAME=VALUE) (only C(NCCL_*), C(UCX_*)
    and C(OMPI_MCA_*) variables, from an allowlist of characters - never a secret), then
    C(all_gather_perf -b SIZE -e SIZE -f 2 -g 1). mpirun itself runs with the head's environment, as root with
    C(--allow-run-as-root).
  - The out-of-place bus bandwidth at the largest size is compared with O(min_busbw_gbps). Each verdict is C(pass),
    C(fail), C(error) (the run died, timed out, printed output that is not all_gather_perf's table, or found wrong
    results; or it was refused - a host without the memory the test holds) or C(not run) (check mode); its problems
    name the host, the interface and the fix.
  - The test holds about (2 + 1/hosts) x O(size) of memory on every host of the group (40 GiB at NVIDIA's 16G on two
    hosts, plus a tenth); a group where a host's C(MemAvailable) (O(meminfo)) is below that is refused, not run.
  - Changes nothing on the hosts. In check mode nothing runs; RV(checks) says what would.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  host:
    description: This host's inventory name; it runs the groups whose head it is, and nothing elsewhere.
    type: str
    required: true
  plans:
    description: >-
      Every host of the run -> its planned services (C(ansible_facts.sparkfleet_plan.services), or the whole plan
      fact); each service across hosts carries its piece (C(multihost) - hosts, head, rank, address, interface, hca,
      env).
    type: dict
    required: true
  meminfo:
    description: Host -> the text of its C(/proc/meminfo), read just before (the memory check of every host of a group).
    type: dict
    default: {}
  min_busbw_gbps:
    description: >-
      The bus bandwidth (GB/s) a group must reach. Unset - 21.875, NVIDIA's validation of two Sparks on a switch
      (175 Gb/s); 10 on a ring (two Sparks cabled without a switch).
    type: float
  size:
    description: All_gather_perf's message size, C(-b) and C(-e) (nccl-tests' grammar - a whole number with K, M or G).
    type: str
    default: 16G
  timeout_s:
    description: Seconds one group's run may take before it is stopped (mpirun and everything it started).
    type: int
    default: 300
  mpirun:
    description: OpenMPI's mpirun on the head (a command on PATH or a path).
    type: str
    default: mpirun
  mpirun_args:
    description: Options for mpirun before the app contexts, for example C(--mca plm_rsh_args "-p 2222").
    type: list
    elements: str
    default: []
  binary:
    description: NCCL's all_gather_perf, built with MPI=1, at the same path on every host.
    type: str
    default: all_gather_perf
  measured_at:
    description: The time recorded in each verdict (the controller's clock).
    type: str
    default: ""
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
notes:
  - The user the module runs as needs passwordless ssh from the head to every host's fabric address (mpirun starts
    the other ranks over ssh) and OpenMPI and nccl-tests at the same paths on every host.
  - Playbook C(playbooks/fabric_check.yml) (role C(sparkfleet.fleet.sparkfleet_fabric)) runs it opt-in, one group at
    a time, and keeps each verdict for the fleet report.
seealso:
  - module: sparkfleet.fleet.sparkfleet_fabric_facts
"""

EXAMPLES = r"""
- name: Fabric | Measure each group this host heads
  sparkfleet.fleet.sparkfleet_fabric_perf:
    host: "{{ inventory_hostname }}"
    plans: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars)
         | map(attribute='ansible_facts.sparkfleet_plan.services', default=[]))) }}
    meminfo: {spark-03: "MemAvailable:   110000000 kB\n", spark-04: "MemAvailable:   112000000 kB\n"}
    binary: /opt/nccl-tests/build/all_gather_perf
  register: fabric
"""

RETURN = r"""
checks:
  description: >-
    The groups this host heads - C(service), C(services) (every service on these hosts), C(head), C(hosts),
    C(endpoints) (host, rank, address, interface, hca, env), C(problems) (why it is refused), C(command) and
    C(message) (what runs, where, the memory it takes and the timeout).
  returned: always
  type: list
  elements: dict
verdicts:
  description: >-
    One per service of those groups - C(schema) (sparkfleet.fabric_perf/v1), C(service), C(services), C(head),
    C(hosts), C(endpoints), C(status) (pass, fail, error, not run), C(busbw_gbps) (out of place, largest size),
    C(avg_busbw_gbps), C(threshold_gbps), C(size), C(size_bytes), C(rows), C(problems), C(command), C(rc), C(seconds),
    C(measured_at), C(output_tail), C(file) (where the fleet report reads it, relative to the report directory) and
    C(line) (the report's line).
  returned: always
  type: list
  elements: dict
  sample:
    - service: llama-70b
      status: pass
      busbw_gbps: 22.94
      threshold_gbps: 21.875
      file: fabric/llama-70b.json
      line: "fabric: llama-70b: 22.94 GB/s bus bandwidth at 16 GiB (all_gather_perf, out of place; ...) >= ..."
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.fabric_perf import (
    DEFAULT_BINARY,
    DEFAULT_MPIRUN,
    DEFAULT_SIZE,
    DEFAULT_TIMEOUT_S,
    run_module,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "required": True},
            "plans": {"type": "dict", "required": True},
            "meminfo": {"type": "dict", "default": {}},
            "min_busbw_gbps": {"type": "float"},
            "size": {"type": "str", "default": DEFAULT_SIZE},
            "timeout_s": {"type": "int", "default": DEFAULT_TIMEOUT_S},
            "mpirun": {"type": "str", "default": DEFAULT_MPIRUN},
            "mpirun_args": {"type": "list", "elements": "str", "default": []},
            "binary": {"type": "str", "default": DEFAULT_BINARY},
            "measured_at": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
