#!/usr/bin/env bash
# Set up the PEER benchmark client for bench/agreement.py and bench/client_capacity.py:
#   .cache/bench-venv      SGLang's benchmark client (sglang==0.5.23 --no-deps, plus what the client imports:
#                          bench/requirements-sglang.txt), kept apart from .venv
#   .cache/bench-tokenizer the stand-in model's tokenizer in Hugging Face format, read from the GGUF inside the
#                          stand-in image (no hub access), checked id-for-id against the server's /tokenize when
#                          --check-url is given to bench/export_tokenizer.py (bench/agreement.py does that)
# Idempotent: a stamp holding the requirements' hash skips the pip steps when nothing changed.
# Usage: bench/setup_sglang_client.sh [--force]      (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPARKFLEET_BENCH_VENV:-$ROOT/.cache/bench-venv}"
TOKENIZER_DIR="${SPARKFLEET_BENCH_TOKENIZER:-$ROOT/.cache/bench-tokenizer}"
IMAGE="${SPARKFLEET_STANDIN_IMAGE:-sparkfleet-lab/llm-standin:llama.cpp}"
REQS="$ROOT/bench/requirements-sglang.txt"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.sparkfleet-bench-installed"

say() { printf 'setup_sglang_client: %s\n' "$*"; }
die() { say "$*" >&2; exit 2; }

[[ "${1:-}" == "--force" ]] && rm -f "$STAMP"
[[ $# -le 1 && ( $# -eq 0 || "$1" == "--force" ) ]] || die "usage: $0 [--force]"

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.10 or newer, or set PYTHON=..."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$PYTHON is older than 3.10: set PYTHON to a newer interpreter"

want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  say "venv $VENV is up to date"
else
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  sglang_pin="$(grep -E '^sglang==' "$REQS")" || die "$REQS has no sglang== line"
  rest="$(mktemp)"
  trap 'rm -f "$rest"' EXIT
  grep -vE '^sglang==' "$REQS" >"$rest"
  say "installing $sglang_pin --no-deps and the client's imports into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$sglang_pin"
  # pip's resolver lists the SGLang runtime (torch, kernels) as missing: expected, they are not wanted here.
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$rest" 2>&1 \
    | grep -vE '^(sglang [0-9.]+ requires|ERROR: pip.s dependency resolver)' || true
  "$VENV/bin/python" -c 'import aiohttp, datasets, gguf, msgspec, numpy, orjson, PIL, pybase64, requests, tqdm, transformers'
  printf '%s' "$want" >"$STAMP"
fi

"$VENV/bin/python" "$ROOT/bench/sglang_client.py" --help >/dev/null \
  || die "SGLang's benchmark client does not start: run $VENV/bin/python bench/sglang_client.py --help"

if [[ -f "$TOKENIZER_DIR/tokenizer.json" && -f "$TOKENIZER_DIR/tokenizer_config.json" ]]; then
  say "tokenizer $TOKENIZER_DIR is there"
elif docker image inspect "$IMAGE" >/dev/null 2>&1; then
  "$VENV/bin/python" "$ROOT/bench/export_tokenizer.py" --image "$IMAGE" "$TOKENIZER_DIR"
else
  die "image $IMAGE not found: build the lab images first (make images)"
fi
say "ready: $VENV/bin/python bench/sglang_client.py --tokenizer $TOKENIZER_DIR ..."
