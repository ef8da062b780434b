"""playbooks/host_runtime.yml and its roles on a real lab host (systemd + nested Docker), driven by ansible-playbook.

One lab host for the module, prepared with tests/integration/host_runtime/prepare.yml: a TLS + htpasswd registry
(Debian's docker-registry) that accepts ``$oauthtoken`` with the fake NGC key, a DGX-OS-like docker-override.conf, a
daemon.json holding the nvidia runtime, a wheelhouse and a model archive built on the controller. The host's inputs
are tests/integration/host_runtime/host_vars/sfm-host_runtime-spark.yml. In file order:

- the stage with --check on the fresh host, then for real at -vvvv (``staged``): neither fake secret in the output,
  in a unit, in the journal or in any file but its 0600 home; a second run changes nothing;
- what the stage leaves: Docker for the lab users, daemon.json merged (the nvidia runtime kept, the flag of the
  DGX-OS-like override not repeated), the docker_daemon_json module's four steps, no NVIDIA toolkit without a GPU,
  the bench venv, the registry credential, the Hugging Face and NIM caches, the secrets file, the model archive;
- the failure paths, each role alone on that host: bad and wrong NGC keys, an unreachable Hub, a world-writable NIM
  cache, the NVIDIA toolkit forced without a GPU.
"""

from __future__ import annotations

import contextlib
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
SCENARIO = Path(__file__).resolve().parent / "host_runtime"
HOST_RUNTIME = ROOT / "playbooks" / "host_runtime.yml"
HOST_IMAGE = "sparkfleet-lab/host:bookworm"
INVENTORY_NAME = "sfm-host_runtime-spark"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
HOST_VARS = yaml.safe_load((SCENARIO / "host_vars" / f"{INVENTORY_NAME}.yml").read_text())
FAKE_NGC_KEY: str = HOST_VARS["sparkfleet_ngc_api_key"]
FAKE_HF_TOKEN: str = HOST_VARS["sparkfleet_hf_token"]
# The same capability list as the Molecule scenarios (molecule/serving/molecule.yml): the engine here cannot grant
# --privileged.
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


