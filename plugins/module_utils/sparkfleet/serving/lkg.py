"""Last-known-good: keep exactly what a service runs before a change, and put exactly that back (llm_service_lkg).

What is kept is read from the host, never from the new render: the kept unit and env file byte for byte, the image
reference the running container was started with and the image ID it runs (``docker inspect``), and the address
and health paths that version answers on (the ownership marker its own unit carries, contracts.owned_marker). A
version is kept only when it answers there now (a few probes, apart): a broken service is not "known good".

Restoring puts back the kept unit and env file, makes the kept reference name the kept image ID again when it no
longer does (only the kept reference: the new release's reference is never pointed at the old image, so a later
run finds the new tag as the registry or archive left it), clears a failed state, restarts, and returns the kept
version's address and health paths for the caller's health gate.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..contracts import read_owned_marker
from ..gpu import Runner, subprocess_runner
from .health import probe_once

Probe = Callable[[str, Sequence[str]], dict[str, Any]]

KEPT_UNIT = "unit"
KEPT_ENV = "env"
KEPT_IMAGE = "image.json"
# Probes of the running version before it is kept: it must answer at least once in this many tries.
SAVE_PROBES = 3
SAVE_PROBE_PAUSE_S = 2.0
_MAX_READ = 1 << 20


class LkgError(Exception):
    """The last-known-good files cannot be read or written: the message names the path and the fix."""


def _read(path: str) -> bytes:
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise LkgError(f"{path} is not a regular file: remove it, it was not written by sparkfleet")
    if st.st_size > _MAX_READ:
        raise LkgError(f"{path} is larger than {_MAX_READ} bytes: it was not written by sparkfleet")
    with open(path, "rb") as fh:
        return fh.read()


def _write(path: str, data: bytes, mode: int) -> None:
    """Write atomically (a temporary file in the same directory, then rename), owned by root, never through a link."""
    tmp = f"{path}.sparkfleet-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _kept_dir(lkg_dir: str, name: str) -> Path:
    return Path(lkg_dir) / name


def running_image(container: str, docker_bin: str, run: Runner) -> tuple[str, str]:
    """(reference the container was started with, image ID it runs); ("", "") when no such container."""
    rc, out, _err = run([docker_bin, "inspect", "--type", "container", "--format", "{{.Config.Image}}\t{{.Image}}",
                         container])  # fmt: skip
    if rc != 0 or "\t" not in out:
        return "", ""
    ref, image_id = out.strip().split("\t", 1)
    return ref.strip(), image_id.strip()


def probe_running(url: str, paths: Sequence[str], probe: Probe, sleep: Callable[[float], None]) -> dict[str, Any]:
    """Probe up to SAVE_PROBES times, SAVE_PROBE_PAUSE_S apart; the last result (healthy as soon as one is)."""
    result: dict[str, Any] = {"healthy": False, "probes": []}
    for attempt in range(SAVE_PROBES):
        result = probe(url, paths)
        if result.get("healthy"):
            return result
        if attempt + 1 < SAVE_PROBES:
            sleep(SAVE_PROBE_PAUSE_S)
    return result


def save(
    *,
    name: str,
    unit_path: str,
    env_file: str,
    container: str,
    lkg_dir: str,
    docker_bin: str,
    fallback_url: str,
    fallback_paths: Sequence[str],
    run: Runner,
    probe: Probe | None = None,
    sleep: Callable[[float], None] = time.sleep,
    check_mode: bool = False,
) -> dict[str, Any]:
    """Keep the running version of ``name``. Returns {changed, saved, reason, image, image_id, probe_url,
    health_paths}. ``fallback_*``: the address to probe when the running unit predates the marker's address."""
    probe = probe or probe_once
    out: dict[str, Any] = {"changed": False, "saved": False, "image": "", "image_id": "", "probe_url": "",
                           "health_paths": []}  # fmt: skip
    try:
        unit = _read(unit_path)
    except FileNotFoundError:
        return {**out, "reason": "no unit yet: a first deploy has no earlier version to keep"}
    except OSError as exc:
        raise LkgError(f"cannot read {unit_path}: {exc.strerror}") from None
    marker = read_owned_marker(unit.decode("utf-8", "replace"), name)
    if marker is None:
        return {**out, "reason": f"{unit_path} does not carry sparkfleet's marker for {name}: not kept"}
    url = str(marker.get("probe_url") or fallback_url)
    paths = [str(p) for p in marker.get("health_paths") or fallback_paths]
    out.update(probe_url=url, health_paths=paths)
    health = probe_running(url, paths, probe, sleep)
    if not health.get("healthy"):
        last = (health.get("probes") or [{}])[-1]
        return {**out, "reason": f"the running version does not answer at {url}{last.get('path', '')} "
                                 f"({last.get('status') or 'no answer'}): a broken version is not kept"}  # fmt: skip
    ref, image_id = running_image(container, docker_bin, run)
    if not image_id:
        return {**out, "reason": f"no container {container} runs: nothing to keep"}
    out.update(image=ref, image_id=image_id)
    if check_mode:
        return {**out, "changed": True, "saved": True, "reason": "would keep the running version"}
    try:
        env = _read(env_file)
    except FileNotFoundError:
        env = b""
    except OSError as exc:
        raise LkgError(f"cannot read {env_file}: {exc.strerror}") from None
    kept = _kept_dir(lkg_dir, name)
    try:
        os.makedirs(lkg_dir, mode=0o700, exist_ok=True)
        os.makedirs(kept, mode=0o700, exist_ok=True)
        os.chmod(kept, 0o700)
        _write(str(kept / KEPT_UNIT), unit, 0o644)
        _write(str(kept / KEPT_ENV), env, 0o600)
        record = {"service": name, "image": ref, "image_id": image_id, "probe_url": url, "health_paths": paths}
        _write(str(kept / KEPT_IMAGE), (json.dumps(record, indent=2, sort_keys=True) + "\n").encode(), 0o600)
    except OSError as exc:
        raise LkgError(f"cannot keep the last-known-good version under {kept}: {exc.strerror}") from None
    return {**out, "changed": True, "saved": True, "reason": f"kept {ref} ({image_id[:19]})"}


