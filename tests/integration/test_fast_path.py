"""site.yml's converged-host fast path on the shared converged lab host (tests/integration/served.py;
docs/development.md, "Reruns: the converged-host fast path").

- a rerun of a converged host takes the fast path: the check says so, the converge stages run none of their tasks on
  it, verify still benchmarks it, ``changed=0``, a few dozen task results;
- drift (a managed unit file edited, its service stopped) takes the full path, which says why in one line, repairs
  both and stamps the host again; the run after is fast again;
- the stamp is root's alone (0600) and holds no secret value.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.served import GOOD, NAME, SITE
from tests.integration.test_host_runtime import LabHost

pytestmark = pytest.mark.lab

UNIT = f"sparkfleet-{GOOD['name']}.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
STAMP = "/var/lib/sparkfleet/converged.json"
CONVERGED = "converged: the stamp's digest and manifest match"
# Roles of the converge stages: none of their tasks may run on a converged host.
CONVERGE_ROLES = ("docker_host", "nvidia_toolkit", "bench_venv", "ngc_login", "hf_cache", "model_stage", "llm_serving")


def _recap(output: str) -> dict[str, int]:
    match = re.search(rf"^{re.escape(NAME)}\s+:\s+(.*)$", output, re.MULTILINE)
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def _why(output: str) -> str:
    """The check's line for the host (the debug task prints it wrapped: joined back into one line)."""
    block = output.split("Converged | Say which hosts take the fast path", 1)[1].split("PLAY [", 1)[0]
    text = " ".join(line.strip().strip("-").strip().strip("'") for line in block.splitlines()[3:])
    return re.sub(r"\s+", " ", text).replace("''", "'")


def _run(host: LabHost) -> tuple[str, dict[str, int]]:
    # The shared host's inventory converges in full (served.py: the other tests' reruns test the full converge).
    rc, output = host.playbook(SITE, extra_vars={"sparkfleet_full_converge": False})
    assert rc == 0, output[-6000:]
    return output, _recap(output)


def test_a_converged_host_takes_the_fast_path_and_drift_takes_the_full_path(served_host: LabHost) -> None:
    # Whatever the tests before left (a rollback removes the stamp), this run ends with the host stamped.
    _run(served_host)

    output, recap = _run(served_host)
    assert CONVERGED in _why(output), _why(output)
    assert recap["changed"] == 0 and recap["failed"] == 0
    assert recap["ok"] + recap["skipped"] <= 40, recap
    ran = set(re.findall(r"^TASK \[sparkfleet\.fleet\.(\w+) :", output, re.MULTILINE))
    assert ran.isdisjoint(CONVERGE_ROLES), ran
    assert "TASK [sparkfleet.fleet.llm_verify : Verify | Benchmark the service]" in output

    stamp = served_host.sh(f"stat -c '%a %U' {STAMP} && cat {STAMP}")
    assert stamp.returncode == 0, stamp.stderr
    mode_owner, _sep, body = stamp.stdout.partition("\n")
    assert mode_owner == "600 root"
    doc = json.loads(body)
    assert UNIT_PATH in doc["manifest"]["files"] and UNIT in doc["manifest"]["units"]
    assert doc["manifest"]["units"][UNIT]["active"] == "active"

    # Drift: the unit file edited by hand, the service stopped.
    edited = served_host.sh(
        f"echo '# edited by hand' >> {UNIT_PATH} && systemctl daemon-reload && systemctl stop {UNIT}"
    )
    assert edited.returncode == 0, edited.stderr
    output, recap = _run(served_host)
    why = _why(output)
    assert "full converge: the host drifted since the last full converge:" in why, why
    assert f"{UNIT_PATH}: content changed" in why and f"unit {UNIT} is inactive, was active" in why, why
    assert recap["changed"] > 0
    assert served_host.sh(f"grep -c 'edited by hand' {UNIT_PATH}").stdout.strip() == "0"
    assert served_host.sh(f"systemctl is-active {UNIT}").stdout.strip() == "active"

    output, recap = _run(served_host)
    assert CONVERGED in _why(output), _why(output)
    assert recap["changed"] == 0
