"""The converged-host fast path: is a host already exactly what this run would make it? (docs/development.md)

A full converge of ``site.yml`` that ends well writes a **stamp** on the host (``paths.CONVERGE_STAMP``, root,
0600): the digest of the desired state it converged to, that digest's components (each a sha256: a secret's value
never reaches the stamp) and the **manifest**, the state of everything the run manages, read on the host at the
end of the run:

============  ====================================================================================================
kind          recorded per entry
============  ====================================================================================================
files         type (file, dir, link, absent), sha256 of a file's content, mode, owner, group
dirs          type, mode, owner, group
trees         a digest of every entry below a directory (relative path, type, size, mtime, mode, owner, group,
              link target; with ``hash``: every file's sha256 too) and how many entries
units         ActiveState and UnitFileState (``systemctl show``)
packages      dpkg's status and version
venvs         the distributions a virtual environment holds (``name==version``, from its ``*.dist-info``)
groups        for each user the run put in a group: whether the user is in it
images        the image ID a reference names (``docker image inspect``)
listings      the names a glob matches (sparkfleet's own units: an orphan appearing is a difference)
============  ====================================================================================================

The next run computes the digest on the controller (the action plugin ``sparkfleet_converge``, ``state: check``)
and asks the host, one module call: a host whose stamp holds that digest and whose manifest reads the same now is
converged, and the converge stages skip it. Anything else (no stamp, another digest, any difference, a forced full
run) removes the stamp, keeps the desired components beside it (``<stamp>.pending``, 0600) and takes the full
path, with one line saying why. ``state: present`` at the end of a full, successful run turns the pending
components and the manifest into the stamp; ``state: absent`` (teardown, rollback) removes both.

Standard library only: the host side runs in the module, the controller side (the digest) in the action plugin.
"""

from __future__ import annotations

import fnmatch
import grp
import hashlib
import json
import os
import pwd
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .files import owner_group, write_atomic
from .gpu import Runner, subprocess_runner
from .paths import CONVERGE_STAMP, DOCKER_BIN

SCHEMA = "sparkfleet.converge/v1"
PENDING_SUFFIX = ".pending"
KINDS = ("files", "dirs", "trees", "units", "packages", "venvs", "groups", "images", "listings")
# The group a converged host joins for the plays that follow (the converge stages leave it out), and the host
# variables in which each converge role says what it manages.
CONVERGED_GROUP = "sparkfleet_converged"
MANAGED_SUFFIX = "_managed"
# How many differences one line names before "and N more".
WHY_NAMES = 4
DPKG_STATUS = "/var/lib/dpkg/status"


class ConvergeError(Exception):
    """A stamp or manifest that cannot be read or written: the message says which and why."""


# ------------------------------------------------------------------------------------------------ controller side


def canonical(value: Any) -> bytes:
    """One byte string per value: JSON with sorted keys (anything JSON cannot hold as its str())."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def value_hash(value: Any) -> str:
    """The sha256 of a value's canonical form: what a component of the digest is (a secret enters only so)."""
    return hashlib.sha256(SCHEMA.encode() + b"\0" + canonical(value)).hexdigest()


def digest(parts: Mapping[str, str]) -> str:
    """The one digest of the desired state: sha256 over its sorted components."""
    return hashlib.sha256(SCHEMA.encode() + b"\0" + canonical(sorted(parts.items()))).hexdigest()


def describe_component(name: str) -> str:
    kind, _sep, rest = name.partition(":")
    return {
        "content": "the collection's content (roles, plugins, playbooks, site.yml)",
        "ansible": "the Ansible version",
        "var": rest,
        "plan": f"the plan of {rest}",
        "address": f"the addresses of {rest}",
        "controller": f"the controller file {rest}",
    }.get(kind, name)


def changed_components(desired: Mapping[str, str], stamped: Mapping[str, str]) -> list[str]:
    """What differs between two sets of components, described (names only, never values), sorted."""
    names = sorted(k for k in set(desired) | set(stamped) if desired.get(k) != stamped.get(k))
    return [describe_component(n) for n in names]


