#!/usr/bin/env bash
# The hardware suite on a real NVIDIA GPU machine, as one command (the `device` machine: Ubuntu 24.04, Python
# 3.12 with PyTorch and transformers; no Docker, no systemd, NO network):
#   1. installs lab/gpu/wheelhouse/ (lab/gpu/fetch_wheels.sh fills it where PyPI is reachable) and nothing else;
#   2. nvidia-smi captures;
#   3. `make test-gpu`'s tests: detection against the real nvidia-smi, `transformers serve` on the GPU with a
#      random Qwen3-8B-shaped bf16 model whose tokens are visible words, the benchmark (readiness, chat,
#      JSON schema, multi-turn, load sweep to concurrency 64), the fleet report, then Ansible's preflight and
#      verify stages with a local connection;
#   4. packs everything into $OUT/gpu-results.tar.gz (at most 8 files come back from the device machine).
# Writes under $OUT (default ./gpu-out). Settings: tests/gpu/conftest.py's SPARKFLEET_GPU_* variables.
set -uo pipefail
OUT=${OUT:-./gpu-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1 LC_ALL=C.UTF-8 LANG=C.UTF-8
PY=${PYTHON:-python3}
RES=$(mktemp -d /tmp/sparkfleet-gpu.XXXX)
pack() {
  cp -f "$RES"/*.json "$RES"/*.txt "$OUT"/ 2>/dev/null
  tar -czf "$OUT/gpu-results.tar.gz" -C "$RES" . 2>/dev/null
  ls -la "$OUT"
}
trap pack EXIT

echo "== wheels (lab/gpu/requirements-gpu.txt from lab/gpu/wheelhouse, no index)"
if [ -d lab/gpu/wheelhouse ]; then
  # Into the image's own environment: pip resolves against what the image has and stops naming anything missing.
  $PY -m pip install -q --no-index --find-links lab/gpu/wheelhouse --no-compile -r lab/gpu/requirements-gpu.txt \
    2>&1 | tail -n 20 | tee "$RES/pip.txt"
else
  echo "no lab/gpu/wheelhouse: run lab/gpu/fetch_wheels.sh on a machine with PyPI and carry it" | tee "$RES/pip.txt"
fi
$PY - <<'PY' 2>&1 | tee -a "$RES/pip.txt"
import importlib.metadata as md, pathlib
names = [l.split("==")[0] for l in pathlib.Path("lab/gpu/requirements-gpu.txt").read_text().splitlines() if "==" in l]
names += [l.strip() for l in pathlib.Path("lab/gpu/device-image.txt").read_text().splitlines() if l.strip() and l[0] != "#"]
for n in names:
    try:
        print(f"{n}=={md.version(n)}")
    except md.PackageNotFoundError:
        print(f"{n}: NOT INSTALLED")
PY

echo "== nvidia-smi"
nvidia-smi -x -q > "$RES/nvidia-smi.xml" 2>&1
nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,driver_version,compute_cap,pci.bus_id,mig.mode.current \
  --format=csv,noheader,nounits > "$RES/nvidia-smi.query.csv" 2>&1
nvidia-smi > "$RES/nvidia-smi.txt" 2>&1
cat "$RES/nvidia-smi.query.csv"
nproc; uname -r; $PY --version

echo "== tests/gpu (make test-gpu)"
export SPARKFLEET_GPU_OUT="$RES" HF_HOME=${HF_HOME:-/tmp/sparkfleet-hf}
timeout "${SUITE_TIMEOUT:-540}" $PY -m pytest -p no:cacheprovider -rA -v -s \
  tests/gpu/test_wheels.py tests/gpu/test_detection.py tests/gpu/test_ansible_stages.py tests/gpu/test_benchmark.py \
  > "$RES/pytest.txt" 2>&1
echo "pytest exit=$?" | tee -a "$RES/pytest.txt"
grep -E "^(PASSED|FAILED|SKIPPED|ERROR)|passed|failed" "$RES/pytest.txt" | tail -n 20
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv >> "$RES/nvidia-smi.txt" 2>&1
cat "$RES/benchmark.txt" 2>/dev/null
