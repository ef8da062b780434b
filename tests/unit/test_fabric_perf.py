"""The measured fabric check (plugins/module_utils/sparkfleet/fabric_perf.py): NCCL's all_gather_perf output read as
the tool prints it (tests/fixtures/fabric/all_gather_perf-*.txt, hand-made from the nccl-tests README: see its
README), the command each head runs, the memory check, the verdicts and their messages, the module's body, the
lab's stand-ins (lab/standin/) and the fabric lines of the fleet report."""

from __future__ import annotations

import copy
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import fabric_perf
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.contracts import FABRIC_DIR
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.fabric_perf import (
    DEFAULT_MIN_BUSBW_GBS,
    ERROR,
    FAIL,
    NOT_RUN,
    PASS,
    PerfOutputError,
    command,
    judge,
    memory_need,
    memory_problems,
    parse_all_gather,
    parse_size,
    plan_checks,
    settings_from,
    verdict_line,
)
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report.write import generate

from lab.standin import all_gather_perf_standin, mpirun_standin
from tests.conftest import ROOT
from tests.unit.module_fakes import ExitJson, FailJson
from tests.unit.test_multihost import plans
from tests.unit.test_multihost_golden import LLAMA_70B

FIXTURES = ROOT / "tests" / "fixtures" / "fabric"
GIB = 1024**3
SETTINGS, _ = settings_from({})
PAIR_PLANS = {h: p["services"] for h, p in plans(LLAMA_70B).items()}


def fx(name: str) -> str:
    return (FIXTURES / name).read_text()


def pair_check() -> dict[str, Any]:
    [check] = plan_checks(PAIR_PLANS)
    return check


def verdict_of(fixture: str | None, rc: int | None = 0, **settings: Any) -> dict[str, Any]:
    """The verdict of the pair's measurement whose output is a fixture (None: not run)."""
    check, s = pair_check(), {**SETTINGS, **settings}
    outcome = None if fixture is None else (rc, fx(fixture) if fixture.endswith(".txt") else fixture, 42.0)
    return judge(check, s, command(check, s), outcome, "2026-12-07 10:00:00 UTC")


# ------------------------------------------------------------------ the tool's output


def test_a_run_on_a_switch_reads_as_printed() -> None:
    result = parse_all_gather(fx("all_gather_perf-2sparks-switch.txt"))
    assert result["busbw_gbps"] == 22.94  # out of place, the largest (only) size
    assert result["ip_busbw_gbps"] == 22.89
    assert result["avg_busbw_gbps"] == pytest.approx(22.919)
    assert result["size_bytes"] == 16 * GIB
    assert result["sizes"] == [16 * GIB]
    assert result["out_of_bounds"] == 0 and result["wrong"] == 0
    assert [r["host"] for r in result["ranks"]] == ["spark-03", "spark-04"]
    assert parse_all_gather(fx("all_gather_perf-2sparks-one-half.txt"))["busbw_gbps"] == 11.62


def test_a_sweep_is_judged_at_its_largest_size() -> None:
    text, rc = all_gather_perf_standin.render(fx("all_gather_perf-2sparks-switch.txt"), ["a", "b"], GIB, 8 * GIB, 2)
    assert rc == 0
    result = parse_all_gather(text)
    assert result["sizes"] == [GIB, 2 * GIB, 4 * GIB, 8 * GIB]
    assert result["size_bytes"] == 8 * GIB and result["busbw_gbps"] == 22.94


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (fx("all_gather_perf-2sparks-cut-short.txt"), "line 10 is not a whole result row: '17179869184"),
        ("usage: all_gather_perf [-b minbytes]\n", "neither all_gather_perf's header (# nThread ...) nor a result row"),
        ("\n".join(fx("all_gather_perf-2sparks-switch.txt").splitlines()[:9]), "header but no result row"),
        ("\n".join(fx("all_gather_perf-2sparks-switch.txt").splitlines()[:10]), "without the '# Avg bus bandwidth'"),
        (fx("all_gather_perf-2sparks-switch.txt").replace("22.9190", "fast"), "average bus bandwidth is not a number"),
        (fx("all_gather_perf-2sparks-switch.txt").replace("22.94 ", "22,94"), "line 10 is not a whole result row"),
    ],
    ids=["cut-short", "not-the-tool", "header-only", "no-summary", "bad-average", "garbled-number"],
)
def test_output_that_is_not_the_table_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(PerfOutputError, match=None) as caught:
        parse_all_gather(text)
    assert message in str(caught.value), str(caught.value)


