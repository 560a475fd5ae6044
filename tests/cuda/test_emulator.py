"""The CUDA emulator, feature by feature: small kernels written here, launched through the
runtime, checked against NumPy.

The kernel semantics (indices, barriers, shared memory, atomics, warp intrinsics) hold on a
GPU too; the emulator's own checks (NaN-filled shared memory, divergent barriers, bad
masks, hangs, C++ exceptions) are emulator-only. Tests that touch how threads are run are
repeated with ``LIGHTGRAD_EMULATOR_THREADS=dedicated`` (one OS thread per GPU thread).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.backends.cuda.runtime import CudaError, get_runtime

pytestmark = pytest.mark.skipif(not lg.cuda.is_available(), reason="no CUDA device")
emulator_only = pytest.mark.skipif(not (lg.cuda.is_available() and lg.cuda.is_emulated()),
                                   reason="a check of the CUDA emulator")

FULL = "0xffffffffu"

SOURCE = r"""
// one record per thread: its indices and the launch dimensions
extern "C" __global__ void indices(unsigned* out) {
    unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    unsigned* r = out + 12 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
    r[0] = threadIdx.x; r[1] = threadIdx.y; r[2] = threadIdx.z;
    r[3] = blockIdx.x;  r[4] = blockIdx.y;  r[5] = blockIdx.z;
    r[6] = blockDim.x;  r[7] = blockDim.y;  r[8] = blockDim.z;
    r[9] = gridDim.x;   r[10] = gridDim.y;  r[11] = gridDim.z;
}

// each block reverses its slice of x through shared memory
extern "C" __global__ void reverse_blocks(const float* x, float* y) {
    __shared__ float tile[256];
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    tile[t] = x[i];
    __syncthreads();
    y[i] = tile[blockDim.x - 1 - t];
}

// the same through dynamic shared memory, twice per block (a barrier between the reads of
// one round and the writes of the next)
extern "C" __global__ void reverse_dynamic(const float* x, float* y, int rounds) {
    extern __shared__ float buf[];
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    float v = x[i];
    for (int r = 0; r < rounds; ++r) {
        buf[t] = v;
        __syncthreads();
        v = buf[blockDim.x - 1 - t];
        __syncthreads();
    }
    y[i] = v;
}

// static and dynamic shared memory together: the dynamic part does not overlap the static
extern "C" __global__ void static_and_dynamic(float* out) {
    __shared__ float fixed[32];
    extern __shared__ float dyn[];
    int t = threadIdx.x;
    fixed[t] = 1.0f + t;
    dyn[t] = 100.0f + t;
    __syncthreads();
    out[t] = fixed[31 - t] + dyn[31 - t];
}

// what shared memory holds before anyone writes it (block 0 writes, block 1 only reads)
extern "C" __global__ void unwritten_shared(float* f, int* i) {
    __shared__ float sf[64];
    __shared__ int si[64];
    extern __shared__ float dyn[];
    int t = threadIdx.x;
    if (blockIdx.x == 0) { sf[t] = 1.0f; si[t] = 1; dyn[t] = 1.0f; }
    __syncthreads();
    if (blockIdx.x == 1) { f[t] = sf[t]; f[64 + t] = dyn[t]; i[t] = si[t]; }
}

extern "C" __global__ void atomics(float* f, int* i, unsigned long long* u, double* d,
                                   int* hi, int* lo) {
    atomicAdd(f, 1.0f);
    atomicAdd(i, 1);
    atomicAdd(u, 2ull);
    atomicAdd(d, 0.5);
    int id = blockIdx.x * blockDim.x + threadIdx.x;
    atomicMax(hi, id);
    atomicMin(lo, id);
}

// a shuffle of v = 1000 * block + thread; op 0 down, 1 up, 2 xor, 3 idx
extern "C" __global__ void shuffle(int op, int arg, int width, float* out) {
    float v = 1000.0f * blockIdx.x + threadIdx.x, r;
    switch (op) {
        case 0: r = __shfl_down_sync(0xffffffffu, v, arg, width); break;
        case 1: r = __shfl_up_sync(0xffffffffu, v, arg, width); break;
        case 2: r = __shfl_xor_sync(0xffffffffu, v, arg, width); break;
        default: r = __shfl_sync(0xffffffffu, v, arg, width); break;
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = r;
}

// the usual warp reduction, then (on the first half-warp only, mask 0xffff) a second one
extern "C" __global__ void warp_sums(const double* x, double* full, double* half) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x & 31;
    double v = x[t];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    full[t] = v;
    if (lane < 16) {
        double h = x[t];
        for (int o = 8; o > 0; o >>= 1) h += __shfl_xor_sync(0x0000ffffu, h, o, 16);
        __syncwarp(0x0000ffffu);
        half[t] = h;
    }
}

