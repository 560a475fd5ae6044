"""Module, Parameter and containers against torch.nn: registration, iteration, state_dict
keys and loading (with PyTorch's error messages), modes, dtype moves, hooks, reprs, and a
PyTorch model definition written once and run on both libraries."""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
from oracle import assert_close, to_numpy

import lightgrad as lg
import lightgrad.nn as lnn

torch = pytest.importorskip("torch")


def to_lg_state(sd: dict) -> dict:
    """A torch state_dict as lightgrad tensors (floats as float64, ints kept)."""
    return {k: lg.tensor(to_numpy(v)) for k, v in sd.items()}


def make_net(lib, p_drop: float = 0.1):
    """A small CNN written once against ``lib`` (torch or lightgrad): Sequential, ModuleList,
    ModuleDict, BatchNorm, Embedding, LayerNorm, a buffer and a tied weight."""
    nn, F = lib.nn, lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, stride=2, groups=2, bias=False), nn.AdaptiveAvgPool2d(1),
                nn.Flatten())
            self.blocks = nn.ModuleList([nn.Linear(16, 16) for _ in range(2)])
            self.heads = nn.ModuleDict({
                "cls": nn.Linear(16, 10),
                "aux": nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 4), nn.BatchNorm1d(4)),
            })
            self.emb = nn.Embedding(10, 16, padding_idx=0)
            self.head = nn.Linear(16, 10, bias=False)
            self.head.weight = self.emb.weight  # tied
            self.drop = nn.Dropout(p_drop)
            self.register_buffer("scale", lib.ones(10) * 0.5)
            self.register_buffer("cache", lib.zeros(3), persistent=False)

        def forward(self, x, ids):
            h = self.features(x)
            for block in self.blocks:
                h = F.gelu(block(h))
            h = h + self.emb(ids).mean(1)
            logits = self.heads["cls"](h) + self.head(self.drop(h)) * self.scale
            return logits, self.heads["aux"](h)

    return Net


def _pair(p_drop: float = 0.1):
    torch.manual_seed(0)
    theirs = make_net(torch, p_drop)().double()
    ours = make_net(lg, p_drop)().double()
    return ours, theirs


def _shapes(sd: dict) -> list:
    return [(k, tuple(v.shape)) for k, v in sd.items()]


# ----------------------------------------------------------------------------- Parameter


def test_parameter_is_a_tensor_sharing_memory():
    data = lg.zeros(3)
    p = lnn.Parameter(data)
    assert isinstance(p, lg.Tensor) and isinstance(p, lnn.Parameter)
    assert p.requires_grad and p.is_leaf
    data[0] = 5.0
    assert p[0].item() == 5.0  # shares memory like torch.nn.Parameter
    assert repr(p).startswith("Parameter containing:\ntensor([5., 0., 0.], ")
    assert repr(p).endswith("requires_grad=True)")
    assert not lnn.Parameter(lg.ones(1), requires_grad=False).requires_grad
    assert type(p * 2) is lg.Tensor and type(p.detach()) is lg.Tensor
    (p * p).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [10.0, 0.0, 0.0])


def test_parameter_errors_and_copies():
    with pytest.raises(RuntimeError, match="only floating-point.*int64"):
        lnn.Parameter(lg.tensor([1, 2]))
    with pytest.raises(TypeError, match="Parameter: data must be a Tensor"):
        lnn.Parameter([1.0])
    assert lnn.Parameter(lg.tensor([1, 2]), requires_grad=False).dtype is lg.int64
    p = lnn.Parameter(lg.ones(2))
    q = copy.deepcopy(p)
    assert type(q) is lnn.Parameter and q.requires_grad and q.device is p.device
    q.data = q * 3
    assert p.tolist() == [1.0, 1.0] and (q + p).tolist() == [4.0, 4.0]


# ----------------------------------------------------------------------------- registration


