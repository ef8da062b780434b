"""Golden tests of one model across hosts (docs/multi-host.md): each host's plan (service/multihost.py) rendered
into its unit, docker run line and env file, for two Sparks serving a 70B model at TP=2 (SGLang, vLLM without
Ray, vLLM on Ray), four Sparks at TP=4, and the lab's llama.cpp RPC split over three CPU hosts. Each is also
asserted flag by flag against the field notes (so a snapshot refresh cannot hide a lost flag).

Regenerate after an intended change, then review the diff:
    SPARKFLEET_UPDATE_GOLDEN=1 pytest tests/unit/test_multihost_golden.py
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.fabric import gather
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import Settings, render_plan

from tests.unit.service_helpers import NO_GPU, PROFILES, SPARK_GPU, make_plan
from tests.unit.test_fabric import fake_tools
from tests.unit.test_serving_golden import _assert_common_unit, _flag, _golden, _render

PAIR = ["spark-03", "spark-04"]
FOUR = ["spark-01", "spark-02", "spark-03", "spark-04"]
LAB = ["lab-spark-01", "lab-spark-02", "lab-spark-03"]
GROUPS: dict[str, Any] = {"all": [*FOUR, *LAB], "spark_pair": PAIR, "spark_four": FOUR, "lab_split": LAB}
HCA = ["roceP2p1s0f1", "rocep1s0f1"]
# The 70B model of the issue: Llama 3.3 70B in bf16, about 85 GB per Spark at TP=2 (the plan's memory check).
LLAMA_70B: dict[str, Any] = {
    "name": "llama-70b",
    "engine": "sglang",
    "image": "lmsysorg/sglang:latest-cu130",
    "model": "meta-llama/Llama-3.3-70B-Instruct",
    "group": "spark_pair",
    "tensor_parallel": 2,
    "context_length": 8192,
    "model_params_b": 70.6,
    "model_dtype": "bf16",
}
# The lab's stand-in for a real split: llama.cpp's RPC backend, CPU only (TEST-NOTES).
LAB_SPLIT: dict[str, Any] = {
    "name": "standin-split",
    "engine": "llama-cpp",
    "image": "sparkfleet-lab/llm-standin:llama.cpp",
    "model": "sparkfleet/tiny-llama",
    "gpu": "none",
    "hosts": LAB,
    "extra_args": ["--threads", "1"],
}


def pair_fabric() -> dict[str, Any]:
    """Two Sparks whose fabric comes from their fabric facts (the fixtures' tools), none from host variables."""
    return {
        h: {"facts": gather(fake_tools(ip_json=f"ip-addr-{h}.json"), sys_root="/nonexistent", architecture="aarch64")}
        for h in PAIR
    }


def vars_fabric(hosts: list[str], net: str = "192.168.100", hca: bool = True) -> dict[str, Any]:
    """Fabric from host variables (sparkfleet_fabric_interface / _address / _hca)."""
    return {
        h: {"interface": "enp1s0f1np1", "address": f"{net}.{11 + i}", "hca": HCA if hca else []}
        for i, h in enumerate(hosts)
    }


def render_group(svc: dict[str, Any], hosts: list[str], fabric: dict[str, Any], gpu: dict[str, Any]) -> list[Any]:
    """Plan every host of the group, render its piece: [(host, rendered)] in rank order."""
    out = []
    for host in hosts:
        plan = make_plan([svc], gpu, host=host, groups=GROUPS, fabric=fabric)
        assert plan.errors == [], plan.errors
        rendered = render_plan(plan.as_fact(), profiles=PROFILES, settings=Settings(systemd_version=255))
        assert rendered["errors"] == []
        [present] = rendered["present"]
        out.append((host, present))
    return sorted(out, key=lambda hp: hp[1]["multihost"]["rank"])


def _env_file(svc: dict[str, Any]) -> str:
    return _render("service.env.j2", svc, llm_serving_ngc_api_key="", llm_serving_hf_token="")


def _nccl_env(env: dict[str, str], head: str) -> None:
    for name in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "TP_SOCKET_IFNAME", "UCX_NET_DEVICES",
                 "OMPI_MCA_btl_tcp_if_include"):  # fmt: skip
        assert env[name] == "enp1s0f1np1", name  # the fabric interface, not the management network's
    assert env["NCCL_IB_HCA"] == "roceP2p1s0f1,rocep1s0f1"
    assert env["MASTER_ADDR"] == head


