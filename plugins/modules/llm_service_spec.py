#!/usr/bin/python
"""Render the inference services of a host: docker run argv, unit inputs, health gates."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: llm_service_spec
short_description: Validate and render sparkfleet inference services for one host
description:
  - Takes C(llm_serving_services), the host's platform profile, its GPU facts and the preflight plan, and returns,
    for every service to deploy, the C(docker run) argument vector of its systemd unit, the unit's settings,
    the directories and secret names its env file needs and the health endpoints that gate it.
  - Changes nothing on the host. Every problem of the host (bad image reference, port clash with another
    service or another listening process, mem_fraction out of range, unknown engine, NIM without an NGC key, ...)
    is reported at once, each naming the variable and the fix.
author: sparkfleet
options:
  services:
    description: The services (C(llm_serving_services)), schema in docs/development.md.
    type: list
    elements: raw
    required: true
  profile:
    description: Platform profile name (C(ansible_facts.nvidia_gpu.profile), C(none) without a GPU).
    type: str
    default: none
  profiles:
    description: C(sparkfleet_profiles).
    type: dict
    required: true
  gpu_facts:
    description: C(ansible_facts.nvidia_gpu) (C(serving_gpu), C(gpus)); empty when detection did not run.
    type: dict
    default: {}
  plan:
    description: C(ansible_facts.sparkfleet_plan) from preflight; services in its C(skipped) list are not deployed.
    type: dict
    default: {}
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
  ngc_api_key_present:
    description: Whether C(sparkfleet_ngc_api_key) is set (NIM services need it). The key itself never passes here.
    type: bool
    default: false
  hf_token_present:
    description: Whether C(sparkfleet_hf_token) is set (then SGLang and vLLM env files get C(HF_TOKEN)).
    type: bool
    default: false
  settings:
    description: Role-wide settings (cache and env directories, restart policy, timeouts, systemd version, ...).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
"""

EXAMPLES = r"""
- name: Serving | Render the services of this host
  llm_service_spec:
    services: "{{ llm_serving_services }}"
    profile: "{{ ansible_facts['nvidia_gpu']['profile'] | default('none') }}"
    profiles: "{{ sparkfleet_profiles }}"
    gpu_facts: "{{ ansible_facts['nvidia_gpu'] | default({}) }}"
    plan: "{{ ansible_facts['sparkfleet_plan'] | default({}) }}"
  register: __llm_serving_spec
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
images:
  description: Distinct (image, image_archive) pairs of the present services, with the services using each.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sparkfleet.serving import ServingError, Settings, plan_services


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "list", "elements": "raw", "required": True},
            "profile": {"type": "str", "default": "none"},
            "profiles": {"type": "dict", "required": True},
            "gpu_facts": {"type": "dict", "default": {}},
            "plan": {"type": "dict", "default": {}},
            "listening": {"type": "str", "default": ""},
            "own_containers": {"type": "str", "default": ""},
            "ngc_api_key_present": {"type": "bool", "default": False},
            "hf_token_present": {"type": "bool", "default": False},
            "settings": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = plan_services(
            p["services"],
            profile_name=p["profile"],
            profiles=p["profiles"],
            gpu_facts=p["gpu_facts"],
            plan=p["plan"],
            listening=p["listening"],
            own_containers=p["own_containers"],
            settings=Settings.from_mapping(p["settings"]),
            ngc_api_key_present=p["ngc_api_key_present"],
            hf_token_present=p["hf_token_present"],
        )
    except (ServingError, TypeError) as exc:
        module.fail_json(msg=f"llm_serving settings: {exc}")
    errors = result.pop("errors")
    if errors:
        header = f"{len(errors)} problem(s) in llm_serving_services on this host; nothing was changed:"
        module.fail_json(msg="\n- ".join([header, *errors]), errors=errors, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
