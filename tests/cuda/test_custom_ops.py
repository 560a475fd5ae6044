"""Your own CUDA op (``lg.cuda.compile`` / ``RawKernel``) and the examples in
``examples/cuda/``: launch checks and their errors, interop with NumPy/PyTorch/CuPy arrays,
and each example's forward and gradients against lightgrad's built-in op and PyTorch (CPU
PyTorch is the oracle: the cuda tensors' values are copied to the host).

Runs on the emulator at small shapes (the whole file well under a minute, most of it the
first compile of each source) and on a GPU; ``-m gpu`` adds large shapes, PyTorch CUDA and
CuPy interop and the timing against cuBLAS.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lightgrad as lg
import lightgrad.nn.functional as F

pytestmark = pytest.mark.skipif(not lg.cuda.is_available(), reason="no cuda device")
REAL_GPU = lg.cuda.is_available() and not lg.cuda.is_emulated()
gpu_only = pytest.mark.skipif(not REAL_GPU, reason="needs a real GPU (pytest -m gpu)")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "cuda"

torch = pytest.importorskip("torch")


def example(name: str):
    """Import ``examples/cuda/<name>.py`` (once)."""
    module = sys.modules.get(f"lg_example_{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"lg_example_{name}",
                                                      EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def host(t) -> np.ndarray:
    """A tensor's values on the host (lightgrad, torch or NumPy)."""
    if isinstance(t, np.ndarray):
        return t
    return t.detach().cpu().numpy()


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def close(ours, ref, rtol: float = 1e-5, atol: float = 1e-5, what: str = "") -> None:
    np.testing.assert_allclose(host(ours), host(ref), rtol=rtol, atol=atol, err_msg=what)


# ----------------------------------------------------------------------------- the API
# One source for all the launch checks: each compile costs the emulator a few seconds.
API_SOURCE = r"""
#include "prelude.cuh"
extern "C" __global__ void axpy(i64 n, float a, const float* x, float* y) {
    LG_GRID_STRIDE(i, n) y[i] = a * x[i] + y[i];
}
extern "C" __global__ void count(const unsigned char* flags, int n, int* total) {
    LG_GRID_STRIDE(i, n) if (flags[i]) atomicAdd(total, 1);
}
extern "C" __global__ void hello(int tag) {
    if (threadIdx.x == 0 && blockIdx.x == 0) printf("hello from the kernel: %d\n", tag);
}
"""


@pytest.fixture(scope="module")
def api():
    return lg.cuda.compile(API_SOURCE, name="api.cu")


def test_compile_and_launch(api):
    assert api.names == ["axpy", "count", "hello"]
    axpy = api.get_function("axpy")
    assert repr(axpy) == "<RawKernel axpy(i64 n, float a, const float* x, float* y)>"
    x, y = lg.arange(70.0, device="cuda"), lg.ones(70, device="cuda")
    axpy(2, 32, (70, 2.0, x, y))           # ints for grid and block; a list works too
    np.testing.assert_array_equal(host(y), 2 * np.arange(70.0) + 1)
    axpy((1, 1), [64], [np.int64(70), np.float32(-1.0), x, y])
    np.testing.assert_array_equal(host(y), np.arange(70.0) + 1)


def test_raw_kernel_and_plain_cuda():
    """Plain CUDA (no prelude), CuPy's RawKernel spelling, an int8 pointer, a bool."""
    kernel = lg.cuda.RawKernel(r"""
extern "C" __global__ void threshold(const float* x, bool* out, float limit, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = x[i] > limit;
}""", "threshold")
    x = lg.tensor([0.5, 2.0, -1.0, 3.0], device="cuda")
    out = lg.zeros(4, dtype=lg.bool, device="cuda")
    kernel(1, 32, (x, out, 1.0, 4))
    assert host(out).tolist() == [False, True, False, True]