def test_sglang_70b_on_two_sparks_tp2() -> None:
    (head_host, head), (worker_host, worker) = render_group(LLAMA_70B, PAIR, pair_fabric(), SPARK_GPU)
    assert (head_host, worker_host) == ("spark-03", "spark-04")
    for svc, role in ((head, "head"), (worker, "worker")):
        unit = _render("sparkfleet-service.service.j2", svc)
        _golden(f"multihost-sglang-70b-2sparks-{role}.service", unit)
        _golden(f"multihost-sglang-70b-2sparks-{role}.env", _env_file(svc))
        _assert_common_unit(unit, svc)
        argv = svc["docker_argv"]
        assert _flag(argv, "--network") == ["host"] and "--publish" not in argv  # NCCL opens ports at run time
        assert _flag(argv, "--device") == ["/dev/infiniband"]  # RDMA over the CX-7
        assert _flag(argv, "--ulimit") == ["memlock=-1"]
        assert _flag(argv, "--gpus") == ['"device=0"']
        assert _flag(argv, "--tp-size") == ["2"] and _flag(argv, "--pp-size") == ["1"]
        assert _flag(argv, "--nnodes") == ["2"]
        assert _flag(argv, "--dist-init-addr") == ["192.168.100.13:20000"]  # the head's CX-7 address
        assert _flag(argv, "--model-path") == ["meta-llama/Llama-3.3-70B-Instruct"]
        assert _flag(argv, "--mem-fraction-static") == ["0.75"]
        _nccl_env(svc["env"], "192.168.100.13")
    assert _flag(head["docker_argv"], "--node-rank") == ["0"]
    assert _flag(worker["docker_argv"], "--node-rank") == ["1"]
    # SGLang hangs unless its control traffic uses the fabric: SGLANG_HOST_IP is each host's own CX-7 address.
    assert head["env"]["SGLANG_HOST_IP"] == "192.168.100.13"
    assert worker["env"]["SGLANG_HOST_IP"] == "192.168.100.14"
    assert head["health_paths"] == ["/health_generate", "/v1/models"]
    assert worker["health_paths"] == []  # no API on a worker: its unit running is its health
    assert "(head, rank 0 of 2: spark-03, spark-04)" in head["unit"]["description"]


def test_sglang_on_four_sparks_tp4() -> None:
    svc = {**LLAMA_70B, "name": "llama-70b-tp4", "group": "spark_four", "tensor_parallel": 4}
    pieces = render_group(svc, FOUR, vars_fabric(FOUR), SPARK_GPU)
    _golden("multihost-sglang-4sparks.docker-run.txt", "".join(p["docker_run"] + "\n" for _h, p in pieces))
    _golden("multihost-sglang-4sparks-rank3.service", _render("sparkfleet-service.service.j2", pieces[3][1]))
    assert [h for h, _p in pieces] == FOUR
    for rank, (host, p) in enumerate(pieces):
        argv = p["docker_argv"]
        assert _flag(argv, "--node-rank") == [str(rank)], host
        assert _flag(argv, "--nnodes") == ["4"] and _flag(argv, "--tp-size") == ["4"]
        assert _flag(argv, "--dist-init-addr") == ["192.168.100.11:20000"]
        assert p["env"]["SGLANG_HOST_IP"] == f"192.168.100.{11 + rank}"


def test_sglang_head_named_and_pipeline_parallel() -> None:
    svc = {**LLAMA_70B, "group": "spark_four", "head": "spark-03", "tensor_parallel": 2, "pipeline_parallel": 2}
    pieces = render_group(svc, FOUR, vars_fabric(FOUR), SPARK_GPU)
    assert [h for h, _p in pieces] == ["spark-03", "spark-01", "spark-02", "spark-04"]
    for _host, p in pieces:
        assert _flag(p["docker_argv"], "--dist-init-addr") == ["192.168.100.13:20000"]
        assert _flag(p["docker_argv"], "--pp-size") == ["2"]


def test_vllm_without_ray_two_sparks() -> None:
    svc = {**LLAMA_70B, "engine": "vllm", "image": "vllm/vllm-openai:v0.11.0"}
    (_h0, head), (_h1, worker) = render_group(svc, PAIR, vars_fabric(PAIR), SPARK_GPU)
    _golden("multihost-vllm-mp-2sparks.docker-run.txt", head["docker_run"] + "\n" + worker["docker_run"] + "\n")
    for rank, p in enumerate((head, worker)):
        argv = p["docker_argv"]
        assert _flag(argv, "--tensor-parallel-size") == ["2"]
        assert _flag(argv, "--nnodes") == ["2"] and _flag(argv, "--node-rank") == [str(rank)]
        assert _flag(argv, "--master-addr") == ["192.168.100.11"] and _flag(argv, "--master-port") == ["29500"]
        assert _flag(argv, "--distributed-executor-backend") == ["mp"]
        assert p["env"]["VLLM_HOST_IP"] == f"192.168.100.{11 + rank}"
        _nccl_env(p["env"], "192.168.100.11")
    assert "--headless" not in head["docker_argv"]
    assert worker["docker_argv"][-1] == "--headless"
    assert worker["health_paths"] == []


