"""The lab's Dynamo stand-in image: NVIDIA Dynamo's frontend and CPU mocker worker, and etcd, on Debian.

``sparkfleet-lab/dynamo-standin:<version>`` stands in for ``nvcr.io/nvidia/ai-dynamo/sglang-runtime:<tag>``,
which the lab cannot pull and which needs a GPU. It is built with no registry: a debootstrap root filesystem
(Python 3.11, Debian's etcd-server), a wheelhouse downloaded on the controller (lab hosts cannot verify PyPI's
certificate) and a tiny model directory (tokenizer + config, no weights) for the mocker, every id of which
decodes to a visible word. ``docker save`` writes it to ``lab/.state/images/dynamo-standin.tar`` for the serving
role's image-archive delivery. ``make images`` builds it once: a later run finds the image and the archive with
the same key (pins, packages, this file, the build context) and downloads and builds nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lab import sparkfleet_lab as lab

DYNAMO_VERSION = "1.6.1"
DYNAMO_IMAGE = f"sparkfleet-lab/dynamo-standin:{DYNAMO_VERSION}"
DYNAMO_ARCHIVE = lab.STATE / "images" / "dynamo-standin.tar"
DYNAMO_WHEELHOUSE = lab.STATE / "wheelhouse-dynamo"
DYNAMO_PACKAGES = ["python3", "python3-venv", "etcd-server", "ca-certificates", "curl"]
# ai-dynamo's requirements (its METADATA) less aisimulate, which downloads from a host the lab cannot reach.
DYNAMO_REQUIREMENTS = [
    f"ai-dynamo-runtime=={DYNAMO_VERSION}",
    "aiohttp>=3.14.3,<4.0",
    "certifi>=2026.10.19",
    "kubernetes>=32.0.1,<33.0.0",
    "msgspec>=0.19.0",
    "prometheus-client>=0.23.1,<1.0",
    "pyzmq>=26.0.0",
    "redis>=6.2.0,<9.0.0",
    "tqdm>=4.0.0",
    "transformers>=4.56.0",
    "typing-extensions>=4.10.0",
    "zstandard>=0.23.0,<1.0",
    # redis needs it below Python 3.11.3 (Debian 12 has 3.11.2); pip download evaluates markers for the
    # controller's Python, so it is listed here.
    "async-timeout>=4.0.3",
]
# The lab hosts: Debian 12 (glibc 2.36), Python 3.11.2 (redis wants async-timeout below 3.11.3), x86_64.
PYTHON_VERSION = "3.11.2"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any"]


def wheelhouse_key() -> str:
    """The wheelhouse's key: the pins, the hosts' Python and platforms (known before anything is downloaded)."""
    return lab._digest(DYNAMO_VERSION, PYTHON_VERSION, ",".join(DYNAMO_REQUIREMENTS), ",".join(PLATFORMS))


def build_wheelhouse() -> str:
    """Download the wheels once (keyed by the pins); returns the key."""
    key = wheelhouse_key()
    stamp = DYNAMO_WHEELHOUSE / ".key"
    if stamp.exists() and stamp.read_text() == key:
        lab.log(f"wheelhouse {DYNAMO_WHEELHOUSE.name}: up to date")
        return key
    shutil.rmtree(DYNAMO_WHEELHOUSE, ignore_errors=True)
    DYNAMO_WHEELHOUSE.mkdir(parents=True)
    platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
    base = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", PYTHON_VERSION]
    lab.log(f"wheelhouse {DYNAMO_WHEELHOUSE.name}: pip download ai-dynamo {DYNAMO_VERSION} (about 150 MB)")
    for extra in ([*DYNAMO_REQUIREMENTS], ["--no-deps", f"ai-dynamo=={DYNAMO_VERSION}"]):
        res = lab.run([*base, *platform_args, "-d", str(DYNAMO_WHEELHOUSE), *extra], check=False, capture=True)
        if res.returncode != 0:
            raise lab.LabError(
                f"pip download for the Dynamo wheelhouse failed: {res.stderr.strip().splitlines()[-1:]}; "
                "check that PyPI (or PIP_INDEX_URL) is reachable"
            )
    (DYNAMO_WHEELHOUSE / "requirements.txt").write_text("\n".join(DYNAMO_REQUIREMENTS) + "\n")
    stamp.write_text(key)
    return key


# What Dynamo 1.6.1's mocker emits (measured on its worker's generate endpoint: 3,000 tokens, every id in
# [1000, 2000)): ids drawn from this range whatever the model's vocabulary. The tiny model's vocabulary covers it
# with visible words, so a reply decodes to text the benchmark's content checks see.
MOCKER_TOKEN_IDS = range(1000, 2000)
TINY_VOCAB = 2048


def write_tiny_model(out: Path) -> None:
    """A model directory the mocker and the frontend read: a tokenizer whose every id decodes to a visible word
    (lab/gpu/visible_tokenizer.py: specials 0-2, bytes, characters, English words, then made-up words), a chat
    template, a config whose vocab_size is the tokenizer's own (no id without a token behind it)."""
    from lab.gpu.visible_tokenizer import CHATML, SPECIALS, UNK, build_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(TINY_VOCAB)
    tok.save(str(out / "tokenizer.json"))
    bos, eos = tok.token_to_id(SPECIALS[0]), tok.token_to_id(SPECIALS[2])
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": tok.get_vocab_size(),
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "intermediate_size": 128,
        "max_position_embeddings": 8192,
        "bos_token_id": bos,
        "eos_token_id": eos,
    }
    tokenizer_config = {
        "chat_template": CHATML,
        "bos_token": SPECIALS[0],
        "eos_token": SPECIALS[2],
        "pad_token": SPECIALS[0],
        "unk_token": UNK,
        "add_bos_token": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 8192,
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1))
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": bos, "eos_token_id": eos}))


