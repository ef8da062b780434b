"""Integration fixtures: a real OpenAI-compatible server (the lab's llama.cpp stand-in image).

``standin_server`` (session scope) starts ``sparkfleet-lab/llm-standin:llama.cpp`` on a free
127.0.0.1 port under a unique container name, waits for ``/health`` and ``/v1/models``, yields
``StandinServer(base_url, model)`` and removes the container afterwards. Tests that use it carry
the ``lab`` marker; they are skipped with the reason when Docker or the image is missing
(build it with ``make images``).

Markers that cut the suite into jobs ``make test`` runs side by side (each a pytest process of its own):
``served`` (given here to every test that uses ``served_host``: they share its one converged host) and ``fleet``
(test_fleet_rollout.py's own lab); the rest is ``-m "not served and not fleet"``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

STANDIN_IMAGE = "sparkfleet-lab/llm-standin:llama.cpp"
STANDIN_MODEL = "sparkfleet/tiny-llama"
READY_TIMEOUT_S = 60.0


class StandinServer(NamedTuple):
    base_url: str
    model: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/v1/models", timeout=2) as resp:  # noqa: S310 - http URL built here
            body = json.load(resp)
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return any(item.get("id") == STANDIN_MODEL for item in body.get("data", []))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "served: uses the shared converged lab host (served_host); given by conftest")
    config.addinivalue_line("markers", "fleet: the rollout tests on their own five-host lab (test_fleet_rollout.py)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "served_host" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.served)


@pytest.fixture(scope="session")
def standin_server() -> Iterator[StandinServer]:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed: the stand-in LLM server cannot run")
    probe = subprocess.run(["docker", "image", "inspect", STANDIN_IMAGE], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"image {STANDIN_IMAGE} is absent (or the Docker engine does not answer): run `make images`")
    port = _free_port()
    name = f"sparkfleet-test-standin-{uuid.uuid4().hex[:8]}"
    started = subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8080", STANDIN_IMAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        pytest.fail(f"docker run {STANDIN_IMAGE} failed: {started.stderr.strip()}")
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ready(base_url):
            if time.monotonic() > deadline:
                logs = subprocess.run(
                    ["docker", "logs", "--tail", "30", name], capture_output=True, text=True, check=False
                )
                pytest.fail(f"stand-in server not ready after {READY_TIMEOUT_S}s:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.3)
        yield StandinServer(base_url, STANDIN_MODEL)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


@pytest.fixture(scope="session")
def served_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One lab host converged with site.yml (tests/integration/served.py), shared by every test that needs a
    serving host: booted, prepared and converged once per session."""
    from tests.integration.served import converged_host

    yield from converged_host(tmp_path_factory)
