"""status/ (playbooks/status.yml): the host-side collector on captured outputs, and the controller-side report.

Captures in tests/fixtures/status/ (README there): a lab host converged with the stand-in, read with the exact
commands the collector runs. GPU: the real nvidia-smi captures of tests/fixtures/nvidia-smi through the GPU tests'
fake probe; GB10's /proc/meminfo is built to its published figures (no capture exists).
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.contracts import STATUS_SCHEMA
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.state import own_units
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.status import collect as sc
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.status import report as sr

from tests.unit.module_fakes import ExitJson
from tests.unit.service_helpers import PROFILES
from tests.unit.test_gpu import GB10_FULL, GB10_MEMINFO, H100_CSV, H100_XML, PRIMARY, fake_probe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "status"
SHOW = (FIXTURES / "systemctl-show.txt").read_text()
INSPECT = (FIXTURES / "docker-inspect.json").read_text()
IMAGE_INSPECT = (FIXTURES / "docker-image-inspect.json").read_text()
UNIT = (FIXTURES / "sparkfleet-standin-tiny-llama.service").read_text()
MONOTONIC = float((FIXTURES / "monotonic.txt").read_text())
NO_SUCH = "Error: No such container: sparkfleet-ghost\n"

# The service spark-01 of the demo lab was converged with when captured (inventories/demo/group_vars/all/serving.yml).
STANDIN: dict[str, Any] = {
    "name": "standin-tiny-llama",
    "engine": "openai",
    "image": "sparkfleet-lab/llm-standin:llama.cpp",
    "image_archive": "lab/.state/images/llm-standin.tar",
    "model": "sparkfleet/tiny-llama",
    "gpu": "none",
    "port": 8080,
    "container_port": 8080,
    "command": ["--port", "8080", "--alias", "sparkfleet/tiny-llama", "--parallel", "4", "--ctx-size", "8192",
                "--threads", "1", "--threads-batch", "1", "--poll", "0", "--metrics"],
}  # fmt: skip
NAME = STANDIN["name"]
MODELS = '{"object":"list","data":[{"id":"sparkfleet/tiny-llama","object":"model"}]}'


class FakeHost:
    """Answers the collector's commands from the captures; records them."""

    def __init__(self, unit_dir: Path, *, show: str = SHOW, inspect: str = INSPECT, healthy: bool = True) -> None:
        self.unit_dir = unit_dir
        self.show, self.inspect, self.healthy = show, inspect, healthy
        self.calls: list[list[str]] = []
        self.fetched: list[str] = []

    def run(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[0] == "systemctl":
            return 0, self.show, ""
        if argv[1:3] == ["inspect", "--type"]:
            missing = [a for a in argv[4:] if a != f"sparkfleet-{NAME}"]
            return (1 if missing else 0), self.inspect, NO_SUCH if missing else ""
        if argv[1:3] == ["image", "inspect"]:
            return 0, IMAGE_INSPECT, ""
        raise AssertionError(f"unexpected command {argv}")

    def fetch(self, url: str, timeout: float) -> tuple[int, str]:
        self.fetched.append(url)
        if not self.healthy:
            return 0, "connection refused"
        return 200, MODELS if url.endswith("/v1/models") else ""

    def host(self, probe: Any = None) -> sc.Host:
        return sc.Host(
            run=self.run,
            probe=probe or fake_probe(smi=None, files={"/proc/meminfo": GB10_MEMINFO}),
            read_text=lambda path: Path(path).read_text() if Path(path).is_file() else None,
            fetch=self.fetch,
            monotonic=lambda: MONOTONIC,
            now=lambda: 1_800_000_000.0,
            realpath=lambda p: p,
            units_in=own_units,
        )


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    d = tmp_path / "system"
    d.mkdir()
    shutil.copy(FIXTURES / f"sparkfleet-{NAME}.service", d / f"sparkfleet-{NAME}.service")
    return d


def _inputs(unit_dir: Path, services: list[dict[str, Any]] | None = None, **settings: Any) -> sc.Inputs:
    return sc.Inputs(
        services=copy.deepcopy([STANDIN] if services is None else services),
        profiles=copy.deepcopy(PROFILES),
        settings={"unit_dir": str(unit_dir), **settings},
    )


# ------------------------------------------------------------------------------------------------- parsers


def test_parse_show_keys_each_block_by_its_unit() -> None:
    blocks = sc.parse_show(SHOW)
    assert set(blocks) == {f"sparkfleet-{NAME}.service", "sparkfleet-ghost.service"}
    standin = sc.unit_summary(blocks[f"sparkfleet-{NAME}.service"], MONOTONIC)
    assert standin["load"] == "loaded" and standin["active"] == "active" and standin["sub"] == "running"
    assert standin["enabled"] == "enabled"
    assert standin["uptime_s"] == round(MONOTONIC - 1366.040323)  # ExecMainStartTimestampMonotonic, in µs
    ghost = sc.unit_summary(blocks["sparkfleet-ghost.service"], MONOTONIC)
    assert ghost["load"] == "not-found" and ghost["active"] == "inactive" and ghost["uptime_s"] is None


def _stopped_show() -> str:
    """Captured on the fleet lab (tests/integration/fleet), whose service is named standin: read as this one's."""
    return (FIXTURES / "systemctl-show-stopped.txt").read_text().replace("sparkfleet-standin.", f"sparkfleet-{NAME}.")


def test_a_stopped_unit_has_no_uptime() -> None:
    stopped_show = _stopped_show()
    stopped = sc.unit_summary(sc.parse_show(stopped_show)[f"sparkfleet-{NAME}.service"], MONOTONIC)
    assert stopped["active"] in ("inactive", "failed") and stopped["uptime_s"] is None


def test_container_and_image_from_docker_inspect() -> None:
    [obj] = sc.parse_inspect(INSPECT)
    container = sc.container_summary(obj)
    assert container["running"] is True and container["status"] == "running"
    assert container["image_id"].startswith("sha256:")
    assert container["image_ref"] == "sparkfleet-lab/llm-standin:llama.cpp"
    [img] = sc.parse_inspect(IMAGE_INSPECT)
    image = sc.image_summary(img)
    assert image["id"] == container["image_id"]
    assert "sparkfleet-lab/llm-standin:llama.cpp" in image["tags"]
    assert image["digests"] == []  # loaded from an archive, never pulled from a registry


@pytest.mark.parametrize("text", ["", "not json", "{}", "[1, 2]", "Error: No such object: x"])
def test_parse_inspect_never_raises(text: str) -> None:
    assert sc.parse_inspect(text) == []


def test_unit_lines_of_the_real_unit() -> None:
    lines = sc.unit_lines(UNIT)
    assert lines["marker"].startswith("# org.sparkfleet.owned ")
    assert lines["ExecStart"].startswith(f"/usr/bin/docker run --rm --name sparkfleet-{NAME} ")
    assert lines["ExecStartPre"] == f"-/usr/bin/docker rm -f sparkfleet-{NAME}"


def test_gpu_memory_nvidia_smi_and_unified() -> None:
    h100 = sc.gpu_memory(sc.detect(fake_probe(query={PRIMARY: (0, H100_CSV, "")}, xml=(0, H100_XML, ""))).facts)
    assert h100["source"] == "nvidia-smi" and h100["unified_memory"] is False
    [dev] = h100["devices"]
    assert dev["name"] == "NVIDIA H100 80GB HBM3" and dev["total_mib"] == 81559 and dev["source"] == "nvidia-smi"
    assert isinstance(dev["used_mib"], int)
    probe = fake_probe(query={PRIMARY: (0, GB10_FULL, "")}, files={"/proc/meminfo": GB10_MEMINFO})
    gb10 = sc.gpu_memory(sc.detect(probe).facts)
    [dev] = gb10["devices"]
    assert gb10["unified_memory"] is True and dev["source"] == "/proc/meminfo"
    assert dev["total_mib"] == 127600748 // 1024
    assert dev["used_mib"] == 127600748 // 1024 - 119537664 // 1024
    assert sc.gpu_memory({}) == {"source": "none", "unified_memory": False, "devices": []}


def test_clip_bounds_strings_and_lists() -> None:
    state = {"truncated": False}
    out = sc.clip({"a": "x" * 1000, "l": [{"n": i} for i in range(100)], "p": ["e"] * 50}, state)
    assert len(out["a"]) == sc.MAX_TEXT and out["a"].endswith("...")
    assert len(out["l"]) == sc.MAX_SERVICES and len(out["p"]) == sc.MAX_PROBLEMS
    assert state["truncated"] is True


# ------------------------------------------------------------------------------------------------ collector


def test_converged_host_is_ok_in_one_pass_of_three_commands(unit_dir: Path) -> None:
    fake = FakeHost(unit_dir)
    doc = sc.collect(_inputs(unit_dir), fake.host())
    assert doc["schema"] == STATUS_SCHEMA and doc["verdict"] == "ok", doc
    [svc] = doc["services"]
    assert svc["state"] == "ok" and svc["drift"] == [] and svc["problems"] == []
    assert svc["unit"]["active"] == "active" and svc["container"]["running"] is True
    assert svc["image"]["state"] == "current" and svc["image"]["planned_id"] == svc["image"]["running_id"]
    assert svc["health"] == {
        "checked": True,
        "healthy": True,
        "url": "http://127.0.0.1:8080",
        "detail": "/v1/models 200",
    }
    # One systemctl show, one docker inspect of the containers, one of the planned images (in parallel): nothing else.
    assert sorted(c[:3] for c in fake.calls) == [
        ["/usr/bin/docker", "image", "inspect"],
        ["/usr/bin/docker", "inspect", "--type"],
        ["systemctl", "show", f"--property={sc.SHOW_PROPERTIES}"],
    ]
    assert doc["gpu"]["source"] == "none" and doc["truncated"] is False
    assert len(json.dumps(doc)) < 4000


def test_stopped_unit_is_unhealthy(unit_dir: Path) -> None:
    # The unit stopped: docker run --rm removed its container, docker inspect prints [] and "No such container".
    stopped_show = _stopped_show()
    stopped_inspect = (FIXTURES / "docker-inspect-stopped.json").read_text()
    fake = FakeHost(unit_dir, show=stopped_show, inspect=stopped_inspect)
    doc = sc.collect(_inputs(unit_dir), fake.host())
    [svc] = doc["services"]
    assert doc["verdict"] == "unhealthy" and svc["state"] == "unhealthy" and doc["problems"] == []
    assert svc["problems"] == ["unit inactive (last exit: exited 0)", "container absent"]
    assert svc["image"]["state"] == "none"
    assert svc["health"]["checked"] is False  # no container: a probe is not counted


def test_running_but_not_answering_is_unhealthy(unit_dir: Path) -> None:
    doc = sc.collect(_inputs(unit_dir), FakeHost(unit_dir, healthy=False).host())
    [svc] = doc["services"]
    assert svc["state"] == "unhealthy" and svc["problems"] == ["not healthy: /v1/models -> connection refused"]


def test_missing_extra_and_different(unit_dir: Path) -> None:
    ghost = {**STANDIN, "name": "ghost", "port": 8090}
    # The inventory no longer lists standin, plans ghost: standin's unit is extra, ghost is missing.
    doc = sc.collect(_inputs(unit_dir, [ghost]), FakeHost(unit_dir).host())
    states = {s["name"]: (s["planned"], s["drift"], s["state"]) for s in doc["services"]}
    assert states == {"ghost": ("deploy", ["missing"], "drifted"), NAME: ("extra", ["extra"], "drifted")}
    assert doc["verdict"] == "drifted"
    # The extra service is still probed, at the address its unit's marker records.
    assert next(s for s in doc["services"] if s["name"] == NAME)["health"]["healthy"] is True
    # A changed command: the unit on the host is not what the inventory renders now.
    changed = {**STANDIN, "command": [*STANDIN["command"], "--parallel", "2"]}
    [svc] = sc.collect(_inputs(unit_dir, [changed]), FakeHost(unit_dir).host())["services"]
    assert svc["drift"] == ["different: ExecStart"] and svc["state"] == "drifted"
    # A role setting the inventory sets (the fleet lab's restart_sec) is compared too.
    [svc] = sc.collect(_inputs(unit_dir, restart_sec=2), FakeHost(unit_dir).host())["services"]
    assert svc["drift"] == ["different: RestartSec"]


def test_state_absent_with_a_unit_left_is_extra(unit_dir: Path) -> None:
    doc = sc.collect(_inputs(unit_dir, [{**STANDIN, "state": "absent"}]), FakeHost(unit_dir).host())
    [svc] = doc["services"]
    assert svc["planned"] == "absent" and svc["drift"] == ["extra"]


def test_image_other_than_the_plans_is_drift(unit_dir: Path) -> None:
    other = json.loads(INSPECT)
    other[0]["Image"] = "sha256:" + "0" * 64
    [svc] = sc.collect(_inputs(unit_dir), FakeHost(unit_dir, inspect=json.dumps(other)).host())["services"]
    assert svc["image"]["state"] == "other" and svc["drift"] == ["image"]


def test_gpu_service_on_a_host_without_gpu_is_skipped_by_choice(unit_dir: Path) -> None:
    sglang = {"name": "sg", "engine": "sglang", "image": "lmsysorg/sglang:latest-cu130", "model": "Qwen/Qwen3-8B"}
    inputs = _inputs(unit_dir, [STANDIN, sglang])
    inputs.skip_gpu_services_without_gpu = True
    doc = sc.collect(inputs, FakeHost(unit_dir).host())
    sg = next(s for s in doc["services"] if s["name"] == "sg")
    assert sg["planned"] == "skipped" and sg["state"] == "skipped" and "skipped by choice" in sg["reason"]
    assert doc["verdict"] == "ok"


def test_bad_inventory_is_reported_not_raised(unit_dir: Path) -> None:
    doc = sc.collect(_inputs(unit_dir, [{"name": "x", "engine": "nope"}]), FakeHost(unit_dir).host())
    assert doc["plan_errors"] and doc["verdict"] == "drifted"
    assert [s["name"] for s in doc["services"]] == [NAME]  # the unit the inventory no longer describes


def test_gb10_host_reports_unified_memory(unit_dir: Path) -> None:
    probe = fake_probe(query={PRIMARY: (0, GB10_FULL, "")}, files={"/proc/meminfo": GB10_MEMINFO})
    doc = sc.collect(_inputs(unit_dir), FakeHost(unit_dir).host(probe))
    assert doc["profile"] == "dgx_spark" and doc["gpu"]["unified_memory"] is True
    assert doc["verdict"] == "ok"  # a CPU service (gpu: none) renders the same on a GPU host


def test_docker_not_answering_is_a_host_problem(unit_dir: Path) -> None:
    fake = FakeHost(unit_dir)

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        if argv[0].endswith("docker"):
            return 1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n"
        return fake.run(argv)

    host = fake.host()
    host.run = run
    doc = sc.collect(_inputs(unit_dir), host)
    assert doc["verdict"] == "unhealthy"
    assert any("Cannot connect to the Docker daemon" in p for p in doc["problems"])


def test_module_body_returns_the_document(monkeypatch: pytest.MonkeyPatch, unit_dir: Path) -> None:
    fake = FakeHost(unit_dir)
    monkeypatch.setattr(sc, "system_host", fake.host)

    class Module:
        def __init__(self) -> None:
            self.params = {"services": [STANDIN], "profiles": PROFILES, "health_timeout_s": 2,
                           "settings": {"unit_dir": str(unit_dir), "bind_address": None}}  # fmt: skip

        def exit_json(self, **kw: Any) -> None:
            raise ExitJson(kw)

    with pytest.raises(ExitJson) as exc:
        sc.run_module(Module())
    result = exc.value.args[0]
    assert result["changed"] is False and result["status"]["verdict"] == "ok"


# --------------------------------------------------------------------------------------------------- report


def _doc(unit_dir: Path, **kw: Any) -> dict[str, Any]:
    return sc.collect(_inputs(unit_dir), FakeHost(unit_dir, **kw).host())


HISTORY = [
    {"schema": "sparkfleet.fleet_history/v1", "run_id": "20260101T000000Z", "generated_at": "2026-01-01 00:00:00 UTC",
     "rows": [{"host": "spark-01", "service": "standin-tiny-llama", "status": "FAIL"}]},
    {"schema": "sparkfleet.fleet_history/v1", "run_id": "20260102T000000Z", "generated_at": "2026-01-02 00:00:00 UTC",
     "rows": [{"host": "spark-01", "service": "standin-tiny-llama", "status": "PASS"}]},
]  # fmt: skip


def test_last_verification_is_the_newest_run() -> None:
    found = sr.last_verifications(HISTORY)
    now = sr.parse_time("2026-01-02 03:00:00 UTC") or 0.0
    assert sr.verification(found, "spark-01", NAME, now) == {"result": "PASS", "run_id": "20260102T000000Z",
                                                                   "age_s": 3 * 3600}  # fmt: skip
    assert sr.verification(found, "spark-02", NAME, now)["result"] == "never"


def test_report_table_files_and_bad_hosts(unit_dir: Path, tmp_path: Path) -> None:
    ok, down = _doc(unit_dir), _doc(unit_dir, healthy=False)
    results = {"spark-01": {"status": ok}, "spark-02": {"status": down},
               "spark-03": {"unreachable": True, "msg": "Failed to connect to the host via ssh"}}  # fmt: skip
    docs = sr.host_documents(["spark-01", "spark-02", "spark-03"], results, HISTORY, 1_800_000_000.0)
    assert [d["verdict"] for d in docs] == ["ok", "unhealthy", "unreachable"]
    assert docs[0]["services"][0]["verify"]["result"] == "PASS"
    assert sr.bad_hosts(docs) == {"spark-02": f"unhealthy ({NAME})",
                                  "spark-03": "unreachable: Failed to connect to the host via ssh"}  # fmt: skip
    text = sr.table(docs)
    lines = text.splitlines()
    assert lines[0].split() == ["HOST", "SERVICE", "STATE", "UNIT", "IMAGE", "HEALTH", "VERIFIED", "GPU", "MEM",
                                "PROBLEMS"]  # fmt: skip
    assert lines[1].split()[:7] == ["spark-01", NAME, "ok", "active", "115s", "current", "healthy"], lines[1]
    assert "DOWN" in lines[2] and "unreachable" in lines[3]
    assert lines[-1] == (f"3 host(s): 1 ok; not ok: spark-02 unhealthy ({NAME}); spark-03 unreachable: Failed to "
                         "connect to the host via ssh")  # fmt: skip
    written = sr.write_documents(docs, tmp_path / "status", text)
    assert sorted(Path(p).name for p in written) == ["spark-01.json", "spark-02.json", "spark-03.json", "status.txt"]
    assert json.loads((tmp_path / "status" / "spark-01.json").read_text())["schema"] == STATUS_SCHEMA


def test_groups_gather_the_parts_of_a_multi_host_service() -> None:
    docs = [{"host": h, "services": [{"name": n, "group": g, "state": "ok"}]}
            for h, n, g in [("a", "frontend", "dyn"), ("b", "worker", "dyn"), ("c", "standin", "")]]  # fmt: skip
    assert sr.groups(docs) == {"dyn": [{"host": "a", "service": "frontend", "state": "ok"},
                                       {"host": "b", "service": "worker", "state": "ok"}]}  # fmt: skip


def test_report_module_check_mode_writes_nothing(unit_dir: Path, tmp_path: Path) -> None:
    history_dir = tmp_path / "reports"
    history_dir.mkdir()
    (history_dir / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in HISTORY) + "not json\n")
    warnings: list[str] = []

    class Module:
        check_mode = True

        def __init__(self) -> None:
            self.params = {"hosts": ["spark-01"], "results": {"spark-01": {"status": _doc(unit_dir)}},
                           "report_dir": str(history_dir), "status_dir": str(tmp_path / "status")}  # fmt: skip

        def warn(self, msg: str) -> None:
            warnings.append(msg)

        def exit_json(self, **kw: Any) -> None:
            raise ExitJson(kw)

    with pytest.raises(ExitJson) as exc:
        sr.run_module(Module(), now=1_800_000_000.0)
    result = exc.value.args[0]
    assert result["changed"] is False and result["bad_hosts"] == {} and result["files"] == []
    assert result["msg"] == "all 1 host(s) ok" and NAME in result["table"]
    assert not (tmp_path / "status").exists()
    assert warnings == ["history: line 3 skipped: not JSON (Expecting value)"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (5, "5s"), (119, "119s"), (600, "10m"), (7200, "2h"), (3 * 86400, "3d")]
)
def test_fmt_age(seconds: float | None, text: str) -> None:
    assert sr.fmt_age(seconds) == text


