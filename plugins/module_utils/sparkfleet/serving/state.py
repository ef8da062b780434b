"""Everything the serving role reads from a host, in one round trip (module llm_service_state).

Before, a no-op rerun paid one SSH round trip for each of: listening ports, sparkfleet containers' ports, the
systemd version, the unit scan, and per service a stat and two check-mode templates (unit, env file), the env file
directory and a systemd query. This reads all of it at once; the role compares the host's files with what it
would write (rendered on the controller) and writes, or restarts, only what differs.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..contracts import SERVICE_LABEL, unit_service_name
from ..gpu import Runner, subprocess_runner
from .render import Settings, names_of

# A sparkfleet service unit: its ExecStart runs a container carrying the service label (roles/llm_serving).
_OWN_UNIT = re.compile(r"^ExecStart=.*--label " + re.escape(SERVICE_LABEL) + "=", re.MULTILINE)


def file_state(path: str) -> dict[str, Any]:
    """exists, isdir, sha1 of a regular file's content, mode ("0644"), owner and group names."""
    try:
        st = os.stat(path)
    except OSError:
        return {"exists": False, "isdir": False, "checksum": "", "mode": "", "owner": "", "group": ""}
    checksum = ""
    if stat.S_ISREG(st.st_mode):
        h = hashlib.sha1()  # noqa: S324 - the checksum Ansible's copy and template modules compare
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                h.update(block)
        checksum = h.hexdigest()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {
        "exists": True,
        "isdir": stat.S_ISDIR(st.st_mode),
        "checksum": checksum,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "owner": owner,
        "group": group,
    }


def own_units(unit_dir: str) -> list[str]:
    """Paths of sparkfleet-*.service units whose ExecStart carries the service label (as the role's find did)."""
    out: list[str] = []
    try:
        names = sorted(os.listdir(unit_dir))
    except OSError:
        return out
    for name in names:
        if not unit_service_name(name):
            continue
        path = Path(unit_dir) / name
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _OWN_UNIT.search(text):
            out.append(str(path))
    return out


def unit_states(units: Sequence[str], run: Runner) -> dict[str, dict[str, bool]]:
    """Per unit: active and enabled, from one systemctl call."""
    if not units:
        return {}
    rc, out, _err = run(["systemctl", "show", "--property=Id,ActiveState,UnitFileState", "--", *units])
    states: dict[str, dict[str, bool]] = {u: {"active": False, "enabled": False} for u in units}
    if rc != 0:
        return states
    # systemctl show prints one block per unit, in the order asked, separated by blank lines.
    blocks = out.strip().split("\n\n")
    for i, unit in enumerate(units):
        block = blocks[i] if i < len(blocks) else ""
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[unit] = {
            "active": props.get("ActiveState") == "active",
            "enabled": props.get("UnitFileState") == "enabled",
        }
    return states


def systemd_version(text: str) -> int:
    """The number in `systemctl --version`'s first line ("systemd 252 (252.36-1~deb12u1)"); 0 when unreadable."""
    first = text.splitlines()[0].split() if text.strip() else []
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else 0


def read_state(
    plan: dict[str, Any], unit_dir: str, env_dir: str, docker_bin: str, run: Runner | None = None
) -> dict[str, Any]:
    """Everything llm_serving reads before it renders and writes, for the host's planned services."""
    run = run or subprocess_runner(60)
    problems: list[str] = []
    rc, listening, err = run(["ss", "-ltnH"])
    if rc != 0:
        problems.append(f"ss -ltnH failed (rc {rc}): {err.strip()}")
    fmt = '{{.Label "' + SERVICE_LABEL + '"}}\t{{.Ports}}'
    rc, containers, err = run([docker_bin, "ps", "--filter", f"label={SERVICE_LABEL}", "--format", fmt])
    if rc != 0:
        problems.append(f"{docker_bin} ps failed (rc {rc}): {err.strip()}")
    rc, version, err = run(["systemctl", "--version"])
    if rc != 0:
        problems.append(f"systemctl --version failed (rc {rc}): {err.strip()}")
    settings = Settings(unit_dir=unit_dir, env_dir=env_dir)
    files: dict[str, dict[str, Any]] = {env_dir: file_state(env_dir)}
    units: list[str] = []
    for svc in plan.get("services") or []:
        if not isinstance(svc, dict) or not svc.get("name"):
            continue
        own = names_of(str(svc["name"]), settings)
        files[own["unit_path"]] = file_state(own["unit_path"])
        files[own["env_file"]] = file_state(own["env_file"])
        units.append(own["unit_name"])
    return {
        "listening": listening,
        "own_containers": containers,
        "systemd_version": systemd_version(version),
        "units": own_units(unit_dir),
        "files": files,
        "unit_states": unit_states(units, run),
        "problems": problems,
    }
