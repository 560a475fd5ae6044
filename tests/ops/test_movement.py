"""Movement ops against PyTorch: views, joins and splits, pad/flip/repeat, triangles,
gather/scatter and index ops, copies and casts; forward, backward, gradcheck and memory
sharing."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest
from oracle import assert_close, check_parity

import lightgrad as lg
from lightgrad.autograd import gradcheck

torch = pytest.importorskip("torch")

LG = SimpleNamespace(cat=lg.cat, stack=lg.stack, pad=lg.pad, float32=lg.float32,
                     float64=lg.float64, int64=lg.int64, tensor=lg.tensor)
TH = SimpleNamespace(cat=torch.cat, stack=torch.stack, pad=torch.nn.functional.pad,
                     float32=torch.float32, float64=torch.float64, int64=torch.int64,
                     tensor=torch.tensor)


def _idx(*values: Any) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# (id, fn(ns, *tensors), inputs): a tuple input is the shape of a random float tensor,
# an array input is used as is (integer indices).
CASES: list[tuple[str, Callable[..., Any], list[Any]]] = [
    ("view", lambda ns, x: x.view(3, 4), [(2, 6)]),
    ("view_-1", lambda ns, x: x.view(2, -1, 3), [(2, 6)]),
    ("view_flat", lambda ns, x: x.view(-1), [(2, 3, 2)]),
    ("reshape_-1", lambda ns, x: x.reshape(-1, 2), [(3, 4)]),
    ("reshape_3d", lambda ns, x: x.reshape(2, 2, 3), [(4, 3)]),
    ("reshape_transposed", lambda ns, x: x.mT.reshape(-1), [(3, 4)]),
    ("permute", lambda ns, x: x.permute(2, 0, 1), [(2, 3, 4)]),
    ("permute_neg", lambda ns, x: x.permute(-1, 0, -2), [(2, 3, 4)]),
    ("transpose", lambda ns, x: x.transpose(0, -1), [(2, 3, 4)]),
    ("T", lambda ns, x: x.T, [(3, 4)]),
    ("mT", lambda ns, x: x.mT, [(2, 3, 4)]),
    ("expand", lambda ns, x: x.expand(2, 3, 4), [(3, 1)]),
    ("expand_-1", lambda ns, x: x.expand(-1, 5), [(3, 1)]),
    ("expand_as", lambda ns, x, y: x.expand_as(y), [(1, 4), (3, 4)]),
    ("squeeze_all", lambda ns, x: x.squeeze(), [(1, 3, 1, 2)]),
    ("squeeze_dim", lambda ns, x: x.squeeze(2), [(1, 3, 1, 2)]),
    ("squeeze_neg", lambda ns, x: x.squeeze(-4), [(1, 3, 1, 2)]),
    ("squeeze_noop", lambda ns, x: x.squeeze(1), [(1, 3, 1, 2)]),
    ("squeeze_dims", lambda ns, x: x.squeeze((0, 2)), [(1, 3, 1, 2)]),
    ("unsqueeze_0", lambda ns, x: x.unsqueeze(0), [(3, 2)]),
    ("unsqueeze_-1", lambda ns, x: x.unsqueeze(-1), [(3, 2)]),
    ("unsqueeze_-3", lambda ns, x: x.unsqueeze(-3), [(3, 2)]),
    ("flatten", lambda ns, x: x.flatten(), [(2, 3, 2)]),
    ("flatten_1", lambda ns, x: x.flatten(1), [(2, 3, 2)]),
    ("flatten_neg", lambda ns, x: x.flatten(-3, -2), [(2, 3, 2)]),
    ("unflatten", lambda ns, x: x.unflatten(1, (2, 3)), [(2, 6)]),
    ("unflatten_-1", lambda ns, x: x.unflatten(-1, (-1, 2)), [(2, 6)]),
    ("cat", lambda ns, x, y: ns.cat([x, y]), [(2, 3), (1, 3)]),
    ("cat_neg", lambda ns, x, y, z: ns.cat([x, y, z], dim=-1), [(2, 3), (2, 1), (2, 2)]),
    ("stack", lambda ns, x, y: ns.stack([x, y]), [(2, 3), (2, 3)]),
    ("stack_1", lambda ns, x, y: ns.stack([x, y], dim=1), [(2, 3), (2, 3)]),
    ("stack_neg", lambda ns, x, y: ns.stack((x, y), dim=-1), [(2, 3), (2, 3)]),
    ("split_int", lambda ns, x: x.split(2, dim=1), [(2, 5)]),
    ("split_list", lambda ns, x: x.split([1, 3, 1], -1), [(2, 5)]),
    ("chunk", lambda ns, x: x.chunk(3, 1), [(2, 5)]),
    ("chunk_fewer", lambda ns, x: x.chunk(4, 0), [(6, 2)]),
    ("unbind", lambda ns, x: x.unbind(1), [(2, 3)]),
    ("unbind_neg", lambda ns, x: x.unbind(-1), [(2, 3)]),
    ("narrow", lambda ns, x: x.narrow(1, 1, 2), [(3, 4)]),
    ("narrow_neg_start", lambda ns, x: x.narrow(-1, -3, 2), [(3, 4)]),
    ("narrow_tail", lambda ns, x: x.narrow(0, -2, 2), [(3, 4)]),
    ("pad_last", lambda ns, x: ns.pad(x, (1, 2)), [(2, 3)]),
    ("pad_two", lambda ns, x: ns.pad(x, (1, 0, 2, 1)), [(2, 3)]),
    ("pad_three_value", lambda ns, x: ns.pad(x, (0, 0, 1, 1, 2, 0), value=1.5), [(2, 3, 2)]),
    ("flip", lambda ns, x: x.flip(0), [(3, 4)]),
    ("flip_dims", lambda ns, x: x.flip((0, 2)), [(2, 3, 4)]),
    ("flip_neg", lambda ns, x: x.flip(-1), [(2, 3)]),
    ("repeat", lambda ns, x: x.repeat(2, 1, 3), [(2, 3, 1)]),
    ("repeat_lead", lambda ns, x: x.repeat(2, 1, 1, 2), [(2, 3)]),
    ("tril", lambda ns, x: x.tril(), [(4, 4)]),
    ("tril_k", lambda ns, x: x.tril(1), [(3, 4)]),
    ("tril_-k", lambda ns, x: x.tril(-1), [(4, 3)]),
    ("triu", lambda ns, x: x.triu(), [(3, 4)]),
    ("triu_k", lambda ns, x: x.triu(2), [(4, 4)]),
    ("triu_-k_batched", lambda ns, x: x.triu(-1), [(2, 3, 4)]),
    ("tril_batched", lambda ns, x: x.tril(1), [(2, 4, 3)]),
    ("gather_0", lambda ns, x, i: x.gather(0, i), [(3, 4), _idx([0, 2, 2, 1], [1, 1, 0, 0])]),
    ("gather_-1", lambda ns, x, i: x.gather(-1, i), [(3, 4), _idx([3, 3], [0, 1], [2, 0])]),
    ("scatter_add", lambda ns, x, i, s: x.scatter_add(1, i, s),
     [(3, 4), _idx([0, 0, 3], [1, 2, 1], [3, 3, 3]), (3, 3)]),
    ("scatter_add_0", lambda ns, x, i, s: x.scatter_add(0, i, s),
     [(3, 2), _idx([2, 0], [2, 2]), (2, 2)]),
    ("index_add", lambda ns, x, i, s: x.index_add(0, i, s),
     [(4, 3), _idx(1, 3, 1), (3, 3)]),
    ("index_add_alpha", lambda ns, x, i, s: x.index_add(-1, i, s, alpha=2.5),
     [(2, 4), _idx(0, 0, 2), (2, 3)]),
    ("index_select", lambda ns, x, i: x.index_select(1, i), [(3, 4), _idx(3, 0, 3)]),
    ("index_select_-2", lambda ns, x, i: x.index_select(-2, i), [(3, 4), _idx(2, 1)]),
    ("contiguous", lambda ns, x: x.mT.contiguous(), [(3, 4)]),
    ("clone", lambda ns, x: x[:, 1:].clone(), [(3, 4)]),
    ("to_float32", lambda ns, x: x.to(ns.float32) * 1.0, [(3, 2)]),
    ("to_float64", lambda ns, x: x.to(ns.float64), [(3, 2)]),
]


def _make(inputs: list[Any], widen: bool = False) -> list[np.ndarray]:
    """Random float arrays for shape entries (last dim doubled when ``widen``), others as is."""
    rng = np.random.default_rng(0)
    out = []
    for item in inputs:
        if isinstance(item, tuple):
            shape = item[:-1] + (2 * item[-1],) if widen else item
            out.append(rng.standard_normal(shape))
        else:
            out.append(item)
    return out


def _is_float(t: Any) -> bool:
    return t.dtype.is_floating_point if isinstance(t, lg.Tensor) else t.is_floating_point()


def _strided(fn: Callable[..., Any], ns: Any) -> Callable[..., Any]:
    """``fn`` applied to every-other-column (non-contiguous) views of the float inputs."""
    return lambda *ts: fn(ns, *[t[..., ::2] if _is_float(t) else t for t in ts])


IDS = [c[0] for c in CASES]
# A float32 result is too coarse for the default step; the cast is linear, so a big one is exact.
GRADCHECK_EPS = {"to_float32": 1e-2}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, fn, inputs", CASES, ids=IDS)
def test_parity(name, fn, inputs, dtype):
    check_parity(lambda *ts: fn(LG, *ts), _make(inputs), lambda *ts: fn(TH, *ts), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, fn, inputs", CASES, ids=IDS)
def test_parity_non_contiguous(name, fn, inputs, dtype):
    check_parity(_strided(fn, LG), _make(inputs, widen=True), _strided(fn, TH), dtype)


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=IDS)
def test_gradcheck(name, fn, inputs):
    tensors = [lg.tensor(a).requires_grad_() if a.dtype.kind == "f" else lg.tensor(a)
               for a in _make(inputs)]
    assert gradcheck(lambda *ts: fn(LG, *ts), tensors, eps=GRADCHECK_EPS.get(name, 1e-6))


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=IDS)
def test_gradcheck_non_contiguous(name, fn, inputs):
    tensors = [lg.tensor(a).requires_grad_() if a.dtype.kind == "f" else lg.tensor(a)
               for a in _make(inputs, widen=True)]
    assert gradcheck(_strided(fn, LG), tensors, eps=GRADCHECK_EPS.get(name, 1e-6))


def test_scatter_add_src_larger_than_index():
    # torch's own backward rejects this case, so check the forward against torch and the
    # backward against finite differences: src entries outside index's extent get zero grad.
    args = _make([(3, 2), _idx([2, 0], [2, 2]), (3, 4)])
    check_parity(lambda x, i, s: x.scatter_add(0, i, s), args, grad=False)
    x, s = lg.tensor(args[0], requires_grad=True), lg.tensor(args[2], requires_grad=True)
    assert gradcheck(lambda x, s: x.scatter_add(0, lg.tensor(args[1]), s), [x, s])
    x.scatter_add(0, lg.tensor(args[1]), s).sum().backward()
    np.testing.assert_array_equal(s.grad.numpy(), [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])


# ----------------------------------------------------------------------------- dtypes


def test_cat_mixed_float_dtypes_promotes_and_casts_grads_back():
    a = np.random.default_rng(1).standard_normal((2, 3))
    b = np.random.default_rng(2).standard_normal((1, 3))
    x = lg.tensor(a, dtype=lg.float32, requires_grad=True)
    y = lg.tensor(b, dtype=lg.float64, requires_grad=True)
    tx = torch.tensor(a, dtype=torch.float32, requires_grad=True)
    ty = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    out, tout = lg.cat([x, y], dim=-2), torch.cat([tx, ty], dim=-2)
    assert_close(out, tout, "float32")
    w = np.arange(9.0).reshape(3, 3)
    (out * lg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    assert x.grad.dtype is lg.float32 and y.grad.dtype is lg.float64
    assert_close(x.grad, tx.grad, "float32")
    assert_close(y.grad, ty.grad, "float64")


def test_cat_and_stack_int_with_float():
    i = np.array([[1, 2, 3]])
    f = np.array([[0.5, 1.5, 2.5]], dtype=np.float32)
    assert_close(lg.cat([lg.tensor(i), lg.tensor(f)]),
                 torch.cat([torch.tensor(i), torch.tensor(f)]), "float32")
    assert_close(lg.stack([lg.tensor(i), lg.tensor(i)], -1),
                 torch.stack([torch.tensor(i), torch.tensor(i)], -1))


@pytest.mark.parametrize("src, dst", [("float64", "float32"), ("float32", "float64"),
                                      ("float32", "float16"), ("float64", "int64"),
                                      ("int64", "float32"), ("float32", "bool")])
def test_to_dtype(src, dst):
    a = np.array([[-1.75, 0.0, 2.5], [3.25, -0.5, 7.0]])
    x = lg.tensor(a).to(getattr(lg, src) if src != "bool" else lg.bool)
    tx = torch.tensor(a).to(getattr(torch, src))
    out = x.to(getattr(lg, dst))
    assert_close(out, tx.to(getattr(torch, dst)), dst)


def test_to_same_dtype_returns_self_and_copy_true_copies():
    x = lg.ones(3)
    assert x.to(lg.float32) is x
    y = x.to(lg.float32, copy=True)
    y.add_(1)
    assert x.tolist() == [1.0, 1.0, 1.0]


def test_to_int_has_no_grad():
    x = lg.tensor([1.5, 2.5], requires_grad=True)
    y = x.to(lg.int64)
    assert not y.requires_grad and y.grad_fn is None


# ----------------------------------------------------------------------------- memory


def _base() -> tuple[np.ndarray, lg.Tensor]:
    arr = np.arange(12.0).reshape(3, 4)
    return arr, lg.from_numpy(arr)


VIEWS = {
    "reshape": lambda ns, t: t.reshape(4, 3), "view": lambda ns, t: t.view(-1),
    "permute": lambda ns, t: t.permute(1, 0), "T": lambda ns, t: t.T,
    "expand": lambda ns, t: t.unsqueeze(0).expand(2, 3, 4), "slice": lambda ns, t: t[1:, ::2],
    "ellipsis_int": lambda ns, t: t[..., None, 2], "scalar": lambda ns, t: t[1, -2],
    "narrow": lambda ns, t: t.narrow(1, 1, 2),
    "unbind": lambda ns, t: t.unbind(0)[1], "split": lambda ns, t: t.split(2, dim=1)[1],
    "squeeze": lambda ns, t: t.unsqueeze(1).squeeze(), "flatten": lambda ns, t: t.flatten(),
    "contiguous": lambda ns, t: t.contiguous(), "to_same": lambda ns, t: t.to(ns.float64),
    "detach": lambda ns, t: t.detach(),
}


@pytest.mark.parametrize("name", list(VIEWS))
def test_views_share_memory_like_torch(name):
    arr, t = _base()
    tarr = torch.from_numpy(arr.copy())
    view, tview = VIEWS[name](LG, t), VIEWS[name](TH, tarr)
    assert tview.untyped_storage().data_ptr() == tarr.untyped_storage().data_ptr()
    arr[...] = -np.arange(12.0).reshape(3, 4)  # write through the NumPy array
    tarr.copy_(torch.from_numpy(arr))
    assert_close(view, tview)


@pytest.mark.parametrize("make", [
    lambda t: t.reshape(4, 3), lambda t: t.permute(1, 0), lambda t: t[1:, ::2],
    lambda t: t[:, 1], lambda t: t.narrow(0, 1, 2), lambda t: t[2, 1],
], ids=["reshape", "permute", "slice", "int", "narrow", "scalar"])
def test_inplace_on_view_is_visible_in_base(make):
    arr, t = _base()
    tbase = torch.from_numpy(arr.copy())
    view, tview = make(t), make(tbase)
    view.mul_(-2.0)
    tview.mul_(-2.0)
    assert_close(t, tbase)
    np.testing.assert_array_equal(arr, tbase.numpy())  # the NumPy array saw it too


def test_setitem_on_view_is_visible_in_base():
    arr, t = _base()
    tbase = torch.from_numpy(arr.copy())
    t.T[1:, 0] = 100.0
    tbase.T[1:, 0] = 100.0
    assert_close(t, tbase)


@pytest.mark.parametrize("make", [
    lambda t: t.T.reshape(-1), lambda t: t.flip(0), lambda t: t.clone(),
    lambda t: t[[0, 2]], lambda t: t.repeat(1, 1), lambda t: t.tril(),
    lambda t: t.mT.contiguous(), lambda t: t.to(lg.float32),
], ids=["reshape_transposed", "flip", "clone", "advanced", "repeat", "tril",
        "contiguous_copy", "to_other"])
def test_copies_do_not_share_memory(make):
    arr, t = _base()
    out = make(t)
    before = out.numpy().copy()
    arr[...] = 0.0
    np.testing.assert_array_equal(out.numpy(), before)


def test_expand_view_is_read_only_like_torch():
    x = lg.ones(3, 1).expand(3, 4)
    with pytest.raises(RuntimeError, match="read-only"):
        x.add_(1)
    with pytest.raises(RuntimeError):
        torch.ones(3, 1).expand(3, 4).add_(1)


def test_contiguous_flags_match_torch():
    a = np.zeros((3, 4))
    cases = [lambda t: t, lambda t: t.T, lambda t: t[:, ::2], lambda t: t[1:],
             lambda t: t.T.contiguous(), lambda t: t[:, 1:].clone()]
    for make in cases:
        assert make(lg.tensor(a)).is_contiguous() == make(torch.tensor(a)).is_contiguous()


# ----------------------------------------------------------------------------- errors


def test_reshape_errors():
    x = lg.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"reshape: shape \(4, 2\) is invalid for input "
                                           r"of size 6"):
        x.reshape(4, 2)
    with pytest.raises(RuntimeError, match="only one dim can be -1"):
        x.view(-1, -1)
    with pytest.raises(RuntimeError, match="reshape"):
        x.reshape(-1, 4)


def test_permute_transpose_expand_errors():
    x = lg.zeros(2, 3, 1)
    with pytest.raises(RuntimeError, match="permute: dims .* not a permutation"):
        x.permute(0, 0, 1)
    with pytest.raises(IndexError, match="permute: dim 3 is out of range"):
        x.permute(0, 1, 3)
    with pytest.raises(IndexError, match="transpose"):
        x.transpose(0, 5)
    with pytest.raises(RuntimeError, match=r"expand: the size 3 of dim 1 .* cannot expand"):
        x.expand(2, 4, 5)
    with pytest.raises(RuntimeError, match="expand: the number of sizes"):
        x.expand(3, 4)
    with pytest.raises(RuntimeError, match="mT: tensor of shape"):
        _ = lg.zeros(3).mT


def test_squeeze_unsqueeze_flatten_errors():
    x = lg.zeros(2, 1)
    with pytest.raises(IndexError, match="squeeze: dim 2 is out of range"):
        x.squeeze(2)
    with pytest.raises(IndexError, match="unsqueeze: dim 3 is out of range"):
        x.unsqueeze(3)
    with pytest.raises(RuntimeError, match="flatten: start_dim 1 comes after end_dim 0"):
        x.flatten(1, 0)
    with pytest.raises(RuntimeError, match="unflatten|reshape"):
        lg.zeros(2, 6).unflatten(1, (4, 2))


def test_cat_stack_errors():
    with pytest.raises(RuntimeError, match=r"cat: sizes of tensors must match except in dim "
                                           r"0.*\(2, 3\).*\(2, 4\)"):
        lg.cat([lg.zeros(2, 3), lg.zeros(2, 4)])
    with pytest.raises(ValueError, match="cat: expected a non-empty"):
        lg.cat([])
    with pytest.raises(TypeError, match="cat: expected a sequence of Tensors"):
        lg.cat([lg.zeros(2), [1.0, 2.0]])
    with pytest.raises(IndexError, match="cat: dim 2 is out of range"):
        lg.cat([lg.zeros(2, 3)], dim=2)
    with pytest.raises(RuntimeError, match=r"stack: expects each tensor to be equal size.*"
                                           r"\(2,\).*\(3,\)"):
        lg.stack([lg.zeros(2), lg.zeros(3)])
    with pytest.raises(IndexError, match="stack: dim 3 is out of range"):
        lg.stack([lg.zeros(2, 3)], dim=3)


def test_split_chunk_narrow_errors():
    x = lg.zeros(4, 5)
    with pytest.raises(ValueError, match=r"split: sizes \[2, 2\] sum to 4 but dim 1"):
        x.split([2, 2], dim=1)
    with pytest.raises(ValueError, match="split: split_size must be positive"):
        x.split(0)
    with pytest.raises(RuntimeError, match="narrow: start 3 \\+ length 3 exceeds"):
        x.narrow(0, 3, 3)
    with pytest.raises(IndexError, match="narrow: start -5 is out of range"):
        x.narrow(0, -5, 1)


def test_pad_errors():
    x = lg.zeros(2, 3)
    with pytest.raises(ValueError, match="pad: pad must have an even length"):
        lg.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"pad: 6 values .* pad 3 dims but the input of "
                                         r"shape \(2, 3\) has only 2"):
        lg.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(NotImplementedError, match="pad: only mode='constant'.*'reflect'"):
        lg.pad(x, (1, 1), mode="reflect")
    with pytest.raises(ValueError, match="pad: negative padding"):
        lg.pad(x, (-1, 0))
    with pytest.raises(TypeError, match="pad: expected a Tensor"):
        lg.pad(np.zeros(3), (1, 1))


def test_pad_int_tensor_and_empty_pad():
    x = np.arange(6).reshape(2, 3)
    assert_close(lg.pad(lg.tensor(x), (1, 1), value=7),
                 torch.nn.functional.pad(torch.tensor(x), (1, 1), value=7))
    assert_close(lg.pad(lg.tensor(x), ()), torch.tensor(x))


def test_repeat_tril_errors():
    with pytest.raises(RuntimeError, match="repeat: got 1 repeats for a tensor of shape"):
        lg.zeros(2, 3).repeat(2)
    with pytest.raises(RuntimeError, match=r"tril: expects a tensor with at least 2 dims, "
                                           r"got shape \(3,\)"):
        lg.zeros(3).tril()
    with pytest.raises(RuntimeError, match="triu: expects"):
        lg.zeros(3).triu()


def test_index_op_errors():
    x = lg.zeros(3, 4)
    with pytest.raises(TypeError, match="gather: index must be an integer tensor"):
        x.gather(0, lg.zeros(3, 4))
    with pytest.raises(RuntimeError, match=r"gather: index of shape \(3,\) does not fit"):
        x.gather(0, lg.tensor([0, 1, 2]))
    with pytest.raises(IndexError, match=r"gather: index out of range.*\[-3, 3\)"):
        x.gather(0, lg.tensor([[3]]))
    with pytest.raises(IndexError, match="index_select: index out of range"):
        x.index_select(1, lg.tensor([4]))
    with pytest.raises(RuntimeError, match=r"index_add: source has shape \(2, 4\), expected "
                                           r"\(1, 4\)"):
        x.index_add(0, lg.tensor([1]), lg.zeros(2, 4))
    with pytest.raises(RuntimeError, match="scatter_add: index of shape"):
        x.scatter_add(0, lg.tensor([[0, 1, 2, 0, 1]]), lg.zeros(3, 4))