def test_compile_file(api, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative name: errors cite it as given
    Path("api.cu").write_text(API_SOURCE)
    module = lg.cuda.compile_file("api.cu")
    assert module.filename == "api.cu" and module.names == api.names
    total = lg.zeros(1, dtype=lg.int32, device="cuda")
    flags = lg.tensor([1, 0, 1, 1, 0], dtype=lg.uint8, device="cuda")
    module.get_function("count")(1, 32, (flags, 5, total))
    assert total.item() == 3
    with pytest.raises(FileNotFoundError, match="nope.cu"):
        lg.cuda.compile_file("nope.cu")


def test_kernels_inside_autograd_function(api):
    """The pattern of every example, in a few lines: y = 3 x + y0 with its backward."""
    axpy = api.get_function("axpy")

    class ThreeXPlus(lg.autograd.Function):
        @staticmethod
        def forward(ctx, x, y0):
            out = y0.contiguous().clone()
            axpy(1, 64, (x.numel(), 3.0, x.contiguous(), out))
            return out

        @staticmethod
        def backward(ctx, grad):
            return grad * 3, grad

    x = lg.tensor(randn(10), device="cuda", requires_grad=True)
    y0 = lg.tensor(randn(10, seed=1), device="cuda", requires_grad=True)
    (ThreeXPlus.apply(x, y0) ** 2).sum().backward()
    out = 3 * host(x) + host(y0)
    close(x.grad, 6 * out)
    close(y0.grad, 2 * out)


@pytest.mark.parametrize("args, message", [
    (lambda x, y: (4, 2.0, x), r"axpy: takes 4 arguments \(n, a, x, y\), got 3"),
    (lambda x, y: (4, 2.0, x.double(), y), r"parameter x \(float\*\).*float64.*float32"),
    (lambda x, y: (4, 2.0, x.cpu(), y), r"parameter x \(float\*\) got a tensor on cpu"),
    (lambda x, y: (4, 2.0, lg.ones(2, 2, device="cuda").T, y),
     r"parameter x \(float\*\) got a non-contiguous tensor.*contiguous\(\)"),
    (lambda x, y: (4, 2.0, np.ones((4, 2), np.float32)[:, 0], y),
     r"parameter x \(float\*\) got a non-contiguous ndarray"),
    (lambda x, y: (4.5, 2.0, x, y), r"parameter n is a i64, got the non-integer 4.5"),
    (lambda x, y: (2**63, 2.0, x, y), r"parameter n is a i64; .* does not fit"),
    (lambda x, y: (4, x, x, y), r"parameter a is a float value, got an array"),
    (lambda x, y: (4, 2.0, "x", y), r"parameter x \(float\*\) got str"),
    (lambda x, y: x, r"axpy: args must be a tuple .*\(i64 n, float a, const float\* x"),
])
def test_wrong_arguments_name_kernel_and_parameter(api, args, message):
    axpy = api.get_function("axpy")
    x, y = lg.ones(4, device="cuda"), lg.ones(4, device="cuda")
    with pytest.raises(TypeError if "fit" not in message else OverflowError, match=message):
        axpy(1, 32, args(x, y))
    assert host(y).tolist() == [1.0] * 4  # nothing was launched


@pytest.mark.parametrize("grid, block, shared, message", [
    (1, 2048, 0, r"axpy: block \(2048, 1, 1\) has 2048 threads; the limit is 1024"),
    (1, (32, 32, 2), 0, r"has 2048 threads"),
    ((1, 70000), 32, 0, r"axpy: grid \(1, 70000, 1\) is over the limit"),
    (0, 32, 0, r"axpy: grid \(0, 1, 1\) has a dimension below 1"),
    (1, 32, 1 << 30, r"axpy: 1073741824 bytes of dynamic shared memory asked; the limit"),
    (1.5, 32, 0, r"axpy: grid must be an int or a tuple of 1 to 3 ints"),
])
def test_launch_limits(api, grid, block, shared, message):
    x, y = lg.ones(4, device="cuda"), lg.ones(4, device="cuda")
    with pytest.raises(lg.cuda.CudaError, match=message):
        api.get_function("axpy")(grid, block, (4, 2.0, x, y), shared_mem=shared)


def test_names_and_linkage_errors(api):
    with pytest.raises(AttributeError, match=r"api.cu: no kernel named 'axpby'; the module "
                                             r"has axpy, count, hello"):
        api.get_function("axpby")
    mangled = lg.cuda.compile("__global__ void k(float* x) { x[0] = 1; }")
    with pytest.raises(TypeError, match=r'k is not declared extern "C"'):
        mangled.get_function("k")
    block = lg.cuda.compile('extern "C" {\n__global__ void k(float* x) { x[0] = 1; }\n}')
    assert block.get_function("k").params[0].name == "x"  # (not compiled: no launch)
    with pytest.raises(ValueError, match=r"parameter v has type 'float2'"):
        lg.cuda.compile('extern "C" __global__ void k(float2 v) {}')


def test_compile_error_cites_file_and_line():
    module = lg.cuda.compile('#include "prelude.cuh"\n'
                             'extern "C" __global__ void broken(float* x) {\n'
                             '    x[0] = undefined_name;\n'
                             '}\n', name="broken.cu")
    kernel = module.get_function("broken")  # signatures are read before compiling
    line = r"broken.cu:3:" if lg.cuda.is_emulated() else r"broken.cu\(3\)"
    with pytest.raises(lg.cuda.CompileError, match=line + r"[\s\S]*undefined_name"):
        kernel(1, 1, (lg.ones(1, device="cuda"),))


def test_printf_reaches_stdout(api):
    """printf in a kernel prints (the C library's stdout: seen here at process exit)."""
    code = (f"import lightgrad as lg; source = {API_SOURCE!r}; "
            "lg.cuda.compile(source, name='api.cu').get_function('hello')(2, 64, (42,)); "
            "lg.cuda.synchronize()")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("hello from the kernel: 42") == 1


# ----------------------------------------------------------------------------- interop
@pytest.mark.skipif(REAL_GPU, reason="host arrays are kernel arguments on the emulator only")
def test_host_arrays_on_the_emulator(api):
    """On the emulator device memory is host memory: NumPy arrays and PyTorch CPU tensors
    (via __array_interface__ / DLPack) are kernel arguments, written in place."""
    axpy = api.get_function("axpy")
    x, y = np.arange(5, dtype=np.float32), torch.ones(5)
    axpy(1, 32, (5, 2.0, x, y))
    assert y.tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]
    x_t, y_n = torch.arange(5.0), np.ones(5, np.float32)
    axpy(1, 32, (5, -1.0, x_t, y_n))
    assert y_n.tolist() == [1.0, 0.0, -1.0, -2.0, -3.0]
    with pytest.raises(TypeError, match=r"parameter x \(float\*\).*float64"):
        axpy(1, 32, (5, 1.0, torch.ones(5, dtype=torch.float64), y))
    with pytest.raises(TypeError, match=r"parameter x \(float\*\) got a non-contiguous"):
        axpy(1, 32, (5, 1.0, torch.ones(10)[::2], y))


