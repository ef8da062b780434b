"""lab/gpu/requirements-gpu.txt pins a closed set: every requirement of every pinned wheel is pinned there or
is on the device machine's image (lab/gpu/device-image.txt). Runs everywhere (no GPU needed); the wheel metadata
part needs the wheelhouse (lab/gpu/fetch_wheels.sh)."""

from __future__ import annotations

import re
import zipfile

import pytest

from tests.conftest import ROOT

GPU = ROOT / "lab" / "gpu"
WHEELHOUSE = GPU / "wheelhouse"
# The device machine's interpreter, for environment markers.
MARKERS = {"python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython"}
MARKERS |= {"platform_python_implementation": "CPython", "sys_platform": "linux", "extra": ""}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in (GPU / "requirements-gpu.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)", line)
        assert match, f"pin every wheel exactly (name==version): {line!r}"
        assert norm(match.group(1)) not in found, f"{match.group(1)} pinned twice"
        found[norm(match.group(1))] = match.group(2)
    return found


def image() -> set[str]:
    lines = (GPU / "device-image.txt").read_text().splitlines()
    return {norm(x.strip()) for x in lines if x.strip() and not x.startswith("#")}


def test_requirements_are_exact_pins_of_distinct_packages() -> None:
    found = pins()
    assert "fastapi" in found and "ansible-core" in found
    assert not set(found) & image(), "a package is both carried and said to be on the image"


def _marker_true(marker: str) -> bool:
    packaging_markers = pytest.importorskip("packaging.markers")
    return bool(packaging_markers.Marker(marker).evaluate(MARKERS))


@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason="no lab/gpu/wheelhouse: run lab/gpu/fetch_wheels.sh")
def test_wheelhouse_is_the_pins_and_closed() -> None:
    found = pins()
    wheels = sorted(WHEELHOUSE.glob("*.whl"))
    have = {norm(w.name.split("-")[0]): w.name.split("-")[1] for w in wheels}
    assert have == found, "the wheelhouse must hold exactly the pinned versions (run lab/gpu/fetch_wheels.sh)"
    known = set(found) | image()
    missing: list[str] = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            text = zf.read(meta).decode()
        for line in text.splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            spec, _, marker = line.split(":", 1)[1].partition(";")
            if marker.strip() and not _marker_true(marker.strip()):
                continue
            name = norm(re.split(r"[\s<>=!~\[(]", spec.strip(), maxsplit=1)[0])
            if name not in known:
                missing.append(f"{wheel.name} needs {spec.strip()}")
    assert not missing, missing
    size = sum(w.stat().st_size for w in wheels)
    assert size < 32 * 1024 * 1024, f"the wheelhouse is {size / 2**20:.1f} MiB: the device carries 64 MiB in all"
