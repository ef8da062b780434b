#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-file sha256 manifest of a model directory, and what a destination lacks against a source's manifest."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_stage_manifest
short_description: Checksum a model directory and list the files a destination lacks
description:
  - >-
    Without C(expected): walks C(path) and returns its manifest (size and sha256 of every file, links kept as
    links, C(layout) C(hub) when it holds C(snapshots/)). Run on the controller or a seed host for the source.
  - >-
    Every link is resolved inside C(path) as the kernel would (links on the way followed); the module fails, naming
    the link and the fix and writing nothing, when one is absolute, climbs out with C(..), passes through such a
    link, loops, ends on nothing or ends in what is not staged.
  - >-
    With C(expected) (a source manifest): compares the files of C(path) under C(prefix) against it and returns the
    files to transfer (missing, of another size such as a partial copy, or with another sha256) and the links to
    make. Run on the destination host. Fails, before hashing anything, when a link of C(path) stands where staging
    writes (C(path) itself, a directory on the way to a file or a link, a file, C(refs/main) of a plain directory).
  - >-
    A file whose size and mtime match its entry in C(manifest_file) keeps the recorded sha256 (C(verify=quick)),
    so a rerun of a staged model hashes nothing. C(manifest=record) writes the manifest of the matching files
    (changed when its content differs); C(manifest=cache) writes it without reporting a change (a source's cache).
author: sparkfleet contributors (@sparkfleet)
options:
  path:
    description: The model directory (a plain directory of files, or a C(models--org--name) hub cache directory).
    type: path
    required: true
  expected:
    description: The source's manifest (C(files) and C(links) of this module's result without C(expected)).
    type: dict
  prefix:
    description: Where the source's paths land under C(path) (C(snapshots/<revision>) for a plain directory).
    type: str
    default: ""
  manifest_file:
    description: The manifest read as a cache and written by C(manifest=cache) or C(record).
    type: path
  manifest:
    description: C(read) only reads C(manifest_file); C(cache) writes it silently; C(record) writes it as a change.
    type: str
    choices: [read, cache, record]
    default: read
  verify:
    description: C(quick) trusts recorded sha256s of files whose size and mtime match; C(full) hashes every file.
    type: str
    choices: [quick, full]
    default: quick
  repo:
    description: The Hub repo id, recorded in the manifest and named in a failure.
    type: str
    default: ""
  revision:
    description: The snapshot name, recorded in the manifest.
    type: str
    default: ""
  fail_on_mismatch:
    description: Fail when files still differ from C(expected) (after a transfer; never in check mode).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
"""

EXAMPLES = r"""
- name: Model stage | Checksum the model on the controller
  sparkfleet.fleet.model_stage_manifest:
    path: /srv/models/Qwen3-8B
    manifest_file: ~/.cache/sparkfleet/model-stage/models--Qwen--Qwen3-8B.json
    manifest: cache
  delegate_to: localhost
  register: source

- name: Model stage | List what this host lacks
  sparkfleet.fleet.model_stage_manifest:
    path: /var/lib/sparkfleet/huggingface/hub/models--Qwen--Qwen3-8B
    expected: "{{ source }}"
    prefix: snapshots/sparkfleet-staged
"""

RETURN = r"""
exists:
  description: Whether C(path) is a directory.
  returned: always
  type: bool
layout:
  description: C(hub) (a models--org--name directory with snapshots/) or C(files) (a plain directory).
  returned: always
  type: str
files:
  description: Path relative to C(path) -> size and sha256 (with C(expected), only the files that match).
  returned: always
  type: dict
links:
  description: Path relative to C(path) -> link target (relative, inside the directory).
  returned: always
  type: dict
transfer:
  description: Files to transfer, each with C(path) (destination), C(src) (source path), C(size) and C(reason).
  returned: always
  type: list
  elements: dict
links_missing:
  description: Links to make, each with C(path) and C(target).
  returned: always
  type: list
  elements: dict
dirs:
  description: Directories (relative to C(path)) the transfers and links need.
  returned: always
  type: list
  elements: str
bytes_total:
  description: Size of the model.
  returned: always
  type: int
bytes_transfer:
  description: Size of the files to transfer.
  returned: always
  type: int
hashed_bytes:
  description: Bytes hashed in this run (0 when every recorded checksum could be reused).
  returned: always
  type: int
manifest_file:
  description: The manifest's path.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.stage.manifest import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "expected": {"type": "dict"},
            "prefix": {"type": "str", "default": ""},
            "manifest_file": {"type": "path"},
            "manifest": {"type": "str", "choices": ["read", "cache", "record"], "default": "read"},
            "verify": {"type": "str", "choices": ["quick", "full"], "default": "quick"},
            "repo": {"type": "str", "default": ""},
            "revision": {"type": "str", "default": ""},
            "fail_on_mismatch": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
