"""Smoke tests of ``lightgrad train mamba`` and ``lightgrad sample`` on its checkpoints.

The loop is the one ``train gpt`` uses (tested in test_train_gpt.py); here: the Mamba is
the model trained, its checkpoint says so and samples, a resumed run equals a straight
one, and checkpoints of one kind are not mistaken for the other (a checkpoint without a
kind, as older runs wrote, is a GPT).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.cli import main
from lightgrad.models.gpt import GPT, GPTConfig
from lightgrad.models.tokenizer import CharTokenizer
from tests.train import text_runs
from tests.train.text_runs import TEXT, history

SMALL = text_runs.SMALL


def train(data, out, *extra: str) -> int:
    return main(["train", "mamba", "--data", str(data), "--out", str(out), *SMALL, *extra])


@pytest.fixture(scope="module")
def run6(data_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mamba6"
    assert train(data_file, out, "--max-iters", "6") == 0
    return out


def test_train_writes_a_mamba_checkpoint(run6, capsys):
    state = lg.load(run6 / "ckpt.safetensors")
    assert state["kind"] == "mamba" and int(state["iter"]) == 6
    config = json.loads(state["config"])
    assert (config["d_model"], config["n_layer"], config["block_size"]) == (128, 7, 16)
    assert config["vocab_size"] == len(set(TEXT))
    assert "backbone.layers.6.mixer.A_log" in state["model"]
    steps = history(run6)
    assert [it for it, _ in steps["step"]] == list(range(6))
    assert [it for it, _ in steps["val"]] == [3, 6]
    assert abs(steps["step"][0][1] - np.log(len(set(TEXT)))) < 0.3
    assert steps["step"][-1][1] < steps["step"][0][1]


def test_resume_continues_exactly_like_a_straight_run(run6, data_file, tmp_path):
    resumed = tmp_path / "resumed"
    for name in ("ckpt.safetensors", "tokenizer/chars.json"):
        (resumed / name).parent.mkdir(parents=True, exist_ok=True)
        (resumed / name).write_bytes((run6 / name).read_bytes())
    assert train(data_file, resumed, "--max-iters", "9", "--resume") == 0
    straight = tmp_path / "straight"
    assert train(data_file, straight, "--max-iters", "9") == 0
    a, b = history(resumed), history(straight)
    for key in ("step", "train", "val"):
        assert [it for it, _ in a[key]] == [it for it, _ in b[key]], key
        np.testing.assert_allclose([v for _, v in a[key]], [v for _, v in b[key]],
                                   rtol=1e-6, err_msg=key)


def test_sample_a_mamba_checkpoint(run6, capsys):
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(run6), "-n", "20", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert main(["sample", "--checkpoint", str(run6 / "ckpt.safetensors"), "-n", "20",
                 "--seed", "1"]) == 0
    assert capsys.readouterr().out == first
    assert len(first) == 1 + 20 + 1 and set(first) <= set(TEXT)
    assert main(["sample", "--checkpoint", str(run6), "-n", "30", "--prompt", "line 3",
                 "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    assert greedy.startswith("line 3") and len(greedy) == len("line 3") + 30 + 1


def test_checkpoint_without_kind_is_a_gpt(tmp_path, capsys):
    """Runs written before Mamba existed carry no "kind"."""
    tok = CharTokenizer(TEXT)
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=8)
    lg.manual_seed(0)
    model = GPT(config)
    lg.save({"model": model.state_dict(), "config": json.dumps(config.to_dict()), "iter": 1},
            tmp_path / "ckpt.safetensors")
    (tmp_path / "tokenizer").mkdir()
    tok.save(tmp_path / "tokenizer" / "chars.json")
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(tmp_path), "-n", "12", "--temperature", "0",
                 "--prompt", "line"]) == 0
    expected = tok.decode(model.generate(lg.tensor([tok.encode("line")]), 12, temperature=0,
                                         crop=True)[0].tolist())
    assert capsys.readouterr().out == expected + "\n"


def test_resume_with_another_kind_is_refused(run6, data_file, capsys):
    capsys.readouterr()
    assert main(["train", "gpt", "--data", str(data_file), "--out", str(run6), *SMALL,
                 "--max-iters", "8", "--resume"]) == 2
    assert "holds a mamba model, not a gpt" in capsys.readouterr().err
    assert int(lg.load(run6 / "ckpt.safetensors")["iter"]) == 6


def test_resume_with_a_different_context_is_refused(run6, data_file, capsys):
    capsys.readouterr()
    assert train(data_file, run6, "--max-iters", "8", "--resume", "--block-size", "8") == 2
    assert "'block_size': (16, 8)" in capsys.readouterr().err


def test_mamba_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "mamba", "--dropout", "0.1"])
    with pytest.raises(SystemExit):
        main(["train", "mamba", "--preset", "130m"])
    assert "invalid choice: '130m'" in capsys.readouterr().err
