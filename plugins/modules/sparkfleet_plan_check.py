#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sparkfleet_plan_check: the one parser of services and the host's plan (sparkfleet/service/)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sparkfleet_plan_check
short_description: Validate llm_serving_services, secrets, driver and memory, and plan what deploys
description:
  - Checks one host's C(llm_serving_services) against the service schema (types, unknown and renamed keys,
    unique names and ports, engines, image references, C(mem_fraction), state), the NGC key where a service
    needs it, the driver version against the profile's C(min_driver_version), whether each GPU service's model
    fits its GPU and the C(mem_fraction) sum per GPU, and free disk space for images and model cache.
  - Never fails on bad input. Every problem is a line in RV(ansible_facts.sparkfleet_plan.errors) naming the
    variable and the fix, so the preflight role can list the problems of every host before failing.
  - On profile V(none), GPU services are skipped (listed in RV(ansible_facts.sparkfleet_plan.skipped)) or,
    with O(skip_gpu_services_without_gpu=false), reported as errors; services with C(gpu=none) deploy.
  - Changes nothing on the host.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  services:
    description: The host's C(llm_serving_services) (checked here, so any type is accepted).
    type: raw
    default: []
  profiles:
    description: C(sparkfleet_profiles) from C(group_vars/all/profiles.yml).
    type: raw
    required: true
  gpu_facts:
    description: C(ansible_facts.nvidia_gpu) from M(sparkfleet.fleet.nvidia_gpu_facts); null when detection failed.
    type: dict
  gpu_error:
    description: The message of a failed GPU detection; becomes an error of this host.
    type: str
    default: ""
  profile_override:
    description: C(sparkfleet_profile_override); must be a key of O(profiles).
    type: raw
  ngc_api_key:
    description: C(sparkfleet_ngc_api_key); only its presence and format are checked, it is never returned.
    type: raw
  hf_token:
    description: >-
      C(sparkfleet_hf_token); checked for stray whitespace and, like the NGC key, looked for in every service
      string that reaches a unit, an env file or a command line. Never returned.
    type: raw
  gpu_expected:
    description: >-
      Whether this host must have a usable GPU (it is in a GPU group). When true and detection finds none, the
      host has a problem naming detection's reason. Null skips the check.
    type: bool
  gpu_expected_why:
    description: Why the host is expected to have a GPU (for the message), for example C(in group dgx_spark).
    type: str
    default: ""
  skip_gpu_services_without_gpu:
    description: >-
      On a host without a usable GPU, skip GPU services on purpose (true; listed as skipped by choice) or report
      them as problems (false).
    type: bool
    default: false
  bind_address:
    description: >-
      Where the host publishes its services (C(llm_serving_bind_address)); each planned service gets the URL a client
      on the host uses (C(url): loopback when it binds every address, IPv6 bracketed).
    type: str
    default: ""
  memory_overhead:
    description: Factor over the weights' size for a memory estimate from C(model_params_b) and C(model_dtype).
    type: float
    default: 1.2
  min_free_disk_gb_per_service:
    description: >-
      Free disk space in GB needed for each image the deployed services use (once per distinct image), on top of
      their model weights. Space already taken is not asked for again: nothing for an image the host's Docker
      holds, nothing for the weights of a service whose unit exists in O(unit_dir) (an earlier run deployed it).
    type: float
    default: 20
  unit_dir:
    description: >-
      Where sparkfleet's units are (C(sparkfleet-<name>.service)), which name the services an earlier run
      deployed.
    type: path
    default: /etc/systemd/system
  disk_paths:
    description: Paths whose filesystem must hold the images and model cache (the nearest existing parent is measured).
    type: list
    elements: path
    default: [/var/lib/docker]
  host:
    description: >-
      This host's inventory name (C(inventory_hostname)): a service across hosts (C(hosts) or C(group), see
      docs/multi-host.md) is planned on its hosts only, and this host's rank and role follow from its place.
    type: str
    default: ""
  groups:
    description: The inventory's groups (Ansible's C(groups)), which resolve a service's C(group) and C(nodes).
    type: dict
    default: {}
  fabric:
    description: >-
      Host name -> its fabric endpoint for services across hosts, C({interface, address, hca, facts}): the host
      variables C(sparkfleet_fabric_interface), C(sparkfleet_fabric_address), C(sparkfleet_fabric_hca), and its
      C(ansible_facts.sparkfleet_fabric) (M(sparkfleet.fleet.sparkfleet_fabric_facts)) for what they leave unset.
    type: dict
    default: {}
