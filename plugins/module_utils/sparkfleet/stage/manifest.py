"""A per-file sha256 manifest of a model directory, and what a destination lacks against a source's manifest.

The manifest (``.sparkfleet-manifest.json`` next to the model, in ``models--org--name/``) records each file's
size, sha256 and mtime. A file whose size and mtime still match its recorded entry keeps its recorded sha256
(``verify: quick``); any other file is hashed again (always with ``verify: full``). A destination file is
transferred only when it is missing or its size or sha256 differ from the source's, so a rerun transfers nothing
and a copy interrupted halfway is fetched again (or resumed by rsync from its partial directory).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import write_atomic

SCHEMA = "sparkfleet.model_manifest/v1"
MANIFEST_NAME = ".sparkfleet-manifest.json"
# rsync's --partial-dir (seed transfers): partial files are resumed from here, never counted as the model.
PARTIAL_DIR = ".sparkfleet-partial"
# Never part of a model: the manifest itself, partial transfers, hf download --local-dir's metadata.
SKIPPED_TOP = frozenset({MANIFEST_NAME, PARTIAL_DIR, ".cache"})
HASH_CHUNK = 8 * 1024 * 1024


class ManifestError(Exception):
    """A directory that cannot be staged (a link out of the tree, an unreadable file)."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(path: str | Path) -> dict[str, Any]:
    """A manifest file's content, or an empty one when it is missing, unreadable or of another schema."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("files"), dict):
        return {}
    return data


@dataclass
class Hasher:
    """sha256 of files, reusing a recorded entry whose size and mtime still match (unless full)."""

    cache: Mapping[str, Any] = field(default_factory=dict)
    full: bool = False
    hashed_bytes: int = 0

    def entry(self, root: Path, rel: str, st: os.stat_result) -> dict[str, Any]:
        known = self.cache.get(rel)
        if (
            not self.full
            and isinstance(known, Mapping)
            and known.get("size") == st.st_size
            and known.get("mtime_ns") == st.st_mtime_ns
            and isinstance(known.get("sha256"), str)
        ):
            sha = str(known["sha256"])
        else:
            try:
                sha = sha256_file(root / rel)
            except OSError as exc:
                raise ManifestError(f"cannot read {root / rel}: {exc.strerror}") from None
            self.hashed_bytes += st.st_size
        return {"size": st.st_size, "sha256": sha, "mtime_ns": st.st_mtime_ns}


# As the kernel: a chain of more links than this is a loop (ELOOP).
MAX_LINK_HOPS = 40
LINK_FIX = (
    'replace the link with a copy of the file it names (cp --remove-destination "$(readlink -f LINK)" LINK) or '
    "point it, relatively, at a file inside the model directory; nothing was staged"
)


def _link_error(root: Path, rel: str, target: str, why: str) -> ManifestError:
    return ManifestError(
        f"{root / rel} links to {target}, which {why} (a link must end inside the model directory): {LINK_FIX}"
    )


def _resolve_link(root: Path, rel: str) -> str:
    """Where the link ``rel`` ends, resolved inside ``root`` as the kernel would, links on the way followed.

    Returns the path it ends on, relative to ``root`` ('' for root itself). Raises ManifestError when it (or a
    link it passes through) is absolute, climbs above ``root`` with '..', loops, ends on nothing, or ends in what
    staging skips: once staged, such a link would name something outside the model's copy on the host.
    """
    target = os.readlink(root / rel)
    if os.path.isabs(target):
        raise _link_error(root, rel, target, "is an absolute path")
    # The link's own directory: real directories (the walk never enters a linked one).
    parts = rel.split("/")[:-1]
    pending = target.split("/")
    hops = 0
    while pending:
        comp = pending.pop(0)
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise _link_error(root, rel, target, f"climbs out of the model directory {root}")
            parts.pop()
            continue
        if (not parts and comp in SKIPPED_TOP) or comp == PARTIAL_DIR:
            raise _link_error(
                root,
                rel,
                target,
                f"points into {'/'.join([*parts, comp])}, which is not staged (sparkfleet's "
                "manifest, partial transfers and hf download's .cache are skipped)",
            )
        here = "/".join([*parts, comp])
        path = root / here
        if os.path.islink(path):
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise _link_error(root, rel, target, f"is a loop of links (more than {MAX_LINK_HOPS} hops)")
            then = os.readlink(path)
            if os.path.isabs(then):
                raise _link_error(root, rel, target, f"leads through {here}, a link to the absolute path {then}")
            pending = then.split("/") + pending
            continue
        if not os.path.lexists(path) or (any(c not in ("", ".") for c in pending) and not os.path.isdir(path)):
            raise _link_error(root, rel, target, f"leads to {here}, which does not exist in the model directory")
        parts.append(comp)
    return "/".join(parts)


def _link_target(root: Path, rel: str) -> str:
    """The target of the link ``rel``, once it is known to resolve inside ``root``."""
    _resolve_link(root, rel)
    return os.readlink(root / rel)


def scan(root: str | Path, hasher: Hasher) -> dict[str, Any]:
    """Manifest of every file and link under root: {exists, layout, files: {rel: entry}, links: {rel: target}}."""
    base = Path(root)
    if not base.is_dir():
        return {"exists": False, "layout": "files", "files": {}, "links": {}}
    files: dict[str, Any] = {}
    links: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        rel_dir = os.path.relpath(dirpath, base)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = [d for d in dirnames if d != PARTIAL_DIR and (rel_dir or d not in SKIPPED_TOP)]
        names = [f for f in filenames if rel_dir or f not in SKIPPED_TOP]
        for name in sorted(dirnames):
            rel = os.path.join(rel_dir, name)
            if os.path.islink(base / rel):
                links[rel] = _link_target(base, rel)
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(base / rel_dir / d))
        for name in sorted(names):
            rel = os.path.join(rel_dir, name)
            st = os.lstat(base / rel)
            if os.path.islink(base / rel):
                links[rel] = _link_target(base, rel)
            elif os.path.isfile(base / rel):
                files[rel] = hasher.entry(base, rel, st)
    layout = "hub" if (base / "snapshots").is_dir() else "files"
    return {"exists": True, "layout": layout, "files": files, "links": links}


def links_in_the_way(root: str | Path, files: Iterable[str], links: Iterable[str] = ()) -> list[str]:
    """Links on this host where staging writes: the model directory itself, a directory on the way to a file or a
    link it makes, or a file it writes. A copy, a chown or a mkdir there would land where the link points."""
    base = Path(root)
    files, links = list(files), list(links)
    found: dict[str, str] = {}

    def check(rel: str, what: str) -> None:
        path = base / rel if rel else base
        if rel not in found and os.path.islink(path):
            found[rel] = f"{path} is a link (to {os.readlink(path)}) where the staging writes {what}"

    check("", "the model directory")
    for rel in [*files, *links]:
        for parent in _dirs_of([rel]):
            check(parent, "a directory")
    for rel in files:
        check(rel, "a file")
    return list(found.values())


def compare(
    root: str | Path, expected: Mapping[str, Any], prefix: str, hasher: Hasher, *, also_written: Iterable[str] = ()
) -> dict[str, Any]:
    """What ``root`` lacks against a source manifest whose paths land under ``prefix``.

    Returns {files: {dest rel: entry} of matching files, transfer: [{path, src, size, reason}],
    links: {dest rel: target} (all expected links), links_missing: [{path, target}]}. Raises ManifestError, before
    anything is hashed, when a link on the host stands where staging writes (``also_written``: files staging writes
    besides the source's, such as refs/main).
    """
    base = Path(root)
    prefix = prefix.strip("/")

    def dest_of(src: str) -> str:
        return os.path.join(prefix, src) if prefix else src

    in_the_way = links_in_the_way(
        base,
        [*map(dest_of, expected.get("files") or {}), *also_written],
        map(dest_of, expected.get("links") or {}),
    )
    if in_the_way:
        shown = "; ".join(in_the_way[:5]) + (f"; and {len(in_the_way) - 5} more" if len(in_the_way) > 5 else "")
        raise ManifestError(
            f"this host's copy holds links where the staging writes, so a copy or a change of owner would land "
            f"outside {base}: {shown}. Remove them (rm LINK; for the model directory itself, point the hub "
            "directory at the real disk instead of linking the model) and rerun; nothing was changed on this host"
        )
    files: dict[str, Any] = {}
    transfer: list[dict[str, Any]] = []
    for src, want in sorted((expected.get("files") or {}).items()):
        dest = os.path.join(prefix, src) if prefix else src
        path = base / dest
        reason = ""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            reason = "missing"
        else:
            if not os.path.isfile(path) or os.path.islink(path):
                reason = "not a regular file"
            elif st.st_size != want["size"]:
                reason = f"size {st.st_size} of {want['size']} (partial or changed)"
            else:
                entry = hasher.entry(base, dest, st)
                if entry["sha256"] != want["sha256"]:
                    reason = "sha256 differs"
                else:
                    files[dest] = entry
        if reason:
            transfer.append({"path": dest, "src": src, "size": int(want["size"]), "reason": reason})
    links: dict[str, str] = {}
    links_missing: list[dict[str, str]] = []
    for src, target in sorted((expected.get("links") or {}).items()):
        dest = os.path.join(prefix, src) if prefix else src
        links[dest] = target
        path = base / dest
        if not (os.path.islink(path) and os.readlink(path) == target):
            links_missing.append({"path": dest, "target": target})
    return {"files": files, "transfer": transfer, "links": links, "links_missing": links_missing}


def manifest_content(
    repo: str, layout: str, revision: str, files: Mapping[str, Any], links: Mapping[str, str], *, kind: str = "record"
) -> str:
    """The manifest file: ``kind`` record (a staged model, written by the host) or cache (a source's checksums)."""
    doc = {
        "schema": SCHEMA,
        "kind": kind,
        "repo": repo,
        "layout": layout,
        "revision": revision,
        "files": {k: dict(files[k]) for k in sorted(files)},
        "links": {k: links[k] for k in sorted(links)},
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def _dirs_of(paths: list[str]) -> list[str]:
    """Every directory (ancestors included, parents first) the paths need."""
    dirs: set[str] = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    return sorted(dirs)


def run_module(module: Any) -> None:
    """Body of the model_stage_manifest module (module: an AnsibleModule or a test fake)."""
    p = module.params
    root = Path(p["path"])
    manifest_file = Path(p["manifest_file"] or root / MANIFEST_NAME)
    mode = p["manifest"]
    recorded = load_manifest(manifest_file)
    hasher = Hasher(cache=recorded.get("files") or {}, full=p["verify"] == "full")
    try:
        if p["expected"] is not None:
            layout = str(p["expected"].get("layout") or "files")
            # The role writes refs/main beside the snapshot of a plain directory.
            found = compare(
                root, p["expected"], p["prefix"] or "", hasher, also_written=["refs/main"] if layout == "files" else []
            )
            result: dict[str, Any] = {
                "exists": root.is_dir(),
                "layout": layout,
                "transfer": found["transfer"],
                "links_missing": found["links_missing"],
                "dirs": _dirs_of([t["path"] for t in found["transfer"]] + [x["path"] for x in found["links_missing"]]),
            }
            files, links = found["files"], found["links"]
            result["bytes_total"] = sum(int(f["size"]) for f in (p["expected"].get("files") or {}).values())
        else:
            scanned = scan(root, hasher)
            files, links, layout = scanned["files"], scanned["links"], scanned["layout"]
            result = {"exists": scanned["exists"], "layout": layout, "transfer": [], "links_missing": [], "dirs": []}
            result["bytes_total"] = sum(int(f["size"]) for f in files.values())
    except ManifestError as exc:
        module.fail_json(msg=f"{p['repo']}: {exc}" if p["repo"] else str(exc))
        return
    result.update(
        files={k: {"size": v["size"], "sha256": v["sha256"]} for k, v in files.items()},
        links=links,
        bytes_transfer=sum(t["size"] for t in result["transfer"]),
        hashed_bytes=hasher.hashed_bytes,
        manifest_file=str(manifest_file),
    )
    changed = False
    # A seed host's model may itself have been staged: its record manifest is only read, never replaced by a cache.
    keep_record = mode == "cache" and recorded.get("kind", "record") == "record" and bool(recorded)
    if mode in ("cache", "record") and result["exists"] and not keep_record:
        content = manifest_content(p["repo"] or "", layout, p["revision"] or "", files, links, kind=mode)
        differs = (manifest_file.read_text(encoding="utf-8") if manifest_file.is_file() else None) != content
        if differs and not module.check_mode:
            manifest_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(manifest_file, content, 0o644)
        changed = differs and mode == "record"
    pending = len(result["transfer"]) + len(result["links_missing"])
    if p["fail_on_mismatch"] and pending and not module.check_mode:
        bad = ", ".join(f"{t['path']} ({t['reason']})" for t in result["transfer"][:5])
        module.fail_json(msg=f"{root} still differs from its source after the transfer: {bad}", **result)
        return
    module.exit_json(changed=changed, **result)
