"""The measured fabric check end to end on the scenario's two hosts (docs/multi-host.md, "The measured check"):
playbooks/fabric_check.yml, through fabric-stage.yml, with the lab's stand-ins for OpenMPI's mpirun and NCCL's
all_gather_perf (lab/standin/: the lab has no NCCL; the all_gather_perf stand-in replays a hand-made fixture of the
tool's output, tests/fixtures/fabric/, with the -b/-e it is given). Real: the opt-in refusal, the plan, the memory
read on both hosts, the command fabric_perf.py builds and the head runs (an app context per host on its fabric
address, each host's ssh port reached by the mpirun stand-in), the verdict and its messages, the result kept for
the fleet report, and the report's fabric line after the verify stage. A run that died (NCCL's error on a host,
rc 2) is tested on the fixture and through the stand-ins in tests/unit/test_fabric_perf.py.

Runs before test_multihost.py (file order) and leaves the service serving and a passing result kept."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from labtest import ROOT, playbook

SCENARIO = Path(__file__).resolve().parents[1]
SCENARIO_VARS = SCENARIO / "vars" / "multihost.yml"
STAGE = str((SCENARIO / "fabric-stage.yml").relative_to(ROOT))
SERVICE: dict[str, Any] = yaml.safe_load(SCENARIO_VARS.read_text())["llm_serving_services"][0]
HEAD, WORKER = SERVICE["hosts"]
ADDRESS = {h: yaml.safe_load((SCENARIO / "host_vars" / f"{h}.yml").read_text())["sparkfleet_fabric_address"]
           for h in SERVICE["hosts"]}  # fmt: skip
REPORTS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports"
KEPT = REPORTS / "fabric" / f"{SERVICE['name']}.json"
testinfra_hosts = [HEAD]


def _stage(fixture: str, **extra_vars: Any) -> tuple[int, str]:
    out = playbook(STAGE, "-e", f"@{SCENARIO_VARS}", extra_vars={"fabric_test_fixture": fixture, **extra_vars})
    return out.returncode, out.stdout + out.stderr


def _kept() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(KEPT.read_text())
    return result


def _where(host: str) -> str:
    return f"host {host} (no fabric interface set (sparkfleet_fabric_interface), {ADDRESS[host]})"


def test_without_the_opt_in_nothing_is_measured() -> None:
    KEPT.unlink(missing_ok=True)
    rc, text = _stage("all_gather_perf-2sparks-switch.txt")
    assert rc != 0, text[-3000:]
    assert "it holds about 2.5 x 1G of memory on every host of a group" in text, text[-3000:]
    assert "rerun with -e sparkfleet_fabric_perf_enabled=true" in text
    assert "Fabric | Measure each group" not in text
    assert not KEPT.exists()


def test_one_half_of_the_port_fails_naming_the_hosts_and_the_fix() -> None:
    rc, text = _stage("all_gather_perf-2sparks-one-half.txt", sparkfleet_fabric_perf_enabled=True)
    assert rc != 0, text[-3000:]
    # The progress message, then the verdict; the run fails after keeping it.
    assert (
        f"{HEAD} runs NCCL all_gather_perf -b 1G -e 1G for {SERVICE['name']} across {HEAD} ({ADDRESS[HEAD]}), "
        f"{WORKER} ({ADDRESS[WORKER]}): about 2.8 GiB of memory on each host, at most 60 s"
    ) in text, text[-3000:]
    assert f"the measured fabric check failed for {SERVICE['name']}" in text
    v = _kept()
    assert (v["status"], v["busbw_gbps"], v["threshold_gbps"], v["head"]) == ("fail", 11.62, 21.875, HEAD)
    assert v["rc"] == 0 and v["hosts"] == [HEAD, WORKER]
    # The command the head ran: an app context per host on its fabric address, the tool with -b/-e.
    for host in (HEAD, WORKER):
        assert f"-np 1 -H {ADDRESS[host]}:1 " in v["command"], v["command"]
    assert v["command"].startswith("/opt/sparkfleet-standin/mpirun_standin --allow-run-as-root -np 1")
    assert v["command"].endswith("/opt/sparkfleet-standin/all_gather_perf_standin -b 1G -e 1G -f 2 -g 1")
    [bandwidth, *per_host] = v["problems"]
    assert bandwidth.startswith(
        f"service {SERVICE['name']}: all_gather_perf measured 11.62 GB/s bus bandwidth (out of place, 1 GiB) across "
        f"{HEAD} (no fabric interface set (sparkfleet_fabric_interface), {ADDRESS[HEAD]}, no NCCL_IB_HCA) and {WORKER}"
    ), bandwidth
    assert "both halves of the CX-7 port" in bandwidth and "MTU 9000" in bandwidth and "firmware" in bandwidth
    # No RDMA device in the lab: each host is named with its interface and the fix.
    assert per_host == [
        f"service {SERVICE['name']}: {_where(h)}: NCCL_IB_HCA names 0 RDMA device(s) (none: NCCL picks its devices "
        f"itself), one half of the port at most. Fix: set sparkfleet_fabric_hca on {h} to the up devices of both "
        "halves (ibdev2netdev, e.g. rocep1s0f1,roceP2p1s0f1)"
        for h in (HEAD, WORKER)
    ], per_host


def test_a_switch_passes_and_the_fleet_report_shows_it() -> None:
    rc, text = _stage("all_gather_perf-2sparks-switch.txt", sparkfleet_fabric_perf_enabled=True)
    assert rc == 0, text[-3000:]
    v = _kept()
    assert (v["status"], v["busbw_gbps"], v["problems"]) == ("pass", 22.94, [])
    line = f"fabric: {SERVICE['name']}: 22.94 GB/s bus bandwidth at 1 GiB (all_gather_perf, out of place; average "
    assert line in text and "21.875 GB/s: PASS" in text
    # The verify stage's fleet report shows the group's fabric line (kept beside its run directories).
    out = playbook("playbooks/verify.yml", "-e", f"@{SCENARIO_VARS}")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    markdown = (REPORTS / "latest" / "fleet-report.md").read_text()
    assert "## Fabric (NCCL all_gather_perf, playbooks/fabric_check.yml)" in markdown
    assert (
        f"- {line}" in markdown
        and (
            f">= 21.875 GB/s: PASS ({HEAD} no interface set {ADDRESS[HEAD]}, {WORKER} no interface set "
            f"{ADDRESS[WORKER]}; measured "
        )
        in markdown
    ), markdown
    summary = json.loads((REPORTS / "latest" / "fleet-report.json").read_text())
    assert [f["status"] for f in summary["fabric"]] == ["pass"]
