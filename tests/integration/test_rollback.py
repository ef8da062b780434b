"""Rollback is exact and a host is one transaction, on a real lab host (systemd, a nested Docker engine).

The host serves two stand-in services: `standin` and `rb` (image `sfi/rb:v1`). One run then changes both: standin
gets a new argument (healthy), rb moves to a new tag (`sfi/rb:v2`, another image ID), a new port, a new env
value and a server that exits at once. Checked:
- rb is judged failed after two exits, without waiting for systemd's start limit, and the message says so;
- both services go back (the host ends the run all old): units and env files byte for byte as before, rb answers
  on its old port from the `sfi/rb:v1` image ID, the new port is closed, standin runs its old arguments;
- `sfi/rb:v2` still names its own image ID (the new tag is never pointed at the old image);
- the same failing change again gives the same result (rolling back twice);
- `state: absent` removes rb's unit, env file, container and kept last-known-good files; a unit of the user's
  that only looks like sparkfleet's (its name, its label) survives orphan removal and `state: absent`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_host_runtime import HOST_IMAGE, LabHost, _start
from tests.integration.test_refused_inputs import ARCHIVE, GOOD, ROOT, WHEELHOUSE, _inventory

pytestmark = pytest.mark.lab

SERVING = ROOT / "playbooks" / "serving.yml"
PREPARE = ROOT / "molecule" / "shared" / "prepare.yml"
RB_V1: dict[str, Any] = {
    **GOOD,
    "name": "rb",
    "image": "sfi/rb:v1",
    "image_archive": "",
    "port": 8090,
}
COMMAND: list[str] = [str(a) for a in GOOD["command"]]  # type: ignore[attr-defined]
STANDIN_NEW: dict[str, Any] = {**GOOD, "command": [*COMMAND, "--threads-batch", "1"]}
RB_BROKEN: dict[str, Any] = {
    **RB_V1,
    "image": "sfi/rb:v2",
    "port": 8091,
    "env": {"SFI_RELEASE": "2"},
    "command": [*COMMAND, "--no-such-flag"],
}
# A unit of the user's, named and labelled like sparkfleet's, without sparkfleet's marker.
LOOKALIKE = (
    "[Unit]\nDescription=sparkfleet openai service mine (a hand-written unit)\n[Service]\n"
    "ExecStart=/usr/bin/docker run --rm --name sparkfleet-mine --label org.sparkfleet.service=mine busybox\n"
)
FAST = {"llm_serving_restart_sec": 3, "llm_serving_health_timeout_s": 300}


def _files(host: LabHost) -> str:
    out = host.sh(
        "cat /etc/systemd/system/sparkfleet-standin.service /etc/systemd/system/sparkfleet-rb.service "
        "/etc/sparkfleet/serving/standin.env /etc/sparkfleet/serving/rb.env"
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _image_id(host: LabHost, ref: str) -> str:
    return host.sh(f"docker image inspect --format '{{{{.Id}}}}' {ref}").stdout.strip()


def _answers(host: LabHost, port: int) -> bool:
    return host.sh(f"curl -fsS -o /dev/null --max-time 3 http://127.0.0.1:{port}/v1/models").returncode == 0


def _serve(host: LabHost, services: list[dict[str, Any]], **extra: Any) -> tuple[int, str]:
    return host.playbook(SERVING, extra_vars={**FAST, "llm_serving_services": services, **extra})


@pytest.fixture(scope="module")
def two_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    if subprocess.run(["docker", "image", "inspect", HOST_IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"image {HOST_IMAGE} is absent: run `make images`")
    if not ARCHIVE.is_file() or not WHEELHOUSE.is_dir():
        pytest.skip(f"{ARCHIVE} or {WHEELHOUSE} is absent: run `make images`")
    workdir = tmp_path_factory.mktemp("rollback")
    container = f"sfi-rollback-{uuid.uuid4().hex[:8]}"
    _inventory(workdir, container)
    _start(container)
    host = LabHost(container, workdir)
    try:
        rc, output = host.playbook(PREPARE)
        assert rc == 0, f"prepare failed:\n{output[-4000:]}"
        rc, output = _serve(host, [GOOD])  # delivers the stand-in image from its archive
        assert rc == 0, f"first deploy failed:\n{output[-6000:]}"
        # Two tags with two image IDs, as a registry with v1 and v2 would leave them after two pulls.
        tagged = host.sh(
            "docker tag sparkfleet-lab/llm-standin:llama.cpp sfi/rb:v1 && "
            "printf 'FROM sfi/rb:v1\\nLABEL org.sparkfleet.test.release=2\\n'"
            " | DOCKER_BUILDKIT=0 docker build -q -t sfi/rb:v2 -"
        )
        assert tagged.returncode == 0, tagged.stderr
        rc, output = _serve(host, [GOOD, RB_V1])
        assert rc == 0, f"deploying rb v1 failed:\n{output[-6000:]}"
        yield host
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=False)


def test_a_failed_change_rolls_the_whole_host_back_exactly(two_services: LabHost) -> None:
    host = two_services
    before = _files(host)
    v1, v2 = _image_id(host, "sfi/rb:v1"), _image_id(host, "sfi/rb:v2")
    assert v1 and v2 and v1 != v2
    for attempt in (1, 2):  # rolling back twice ends where rolling back once did
        started = time.monotonic()
        rc, output = _serve(host, [STANDIN_NEW, RB_BROKEN])
        elapsed = time.monotonic() - started
        assert rc != 0, output[-4000:]
        flat = " ".join(output.split())
        assert "rb failed its health gate: the server exited 2 time(s) before it was ever healthy" in flat, flat[-4000:]
        assert "judged failed without waiting for systemd's start limit" in flat
        assert "rolled back (rb failed its health gate" in flat
        print(f"attempt {attempt}: the failed change was rolled back {elapsed:.0f} s after the run started")
        # All old: both units and env files byte for byte, rb on its old port from the v1 image ID.
        assert _files(host) == before
        assert _answers(host, 8090) and not _answers(host, 8091) and _answers(host, 8080)
        ran = host.sh("docker inspect --format '{{.Config.Image}} {{.Image}}' sparkfleet-rb").stdout.split()
        assert ran == ["sfi/rb:v1", v1]
        cmd = host.sh("docker inspect --format '{{json .Config.Cmd}}' sparkfleet-standin").stdout
        assert "--threads-batch" not in cmd
        # The new release's tag still names its own image: the next run would run v2, not v1 under v2's name.
        assert _image_id(host, "sfi/rb:v2") == v2 and _image_id(host, "sfi/rb:v1") == v1


def test_absent_removes_what_sparkfleet_wrote_and_never_a_look_alike(two_services: LabHost) -> None:
    host = two_services
    wrote = host.sh(
        f"printf '%s' '{LOOKALIKE}' > /etc/systemd/system/sparkfleet-mine.service && systemctl daemon-reload"
    )
    assert wrote.returncode == 0, wrote.stderr
    assert host.sh("test -d /var/lib/sparkfleet/lkg/rb").returncode == 0  # kept by the rollbacks above
    absent = [{**RB_V1, "state": "absent"}, {**GOOD, "name": "mine", "port": 8099, "state": "absent"}]
    rc, output = _serve(host, [GOOD, *absent], llm_serving_remove_orphans=True)
    assert rc == 0, output[-6000:]
    assert "marker for mine: it was not written by sparkfleet and is left as it is" in " ".join(output.split())
    gone = host.sh(
        "test ! -e /etc/systemd/system/sparkfleet-rb.service && test ! -e /etc/sparkfleet/serving/rb.env && "
        'test ! -e /var/lib/sparkfleet/lkg/rb && test -z "$(docker ps -aq --filter name=^/sparkfleet-rb$)"'
    )
    assert gone.returncode == 0, host.sh(
        "ls -la /etc/systemd/system /etc/sparkfleet/serving /var/lib/sparkfleet/lkg"
    ).stdout
    assert host.sh("cat /etc/systemd/system/sparkfleet-mine.service").stdout == LOOKALIKE
    assert _answers(host, 8080)
