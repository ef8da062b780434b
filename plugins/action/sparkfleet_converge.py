# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin sparkfleet_converge: the controller's side of the converged-host fast path (converge.py).

``state: check`` computes the digest of the desired state of the host in the controller's process, then runs the
module of the same name on the host (one call): the collection's content (hashed in this process), every variable
the roles declare in ``meta/argument_specs.yml`` and every one of their own ``vars/main.yml``, as this host sees them
(the inventory's value, else the role's default, templated in the host's context), the plans and addresses of the
play's hosts, the controller files the run reads, Ansible's version. A converged host joins the group
``sparkfleet_converged`` (the result carries ``add_group``, as group_by's does), which the converge stages leave out.

``state: present`` gathers what the run managed from the host's ``<role>_managed`` variables (each converge
role sets its own at its end) unless the task gives ``managed``. ``state: absent`` is the module as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.converge import (
    CONVERGED_GROUP,
    MANAGED_SUFFIX,
    digest,
)
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.desired import (
    Evaluator,
    Unevaluated,
    components,
    content_hash,
    controller_inputs,
    plain,
    plan_derived,
    plan_inputs,
    spec_options,
)

try:  # ansible-core 2.19 templates only strings trusted as templates (a role's files are)
    from ansible.template import trust_as_template
except ImportError:  # 2.17, 2.18: every string is

    def trust_as_template(value: Any) -> Any:
        return value


_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ROOT = Path(__file__).resolve().parents[2]
MODULE = "sparkfleet.fleet.sparkfleet_converge"
UNSET = {"unset": True}
UNEVALUATED = {"unevaluated": True}
FROM_PLAN = {"from_plan": True}


def _trusted(value: Any) -> Any:
    if isinstance(value, str):
        return trust_as_template(value) if ("{{" in value or "{%" in value) else value
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("state", "digest", "force", "managed", "stamp", "docker_bin"))

    @staticmethod
    def _load(path: Path) -> Any:
        """A role's YAML file as data, its templates trusted as Ansible trusts a role's own files (libyaml: a tenth
        of the CPU of Ansible's loader, which also copies what it caches)."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return _trusted(yaml.load(text, Loader=_YamlLoader))  # noqa: S506 - a safe loader, libyaml's when built

    def _variables(self, task_vars: Mapping[str, Any]) -> dict[str, Any]:
        """Every declared role input and every role's own variable, as this host sees them."""
        specs: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        own: dict[str, Any] = {}
        for role in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
            specs[role.name] = self._load(role / "meta" / "argument_specs.yml")
            defaults.update(self._load(role / "defaults" / "main.yml") or {})
            own.update(self._load(role / "vars" / "main.yml") or {})
        # Ansible's precedence: a role's defaults < the inventory, the play, extra vars < the role's own vars.
        env = {**defaults, **task_vars, **own}
        # A copy of the task's templar that sees the roles' defaults and vars too (set after the copy: the copy's
        # keyword arguments differ between ansible-core versions).
        templar = self._templar.copy_with_new_env()
        templar.available_variables = env
        evaluator = Evaluator(env, templar.template)
        out: dict[str, Any] = {}
        for name in sorted(set(spec_options(specs)) | set(own)):
            if name not in env:
                out[name] = UNSET
            elif plan_derived(env[name]):
                out[name] = FROM_PLAN
            else:
                # A value that needs this run's results (a loop's, a task's) is not an input: marked, not hashed.
                try:
                    out[name] = evaluator.value(name)
                except Unevaluated:
                    out[name] = UNEVALUATED
        return out

    def _check_args(self, task_vars: Mapping[str, Any]) -> dict[str, Any]:
        hosts = [str(h) for h in task_vars.get("ansible_play_hosts_all") or [task_vars.get("inventory_hostname")]]
        hostvars = task_vars.get("hostvars") or {}
        variables = self._variables(task_vars)
        plans: dict[str, Any] = {}
        addresses: dict[str, Any] = {}
        for host in hosts:
            hv = hostvars.get(host) or {}
            facts = hv.get("ansible_facts") or {}
            plans[host] = plan_inputs(facts.get("sparkfleet_plan"))
            addresses[host] = plain(
                {
                    "ansible_host": hv.get("ansible_host", host),
                    "default_ipv4": (facts.get("default_ipv4") or {}).get("address", ""),
                }
            )
        me = str(task_vars.get("inventory_hostname"))
        own_plan = ((hostvars.get(me) or {}).get("ansible_facts") or {}).get("sparkfleet_plan") or {}
        parts = components(
            content=content_hash(ROOT),
            ansible_version=str((task_vars.get("ansible_version") or {}).get("full", "")),
            variables=variables,
            plans=plans,
            addresses=addresses,
            controller_files=controller_inputs(
                plain(own_plan),
                variables,
                inventory_dir=str(task_vars.get("inventory_dir") or ""),
                playbook_dir=str(task_vars.get("playbook_dir") or ""),
            ),
        )
        return {"digest": digest(parts), "components": parts}

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        state = args.get("state", "check")
        module_args = {k: args[k] for k in ("state", "stamp", "docker_bin") if k in args}
        if state == "check":
            module_args.update(self._check_args(task_vars), force=bool(args.get("force", False)))
        elif state == "present":
            if not args.get("digest"):
                raise AnsibleActionFail("sparkfleet_converge: state present needs digest (the check's result)")
            managed = args.get("managed")
            if managed is None:
                roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
                managed = [
                    plain(task_vars[f"{r}{MANAGED_SUFFIX}"]) for r in roles if f"{r}{MANAGED_SUFFIX}" in task_vars
                ]
            module_args.update(digest=args["digest"], managed=managed)
        elif state != "absent":
            raise AnsibleActionFail(f"sparkfleet_converge: state must be check, present or absent, not {state!r}")
        out = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
        result.update(out)
        if state == "check" and out.get("converged") and not out.get("failed"):
            # What group_by returns: the strategy adds the host to the group for the plays that follow.
            result["add_group"] = CONVERGED_GROUP
            result["parent_groups"] = ["all"]
        return result
