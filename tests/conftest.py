"""Make the repository importable the way Ansible imports it: as the collection sparkfleet.fleet.

``collections/ansible_collections/sparkfleet/fleet`` is a committed link to the repository root, so with
``collections/`` on ``sys.path`` the module_utils are
``ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.*`` and the modules
``ansible_collections.sparkfleet.fleet.plugins.modules.*``: one name per file, the one Ansible uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT / "collections"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

FIXTURES = ROOT / "tests" / "fixtures"