@pytest.mark.gpu
@gpu_only
def test_torch_and_cupy_cuda_arrays(api):
    """On a GPU: PyTorch CUDA tensors and CuPy arrays are arguments, directly (through
    __cuda_array_interface__) or imported with lg.from_dlpack (sharing memory)."""
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    axpy = api.get_function("axpy")
    x, y = torch.arange(5.0, device="cuda"), torch.ones(5, device="cuda")
    axpy(1, 32, (5, 2.0, x, y))
    lg.cuda.synchronize()
    assert y.tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]
    lx, ly = lg.from_dlpack(x), lg.from_dlpack(y)
    assert lx.device.type == "cuda"
    axpy(1, 32, (5, -2.0, lx, ly))
    lg.cuda.synchronize()
    assert y.tolist() == [1.0] * 5  # the same memory
    with pytest.raises(TypeError, match="CPU memory"):
        axpy(1, 32, (5, 1.0, torch.ones(5), y))
    cupy = pytest.importorskip("cupy")
    cx, cy = cupy.arange(5, dtype=cupy.float32), cupy.zeros(5, dtype=cupy.float32)
    axpy(1, 32, (5, 1.0, cx, cy))
    assert cy.get().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


# ----------------------------------------------------------------------------- examples
def test_examples_compile_with_nvrtc():
    """Every example's source compiles for sm_80 and sm_90 without spills (no GPU needed)."""
    from lightgrad.backends.cuda import nvrtc
    from lightgrad.backends.cuda.source import expand
    if not nvrtc.available():
        pytest.skip("NVRTC (cuda-bindings) is not installed")
    for name in ("bias_gelu", "conv2d_direct", "matmul_tiled"):
        kernels = example(name).KERNELS
        for arch in ("sm_80", "sm_90"):
            report = nvrtc.compile_source(expand(kernels.source, kernels.filename),
                                          kernels.filename, arch, kernels.options)
            assert not report.spills, (name, arch, report.spills)
            assert set(report.registers) == set(kernels.names)


