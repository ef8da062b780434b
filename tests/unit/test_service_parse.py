"""The one parser refuses what must never reach a host: each case names the path and the fix, and no
message carries a secret. tests/integration/test_refused_inputs.py runs a selection on lab hosts and checks
that nothing on them changed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.parse import (
    parse_services,
    secret_problem,
)

from tests.unit.service_helpers import (
    NO_GPU,
    NVAPI_KEY,
    PROFILES,
    SGLANG_SERVICE,
    SPARK_GPU,
    STANDIN_SERVICE,
    make_plan,
)

HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
VAULT_HF = "my-own-hub-token-1234567890"  # not token-shaped: found because it equals sparkfleet_hf_token
OK: dict[str, Any] = SGLANG_SERVICE
CPU: dict[str, Any] = {**STANDIN_SERVICE, "command": ["--port", "8080", "--alias", "sparkfleet/tiny-llama"]}
P = "llm_serving_services[0] (sg)"
C = "llm_serving_services[0] (standin)"

# (id, services, gpu facts, plan inputs, text the error must contain)
REFUSED: list[tuple[str, Any, dict[str, Any] | None, dict[str, Any], str]] = [
    # control characters or newlines in anything that reaches a unit, an env file or a command line
    ("newline-in-model", [{**OK, "model": "Qwen/Qwen3-8B\nExecStartPre=/bin/sh"}], None, {},
     f"{P}.model contains the control character '\\n' at position 13"),
    ("newline-in-command", [{**CPU, "command": ["--alias", "a\nb"]}], NO_GPU, {}, f"{C}.command[1] contains the"),
    ("tab-in-extra-args", [{**OK, "extra_args": ["--x\t1"]}], None, {}, f"{P}.extra_args[0] contains the control"),
    ("cr-in-docker-args", [{**OK, "docker_args": ["--label", "a\rb"]}], None, {}, f"{P}.docker_args[1] contains"),
    ("newline-in-env", [{**OK, "env": {"A": "x\ny"}}], None, {}, f"{P}.env.A contains the control character"),
    ("nul-in-health-path", [{**OK, "health_paths": ["/health\x00"]}], None, {}, f"{P}.health_paths[0] contains"),
    ("newline-in-image-archive", [{**OK, "image_archive": "a.tar\n"}], None, {}, f"{P}.image_archive contains"),
    ("escape-in-name", [{**OK, "name": "sg\x1b"}], None, {}, "llm_serving_services[0].name contains the control"),
    # secrets where they do not belong
    ("hf-token-in-command", [{**CPU, "command": ["--hf-token", HF_TOKEN]}], NO_GPU, {},
     f"{C}.command[1] holds something shaped like a Hugging Face token (value not shown)"),
    ("ngc-key-in-extra-args", [{**OK, "extra_args": ["--api-key", NVAPI_KEY]}], None, {},
     f"{P}.extra_args[1] holds something shaped like an NGC API key"),
    ("vault-hf-token-in-docker-args", [{**OK, "docker_args": ["--env", f"TOKEN={VAULT_HF}"]}], None,
     {"hf_token": VAULT_HF}, f"{P}.docker_args[1] holds the value of a vault secret"),
    ("vault-ngc-key-in-env", [{**OK, "env": {"MY_KEY": NVAPI_KEY}}], None, {"ngc_api_key": NVAPI_KEY},
     f"{P}.env.MY_KEY holds the value of a vault secret"),
    ("hf-token-in-plain-env", [{**OK, "env": {"HF_TOKEN": "x"}}], None, {},
     f"{P}.env.HF_TOKEN is a secret set in plain env (value not shown): put it in the vault variable "
     "sparkfleet_hf_token"),
    ("ngc-key-in-plain-env", [{**OK, "env": {"NGC_API_KEY": "x"}}], None, {},
     "put it in the vault variable sparkfleet_ngc_api_key"),
    ("hf-token-in-model", [{**OK, "model": f"https://{HF_TOKEN}@huggingface.co/x"}], None, {},
     f"{P}.model holds something shaped like a Hugging Face token"),
    # docker_args that break the container's isolation, unless allow_host_access
    ("privileged", [{**OK, "docker_args": ["--privileged"]}], None, {},
     f"{P}.docker_args has --privileged, which gives the container every capability"),
    ("bind-root", [{**OK, "docker_args": ["-v", "/:/host"]}], None, {}, f"{P}.docker_args mounts the host's /"),
    ("bind-etc", [{**OK, "docker_args": ["--volume=/etc:/etc:ro"]}], None, {}, "mounts the host's /etc into"),
    ("mount-docker-socket", [{**OK, "docker_args": ["--mount", "type=bind,src=/var/run/docker.sock,dst=/s"]}],
     None, {}, "mounts the host's /var/run/docker.sock"),
    ("pid-host", [{**OK, "docker_args": ["--pid", "host"]}], None, {}, "has --pid host, which shares the host's"),
    ("network-host", [{**OK, "docker_args": ["--network=host"]}], None, {}, "has --network host"),
    ("cap-beyond-profile", [{**OK, "docker_args": ["--cap-add", "SYS_ADMIN"]}], None, {},
     f"{P}.docker_args adds capability SYS_ADMIN, beyond the profile's (none)"),
    ("seccomp-unconfined", [{**OK, "docker_args": ["--security-opt", "seccomp=unconfined"]}], None, {},
     "has --security-opt seccomp=unconfined"),
    ("opt-in-must-be-a-bool", [{**OK, "allow_host_access": "yes"}], None, {},
     f"{P}.allow_host_access must be true or false, got 'yes' (str)"),
    # flags that contradict the plan
    ("port-flag-differs", [{**CPU, "command": ["--port", "9000"]}], NO_GPU, {},
     f"{C}.command sets --port 9000, but the unit publishes container port 8080"),
    ("port-flag-inline-differs", [{**OK, "extra_args": ["--port=31000"]}], None, {},
     f"{P}.extra_args sets --port 31000, but the unit publishes container port 30000"),
    ("host-flag-loopback", [{**OK, "extra_args": ["--host", "127.0.0.1"]}], None, {},
     f"{P}.extra_args sets --host 127.0.0.1: inside the container the server must listen on 0.0.0.0"),
    ("mem-fraction-flag", [{**OK, "extra_args": ["--mem-fraction-static", "0.9"]}], None, {},
     f"{P}.extra_args sets --mem-fraction-static: use the service key mem_fraction"),
    ("vllm-max-model-len-flag", [{**OK, "engine": "vllm", "extra_args": ["--max-model-len=4096"]}], None, {},
     "sets --max-model-len: use the service key context_length"),
    # secrets with stray whitespace
    ("ngc-key-trailing-newline", [{**OK, "engine": "nim", "image": "nvcr.io/nim/x:1"}], None,
     {"ngc_api_key": NVAPI_KEY + "\n"}, "sparkfleet_ngc_api_key has leading or trailing whitespace or a newline"),
    ("ngc-key-leading-space", [CPU], NO_GPU, {"ngc_api_key": " " + NVAPI_KEY},
     "sparkfleet_ngc_api_key has leading or trailing whitespace"),
    ("hf-token-trailing-newline", [CPU], NO_GPU, {"hf_token": HF_TOKEN + "\n"},
     "sparkfleet_hf_token has leading or trailing whitespace or a newline"),
    # every type given as a string, out of range, or of the wrong kind; one rule for names
    ("port-as-string", [{**OK, "port": "30000"}], None, {},
     f"{P}.port must be an integer 1-65535, got '30000' (str) (write it without quotes)"),
    ("container-port-float", [{**CPU, "container_port": 8080.0}], NO_GPU, {}, ".container_port must be an integer"),
    ("context-as-string", [{**OK, "context_length": "8192"}], None, {}, ".context_length must be an integer"),
    ("health-timeout-zero", [{**OK, "health_timeout_s": 0}], None, {}, ".health_timeout_s must be an integer 1-86400"),
    ("stop-timeout-bool", [{**OK, "stop_timeout_s": True}], None, {}, ".stop_timeout_s must be an integer 1-3600"),
    ("memory-as-string", [{**OK, "memory_gb": "20"}], None, {}, ".memory_gb must be a number above 0"),
    ("mem-fraction-above-spark-max", [{**OK, "mem_fraction": 0.85}], None, {},
     f"{P}.mem_fraction is 0.85, above 0.8 (the profile's max_mem_fraction)"),
    ("gpu-index-as-string", [{**OK, "gpu": "1"}], None, {}, f"{P}.gpu is the string '1': write the GPU index as an"),
    ("model-not-a-string", [{**OK, "model": 8}], None, {}, f"{P}.model must be a string, got int"),
    ("engine-case", [{**OK, "engine": "SGLang"}], None, {},
     ".engine 'SGLang' must be one of sglang, vllm, nim, openai"),
    ("name-upper-case", [{**OK, "name": "Qwen3"}], None, {},
     "llm_serving_services[0].name 'Qwen3' must be 1-63 lower-case letters"),
    ("shm-size-bad", [{**OK, "shm_size": "lots"}], None, {}, ".shm_size is 'lots': use a docker size such as 16g"),
    ("shm-size-number", [{**OK, "shm_size": 16}], None, {}, ".shm_size must be a string, got int"),
    ("env-bool", [{**OK, "env": {"FLAG": True}}], None, {}, ".env.FLAG must be a string or a number, got bool"),
    ("extra-args-bool", [{**OK, "extra_args": ["--x", True]}], None, {}, ".extra_args[1] must be a string, got bool"),
    ("health-path-relative", [{**OK, "health_paths": ["health"]}], None, {}, ".health_paths[0] 'health' must be a"),
    ("verify-enabled-string", [{**OK, "verify": {"enabled": "no"}}], None, {}, ".verify.enabled must be true or false"),
    ("verify-unknown-key", [{**OK, "verify": {"thresold": {}}}], None, {}, ".verify.thresold is not a verify setting"),
    ("verify-concurrency-strings", [{**OK, "verify": {"concurrency": ["8"]}}], None, {},
     ".verify.concurrency must be a list of positive integers"),
    ("state-case", [{**OK, "state": "Absent"}], None, {}, ".state 'Absent' must be one of present, absent"),
    ("command-on-nim", [{**OK, "engine": "nim", "image": "nvcr.io/nim/x:1", "command": ["x"]}], None,
     {"ngc_api_key": NVAPI_KEY}, ".command is set, but a nim image runs its own server"),
    ("missing-image", [{**OK, "image": None}], None, {}, f"{P}.image is required"),
    ("empty-model", [{**OK, "model": ""}], None, {}, f"{P}.model is required"),
    ("api-key-var-holds-a-key", [{**OK, "api_key_var": "sk-abc 123"}], None, {},
     ".api_key_var 'sk-abc 123' must be a variable name (letters, digits, _), not the key itself"),
    ("api-key-env-without-var", [{**OK, "api_key_env": "VLLM_API_KEY"}], None, {},
     ".api_key_env is set but api_key_var is not"),
    ("gpu-name-not-on-host", [{**OK, "gpu": "GB300"}], None, {}, ".gpu 'GB300' matches no GPU on this host"),
    ("gpu-service-on-gpu-host-without-gpu", [OK], NO_GPU,
     {"gpu_expected": True, "gpu_expected_why": "in group dgx_spark"},
     "this host should have a GPU (in group dgx_spark) but detection found no usable one: nvidia-smi is not on the"),
]  # fmt: skip


@pytest.mark.parametrize(("services", "gpu", "over", "expected"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_naming_the_path_and_the_fix(
    services: Any, gpu: dict[str, Any] | None, over: dict[str, Any], expected: str
) -> None:
    plan = make_plan(services, gpu, **over)
    text = "\n".join(plan.errors)
    assert expected in text, text
    # Nothing deploys from a host whose plan has problems.
    assert plan.as_fact()["deploy"] == []


def test_the_table_is_large() -> None:
    assert len(REFUSED) >= 50


@pytest.mark.parametrize("secret", [HF_TOKEN, NVAPI_KEY, VAULT_HF, NVAPI_KEY + "\n"])
def test_no_message_carries_a_secret(secret: str) -> None:
    services = [
        {**OK, "extra_args": ["--token", secret], "env": {"A": secret}, "docker_args": ["-e", f"X={secret}"]},
        {**CPU, "command": [secret], "model": secret},
    ]
    plan = make_plan(services, None, hf_token=VAULT_HF, ngc_api_key=secret)
    assert plan.errors
    assert secret.strip() not in json.dumps(plan.as_fact())


def test_allow_host_access_is_the_documented_opt_in() -> None:
    svc = {**OK, "docker_args": ["--privileged", "-v", "/:/host", "--pid", "host"], "allow_host_access": True}
    assert make_plan([svc]).errors == []


def test_profile_capabilities_are_allowed() -> None:
    # The Station profile adds SYS_NICE; repeating it in docker_args is not an escalation.
    station = {**SPARK_GPU, "profile": "dgx_station"}
    assert make_plan([{**OK, "docker_args": ["--cap-add", "SYS_NICE"]}], station).errors == []


def test_same_port_and_any_host_flags_agree_with_the_plan() -> None:
    svc = {**CPU, "command": ["--host", "0.0.0.0", "--port", "8080"]}  # noqa: S104 - inside the container
    assert make_plan([svc], NO_GPU).errors == []


def test_a_port_given_nowhere_takes_the_engine_default() -> None:
    """Preflight and serving agree: a service without a port is planned on the engine's port."""
    plan = make_plan([{**OK}])
    assert plan.errors == []
    assert plan.services[0]["port"] == 30000