// predicate: thread % k == 0 (k = 0: never)
extern "C" __global__ void votes(int k, unsigned* ballot, int* any, int* all,
                                 unsigned* low_ballot) {
    int t = threadIdx.x, pred = k != 0 && t % k == 0;
    ballot[t] = __ballot_sync(0xffffffffu, pred);
    any[t] = __any_sync(0xffffffffu, pred);
    all[t] = __all_sync(0xffffffffu, pred);
    if ((t & 31) < 8) low_ballot[t] = __ballot_sync(0x000000ffu, pred);
}

// the first `early` threads return before the barrier the others wait at
extern "C" __global__ void divergent_sync(int early, float* out) {
    if ((int)threadIdx.x < early) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// a full-warp shuffle in a block of fewer than 32 threads
extern "C" __global__ void partial_warp(float* out) {
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, (float)threadIdx.x, 1);
}

// lanes 0-15 read lane `src` with mask 0xffff
extern "C" __global__ void lane_outside_mask(int src, float* out) {
    if (threadIdx.x < 16)
        out[threadIdx.x] = __shfl_sync(0x0000ffffu, (float)threadIdx.x, src);
}

// lanes disagree: lane 0 meets with mask 0x3, lanes 1 and 2 with 0x7
extern "C" __global__ void mask_disagreement(float* out) {
    if (threadIdx.x < 3) __syncwarp(threadIdx.x == 0 ? 0x3u : 0x7u);
    out[threadIdx.x] = 1.0f;
}

// deadlock: thread 0 waits for lane 1 in a shuffle, lane 1 waits for thread 0 at a barrier
extern "C" __global__ void deadlock(float* out) {
    float v = threadIdx.x;
    if (threadIdx.x == 0) v = __shfl_sync(0x3u, v, 1);
    else __syncthreads();
    out[threadIdx.x] = v;
}
"""

# Things only the host compiler accepts.
HOST_SOURCE = r"""
extern "C" __global__ void throws(float* out) {
    if (threadIdx.x == 3) throw std::runtime_error("boom from the kernel");
    out[threadIdx.x] = 1.0f;
}

// thread 0 spins on a flag in its own code while the others wait at the barrier
extern "C" __global__ void spins(int* flag) {
    if (threadIdx.x == 0)
        while (atomicAdd(flag, 0) == 0) {}
    __syncthreads();
}
"""


@pytest.fixture(scope="module")
def rt():
    return get_runtime()


@pytest.fixture(scope="module")
def mod(rt):
    return rt.compile(SOURCE, filename="test_emulator.cu")


@pytest.fixture(params=["claim", "dedicated"])
def threads(request, monkeypatch):
    """Both ways the emulator runs a block's threads (read at each launch)."""
    if request.param == "dedicated":
        monkeypatch.setenv("LIGHTGRAD_EMULATOR_THREADS", "dedicated")
    else:
        monkeypatch.delenv("LIGHTGRAD_EMULATOR_THREADS", raising=False)
    return request.param


def dev(a) -> lg.Tensor:
    return lg.tensor(np.asarray(a), device="cuda")


def host(t: lg.Tensor) -> np.ndarray:
    return t.numpy()


def addr(t: lg.Tensor) -> int:
    """The device address of a tensor, for parameters of types lightgrad has no dtype for
    (unsigned, unsigned long long): a launch takes an address for any pointer."""
    return t._data.ptr


def test_indices_in_3d(mod):
    grid, block = (2, 3, 2), (4, 2, 3)
    n = int(np.prod(grid) * np.prod(block))
    out = lg.zeros(n * 12, dtype=lg.int32, device="cuda")
    mod.get_function("indices")(grid, block, [addr(out)])
    got = host(out).astype(np.int64).reshape(n, 12)
    expect = []
    for bz in range(grid[2]):
        for by in range(grid[1]):
            for bx in range(grid[0]):
                for tz in range(block[2]):
                    for ty in range(block[1]):
                        for tx in range(block[0]):
                            expect.append([tx, ty, tz, bx, by, bz, *block, *grid])
    np.testing.assert_array_equal(got, np.array(expect))


def test_syncthreads_orders_shared_memory(mod, threads):
    x = np.arange(4 * 256, dtype=np.float32)
    y = lg.zeros(x.size, device="cuda")
    mod.get_function("reverse_blocks")(4, 256, [dev(x), y])
    np.testing.assert_array_equal(host(y), x.reshape(4, 256)[:, ::-1].ravel())


