"""A fleet of five lab hosts and playbooks/rolling_update.yml: canary, batches, failure budget, rollback.

1. v1 converged on all five. A rollout of v2 in batches of 2 after the canary ([01], [02, 03], [04, 05]) with one
   host made to fail its health gate (fleet-03: docker rejects its container) and one host stopped (fleet-05,
   unreachable), budget 40% (2 of 5 hosts): fleet-03 is rolled back and still serves v1 (the report counts it
   serving), fleet-05 is reported down or unreachable, every other host is updated, fleet-04 in the batch after
   the failure (the budget is not spent). A client sends requests to every live host during the rollout: no request
   fails on a host outside that host's own update window.
2. A broken release (the server refuses a flag) stops at the canary, rolled back; every other host is not reached
   and its unit is byte for byte what it was. The report says all five serve, the version they served before.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import sparkfleet_lab as lab

ROOT = Path(__file__).resolve().parent.parent.parent
FLEET = Path(__file__).resolve().parent / "fleet"
HOSTS: dict[str, str] = yaml.safe_load((FLEET / "lab.yml").read_text())["hosts"]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
UNIT = "/etc/systemd/system/sparkfleet-standin.service"
# The rollout of v2: FAILING fails its health gate in the first batch after the canary, DOWN is stopped.
FAILING, DOWN = "fleet-03", "fleet-05"

pytestmark = [pytest.mark.lab, pytest.mark.fleet]


def _container(host: str) -> str:
    return f"sparkfleet-fleet-{host}"


def _playbook(playbook: str, workdir: Path, extra: dict[str, Any], *args: str) -> tuple[int, str]:
    varsfile = workdir / f"vars-{time.monotonic_ns()}.json"
    varsfile.write_text(json.dumps({"llm_verify_report_dir": str(workdir / "reports"), **extra}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts")}  # fmt: skip
    cmd = [str(ANSIBLE_PLAYBOOK), str(ROOT / "playbooks" / playbook), "-i", str(FLEET / "hosts.yml")]
    proc = subprocess.run([*cmd, "-e", f"@{varsfile}", *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=1500, check=False)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def _unit(host: str) -> str:
    out = subprocess.run(["docker", "exec", _container(host), "cat", UNIT], capture_output=True, text=True, check=False)
    return out.stdout


def _report(workdir: Path) -> dict[str, Any]:
    return dict(json.loads((workdir / "reports" / "latest" / "fleet-report.json").read_text()))


def _outcomes(workdir: Path) -> dict[str, str]:
    hosts = _report(workdir)["reconciliation"]["hosts"]
    return {h["host"]: h.get("outcome") or "" for h in hosts}


class Client(threading.Thread):
    """Requests to every host in turn, each result recorded with its time (the controller's clock)."""

    def __init__(self, hosts: list[str]) -> None:
        super().__init__(daemon=True)
        self.hosts = hosts
        self.results: list[tuple[float, str, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        body = json.dumps({"model": "sparkfleet/tiny-llama", "max_tokens": 4,
                           "messages": [{"role": "user", "content": "hello"}]}).encode()  # fmt: skip
        while not self.stop.is_set():
            for host in self.hosts:
                req = urllib.request.Request(
                    f"http://{HOSTS[host]}:8080/v1/chat/completions",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                start = time.time()
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - same
                        ok = resp.status == 200
                except (OSError, urllib.error.URLError):
                    ok = False
                self.results.append((start, host, ok))
            time.sleep(0.2)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    probe = subprocess.run(["docker", "image", "inspect", lab.HOST_IMAGE], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the lab host image is absent: run `make images`")
    if not lab.STANDIN_ARCHIVE.is_file():
        pytest.skip(f"{lab.STANDIN_ARCHIVE} is absent: run `make images`")
    workdir = tmp_path_factory.mktemp("fleet")
    lab.lab_down(FLEET)
    try:
        lab.lab_up(FLEET)
        rc, out = _playbook("serving.yml", workdir, {})
        assert rc == 0, out[-6000:]
        yield workdir
    finally:
        lab.lab_down(FLEET)


def test_rollout_rolls_back_a_failing_host_and_counts_an_unreachable_one(fleet: Path) -> None:
    subprocess.run(["docker", "stop", _container(DOWN)], capture_output=True, check=True)
    live = [h for h in HOSTS if h != DOWN]
    client = Client(live)
    client.start()
    try:
        rc, out = _playbook("rolling_update.yml", fleet, {
            "fleet_test_version": 2, "fleet_test_break_on": [FAILING],
            "sparkfleet_rollout_batch": 2, "sparkfleet_rollout_max_fail_percentage": 40,
        })  # fmt: skip
    finally:
        client.stop.set()
        client.join(timeout=30)
    assert rc != 0, out[-4000:]  # a rolled-back host fails the run
    outcomes = _outcomes(fleet)
    assert outcomes[FAILING].startswith("rolled back (standin failed its health gate"), outcomes
    # docker refuses the change at once: judged failed after two exits, not at systemd's start limit
    assert "exited 2 time(s) before it was ever healthy" in outcomes[FAILING], outcomes
    assert re.search(r": standin back to \S+, healthy$", outcomes[FAILING]), outcomes
    assert outcomes[DOWN] == "the host failed or was unreachable before verification", outcomes
    assert {h for h, o in outcomes.items() if o == "updated"} == set(live) - {FAILING}, outcomes
    assert "--parallel 3" in _unit(FAILING)  # still v1, serving
    assert all("--parallel 4" in _unit(h) for h in live if h != FAILING)
    # The client: zero failed requests on a host outside that host's own update window.
    windows = {}
    for path in (fleet / "reports" / "latest" / "rollout").glob("*.jsonl"):
        w = json.loads(path.read_text())
        windows[w["host"]] = (w["started"] - 1.0, w["finished"] + 1.0)
    # The batches the plan computed once (canary, then 2 at a time) are the ones the update play ran; the last
    # batch's fleet-04 was updated after FAILING's batch (DOWN, its batch mate, has no window).
    assert "rollout of 5 host(s) in 3 batch(es) of 1, 2, 2" in " ".join(out.split()), out[-4000:]
    batches = [["fleet-01"], ["fleet-02", "fleet-03"], ["fleet-04"]]
    for before_, after in itertools.pairwise(batches):
        assert max(windows[h][1] for h in before_) <= min(windows[h][0] for h in after) + 2.0, windows
    outside = [(t, h) for t, h, ok in client.results if not ok and not (windows[h][0] <= t <= windows[h][1])]
    assert len(client.results) > 50
    assert outside == [], outside[:10]
    failed_inside = sum(1 for _, _, ok in client.results if not ok)
    print(f"client: {len(client.results)} requests during the rollout, {failed_inside} failed, each inside the "
          "update window of the host it was sent to")  # fmt: skip
    # Serving counts what answers, whichever version: FAILING serves v1 again (rolled back), DOWN is down.
    rec = _report(fleet)["reconciliation"]
    assert rec["line"] == "expected 5, serving 4 (1 rolled back; 0 skipped by choice, 1 missing)", rec["line"]
    serves = {h["host"]: (h["serves"], h["why"]) for h in rec["hosts"]}
    assert serves[FAILING] == ("the previous version", "rolled back"), serves
    assert serves[DOWN] == ("unknown", "down or unreachable"), serves
    assert all(serves[h] == ("this run's version", "updated") for h in live if h != FAILING), serves
    assert [m["host"] for m in rec["missing"]] == [DOWN], rec["missing"]
    assert re.search(r"the rollout stops: \d", out) is None  # 2 of 5 is within the 40% budget


def test_a_broken_release_stops_at_the_canary(fleet: Path) -> None:
    subprocess.run(["docker", "start", _container(DOWN)], capture_output=True, check=True)
    lab.wait_for(f"sshd on {DOWN}", lambda: lab.ssh_open(HOSTS[DOWN]), 60)
    before = {h: _unit(h) for h in HOSTS}
    rc, out = _playbook("rolling_update.yml", fleet, {"fleet_test_version": 3, "fleet_test_broken": True})
    assert rc != 0, out[-4000:]
    assert "the rollout stops: 1 of 5 host(s) failed" in " ".join(out.split())
    outcomes = _outcomes(fleet)
    canary = [h for h, o in outcomes.items() if o.startswith("rolled back")]
    assert len(canary) == 1, outcomes
    others = [h for h in HOSTS if h != canary[0]]
    assert all(outcomes[h].startswith("not reached") for h in others), outcomes
    # Every host still answers, the version it served before: nothing is missing.
    rec = _report(fleet)["reconciliation"]
    assert rec["line"] == "expected 5, serving 5 (1 rolled back, 4 not reached)", rec["line"]
    assert rec["missing"] == [] and rec["ok"] is True, rec["missing"]
    serves = {h["host"]: (h["serves"], h["why"]) for h in rec["hosts"]}
    assert serves == {h: ("the previous version", "rolled back" if h == canary[0] else "not reached") for h in HOSTS}
    markdown = (fleet / "reports" / "latest" / "fleet-report.md").read_text()
    assert markdown.rstrip().endswith("**expected 5, serving 5 (1 rolled back, 4 not reached)**")
    for host in HOSTS:
        assert _unit(host) == before[host], host  # the canary restored, the others untouched


@pytest.mark.parametrize(
    ("extra", "args", "expected"),
    [
        ({"sparkfleet_rollout_batch": 0}, (),
         "bad rollout settings: sparkfleet_rollout_batch \"0\" must be a host count"),
        ({"sparkfleet_rollout_max_fail_percentage": 150}, (),
         "sparkfleet_rollout_max_fail_percentage \"150\" must be a number from 0 to 100"),
        ({"llm_serving_services": [{"name": "standin", "engine": "openai", "model": "m", "gpu": "none",
           "image": "sparkfleet-lab/llm-standin:not-staged", "port": 8080}]}, (),
         "use images that are neither in the host's docker store nor in a readable image_archive"),
        ({}, ("--limit", "no-such-host"), "leaves us with no hosts to target"),
    ],
    ids=["batch-zero", "budget-150", "image-not-staged", "limit-matches-nothing"],
)  # fmt: skip
def test_bad_rollout_input_is_refused_before_any_host_changes(
    fleet: Path, extra: dict[str, Any], args: tuple[str, ...], expected: str
) -> None:
    before = {h: _unit(h) for h in HOSTS}
    rc, out = _playbook("rolling_update.yml", fleet, extra, *args)
    assert rc != 0, out[-3000:]
    assert expected in " ".join(out.split()), out[-3000:]
    assert {h: _unit(h) for h in HOSTS} == before
