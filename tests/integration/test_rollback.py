"""Rollback is exact and a host is one transaction, on a real lab host (systemd, a nested Docker engine).

On the shared converged host (tests/integration/served.py), with a real registry on it (Debian's docker-registry)
holding `sfi/rb:v1` and `sfi/rb:v2` (two image IDs), the host serves `standin` and `rb` (v1, pulled). One run then
changes both: standin gets a new argument (healthy), rb moves to v2 (pulled), a new port, a new env value and a
server that exits at once. Checked:
- rb is judged failed after two exits, without waiting for systemd's start limit, and the message says so;
- both services go back (the host ends the run all old): units and env files byte for byte as before, rb answers
  on its old port from v1's image ID, the new port is closed, standin runs its old arguments;
- v2's tag still names the image the registry served for it (the new tag is never pointed at the old image), and
  the next run of v2 with a working command runs v2's image, not v1's under v2's name;
- the same failing change again gives the same result (rolling back twice);
- `state: absent` removes rb's unit, env file, container and kept last-known-good files; a unit of the user's
  that only looks like sparkfleet's (its name, its label) survives orphan removal and `state: absent`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.served import GOOD, ROOT
from tests.integration.test_host_runtime import LabHost

pytestmark = pytest.mark.lab

SERVING = ROOT / "playbooks" / "serving.yml"
# A real registry on the lab host (Debian's docker-registry, the distribution registry; docker pulls from a loopback
# registry without TLS): the host pulls v1 and v2 from it as it would from nvcr.io, and a rollback must not leave
# v2's tag naming v1's image.
REGISTRY = "127.0.0.1:5000"
RB_V1: dict[str, Any] = {
    **GOOD,
    "name": "rb",
    "image": f"{REGISTRY}/sfi/rb:v1",
    "image_archive": "",
    "port": 8090,
}
COMMAND: list[str] = [str(a) for a in GOOD["command"]]  # type: ignore[attr-defined]
STANDIN_NEW: dict[str, Any] = {**GOOD, "command": [*COMMAND, "--threads-batch", "1"]}
RB_BROKEN: dict[str, Any] = {
    **RB_V1,
    "image": f"{REGISTRY}/sfi/rb:v2",
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
def two_services(served_host: LabHost) -> Iterator[LabHost]:
    """The shared converged host (it serves GOOD) with a second service rb from sfi/rb:v1; afterwards the host is
    served again with the inventory's own settings, as it was."""
    host = served_host
    # Two tags with two image IDs in a real registry, and neither in the host's store: serving pulls them.
    pushed = host.sh(
        "set -e; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; "
        # Debian's default config asks for htpasswd credentials: a loopback registry of the test's own, open.
        f"printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: /var/lib/docker-registry\\n"
        f"http:\\n  addr: {REGISTRY}\\n' > /etc/docker/registry/config.yml; systemctl restart docker-registry; "
        f"for i in $(seq 30); do curl -sf http://{REGISTRY}/v2/ >/dev/null && break; sleep 1; done; "
        f"docker tag sparkfleet-lab/llm-standin:llama.cpp {REGISTRY}/sfi/rb:v1; "
        f"printf 'FROM {REGISTRY}/sfi/rb:v1\\nLABEL org.sparkfleet.test.release=2\\n'"
        f" | DOCKER_BUILDKIT=0 docker build -q -t {REGISTRY}/sfi/rb:v2 -; "
        f"docker push -q {REGISTRY}/sfi/rb:v1; docker push -q {REGISTRY}/sfi/rb:v2; "
        f"docker rmi {REGISTRY}/sfi/rb:v1 {REGISTRY}/sfi/rb:v2"
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    rc, output = _serve(host, [GOOD, RB_V1])
    assert rc == 0, f"deploying rb v1 failed:\n{output[-6000:]}"
    yield host
    rc, output = host.playbook(SERVING)
    assert rc == 0, f"serving the host as its inventory says failed:\n{output[-4000:]}"


def test_a_failed_change_rolls_the_whole_host_back_exactly(two_services: LabHost) -> None:
    host = two_services
    before = _files(host)
    v1 = _image_id(host, f"{REGISTRY}/sfi/rb:v1")
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
        assert ran == [f"{REGISTRY}/sfi/rb:v1", v1]
        cmd = host.sh("docker inspect --format '{{json .Config.Cmd}}' sparkfleet-standin").stdout
        assert "--threads-batch" not in cmd
        # The new release's tag still names the image the registry served for it, not v1's.
        v2 = _image_id(host, f"{REGISTRY}/sfi/rb:v2")
        assert v2 and v2 != v1 and _image_id(host, f"{REGISTRY}/sfi/rb:v1") == v1


def test_the_next_run_of_the_new_tag_runs_the_new_image(two_services: LabHost) -> None:
    """After the rollbacks, v2 with a working command: the host finds v2's tag as the registry left it and runs v2
    (before, a rollback re-tagged v2 to v1's image, and this run would have run v1 under v2's name)."""
    host = two_services
    v2 = _image_id(host, f"{REGISTRY}/sfi/rb:v2")
    rc, output = _serve(host, [GOOD, {**RB_BROKEN, "command": COMMAND}])
    assert rc == 0, output[-4000:]
    ran = host.sh("docker inspect --format '{{.Config.Image}} {{.Image}}' sparkfleet-rb").stdout.split()
    assert ran == [f"{REGISTRY}/sfi/rb:v2", v2]
    assert _answers(host, 8091)


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
