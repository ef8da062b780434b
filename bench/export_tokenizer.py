#!/usr/bin/env python3
"""Export the stand-in model's tokenizer from its GGUF file as a Hugging Face tokenizer directory.

SGLang's benchmark client needs a tokenizer it can load with ``AutoTokenizer.from_pretrained`` to
make its ``random-ids`` prompts and to count tokens; the hub cannot be reached here. The tokenizer the
stand-in server really uses lives inside its GGUF file (vocabulary, merges, special tokens, chat
template), so this reads those fields and writes ``tokenizer.json`` + ``tokenizer_config.json``.
``--check-url`` then asks the running server's ``/tokenize`` to tokenize a few texts and fails unless
the exported tokenizer gives the same ids.

    python bench/export_tokenizer.py --image sparkfleet-lab/llm-standin:llama.cpp .cache/bench-tokenizer
    python bench/export_tokenizer.py --gguf model.gguf OUT --check-url http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

GGUF_IN_IMAGE = "/models/tiny-llama.gguf"
# llama.cpp's pre-tokenizer for tokenizer.ggml.pre == "default" (src/llama-vocab.cpp, llm_tokenizer_bpe):
# the text is split by each expression in turn (matches and the text between them both kept), then
# each piece is byte-level encoded and merged. The stand-in's GGUF says "default", so the server
# splits "  {" and digits differently from the ByteLevel pre-tokenizer the vocabulary was trained with.
LLAMA_CPP_DEFAULT_SPLITS = (
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
)
CHECK_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    'JSON {"name": "value", "year": 2026} and DGX Spark, 12345 !?',
    "  leading spaces, tabs\tand\nnewlines; unicode: caf\u00e9 \u2192 \u4e2d\u6587",
)


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        raise SystemExit(f"export_tokenizer: the GGUF has no {key} field: not a GGUF with a tokenizer")
    return field.contents()


def read_gguf_tokenizer(path: Path) -> dict[str, Any]:
    reader = gguf.GGUFReader(str(path))
    model = _field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise SystemExit(f"export_tokenizer: tokenizer.ggml.model is {model!r}; only byte-level BPE (gpt2) is handled")
    pre = reader.fields.get("tokenizer.ggml.pre")
    pre_name = str(pre.contents()) if pre is not None else "default"
    if pre_name != "default":
        raise SystemExit(f"export_tokenizer: tokenizer.ggml.pre is {pre_name!r}; only llama.cpp's 'default' is handled")
    info: dict[str, Any] = {
        "tokens": list(_field(reader, "tokenizer.ggml.tokens")),
        "types": [int(t) for t in _field(reader, "tokenizer.ggml.token_type")],
        "merges": list(_field(reader, "tokenizer.ggml.merges")),
        "bos": int(_field(reader, "tokenizer.ggml.bos_token_id")),
        "eos": int(_field(reader, "tokenizer.ggml.eos_token_id")),
        "chat_template": str(_field(reader, "tokenizer.chat_template")),
        "n_ctx": int(_field(reader, f"{_field(reader, 'general.architecture')}.context_length")),
    }
    pad = reader.fields.get("tokenizer.ggml.padding_token_id")
    info["pad"] = int(pad.contents()) if pad is not None else info["eos"]
    return info


def build_tokenizer(info: dict[str, Any]) -> Tokenizer:
    tokens: list[str] = info["tokens"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in info["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    splits = [pre_tokenizers.Split(Regex(expr), behavior="isolated") for expr in LLAMA_CPP_DEFAULT_SPLITS]
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    control = int(gguf.TokenType.CONTROL)
    types = dict(zip(tokens, info["types"], strict=True))
    specials = [AddedToken(t, special=True, normalized=False) for t in tokens if types[t] == control]
    tok.add_special_tokens(specials)
    return tok


def write_hf_dir(info: dict[str, Any], out: Path) -> Tokenizer:
    tok = build_tokenizer(info)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    tokens = info["tokens"]
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tokens[info["bos"]],
        "eos_token": tokens[info["eos"]],
        "pad_token": tokens[info["pad"]],
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": info["n_ctx"],
        "chat_template": info["chat_template"],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(
        json.dumps({k: config[k] for k in ("bos_token", "eos_token", "pad_token")}, indent=2) + "\n"
    )
    return tok


def gguf_from_image(image: str, dest: Path) -> Path:
    name = f"sfbench-tok-{os.getpid()}"
    subprocess.run(["docker", "create", "--name", name, image], check=True, stdout=subprocess.DEVNULL)
    try:
        subprocess.run(["docker", "cp", f"{name}:{GGUF_IN_IMAGE}", str(dest)], check=True, stdout=subprocess.DEVNULL)
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, stdout=subprocess.DEVNULL)
    return dest


def check_against_server(tok: Tokenizer, base_url: str) -> int:
    """Compare ids with the server's /tokenize; return how many texts were checked."""
    if not base_url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise SystemExit(f"export_tokenizer: --check-url {base_url}: only a loopback server is checked")
    # Also the kind of text SGLang's random-ids dataset sends: a decoded run of arbitrary ids.
    texts = [*CHECK_TEXTS, tok.decode(list(range(3, tok.get_vocab_size(), 3)))]
    for text in texts:
        body = json.dumps({"content": text, "add_special": False}).encode()
        url = f"{base_url.rstrip('/')}/tokenize"
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310 - loopback http URL, checked above
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback URL checked above
            server_ids = json.load(resp)["tokens"]
        ours = tok.encode(text, add_special_tokens=False).ids
        if ours != server_ids:
            raise SystemExit(
                f"export_tokenizer: tokenizer mismatch on {text!r}:\n  server {server_ids}\n  export {ours}"
            )
    return len(texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", type=Path, help="directory to write (tokenizer.json, tokenizer_config.json)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--gguf", type=Path, help="a GGUF file")
    src.add_argument("--image", help=f"a Docker image holding {GGUF_IN_IMAGE} (the stand-in)")
    ap.add_argument("--check-url", help="base URL of the running llama.cpp server to compare /tokenize with")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sfbench-tok-") as tmp:
        path = a.gguf if a.gguf else gguf_from_image(a.image, Path(tmp) / "model.gguf")
        info = read_gguf_tokenizer(path)
    tok = write_hf_dir(info, a.output)
    checked = check_against_server(tok, a.check_url) if a.check_url else 0
    print(
        json.dumps(
            {"output": str(a.output), "vocab": tok.get_vocab_size(), "checked_against_server": checked},
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