def test_the_summary_with_a_verdict_of_its_own_and_small_numbers() -> None:
    text = fx("all_gather_perf-2sparks-switch.txt").replace("# Avg bus bandwidth    : 22.9190 ", "# Avg bus "
                                                             "bandwidth    : 1.2e-05 FAILED")  # fmt: skip
    result = parse_all_gather(text)
    assert result["avg_busbw_gbps"] == pytest.approx(1.2e-05)
    assert result["avg_status"] == "FAILED"


@pytest.mark.parametrize(("text", "size"), [("16G", 16 * GIB), ("512M", 512 * 1024**2), ("8k", 8192), ("100", 100)])
def test_sizes_read_as_nccl_tests_reads_them(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["16GB", "0", "-1G", "1.5G", "", "16 G B", True])
def test_sizes_it_does_not_read(text: Any) -> None:
    assert parse_size(text) is None


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"size": "16GB"}, "sparkfleet_fabric_perf_size '16GB' is not a size all_gather_perf reads"),
        ({"min_busbw_gbps": 0.0}, "sparkfleet_fabric_min_busbw_gbps 0.0 is not a bus bandwidth in GB/s above 0"),
        ({"min_busbw_gbps": -3.0}, "sparkfleet_fabric_min_busbw_gbps -3.0"),
        ({"timeout_s": 0}, "sparkfleet_fabric_perf_timeout_s 0 is not a number of seconds"),
        ({"mpirun": "mpirun\nrm"}, "sparkfleet_fabric_perf_mpirun"),
        ({"binary": " "}, "sparkfleet_fabric_perf_binary"),
        ({"mpirun_args": ["--mca\n"]}, "sparkfleet_fabric_perf_mpirun_args must be a list of plain strings"),
    ],
)
def test_bad_settings_name_the_variable(params: dict[str, Any], named: str) -> None:
    _, errors = settings_from(params)
    assert any(named in e for e in errors), errors


def test_the_defaults_are_nvidias_and_the_roles() -> None:
    settings, errors = settings_from({})
    assert errors == []
    assert (settings["min_busbw_gbps"], settings["size"], settings["size_bytes"]) == (21.875, "16G", 16 * GIB)
    defaults = yaml.safe_load((ROOT / "roles" / "sparkfleet_fabric" / "defaults" / "main.yml").read_text())
    assert defaults["sparkfleet_fabric_min_busbw_gbps"] == DEFAULT_MIN_BUSBW_GBS
    assert defaults["sparkfleet_fabric_perf_size"] == fabric_perf.DEFAULT_SIZE
    assert defaults["sparkfleet_fabric_perf_timeout_s"] == fabric_perf.DEFAULT_TIMEOUT_S
    assert defaults["sparkfleet_fabric_perf_mpirun"] == fabric_perf.DEFAULT_MPIRUN
    assert defaults["sparkfleet_fabric_perf_binary"] == fabric_perf.DEFAULT_BINARY
    assert defaults["sparkfleet_fabric_perf_enabled"] is False  # opt-in


# ------------------------------------------------------------------ what each head runs


def test_one_measurement_per_group_with_each_hosts_fabric_from_the_plan() -> None:
    check = pair_check()
    assert (check["service"], check["services"], check["head"]) == ("llama-70b", ["llama-70b"], "spark-03")
    assert check["hosts"] == ["spark-03", "spark-04"] and check["problems"] == []
    head, worker = check["endpoints"]
    assert (head["host"], head["rank"], head["address"], head["interface"]) == (
        "spark-03", 0, "192.168.100.13", "enp1s0f1np1")  # fmt: skip
    assert (worker["host"], worker["rank"], worker["address"]) == ("spark-04", 1, "192.168.100.14")
    # Only what reaches NCCL, UCX and OpenMPI: no MASTER_ADDR, SGLANG_HOST_IP, GLOO/TP socket names.
    assert head["env"] == {
        "NCCL_IB_HCA": "roceP2p1s0f1,rocep1s0f1",
        "NCCL_IB_SUBNET_AWARE_ROUTING": "1",
        "NCCL_SOCKET_IFNAME": "enp1s0f1np1",
        "OMPI_MCA_btl_tcp_if_include": "enp1s0f1np1",
        "UCX_NET_DEVICES": "enp1s0f1np1",
    }


