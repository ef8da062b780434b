"""Golden tests: the rendered unit and docker run line of real-world services, each also asserted flag by flag
against the field notes (so a snapshot refresh cannot hide a lost flag).

Regenerate the golden files after an intended change, then review the diff:
    SPARKFLEET_UPDATE_GOLDEN=1 pytest tests/unit/test_serving_golden.py
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import jinja2
import pytest
from ansible.plugins.filter.core import comment
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import Settings

from tests.unit.service_helpers import NO_GPU, SPARK_GPU, STATION_GPU, render

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
TEMPLATES = ROOT / "roles" / "llm_serving" / "templates"
UPDATE = os.environ.get("SPARKFLEET_UPDATE_GOLDEN") == "1"
FAKE_NGC_KEY = "nvapi-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123456789abcdefghij"

SGLANG: dict[str, Any] = {
    "name": "sglang-qwen3-8b",
    "engine": "sglang",
    "image": "lmsysorg/sglang:latest-cu130",
    "model": "Qwen/Qwen3-8B",
    "context_length": 8192,
}
NIMS: list[dict[str, Any]] = [
    {
        "name": "nim-llama31-8b",
        "engine": "nim",
        "image": "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.0.0-dgx-spark",
        "model": "meta/llama-3.1-8b-instruct",
        "mem_fraction": 0.3,
    },
    {
        "name": "nim-qwen3-32b",
        "engine": "nim",
        "image": "nvcr.io/nim/qwen/qwen3-32b:1.0.0-dgx-spark",
        "model": "qwen/qwen3-32b",
        "port": 8001,
        "mem_fraction": 0.45,
        "env": {"NIM_MODEL_PROFILE": "auto"},
    },
]


# One example service per engine that no golden test above or in test_dynamo_golden.py renders: a new engine of
# service/model.py's ENGINES adds its example here (docs/development.md, "Add an engine"), and
# tests/unit/test_recipes.py holds that every engine has a golden unit. Engine -> (service, GPU facts).
ENGINE_EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "vllm": (
        {
            "name": "vllm-qwen3-8b",
            "engine": "vllm",
            "image": "vllm/vllm-openai:v0.11.0",
            "model": "Qwen/Qwen3-8B",
            "context_length": 8192,
        },
        SPARK_GPU,
    ),
    "openai": (
        {
            "name": "llamacpp-tiny",
            "engine": "openai",
            "image": "ghcr.io/ggml-org/llama.cpp:server",
            "model": "tiny",
            "gpu": "none",
            "port": 8080,
            "container_port": 8080,
            # llama.cpp's server listens on every address of its container (the port is published, not the host's).
            "command": ["--host", "0.0.0.0", "--port", "8080", "-m", "/models/tiny.gguf"],  # noqa: S104 - see above
        },
        NO_GPU,
    ),
    "dynamo-mocker": (
        {
            "name": "dynamo-mocker",
            "engine": "dynamo-mocker",
            "image": "sparkfleet-lab/dynamo-standin:1.6.1",
            "model": "sparkfleet/tiny",
            "dynamo_deployment": "lab",
            "extra_args": ["--model-path", "/models/tiny", "--speedup-ratio", "10"],
        },
        NO_GPU,
    ),
    # llama.cpp's server on one host (the same engine splits a model across hosts: test_multihost_golden.py).
    "llama-cpp": (
        {
            "name": "llamacpp-tiny-llama",
            "engine": "llama-cpp",
            "image": "sparkfleet-lab/llm-standin:llama.cpp",
            "model": "sparkfleet/tiny-llama",
            "gpu": "none",
            "context_length": 8192,
            "extra_args": ["--threads", "1"],
        },
        NO_GPU,
    ),
}


def _plan(services: list[dict[str, Any]], gpu: dict[str, Any], ngc: bool = False) -> list[dict[str, Any]]:
    """The plan (the one parser) then the renderer, as the preflight and serving stages run them."""
    out = render(services, gpu, plan_over={"ngc_api_key": FAKE_NGC_KEY} if ngc else {})
    assert out["errors"] == []
    return list(out["present"])


def _render(template: str, svc: dict[str, Any], **extra: Any) -> str:
    env = jinja2.Environment(  # noqa: S701 - renders unit files, not HTML, like Ansible's template module
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    env.filters["comment"] = comment
    env.trim_blocks = True  # Ansible's template module default
    ids = {f"{svc['image']}|{svc['image_archive']}": "sha256:" + "ab" * 32}
    variables = {
        "ansible_managed": "Ansible managed",
        "__llm_serving_svc": svc,
        "__llm_serving_image_ids": ids,
        **extra,
    }
    return env.get_template(template).render(**variables)


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"{path} is missing: run with SPARKFLEET_UPDATE_GOLDEN=1 and review it")
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the golden file (SPARKFLEET_UPDATE_GOLDEN=1 to refresh)"


def _unit_lines(unit: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    return keys


def _flag(argv: list[str], flag: str) -> list[str]:
    """Every value given to `flag` in argv."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def _assert_common_unit(unit: str, svc: dict[str, Any]) -> None:
    keys = _unit_lines(unit)
    name = svc["container_name"]
    assert unit.startswith("#")
    assert "Ansible managed" in "\n".join(unit.splitlines()[:3])
    assert keys["After"] == ["docker.service network-online.target"]
    assert keys["Requires"] == ["docker.service"]
    assert keys["Restart"] == ["always"]
    assert keys["RestartSec"] == ["15"]
    assert keys["RestartSteps"] == ["5"]  # systemd 255 (Ubuntu 24.04): exponential back-off
    assert keys["RestartMaxDelaySec"] == ["300"]
    # The head of a service across hosts has no start limit: it comes back whenever its workers do.
    head = (svc.get("multihost") or {}).get("role") == "head"
    assert keys["StartLimitIntervalSec"] == (["0"] if head else ["1800"])
    assert keys["StartLimitBurst"] == ["10"]
    assert keys["ExecStartPre"] == [f"-/usr/bin/docker rm -f {name}"]
    assert keys["ExecStop"] == [f"/usr/bin/docker stop -t 60 {name}"]
    assert keys["WantedBy"] == ["multi-user.target"]
    # ExecStart is the argv, quoted for systemd (which, for these arguments, splits like a POSIX shell).
    assert shlex.split(keys["ExecStart"][0]) == svc["docker_argv"]
    argv = svc["docker_argv"]
    assert argv[:6] == ["/usr/bin/docker", "run", "--rm", "--name", name, "--pull"]
    assert _flag(argv, "--pull") == ["never"]  # the unit never pulls
    assert "--runtime" not in " ".join(argv)
    assert _flag(argv, "--env-file") == [f"/etc/sparkfleet/serving/{svc['name']}.env"]


