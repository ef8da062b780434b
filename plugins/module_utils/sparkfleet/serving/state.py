"""Everything the serving role reads from a host, in one round trip (module llm_service_state).

Before, a no-op rerun paid one SSH round trip for each of: listening ports, sparkfleet containers' ports, the
systemd version, the unit scan, and per service a stat and two check-mode templates (unit, env file), the env file
directory and a systemd query. This reads all of it at once; the role compares the host's files with what it
would write (rendered on the controller) and writes, or restarts, only what differs.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..contracts import SERVICE_LABEL, read_owned_file, unit_own_name, unit_service_name
from ..files import owner_group
from ..gpu import Runner, subprocess_runner
from .render import Settings, names_of


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
    owner, group = owner_group(st)
    return {
        "exists": True,
        "isdir": stat.S_ISDIR(st.st_mode),
        "checksum": checksum,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "owner": owner,
        "group": group,
    }


def own_units(unit_dir: str) -> list[str]:
    """Paths of the sparkfleet-<name>.service units that carry sparkfleet's ownership marker for <name>
    (contracts.read_owned_marker): a unit that only looks like one (its name, its label) is not sparkfleet's."""
    out: list[str] = []
    try:
        names = sorted(os.listdir(unit_dir))
    except OSError:
        return out
    for name in names:
        service = unit_service_name(name)
        if service and read_owned_file(str(Path(unit_dir) / name), service) is not None:
            out.append(str(Path(unit_dir) / name))
    return out


def own_env_files(env_dir: str) -> list[str]:
    """Paths of the <name>.env files of env_dir that carry sparkfleet's marker for <name>."""
    try:
        names = sorted(os.listdir(env_dir))
    except OSError:
        return []
    found = [(str(Path(env_dir) / n), n[: -len(".env")]) for n in names if n.endswith(".env")]
    return [path for path, service in found if read_owned_file(path, service) is not None]


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
    plan: dict[str, Any],
    unit_dir: str,
    env_dir: str,
    docker_bin: str,
    run: Runner | None = None,
    *,
    paths: Sequence[str] = (),
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
    for path in paths:  # sparkfleet's own units (the firewall's): owned when they carry its marker for their name
        files[path] = {**file_state(path), "owned": read_owned_file(path, unit_own_name(path)) is not None}
    units: list[str] = []
    found = own_units(unit_dir)
    planned = [str(svc["name"]) for svc in plan.get("services") or [] if isinstance(svc, dict) and svc.get("name")]
    # The planned services and the orphans (sparkfleet's units the plan does not name: absent.yml may remove them).
    for name in dict.fromkeys([*planned, *(unit_service_name(u) for u in found)]):
        own = names_of(name, settings)
        # owned: the file carries sparkfleet's marker for this service (absent.yml removes only such files).
        for path in (own["unit_path"], own["env_file"]):
            files.setdefault(path, {**file_state(path), "owned": read_owned_file(path, name) is not None})
        if name in planned:
            units.append(own["unit_name"])
    return {
        "listening": listening,
        "own_containers": containers,
        "systemd_version": systemd_version(version),
        "units": found,
        "env_files": own_env_files(env_dir),
        "files": files,
        "unit_states": unit_states(units, run),
        "problems": problems,
    }
