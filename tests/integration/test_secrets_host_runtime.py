"""The whole host_runtime stage at -vvvv with a known fake NGC key and HF token: neither may appear in the output,
in any unit file, or in any file on the host other than their 0600 homes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_host_runtime import FAKE_HF_TOKEN, FAKE_NGC_KEY, ROOT, LabHost, prepared_lab_host, recap

pytestmark = pytest.mark.lab

# The only file allowed to hold the secrets in clear. (root's ~/.docker/config.json holds the NGC key only
# base64-encoded together with the user name, as Docker stores it; its mode is checked too.)
SECRET_HOMES = {"/etc/sparkfleet/secrets.env"}


@pytest.fixture(scope="module")
def fresh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    """A prepared lab host on which the stage has never run: the first run passes the secrets most often."""
    yield from prepared_lab_host(tmp_path_factory)


def test_stage_at_vvvv_never_shows_the_secrets(fresh_host: LabHost) -> None:
    host = fresh_host
    rc, output = host.playbook(ROOT / "playbooks" / "host_runtime.yml", "-vvvv")
    assert rc == 0, output[-5000:]
    assert recap(output)["failed"] == 0
    assert len(output) > 50_000, "-vvvv output is suspiciously short"
    for secret in (FAKE_NGC_KEY, FAKE_HF_TOKEN):
        assert secret not in output, f"a secret appeared in the -vvvv output at {output.find(secret)}"

    # Every file on the host (units, journals, temporary files, Docker's volume) except /proc, /sys, /dev.
    grep = host.sh(
        "grep -rlaF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "
        f"-e '{FAKE_NGC_KEY}' -e '{FAKE_HF_TOKEN}' / 2>/dev/null; true"
    )
    found = set(grep.stdout.split())
    assert found == SECRET_HOMES, f"secrets found in {sorted(found - SECRET_HOMES)}"
    # And in the journal, as journalctl shows it (its files may be compressed).
    journal = host.sh("journalctl --no-pager -o cat 2>/dev/null").stdout
    assert journal, "journal is empty: the check above would prove nothing"
    assert FAKE_NGC_KEY not in journal
    assert FAKE_HF_TOKEN not in journal
    units = host.sh("systemctl cat '*' 2>/dev/null").stdout
    assert "[Service]" in units
    assert FAKE_NGC_KEY not in units
    assert FAKE_HF_TOKEN not in units

    for path in (*SECRET_HOMES, "/root/.docker/config.json"):
        assert host.sh(f"stat -c '%U %a' {path}").stdout.strip() == "root 600", path
    secrets_env = host.sh("cat /etc/sparkfleet/secrets.env").stdout
    assert f"NGC_API_KEY={FAKE_NGC_KEY}\n" in secrets_env
    assert f"HF_TOKEN={FAKE_HF_TOKEN}\n" in secrets_env