@pytest.mark.parametrize("engine", sorted(ENGINE_EXAMPLES))
def test_engine_example(engine: str) -> None:
    service, gpu = ENGINE_EXAMPLES[engine]
    out = render([service], gpu, settings=Settings(systemd_version=255, advertise_address="10.10.0.11"))
    assert out["errors"] == []
    [svc] = out["present"]
    unit = _render("sparkfleet-service.service.j2", svc)
    _golden(f"{engine}-example.service", unit)
    _golden(f"{engine}-example.docker-run.txt", svc["docker_run"] + "\n")
    _assert_common_unit(unit, svc)
    assert _flag(svc["docker_argv"], "--label") == [
        f"org.sparkfleet.service={svc['name']}",
        f"org.sparkfleet.engine={engine}",
    ]
    if gpu is NO_GPU:
        assert "--gpus" not in svc["docker_argv"]


def test_sglang_on_spark() -> None:
    [svc] = _plan([SGLANG], SPARK_GPU)
    unit = _render("sparkfleet-service.service.j2", svc)
    _golden("sglang-spark.service", unit)
    _golden("sglang-spark.docker-run.txt", svc["docker_run"] + "\n")
    _assert_common_unit(unit, svc)
    argv = svc["docker_argv"]
    assert _flag(argv, "--gpus") == ['"device=0"']
    assert _flag(argv, "--mem-fraction-static") == ["0.75"]  # Spark: 0.75 or lower, unified memory
    assert _flag(argv, "--shm-size") == ["16g"]
    assert _flag(argv, "--context-length") == ["8192"]
    assert _flag(argv, "--host") == ["0.0.0.0"]  # noqa: S104 - inside the container
    assert _flag(argv, "--port") == ["30000"]
    assert _flag(argv, "--publish") == ["30000:30000"]
    assert _flag(argv, "--volume") == ["/var/lib/sparkfleet/huggingface:/root/.cache/huggingface"]
    assert _flag(argv, "--model-path") == ["Qwen/Qwen3-8B"]
    assert "--enable-cache-report" in argv
    assert "--enable-metrics" in argv
    assert "--attention-backend" not in argv  # a Station flag
    assert argv[argv.index("lmsysorg/sglang:latest-cu130") + 1 :][:3] == ["python3", "-m", "sglang.launch_server"]
    assert svc["health_paths"] == ["/health_generate", "/v1/models"]


