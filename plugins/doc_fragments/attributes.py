"""The attributes every sparkfleet.fleet module documents: one text for each, and the support of the read-only ones."""

from __future__ import annotations


class ModuleDocFragment:
    # What each attribute means (every module: extends_documentation_fragment sparkfleet.fleet.attributes).
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and then reports what would change without changing it.
  diff_mode:
    description: Returns details on what changed (or would change in check mode) when run with C(--diff).
  idempotent:
    description: A second run with the same arguments on an unchanged host reports no change.
"""

    # A module that changes nothing on the host: probes, planning and rendering (sparkfleet.fleet.attributes.read_only).
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: It changes nothing, so it runs the same in check mode.
  diff_mode:
    support: none
    details: It changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    details: It changes nothing; C(changed) is always false.
"""

    # A module that returns facts (sparkfleet.fleet.attributes.facts).
    FACTS = r"""
options: {}
attributes:
  facts:
    description: Returns an C(ansible_facts) dictionary that updates the host's facts.
    support: full
"""
