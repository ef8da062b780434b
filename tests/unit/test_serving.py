"""Unit tests of module_utils/sparkfleet/serving/: rendering the plan, host probes, archives, health, module entry."""

from __future__ import annotations

import importlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.parse import parse_image
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving import archive, health, probes
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving import render as s
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.errors import ServingError
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import Settings, render_plan

from tests.unit.service_helpers import NO_GPU, PROFILES, make_plan, render

llm_service_spec: Any = importlib.import_module("ansible_collections.sparkfleet.fleet.plugins.modules.llm_service_spec")

OK = {"name": "sg", "engine": "sglang", "image": "lmsysorg/sglang:latest-cu130", "model": "Qwen/Qwen3-8B"}
SS = """LISTEN 0      128      0.0.0.0:22    0.0.0.0:*
LISTEN 0      4096     0.0.0.0:8080  0.0.0.0:*
LISTEN 0      4096        [::]:8080     [::]:*
LISTEN 0      4096   127.0.0.1:36427 0.0.0.0:*
LISTEN 0      511            *:9000        *:*
"""
PS = "standin-a\t0.0.0.0:8080->8080/tcp, :::8080->8080/tcp\nold\t0.0.0.0:9000->8000/tcp\n"


CPU = {"name": "standin-a", "engine": "openai", "image": "x/y:1", "model": "m", "gpu": "none", "port": 8080}


def test_a_port_another_process_holds_is_refused_naming_the_variable() -> None:
    out = render([{**OK, "port": 22}], listening=SS)
    assert out["errors"] == [
        "llm_serving_services[0] (sg).port 22 is already listening on this host (another process; see `ss -ltnp`): "
        "choose a free port or stop what holds it"
    ]
    assert out["present"] == []


def test_a_port_another_service_container_holds_is_refused() -> None:
    out = render([{**CPU, "name": "new"}], listening=SS, own_containers=PS)
    assert "the container of sparkfleet service standin-a" in out["errors"][0]


def test_own_running_service_keeps_its_port() -> None:
    out = render([CPU], listening=SS, own_containers=PS)
    assert out["errors"] == []
    assert [p["name"] for p in out["present"]] == ["standin-a"]


def test_port_of_a_service_being_removed_is_free() -> None:
    svc = {**CPU, "name": "new", "port": 9000}
    out = render([svc, {**CPU, "name": "old", "state": "absent"}], listening=SS, own_containers=PS)
    assert out["errors"] == []
    assert [a["name"] for a in out["absent"]] == ["old"]
    assert out["absent"][0]["unit_path"] == "/etc/systemd/system/sparkfleet-old.service"


def test_plan_skips_are_not_deployed() -> None:
    out = render([OK, {**CPU, "name": "cpu"}], NO_GPU, plan_over={"skip_gpu_services_without_gpu": True})
    assert [s["name"] for s in out["skipped"]] == ["sg"]
    assert out["skipped"][0]["reason"].startswith("skipped by choice")
    assert [p["name"] for p in out["present"]] == ["cpu"]
    assert out["errors"] == []


def test_images_are_deduplicated() -> None:
    a = {**CPU, "name": "a", "image_archive": "t.tar"}
    b = {**a, "name": "b", "port": 8081}
    out = render([a, b])
    assert [p["name"] for p in out["present"]] == ["a", "b"]
    assert out["images"] == [{"image": "x/y:1", "image_archive": "t.tar", "services": ["a", "b"]}]


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ({}, "no serving plan for this host"),
        ({"services": [], "errors": ["x"]}, "the preflight plan of this host has problems"),
        ({"services": [], "errors": [], "profile": "dgx_mars"}, "profile 'dgx_mars' of the plan"),
    ],
)
def test_render_refuses_a_missing_or_failed_plan(plan: dict[str, Any], expected: str) -> None:
    out = render_plan(plan, profiles=PROFILES)
    assert expected in out["errors"][0]
    assert out["present"] == []


def test_hf_cache_settings_reach_the_container_env() -> None:
    out = render([OK], settings=Settings(systemd_version=255, hf_hub_offline=1))
    env = out["present"][0]["env"]
    assert env["HF_HOME"] == "/root/.cache/huggingface"
    assert env["HF_HUB_CACHE"] == "/root/.cache/huggingface/hub"
    assert env["HF_HUB_OFFLINE"] == "1"
    online = render([OK])["present"][0]["env"]
    assert "HF_HUB_OFFLINE" not in online


