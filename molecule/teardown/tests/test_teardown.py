"""Verify teardown, rebuild and model pre-staging on a lab host.

Tests run in file order: the staged model's checksums, a partial file fetched again, teardown --check (nothing
removed), teardown (everything sparkfleet owns gone, the image and the staged model kept), teardown again
(changed=0), teardown --check (changed=0), rebuild (serving and verified again), the staged model intact throughout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
HOST = "sfm-teardown-station"
HUB = "/var/lib/sparkfleet/huggingface/hub/models--sparkfleet--tiny-staged"
SNAPSHOT = f"{HUB}/snapshots/sparkfleet-staged"
IMAGE = "sparkfleet-lab/llm-standin:llama.cpp"


def _playbook(playbook: str, *args: str) -> str:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        ANSIBLE_FORCE_VALID_GROUP_NAMES="ignore",
        ANSIBLE_INTERPRETER_PYTHON="/usr/bin/python3",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
    )
    res = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(ROOT / playbook), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return res.stdout


def _changed(output: str) -> int:
    m = re.search(rf"{HOST}\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert m, output[-2000:]
    return int(m.group(1))


# A unit and an env file of the user's that only look like sparkfleet's (the name pattern, the service label),
# without sparkfleet's ownership marker: teardown never touches them.
LOOKALIKE_UNIT = "/etc/systemd/system/sparkfleet-mine.service"
LOOKALIKE_ENV = "/etc/sparkfleet/serving/mine.env"
LOOKALIKE = "[Service]\nExecStart=/usr/bin/docker run --rm --label org.sparkfleet.service=mine x\n"


def _owned(host: Any) -> dict[str, str]:
    """Everything sparkfleet owns on the host, as the teardown looks for it (its marker; the look-alikes are not)."""
    marker = "'^# org.sparkfleet.owned '"
    return {
        "units": host.check_output(f"grep -l {marker} /etc/systemd/system/sparkfleet-*.service || :"),
        "env files": host.check_output(f"grep -l {marker} /etc/sparkfleet/serving/*.env 2>/dev/null || :"),
        "last-known-good": host.check_output("ls /var/lib/sparkfleet/lkg/ 2>/dev/null || true"),
        "containers": host.check_output("docker ps -a --filter label=org.sparkfleet.service --format '{{.Names}}'"),
        "loaded units": host.check_output(
            "systemctl list-units --all --plain --no-legend 'sparkfleet-*' | grep -v sparkfleet-mine || true"
        ),
    }


def _serving(host: Any) -> bool:
    return host.run("curl -sf -o /dev/null http://127.0.0.1:8080/v1/models").rc == 0


def _staged_kept(host: Any) -> None:
    """The staged model is where serving mounts it, every file with the controller's sha256."""
    source = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "tiny-model"
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    assert len(files) == 4
    for rel in files:
        want = hashlib.sha256((source / rel).read_bytes()).hexdigest()
        assert host.check_output(f"sha256sum {SNAPSHOT}/{rel}").split()[0] == want, rel
    manifest = json.loads(host.file(f"{HUB}/.sparkfleet-manifest.json").content_string)
    assert manifest["schema"] == "sparkfleet.model_manifest/v1"
    assert sorted(manifest["files"]) == [f"snapshots/sparkfleet-staged/{r}" for r in files]
    assert host.file(f"{HUB}/refs/main").content_string == "sparkfleet-staged"


def test_converged_serving_and_staged(host: Any) -> None:
    assert _serving(host)
    _staged_kept(host)


def test_stage_fetches_a_partial_file_again(host: Any) -> None:
    """A copy cut short is fetched again (and only it); a rerun then changes nothing."""
    host.run(f"truncate -s 1M {SNAPSHOT}/model-00001-of-00002.safetensors")
    out = _playbook("molecule/teardown/stage.yml")
    assert "1 of 4 files to transfer" in out
    assert "size 1048576 of 4194304 (partial or changed)" in out
    assert _changed(out) > 0
    _staged_kept(host)
    assert _changed(_playbook("molecule/teardown/stage.yml")) == 0


def test_teardown_check_removes_nothing(host: Any) -> None:
    # A last-known-good copy, as llm_serving keeps one before it changes a service (llm_serving_lkg_dir).
    host.run("mkdir -p /var/lib/sparkfleet/lkg/standin && cp /etc/systemd/system/sparkfleet-standin.service "
             "/var/lib/sparkfleet/lkg/standin/unit")  # fmt: skip
    for path in (LOOKALIKE_UNIT, LOOKALIKE_ENV):
        assert host.run(f"printf '%s' '{LOOKALIKE}' > {path}").rc == 0
    before = _owned(host)
    assert before["last-known-good"] == "standin"
    out = _playbook("playbooks/teardown.yml", "--check", "--diff")
    assert "would remove 1 sparkfleet service(s): standin" in out
    assert "last-known-good copies: /var/lib/sparkfleet/lkg/standin" in out
    assert _changed(out) > 0
    assert _owned(host) == before
    assert _serving(host)


def test_teardown_removes_what_sparkfleet_owns(host: Any) -> None:
    out = _playbook("playbooks/teardown.yml")
    assert "removed 1 sparkfleet service(s): standin" in out
    assert "images: kept (sparkfleet_teardown_images: false)" in out
    assert _changed(out) > 0
    assert set(_owned(host).values()) == {""}
    assert not _serving(host)
    # The user's look-alike unit and env file are untouched.
    assert host.file(LOOKALIKE_UNIT).content_string == LOOKALIKE
    assert host.file(LOOKALIKE_ENV).content_string == LOOKALIKE
    assert host.run(f"docker image inspect {IMAGE}").rc == 0
    _staged_kept(host)


def test_teardown_again_changes_nothing(host: Any) -> None:
    out = _playbook("playbooks/teardown.yml")
    assert "no sparkfleet service found: nothing to remove" in out
    assert _changed(out) == 0


def test_teardown_check_after_changes_nothing(host: Any) -> None:
    assert _changed(_playbook("playbooks/teardown.yml", "--check", "--diff")) == 0


def test_rebuild_serves_and_verifies_again(host: Any) -> None:
    out = _playbook("playbooks/rebuild.yml")
    assert "no sparkfleet service found: nothing to remove" in out
    assert _serving(host)
    assert host.service("sparkfleet-standin.service").is_enabled
    report = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports" / "latest" / "fleet-report.json"
    fleet = json.loads(report.read_text())
    assert fleet["schema"] == "sparkfleet.fleet_report/v1"
    assert fleet["total"] == fleet["passed"] == 1, fleet["failures"]
    assert host.run(f"docker image inspect {IMAGE}").rc == 0
    _staged_kept(host)
