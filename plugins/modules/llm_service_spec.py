#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the inference services of a host: docker run argv, unit inputs, health gates."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: llm_service_spec
short_description: Render the planned inference services of one host into systemd unit inputs
description:
  - Takes the host's plan (C(ansible_facts.sparkfleet_plan), made by the preflight role with the one parser of
    C(llm_serving_services)) and returns, for every service the plan deploys, the C(docker run) argument vector
    of its systemd unit, the unit's settings, the directories and secret names its env file needs and the health
    endpoints that gate it. It never reads C(llm_serving_services) itself.
  - Changes nothing on the host. The only problems it reports are those the host alone can tell (a port that
    another process already listens on), each naming the variable and the fix; messages never carry a
    service's env or a secret.
author: sparkfleet contributors (@sparkfleet)
options:
  plan:
    description: C(ansible_facts.sparkfleet_plan) from the preflight stage.
    type: dict
    required: true
  profiles:
    description: C(sparkfleet_profiles).
    type: dict
    required: true
  listening:
    description: Output of C(ss -ltnH) on the host, to reject ports another process already listens on.
    type: str
    default: ""
  own_containers:
    description: >-
      Output of C(docker ps --filter label=org.sparkfleet.service) with the format
      C({{.Label "org.sparkfleet.service"}}\t{{.Ports}}): a port held by the same service's own container
      is not a clash.
    type: str
    default: ""
  units:
    description: >-
      Paths of sparkfleet's serving units found on the host (C(sparkfleet-*.service) whose C(ExecStart) carries
      the C(org.sparkfleet.service) label); those the plan does not name are returned as RV(orphans).
    type: list
    elements: str
    default: []
  hf_token_present:
    description: Whether C(sparkfleet_hf_token) is set (then SGLang and vLLM env files get C(HF_TOKEN)).
    type: bool
    default: false
  settings:
    description: Role-wide settings (cache and env directories, restart policy, timeouts, systemd version, ...).
    type: dict
    default: {}
  worker_sources:
    description:
      - Who may reach a worker's port (IPv4 addresses or CIDRs), when a gateway with an API key fronts it; unset -
        anyone (serving/exposure.py).
    type: list
    elements: str
  etcd_sources:
    description: Who may reach an etcd's client port (IPv4 addresses or CIDRs); unset - anyone.
    type: list
    elements: str
  host:
    description: The host's name, for the comment of its firewall rules.
    type: str
    default: ""
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Serving | Render the planned services of this host
  sparkfleet.fleet.llm_service_spec:
    plan: "{{ ansible_facts['sparkfleet_plan'] }}"
    profiles: "{{ sparkfleet_profiles }}"
  register: serving_spec
"""

RETURN = r"""
present:
  description: Services to deploy, each with name, engine, image, port, container_port, unit_name, unit_path,
    container_name, env_file, docker_argv (list), docker_run (one shell-quoted line), env, secret_env (names only),
    directories, health_paths, health_timeout_s, stop_timeout_s and unit (ExecStart and restart settings).
  returned: always
  type: list
  elements: dict
absent:
  description: Services with state absent (name, unit_name, unit_path, container_name, env_file).
  returned: always
  type: list
  elements: dict
skipped:
  description: Services the preflight plan skipped, with the reason.
  returned: always
  type: list
  elements: dict
orphans:
  description: >-
    sparkfleet services the host runs from an earlier run that the inventory no longer lists (name, unit_name,
    unit_path, container_name, env_file); reported, and removed when C(llm_serving_remove_orphans) is true.
  returned: always
  type: list
  elements: dict
images:
  description: Distinct (image, image_archive) pairs of the present services, with the services using each.
  returned: always
  type: list
  elements: dict
exposure:
  description: >-
    Per present service - its C(port), where it listens (C(listen)), C(path) (C(docker) - published by Docker,
    C(host) - on the host's network), C(reach) (C(anyone) or C(restricted)), the sources allowed (C(allow)) and why.
  returned: always
  type: list
  elements: dict
firewall:
  description: >-
    The iptables-restore input (C(v4), C(v6)) of sparkfleet's chains that enforces O(worker_sources) and
    O(etcd_sources).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.errors import ServingError
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import Settings, render_plan


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict", "required": True},
            "profiles": {"type": "dict", "required": True},
            "listening": {"type": "str", "default": ""},
            "own_containers": {"type": "str", "default": ""},
            "hf_token_present": {"type": "bool", "default": False},
            "units": {"type": "list", "elements": "str", "default": []},
            "settings": {"type": "dict", "default": {}},
            "worker_sources": {"type": "list", "elements": "str"},
            "etcd_sources": {"type": "list", "elements": "str"},
            "host": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        settings = Settings.from_mapping(p["settings"])
    except ServingError as exc:
        module.fail_json(msg=f"llm_serving settings: {exc}")
    result = render_plan(
        p["plan"],
        profiles=p["profiles"],
        settings=settings,
        listening=p["listening"],
        own_containers=p["own_containers"],
        hf_token_present=p["hf_token_present"],
        units=p["units"],
        worker_sources=p["worker_sources"],
        etcd_sources=p["etcd_sources"],
        host=p["host"],
    )
    errors = result.pop("errors")
    if errors:
        # Only the problems: the rendered services (their env included) stay out of a failure's output.
        header = f"{len(errors)} problem(s) with the planned services of this host; nothing was changed:"
        module.fail_json(msg="\n- ".join([header, *errors]), errors=errors)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