def test_the_command_is_one_app_context_per_host_in_rank_order() -> None:
    check = pair_check()
    argv = command(check, SETTINGS)
    env = ["-x", "NCCL_IB_HCA=roceP2p1s0f1,rocep1s0f1", "-x", "NCCL_IB_SUBNET_AWARE_ROUTING=1",
           "-x", "NCCL_SOCKET_IFNAME=enp1s0f1np1", "-x", "OMPI_MCA_btl_tcp_if_include=enp1s0f1np1",
           "-x", "UCX_NET_DEVICES=enp1s0f1np1"]  # fmt: skip
    tool = ["all_gather_perf", "-b", "16G", "-e", "16G", "-f", "2", "-g", "1"]
    assert argv == [
        "mpirun", "-np", "1", "-H", "192.168.100.13:1", *env, *tool,
        ":", "-np", "1", "-H", "192.168.100.14:1", *env, *tool,
    ]  # fmt: skip
    settings = {**SETTINGS, "mpirun": "/usr/bin/mpirun", "mpirun_args": ["--mca", "plm_rsh_args", "-p 2222"]}
    assert command(check, settings, as_root=True)[:5] == [
        "/usr/bin/mpirun", "--allow-run-as-root", "--mca", "plm_rsh_args", "-p 2222"]  # fmt: skip
    assert fabric_perf.launch_env(check)["OMPI_MCA_btl_tcp_if_include"] == "enp1s0f1np1"  # mpirun's own interface


def test_no_secret_and_nothing_unquotable_reaches_the_command_line() -> None:
    every = copy.deepcopy(PAIR_PLANS)
    env = every["spark-04"][0]["multihost"]["env"]
    env.update(HF_TOKEN="hf_" + "a" * 34, NGC_API_KEY="nvapi-x", NCCL_DEBUG_FILE="/tmp/a b", NCCL_ALGO="Ring")
    [check] = plan_checks(every)
    text = " ".join(command(check, SETTINGS))
    assert "hf_" not in text and "nvapi" not in text and "/tmp/a b" not in text
    assert "NCCL_ALGO=Ring" in text
    assert check["problems"] == [
        "service llama-70b: host spark-04: NCCL_DEBUG_FILE of its piece's environment cannot be passed on mpirun's "
        "command line (not an interface, device, address or number). Fix: the fabric variables of the host "
        "(sparkfleet_fabric_interface, sparkfleet_fabric_hca)"
    ]


def test_two_services_on_the_same_hosts_are_measured_once() -> None:
    second = {**LLAMA_70B, "name": "qwen-235b", "port": 30001, "dist_port": 20001, "model_params_b": 8.0}
    every = {h: p["services"] for h, p in plans(LLAMA_70B).items()}
    for h, p in plans(second).items():
        every[h] = every[h] + p["services"]
    [check] = plan_checks(every)
    assert (check["service"], check["services"]) == ("llama-70b", ["llama-70b", "qwen-235b"])


def test_a_host_of_the_group_outside_the_run_is_named() -> None:
    [check] = plan_checks({"spark-03": PAIR_PLANS["spark-03"]})
    assert check["problems"] == [
        "service llama-70b: host spark-04 has no piece of it in this run's plans (outside the limit, or its plan "
        "failed). Fix: run with every host of the group (spark-03, spark-04) in the limit"
    ]


def test_skipped_and_single_host_services_are_not_measured() -> None:
    every = copy.deepcopy(PAIR_PLANS)
    for services in every.values():
        services[0]["status"] = "skipped"
    assert plan_checks(every) == []
    assert plan_checks({"spark-01": [{"name": "one", "status": "deploy"}]}) == []


# ------------------------------------------------------------------ memory


