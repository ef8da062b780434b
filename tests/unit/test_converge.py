"""The converged-host fast path's logic: the desired-state digest (desired.py) and the stamp and manifest on the
host (converge.py), without a lab. docs/development.md, "Reruns: the converged-host fast path"."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import converge, desired, paths

from tests.conftest import ROOT

SECRET = "nvapi-" + "S3cr3tValue" * 3


def parts(**variables: Any) -> dict[str, str]:
    return desired.components(
        content="c0ffee",
        ansible_version="2.19.14",
        variables={"llm_serving_restart_sec": 15, "sparkfleet_ngc_api_key": SECRET, **variables},
        plans={"spark-01": {"services": [{"name": "a", "status": "deploy"}]}},
        addresses={"spark-01": {"ansible_host": "10.0.0.1", "default_ipv4": "10.0.0.1"}},
        controller_files={},
    )


class FakeHost:
    """systemctl show and docker image inspect as a host answers them; the rest is the real file system."""

    def __init__(self) -> None:
        self.units: dict[str, tuple[str, str]] = {"docker.service": ("active", "enabled")}
        self.images: dict[str, str] = {"lab/standin:1": "sha256:" + "a" * 64}
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[0] == "systemctl":
            units = list(argv[argv.index("--") + 1 :])
            blocks = []
            for u in units:
                active, enabled = self.units.get(u, ("inactive", ""))
                blocks.append(f"Id={u}\nActiveState={active}\nUnitFileState={enabled}")
            return 0, "\n\n".join(blocks) + "\n", ""
        if argv[1:3] == ["image", "inspect"]:
            found = [{"Id": i, "RepoTags": [r], "RepoDigests": []} for r, i in self.images.items() if r in argv[3:]]
            missing = [r for r in argv[3:] if r not in self.images]
            return (1 if missing else 0), json.dumps(found), "".join(f"Error: No such image: {r}\n" for r in missing)
        return 127, "", f"unexpected {argv}"


@pytest.fixture
def host(tmp_path: Path) -> dict[str, Any]:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "unit.service").write_text("[Service]\nExecStart=/bin/true\n")
    (etc / "env").write_text("A=1\n")
    os.chmod(etc / "env", 0o600)
    tree = tmp_path / "model"
    (tree / "snapshots" / "main").mkdir(parents=True)
    (tree / "snapshots" / "main" / "config.json").write_text("{}")
    os.symlink("main", tree / "snapshots" / "latest")
    venv = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (venv / "jsonschema-4.23.0.dist-info").mkdir(parents=True)
    (venv / "Foo_Bar-1.0.dist-info").mkdir()
    managed = {
        "files": [str(etc / "unit.service"), str(etc / "env"), str(etc / "absent.conf")],
        "dirs": [str(etc)],
        "trees": [{"path": str(tree), "hash": True}],
        "units": ["docker.service"],
        "venvs": [str(tmp_path / "venv")],
        "images": ["lab/standin:1"],
        "listings": [str(etc) + "/*.service"],
        "groups": {grp.getgrgid(os.getgid()).gr_name: [pwd.getpwuid(os.getuid()).pw_name]},
    }
    return {
        "root": tmp_path,
        "etc": etc,
        "tree": tree,
        "managed": managed,
        "stamp": str(tmp_path / "state" / "converged.json"),
    }


def params(h: dict[str, Any], p: dict[str, str], **kw: Any) -> dict[str, Any]:
    return {"stamp": h["stamp"], "digest": converge.digest(p), "components": p, **kw}


# ------------------------------------------------------------------------------------------------ the digest


def test_the_digest_changes_with_any_component_and_only_then() -> None:
    a, b = parts(), parts()
    assert converge.digest(a) == converge.digest(b)
    assert converge.digest(parts(llm_serving_restart_sec=16)) != converge.digest(a)
    assert converge.digest({**a, "content": "beef"}) != converge.digest(a)
    # Key order inside a value is not a change.
    assert converge.value_hash({"x": 1, "y": [1, 2]}) == converge.value_hash({"y": [1, 2], "x": 1})
    assert converge.value_hash([1, 2]) != converge.value_hash([2, 1])


def test_a_secret_enters_only_hashed_and_a_change_names_variables_never_values() -> None:
    a, b = parts(), parts(sparkfleet_ngc_api_key=SECRET + "x")
    assert SECRET not in json.dumps(a)
    changed = converge.changed_components(b, a)
    assert changed == ["sparkfleet_ngc_api_key"]
    assert converge.changed_components({**a, "plan:spark-02": "1"}, a) == ["the plan of spark-02"]
    assert converge.changed_components({**a, "content": "1"}, a) == [converge.describe_component("content")]


def test_some_names_the_first_few() -> None:
    assert converge.some(["a", "b"]) == "a, b"
    assert converge.some([str(i) for i in range(7)]) == "0, 1, 2, 3 and 3 more"


def test_the_content_hash_covers_every_file_of_the_collection_and_ignores_caches(tmp_path: Path) -> None:
    for rel in ("roles/r/tasks/main.yml", "plugins/modules/m.py", "playbooks/p.yml", "site.yml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    first = desired.content_hash(tmp_path)
    (tmp_path / "plugins" / "modules" / "__pycache__").mkdir()
    (tmp_path / "plugins" / "modules" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "README.md").write_text("not content")
    (tmp_path / "roles" / "r" / "README.md").write_text("documentation, not content")
    assert desired.content_hash(tmp_path) == first
    (tmp_path / "roles" / "r" / "tasks" / "main.yml").write_text("changed")
    assert desired.content_hash(tmp_path) != first
    assert len(desired.content_hash(ROOT)) == 64


def test_the_declared_variables_come_from_every_entry_point_of_every_spec() -> None:
    import yaml

    specs = {
        p.parent.parent.name: yaml.safe_load(p.read_text()) for p in (ROOT / "roles").glob("*/meta/argument_specs.yml")
    }
    declared = desired.spec_options(specs)
    assert declared["llm_serving_services"]["roles"] == ["llm_serving", "preflight"]  # a shared input
    assert declared["llm_serving_rollback_reason"]["roles"] == ["llm_serving"]  # the rollback entry point's
    assert declared["sparkfleet_paths_converge_stamp"]["roles"] == ["sparkfleet_paths"]
    assert declared["sparkfleet_ngc_api_key"]["no_log"] and declared["llm_gateway_api_key"]["no_log"]
    assert not declared["llm_serving_restart_sec"]["no_log"]


def test_the_plan_enters_without_what_preflight_only_observed() -> None:
    gpu: dict[str, Any] = {"index": 0, "name": "GB10", "memory_total_mib": 1, "memory_used_mib": 77}
    plan: dict[str, Any] = {
        "profile": "spark",
        "serving_gpu": gpu,
        "services": [{"name": "a", "status": "deploy", "port": 8080}],
        "summary": "profile spark; free 37.2 GB",
        "warnings": ["disk"],
        "installed": ["a"],
        "errors": [],
    }
    seen = desired.plan_inputs(plan)
    assert seen == {
        "profile": "spark",
        "serving_gpu": {"index": 0, "name": "GB10", "memory_total_mib": 1},
        "services": [{"name": "a", "status": "deploy", "port": 8080}],
        "errors": False,
    }
    again = {
        **plan,
        "summary": "other",
        "warnings": [],
        "installed": [],
        "serving_gpu": {**gpu, "memory_used_mib": 5},
    }
    assert desired.plan_inputs(again) == seen
    assert desired.plan_inputs(None) is None


def test_only_a_value_that_holds_a_template_is_templated() -> None:
    assert desired.templated("{{ sparkfleet_paths_unit_dir }}/x") and desired.templated(
        {"a": ["{% if x %}1{% endif %}"]}
    )
    assert (
        not desired.templated("/etc/systemd/system")
        and not desired.templated([1, {"k": "v"}])
        and not desired.templated(3)
    )


def test_the_evaluator_resolves_references_without_jinja_and_templates_the_rest() -> None:
    templated_calls: list[Any] = []

    def template(raw: Any) -> Any:
        templated_calls.append(raw)
        if "undefined_thing" in raw:
            raise ValueError("undefined")
        return "T:" + raw

    env = {
        "sparkfleet_paths_config_dir": "/etc/sparkfleet",
        "sparkfleet_paths_env_dir": "{{ sparkfleet_paths_config_dir }}",
        "llm_serving_env_dir": "{{ sparkfleet_paths_env_dir }}",
        "llm_serving_ngc_api_key": "{{ sparkfleet_ngc_api_key | default('') }}",
        "docker_host_users": "{{ sparkfleet_lab_users | default([]) }}",
        "sparkfleet_lab_users": ["student1"],
        "__llm_serving_probe_url": "{{ __llm_serving_svc.probe_url }}",
        "hf_cache_hf_cli": "{{ bench_venv_path | default(sparkfleet_paths_venv) }}/bin/hf",
        "broken": "{{ undefined_thing }}x",
        "loop": "{{ loop }}",
    }
    ev = desired.Evaluator(env, template)
    assert ev.value("llm_serving_env_dir") == "/etc/sparkfleet"
    assert ev.value("llm_serving_ngc_api_key") == ""
    assert ev.value("docker_host_users") == ["student1"]
    assert templated_calls == []
    with pytest.raises(desired.Unevaluated):
        ev.value("__llm_serving_probe_url")
    assert templated_calls == []
    assert ev.value("hf_cache_hf_cli") == "T:{{ bench_venv_path | default(sparkfleet_paths_venv) }}/bin/hf"
    with pytest.raises(desired.Unevaluated):
        ev.value("broken")
    assert ev.value("loop") == "T:{{ loop }}"  # a reference to itself goes to Jinja
    # What the run reads from the host, through a variable that defaults it: not an input.
    env2 = {
        "__metrics_missing": "{{ __metrics_packages | difference(__metrics_dpkg.stdout_lines | default([])) }}",
        "__metrics_packages": ["prometheus"],
        "__metrics_deb_wanted": "{{ __metrics_missing + ['x'] }}",
    }
    ev2 = desired.Evaluator(env2, template)
    for name in ("__metrics_missing", "__metrics_deb_wanted"):
        with pytest.raises(desired.Unevaluated):
            ev2.value(name)
    assert ev2.value("__metrics_packages") == ["prometheus"]


def test_a_variable_read_from_the_plans_enters_through_them() -> None:
    assert desired.plan_derived("{{ ansible_facts['sparkfleet_plan']['services'] | default([]) }}")
    assert desired.plan_derived("{{ ansible_facts['nvidia_gpu']['profile'] }}")
    assert not desired.plan_derived("{{ sparkfleet_paths_unit_dir }}") and not desired.plan_derived(8080)


def test_plain_turns_templated_values_into_data() -> None:
    class Tagged(str):
        pass

    assert desired.plain({"a": (1, Tagged("x")), 2: {3, 1}, "f": 1.5, "n": None, "b": True}) == {
        "a": [1, "x"],
        "2": [1, 3],
        "f": 1.5,
        "n": None,
        "b": True,
    }


def test_the_controller_files_a_run_reads_are_fingerprinted(tmp_path: Path) -> None:
    inventory = tmp_path / "inventories" / "lab"
    inventory.mkdir(parents=True)
    archive = tmp_path / "lab" / "standin.tar"
    archive.parent.mkdir()
    archive.write_bytes(b"x" * 10)
    model = tmp_path / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    plan = {
        "services": [
            {"name": "a", "status": "deploy", "image_archive": "lab/standin.tar"},
            {"name": "b", "status": "absent", "image_archive": "gone.tar"},
            {"name": "c", "status": "deploy", "image_archive": "missing.tar"},
        ]
    }
    variables = {
        "model_stage_models": [{"repo": "org/tiny", "source_dir": "models/tiny"}, {"repo": "o/s", "seed_host": "h1"}]
    }
    dirs = {"inventory_dir": str(inventory), "playbook_dir": str(tmp_path / "playbooks")}
    first = desired.controller_inputs(plan, variables, **dirs)
    assert sorted(first) == sorted([str(archive), str(model), "missing.tar"])
    assert first[str(archive)]["size"] == 10 and first["missing.tar"] == {"exists": False}
    os.utime(archive, ns=(1, 1))
    (model / "weights.safetensors").write_text("w")
    second = desired.controller_inputs(plan, variables, **dirs)
    assert second[str(archive)] != first[str(archive)] and second[str(model)] != first[str(model)]


@pytest.mark.parametrize(
    ("task_file", "task_name", "extra"),
    [
        (
            "roles/llm_serving/tasks/image.yml",
            "Serving | Find the archive on the controller",
            "llm_serving_archive_search_dirs",
        ),
        (
            "roles/model_stage/tasks/main.yml",
            "Model stage | Check the models to stage on this host",
            "model_stage_search_dirs",
        ),
    ],
)
def test_the_roles_look_for_controller_files_only_where_the_fingerprint_looks(
    task_file: str, task_name: str, extra: str
) -> None:
    """The directories a role tries a relative archive or model source against are among desired.search_dirs."""
    import jinja2
    import yaml

    task = next(
        t for t in yaml.safe_load((ROOT / task_file).read_text()) if str(t.get("name", "")).startswith(task_name)
    )
    module = next(v for k, v in task.items() if k.startswith("sparkfleet.fleet."))
    env = {"inventory_dir": "/inv/lab", "playbook_dir": "/repo/playbooks", extra: ["/extra"]}
    template = jinja2.Environment(autoescape=False).from_string(module["search_dirs"])  # noqa: S701 - YAML, not HTML
    rendered = template.render(**env)
    role_dirs = {os.path.normpath(d) for d in yaml.safe_load(rendered) if d}
    ours = {os.path.normpath(d) for d in desired.search_dirs(["/extra"], "/inv/lab", "/repo/playbooks")}
    assert role_dirs and role_dirs <= ours


# ------------------------------------------------------------------------------------------------ the host side


def test_the_manifest_reads_each_kind(host: dict[str, Any]) -> None:
    run = FakeHost()
    m = converge.read_manifest(host["managed"], run)
    env = m["files"][str(host["etc"] / "env")]
    assert env["type"] == "file" and env["mode"] == "0600" and len(env["sha256"]) == 64
    assert env["owner"] == pwd.getpwuid(os.getuid()).pw_name
    assert m["files"][str(host["etc"] / "absent.conf")] == {"type": "absent"}
    assert m["dirs"][str(host["etc"])]["type"] == "dir" and "sha256" not in m["dirs"][str(host["etc"])]
    tree = m["trees"][str(host["tree"])]
    assert tree["type"] == "dir" and tree["count"] == 4 and tree["hashed"] is True
    assert m["units"] == {"docker.service": {"active": "active", "enabled": "enabled"}}
    assert m["images"] == {"lab/standin:1": "sha256:" + "a" * 64}
    assert m["venvs"][str(host["root"] / "venv")] == ["foo-bar-1.0", "jsonschema-4.23.0"]
    assert m["listings"][str(host["etc"]) + "/*.service"] == ["unit.service"]
    assert all(v is True for row in m["groups"].values() for v in row.values())
    # One systemctl call and one docker call, whatever the number of units and images.
    assert [c[0] for c in run.calls] == ["systemctl", "/usr/bin/docker"]


def test_dpkg_status_and_systemctl_show_parse() -> None:
    status = (
        "Package: docker.io\nStatus: install ok installed\nVersion: 20.10.24\n\n"
        "Package: libfoo\nArchitecture: i386\nStatus: deinstall ok config-files\nVersion: 1\n\n"
        "Package: libfoo\nArchitecture: amd64\nStatus: install ok installed\nVersion: 2\n"
    )
    assert converge.parse_dpkg_status(status, ["docker.io", "libfoo", "nope"]) == {
        "docker.io": "install ok installed 20.10.24",
        "libfoo": "install ok installed 2",
        "nope": "absent",
    }
    show = (
        "Id=a.service\nActiveState=active\nUnitFileState=enabled\n\nId=b.service\nActiveState=failed\nUnitFileState=\n"
    )
    assert converge.parse_systemctl_show(show, ["a.service", "b.service", "c.service"]) == {
        "a.service": {"active": "active", "enabled": "enabled"},
        "b.service": {"active": "failed", "enabled": ""},
        "c.service": {"active": "unknown", "enabled": ""},
    }


def test_managed_sets_from_several_roles_merge() -> None:
    merged = converge.normalize_managed(
        [
            {"files": ["/etc/docker/daemon.json", "/b"], "units": ["docker"], "groups": {"docker": ["s1"]}},
            {"files": ["/etc/docker/daemon.json"], "units": ["docker"], "trees": ["/m", {"path": "/m", "hash": True}]},
            {"groups": {"docker": ["s2", "s1"]}},
        ]
    )
    assert merged["files"] == ["/b", "/etc/docker/daemon.json"]
    assert merged["units"] == ["docker"]
    assert merged["groups"] == {"docker": ["s1", "s2"]}
    assert merged["trees"] == [{"path": "/m", "hash": True}]
    with pytest.raises(converge.ConvergeError, match="unknown kind 'sockets'"):
        converge.normalize_managed({"sockets": []})


def test_a_full_converge_stamps_and_the_next_run_is_converged(host: dict[str, Any]) -> None:
    run, p = FakeHost(), parts()
    first = converge.check(params(host, p), False, run)
    assert first["converged"] is False and first["changed"] is False
    assert "no full converge" in first["msg"]
    pending = Path(host["stamp"] + converge.PENDING_SUFFIX)
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    written = converge.write(
        {"stamp": host["stamp"], "digest": converge.digest(p), "managed": host["managed"]}, False, run
    )
    assert written["written"] is True and not pending.exists()
    stamp = Path(host["stamp"])
    assert stat.S_IMODE(stamp.stat().st_mode) == 0o600
    doc = json.loads(stamp.read_text())
    assert doc["schema"] == converge.SCHEMA and doc["digest"] == converge.digest(p)
    assert SECRET not in stamp.read_text()
    again = converge.check(params(host, p), False, run)
    assert again["converged"] is True and again["drift"] == []
    assert stamp.exists()


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (
            lambda h, run: (h["etc"] / "unit.service").write_text("[Service]\nExecStart=/bin/false\n"),
            "unit.service: content changed",
        ),
        (lambda h, run: os.chmod(h["etc"] / "env", 0o644), "env: mode changed"),
        (lambda h, run: (h["etc"] / "absent.conf").write_text("x"), "absent.conf is file, was absent"),
        (
            lambda h, run: run.units.update({"docker.service": ("inactive", "enabled")}),
            "unit docker.service is inactive, was active",
        ),
        (lambda h, run: run.images.update({"lab/standin:1": "sha256:" + "b" * 64}), "image lab/standin:1 changed"),
        (
            lambda h, run: (h["tree"] / "snapshots" / "main" / "config.json").write_text('{"x": 1}'),
            "model: content changed",
        ),
        (lambda h, run: (h["etc"] / "orphan.service").write_text(""), "/*.service changed"),
        (
            lambda h, run: (
                h["root"] / "venv" / "lib" / "python3.11" / "site-packages" / "Foo_Bar-1.0.dist-info"
            ).rmdir(),
            "virtual environment",
        ),
    ],
)
def test_any_drift_takes_the_full_path_and_says_why(host: dict[str, Any], drift: Any, expected: str) -> None:
    run, p = FakeHost(), parts()
    converge.check(params(host, p), False, run)
    converge.write({"stamp": host["stamp"], "digest": converge.digest(p), "managed": host["managed"]}, False, run)
    drift(host, run)
    res = converge.check(params(host, p), False, run)
    assert res["converged"] is False
    assert res["msg"].startswith("full converge: the host drifted since the last full converge: ")
    assert expected in res["msg"], res["msg"]
    # The stamp is gone and the desired state waits for this run's end.
    assert not Path(host["stamp"]).exists() and Path(host["stamp"] + converge.PENDING_SUFFIX).exists()


def test_a_changed_desired_state_or_a_forced_run_takes_the_full_path(host: dict[str, Any]) -> None:
    run, p = FakeHost(), parts()
    converge.check(params(host, p), False, run)
    converge.write({"stamp": host["stamp"], "digest": converge.digest(p), "managed": host["managed"]}, False, run)
    res = converge.check(params(host, parts(sparkfleet_ngc_api_key="nvapi-other")), True, run)
    assert res["converged"] is False
    assert res["msg"] == "full converge: the desired state changed since the last full converge: sparkfleet_ngc_api_key"
    assert Path(host["stamp"]).exists(), "check mode removes nothing"
    forced = converge.check(params(host, p, force=True), False, run)
    assert forced["converged"] is False and "sparkfleet_full_converge" in forced["msg"]
    assert not Path(host["stamp"]).exists()


def test_a_stamp_is_written_only_for_this_runs_check_and_never_in_check_mode(host: dict[str, Any]) -> None:
    run, p = FakeHost(), parts()
    assert (
        converge.write({"stamp": host["stamp"], "digest": converge.digest(p), "managed": {}}, False, run)["written"]
        is False
    )
    converge.check(params(host, p), False, run)
    assert (
        converge.write({"stamp": host["stamp"], "digest": converge.digest(p), "managed": {}}, True, run)["written"]
        is False
    )
    other = converge.digest(parts(x=1))
    assert converge.write({"stamp": host["stamp"], "digest": other, "managed": {}}, False, run)["written"] is False
    assert not Path(host["stamp"]).exists()


def test_a_check_refuses_a_digest_that_is_not_its_components(host: dict[str, Any]) -> None:
    with pytest.raises(converge.ConvergeError, match="digest"):
        converge.check({"stamp": host["stamp"], "digest": "0" * 64, "components": parts()}, False, FakeHost())


def test_absent_forgets_the_stamp_and_the_pending_state(host: dict[str, Any]) -> None:
    run, p = FakeHost(), parts()
    converge.check(params(host, p), False, run)
    converge.write({"stamp": host["stamp"], "digest": converge.digest(p), "managed": host["managed"]}, False, run)
    assert converge.remove({"stamp": host["stamp"]}, True)["removed"] is False
    assert Path(host["stamp"]).exists()
    res = converge.run_module({"state": "absent", "stamp": host["stamp"]}, False, run)
    assert res == {"changed": False, "removed": True, "msg": "stamp removed"}
    assert not Path(host["stamp"]).exists()
    assert converge.run_module({"state": "absent", "stamp": host["stamp"]}, False, run)["msg"] == "no stamp"


def test_an_unreadable_stamp_is_not_trusted(host: dict[str, Any]) -> None:
    Path(host["stamp"]).parent.mkdir(parents=True)
    Path(host["stamp"]).write_text("{not json")
    res = converge.check(params(host, parts()), False, FakeHost())
    assert res["converged"] is False and "is not a sparkfleet.converge/v1 stamp" in res["msg"]


def test_the_stamp_lives_in_the_state_directory() -> None:
    assert f"{paths.STATE_DIR}/converged.json" == paths.CONVERGE_STAMP