def test_dynamic_shared_memory(mod, threads):
    x = np.arange(3 * 96, dtype=np.float32)
    y = lg.zeros(x.size, device="cuda")
    kernel = mod.get_function("reverse_dynamic")
    for rounds in (1, 2, 3):
        kernel(3, 96, [dev(x), y, rounds], shared_mem=96 * 4)
        blocks = x.reshape(3, 96)
        expect = blocks[:, ::-1] if rounds % 2 else blocks
        np.testing.assert_array_equal(host(y), expect.ravel())


def test_static_and_dynamic_shared_memory_are_separate(mod):
    out = lg.zeros(32, device="cuda")
    mod.get_function("static_and_dynamic")(1, 32, [out], shared_mem=32 * 4)
    t = np.arange(32)
    np.testing.assert_array_equal(host(out), (1.0 + (31 - t)) + (100.0 + (31 - t)))


@emulator_only
def test_unwritten_shared_memory_reads_nan(mod):
    f = lg.zeros(128, device="cuda")
    i = lg.zeros(64, dtype=lg.int32, device="cuda")
    # block 0 writes every shared variable; block 1 still finds the NaN pattern
    mod.get_function("unwritten_shared")(2, 64, [f, i], shared_mem=64 * 4)
    assert np.isnan(host(f)).all()
    assert (host(i) == -1).all()


def test_atomic_add_under_contention(mod, threads):
    f = lg.zeros(1, device="cuda")
    i = lg.zeros(1, dtype=lg.int32, device="cuda")
    u = lg.zeros(1, dtype=lg.int64, device="cuda")  # unsigned long long: 8 bytes
    d = lg.zeros(1, dtype=lg.float64, device="cuda")
    hi = lg.full((1,), -1, dtype=lg.int32, device="cuda")
    lo = lg.full((1,), 1 << 30, dtype=lg.int32, device="cuda")
    grid, block = 8, 256
    mod.get_function("atomics")(grid, block, [f, i, addr(u), d, hi, lo])
    n = grid * block
    assert host(f)[0] == n
    assert host(i)[0] == n
    assert host(u).view(np.uint64)[0] == 2 * n
    assert host(d)[0] == 0.5 * n
    assert host(hi)[0] == n - 1 and host(lo)[0] == 0


def _shuffle_expect(op: str, arg: int, width: int, nthreads: int, nblocks: int):
    out = []
    for b in range(nblocks):
        for t in range(nthreads):
            lane = t % 32
            base = lane - lane % width
            if op == "down":
                src = lane + arg if lane % width + arg < width else lane
            elif op == "up":
                src = lane - arg if lane % width - arg >= 0 else lane
            elif op == "xor":
                src = lane ^ arg if (lane ^ arg) < base + width else lane
            else:
                src = base + arg % width
            out.append(1000.0 * b + (t - lane) + src)
    return np.array(out, dtype=np.float32)


@pytest.mark.parametrize("op,arg", [("down", 1), ("down", 5), ("up", 1), ("up", 3),
                                    ("xor", 1), ("xor", 6), ("idx", 0), ("idx", 13)])
@pytest.mark.parametrize("width", [32, 16, 8])
def test_shuffles(mod, op, arg, width):
    nthreads, nblocks = 64, 2
    out = lg.zeros(nthreads * nblocks, device="cuda")
    code = ["down", "up", "xor", "idx"].index(op)
    mod.get_function("shuffle")(nblocks, nthreads, [code, arg, width, out])
    np.testing.assert_array_equal(host(out), _shuffle_expect(op, arg, width, nthreads,
                                                             nblocks))


def test_warp_reductions_full_and_partial_mask(mod, threads):
    x = np.random.default_rng(0).integers(-50, 50, size=3 * 64).astype(np.float64)
    full = lg.zeros(x.size, dtype=lg.float64, device="cuda")
    half = lg.zeros(x.size, dtype=lg.float64, device="cuda")
    mod.get_function("warp_sums")(3, 64, [dev(x), full, half])
    warps = x.reshape(-1, 32)
    # lane 0 of each warp holds the warp's sum after the shfl_down reduction
    np.testing.assert_array_equal(host(full).reshape(-1, 32)[:, 0], warps.sum(1))
    # every lane of the first half-warp holds the half-warp's sum after the butterfly
    got_half = host(half).reshape(-1, 32)[:, :16]
    np.testing.assert_array_equal(got_half, np.repeat(warps[:, :16].sum(1, keepdims=True),
                                                      16, axis=1))


