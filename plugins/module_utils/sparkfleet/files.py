"""Small file helpers shared by the modules' logic."""

from __future__ import annotations

import grp
import os
import pwd
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, content: str, mode: int = 0o644) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same directory, then rename it.

    A reader never sees a half-written file; on any error the temporary file is removed.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def owner_group(st: os.stat_result) -> tuple[str, str]:
    """The owner's and the group's names of a file's stat (the numbers where the host has no name for them)."""
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return owner, group