def test_vllm_on_a_ray_cluster_two_sparks() -> None:
    svc = {**LLAMA_70B, "engine": "vllm", "image": "nvcr.io/nvidia/vllm:25.11-py3", "distributed_backend": "ray"}
    fabric = vars_fabric(PAIR)
    pieces = []
    for host in PAIR:
        plan = make_plan([svc], SPARK_GPU, host=host, groups=GROUPS, fabric=fabric, ngc_api_key="nvapi-" + "A" * 30)
        assert plan.errors == []
        [p] = render_plan(plan.as_fact(), profiles=PROFILES, settings=Settings(systemd_version=255))["present"]
        pieces.append(p)
    head, worker = pieces
    _golden("multihost-vllm-ray-2sparks.docker-run.txt", head["docker_run"] + "\n" + worker["docker_run"] + "\n")
    _golden("multihost-vllm-ray-2sparks-head.service", _render("sparkfleet-service.service.j2", head))
    argv = head["docker_argv"]
    assert _flag(argv, "--entrypoint") == ["/bin/bash"]
    script = argv[argv.index("-c") + 1]
    assert script.startswith("ray start --head --node-ip-address=192.168.100.11 --port=6379 && exec python3 -m ")
    assert _flag(argv, "--tensor-parallel-size") == ["2"]
    assert _flag(argv, "--distributed-executor-backend") == ["ray"]
    assert head["env"]["RAY_memory_monitor_refresh_ms"] == "0"
    wargv = worker["docker_argv"]
    assert wargv[wargv.index("-c") + 1] == (
        "exec ray start --address=192.168.100.11:6379 --node-ip-address=192.168.100.12 --block"
    )
    assert "--model" not in wargv  # a Ray worker runs no server
    assert worker["env"]["VLLM_HOST_IP"] == "192.168.100.12"
    # In the unit, $ is written $$ (systemd's own expansion): the shell still sees "$@".
    assert '"$$@"' in head["unit"]["exec_start"]


def test_llama_cpp_rpc_split_over_three_lab_hosts() -> None:
    pieces = render_group(LAB_SPLIT, LAB, vars_fabric(LAB, net="10.10.0", hca=False), NO_GPU)
    (_h0, head), (_h1, w1), (_h2, w2) = pieces
    _golden("multihost-llama-cpp-rpc-head.service", _render("sparkfleet-service.service.j2", head))
    _golden("multihost-llama-cpp-rpc-3hosts.docker-run.txt", "".join(p["docker_run"] + "\n" for _h, p in pieces))
    argv = head["docker_argv"]
    assert _flag(argv, "--rpc") == ["10.10.0.12:50052,10.10.0.13:50052"]  # every worker, in rank order
    assert _flag(argv, "-ngl") == ["99"]
    assert _flag(argv, "--alias") == ["sparkfleet/tiny-llama"] and _flag(argv, "--port") == ["8080"]
    assert "--gpus" not in argv and "--device" not in argv  # CPU over TCP: no GPU, no RDMA
    assert not [k for k in head["env"] if k.startswith(("NCCL", "UCX", "GLOO"))]
    for worker, address in ((w1, "10.10.0.12"), (w2, "10.10.0.13")):
        wargv = worker["docker_argv"]
        assert _flag(wargv, "--entrypoint") == ["/bin/sh"]
        assert wargv[-2:] == ["-c", f"exec /usr/libexec/*/llama/bin/ggml-rpc-server -H {address} -p 50052"]
        assert "--threads" not in wargv  # the head's extra_args


def test_lower_ngl_keeps_layers_on_the_head() -> None:
    svc = {**LAB_SPLIT, "extra_args": ["-ngl", "2"]}
    (_h, head), *_ = render_group(svc, LAB, vars_fabric(LAB, net="10.10.0", hca=False), NO_GPU)
    assert _flag(head["docker_argv"], "-ngl") == ["2"]


@pytest.mark.parametrize("engine", ["sglang", "vllm"])
def test_single_host_services_are_unchanged(engine: str) -> None:
    """The same service without hosts renders as it always did (no multi-node flag, no fabric env)."""
    svc = {k: v for k, v in LLAMA_70B.items() if k not in ("group", "tensor_parallel", "model_params_b")}
    plan = make_plan([{**svc, "engine": engine}], SPARK_GPU, host="spark-03", groups=GROUPS, fabric=vars_fabric(PAIR))
    [p] = render_plan(plan.as_fact(), profiles=PROFILES, settings=Settings(systemd_version=255))["present"]
    assert "--nnodes" not in p["docker_argv"] and "--network" not in p["docker_argv"]
    assert "NCCL_SOCKET_IFNAME" not in p["env"] and p["multihost"] == {}
    assert json.dumps(p)  # JSON-able, as the role registers it
