"""promtool for the metrics tests: Debian bookworm's, unpacked by lab/debs.py into .cache/promtool (no root).

It skips only when promtool cannot be got at all, and fails instead under SPARKFLEET_REQUIRE_PROMTOOL=1
(.ci/run sets it: CI must run these tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab import debs


def promtool_path() -> Path:
    """The path of promtool, or the test is skipped (failed under SPARKFLEET_REQUIRE_PROMTOOL=1)."""
    explicit = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if explicit:
        return Path(explicit)
    try:
        return debs.promtool()
    except (debs.DebError, subprocess.CalledProcessError, StopIteration) as exc:
        if os.environ.get("SPARKFLEET_REQUIRE_PROMTOOL") == "1":
            pytest.fail(f"promtool is required here (SPARKFLEET_REQUIRE_PROMTOOL=1) and cannot be got: {exc}")
        pytest.skip(f"promtool cannot be got on this machine ({exc}): install Debian's prometheus or set PROMTOOL")