@pytest.mark.parametrize("x_shape", [(3, 5, 7), (7,), (40, 33)])
def test_bias_gelu_matches_builtin_and_torch(x_shape):
    bias_gelu = example("bias_gelu").bias_gelu
    x_np, b_np = randn(*x_shape), randn(x_shape[-1], seed=1)
    g_np = randn(*x_shape, seed=2)
    x = lg.tensor(x_np, device="cuda", requires_grad=True)
    b = lg.tensor(b_np, device="cuda", requires_grad=True)
    y = bias_gelu(x, b)
    (y * lg.tensor(g_np, device="cuda")).sum().backward()

    x2 = lg.tensor(x_np, device="cuda", requires_grad=True)
    b2 = lg.tensor(b_np, device="cuda", requires_grad=True)
    y2 = F.gelu(x2 + b2)
    (y2 * lg.tensor(g_np, device="cuda")).sum().backward()

    tx = torch.tensor(x_np, requires_grad=True)
    tb = torch.tensor(b_np, requires_grad=True)
    ty = torch.nn.functional.gelu(tx + tb)
    (ty * torch.tensor(g_np)).sum().backward()
    for ours, builtin, theirs, what in ((y, y2, ty, "y"), (x.grad, x2.grad, tx.grad, "dx"),
                                        (b.grad, b2.grad, tb.grad, "db")):
        close(ours, builtin, what=f"{what} vs lightgrad")
        close(ours, theirs, what=f"{what} vs torch")


def test_bias_gelu_strided_input_and_errors():
    mod = example("bias_gelu")
    x_np, b_np = randn(6, 4), randn(6, seed=1)
    x = lg.tensor(x_np, device="cuda").T  # (4, 6), not contiguous: forward copies it
    close(mod.bias_gelu(x, lg.tensor(b_np, device="cuda")),
          torch.nn.functional.gelu(torch.tensor(x_np).T + torch.tensor(b_np)))
    with pytest.raises(ValueError, match="does not match the last dimension"):
        mod.bias_gelu(x, lg.ones(4, device="cuda"))
    with pytest.raises(TypeError, match=r"bias_gelu_forward: parameter x \(float\*\).*float64"):
        mod.bias_gelu(x.double(), lg.ones(6, dtype=lg.float64, device="cuda"))


@pytest.mark.parametrize("n, c, h, w, k, r, stride, padding, bias", [
    (2, 3, 7, 6, 4, 3, 1, 1, True),
    (2, 3, 7, 6, 4, 3, 2, 0, True),
    (1, 2, 5, 8, 3, 2, 2, 1, False),
    (3, 1, 4, 4, 2, 4, 1, 2, True),   # kernel as large as the image, wide padding
])
def test_conv2d_direct_matches_builtin_and_torch(n, c, h, w, k, r, stride, padding, bias):
    conv2d_direct = example("conv2d_direct").conv2d_direct
    x_np, w_np, b_np = randn(n, c, h, w), randn(k, c, r, r, seed=1), randn(k, seed=2)
    grads = {}
    for impl in ("ours", "builtin"):
        x = lg.tensor(x_np, device="cuda", requires_grad=True)
        wt = lg.tensor(w_np, device="cuda", requires_grad=True)
        b = lg.tensor(b_np, device="cuda", requires_grad=True) if bias else None
        fn = conv2d_direct if impl == "ours" else F.conv2d
        y = fn(x, wt, b, stride, padding)
        (y * lg.tensor(randn(*y.shape, seed=3), device="cuda")).sum().backward()
        grads[impl] = (y, x.grad, wt.grad, b.grad if bias else None)
    tx = torch.tensor(x_np, requires_grad=True)
    tw = torch.tensor(w_np, requires_grad=True)
    tb = torch.tensor(b_np, requires_grad=True) if bias else None
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding)
    (ty * torch.tensor(randn(*ty.shape, seed=3))).sum().backward()
    theirs = (ty, tx.grad, tw.grad, tb.grad if bias else None)
    for i, what in enumerate(("y", "dx", "dw", "db")):
        if theirs[i] is None:
            continue
        close(grads["ours"][i], grads["builtin"][i], 1e-4, 1e-5, f"{what} vs lightgrad")
        close(grads["ours"][i], theirs[i], 1e-4, 1e-5, f"{what} vs torch")


