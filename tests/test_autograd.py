"""Autograd: custom Functions, backward options, higher-order grads, grad modes, hooks,
graph lifetime, in-place semantics. Every expected value comes from PyTorch or from
finite differences."""
from __future__ import annotations

import gc
import math

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.autograd import Context, Function, gradcheck

torch = pytest.importorskip("torch")


def lg64(arr, requires_grad=True):
    return lg.tensor(np.asarray(arr, dtype=np.float64), requires_grad=requires_grad)


def th64(arr, requires_grad=True):
    return torch.tensor(np.asarray(arr, dtype=np.float64), requires_grad=requires_grad)


def close(ours, theirs, rtol=1e-7, atol=1e-9):
    assert ours is not None and theirs is not None
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol,
                               atol=atol)


# ----------------------------------------------------------------------------- custom Function


class SinCosMix(Function):
    """Two outputs from two tensors and one plain float: ``(sin(x) * y * s, x * cos(y))``."""

    calls: list = []

    @staticmethod
    def forward(ctx, x, y, scale):
        ctx.save_for_backward(x, y)
        ctx.scale = scale
        return x.sin() * y * scale, x * y.cos()

    @staticmethod
    def backward(ctx, ga, gb):
        x, y = ctx.saved_tensors
        SinCosMix.calls.append(tuple(ctx.needs_input_grad))
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = ga * x.cos() * y * ctx.scale + gb * y.cos()
        if ctx.needs_input_grad[1]:
            gy = ga * x.sin() * ctx.scale - gb * x * y.sin()
        return gx, gy, None


def _torch_mix(x, y, scale):
    return x.sin() * y * scale, x * y.cos()


@pytest.fixture
def mix_calls():
    SinCosMix.calls = []
    return SinCosMix.calls


def test_custom_function_matches_builtin_ops(mix_calls):
    a, b = np.random.randn(2, 3), np.random.randn(2, 3)
    w1, w2 = np.random.randn(2, 3), np.random.randn(2, 3)
    x, y = lg64(a), lg64(b)
    p, q = SinCosMix.apply(x, y, 1.5)
    ((p * lg64(w1, False)).sum() + (q * lg64(w2, False)).sum()).backward()
    tx, ty = th64(a), th64(b)
    tp, tq = _torch_mix(tx, ty, 1.5)
    ((tp * th64(w1, False)).sum() + (tq * th64(w2, False)).sum()).backward()
    close(p, tp)
    close(q, tq)
    close(x.grad, tx.grad)
    close(y.grad, ty.grad)
    assert mix_calls == [(True, True, False)]


def test_custom_function_outputs_are_graph_nodes():
    x, y = lg64([1.0, 2.0]), lg64([3.0, 4.0])
    p, q = SinCosMix.apply(x, y, 2.0)
    assert p.requires_grad and q.requires_grad
    assert not p.is_leaf and p.grad_fn is q.grad_fn
    assert p.grad_fn.name() == "SinCosMixBackward"
    assert "grad_fn=<SinCosMixBackward>" in repr(p)
    with lg.no_grad():
        p2, _ = SinCosMix.apply(x, y, 2.0)
    assert not p2.requires_grad and p2.grad_fn is None


def test_custom_function_one_output_used_gets_zero_grad_for_the_other(mix_calls):
    a, b = np.random.randn(4), np.random.randn(4)
    x, y = lg64(a), lg64(b)
    p, _ = SinCosMix.apply(x, y, 0.5)
    p.sum().backward()
    tx, ty = th64(a), th64(b)
    _torch_mix(tx, ty, 0.5)[0].sum().backward()
    close(x.grad, tx.grad)
    close(y.grad, ty.grad)


def test_custom_function_not_asked_for_grads_inputs_dont_need(mix_calls):
    a, b = np.random.randn(3), np.random.randn(3)
    x, y = lg64(a), lg64(b, requires_grad=False)
    p, q = SinCosMix.apply(x, y, 3.0)
    (p + q).sum().backward()
    assert mix_calls == [(True, False, False)]
    assert y.grad is None
    tx, ty = th64(a), th64(b, requires_grad=False)
    tp, tq = _torch_mix(tx, ty, 3.0)
    (tp + tq).sum().backward()
    close(x.grad, tx.grad)


class Square(Function):
    """Returns a gradient for every input, needed or not; the engine must drop extras."""

    backward_calls = 0

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * x + y

    @staticmethod
    def backward(ctx, g):
        Square.backward_calls += 1
        x, _ = ctx.saved_tensors
        return g * 2 * x, g


