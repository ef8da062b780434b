"""Model pre-staging: the input check (every problem names model_stage_models[i]) and the sha256 manifest
(what a destination lacks, checksums reused when size and mtime match, partial files fetched again)."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.stage import manifest, spec

from tests.unit.module_fakes import ExitJson, FailJson, exit_json, fail_json

manifest_entry: Any = importlib.import_module(
    "ansible_collections.sparkfleet.fleet.plugins.modules.model_stage_manifest"
)
check_entry: Any = importlib.import_module("ansible_collections.sparkfleet.fleet.plugins.modules.model_stage_check")
HUB = "/var/lib/sparkfleet/huggingface/hub"
ROOT = Path(__file__).resolve().parents[2]


def run(entry: Any, args: dict[str, Any], check_mode: bool = False, expect: type[Exception] = ExitJson) -> Any:
    full = dict(args)
    if check_mode:
        full["_ansible_check_mode"] = True
    with (
        patch_module_args(full),
        mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json),
        pytest.raises(expect) as caught,
    ):
        entry.main()
    return caught.value.args[0]


# ------------------------------------------------------------------ inputs


def check(models: Any, tmp_path: Path, hosts: tuple[str, ...] = ("spark-01", "spark-02")) -> Any:
    return spec.check_models(models, hosts=list(hosts), hub_dir=HUB, search_dirs=[str(tmp_path)])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"repo": "Qwen3-8B", "source_dir": "/"},
            "model_stage_models[0] (Qwen3-8B).repo 'Qwen3-8B' is not a Hub repo id",
        ),
        ({"repo": "a/b/c", "source_dir": "/"}, "is not a Hub repo id of the form org/name"),
        ({"repo": "org/na--me", "source_dir": "/"}, "is not a Hub repo id"),
        ({"source_dir": "/"}, "model_stage_models[0].repo is missing"),
        ({"repo": "org/name"}, "model_stage_models[0] (org/name) needs source_dir"),
        ({"repo": "org/name", "source_dir": "/no/such/dir"}, ".source_dir /no/such/dir is not a directory"),
        ({"repo": "org/name", "source_dir": "missing"}, "(tried against"),
        ({"repo": "org/name", "seed_host": "spark-99"}, ".seed_host spark-99 is not a host of the inventory"),
        ({"repo": "org/name", "source_dir": "/", "colour": 1}, "unknown keys ['colour']"),
        ({"repo": "org/name", "source_dir": "/", "revision": "a b"}, ".revision 'a b' must be"),
        ("org/name", "must be a mapping"),
    ],
)
def test_bad_entries_name_the_variable(entry: Any, message: str, tmp_path: Path) -> None:
    _, errors = check([entry], tmp_path)
    assert any(message in e for e in errors), errors


def test_not_a_list(tmp_path: Path) -> None:
    assert check({"repo": "a/b"}, tmp_path)[1] == [
        "model_stage_models must be a list of {repo, source_dir | seed_host}, not dict"
    ]


def test_duplicates_are_refused(tmp_path: Path) -> None:
    _, errors = check([{"repo": "a/b", "source_dir": "/"}, {"repo": "a/b", "seed_host": "spark-01"}], tmp_path)
    assert errors == [
        "model_stage_models[1] (a/b).repo a/b is already listed as model_stage_models[0]: list each model once"
    ]


def test_good_entries_are_normalized(tmp_path: Path) -> None:
    (tmp_path / "tiny").mkdir()
    models, errors = check(
        [{"repo": "org/tiny", "source_dir": "tiny"}, {"repo": "Qwen/Qwen3-8B", "seed_host": "spark-01"}], tmp_path
    )
    assert errors == []
    assert models == [
        {"repo": "org/tiny", "hub_name": "models--org--tiny", "revision": "sparkfleet-staged", "seed_host": "",
         "source": "controller", "source_dir": str(tmp_path / "tiny")},
        {"repo": "Qwen/Qwen3-8B", "hub_name": "models--Qwen--Qwen3-8B", "revision": "sparkfleet-staged",
         "seed_host": "spark-01", "source": "seed", "source_dir": f"{HUB}/models--Qwen--Qwen3-8B"},
    ]  # fmt: skip


def test_check_module_fails_with_every_problem(tmp_path: Path) -> None:
    result = run(
        check_entry,
        {"models": [{"repo": "x"}, {"repo": "a/b", "seed_host": "nope"}], "hosts": ["h1"], "hub_dir": HUB},
        expect=FailJson,
    )
    assert result["msg"].startswith("model_stage_models has 2 problem(s); nothing was changed: ")
    assert len(result["errors"]) == 2
    assert run(check_entry, {"models": [], "hosts": [], "hub_dir": HUB})["models"] == []


# ------------------------------------------------------------------ manifest


def make_model(root: Path) -> dict[str, bytes]:
    files = {"config.json": b'{"a": 1}', "model.safetensors": os.urandom(300_000), "sub/tokenizer.json": b"tok"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_scan_hashes_every_file_and_skips_its_own_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_model(src)
    (src / manifest.MANIFEST_NAME).write_text("{}")
    (src / manifest.PARTIAL_DIR).mkdir()
    (src / manifest.PARTIAL_DIR / "model.safetensors").write_bytes(b"half")
    result = run(manifest_entry, {"path": str(src)})
    assert result["changed"] is False
    assert result["layout"] == "files"
    assert sorted(result["files"]) == sorted(files)
    assert result["files"]["sub/tokenizer.json"]["sha256"] == manifest.sha256_file(src / "sub/tokenizer.json")
    assert result["bytes_total"] == sum(len(d) for d in files.values())


def test_hub_layout_keeps_links_and_refuses_links_out(tmp_path: Path) -> None:
    hub = tmp_path / "models--org--tiny"
    (hub / "blobs").mkdir(parents=True)
    (hub / "blobs" / "abc").write_bytes(b"weights")
    (hub / "snapshots" / "rev").mkdir(parents=True)
    (hub / "snapshots" / "rev" / "model.bin").symlink_to("../../blobs/abc")
    result = run(manifest_entry, {"path": str(hub)})
    assert result["layout"] == "hub"
    assert result["links"] == {"snapshots/rev/model.bin": "../../blobs/abc"}
    assert list(result["files"]) == ["blobs/abc"]
    (hub / "snapshots" / "rev" / "evil").symlink_to("/etc/passwd")
    msg = run(manifest_entry, {"path": str(hub)}, expect=FailJson)["msg"]
    assert f"{hub}/snapshots/rev/evil links to /etc/passwd, which is an absolute path" in msg
    assert "a link must end inside the model directory" in msg


def stage_args(src: Path, dest: Path, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "path": str(dest),
        "expected": source,
        "prefix": "snapshots/r1",
        "repo": "org/tiny",
        "revision": "r1",
        **extra,
    }


def test_compare_record_and_rerun(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "models--org--tiny"
    files = make_model(src)
    source = run(manifest_entry, {"path": str(src)})
    # Nothing there yet: every file is to transfer, the directories they need are listed.
    first = run(manifest_entry, stage_args(src, dest, source))
    assert [t["path"] for t in first["transfer"]] == [f"snapshots/r1/{p}" for p in sorted(files)]
    assert {t["reason"] for t in first["transfer"]} == {"missing"}
    assert first["dirs"] == ["snapshots", "snapshots/r1", "snapshots/r1/sub"]
    assert first["bytes_transfer"] == first["bytes_total"]
    # A partial copy (shorter file) and a corrupted one (same size, other bytes).
    for rel, data in files.items():
        (dest / "snapshots/r1" / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / "snapshots/r1" / rel).write_bytes(data)
    (dest / "snapshots/r1/model.safetensors").write_bytes(files["model.safetensors"][:1000])
    (dest / "snapshots/r1/config.json").write_bytes(b'{"a": 2}')
    second = run(manifest_entry, stage_args(src, dest, source))
    assert {t["src"]: t["reason"] for t in second["transfer"]} == {
        "config.json": "sha256 differs",
        "model.safetensors": "size 1000 of 300000 (partial or changed)",
    }
    # fail_on_mismatch after a transfer that left a file wrong; never in check mode.
    failed = run(manifest_entry, stage_args(src, dest, source, fail_on_mismatch=True), expect=FailJson)
    assert "still differs from its source" in failed["msg"]
    run(manifest_entry, stage_args(src, dest, source, fail_on_mismatch=True), check_mode=True)
    # Fixed: record writes the manifest once (changed), then never again; check mode writes nothing.
    for rel in ("config.json", "model.safetensors"):
        (dest / "snapshots/r1" / rel).write_bytes(files[rel])
    args = stage_args(src, dest, source, manifest="record", fail_on_mismatch=True)
    assert run(manifest_entry, args, check_mode=True)["changed"] is True
    assert not (dest / manifest.MANIFEST_NAME).exists()
    recorded = run(manifest_entry, args)
    assert recorded["changed"] is True and recorded["transfer"] == []
    doc = json.loads((dest / manifest.MANIFEST_NAME).read_text())
    assert doc["schema"] == manifest.SCHEMA and doc["repo"] == "org/tiny" and doc["revision"] == "r1"
    assert doc["files"]["snapshots/r1/model.safetensors"]["sha256"] == source["files"]["model.safetensors"]["sha256"]
    again = run(manifest_entry, args)
    assert again["changed"] is False
    assert again["hashed_bytes"] == 0  # recorded checksums reused: size and mtime unchanged


def test_full_verify_catches_what_quick_trusts(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    make_model(src)
    make_model(dest)  # other random weights of the same size
    source = run(manifest_entry, {"path": str(src)})
    st = os.stat(dest / "model.safetensors")
    # A manifest that (wrongly) records the source's sha256 for the destination's file.
    recorded = {"model.safetensors": {**source["files"]["model.safetensors"], "mtime_ns": st.st_mtime_ns}}
    (dest / manifest.MANIFEST_NAME).write_text(manifest.manifest_content("org/tiny", "files", "", recorded, {}))
    quick = run(manifest_entry, {"path": str(dest), "expected": source})
    assert "model.safetensors" not in [t["path"] for t in quick["transfer"]]
    full = run(manifest_entry, {"path": str(dest), "expected": source, "verify": "full"})
    assert "model.safetensors" in [t["path"] for t in full["transfer"]]


def test_cache_mode_writes_silently(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_model(src)
    cache = tmp_path / "controller-cache" / "cache.json"
    first = run(manifest_entry, {"path": str(src), "manifest_file": str(cache), "manifest": "cache"})
    assert first["changed"] is False and cache.is_file() and first["hashed_bytes"] > 0
    assert (
        run(manifest_entry, {"path": str(src), "manifest_file": str(cache), "manifest": "cache"})["hashed_bytes"] == 0
    )


def test_links_missing_then_made(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    source = {"layout": "hub", "files": {}, "links": {"snapshots/r/a": "../../blobs/x"}}
    assert run(manifest_entry, {"path": str(dest), "expected": source})["links_missing"] == [
        {"path": "snapshots/r/a", "target": "../../blobs/x"}
    ]
    (dest / "snapshots" / "r").mkdir(parents=True)
    (dest / "snapshots" / "r" / "a").symlink_to("../../blobs/x")
    assert run(manifest_entry, {"path": str(dest), "expected": source})["links_missing"] == []


def test_unreadable_manifest_is_ignored(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text("not json")
    assert manifest.load_manifest(bad) == {}
    bad.write_text(json.dumps({"schema": "other", "files": {}}))
    assert manifest.load_manifest(bad) == {}


# ------------------------------------------------------------------ links never leave the model directory


def linked_model(tmp_path: Path) -> tuple[Path, Path]:
    """A hub-layout model with good links (relative, a chain, a directory link), and a file beside it."""
    outside = tmp_path / "secret"
    outside.write_text("not part of any model")
    (tmp_path / "outside-dir").mkdir()
    (tmp_path / "outside-dir" / "key").write_text("not part of any model")
    hub = tmp_path / "models--org--linked"
    (hub / "blobs").mkdir(parents=True)
    (hub / "blobs" / "w1").write_bytes(b"weights")
    (hub / "blobs" / "t1").write_bytes(b"tokenizer")
    snap = hub / "snapshots" / "rev"
    (snap / "sub").mkdir(parents=True)
    (snap / "model.bin").symlink_to("../../blobs/w1")  # the Hub's own layout
    (snap / "sub" / "tokenizer.json").symlink_to("../../../blobs/t1")
    (snap / "alias.bin").symlink_to("model.bin")  # a link to a link, inside
    (snap / "weights").symlink_to("../../blobs")  # a directory link, inside
    (snap / "here").symlink_to(".")  # a link to its own directory, inside
    return hub, snap


def test_links_that_stay_inside_are_kept(tmp_path: Path) -> None:
    hub, _ = linked_model(tmp_path)
    result = run(manifest_entry, {"path": str(hub)})
    assert result["links"] == {
        "snapshots/rev/alias.bin": "model.bin",
        "snapshots/rev/here": ".",
        "snapshots/rev/model.bin": "../../blobs/w1",
        "snapshots/rev/sub/tokenizer.json": "../../../blobs/t1",
        "snapshots/rev/weights": "../../blobs",
    }
    assert sorted(result["files"]) == ["blobs/t1", "blobs/w1"]
    assert manifest._resolve_link(hub, "snapshots/rev/alias.bin") == "blobs/w1"
    assert manifest._resolve_link(hub, "snapshots/rev/weights") == "blobs"
    assert manifest._resolve_link(hub, "snapshots/rev/here") == "snapshots/rev"


# Each case: the link made in snapshots/rev, other links beside it, and what the message says.
# {outside} is a file beside the model, {outside_dir} a directory beside it.
LINKS_OUT = {
    "absolute": ("abs", "{outside}", {}, "which is an absolute path"),
    "dotdot": ("up", "../../../secret", {}, "which climbs out of the model directory"),
    # normpath says inside (here/.. is rev), but here is rev itself: rev/.. is snapshots, then out twice.
    "dotdot-through-a-link": ("trick", "here/../../../secret", {}, "which climbs out of the model directory"),
    "link-to-an-absolute-link": (
        "chain", "hop", {"hop": "{outside}"}, "leads through snapshots/rev/hop, a link to the absolute path {outside}"
    ),
    "link-to-a-dotdot-link": ("chain", "hop", {"hop": "../../../secret"}, "which climbs out of the model directory"),
    "absolute-dir": ("absdir", "{outside_dir}", {}, "which is an absolute path"),
    "dotdot-dir": ("updir", "../../../outside-dir", {}, "which climbs out of the model directory"),
    "loop": ("loop", "loop2", {"loop2": "loop"}, "is a loop of links"),
    "dangling": ("dangling", "../../blobs/nothing", {}, "leads to blobs/nothing, which does not exist"),
    "through-a-file": ("notdir", "../../blobs/w1/x", {}, "leads to blobs/w1, which does not exist"),
    # .cache is skipped by the walk (hf download's metadata): only reached through a link, to a link out.
    "into-a-skipped-dir": ("skipped", "../../.cache/x", {}, "points into .cache, which is not staged"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LINKS_OUT))
def test_links_that_leave_are_refused_naming_the_link_and_the_fix(tmp_path: Path, case: str) -> None:
    name, target, beside, why = LINKS_OUT[case]
    hub, snap = linked_model(tmp_path)
    fmt = {"outside": str(tmp_path / "secret"), "outside_dir": str(tmp_path / "outside-dir")}
    (hub / ".cache").mkdir()
    (hub / ".cache" / "x").symlink_to(fmt["outside"])
    for other, other_target in beside.items():
        (snap / other).symlink_to(other_target.format(**fmt))
    (snap / name).symlink_to(target.format(**fmt))
    watched = (tmp_path / "secret", tmp_path / "outside-dir" / "key")
    before = {p: p.stat() for p in watched}
    msg = run(manifest_entry, {"path": str(hub), "manifest": "cache"}, expect=FailJson)["msg"]
    assert why.format(**fmt) in msg
    assert f"{snap / name} links to {target.format(**fmt)}, which" in msg  # the link
    assert "a link must end inside the model directory" in msg
    assert "replace the link with a copy of the file it names" in msg  # the fix
    assert not (hub / manifest.MANIFEST_NAME).exists()  # nothing written
    assert {p: p.stat() for p in watched} == before


def test_a_link_on_the_host_where_staging_writes_is_refused_before_any_change(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "models--org--tiny"
    make_model(src)
    source = run(manifest_entry, {"path": str(src)})
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # The snapshot directory is a link out on the host: every copy and chown would land in `elsewhere`.
    (dest / "snapshots").mkdir(parents=True)
    (dest / "snapshots" / "r1").symlink_to(outside)
    msg = run(manifest_entry, stage_args(src, dest, source), expect=FailJson)["msg"]
    assert msg.startswith("org/tiny: this host's copy holds links where the staging writes")
    assert f"{dest}/snapshots/r1 is a link (to {outside}) where the staging writes a directory" in msg
    assert "Remove them (rm LINK" in msg and "nothing was changed on this host" in msg
    assert list(outside.iterdir()) == []
    # A file staging writes that is a link on the host (copy would write into the directory it names).
    (dest / "snapshots" / "r1").unlink()
    (dest / "snapshots" / "r1").mkdir()
    (dest / "snapshots" / "r1" / "config.json").symlink_to(outside)
    msg = run(manifest_entry, stage_args(src, dest, source), expect=FailJson)["msg"]
    assert f"{dest}/snapshots/r1/config.json is a link (to {outside}) where the staging writes a file" in msg
    # refs/main, which the role writes beside a plain directory's snapshot.
    (dest / "snapshots" / "r1" / "config.json").unlink()
    (dest / "refs").symlink_to(outside)
    msg = run(manifest_entry, stage_args(src, dest, source), expect=FailJson)["msg"]
    assert f"{dest}/refs is a link (to {outside}) where the staging writes a directory" in msg
    (dest / "refs").unlink()
    assert run(manifest_entry, stage_args(src, dest, source))["transfer"]  # clean again: staging goes on
    # The model directory itself, a link on the host.
    moved = tmp_path / "moved"
    dest.rename(moved)
    dest.symlink_to(moved)
    msg = run(manifest_entry, stage_args(src, dest, source), expect=FailJson)["msg"]
    assert f"{dest} is a link (to {moved}) where the staging writes the model directory" in msg


def test_every_file_task_of_the_role_that_sets_an_owner_or_mode_does_not_follow_links() -> None:
    import yaml

    tasks = yaml.safe_load((ROOT / "roles" / "model_stage" / "tasks" / "model.yml").read_text())
    owning = [
        t for t in tasks for mod in ("ansible.builtin.file", "ansible.builtin.copy")
        if mod in t and {"owner", "group", "mode"} & set(t[mod])
    ]  # fmt: skip
    assert len(owning) == 5
    following = [
        t["name"]
        for t in owning
        for mod in t
        if mod.startswith("ansible.builtin.")
        and mod in ("ansible.builtin.file", "ansible.builtin.copy")
        and t[mod].get("follow") is not False
    ]
    assert following == []
