"""playbooks/host_runtime.yml and its roles on a real lab host (systemd + nested Docker), driven by ansible-playbook.

One lab host container per module (``host_runtime_host``), prepared with molecule/host_runtime/prepare.yml: a TLS +
htpasswd registry (Debian's docker-registry) that accepts ``$oauthtoken`` with the scenario's fake NGC key, a
DGX-OS-like docker-override.conf, a daemon.json holding the nvidia runtime, a wheelhouse and a model archive built
on the controller. The host's inputs are molecule/host_runtime/host_vars/sfm-host_runtime-spark.yml.

The secrets test is in test_secrets_host_runtime.py; this file checks the failure paths.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIO = ROOT / "molecule" / "host_runtime"
HOST_IMAGE = "sparkfleet-lab/host:bookworm"
INVENTORY_NAME = "sfm-host_runtime-spark"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
HOST_VARS = yaml.safe_load((SCENARIO / "host_vars" / f"{INVENTORY_NAME}.yml").read_text())
FAKE_NGC_KEY: str = HOST_VARS["sparkfleet_ngc_api_key"]
FAKE_HF_TOKEN: str = HOST_VARS["sparkfleet_hf_token"]
# The same capability list as molecule/default: the engine here cannot grant --privileged.
CAPS = [
    *("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP"),
    *("LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER"),
    *("SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE"),
    *("SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE"),
    *("MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ"),
]

pytestmark = pytest.mark.lab


@dataclass
class LabHost:
    container: str
    workdir: Path

    def sh(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "exec", self.container, "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def playbook(self, playbook: Path | str, *args: str, extra_vars: dict[str, Any] | None = None) -> tuple[int, str]:
        """ansible-playbook against this host; returns (rc, stdout + stderr)."""
        cmd = [str(ANSIBLE_PLAYBOOK), str(playbook), "-i", str(self.workdir / "inventory" / "hosts.yml"), *args]
        if extra_vars:
            varsfile = self.workdir / f"extra-{uuid.uuid4().hex[:6]}.json"
            varsfile.write_text(json.dumps(extra_vars))
            cmd += ["-e", f"@{varsfile}"]
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(self.workdir / "facts"),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "MOLECULE_EPHEMERAL_DIRECTORY": str(self.workdir),
        }
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env, check=False)
        return proc.returncode, proc.stdout + proc.stderr


def recap(output: str) -> dict[str, int]:
    match = re.search(rf"^{re.escape(INVENTORY_NAME)}\s+:\s+(.*)$", output, re.MULTILINE)
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def _start(name: str) -> None:
    cmd = ["docker", "run", "-d", "--name", name, "--hostname", "spark-01", "--cgroupns", "host"]
    cmd += ["-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", "/var/lib/docker"]
    cmd += ["--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp"]
    cmd += ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"]
    for cap in CAPS:
        cmd += ["--cap-add", cap]
    started = subprocess.run([*cmd, HOST_IMAGE], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.fail(f"docker run {HOST_IMAGE} failed: {started.stderr.strip()}")


def prepared_lab_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    """A prepared lab host, removed (with its volumes) afterwards. Each test module makes its own fixture of it."""
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    if subprocess.run(["docker", "image", "inspect", HOST_IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"image {HOST_IMAGE} is absent (or the engine does not answer): run `make images`")
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip(f"{ANSIBLE_PLAYBOOK} not found: make venv")
    workdir = tmp_path_factory.mktemp("host-runtime")
    name = f"sfi-host-runtime-{uuid.uuid4().hex[:8]}"
    inventory = workdir / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "spark-lab": {
                            "hosts": {
                                INVENTORY_NAME: {
                                    "ansible_connection": "community.docker.docker",
                                    "ansible_host": name,
                                    "ansible_python_interpreter": "/usr/bin/python3",
                                }
                            }
                        }
                    }
                }
            }
        )
    )
    (inventory / "host_vars").symlink_to(SCENARIO / "host_vars")
    (inventory / "group_vars").symlink_to(ROOT / "group_vars")
    _start(name)
    host = LabHost(name, workdir)
    try:
        rc, output = host.playbook(SCENARIO / "prepare.yml")
        assert rc == 0, f"prepare failed:\n{output[-4000:]}"
        yield host
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def host_runtime_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    yield from prepared_lab_host(tmp_path_factory)


def _role_playbook(host: LabHost, role: str) -> Path:
    path = host.workdir / f"only-{role}.yml"
    path.write_text(
        yaml.safe_dump(
            [{"name": f"Only {role}", "hosts": "all", "become": True, "roles": [{"role": f"sparkfleet.fleet.{role}"}]}]
        )
    )
    return path


def test_bad_ngc_key_format_rejected_before_login(host_runtime_host: LabHost) -> None:
    bad = "nvapi-has spaces-" + "x" * 20
    rc, output = host_runtime_host.playbook(
        _role_playbook(host_runtime_host, "ngc_login"), extra_vars={"sparkfleet_ngc_api_key": bad}
    )
    assert rc != 0
    flat = " ".join(output.split())
    assert "is not an NGC API key" in flat, output[-3000:]
    assert f"(ngc_login_api_key, {len(bad)} characters) is not an NGC API key" in flat
    assert "It contains whitespace: remove it." in flat
    assert bad not in output
    assert recap(output)["changed"] == 0
    assert host_runtime_host.sh("test -e /root/.docker/config.json").returncode != 0, "nothing may change"


@pytest.mark.parametrize(
    "wrong",
    ["nvapi-SFMwrongKeyThatTheRegistryRefuses-0123456789", "SFMlegacy" + "K" * 77 + "=="],
    ids=["nvapi-format", "legacy-86-format"],
)
def test_wrong_ngc_key_names_the_scope(host_runtime_host: LabHost, wrong: str) -> None:
    """Both key formats pass the format check and reach the registry, which refuses them."""
    rc, output = host_runtime_host.playbook(
        _role_playbook(host_runtime_host, "ngc_login"), extra_vars={"sparkfleet_ngc_api_key": wrong}
    )
    assert rc != 0
    flat = " ".join(output.split())
    assert "was refused" in flat, output[-3000:]
    assert "lacks the NGC Catalog scope" in flat
    assert wrong not in output


def test_right_ngc_key_logs_in_once(host_runtime_host: LabHost) -> None:
    playbook = _role_playbook(host_runtime_host, "ngc_login")
    rc, output = host_runtime_host.playbook(playbook)
    assert rc == 0, output[-3000:]
    assert recap(output)["changed"] >= 1
    assert "logged in as $oauthtoken" in " ".join(output.split())
    rc, output = host_runtime_host.playbook(playbook)
    assert rc == 0, output[-3000:]
    assert recap(output)["changed"] == 0
    assert "already logged in with this key, no new login" in " ".join(output.split())
    assert host_runtime_host.sh("stat -c %a /root/.docker/config.json").stdout.strip() == "600"


def test_hf_download_fails_clearly_when_the_hub_is_unreachable(host_runtime_host: LabHost) -> None:
    rc, output = host_runtime_host.playbook(
        _role_playbook(host_runtime_host, "hf_cache"),
        extra_vars={
            "hf_cache_models": ["sfm/not-cached-model"],
            "hf_cache_predownload": "download",
            "hf_cache_endpoint": "https://hub.invalid",
        },
    )
    assert rc != 0
    flat = " ".join(output.split())
    assert "cannot reach https://hub.invalid" in flat, output[-3000:]
    assert "hf_cache_predownload: archive" in flat
    assert FAKE_HF_TOKEN not in output


def test_world_writable_nim_cache_refused(host_runtime_host: LabHost) -> None:
    rc, output = host_runtime_host.playbook(
        _role_playbook(host_runtime_host, "hf_cache"), extra_vars={"hf_cache_nim_mode": "0777"}
    )
    assert rc != 0
    assert "never 0777" in " ".join(output.split()), output[-3000:]
    assert recap(output)["changed"] == 0


def test_nvidia_toolkit_skips_cleanly_without_gpu(host_runtime_host: LabHost) -> None:
    rc, output = host_runtime_host.playbook(_role_playbook(host_runtime_host, "nvidia_toolkit"))
    assert rc == 0, output[-3000:]
    flat = " ".join(output.split())
    assert "nvidia_toolkit SKIPPED on sfm-host_runtime-spark: no NVIDIA GPU" in flat, output[-3000:]
    assert "nvidia-container-toolkit package (NOT installed)" in flat
    assert recap(output)["changed"] == 0


def test_nvidia_toolkit_repository_in_check_mode(host_runtime_host: LabHost) -> None:
    """Forced on a host without a GPU, against a mirror in a local directory, in --check --diff.

    Without a key in the mirror: a clear failure. With one: the deb822 source (flat suite, signed-by keyring, amd64)
    is shown, nothing is written, and the package (which the mirror does not carry) fails clearly. The mirror's
    "key" is a placeholder: get_url fetches it even in check mode, apt never reads it in check mode.
    """
    playbook = _role_playbook(host_runtime_host, "nvidia_toolkit")
    forced = {"nvidia_toolkit_mode": "always", "nvidia_toolkit_repo_mirror": "file:///srv/nvidia-mirror"}
    rc, output = host_runtime_host.playbook(playbook, "--check", "--diff", extra_vars=forced)
    assert rc != 0
    assert "cannot fetch the repository signing key from file:///srv/nvidia-mirror/gpgkey" in " ".join(output.split())
    assert (
        host_runtime_host.sh("mkdir -p /srv/nvidia-mirror && echo placeholder > /srv/nvidia-mirror/gpgkey").returncode
        == 0
    )
    try:
        rc, output = host_runtime_host.playbook(playbook, "--check", "--diff", extra_vars=forced)
    finally:
        host_runtime_host.sh("rm -rf /srv/nvidia-mirror")
    assert rc != 0
    assert "URIs: file:///srv/nvidia-mirror/stable/deb/amd64" in output, output[-4000:]
    assert "Suites: /" in output
    assert "Signed-By: /etc/apt/keyrings/nvidia-container-toolkit.asc" in output
    assert "Architectures: amd64" in output
    flat = " ".join(output.split())
    assert "Check that file:///srv/nvidia-mirror/stable/deb/amd64 carries them" in flat
    assert host_runtime_host.sh("ls /etc/apt/sources.list.d/").stdout.strip() == ""
    assert host_runtime_host.sh("test -e /etc/apt/keyrings/nvidia-container-toolkit.asc").returncode != 0
