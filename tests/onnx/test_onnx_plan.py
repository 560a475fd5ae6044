"""The CPU replay plan (``lightgrad/onnx/plan.py``): each lowering (im2col convolution,
fused 2x2 max pool, row-merged matmul, in-place adds) equals onnxruntime and the eager
path, with the C kernels and with their NumPy twins, and is the path actually taken."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_helpers import make_model, ort_run, small_mlp, tensor_info

import lightgrad as lg
from lightgrad.backends import cpu_native
from lightgrad.onnx import fast, plan, plan_conv

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _replays(m, x: np.ndarray, calls: int = 3) -> np.ndarray:
    """The last of ``calls`` no-grad calls (eager, traced, replayed)."""
    with lg.no_grad():
        outs = [m(lg.from_numpy(x)) for _ in range(calls)]
    return outs[-1].numpy()


def _eager(m, x: np.ndarray) -> np.ndarray:
    m.fast_path.enabled = False
    try:
        with lg.no_grad():
            return m(lg.from_numpy(x)).numpy()
    finally:
        m.fast_path.enabled = True


def _plan_of(m) -> plan.NumpyPlan:
    (entry,) = [e for e in m.fast_path._cache.values() if isinstance(e, fast._Replay)]
    assert entry.plan is not None, "the replay runs through the Executor, not the plan"
    return entry.plan


def _work(p: plan.NumpyPlan) -> list[str]:
    """The plan's steps but those that set the BLAS thread count."""
    return [s for s in p.describe() if not s.startswith("blas threads")]


@pytest.fixture(params=["C", "numpy"])
def kernels(request, monkeypatch):
    """Run each test with the C kernels (when they build here) and with NumPy only."""
    if request.param == "numpy":
        monkeypatch.setattr(plan_conv, "_KERNELS", dict.fromkeys(plan_conv._SIGNATURES))
    elif plan_conv.c_kernel("maxpool2") is None:
        pytest.skip("no C compiler: the C kernels can't be built here")
    return request.param


def _conv_model(shape, cout, k, strides, pads, dilations, bias: bool, pool: bool):
    """Conv (then Relu and a 2x2 MaxPool when ``pool``)."""
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((cout, shape[1], k, k)).astype(np.float32)}
    conv_in = ["x", "w"]
    if bias:
        inits["b"] = rng.standard_normal(cout).astype(np.float32)
        conv_in.append("b")
    nodes = [helper.make_node("Conv", conv_in, ["c"], kernel_shape=[k, k], strides=strides,
                              pads=pads, dilations=dilations)]
    out = "c"
    if pool:
        nodes += [helper.make_node("Relu", ["c"], ["r"]),
                  helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2],
                                   strides=[2, 2])]
        out = "y"
    return make_model(nodes, [tensor_info("x", TensorProto.FLOAT, list(shape))],
                      [tensor_info(out, TensorProto.FLOAT, None)], inits)


CONVS = [  # shape, cout, k, strides, pads, dilations, bias, pool
    ((1, 1, 12, 12), 4, 3, [1, 1], [1, 1, 1, 1], [1, 1], True, True),
    ((3, 5, 10, 9), 6, 3, [1, 1], [0, 2, 1, 0], [1, 1], False, False),
    ((2, 3, 11, 11), 4, 3, [2, 2], [1, 1, 1, 1], [1, 1], True, False),
    ((2, 2, 13, 12), 3, 3, [1, 2], [2, 1, 2, 1], [2, 1], True, False),
    ((2, 4, 9, 8), 5, 1, [1, 1], [0, 0, 0, 0], [1, 1], True, True),
    ((1, 3, 6, 40), 2, 5, [1, 1], [2, 2, 2, 2], [1, 1], True, True),  # rows > 16 wide
]


