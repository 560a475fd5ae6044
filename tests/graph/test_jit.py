"""lg.jit: traced-and-replayed training steps match eager ones exactly; retracing, the
recompile cap, the eager fallback for untraceable code, and errors."""
from __future__ import annotations

import os

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.graph import JitWarning
from lightgrad.nn import functional as F

STEPS = 5


def snapshot(model, opt) -> dict:
    """Copies of everything a training step changes."""
    out = {f"param {n}": p.detach().numpy().copy() for n, p in model.named_parameters()}
    out.update({f"grad {n}": p.grad.numpy().copy() for n, p in model.named_parameters()
                if p.grad is not None})
    out.update({f"buffer {n}": b.numpy().copy() for n, b in model.named_buffers()})
    for i, state in enumerate(opt.state.values()):
        for k, v in state.items():
            out[f"opt {i} {k}"] = v.numpy().copy() if isinstance(v, lg.Tensor) else v
    return out


def run_steps(make, batches, jitted: bool):
    """Losses and final state of STEPS training steps, eager or through lg.jit. Returns the
    number of times the step's Python body ran too."""
    lg.manual_seed(0)
    model, opt, loss_fn = make()
    calls = [0]

    def step(x, y):
        calls[0] += 1
        loss = loss_fn(model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = lg.jit(step) if jitted else step
    losses = [float(fn(x, y).item()) for x, y in batches]
    return losses, snapshot(model, opt), calls[0]


def assert_same_training(make, batches):
    eager_losses, eager_state, _ = run_steps(make, batches, jitted=False)
    jit_losses, jit_state, python_runs = run_steps(make, batches, jitted=True)
    # traced until two calls record the same graph (the first creates optimizer state),
    # then replayed without running the Python
    assert python_runs == 3 < len(batches)
    assert jit_losses == eager_losses
    assert eager_state.keys() == jit_state.keys()
    for k, v in eager_state.items():
        np.testing.assert_array_equal(jit_state[k], v, err_msg=k)


def classifier_batches(shape, classes, n=STEPS):
    rng = np.random.default_rng(0)
    return [(lg.tensor(rng.standard_normal(shape).astype(np.float32)),
             lg.tensor(rng.integers(0, classes, shape[0]))) for _ in range(n)]


def cross_entropy_loss(model, x, y):
    return F.cross_entropy(model(x), y)


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_mlp_step(opt):
    def make():
        model = lg.nn.Sequential(lg.nn.Linear(6, 16), lg.nn.GELU(), lg.nn.LayerNorm(16),
                                 lg.nn.Dropout(0.2), lg.nn.Linear(16, 3))
        if opt == "sgd":
            optimizer = lg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                     weight_decay=1e-3)
        else:
            optimizer = lg.optim.AdamW(model.parameters(), lr=1e-2)
        return model, optimizer, cross_entropy_loss
    assert_same_training(make, classifier_batches((8, 6), 3))


def test_cnn_step():
    from lightgrad.models.cnn import LeNet

    def make():
        model = LeNet(image_size=8, channels=(3, 4), hidden=16, num_classes=5,
                      batch_norm=True)
        return model, lg.optim.Adam(model.parameters(), lr=1e-2), cross_entropy_loss
    assert_same_training(make, classifier_batches((4, 1, 8, 8), 5))


def token_batches(vocab, length):
    rng = np.random.default_rng(0)
    data = rng.integers(0, vocab, (STEPS, 3, length + 1))
    return [(lg.tensor(b[:, :-1]), lg.tensor(b[:, 1:])) for b in data]


def lm_loss(model, x, y):
    loss = model(x, y)[1]
    return loss


def test_gpt_step_with_dropout_and_clipping():
    from lightgrad.models.gpt import GPT, GPTConfig

    def make():
        model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16,
                              dropout=0.1))
        opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.99))

        def loss_fn(model, x, y):
            loss = lm_loss(model, x, y)
            return loss
        return model, _ClippedStep(opt, model), loss_fn
    assert_same_training(make, token_batches(11, 8))


class _ClippedStep:
    """An optimizer whose step clips the gradient norm first (as the GPT trainer does)."""

    def __init__(self, opt, model):
        self.opt, self.model, self.state = opt, model, opt.state

    def zero_grad(self):
        self.opt.zero_grad()

    def step(self):
        lg.nn.utils.clip_grad_norm_(self.model.parameters(), 0.5)
        self.opt.step()


