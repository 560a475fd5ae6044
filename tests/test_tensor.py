"""Tensor creation, properties, repr, interop (NumPy, DLPack), in-place ops, devices, CLI.
Expected values come from PyTorch or NumPy, never from lightgrad itself."""
from __future__ import annotations

import numpy as np
import pytest

import lightgrad as lg

torch = pytest.importorskip("torch")


def dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "").replace("lightgrad.", "")


def same(ours, theirs, rtol=1e-6, atol=1e-7):
    """Same shape, dtype name and values."""
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert dtype_name(ours) == dtype_name(theirs)
    np.testing.assert_allclose(np.asarray(ours.detach().numpy(), dtype=np.float64),
                               np.asarray(theirs.detach().numpy(), dtype=np.float64),
                               rtol=rtol, atol=atol)


def each_lib(fn):
    return fn(lg), fn(torch)


# ----------------------------------------------------------------------------- creation


TENSOR_DATA = {
    "ints": [1, 2, -3],
    "floats": [1.0, 2.5],
    "mixed_int_float": [1, 2.5],
    "bools": [True, False],
    "bool_and_int": [True, 2],
    "nested": [[1, 2], [3, 4]],
    "nested_floats": [[1.0], [2.0]],
    "int_scalar": 3,
    "float_scalar": -2.5,
    "bool_scalar": True,
    "empty": [],
    "np_int32": np.array([1, 2], dtype=np.int32),
    "np_uint8": np.array([1, 250], dtype=np.uint8),
    "np_float64": np.array([[1.5, 2.0]]),
    "np_float16": np.array([1.5], dtype=np.float16),
    "np_bool": np.array([True]),
    "np_scalar_f64": np.float64(1.25),
    "np_scalar_i32": np.int32(7),
    "tuple": (1.0, 2.0, 3.0),
}


@pytest.mark.parametrize("name", sorted(TENSOR_DATA))
def test_tensor_from_data_infers_dtype_like_torch(name):
    data = TENSOR_DATA[name]
    ours, theirs = lg.tensor(data), torch.tensor(data)
    same(ours, theirs)


def test_tensor_with_explicit_dtype_and_requires_grad():
    ours = lg.tensor([1, 2], dtype=lg.float64, requires_grad=True)
    theirs = torch.tensor([1, 2], dtype=torch.float64, requires_grad=True)
    same(ours, theirs)
    assert ours.requires_grad and ours.is_leaf


def test_tensor_copies_its_data():
    arr = np.array([1.0, 2.0])
    t = lg.tensor(arr)
    arr[0] = 9.0
    assert t.tolist() == [1.0, 2.0]


def test_from_numpy_shares_memory_both_ways():
    arr = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    t = lg.from_numpy(arr)
    assert t.dtype is lg.float32
    arr[0] = 10.0
    assert t.tolist() == [10.0, 2.0, 3.0]
    t.add_(1.0)
    np.testing.assert_array_equal(arr, [11.0, 3.0, 4.0])
    t[1] = 0.0
    assert arr[1] == 0.0


def test_from_numpy_keeps_dtype():
    for np_dtype in (np.float64, np.float16, np.int32, np.int64, np.bool_, np.uint8):
        arr = np.zeros(2, dtype=np_dtype)
        assert dtype_name(lg.from_numpy(arr)) == dtype_name(torch.from_numpy(arr))


FILLED = {
    "zeros": lambda m: m.zeros(2, 3),
    "zeros_tuple": lambda m: m.zeros((2, 3)),
    "zeros_int": lambda m: m.zeros(2, dtype=m.int32),
    "ones": lambda m: m.ones(4),
    "ones_f64": lambda m: m.ones(1, 2, dtype=m.float64),
    "full_float": lambda m: m.full((2, 2), 2.5),
    "full_int": lambda m: m.full((3,), 7),
    "full_bool": lambda m: m.full((2,), True),
    "empty_shape": lambda m: m.zeros_like(m.empty(3, 2)),
    "arange_int": lambda m: m.arange(5),
    "arange_start_stop": lambda m: m.arange(2, 9, 3),
    "arange_float": lambda m: m.arange(0, 1, 0.1),
    "arange_neg_step": lambda m: m.arange(5, 0, -1),
    "arange_neg_float": lambda m: m.arange(1.0, -1.0, -0.25),
    "arange_dtype": lambda m: m.arange(4, dtype=m.float64),
    "arange_empty": lambda m: m.arange(3, 3),
    "linspace": lambda m: m.linspace(-1, 1, 5),
    "linspace_one": lambda m: m.linspace(0, 1, 1),
    "linspace_f64": lambda m: m.linspace(0, 10, 7, dtype=m.float64),
    "eye": lambda m: m.eye(3),
    "eye_rect": lambda m: m.eye(2, 4),
    "zeros_like_int": lambda m: m.zeros_like(m.tensor([1, 2])),
    "ones_like_f64": lambda m: m.ones_like(m.tensor([1.0], dtype=m.float64)),
    "full_like": lambda m: m.full_like(m.zeros(2, 2), 3.5),
    "ones_like_dtype": lambda m: m.ones_like(m.zeros(2), dtype=m.int32),
}