@pytest.mark.parametrize("case", CONVS, ids=lambda c: f"{c[0]}-k{c[2]}-s{c[3]}-d{c[5]}")
def test_conv_plan_matches_onnxruntime_and_eager(case, kernels):
    shape, cout, k, strides, pads, dilations, bias, pool = case
    model = _conv_model(shape, cout, k, strides, pads, dilations, bias, pool)
    m = lg.onnx.load(model)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    got = _replays(m, x)
    np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got, _eager(m, x), rtol=1e-5, atol=1e-5)
    steps = " | ".join(_plan_of(m).describe())
    assert "conv2d im2col" in steps
    assert ("(C)" in steps) == (kernels == "C")
    assert ("max pool 2x2" in steps) == pool
    x2 = np.random.default_rng(2).standard_normal(shape).astype(np.float32)  # new data
    np.testing.assert_allclose(_replays(m, x2, calls=1), _eager(m, x2), rtol=1e-5, atol=1e-5)


def _then_conv(first, x_shape: list, y_shape: list, seed: int) -> list[str]:
    """A model ``first`` -> 3x3 Conv (pad 1, 3 -> 4 channels): checks its replay against
    onnxruntime and returns the plan's work steps."""
    rng = np.random.default_rng(seed)
    nodes = [first, helper.make_node("Conv", [first.output[0], "w"], ["y"],
                                     kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    model = make_model(nodes, [tensor_info("x", TensorProto.FLOAT, x_shape)],
                       [tensor_info("y", TensorProto.FLOAT, y_shape)],
                       {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32)})
    m = lg.onnx.load(model)
    x = rng.standard_normal(x_shape).astype(np.float32)
    np.testing.assert_allclose(_replays(m, x), ort_run(model, {"x": x})[0], rtol=1e-4,
                               atol=1e-5)
    return _work(_plan_of(m))


def test_conv_input_computed_into_the_padded_buffer(kernels):
    """Relu -> Conv: the relu writes straight into the conv's padded input (no copy)."""
    steps = _then_conv(helper.make_node("Relu", ["x"], ["r"]), [2, 3, 7, 7], [2, 4, 7, 7], 3)
    assert len(steps) == 2 and steps[0] == "relu"  # relu, conv: no separate copy step
    assert steps[1].startswith("conv2d im2col")


@pytest.mark.parametrize("relu", [True, False])
def test_max_pool_propagates_nan_like_the_eager_path(relu, kernels):
    nodes = [helper.make_node("MaxPool", ["r" if relu else "x"], ["y"], kernel_shape=[2, 2],
                              strides=[2, 2])]
    if relu:
        nodes.insert(0, helper.make_node("Relu", ["x"], ["r"]))
    model = make_model(nodes, [tensor_info("x", TensorProto.FLOAT, [2, 3, 6, 8])],
                       [tensor_info("y", TensorProto.FLOAT, [2, 3, 3, 4])])
    m = lg.onnx.load(model)
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 8)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    x[1, 2, 5, 0] = -np.inf
    got = _replays(m, x)
    np.testing.assert_array_equal(got, _eager(m, x))  # NaN where the eager path has it
    assert np.isnan(got[0, 1, 1, 1]) and np.isnan(got).sum() == 1
    ref = ort_run(model, {"x": x})[0]  # onnxruntime's pool skips NaN; the rest agrees
    keep = ~np.isnan(got)
    np.testing.assert_array_equal(got[keep], ref[keep])
    assert any("max pool 2x2" in s for s in _plan_of(m).describe())


