"""Fixtures of the hardware suite (``make test-gpu``): a real GPU, a real server on it, a place for the results.

Every test here carries the ``gpu`` marker and is skipped where nvidia-smi finds no GPU, unless
``SPARKFLEET_GPU_DEVICE=cpu`` asks for the same flow on the CPU with a toy-width model (to prove the suite on a
machine without a GPU; its numbers mean nothing). Settings, all optional (environment):

    SPARKFLEET_GPU_OUT          where reports and logs go (default reports/gpu)
    SPARKFLEET_GPU_DEVICE       cuda (default) or cpu
    SPARKFLEET_GPU_SHAPE        qwen3-8b (default on cuda) or tiny (default on cpu)
    SPARKFLEET_GPU_BASE_URL     benchmark this running server instead of starting one
    SPARKFLEET_GPU_PORT         the port of the server the suite starts (default 8000)
    SPARKFLEET_GPU_SERVE_ARGS   extra flags of `transformers serve` (default --continuous-batching)
    SPARKFLEET_GPU_CONCURRENCY  the benchmark's sweep (default 1,8,32,64)
    SPARKFLEET_GPU_NUM_PROMPTS  requests per level (default: the benchmark's, max(4 x concurrency, 16))
    SPARKFLEET_GPU_OUTPUT_LEN / SPARKFLEET_GPU_INPUT_LEN   tokens per request (default 32 / 256)
    HF_HOME                     the local Hugging Face cache the model is written to (default /tmp/sparkfleet-hf)
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

REPO_ID = "sparkfleet/qwen3-8b-random"


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


DEVICE = env("SPARKFLEET_GPU_DEVICE", "cuda")
ON_CPU = DEVICE == "cpu"


def gpu_present() -> tuple[bool, str]:
    """(True, '') when nvidia-smi lists a GPU; else (False, why)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False, "no nvidia-smi on this machine"
    try:
        proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"nvidia-smi -L failed: {exc}"
    if proc.returncode != 0 or "GPU " not in proc.stdout:
        return False, f"nvidia-smi finds no GPU: {(proc.stdout + proc.stderr).strip()[:200]}"
    return True, ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    present, why = gpu_present()
    if present or ON_CPU:
        return
    skip = pytest.mark.skip(reason=f"needs a real NVIDIA GPU: {why}")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def out_dir() -> Path:
    path = Path(env("SPARKFLEET_GPU_OUT", str(ROOT / "reports" / "gpu")))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Server:
    base_url: str
    model: str
    log: Path | None
    model_info: dict[str, Any]
    started_here: bool


def _get(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - a local URL
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _make_model(hf_home: Path, out_dir: Path) -> dict[str, object]:
    shape = env("SPARKFLEET_GPU_SHAPE", "tiny" if ON_CPU else "qwen3-8b")
    dtype = "float32" if ON_CPU else "bfloat16"
    argv = [sys.executable, str(ROOT / "lab/gpu/make_random_model.py"), "--hf-home", str(hf_home)]
    argv += ["--repo-id", REPO_ID, "--shape", shape, "--device", DEVICE, "--dtype", dtype]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    (out_dir / "make-model.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"make_random_model failed:\n{proc.stderr[-3000:]}"
    info: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    info["make_seconds"] = round(time.monotonic() - t0, 1)
    return info


@pytest.fixture(scope="session")
def server(out_dir: Path) -> Iterator[Server]:
    """A real OpenAI-compatible server: `transformers serve` on the GPU with the random Qwen3-8B-shaped model."""
    given = os.environ.get("SPARKFLEET_GPU_BASE_URL")
    if given:
        yield Server(given.rstrip("/"), env("SPARKFLEET_GPU_MODEL", REPO_ID), None, {}, False)
        return
    present, why = gpu_present()
    if not (present or ON_CPU):
        pytest.skip(f"needs a real NVIDIA GPU: {why}")
    if shutil.which("transformers") is None and not (Path(sys.executable).parent / "transformers").exists():
        pytest.fail("the `transformers` command is missing: install transformers (the device image has it)")
    hf_home = Path(env("HF_HOME", "/tmp/sparkfleet-hf"))
    info = _make_model(hf_home, out_dir)
    port = int(env("SPARKFLEET_GPU_PORT", "8000"))
    exe = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
    argv = [exe, "serve", REPO_ID, "--device", DEVICE, "--host", "127.0.0.1", "--port", str(port)]
    argv += shlex.split(env("SPARKFLEET_GPU_SERVE_ARGS", "--continuous-batching"))
    log = out_dir / "serve.log"
    child_env = dict(os.environ, HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with log.open("w") as handle:
        # Its own process session, so the whole server (and any worker it starts) is stopped at the end.
        proc = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    try:
        while _get(base + "/health") != 200:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() - t0 > 600:
                pytest.fail(f"transformers serve not healthy after 600 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        info["serve_start_seconds"] = round(time.monotonic() - t0, 1)
        info["serve_argv"] = argv
        (out_dir / "model.json").write_text(json.dumps(info, indent=2) + "\n")
        yield Server(base, REPO_ID, log, info, True)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