@pytest.mark.parametrize(
    ("ref", "ok"),
    [
        ("lmsysorg/sglang:latest-cu130", True),
        ("nvcr.io/nim/meta/llama-3.1-8b-instruct:1.0.0-dgx-spark", True),
        ("localhost:5000/a/b", True),
        ("sparkfleet-lab/llm-standin:llama.cpp", True),
        ("lmsysorg/sglang@sha256:" + "a" * 64, True),
        ("lmsysorg/sglang:v1@sha256:" + "0" * 64, True),
        ("lmsysorg/sglang@sha256:abc", False),
        ("LMSYS/sglang", False),
        ("a b", False),
        ("", False),
        ("x:", False),
    ],
)
def test_parse_image(ref: str, ok: bool) -> None:
    assert (parse_image(ref) is not None) is ok


def test_parse_probes() -> None:
    assert probes.parse_listening_ports(SS) == {22, 8080, 36427, 9000}
    assert probes.parse_own_containers(PS) == {8080: "standin-a", 9000: "old"}
    assert probes.parse_listening_ports("") == set()


@pytest.mark.parametrize(
    ("arg", "quoted"),
    [("--port", "--port"), ('"device=1"', "'\"device=1\"'"), ("50%", "50%%"), ("$HOME", "'$$HOME'"), ("a b", "'a b'")],
)
def test_systemd_quote(arg: str, quoted: str) -> None:
    assert s.systemd_quote(arg) == quoted


def test_merge_args_user_wins() -> None:
    assert s.merge_args(["--a", "1", "--b", "--c", "x"], ["--a", "2"]) == ["--b", "--c", "x", "--a", "2"]
    assert s.merge_args(["--a", "1"], ["--a=3"]) == ["--a=3"]


def _save_archive(path: Path, tags: list[str], config: str) -> None:
    manifest = json.dumps([{"Config": config, "RepoTags": tags, "Layers": []}]).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))


@pytest.mark.parametrize("config", ["ab" * 32 + ".json", "blobs/sha256/" + "ab" * 32])
def test_archive_for_image(tmp_path: Path, config: str) -> None:
    (tmp_path / "lab").mkdir()
    _save_archive(tmp_path / "lab" / "img.tar", ["x/y:1"], config)
    info = archive.archive_for_image("lab/img.tar", [str(tmp_path / "nowhere"), str(tmp_path)], "x/y:1")
    assert info["image_id"] == "sha256:" + "ab" * 32
    assert info["path"] == str(tmp_path / "lab" / "img.tar")
    with pytest.raises(ServingError, match="holds \\['x/y:1'\\], not x/y:2"):
        archive.archive_for_image("lab/img.tar", [str(tmp_path)], "x/y:2")
    with pytest.raises(ServingError, match="was not found on the controller"):
        archive.archive_for_image("lab/none.tar", [str(tmp_path)], "x/y:1")


def test_archive_not_a_docker_save(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w"):
        pass
    with pytest.raises(ServingError, match="not a `docker save` archive"):
        archive.archive_info(bad)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, d: float) -> None:
        self.t += d


def test_wait_healthy_in_order_after_503s() -> None:
    clock = FakeClock()
    answers = {"/health_generate": [503, 503, 200], "/v1/models": [200]}
    calls: list[str] = []

    def fetch(url: str, timeout: float) -> tuple[int, str]:
        path = url.split("30000", 1)[1]
        calls.append(path)
        seq = answers[path]
        code = seq.pop(0) if len(seq) > 1 else seq[0]
        return code, '{"data": [{"id": "Qwen/Qwen3-8B"}]}' if path == "/v1/models" else ""

    out = health.wait_healthy(
        "http://127.0.0.1:30000",
        ["/health_generate", "/v1/models"],
        step_s=60,
        fetch=fetch,
        clock=clock,
        sleep=clock.sleep,
    )
    assert out["healthy"] is True
    assert out["models"] == ["Qwen/Qwen3-8B"]
    assert calls == ["/health_generate", "/health_generate", "/health_generate", "/v1/models"]
    assert clock.t == 10.0


def test_wait_healthy_step_ends_unhealthy() -> None:
    clock = FakeClock()
    out = health.wait_healthy(
        "http://x", ["/v1/health/ready"], step_s=60, fetch=lambda u, t: (503, "loading"), clock=clock, sleep=clock.sleep
    )
    assert out["healthy"] is False
    assert out["give_up"] is False
    assert 55 <= clock.t <= 60
    assert out["msg"] == "not healthy yet: /v1/health/ready -> 503"


def test_wait_healthy_gives_up_on_failed_unit() -> None:
    clock = FakeClock()
    out = health.wait_healthy(
        "http://x",
        ["/v1/models"],
        step_s=60,
        fetch=lambda u, t: (0, "connection refused"),
        unit_status=lambda: health.UnitStatus(state="failed", since_start_s=125.0),
        clock=clock,
        sleep=clock.sleep,
    )
    assert out["give_up"] is True
    assert "start limit" in out["msg"]


