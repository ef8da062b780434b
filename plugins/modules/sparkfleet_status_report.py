#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sparkfleet_status_report: the fleet status on the controller (status/report.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sparkfleet_status_report
short_description: Write the fleet status - one JSON document per host and the status table
description:
  - Runs on the controller. Takes the result of M(sparkfleet.fleet.sparkfleet_status) for every host of the play
    (a host without one - unreachable, or the module failed - gets a document saying so), adds to each service the
    last verification of that host and service from the run history (C(history.jsonl) in O(report_dir)), writes
    C(<status_dir>/<host>.json) and C(<status_dir>/status.txt) (the table), and returns the table and the hosts
    that are unhealthy or drifted.
  - The documents are this query's output, replaced on every run; C(changed) is always false. In check mode nothing
    is written (the table and the verdict are returned all the same). Nothing on any managed host changes.
  - Playbooks run it as the action plugin of the same name, in the controller's own process (no module is started);
    this module file documents it and runs the same code.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  hosts:
    description: The hosts of the play, in order.
    type: list
    elements: str
    required: true
  results:
    description: Host -> the registered result of M(sparkfleet.fleet.sparkfleet_status) (or of its failure).
    type: dict
    default: {}
  report_dir:
    description: The verify stage's report directory (C(llm_verify_report_dir)), where C(history.jsonl) is.
    type: path
    required: true
  status_dir:
    description: Where the documents and the table are written.
    type: path
    required: true
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
attributes:
  check_mode:
    support: full
    details: In check mode it writes nothing and returns the same table and verdict.
  diff_mode:
    support: none
    details: It manages nothing, so there is nothing to diff.
  idempotent:
    support: full
    details: C(changed) is always false; the documents are replaced on every run (the output of a query).
"""

EXAMPLES = r"""
- name: Status | Write the documents and the table
  sparkfleet.fleet.sparkfleet_status_report:
    hosts: "{{ ansible_play_hosts_all }}"
    results: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
                 | map(attribute='host_status', default={}))) }}"
    report_dir: "{{ playbook_dir }}/../reports"
    status_dir: "{{ playbook_dir }}/../reports/status"
  run_once: true
  delegate_to: localhost
  register: fleet_status
"""

RETURN = r"""
table:
  description: The status table, one row per service, and a summary line.
  returned: success
  type: str
summary:
  description: One line - how many hosts, how many ok, the others and why.
  returned: success
  type: str
bad_hosts:
  description: Host -> why it is not ok (unhealthy, drifted or unreachable, and the services that make it so).
  returned: success
  type: dict
groups:
  description: Services across hosts (or a Dynamo deployment) -> each piece's host, service and state.
  returned: success
  type: dict
files:
  description: The paths written.
  returned: success
  type: list
  elements: str
msg:
  description: What to say when hosts are not ok (names them), or that all are.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.status.report import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "hosts": {"type": "list", "elements": "str", "required": True},
            "results": {"type": "dict", "default": {}},
            "report_dir": {"type": "path", "required": True},
            "status_dir": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