def test_busy_plan_falls_back_to_the_executor():
    """A call while another holds the plan's arrays runs the Executor: same numbers."""
    m = lg.onnx.load(small_mlp())
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    ref = _replays(m, x)
    (entry,) = [e for e in m.fast_path._cache.values() if isinstance(e, fast._Replay)]
    with entry.lock:
        busy = _replays(m, x, calls=1)
    np.testing.assert_allclose(busy, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ref, ort_run(small_mlp(), {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_a_plan_that_disagrees_with_the_trace_is_not_used(monkeypatch):
    def wrong(self, inputs):
        return [np.zeros_like(o) for o in self.outputs]
    monkeypatch.setattr(plan.NumpyPlan, "__call__", wrong)
    _assert_replayed_without_a_plan(seed=6)


def _assert_replayed_without_a_plan(seed: int) -> None:
    """The small MLP's replays are right, and came from the Executor (no plan was kept)."""
    m = lg.onnx.load(small_mlp())
    x = np.random.default_rng(seed).standard_normal((3, 4)).astype(np.float32)
    got = _replays(m, x)
    np.testing.assert_allclose(got, ort_run(small_mlp(), {"x": x})[0], rtol=1e-5, atol=1e-6)
    (entry,) = [e for e in m.fast_path._cache.values() if isinstance(e, fast._Replay)]
    assert entry.plan is None and m.fast_path.stats["replayed"] == 1


def test_batched_matmul_rows_and_bias_in_place():
    """(N, T, K) @ (K, M) + bias: one product over all rows, the add into its result."""
    rng = np.random.default_rng(7)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Add", ["h", "b"], ["y"])]
    model = make_model(nodes, [tensor_info("x", TensorProto.FLOAT, [3, 5, 6])],
                       [tensor_info("y", TensorProto.FLOAT, [3, 5, 4])],
                       {"w": rng.standard_normal((6, 4)).astype(np.float32),
                        "b": rng.standard_normal(4).astype(np.float32)})
    m = lg.onnx.load(model)
    x = rng.standard_normal((3, 5, 6)).astype(np.float32)
    first = _replays(m, x)
    np.testing.assert_allclose(first, ort_run(model, {"x": x})[0], rtol=1e-5, atol=1e-5)
    assert _work(_plan_of(m)) == ["matmul", "add"]
    first[:] = 0  # the caller owns its outputs: the next call is unaffected
    np.testing.assert_allclose(_replays(m, x, calls=1), _eager(m, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["cnn", "transformer", "resnet"])
def test_exported_models_use_the_plan(tmp_path, kind, kernels):
    torch = pytest.importorskip("torch")
    from test_onnx_finetune import TorchCNN, export_torch
    from test_onnx_models import ResNet18, TransformerBlock
    torch.manual_seed(0)
    net, shape = {"cnn": (TorchCNN, (3, 1, 28, 28)), "transformer": (TransformerBlock,
                                                                      (2, 16, 64)),
                  "resnet": (ResNet18, (2, 3, 32, 32))}[kind]
    net = net()
    path = export_torch(net.eval(), (torch.randn(*shape),), tmp_path / "m.onnx",
                        input_names=["x"], dynamic_axes={"x": {0: "b"}})
    m = lg.onnx.load(path)
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    got = _replays(m, x)
    np.testing.assert_allclose(got, ort_run(path, {"x": x})[0], rtol=1e-4, atol=1e-5)
    steps = _plan_of(m).describe()
    if kind == "cnn":
        assert sum("conv2d im2col" in s for s in steps) == 2
        assert sum("max pool 2x2 " in s + " " for s in steps) == 2
    if kind == "resnet":  # strided and 1x1 convolutions too
        assert sum("conv2d im2col" in s for s in steps) >= 10
    if kind == "transformer" and cpu_native.kernel("layer_norm", np.float32) is not None:
        # the backend's C kernels called straight into the plan's arrays
        assert sum(s == "layer_norm (C)" for s in steps) == 2 and "softmax (C)" in steps
        assert not any(s.startswith("select") for s in steps)
        x2 = np.random.default_rng(15).standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(_replays(m, x2, calls=1), _eager(m, x2), rtol=1e-5,
                                   atol=1e-5)


@pytest.fixture
def two_threads():
    from lightgrad import threads
    if threads._function(threads._SETTERS) is None:
        pytest.skip("OpenBLAS's thread count can't be set here")
    auto, before = threads._Auto.on, lg.get_num_threads()
    lg.set_num_threads(2)
    yield
    lg.set_num_threads(None if auto else before)


def test_large_products_split_over_threads_and_blas_count_restored(two_threads, kernels):
    """A product of 8M+ multiply-adds is split over 2 threads by the plan (OpenBLAS on one
    thread meanwhile); the results equal onnxruntime and OpenBLAS gets its count back."""
    rng = np.random.default_rng(9)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "k", "b"], ["y"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1])]
    model = make_model(nodes, [tensor_info("x", TensorProto.FLOAT, [6, 8, 40, 64])],
                       [tensor_info("y", TensorProto.FLOAT, [6, 16, 40, 200])],
                       {"w": rng.standard_normal((64, 200)).astype(np.float32) * 0.1,
                        "k": rng.standard_normal((16, 8, 3, 3)).astype(np.float32),
                        "b": rng.standard_normal(16).astype(np.float32)})
    m = lg.onnx.load(model)
    x = rng.standard_normal((6, 8, 40, 64)).astype(np.float32)
    got = _replays(m, x)
    assert lg.get_num_threads() == 2
    np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], rtol=1e-4, atol=1e-4)
    steps = _work(_plan_of(m))
    assert steps[0] == "matmul [split over rows]"
    assert steps[-1].endswith("[split over the batch]")
    lg.set_num_threads(1)  # the same plan on one thread: the same numbers
    np.testing.assert_allclose(_replays(m, x, calls=1), got, rtol=1e-6, atol=1e-6)