@pytest.mark.parametrize("name", sorted(FILLED))
def test_filled_and_range_creation_match_torch(name):
    ours, theirs = each_lib(FILLED[name])
    same(ours, theirs)


def test_empty_like_and_empty_shapes_dtypes():
    t = lg.empty(2, 3, dtype=lg.float16)
    assert t.shape == (2, 3) and t.dtype is lg.float16
    e = lg.empty_like(lg.ones(4, dtype=lg.int32))
    assert e.shape == (4,) and e.dtype is lg.int32


def test_arange_zero_step_raises():
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        lg.arange(0, 5, 0)


RANDOM = {
    "rand": lambda m: m.rand(3, 4),
    "randn": lambda m: m.randn(5),
    "randn_f64": lambda m: m.randn(2, 2, dtype=m.float64),
    "randint": lambda m: m.randint(0, 10, (6,)),
    "randint_high_only": lambda m: m.randint(5, (2, 3)),
    "randperm": lambda m: m.randperm(7),
    "rand_like": lambda m: m.rand_like(m.zeros(2, 3, dtype=m.float64)),
    "randn_like": lambda m: m.randn_like(m.zeros(3)),
}


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_shapes_dtypes_and_manual_seed(name):
    fn = RANDOM[name]
    lg.manual_seed(123)
    first = fn(lg)
    lg.manual_seed(123)
    again = fn(lg)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    other = fn(lg)  # the stream moves on
    assert first.numel() < 2 or not np.array_equal(first.numpy(), other.numpy())
    theirs = fn(torch)
    assert first.shape == tuple(theirs.shape)
    assert dtype_name(first) == dtype_name(theirs)


def test_random_value_ranges_and_statistics():
    lg.manual_seed(0)
    u = lg.rand(20000).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.02
    n = lg.randn(20000).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1.0) < 0.03
    r = lg.randint(-3, 4, (5000,)).numpy()
    assert r.min() == -3 and r.max() == 3
    p = lg.randperm(50)
    assert sorted(p.tolist()) == list(range(50)) and p.dtype is lg.int64


# ----------------------------------------------------------------------------- properties


def test_shape_size_dim_numel_dtype_device():
    ours, theirs = each_lib(lambda m: m.zeros(2, 3, 4, dtype=m.float64))
    assert ours.shape == tuple(theirs.shape)
    assert ours.size() == tuple(theirs.size())
    for d in (0, 1, 2, -1, -3):
        assert ours.size(d) == theirs.size(d)
    assert ours.dim() == theirs.dim() == ours.ndim
    assert ours.numel() == theirs.numel()
    assert ours.dtype is lg.float64 and dtype_name(ours) == dtype_name(theirs)
    assert ours.device == "cpu" and str(ours.device) == str(theirs.device)
    assert repr(ours.device) == repr(theirs.device)
    assert lg.tensor(5.0).dim() == 0 and lg.tensor(5.0).shape == ()


def test_requires_grad_grad_leaf_defaults():
    t = lg.ones(2)
    assert not t.requires_grad and t.grad is None and t.is_leaf and t.grad_fn is None
    t.requires_grad_()
    assert t.requires_grad and t.is_leaf
    y = t * 2
    assert not y.is_leaf and y.grad_fn is not None
    t.requires_grad_(False)
    assert not t.requires_grad
    with pytest.raises(RuntimeError, match="requires_grad_.*floating-point.*int64"):
        lg.tensor([1, 2]).requires_grad_()