def test_own_units_are_read_in_the_same_systemctl_call(unit_dir: Path) -> None:
    own = (FIXTURES / "systemctl-show-own-units.txt").read_text()  # station-01 of the demo lab: gateway, firewall
    for name in ("gateway", "firewall"):
        (unit_dir / f"sparkfleet-{name}.service").write_text("[Unit]\n")
    fake = FakeHost(unit_dir, show=SHOW + "\n" + own)
    doc = sc.collect(_inputs(unit_dir), fake.host())
    assert [(u["name"], u["active"]) for u in doc["own_units"]] == [("gateway", "active"), ("firewall", "active")]
    assert doc["verdict"] == "ok" and sum(c[0] == "systemctl" for c in fake.calls) == 1
    assert "(gateway)" in sr.table(sr.host_documents(["station-01"], {"station-01": {"status": doc}}, [], 0.0))
    # The gateway down: a problem of the host.
    down = own.replace("ActiveState=active\nSubState=running", "ActiveState=failed\nSubState=failed", 1)
    doc = sc.collect(_inputs(unit_dir), FakeHost(unit_dir, show=SHOW + "\n" + down).host())
    assert doc["verdict"] == "unhealthy" and doc["problems"] == ["sparkfleet-gateway.service failed"]


def test_action_plugin_runs_the_same_report(unit_dir: Path, tmp_path: Path) -> None:
    from unittest.mock import MagicMock

    from ansible.playbook.play_context import PlayContext
    from ansible_collections.sparkfleet.fleet.plugins.action.sparkfleet_status_report import ActionModule

    task = MagicMock()
    task.async_val, task.check_mode, task.diff = 0, False, False
    task.args = {"hosts": ["spark-01"], "results": {"spark-01": {"status": _doc(unit_dir)}},
                 "report_dir": str(tmp_path), "status_dir": str(tmp_path / "status")}  # fmt: skip
    action = ActionModule(task, MagicMock(), PlayContext(), loader=None, templar=None, shared_loader_obj=None)
    result = action.run(task_vars={})
    assert result["changed"] is False and result["bad_hosts"] == {} and result["msg"] == "all 1 host(s) ok"
    assert (tmp_path / "status" / "spark-01.json").is_file() and (tmp_path / "status" / "status.txt").is_file()