def meminfo(gib: float) -> str:
    return f"MemTotal:       125000000 kB\nMemFree:        1000 kB\nMemAvailable:   {int(gib * 1024 * 1024)} kB\n"


def test_the_memory_the_test_holds_on_each_host() -> None:
    assert memory_need(16 * GIB, 2) == pytest.approx(2.5 * 16 * GIB * 1.1, abs=1)  # about 44 GiB at NVIDIA's 16G
    check = pair_check()
    assert memory_problems(check, {"spark-03": meminfo(110), "spark-04": meminfo(100)}, SETTINGS) == []
    [low, unread] = memory_problems(check, {"spark-03": meminfo(20)}, SETTINGS)
    assert low.startswith(
        "service llama-70b: host spark-03 (interface enp1s0f1np1, 192.168.100.13) has 20 GiB available (MemAvailable),"
        " but all_gather_perf -b 16G over 2 hosts holds about 44 GiB on each"
    )
    assert "stopped (their weights hold the memory), close desktop sessions" in low
    assert "or lower sparkfleet_fabric_perf_size (NVIDIA validates with 16G)" in low
    assert unread.startswith("service llama-70b: host spark-04 (interface enp1s0f1np1, 192.168.100.14): its "
                             "available memory was not read")  # fmt: skip


# ------------------------------------------------------------------ verdicts


def test_a_switch_passes_nvidias_threshold() -> None:
    v = verdict_of("all_gather_perf-2sparks-switch.txt")
    assert (v["status"], v["busbw_gbps"], v["threshold_gbps"], v["problems"]) == (PASS, 22.94, 21.875, [])
    assert v["avg_busbw_gbps"] == pytest.approx(22.919) and v["rc"] == 0 and v["seconds"] == 42.0
    assert v["schema"] == "sparkfleet.fabric_perf/v1"
    assert shlex.split(v["command"])[:5] == ["mpirun", "-np", "1", "-H", "192.168.100.13:1"]
    assert verdict_line(v) == (
        "fabric: llama-70b: 22.94 GB/s bus bandwidth at 16 GiB (all_gather_perf, out of place; average 22.92) >= "
        "21.875 GB/s: PASS (spark-03 enp1s0f1np1 192.168.100.13, spark-04 enp1s0f1np1 192.168.100.14; measured "
        "2026-12-07 10:00:00 UTC)"
    )
    assert json.loads(json.dumps(v)) == v  # plain data


def test_one_half_of_the_port_fails_and_each_problem_names_host_interface_and_fix() -> None:
    v = verdict_of("all_gather_perf-2sparks-one-half.txt")
    assert (v["status"], v["busbw_gbps"]) == (FAIL, 11.62)
    [problem] = v["problems"]
    assert problem.startswith(
        "service llama-70b: all_gather_perf measured 11.62 GB/s bus bandwidth (out of place, 16 GiB) across spark-03 "
        "(interface enp1s0f1np1, 192.168.100.13, NCCL_IB_HCA roceP2p1s0f1,rocep1s0f1) and spark-04 (interface "
        "enp1s0f1np1, 192.168.100.14, NCCL_IB_HCA roceP2p1s0f1,rocep1s0f1), below 21.875 GB/s (175 Gb/s, "
        "sparkfleet_fabric_min_busbw_gbps); about half of it, what one half of the CX-7 port gives. Fix:"
    )
    for fix in ("both halves of the CX-7 port", "NCCL_IB_HCA", "MTU 9000", "firmware from 2026-04", "ring"):
        assert fix in problem, fix
    assert "< 21.875 GB/s: FAIL" in verdict_line(v)
    # On a ring NVIDIA wants 10 GB/s: the same run passes.
    assert verdict_of("all_gather_perf-2sparks-one-half.txt", min_busbw_gbps=10.0)["status"] == PASS


