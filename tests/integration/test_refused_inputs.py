"""A bad inventory is refused before ANY host changes, on a real lab host that already serves.

The host is converged with site.yml (host runtime, a stand-in service, verify). Then:
- `site.yml --check --diff` on the converged host reports changed=0 (check mode changes nothing);
- site.yml with each set of bad services fails in preflight, naming every problem, and a checksum of `/etc`
  (units, env files, daemon.json...), the unit directory and the running containers (id, state, start time)
  is the same before and after.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.served import GOOD, NAME, ROOT, SITE, host_state
from tests.integration.test_host_runtime import LabHost

HF_TOKEN = "hf_" + "Zz9" * 12
NGC_KEY = "nvapi-" + "Q1w2E3r4T5" * 4

pytestmark = pytest.mark.lab


# Each set is a whole inventory change; every message must be in the one failure that lists them.
BAD_SETS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "control-characters-and-secrets",
        {
            "sparkfleet_hf_token": HF_TOKEN,
            "llm_serving_services": [
                {**GOOD, "model": "sparkfleet/tiny-llama\nExecStartPre=/bin/touch /etc/pwned"},
                {**GOOD, "name": "b", "port": 8081, "command": ["--hf-token", HF_TOKEN]},
                {**GOOD, "name": "c", "port": 8082, "env": {"LOG": "a\nb", "HF_TOKEN": HF_TOKEN}},
            ],
        },
        [
            "llm_serving_services[0] (standin).model contains the control character '\\n'",
            "llm_serving_services[1] (b).command[1] holds the value of a vault secret",
            "llm_serving_services[2] (c).env.LOG contains the control character",
            "llm_serving_services[2] (c).env.HF_TOKEN is a secret set in plain env (value not shown)",
        ],
    ),
    (
        "isolation-and-contradicting-flags",
        {
            "llm_serving_services": [
                {**GOOD, "docker_args": ["--privileged", "-v", "/:/host", "--network", "host"]},
                {**GOOD, "name": "b", "port": 8081, "command": ["--port", "9000"]},
            ],
        },
        [
            "llm_serving_services[0] (standin).docker_args has --privileged",
            "llm_serving_services[0] (standin).docker_args mounts the host's /",
            "llm_serving_services[0] (standin).docker_args has --network host",
            "llm_serving_services[1] (b).command sets --port 9000, but the unit publishes container port 8080",
        ],
    ),
    (
        "types-names-and-a-key-with-a-newline",
        {
            "sparkfleet_ngc_api_key": NGC_KEY + "\n",
            "llm_serving_services": [
                {**GOOD, "port": "8080"},
                {**GOOD, "name": "Standin-B", "port": 8081},
            ],
        },
        [
            "sparkfleet_ngc_api_key has leading or trailing whitespace or a newline",
            "llm_serving_services[0] (standin).port must be an integer 1-65535, got '8080' (str)",
            "llm_serving_services[1].name 'Standin-B' must be 1-63 lower-case letters",
        ],
    ),
    (
        "a-gpu-host-whose-gpu-is-not-detected",
        {"preflight_gpu_expected": True},
        [
            "this host should have a GPU (preflight_gpu_expected is true) but detection found no usable one: "
            "nvidia-smi is not on the PATH (no NVIDIA driver installed)"
        ],
    ),
]
SECRETS = (HF_TOKEN, NGC_KEY)


def _recap(output: str) -> dict[str, int]:
    match = re.search(rf"^{re.escape(NAME)}\s+:\s+(.*)$", output, re.MULTILINE)
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def test_check_mode_on_a_converged_host_changes_nothing(served_host: LabHost) -> None:
    before = host_state(served_host)
    rc, output = served_host.playbook(SITE, "--check", "--diff")
    assert rc == 0, output[-6000:]
    assert _recap(output)["changed"] == 0, re.findall(r"^(?:changed|TASK).*$", output, re.M)[-40:]
    assert host_state(served_host) == before


@pytest.mark.parametrize(("extra_vars", "expected"), [b[1:] for b in BAD_SETS], ids=[b[0] for b in BAD_SETS])
def test_bad_inventory_is_refused_before_any_host_changes(
    served_host: LabHost, extra_vars: dict[str, Any], expected: list[str]
) -> None:
    before = host_state(served_host)
    rc, output = served_host.playbook(SITE, extra_vars=extra_vars)
    assert rc != 0, output[-3000:]
    assert "preflight found 1 host(s) with problems; nothing was changed." in output
    flat = output.replace("\n        ", " ")
    for text in expected:
        assert text in flat, output[-5000:]
    for secret in SECRETS:
        assert secret not in output
    assert _recap(output)["changed"] == 0
    assert host_state(served_host) == before
    assert served_host.sh("test -e /etc/pwned").returncode != 0


def test_a_rerun_does_not_ask_again_for_the_disk_its_services_already_take(served_host: LabHost) -> None:
    """The converged host holds its image and its service's unit: even a disk allowance no disk could meet asks
    nothing more of it (a Spark whose model cache filled its disk still passes its own rerun); a new image does."""
    before = host_state(served_host)
    huge = {"preflight_min_free_disk_gb_per_service": 1_000_000}
    rc, output = served_host.playbook(ROOT / "playbooks" / "preflight.yml", extra_vars=huge)
    assert rc == 0, output[-4000:]
    new_image = {**huge, "llm_serving_services": [{**GOOD, "image": "sparkfleet-lab/llm-standin:not-held"}]}
    rc, output = served_host.playbook(ROOT / "playbooks" / "preflight.yml", extra_vars=new_image)
    assert rc != 0, output[-3000:]
    flat = output.replace("\n        ", " ")
    assert "need about 1000000.0 GB more" in flat, output[-3000:]
    assert "preflight_min_free_disk_gb_per_service" in flat
    assert host_state(served_host) == before