def test_engine_ignores_grads_for_inputs_without_requires_grad():
    x, y = lg64([1.0, -2.0]), lg64([5.0, 6.0], requires_grad=False)
    Square.backward_calls = 0
    Square.apply(x, y).sum().backward()
    assert Square.backward_calls == 1
    assert y.grad is None
    tx = th64([1.0, -2.0])
    (tx * tx + th64([5.0, 6.0], False)).sum().backward()
    close(x.grad, tx.grad)


def test_no_backward_node_for_inputs_without_grad():
    x = lg64([1.0, 2.0], requires_grad=False)
    Square.backward_calls = 0
    out = Square.apply(x, x)
    assert out.grad_fn is None and not out.requires_grad
    assert Square.backward_calls == 0


def test_gradcheck_custom_function():
    x, y = lg64(np.random.randn(3)), lg64(np.random.randn(3))
    assert gradcheck(lambda a, b: SinCosMix.apply(a, b, 0.7), [x, y])


def test_gradcheck_detects_a_wrong_backward():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # should be 2 * x

    with pytest.raises(AssertionError, match="disagree"):
        gradcheck(Wrong.apply, [lg64(np.random.randn(3))])


def test_custom_function_higher_order_via_create_graph():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x

    a = np.random.randn(4)
    x = lg64(a)
    (d1,) = lg.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (d2,) = lg.autograd.grad(d1.sum(), x)
    tx = th64(a)
    (t1,) = torch.autograd.grad((tx ** 3).sum(), tx, create_graph=True)
    (t2,) = torch.autograd.grad(t1.sum(), tx)
    close(d1, t1)
    close(d2, t2)


# ----------------------------------------------------------------------------- backward()


def test_backward_with_gradient_argument():
    a, g = np.random.randn(2, 3), np.random.randn(2, 3)
    x = lg64(a)
    (x * x.sin()).backward(gradient=lg64(g, False))
    tx = th64(a)
    (tx * tx.sin()).backward(gradient=th64(g, False))
    close(x.grad, tx.grad)


def test_backward_retain_graph_runs_twice_and_accumulates():
    a = np.random.randn(3)
    x = lg64(a)
    y = x.exp().sum()
    y.backward(retain_graph=True)
    y.backward()
    tx = th64(a)
    ty = tx.exp().sum()
    ty.backward(retain_graph=True)
    ty.backward()
    close(x.grad, tx.grad)


def test_gradients_accumulate_across_backward_calls():
    a = np.random.randn(3)
    x = lg64(a)
    (x * x).sum().backward()
    grad_obj = x.grad
    x.tanh().sum().backward()
    tx = th64(a)
    (tx * tx).sum().backward()
    tx.tanh().sum().backward()
    close(x.grad, tx.grad)
    assert x.grad is grad_obj  # accumulated into the same .grad tensor, like PyTorch


@pytest.mark.filterwarnings(r"ignore:Using backward\(\) with create_graph")
def test_backward_create_graph_gives_differentiable_grad():
    a = np.random.randn(3)
    x = lg64(a)
    (x ** 3).sum().backward(create_graph=True)
    first = x.grad
    assert first.requires_grad and first.grad_fn is not None
    x.grad = None
    first.sum().backward()
    tx = th64(a)
    (tx ** 3).sum().backward(create_graph=True)
    tfirst = tx.grad
    tx.grad = None
    tfirst.sum().backward()
    close(first, tfirst)
    close(x.grad, tx.grad)


