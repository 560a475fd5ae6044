"""Tests for lightgrad.micro: the scalar Value engine, the tiny MLP and the graph drawing."""
from __future__ import annotations

import doctest
import math
import operator
import random
import sys
import types

import pytest

from lightgrad import micro
from lightgrad.micro import MLP, Layer, Neuron, Value, render, to_dot

# ----------------------------------------------------------------------------- helpers


def numeric_grad(f, x: float, h: float = 1e-6) -> float:
    """Central finite difference of a float -> float function."""
    return (f(x + h) - f(x - h)) / (2 * h)


UNARY = {
    "neg": (lambda v: -v, lambda x: -x),
    "exp": (lambda v: v.exp(), math.exp),
    "log": (lambda v: v.log(), math.log),
    "tanh": (lambda v: v.tanh(), math.tanh),
    "relu": (lambda v: v.relu(), lambda x: max(x, 0.0)),
    "sigmoid": (lambda v: v.sigmoid(), lambda x: 1 / (1 + math.exp(-x))),
    "pow3": (lambda v: v**3, lambda x: x**3),
    "pow-1": (lambda v: v**-1, lambda x: x**-1),
    "pow0.5": (lambda v: v**0.5, math.sqrt),
    "rpow": (lambda v: 2.0**v, lambda x: 2.0**x),
    "radd": (lambda v: 1.5 + v, lambda x: 1.5 + x),
    "rsub": (lambda v: 1.5 - v, lambda x: 1.5 - x),
    "rmul": (lambda v: 1.5 * v, lambda x: 1.5 * x),
    "rdiv": (lambda v: 1.5 / v, lambda x: 1.5 / x),
}


# ----------------------------------------------------------------------------- basics


