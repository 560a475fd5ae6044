"""``lightgrad train gpt|mlp --nproc 2``: the same training as one process on the whole
batch (the batch is split over the ranks), and a checkpoint resumes on any world size."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.cli import main

GPT_ARGS = ["--max-chars", "20000", "--batch-size", "5", "--block-size", "16",
            "--eval-iters", "1", "--sample-chars", "0", "--warmup-iters", "2"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightgrad.cli", *args], capture_output=True,
                          text=True, timeout=120)


def _state(path):
    state = lg.load(path / "ckpt.safetensors")
    return state, json.loads(state["history"]) if isinstance(state["history"], str) \
        else state["history"]


def test_gpt_on_two_processes_and_resume_across_world_sizes(tmp_path, mpirun):
    # 2 ranks (batch 5 split 3 + 2) train as one process does on the whole batch ...
    two, one = tmp_path / "two", tmp_path / "one"
    proc = _cli("train", "gpt", "--nproc", "2", *GPT_ARGS, "--max-iters", "4",
                "--eval-interval", "4", "--out", str(two))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("step 4: train loss") == 1, proc.stdout  # rank 0 reports
    main(["train", "gpt", *GPT_ARGS, "--max-iters", "4", "--eval-interval", "4", "--out",
          str(one)])
    _assert_same_run(two, one, 4)
    # ... and each checkpoint resumes on the other world size, to the same place
    proc = _cli("train", "gpt", "--nproc", "2", *GPT_ARGS, "--max-iters", "6",
                "--eval-interval", "2", "--resume", "--out", str(one))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    main(["train", "gpt", *GPT_ARGS, "--max-iters", "6", "--eval-interval", "2", "--resume",
          "--out", str(two)])
    _assert_same_run(two, one, 6)


def _assert_same_run(a, b, steps):
    (state_a, hist_a), (state_b, hist_b) = _state(a), _state(b)
    steps_a, steps_b = np.array(hist_a["step"]), np.array(hist_b["step"])
    assert steps_a.shape == steps_b.shape == (steps, 2)
    np.testing.assert_allclose(steps_a, steps_b, rtol=2e-5)
    for name, value in state_b["model"].items():
        np.testing.assert_allclose(state_a["model"][name].numpy(), value.numpy(),
                                   rtol=1e-4, atol=2e-6, err_msg=name)


@pytest.mark.slow  # ~10 s; the GPT test above covers the same loop helpers by default
def test_mlp_on_two_processes(tmp_path, mpirun):
    args = ["--epochs", "1", "--batch-size", "97", "--dropout", "0"]
    two, one = tmp_path / "two", tmp_path / "one"
    proc = _cli("train", "mlp", "--nproc", "2", *args, "--out", str(two))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    main(["train", "mlp", *args, "--out", str(one)])
    (_, hist_two), (_, hist_one) = _state(two), _state(one)
    np.testing.assert_allclose(np.array(hist_two["step"]), np.array(hist_one["step"]),
                               rtol=2e-5)
    np.testing.assert_allclose(np.array(hist_two["epoch"]), np.array(hist_one["epoch"]),
                               rtol=1e-4)