def test_a_host_with_one_rdma_device_is_named() -> None:
    every = copy.deepcopy(PAIR_PLANS)
    every["spark-04"][0]["multihost"]["hca"] = ["rocep1s0f1"]
    [check] = plan_checks(every)
    v = judge(check, SETTINGS, command(check, SETTINGS), (0, fx("all_gather_perf-2sparks-one-half.txt"), 1.0))
    assert v["problems"][1] == (
        "service llama-70b: host spark-04 (interface enp1s0f1np1, 192.168.100.14): NCCL_IB_HCA names 1 RDMA "
        "device(s) (rocep1s0f1), one half of the port at most. Fix: set sparkfleet_fabric_hca on spark-04 to the up "
        "devices of both halves (ibdev2netdev, e.g. rocep1s0f1,roceP2p1s0f1)"
    )


def test_a_run_that_died_names_the_host_and_the_fix() -> None:
    v = verdict_of("all_gather_perf-2sparks-nccl-failure.txt", rc=2)
    assert v["status"] == ERROR and v["busbw_gbps"] is None
    [problem] = v["problems"]
    assert problem.startswith(
        "service llama-70b: all_gather_perf failed on host spark-04 (interface enp1s0f1np1, 192.168.100.14): NCCL "
        "'remote process exited or there was a network error / NET/IB : Got completion from peer"
    )
    assert "Fix: check that NCCL_SOCKET_IFNAME and NCCL_IB_HCA name this host's CX-7 interface" in problem
    assert "Exit code:    2" in "\n".join(v["output_tail"])
    assert verdict_line(v).startswith("fabric: llama-70b: ERROR (spark-03 enp1s0f1np1 192.168.100.13, ")


def test_a_rank_killed_for_memory() -> None:
    [problem] = verdict_of("all_gather_perf-2sparks-killed.txt", rc=137)["problems"]
    assert problem.startswith(
        "service llama-70b: all_gather_perf: rank 1 on host spark-04 (interface enp1s0f1np1, 192.168.100.14) was "
        "killed by signal 9 (Killed) (the kernel's OOM killer, most likely: too little free memory). Fix:"
    )


def test_garbled_output_is_an_error_that_says_so() -> None:
    [problem] = verdict_of("all_gather_perf-2sparks-cut-short.txt", rc=0)["problems"]
    assert "all_gather_perf's output across spark-03" in problem
    assert "cannot be read (exit code 0): line 10 is not a whole result row" in problem
    assert "sparkfleet_fabric_perf_binary must be NCCL's all_gather_perf" in problem


@pytest.mark.parametrize(
    ("output", "rc", "text"),
    [
        ("# nThread 1 nGpus 1 minBytes 1\n", None, "did not finish within 300 s across spark-03 (interface"),
        ("mpirun: No such file or directory", 127, "mpirun was not found on spark-03. Fix: install OpenMPI"),
        ("mpirun was unable to find the specified executable file, and therefore\ndid not launch the job.", 1,
         "all_gather_perf was not found on every host. Fix: install OpenMPI and build nccl-tests with MPI=1"),
        ("ssh: connect to host 192.168.100.14 port 22: No route to host\nORTE was unable to reliably start one or "
         "more daemons.", 1, "could not reach host spark-04 (interface enp1s0f1np1, 192.168.100.14) over ssh (No "
         "route to host)"),
        ("Permission denied (publickey).\nORTE was unable to reliably start one or more daemons.", 1,
         "could not start its daemon on every host (spark-03: interface enp1s0f1np1, 192.168.100.13; spark-04"),
        (fx("all_gather_perf-2sparks-switch.txt").replace("22.94      0", "22.94      3"), 0,
         "found wrong results (1 row(s), 0 out-of-bounds value(s))"),
        (fx("all_gather_perf-2sparks-switch.txt"), 1, "printed its results across spark-03"),
    ],
    ids=["timeout", "no-mpirun", "no-tool", "no-route", "no-ssh-key", "wrong-results", "nonzero-exit"],
)  # fmt: skip
def test_every_other_way_a_run_goes_wrong_is_an_error(output: str, rc: int | None, text: str) -> None:
    v = verdict_of(output, rc=rc)
    assert v["status"] == ERROR
    assert any(text in p for p in v["problems"]), v["problems"]


