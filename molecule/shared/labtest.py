"""Helpers shared by the scenarios' testinfra tests: a lab host by its Molecule name, and waiting for a condition."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import testinfra

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")


def lab_host(name: str) -> Any:
    """The scenario's host ``name``, reached the way Molecule reaches it (its inventory)."""
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def wait_until(cond: Callable[[], bool], timeout: float, step: float) -> bool:
    """Poll ``cond`` every ``step`` seconds until it holds (True) or ``timeout`` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False
