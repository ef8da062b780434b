#!/usr/bin/env bash
# Download every wheel of lab/gpu/requirements-gpu.txt for the device machine (CPython 3.12, manylinux x86_64)
# into lab/gpu/wheelhouse/ (git-ignored). Run it on a machine that reaches PyPI; the GPU machine has no network
# and installs from this folder alone (lab/gpu/gpu_run.sh). Prints the wheelhouse's size: everything that
# travels to the device machine must stay under 64 MiB (it is about 11 MB).
set -euo pipefail
cd "$(dirname "$0")"
PIP=${PIP:-$(command -v pip3 || echo "python3 -m pip")}
mkdir -p wheelhouse
# --no-deps: requirements-gpu.txt pins the whole closure (tests/gpu/test_wheels.py checks it is closed).
$PIP download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 \
  --abi none --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d wheelhouse -r requirements-gpu.txt
# One version of each: a stale wheel from an older pin would make the install ambiguous.
python3 - <<'PY'
import pathlib, re, sys
pins = {}
for line in pathlib.Path("requirements-gpu.txt").read_text().splitlines():
    line = line.split("#", 1)[0].strip()
    if line:
        name, version = line.split("==")
        pins[re.sub(r"[-_.]+", "_", name).lower()] = version
stale = []
for wheel in pathlib.Path("wheelhouse").glob("*.whl"):
    name, version = wheel.name.split("-")[:2]
    if pins.get(name.lower()) != version:
        stale.append(wheel)
for wheel in stale:
    print(f"removing {wheel.name}: not pinned in requirements-gpu.txt")
    wheel.unlink()
missing = set(pins) - {w.name.split("-")[0].lower() for w in pathlib.Path("wheelhouse").glob("*.whl")}
if missing:
    sys.exit(f"not downloaded: {sorted(missing)}")
PY
du -sh wheelhouse