def test_refused_and_not_run() -> None:
    check = {**pair_check(), "problems": ["service llama-70b: host spark-03 (...) has 20 GiB available"]}
    v = judge(check, SETTINGS, command(check, SETTINGS), (0, fx("all_gather_perf-2sparks-switch.txt"), 1.0))
    assert (v["status"], v["problems"], v["rc"]) == (ERROR, check["problems"], None)
    v = verdict_of(None)
    assert (v["status"], v["problems"]) == (NOT_RUN, ["under --check nothing is measured"])
    assert verdict_line(v).startswith("fabric: llama-70b: NOT RUN (")


# ------------------------------------------------------------------ the module's body


class FakeModule:
    def __init__(self, params: dict[str, Any], check_mode: bool = False) -> None:
        full: dict[str, Any] = {"meminfo": {}, "min_busbw_gbps": None, "size": "16G", "timeout_s": 300,
                                "mpirun": "mpirun", "mpirun_args": [], "binary": "all_gather_perf",
                                "measured_at": "now"}  # fmt: skip
        self.params = {**full, **params}
        self.check_mode = check_mode

    def exit_json(self, **kwargs: Any) -> None:
        raise ExitJson(kwargs)

    def fail_json(self, **kwargs: Any) -> None:
        raise FailJson(kwargs)


def run_module(params: dict[str, Any], check_mode: bool = False, output: str = "") -> tuple[dict[str, Any], list]:
    calls: list[tuple[list[str], dict[str, str], float]] = []

    def fake(argv: list[str], env: Any, timeout: float) -> tuple[int | None, str, float]:
        calls.append((argv, dict(env), timeout))
        return 0, output or fx("all_gather_perf-2sparks-switch.txt"), 38.0

    with pytest.raises(ExitJson) as caught:
        fabric_perf.run_module(FakeModule(params, check_mode), fake, euid=1000)
    return caught.value.args[0], calls


MEMINFO = {"spark-03": meminfo(110), "spark-04": meminfo(110)}


def test_the_head_measures_and_returns_a_verdict_per_service() -> None:
    result, calls = run_module({"host": "spark-03", "plans": PAIR_PLANS, "meminfo": MEMINFO})
    assert result["changed"] is False
    [(argv, env, timeout)] = calls
    assert argv[0] == "mpirun" and "--allow-run-as-root" not in argv
    assert env["NCCL_SOCKET_IFNAME"] == "enp1s0f1np1" and timeout == 300.0
    [check] = result["checks"]
    assert check["message"] == (
        "spark-03 runs NCCL all_gather_perf -b 16G -e 16G for llama-70b across spark-03 (192.168.100.13), spark-04 "
        "(192.168.100.14): about 44 GiB of memory on each host, at most 300 s"
    )
    [v] = result["verdicts"]
    assert (v["status"], v["file"], v["measured_at"]) == (PASS, f"{FABRIC_DIR}/llama-70b.json", "now")
    assert v["line"] == verdict_line(v)


def test_a_worker_runs_nothing_and_check_mode_runs_nothing() -> None:
    result, calls = run_module({"host": "spark-04", "plans": PAIR_PLANS, "meminfo": MEMINFO})
    assert (result["checks"], result["verdicts"], calls) == ([], [], [])
    result, calls = run_module({"host": "spark-03", "plans": PAIR_PLANS, "meminfo": MEMINFO}, check_mode=True)
    assert calls == [] and result["verdicts"][0]["status"] == NOT_RUN and result["checks"][0]["problems"] == []


def test_a_host_short_of_memory_is_refused_before_anything_runs() -> None:
    short = {**MEMINFO, "spark-04": meminfo(30)}
    result, calls = run_module({"host": "spark-03", "plans": PAIR_PLANS, "meminfo": short})
    assert calls == []
    [v] = result["verdicts"]
    assert v["status"] == ERROR and "host spark-04" in v["problems"][0] and "30 GiB available" in v["problems"][0]


def test_bad_settings_fail_the_module_naming_the_variable() -> None:
    with pytest.raises(FailJson) as caught:
        fabric_perf.run_module(FakeModule({"host": "spark-03", "plans": PAIR_PLANS, "size": "lots"}))
    assert "sparkfleet_fabric_perf_size 'lots' is not a size" in caught.value.args[0]["msg"]


