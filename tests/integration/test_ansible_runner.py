"""site.yml through ansible-runner's Python API, the way AWX/AAP and other runners start it.

One run of site.yml on the shared converged lab host (tests/integration/served.py) with
``ansible_runner.run(private_data_dir=..., playbook=<repo>/site.yml, inventory=<its inventory>)``: the test reads
the run's status, rc and per-host stats (ok, changed, failures, unreachable) from the result, and the per-host
recap from the runner's events. The host is already converged, so the run through the runner changes nothing
(changed=0: the same idempotence the converge promises, seen through the runner's own accounting). The demo lab
runs site.yml for real in `make demo`; this test is about the runner, so it does not start a lab of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.served import NAME, ROOT
from tests.integration.test_host_runtime import LabHost

ansible_runner = pytest.importorskip("ansible_runner")

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def runner_result(served_host: LabHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    work = tmp_path_factory.mktemp("runner")
    (work / "runner").mkdir()
    yield ansible_runner.run(
        private_data_dir=str(work / "runner"),
        project_dir=str(ROOT),
        playbook=str(ROOT / "site.yml"),
        inventory=str(served_host.workdir / "inventory" / "hosts.yml"),
        limit="spark-lab",
        # The report in this run's directory, not the checkout's reports/.
        extravars={"llm_verify_report_dir": str(work / "reports")},
        envvars={
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(work / "facts"),
            "ANSIBLE_NOCOLOR": "1",
        },
        quiet=True,
        timeout=1800,
    )


def test_site_yml_through_ansible_runner_is_successful(runner_result: Any) -> None:
    tail = "".join(runner_result.stdout.readlines()[-60:]) if runner_result.rc else ""
    assert runner_result.status == "successful", tail
    assert runner_result.rc == 0, tail


def test_per_host_stats_from_the_result(runner_result: Any) -> None:
    stats = runner_result.stats
    assert stats is not None
    assert stats["ok"].get(NAME, 0) > 50, stats  # every stage ran (~130 tasks)
    assert stats["failures"].get(NAME, 0) == 0, stats
    assert stats["dark"].get(NAME, 0) == 0, stats
    assert NAME in stats["processed"], stats
    assert stats["changed"].get(NAME, 0) == 0, stats  # converged already: the runner's run changes nothing
    # The same numbers in the runner's playbook_on_stats event (what AWX stores as the job's host summaries).
    (event,) = [e for e in runner_result.events if e.get("event") == "playbook_on_stats"]
    assert event["event_data"]["ok"] == stats["ok"]
    assert event["event_data"]["changed"] == stats["changed"]


def test_the_run_wrote_its_fleet_report(runner_result: Any) -> None:
    reports = Path(runner_result.config.private_data_dir).parent / "reports" / "latest"
    assert NAME in (reports / "fleet-report.md").read_text()
