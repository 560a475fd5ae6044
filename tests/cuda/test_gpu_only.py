"""Checks that only a real GPU can run: large shapes against PyTorch on CUDA, both matmul
backends, DLPack exchange with PyTorch and CuPy, out-of-memory errors.

Every test is marked ``gpu`` (``python -m pytest -m gpu``) and skips unless the ``cuda``
device is a real GPU: on the emulator these shapes would take hours, and there is no
PyTorch CUDA or CuPy device memory to exchange with.
"""
from __future__ import annotations

import numpy as np
import pytest

import lightgrad as lg
import lightgrad.nn.functional as F

REAL_GPU = lg.cuda.is_available() and not lg.cuda.is_emulated()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not REAL_GPU, reason="needs a real GPU (the cuda device is "
                                                      "absent or the CPU emulator)")]


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch was built without CUDA or sees no GPU")
    # compare with true float32 products, not TF32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def on_cuda(array: np.ndarray, requires_grad: bool = False) -> lg.Tensor:
    t = lg.from_numpy(array).to("cuda")
    return t.requires_grad_() if requires_grad else t


def to_torch(torch, array: np.ndarray, requires_grad: bool = False):
    return torch.tensor(array, device="cuda", requires_grad=requires_grad)


def close(ours: lg.Tensor, theirs, rtol: float, atol: float, what: str) -> None:
    np.testing.assert_allclose(ours.detach().cpu().numpy(), theirs.detach().cpu().numpy(),
                               rtol=rtol, atol=atol, err_msg=what)


# ----------------------------------------------------------------------------- GEMM


def _matmul_switch() -> tuple:
    """(set, get) of the matmul backend choice: lightgrad.cuda's, else the CUDA backend
    module's; (None, None) when there is no choice."""
    from lightgrad.backends.cuda import ops_linalg
    for owner in (lg.cuda, ops_linalg):
        setter = getattr(owner, "set_matmul_backend", None)
        getter = getattr(owner, "get_matmul_backend", None) or getattr(owner, "matmul_backend",
                                                                       None)
        if setter is not None and getter is not None:
            return setter, getter
    return None, None


@pytest.fixture(params=["cublas", "lightgrad"])
def matmul_backend(request):
    """Each matmul implementation: cuBLAS and our tiled GEMM kernel."""
    setter, getter = _matmul_switch()
    if setter is None:
        if request.param != "cublas":
            pytest.skip("this build has no matmul backend switch (set_matmul_backend)")
        yield "default"
        return
    previous = getter()
    setter(request.param)
    try:
        yield request.param
    finally:
        setter(previous)


@pytest.mark.parametrize("m,k,n", [(2048, 2048, 2048), (1000, 1536, 777)])
def test_matmul_large(torch, matmul_backend: str, m: int, k: int, n: int) -> None:
    a, b = randn(m, k, seed=1), randn(k, n, seed=2)
    ours = on_cuda(a) @ on_cuda(b)
    theirs = to_torch(torch, a) @ to_torch(torch, b)
    # entries are sums of k products of unit normals: about sqrt(k) in size
    close(ours, theirs, rtol=1e-3, atol=1e-4 * np.sqrt(k), what=f"matmul ({matmul_backend})")


def test_matmul_batched_transposed(torch, matmul_backend: str) -> None:
    a, b = randn(12, 512, 64, seed=3), randn(12, 512, 64, seed=4)
    ours = on_cuda(a) @ on_cuda(b).transpose(-2, -1)
    theirs = to_torch(torch, a) @ to_torch(torch, b).transpose(-2, -1)
    close(ours, theirs, rtol=1e-3, atol=1e-3, what=f"batched matmul ({matmul_backend})")


def test_linear_backward_large(torch) -> None:
    x, w, g = randn(4096, 768, seed=5), randn(3072, 768, seed=6, scale=0.02), \
        randn(4096, 3072, seed=7)
    xs, ws = on_cuda(x, True), on_cuda(w, True)
    F.linear(xs, ws).backward(on_cuda(g))
    xt, wt = to_torch(torch, x, True), to_torch(torch, w, True)
    torch.nn.functional.linear(xt, wt).backward(to_torch(torch, g))
    close(xs.grad, xt.grad, rtol=1e-3, atol=1e-3, what="linear dx")
    close(ws.grad, wt.grad, rtol=1e-3, atol=1e-2, what="linear dw")


# ----------------------------------------------------------------------------- fused ops


def test_softmax_vocab_rows(torch) -> None:
    x = randn(4096, 50257, seed=8, scale=3.0)
    close(on_cuda(x).softmax(dim=-1), torch.softmax(to_torch(torch, x), dim=-1),
          rtol=1e-4, atol=1e-8, what="softmax (4096, 50257)")
    close(on_cuda(x).log_softmax(dim=-1), torch.log_softmax(to_torch(torch, x), dim=-1),
          rtol=1e-5, atol=1e-4, what="log_softmax (4096, 50257)")


def test_cross_entropy_vocab(torch) -> None:
    x = randn(2048, 50257, seed=9, scale=2.0)
    target = np.random.default_rng(10).integers(0, 50257, 2048)
    xs, xt = on_cuda(x, True), to_torch(torch, x, True)
    loss = F.cross_entropy(xs, lg.from_numpy(target).to("cuda"))
    tloss = torch.nn.functional.cross_entropy(xt, torch.tensor(target, device="cuda"))
    close(loss, tloss, rtol=1e-5, atol=1e-5, what="cross_entropy")
    loss.backward()
    tloss.backward()
    close(xs.grad, xt.grad, rtol=1e-4, atol=1e-9, what="cross_entropy grad")