@contextlib.contextmanager
def prepared_lab_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    """A prepared lab host, removed (with its volumes) afterwards."""
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
                            "children": {
                                "dgx_spark": {
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


@dataclass
class Staged:
    """The lab host and the stage's first two runs on it: with --check while fresh, then for real at -vvvv."""

    host: LabHost
    check: tuple[int, str]
    first: tuple[int, str]


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Staged]:
    with prepared_lab_host(tmp_path_factory) as host:
        check = host.playbook(HOST_RUNTIME, "--check")
        # The first real run passes the secrets most often: at -vvvv, every argument and result is in the output.
        first = host.playbook(HOST_RUNTIME, "-vvvv")
        yield Staged(host, check, first)


@pytest.fixture(scope="module")
def host_runtime_host(staged: Staged) -> LabHost:
    """The lab host after the stage ran on it: the tests below read what it left, or run one role on it."""
    assert staged.first[0] == 0, staged.first[1][-5000:]
    return staged.host


def _sh(host: LabHost, command: str) -> str:
    res = host.sh(command)
    assert res.returncode == 0, f"{command}: {res.stderr}"
    return res.stdout.strip()


# ---------------------------------------------------------------- the stage: --check, at -vvvv, again

# The only file allowed to hold the secrets in clear. (root's ~/.docker/config.json holds the NGC key only
# base64-encoded together with the user name, as Docker stores it; its mode is checked too.)
SECRET_HOMES = {"/etc/sparkfleet/secrets.env"}


def test_check_mode_on_the_fresh_host(staged: Staged) -> None:
    rc, output = staged.check
    assert rc == 0, output[-5000:]
    assert recap(output)["failed"] == 0


def test_stage_at_vvvv_never_shows_the_secrets(staged: Staged) -> None:
    """The whole stage at -vvvv with the known fake NGC key and HF token: neither may appear in the output, in any
    unit file, or in any file on the host other than their 0600 homes."""
    host = staged.host
    rc, output = staged.first
    assert rc == 0, output[-5000:]
    assert recap(output)["failed"] == 0
    assert len(output) > 50_000, "-vvvv output is suspiciously short"
    for secret in (FAKE_NGC_KEY, FAKE_HF_TOKEN):
        assert secret not in output, f"a secret appeared in the -vvvv output at {output.find(secret)}"

    # Every file on the host (units, journals, temporary files, Docker's volume) except /proc, /sys, /dev.
    grep = host.sh(
        "grep -rlaF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "
        f"-e '{FAKE_NGC_KEY}' -e '{FAKE_HF_TOKEN}' / 2>/dev/null; true"
    )
    found = set(grep.stdout.split())
    assert found == SECRET_HOMES, f"secrets found in {sorted(found - SECRET_HOMES)}"
    # And in the journal, as journalctl shows it (its files may be compressed).
    journal = host.sh("journalctl --no-pager -o cat 2>/dev/null").stdout
    assert journal, "journal is empty: the check above would prove nothing"
    assert FAKE_NGC_KEY not in journal
    assert FAKE_HF_TOKEN not in journal
    units = host.sh("systemctl cat '*' 2>/dev/null").stdout
    assert "[Service]" in units
    assert FAKE_NGC_KEY not in units
    assert FAKE_HF_TOKEN not in units

    for path in (*SECRET_HOMES, "/root/.docker/config.json"):
        assert host.sh(f"stat -c '%U %a' {path}").stdout.strip() == "root 600", path
    secrets_env = host.sh("cat /etc/sparkfleet/secrets.env").stdout
    assert f"NGC_API_KEY={FAKE_NGC_KEY}\n" in secrets_env
    assert f"HF_TOKEN={FAKE_HF_TOKEN}\n" in secrets_env


def test_a_second_run_changes_nothing(host_runtime_host: LabHost) -> None:
    rc, output = host_runtime_host.playbook(HOST_RUNTIME)
    assert rc == 0, output[-5000:]
    assert recap(output)["changed"] == 0, re.findall(r"^(?:changed|TASK).*$", output, re.M)[-40:]


# ---------------------------------------------------------------- docker_host

NVIDIA_RUNTIME = {"args": [], "path": "nvidia-container-runtime"}


def test_docker_running_and_enabled(host_runtime_host: LabHost) -> None:
    assert _sh(host_runtime_host, "systemctl is-active docker") == "active"
    assert _sh(host_runtime_host, "systemctl is-enabled docker") == "enabled"


@pytest.mark.parametrize("user", ["student1", "student2"])
def test_lab_users_can_use_docker(host_runtime_host: LabHost, user: str) -> None:
    assert "docker" in _sh(host_runtime_host, f"id -nG {user}").split()
    # A fresh login of the user: the group applies without any manual re-login.
    assert _sh(host_runtime_host, f"su -s /bin/sh -c \"docker info --format '{{{{.ServerVersion}}}}'\" {user}")


def test_daemon_json_merged_not_overwritten(host_runtime_host: LabHost) -> None:
    config = json.loads(_sh(host_runtime_host, "cat /etc/docker/daemon.json"))
    assert config["runtimes"]["nvidia"] == NVIDIA_RUNTIME  # written by "nvidia-ctk" in prepare, kept
    assert config["log-opts"] == {"max-size": "50m", "max-file": "3"}
    # log-level is also a dockerd flag in the DGX-OS-like docker-override.conf: dropped, so dockerd still starts.
    assert "log-level" not in config
    assert _sh(host_runtime_host, "stat -c '%a %U' /etc/docker/daemon.json") == "644 root"


def test_dockerd_runs_with_the_merged_settings(host_runtime_host: LabHost) -> None:
    info = json.loads(_sh(host_runtime_host, "docker info --format '{{json .}}'"))
    assert "nvidia" in info["Runtimes"]
    assert info["LoggingDriver"] == "json-file"


FOUR_STEP = "/root/sfm-four-step.json"


def test_docker_daemon_json_four_steps_and_nvidia_survives(host_runtime_host: LabHost) -> None:
    """sparkfleet.fleet.docker_daemon_json on a file holding the nvidia runtime: merge (changed), again (not),
    absent (changed), again (not); the nvidia runtime survives every step."""
    playbook = host_runtime_host.workdir / "four-steps.yml"
    module = "sparkfleet.fleet.docker_daemon_json"
    settings = {"live-restore": True, "runtimes": {"crun": {"path": "/usr/bin/crun"}}}

    def step(name: str, state: str) -> dict[str, Any]:
        args = {"path": FOUR_STEP, "settings": settings, "state": state}
        return {"name": name, module: args, "register": name.replace(" ", "_")}

    def read(name: str) -> dict[str, Any]:
        return {"name": name, "ansible.builtin.slurp": {"src": FOUR_STEP}, "register": name.replace(" ", "_")}

    nvidia_only = {"runtimes": {"nvidia": NVIDIA_RUNTIME}}
    tasks = [
        {"name": "start", "ansible.builtin.copy": {"dest": FOUR_STEP, "content": json.dumps(nvidia_only),
                                                   "mode": "0644"}},
        step("merge", "present"), step("merge again", "present"), read("merged"),
        step("remove", "absent"), step("remove again", "absent"), read("removed"),
        {"name": "clean up", "ansible.builtin.file": {"path": FOUR_STEP, "state": "absent"}},
        {"name": "check", "ansible.builtin.assert": {"that": [
            "merge is changed", "merge_again is not changed", "remove is changed", "remove_again is not changed",
            f"(merged.content | b64decode | from_json).runtimes.nvidia == {NVIDIA_RUNTIME!r}",
            "(merged.content | b64decode | from_json)['live-restore'] is true",
            f"(removed.content | b64decode | from_json) == {nvidia_only!r}",
        ]}},
    ]  # fmt: skip
    playbook.write_text(yaml.safe_dump([{"name": "Four steps", "hosts": "all", "become": True,
                                         "gather_facts": False, "tasks": tasks}]))  # fmt: skip
    rc, output = host_runtime_host.playbook(playbook)
    assert rc == 0, output[-4000:]


# ---------------------------------------------------------------- nvidia_toolkit (no GPU here: skipped)


def test_nvidia_toolkit_not_installed_without_gpu(host_runtime_host: LabHost) -> None:
    host = host_runtime_host
    assert host.sh("dpkg-query -W -f '${Status}' nvidia-container-toolkit").stdout.strip() != "install ok installed"
    assert host.sh("test -e /etc/apt/sources.list.d/nvidia-container-toolkit.sources").returncode != 0
    assert host.sh("test -e /etc/cdi/nvidia.yaml").returncode != 0
    assert host.sh("which nvidia-ctk").returncode != 0


# ---------------------------------------------------------------- bench_venv


def test_bench_venv_has_the_pinned_package(host_runtime_host: LabHost) -> None:
    version = "import importlib.metadata as m; print(m.version('jsonschema'))"
    assert _sh(host_runtime_host, f'/opt/sparkfleet/venv/bin/python -c "{version}"') == "4.23.0"
    assert host_runtime_host.sh("test -f /opt/sparkfleet/wheelhouse/jsonschema-4.23.0-py3-none-any.whl").returncode == 0


# ---------------------------------------------------------------- ngc_login


def test_docker_credential_stored_privately(host_runtime_host: LabHost) -> None:
    host = host_runtime_host
    address = _sh(host, "ip -4 -o route get 1.1.1.1 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'")
    assert _sh(host, "stat -c '%a %U' /root/.docker/config.json") == "600 root"
    config = json.loads(_sh(host, "cat /root/.docker/config.json"))
    # The login was accepted by the htpasswd + TLS registry prepare.yml runs on this host.
    assert list(config["auths"]) == [f"{address}:5443"]


# ---------------------------------------------------------------- hf_cache


def test_hf_cache_directories(host_runtime_host: LabHost) -> None:
    for path in ("/var/lib/sparkfleet/huggingface", "/var/lib/sparkfleet/huggingface/hub"):
        assert _sh(host_runtime_host, f"stat -c '%F %U %a' {path}") == "directory root 755", path


def test_nim_cache_owned_by_uid_1000_not_world_writable(host_runtime_host: LabHost) -> None:
    assert _sh(host_runtime_host, "stat -c '%F %u %g %a' /opt/nim/.cache") == "directory 1000 1000 775"


def test_secrets_env_file_private_and_complete(host_runtime_host: LabHost) -> None:
    assert _sh(host_runtime_host, "stat -c '%U %G %a' /etc/sparkfleet/secrets.env") == "root root 600"
    content = _sh(host_runtime_host, "cat /etc/sparkfleet/secrets.env")
    keys = {line.split("=", 1)[0] for line in content.splitlines() if "=" in line and not line.startswith("#")}
    assert keys == {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "NGC_API_KEY"}


def test_model_from_archive_and_offline_once_warm(host_runtime_host: LabHost) -> None:
    snapshot = (
        "/var/lib/sparkfleet/huggingface/hub/models--sfm--tiny-model/snapshots/0123456789abcdef0123456789abcdef01234567"
    )
    assert host_runtime_host.sh(f"test -f {snapshot}/config.json").returncode == 0
    env = host_runtime_host.sh("cat /etc/sparkfleet/hf.env").stdout
    assert "HF_HOME=/var/lib/sparkfleet/huggingface\n" in env
    assert "HF_HUB_OFFLINE=1\n" in env


# ---------------------------------------------------------------- failure paths, one role at a time


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
    credential = host_runtime_host.sh("sha256sum /root/.docker/config.json").stdout  # the stage's login
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
    assert host_runtime_host.sh("sha256sum /root/.docker/config.json").stdout == credential, "nothing may change"


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
    # As on a host that never logged in (the stage did, with this key): the first run logs in, the second does not.
    assert host_runtime_host.sh("rm /root/.docker/config.json").returncode == 0
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