def test_launch_stops_a_run_past_its_timeout_and_reports_a_missing_program() -> None:
    rc, output, seconds = fabric_perf.launch(["sh", "-c", "echo started; sleep 30"], {"X": "1"}, 1.0)
    assert (rc, output.strip()) == (None, "started") and seconds < 20
    rc, output, _ = fabric_perf.launch(
        ["sh", "-c", 'echo "$NCCL_SOCKET_IFNAME"; exit 3'], {"NCCL_SOCKET_IFNAME": "x"}, 9
    )
    assert (rc, output.strip()) == (3, "x")
    rc, output, _ = fabric_perf.launch(["/nonexistent/mpirun"], {}, 9)
    assert rc == 127 and "/nonexistent/mpirun" in output


# ------------------------------------------------------------------ the lab's stand-ins


@pytest.fixture
def sshd() -> Iterator[int]:
    """A port that answers like the sshd of the two hosts (127.0.0.1, 127.0.0.2): the mpirun stand-in only connects."""
    first = socket.create_server(("127.0.0.1", 0))
    port = first.getsockname()[1]
    servers = [first, socket.create_server(("127.0.0.2", port))]
    stop = threading.Event()

    def serve(server: socket.socket) -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield port
    stop.set()
    for thread, server in zip(threads, servers, strict=True):
        thread.join()
        server.close()


def standin_run(fixture: str, port: int, argv_of: Any = None) -> subprocess.CompletedProcess[str]:
    """The module's command with the lab's stand-ins as mpirun and all_gather_perf, the hosts on loopback."""
    every = copy.deepcopy(PAIR_PLANS)
    for i, services in enumerate(every.values()):
        services[0]["multihost"]["address"] = f"127.0.0.{i + 1}"
    [check] = plan_checks(every)
    settings = {**SETTINGS, "size": "1G", "mpirun": str(ROOT / "lab" / "standin" / "mpirun_standin.py"),
                "binary": str(ROOT / "lab" / "standin" / "all_gather_perf_standin.py")}  # fmt: skip
    argv = (argv_of or command)(check, settings, os.geteuid() == 0)
    env = {
        **os.environ,
        "SPARKFLEET_STANDIN_SSH_PORT": str(port),
        "SPARKFLEET_STANDIN_FIXTURE": str(FIXTURES / fixture),
    }
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=60)


def test_the_standins_print_the_tools_shape_and_honor_b_and_e(sshd: int) -> None:
    out = standin_run("all_gather_perf-2sparks-switch.txt", sshd)
    assert out.returncode == 0, out.stderr
    result = parse_all_gather(out.stdout)
    assert (result["sizes"], result["busbw_gbps"]) == ([GIB], 22.94)
    assert [r["host"] for r in result["ranks"]] == ["127.0.0.1", "127.0.0.2"]
    # What the lab's end-to-end run sees: the same verdict as the fixture's.
    check = pair_check()
    assert judge(check, SETTINGS, [], (out.returncode, out.stdout, 1.0))["status"] == PASS
    half = standin_run("all_gather_perf-2sparks-one-half.txt", sshd)
    assert parse_all_gather(half.stdout)["busbw_gbps"] == 11.62


def test_the_standin_replays_a_run_that_died_with_this_runs_hosts(sshd: int) -> None:
    out = standin_run("all_gather_perf-2sparks-nccl-failure.txt", sshd)
    assert out.returncode == 2
    assert "127.0.0.2: Test NCCL failure common.cu:1005" in out.stdout


def test_the_mpirun_standin_refuses_what_mpirun_refuses(sshd: int) -> None:
    if os.geteuid() == 0:
        out = standin_run("all_gather_perf-2sparks-switch.txt", sshd, lambda c, s, _root: command(c, s, False))
        assert out.returncode == 1 and "mpirun has detected an attempt to run as root" in out.stderr
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    out = standin_run("all_gather_perf-2sparks-switch.txt", port)
    assert out.returncode == 1
    assert f"ssh: connect to host 127.0.0.1 port {port}: " in out.stderr
    assert "ORTE was unable to reliably start one or more daemons." in out.stderr
    with pytest.raises(mpirun_standin.Usage, match='unknown option "--frobnicate"'):
        mpirun_standin.parse(["--frobnicate", "-np", "1", "-H", "a:1", "prog"])
    options, contexts = mpirun_standin.parse(
        command(pair_check(), {**SETTINGS, "mpirun_args": ["--mca", "a", "b"]})[1:]
    )
    assert options["mca"] == {"a": "b"}
    assert [c["hosts"] for c in contexts] == [["192.168.100.13"], ["192.168.100.14"]]
    assert contexts[1]["env"]["NCCL_IB_HCA"] == "roceP2p1s0f1,rocep1s0f1"
    assert contexts[0]["args"] == ["-b", "16G", "-e", "16G", "-f", "2", "-g", "1"]