def some(items: Sequence[str], n: int = WHY_NAMES) -> str:
    """The first n items and how many more."""
    head = ", ".join(items[:n])
    return head + (f" and {len(items) - n} more" if len(items) > n else "")


# ------------------------------------------------------------------------------------------------ host side: reading


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _type(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def path_state(path: str, *, content: bool) -> dict[str, Any]:
    """A path as it is now (never following a final link): type, mode, owner, group; a file's sha256 with content;
    a link's target."""
    try:
        st = os.lstat(path)
    except OSError:
        return {"type": "absent"}
    owner, group = owner_group(st)
    out: dict[str, Any] = {
        "type": _type(st.st_mode),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "owner": owner,
        "group": group,
    }
    if out["type"] == "link":
        out["target"] = os.readlink(path)
    elif out["type"] == "file" and content:
        try:
            out["sha256"] = _sha256(path)
        except OSError as exc:
            out["sha256"] = f"unreadable: {exc.strerror}"
    return out


def tree_state(path: str, *, content: bool = False) -> dict[str, Any]:
    """Every entry below a directory, in one digest (relative path, type, size, mtime, mode, owner, group, a link's
    target; with content each file's sha256 too)."""
    top = path_state(path, content=False)
    if top["type"] != "dir":
        return top
    entries: list[Any] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            item: list[Any] = [os.path.relpath(full, path), _type(st.st_mode), st.st_size, st.st_mtime_ns]
            item += [f"{stat.S_IMODE(st.st_mode):04o}", *owner_group(st)]
            if stat.S_ISLNK(st.st_mode):
                item.append(os.readlink(full))
            elif content and stat.S_ISREG(st.st_mode):
                item.append(_sha256(full))
            entries.append(item)
    return {**top, "digest": value_hash(entries), "count": len(entries), "hashed": content}


def parse_systemctl_show(text: str, units: Sequence[str]) -> dict[str, dict[str, str]]:
    """``systemctl show --property=Id,ActiveState,UnitFileState -- units...`` (a block per unit, in the order
    asked) -> unit -> {"active": ActiveState, "enabled": UnitFileState}."""
    blocks = text.strip().split("\n\n") if text.strip() else []
    out: dict[str, dict[str, str]] = {}
    for i, unit in enumerate(units):
        props = dict(line.split("=", 1) for line in (blocks[i] if i < len(blocks) else "").splitlines() if "=" in line)
        out[unit] = {"active": props.get("ActiveState", "unknown"), "enabled": props.get("UnitFileState", "")}
    return out


def parse_dpkg_status(text: str, names: Iterable[str]) -> dict[str, str]:
    """dpkg's status database -> package -> "<status> <version>" ("absent" when dpkg does not know it)."""
    wanted = set(names)
    out = dict.fromkeys(sorted(wanted), "absent")
    for para in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in para.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _sep, value = line.partition(":")
                fields[key] = value.strip()
        # Multi-arch packages appear once per architecture; the installed one wins.
        name = fields.get("Package", "")
        if name in wanted and (out[name] == "absent" or fields.get("Status", "").endswith(" installed")):
            out[name] = f"{fields.get('Status', '')} {fields.get('Version', '')}".strip()
    return out


def venv_state(path: str) -> list[str] | None:
    """The distributions a virtual environment holds (name==version, lower case, '-' for '_'); None without one."""
    lib = Path(path) / "lib"
    try:
        pythons = sorted(p for p in lib.iterdir() if p.name.startswith("python"))
    except OSError:
        return None
    dists = []
    for py in pythons:
        try:
            names = os.listdir(py / "site-packages")
        except OSError:
            continue
        for n in names:
            if n.endswith(".dist-info"):
                dists.append(n[: -len(".dist-info")].lower().replace("_", "-"))
    return sorted(dists)


def group_state(groups: Mapping[str, Sequence[str]]) -> dict[str, dict[str, bool]]:
    """group -> user -> whether the user is in it (its members or its primary group)."""
    out: dict[str, dict[str, bool]] = {}
    for group, users in sorted(groups.items()):
        try:
            g = grp.getgrnam(group)
            members, gid = set(g.gr_mem), g.gr_gid
        except KeyError:
            members, gid = set(), None
        row = {}
        for user in sorted(set(users)):
            try:
                primary = pwd.getpwnam(user).pw_gid == gid
            except KeyError:
                primary = False
            row[user] = user in members or primary
        out[group] = row
    return out


def parse_image_inspect(text: str, refs: Sequence[str]) -> dict[str, str]:
    """``docker image inspect refs...`` (JSON; the images not found are left out) -> ref -> image ID ("" absent)."""
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError:
        data = []
    out = dict.fromkeys(refs, "")
    for obj in data if isinstance(data, list) else []:
        if not isinstance(obj, Mapping):
            continue
        names = {
            str(obj.get("Id") or ""),
            *(str(t) for t in obj.get("RepoTags") or []),
            *(str(d) for d in obj.get("RepoDigests") or []),
        }
        for ref in refs:
            if ref in names:
                out[ref] = str(obj.get("Id") or "")
    return out


def listing_state(pattern: str) -> list[str]:
    """The names in a glob's directory that match its last part (sorted)."""
    directory, _sep, glob = pattern.rpartition("/")
    try:
        names = os.listdir(directory or "/")
    except OSError:
        return []
    return sorted(n for n in names if fnmatch.fnmatchcase(n, glob))


def normalize_managed(managed: Any) -> dict[str, Any]:
    """What the roles declared (a dict of kinds, or a list of them: several roles may name the same entry) -> one
    sorted, de-duplicated set per kind; ``trees`` entries are paths or {"path", "hash"}."""
    out: dict[str, Any] = {k: [] for k in KINDS if k not in ("groups", "trees")}
    groups: dict[str, set[str]] = {}
    trees: dict[str, bool] = {}
    sets: dict[str, set[str]] = {k: set() for k in out}
    for one in managed if isinstance(managed, list) else [managed]:
        if not isinstance(one, Mapping):
            raise ConvergeError(f"managed: each entry must be a dict of kinds, not {type(one).__name__}")
        for kind, value in one.items():
            if kind not in KINDS:
                raise ConvergeError(f"managed: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
            if kind == "groups":
                for group, users in dict(value or {}).items():
                    groups.setdefault(str(group), set()).update(str(u) for u in users or [])
            elif kind == "trees":
                for item in value or []:
                    path, full = (
                        (str(item.get("path")), bool(item.get("hash")))
                        if isinstance(item, Mapping)
                        else (str(item), False)
                    )
                    trees[path] = trees.get(path, False) or full
            else:
                sets[kind].update(str(v) for v in value or [] if str(v))
    out.update({k: sorted(v) for k, v in sets.items()})
    out["groups"] = {g: sorted(u) for g, u in sorted(groups.items())}
    out["trees"] = [{"path": p, "hash": h} for p, h in sorted(trees.items())]
    return out


def read_manifest(managed: Mapping[str, Any], run: Runner, docker_bin: str = DOCKER_BIN) -> dict[str, Any]:
    """The state now of everything in a (normalized) managed set: one systemctl call, one docker call, one read of
    dpkg's database, the rest from the file system."""
    m = normalize_managed(managed)
    out: dict[str, Any] = {
        "files": {p: path_state(p, content=True) for p in m["files"]},
        "dirs": {p: path_state(p, content=False) for p in m["dirs"]},
        "trees": {t["path"]: tree_state(t["path"], content=t["hash"]) for t in m["trees"]},
        "venvs": {p: venv_state(p) for p in m["venvs"]},
        "groups": group_state(m["groups"]),
        "listings": {p: listing_state(p) for p in m["listings"]},
        "units": {},
        "packages": {},
        "images": {},
    }
    if m["units"]:
        rc, text, _err = run(["systemctl", "show", "--property=Id,ActiveState,UnitFileState", "--", *m["units"]])
        out["units"] = parse_systemctl_show(text if rc == 0 else "", m["units"])
    if m["packages"]:
        try:
            dpkg = Path(DPKG_STATUS).read_text(encoding="utf-8", errors="replace")
        except OSError:
            dpkg = ""
        out["packages"] = parse_dpkg_status(dpkg, m["packages"])
    if m["images"]:
        _rc, text, _err = run([docker_bin, "image", "inspect", *m["images"]])
        out["images"] = parse_image_inspect(text, m["images"])
    return out


def managed_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The managed set a recorded manifest was read from (what the check reads again)."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        entries = manifest.get(kind) or {}
        if kind == "groups":
            out[kind] = {g: sorted(users) for g, users in entries.items()}
        elif kind == "trees":
            out[kind] = [
                {"path": p, "hash": bool(isinstance(s, Mapping) and s.get("hashed"))} for p, s in entries.items()
            ]
        else:
            out[kind] = sorted(entries)
    return out


def _describe_path(kind: str, path: str, was: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    if was.get("type") != now.get("type"):
        return f"{path} is {now.get('type', 'absent')}, was {was.get('type', 'absent')}"
    keys = [k for k in ("sha256", "digest", "target", "mode", "owner", "group", "count") if was.get(k) != now.get(k)]
    what = {"sha256": "content", "digest": "content", "count": "content"}
    return f"{path}: {', '.join(dict.fromkeys(what.get(k, k) for k in keys))} changed"


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between the manifest the stamp recorded and the host now, one short phrase each."""
    out: list[str] = []
    for kind in ("files", "dirs", "trees"):
        was, now = recorded.get(kind) or {}, current.get(kind) or {}
        for path in sorted(set(was) | set(now)):
            a, b = was.get(path) or {"type": "absent"}, now.get(path) or {"type": "absent"}
            if a != b:
                out.append(_describe_path(kind, path, a, b))
    was, now = recorded.get("units") or {}, current.get("units") or {}
    for unit in sorted(set(was) | set(now)):
        a, b = was.get(unit) or {}, now.get(unit) or {}
        if a.get("active") != b.get("active"):
            out.append(f"unit {unit} is {b.get('active', 'unknown')}, was {a.get('active', 'unknown')}")
        elif a.get("enabled") != b.get("enabled"):
            out.append(
                f"unit {unit} is {b.get('enabled') or 'not installed'}, was {a.get('enabled') or 'not installed'}"
            )
    for kind, label in (
        ("packages", "package"),
        ("images", "image"),
        ("venvs", "virtual environment"),
        ("listings", ""),
    ):
        was, now = recorded.get(kind) or {}, current.get(kind) or {}
        for key in sorted(set(was) | set(now)):
            if was.get(key) != now.get(key):
                out.append(f"{label + ' ' if label else ''}{key} changed")
    was, now = recorded.get("groups") or {}, current.get("groups") or {}
    for group in sorted(set(was) | set(now)):
        for user in sorted(set(was.get(group) or {}) | set(now.get(group) or {})):
            if (was.get(group) or {}).get(user) != (now.get(group) or {}).get(user):
                state = "in" if (now.get(group) or {}).get(user) else "not in"
                out.append(f"{user} is {state} group {group}")
    return out


# ------------------------------------------------------------------------------------------------ the module's states


def _load(path: str) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _write_private(path: str, doc: Mapping[str, Any]) -> None:
    """Root-only (0600) JSON, written atomically; its directory made (0755) when missing."""
    parent = Path(path).parent
    if not parent.is_dir():
        parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, sort_keys=True, indent=1) + "\n", mode=0o600)


def check(params: Mapping[str, Any], check_mode: bool, run: Runner) -> dict[str, Any]:
    """Is the host what the desired components describe? Not: the stamp goes, the components are kept pending."""
    stamp_path = str(params.get("stamp") or CONVERGE_STAMP)
    wanted = str(params.get("digest") or "")
    parts: Mapping[str, str] = params.get("components") or {}
    if not wanted or digest(parts) != wanted:
        raise ConvergeError("state check needs digest and components, the digest being that of the components")
    stamp = _load(stamp_path)
    reason = ""
    drift: list[str] = []
    if params.get("force"):
        reason = "a full converge was asked for (sparkfleet_full_converge)"
    elif stamp is None:
        reason = "no full converge of this desired state recorded on the host yet"
    elif stamp.get("schema") != SCHEMA or not isinstance(stamp.get("manifest"), Mapping):
        reason = f"the stamp {stamp_path} is not a {SCHEMA} stamp"
    elif stamp.get("digest") != wanted:
        changed = changed_components(parts, stamp.get("components") or {})
        reason = f"the desired state changed since the last full converge: {some(changed) or 'its digest'}"
    else:
        recorded = stamp["manifest"]
        drift = differences(
            recorded, read_manifest(managed_of(recorded), run, str(params.get("docker_bin") or DOCKER_BIN))
        )
        if drift:
            reason = f"the host drifted since the last full converge: {some(drift)}"
    converged = not reason
    if not converged and not check_mode:
        _remove(stamp_path)
        _write_private(stamp_path + PENDING_SUFFIX, {"schema": SCHEMA, "digest": wanted, "components": dict(parts)})
    return {
        "changed": False,
        "converged": converged,
        "digest": wanted,
        "drift": drift,
        "msg": "converged: the stamp's digest and manifest match, the converge stages skip it"
        if converged
        else f"full converge: {reason}",
    }


def write(params: Mapping[str, Any], check_mode: bool, run: Runner) -> dict[str, Any]:
    """The end of a full, successful run: the pending components and the manifest read now become the stamp."""
    stamp_path = str(params.get("stamp") or CONVERGE_STAMP)
    wanted = str(params.get("digest") or "")
    if check_mode:
        return {"changed": False, "written": False, "msg": "check mode: no stamp is written"}
    pending = _load(stamp_path + PENDING_SUFFIX) or {}
    if not wanted or pending.get("digest") != wanted or digest(pending.get("components") or {}) != wanted:
        return {
            "changed": False,
            "written": False,
            "msg": "no stamp written: this run's check did not leave its desired state on the host (the next run"
            " takes the full path)",
        }
    managed = normalize_managed(params.get("managed") or {})
    manifest = read_manifest(managed, run, str(params.get("docker_bin") or DOCKER_BIN))
    doc = {"schema": SCHEMA, "digest": wanted, "components": pending["components"], "manifest": manifest}
    _write_private(stamp_path, doc)
    _remove(stamp_path + PENDING_SUFFIX)
    counts = ", ".join(f"{len(manifest[k])} {k}" for k in KINDS if manifest[k])
    return {"changed": False, "written": True, "msg": f"stamp written: {counts or 'nothing managed'}"}


def remove(params: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    """Teardown, rollback: whatever the stamp said is no longer proven; the next run takes the full path."""
    stamp_path = str(params.get("stamp") or CONVERGE_STAMP)
    had = os.path.exists(stamp_path) or os.path.exists(stamp_path + PENDING_SUFFIX)
    if not check_mode:
        _remove(stamp_path)
        _remove(stamp_path + PENDING_SUFFIX)
    return {"changed": False, "removed": had and not check_mode, "msg": "stamp removed" if had else "no stamp"}


def run_module(params: Mapping[str, Any], check_mode: bool, run: Runner | None = None) -> dict[str, Any]:
    run = run or subprocess_runner(60)
    state = params.get("state") or "check"
    ops: dict[str, Callable[[], dict[str, Any]]] = {
        "check": lambda: check(params, check_mode, run),
        "present": lambda: write(params, check_mode, run),
        "absent": lambda: remove(params, check_mode),
    }
    if state not in ops:
        raise ConvergeError(f"state must be one of {', '.join(ops)}, not {state!r}")
    return ops[state]()