@pytest.mark.parametrize("gpu", ["auto", "GB300", 1])
def test_sglang_on_station_gb300_is_index_1(gpu: Any) -> None:
    [svc] = _plan([{**SGLANG, "gpu": gpu}], STATION_GPU)
    unit = _render("sparkfleet-service.service.j2", svc)
    _golden("sglang-station.service", unit)
    _golden("sglang-station.docker-run.txt", svc["docker_run"] + "\n")
    _assert_common_unit(unit, svc)
    argv = svc["docker_argv"]
    assert _flag(argv, "--gpus") == ['"device=1"']
    assert "ExecStart=/usr/bin/docker run" in unit
    assert "--gpus '\"device=1\"'" in unit  # systemd single quotes keep docker's inner double quotes
    assert _flag(argv, "--attention-backend") == ["flashinfer"]
    assert _flag(argv, "--ipc") == ["host"]
    assert _flag(argv, "--cap-add") == ["SYS_NICE"]
    assert _flag(argv, "--ulimit") == ["memlock=-1", "stack=67108864"]
    assert _flag(argv, "--mem-fraction-static") == ["0.85"]
    assert _flag(argv, "--context-length") == ["8192"]
    assert _flag(argv, "--port") == ["30000"]
    assert "--enable-cache-report" in argv
    assert "--enable-metrics" in argv


def test_station_user_flag_replaces_profile_default() -> None:
    [svc] = _plan([{**SGLANG, "extra_args": ["--attention-backend", "triton"]}], STATION_GPU)
    assert _flag(svc["docker_argv"], "--attention-backend") == ["triton"]


def test_two_nims_on_one_spark() -> None:
    present = _plan(NIMS, SPARK_GPU, ngc=True)
    assert [s["name"] for s in present] == ["nim-llama31-8b", "nim-qwen3-32b"]
    for svc, port in zip(present, [8000, 8001], strict=True):
        unit = _render("sparkfleet-service.service.j2", svc)
        _golden(f"{svc['name']}-spark.service", unit)
        _golden(f"{svc['name']}-spark.docker-run.txt", svc["docker_run"] + "\n")
        _assert_common_unit(unit, svc)
        argv = svc["docker_argv"]
        assert _flag(argv, "--publish") == [f"{port}:8000"]  # NIM listens on 8000 inside
        assert _flag(argv, "--shm-size") == ["16g"]
        assert _flag(argv, "--gpus") == ['"device=0"']
        assert _flag(argv, "--volume") == ["/opt/nim/.cache:/opt/nim/.cache"]
        assert svc["directories"] == [{"path": "/opt/nim/.cache", "owner": "1000", "group": "1000", "mode": "0755"}]
        assert svc["secret_env"] == ["NGC_API_KEY"]
        assert svc["health_paths"] == ["/v1/health/ready"]
        assert argv[-1] == svc["image"]  # configured by env, no arguments
        assert "NGC_API_KEY" not in unit
        env_file = _render("service.env.j2", svc, llm_serving_ngc_api_key=FAKE_NGC_KEY, llm_serving_hf_token="")
        assert f"NGC_API_KEY={FAKE_NGC_KEY}\n" in env_file
        assert FAKE_NGC_KEY not in unit
        assert FAKE_NGC_KEY not in svc["docker_run"]
    assert "NIM_MODEL_PROFILE=auto" in _render(
        "service.env.j2", present[1], llm_serving_ngc_api_key=FAKE_NGC_KEY, llm_serving_hf_token=""
    )


def test_cpu_service_gets_no_gpu_flags() -> None:
    svc: dict[str, Any] = {
        "name": "standin",
        "engine": "openai",
        "image": "sparkfleet-lab/llm-standin:llama.cpp",
        "model": "sparkfleet/tiny-llama",
        "gpu": "none",
        "port": 8081,
        "container_port": 8080,
        "command": ["--port", "8080"],
    }
    [r] = _plan([svc], STATION_GPU)
    argv = r["docker_argv"]
    assert "--gpus" not in argv
    assert "--ipc" not in argv  # the profile's docker_args are for GPU services
    assert "--shm-size" not in argv
    assert _flag(argv, "--publish") == ["8081:8080"]
    assert argv[-3:] == ["sparkfleet-lab/llm-standin:llama.cpp", "--port", "8080"]
