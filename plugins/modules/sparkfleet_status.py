#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sparkfleet_status: a host's services as they run now, against the inventory (status/collect.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sparkfleet_status
short_description: Read a host's serving status at once - units, images, health, drift, GPU memory
description:
  - Plans the host's O(services) the way preflight does (the one parser, GPU detection; secrets are not checked),
    renders each planned service the way the serving role would render it now, and reads in one call, for every
    planned service and every unit carrying sparkfleet's ownership marker - the unit's state (C(systemctl show)),
    the container's state and image ID against the planned image's ID (C(docker inspect)), health now (the
    service's health paths, probed once with a short timeout), and drift from the inventory (C(missing),
    C(extra), C(different) unit lines, C(image)). Also the GPU memory in use (nvidia-smi; C(/proc/meminfo) on
    unified memory) and the state of sparkfleet's own gateway and firewall units.
  - Returns one bounded document (schema C(sparkfleet.status/v1), docs/status.md); the playbook
    C(playbooks/status.yml) adds the last verification from the controller's run history and writes it.
  - Reads only; never changes anything. Never returns a file's content, an environment or a command line.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  services:
    description: The host's C(llm_serving_services) (parsed here, so any type is accepted).
    type: raw
    default: []
  profiles:
    description: C(sparkfleet_profiles) from C(group_vars/all/profiles.yml).
    type: raw
    required: true
  profile_override:
    description: C(sparkfleet_profile_override).
    type: raw
  serving_gpu:
    description: C(preflight_serving_gpu) - the serving GPU by index, UUID or name word; empty - as detection chooses.
    type: str
    default: ""
  skip_gpu_services_without_gpu:
    description: C(preflight_skip_gpu_services_without_gpu).
    type: bool
    default: false
  memory_overhead:
    description: C(preflight_memory_overhead_factor); null for the plan's default.
    type: float
  settings:
    description: >-
      The serving role's settings that shape a unit (render.py's Settings - C(docker_bin), C(unit_dir),
      C(env_dir), C(bind_address), C(restart_sec), ...); a key left out or null takes render.py's default, which
      is the role's.
    type: dict
    default: {}
  health_timeout_s:
    description: Timeout of each health probe in seconds.
    type: float
    default: 3
  host:
    description: This host's inventory name (a service across hosts is planned on its hosts only, with its rank).
    type: str
    default: ""
  groups:
    description: The inventory's groups (Ansible's C(groups)), when a service spans hosts.
    type: dict
  fabric:
    description: Every host's fabric endpoint (as preflight passes it), when a service spans hosts.
    type: dict
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Status | Read this host's services
  sparkfleet.fleet.sparkfleet_status:
    services: "{{ llm_serving_services | default([]) }}"
    profiles: "{{ sparkfleet_profiles }}"
    settings:
      bind_address: "{{ llm_serving_bind_address | default(omit) }}"
  register: host_status
"""

RETURN = r"""
status:
  description: >-
    The host's status document (docs/status.md) - C(schema), C(collected_at), C(profile), C(gpu), C(services)
    (per service - C(planned), C(unit), C(container), C(image), C(health), C(drift), C(problems), C(state)),
    C(own_units), C(plan_errors), C(problems), C(verdict) (V(ok), V(drifted) or V(unhealthy)) and C(truncated).
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.status.collect import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "raw", "default": []},
            "profiles": {"type": "raw", "required": True},
            "profile_override": {"type": "raw"},
            "serving_gpu": {"type": "str", "default": ""},
            "skip_gpu_services_without_gpu": {"type": "bool", "default": False},
            "memory_overhead": {"type": "float"},
            "settings": {"type": "dict", "default": {}},
            "health_timeout_s": {"type": "float", "default": 3},
            "host": {"type": "str", "default": ""},
            "groups": {"type": "dict"},
            "fabric": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