SECOND_ORDER = {
    "cube": lambda t: t ** 3,
    "sin": lambda t: t.sin(),
    "tanh": lambda t: t.tanh(),
    "softmax": lambda t: t.softmax(-1),
    "matmul_self": lambda t: t @ t,
    "matmul_tanh": lambda t: (t @ t.T).tanh(),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_derivatives_match_torch(name):
    fn = SECOND_ORDER[name]
    a, v, w = (np.random.randn(3, 3) for _ in range(3))
    x = lg64(a)
    (g,) = lg.autograd.grad(fn(x), x, grad_outputs=lg64(v, False), create_graph=True)
    (h,) = lg.autograd.grad((g * lg64(w, False)).sum(), x)
    tx = th64(a)
    (tg,) = torch.autograd.grad(fn(tx), tx, grad_outputs=th64(v, False), create_graph=True)
    (th,) = torch.autograd.grad((tg * th64(w, False)).sum(), tx)
    close(g, tg)
    close(h, th)


def test_mixed_second_derivative_of_matmul():
    a, b, v = np.random.randn(2, 3), np.random.randn(3, 4), np.random.randn(2, 4)
    x, y = lg64(a), lg64(b)
    (gx,) = lg.autograd.grad(x @ y, x, grad_outputs=lg64(v, False), create_graph=True)
    (hy,) = lg.autograd.grad((gx * gx).sum(), y)
    tx, ty = th64(a), th64(b)
    (tgx,) = torch.autograd.grad(tx @ ty, tx, grad_outputs=th64(v, False), create_graph=True)
    (thy,) = torch.autograd.grad((tgx * tgx).sum(), ty)
    close(gx, tgx)
    close(hy, thy)


def test_third_derivative_of_cube():
    x = lg64([2.0])
    (d1,) = lg.autograd.grad(x ** 3, x, create_graph=True)
    (d2,) = lg.autograd.grad(d1, x, create_graph=True)
    (d3,) = lg.autograd.grad(d2, x)
    np.testing.assert_allclose([d1.item(), d2.item(), d3.item()], [12.0, 12.0, 6.0])


def test_grad_allow_unused():
    x, z = lg64([1.0, 2.0]), lg64([3.0])
    with pytest.raises(RuntimeError, match="allow_unused"):
        lg.autograd.grad((x * x).sum(), [x, z])
    gx, gz = lg.autograd.grad((x * x).sum(), [x, z], allow_unused=True)
    tx, tz = th64([1.0, 2.0]), th64([3.0])
    tgx, tgz = torch.autograd.grad((tx * tx).sum(), [tx, tz], allow_unused=True)
    assert gz is None and tgz is None
    close(gx, tgx)


def test_grad_does_not_touch_dot_grad():
    x = lg64([1.0, 2.0])
    (g,) = lg.autograd.grad((x * 3).sum(), x)
    assert x.grad is None
    np.testing.assert_allclose(g.numpy(), [3.0, 3.0])


# ----------------------------------------------------------------------------- grad modes


def test_no_grad_context_and_enable_grad_nesting():
    x = lg.ones(2, requires_grad=True)
    with lg.no_grad():
        assert not lg.is_grad_enabled()
        assert not (x * 2).requires_grad
        with lg.enable_grad():
            assert lg.is_grad_enabled()
            assert (x * 2).requires_grad
            with lg.no_grad():
                assert not (x * 2).requires_grad
            assert lg.is_grad_enabled()
        assert not lg.is_grad_enabled()
    assert lg.is_grad_enabled()
    assert (x * 2).requires_grad


def test_set_grad_enabled_function_context_and_restore():
    with lg.set_grad_enabled(False):
        assert not lg.is_grad_enabled()
        with lg.set_grad_enabled(True):
            assert lg.is_grad_enabled()
        assert not lg.is_grad_enabled()
    assert lg.is_grad_enabled()
    try:
        lg.set_grad_enabled(False)  # a plain call switches the mode, like torch
        assert not lg.is_grad_enabled()
    finally:
        lg.set_grad_enabled(True)
    assert lg.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with lg.no_grad():
            raise ValueError("boom")
    assert lg.is_grad_enabled()


def test_grad_mode_decorators():
    x = lg.ones(2, requires_grad=True)

    @lg.no_grad()
    def off(t):
        return t * 2, lg.is_grad_enabled()

    @lg.enable_grad()
    def on(t):
        return t * 2, lg.is_grad_enabled()

    @lg.set_grad_enabled(False)
    def off2(t):
        return t * 2, lg.is_grad_enabled()

    # decorating must not change the mode outside the function
    assert lg.is_grad_enabled()
    y, mode = off(x)
    assert not mode and not y.requires_grad
    assert lg.is_grad_enabled()
    y, mode = off2(x)
    assert not mode and not y.requires_grad
    assert lg.is_grad_enabled()
    with lg.no_grad():
        y, mode = on(x)
        assert mode and y.requires_grad
        assert not lg.is_grad_enabled()


def test_no_grad_object_restores_mode_at_entry_not_creation():
    manager = lg.no_grad()  # created while grad is on
    with lg.set_grad_enabled(False):
        with manager:
            pass
        assert not lg.is_grad_enabled()
    assert lg.is_grad_enabled()


# ----------------------------------------------------------------------------- hooks


def test_hook_on_leaf_modifies_grad_and_removes():
    a = np.random.randn(3)
    x = lg64(a)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    (x * x).sum().backward()
    tx = th64(a)
    tx.register_hook(lambda g: g * 10)
    (tx * tx).sum().backward()
    close(x.grad, tx.grad)
    np.testing.assert_allclose(seen[0], 2 * a)
    handle.remove()
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * a)
    assert len(seen) == 1


