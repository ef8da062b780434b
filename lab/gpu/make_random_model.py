#!/usr/bin/env python3
"""Write a randomly initialised model shaped like a real one into a local Hugging Face cache, no network.

``--shape qwen3-8b`` (the default) is Qwen3-8B's configuration: 36 layers, hidden 4096, 32 query and 8 KV heads,
vocabulary 151,936: 8.19e9 parameters in bf16, so a decode step reads as many bytes as the real model's and the
throughput measured is that of a real 8B model on the GPU. ``--shape tiny`` keeps the vocabulary and the
architecture at toy width, for proving the flow on a CPU in seconds.

The tokenizer (lab/gpu/visible_tokenizer.py) fills every one of the 151,936 ids with a visible word, so whatever
the random weights pick decodes to text: chat replies have content, streams have content chunks, TTFT is measured.

The model is written as the Hugging Face cache lays out a downloaded repository
(``$HF_HOME/hub/models--sparkfleet--qwen3-8b-random/snapshots/<revision>/``), so ``transformers serve`` loads it by
its repository id with ``HF_HUB_OFFLINE=1`` and its ``/v1/models`` (a scan of that cache) lists it.

Runs where PyTorch and transformers are installed (the device machine's image)::

    python3 lab/gpu/make_random_model.py --hf-home /tmp/sparkfleet-hf --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab.gpu.visible_tokenizer import QWEN3_VOCAB, save_pretrained

REVISION = "0" * 40  # the snapshot's name; refs/main points at it
SHAPES: dict[str, dict[str, Any]] = {
    # Qwen/Qwen3-8B's config.json (hidden_size, intermediate_size, layers, heads, head_dim, vocab, rope theta).
    "qwen3-8b": {
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 40960,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 4096,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
    },
}


def snapshot_dir(hf_home: Path, repo_id: str) -> Path:
    """Where the Hugging Face cache keeps ``repo_id``'s files (one snapshot, revision REVISION)."""
    return hf_home / "hub" / ("models--" + repo_id.replace("/", "--")) / "snapshots" / REVISION


def _finish_cache_entry(hf_home: Path, repo_id: str) -> None:
    """refs/main -> REVISION, and every snapshot file a link to a blob, as huggingface_hub writes them."""
    repo_dir = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(REVISION)
    blobs = repo_dir / "blobs"
    blobs.mkdir(exist_ok=True)
    snap = snapshot_dir(hf_home, repo_id)
    for index, path in enumerate(sorted(p for p in snap.iterdir() if p.is_file() and not p.is_symlink())):
        blob = blobs / f"{index:040x}"
        os.replace(path, blob)
        path.symlink_to(os.path.relpath(blob, snap))


def measure(model: Any, tok: Any, device: str) -> dict[str, Any]:
    """Sanity and reference numbers: the decoded text of a short greedy reply, and on a GPU the copy bandwidth
    and the batch-1 decode rate of plain ``model.generate`` (the same weights, no server)."""
    import torch

    out: dict[str, Any] = {}
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Name three colours of the rainbow."}], add_generation_prompt=True
    )
    ids = torch.tensor([prompt if isinstance(prompt, list) else prompt["input_ids"]], device=device)
    with torch.no_grad():
        gen = model.generate(ids, max_new_tokens=16, min_new_tokens=16, do_sample=False)
    text = tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True)
    out["sample_text"] = text
    out["sample_visible_chars"] = sum(1 for c in text if c.isalnum())
    if device.startswith("cuda"):
        n = 2 * 1024**3  # 2 GiB copied: far past the 60 MB L2
        src = torch.empty(n, dtype=torch.uint8, device=device).random_(0, 255)
        dst = torch.empty_like(src)
        dst.copy_(src)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(10):
            start.record()
            dst.copy_(src)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        times.sort()
        out["copy_bandwidth_gbps"] = round(2 * n / times[len(times) // 2] / 1e9, 1)  # read + write
        del src, dst
        torch.cuda.empty_cache()
        with torch.no_grad():
            model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False)  # warm-up
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.generate(ids, max_new_tokens=64, min_new_tokens=64, do_sample=False)
            torch.cuda.synchronize()
        out["generate_batch1_tok_s"] = round(64 / (time.perf_counter() - t0), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hf-home", type=Path, default=Path(os.environ.get("HF_HOME", "/tmp/sparkfleet-hf")))
    ap.add_argument("--repo-id", default="sparkfleet/qwen3-8b-random")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="qwen3-8b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--init-range", type=float, default=0.02, help="std of the random weights (Qwen3's own)")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--no-measure", action="store_true", help="skip the sample reply and the GPU numbers")
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    t0 = time.monotonic()
    snap = snapshot_dir(args.hf_home, args.repo_id)
    info_path = snap / "sparkfleet-model.json"
    if info_path.exists():
        saved = json.loads(info_path.read_text())
        if saved.get("shape") == args.shape and saved.get("dtype") == args.dtype:
            print(json.dumps({**saved, "reused": True}))
            return 0
    snap.mkdir(parents=True, exist_ok=True)
    tok_info = save_pretrained(str(snap), QWEN3_VOCAB)
    cfg = Qwen3Config(
        vocab_size=QWEN3_VOCAB,
        initializer_range=args.init_range,
        tie_word_embeddings=False,
        eos_token_id=tok_info["eos_token_id"],
        bos_token_id=tok_info["bos_token_id"],
        pad_token_id=tok_info["pad_token_id"],
        dtype=args.dtype,
        **SHAPES[args.shape],
    )
    cfg.architectures = ["Qwen3ForCausalLM"]
    torch.manual_seed(args.seed)
    with torch.device(args.device):
        model = Qwen3ForCausalLM(cfg).to(getattr(torch, args.dtype))
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    # Sampling as a chat model does: a random model's greedy reply tends to repeat one word.
    model.generation_config = GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_k=50,
        top_p=1.0,
        eos_token_id=tok_info["eos_token_id"],
        bos_token_id=tok_info["bos_token_id"],
        pad_token_id=tok_info["pad_token_id"],
    )
    model.save_pretrained(snap)
    info: dict[str, Any] = {
        "repo_id": args.repo_id,
        "path": str(snap),
        "shape": args.shape,
        "dtype": args.dtype,
        "parameters": params,
        "init_range": args.init_range,
        "config": {**SHAPES[args.shape], "vocab_size": QWEN3_VOCAB},
        "tokenizer": tok_info,
        "write_seconds": round(time.monotonic() - t0, 1),
    }
    if not args.no_measure:
        tok = AutoTokenizer.from_pretrained(str(snap))
        info.update(measure(model, tok, args.device))
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    _finish_cache_entry(args.hf_home, args.repo_id)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
