"""The training loop's pieces: the step under ``lg.jit`` against the eager step, and the
stacked evaluation against one forward pass per batch."""
from __future__ import annotations

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.models.gpt import GPT, GPTConfig
from lightgrad.train import gpt as train_gpt
from lightgrad.train.common import warmup_cosine_lr
from lightgrad.train.gpt import Splits, estimate_loss, get_batch, training_step

CONFIG = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=False)


def _model_and_opt() -> tuple[GPT, lg.optim.Optimizer]:
    lg.manual_seed(0)
    model = GPT(CONFIG)
    return model, model.configure_optimizers(0.1, 1e-2, (0.9, 0.99))


def _run(jit: bool, steps: int = 6) -> tuple[list[float], dict[str, np.ndarray]]:
    model, opt = _model_and_opt()
    step = training_step(model, opt, 1.0, jit=jit)
    data = np.tile(np.arange(CONFIG.vocab_size), 50)  # learnable: counting
    losses = []
    for it in range(steps):
        for group in opt.param_groups:  # the schedule changes the rate between calls
            group["lr"] = warmup_cosine_lr(it, 1e-2, 1e-3, 2, steps)
        x, y = get_batch(data, 3, CONFIG.block_size, np.random.default_rng([0, it]))
        losses.append(step(x, y).item())
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, weights


def test_jitted_step_matches_the_eager_step():
    eager_losses, eager_weights = _run(jit=False)
    jit_losses, jit_weights = _run(jit=True)
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-6)
    assert eager_losses[-1] < eager_losses[0]  # it trained
    for name, value in eager_weights.items():
        np.testing.assert_allclose(jit_weights[name], value, rtol=1e-5, atol=1e-7,
                                   err_msg=name)


@pytest.mark.parametrize("eval_tokens", [40, 10_000])  # passes of 2, 2, 1 batches; one pass
def test_stacked_evaluation_is_the_mean_over_batches(monkeypatch, eval_tokens):
    model, _ = _model_and_opt()
    rng = np.random.default_rng(3)
    splits = Splits(rng.integers(0, CONFIG.vocab_size, 300),
                    rng.integers(0, CONFIG.vocab_size, 100))
    monkeypatch.setattr(train_gpt, "EVAL_TOKENS", eval_tokens)  # a batch: 2 x 8 tokens
    got = estimate_loss(model, splits, 2, 5, seed=7)
    assert model.training  # back in training mode
    model.eval()
    with lg.no_grad():
        for name in ("train", "val"):
            draws = np.random.default_rng([7, 999_983, len(name)])
            want = np.mean([model(*get_batch(getattr(splits, name), 2, CONFIG.block_size,
                                             draws))[1].item() for _ in range(5)])
            assert got[name] == pytest.approx(want, rel=1e-6), name
