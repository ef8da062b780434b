# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin sparkfleet_status_report: the fleet status report in the controller's own process.

The module of the same name (plugins/modules/sparkfleet_status_report.py) documents it and runs the same code
(status/report.py's build); as an action plugin it needs no module started on the controller, a second or more
of a status run here.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.status.report import build

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("hosts", "results", "report_dir", "status_dir"))
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        hosts, results = args.get("hosts"), args.get("results") or {}
        if not isinstance(hosts, list) or not isinstance(results, dict):
            raise AnsibleActionFail("sparkfleet_status_report: hosts must be a list and results a dict")
        for key in ("report_dir", "status_dir"):
            if not isinstance(args.get(key), str) or not args[key]:
                raise AnsibleActionFail(f"sparkfleet_status_report: {key} is required (a controller path)")
        params = {
            "hosts": hosts,
            "results": results,
            "report_dir": os.path.expanduser(args["report_dir"]),
            "status_dir": os.path.expanduser(args["status_dir"]),
        }
        result.update(build(params, check_mode=bool(self._task.check_mode), warn=display.warning))
        return result