@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(lg.__file__), "models",
                                                    "mamba.py")), reason="no Mamba model")
def test_mamba_step():
    from lightgrad.models.mamba import Mamba, MambaConfig

    def make():
        model = Mamba(MambaConfig(d_model=8, n_layer=2, vocab_size=11, d_state=4))
        return model, model.configure_optimizers(0.1, 1e-2), lm_loss
    assert_same_training(make, token_batches(11, 6))


def train_outside(jitted: bool) -> tuple:
    """A jitted forward + backward; zero_grad, the optimizer and a scheduler outside."""
    lg.manual_seed(0)
    model = lg.nn.Linear(4, 2)
    opt = lg.optim.SGD(model.parameters(), lr=0.1)
    sched = lg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    def forward_backward(x):
        loss = (model(x) ** 2).mean()
        loss.backward()
        return {"loss": loss, "both": (loss * 2, [loss])}

    fn = lg.jit(forward_backward) if jitted else forward_backward
    out = None
    for x, _ in classifier_batches((3, 4), 2):
        opt.zero_grad()
        out = fn(x)
        opt.step()
        sched.step()
    return (out["loss"].item(), out["both"][0].item(), out["both"][1][0].item(),
            model.weight.grad.numpy().copy(), model.weight.detach().numpy())


def test_optimizer_outside_the_jitted_function_sees_eager_gradients():
    eager, jit = train_outside(False), train_outside(True)
    assert eager[:3] == jit[:3]
    np.testing.assert_array_equal(eager[3], jit[3])
    np.testing.assert_array_equal(eager[4], jit[4])


def adam_with_changing_lr(jitted: bool) -> tuple:
    w = lg.tensor([1.0, -2.0], requires_grad=True)
    opt = lg.optim.AdamW([w], lr=0.1)

    def step():
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()

    fn = lg.jit(step) if jitted else step
    for k in range(5):
        opt.param_groups[0]["lr"] = 0.1 / (k + 1)
        fn()
    return w.detach().numpy().copy(), opt.state[w]["step"]


def test_lr_changes_between_calls_reach_the_replayed_update():
    eager, jit = adam_with_changing_lr(False), adam_with_changing_lr(True)
    np.testing.assert_array_equal(eager[0], jit[0])
    assert eager[1] == jit[1] == 5 and type(jit[1]) is int


def test_new_shape_retraces_and_the_cache_is_capped():
    calls = [0]

    @lg.jit(cache_size=2)
    def f(x):
        calls[0] += 1
        return (x * 3).sum(dim=0)

    for n in (2, 2, 2, 3, 3, 3, 2):
        out = f(lg.ones(n, 2))
        assert out.tolist() == [3.0 * n] * 2
    assert calls[0] == 4 and len(f.graphs) == 2  # two traces per shape, then replays
    with pytest.warns(JitWarning, match="cache_size"):
        assert f(lg.ones(4, 2)).tolist() == [12.0, 12.0]
    assert f(lg.ones(5, 2)).tolist() == [15.0, 15.0]  # eager, without a second warning
    assert calls[0] == 6


def test_value_read_in_python_falls_back_to_eager_naming_the_line():
    @lg.jit
    def f(x):
        y = x * 2
        if y.sum().item() > 0:  # data-dependent control flow
            return y
        return -y

    with pytest.warns(JitWarning, match=r"read in Python.*test_jit\.py:\d+"):
        assert f(lg.ones(2)).tolist() == [2.0, 2.0]
    assert f.eager_reason is not None
    assert f(-lg.ones(2)).tolist() == [2.0, 2.0]  # eager: the other branch
    assert f.graphs == []


def test_numpy_and_data_dependent_shapes_fall_back():
    @lg.jit
    def to_host(x):
        return lg.tensor(np.asarray(x) + 1)

    with pytest.warns(JitWarning, match=r"test_jit\.py:\d+"):
        assert to_host(lg.ones(2)).tolist() == [2.0, 2.0]

    @lg.jit
    def positives(x):
        return x[x > 0]

    with pytest.warns(JitWarning, match="boolean mask"):
        assert positives(lg.tensor([1.0, -1.0, 2.0])).tolist() == [1.0, 2.0]