def test_hook_on_non_leaf_changes_upstream_grads():
    a = np.random.randn(3)
    x = lg64(a)
    h = x.sin()
    handle = h.register_hook(lambda g: g * g + 1)
    (h * 3).sum().backward()
    tx = th64(a)
    th = tx.sin()
    th.register_hook(lambda g: g * g + 1)
    (th * 3).sum().backward()
    close(x.grad, tx.grad)
    handle.remove()
    x.grad = None
    h = x.sin()
    (h * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.cos(a))


def test_hook_returning_none_keeps_grad():
    x = lg64([1.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: None)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="register_hook"):
        lg.ones(2).register_hook(lambda g: g)


def test_retain_grad():
    a = np.random.randn(3)
    x = lg64(a)
    h = x.exp()
    h.retain_grad()
    other = x * 2
    (h * h + other).sum().backward()
    tx = th64(a)
    th = tx.exp()
    th.retain_grad()
    (th * th + tx * 2).sum().backward()
    close(h.grad, th.grad)
    close(x.grad, tx.grad)
    assert other.grad is None  # non-leaf without retain_grad keeps no .grad


def test_is_leaf_and_grad_fn_names():
    x = lg.ones(2, requires_grad=True)
    c = lg.ones(2)
    assert x.is_leaf and x.grad_fn is None
    assert c.is_leaf and (c * 2).is_leaf  # no grad needed: still a leaf, like torch
    names = {
        "MulBackward": x * 2, "AddBackward": x + 1, "ExpBackward": x.exp(),
        "SumBackward": x.sum(), "TanhBackward": x.tanh(), "DivBackward": x / 3,
    }
    for name, t in names.items():
        assert not t.is_leaf
        assert t.grad_fn.name() == name
        assert f"grad_fn=<{name}>" in repr(t)
    assert x.detach().is_leaf and not x.detach().requires_grad
    with lg.no_grad():
        assert (x * 2).is_leaf


# ----------------------------------------------------------------------------- graph lifetime


def test_second_backward_through_freed_graph_raises():
    x = lg64([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_saved_tensors_are_released_after_backward():
    x = lg64([1.0, 2.0])
    y = x.exp()
    node = y.grad_fn
    y.sum().backward()
    assert node._saved is None


def _count_live(cls):
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), cls))


def test_memory_stays_flat_over_10k_training_steps():
    lg.manual_seed(0)
    w1 = lg.randn(4, 8, requires_grad=True)
    w2 = lg.randn(8, 1, requires_grad=True)
    x, y = lg.randn(16, 4), lg.randn(16, 1)

    def step():
        loss = (((x @ w1).tanh() @ w2 - y) ** 2).mean()
        loss.backward()
        with lg.no_grad():
            for p in (w1, w2):
                p -= 0.05 * p.grad
                p.grad = None
        return loss.item()

    first = step()
    for _ in range(999):
        step()
    nodes_at_1k, tensors_at_1k = _count_live(Context), _count_live(lg.Tensor)
    for _ in range(9000):
        last = step()
    assert _count_live(Context) == nodes_at_1k
    assert _count_live(lg.Tensor) == tensors_at_1k
    assert last < first  # the steps really trained


def test_graph_is_collected_once_unreferenced():
    import weakref
    x = lg64([1.0, 2.0])
    y = (x.sin() * x).exp()
    ref = weakref.ref(y.grad_fn)
    del y
    gc.collect()
    assert ref() is None


def test_diamond_graph():
    a = np.random.randn(4)
    x = lg64(a)
    left, right = x.sin(), x.exp()
    (left * right + left).sum().backward()
    tx = th64(a)
    tl, tr = tx.sin(), tx.exp()
    (tl * tr + tl).sum().backward()
    close(x.grad, tx.grad)


