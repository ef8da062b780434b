#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep, restore or forget the last-known-good version of one sparkfleet service."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: llm_service_lkg
short_description: Keep, restore or forget the last-known-good version of one sparkfleet service
description:
  - O(action=save) keeps what the service runs now, read from the host and never from the new render - its unit
    and env file byte for byte, the image reference its container was started with and the image ID it runs, and
    the address and health paths that version answers on (the ownership marker its own unit carries). It keeps
    nothing when the unit is not sparkfleet's or the running version does not answer there within a few probes.
  - O(action=restore) puts the kept unit and env file back, makes the kept image reference name the kept image ID
    again when it no longer does (the new release's reference is never pointed at the old image), clears a failed
    state and restarts the unit; with nothing kept (a first deploy) it stops and disables the unit. It returns the
    kept version's address and health paths for the health gate that follows.
  - O(action=forget) removes the kept files of a service that goes away.
author: sparkfleet contributors (@sparkfleet)
options:
  action:
    description: What to do.
    type: str
    choices: [save, restore, forget]
    required: true
  name:
    description: The service's name.
    type: str
    required: true
  unit_path:
    description: The service's unit file.
    type: path
    default: ""
  unit_name:
    description: The service's unit name.
    type: str
    default: ""
  env_file:
    description: The service's env file.
    type: path
    default: ""
  container:
    description: The service's container name (O(action=save)).
    type: str
    default: ""
  lkg_dir:
    description: Where kept versions live (C(llm_serving_lkg_dir)).
    type: path
    required: true
  docker_bin:
    description: The docker CLI.
    type: path
    default: /usr/bin/docker
  fallback_url:
    description: Where to probe a running unit whose marker does not say (written before the marker had it).
    type: str
    default: ""
  fallback_paths:
    description: Health paths for O(fallback_url).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: none
    details: O(action=save) keeps the version running at that moment, O(action=restore) restarts the unit.
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
"""

EXAMPLES = r"""
- name: Serving | Keep the running version
  sparkfleet.fleet.llm_service_lkg:
    action: save
    name: sglang-qwen3-8b
    unit_path: /etc/systemd/system/sparkfleet-sglang-qwen3-8b.service
    env_file: /etc/sparkfleet/serving/sglang-qwen3-8b.env
    container: sparkfleet-sglang-qwen3-8b
    lkg_dir: /var/lib/sparkfleet/lkg
"""

RETURN = r"""
saved:
  description: A version was kept (O(action=save)).
  returned: always
  type: bool
restored:
  description: The kept version was put back and restarted (O(action=restore)).
  returned: always
  type: bool
stopped:
  description: Nothing was kept, so the unit was stopped and disabled (O(action=restore)).
  returned: always
  type: bool
retagged:
  description: The kept image reference was made to name the kept image ID again.
  returned: always
  type: bool
image:
  description: The kept image reference.
  returned: always
  type: str
image_id:
  description: The kept image ID.
  returned: always
  type: str
probe_url:
  description: Where the kept version answers.
  returned: always
  type: str
health_paths:
  description: The kept version's health paths.
  returned: always
  type: list
  elements: str
reason:
  description: Why a version was or was not kept (O(action=save)).
  returned: always
  type: str
msg:
  description: One line on what was done.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.paths import DOCKER_BIN
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.lkg import LkgError, run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["save", "restore", "forget"], "required": True},
            "name": {"type": "str", "required": True},
            "unit_path": {"type": "path", "default": ""},
            "unit_name": {"type": "str", "default": ""},
            "env_file": {"type": "path", "default": ""},
            "container": {"type": "str", "default": ""},
            "lkg_dir": {"type": "path", "required": True},
            "docker_bin": {"type": "path", "default": DOCKER_BIN},
            "fallback_url": {"type": "str", "default": ""},
            "fallback_paths": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run_module(module.params, module.check_mode))
    except LkgError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
