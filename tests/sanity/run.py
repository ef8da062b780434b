"""ansible-test sanity on the collection as Galaxy would ship it (``make sanity``).

Builds the tarball with ``ansible-galaxy collection build`` (galaxy.yml's build_ignore decides what is collection
content), unpacks it into a temporary ``ansible_collections/sparkfleet/fleet`` and runs ``ansible-test sanity`` there
on this Python. Each sanity test runs in a virtual environment that ansible-test makes and fills from PyPI; the pip
bootstrap script it would download from a host these machines cannot reach is replaced by tests/sanity/get_pip.py
with a pip wheel from PyPI (both cached in ~/.ansible/test/cache, so a second run downloads nothing).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PIP_VERSION = "24.2"  # ansible-test's pip for its sanity virtual environments (ansible-core 2.19)
CACHE = Path.home() / ".ansible" / "test" / "cache"


def ensure_pip_bootstrap() -> None:
    """Where ansible-test looks for its get-pip script: ours, with the pip wheel it runs."""
    CACHE.mkdir(parents=True, exist_ok=True)
    script = CACHE / f"get_pip_{PIP_VERSION.replace('.', '_')}.py"
    if not script.exists() or script.read_bytes() != (ROOT / "tests" / "sanity" / "get_pip.py").read_bytes():
        shutil.copyfile(ROOT / "tests" / "sanity" / "get_pip.py", script)
    if not list(CACHE.glob(f"pip-{PIP_VERSION}-py3-none-any.whl")):
        subprocess.run(
            [str(BIN / "pip"), "download", "-q", "--no-deps", "-d", str(CACHE), f"pip=={PIP_VERSION}"], check=True
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the temporary collection tree (prints its path)")
    ap.add_argument("tests", nargs="*", help="only these sanity tests (ansible-test sanity --test NAME ...)")
    args = ap.parse_args(argv)
    start = time.monotonic()
    ensure_pip_bootstrap()
    work = Path(tempfile.mkdtemp(prefix="sparkfleet-sanity-"))
    try:
        subprocess.run(
            [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work / "dist"), str(ROOT)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tree = work / "ansible_collections" / "sparkfleet" / "fleet"
        tree.mkdir(parents=True)
        (tarball,) = (work / "dist").glob("sparkfleet-fleet-*.tar.gz")
        with tarfile.open(tarball) as tar:
            tar.extractall(tree, filter="data")
        cmd = [str(BIN / "ansible-test"), "sanity", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}"]
        cmd += ["--color", "no", *(f"--test={t}" for t in args.tests)]
        rc = subprocess.run(cmd, cwd=tree, check=False).returncode
    finally:
        if args.keep:
            print(f"sanity: the collection tree is kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"sanity: ansible-test sanity {'passed' if rc == 0 else 'FAILED'} in {time.monotonic() - start:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