def test_shared_node_backward_runs_once_with_summed_grad():
    class Counted(Function):
        calls = 0

        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            Counted.calls += 1
            return g * 2

    a = np.random.randn(3)
    x = lg64(a)
    h = Counted.apply(x)
    (h.sin() + h.cos() + h).sum().backward()
    assert Counted.calls == 1
    tx = th64(a)
    th = tx * 2
    (th.sin() + th.cos() + th).sum().backward()
    close(x.grad, tx.grad)


def test_deep_chain_10k_ops_no_recursion_error():
    x = lg64([0.5])
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10_000], rtol=1e-9)
    z = x
    for _ in range(10_000):
        z = z.sin()
    del z  # tearing down an unused deep graph must not recurse either
    gc.collect()


# ----------------------------------------------------------------------------- in-place


INPLACE = {  # op(tensor, library)
    "add_": lambda t, lib: t.add_(1.0),
    "sub_": lambda t, lib: t.sub_(1.0),
    "mul_": lambda t, lib: t.mul_(2.0),
    "div_": lambda t, lib: t.div_(2.0),
    "zero_": lambda t, lib: t.zero_(),
    "fill_": lambda t, lib: t.fill_(3.0),
    "clamp_": lambda t, lib: t.clamp_(0.0, 1.0),
    "copy_": lambda t, lib: t.copy_(lib.zeros(3)),
    "iadd": lambda t, lib: t.__iadd__(1.0),
}


@pytest.mark.parametrize("op", sorted(INPLACE))
def test_inplace_on_leaf_requiring_grad_raises(op):
    x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    name = op if op != "iadd" else "add_"
    with pytest.raises(RuntimeError, match=rf"{name}: a leaf tensor that requires grad.*"
                                           r"in-place"):
        INPLACE[op](x, lg)
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0, 3.0])
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        INPLACE[op](tx, torch)


@pytest.mark.parametrize("op", sorted(INPLACE))
def test_inplace_on_leaf_under_no_grad_works(op):
    x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with lg.no_grad():
        INPLACE[op](x, lg)
    with torch.no_grad():
        INPLACE[op](tx, torch)
    np.testing.assert_allclose(x.detach().numpy(), tx.detach().numpy())
    assert x.is_leaf and x.requires_grad and x.grad_fn is None


def test_modifying_saved_output_raises_with_version():
    x = lg64([1.0, 2.0])
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"ExpBackward.*modified by an in-place.*version 1"
                                           r".*expected version 0"):
        y.sum().backward()


def test_modifying_saved_input_under_no_grad_raises():
    x = lg64([1.0, 2.0])
    y = x.sin()
    with lg.no_grad():
        x.mul_(2)
    with pytest.raises(RuntimeError, match=r"SinBackward.*version"):
        y.sum().backward()


def test_modifying_non_leaf_saved_by_later_op_raises():
    x = lg64([1.0, 2.0])
    y = x * 2
    z = y.sin()
    y.mul_(3)
    with pytest.raises(RuntimeError, match="version"):
        z.sum().backward()


INPLACE_NON_LEAF = {
    "mul_detached": lambda x, o: (lambda y: y.mul_(y.detach() + 1))(x * 2),
    "add_other": lambda x, o: (x * 2).add_(o * o),
    "sub_alpha": lambda x, o: (x + 1).sub_(o, alpha=3),
    "div_other": lambda x, o: (x + 5).div_(o * o + 1),
    "chain": lambda x, o: (x.sin() * 1).mul_(2).add_(x).clamp_(-0.5, 0.8),
    "pow_": lambda x, o: (x * 1).pow_(2),
    "setitem": lambda x, o: _setitem(x * 1, o),
}


def _setitem(y, o):
    y[0] = o[1] * 5
    return y


@pytest.mark.parametrize("name", sorted(INPLACE_NON_LEAF))
def test_inplace_on_non_leaf_gives_correct_gradients(name):
    fn = INPLACE_NON_LEAF[name]
    a, b, w = np.random.randn(3), np.random.randn(3), np.random.randn(3)
    x, o = lg64(a), lg64(b)
    out = fn(x, o)
    (out * lg64(w, False)).sum().backward()
    tx, to = th64(a), th64(b)
    tout = fn(tx, to)
    (tout * th64(w, False)).sum().backward()
    close(out, tout)
    close(x.grad, tx.grad)
    if to.grad is None:
        assert o.grad is None
    else:
        close(o.grad, to.grad)