def test_max_pool_of_rows_wider_than_the_kernel_buffer(kernels):
    """Rows of more than 2048 floats take the C kernel's window-by-window loop."""
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    model = make_model(nodes, [tensor_info("x", TensorProto.FLOAT, [1, 2, 4, 4100])],
                       [tensor_info("y", TensorProto.FLOAT, [1, 2, 2, 2050])])
    m = lg.onnx.load(model)
    x = np.random.default_rng(10).standard_normal((1, 2, 4, 4100)).astype(np.float32)
    x[0, 1, 3, 4001] = np.nan
    got = _replays(m, x)
    np.testing.assert_array_equal(got, _eager(m, x))
    assert np.isnan(got[0, 1, 1, 2000]) and np.isnan(got).sum() == 1
    assert any("max pool 2x2" in s for s in _plan_of(m).describe())


def test_a_plan_larger_than_the_memory_budget_is_not_built(monkeypatch):
    monkeypatch.setattr(plan, "MAX_BYTES", 64)  # the MLP's arrays take more
    _assert_replayed_without_a_plan(seed=11)


def test_split_step_runs_every_part_once_and_reraises():
    from lightgrad.onnx.plan_threads import PlanThreads, split_step
    ctx = PlanThreads()
    ctx.count = 3
    done: list = []
    step = split_step(lambda: done.append("whole"),
                      lambda k: [lambda i=i: done.append(i) for i in range(10 * k)], ctx)
    step()
    assert sorted(done) == list(range(30))  # list.append is atomic under the GIL
    ctx.count = 1
    step()
    assert done[-1] == "whole"

    def boom() -> None:
        raise RuntimeError("part failed")
    ctx.count = 2
    with pytest.raises(RuntimeError, match="part failed"):
        split_step(lambda: None, lambda k: [boom] * 4, ctx)()


def test_odd_sized_max_pool_then_conv(kernels):
    """MaxPool of odd sizes (imported as ``max_pool2d``) read by a Conv: planned too."""
    pool = helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2])
    steps = _then_conv(pool, [2, 3, 9, 11], [2, 4, 4, 5], 12)
    assert steps[0].startswith("max pool 2x2") and steps[-1].startswith("conv2d im2col")


WINOGRAD_POOLS = [  # shape, cout, pads, bias, relu
    ((2, 16, 8, 8), 16, [1, 1, 1, 1], True, True),
    ((5, 16, 6, 10), 24, [2, 1, 0, 1], False, False),  # asymmetric padding, 2 x 5 windows
    ((3, 20, 12, 4), 16, [1, 1, 1, 1], True, False),
]


