# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin fleet_report: the fleet report in the controller's own process.

The module of the same name (plugins/modules/fleet_report.py) documents it, declares its arguments and runs the same
code (report/write.py's generate); the playbooks run it on the controller (delegate_to: localhost), where a module
costs a Python process of its own, a few tenths of a CPU second per report, on every run and twice when a gateway
benchmarks (the converged-host fast path's budget: docs/development.md, "Reruns").
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.write import ReportError, generate
from ansible_collections.sparkfleet.fleet.plugins.modules.fleet_report import ARGUMENT_SPEC

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(self._task.args))
        if checked.error_messages:
            raise AnsibleActionFail(f"fleet_report: {'; '.join(checked.error_messages)}")
        try:
            out = generate(check_mode=bool(self._task.check_mode), **checked.validated_parameters)
        except (ReportError, OSError) as exc:
            raise AnsibleActionFail(f"fleet_report: {exc}") from None
        for warning in out.pop("warnings"):
            display.warning(warning)
        result.update(out)
        return result
