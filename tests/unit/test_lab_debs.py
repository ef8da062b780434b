"""lab/debs.py: which .deb files an air-gapped host needs (the closure less what every Debian host has)."""

from __future__ import annotations

import pytest

from lab import debs

# apt-cache dumpavail's shape, cut down to what the resolution reads.
DUMP = """Package: libc6
Priority: optional
Version: 2.36-9

Package: dpkg
Essential: yes
Priority: required
Pre-Depends: libc6 (>= 2.34)

Package: adduser
Priority: important
Depends: passwd

Package: passwd
Priority: required
Depends: libc6

Package: prometheus
Priority: optional
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: adduser, libjs-bootstrap4, libjs-jquery | libjs-jquery-alt,
 libc6 (>= 2.34), fonts-glyphicons
Recommends: prometheus-node-exporter

Package: init-system-helpers
Essential: yes
Priority: required

Package: libjs-bootstrap4
Depends: libjs-jquery, libjs-popper.js

Package: libjs-jquery
Priority: optional

Package: libjs-popper.js

Package: fonts-glyphicons-halflings
Provides: fonts-glyphicons

Package: prometheus-node-exporter
Depends: adduser, libc6:any
"""


def test_parse_keeps_continuation_lines() -> None:
    packages = debs.parse_dumpavail(DUMP)
    assert "fonts-glyphicons" in packages["prometheus"]["Depends"]
    assert packages["dpkg"]["Essential"] == "yes"


def test_needed_is_the_closure_less_the_base_system() -> None:
    packages = debs.parse_dumpavail(DUMP)
    assert debs.needed(packages, ["prometheus", "prometheus-node-exporter"]) == [
        "adduser",
        "fonts-glyphicons-halflings",
        "libjs-bootstrap4",
        "libjs-jquery",
        "libjs-popper.js",
        "prometheus",
        "prometheus-node-exporter",
    ]


def test_a_package_the_lists_do_not_have_names_the_fix() -> None:
    with pytest.raises(debs.DebError, match="apt-get update"):
        debs.needed(debs.parse_dumpavail(DUMP), ["grafana"])
