"""playbooks/preflight.yml with ansible-playbook on localhost: bad variable sets fail naming the variable,
and nothing changes (changed=0)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PLAYBOOK = ROOT / "playbooks" / "preflight.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

pytestmark = pytest.mark.lab

GOOD_CPU = {
    "name": "standin",
    "engine": "openai",
    "image": "sparkfleet-lab/llm-standin:llama.cpp",
    "model": "sparkfleet/tiny-llama",
    "port": 8080,
    "gpu": "none",
}
GOOD_GPU = {
    "name": "sglang-qwen3-8b",
    "engine": "sglang",
    "image": "lmsysorg/sglang:latest-cu130",
    "model": "Qwen/Qwen3-8B",
    "port": 30000,
    "model_params_b": 8.2,
}


FAKE_SMI = """#!{python}
import sys
from pathlib import Path
fixtures = Path({fixtures!r})
args = sys.argv[1:]
if {mismatch!r}:
    sys.stdout.write("Failed to initialize NVML: Driver/library version mismatch\\n")
    sys.exit(18)
if args and args[0].startswith("--query-gpu="):
    sys.stdout.write((fixtures / "h100-80gb-hbm3.query.csv").read_text())
elif args == ["-x", "-q"]:
    sys.stdout.write((fixtures / "h100-80gb-hbm3.xml").read_text())
else:
    sys.exit(2)
"""


def fake_nvidia_smi(tmp_path: Path, mismatch: bool) -> str:
    """A PATH whose nvidia-smi answers from the real H100 capture (or fails with an NVML mismatch)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    fixtures = ROOT / "tests" / "fixtures" / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(python=sys.executable, fixtures=str(fixtures), mismatch=mismatch))
    smi.chmod(0o755)
    return f"{bindir}{os.pathsep}{os.environ['PATH']}"


LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}


def run_preflight(
    tmp_path: Path, extra_vars: dict[str, Any], *args: str, path: str | None = None, inventory: Path | None = None
) -> tuple[int, str]:
    """ansible-playbook playbooks/preflight.yml with extra vars, on localhost unless another inventory is given;
    (rc, output)."""
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip(f"{ANSIBLE_PLAYBOOK} not found: make venv")
    if inventory is None:
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(json.dumps({"all": {"hosts": {"localhost": LOCAL}}}))
    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps(extra_vars))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "PATH": path or os.environ["PATH"],
    }
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), str(PLAYBOOK), "-i", str(inventory), "-e", f"@{varsfile}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def recap(output: str) -> dict[str, int]:
    match = re.search(r"^localhost\s+:\s+(.*)$", output, re.MULTILINE)
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


BAD_SETS = [
    (
        "mem-fraction-and-port-clash",
        {"llm_serving_services": [{**GOOD_CPU, "mem_fraction": 1.5}, {**GOOD_CPU, "name": "standin-2"}]},
        [
            "llm_serving_services[0] (standin).mem_fraction must be a number above 0 and at most 1, got 1.5",
            "llm_serving_services[1] (standin-2).port 8080 is also used by llm_serving_services[0] (standin)",
        ],
    ),
    (
        "nim-without-key-and-bad-override",
        {
            "sparkfleet_profile_override": "dgx_sparkk",
            "llm_serving_services": [
                {**GOOD_CPU, "engine": "nim", "image": "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"},
                {**GOOD_CPU, "name": "typo", "port": 8081, "mem_fraction_static": 0.5},
            ],
        },
        [
            "sparkfleet_profile_override 'dgx_sparkk' is not a profile",
            "sparkfleet_ngc_api_key is not set, but llm_serving_services[0] (standin) (engine nim) needs it",
            "llm_serving_services[1] (typo).mem_fraction_static is not a service key: use mem_fraction instead",
        ],
    ),
    (
        "gpu-service-without-gpu-by-default",
        {"llm_serving_services": [GOOD_GPU]},
        [
            "llm_serving_services[0] (sglang-qwen3-8b) is a GPU service (gpu: auto) on a host with profile none and "
            "0 GPU(s): nvidia-smi is not on the PATH"
        ],
    ),
    (
        "host-of-a-gpu-group-without-gpu",
        {"llm_serving_services": [GOOD_CPU], "preflight_gpu_expected": True},
        [
            "this host should have a GPU (preflight_gpu_expected is true) but detection found no usable one: "
            "nvidia-smi is not on the PATH (no NVIDIA driver installed)"
        ],
    ),
]


