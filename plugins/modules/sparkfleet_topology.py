#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sparkfleet_topology: the fleet's Dynamo deployments checked across hosts (sparkfleet/service/)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sparkfleet_topology
short_description: Check every Dynamo deployment across the hosts of the run
description:
  - Reads every host's plan (C(ansible_facts.sparkfleet_plan), made by M(sparkfleet.fleet.sparkfleet_plan_check)) and
    checks what one host's plan cannot see. Per C(dynamo_deployment) exactly one C(dynamo-frontend), at least one
    worker, C(dynamo-sglang) workers on hosts with a GPU profile (C(dynamo-mocker) is the CPU stand-in), one
    C(dynamo_discovery) value, C(file) only when every component is on one host, an etcd URL only with the
    C(dynamo-etcd) service it names, etcd's peer port free.
  - Returns the reachability probes the preflight role runs from each frontend's host to each worker's host.
  - Puts together the pieces of every service across hosts (C(hosts) or C(group) in the service, docs/multi-host.md)
    and checks every host of it in the run and planning it, ranks covering the hosts once, the head at rank 0, one
    definition, one profile and architecture, all hosts deploying it or none, a worker holding the image the head
    holds, and, with O(fabric), the fabric of its hosts (interfaces up, the same port, link speed, MTU, addresses
    unique on one subnet, one driver version).
  - Never fails on bad input; every problem is a line in RV(errors) naming the deployment, host and variable.
  - Changes nothing.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  plans:
    description: Host name -> that host's C(ansible_facts.sparkfleet_plan).
    type: dict
    required: true
  addresses:
    description: Host name -> names and addresses other hosts reach it at (the first is probed).
    type: dict
    default: {}
  ssh_ports:
    description: Host name -> the TCP port the reachability probe connects to (its sshd).
    type: dict
    default: {}
  serial:
    description: >-
      The serving play's C(serial) (C(sparkfleet_rollout_batch)): a count, a percentage or a list of them. With
      O(play_hosts), a deployment that spans hosts and deploys its C(dynamo-etcd) service for the first time
      (not in that host plan's C(installed)) must have etcd's host served first and alone. Unset, the order is
      not checked.
    type: raw
  play_hosts:
    description: The play's hosts in the order Ansible serves them (C(ansible_play_hosts_all)).
    type: list
    elements: str
  fabric:
    description: >-
      Host name -> that host's C(ansible_facts.sparkfleet_fabric) (M(sparkfleet.fleet.sparkfleet_fabric_facts)).
      Without it the fabric, image and architecture of services across hosts are not checked.
    type: dict
    default: {}
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Preflight | Check the Dynamo deployments across hosts
  sparkfleet.fleet.sparkfleet_topology:
    plans: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
               | map(attribute='ansible_facts.sparkfleet_plan'))) }}"
  register: topology
  run_once: true
"""

RETURN = r"""
errors:
  description: Every problem, each naming the deployment, the host and the variable to change.
  type: list
  elements: str
  returned: always
probes:
  description: C({from_host, to_host, address, port, deployment}) for each frontend host -> worker host pair.
  type: list
  elements: dict
  returned: always
deployments:
  description: Deployment name -> C({frontends, workers, hosts}).
  type: dict
  returned: always
groups:
  description: >-
    Service across hosts -> C({engine, backend, head, hosts, ranks, nnodes, tp, pp, status, ok}): one service on N
    hosts, for the report.
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.topology import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plans": {"type": "dict", "required": True},
            "addresses": {"type": "dict", "default": {}},
            "ssh_ports": {"type": "dict", "default": {}},
            "serial": {"type": "raw"},
            "play_hosts": {"type": "list", "elements": "str"},
            "fabric": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
