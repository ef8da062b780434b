"""Helpers shared by the scenarios' testinfra tests: a lab host by its Molecule name, and waiting for a condition."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import testinfra

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
ROOT = Path(__file__).resolve().parents[2]


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


def chat(host: Any, base_url: str, model: str, content: str, max_tokens: int = 8) -> tuple[int, dict[str, Any]]:
    """A chat completion sent from ``host`` (curl there) to ``base_url``: its HTTP status (0 when none came) and its
    JSON reply ({} when the body is not JSON)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens})
    out = host.run(
        f"curl -s --max-time 30 -o /tmp/labtest-reply -w '%{{http_code}}' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)} {base_url}/v1/chat/completions; echo; cat /tmp/labtest-reply"
    )
    code, _, reply = out.stdout.partition("\n")
    try:
        parsed: dict[str, Any] = json.loads(reply)
    except json.JSONDecodeError:
        parsed = {}
    return int(code or 0), parsed


def playbook(path: str, *args: str, extra_vars: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook`` on the scenario's inventory, as Molecule runs it (the repository is the collection):
    ``path`` relative to the repository, ``args`` after it, ``extra_vars`` last (they win over any ``-e`` in args).
    Output in plain text; the caller asserts on the return code and the output."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_FORCE_VALID_GROUP_NAMES":
           "ignore", "ANSIBLE_INTERPRETER_PYTHON": "/usr/bin/python3", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0"}  # fmt: skip
    cmd = ["ansible-playbook", "-i", INVENTORY, str(ROOT / path), *args]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
