"""Verify one model split over two lab hosts (docs/multi-host.md): llama.cpp's RPC backend, the worker's RPC
server on sfm-multihost-b holding the layers, the head's llama-server on sfm-multihost-a serving the API.

Tests run in file order; each leaves the worker and the head serving, but the last two: a teardown of one host
of the group refused, then the group torn down on both hosts."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from labtest import chat, lab_host, playbook, wait_until

HEAD = "http://127.0.0.1:8080"
MODEL = "sparkfleet/tiny-llama"
UNIT = "sparkfleet-tiny-split.service"
WORKER_ADDRESS = "172.30.67.12:50052"
REPORTS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "reports" / "latest"
# The rollout's reports apart from converge's (the report test reads those, in whichever order tests run).
ROLLOUT_REPORTS = REPORTS.parent.parent / "rollout-reports"
SCENARIO_VARS = Path(__file__).resolve().parents[1] / "vars" / "multihost.yml"
HOSTS = ("sfm-multihost-a", "sfm-multihost-b")
ENV_FILE = "/etc/sparkfleet/serving/tiny-split.env"
# The measured tok/s, kept after the scenario's hosts are gone (docs/multi-host.md quotes them).
FIGURES = Path(__file__).resolve().parents[3] / ".cache" / "molecule" / "multihost-tps.json"
testinfra_hosts = ["sfm-multihost-a"]

# Tokens per second of one stream through a server: sequential requests of a fixed length, on the host itself.
_TPS = r"""
import json, sys, time, urllib.request
url, n, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def chat(i):
    body = {"model": "m", "messages": [{"role": "user", "content": f"count {i}"}], "max_tokens": tokens,
            "ignore_eos": True}
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=60))["usage"]["completion_tokens"]
chat(-1)
start = time.monotonic()
done = sum(chat(i) for i in range(n))
print(json.dumps({"tokens": done, "seconds": round(time.monotonic() - start, 3)}))
"""


def _chat(host: Any, content: str, max_tokens: int = 8) -> tuple[int, dict[str, Any]]:
    return chat(host, HEAD, MODEL, content, max_tokens)


def _healthy(host: Any) -> bool:
    return host.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {HEAD}/health").stdout.strip() == "200"


def _tps(host: Any, url: str) -> float:
    out = host.run(f"python3 -c {shlex.quote(_TPS)} {url} 5 64")
    assert out.rc == 0, out.stderr
    result = json.loads(out.stdout)
    return float(result["tokens"]) / float(result["seconds"])


def test_the_worker_runs_the_rpc_server_and_the_head_connects_to_it(host: Any) -> None:
    worker = lab_host("sfm-multihost-b")
    assert worker.service(UNIT).is_running
    assert host.service(UNIT).is_running
    worker_unit = worker.file(f"/etc/systemd/system/{UNIT}").content_string
    assert "ggml-rpc-server -H 172.30.67.12 -p 50052" in worker_unit
    assert "(worker, rank 1 of 2: sfm-multihost-a, sfm-multihost-b)" in worker_unit
    head_unit = host.file(f"/etc/systemd/system/{UNIT}").content_string
    assert f"--rpc {WORKER_ADDRESS} -ngl 99" in head_unit
    assert "--network host" in head_unit
    # Only the head may reach the worker's RPC server (sparkfleet's firewall chain on the worker).
    rules = worker.run("iptables -S SPARKFLEET-INPUT").stdout
    assert "-A SPARKFLEET-INPUT -s 172.30.67.11/32 -p tcp -m tcp --dport 50052 -j RETURN" in rules, rules
    assert "-A SPARKFLEET-INPUT -p tcp -m tcp --dport 50052 -j DROP" in rules, rules


def test_the_heads_log_shows_the_rpc_device_and_the_offloaded_layers(host: Any) -> None:
    log = host.run("docker logs sparkfleet-tiny-split 2>&1").stdout
    assert f"using device RPC0 ({WORKER_ADDRESS})" in log, log[-3000:]
    assert "offloaded 3/3 layers to GPU" in log, log[-3000:]  # every layer on the worker
    assert f"RPC0[{WORKER_ADDRESS}] model buffer size" in log


def test_a_chat_through_the_head_answers(host: Any) -> None:
    code, reply = _chat(host, "hello across two hosts")
    assert code == 200, reply
    assert reply["usage"]["completion_tokens"] > 0, reply


def test_the_report_shows_one_service_on_two_hosts() -> None:
    report = json.loads((REPORTS / "fleet-report.json").read_text())
    rows = {(r["host"], r["service"]): r for r in report["rows"]}
    assert list(rows) == [("sfm-multihost-a", "tiny-split")]  # the worker is not an API endpoint
    assert rows[("sfm-multihost-a", "tiny-split")]["status"] == "PASS"
    markdown = (REPORTS / "fleet-report.md").read_text()
    assert (
        "- across hosts: tiny-split: one service on 2 hosts (head sfm-multihost-a; sfm-multihost-a, "
        "sfm-multihost-b): serving" in markdown
    )
    assert "- not benchmarked: sfm-multihost-b/tiny-split: worker (rank 1 of 2)" in markdown
    assert "verify.enabled is false" not in markdown
    assert "expected 1, serving 1" in markdown


def test_split_and_one_host_tokens_per_second(host: Any) -> None:
    """The same model through the head (split over both hosts) and on one host alone (a plain container on the
    head's host, removed after): both figures printed (docs/multi-host.md quotes them)."""
    split = _tps(host, HEAD)
    run = host.run(
        "docker run -d --rm --name mh-one-host --network host sparkfleet-lab/llm-standin:llama.cpp "
        "--alias one --host 127.0.0.1 --port 8099 --threads 1 --parallel 8 --ctx-size 16384"
    )
    assert run.rc == 0, run.stderr
    try:
        assert wait_until(lambda: host.run("curl -sf -m 2 http://127.0.0.1:8099/health").rc == 0, 60, 1)
        one = _tps(host, "http://127.0.0.1:8099")
    finally:
        host.run("docker rm -f mh-one-host")
    figures = {"split_2_hosts_tok_s": round(split, 1), "one_host_tok_s": round(one, 1)}
    print(f"multihost tok/s (1 stream, 64 tokens x 5): {figures}")
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures) + "\n")
    assert split > 0 and one > 0