def test_rng_ops_draw_fresh_numbers_at_each_replay():
    f = lg.jit(lambda x: x + lg.rand(3))
    draws = [f(lg.zeros(3)).tolist() for _ in range(4)]
    assert len({tuple(d) for d in draws}) == 4
    lg.manual_seed(1)
    eager = [(lg.zeros(3) + lg.rand(3)).tolist() for _ in range(4)]
    lg.manual_seed(1)
    assert [f(lg.zeros(3)).tolist() for _ in range(4)] == eager


def test_errors_inside_the_function_propagate_and_leave_state_usable():
    w = lg.tensor([1.0], requires_grad=True)
    opt = lg.optim.Adam([w], lr=0.1)

    @lg.jit
    def bad(x):
        (w * x).sum().backward()
        opt.step()
        return x @ lg.ones(2)  # sizes 3 and 2 don't match
    with pytest.raises(Exception, match="matmul"):
        bad(lg.ones(3))
    assert type(opt.state[w]["step"]) is int and isinstance(w._data, np.ndarray)
    assert isinstance(w.grad._data, np.ndarray)


def test_non_tensor_outputs_fall_back():
    f = lg.jit(lambda x: (x * 2, "label"))
    with pytest.warns(JitWarning, match="other than tensors or None"):
        out = f(lg.ones(1))
    assert out[1] == "label" and out[0].tolist() == [2.0]


def accumulate_without_zero_grad(jitted: bool) -> tuple:
    w = lg.tensor([1.0, 2.0], requires_grad=True)

    def fwd_bwd(x):
        (w * x).sum().backward()  # .grad accumulates from call to call

    fn = lg.jit(fwd_bwd) if jitted else fwd_bwd
    for k in range(5):
        fn(lg.tensor([1.0, float(k)]))
    return w.grad.tolist()


def test_gradients_accumulate_across_replays_like_eager():
    assert accumulate_without_zero_grad(True) == accumulate_without_zero_grad(False) == [
        5.0, 10.0]


def test_train_and_eval_modes_are_separate_specializations():
    lg.manual_seed(0)
    model = lg.nn.Sequential(lg.nn.Linear(3, 3), lg.nn.Dropout(0.5))
    f = lg.jit(lambda x: model(x))
    x = lg.ones(4, 3)
    for _ in range(3):
        f(x)
    model.eval()
    with lg.no_grad():
        expected = model(x).tolist()
    assert [f(x).tolist() for _ in range(3)] == [expected] * 3
    assert len(f.graphs) == 2


def test_jit_on_a_method():
    class Scaler:
        def __init__(self):
            self.w = lg.tensor([2.0])

        @lg.jit
        def __call__(self, x):
            return x * self.w

    s = Scaler()
    assert [s(lg.tensor([float(k)])).tolist() for k in range(4)] == [[0.0], [2.0], [4.0],
                                                                     [6.0]]


@pytest.mark.skipif(not lg.cuda.is_available(), reason="no CUDA backend (GPU or emulator)")
def test_training_step_on_cuda_matches_eager():
    def make():
        model = lg.nn.Sequential(lg.nn.Linear(4, 8), lg.nn.ReLU(), lg.nn.Linear(8, 3))
        model.to("cuda")
        return model, lg.optim.AdamW(model.parameters(), lr=1e-2), cross_entropy_loss
    batches = [(x.to("cuda"), y.to("cuda")) for x, y in classifier_batches((5, 4), 3)]
    assert_same_training(make, batches)


def test_scheduler_stepping_inside_falls_back():
    w = lg.tensor([1.0], requires_grad=True)
    opt = lg.optim.SGD([w], lr=0.1)
    sched = lg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    @lg.jit
    def step():
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        sched.step()

    with pytest.warns(JitWarning, match="steps a learning-rate scheduler"):
        step()
    for _ in range(3):
        step()
    assert opt.param_groups[0]["lr"] == 0.1 / 16


