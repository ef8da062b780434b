#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check and normalize model_stage_models on the controller, before any host changes."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_stage_check
short_description: Check the models to pre-stage, naming the variable of every problem
description:
  - >-
    Runs on the controller (C(delegate_to: localhost), C(run_once)). Every entry of C(models) needs a Hub repo id
    C(org/name) and one source: C(source_dir), a directory on the controller (relative paths are tried against
    C(search_dirs)), or C(seed_host), a host of the inventory (C(hosts)) holding the model at C(source_dir) or in
    its hub cache. Fails with every problem, each naming C(model_stage_models[i]) and the key.
  - Reads only; never changes anything.
author: sparkfleet contributors (@sparkfleet)
options:
  models:
    description: The entries of C(model_stage_models).
    type: raw
    required: true
  hosts:
    description: Every host of the inventory (C(groups['all'])).
    type: list
    elements: str
    default: []
  hub_dir:
    description: The hub cache directory on the hosts (a seed host's default source).
    type: str
    required: true
  search_dirs:
    description: Controller directories a relative C(source_dir) is tried against, in order.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Model stage | Check the models to stage
  sparkfleet.fleet.model_stage_check:
    models: "{{ model_stage_models }}"
    hosts: "{{ groups['all'] }}"
    hub_dir: /var/lib/sparkfleet/huggingface/hub
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
models:
  description: >-
    The normalized entries: C(repo), C(hub_name) (models--org--name), C(revision), C(source) (controller or
    seed), C(source_dir) (resolved on the controller, or the path on the seed host) and C(seed_host).
  returned: success
  type: list
  elements: dict
errors:
  description: Every problem, each naming the variable.
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.stage.spec import run_check_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "models": {"type": "raw", "required": True},
            "hosts": {"type": "list", "elements": "str", "default": []},
            "hub_dir": {"type": "str", "required": True},
            "search_dirs": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    run_check_module(module)


if __name__ == "__main__":
    main()