def test_conv2d_direct_trains_a_cnn_on_mnist():
    mod = example("conv2d_direct")
    if not (mod.mnist_dir() / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found in {mod.mnist_dir()}")
    _, losses = mod.train(steps=10, images=320, batch_size=32)
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.1, losses


@pytest.mark.parametrize("m, k, n", [(37, 45, 29), (1, 3, 1), (16, 16, 16), (5, 70, 33)])
def test_matmul_tiled_matches_builtin_and_torch(m, k, n):
    matmul_tiled = example("matmul_tiled").matmul_tiled
    a_np, b_np, g_np = randn(m, k), randn(k, n, seed=1), randn(m, n, seed=2)
    a = lg.tensor(a_np, device="cuda", requires_grad=True)
    b = lg.tensor(b_np, device="cuda", requires_grad=True)
    c = matmul_tiled(a, b)
    (c * lg.tensor(g_np, device="cuda")).sum().backward()
    a2 = lg.tensor(a_np, device="cuda", requires_grad=True)
    b2 = lg.tensor(b_np, device="cuda", requires_grad=True)
    c2 = a2 @ b2
    (c2 * lg.tensor(g_np, device="cuda")).sum().backward()
    ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    tc = ta @ tb
    (tc * torch.tensor(g_np)).sum().backward()
    for ours, builtin, theirs, what in ((c, c2, tc, "c"), (a.grad, a2.grad, ta.grad, "da"),
                                        (b.grad, b2.grad, tb.grad, "db")):
        close(ours, builtin, 1e-5, 1e-4, f"{what} vs lightgrad")
        close(ours, theirs, 1e-5, 1e-4, f"{what} vs torch")


# ----------------------------------------------------------------------------- GPU only
@pytest.mark.gpu
@gpu_only
def test_examples_at_large_shapes_on_gpu():
    """Large shapes against PyTorch on the GPU when it has CUDA, else on the CPU."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    x_np, b_np = randn(512, 3072), randn(3072, seed=1)
    y = example("bias_gelu").bias_gelu(lg.tensor(x_np, device="cuda"),
                                       lg.tensor(b_np, device="cuda"))
    close(y, torch.nn.functional.gelu(torch.tensor(x_np, device=device)
                                      + torch.tensor(b_np, device=device)))
    a_np, b2_np = randn(1000, 700), randn(700, 900, seed=1)
    c = example("matmul_tiled").matmul_tiled(lg.tensor(a_np, device="cuda"),
                                             lg.tensor(b2_np, device="cuda"))
    close(c, torch.tensor(a_np, device=device) @ torch.tensor(b2_np, device=device),
          1e-4, 1e-3)
    x_np, w_np = randn(32, 16, 28, 28), randn(32, 16, 3, 3, seed=1)
    y = example("conv2d_direct").conv2d_direct(lg.tensor(x_np, device="cuda"),
                                               lg.tensor(w_np, device="cuda"), None, 1, 1)
    close(y, torch.nn.functional.conv2d(torch.tensor(x_np, device=device),
                                        torch.tensor(w_np, device=device), None, 1, 1),
          1e-4, 1e-4)


@pytest.mark.gpu
@gpu_only
def test_matmul_tiled_timed_against_cublas():
    rows = example("matmul_tiled").benchmark(sizes=(1024, 2048), repeat=5)
    for row in rows:
        flops = 2 * row["n"] ** 3
        print(f"n={row['n']}: " + ", ".join(f"{k} {flops / v / 1e12:.1f} TFLOP/s"
                                            for k, v in row.items() if k != "n"))
        assert row["tiled"] > 0 and row["cublas"] > 0


@pytest.mark.slow
@pytest.mark.skipif(REAL_GPU, reason="the emulator's sanitizer builds")
def test_thread_sanitizer_finds_a_missing_barrier(tmp_path):
    """The command docs/06-cuda.md gives for hunting races (LIGHTGRAD_SLOW=1)."""
    script = tmp_path / "race.py"
    script.write_text(
        "import lightgrad as lg\n"
        "reverse = lg.cuda.RawKernel(r'''\n"
        'extern "C" __global__ void reverse(float* y) {\n'
        "    __shared__ float tile[64];\n"
        "    __syncthreads();\n"
        "    tile[threadIdx.x] = y[threadIdx.x];\n"
        "    y[threadIdx.x] = tile[63 - threadIdx.x];  // no barrier before this read\n"
        "}''', 'reverse')\n"
        "reverse(1, 64, (lg.arange(64.0, device='cuda'),))\n")
    tsan = subprocess.run(["gcc", "-print-file-name=libtsan.so"], capture_output=True,
                          text=True).stdout.strip()
    env = dict(os.environ, LIGHTGRAD_CUDA="emulate", PYTHONPATH=str(ROOT),
               LIGHTGRAD_EMULATOR_FLAGS="-fsanitize=thread -g", LD_PRELOAD=tsan)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert "WARNING: ThreadSanitizer: data race" in done.stderr, done.stderr[-2000:]
    assert "reverse.cu:" in done.stderr