def test_module_doctests():
    failures, tried = doctest.testmod(micro, optionflags=doctest.ELLIPSIS)
    assert tried > 10
    assert failures == 0


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("x", [0.7, 1.3, 2.1])
def test_unary_ops_match_math_and_finite_differences(name, x):
    vfn, ffn = UNARY[name]
    v = Value(x)
    out = vfn(v)
    assert out.data == pytest.approx(ffn(x), rel=1e-12)
    out.backward()
    assert v.grad == pytest.approx(numeric_grad(ffn, x), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("x", [-1.7, -0.4, 0.4, 1.7])
def test_sigmoid_relu_tanh_on_both_signs(x):
    for name in ("sigmoid", "relu", "tanh"):
        vfn, ffn = UNARY[name]
        v = Value(x)
        vfn(v).backward()
        assert v.grad == pytest.approx(numeric_grad(ffn, x), rel=1e-6, abs=1e-9)


def test_binary_ops_grads():
    a, b = Value(3.0), Value(-2.0)
    for op, da, db in [
        (lambda p, q: p + q, 1.0, 1.0),
        (lambda p, q: p - q, 1.0, -1.0),
        (lambda p, q: p * q, -2.0, 3.0),
        (lambda p, q: p / q, 1 / -2.0, -3.0 / 4.0),
    ]:
        a.grad = b.grad = 0.0
        op(a, b).backward()
        assert (a.grad, b.grad) == pytest.approx((da, db))


def test_value_exponent_pow():
    x, y = Value(2.0), Value(3.0)
    z = x**y
    assert z.data == 8.0
    z.backward()
    assert x.grad == pytest.approx(3 * 2.0**2)
    assert y.grad == pytest.approx(8.0 * math.log(2.0))
    # at base 0 the exponent's grad takes the limit 0 instead of 0 * log(0)
    x0, y0 = Value(0.0), Value(2.0)
    (x0**y0).backward()
    assert (x0.grad, y0.grad) == (0.0, 0.0)


def test_pow_edge_cases():
    x = Value(-2.0)
    (x**2).backward()  # negative base, integer exponent: fine
    assert x.grad == -4.0
    z = Value(0.0)
    (z**0.5).backward()
    assert z.grad == math.inf  # like PyTorch: sqrt has infinite slope at 0
    w = Value(5.0)
    (w**0).backward()
    assert w.grad == 0.0


def test_reused_node_accumulates():
    x = Value(3.0)
    y = x * x + x  # x appears three times
    y.backward()
    assert x.grad == 2 * 3.0 + 1


def test_backward_twice_accumulates_leaf_grads_only():
    x = Value(1.5)
    h = x.tanh()
    y = h * h
    y.backward()
    g = x.grad
    y.backward()
    assert x.grad == pytest.approx(2 * g)
    # intermediate grads are recomputed, not accumulated
    assert h.grad == pytest.approx(2 * h.data)
    # two outputs sharing a subgraph: leaf grads add up
    x.grad = 0.0
    a, b = h * 2.0, h * 3.0
    a.backward()
    b.backward()
    assert x.grad == pytest.approx(5 * (1 - h.data**2))


def test_numbers_on_either_side_and_repr():
    x = Value(2.0, label="x")
    assert (1 + x).data == 3 and (x + 1).data == 3
    assert (1 - x).data == -1 and (x - 1).data == 1
    assert (3 * x).data == 6 and (x * 3).data == 6
    assert (1 / x).data == 0.5 and (x / 4).data == 0.5
    assert (2**x).data == 4 and (x**3).data == 8
    assert sum([x, x, x]).data == 6
    assert isinstance(Value(3).data, float)
    assert repr(Value(1.5)) == "Value(data=1.5, grad=0.0)"
    assert repr(x) == "Value(data=2.0, grad=0.0, label='x')"


# ----------------------------------------------------------------------------- PyTorch parity


def _random_graph(rng: random.Random, torch, n_leaves: int, n_ops: int):
    """Build the same random expression DAG in micro and in torch float64.

    Returns (leaves, nodes) as lists of (Value, tensor) pairs. Operands are drawn from all
    nodes built so far, so nodes get reused and gradients must accumulate. Ops whose input is
    outside their domain (log of a negative, huge exp, ...) are skipped.
    """
    leaves = []
    for i in range(n_leaves):
        x = rng.uniform(-2.0, 2.0)
        leaves.append((Value(x, label=f"x{i}"), torch.tensor(x, dtype=torch.float64,
                                                              requires_grad=True)))
    pool = list(leaves)
    nodes = []
    unary = ["neg", "exp", "log", "tanh", "relu", "sigmoid", "pow", "rpow", "cnum"]
    binary = ["add", "sub", "mul", "div", "vpow"]
    while len(nodes) < n_ops:
        (a, ta), (b, tb) = rng.choice(pool), rng.choice(pool)
        x, y = a.data, b.data
        op = rng.choice(unary + binary)
        c = rng.choice([0.5, 1.5, 2.0, 3.0, -1.25])
        if op == "neg":
            pair = (-a, -ta)
        elif op == "exp":
            if abs(x) > 10:
                continue
            pair = (a.exp(), ta.exp())
        elif op == "log":
            if x < 1e-2:
                continue
            pair = (a.log(), ta.log())
        elif op == "tanh":
            pair = (a.tanh(), ta.tanh())
        elif op == "relu":
            if abs(x) < 1e-9:
                continue
            pair = (a.relu(), ta.relu())
        elif op == "sigmoid":
            pair = (a.sigmoid(), ta.sigmoid())
        elif op == "pow":
            n = rng.choice([2, 3, -1, -2, 0.5, 1.5, 2.0])
            if (n < 0 and abs(x) < 1e-1) or (not float(n).is_integer() and x < 1e-2):
                continue
            pair = (a**n, ta**n)
        elif op == "rpow":
            if abs(x) > 10 or c <= 0:
                continue
            pair = (c**a, c**ta)
        elif op == "cnum":  # a Python number on one side or the other
            fn = rng.choice([operator.add, operator.sub, operator.mul, operator.truediv])
            if rng.random() < 0.5:  # number on the left: exercises __radd__ & co.
                if fn is operator.truediv and abs(x) < 1e-1:
                    continue
                pair = (fn(c, a), fn(c, ta))
            else:
                pair = (fn(a, c), fn(ta, c))
        elif op == "add":
            pair = (a + b, ta + tb)
        elif op == "sub":
            pair = (a - b, ta - tb)
        elif op == "mul":
            pair = (a * b, ta * tb)
        elif op == "div":
            if abs(y) < 1e-1:
                continue
            pair = (a / b, ta / tb)
        else:  # vpow: Value ** Value
            if x < 1e-2 or abs(y * math.log(x)) > 10:
                continue
            pair = (a**b, ta**tb)
        if not math.isfinite(pair[0].data) or abs(pair[0].data) > 1e4:
            continue
        pair[1].retain_grad()
        pool.append(pair)
        nodes.append(pair)
    return leaves, nodes


def _close(a: float, b: float, scale: float = 1.0) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-11 * max(1.0, scale))