def read_kept(lkg_dir: str, name: str) -> dict[str, Any] | None:
    """The kept record of ``name`` (its image.json), or None when nothing is kept."""
    path = _kept_dir(lkg_dir, name) / KEPT_IMAGE
    try:
        data = json.loads(_read(str(path)))
    except (OSError, ValueError, LkgError):
        return None
    if not isinstance(data, dict) or data.get("service") != name:
        return None
    return data


def restore(
    *,
    name: str,
    unit_path: str,
    unit_name: str,
    env_file: str,
    lkg_dir: str,
    docker_bin: str,
    run: Runner,
    check_mode: bool = False,
) -> dict[str, Any]:
    """Put back the kept version of ``name`` and restart it; a service with nothing kept is stopped and disabled.

    Returns {changed, restored, stopped, retagged, image, image_id, probe_url, health_paths, msg}."""
    out: dict[str, Any] = {"changed": True, "restored": False, "stopped": False, "retagged": False, "image": "",
                           "image_id": "", "probe_url": "", "health_paths": []}  # fmt: skip
    kept = read_kept(lkg_dir, name)
    if kept is None:
        if not check_mode:
            run(["systemctl", "disable", "--now", unit_name])
        return {**out, "stopped": True, "msg": "no healthy earlier version was kept: the unit is stopped and disabled"}
    out.update({k: kept.get(k) for k in ("image", "image_id", "probe_url", "health_paths")})
    if check_mode:
        return {**out, "restored": True, "msg": f"would restore {kept['image']}"}
    base = _kept_dir(lkg_dir, name)
    try:
        _write(unit_path, _read(str(base / KEPT_UNIT)), 0o644)
        _write(env_file, _read(str(base / KEPT_ENV)), 0o600)
    except (OSError, LkgError) as exc:
        raise LkgError(f"cannot restore {name} from {base}: {exc}") from None
    ref, image_id = str(kept.get("image") or ""), str(kept.get("image_id") or "")
    rc, now_id, _err = run([docker_bin, "image", "inspect", "--format", "{{.Id}}", ref])
    if ref and image_id and (rc != 0 or now_id.strip() != image_id):
        # The kept reference moved (a pull or a load of the same tag): it names the kept image again.
        rc, _o, err = run([docker_bin, "tag", image_id, ref])
        if rc != 0:
            raise LkgError(f"the kept image {image_id} of {name} is gone ({err.strip()}): cannot roll back to {ref}")
        out["retagged"] = True
    for argv in (["systemctl", "daemon-reload"], ["systemctl", "reset-failed", unit_name],
                 ["systemctl", "enable", unit_name], ["systemctl", "restart", unit_name]):  # fmt: skip
        rc, _o, err = run(argv)
        if rc != 0 and argv[1] != "reset-failed":
            raise LkgError(f"{' '.join(argv)} failed (rc {rc}): {err.strip()}")
    return {**out, "restored": True, "msg": f"restored {ref} ({image_id[:19]}) and restarted {unit_name}"}


def forget(lkg_dir: str, name: str, check_mode: bool = False) -> bool:
    """Remove the kept files of a service that goes away; True when there were any."""
    base = _kept_dir(lkg_dir, name)
    if not base.is_dir() or base.is_symlink():
        return False
    if not check_mode:
        shutil.rmtree(base)  # unlinks a link inside, never follows one
    return True


def run_module(params: dict[str, Any], check_mode: bool, run: Runner | None = None) -> dict[str, Any]:
    """The module's whole work, from its parameters (plugins/modules/llm_service_lkg.py)."""
    run = run or subprocess_runner(120)
    name = str(params["name"])
    blank = {"saved": False, "restored": False, "stopped": False, "retagged": False, "image": "", "image_id": "",
             "probe_url": "", "health_paths": [], "reason": "", "msg": ""}  # fmt: skip
    if params["action"] == "save":
        result = save(name=name, unit_path=params["unit_path"], env_file=params["env_file"],
                      container=params["container"], lkg_dir=params["lkg_dir"], docker_bin=params["docker_bin"],
                      fallback_url=params["fallback_url"], fallback_paths=params["fallback_paths"], run=run,
                      check_mode=check_mode)  # fmt: skip
        return {**blank, **result, "msg": result["reason"]}
    if params["action"] == "restore":
        result = restore(name=name, unit_path=params["unit_path"], unit_name=params["unit_name"],
                         env_file=params["env_file"], lkg_dir=params["lkg_dir"], docker_bin=params["docker_bin"],
                         run=run, check_mode=check_mode)  # fmt: skip
        return {**blank, **result}
    gone = forget(params["lkg_dir"], name, check_mode)
    return {**blank, "changed": gone, "msg": f"removed the kept version of {name}" if gone else "nothing kept"}