def test_a_service_across_hosts_is_planned_per_host_and_grouped(tmp_path: Path) -> None:
    from tests.unit.test_multihost import FABRIC
    from tests.unit.test_multihost_golden import GROUPS, LLAMA_70B

    docs = []
    for host in ("spark-03", "spark-04"):
        unit_dir = tmp_path / host
        unit_dir.mkdir()
        inputs = _inputs(unit_dir, [LLAMA_70B])
        inputs.host, inputs.groups, inputs.fabric = host, GROUPS, FABRIC
        probe = fake_probe(query={PRIMARY: (0, GB10_FULL, "")}, files={"/proc/meminfo": GB10_MEMINFO})
        fake = FakeHost(unit_dir)
        doc = sc.collect(inputs, fake.host(probe))
        [svc] = doc["services"]
        assert doc["plan_errors"] == [] and svc["planned"] == "deploy" and svc["group"] == LLAMA_70B["name"]
        assert svc["drift"] == ["missing"]  # never deployed on these (empty) unit directories
        docs.append({"host": host, **doc})
    # The worker has no health path (its unit running is its health): never probed.
    assert docs[1]["services"][0]["health"]["checked"] is False
    assert [p["host"] for p in sr.groups(docs)[LLAMA_70B["name"]]] == ["spark-03", "spark-04"]