def test_freezing_a_parameter_retraces():
    lg.manual_seed(0)
    model = lg.nn.Linear(2, 1)
    opt = lg.optim.SGD(model.parameters(), lr=0.5)

    @lg.jit
    def step(x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    x = lg.ones(3, 2)
    for _ in range(3):
        step(x)
    model.bias.requires_grad_(False)
    before = model.bias.tolist()
    for _ in range(3):
        step(x)
    assert model.bias.tolist() == before and len(step.graphs) == 2


def input_gradients(jitted: bool) -> list:
    w = lg.tensor([[1.0, 2.0], [3.0, -1.0]])

    def saliency(x):
        (x @ w).relu().sum().backward()

    fn = lg.jit(saliency) if jitted else saliency
    grads = []
    for k in range(4):
        x = lg.tensor([[1.0, float(k) - 2]], requires_grad=True)
        fn(x)
        grads.append(x.grad.tolist())
    return grads


def test_gradients_of_inputs_are_set_on_the_callers_tensors():
    assert input_gradients(True) == input_gradients(False)


def test_the_same_tensor_passed_twice_is_its_own_specialization():
    f = lg.jit(lambda a, b: a * 2 + b)
    x = lg.ones(2)
    for _ in range(3):
        assert f(x, x).tolist() == [3.0, 3.0]
    assert f(x, lg.zeros(2)).tolist() == [2.0, 2.0]


def test_constants_written_in_place_start_fresh_at_each_replay():
    @lg.jit
    def f(x):
        t = lg.tensor([0.0, 0.0, 0.0])
        t[1:] += x
        return t

    assert [f(lg.ones(2)).tolist() for _ in range(4)] == [[0.0, 1.0, 1.0]] * 4


@pytest.mark.parametrize("name, fn", [
    ("unique", lambda x: lg.unique(x)),
    ("mask", lambda x: x[x > 1.5]),
    ("multinomial", lambda x: x.softmax(0).multinomial(2)),
])
def test_data_dependent_ops_fall_back_naming_the_line(name, fn):
    f = lg.jit(lambda x: fn(x))
    with pytest.warns(JitWarning, match=r"test_jit\.py:\d+"):
        first = f(lg.tensor([1.0, 3.0, 1.0]))
    assert f.eager_reason is not None and f.graphs == []
    if name != "multinomial":
        assert f(lg.tensor([1.0, 3.0, 1.0])).tolist() == first.tolist()


def test_a_python_counter_baked_into_the_graph_is_detected():
    counter = [0]

    @lg.jit
    def f(x):
        counter[0] += 1
        return x * counter[0]

    with pytest.warns(JitWarning, match="changes from call to call"):
        results = [f(lg.ones(1)).item() for _ in range(6)]
    assert results == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] and f.graphs == []


def test_a_gc_collect_inside_the_traced_function_is_harmless():
    import gc
    w = lg.tensor([1.0], requires_grad=True)
    opt = lg.optim.SGD([w], lr=0.1, momentum=0.5)

    @lg.jit
    def step():
        opt.zero_grad()
        (w * w).sum().backward()
        gc.collect()
        opt.step()

    for _ in range(4):
        step()
    assert isinstance(opt.state[w]["momentum_buffer"]._data, np.ndarray)
    assert isinstance(w.grad._data, np.ndarray)


def sgd_with_changing_settings(jitted: bool) -> list:
    w = lg.tensor([1.0, -2.0], requires_grad=True)
    opt = lg.optim.SGD([w], lr=0.1, momentum=0.5)

    def step():
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()

    fn = lg.jit(step) if jitted else step
    for k in range(8):
        if k == 4:  # not in the graph yet: a replay would miss it, so this retraces
            opt.param_groups[0]["weight_decay"] = 0.5
        opt.param_groups[0]["momentum"] = 0.5 - 0.05 * k  # read symbolically
        fn()
    return w.tolist()


def test_optimizer_settings_changed_between_calls_take_effect():
    assert sgd_with_changing_settings(True) == sgd_with_changing_settings(False)


def amsgrad(jitted: bool) -> list:
    w = lg.tensor([1.0, -2.0], requires_grad=True)
    opt = lg.optim.Adam([w], lr=0.1, amsgrad=True)

    def step():
        opt.zero_grad()
        (w * w * w).sum().backward()
        opt.step()

    fn = lg.jit(step) if jitted else step
    for _ in range(7):
        fn()
    return w.tolist()


def test_step_count_baked_through_math_is_caught():
    with pytest.warns(JitWarning, match="changes from call to call"):
        jit = amsgrad(True)
    assert jit == amsgrad(False)
