#!/usr/bin/env python3
"""Write a tiny, randomly initialised Llama-architecture model as a GGUF file.

This is the model the lab's stand-in inference image serves: a real transformer
(real tokenizer, real attention, real KV cache) that llama.cpp's server runs on
the CPU, small enough to create in seconds with no download. Its answers are
noise; its serving behaviour (streaming, batching, prefix caching, grammar-
constrained JSON output, usage accounting) is the real server's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gguf
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CORPUS = (
    "The quick brown fox jumps over the lazy dog. "
    "A lab of DGX Spark and DGX Station machines serves language models to a class. "
    "Every host runs an inference server behind a systemd unit and answers chat completions. "
    'JSON objects look like {"name": "value", "year": 2026, "items": [1, 2, 3]}. '
    "Speed is a scalar; velocity is a vector. Explain the difference with an example. "
)


def train_tokenizer(vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([CORPUS] * 50, trainer=trainer)
    return tok


def write_gguf(
    path: Path, *, vocab_size: int, n_embd: int, n_layer: int, n_head: int, n_ff: int, n_ctx: int, seed: int
) -> dict[str, int]:
    tok = train_tokenizer(vocab_size)
    data = json.loads(tok.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    for added in data["added_tokens"]:
        vocab[added["content"]] = added["id"]
    n_vocab = max(vocab.values()) + 1
    tokens = [""] * n_vocab
    for text, idx in vocab.items():
        tokens[idx] = text
    types = [gguf.TokenType.CONTROL if t in SPECIAL else gguf.TokenType.NORMAL for t in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]

    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head

    def w(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("sparkfleet-tiny-standin")
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab["<|endoftext|>"])
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_pad_token_id(vocab["<|endoftext|>"])
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)

    writer.add_tensor("token_embd.weight", w(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", w(n_vocab, n_embd, scale=0.2))
    for i in range(n_layer):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(p + "attn_q.weight", w(n_embd, n_embd))
        writer.add_tensor(p + "attn_k.weight", w(n_embd, n_embd))
        writer.add_tensor(p + "attn_v.weight", w(n_embd, n_embd))
        writer.add_tensor(p + "attn_output.weight", w(n_embd, n_embd))
        writer.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(p + "ffn_gate.weight", w(n_ff, n_embd))
        writer.add_tensor(p + "ffn_up.weight", w(n_ff, n_embd))
        writer.add_tensor(p + "ffn_down.weight", w(n_embd, n_ff))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    params = n_vocab * n_embd * 2 + n_layer * (4 * n_embd * n_embd + 3 * n_embd * n_ff)
    return {"vocab": n_vocab, "parameters": params}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("output", type=Path)
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--embd", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff", type=int, default=128)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=20261123)
    a = ap.parse_args()
    info = write_gguf(
        a.output,
        vocab_size=a.vocab_size,
        n_embd=a.embd,
        n_layer=a.layers,
        n_head=a.heads,
        n_ff=a.ff,
        n_ctx=a.ctx,
        seed=a.seed,
    )
    print(json.dumps({"path": str(a.output), **info}))


if __name__ == "__main__":
    main()
