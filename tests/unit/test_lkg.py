"""serving/lkg.py (module llm_service_lkg): the last-known-good version is exactly what ran, and comes back exactly.

The runner answers as docker and systemctl do on a lab host; the tag table stands for docker's image store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.contracts import owned_marker
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving import lkg

OLD_ID = "sha256:" + "1" * 64
NEW_ID = "sha256:" + "2" * 64


class Host:
    """docker's tags and the one container, systemctl's calls."""

    def __init__(self, running: str = "repo:v1", running_id: str = OLD_ID) -> None:
        self.tags = {"repo:v1": OLD_ID, "repo:v2": NEW_ID}
        self.running = (running, running_id)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        a = list(argv)
        self.calls.append(a)
        if a[1:3] == ["inspect", "--type"]:
            return (0, f"{self.running[0]}\t{self.running[1]}\n", "") if self.running[0] else (1, "", "No such")
        if a[1:3] == ["image", "inspect"]:
            ref = a[-1]
            return (0, self.tags[ref] + "\n", "") if ref in self.tags else (1, "", "No such image")
        if a[1] == "tag":
            self.tags[a[3]] = a[2]
            return 0, "", ""
        return 0, "", ""


def unit_text(name: str, image: str, url: str, paths: list[str]) -> str:
    marker = owned_marker(name, image=image, probe_url=url, health_paths=paths)
    return f"#\n# Ansible managed\n#\n{marker}\n[Service]\nExecStart=/usr/bin/docker run {image}\n"


@pytest.fixture
def svc(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "system").mkdir()
    (tmp_path / "serving").mkdir()
    unit = tmp_path / "system" / "sparkfleet-a.service"
    env = tmp_path / "serving" / "a.env"
    unit.write_text(unit_text("a", "repo:v1", "http://10.0.0.5:8080", ["/health"]))
    env.write_text(owned_marker("a") + "\nKEY=old\n")
    return {"unit_path": str(unit), "env_file": str(env), "lkg_dir": str(tmp_path / "lkg")}


def healthy_only_at(url: str) -> Any:
    seen: list[tuple[str, list[str]]] = []

    def probe(u: str, paths: Sequence[str]) -> dict[str, Any]:
        seen.append((u, list(paths)))
        return {"healthy": u == url, "probes": [{"path": paths[0], "status": 200 if u == url else 0}]}

    probe.seen = seen  # type: ignore[attr-defined]
    return probe


def save(svc: dict[str, str], host: Host, probe: Any, **kw: Any) -> dict[str, Any]:
    return lkg.save(name="a", container="sparkfleet-a", docker_bin="docker", fallback_url="http://127.0.0.1:9999",
                    fallback_paths=["/new"], run=host, probe=probe, sleep=lambda s: None,
                    unit_path=svc["unit_path"], env_file=svc["env_file"], lkg_dir=svc["lkg_dir"], **kw)  # fmt: skip


def restore(svc: dict[str, str], host: Host) -> dict[str, Any]:
    return lkg.restore(name="a", unit_name="sparkfleet-a.service", docker_bin="docker", run=host,
                       unit_path=svc["unit_path"], env_file=svc["env_file"], lkg_dir=svc["lkg_dir"])  # fmt: skip


def test_keeps_what_runs_at_its_own_address_and_restores_it_byte_for_byte(svc: dict[str, str]) -> None:
    host = Host()
    probe = healthy_only_at("http://10.0.0.5:8080")
    before_unit, before_env = Path(svc["unit_path"]).read_bytes(), Path(svc["env_file"]).read_bytes()
    out = save(svc, host, probe)
    # Probed where the running version answers (its own marker), not at the new render's fallback address.
    assert out["saved"] and probe.seen == [("http://10.0.0.5:8080", ["/health"])]
    assert (out["image"], out["image_id"]) == ("repo:v1", OLD_ID)
    kept = Path(svc["lkg_dir"]) / "a"
    assert oct(kept.stat().st_mode & 0o777) == "0o700"
    assert oct((kept / "env").stat().st_mode & 0o777) == "0o600"
    # The change: a new unit (new port, new key, new tag), which then fails.
    Path(svc["unit_path"]).write_text(unit_text("a", "repo:v2", "http://10.0.0.5:9090", ["/v2/health"]))
    Path(svc["env_file"]).write_text(owned_marker("a") + "\nKEY=new\n")
    back = restore(svc, host)
    assert back["restored"] and not back["retagged"]
    assert Path(svc["unit_path"]).read_bytes() == before_unit and Path(svc["env_file"]).read_bytes() == before_env
    assert (back["probe_url"], back["health_paths"]) == ("http://10.0.0.5:8080", ["/health"])
    # The new release's tag is never pointed at the old image.
    assert host.tags == {"repo:v1": OLD_ID, "repo:v2": NEW_ID}
    assert ["systemctl", "restart", "sparkfleet-a.service"] in host.calls


def test_rolling_back_twice_gives_the_same_version(svc: dict[str, str]) -> None:
    host = Host()
    probe = healthy_only_at("http://10.0.0.5:8080")
    before = Path(svc["unit_path"]).read_bytes()
    assert save(svc, host, probe)["saved"]
    for _ in range(2):
        Path(svc["unit_path"]).write_text(unit_text("a", "repo:v2", "http://10.0.0.5:9090", ["/v2"]))
        assert restore(svc, host)["restored"]
        # the restored version is healthy again: the next change keeps it again, unchanged
        assert save(svc, host, probe)["image"] == "repo:v1"
    assert Path(svc["unit_path"]).read_bytes() == before


def test_a_moved_kept_tag_names_the_kept_image_again(svc: dict[str, str]) -> None:
    host = Host()
    assert save(svc, host, healthy_only_at("http://10.0.0.5:8080"))["saved"]
    host.tags["repo:v1"] = NEW_ID  # someone pulled or loaded another image under the kept tag
    back = restore(svc, host)
    assert back["retagged"] and host.tags["repo:v1"] == OLD_ID and host.tags["repo:v2"] == NEW_ID


def test_a_gone_kept_image_is_an_error_naming_it(svc: dict[str, str]) -> None:
    host = Host()
    assert save(svc, host, healthy_only_at("http://10.0.0.5:8080"))["saved"]
    del host.tags["repo:v1"]
    original = host.__call__

    def no_tag(argv: Sequence[str]) -> tuple[int, str, str]:
        return (1, "", "No such image") if argv[1] == "tag" else original(argv)

    with pytest.raises(lkg.LkgError, match=r"kept image sha256:1+ of a is gone"):
        lkg.restore(name="a", unit_name="sparkfleet-a.service", docker_bin="docker", run=no_tag,
                    unit_path=svc["unit_path"], env_file=svc["env_file"], lkg_dir=svc["lkg_dir"])  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("unhealthy", "does not answer at http://10.0.0.5:8080/health"),
        ("no_unit", "a first deploy"),
        ("not_ours", "does not carry sparkfleet's marker for a"),
        ("no_container", "no container sparkfleet-a runs"),
    ],
)
def test_nothing_is_kept_that_is_not_known_good(svc: dict[str, str], setup: str, reason: str) -> None:
    host = Host()
    probe = healthy_only_at("http://10.0.0.5:8080")
    if setup == "unhealthy":
        probe = healthy_only_at("nowhere")
    elif setup == "no_unit":
        os.unlink(svc["unit_path"])
    elif setup == "not_ours":
        look_alike = "[Service]\nExecStart=/usr/bin/docker run --label org.sparkfleet.service=a x\n"
        Path(svc["unit_path"]).write_text(look_alike)
    else:
        host.running = ("", "")
    out = save(svc, host, probe)
    assert not out["saved"] and reason in out["reason"]
    assert not (Path(svc["lkg_dir"]) / "a").exists()
    assert restore(svc, host)["stopped"]  # nothing kept: a failed change is stopped, never a stale version restored
    assert ["systemctl", "disable", "--now", "sparkfleet-a.service"] in host.calls


def test_a_unit_without_an_address_in_its_marker_is_probed_at_the_fallback(svc: dict[str, str]) -> None:
    Path(svc["unit_path"]).write_text(owned_marker("a") + "\n[Service]\n")
    probe = healthy_only_at("http://127.0.0.1:9999")
    assert save(svc, Host(), probe)["saved"] and probe.seen[0] == ("http://127.0.0.1:9999", ["/new"])


def test_forget_removes_the_kept_version_and_never_follows_a_link(svc: dict[str, str], tmp_path: Path) -> None:
    host = Host()
    assert save(svc, host, healthy_only_at("http://10.0.0.5:8080"))["saved"]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    os.symlink(outside, Path(svc["lkg_dir"]) / "a" / "link")
    assert lkg.forget(svc["lkg_dir"], "a") is True
    assert not (Path(svc["lkg_dir"]) / "a").exists() and (outside / "keep").exists()
    assert lkg.forget(svc["lkg_dir"], "a") is False
    os.symlink(outside, Path(svc["lkg_dir"]) / "b")
    assert lkg.forget(svc["lkg_dir"], "b") is False and (outside / "keep").exists()


def test_kept_record_of_another_service_is_not_read(svc: dict[str, str]) -> None:
    assert save(svc, Host(), healthy_only_at("http://10.0.0.5:8080"))["saved"]
    record = Path(svc["lkg_dir"]) / "a" / "image.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "service": "b"}))
    assert lkg.read_kept(svc["lkg_dir"], "a") is None


def test_run_module_check_mode_changes_nothing(svc: dict[str, str]) -> None:
    params = {"action": "restore", "name": "a", "unit_path": svc["unit_path"], "unit_name": "sparkfleet-a.service",
              "env_file": svc["env_file"], "lkg_dir": svc["lkg_dir"], "docker_bin": "docker", "container": "",
              "fallback_url": "", "fallback_paths": []}  # fmt: skip
    host = Host()
    out = lkg.run_module(params, check_mode=True, run=host)
    assert out["stopped"] and host.calls == []
