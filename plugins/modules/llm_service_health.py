#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe an inference service's health endpoints for up to one step (a minute by default)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: llm_service_health
short_description: Probe an inference service's health endpoints for up to one step
description:
  - Probes C(paths) in order on C(url) every C(interval_s) seconds for up to C(step_s) seconds and returns
    C(healthy) true once every path answers HTTP 200. The role retries it once per step until the health budget
    is spent, so a waiting run prints a line a minute.
  - When C(unit) is given, a unit in state C(failed) (systemd's start limit hit) ends the wait at once with
    C(give_up) true, and so does a server that exited O(fail_after_exits) times before it was ever healthy;
    C(since_start_s) tells how long the unit's main process has run.
  - Reads only.
author: sparkfleet contributors (@sparkfleet)
options:
  url:
    description: Base URL, e.g. http://127.0.0.1:30000.
    type: str
    required: true
  paths:
    description: Endpoints that must all answer 200, in order (SGLang /health_generate then /v1/models).
    type: list
    elements: str
    required: true
  step_s:
    description: How long one call waits at most.
    type: int
    default: 60
  interval_s:
    description: Pause between probes.
    type: int
    default: 5
  unit:
    description: The systemd unit running the service (optional).
    type: str
    default: ""
  fail_after_exits:
    description:
      - With O(unit), give up once the server's main process exited this many times before it was ever healthy
        (0 - only when systemd's start limit is hit). A slow model load never exits, so it keeps its whole budget.
    type: int
    default: 0
  restarts_baseline:
    description:
      - systemd's C(NRestarts) of the unit right after this run started it; exits are counted from it. -1 - as found
        when the call starts.
    type: int
    default: -1
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Serving | Wait for the service to answer
  sparkfleet.fleet.llm_service_health:
    url: http://127.0.0.1:30000
    paths: [/health_generate, /v1/models]
    unit: sparkfleet-sglang-qwen3-8b.service
  register: __health
  until: __health.healthy or __health.give_up
  retries: 45
  delay: 1
"""

RETURN = r"""
healthy:
  description: Every path answered 200.
  returned: always
  type: bool
give_up:
  description: The unit failed; waiting longer is pointless.
  returned: always
  type: bool
probes:
  description: Path, HTTP status (0 when nothing answered) and the start of the body of the last round.
  returned: always
  type: list
  elements: dict
models:
  description: Model IDs listed by /v1/models when it was probed and answered.
  returned: when healthy
  type: list
  elements: str
unit_state:
  description: ActiveState of the unit (unknown without C(unit)).
  returned: always
  type: str
exits:
  description: How many times the main process exited during the wait (counted from O(restarts_baseline)).
  returned: always
  type: int
exit_status:
  description: How the main process last ended, e.g. C(exited 125) ('' when it has not).
  returned: always
  type: str
since_start_s:
  description: Seconds since the unit's main process started (null without C(unit)).
  returned: always
  type: float
msg:
  description: One line, e.g. "not healthy yet 3m05s after the start /health_generate -> 503".
  returned: always
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.health import (
    UNIT_PROPERTIES,
    UnitStatus,
    parse_unit_status,
    wait_healthy,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "paths": {"type": "list", "elements": "str", "required": True},
            "step_s": {"type": "int", "default": 60},
            "interval_s": {"type": "int", "default": 5},
            "unit": {"type": "str", "default": ""},
            "fail_after_exits": {"type": "int", "default": 0},
            "restarts_baseline": {"type": "int", "default": -1},
        },
        supports_check_mode=True,
    )
    p = module.params

    def unit_status() -> UnitStatus:
        rc, out, _err = module.run_command(["systemctl", "show", "-p", UNIT_PROPERTIES, "--", p["unit"]])
        return parse_unit_status(out if rc == 0 else "", time.monotonic())

    result = wait_healthy(
        p["url"],
        p["paths"],
        step_s=p["step_s"],
        interval_s=p["interval_s"],
        unit_status=unit_status if p["unit"] else None,
        fail_after_exits=p["fail_after_exits"],
        restarts_baseline=p["restarts_baseline"],
    )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