def test_item_and_tolist_match_torch():
    for data in (2.5, 3, True, [[1.5, 2.0], [3.0, 4.0]], [[1, 2]], [True, False]):
        ours, theirs = lg.tensor(data), torch.tensor(data)
        assert ours.tolist() == theirs.tolist()
        if ours.numel() == 1:
            assert ours.item() == theirs.item()
            assert type(ours.item()) is type(theirs.item())
    assert lg.tensor([[7]]).item() == 7


def test_numpy_shares_memory_and_refuses_requires_grad():
    t = lg.tensor([1.0, 2.0])
    arr = t.numpy()
    arr[0] = 5.0
    assert t.tolist() == [5.0, 2.0]
    with pytest.raises(RuntimeError, match="numpy.*requires grad.*detach"):
        lg.ones(2, requires_grad=True).numpy()


def test_detach_shares_memory_clone_does_not():
    x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    d[0] = 10.0
    assert x.tolist()[0] == 10.0
    c = x.clone()
    assert c.requires_grad and c.grad_fn is not None  # clone stays in the graph, like torch
    with lg.no_grad():
        c.fill_(0.0)
    assert x.tolist() == [10.0, 2.0, 3.0]
    (x.clone() * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_contiguous():
    ours = lg.arange(6).reshape(2, 3).T
    theirs = torch.arange(6).reshape(2, 3).T
    assert ours.is_contiguous() == theirs.is_contiguous() is False
    c = ours.contiguous()
    assert c.is_contiguous()
    same(c, theirs.contiguous())


TO_DTYPE = [("float32", "int32"), ("float32", "int64"), ("float32", "float64"),
            ("float32", "float16"), ("float32", "bool"), ("int64", "float32"),
            ("bool", "float32"), ("int64", "bool"), ("float64", "int8")]


@pytest.mark.parametrize("src,dst", TO_DTYPE)
def test_to_dtype_matches_torch(src, dst):
    data = [-2.7, -0.5, 0.0, 0.4, 1.5, 3.9]
    ours = lg.tensor(data).to(getattr(lg, src)).to(getattr(lg, dst))
    theirs = torch.tensor(data).to(getattr(torch, src)).to(getattr(torch, dst))
    same(ours, theirs, rtol=1e-3)


def test_to_cpu_returns_self_and_keeps_graph():
    x = lg.ones(2, requires_grad=True)
    assert x.to("cpu") is x and x.cpu() is x and x.to(lg.float32) is x
    y = x.to(lg.float64)
    assert y.dtype is lg.float64 and y.grad_fn is not None
    y.sum().backward()
    assert x.grad.dtype is lg.float32
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


# ----------------------------------------------------------------------------- repr


REPR_CASES = {
    "float_integral": lambda m: m.tensor([1.0, 2.0, -3.0]),
    "float_fraction": lambda m: m.tensor([1.5, 2.25, -3.0]),
    "float_neg_zero_mix": lambda m: m.tensor([0.0, -0.5]),
    "float_large": lambda m: m.tensor([1e10, 2.0]),
    "float_large_integral_ratio": lambda m: m.tensor([100000.0, 1.0]),
    "float_small": lambda m: m.tensor([1e-5, 1.0]),
    "float_tiny_and_zero": lambda m: m.tensor([1e-8, 0.0]),
    "float_mid": lambda m: m.tensor([123456.7, 0.5]),
    "float_scalar": lambda m: m.tensor(2.5),
    "float_nan_inf": lambda m: m.tensor([float("nan"), 1.5, -float("inf")]),
    "int": lambda m: m.tensor([1, -20, 300]),
    "int_scalar": lambda m: m.tensor(3),
    "int32": lambda m: m.tensor([1, 2], dtype=m.int32),
    "bool": lambda m: m.tensor([True, False]),
    "float64": lambda m: m.tensor([1.5, 2.0], dtype=m.float64),
    "float16": lambda m: m.tensor([1.0, 2.0], dtype=m.float16),
    "2d_float": lambda m: m.tensor([[1.0, 2.0], [3.5, -4.0]]),
    "2d_int": lambda m: m.tensor([[1, 2], [30, 4]]),
    "2d_wraps": lambda m: ((m.arange(51.0) - 25) / 25).reshape(3, 17),
    "1d_wraps": lambda m: m.linspace(-5, 5, 40),
    "3d": lambda m: m.arange(24.0).reshape(2, 3, 4) / 7,
    "empty": lambda m: m.tensor([]),
    "empty_int_2d": lambda m: m.zeros(2, 0, dtype=m.int64),
    "requires_grad": lambda m: m.tensor([1.0, 2.5], requires_grad=True),
    "requires_grad_f64": lambda m: m.tensor([1.0], dtype=m.float64, requires_grad=True),
    "grad_fn": lambda m: m.tensor([1.0, 2.5], requires_grad=True) * 2,
}


@pytest.mark.parametrize("name", sorted(REPR_CASES))
def test_repr_matches_torch(name):
    ours, theirs = each_lib(REPR_CASES[name])
    want = repr(theirs).replace("torch.", "lightgrad.")
    got = repr(ours)
    if "grad_fn=" in want:  # the node class names differ (MulBackward0 vs MulBackward)
        want, got = want.split("grad_fn=")[0], got.split("grad_fn=")[0]
        assert repr(ours).endswith(f"grad_fn=<{ours.grad_fn.name()}>)")
    assert got == want


# ----------------------------------------------------------------------------- interop


def test_array_protocol():
    t = lg.tensor([[1.0, 2.0], [3.0, 4.0]])
    arr = np.asarray(t)
    np.testing.assert_array_equal(arr, [[1.0, 2.0], [3.0, 4.0]])
    assert arr.dtype == np.float32
    arr[0, 0] = 7.0  # on the CPU, a view
    assert t.tolist()[0][0] == 7.0
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.asarray(lg.tensor([1, 2])).dtype == np.int64


def test_dlpack_lightgrad_to_torch_shares_memory():
    t = lg.tensor([1.0, 2.0, 3.0])
    th = torch.from_dlpack(t)
    assert th.dtype == torch.float32 and th.tolist() == [1.0, 2.0, 3.0]
    th[1] = 20.0
    assert t.tolist() == [1.0, 20.0, 3.0]
    t.mul_(2.0)
    assert th.tolist() == [2.0, 40.0, 6.0]
    strided = torch.from_dlpack(lg.arange(6).reshape(2, 3).T)
    assert strided.tolist() == [[0, 3], [1, 4], [2, 5]]


def test_dlpack_torch_to_lightgrad_shares_memory():
    th = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    t = lg.from_dlpack(th)
    assert t.dtype is lg.float64 and t.shape == (2, 2)
    th[0, 0] = -1.0
    assert t.tolist()[0][0] == -1.0
    t.add_(1.0)
    assert th.tolist() == [[0.0, 3.0], [4.0, 5.0]]
    assert lg.from_dlpack(torch.tensor([True])).dtype is lg.bool


def test_from_dlpack_bad_input_names_the_op():
    with pytest.raises(TypeError, match="from_dlpack.*list"):
        lg.from_dlpack([1, 2])
    with pytest.raises(RuntimeError, match="from_dlpack.*bfloat16"):
        lg.from_dlpack(torch.ones(2, dtype=torch.bfloat16))


# ----------------------------------------------------------------------------- in-place


INPLACE = {
    "add_": lambda t, m: t.add_(m.tensor([1.0, -2.0, 0.5])),
    "add_alpha": lambda t, m: t.add_(m.tensor([1.0, -2.0, 0.5]), alpha=3),
    "add_scalar": lambda t, m: t.add_(2),
    "sub_": lambda t, m: t.sub_(m.tensor([[1.0], [2.0]])),
    "mul_": lambda t, m: t.mul_(m.tensor([2.0, 0.5, -1.0])),
    "div_": lambda t, m: t.div_(4),
    "zero_": lambda t, m: t.zero_(),
    "fill_": lambda t, m: t.fill_(-1.5),
    "fill_tensor": lambda t, m: t.fill_(m.tensor(2.0)),
    "copy_same": lambda t, m: t.copy_(m.ones(2, 3) * 7),
    "copy_broadcast": lambda t, m: t.copy_(m.tensor([1.0, 2.0, 3.0])),
    "copy_from_int": lambda t, m: t.copy_(m.tensor([[1], [2]])),
    "copy_from_f64": lambda t, m: t.copy_(m.tensor([0.1, 0.2, 0.3], dtype=m.float64)),
    "clamp_": lambda t, m: t.clamp_(-0.5, 0.7),
    "clamp_min": lambda t, m: t.clamp_(min=0.0),
    "iadd": lambda t, m: t.__iadd__(1.0),
    "imul": lambda t, m: t.__imul__(m.tensor([1.0, 2.0, 3.0])),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_ops_match_torch(name):
    data = np.random.randn(2, 3).astype(np.float32)
    ours, theirs = lg.tensor(data), torch.tensor(data)
    out_ours, out_theirs = INPLACE[name](ours, lg), INPLACE[name](theirs, torch)
    assert out_ours is ours and out_theirs is theirs
    same(ours, theirs)


def test_copy_into_int_target_truncates_like_torch():
    ours = lg.zeros(2, 3, dtype=lg.int32).copy_(lg.tensor([1.7, -2.7, 3.2]))
    theirs = torch.zeros(2, 3, dtype=torch.int32).copy_(torch.tensor([1.7, -2.7, 3.2]))
    same(ours, theirs)


def test_inplace_bumps_version_and_keeps_memory():
    t = lg.zeros(3)
    arr = t.numpy()
    t.add_(1.0).mul_(3.0)
    np.testing.assert_array_equal(arr, [3.0, 3.0, 3.0])


def test_uniform_range():
    t = lg.zeros(20000, dtype=lg.float64).uniform_(-2.0, 3.0)
    vals = t.numpy()
    assert vals.min() >= -2.0 and vals.max() < 3.0
    assert vals.min() < -1.99 and vals.max() > 2.99
    assert abs(vals.mean() - 0.5) < 0.05
    assert t.dtype is lg.float64


def test_normal_statistics():
    t = lg.empty(50000).normal_(1.5, 2.0)
    vals = t.numpy()
    assert t.dtype is lg.float32
    assert abs(vals.mean() - 1.5) < 0.05
    assert abs(vals.std() - 2.0) < 0.05


def test_random_fill_is_seeded():
    lg.manual_seed(7)
    a = lg.zeros(5).normal_().tolist()
    lg.manual_seed(7)
    assert lg.zeros(5).normal_().tolist() == a


def test_inplace_int_target_rejects_float_result_like_torch():
    with pytest.raises(RuntimeError, match="add_: result type float32 can't be cast.*int64"):
        lg.tensor([1, 2, 3]).add_(1.5)
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch.tensor([1, 2, 3]).add_(1.5)


def test_copy_non_broadcastable_raises():
    with pytest.raises(RuntimeError, match=r"copy_: source of shape \(3,\) cannot be broadcast "
                                           r"to the target shape \(2,\)"):
        lg.zeros(2).copy_(lg.ones(3))


# ----------------------------------------------------------------------------- devices and CLI


no_cuda = pytest.mark.skipif("cuda" in lg.available_devices(),
                             reason="a CUDA backend is registered here")


@no_cuda
@pytest.mark.parametrize("make", [
    lambda: lg.device("cuda"),
    lambda: lg.device("cuda:1"),
    lambda: lg.zeros(2, device="cuda"),
    lambda: lg.tensor([1.0], device="cuda"),
    lambda: lg.zeros(2).to("cuda"),
    lambda: lg.zeros(2).cuda(),
], ids=["device", "device_index", "zeros", "tensor", "to", "cuda_method"])
def test_cuda_unavailable_is_a_clear_error(make):
    with pytest.raises(RuntimeError, match=r"'cuda(:\d)?' was requested but no CUDA backend "
                                           r"is available"):
        make()


def test_cuda_unavailable_without_gpu_or_emulator():
    """Without a GPU and without LIGHTGRAD_CUDA=emulate, asking for cuda says what to do
    (run in a fresh interpreter: this test session itself uses the emulator)."""
    import importlib.util
    import os
    import subprocess
    import sys
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: cuda may be available")
    env = {k: v for k, v in os.environ.items() if k != "LIGHTGRAD_CUDA"}
    code = ("import lightgrad as lg\n"
            "assert not lg.cuda.is_available() and lg.cuda.device_count() == 0\n"
            "try:\n    lg.zeros(2).cuda()\nexcept RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "'cuda:0' was requested but no CUDA backend is available" in out.stdout
    assert "pip install 'lightgrad[cuda]'" in out.stdout and "LIGHTGRAD_CUDA=emulate" in out.stdout


def test_unknown_device_raises():
    with pytest.raises(ValueError, match="device: unknown device 'tpu'"):
        lg.zeros(2, device="tpu")


def test_cli_info_prints_version_and_devices(capsys):
    from lightgrad.cli import main
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"lightgrad {lg.__version__}" in out
    assert "devices: cpu" in out
    assert "numpy" in out
