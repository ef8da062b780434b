"""Unit tests of module_utils/sparkfleet/serving.py: bad input, probes, archives, health waits, module entry."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import llm_service_spec  # type: ignore[import-not-found]  # plugins/modules, on sys.path via conftest
import pytest
import yaml
from ansible.module_utils.sparkfleet import serving as s
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[2]
PROFILES = yaml.safe_load((ROOT / "group_vars" / "all" / "profiles.yml").read_text())["sparkfleet_profiles"]
SPARK_GPU = {"profile": "dgx_spark", "gpus": [{"index": 0, "name": "NVIDIA GB10"}], "serving_gpu": {"index": 0}}
OK = {"name": "sg", "engine": "sglang", "image": "lmsysorg/sglang:latest-cu130", "model": "Qwen/Qwen3-8B"}
SS = """LISTEN 0      128      0.0.0.0:22    0.0.0.0:*
LISTEN 0      4096     0.0.0.0:8080  0.0.0.0:*
LISTEN 0      4096        [::]:8080     [::]:*
LISTEN 0      4096   127.0.0.1:36427 0.0.0.0:*
LISTEN 0      511            *:9000        *:*
"""
PS = "standin-a\t0.0.0.0:8080->8080/tcp, :::8080->8080/tcp\nold\t0.0.0.0:9000->8000/tcp\n"


def plan(services: Any, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"profile_name": "dgx_spark", "profiles": PROFILES, "gpu_facts": SPARK_GPU}
    args.update(kw)
    return s.plan_services(services, **args)


BAD = [
    ("unknown engine", [{**OK, "engine": "tgi"}], {}, "llm_serving_services[0] (sg).engine is 'tgi'"),
    ("bad image", [{**OK, "image": "LMSYS/SGLang::x"}], {}, "llm_serving_services[0] (sg).image"),
    ("image with space", [{**OK, "image": "sglang latest"}], {}, ".image"),
    (
        "mem_fraction 1.5",
        [{**OK, "mem_fraction": 1.5}],
        {},
        "mem_fraction is 1.5: use a number above 0 and at most 0.8",
    ),
    ("mem_fraction above Spark max", [{**OK, "mem_fraction": 0.85}], {}, "max_mem_fraction of profile dgx_spark"),
    ("mem_fraction 0", [{**OK, "mem_fraction": 0}], {}, ".mem_fraction is 0"),
    ("mem_fraction text", [{**OK, "mem_fraction": "lots"}], {}, ".mem_fraction must be a number"),
    (
        "nim without key",
        [{"name": "n", "engine": "nim", "image": "nvcr.io/nim/x:1"}],
        {},
        "sparkfleet_ngc_api_key is empty",
    ),
    ("two services one port", [OK, {**OK, "name": "sg2"}], {}, "[1] (sg2).port 30000 is also the port of service sg"),
    (
        "port held by a process",
        [{**OK, "port": 22}],
        {"listening": SS},
        ".port 22 is already listening on this host (another",
    ),
    (
        "port held by another service's container",
        [{**OK, "name": "new", "port": 8080}],
        {"listening": SS, "own_containers": PS},
        "the container of sparkfleet service standin-a",
    ),
    ("port out of range", [{**OK, "port": 70000}], {}, ".port is 70000: use an integer from 1 to 65535"),
    ("duplicate name", [OK, {**OK, "port": 30001}], {}, "[1].name 'sg' is also the name of llm_serving_services[0]"),
    ("bad name", [{**OK, "name": "Bad Name"}], {}, "[0].name 'Bad Name' is not usable"),
    (
        "unknown key",
        [{**OK, "mem_fraction_static": 0.8}],
        {},
        "unknown keys ['mem_fraction_static'] (use mem_fraction)",
    ),
    ("bad state", [{**OK, "state": "running"}], {}, "(sg).state is 'running': use present or absent"),
    ("sglang without model", [{**OK, "model": ""}], {}, "(sg).model is empty"),
    ("gpu name not found", [{**OK, "gpu": "GB300"}], {}, "(sg).gpu is 'GB300' but no GPU on this host"),
    ("gpu index not found", [{**OK, "gpu": 3}], {}, "(sg).gpu is 3 but this host has GPUs [0: NVIDIA GB10]"),
    ("gpu auto without facts", [OK], {"gpu_facts": {}}, "run playbooks/preflight.yml first"),
    ("extra_args a string", [{**OK, "extra_args": "--x 1"}], {}, "(sg).extra_args must be a list"),
    ("env newline", [{**OK, "env": {"A": "x\ny"}}], {}, "(sg).env.A contains a newline"),
    ("unknown profile", [OK], {"profile_name": "dgx_mars"}, "profile 'dgx_mars' (ansible_facts.nvidia_gpu.profile)"),
    ("not a list", {"name": "x"}, {}, "llm_serving_services must be a list"),
]


@pytest.mark.parametrize(("case", "services", "kw", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_variable(case: str, services: Any, kw: dict[str, Any], expected: str) -> None:
    out = plan(services, **kw)
    assert any(expected in e for e in out["errors"]), out["errors"]
    assert all("llm_serving_services" in e or "profile" in e for e in out["errors"])


def test_all_errors_of_a_host_at_once() -> None:
    out = plan([{**OK, "mem_fraction": 2}, {**OK, "name": "x", "image": "A B"}, {**OK, "name": "y", "engine": "?"}])
    assert len(out["errors"]) == 3
    assert out["present"] == []


def test_own_running_service_keeps_its_port() -> None:
    svc = {"name": "standin-a", "engine": "openai", "image": "x/y:1", "gpu": "none", "port": 8080}
    out = plan([svc], listening=SS, own_containers=PS)
    assert out["errors"] == []
    assert [p["name"] for p in out["present"]] == ["standin-a"]


def test_port_of_a_service_being_removed_is_free() -> None:
    svc = {"name": "new", "engine": "openai", "image": "x/y:1", "gpu": "none", "port": 9000}
    out = plan(
        [svc, {"name": "old", "engine": "openai", "image": "x/y:1", "state": "absent"}], listening=SS, own_containers=PS
    )
    assert out["errors"] == []
    assert [a["name"] for a in out["absent"]] == ["old"]
    assert out["absent"][0]["unit_path"] == "/etc/systemd/system/sparkfleet-old.service"


def test_plan_skips_are_not_deployed() -> None:
    plan_fact = {"skipped": [{"name": "sg", "reason": "GPU service on a host without GPU (profile none)"}]}
    other = {"name": "cpu", "engine": "openai", "image": "x/y:1", "gpu": "none"}
    out = plan([OK, other], plan=plan_fact)
    assert out["skipped"] == plan_fact["skipped"]
    assert [p["name"] for p in out["present"]] == ["cpu"]
    assert out["errors"] == []


def test_no_plan_deploys_all_and_images_are_deduplicated() -> None:
    a = {"name": "a", "engine": "openai", "image": "x/y:1", "gpu": "none", "port": 8080, "image_archive": "t.tar"}
    b = {**a, "name": "b", "port": 8081}
    out = plan([a, b])
    assert [p["name"] for p in out["present"]] == ["a", "b"]
    assert out["images"] == [{"image": "x/y:1", "image_archive": "t.tar", "services": ["a", "b"]}]


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
    if ok:
        s.parse_image(ref)
    else:
        with pytest.raises(s.ServingError):
            s.parse_image(ref)


def test_parse_probes() -> None:
    assert s.parse_listening_ports(SS) == {22, 8080, 36427, 9000}
    assert s.parse_own_containers(PS) == {8080: "standin-a", 9000: "old"}
    assert s.parse_listening_ports("") == set()


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
    info = s.archive_for_image("lab/img.tar", [str(tmp_path / "nowhere"), str(tmp_path)], "x/y:1")
    assert info["image_id"] == "sha256:" + "ab" * 32
    assert info["path"] == str(tmp_path / "lab" / "img.tar")
    with pytest.raises(s.ServingError, match="holds \\['x/y:1'\\], not x/y:2"):
        s.archive_for_image("lab/img.tar", [str(tmp_path)], "x/y:2")
    with pytest.raises(s.ServingError, match="was not found on the controller"):
        s.archive_for_image("lab/none.tar", [str(tmp_path)], "x/y:1")


def test_archive_not_a_docker_save(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w"):
        pass
    with pytest.raises(s.ServingError, match="not a `docker save` archive"):
        s.archive_info(bad)


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

    out = s.wait_healthy(
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
    out = s.wait_healthy(
        "http://x", ["/v1/health/ready"], step_s=60, fetch=lambda u, t: (503, "loading"), clock=clock, sleep=clock.sleep
    )
    assert out["healthy"] is False
    assert out["give_up"] is False
    assert 55 <= clock.t <= 60
    assert out["msg"] == "not healthy yet: /v1/health/ready -> 503"


def test_wait_healthy_gives_up_on_failed_unit() -> None:
    clock = FakeClock()
    out = s.wait_healthy(
        "http://x",
        ["/v1/models"],
        step_s=60,
        fetch=lambda u, t: (0, "connection refused"),
        unit_state=lambda: ("failed", 125.0),
        clock=clock,
        sleep=clock.sleep,
    )
    assert out["give_up"] is True
    assert "start limit" in out["msg"]


def test_spec_module_entry_fails_with_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    services = [{**OK, "mem_fraction": 3}, {**OK, "name": "n", "engine": "nim", "image": "nvcr.io/nim/x:1"}]
    with (
        patch_module_args({"services": services, "profile": "dgx_spark", "profiles": PROFILES, "gpu_facts": SPARK_GPU}),
        pytest.raises(SystemExit) as exc,
    ):
        llm_service_spec.main()
    assert exc.value.code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] is True
    assert out["msg"].startswith("2 problem(s) in llm_serving_services on this host; nothing was changed:")
    assert "mem_fraction is 3" in out["msg"]
    assert "sparkfleet_ngc_api_key is empty" in out["msg"]


def test_spec_module_entry_renders_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    args = {
        "services": [OK],
        "profile": "dgx_spark",
        "profiles": PROFILES,
        "gpu_facts": SPARK_GPU,
        "_ansible_check_mode": True,
    }
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        llm_service_spec.main()
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is False
    assert out["present"][0]["unit_name"] == "sparkfleet-sg.service"