def test_the_standins_are_named_so_and_run_with_the_hosts_python() -> None:
    for name in ("mpirun_standin.py", "all_gather_perf_standin.py"):
        path = ROOT / "lab" / "standin" / name
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env python3\n") and "A STAND-IN for" in text
        assert os.access(path, os.X_OK), name
    assert sys.version_info >= (3, 10)


# ------------------------------------------------------------------ the fleet report


def report(tmp_path: Path, plans_: dict[str, Any] | None = None) -> dict[str, Any]:
    return generate(inputs=[], dest=str(tmp_path / "reports" / "run1"), expected=[], profiles={}, slow_margin=0.2,
                    run_id="run1", generated_at="", latest_link=None, check_mode=False, plans=plans_)  # fmt: skip


def keep(tmp_path: Path, verdict: dict[str, Any], name: str | None = None) -> None:
    path = tmp_path / "reports" / FABRIC_DIR / f"{name or verdict['service']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict))


def test_the_report_shows_a_fabric_line_per_group(tmp_path: Path) -> None:
    keep(tmp_path, verdict_of("all_gather_perf-2sparks-one-half.txt"))
    result = report(tmp_path, PAIR_PLANS)
    markdown = result["markdown"]
    assert "## Fabric (NCCL all_gather_perf, playbooks/fabric_check.yml)" in markdown
    assert "- fabric: llama-70b: 11.62 GB/s bus bandwidth at 16 GiB (all_gather_perf, out of place; average 11.60) " \
           "< 21.875 GB/s: FAIL (spark-03 enp1s0f1np1 192.168.100.13" in markdown  # fmt: skip
    assert "  - service llama-70b: all_gather_perf measured 11.62 GB/s" in markdown
    assert result["summary"]["fabric"][0]["status"] == FAIL
    html = (tmp_path / "reports" / "run1" / "fleet-report.html").read_text()
    assert 'id="fabric"' in html and '<span class="badge fail">FAIL</span>' in html


def test_the_report_leaves_out_results_of_other_hosts_and_skips_what_is_not_one(tmp_path: Path) -> None:
    stale = {**verdict_of("all_gather_perf-2sparks-switch.txt"), "hosts": ["spark-03", "spark-09"]}
    keep(tmp_path, stale)
    keep(tmp_path, {"schema": "something/v1", "service": "x"}, "x")
    (tmp_path / "reports" / FABRIC_DIR / "broken.json").write_text("{")
    result = report(tmp_path, PAIR_PLANS)
    assert "## Fabric" not in result["markdown"] and result["summary"]["fabric"] == []
    notes = result["summary"]["warnings"]
    assert "fabric/broken.json: skipped: not a readable JSON file (JSONDecodeError)" in notes
    assert "fabric/x.json: skipped: not a fabric check result (schema is 'something/v1', expected " \
           "'sparkfleet.fabric_perf/v1')" in notes  # fmt: skip
    assert "- report input: fabric/broken.json: skipped" in result["markdown"]
    # Without plans every result is shown.
    assert "fabric: llama-70b: 22.94 GB/s" in report(tmp_path)["markdown"]


def test_the_report_escapes_what_a_result_says(tmp_path: Path) -> None:
    hostile = {**verdict_of("all_gather_perf-2sparks-cut-short.txt"), "problems": ["<script>x</script> | y"]}
    keep(tmp_path, hostile)
    result = report(tmp_path)
    assert "  - <script>x</script> \\| y" in result["markdown"]
    html = (tmp_path / "reports" / "run1" / "fleet-report.html").read_text()
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
