#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module metrics_config: Prometheus scrape targets and rules from the plan (sparkfleet/metrics/)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: metrics_config
short_description: Compute Prometheus scrape targets and alert rules from the fleet's plan
description:
  - Returns the scrape targets (Prometheus file_sd lists, one per job) and the rule file for the fleet, from each
    host's plan (C(ansible_facts.sparkfleet_plan), made by the preflight role in the same run) and the verify
    thresholds of each host's profile. It changes nothing; the metrics role writes what it returns.
  - Every service with status C(deploy) is scraped on its port at its engine's metrics path, node exporter on
    every host of O(hosts), the gateway's Prometheus listener on each host of O(gateways).
  - The alert limits are the verify thresholds (the profile's merged with the service's C(verify.thresholds)), the
    largest C(max_p90_ttft_ms) and the smallest C(min_output_tps) over the concurrency levels.
  - Fails, naming the variable to fix, when an alert setting is not valid or Prometheus could not reach a target.
author: sparkfleet contributors (@sparkfleet)
options:
  hosts:
    description:
      - Every host to scrape, by inventory name, each a dict of C(address) and C(plan) (the host's
        C(sparkfleet_plan)).
    type: dict
    required: true
  thresholds:
    description: The verify thresholds by profile (C(sparkfleet_verify_thresholds)).
    type: dict
    default: {}
  gateways:
    description: The gateway hosts, each C({host, address, port, bind_address}) of its Prometheus listener.
    type: list
    elements: dict
    default: []
  prometheus_host:
    description: The inventory name of the host Prometheus runs on (a gateway there is scraped on loopback).
    type: str
    required: true
  node_exporter_port:
    description: The port node exporter listens on.
    type: int
    default: 9100
  alerts:
    description:
      - Alert settings, C(window), C(down_for), C(slow_for), C(full_for), C(gpu_hot_for) (Prometheus durations),
        C(kv_cache_full_ratio), C(memory_full_ratio) (0..1), C(gpu_hot_celsius). Missing keys keep their defaults.
    type: dict
    default: {}
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Metrics | Compute the scrape targets and the rules
  sparkfleet.fleet.metrics_config:
    hosts:
      spark-01: {address: 10.0.0.11, plan: "{{ hostvars['spark-01'].ansible_facts.sparkfleet_plan }}"}
    thresholds: "{{ sparkfleet_verify_thresholds }}"
    prometheus_host: spark-01
  register: metrics
"""

RETURN = r"""
targets:
  description: Prometheus file_sd lists by job (C(sparkfleet-services), C(sparkfleet-nodes), C(sparkfleet-gateway)).
  returned: always
  type: dict
rules:
  description: The rule file (C(groups) of recording and alert rules).
  returned: always
  type: dict
services:
  description: How many services are scraped.
  returned: always
  type: int
errors:
  description: What to fix (the module fails when there is any).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.metrics.config import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "hosts": {"type": "dict", "required": True},
            "thresholds": {"type": "dict", "default": {}},
            "gateways": {"type": "list", "elements": "dict", "default": []},
            "prometheus_host": {"type": "str", "required": True},
            "node_exporter_port": {"type": "int", "default": 9100},
            "alerts": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    result = run_module(module.params)
    if result["errors"]:
        module.fail_json(msg="; ".join(result["errors"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
