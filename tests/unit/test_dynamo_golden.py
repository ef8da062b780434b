"""Golden tests of the seed's Dynamo deployment on lab hosts (docs/dynamo.md): the rendered unit and docker run
line of a Dynamo SGLang worker on a Spark and on a Station, of the frontend and of etcd, each also asserted flag by
flag (so a snapshot refresh cannot hide a lost flag).

Regenerate after an intended change, then review the diff:
    SPARKFLEET_UPDATE_GOLDEN=1 pytest tests/unit/test_dynamo_golden.py
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import Settings

from tests.unit.service_helpers import NO_GPU, SPARK_GPU, STATION_GPU, render
from tests.unit.test_serving_golden import FAKE_NGC_KEY, _assert_common_unit, _flag, _golden, _render

IMAGE = "nvcr.io/nvidia/ai-dynamo/sglang-runtime:0.5.0"
MODEL = "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
ETCD = "http://10.10.0.11:2379"
FAKE_HF = "hf_" + "Fake" * 10
# The seed's worker, as one service of llm_serving_services.
WORKER: dict[str, Any] = {
    "name": "dynamo-sglang-worker",
    "engine": "dynamo-sglang",
    "image": IMAGE,
    "model": MODEL,
    "dynamo_deployment": "sglang",
    "dynamo_discovery": ETCD,
    "extra_args": ["--served-model-name", MODEL, "--page-size", "16", "--tp", "1", "--trust-remote-code",
                   "--skip-tokenizer-init"],
}  # fmt: skip
FRONTEND: dict[str, Any] = {
    "name": "dynamo-frontend",
    "engine": "dynamo-frontend",
    "image": IMAGE,
    "model": MODEL,
    "dynamo_deployment": "sglang",
    "dynamo_discovery": ETCD,
}
DISCOVERY: dict[str, Any] = {
    "name": "dynamo-etcd",
    "engine": "dynamo-etcd",
    "image": "quay.io/coreos/etcd:v3.5.21",
    "model": "etcd",
    "dynamo_deployment": "sglang",
    "dynamo_discovery": ETCD,
}


def _one(svc: dict[str, Any], gpu: dict[str, Any], address: str) -> dict[str, Any]:
    settings = Settings(systemd_version=255, advertise_address=address)
    out = render(
        [svc],
        gpu,
        settings=settings,
        plan_over={"hf_token": FAKE_HF, "ngc_api_key": FAKE_NGC_KEY},
        hf_token_present=True,
    )
    assert out["errors"] == []
    [present] = out["present"]
    return dict(present)


def _env(argv: list[str]) -> None:
    assert not [a for a in argv if a in ("-e", "--env")], "environment goes through the 0600 env file only"


def _assert_dynamo_common(svc: dict[str, Any], unit: str, address: str) -> None:
    _assert_common_unit(unit, svc)
    argv = svc["docker_argv"]
    _env(argv)
    assert _flag(argv, "--network") == ["host"]  # advertises the host's address, ports chosen at run time
    assert "--publish" not in argv
    env = svc["env"]
    assert env["DYN_NAMESPACE"] == "sglang"
    assert env["DYN_REQUEST_PLANE"] == "tcp"
    assert env["DYN_DISCOVERY_BACKEND"] == "etcd"
    assert env["ETCD_ENDPOINTS"] == ETCD
    for name in ("DYN_TCP_RPC_HOST", "DYN_TCP_RESPONSE_STREAM_HOST", "DYN_EVENT_PLANE_HOST"):
        assert env[name] == address
    assert FAKE_HF not in unit
    assert FAKE_HF not in svc["docker_run"]


def _assert_worker(svc: dict[str, Any], unit: str, address: str) -> list[str]:
    _assert_dynamo_common(svc, unit, address)
    argv = svc["docker_argv"]
    assert argv[argv.index(IMAGE) + 1 :][:5] == ["python3", "-m", "dynamo.sglang", "--model-path", MODEL]
    assert _flag(argv, "--served-model-name") == [MODEL]
    assert _flag(argv, "--page-size") == ["16"]
    assert "--trust-remote-code" in argv and "--skip-tokenizer-init" in argv
    assert "--enable-cache-report" in argv and "--enable-metrics" in argv
    assert _flag(argv, "--volume") == ["/var/lib/sparkfleet/huggingface:/root/.cache/huggingface"]
    assert "--port" not in argv and "--host" not in argv  # no HTTP server of its own: the system port
    assert svc["env"]["DYN_SYSTEM_PORT"] == "9090"
    assert svc["env"]["DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS"] == '["generate"]'
    assert svc["health_paths"] == ["/health"]
    assert svc["secret_env"] == ["HF_TOKEN"]  # written by the role into the 0600 env file, never the unit
    env_file = _render("service.env.j2", svc, llm_serving_ngc_api_key="", llm_serving_hf_token=FAKE_HF)
    assert f"HF_TOKEN={FAKE_HF}\n" in env_file
    assert f"ETCD_ENDPOINTS={ETCD}\n" in env_file
    return argv


def test_sglang_worker_on_spark() -> None:
    svc = _one(WORKER, SPARK_GPU, "10.10.0.21")
    unit = _render("sparkfleet-service.service.j2", svc)
    _golden("dynamo-sglang-worker-spark.service", unit)
    _golden("dynamo-sglang-worker-spark.docker-run.txt", svc["docker_run"] + "\n")
    argv = _assert_worker(svc, unit, "10.10.0.21")
    assert _flag(argv, "--gpus") == ['"device=0"']
    assert _flag(argv, "--mem-fraction-static") == ["0.75"]  # Spark: unified memory
    assert _flag(argv, "--shm-size") == ["16g"]
    assert _flag(argv, "--ipc") == ["host"]
    assert "--attention-backend" not in argv  # a Station flag


def test_sglang_worker_on_station_gb300_is_index_1() -> None:
    svc = _one(WORKER, STATION_GPU, "10.10.0.31")
    unit = _render("sparkfleet-service.service.j2", svc)
    _golden("dynamo-sglang-worker-station.service", unit)
    _golden("dynamo-sglang-worker-station.docker-run.txt", svc["docker_run"] + "\n")
    argv = _assert_worker(svc, unit, "10.10.0.31")
    assert _flag(argv, "--gpus") == ['"device=1"']  # the GB300, not the workstation GPU at index 0
    assert _flag(argv, "--attention-backend") == ["flashinfer"]
    assert _flag(argv, "--cap-add") == ["SYS_NICE"]
    assert _flag(argv, "--ulimit") == ["memlock=-1", "stack=67108864"]
    assert _flag(argv, "--mem-fraction-static") == ["0.85"]
    assert _flag(argv, "--shm-size") == ["32g"]


def test_frontend_on_a_cpu_host() -> None:
    svc = _one(FRONTEND, NO_GPU, "10.10.0.11")
    unit = _render("sparkfleet-service.service.j2", svc)
    _golden("dynamo-frontend.service", unit)
    _golden("dynamo-frontend.docker-run.txt", svc["docker_run"] + "\n")
    _assert_dynamo_common(svc, unit, "10.10.0.11")
    argv = svc["docker_argv"]
    launch = ["python3", "-m", "dynamo.frontend", "--http-host", "0.0.0.0"]  # noqa: S104 - inside the container
    assert argv[argv.index(IMAGE) + 1 :] == [
        *launch,
        "--http-port",
        "8000",
        "--router-mode",
        "kv",
        "--migration-limit",
        "3",
    ]
    assert "--gpus" not in argv and "--shm-size" not in argv  # CPU is enough
    assert svc["secret_env"] == []  # it reads the model's files from the workers, not from Hugging Face
    assert svc["health_paths"] == ["/health", "/v1/models"]
    assert "DYN_SYSTEM_HOST" not in svc["env"]


def test_frontend_router_mode_is_overridable() -> None:
    svc = _one({**FRONTEND, "extra_args": ["--router-mode", "round-robin"]}, NO_GPU, "10.10.0.11")
    assert _flag(svc["docker_argv"], "--router-mode") == ["round-robin"]


def test_etcd_for_a_deployment_across_hosts() -> None:
    svc = _one(DISCOVERY, NO_GPU, "10.10.0.11")
    unit = _render("sparkfleet-service.service.j2", svc)
    _golden("dynamo-etcd.service", unit)
    _assert_common_unit(unit, svc)
    argv = svc["docker_argv"]
    assert _flag(argv, "--network") == ["host"]
    assert _flag(argv, "--listen-client-urls") == ["http://0.0.0.0:2379"]
    assert _flag(argv, "--advertise-client-urls") == ["http://10.10.0.11:2379"]
    assert _flag(argv, "--listen-peer-urls") == ["http://127.0.0.1:2380"]
    assert svc["health_paths"] == ["/health"]
    assert "DYN_NAMESPACE" not in svc["env"]


def test_file_discovery_on_one_host_mounts_one_directory() -> None:
    worker = {**WORKER, "dynamo_discovery": "file"}
    svc = _one(worker, SPARK_GPU, "10.10.0.21")
    path = "/var/lib/sparkfleet/dynamo/sglang"
    assert svc["env"]["DYN_DISCOVERY_BACKEND"] == "file"
    assert svc["env"]["DYN_FILE_KV"] == path
    assert f"{path}:{path}" in _flag(svc["docker_argv"], "--volume")
    assert {"path": path, "owner": "root", "group": "root", "mode": "0755"} in svc["directories"]


def test_bind_address_binds_the_worker_system_server() -> None:
    settings = Settings(systemd_version=255, advertise_address="10.10.0.21", bind_address="10.10.0.21")
    out = render([WORKER], SPARK_GPU, settings=settings, plan_over={"ngc_api_key": FAKE_NGC_KEY})
    [svc] = out["present"]
    assert svc["env"]["DYN_SYSTEM_HOST"] == "10.10.0.21"
    assert shlex.join(svc["docker_argv"]) == svc["docker_run"]
