"""The TensorFlow-style API: placeholders, Variables, Session, gradients, minimize. Linear
regression and an MLP classifier train; graph gradients equal eager autograd's; free
dimensions take any fed size; wrong feeds are clear errors naming the placeholder."""
from __future__ import annotations

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import nn
from lightgrad.graph import GraphError
from lightgrad.nn import functional as F

G = lg.graph


def test_linear_regression_trains():
    rng = np.random.default_rng(0)
    true_w, true_b = np.array([[2.0], [-3.0], [0.5]]), 0.7
    data = rng.normal(size=(256, 3))
    target = data @ true_w + true_b + 0.01 * rng.normal(size=(256, 1))
    with G.Graph() as g:
        x = G.placeholder((None, 3), name="x")
        y = G.placeholder((None, 1), name="y")
        w = G.Variable(np.zeros((3, 1), np.float32), name="w")
        b = G.Variable(np.zeros(1, np.float32), name="b")
        loss = ((x @ w + b - y) ** 2).mean()
        train = G.GradientDescentOptimizer(0.1).minimize(loss)
    sess = G.Session(g)
    first = sess.run(loss, {x: data, y: target})
    for step in range(60):
        rows = slice(32 * (step % 8), 32 * (step % 8) + 32 - 20 * (step % 2))  # 32 or 12
        sess.run(train, {x: data[rows], y: target[rows]})
    last = sess.run(loss, {x: data, y: target})
    assert last < first / 100
    np.testing.assert_allclose(sess.run(w), true_w, atol=0.05)
    np.testing.assert_allclose(sess.run(b), [true_b], atol=0.05)


def blobs(rng, n):
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = rng.integers(0, 3, n)
    return (centers[labels] + 0.6 * rng.normal(size=(n, 2))).astype(np.float32), labels


def test_mlp_classifier_with_nn_modules_trains():
    rng = np.random.default_rng(1)
    data, labels = blobs(rng, 300)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    with G.Graph() as g:
        x = G.placeholder((None, 2), name="x")
        t = G.placeholder((None,), lg.int64, name="labels")
        logits = model(x)
        loss = F.cross_entropy(logits, t)
        train = G.GradientDescentOptimizer(0.5).minimize(loss, model.parameters())
        accuracy = (logits.argmax(dim=1) == t).float().mean()
    sess = G.Session(g)
    before = sess.run(accuracy, {x: data, t: labels})
    for step in range(60):
        rows = slice(50 * (step % 6), 50 * (step % 6) + 50)
        sess.run(train, {x: data[rows], t: labels[rows]})
    after = sess.run(accuracy, {x: data, t: labels})
    assert before < 0.7 and after > 0.95
    with lg.no_grad():        # the module's own parameters were trained in place
        eager = (model(lg.tensor(data)).argmax(dim=1).numpy() == labels).mean()
    assert eager == pytest.approx(float(after))


