#!/usr/bin/env python3
"""Write a randomly initialised model shaped like Qwen3-8B (about 8.2B parameters, bf16) to a directory.

Runs on the GPU machine (PyTorch + transformers, no network): real weights-sized tensors, so decode reads as
many bytes per token as the real model and throughput is measured at a realistic size. Its text is noise.
The tokenizer is the small byte-level BPE trained locally (lab/standin/make_tiny_model.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab.standin.make_tiny_model import CHATML, train_tokenizer


def main() -> None:
    out = Path(sys.argv[1])
    t0 = time.monotonic()
    tok = train_tokenizer(512)
    specials = {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **specials)
    fast.chat_template = CHATML
    cfg = Qwen3Config(
        vocab_size=151936,
        hidden_size=4096,
        intermediate_size=12288,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=40960,
        initializer_range=0.5,
        torch_dtype="bfloat16",
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out, safe_serialization=True)
    fast.save_pretrained(out)
    info = {"path": str(out), "parameters": params, "seconds": round(time.monotonic() - t0, 1)}
    (out / "sparkfleet-model.json").write_text(json.dumps(info))
    print(json.dumps(info))


if __name__ == "__main__":
    main()
