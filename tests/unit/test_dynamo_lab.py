"""The Dynamo lab pieces (docs/dynamo.md): the mocker's tiny model decodes every id it emits to a visible word,
the stand-in image is built once (make images skips it while its key holds), and the serving role passes the
host's address to the workers (llm_serving_advertise_address -> Settings.advertise_address)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import Settings
from tokenizers import Tokenizer

from lab import dynamo_standin
from lab import sparkfleet_lab as lab
from tests.conftest import ROOT

ROLE = ROOT / "roles" / "llm_serving"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    dynamo_standin.write_tiny_model(out)
    return out


def test_every_id_the_mocker_emits_decodes_to_a_visible_word(tiny: Path) -> None:
    tok = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    for token_id in dynamo_standin.MOCKER_TOKEN_IDS:
        text = tok.decode([token_id])
        assert re.search(r"[A-Za-z]", text), (token_id, text)
    # Decoded one after the other (as the frontend streams them) they read as words with spaces between them.
    words = tok.decode(list(dynamo_standin.MOCKER_TOKEN_IDS)[:20]).split()
    assert len(words) == 20


def test_the_config_vocabulary_is_the_tokenizer_s_own(tiny: Path) -> None:
    tok = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    config = json.loads((tiny / "config.json").read_text())
    assert config["vocab_size"] == tok.get_vocab_size() == dynamo_standin.TINY_VOCAB
    assert max(dynamo_standin.MOCKER_TOKEN_IDS) < config["vocab_size"]
    # The end of a reply is never one of the ids the mocker emits: replies run to max_tokens.
    assert config["eos_token_id"] == tok.token_to_id("<|im_end|>")
    assert config["eos_token_id"] not in dynamo_standin.MOCKER_TOKEN_IDS


def test_the_chat_template_and_specials_are_in_the_tokenizer_config(tiny: Path) -> None:
    cfg = json.loads((tiny / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in cfg["chat_template"]
    assert cfg["eos_token"] == "<|im_end|>"
    tok = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    # The benchmark's prompts encode without unknown pieces (byte fallback covers the rest).
    ids = tok.encode("Describe the colours of a rainbow in one short sentence.").ids
    assert tok.token_to_id("<unk>") not in ids


def _fake_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, label: str | None) -> Path:
    archive = tmp_path / "images" / "dynamo-standin.tar"
    monkeypatch.setattr(dynamo_standin, "DYNAMO_ARCHIVE", archive)
    monkeypatch.setattr(lab, "image_label", lambda _ref, _key: label)
    return archive


def test_up_to_date_only_with_the_image_and_its_archive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = dynamo_standin.build_key()
    archive = _fake_state(monkeypatch, tmp_path, key)
    assert not dynamo_standin.up_to_date(key)  # no archive yet
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"tar")
    assert not dynamo_standin.up_to_date(key)  # an archive without its key stamp
    archive.with_suffix(".key").write_text(key)
    assert dynamo_standin.up_to_date(key)
    archive.with_suffix(".key").write_text("older")
    assert not dynamo_standin.up_to_date(key)  # saved from an older image
    _fake_state(monkeypatch, tmp_path, "older")
    archive.with_suffix(".key").write_text(key)
    assert not dynamo_standin.up_to_date(key)  # the image was rebuilt from other inputs


def test_an_up_to_date_stand_in_downloads_and_builds_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = dynamo_standin.build_key()
    archive = _fake_state(monkeypatch, tmp_path, key)
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"tar")
    archive.with_suffix(".key").write_text(key)
    monkeypatch.setattr(lab, "require_docker", lambda: None)
    monkeypatch.setattr(lab, "ROOT", tmp_path)  # the log line names the archive relative to the repository

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("nothing may be built when the image and archive are up to date")

    for name in ("rootfs_tarball", "import_rootfs", "build_image", "run"):
        monkeypatch.setattr(lab, name, refuse)
    monkeypatch.setattr(dynamo_standin, "build_wheelhouse", refuse)
    dynamo_standin.build_dynamo_standin()


def test_the_key_follows_the_pins_and_the_rootfs(monkeypatch: pytest.MonkeyPatch) -> None:
    key = dynamo_standin.build_key()
    assert key == dynamo_standin.build_key()
    monkeypatch.setattr(dynamo_standin, "DYNAMO_REQUIREMENTS", [*dynamo_standin.DYNAMO_REQUIREMENTS, "x==1"])
    assert dynamo_standin.build_key() != key
    monkeypatch.undo()
    monkeypatch.setattr(lab, "MIRROR", "http://mirror.example/debian")
    assert dynamo_standin.build_key() != key


def test_rootfs_path_is_where_rootfs_tarball_keeps_it() -> None:
    path = lab.rootfs_path(*dynamo_standin.ROOTFS)
    assert path.parent == lab.CACHE
    assert path.name.startswith("rootfs-bookworm-dynamo-") and path.suffix == ".tar"


def test_make_images_builds_the_dynamo_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        assert kw["cwd"] == lab.ROOT
        return subprocess.CompletedProcess(cmd, 1 if len(calls) > 1 else 0)

    monkeypatch.setattr(lab.subprocess, "run", fake_run)
    lab.build_dynamo()
    assert calls[0][1:] == ["-m", "lab.dynamo_standin"]
    with pytest.raises(lab.LabError, match=r"python -m lab\.dynamo_standin"):
        lab.build_dynamo()
    source = (ROOT / "lab" / "sparkfleet_lab.py").read_text()
    body = source[source.index("def build_images") : source.index("def build_dynamo")]
    assert "build_dynamo()" in body


def test_the_role_passes_the_advertise_address_to_the_renderer() -> None:
    [task] = [t for t in yaml.safe_load((ROLE / "tasks" / "plan.yml").read_text()) if "settings" in str(t)]
    module = next(k for k in task if k.endswith("llm_service_spec"))
    settings = task[module]["settings"]
    assert settings["advertise_address"] == "{{ llm_serving_advertise_address }}"
    assert set(settings) <= set(Settings.__dataclass_fields__)
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert spec["llm_serving_advertise_address"]["type"] == "str"
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert "ansible_host" in defaults["llm_serving_advertise_address"]
    assert "default_ipv4" in defaults["llm_serving_advertise_address"]


@pytest.mark.parametrize(
    ("host", "literal"),
    [("172.30.66.11", True), ("fd00::12", True), ("::1", True), ("sfm-dynamo-a", False), ("spark-01.lab", False),
     ("dead:beef", True), ("10.0.0", False)],
)  # fmt: skip
def test_ansible_host_is_the_advertise_address_only_when_it_is_an_ip(host: str, literal: bool) -> None:
    pattern = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__llm_serving_ip_literal"]
    assert bool(re.match(pattern, host)) is literal