@pytest.mark.parametrize("k", [0, 1, 3, 100])
def test_ballot_any_all(mod, k):
    n = 64
    ballot = lg.zeros(n, dtype=lg.int32, device="cuda")  # unsigned: 4 bytes
    any_ = lg.zeros(n, dtype=lg.int32, device="cuda")
    all_ = lg.zeros(n, dtype=lg.int32, device="cuda")
    low = lg.zeros(n, dtype=lg.int32, device="cuda")
    mod.get_function("votes")(1, n, [k, addr(ballot), any_, all_, addr(low)])
    t = np.arange(n)
    pred = (t % k == 0) if k else np.zeros(n, bool)
    for w in range(2):
        lanes = pred[32 * w:32 * w + 32]
        bits = int(sum(1 << i for i in range(32) if lanes[i]))
        assert (host(ballot)[32 * w:32 * w + 32].view(np.uint32) == bits).all()
        assert (host(any_)[32 * w:32 * w + 32] == int(lanes.any())).all()
        assert (host(all_)[32 * w:32 * w + 32] == int(lanes.all())).all()
        assert (host(low)[32 * w:32 * w + 8].view(np.uint32) == (bits & 0xFF)).all()


def test_tensor_arguments_are_device_pointers(mod):
    x = lg.arange(256, dtype=lg.float32, device="cuda")
    y = lg.zeros(256, device="cuda")
    mod.get_function("reverse_blocks")(1, 256, [x, y])
    assert y.tolist() == list(range(255, -1, -1))


# --------------------------------------------------------------------------- errors


@emulator_only
@pytest.mark.parametrize("early", [16, 255])
def test_divergent_syncthreads_is_an_error(mod, threads, early):
    out = lg.zeros(256, device="cuda")
    with pytest.raises(CudaError, match="divergent __syncthreads") as info:
        mod.get_function("divergent_sync")(1, 256, [early, out])
    assert "divergent_sync" in str(info.value)
    # the runtime is fine afterwards
    mod.get_function("divergent_sync")(1, 256, [0, out])
    assert host(out).tolist() == [1.0] * 256


@emulator_only
def test_partial_warp_with_full_mask_is_an_error(mod):
    with pytest.raises(CudaError, match="partial warp"):
        mod.get_function("partial_warp")(1, 20, [lg.zeros(20, device="cuda")])


@emulator_only
def test_reading_a_lane_outside_the_mask_is_an_error(mod):
    out = lg.zeros(32, device="cuda")
    with pytest.raises(CudaError, match="lane 20, which is not in mask 0x0000ffff"):
        mod.get_function("lane_outside_mask")(1, 32, [20, out])
    mod.get_function("lane_outside_mask")(1, 32, [5, out])  # inside the mask: fine
    assert host(out)[:16].tolist() == [5.0] * 16


@emulator_only
def test_lanes_disagreeing_on_the_mask_is_an_error(mod):
    with pytest.raises(CudaError, match="disagree on the mask"):
        mod.get_function("mask_disagreement")(1, 32, [lg.zeros(32, device="cuda")])


@emulator_only
def test_a_kernel_waiting_forever_is_reported_hung(mod, monkeypatch):
    monkeypatch.setenv("LIGHTGRAD_EMULATOR_TIMEOUT", "1")
    start = time.monotonic()
    with pytest.raises(CudaError, match="hung"):
        mod.get_function("deadlock")(1, 2, [lg.zeros(2, device="cuda")])
    assert time.monotonic() - start < 20


@emulator_only
def test_threads_stuck_in_kernel_code_are_abandoned(rt, monkeypatch):
    """A thread spinning in the kernel's own code can't be stopped: once the others are
    reported hung, the launch gives up on it after a grace period, and later launches run
    on fresh threads."""
    monkeypatch.setenv("LIGHTGRAD_EMULATOR_TIMEOUT", "1")
    module = rt.compile(HOST_SOURCE, filename="host_only.cu")
    flag = lg.zeros(1, dtype=lg.int32, device="cuda")
    with pytest.raises(CudaError, match="hung.*abandoned"):
        module.get_function("spins")(1, 64, [flag])
    rt.htod(addr(flag), np.ones(1, np.int32))  # let the stuck thread finish
    time.sleep(0.2)
    module.get_function("spins")(1, 64, [flag])  # a fresh pool