def test_the_worker_stopped_fails_the_heads_health_and_back_heals_it(host: Any) -> None:
    worker = lab_host("sfm-multihost-b")
    worker.run(f"systemctl stop {UNIT}")
    try:
        # The head notices at its next request to the worker: llama.cpp's RPC client aborts, the unit restarts it,
        # and without the worker the head cannot load the model.
        code, _ = _chat(host, "is anyone there")
        assert code != 200
        assert wait_until(lambda: not _healthy(host), 30, 1), "the head stayed healthy without its worker"
        assert not wait_until(lambda: _healthy(host), 10, 2), "the head became healthy without its worker"
        # The fleet's status judges the service as one: failed, and both of its hosts not ok.
        status = playbook("playbooks/status.yml", "-e", f"@{SCENARIO_VARS}")
        text = status.stdout + status.stderr
        assert status.returncode != 0, text[-3000:]
        table = (REPORTS.parent / "status" / "status.txt").read_text()
        [line] = [ln for ln in table.splitlines() if ln.startswith("across hosts: tiny-split")]
        assert line.startswith("across hosts: tiny-split on sfm-multihost-a, sfm-multihost-b: FAILED: "), table
        assert "sfm-multihost-b unhealthy" in line, table
    finally:
        worker.run(f"systemctl start {UNIT}")
    assert wait_until(lambda: _healthy(host), 120, 2), "the head did not recover once the worker was back"
    code, reply = _chat(host, "welcome back")
    assert code == 200, reply