def test_layer_norm_large(torch) -> None:
    x, w, b, g = randn(8192, 768, seed=11, scale=2.0), randn(768, seed=12), \
        randn(768, seed=13), randn(8192, 768, seed=14)
    xs, ws, bs = (on_cuda(a, True) for a in (x, w, b))
    xt, wt, bt = (to_torch(torch, a, True) for a in (x, w, b))
    ys = F.layer_norm(xs, (768,), ws, bs)
    yt = torch.nn.functional.layer_norm(xt, (768,), wt, bt)
    close(ys, yt, rtol=1e-4, atol=1e-4, what="layer_norm")
    ys.backward(on_cuda(g))
    yt.backward(to_torch(torch, g))
    close(xs.grad, xt.grad, rtol=1e-3, atol=1e-4, what="layer_norm dx")
    # dweight and dbias sum 8192 rows
    close(ws.grad, wt.grad, rtol=1e-3, atol=1e-2, what="layer_norm dweight")
    close(bs.grad, bt.grad, rtol=1e-3, atol=1e-2, what="layer_norm dbias")


@pytest.mark.parametrize("is_causal", [True, False])
def test_attention_gpt2_shapes(torch, is_causal: bool) -> None:
    shape = (4, 12, 1024, 64)
    q, k, v, g = (randn(*shape, seed=s) for s in (15, 16, 17, 18))
    qs, ks, vs = (on_cuda(a, True) for a in (q, k, v))
    qt, kt, vt = (to_torch(torch, a, True) for a in (q, k, v))
    ys = F.scaled_dot_product_attention(qs, ks, vs, is_causal=is_causal)
    yt = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=is_causal)
    close(ys, yt, rtol=1e-3, atol=1e-4, what="attention")
    ys.backward(on_cuda(g))
    yt.backward(to_torch(torch, g))
    for name, a, b in (("dq", qs, qt), ("dk", ks, kt), ("dv", vs, vt)):
        close(a.grad, b.grad, rtol=1e-3, atol=2e-3, what=f"attention {name}")


def test_adamw_large(torch) -> None:
    p, g = randn(4_000_000, seed=19), randn(4_000_000, seed=20)
    ps = on_cuda(p, True)
    pt = to_torch(torch, p, True)
    opt = lg.optim.AdamW([ps], lr=1e-3, weight_decay=0.1)
    topt = torch.optim.AdamW([pt], lr=1e-3, weight_decay=0.1)
    for step in range(3):
        ps.grad, pt.grad = on_cuda(g * (step + 1)), to_torch(torch, g * (step + 1))
        opt.step()
        topt.step()
    close(ps, pt, rtol=1e-5, atol=1e-6, what="AdamW after 3 steps")


# ----------------------------------------------------------------------------- DLPack


def test_dlpack_to_and_from_torch(torch) -> None:
    ours = on_cuda(np.arange(12, dtype=np.float32).reshape(3, 4))
    theirs = torch.from_dlpack(ours)
    assert theirs.device.type == "cuda" and tuple(theirs.shape) == (3, 4)
    np.testing.assert_array_equal(theirs.cpu().numpy(), ours.cpu().numpy())
    theirs.mul_(2)  # zero-copy: the write shows through
    torch.cuda.synchronize()
    np.testing.assert_array_equal(ours.cpu().numpy(), np.arange(12).reshape(3, 4) * 2)

    source = torch.arange(10, device="cuda", dtype=torch.float32)[::2]  # strided
    back = lg.from_dlpack(source)
    assert back.device.type == "cuda" and back.shape == (5,)
    np.testing.assert_array_equal(back.cpu().numpy(), [0, 2, 4, 6, 8])
    source.add_(1)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(back.cpu().numpy(), [1, 3, 5, 7, 9])
    assert (back * 2).cpu().tolist() == [2, 6, 10, 14, 18]


def test_dlpack_with_cupy() -> None:
    cp = pytest.importorskip("cupy")
    ours = on_cuda(np.arange(6, dtype=np.float32))
    theirs = cp.from_dlpack(ours)
    np.testing.assert_array_equal(cp.asnumpy(theirs), np.arange(6))
    theirs *= 3
    cp.cuda.runtime.deviceSynchronize()
    np.testing.assert_array_equal(ours.cpu().numpy(), np.arange(6) * 3)

    source = cp.arange(8, dtype=cp.int64).reshape(2, 4)
    back = lg.from_dlpack(source)
    assert back.device.type == "cuda" and back.dtype == lg.int64 and back.shape == (2, 4)
    np.testing.assert_array_equal(back.cpu().numpy(), np.arange(8).reshape(2, 4))


# ----------------------------------------------------------------------------- memory


def test_out_of_memory_is_a_python_error() -> None:
    with pytest.raises(MemoryError, match="out of memory") as info:
        lg.empty(2**42, device="cuda")  # 16 TiB of float32
    assert "free" in str(info.value)
    # the device still works afterwards
    assert (lg.ones(3, device="cuda") * 2).cpu().tolist() == [2.0, 2.0, 2.0]


def test_memory_allocated_tracks_tensors() -> None:
    lg.cuda.synchronize()
    before = lg.cuda.memory_allocated()
    t = lg.empty(1 << 20, device="cuda")
    assert lg.cuda.memory_allocated() >= before + 4 * (1 << 20)
    del t
    assert lg.cuda.memory_allocated() == before