def test_a_service_across_hosts_is_judged_as_one() -> None:
    def doc(host: str, state: str = "ok", verdict: str = "ok") -> dict[str, Any]:
        piece = {"name": "tiny-split", "group": "tiny-split", "group_hosts": ["a", "b"], "state": state}
        return {"host": host, "verdict": verdict, "services": [piece], "problems": [], "plan_errors": []}

    healthy = [doc("a"), doc("b")]
    assert sr.across_hosts(healthy) == {"tiny-split": {"hosts": ["a", "b"], "ok": True, "why": []}}
    assert sr.bad_hosts(healthy) == {}
    # The worker unreachable: the whole service fails, and so does its head, though the head's own piece is ok.
    down = [doc("a"), sr.unreachable_document("b", {"unreachable": True, "msg": "Failed to connect"})]
    assert sr.across_hosts(down)["tiny-split"] == {"hosts": ["a", "b"], "ok": False, "why": ["b unreachable"]}
    bad = sr.bad_hosts(down)
    assert bad["a"] == "tiny-split across hosts failed (b unreachable)"
    assert bad["b"].startswith("unreachable")
    # A piece not ok, or a host of the group left out of the run, fails it too; the table says so in one line.
    assert sr.across_hosts([doc("a"), doc("b", "unhealthy", "unhealthy")])["tiny-split"]["why"] == ["b unhealthy"]
    assert sr.across_hosts([doc("a")])["tiny-split"]["why"] == ["b not in this status run"]
    lines = sr.table(down).splitlines()
    assert "across hosts: tiny-split on a, b: FAILED: b unreachable" in lines
    assert lines[-1].startswith("2 host(s): 0 ok; not ok: a tiny-split across hosts failed (b unreachable)")