@pytest.mark.parametrize("seed", range(40))
def test_random_expressions_match_torch(seed):
    torch = pytest.importorskip("torch")
    rng = random.Random(seed)
    for _ in range(5):  # 200 random graphs in all
        leaves, nodes = _random_graph(rng, torch, n_leaves=rng.randint(1, 5),
                                      n_ops=rng.randint(1, 30))
        # a loss that uses every node, so every op's backward runs
        weights = [rng.uniform(-1, 1) for _ in nodes]
        loss = sum((w * v for w, (v, _) in zip(weights, nodes)), Value(0.0))
        tloss = sum(w * t for w, (_, t) in zip(weights, nodes))
        assert _close(loss.data, tloss.item(), abs(tloss.item()))
        loss.backward()
        tloss.backward()
        scale = max(abs(t.grad.item()) for _, t in nodes)
        for v, t in nodes + leaves:
            assert _close(v.data, t.item(), abs(t.item())), (v.data, t.item())
            tgrad = 0.0 if t.grad is None else t.grad.item()
            assert _close(v.grad, tgrad, scale), (v.grad, tgrad)


def test_neuron_784_inputs_matches_torch():
    torch = pytest.importorskip("torch")
    rng = random.Random(0)
    xs = [rng.uniform(-1, 1) for _ in range(784)]
    n = Neuron(784, nonlin=True, seed=1)
    y = n(xs)
    y.backward()
    w = torch.tensor([p.data for p in n.w], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(n.b.data, dtype=torch.float64, requires_grad=True)
    ty = torch.relu(w @ torch.tensor(xs, dtype=torch.float64) + b)
    ty.backward()
    assert y.data == pytest.approx(ty.item(), rel=1e-12, abs=1e-12)
    grads = [p.grad for p in n.w]
    assert grads == pytest.approx(w.grad.tolist(), rel=1e-12, abs=1e-15)
    assert n.b.grad == pytest.approx(b.grad.item())


# ----------------------------------------------------------------------------- deep graphs


def test_100k_chain_backward_is_iterative():
    n = 100_000
    x0 = Value(1.0)
    x = x0
    for _ in range(n):
        x = x * 1.0001 + 0.0  # 4 Values per step: 400,001 nodes, depth 200,000
    x.backward()  # a recursive topological sort would hit RecursionError here
    assert x.data == pytest.approx(1.0001**n, rel=1e-9)
    assert x0.grad == pytest.approx(1.0001**n, rel=1e-9)


def test_to_dot_deep_chain():
    x = Value(0.0)
    for _ in range(5_000):  # far deeper than Python's recursion limit
        x = x + 1.0
    dot = to_dot(x)
    assert dot.count("shape=record") == 10_001
    assert dot.count("->") == 3 * 5_000


def test_neuron_784_inputs_linear_grads_are_the_inputs():
    xs = [i / 784 - 0.5 for i in range(784)]
    n = Neuron(784, nonlin=False, seed=0)
    y = n(xs)
    assert y.data == pytest.approx(sum(w.data * x for w, x in zip(n.w, xs)) + n.b.data)
    y.backward()
    assert [w.grad for w in n.w] == xs
    assert n.b.grad == 1.0
    x_values = [Value(x) for x in xs]
    n.zero_grad()
    n(x_values).backward()
    assert [x.grad for x in x_values] == [w.data for w in n.w]


# ----------------------------------------------------------------------------- nets


def test_neuron_layer_mlp_shapes_and_reprs():
    n = Neuron(3, seed=0)
    assert repr(n) == "ReLUNeuron(3)"
    assert repr(Neuron(2, nonlin=False, seed=0)) == "LinearNeuron(2)"
    assert len(n.parameters()) == 4
    layer = Layer(3, 2, seed=0)
    assert repr(layer) == "Layer of [ReLUNeuron(3), ReLUNeuron(3)]"
    assert len(layer([1.0, 2.0, 3.0])) == 2
    assert isinstance(Layer(3, 1, seed=0)([1.0, 2.0, 3.0]), Value)
    model = MLP(3, [4, 4, 1], seed=0)
    assert repr(model) == (
        "MLP of [Layer of [ReLUNeuron(3), ReLUNeuron(3), ReLUNeuron(3), ReLUNeuron(3)], "
        "Layer of [ReLUNeuron(4), ReLUNeuron(4), ReLUNeuron(4), ReLUNeuron(4)], "
        "Layer of [LinearNeuron(4)]]"
    )
    assert len(model.parameters()) == 4 * 4 + 4 * 5 + 5
    assert isinstance(model([1.0, 2.0, 3.0]), Value)
    assert len(MLP(2, [3, 2], seed=0)([1.0, 2.0])) == 2
    assert isinstance(MLP(2, [1, 3, 1], seed=0)([1.0, 2.0]), Value)  # 1-wide hidden layer


def test_init_is_reproducible_and_neurons_differ():
    a, b = MLP(3, [4, 1], seed=42), MLP(3, [4, 1], seed=42)
    assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
    c = MLP(3, [4, 1], rng=random.Random(42))
    assert [p.data for p in a.parameters()] == [p.data for p in c.parameters()]
    assert [p.data for p in a.parameters()] != [p.data for p in MLP(3, [4, 1], seed=7)
                                                 .parameters()]
    layer = Layer(3, 2, seed=0)
    assert layer.neurons[0].w[0].data != layer.neurons[1].w[0].data
    random.seed(123)
    d = MLP(3, [4, 1])
    random.seed(123)
    e = MLP(3, [4, 1])
    assert [p.data for p in d.parameters()] == [p.data for p in e.parameters()]
    bound = 1 / math.sqrt(3)
    assert all(-bound <= p.data <= bound for p in a.layers[0].parameters())


def test_mlp_training_reduces_loss():
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    model = MLP(3, [8, 8, 1], seed=1)  # 8 wide: no seed in 0..9 gets stuck on dead ReLUs

    def loss_fn() -> Value:
        return sum(((model(x) - y) ** 2 for x, y in zip(xs, ys)), Value(0.0)) / len(xs)

    initial = loss_fn().data
    for _ in range(100):
        loss = loss_fn()
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.05 * p.grad
    final = loss_fn().data
    assert final < initial / 100
    assert final < 0.01


def test_zero_grad():
    model = MLP(2, [3, 1], seed=0)
    model([1.0, -1.0]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


# ----------------------------------------------------------------------------- drawing


def test_to_dot_small_expression():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    d = c + 1.0  # the constant 1.0 is a leaf node too
    d.label = "d"
    d.backward()
    dot = to_dot(d)
    lines = dot.splitlines()
    assert lines[0].startswith("digraph") and lines[-1] == "}"
    value_nodes = [line for line in lines if "shape=record" in line]
    op_nodes = [line for line in lines if "shape=ellipse" in line]
    edges = [line for line in lines if "->" in line]
    assert len(value_nodes) == 5  # a, b, c, 1.0, d
    assert sorted(line.split('label="')[1][:-3] for line in op_nodes) == ["*", "+"]
    assert len(edges) == 6  # a->*, b->*, *->c, c->+, 1.0->+, +->d
    assert "{ a | data 2.0000 | grad -3.0000 }" in dot
    assert "{ b | data -3.0000 | grad 2.0000 }" in dot
    assert "{ d | data -5.0000 | grad 1.0000 }" in dot
    # every edge connects declared nodes
    names = {line.split()[0] for line in value_nodes + op_nodes}
    for edge in edges:
        src, _, dst = edge.strip().rstrip(";").split()
        assert src in names and dst in names


def test_to_dot_ops_and_escaping():
    x = Value(2.0, label='we{ird}|"<x>')
    y = (-(x**2)).exp().log().tanh().relu().sigmoid() / x - x
    dot = to_dot(y)
    for op in ('"**2"', '"neg"', '"exp"', '"log"', '"tanh"', '"relu"', '"sigmoid"', '"/"',
               '"-"'):
        assert f"label={op}" in dot
    assert r"we\{ird\}\|\"\<x\>" in dot
    assert dot.count("shape=record") == 10  # x, 8 results... and no duplicates of x
    square = x * x
    assert to_dot(square).count("-> v1_op") == 2  # one edge per operand


def test_render_without_graphviz_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    with pytest.raises(ImportError, match="pip install graphviz") as info:
        render(Value(1.0) + 2.0, str(tmp_path / "g.svg"))
    assert "to_dot" in str(info.value)


def test_render_with_graphviz(monkeypatch, tmp_path):
    calls = {}

    class FakeSource:
        def __init__(self, source):
            calls["source"] = source

        def pipe(self, format):
            calls["format"] = format
            return b"<svg/>"

    monkeypatch.setitem(sys.modules, "graphviz", types.SimpleNamespace(Source=FakeSource))
    v = Value(1.0) * 2.0
    path = str(tmp_path / "g.png")
    assert render(v, path, format="png") == path
    assert calls == {"source": to_dot(v), "format": "png"}
    with open(path, "rb") as f:
        assert f.read() == b"<svg/>"


# ----------------------------------------------------------------------------- errors


def test_error_messages():
    with pytest.raises(TypeError, match="Value: data must be a real number.*got str"):
        Value("abc")
    with pytest.raises(TypeError, match="got Value"):
        Value(Value(1.0))
    with pytest.raises(TypeError, match="got complex"):
        Value(1j)
    with pytest.raises(TypeError, match="unsupported operand"):
        Value(1.0) + "a"
    with pytest.raises(TypeError, match="unsupported operand"):
        None - Value(1.0)
    with pytest.raises(TypeError, match="unsupported operand"):
        Value(2.0) ** "a"
    with pytest.raises(ValueError, match=r"log: input must be positive, got -1\.0"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match=r"log: input must be positive, got 0\.0"):
        Value(0.0).log()
    with pytest.raises(ValueError, match=r"pow: base must be >= 0 .*got base -2\.0"):
        Value(-2.0) ** Value(2.0)
    with pytest.raises(ValueError, match=r"pow: base must be >= 0"):
        (-2) ** Value(2.0)
    with pytest.raises(ValueError, match=r"pow: negative base -2\.0 .*exponent 0\.5"):
        Value(-2.0) ** 0.5
    with pytest.raises(ZeroDivisionError, match=r"div: division by zero \(1\.0 / 0\.0\)"):
        Value(1.0) / 0
    with pytest.raises(ZeroDivisionError, match="div: division by zero"):
        1 / Value(0.0)
    with pytest.raises(ZeroDivisionError, match="pow: 0.0 cannot be raised to a negative"):
        Value(0.0) ** -1
    with pytest.raises(OverflowError, match=r"exp: .*overflows.*1000\.0"):
        Value(1000.0).exp()
    with pytest.raises(OverflowError, match="pow: result overflows"):
        Value(10.0) ** 400
    assert Value(-1000.0).sigmoid().data == 0.0  # no overflow in the stable form
    assert Value(1000.0).sigmoid().data == 1.0


def test_net_error_messages():
    with pytest.raises(ValueError, match="Neuron: expected 3 inputs, got 2"):
        Neuron(3, seed=0)([1.0, 2.0])
    with pytest.raises(ValueError, match="Neuron: nin must be a positive int, got 0"):
        Neuron(0)
    with pytest.raises(ValueError, match="Layer: nout must be a positive int, got -1"):
        Layer(2, -1)
    with pytest.raises(ValueError, match="MLP: nouts must list at least one layer"):
        MLP(2, [])
    with pytest.raises(ValueError, match="either seed or rng, not both"):
        MLP(2, [1], seed=0, rng=random.Random(0))
