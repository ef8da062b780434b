"""playbooks/status.yml on the shared converged lab host (tests/integration/served.py): read-only, and right.

- after converge it exits 0, the service ok (unit active, image current, healthy now, verified by site.yml);
  with and without --check it reports changed=0 and the host's files and containers are the same after;
- with the service's unit stopped it exits non-zero naming the host and the service (then the unit is started
  again and the test waits for it to answer: other tests share the host);
- with an inventory that plans another service and not this one (-e), the other is missing and this one extra.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.integration.served import GOOD, NAME, ROOT, host_state
from tests.integration.test_host_runtime import LabHost

STATUS = ROOT / "playbooks" / "status.yml"
UNIT = "sparkfleet-standin.service"

pytestmark = pytest.mark.lab


def _recap(output: str) -> dict[str, int]:
    match = re.search(rf"^{re.escape(NAME)}\s+:\s+(.*)$", output, re.MULTILINE)
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def _document(host: LabHost) -> dict[str, Any]:
    return dict(json.loads((host.workdir / "reports" / "status" / f"{NAME}.json").read_text()))


def _wait_answering(host: LabHost, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while host.sh("curl -sf -o /dev/null http://127.0.0.1:8080/v1/models").returncode != 0:
        assert time.monotonic() < deadline, host.sh(f"systemctl status {UNIT} --no-pager").stdout
        time.sleep(1)


def test_status_of_a_converged_host_is_ok_and_changes_nothing(served_host: LabHost) -> None:
    before = host_state(served_host)
    rc, output = served_host.playbook(STATUS)
    assert rc == 0, output[-6000:]
    assert _recap(output)["changed"] == 0
    assert "1 host(s): 1 ok" in output
    doc = _document(served_host)
    assert doc["verdict"] == "ok", doc
    [svc] = doc["services"]
    assert svc["name"] == GOOD["name"] and svc["state"] == "ok" and svc["drift"] == []
    assert svc["unit"]["active"] == "active" and svc["image"]["state"] == "current"
    assert svc["health"]["healthy"] is True
    assert svc["verify"]["result"] in ("PASS", "FAIL") and svc["verify"]["age_s"] is not None  # site.yml verified
    written = (served_host.workdir / "reports" / "status" / "status.txt").stat().st_mtime
    rc, output = served_host.playbook(STATUS, "--check")
    assert rc == 0, output[-6000:]
    assert _recap(output)["changed"] == 0
    assert "Check mode: nothing written." in output
    assert (served_host.workdir / "reports" / "status" / "status.txt").stat().st_mtime == written
    assert host_state(served_host) == before


def test_a_stopped_service_fails_the_status_naming_it(served_host: LabHost) -> None:
    assert served_host.sh(f"systemctl stop {UNIT}").returncode == 0
    try:
        rc, output = served_host.playbook(STATUS)
    finally:
        served_host.sh(f"systemctl start {UNIT}")
        _wait_answering(served_host)
    assert rc != 0, output[-4000:]
    assert f"1 of 1 host(s) unhealthy or drifted: {NAME}: unhealthy ({GOOD['name']})" in output, output[-4000:]
    [svc] = _document(served_host)["services"]
    assert svc["state"] == "unhealthy" and svc["unit"]["active"] in ("inactive", "failed"), svc


def test_drift_missing_and_extra(served_host: LabHost) -> None:
    ghost = {**GOOD, "name": "ghost", "port": 8090}
    rc, output = served_host.playbook(STATUS, extra_vars={"llm_serving_services": [ghost]})
    assert rc != 0, output[-4000:]
    assert f"{NAME}: drifted (ghost, {GOOD['name']})" in output, output[-4000:]
    services = {s["name"]: (s["planned"], s["drift"]) for s in _document(served_host)["services"]}
    assert services == {"ghost": ("deploy", ["missing"]), GOOD["name"]: ("extra", ["extra"])}