class Affine(lnn.Module):
    def __init__(self):
        super().__init__()
        self.weight = lnn.Parameter(lg.ones(2))
        self.register_buffer("shift", lg.zeros(2))
        self.inner = lnn.Linear(2, 2)
        self.plain = lg.ones(1)  # a plain tensor attribute: not registered

    def forward(self, x):
        return self.inner(x * self.weight + self.shift)


def test_setattr_registers_and_getattr_finds():
    m = Affine()
    assert list(m._parameters) == ["weight"] and list(m._buffers) == ["shift"]
    assert list(m._modules) == ["inner"] and "plain" in m.__dict__
    assert [n for n, _ in m.named_parameters()] == ["weight", "inner.weight", "inner.bias"]
    assert m.weight is m._parameters["weight"]
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        m.weight = lg.ones(2)
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'inner'"):
        m.inner = 3
    with pytest.raises(TypeError, match="cannot assign 'list' as buffer 'shift'"):
        m.shift = [1.0]
    m.shift = lg.ones(2)  # tensors may replace buffers
    assert m.state_dict()["shift"].tolist() == [1.0, 1.0]
    with pytest.raises(AttributeError, match="'Affine' object has no attribute 'nope'"):
        _ = m.nope
    del m.inner
    assert "inner" not in m._modules and not hasattr(m, "inner")
    m.weight = None
    assert list(m.parameters()) == [] and "weight" in m._parameters
    assert {"shift", "weight", "forward"} <= set(dir(m))