def test_spec_module_entry_fails_with_the_problems_only(capsys: pytest.CaptureFixture[str]) -> None:
    plan = make_plan([{**OK, "port": 22, "env": {"VISIBLE_ONLY_IN_ENV_FILE": "value-1"}}]).as_fact()
    with (
        patch_module_args({"plan": plan, "profiles": PROFILES, "listening": SS}),
        pytest.raises(SystemExit) as exc,
    ):
        llm_service_spec.main()
    assert exc.value.code == 1
    out = json.loads(capsys.readouterr().out)
    # Ansible prints `invocation` (the module's arguments) only at -vvv; what the module itself returns:
    out.pop("invocation", None)
    text = json.dumps(out)
    assert out["failed"] is True
    assert out["msg"].startswith("1 problem(s) with the planned services of this host; nothing was changed:")
    assert ".port 22 is already listening" in out["msg"]
    # A failure never carries a service's env (or anything rendered from it).
    assert "value-1" not in text and "present" not in out


def test_spec_module_entry_renders_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    args = {"plan": make_plan([OK]).as_fact(), "profiles": PROFILES, "_ansible_check_mode": True}
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        llm_service_spec.main()
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is False
    assert out["present"][0]["unit_name"] == "sparkfleet-sg.service"


# systemctl show -p UNIT_PROPERTIES as systemd 252 prints it, for a unit whose docker run exits at once (125) and
# waits for its automatic restart; then the same unit after one restart, running again.
SHOW_AUTO_RESTART = """ActiveState=activating
SubState=auto-restart
NRestarts=0
ExecMainStartTimestampMonotonic=0
ExecMainCode=1
ExecMainStatus=125
"""
SHOW_RESTARTED = """ActiveState=active
SubState=running
NRestarts=1
ExecMainStartTimestampMonotonic=5000000
ExecMainCode=0
ExecMainStatus=0
"""


def test_parse_unit_status_counts_exits() -> None:
    waiting = health.parse_unit_status(SHOW_AUTO_RESTART, now_monotonic=10.0)
    assert waiting.waiting_restart and waiting.exit_status == "exited 125" and waiting.since_start_s is None
    assert waiting.exits(baseline=0) == 1
    running = health.parse_unit_status(SHOW_RESTARTED, now_monotonic=10.0)
    assert running.exits(baseline=0) == 1 and running.since_start_s == 5.0 and running.exit_status == ""
    assert health.parse_unit_status("", 1.0) == health.UnitStatus()


@pytest.mark.parametrize(
    ("statuses", "fail_after", "give_up"),
    [
        # exits once, restarted, exits again: judged failed at the second exit
        ([SHOW_AUTO_RESTART, SHOW_RESTARTED, SHOW_AUTO_RESTART.replace("NRestarts=0", "NRestarts=1")], 2, True),
        # a single exit is not enough with 2
        ([SHOW_AUTO_RESTART, SHOW_RESTARTED, SHOW_RESTARTED], 2, False),
        # 0: only systemd's start limit ends the wait
        ([SHOW_AUTO_RESTART.replace("NRestarts=0", "NRestarts=5")] * 3, 0, False),
        # a slow load never exits: never judged failed however long it takes
        ([SHOW_RESTARTED.replace("NRestarts=1", "NRestarts=0")] * 3, 1, False),
    ],
)
def test_wait_healthy_fails_fast_after_exits(statuses: list[str], fail_after: int, give_up: bool) -> None:
    clock = FakeClock()
    seq = list(statuses)

    def status() -> health.UnitStatus:
        return health.parse_unit_status(seq.pop(0) if len(seq) > 1 else seq[0], clock.t)

    out = health.wait_healthy(
        "http://x",
        ["/health"],
        step_s=60,
        interval_s=2,
        fetch=lambda u, t: (0, "connection refused"),
        unit_status=status,
        fail_after_exits=fail_after,
        restarts_baseline=0,
        clock=clock,
        sleep=clock.sleep,
    )
    assert out["give_up"] is give_up
    if give_up:
        assert "exited 2 time(s) before it was ever healthy (last exit: exited 125)" in out["msg"]
        assert "llm_serving_fail_after_exits 2" in out["msg"]
        assert clock.t == 4.0  # the third look, two intervals in


def test_wait_healthy_baseline_from_first_look() -> None:
    """-1: the restarts found at the call's start are the baseline (a gate on a unit that did not restart now)."""
    clock = FakeClock()
    old = SHOW_RESTARTED.replace("NRestarts=1", "NRestarts=7")
    out = health.wait_healthy(
        "http://x", ["/health"], step_s=6, interval_s=2, fetch=lambda u, t: (503, ""),
        unit_status=lambda: health.parse_unit_status(old, clock.t), fail_after_exits=1, clock=clock,
        sleep=clock.sleep,
    )  # fmt: skip
    assert out["give_up"] is False and out["exits"] == 0
