#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module docker_daemon_json: merge keys into Docker's daemon.json."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_daemon_json
short_description: Merge or remove keys in Docker's daemon.json without dropping keys owned by others
description:
  - Reads the JSON object in O(path), merges the keys in O(settings) into it (O(state=present)) or removes
    them (O(state=absent)), and writes the file back only when the object changed.
  - Keys not named in O(settings), such as the C(nvidia) runtime written by C(nvidia-ctk), are never dropped.
    Objects are merged key by key (C(runtimes), C(log-opts)); any other value replaces the old one.
  - An existing file keeps its mode and owner; a new one gets O(mode).
  - A file that is not a JSON object is an error and is left untouched.
  - With O(dockerd_command_line), keys that dockerd already receives as command-line flags (DGX OS sets
    some in C(/etc/systemd/system/docker.service.d/docker-override.conf)) are handled per O(on_conflict),
    because dockerd refuses to start when an option is given both ways.
  - Does not restart Docker; notify a handler on change.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  path:
    description: The daemon.json file.
    type: path
    default: /etc/docker/daemon.json
  settings:
    description:
      - Keys to merge (O(state=present)) or remove (O(state=absent)).
      - "For O(state=absent), a non-empty object value names keys inside that object
        (C({\"runtimes\": {\"nvidia\": null}}) removes only C(runtimes.nvidia)); any other value removes the key."
    type: dict
    required: true
  state:
    description: Whether the keys in O(settings) are present or absent.
    type: str
    choices: [present, absent]
    default: present
  dockerd_command_line:
    description:
      - How dockerd is started, to find keys also given as flags. Either C(ExecStart=) lines or the output of
        C(systemctl show docker.service --property=ExecStart).
      - Empty skips the check.
    type: str
    default: ""
  on_conflict:
    description:
      - What to do with a key of O(settings) that dockerd also gets as a flag.
      - V(drop) leaves the key out of the file and warns; V(fail) fails before anything changes;
        V(ignore) writes it anyway (dockerd will then refuse to start).
    type: str
    choices: [drop, fail, ignore]
    default: drop
  validate:
    description:
      - Command run on the new content before it replaces O(path); C(%s) is the temporary file
        (for example V(dockerd --validate --config-file %s) on Docker 23 or newer).
    type: str
  backup:
    description: Keep a timestamped copy of the old file when it changes.
    type: bool
    default: false
  mode:
    description: Mode of a newly created file (an existing file keeps its mode).
    type: str
    default: "0644"
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
notes:
  - Top-level key order of the existing file is kept; new keys are appended.
"""

EXAMPLES = r"""
- name: Docker | Set log rotation without touching other keys
  sparkfleet.fleet.docker_daemon_json:
    settings:
      log-driver: json-file
      log-opts:
        max-size: 50m
        max-file: "3"
    dockerd_command_line: "{{ docker_execstart.stdout }}"
  notify: docker_host restart docker

- name: Docker | Add the nvidia runtime
  sparkfleet.fleet.docker_daemon_json:
    settings:
      runtimes:
        nvidia:
          path: nvidia-container-runtime
          args: []

- name: Docker | Remove only the nvidia runtime
  sparkfleet.fleet.docker_daemon_json:
    state: absent
    settings:
      runtimes:
        nvidia: null
"""

RETURN = r"""
path:
  description: The file.
  returned: always
  type: str
config:
  description: The JSON object in the file after the change (or as it would be, in check mode).
  returned: always
  type: dict
dropped_keys:
  description: Keys of O(settings) left out because dockerd already gets them as flags.
  returned: always
  type: list
  elements: str
conflicting_keys:
  description: Keys already in the file, not given in O(settings), that dockerd also gets as flags.
  returned: always
  type: list
  elements: str
backup_file:
  description: The copy of the old file.
  returned: changed and O(backup=true)
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.daemon_json import DaemonJsonError, run_module
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.paths import DOCKER_DAEMON_JSON


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": DOCKER_DAEMON_JSON},
            "settings": {"type": "dict", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "dockerd_command_line": {"type": "str", "default": ""},
            "on_conflict": {"type": "str", "choices": ["drop", "fail", "ignore"], "default": "drop"},
            "validate": {"type": "str"},
            "backup": {"type": "bool", "default": False},
            "mode": {"type": "str", "default": "0644"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run_module(module))
    except (DaemonJsonError, OSError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