@emulator_only
def test_cpp_exceptions_are_reported_not_fatal(rt):
    module = rt.compile(HOST_SOURCE, filename="host_only.cu")
    out = lg.zeros(32, device="cuda")
    with pytest.raises(CudaError, match="C\\+\\+ exception in kernel: boom from the kernel"):
        module.get_function("throws")(1, 32, [out])
    with pytest.raises(CudaError, match="boom"):  # again: the process and runtime survive
        module.get_function("throws")(2, 32, [out])


# --------------------------------------------------------------------------- sanitizers
# The host compiler's sanitizers work on emulated kernels when their runtime is preloaded
# into the Python binary (sys.executable: pyenv's and conda's `python` are shell scripts,
# and a shell under the preloaded runtime crashes).

SANITIZED_SCRIPT = r'''
import sys
import numpy as np
from lightgrad.backends.cuda.array import DeviceArray
from lightgrad.backends.cuda.runtime import get_runtime

KERNELS = {
    # reverse through shared memory, with or without the barrier between write and read
    "race": r"""
        extern "C" __global__ void kernel(const float* x, float* y, int n) {
            __shared__ float tile[64];
            tile[threadIdx.x] = x[threadIdx.x];
            BARRIER
            y[threadIdx.x] = tile[63 - threadIdx.x];
        }""",
    # one thread per element, the guard one too loose or right
    "oob": r"""
        extern "C" __global__ void kernel(const float* x, float* y, int n) {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i GUARD n) y[i] = 2 * x[i];
        }""",
}
which, correct = sys.argv[1], sys.argv[2] == "correct"
source = KERNELS[which].replace("BARRIER", "__syncthreads();" if correct else "")
source = source.replace("GUARD", "<" if correct else "<=")
rt = get_runtime()
kernel = rt.compile(source, filename=which + ".cu").get_function("kernel")
n = 64 if which == "race" else 40
x, y = DeviceArray.empty(rt, (n,), np.float32), DeviceArray.empty(rt, (n,), np.float32)
rt.htod(x.ptr, np.arange(n, dtype=np.float32))
kernel(1, 64, [x, y, n])
print("finished")
'''


def _sanitizer_runtime(name: str) -> str | None:
    cxx = os.environ.get("LIGHTGRAD_EMULATOR_CXX", "g++")
    if not shutil.which(cxx) or not sys.platform.startswith("linux"):
        return None
    path = subprocess.run([cxx, f"-print-file-name=lib{name}.so"], capture_output=True,
                          text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


def _run_sanitized(tmp_path, sanitizer: str, which: str, correct: bool):
    runtime = _sanitizer_runtime({"thread": "tsan", "address": "asan"}[sanitizer])
    if runtime is None:
        pytest.skip(f"no {sanitizer} sanitizer runtime for the host compiler")
    env = dict(os.environ, LD_PRELOAD=runtime, LIGHTGRAD_CUDA="emulate",
               LIGHTGRAD_EMULATOR_FLAGS=f"-fsanitize={sanitizer} -g",
               LIGHTGRAD_CUDA_CACHE=str(tmp_path), ASAN_OPTIONS="detect_leaks=0")
    env.pop("LIGHTGRAD_EMULATOR_THREADS", None)  # (the sanitizer builds' default)
    return subprocess.run([sys.executable, "-c", SANITIZED_SCRIPT, which,
                           "correct" if correct else "buggy"], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
@emulator_only
def test_thread_sanitizer_finds_a_missing_syncthreads(tmp_path):
    buggy = _run_sanitized(tmp_path, "thread", "race", correct=False)
    assert "WARNING: ThreadSanitizer: data race" in buggy.stderr, buggy.stderr[-3000:]
    assert "race.cu:" in buggy.stderr and "tile" in buggy.stderr  # names the kernel's lines
    assert buggy.returncode != 0
    fine = _run_sanitized(tmp_path, "thread", "race", correct=True)
    assert "ThreadSanitizer" not in fine.stderr, fine.stderr[-3000:]
    assert fine.returncode == 0 and "finished" in fine.stdout


@pytest.mark.slow
@emulator_only
def test_address_sanitizer_finds_an_out_of_bounds_write(tmp_path):
    buggy = _run_sanitized(tmp_path, "address", "oob", correct=False)
    assert "AddressSanitizer: heap-buffer-overflow" in buggy.stderr, buggy.stderr[-3000:]
    assert "oob.cu:" in buggy.stderr  # one element past the end of a 40-float buffer
    assert buggy.returncode != 0
    fine = _run_sanitized(tmp_path, "address", "oob", correct=True)
    assert "AddressSanitizer" not in fine.stderr, fine.stderr[-3000:]
    assert fine.returncode == 0 and "finished" in fine.stdout
