"""sparkfleet_plan_check: the one parser and the host plan (services, secrets, driver, GPU, memory, disk)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.contracts import unit_service_name
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service import parse
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service import plan as planmod
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.plan import PlanInputs, check_plan

from tests.conftest import FIXTURES, ROOT
from tests.unit.module_fakes import ExitJson

PROFILES: dict[str, Any] = yaml.safe_load((ROOT / "group_vars" / "all" / "profiles.yml").read_text())[
    "sparkfleet_profiles"
]
# Real: the facts nvidia_gpu_facts produced on an H100 (tests/fixtures/nvidia-smi/h100-device-run.json).
H100: dict[str, Any] = json.loads((FIXTURES / "nvidia-smi" / "h100-device-run.json").read_text())["nvidia_gpu"]
NO_GPU: dict[str, Any] = {
    "profile": "none",
    "serving_gpu": None,
    "gpus": [],
    "driver_version": None,
    "usable_memory_mib": None,
    "unified_memory": False,
}
_GB10 = {
    "index": 0,
    "name": "NVIDIA GB10",
    "uuid": "GPU-0b10",
    "pci_bus_id": "0000000F:01:00.0",
    "compute_capability": "12.1",
    "memory_total_mib": None,
    "memory_used_mib": None,
    "mig_mode": None,
    "unified_memory": True,
    "architecture": "Blackwell",
}
SPARK: dict[str, Any] = {
    "profile": "dgx_spark",
    "serving_gpu": _GB10,
    "gpus": [_GB10],
    "driver_version": "580.95.05",
    "unified_memory": True,
    "usable_memory_mib": 116736,  # MemAvailable of a GB10 with about 128 GB
    "system_memory_available_mib": 116736,
}
_RTX = {**_GB10, "index": 0, "name": "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "uuid": "GPU-rtx",
        "memory_total_mib": 97887, "unified_memory": False, "compute_capability": "12.0"}  # fmt: skip
_GB300 = {**_GB10, "index": 1, "name": "NVIDIA GB300", "uuid": "GPU-gb300", "memory_total_mib": 284208,
          "unified_memory": False, "compute_capability": "10.3", "mig_mode": "Disabled"}  # fmt: skip
STATION: dict[str, Any] = {
    "profile": "dgx_station",
    "serving_gpu": _GB300,
    "gpus": [_RTX, _GB300],
    "driver_version": "580.82.07",
    "unified_memory": False,
    "usable_memory_mib": 284208,
}
NVAPI_KEY = "nvapi-" + "Ab3_-" * 12
LEGACY_KEY = "a1B2c3D4e5" * 8 + "XyZ123" + "=="


def svc(**over: Any) -> dict[str, Any]:
    """A good SGLang service; keyword arguments replace keys (None removes one)."""
    base: dict[str, Any] = {
        "name": "sglang-qwen3-8b",
        "engine": "sglang",
        "image": "lmsysorg/sglang:latest-cu130",
        "model": "Qwen/Qwen3-8B",
        "port": 30000,
        "gpu": "auto",
        "model_params_b": 8.2,
        "model_dtype": "bf16",
    }
    for key, value in over.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def cpu_svc(**over: Any) -> dict[str, Any]:
    return svc(
        name="standin", engine="openai", image="sparkfleet-lab/llm-standin:llama.cpp", model="sparkfleet/tiny-llama",
        port=8080, gpu="none", model_params_b=None, model_dtype=None, **over,
    )  # fmt: skip


def plan(services: Any, gpu: dict[str, Any] | None = None, **over: Any) -> planmod.Plan:
    inputs: dict[str, Any] = {
        "services": services,
        "profiles": copy.deepcopy(PROFILES),
        "gpu": H100 if gpu is None else gpu,
        "free_disk_gb": lambda _path: 1000.0,
        **over,
    }
    return check_plan(PlanInputs(**inputs))


# (id, services, gpu facts, other inputs, text the error must contain: the variable, and what is wrong)
BAD: list[tuple[str, Any, dict[str, Any] | None, dict[str, Any], str]] = [
    ("services-not-a-list", {"name": "x"}, None, {}, "llm_serving_services must be a list of service dicts"),
    ("service-not-a-dict", ["sglang"], None, {}, "llm_serving_services[0] must be a dict"),
    ("missing-model", [svc(model=None)], None, {}, "llm_serving_services[0] (sglang-qwen3-8b).model is required"),
    ("port-as-string", [svc(port="30000")], None, {}, ".port must be an integer 1-65535, got '30000' (str)"),
    ("port-too-big", [svc(port=70000)], None, {}, ".port must be an integer 1-65535, got 70000 (int)"),
    ("port-bool", [svc(port=True)], None, {}, ".port must be an integer 1-65535, got True (bool)"),
    ("container-port-zero", [cpu_svc(container_port=0)], None, {},
     ".container_port must be an integer 1-65535, got 0"),
    ("mem-fraction-1.5", [svc(mem_fraction=1.5)], None, {},
     ".mem_fraction must be a number above 0 and at most 1, got 1.5"),
    ("mem-fraction-zero", [svc(mem_fraction=0)], None, {},
     ".mem_fraction must be a number above 0 and at most 1, got 0 (int)"),
    ("mem-fraction-string", [svc(mem_fraction="0.5")], None, {},
     "at most 1, got '0.5' (str) (write it without quotes)"),
    ("two-services-one-port", [svc(), svc(name="second")], None, {},
     "llm_serving_services[1] (second).port 30000 is also used by llm_serving_services[0] (sglang-qwen3-8b)"),
    ("duplicate-name", [svc(), svc(port=30001)], None, {},
     "llm_serving_services[1] (sglang-qwen3-8b).name 'sglang-qwen3-8b' is also used by llm_serving_services[0]"),
    ("nim-without-ngc-key", [svc(engine="nim", image="nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4", port=8000)],
     None, {}, "sparkfleet_ngc_api_key is not set, but llm_serving_services[0] (sglang-qwen3-8b) (engine nim)"),
    ("nim-with-malformed-key", [svc(engine="nim", image="nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4")], None,
     {"ngc_api_key": "my-secret-key-123"}, "sparkfleet_ngc_api_key does not look like an NGC API key"),
    ("ngc-image-without-key", [svc(image="nvcr.io/nvidia/sglang:25.10-py3")], None, {},
     "sparkfleet_ngc_api_key is not set, but llm_serving_services[0] (sglang-qwen3-8b) (image from nvcr.io) needs it"),
    ("model-cannot-fit", [svc(model="meta-llama/Llama-3.1-70B-Instruct", model_params_b=70.6)], None, {},
     "llm_serving_services[0] (sglang-qwen3-8b) needs about 169.4 GB (model_params_b 70.6 x bf16 x overhead 1.2)"),
    ("explicit-memory-cannot-fit", [svc(memory_gb=95)], SPARK, {}, "needs about 95.0 GB (memory_gb) but GPU 0"),
    ("fractions-sum-above-max", [svc(mem_fraction=0.6, model_params_b=1), svc(name="b", port=1, mem_fraction=0.5,
     model_params_b=1)], None, {}, "mem_fraction of the services on GPU 0 sums to 1.1 (sglang-qwen3-8b 0.6 + b 0.5)"),
    ("unknown-profile-override", [svc()], None, {"profile_override": "dgx_sparkk"},
     "sparkfleet_profile_override 'dgx_sparkk' is not a profile"),
    ("profile-override-not-a-string", [svc()], None, {"profile_override": ["hopper"]},
     "sparkfleet_profile_override ['hopper'] is not a profile"),
    ("bad-image-uppercase", [svc(image="LMSYSORG/SGLang:latest")], None, {},
     ".image 'LMSYSORG/SGLang:latest' is not a docker image reference"),
    ("bad-image-digest", [svc(image="lmsysorg/sglang@sha256:abc123")], None, {}, "is not a docker image reference"),
    ("image-without-tag", [svc(image="lmsysorg/sglang")], None, {}, ".image 'lmsysorg/sglang' has no tag or digest"),
    ("image-not-a-string", [svc(image=["lmsysorg/sglang:v1"])], None, {}, ".image must be a string, got list"),
    ("unknown-key-typo", [svc(modle="x")], None, {},
     "llm_serving_services[0] (sglang-qwen3-8b).modle is not a service key (did you mean model?)"),
    ("removed-key", [svc(mem_fraction_static=0.8)], None, {},
     ".mem_fraction_static is not a service key: use mem_fraction instead"),
    ("unknown-engine", [svc(engine="tgi")], None, {}, ".engine 'tgi' must be one of sglang, vllm, nim, openai"),
    ("bad-state", [svc(state="running")], None, {}, ".state 'running' must be one of present, absent"),
    ("gpu-bool", [svc(gpu=True)], None, {}, ".gpu must be auto, none, all, a GPU index"),
    ("gpu-index-not-on-host", [svc(gpu=3)], None, {},
     ".gpu 3 matches no GPU on this host (GPUs: 0: NVIDIA H100 80GB HBM3)"),
    ("env-not-a-dict", [svc(env=["HF_HOME=/x"])], None, {}, ".env must be a dict of NAME: value, got list"),
    ("env-bad-name", [svc(env={"HF-HOME": "/x"})], None, {},
     ".env key 'HF-HOME' is not a valid environment variable name"),
    ("extra-args-string", [svc(extra_args="--enable-metrics")], None, {}, ".extra_args must be a list of strings"),
    ("extra-args-sets-mem-fraction", [svc(extra_args=["--mem-fraction-static", "0.9"])], None, {},
     ".extra_args sets --mem-fraction-static: use the service key mem_fraction"),
    ("context-negative", [svc(context_length=-1)], None, {}, ".context_length must be an integer 1-10000000, got -1"),
    ("unknown-dtype", [svc(model_dtype="fp9")], None, {}, ".model_dtype 'fp9' must be one of"),
    ("params-as-string", [svc(model_params_b="8B")], None, {},
     ".model_params_b must be a number above 0, got '8B' (str)"),
    ("bad-name", [svc(name="my service")], None, {}, ".name 'my service' must be 1-63 lower-case letters"),
    ("driver-too-old", [svc()], {**H100, "driver_version": "535.183.01"}, {},
     "NVIDIA driver 535.183.01 is older than 550.0, the minimum for profile hopper "
     "(sparkfleet_profiles.hopper.min_driver_version)"),
    ("override-gpu-profile-without-driver", [cpu_svc()], NO_GPU, {"profile_override": "dgx_spark"},
     "profile dgx_spark needs NVIDIA driver >= 580.0"),
    ("gpu-service-without-gpu-not-skipped", [svc()], NO_GPU, {},
     "llm_serving_services[0] (sglang-qwen3-8b) is a GPU service (gpu: auto) on a host with profile none and 0 GPU(s): "
     "nvidia-smi is not on the PATH"),
    ("gpu-detection-failed", [], None, {"gpu_error": "nvidia-smi failed: NVML mismatch, reboot"},
     "GPU detection failed: nvidia-smi failed: NVML mismatch, reboot"),
    ("disk-too-small", [svc()], None, {"free_disk_gb": lambda _p: 5.0},
     "/var/lib/docker has 5.0 GB free but the 1 planned service(s) need about 36.4 GB"),
    ("profiles-missing", [], None, {"profiles": None}, "sparkfleet_profiles is missing or not a dict"),
]  # fmt: skip


@pytest.mark.parametrize(("services", "gpu", "over", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_rejected_naming_the_variable(
    services: Any, gpu: dict[str, Any] | None, over: dict[str, Any], expected: str
) -> None:
    result = plan(copy.deepcopy(services), gpu, **over)
    text = "\n".join(result.errors)
    assert expected in text, text
    assert result.as_fact()["errors"] == result.errors
    assert "problem(s)" in result.summary


def test_there_are_enough_bad_cases() -> None:
    assert len(BAD) >= 15


def test_ngc_key_is_never_echoed() -> None:
    secret = "my-secret-key-123"
    result = plan([svc(engine="nim", image="nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4")], ngc_api_key=secret)
    assert result.errors
    assert secret not in json.dumps(result.as_fact())


@pytest.mark.parametrize("key", [NVAPI_KEY, LEGACY_KEY])
def test_both_ngc_key_formats_are_accepted(key: str) -> None:
    assert len(LEGACY_KEY) == 88
    result = plan([svc(engine="nim", image="nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4", port=8000)], ngc_api_key=key)
    assert result.errors == []
    assert result.names("deploy") == ["sglang-qwen3-8b"]


def test_ngc_image_loaded_from_archive_needs_no_key() -> None:
    result = plan([svc(image="nvcr.io/nvidia/sglang:25.10-py3", image_archive="/srv/images/sglang.tar")])
    assert result.errors == []


def test_good_h100_plan_from_real_facts() -> None:
    result = plan([svc(mem_fraction=0.88), cpu_svc()])
    assert result.errors == []
    assert result.profile == "hopper"
    assert result.names("deploy") == ["sglang-qwen3-8b", "standin"]
    assert result.as_fact()["skipped"] == []
    assert result.serving_gpu is not None
    assert result.serving_gpu["name"] == "NVIDIA H100 80GB HBM3"
    assert "profile hopper; GPU 0 NVIDIA H100 80GB HBM3; driver 580.159.04" in result.summary


def test_spark_unified_memory_uses_usable_memory() -> None:
    # 8.2B bf16 x 1.2 = 19.7 GB; 116736 MiB x 0.75 = 91.8 GB.
    assert plan([svc()], SPARK).errors == []
    # 70B fp8 x 1.2 = 84.7 GB fits 0.75 of the pool only barely, 0.5 does not.
    big = svc(model_params_b=70.6, model_dtype="fp8")
    assert plan([big], SPARK).errors == []
    errors = plan([svc(model_params_b=70.6, model_dtype="fp8", mem_fraction=0.5)], SPARK).errors
    assert errors and "116736 MiB usable x mem_fraction 0.5" in errors[0]


def test_station_services_by_gpu_name_and_index() -> None:
    services = [svc(gpu="GB300", mem_fraction=0.85), svc(name="small", port=30001, gpu=0, model_params_b=1.5)]
    result = plan(services, STATION)
    assert result.errors == []
    assert result.serving_gpu is not None and result.serving_gpu["index"] == 1
    assert result.names("deploy") == ["sglang-qwen3-8b", "small"]


def test_skipping_gpu_services_on_a_host_without_gpu_is_an_explicit_choice() -> None:
    result = plan([cpu_svc(), svc()], NO_GPU, skip_gpu_services_without_gpu=True)
    assert result.errors == []
    assert result.profile == "none"
    assert result.serving_gpu is None
    assert result.names("deploy") == ["standin"]
    assert [s["name"] for s in result.as_fact()["skipped"]] == ["sglang-qwen3-8b"]
    assert result.as_fact()["skipped"][0]["reason"].startswith(
        "skipped by choice (preflight_skip_gpu_services_without_gpu)"
    )
    assert "nvidia-smi is not on the PATH" in result.as_fact()["skipped"][0]["reason"]
    assert result.summary.startswith(
        "profile none; no serving GPU; driver none; deploy: standin; skipped: sglang-qwen3-8b"
    )


def test_absent_services_are_neither_deployed_nor_port_checked() -> None:
    result = plan([svc(), svc(name="old", state="absent")])
    assert result.errors == []
    assert result.names("deploy") == ["sglang-qwen3-8b"]


def test_valid_override_wins_and_sets_profile() -> None:
    result = plan([svc()], H100, profile_override="generic_nvidia")
    assert result.errors == []
    assert result.profile == "generic_nvidia"


def test_warnings_for_unchecked_memory_and_mig() -> None:
    mig = {**H100, "serving_gpu": {**H100["serving_gpu"], "mig_mode": "Enabled"}}
    mig["gpus"] = [mig["serving_gpu"]]
    result = plan([svc(model_params_b=None)], mig)
    assert result.errors == []
    assert any("memory not checked" in w for w in result.warnings)
    assert any("MIG enabled" in w for w in result.warnings)


@pytest.mark.parametrize(
    "image",
    [
        "lmsysorg/sglang:latest-cu130",
        "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4",
        "nvcr.io/nvidia/sglang:25.10-py3",
        "localhost:5000/team/sglang:v0.5",
        "sparkfleet-lab/llm-standin:llama.cpp",
        "lmsysorg/sglang@sha256:" + "a" * 64,
        "lmsysorg/sglang:spark@sha256:" + "0123456789abcdef" * 4,
    ],
)
def test_good_image_references(image: str) -> None:
    parsed = parse.parse_image(image)
    assert parsed is not None
    assert parsed["tag"] or parsed["digest"]


@pytest.mark.parametrize(
    ("ref", "registry"),
    [("lmsysorg/sglang:v1", "docker.io"), ("nvcr.io/nim/x:1", "nvcr.io"), ("localhost:5000/a:1", "localhost")],
)
def test_image_registry(ref: str, registry: str) -> None:
    assert parse.image_registry(ref) == registry


@pytest.mark.parametrize(("a", "b"), [("580.95.05", "580.0"), ("550.0", "550"), ("1000.1", "999.9")])
def test_version_order(a: str, b: str) -> None:
    assert planmod.version_tuple(a) >= planmod.version_tuple(b)


def test_free_disk_of_a_missing_path_uses_its_parent(tmp_path: Any) -> None:
    free = planmod.free_disk_gb(str(tmp_path / "not" / "yet" / "there"))
    assert free is not None and free > 0


class FakeModule:
    def __init__(self, **params: Any) -> None:
        self.params = {"services": [], "profiles": PROFILES, "gpu_facts": None, "gpu_error": "",
                       "skip_gpu_services_without_gpu": True, "memory_overhead": 1.2,
                       "min_free_disk_gb_per_service": 0.0, "disk_paths": ["/"], **params}  # fmt: skip
        self.warnings: list[str] = []

    def exit_json(self, **kwargs: Any) -> None:
        raise ExitJson(kwargs)

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)


def test_module_entry_returns_the_plan_fact_and_never_fails() -> None:
    module = FakeModule(services=[svc(), {"name": "x", "port": "bad"}], gpu_facts=NO_GPU, ngc_api_key=None)
    module.params["skip_gpu_services_without_gpu"] = True
    with pytest.raises(ExitJson) as caught:
        planmod.run_module(module)
    result = caught.value.args[0]
    assert result["changed"] is False
    fact = result["ansible_facts"]["sparkfleet_plan"]
    assert set(fact) >= {"profile", "serving_gpu", "deploy", "skipped", "errors"}
    assert fact["skipped"] == [{"name": "sglang-qwen3-8b", "reason": fact["skipped"][0]["reason"]}]
    assert any("llm_serving_services[1] (x).port" in e for e in fact["errors"])


# A rerun on a host that already serves: the disk check must not ask again for the space its services take (a
# converged Spark with its model cached would otherwise fail its own rerun's preflight as the cache fills the disk).
def _disk_errors(p: planmod.Plan) -> list[str]:
    return [e for e in p.errors if "GB free" in e]


def test_disk_need_counts_only_what_a_rerun_has_not_put_there_yet() -> None:
    small: dict[str, Any] = {"free_disk_gb": lambda _p: 5.0}
    (first,) = _disk_errors(plan([svc()], **small))
    assert "need about 36.4 GB more" in first  # 20 for the image + 16.4 GB of bf16 weights
    assert "per image the host does not hold yet" in first
    (image_there,) = _disk_errors(plan([svc()], local_images={"lmsysorg/sglang:latest-cu130"}, **small))
    assert "need about 16.4 GB more" in image_there
    (deployed_before,) = _disk_errors(plan([svc()], installed={"sglang-qwen3-8b"}, **small))
    assert "need about 20.0 GB more" in deployed_before  # a new image for a service whose weights are cached
    both = plan([svc()], installed={"sglang-qwen3-8b"}, local_images={"lmsysorg/sglang:latest-cu130"}, **small)
    assert _disk_errors(both) == [] and both.names(planmod.DEPLOY) == ["sglang-qwen3-8b"]
    # Another service's unit or image does not count for this one.
    (other,) = _disk_errors(plan([svc()], installed={"other"}, local_images={"lmsysorg/sglang:v0.5"}, **small))
    assert "need about 36.4 GB more" in other


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("lmsysorg/sglang", "lmsysorg/sglang:latest"),
        ("lmsysorg/sglang:v0.5.5", "lmsysorg/sglang:v0.5.5"),
        ("registry.lab:5000/sglang", "registry.lab:5000/sglang:latest"),
        ("registry.lab:5000/sglang:v1", "registry.lab:5000/sglang:v1"),
        ("nvcr.io/nim/x@sha256:" + "a" * 64, "nvcr.io/nim/x@sha256:" + "a" * 64),
    ],
)
def test_image_ref_is_what_docker_images_lists(image: str, ref: str) -> None:
    assert planmod.image_ref(image) == ref


def test_installed_services_are_sparkfleet_units_only(tmp_path: Any) -> None:
    for name in ("sparkfleet-sglang-a.service", "sparkfleet-mocker-b.service", "docker.service", "sparkfleet-x.timer"):
        (tmp_path / name).write_text("")
    assert planmod.installed_services(str(tmp_path)) == {"sglang-a", "mocker-b"}
    assert planmod.installed_services(str(tmp_path / "missing")) == set()


def test_local_images_from_docker_images_and_none_without_docker() -> None:
    listing = (
        "lmsysorg/sglang latest-cu130 sha256:" + "b" * 64 + "\n"
        "sparkfleet-lab/dynamo-standin 1.6.1 <none>\n"
        "<none> <none> <none>\n"
        "nvcr.io/nim/meta/llama <none> sha256:" + "c" * 64 + "\n"
    )
    refs = planmod.local_images(lambda argv: (0, listing, ""))
    assert refs == {
        "lmsysorg/sglang:latest-cu130",
        "lmsysorg/sglang@sha256:" + "b" * 64,
        "sparkfleet-lab/dynamo-standin:1.6.1",
        "nvcr.io/nim/meta/llama@sha256:" + "c" * 64,
    }
    assert planmod.local_images(lambda argv: (127, "", "docker: not found")) == set()


def test_services_sharing_an_image_ask_for_its_space_once() -> None:
    # The Dynamo deployment on one host: etcd, the frontend and a worker from one image, no weights to count.
    shared = [
        {**cpu_svc(), "name": n, "port": p, "image": "sparkfleet-lab/dynamo-standin:1.6.1"}
        for n, p in (("a", 8000), ("b", 8001))
    ]
    (error,) = _disk_errors(plan(shared, NO_GPU, free_disk_gb=lambda _p: 5.0))
    assert "the 2 planned service(s) need about 20.0 GB more" in error


def test_unit_service_name_is_the_inverse_of_the_unit_name() -> None:
    assert unit_service_name("/etc/systemd/system/sparkfleet-sglang-a.service") == "sglang-a"
    assert unit_service_name("sparkfleet-mocker-b.service") == "mocker-b"
    for other in ("docker.service", "sparkfleet-x.timer", "sparkfleet-.service", "/etc/sparkfleet-x.service.d"):
        assert unit_service_name(other) == ""
