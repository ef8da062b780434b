#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sparkfleet_converge: the converged-host fast path's stamp on a host (converge.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sparkfleet_converge
short_description: Check, write or remove the stamp of a host's last full converge (the converged-host fast path)
description:
  - The stamp (O(stamp), root, 0600) holds the digest of the desired state the last full, successful converge of
    C(site.yml) made the host, that digest's components (each a sha256, never a value) and the manifest of what the
    run manages - every file (sha256, mode, owner, group), directory, tree, unit (active, enabled), package,
    virtual environment, group membership, image and listing the roles declared.
  - O(state=check) - is the host already exactly what this run would make it? It is when the stamp holds O(digest)
    and the manifest reads the same now (one C(systemctl show), one C(docker image inspect), the files hashed).
    Otherwise the stamp is removed, the desired components are kept beside it (C(<stamp>.pending), 0600) and C(msg)
    says in one line why the host takes the full path. O(force=true) always takes the full path.
  - O(state=present) - at the end of a full, successful run, reads the manifest of O(managed) and writes the stamp
    from the components the check of the same run left (a check of another run, or none, writes nothing).
  - O(state=absent) - removes the stamp and the pending components (teardown, rollback), so that the next
    run takes the full path.
  - The stamp is the run's own bookkeeping, not a change to the host, so C(changed) is always false. In check mode
    nothing is written or removed.
  - Playbooks run it through the action plugin of the same name, which computes O(digest) and O(components) on the
    controller for O(state=check) (the collection's content, every variable the roles declare in their argument
    specs and their own variables as this host sees them, the plans and addresses of the play's hosts, the
    controller files the run reads, Ansible's version) and adds a converged host to the group
    C(sparkfleet_converged); for O(state=present) it gathers O(managed) from the host's C(<role>_managed)
    variables (each converge role sets its own) when the task does not give it.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  state:
    description: What to do with the stamp.
    type: str
    choices: [check, present, absent]
    default: check
  digest:
    description: The digest of the desired state (O(state=check), O(state=present)); the action plugin computes it.
    type: str
    default: ""
  components:
    description:
      - The digest's components, name -> sha256 (O(state=check)); the action plugin computes them.
      - Names only ever appear in C(msg); the hashes are kept out of every log.
    type: dict
    default: {}
  force:
    description: Take the full path whatever the stamp says (C(sparkfleet_full_converge)).
    type: bool
    default: false
  managed:
    description:
      - What the run manages (O(state=present)), a dict of kinds, each a list (C(groups) a dict of group to users) -
        C(files), C(dirs), C(trees) (paths, or C({path, hash}) to hash every file below), C(units), C(packages),
        C(venvs), C(groups), C(images), C(listings) (globs).
      - A list of such dicts is merged.
    type: raw
    default: {}
  stamp:
    description: Where the stamp is (C(sparkfleet_paths_converge_stamp)).
    type: path
    default: /var/lib/sparkfleet/converged.json
  docker_bin:
    description: The docker CLI (the manifest's images).
    type: path
    default: /usr/bin/docker
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the stamp is read and compared, never written or removed.
  diff_mode:
    support: none
    details: The stamp is bookkeeping; C(msg) says why a host is not converged.
  idempotent:
    support: full
    details: C(changed) is always false.
"""

EXAMPLES = r"""
- name: Converged | Compare the desired state with the host's stamp and manifest
  sparkfleet.fleet.sparkfleet_converge:
    state: check
    force: "{{ sparkfleet_full_converge | default(false) | bool }}"
  register: sparkfleet_converge

- name: Converged | Record the converge
  sparkfleet.fleet.sparkfleet_converge:
    state: present
    digest: "{{ sparkfleet_converge.digest }}"

- name: Teardown | Forget the stamp
  sparkfleet.fleet.sparkfleet_converge:
    state: absent
"""

RETURN = r"""
converged:
  description: The host is what this run would make it (O(state=check)).
  returned: O(state=check)
  type: bool
digest:
  description: The digest of the desired state (O(state=check)).
  returned: O(state=check)
  type: str
drift:
  description: What differs between the stamp's manifest and the host now, one phrase each (O(state=check)).
  returned: O(state=check)
  type: list
  elements: str
written:
  description: The stamp was written (O(state=present)).
  returned: O(state=present)
  type: bool
removed:
  description: A stamp was removed (O(state=absent)).
  returned: O(state=absent)
  type: bool
msg:
  description: One line - converged, or why the host takes the full path; or what was written or removed.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.converge import ConvergeError, run_module
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.paths import CONVERGE_STAMP, DOCKER_BIN


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["check", "present", "absent"], "default": "check"},
            "digest": {"type": "str", "default": ""},
            "components": {"type": "dict", "default": {}, "no_log": True},
            "force": {"type": "bool", "default": False},
            "managed": {"type": "raw", "default": {}},
            "stamp": {"type": "path", "default": CONVERGE_STAMP},
            "docker_bin": {"type": "path", "default": DOCKER_BIN},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run_module(module.params, module.check_mode))
    except ConvergeError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