CONTEXT = lab.LAB / "images" / "dynamo-standin"
ROOTFS = ("bookworm-dynamo", "bookworm", DYNAMO_PACKAGES)


def build_key() -> str:
    """The image's key, computed before anything is built: the rootfs tarball's name (suite, mirror, packages),
    the wheelhouse's key, this file (the tiny model, the pins) and the build context."""
    rootfs = lab.rootfs_path(*ROOTFS)
    files = sorted(p for p in CONTEXT.rglob("*") if p.is_file())
    return lab._digest(rootfs.name, wheelhouse_key(), Path(__file__), *files)


def up_to_date(key: str) -> bool:
    """The image carries the key and the archive was saved from it: nothing to do."""
    stamp = DYNAMO_ARCHIVE.with_suffix(".key")
    return (
        lab.image_label(DYNAMO_IMAGE, f"{lab.LABEL}.build") == key
        and DYNAMO_ARCHIVE.exists()
        and stamp.exists()
        and stamp.read_text() == key
    )


def build_dynamo_standin() -> None:
    """Build (or reuse) the image and its docker save archive."""
    lab.require_docker()
    key = build_key()
    if up_to_date(key):
        lab.log(f"image {DYNAMO_IMAGE} and {DYNAMO_ARCHIVE.relative_to(lab.ROOT)}: up to date")
        return
    rootfs = lab.rootfs_tarball(*ROOTFS)
    lab.import_rootfs(rootfs, "sparkfleet-lab/rootfs:bookworm-dynamo")
    build_wheelhouse()
    if lab.image_label(DYNAMO_IMAGE, f"{lab.LABEL}.build") != key:
        with tempfile.TemporaryDirectory(prefix="sparkfleet-dynamo-") as tmp:
            build_ctx = Path(tmp)
            shutil.copytree(CONTEXT, build_ctx, dirs_exist_ok=True)
            shutil.copytree(DYNAMO_WHEELHOUSE, build_ctx / "wheelhouse")
            write_tiny_model(build_ctx / "tiny")
            lab.build_image(DYNAMO_IMAGE, build_ctx, "sparkfleet-lab/rootfs:bookworm-dynamo", key)
    else:
        lab.log(f"image {DYNAMO_IMAGE}: up to date")
    DYNAMO_ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    stamp = DYNAMO_ARCHIVE.with_suffix(".key")
    lab.log(f"docker save {DYNAMO_IMAGE} -> {DYNAMO_ARCHIVE.relative_to(lab.ROOT)} (image-archive delivery)")
    partial = DYNAMO_ARCHIVE.with_suffix(".partial")
    lab.run(["docker", "save", "-o", str(partial), DYNAMO_IMAGE])
    partial.rename(DYNAMO_ARCHIVE)
    stamp.write_text(key)


if __name__ == "__main__":
    try:
        build_dynamo_standin()
    except lab.LabError as exc:
        print(f"sparkfleet lab: {exc}", file=sys.stderr)
        sys.exit(2)
    except subprocess.CalledProcessError as exc:
        print(f"sparkfleet lab: command failed: {' '.join(exc.cmd)} (exit {exc.returncode})", file=sys.stderr)
        sys.exit(2)