def test_gradients_match_eager_autograd():
    rng = np.random.default_rng(2)
    xv, wv, vv = rng.normal(size=(4, 6)), rng.normal(size=(6, 5)), rng.normal(size=(5,))

    def model(x, w, v):
        h = (x @ w).tanh() * v
        h = F.log_softmax(h.reshape(2, 10), dim=-1).permute(1, 0)
        return (h.exp() * h).sum() + (x.sum(dim=0) ** 2).mean()

    with G.Graph() as g:
        x = G.placeholder((4, 6), lg.float64, name="x")
        w = G.Variable(wv, name="w")
        v = G.Variable(vv, name="v")
        loss = model(x, w, v)
        grads = G.gradients(loss, [x, w, v])
    got = G.Session(g).run({"loss": loss, "grads": grads}, {x: xv})
    tensors = [lg.tensor(a, requires_grad=True) for a in (xv, wv, vv)]
    want = model(*tensors)
    want.backward()
    np.testing.assert_allclose(got["loss"], want.item(), rtol=1e-12)
    for gv, t in zip(got["grads"], tensors):
        np.testing.assert_allclose(gv, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_free_dimension_takes_any_fed_size():
    with G.Graph() as g:
        x = G.placeholder((None, 3), name="x")
        flat = x.reshape(-1)
        m = x.mean()
        rows = x.sum(dim=1, keepdim=True).expand(x.shape[0], 3)
        spread = x.var(dim=0) * float(x.shape[0])        # (n - 1) and n in Python numbers
    sess = G.Session(g)
    for n in (5, 2, 5, 3):
        value = np.arange(3.0 * n).reshape(n, 3) ** 1.5
        got = sess.run([flat, m, rows, spread], {x: value})
        np.testing.assert_allclose(got[0], value.reshape(-1), rtol=1e-6)
        np.testing.assert_allclose(got[1], value.mean(), rtol=1e-6)
        np.testing.assert_allclose(got[2], np.repeat(value.sum(1, keepdims=True), 3, 1),
                                   rtol=1e-6)
        np.testing.assert_allclose(got[3], value.var(0, ddof=1) * n, rtol=1e-5)
        assert got[0].dtype == np.float32
    assert len(sess._cache) == 3


def test_fetch_structures_operations_initializer_and_sessions():
    with G.Graph() as g:
        w = G.Variable([1.0, 2.0], name="w")
        step = G.GradientDescentOptimizer(0.5).minimize((w * w).sum())
        init = G.global_variables_initializer()
    one, two = G.Session(g), G.Session(g)
    out = one.run({"a": (w, [step]), "b": w * 3})
    assert out["a"][1] == [None]
    np.testing.assert_allclose(out["a"][0], [0.0, 0.0])     # read after the update
    np.testing.assert_allclose(out["b"], [0.0, 0.0])
    np.testing.assert_allclose(two.run(w), [1.0, 2.0])       # its own values
    one.run(init)
    np.testing.assert_allclose(one.run(w), [1.0, 2.0])
    with G.Session(g) as three:
        assert three.run(step) is None
        np.testing.assert_allclose(three.run(w), [0.0, 0.0])


def test_default_graph_without_a_with_block():
    G.reset_default_graph()
    x = G.placeholder((2,), name="x")
    w = G.Variable([3.0, 4.0], name="w")
    y = (x * w).sum()
    assert G.get_default_graph() is x._data.graph
    assert float(G.Session().run(y, {x: [1.0, 1.0]})) == 7.0
    G.reset_default_graph()


def test_variable_initial_value_from_ops_in_the_block():
    with G.Graph() as g:
        w = G.Variable(lg.ones(2, 2) * 3, name="w")
        x = G.placeholder((2,), name="x")
        with pytest.raises(ValueError, match="placeholder 'x'"):
            G.Variable(x * 2, name="bad")
    np.testing.assert_allclose(G.Session(g).run(w), np.full((2, 2), 3.0))


# ----------------------------------------------------------------------------- errors


def make_graph():
    with G.Graph() as g:
        x = G.placeholder((None, 3), name="x")
        ids = G.placeholder((None,), lg.int64, name="ids")
        y = x.sum(dim=1) + ids.float()
    return g, x, ids, y


def test_missing_placeholder_is_named():
    g, x, ids, y = make_graph()
    with pytest.raises(ValueError, match="placeholder 'ids' must be fed"):
        G.Session(g).run(y, {x: np.ones((2, 3))})
    G.Session(g).run(x.sum(), {x: np.ones((2, 3))})       # ids not needed: fine


def test_wrong_shape_and_dtype_are_named():
    g, x, ids, y = make_graph()
    sess = G.Session(g)
    with pytest.raises(ValueError, match=r"placeholder 'x' has shape \(None, 3\), was fed "
                                         r"shape \(2, 4\)"):
        sess.run(y, {x: np.ones((2, 4)), ids: np.zeros(2, np.int64)})
    with pytest.raises(ValueError, match="placeholder 'x' has shape"):
        sess.run(y, {x: np.ones(3), ids: np.zeros(2, np.int64)})
    with pytest.raises(TypeError, match="placeholder 'ids' takes int64, was fed float64"):
        sess.run(y, {x: np.ones((2, 3)), ids: np.zeros(2)})
    with pytest.raises(TypeError, match="placeholder 'ids'"):
        sess.run(y, {x: np.ones((2, 3)), ids: [0.5, 1.5]})
    with pytest.raises(ValueError, match="free .* dimensions are one size per run"):
        sess.run(y, {x: np.ones((2, 3)), ids: np.zeros(3, np.int64)})


def test_misuse_errors():
    g, x, ids, y = make_graph()
    other, *_ = make_graph()
    with pytest.raises(ValueError, match="another graph"):
        G.Session(other).run(y, {})
    with pytest.raises(TypeError, match="fetches must be graph tensors"):
        G.Session(g).run(lg.ones(2))
    with pytest.raises(ValueError, match="feed_dict keys must be placeholders"):
        G.Session(g).run(y, {y: np.ones(2)})
    with pytest.raises(GraphError, match="inside one another"):
        with g:
            with other:
                pass
    with pytest.raises(ValueError, match="does not require grad"):
        G.gradients(y, [ids])
    with pytest.raises(ValueError, match="already has a placeholder named 'x'"):
        with g:
            G.placeholder((1,), name="x")


def test_tf_graph_tensors_do_not_disturb_jit():
    with G.Graph() as g:
        w = G.Variable([1.0, 2.0], name="w")
        y = w * 2
    double = lg.jit(lambda t: t * 2)
    for _ in range(3):
        assert double(lg.ones(2)).tolist() == [2.0, 2.0]
    np.testing.assert_allclose(G.Session(g).run(y), [2.0, 4.0])


def test_fetched_module_output_includes_in_place_writes_into_it():
    # nn.Linear may add its bias in place into the matmul's result: fetching the output
    # must run that write too (but not an unfetched minimize's updates).
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    data = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    with G.Graph() as g:
        x = G.placeholder((None, 2), name="x")
        logits = model(x)
        G.GradientDescentOptimizer(0.5).minimize(logits.sum(), model.parameters())
    before = [p.detach().numpy().copy() for p in model.parameters()]
    got = G.Session(g).run(logits, {x: data})
    with lg.no_grad():
        expected = model(lg.tensor(data)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), b)
