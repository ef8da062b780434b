#!/usr/bin/env bash
# Run sparkfleet's GPU-facing code on a real NVIDIA GPU machine (the session's `device` machine:
# Ubuntu 24.04, Python 3.12, PyTorch, transformers; no Docker, no systemd, no network).
#   1. nvidia-smi captures and nvidia_gpu_facts' logic (plugins/module_utils/sparkfleet/gpu.py) -> fixtures
#   2. optional (SERVE=1): a real OpenAI-compatible server on the GPU (transformers serve) with a randomly
#      initialised model shaped like a real one, benchmarked with bin/sparkfleet-bench.
# Writes everything under $OUT (default ./gpu-out).
set -uo pipefail
OUT=${OUT:-./gpu-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1

nvidia-smi -x -q > "$OUT/nvidia-smi.xml" 2>&1
nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,driver_version,compute_cap,pci.bus_id,mig.mode.current \
  --format=csv,noheader,nounits > "$OUT/nvidia-smi.query.csv" 2>&1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 plugins/module_utils/sparkfleet/gpu.py > "$OUT/gpu-facts.json" 2> "$OUT/gpu-facts.err"
echo "gpu.py exit=$?"
cat "$OUT/gpu-facts.json"

[ "${SERVE:-0}" = 1 ] || exit 0

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
MODEL_DIR=/tmp/sparkfleet-qwen3-8b-shape
timeout 240 python3 lab/gpu/make_random_model.py "$MODEL_DIR" 2>&1 | tail -n 5
SERVE_PID=
stop_server() {  # only the server this script started (its own process session)
  [ -n "$SERVE_PID" ] && kill -- "-$SERVE_PID" 2>/dev/null
  SERVE_PID=; sleep 3
}
serve() {  # $@: extra flags
  setsid transformers serve "$MODEL_DIR" --device cuda --port 8000 "$@" > "$OUT/serve.log" 2>&1 < /dev/null &
  SERVE_PID=$!
  for i in $(seq 1 150); do
    curl -sf -o /dev/null http://127.0.0.1:8000/health && { echo "server up after ${i}s ($*)"; return 0; }
    sleep 1
  done
  echo "server not up after 150s ($*)"; tail -n 20 "$OUT/serve.log"; stop_server; return 1
}
serve --continuous-batching || serve || exit 1
# One non-streaming request first, so per-request latency is known even if the benchmark is slow.
{
  echo "== single non-streaming request (max_tokens ${OUTPUT_LEN:-64})"
  curl -s -m 120 -o "$OUT/single.json" -w 'http=%{http_code} seconds=%{time_total}\n' \
    -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/chat/completions \
    -d "{\"model\": \"$MODEL_DIR\", \"max_tokens\": ${OUTPUT_LEN:-64}, \"stream\": false,
         \"messages\": [{\"role\": \"user\", \"content\": \"Say hello in one short sentence.\"}]}"
  head -c 600 "$OUT/single.json"; echo; rm -f "$OUT/single.json"
  echo "== GET /v1/models: $(curl -s -m 30 -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/v1/models)"
} 2>&1 | tee "$OUT/bench.txt"
# The CLI writes --json-out whatever the checks' verdicts (exit 1 on failed checks); only a kill by this
# timeout loses it. /v1/models may fail on some servers: a short readiness budget keeps that from eating the run.
timeout "${BENCH_TIMEOUT:-300}" python3 bin/sparkfleet-bench --base-url http://127.0.0.1:8000 --model "$MODEL_DIR" \
  --host h100-device --service transformers-serve --profile hopper \
  --checks "${CHECKS:-readiness,chat,json_schema,multi_turn,load}" --concurrency "${CONCURRENCY:-1,8,32}" \
  --num-prompts "${NUM_PROMPTS:-6}" --output-len "${OUTPUT_LEN:-64}" --input-len "${INPUT_LEN:-256}" \
  --ready-timeout-s "${READY_TIMEOUT:-20}" --timeout-s "${REQUEST_TIMEOUT:-120}" \
  --multi-turn-conversations 8 --multi-turn-turns 3 --json-out "$OUT/h100-benchmark.json" 2>&1 | tee -a "$OUT/bench.txt"
echo "bench exit=${PIPESTATUS[0]}" | tee -a "$OUT/bench.txt"
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv >> "$OUT/bench.txt"
cat "$MODEL_DIR/sparkfleet-model.json" >> "$OUT/bench.txt" 2>/dev/null
stop_server
tail -n 40 "$OUT/serve.log"
find "$OUT" -maxdepth 1 -type f -empty -delete  # at most 8 files come back from the device machine