@pytest.mark.parametrize("case", WINOGRAD_POOLS, ids=lambda c: f"{c[0]}-{c[1]}")
@pytest.mark.parametrize("group", ["whole", "per image"])
def test_conv_then_max_pool_by_winograd(case, group, kernels, monkeypatch, request):
    """Conv 3x3 (16+ channels) -> (Relu) -> MaxPool 2x2, then another Conv: the first pair
    is one Winograd step with the C kernels (writing into the next Conv's padded input),
    im2col and the pool step without; both equal onnxruntime and the eager path, NaN
    included."""
    shape, cout, pads, bias, relu = case
    if group == "per image":  # one image per group of transformed tiles, split over 2
        monkeypatch.setattr(plan_conv, "_WINOGRAD_BYTES", 1)
        monkeypatch.setattr(plan_conv, "LARGE_PRODUCT", 0)
        request.getfixturevalue("two_threads")
    rng = np.random.default_rng(14)
    inits = {"w": rng.standard_normal((cout, shape[1], 3, 3)).astype(np.float32),
             "k": rng.standard_normal((4, cout, 3, 3)).astype(np.float32)}
    conv_in = ["x", "w"] + (["b"] if bias else [])
    if bias:
        inits["b"] = rng.standard_normal(cout).astype(np.float32)
    nodes = [helper.make_node("Conv", conv_in, ["c"], kernel_shape=[3, 3], pads=pads)]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["r"]))
    nodes += [helper.make_node("MaxPool", ["r" if relu else "c"], ["p"], kernel_shape=[2, 2],
                               strides=[2, 2]),
              helper.make_node("Conv", ["p", "k"], ["y"], kernel_shape=[3, 3],
                               pads=[1, 1, 1, 1])]
    model = make_model(nodes, [tensor_info("x", TensorProto.FLOAT, list(shape))],
                       [tensor_info("y", TensorProto.FLOAT, None)], inits)
    m = lg.onnx.load(model)
    x = rng.standard_normal(shape).astype(np.float32)
    got = _replays(m, x)
    np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got, _eager(m, x), rtol=1e-4, atol=1e-3)
    steps = [s for s in _work(_plan_of(m)) if s != "pad"]  # (the importer's, asymmetric)
    if kernels == "C":
        assert len(steps) == 2 and steps[0].startswith("conv2d winograd (C)")
        assert ("+ relu" in steps[0]) == relu
        assert steps[0].endswith("[split over the batch]") == (group == "per image")
    else:
        assert steps[0].startswith("conv2d im2col") and steps[1].startswith("max pool")
    x[-1, 3, 2, 1] = np.nan  # new data, with a NaN
    got = _replays(m, x, calls=1)
    ref = _eager(m, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(got).any()
    keep = ~np.isnan(ref)
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-4, atol=1e-3)


def test_views_follow_new_data():
    """Slices, transposes, reshapes and single elements read the current call's values."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
             helper.make_node("Reshape", ["t", "shape"], ["r"]),
             helper.make_node("Reshape", ["x", "flat"], ["f"]),
             helper.make_node("Gather", ["f", "i"], ["e"], axis=0),  # one element: 0-d
             helper.make_node("Mul", ["r", "e"], ["y"])]
    model = make_model(nodes, [tensor_info("x", TensorProto.FLOAT, [1, 6])],
                       [tensor_info("y", TensorProto.FLOAT, [2, 3])],
                       {"shape": np.array([2, 3], np.int64), "flat": np.array([6], np.int64),
                        "i": np.array(4, np.int64)})
    m = lg.onnx.load(model)
    rng = np.random.default_rng(13)
    for _ in range(4):
        x = rng.standard_normal((1, 6)).astype(np.float32)
        np.testing.assert_allclose(_replays(m, x, calls=1), ort_run(model, {"x": x})[0],
                                   rtol=1e-6)
    assert m.fast_path.stats["replayed"] == 2
    _plan_of(m)
