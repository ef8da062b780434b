"""site.yml on the demo lab through ansible-runner's Python API, the way AWX/AAP and other runners start it.

One run of site.yml (about 2.5 minutes on a fresh lab) with ``ansible_runner.run(private_data_dir=...,
playbook=<repo>/site.yml, inventory=inventories/demo)``; the test reads the run's status, rc and per-host stats
(ok, changed, failures, unreachable) from the result, and the per-host recap from the runner's events. The demo
lab is started for the test and removed after it, unless it was already up (``make demo``), which it leaves as it
found it (a converged lab then reruns with changed=0).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import sparkfleet_lab as lab

ansible_runner = pytest.importorskip("ansible_runner")

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO = ROOT / "inventories" / "demo"
HOSTS = sorted(lab.load_lab(DEMO)["hosts"])

pytestmark = pytest.mark.lab


def _lab_is_up() -> bool:
    spec = lab.load_lab(DEMO)
    for host in spec["hosts"]:
        state = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Running}}", lab.container_name(spec, host)],
            capture_output=True,
            text=True,
            check=False,
        )
        if state.stdout.strip() != "true":
            return False
    return True


@pytest.fixture(scope="module")
def runner_result(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, bool]]:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    if subprocess.run(["docker", "image", "inspect", lab.HOST_IMAGE], capture_output=True, check=False).returncode:
        pytest.skip(f"image {lab.HOST_IMAGE} is absent: run `make images`")
    if not lab.STANDIN_ARCHIVE.is_file() or not lab.WHEELHOUSE.is_dir():
        pytest.skip(f"{lab.STANDIN_ARCHIVE} or {lab.WHEELHOUSE} is absent: run `make images`")
    was_up = _lab_is_up()
    work = tmp_path_factory.mktemp("runner")
    (work / "runner").mkdir()
    try:
        lab.lab_up(DEMO)
        result = ansible_runner.run(
            private_data_dir=str(work / "runner"),
            project_dir=str(ROOT),
            playbook=str(ROOT / "site.yml"),
            inventory=str(DEMO / "hosts.yml"),
            limit="spark-lab",
            # The report (and the gateway's endpoint file) in this run's directory, not the checkout's reports/.
            extravars={"llm_verify_report_dir": str(work / "reports")},
            envvars={
                "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(work / "facts"),
                "ANSIBLE_NOCOLOR": "1",
            },
            quiet=True,
            timeout=1800,
        )
        yield result, was_up
    finally:
        if not was_up:
            lab.lab_down(DEMO)


def test_site_yml_through_ansible_runner_is_successful(runner_result: tuple[Any, bool]) -> None:
    result, _ = runner_result
    tail = "".join(result.stdout.readlines()[-60:]) if result.rc else ""
    assert result.status == "successful", tail
    assert result.rc == 0, tail


def test_per_host_stats_from_the_result(runner_result: tuple[Any, bool]) -> None:
    result, was_up = runner_result
    stats = result.stats
    assert stats is not None
    for host in HOSTS:
        assert stats["ok"].get(host, 0) > 50, (host, stats)  # every stage ran on every host (~130 tasks)
        assert stats["failures"].get(host, 0) == 0, host
        assert stats["dark"].get(host, 0) == 0, host
        assert host in stats["processed"], host
        if not was_up:  # a fresh lab: the host runtime and the services were installed
            assert stats["changed"].get(host, 0) > 0, host
    # The same numbers in the runner's playbook_on_stats event (what AWX stores as the job's host summaries).
    (event,) = [e for e in result.events if e.get("event") == "playbook_on_stats"]
    assert event["event_data"]["ok"] == stats["ok"]
    assert event["event_data"]["changed"] == stats["changed"]


def test_the_run_wrote_its_fleet_report(
    runner_result: tuple[Any, bool], tmp_path_factory: pytest.TempPathFactory
) -> None:
    result, _ = runner_result
    reports = Path(result.config.private_data_dir).parent / "reports" / "latest"
    report = (reports / "fleet-report.md").read_text()
    for host in HOSTS:
        assert host in report