def test_parse_never_raises_on_garbage() -> None:
    garbage: list[Any] = [None, 1, "x", [], {}, {"name": None}, {"name": ["a"]}, {1: 2}, {"env": {None: 1}}]
    out = parse_services(garbage, profile=PROFILES["dgx_spark"])
    assert out.services == []
    assert len(out.errors) >= len(garbage) - 1


def test_secret_problem_never_echoes() -> None:
    problem = secret_problem(NVAPI_KEY + "\n", "sparkfleet_ngc_api_key")
    assert problem is not None
    assert NVAPI_KEY not in problem


@pytest.mark.parametrize(
    ("bind", "url"),
    [("", "http://127.0.0.1:8080"), ("0.0.0.0", "http://127.0.0.1:8080"), ("::", "http://[::1]:8080"),  # noqa: S104
     ("fd00::2", "http://[fd00::2]:8080"), ("10.0.0.5", "http://10.0.0.5:8080")],
)  # fmt: skip
def test_each_planned_service_has_the_url_a_client_on_the_host_uses(bind: str, url: str) -> None:
    plan = make_plan([CPU], NO_GPU, bind_address=bind)
    assert plan.services[0]["url"] == url


def test_the_api_key_reaches_the_plan_by_name_only() -> None:
    plan = make_plan([{**CPU, "api_key_var": "vault_lab_key", "api_key_env": "LLAMA_API_KEY"}], NO_GPU)
    assert plan.errors == []
    assert (plan.services[0]["api_key_var"], plan.services[0]["api_key_env"]) == ("vault_lab_key", "LLAMA_API_KEY")
