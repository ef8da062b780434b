"""Debian packages for air-gapped hosts, fetched on the controller: the metrics role's .deb cache and promtool.

    python -m lab.debs fetch DIR PACKAGE...   download PACKAGE and what a Debian host may lack of its dependencies
    python -m lab.debs promtool               print the path of promtool (extracted from bookworm's prometheus .deb)

What is downloaded is the dependency closure of the named packages (Depends and Pre-Depends, the first installable
alternative, virtual packages through Provides) less the closure of the Essential and Priority required packages,
which every Debian or Ubuntu host has. The resolution reads ``apt-cache dumpavail`` (the controller's apt lists,
bookworm on this project's controllers and CI), the files come from ``apt-get download``: no root, no change to
the controller's packages. ``promtool`` unpacks the prometheus .deb with ``dpkg-deb -x`` into ``.cache/promtool``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL_CACHE = ROOT / ".cache" / "promtool"
# bookworm's prometheus 2.42 carries promtool.
PROMTOOL_PACKAGE = "prometheus"

_DEP_NAME = re.compile(r"\s*([A-Za-z0-9.+-]+)(?::[a-z0-9]+)?")


class DebError(Exception):
    """A problem the user can fix; printed as one line."""


def parse_dumpavail(text: str) -> dict[str, dict[str, str]]:
    """``apt-cache dumpavail`` output -> {package: {field: value}} (the first stanza of a name wins)."""
    packages: dict[str, dict[str, str]] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        last = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and last:
                fields[last] += "\n" + line.strip()
                continue
            key, sep, value = line.partition(":")
            if sep:
                last = key.strip()
                fields[last] = value.strip()
        name = fields.get("Package")
        if name and name not in packages:
            packages[name] = fields
    return packages


def _alternatives(field: str) -> list[list[str]]:
    """A Depends field -> one list of alternative names per dependency (versions and arch qualifiers dropped)."""
    deps: list[list[str]] = []
    for clause in field.split(","):
        names = []
        for alt in clause.split("|"):
            match = _DEP_NAME.match(alt)
            if match and match.group(1):
                names.append(match.group(1))
        if names:
            deps.append(names)
    return deps


def closure(packages: Mapping[str, Mapping[str, str]], roots: Iterable[str], stop: set[str] | None = None) -> set[str]:
    """Every real package the roots need (roots included), not descending into ``stop``."""
    providers: dict[str, str] = {}
    for name, fields in packages.items():
        for virtual in _alternatives(fields.get("Provides", "")):
            providers.setdefault(virtual[0], name)
    stop = stop or set()
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name in stop:
            continue
        if name not in packages:
            raise DebError(f"package {name!r} is not in the controller's apt lists: run apt-get update (as root)")
        seen.add(name)
        fields = packages[name]
        for clause in _alternatives(fields.get("Pre-Depends", "")) + _alternatives(fields.get("Depends", "")):
            real = [providers.get(alt, alt) for alt in clause]
            if any(alt in seen or alt in stop for alt in real):
                continue
            todo.append(next((alt for alt in real if alt in packages), real[0]))
    return seen


def base_set(packages: Mapping[str, Mapping[str, str]]) -> set[str]:
    """What every Debian host has: the Essential and Priority required packages and what they need."""
    roots = [
        name
        for name, fields in packages.items()
        if fields.get("Essential") == "yes" or fields.get("Priority") == "required"
    ]
    return closure(packages, roots)


def needed(packages: Mapping[str, Mapping[str, str]], wanted: Iterable[str]) -> list[str]:
    """The packages to carry for ``wanted``: its closure less the base set."""
    base = base_set(packages)
    return sorted(closure(packages, wanted, stop=base - set(wanted)))


def _apt_lists() -> dict[str, dict[str, str]]:
    if not shutil.which("apt-cache"):
        raise DebError("apt-cache is not installed: fetching .deb files needs a Debian or Ubuntu controller")
    res = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=False)
    packages = parse_dumpavail(res.stdout)
    if res.returncode != 0 or not packages:
        raise DebError("the controller's apt lists are empty: run apt-get update (as root) once")
    return packages


def download(names: list[str], dest: Path) -> None:
    """apt-get download into dest (no root needed)."""
    dest.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["apt-get", "download", *names], cwd=dest, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise DebError(f"apt-get download {' '.join(names)} failed: {last}; check the Debian mirror is reachable")


def fetch(dest: Path, wanted: list[str]) -> list[str]:
    """Download what a host needs to install ``wanted`` offline into dest (reused while the list holds)."""
    names = needed(_apt_lists(), wanted)
    stamp = dest / ".packages"
    have = {p.name.split("_", 1)[0] for p in dest.glob("*.deb")} if dest.is_dir() else set()
    if stamp.exists() and stamp.read_text() == "\n".join(names) and have >= set(names):
        return names
    shutil.rmtree(dest, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="sparkfleet-debs-") as tmp:
        download(names, Path(tmp))
        shutil.copytree(tmp, dest)
    stamp.write_text("\n".join(names))
    return names


def promtool(cache: Path = PROMTOOL_CACHE) -> Path:
    """promtool from the prometheus .deb, unpacked once into cache; raises DebError when it cannot be got."""
    binary = cache / "usr" / "bin" / "promtool"
    if binary.is_file():
        return binary
    if not shutil.which("dpkg-deb"):
        raise DebError("dpkg-deb is not installed: promtool is taken from the Debian prometheus package")
    _apt_lists()
    with tempfile.TemporaryDirectory(prefix="sparkfleet-promtool-") as tmp:
        download([PROMTOOL_PACKAGE], Path(tmp))
        deb = next(Path(tmp).glob("*.deb"))
        unpacked = Path(tmp) / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, capture_output=True)
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "usr" / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(unpacked / "usr" / "bin" / "promtool", binary)
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.debs", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download packages and the dependencies a host may lack")
    p_fetch.add_argument("dest", type=Path)
    p_fetch.add_argument("packages", nargs="+")
    sub.add_parser("promtool", help="print the path of promtool, unpacking it first")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            names = fetch(args.dest, args.packages)
            sys.stdout.write(f"{args.dest}: {len(names)} packages: {' '.join(names)}\n")
        else:
            sys.stdout.write(f"{promtool()}\n")
    except DebError as exc:
        sys.stderr.write(f"lab.debs: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
