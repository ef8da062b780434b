#!/usr/bin/python
"""Test-only module: set ansible_facts.sparkfleet_plan as the rewritten preflight will (services with status)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: test_plan_fact
short_description: Set ansible_facts.sparkfleet_plan for the gateway scenario
description: Returns O(plan) as C(ansible_facts.sparkfleet_plan), the fact preflight produces.
options:
  plan:
    description: The plan, with C(services) entries carrying name, engine, model, port and status.
    type: dict
    required: true
author: sparkfleet contributors
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 -- modules put DOCUMENTATION first


def main() -> None:
    module = AnsibleModule(argument_spec={"plan": {"type": "dict", "required": True}}, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"sparkfleet_plan": module.params["plan"]})


if __name__ == "__main__":
    main()
