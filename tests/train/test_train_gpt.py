"""Smoke tests of ``lightgrad train gpt`` and ``lightgrad sample`` (tiny runs, in-process).

Each run trains the ``baby`` preset with a context of 16 for a few steps on a small text
file written here; resuming must reproduce an uninterrupted run step for step.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.cli import main
from lightgrad.train.gpt import default_corpus
from tests.train import text_runs
from tests.train.text_runs import TEXT, history

SMALL = [*text_runs.SMALL, "--preset", "baby"]


def train(data, out, *extra: str) -> int:
    return main(["train", "gpt", "--data", str(data), "--out", str(out), *SMALL, *extra])


@pytest.fixture(scope="module")
def run6(data_file, tmp_path_factory):
    """A 6-step character-level run."""
    out = tmp_path_factory.mktemp("runs") / "run6"
    assert train(data_file, out, "--max-iters", "6") == 0
    return out


def test_train_writes_checkpoint_and_tokenizer(run6, capsys):
    assert (run6 / "ckpt.safetensors").is_file()
    assert (run6 / "tokenizer" / "chars.json").is_file()
    state = lg.load(run6 / "ckpt.safetensors")
    assert int(state["iter"]) == 6
    config = json.loads(state["config"])
    assert (config["n_layer"], config["n_embd"], config["block_size"]) == (4, 128, 16)
    assert config["vocab_size"] == len(set(TEXT))
    steps = history(run6)
    assert [it for it, _ in steps["step"]] == list(range(6))
    assert [it for it, _ in steps["val"]] == [3, 6]
    assert all(np.isfinite(loss) and loss > 0 for _, loss in steps["step"])
    # the very first loss is that of a near-uniform model
    assert abs(steps["step"][0][1] - np.log(len(set(TEXT)))) < 0.3


def test_resume_continues_exactly_like_a_straight_run(run6, data_file, tmp_path):
    # all 10 steps are inside the default 100-step warm-up, whose learning rates do not
    # depend on --max-iters, so both runs use the same schedule
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("ckpt.safetensors", "tokenizer/chars.json"):
        (resumed / name).parent.mkdir(exist_ok=True)
        (resumed / name).write_bytes((run6 / name).read_bytes())
    assert train(data_file, resumed, "--max-iters", "10", "--resume") == 0
    straight = tmp_path / "straight"
    assert train(data_file, straight, "--max-iters", "10") == 0
    a, b = history(resumed), history(straight)
    assert [it for it, _ in a["step"]] == list(range(10))
    assert int(lg.load(resumed / "ckpt.safetensors")["iter"]) == 10
    for key in ("step", "train", "val"):
        assert [it for it, _ in a[key]] == [it for it, _ in b[key]], key
        np.testing.assert_allclose([v for _, v in a[key]], [v for _, v in b[key]],
                                   rtol=1e-6, err_msg=key)
    # and the weights end up the same
    wa = lg.load(resumed / "ckpt.safetensors")["model"]
    wb = lg.load(straight / "ckpt.safetensors")["model"]
    for name in wb:
        np.testing.assert_allclose(wa[name].numpy(), wb[name].numpy(), rtol=1e-5, atol=1e-7,
                                   err_msg=name)


def test_bpe_tokenizer_run_and_sample(data_file, tmp_path, capsys):
    out = tmp_path / "bpe"
    assert train(data_file, out, "--max-iters", "3", "--tokenizer", "bpe",
                 "--bpe-vocab-size", "300") == 0
    assert (out / "tokenizer" / "vocab.json").is_file()
    assert (out / "tokenizer" / "merges.txt").is_file()
    assert json.loads(lg.load(out / "ckpt.safetensors")["config"])["vocab_size"] == 300
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(out), "-n", "10", "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip()


def test_sample_prints_reproducible_text(run6, capsys):
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(run6), "-n", "20", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert main(["sample", "--checkpoint", str(run6 / "ckpt.safetensors"), "-n", "20",
                 "--seed", "1"]) == 0
    second = capsys.readouterr().out
    assert first == second
    text = first[:-1]  # the command adds a newline
    assert len(text) == 21  # the newline prompt and 20 characters
    assert set(text) <= set(TEXT)
    assert main(["sample", "--checkpoint", str(run6), "-n", "40", "--seed", "1",
                 "--prompt", "line 3", "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    assert greedy.startswith("line 3") and len(greedy) == len("line 3") + 40 + 1


def expect_error(capsys, argv: list[str], message: str) -> str:
    capsys.readouterr()
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "lightgrad: error:" in err and message in err, err
    return err


def test_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    expect_error(capsys, ["train", "gpt", "--data", str(empty), "--out", str(tmp_path)],
                 "is empty")


def test_binary_file(tmp_path, capsys):
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    expect_error(capsys, ["train", "gpt", "--data", str(binary), "--out", str(tmp_path)],
                 "looks binary (it contains NUL bytes)")


def test_missing_file(tmp_path, capsys):
    expect_error(capsys, ["train", "gpt", "--data", str(tmp_path / "nope.txt"), "--out",
                          str(tmp_path)], "does not exist")


def test_block_size_larger_than_data(data_file, tmp_path, capsys):
    expect_error(capsys, ["train", "gpt", "--data", str(data_file), "--out", str(tmp_path),
                          "--block-size", "400"],
                 "the validation split has 243 tokens, fewer than block_size + 2 = 402")


def test_resume_with_a_different_config(run6, data_file, capsys):
    err = expect_error(capsys, ["train", "gpt", "--data", str(data_file), "--out", str(run6),
                                *SMALL, "--block-size", "8", "--max-iters", "8", "--resume"],
                       "was made with a different config")
    assert "'block_size': (16, 8)" in err
    assert int(lg.load(run6 / "ckpt.safetensors")["iter"]) == 6  # untouched


def test_resume_and_sample_without_checkpoint(data_file, tmp_path, capsys):
    expect_error(capsys, ["train", "gpt", "--data", str(data_file), "--out", str(tmp_path),
                          "--resume"], "no checkpoint at")
    expect_error(capsys, ["sample", "--checkpoint", str(tmp_path)], "no checkpoint at")


def test_default_corpus_is_deterministic_text():
    text = default_corpus(5000)
    assert len(text) == 5000
    assert text.isascii() and text.strip()
    assert default_corpus(5000) == text
    assert default_corpus(8000).startswith(text)
