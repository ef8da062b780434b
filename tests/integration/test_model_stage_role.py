"""The model_stage role on a local host (no lab needed): bad input refused on every host before any change, a
plain controller directory and a seed host's hub directory staged (links kept), a rerun changed=0, a file cut
short fetched again alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.stage import manifest

from tests.unit.test_model_stage import make_model

ROOT = Path(__file__).resolve().parents[2]


def test_role_refuses_bad_input_before_any_host_changes(tmp_path: Path) -> None:
    """One host's bad list stops every host at the check, each problem naming model_stage_models[i]."""
    py = sys.executable
    (tmp_path / "inv.yml").write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "good": {"ansible_connection": "local", "ansible_python_interpreter": py,
                                 "model_stage_models": [{"repo": "org/ok", "source_dir": str(tmp_path)}]},
                        "bad": {"ansible_connection": "local", "ansible_python_interpreter": py,
                                "model_stage_models": [{"repo": "nope", "source_dir": "/no/such"},
                                                       {"repo": "org/x", "seed_host": "ghost"}]},
                    }
                }
            }
        )
    )  # fmt: skip
    (tmp_path / "pb.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  roles: [sparkfleet.fleet.model_stage]\n"
        "  post_tasks:\n    - ansible.builtin.debug:\n        msg: went on\n"
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    res = subprocess.run(
        [str(Path(py).with_name("ansible-playbook")), "-i", str(tmp_path / "inv.yml"), str(tmp_path / "pb.yml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "went on" not in out
    assert "model_stage_models[0] (nope).repo 'nope' is not a Hub repo id" in out
    assert "model_stage_models[1] (org/x).seed_host ghost is not a host of the inventory" in out


def _stage_playbook(
    tmp_path: Path, models: list[dict[str, Any]], *args: str, ok: bool = True, **host_vars: Any
) -> tuple[int, str]:
    import grp
    import pwd

    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "model_stage_hub_dir": str(tmp_path / "hub"),
        "model_stage_owner": pwd.getpwuid(os.getuid()).pw_name,
        "model_stage_group": grp.getgrgid(os.getgid()).gr_name,
        "model_stage_controller_cache_dir": str(tmp_path / "cache"),
        "model_stage_models": models,
        **host_vars,
    }
    (tmp_path / "inv.yml").write_text(json.dumps({"all": {"hosts": {"h1": host}}}))
    (tmp_path / "pb.yml").write_text("- hosts: all\n  gather_facts: false\n  roles: [sparkfleet.fleet.model_stage]\n")
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    res = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "inv.yml"),
         str(tmp_path / "pb.yml"), *args],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    out = res.stdout + res.stderr
    if not ok:
        assert res.returncode != 0, out[-3000:]
        return -1, " ".join(out.replace("\\n", " ").split())
    assert res.returncode == 0, out[-3000:]
    m = re.search(r"h1\s*:\s*ok=\d+\s+changed=(\d+)", out)
    assert m, out[-2000:]
    return int(m.group(1)), out


def test_role_stages_from_the_controller_and_a_seed_host(tmp_path: Path) -> None:
    """The whole role on a local host: a plain controller directory and a seed's hub directory (links kept)."""
    plain = make_model(tmp_path / "ctrl")
    seed = tmp_path / "seed" / "models--org--seeded"
    (seed / "blobs").mkdir(parents=True)
    (seed / "blobs" / "b1").write_bytes(os.urandom(50_000))
    (seed / "snapshots" / "rev").mkdir(parents=True)
    (seed / "snapshots" / "rev" / "model.bin").symlink_to("../../blobs/b1")
    (seed / "refs").mkdir()
    (seed / "refs" / "main").write_text("rev")
    models = [
        {"repo": "org/plain", "source_dir": str(tmp_path / "ctrl")},
        {"repo": "org/seeded", "seed_host": "h1", "source_dir": str(seed)},
    ]
    hub = tmp_path / "hub"
    changed, _ = _stage_playbook(tmp_path, models, "--check")
    assert changed > 0 and not (hub / "models--org--plain").exists()
    changed, out = _stage_playbook(tmp_path, models)
    assert changed > 0
    assert "org/plain: 3 of 3 files to transfer from the controller" in out
    for rel, data in plain.items():
        assert (hub / "models--org--plain" / "snapshots" / "sparkfleet-staged" / rel).read_bytes() == data
    assert (hub / "models--org--plain" / "refs" / "main").read_text() == "sparkfleet-staged"
    staged = hub / "models--org--seeded"
    assert os.readlink(staged / "snapshots" / "rev" / "model.bin") == "../../blobs/b1"
    assert (staged / "snapshots" / "rev" / "model.bin").read_bytes() == (seed / "blobs" / "b1").read_bytes()
    record = json.loads((staged / manifest.MANIFEST_NAME).read_text())
    assert record["kind"] == "record" and record["repo"] == "org/seeded"
    assert json.loads((seed / manifest.MANIFEST_NAME).read_text())["kind"] == "cache"
    # Second run: nothing to transfer, changed=0.
    assert _stage_playbook(tmp_path, models)[0] == 0
    # A file cut short on the host is fetched again, alone.
    target = hub / "models--org--plain" / "snapshots" / "sparkfleet-staged" / "model.safetensors"
    target.write_bytes(plain["model.safetensors"][:10])
    changed, out = _stage_playbook(tmp_path, models)
    assert changed > 0 and "org/plain: 1 of 3 files to transfer" in out
    assert target.read_bytes() == plain["model.safetensors"]


def test_role_refuses_links_out_of_the_model_and_never_chowns_through_a_link(tmp_path: Path) -> None:
    """A controller directory with a link out is refused before the host changes, naming the model, the link and
    the fix; a host copy holding a link where staging writes is refused too; the links staged are owned themselves
    (lchown), their targets untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not a model file")

    def owners() -> list[tuple[int, int, int]]:
        return [(st.st_uid, st.st_gid, st.st_mode) for st in (outside.stat(), (outside / "secret").stat())]

    watched = owners()
    nobody: dict[str, Any] = {"model_stage_owner": "nobody", "model_stage_group": "nogroup"}
    # A link out of the source: `here` is the directory itself, so normpath thinks here/../outside/secret is inside.
    evil = tmp_path / "evil"
    make_model(evil)
    (evil / "here").symlink_to(".")
    (evil / "tokenizer.model").symlink_to("here/../outside/secret")
    _, out = _stage_playbook(tmp_path, [{"repo": "org/evil", "source_dir": str(evil)}], ok=False, **nobody)
    assert f"model_stage_models: org/evil ({evil} on the controller): {evil}/tokenizer.model links to" in out
    assert "climbs out of the model directory" in out
    assert "replace the link with a copy of the file it names" in out
    assert not (tmp_path / "hub").exists()  # nothing on the host
    # The host's copy holds a link where the staging writes a directory: refused, the link's target untouched.
    good = tmp_path / "good"
    make_model(good)
    (good / "alias.json").symlink_to("sub/../config.json")
    staged = tmp_path / "hub" / "models--org--good"
    (staged / "snapshots").mkdir(parents=True)
    (staged / "snapshots" / "sparkfleet-staged").symlink_to(outside)
    _, out = _stage_playbook(tmp_path, [{"repo": "org/good", "source_dir": str(good)}], ok=False, **nobody)
    assert "org/good: this host's copy holds links where the staging writes" in out
    assert f"{staged}/snapshots/sparkfleet-staged is a link (to {outside})" in out
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert owners() == watched
    # Once the link is gone the model is staged: its link is owned by nobody itself, the staged files too.
    (staged / "snapshots" / "sparkfleet-staged").unlink()
    changed, _ = _stage_playbook(tmp_path, [{"repo": "org/good", "source_dir": str(good)}], **nobody)
    assert changed > 0
    link = staged / "snapshots" / "sparkfleet-staged" / "alias.json"
    assert os.readlink(link) == "sub/../config.json"
    import pwd

    uid = pwd.getpwnam("nobody").pw_uid
    assert os.lstat(link).st_uid == uid
    assert os.stat(link).st_uid == uid  # its target is a staged file, owned by nobody because it was copied
    assert owners() == watched
    assert _stage_playbook(tmp_path, [{"repo": "org/good", "source_dir": str(good)}], **nobody)[0] == 0
