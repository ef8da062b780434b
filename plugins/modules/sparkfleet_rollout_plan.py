#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sparkfleet_rollout_plan: a rollout's batches and failure budget (sparkfleet/rollout.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sparkfleet_rollout_plan
short_description: Plan a rolling update's batches (canary first) and its failure budget
description:
  - Checks the rollout settings and computes, once, what C(playbooks/rolling_update.yml) does with them. The
    batches are cut from O(hosts) as Ansible's C(serial) cuts them (a percentage is of all hosts, at least 1; the
    last entry repeats), with one canary host alone first when O(canary) is true. RV(serial) lists every batch's
    size for the update play's C(serial) keyword, and preflight's topology check reads the same batches.
  - A service across hosts rolls out as one unit. From O(services) and O(groups), the hosts of each such service
    (merged where two share a host) stay in one batch. A batch takes whole units until it holds at least its size,
    and grows past it rather than split one; the canary is the first unit. RV(order) is the order the update play
    runs the hosts in (each unit's hosts next to each other), so that RV(serial) cuts exactly RV(batches).
  - The failure budget is a number of hosts, RV(max_failures), which is O(max_fail_percentage) percent of the hosts,
    rounded down. The rollout stops once more hosts than that have failed.
  - Fails, naming the variable and the fix, on a bad setting. Changes nothing.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  hosts:
    description: The hosts of the rollout in the order Ansible serves them (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  batch:
    description: >-
      C(sparkfleet_rollout_batch): a host count (V(2)), a whole percentage of O(hosts) (V(25%)), or a list of them
      (the last one repeats).
    type: raw
    required: true
  canary:
    description: C(sparkfleet_rollout_canary), serve one host alone first.
    type: raw
    required: true
  max_fail_percentage:
    description: >-
      C(sparkfleet_rollout_max_fail_percentage): the share (percent, 0 to 100) of O(hosts) that may fail before
      the rollout stops.
    type: raw
    required: true
  services:
    description: >-
      Each host's C(llm_serving_services) as the inventory declares them (host name to list). Only the services
      across hosts are read (their C(hosts), or C(group) and C(nodes)); an entry too broken to read is left to
      preflight's parser, which refuses it.
    type: dict
    default: {}
  groups:
    description: The inventory's groups (C(groups)), to resolve a service's C(group).
    type: dict
    default: {}
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Rollout | Plan the batches and the failure budget
  sparkfleet.fleet.sparkfleet_rollout_plan:
    hosts: "{{ ansible_play_hosts_all }}"
    batch: 25%
    canary: true
    max_fail_percentage: 10
  register: rollout
  run_once: true
"""

RETURN = r"""
serial:
  description: Every batch's size, in order (the update play's C(serial)).
  type: list
  elements: int
  returned: success
  sample: [1, 2, 2, 2, 1]
batches:
  description: The hosts of each batch, in order.
  type: list
  elements: list
  returned: success
canary:
  description: The first batch's hosts (one host when O(canary) is true).
  type: list
  elements: str
  returned: success
max_failures:
  description: The number of failed hosts the budget allows; one more stops the rollout.
  type: int
  returned: success
total:
  description: The number of hosts.
  type: int
  returned: success
hosts:
  description: O(hosts), as planned.
  type: list
  elements: str
  returned: success
order:
  description: The hosts in the order the update play runs them (the batches, one after another).
  type: list
  elements: str
  returned: success
unit_of:
  description: >-
    For each host of a service across hosts, the hosts of its unit (rolled out, rolled back and counted
    together); hosts alone are not listed.
  type: dict
  returned: success
  sample: {"spark-03": ["spark-03", "spark-04"], "spark-04": ["spark-03", "spark-04"]}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.rollout import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "hosts": {"type": "list", "elements": "str", "required": True},
            "batch": {"type": "raw", "required": True},
            "canary": {"type": "raw", "required": True},
            "max_fail_percentage": {"type": "raw", "required": True},
            "services": {"type": "dict", "default": {}},
            "groups": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