def test_registration_errors():
    class Early(lnn.Module):
        def __init__(self):
            self.w = lnn.Parameter(lg.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    m = lnn.Module()
    with pytest.raises(KeyError, match=r'buffer name can.*t contain "\."'):
        m.register_buffer("a.b", lg.ones(1))
    with pytest.raises(TypeError, match="cannot assign 'list' object to buffer 'x'"):
        m.register_buffer("x", [1])
    with pytest.raises(TypeError, match="cannot assign 'Tensor' object to parameter 'p'"):
        m.register_parameter("p", lg.ones(1))
    m.training_flag = 1
    with pytest.raises(KeyError, match="attribute 'training_flag' already exists"):
        m.register_buffer("training_flag", lg.ones(1))
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required'):
        m(lg.ones(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", lg.ones(1))


def test_reassigning_keeps_order_and_moves_between_registries():
    m = lnn.Linear(2, 2)
    m.weight = lnn.Parameter(lg.zeros(2, 2))
    assert list(m._parameters) == ["weight", "bias"]
    with pytest.raises(TypeError, match="cannot assign 'Identity' as parameter 'bias'"):
        m.bias = lnn.Identity()
    del m.bias
    m.bias = lnn.Identity()  # now a module, no longer a parameter
    assert list(m._parameters) == ["weight"] and list(m._modules) == ["bias"]
    with pytest.raises(TypeError, match="cannot assign 'Identity' as parameter 'weight'"):
        m.weight = lnn.Identity()


def test_buffers_persistent_and_not():
    m = lnn.Module()
    m.register_buffer("kept", lg.ones(1))
    m.register_buffer("temp", lg.ones(1), persistent=False)
    m.register_buffer("absent", None)
    assert [n for n, _ in m.named_buffers()] == ["kept", "temp"]
    assert list(m.state_dict()) == ["kept"]


def test_iteration_names_match_torch():
    ours, theirs = _pair()
    for fn in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(ours, fn)()] == [n for n, _ in getattr(theirs, fn)()], fn
    # the tied weight is listed once, under its first name, unless duplicates are asked for
    assert "head.weight" not in dict(ours.named_parameters())
    assert [n for n, _ in ours.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_parameters(remove_duplicate=False)]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert [n for n, _ in ours.named_parameters(prefix="m", recurse=False)] == []
    assert [n for n, _ in ours.heads.named_parameters(prefix="heads")] == \
        [n for n, _ in theirs.heads.named_parameters(prefix="heads")]
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert [type(c).__name__ for c in ours.children()] == \
        [type(c).__name__ for c in theirs.children()]
    assert ours.get_submodule("heads.aux.1") is ours.heads["aux"][1]
    with pytest.raises(AttributeError, match="no submodule `zz`"):
        ours.get_submodule("heads.zz")


def test_state_dict_keys_shapes_and_repr_match_torch():
    ours, theirs = _pair()
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert isinstance(sd, OrderedDict)
    assert _shapes(sd) == _shapes(tsd)
    assert "features.1.running_mean" in sd and "head.weight" in sd and "cache" not in sd
    assert sd["features.1.num_batches_tracked"].dtype is lg.int64
    assert not any(v.requires_grad for v in sd.values())
    assert sd["emb.weight"]._data is ours.emb.weight._data  # detached, shares memory
    kept = ours.state_dict(keep_vars=True)
    assert kept["emb.weight"] is ours.emb.weight
    assert repr(ours) == repr(theirs)


def _forward_both(ours, theirs, rng):
    x = rng.standard_normal((4, 3, 12, 12))
    ids = np.array([[0, 3, 5], [1, 0, 9], [2, 2, 2], [7, 8, 0]])
    out = ours(lg.tensor(x), lg.tensor(ids))
    tout = theirs(torch.tensor(x), torch.tensor(ids))
    return out, tout


def test_ported_model_matches_torch_in_eval_and_train():
    ours, theirs = _pair(p_drop=0.0)
    assert ours.load_state_dict(to_lg_state(theirs.state_dict())).missing_keys == []
    assert ours.head.weight is ours.emb.weight  # loading keeps the tie
    rng = np.random.default_rng(0)
    ours.eval(), theirs.eval()
    for o, t in zip(*_forward_both(ours, theirs, rng)):
        assert_close(o, t)
    ours.train(), theirs.train()
    out, tout = _forward_both(ours, theirs, rng)
    w = [rng.standard_normal(o.shape) for o in out]
    sum((o * lg.tensor(wi)).sum() for o, wi in zip(out, w)).backward()
    sum((o * torch.tensor(wi)).sum() for o, wi in zip(tout, w)).backward()
    for o, t in zip(out, tout):
        assert_close(o, t)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad)
    tsd = theirs.state_dict()
    for name, value in ours.state_dict().items():  # running stats after one training step
        assert_close(value, tsd[name])


def test_load_state_dict_errors_like_torch():
    ours, theirs = lnn.Sequential(lnn.Linear(4, 2)), torch.nn.Sequential(torch.nn.Linear(4, 2))
    bad = {"0.weight": lg.zeros(3, 4), "extra": lg.zeros(1)}
    tbad = {"0.weight": torch.zeros(3, 4), "extra": torch.zeros(1)}
    with pytest.raises(RuntimeError) as err:
        ours.load_state_dict(bad)
    with pytest.raises(RuntimeError) as terr:
        theirs.load_state_dict(tbad)
    expected = str(terr.value).replace("torch.Size([3, 4])", "(3, 4)").replace(
        "torch.Size([2, 4])", "(2, 4)")
    assert str(err.value) == expected
    assert str(err.value).startswith(
        'Error(s) in loading state_dict for Sequential:\n\tMissing key(s) in state_dict: '
        '"0.bias". \n\tUnexpected key(s) in state_dict: "extra". \n\tsize mismatch for '
        '0.weight: copying a param with shape (3, 4) from checkpoint, the shape in current '
        'model is (2, 4).')
    before = ours[0].weight.detach().clone()
    result = ours.load_state_dict({"0.bias": lg.ones(2), "extra": lg.ones(1)}, strict=False)
    assert result.missing_keys == ["0.weight"] and result.unexpected_keys == ["extra"]
    assert result == tuple(theirs.load_state_dict({"0.bias": torch.ones(2),
                                                   "extra": torch.ones(1)}, strict=False))
    assert ours[0].bias.tolist() == [1.0, 1.0]
    assert ours[0].weight.tolist() == before.tolist()
    assert repr(ours.load_state_dict(ours.state_dict())) == "<All keys matched successfully>"
    with pytest.raises(RuntimeError, match="size mismatch for 0.bias"):
        ours.load_state_dict({"0.bias": lg.ones(3)}, strict=False)
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        ours.load_state_dict([1, 2])


def test_load_state_dict_copies_in_place_and_accepts_arrays():
    m = lnn.Linear(3, 2)
    weight = m.weight
    values = np.arange(6.0).reshape(2, 3)
    m.load_state_dict({"weight": values, "bias": torch.ones(2)})  # NumPy and torch arrays
    assert m.weight is weight and m.weight.dtype is lg.float32
    np.testing.assert_array_equal(m.weight.detach().numpy(), values)
    assert m.bias.tolist() == [1.0, 1.0] and m.weight.requires_grad
    bn = lnn.BatchNorm1d(2)  # old checkpoints without num_batches_tracked still load
    bn.load_state_dict({k: v for k, v in bn.state_dict().items() if "num_batches" not in k})


# ----------------------------------------------------------------------------- modes, grads


def test_train_eval_recursive():
    ours, _ = _pair()
    assert ours.training and ours.heads["aux"][2].training
    assert ours.eval() is ours
    assert not any(m.training for m in ours.modules())
    ours.train()
    assert all(m.training for m in ours.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        ours.train("yes")


def test_zero_grad_and_requires_grad():
    m = lnn.Linear(2, 2)
    m(lg.ones(1, 2)).sum().backward()
    grad = m.weight.grad
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is grad and m.weight.grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    assert not m(lg.ones(1, 2)).requires_grad


def test_to_dtype_in_place_keeps_identity_and_int_buffers():
    m = lnn.Sequential(lnn.Linear(2, 3), lnn.BatchNorm1d(3))
    weight = m[0].weight
    m(lg.ones(4, 2)).sum().backward()
    assert m.double() is m
    assert m[0].weight is weight and weight.dtype is lg.float64
    assert weight.grad.dtype is lg.float64 and weight.requires_grad
    assert m[1].running_mean.dtype is lg.float64
    assert m[1].num_batches_tracked.dtype is lg.int64
    assert m.to(lg.float16)[0].bias.dtype is lg.float16
    assert m.to("cpu", dtype=lg.float32)[0].weight.dtype is lg.float32
    assert m.float().half().bfloat16()[0].weight.dtype is lg.bfloat16
    assert m.to(lg.zeros(1, dtype=lg.float64))[0].weight.dtype is lg.float64
    assert m.cpu()[0].weight.device == "cpu"
    with pytest.raises(TypeError, match="only accepts floating point dtypes.*int64"):
        m.to(lg.int64)


def test_apply_visits_children_then_self():
    ours, theirs = _pair()
    seen, tseen = [], []
    ours.apply(lambda m: seen.append(type(m).__name__))
    theirs.apply(lambda m: tseen.append(type(m).__name__))
    assert seen == tseen

    def fill(m):
        if isinstance(m, lnn.Linear):
            lnn.init.constant_(m.weight, 0.5)
    ours.apply(fill)
    assert ours.blocks[1].weight.detach().numpy().min() == 0.5


def test_forward_hooks():
    m = lnn.Linear(2, 2)
    calls = []
    pre = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    post = m.register_forward_hook(lambda mod, args, out: calls.append(args[0].tolist()) or
                                   out + 100)
    out = m(lg.ones(1, 2))
    assert calls == [[[0.0, 0.0]]]
    np.testing.assert_allclose(out.detach().numpy(), m.bias.detach().numpy()[None] + 100,
                               rtol=1e-6)
    first = m.register_forward_hook(lambda mod, args, out: calls.append("first"),
                                    prepend=True)
    m(lg.ones(1, 2))
    assert calls[1] == "first"
    pre.remove(), post.remove(), first.remove()
    with m.register_forward_pre_hook(lambda mod, args: lg.zeros(1, 2)):
        assert m(lg.ones(1, 2)).tolist() == m.bias.detach()[None].tolist()
    np.testing.assert_allclose(m(lg.ones(1, 2)).detach().numpy(),
                               (m.weight.sum(1) + m.bias).detach().numpy()[None], rtol=1e-6)


def test_pickle_round_trip():
    import pickle
    m = lnn.Sequential(lnn.Linear(2, 2), lnn.BatchNorm1d(2))
    c = pickle.loads(pickle.dumps(m))
    assert isinstance(c[0].weight, lnn.Parameter) and c[0].weight.requires_grad
    assert c[0].weight.tolist() == m[0].weight.tolist()
    assert c(lg.ones(3, 2)).shape == (3, 2)


def test_deepcopy_module_is_independent():
    m = lnn.Sequential(lnn.Linear(2, 2), lnn.BatchNorm1d(2))
    c = copy.deepcopy(m)
    assert c[0].weight is not m[0].weight and isinstance(c[0].weight, lnn.Parameter)
    with lg.no_grad():
        c[0].weight.fill_(0)
    assert m[0].weight.detach().abs().sum().item() > 0
    assert c(lg.ones(3, 2)).shape == (3, 2)


# ----------------------------------------------------------------------------- containers


def _lins(lib, n):
    return [lib.nn.Linear(i + 1, i + 2) for i in range(n)]


def test_sequential_like_torch():
    for lib in (lg, torch):
        s = lib.nn.Sequential(*_lins(lib, 3))
        assert len(s) == 3 and s[-1].in_features == 3
        assert isinstance(s[1:], lib.nn.Sequential) and len(s[1:]) == 2
        assert list(s[1:]._modules) == ["1", "2"]  # slicing keeps names
        s.append(lib.nn.ReLU())
        s.insert(0, lib.nn.Identity())
        del s[2]
        assert [type(m).__name__ for m in s] == ["Identity", "Linear", "Linear", "ReLU"]
        assert list(s._modules) == ["0", "1", "2", "3"]
        s.insert(-1, lib.nn.Sigmoid())
        assert [type(m).__name__ for m in s][-2:] == ["Sigmoid", "ReLU"]
        del s[-2]
        s[0] = lib.nn.Tanh()
        popped = s.pop(0)
        assert type(popped).__name__ == "Tanh" and len(s) == 3
        with pytest.raises(IndexError):
            s[5]
    named = lnn.Sequential(OrderedDict(conv=lnn.Conv2d(1, 2, 3), act=lnn.ReLU()))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    assert lnn.Sequential(lnn.Linear(3, 2), lnn.ReLU())(lg.ones(1, 3)).shape == (1, 2)


def test_module_list_like_torch():
    keys = []
    for lib in (lg, torch):
        ml = lib.nn.ModuleList(_lins(lib, 2))
        ml.append(lib.nn.ReLU())
        ml.extend([lib.nn.Tanh()])
        ml.insert(1, lib.nn.Identity())
        ml += [lib.nn.Sigmoid()]
        del ml[0]
        assert isinstance(ml[1:3], lib.nn.ModuleList)
        assert ml[-1] is list(ml)[-1]
        keys.append(([type(m).__name__ for m in ml], list(ml.state_dict()), len(ml)))
        with pytest.raises(IndexError):
            ml[10]
    assert keys[0] == keys[1]
    with pytest.raises(TypeError, match="iterable of modules"):
        lnn.ModuleList().extend(lnn.ReLU())


def test_module_dict_like_torch():
    results = []
    for lib in (lg, torch):
        md = lib.nn.ModuleDict({"a": lib.nn.Linear(2, 2)})
        md["b"] = lib.nn.ReLU()
        md.update([("c", lib.nn.Linear(2, 1))])
        md.update(lib.nn.ModuleDict({"d": lib.nn.Tanh()}))
        popped = md.pop("b")
        results.append((list(md.keys()), list(md), "a" in md, len(md),
                        type(popped).__name__, list(md.state_dict()),
                        [type(v).__name__ for v in md.values()]))
        md.clear()
        assert len(md) == 0
    assert results[0] == results[1]


def test_container_reprs_match_torch():
    def build(nn):
        return nn.Sequential(nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()]),
                             nn.ModuleDict({"x": nn.Identity()}), nn.ModuleList())
    assert repr(build(lnn)) == repr(build(torch.nn))
