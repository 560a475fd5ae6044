"""The CUDA runtime around the kernels: launch checks and limits, compile errors, the
on-disk cache, ``lightgrad.cuda``, and moving tensors between devices (on a GPU or on the
emulator alike)."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest

import lightgrad as lg
from lightgrad.backends.cuda.runtime import CompileError, CudaError, get_runtime
from lightgrad.backends.cuda.source import expand

pytestmark = pytest.mark.skipif(not lg.cuda.is_available(), reason="no CUDA device")

SOURCE = r"""
extern "C" __global__ void axpy(const float* x, float* y, int n, unsigned char k, double a) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        y[i] = (float)(a * x[i]) + y[i] + k;
}
"""


@pytest.fixture(scope="module")
def axpy():
    return get_runtime().compile(SOURCE, filename="runtime_test.cu").get_function("axpy")


def cuda(a, dtype=None) -> lg.Tensor:
    return lg.tensor(np.asarray(a), dtype=dtype, device="cuda")


def test_a_launch_runs(axpy):
    x, y = cuda(np.arange(5, dtype=np.float32)), cuda(np.ones(5, np.float32))
    axpy(1, 32, [x, y, 5, 2, 0.5])
    assert y.tolist() == [3.0, 3.5, 4.0, 4.5, 5.0]


# --------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("args,error,words", [
    (lambda x, y: [x, y, 3], TypeError, ["takes 5 arguments", "x, y, n, k, a", "got 3"]),
    (lambda x, y: [x.long(), y, 3, 0, 1.0], TypeError, ["parameter x", "int64"]),
    (lambda x, y: [x, y, y, 0, 1.0], TypeError, ["parameter n", "got an array"]),
    (lambda x, y: [x, y, 2.5, 0, 1.0], TypeError, ["parameter n", "non-integer 2.5"]),
    (lambda x, y: [x, y, 3, 256, 1.0], OverflowError, ["parameter k", "256 does not fit"]),
    (lambda x, y: [x, y, 2**31, 0, 1.0], OverflowError, ["parameter n", "does not fit"]),
    (lambda x, y: [x.cpu(), y, 3, 0, 1.0], TypeError, ["parameter x", "on cpu", ".cuda()"]),
    (lambda x, y: [x, y, 3, 0, "1.0"], TypeError, ["parameter a", "str"]),
])
def test_bad_arguments_name_the_kernel_and_parameter(axpy, args, error, words):
    x, y = cuda(np.zeros(3, np.float32)), cuda(np.zeros(3, np.float32))
    with pytest.raises(error) as info:
        axpy(1, 32, args(x, y))
    message = str(info.value)
    assert "kernel axpy" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("grid,block,shared,words", [
    (1, 1025, 0, ["1025 threads", "limit"]),
    (1, (32, 32, 2), 0, ["2048 threads"]),
    (1, (1, 1, 65), 0, ["(1, 1, 65)", "per dimension"]),
    ((1, 65536), 32, 0, ["grid (1, 65536, 1)", "over the limit"]),
    (0, 32, 0, ["grid", "below 1"]),
    (1, (32, 0), 0, ["block", "below 1"]),
    (1, 32, 48 * 1024 + 1, ["49153 bytes of dynamic shared memory", "limit"]),
    ((1, 2, 3, 4), 32, 0, ["grid", "1 to 3 ints"]),
])
def test_launch_limits_are_clear_errors(axpy, grid, block, shared, words):
    x, y = cuda(np.zeros(3, np.float32)), cuda(np.zeros(3, np.float32))
    with pytest.raises(CudaError) as info:
        axpy(grid, block, [x, y, 3, 0, 1.0], shared_mem=shared)
    message = str(info.value)
    assert "axpy" in message
    for word in words:
        assert word in message


def test_an_unknown_kernel_name_lists_the_module_s_kernels():
    module = get_runtime().compile(SOURCE, filename="runtime_test.cu")
    with pytest.raises(AttributeError, match="no kernel named 'axpb'.*axpy"):
        module.get_function("axpb")


# --------------------------------------------------------------------------- compiling

def test_compile_errors_name_the_file_and_line():
    source = textwrap.dedent("""\
        #include "prelude.cuh"
        extern "C" __global__ void bad(float* x) {
            x[0] = no_such_name;
        }
        """)
    with pytest.raises(CompileError) as info:
        get_runtime().compile(expand(source, "bad.cu"), filename="bad.cu")
    message = str(info.value)
    assert "bad.cu:3:" in message or "bad.cu(3)" in message, message
    assert "no_such_name" in message


CACHE_SCRIPT = """
import sys
from lightgrad.backends.cuda.runtime import get_runtime
source = 'extern "C" __global__ void k(float* x) { x[0] = %s; }' % sys.argv[1]
get_runtime().compile(source, filename="cached.cu")
"""


def _compile_in_subprocess(cache, value: str) -> dict:
    env = dict(os.environ, LIGHTGRAD_CUDA_CACHE=str(cache))
    subprocess.run([sys.executable, "-c", CACHE_SCRIPT, value], env=env, check=True,
                   timeout=300)
    return {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}


def test_compiled_kernels_are_cached_on_disk(tmp_path):
    first = _compile_in_subprocess(tmp_path, "1.0f")
    assert len(first) == 1
    assert _compile_in_subprocess(tmp_path, "1.0f") == first  # reused, not rebuilt
    third = _compile_in_subprocess(tmp_path, "2.0f")  # another source: another file
    assert len(third) == 2 and set(first) < set(third)
    assert all(third[name] == mtime for name, mtime in first.items())


# --------------------------------------------------------------------------- lightgrad.cuda

def test_cuda_module_api():
    assert lg.cuda.is_available()
    assert lg.cuda.device_count() >= 1
    assert isinstance(lg.cuda.get_device_name(), str) and lg.cuda.get_device_name()
    lg.cuda.synchronize()
    if lg.cuda.is_emulated():
        assert "emulator" in lg.cuda.get_device_name()


def test_memory_allocated_follows_live_tensors():
    gc.collect()
    before = lg.cuda.memory_allocated()
    lg.cuda.reset_peak_memory_stats()
    t = lg.zeros(1000, device="cuda")
    u = lg.zeros(500, dtype=lg.float64, device="cuda")
    during = lg.cuda.memory_allocated()
    assert during >= before + 4000 + 4000
    assert lg.cuda.max_memory_allocated() >= during
    del t, u
    gc.collect()
    assert lg.cuda.memory_allocated() == before
    assert lg.cuda.max_memory_allocated() >= during  # the peak stays


def test_mixing_devices_is_a_clear_error():
    with pytest.raises(RuntimeError, match="same device.*cpu.*cuda"):
        lg.ones(3) + lg.ones(3, device="cuda")


# --------------------------------------------------------------------------- moving tensors

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
          "uint8", "bool"]


def _values(name: str, shape=(3, 5)) -> np.ndarray:
    rng = np.random.default_rng(0)
    if name == "bool":
        return rng.random(shape) < 0.5
    if name == "bfloat16":
        return rng.standard_normal(shape).astype(ml_dtypes.bfloat16)
    dtype = np.dtype(name)
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and \
        np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


@pytest.mark.parametrize("name", DTYPES)
def test_round_trips_keep_every_dtype(name):
    values = _values(name)
    dtype = getattr(lg, name)
    t = lg.tensor(values, dtype=dtype)
    for moved in (t.to("cuda"), t.cuda(), t.to(device="cuda"), lg.tensor(values, dtype=dtype,
                                                                           device="cuda")):
        assert moved.device.type == "cuda" and moved.dtype is dtype
        back = moved.cpu()
        assert back.device.type == "cpu" and back.dtype is dtype
        assert _same_bits(back.numpy(), t.numpy())
        assert _same_bits(moved.numpy(), t.numpy())  # straight from the device too


@pytest.mark.parametrize("name", ["float32", "float16", "int8", "int64", "bool"])
def test_non_contiguous_views_copy_correctly(name):
    values = _values(name, (4, 5, 6))
    x = lg.tensor(values, dtype=getattr(lg, name), device="cuda")
    cases = [
        (x.permute(2, 0, 1), values.transpose(2, 0, 1)),
        (x[1:, ::2, 1::3], values[1:, ::2, 1::3]),
        (x.permute(1, 2, 0)[::2, 1:], values.transpose(1, 2, 0)[::2, 1:]),
        (x[:, 2:3, :].expand(4, 7, 6), np.broadcast_to(values[:, 2:3, :], (4, 7, 6))),
        (x[0, :, 0][None, :].expand(3, 5), np.broadcast_to(values[0, :, 0], (3, 5))),
        (x.transpose(0, 2), values.swapaxes(0, 2)),
    ]
    for view, expect in cases:
        assert _same_bits(view.cpu().numpy(), np.ascontiguousarray(expect))
        assert _same_bits(view.contiguous().cpu().numpy(), np.ascontiguousarray(expect))
        assert view.contiguous().is_contiguous()


def test_creation_functions_take_device():
    made = {
        "zeros": (lg.zeros(2, 3, device="cuda"), np.zeros((2, 3), np.float32)),
        "ones": (lg.ones(2, 3, dtype=lg.int16, device="cuda"), np.ones((2, 3), np.int16)),
        "full": (lg.full((2, 2), 7.5, device="cuda"), np.full((2, 2), 7.5, np.float32)),
        "arange": (lg.arange(2, 11, 3, device="cuda"), np.arange(2, 11, 3)),
        "eye": (lg.eye(3, device="cuda"), np.eye(3, dtype=np.float32)),
        "linspace": (lg.linspace(0, 1, 5, device="cuda"),
                     np.linspace(0, 1, 5, dtype=np.float32)),
        "tensor": (lg.tensor([[1, 2], [3, 4]], device="cuda"), np.array([[1, 2], [3, 4]])),
    }
    base = lg.ones(2, 2, device="cuda")
    made["zeros_like"] = (lg.zeros_like(base), np.zeros((2, 2), np.float32))
    made["full_like"] = (lg.full_like(base, 3), np.full((2, 2), 3, np.float32))
    made["ones_like cpu"] = (lg.ones_like(base, device="cpu"), np.ones((2, 2), np.float32))
    for name, (t, expect) in made.items():
        want = "cpu" if name.endswith("cpu") else "cuda"
        assert t.device.type == want, name
        np.testing.assert_array_equal(t.cpu().numpy(), expect, err_msg=name)
        assert t.cpu().numpy().dtype == expect.dtype, name
    assert lg.empty(3, 4, device="cuda").device.type == "cuda"
    for t in (lg.rand(50, device="cuda"), lg.randn(50, device="cuda")):
        assert t.device.type == "cuda" and t.dtype is lg.float32 and t.shape == (50,)
    r = lg.rand(200, device="cuda").cpu().numpy()
    assert ((r >= 0) & (r < 1)).all()
    ints = lg.randint(0, 10, (100,), device="cuda")
    assert ints.device.type == "cuda" and set(ints.cpu().numpy().tolist()) <= set(range(10))
