#!/usr/bin/env bash
# Everything lightgrad checks on a real GPU, in one go, in under 8 minutes:
#
#   bash benchmarks/gpu/run_all.sh          (from the repository root, or anywhere)
#
# 1. install lightgrad in editable mode (offline: no dependencies, no build isolation; when
#    that fails, e.g. without setuptools, PYTHONPATH still finds lightgrad in the checkout),
# 2. compile every kernel file with NVRTC (in parallel, into the on-disk cache), then the
#    GPU-only tests: python -m pytest -q -m gpu -x (in one process: no pytest-xdist there),
# 3. the benchmarks: bandwidth (softmax, layer_norm, AdamW vs a device copy), GEMM (ours vs
#    cuBLAS), fused attention vs PyTorch SDPA, GPT-2 small training step vs PyTorch eager,
# 4. the NCCL check (collectives, DDP, all-reduce bandwidth) when >= 2 GPUs are visible.
#
# Each step runs under `timeout` within a budget; a step that fails or times out is
# reported and the next one runs. Output goes to stdout and, when $OUT is set, also to
# $OUT/run_all.log. Expects Python with CuPy, cuda-bindings, NumPy, PyTorch and pytest.
set -u -o pipefail

TOTAL=470   # seconds for everything (8 minutes, less a margin)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python}"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
unset LIGHTGRAD_CUDA   # the real GPU, never the emulator

declare -a SUMMARY=()

# Compile every kernel family with NVRTC in parallel (one process each) into the on-disk
# cache, so that no later step spends its time limit on first-use compiles. The parent does
# not import lightgrad: the children are forked before anything touches CUDA.
read -r -d '' COMPILE_ALL <<'PY'
import multiprocessing, os, sys, time
from pathlib import Path

def build(family):
    start = time.perf_counter()
    try:
        import lightgrad as lg
        lg.device("cuda").backend.module(family)
        return family, time.perf_counter() - start, "ok"
    except Exception as err:
        return family, time.perf_counter() - start, f"{type(err).__name__}: {err}"[:300]

families = sorted(p.stem for p in Path("lightgrad/backends/cuda/kernels").glob("*.cu"))
with multiprocessing.get_context("fork").Pool(min(len(families), os.cpu_count() or 1)) as pool:
    results = pool.map(build, families)
for family, seconds, status in results:
    print(f"  {family:<12} {seconds:6.1f}s  {status}")
sys.exit(any(status != "ok" for _, _, status in results))
PY

# step NAME BUDGET_SECONDS COMMAND...: run COMMAND under timeout, within what is left
step() {
    local name="$1" budget="$2"
    shift 2
    local left=$((TOTAL - SECONDS))
    if ((left < 15)); then
        echo "=== $name: skipped, out of time"
        SUMMARY+=("$name: skipped (out of time)")
        return
    fi
    ((budget > left)) && budget=$left
    echo
    echo "=== $name (limit ${budget}s): $*"
    local start=$SECONDS rc
    timeout --kill-after=10 "$budget" "$@"
    rc=$?
    local took=$((SECONDS - start)) verdict="ok"
    if ((rc == 124 || rc == 137)); then
        verdict="TIMED OUT after ${budget}s"
    elif ((rc != 0)); then
        verdict="FAILED (exit $rc)"
    fi
    echo "=== $name: $verdict in ${took}s"
    SUMMARY+=("$name: $verdict in ${took}s")
}

main() {
    cd "$ROOT" || exit 1
    echo "lightgrad GPU run, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
        --format=csv,noheader
    "$PY" - <<'EOF'
import platform
for name in ("numpy", "cupy", "torch", "cuda.bindings", "pytest"):
    try:
        module = __import__(name, fromlist=["_"])
        print(f"{name} {getattr(module, '__version__', '?')}", end="; ")
    except Exception as err:  # noqa: BLE001
        print(f"{name} MISSING ({type(err).__name__})", end="; ")
print(f"python {platform.python_version()}")
EOF

    if [[ -z "${SKIP_INSTALL:-}" ]]; then  # SKIP_INSTALL=1: use the installed lightgrad
        step "install" 60 "$PY" -m pip install --no-index --no-deps --no-build-isolation -q -e .
    fi
    step "lightgrad info" 30 "$PY" -m lightgrad.cli info
    step "compile kernels" 120 "$PY" -c "$COMPILE_ALL"
    step "pytest -m gpu" 100 "$PY" -m pytest -o addopts="-p no:cacheprovider" -q -m gpu -x -rs
    step "bandwidth.py" 50 "$PY" benchmarks/gpu/bandwidth.py
    if [[ -f benchmarks/gpu/gemm.py ]]; then
        step "gemm.py" 80 "$PY" benchmarks/gpu/gemm.py
    else
        echo "=== gemm.py: not found, skipped"
        SUMMARY+=("gemm.py: not found")
    fi
    step "attention.py" 50 "$PY" benchmarks/gpu/attention.py
    step "nccl_check.py" 60 "$PY" benchmarks/gpu/nccl_check.py   # exits at once below 2 GPUs
    step "gpt2_step.py" 150 "$PY" benchmarks/gpu/gpt2_step.py

    echo
    echo "=== summary (${SECONDS}s in all)"
    printf '  %s\n' "${SUMMARY[@]}"
}

if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    main "$@" 2>&1 | tee "$OUT/run_all.log"
    exit "${PIPESTATUS[0]}"
fi
main "$@" 2>&1
