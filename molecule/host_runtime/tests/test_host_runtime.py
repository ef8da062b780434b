"""Checks on the lab host after playbooks/host_runtime.yml converged (testinfra, ansible backend)."""

from __future__ import annotations

import json
import shlex

import pytest

NVIDIA_RUNTIME = {"args": [], "path": "nvidia-container-runtime"}
FOUR_STEP = "/root/sfm-four-step.json"


def _daemon_json(host):
    return json.loads(host.file("/etc/docker/daemon.json").content_string)


# ---------------------------------------------------------------- docker_host


def test_docker_running_and_enabled(host):
    docker = host.service("docker")
    assert docker.is_running
    assert docker.is_enabled


@pytest.mark.parametrize("user", ["student1", "student2"])
def test_lab_users_can_use_docker(host, user):
    assert "docker" in host.user(user).groups
    # A fresh login of the user: the group applies without any manual re-login.
    with host.sudo(user):
        assert host.run("docker info --format '{{.ServerVersion}}'").rc == 0


def test_daemon_json_merged_not_overwritten(host):
    config = _daemon_json(host)
    assert config["runtimes"]["nvidia"] == NVIDIA_RUNTIME  # written by "nvidia-ctk" in prepare, kept
    assert config["log-opts"] == {"max-size": "50m", "max-file": "3"}
    # log-level is also a dockerd flag in the DGX-OS-like docker-override.conf: dropped, so dockerd still starts.
    assert "log-level" not in config
    f = host.file("/etc/docker/daemon.json")
    assert f.mode == 0o644
    assert f.user == "root"


def test_dockerd_runs_with_the_merged_settings(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert "nvidia" in info["Runtimes"]
    assert info["LoggingDriver"] == "json-file"


def _module(host, **args):
    line = " ".join(f"{k}={shlex.quote(json.dumps(v) if isinstance(v, dict) else v)}" for k, v in args.items())
    return host.ansible("sparkfleet.fleet.docker_daemon_json", line, check=False, become=True)


def test_docker_daemon_json_four_steps_and_nvidia_survives(host):
    host.run(f"rm -f {FOUR_STEP}")
    host.run(f"""printf '{{"runtimes": {{"nvidia": {json.dumps(NVIDIA_RUNTIME)}}}}}' > {FOUR_STEP}""")
    settings = {"live-restore": True, "runtimes": {"crun": {"path": "/usr/bin/crun"}}}
    assert _module(host, path=FOUR_STEP, settings=settings)["changed"] is True
    assert _module(host, path=FOUR_STEP, settings=settings)["changed"] is False
    merged = json.loads(host.file(FOUR_STEP).content_string)
    assert merged["runtimes"]["nvidia"] == NVIDIA_RUNTIME
    assert merged["live-restore"] is True
    assert _module(host, path=FOUR_STEP, settings=settings, state="absent")["changed"] is True
    assert _module(host, path=FOUR_STEP, settings=settings, state="absent")["changed"] is False
    assert json.loads(host.file(FOUR_STEP).content_string) == {"runtimes": {"nvidia": NVIDIA_RUNTIME}}
    host.run(f"rm -f {FOUR_STEP}")


# ---------------------------------------------------------------- nvidia_toolkit (no GPU here: skipped)


def test_nvidia_toolkit_not_installed_without_gpu(host):
    assert not host.package("nvidia-container-toolkit").is_installed
    assert not host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.sources").exists
    assert not host.file("/etc/cdi/nvidia.yaml").exists
    assert host.run("which nvidia-ctk").rc != 0


# ---------------------------------------------------------------- bench_venv


def test_bench_venv_has_the_pinned_package(host):
    out = host.check_output(
        "/opt/sparkfleet/venv/bin/python -c 'import importlib.metadata as m; print(m.version(\"jsonschema\"))'"
    )
    assert out.strip() == "4.23.0"
    assert host.file("/opt/sparkfleet/wheelhouse/jsonschema-4.23.0-py3-none-any.whl").exists


# ---------------------------------------------------------------- ngc_login


def test_docker_credential_stored_privately(host):
    address = host.interface.default().addresses[0]
    f = host.file("/root/.docker/config.json")
    assert f.mode == 0o600
    assert f.user == "root"
    config = json.loads(f.content_string)
    # The login was accepted by the htpasswd + TLS registry prepare.yml runs on this host.
    assert list(config["auths"]) == [f"{address}:5443"]


# ---------------------------------------------------------------- hf_cache


def test_hf_cache_directories(host):
    for path in ("/var/lib/sparkfleet/huggingface", "/var/lib/sparkfleet/huggingface/hub"):
        d = host.file(path)
        assert d.is_directory
        assert d.user == "root"
        assert d.mode == 0o755


def test_nim_cache_owned_by_uid_1000_not_world_writable(host):
    d = host.file("/opt/nim/.cache")
    assert d.is_directory
    assert d.uid == 1000
    assert d.gid == 1000
    assert d.mode == 0o775


def test_secrets_env_file_private_and_complete(host):
    f = host.file("/etc/sparkfleet/secrets.env")
    assert f.user == "root"
    assert f.group == "root"
    assert f.mode == 0o600
    keys = {line.split("=", 1)[0] for line in f.content_string.splitlines() if "=" in line and not line.startswith("#")}
    assert keys == {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "NGC_API_KEY"}


def test_model_from_archive_and_offline_once_warm(host):
    snapshot = (
        "/var/lib/sparkfleet/huggingface/hub/models--sfm--tiny-model/snapshots/0123456789abcdef0123456789abcdef01234567"
    )
    assert host.file(f"{snapshot}/config.json").exists
    env = host.file("/etc/sparkfleet/hf.env").content_string
    assert "HF_HOME=/var/lib/sparkfleet/huggingface\n" in env
    assert "HF_HUB_OFFLINE=1\n" in env