def _installed(name: str) -> str:
    """The service's unit and env file on one host, as they are now."""
    h = lab_host(name)
    return h.run(f"cat /etc/systemd/system/{UNIT} {ENV_FILE}").stdout


def _rules() -> str:
    """sparkfleet's firewall chain on the worker (who may reach its RPC port)."""
    rules: str = lab_host("sfm-multihost-b").run("iptables -S SPARKFLEET-INPUT").stdout
    assert "--dport 50052 -j DROP" in rules, rules
    return rules


def _service(**change: Any) -> dict[str, Any]:
    svc: dict[str, Any] = dict(yaml.safe_load(SCENARIO_VARS.read_text())["llm_serving_services"][0])
    svc.update(change)
    return svc


def test_a_rollout_that_fails_on_the_head_rolls_the_whole_group_back(host: Any) -> None:
    """Release 2 moves the worker's RPC port (both pieces change, and the worker's firewall rules); the head fails
    its verification (a throughput no CPU reaches): the plan keeps the two hosts in one batch, and both go back to
    release 1 together, the firewall rules with them (the old port restricted to the head again)."""
    before = {name: _installed(name) for name in HOSTS}
    rules_before = _rules()
    release2 = _service(
        dist_port=50053,
        verify={"checks": ["readiness", "chat", "load"], "concurrency": [1],
                "thresholds": {"min_output_tps": {"1": 1000000}}},
    )  # fmt: skip
    out = playbook(
        "playbooks/rolling_update.yml",
        "-e", f"@{SCENARIO_VARS}",
        extra_vars={"llm_serving_services": [release2], "llm_verify_report_dir": str(ROLLOUT_REPORTS),
                    "sparkfleet_rollout_batch": 1,
                    "sparkfleet_rollout_max_fail_percentage": 100, "llm_verify_num_prompts": 2,
                    "llm_verify_output_len": 8},
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]  # the report fails the hosts rolled back
    # One batch of both hosts, though the batch size is 1 and the canary one host: a group is never cut.
    assert "rollout of 2 host(s) in 1 batch(es) of 2" in text, text[-3000:]
    windows = [json.loads(w.read_text()) for w in (ROLLOUT_REPORTS / "latest").glob("rollout/*.jsonl")]
    outcomes = {w["host"]: w["outcome"] for w in windows}
    assert set(outcomes) == set(HOSTS), outcomes
    for name, outcome in outcomes.items():
        assert outcome.startswith("rolled back ("), (name, outcome)
        assert "goes back on all of its hosts (sfm-multihost-a, sfm-multihost-b)" in outcome, outcome
    assert "verification failed" in outcomes["sfm-multihost-a"]
    # Both pieces are release 1 again, byte for byte, and the head serves through its worker.
    assert {name: _installed(name) for name in HOSTS} == before
    assert _rules() == rules_before
    assert "--dport 50053" not in rules_before
    assert wait_until(lambda: _healthy(host), 120, 2), "the head is not healthy after the group's rollback"
    code, reply = _chat(host, "back to release one")
    assert code == 200, reply


def test_a_teardown_of_one_host_of_the_group_is_refused_and_changes_nothing() -> None:
    before = {name: _installed(name) for name in HOSTS}
    out = playbook("playbooks/teardown.yml", "-l", "sfm-multihost-b", "-e", f"@{SCENARIO_VARS}")
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert "host(s) sfm-multihost-a of the service are not in this run" in text, text[-3000:]
    assert "--limit sfm-multihost-a,sfm-multihost-b" in text
    assert {name: _installed(name) for name in HOSTS} == before


def test_a_teardown_of_the_group_removes_it_from_both_hosts() -> None:
    out = playbook("playbooks/teardown.yml", "-e", f"@{SCENARIO_VARS}")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    for name in HOSTS:
        h = lab_host(name)
        assert not h.file(f"/etc/systemd/system/{UNIT}").exists, name
        assert not h.file(ENV_FILE).exists, name
        assert h.run("docker ps -aq --filter label=org.sparkfleet.service=tiny-split").stdout.strip() == "", name