attributes:
  facts:
    details: Returns C(ansible_facts.sparkfleet_plan).
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
  - sparkfleet.fleet.attributes.facts
"""

EXAMPLES = r"""
- name: Preflight | Check the serving plan
  sparkfleet.fleet.sparkfleet_plan_check:
    services: "{{ llm_serving_services | default([]) }}"
    profiles: "{{ sparkfleet_profiles }}"
    gpu_facts: "{{ ansible_facts['nvidia_gpu'] }}"
    ngc_api_key: "{{ sparkfleet_ngc_api_key | default('') }}"
  no_log: true

- name: Preflight | Show the problems
  ansible.builtin.debug:
    var: ansible_facts['sparkfleet_plan']['errors']
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    sparkfleet_plan:
      description: The plan the serving role reads.
      type: dict
      contains:
        profile:
          description: The profile in force (the override when valid, else the detected one).
          type: str
          sample: dgx_spark
        serving_gpu:
          description: The serving GPU dict from nvidia_gpu_facts, null on profile none.
          type: dict
        services:
          description: >-
            Every service of the host, normalized by the one parser (every key of the service model present,
            defaults filled), with C(status) (deploy, skipped or absent), C(reason), C(where) (its path in the
            inventory) and C(gpu_device) (the GPU index, C(all), or null); a service across hosts also
            C(multihost), this host's piece (C(rank), C(role) head or worker, C(hosts), C(head), C(nnodes), C(tp),
            C(pp), C(dist_port), C(address), C(interface), C(head_address), C(workers), C(env)).
          type: list
          elements: dict
        expected:
          description: How many services the inventory plans on this host (all but state absent).
          type: int
        absent:
          description: Names of the services with state absent (removed by serving).
          type: list
          elements: str
        deploy:
          description: Names of the present services that will be deployed.
          type: list
          elements: str
          sample: [sglang-qwen3-8b]
        skipped:
          description: Services that will not be deployed, each with a reason.
          type: list
          elements: dict
          sample: [{name: sglang-qwen3-8b, reason: "GPU service (gpu: auto) on a host with profile none"}]
        errors:
          description: Problems, each naming the variable and the fix. Empty when the plan is good.
          type: list
          elements: str
        warnings:
          description: Things that could not be checked (no memory size, MIG enabled, ...).
          type: list
          elements: str
        summary:
          description: One line for the run's output.
          type: str
        installed:
          description: Names of the services an earlier run deployed on this host (their units exist in O(unit_dir)).
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.paths import UNIT_DIR
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.plan import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "raw", "default": []},
            "profiles": {"type": "raw", "required": True},
            "gpu_facts": {"type": "dict"},
            "gpu_error": {"type": "str", "default": ""},
            "profile_override": {"type": "raw"},
            "ngc_api_key": {"type": "raw", "no_log": True},
            "hf_token": {"type": "raw", "no_log": True},
            "gpu_expected": {"type": "bool"},
            "gpu_expected_why": {"type": "str", "default": ""},
            "skip_gpu_services_without_gpu": {"type": "bool", "default": False},
            "bind_address": {"type": "str", "default": ""},
            "memory_overhead": {"type": "float", "default": 1.2},
            "min_free_disk_gb_per_service": {"type": "float", "default": 20},
            "disk_paths": {"type": "list", "elements": "path", "default": ["/var/lib/docker"]},
            "unit_dir": {"type": "path", "default": UNIT_DIR},
            "host": {"type": "str", "default": ""},
            "groups": {"type": "dict", "default": {}},
            "fabric": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