@pytest.mark.parametrize(("extra_vars", "expected"), [b[1:] for b in BAD_SETS], ids=[b[0] for b in BAD_SETS])
def test_bad_variables_fail_naming_the_variable(
    tmp_path: Path, extra_vars: dict[str, Any], expected: list[str]
) -> None:
    rc, output = run_preflight(tmp_path, extra_vars)
    assert rc != 0, output[-3000:]
    assert "preflight found 1 host(s) with problems; nothing was changed." in output
    for text in expected:
        assert text in output, output[-4000:]
    counts = recap(output)
    assert counts["changed"] == 0
    assert counts["failed"] == 1


def test_skipping_gpu_services_on_a_host_without_gpu_is_an_explicit_choice(tmp_path: Path) -> None:
    extra = {"llm_serving_services": [GOOD_CPU, GOOD_GPU], "preflight_skip_gpu_services_without_gpu": True}
    rc, output = run_preflight(tmp_path, extra)
    assert rc == 0, output[-4000:]
    assert (
        "localhost: profile none; no serving GPU; driver none; deploy: standin; skipped: sglang-qwen3-8b "
        "(skipped by choice (preflight_skip_gpu_services_without_gpu): GPU service (gpu: auto) on a host with "
        "profile none" in " ".join(output.split())
    ), output[-4000:]
    assert recap(output)["changed"] == 0


def test_check_mode_lists_the_same_problems(tmp_path: Path) -> None:
    rc, output = run_preflight(
        tmp_path, {"llm_serving_services": [{**GOOD_CPU, "image": "Bad Image"}]}, "--check", "--diff"
    )
    assert rc != 0
    assert "llm_serving_services[0] (standin).image 'Bad Image' is not a docker image reference" in output
    assert recap(output)["changed"] == 0


def test_h100_facts_and_a_model_that_cannot_fit(tmp_path: Path) -> None:
    """With nvidia-smi answering from the real H100 capture: profile hopper, and a 70B bf16 model does not fit."""
    big = {**GOOD_GPU, "model": "meta-llama/Llama-3.1-70B-Instruct", "model_params_b": 70.6}
    rc, output = run_preflight(tmp_path, {"llm_serving_services": [big]}, path=fake_nvidia_smi(tmp_path, False))
    assert rc != 0
    flat = output.replace("\n        ", " ")
    assert "profile hopper; GPU 0 NVIDIA H100 80GB HBM3; driver 580.159.04" in flat, output[-4000:]
    assert "llm_serving_services[0] (sglang-qwen3-8b) needs about 169.4 GB" in output
    assert recap(output)["changed"] == 0


def test_broken_driver_is_listed_as_a_problem(tmp_path: Path) -> None:
    rc, output = run_preflight(tmp_path, {"llm_serving_services": []}, path=fake_nvidia_smi(tmp_path, True))
    assert rc != 0
    assert (
        "GPU detection failed: nvidia-smi failed: 'Failed to initialize NVML: Driver/library version mismatch'"
        in output
    )
    assert "reboot the host" in output
    assert recap(output)["changed"] == 0


def test_the_demo_inventory_plans_its_services_per_platform_group(tmp_path: Path) -> None:
    """inventories/demo's services (group_vars/all/serving.yml: one stand-in on a Spark, two on the Station, by
    platform group) planned by preflight for a host of each group, reached locally: nothing refused, no change."""
    inventory = tmp_path / "demo" / "hosts.yml"
    (inventory.parent / "group_vars" / "all").mkdir(parents=True)
    (inventory.parent / "group_vars" / "all" / "serving.yml").symlink_to(
        ROOT / "inventories" / "demo" / "group_vars" / "all" / "serving.yml"
    )
    groups = {"dgx_spark": {"hosts": {"spark-01": LOCAL}}, "dgx_station": {"hosts": {"station-01": LOCAL}}}
    inventory.write_text(json.dumps({"all": {"children": {"spark-lab": {"children": groups}}}}))
    rc, output = run_preflight(tmp_path, {}, inventory=inventory)
    assert rc == 0, output[-4000:]
    flat = " ".join(output.split())
    planned = "profile none; no serving GPU; driver none; deploy: standin-tiny-llama"
    assert f"spark-01: {planned};" in flat, output[-4000:]
    assert f"station-01: {planned}, standin-tiny-llama-b" in flat, output[-4000:]
    assert re.search(r"^spark-01\s+:.*changed=0", output, re.MULTILINE), output[-2000:]
    assert re.search(r"^station-01\s+:.*changed=0", output, re.MULTILINE), output[-2000:]