def test_inplace_through_view_of_non_leaf():
    x, tx = lg64([1.0, 2.0, 3.0]), th64([1.0, 2.0, 3.0])
    y, ty = x * 2, tx * 2
    y[1:].mul_(3)
    ty[1:].mul_(3)
    y.sum().backward()
    ty.sum().backward()
    close(y, ty)
    close(x.grad, tx.grad)


def test_detach_shares_version_with_source():
    x = lg64([1.0, 2.0])
    y = x.exp()
    d = y.detach()
    d.add_(1)  # changes y's memory, so y's saved value is stale
    with pytest.raises(RuntimeError, match="version"):
        y.sum().backward()
    assert math.isclose(y.detach().numpy()[0], math.e + 1)


def test_leaf_grads_never_share_memory():
    # Add's backward hands the same gradient buffer to both inputs; reshape's is a view
    a = lg.ones(3, requires_grad=True)
    b = lg.ones(3, requires_grad=True)
    c = lg.ones(1, 3, requires_grad=True)
    given = lg.ones(3)
    (a + b + c.reshape(3)).backward(given)
    a.grad.zero_()
    assert b.grad.tolist() == [1.0, 1.0, 1.0]
    assert c.grad.tolist() == [[1.0, 1.0, 1.0]]
    assert given.tolist() == [1.0, 1.0, 1.0]
    b.grad.mul_(5)
    assert c.grad.tolist() == [[1.0, 1.0, 1.0]] and given.tolist() == [1.0, 1.0, 1.0]


class ReturnsItsSavedOutput(Function):
    """``(exp(x), 2 * x)`` saving the first output, as Exp does; backward reads it back."""

    @staticmethod
    def forward(ctx, x):
        y, z = x.exp(), x * 2
        ctx.save_for_backward(x, y)
        return y, z

    @staticmethod
    def backward(ctx, gy, gz):
        x, y = ctx.saved_tensors
        assert y.grad_fn is ctx  # a saved output comes back linked to its node
        return gy * y + gz * 2


@pytest.mark.parametrize("make", [lambda x: x.exp(), lambda x: x.tanh(), lambda x: x.relu(),
                                  lambda x: ReturnsItsSavedOutput.apply(x)[0]],
                         ids=["exp", "tanh", "relu", "custom"])
def test_saved_outputs_make_no_reference_cycle(make):
    # An output saved for backward must not keep its node alive through itself: without
    # the cyclic collector, dropping the output frees the node and the saved memory.
    import weakref
    x = lg64([0.5, -1.0])
    gc.disable()
    try:
        y = make(x)
        node, out = weakref.ref(y.grad_fn), weakref.ref(y)
        del y
        assert node() is None and out() is None
    finally:
        gc.enable()


def test_saved_outputs_of_a_multi_output_function_give_torch_grads():
    x, tx = lg64([0.5, -1.0, 2.0]), th64([0.5, -1.0, 2.0])
    y, z = ReturnsItsSavedOutput.apply(x)
    (y * 3 + z).sum().backward()
    ((tx.exp() * 3) + tx * 2).sum().backward()
    close(x.grad, tx.grad)
    y, _ = ReturnsItsSavedOutput.apply(x)
    y.mul_(2)  # the saved output changed in place: its node can't backward any more
    with pytest.raises(RuntimeError, match="ReturnsItsSavedOutputBackward.*version 1"):
        y.sum().backward()


def test_custom_forward_reads_needs_input_grad_without_recording():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen.append(tuple(ctx.needs_input_grad))
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g, g

    a, b = lg64([1.0]), lg64([2.0], requires_grad=False)
    with lg.no_grad():
        Probe.apply(a, b)
    Probe.apply(a, b)
    assert seen == [(False, False), (True, False)]


def test_unrecorded_fast_path_records_nothing_and_shared_ctx_stays_empty():
    # With nothing to record, hot Tensor methods hand their op's forward a shared ctx:
    # results carry no graph, and a forward that tried to keep state on it would raise.
    from lightgrad.autograd import UNRECORDED
    x = lg64([[1.0, -2.0], [3.0, 4.0]])
    with lg.no_grad():
        outs = [x + x, x - 1, x * x, x / 2, x.exp(), x.relu(), x.sum(), x @ x,
                x.reshape(4), x[0], x[:, -1], x.gelu()]
    assert not any(o.requires_grad or o.grad_fn is not None for o in outs)
    assert vars(UNRECORDED) == {}
    with pytest.raises(AttributeError, match="must not store"):
        UNRECORDED.shape = (2,)
