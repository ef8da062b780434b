#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find a `docker save` archive on the controller and read the image ID it holds."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: llm_service_archive
short_description: Resolve a docker save archive and read its image ID
description:
  - >-
    Runs on the controller (C(delegate_to: localhost)). Resolves C(path) (absolute, or relative to the first of
    C(search_dirs) that holds it), reads C(manifest.json) from the archive and returns the ID of the image that
    carries C(image)'s tag, so the role copies and loads the archive only when the host lacks that image ID.
  - Reads only; never changes anything.
author: sparkfleet contributors (@sparkfleet)
options:
  path:
    description: The archive (C(image_archive) of a service).
    type: path
    required: true
  image:
    description: The image reference the archive must hold (its C(RepoTags)).
    type: str
    required: true
  search_dirs:
    description: Directories a relative C(path) is tried against, in order.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
"""

EXAMPLES = r"""
- name: Serving | Read the image ID of the archive
  sparkfleet.fleet.llm_service_archive:
    path: lab/.state/images/llm-standin.tar
    image: sparkfleet-lab/llm-standin:llama.cpp
    search_dirs: ["{{ inventory_dir }}/../..", "{{ playbook_dir }}/.."]
  delegate_to: localhost
  become: false
"""

RETURN = r"""
path:
  description: The resolved absolute path of the archive.
  returned: success
  type: str
image_id:
  description: The image ID (sha256 of its config) that C(docker image inspect) shows once loaded.
  returned: success
  type: str
  sample: sha256:0084344e41510f405dd661b6810935a9726f10271a9a3fe96b386c1d407ea280
tags:
  description: The tags the archive restores on load.
  returned: success
  type: list
  elements: str
size_bytes:
  description: Size of the archive.
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.archive import archive_for_image
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.errors import ServingError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "image": {"type": "str", "required": True},
            "search_dirs": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    try:
        info = archive_for_image(module.params["path"], module.params["search_dirs"], module.params["image"])
    except ServingError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
