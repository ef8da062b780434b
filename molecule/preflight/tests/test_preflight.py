"""After check, converge and idempotence: preflight wrote nothing on the host (testinfra)."""

from __future__ import annotations

from typing import Any

STAMP = "/var/tmp/sfm-preflight.stamp"
# Written by the system or by Ansible's own connection, not by the stage: journald, systemd state,
# Ansible's remote temporary directories.
ALLOWED_PREFIXES = ("/var/log/", "/var/lib/systemd/", "/root/.ansible", "/home/sparkadmin/.ansible")


def test_nothing_was_written(host: Any) -> None:
    assert host.file(STAMP).exists, "prepare.yml writes the stamp before the stage runs"
    found = host.run(f"find / -xdev -newer {STAMP} -not -path '/proc/*' -not -path '/sys/*' -not -path '/dev/*' -print")
    assert found.rc == 0, found.stderr
    written = [p for p in found.stdout.splitlines() if p and not p.startswith(ALLOWED_PREFIXES)]
    # Directories whose entries changed only because of the allowed paths above, and the mount point of the
    # /tmp tmpfs (find -xdev prints it but does not descend; Ansible's connection puts its transfers there).
    written = [p for p in written if p not in ("/root", "/var/lib", "/var/log", "/home/sparkadmin", "/tmp")]
    assert written == [], f"preflight wrote: {written}"


def test_no_serving_unit_or_container(host: Any) -> None:
    assert not host.file("/etc/systemd/system/sparkfleet-standin.service").exists
    assert host.run("docker ps -aq").stdout.strip() == ""
