#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what the serving role needs from a host in one round trip."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: llm_service_state
short_description: Read a host's serving state at once - ports, sparkfleet units and containers, planned files
description:
  - Reads, in one call, what the serving role used to ask for task by task - the listening TCP ports
    (C(ss -ltnH)), the ports of containers carrying the sparkfleet service label, the systemd version, the
    C(sparkfleet-*.service) units that carry sparkfleet's ownership marker, and for every service of O(plan) the
    state of its unit and env file (existence, SHA-1 of the content, mode, owner, group) and of its systemd unit
    (active, enabled).
  - The role compares these with what it would write, rendered on the controller, and writes or restarts only what
    differs, so a rerun with nothing to change costs one round trip here instead of one per probe.
  - Reads only; never changes anything. Never returns a file's content, only its checksum (env files hold secrets).
author: sparkfleet contributors (@sparkfleet)
options:
  plan:
    description: The host's plan (C(ansible_facts.sparkfleet_plan)); its C(services) name the files to read.
    type: dict
    default: {}
  unit_dir:
    description: Where the role writes units (C(llm_serving_unit_dir)).
    type: path
    default: /etc/systemd/system
  env_dir:
    description: Where the role writes env files (C(llm_serving_env_dir)).
    type: path
    default: /etc/sparkfleet/serving
  docker_bin:
    description: The docker CLI (C(llm_serving_docker_bin)).
    type: path
    default: /usr/bin/docker
  paths:
    description: More files to report in RV(files) (the role's firewall unit).
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Serving | Read the host's serving state
  sparkfleet.fleet.llm_service_state:
    plan: "{{ ansible_facts['sparkfleet_plan'] }}"
  register: serving_state
"""

RETURN = r"""
listening:
  description: The output of C(ss -ltnH).
  returned: success
  type: str
own_containers:
  description: One line per sparkfleet container - its service label, a tab, its published ports.
  returned: success
  type: str
systemd_version:
  description: systemd's version number (0 when unreadable).
  returned: success
  type: int
  sample: 252
units:
  description: >-
    Paths of the sparkfleet service units on the host (planned or not) - the C(sparkfleet-<name>.service) regular
    files that carry sparkfleet's ownership marker for C(<name>); a unit that only looks like one is not listed.
  returned: success
  type: list
  elements: str
env_files:
  description: Paths of the C(<name>.env) files of O(env_dir) that carry sparkfleet's ownership marker for C(<name>).
  returned: success
  type: list
  elements: str
files:
  description: >-
    Per path (each planned unit and env file, those of the units found, and O(env_dir)) - C(exists), C(isdir),
    C(checksum), C(mode), C(owner), C(group), and C(owned) (the file carries sparkfleet's marker for its service).
  returned: success
  type: dict
unit_states:
  description: Per planned unit name - C(active) and C(enabled).
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.paths import DOCKER_BIN, ENV_DIR, UNIT_DIR
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.state import read_state


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict", "default": {}},
            "unit_dir": {"type": "path", "default": UNIT_DIR},
            "env_dir": {"type": "path", "default": ENV_DIR},
            "docker_bin": {"type": "path", "default": DOCKER_BIN},
            "paths": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    state = read_state(p["plan"], p["unit_dir"], p["env_dir"], p["docker_bin"], paths=p["paths"])
    problems = state.pop("problems")
    if problems:
        module.fail_json(msg="llm_service_state: " + "; ".join(problems), **state)
    module.exit_json(changed=False, **state)


if __name__ == "__main__":
    main()
