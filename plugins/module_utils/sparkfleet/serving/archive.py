"""Image archives (``docker save``) on the controller: find one, read its image IDs and tags."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..service.parse import parse_image
from .errors import ServingError


def archive_info(path: str | Path) -> dict[str, Any]:
    """Image ID and tags of a `docker save` archive (legacy layout and OCI layout both name the config)."""
    p = Path(path)
    try:
        with tarfile.open(p, "r:*") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise ServingError(f"{p} has no manifest.json: it is not a `docker save` archive")
            manifest = json.loads(member.read().decode())
    except KeyError:
        raise ServingError(f"{p} has no manifest.json: it is not a `docker save` archive") from None
    except (OSError, tarfile.TarError) as exc:
        raise ServingError(f"{p} cannot be read as a tar archive: {exc}") from None
    if not isinstance(manifest, list) or not manifest:
        raise ServingError(f"{p}: manifest.json lists no image")
    images = []
    for entry in manifest:
        config = str(entry.get("Config", ""))
        digest = Path(config).name.removesuffix(".json")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ServingError(f"{p}: manifest.json names config {config!r}, not a sha256 digest")
        images.append({"id": f"sha256:{digest}", "tags": list(entry.get("RepoTags") or [])})
    return {"path": str(p), "images": images, "size_bytes": p.stat().st_size}


def resolve_archive(path: str, search_dirs: Sequence[str]) -> Path:
    """An absolute path as it is; a relative one against the first search dir holding it."""
    p = Path(path).expanduser()
    if p.is_absolute():
        if not p.is_file():
            raise ServingError(f"image_archive {path} does not exist on the controller")
        return p
    tried = []
    for d in search_dirs:
        if not d:
            continue
        cand = (Path(d).expanduser() / p).resolve()
        tried.append(str(cand))
        if cand.is_file():
            return cand
    raise ServingError(
        f"image_archive {path} was not found on the controller (tried {', '.join(tried)}): "
        "give an absolute path or one relative to the repository"
    )


def archive_for_image(path: str, search_dirs: Sequence[str], image: str) -> dict[str, Any]:
    """Resolve an archive and pick the image in it that carries `image`'s tag."""
    resolved = resolve_archive(path, search_dirs)
    info = archive_info(resolved)
    ref = parse_image(image) or {}
    for entry in info["images"]:
        if image in entry["tags"] or (ref.get("digest") and entry["id"] == ref.get("digest")):
            return {
                "path": str(resolved),
                "image_id": entry["id"],
                "tags": entry["tags"],
                "size_bytes": info["size_bytes"],
            }
    tags = [t for e in info["images"] for t in e["tags"]]
    raise ServingError(
        f"image_archive {resolved} holds {tags or 'untagged images'}, not {image}: "
        "set image to one of those tags, or save the archive with `docker save IMAGE -o FILE`"
    )
