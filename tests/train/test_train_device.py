"""``lightgrad train gpt|mlp|cnn --device cuda`` and ``lightgrad sample --device cuda``.

Tiny runs (a few steps of tiny models) on the ``cuda`` device: on the CPU emulator in CI
(``LIGHTGRAD_CUDA=emulate``, set by tests/conftest.py), on the GPU where there is one. The
GPT runs use a one-layer preset, ``tiny``, added to the preset table for these tests only
(the emulator runs the kernels thousands of times slower than a GPU).
Each run is compared with the same run on the CPU: the model is initialised on the CPU and
the batches are the same, so the losses agree up to float32 rounding. Checkpoints hold CPU
tensors and resume or sample on either device.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.cli import main
from lightgrad.models import gpt as gpt_model

cuda = pytest.mark.skipif(not lg.cuda.is_available(),
                          reason="no cuda device (no GPU, and LIGHTGRAD_CUDA=emulate not set)")

TEXT = "".join(f"line {i}: the cat sat on the mat, and the dog sat on the log.\n"
               for i in range(40))
TINY = dict(n_layer=1, n_head=2, n_embd=32, block_size=8, bias=True)
GPT = ["--preset", "tiny", "--block-size", "8", "--batch-size", "2", "--max-iters", "2",
       "--eval-interval", "2", "--eval-iters", "1", "--sample-chars", "4", "--warmup-iters", "1"]


# ----------------------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed uint8 IDX file (magic 0x0000, type 0x08, ndim, big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """t10k IDX files of 40 images: a bright square whose place is the label, plus noise."""
    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 40)
    images = rng.integers(0, 60, (40, 28, 28))
    for img, k in zip(images, labels):
        r, c = 3 + 12 * (k // 5), 1 + 5 * (k % 5)
        img[r:r + 6, c:c + 6] = 255
    write_idx(root / "t10k-images-idx3-ubyte", images)
    write_idx(root / "t10k-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="module", autouse=True)
def tiny_preset():
    """``--preset tiny``: one layer, two heads, width 32 (only while these tests run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(gpt_model.PRESETS, "tiny", TINY)
        yield


@pytest.fixture(scope="module")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(TEXT)
    return path


def train_gpt(data: Path, out: Path, device: str, *extra: str) -> dict:
    assert main(["train", "gpt", "--data", str(data), "--out", str(out), "--device", device,
                 *GPT, *extra]) == 0
    return lg.load(out / "ckpt.safetensors", map_location="cpu")


def assert_same_weights(a: dict, b: dict, rtol: float = 1e-3, atol: float = 1e-4) -> None:
    assert set(a) == set(b)
    for name in a:
        assert a[name].device.type == "cpu", f"{name} was saved on {a[name].device}"
        np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=rtol, atol=atol,
                                   err_msg=name)


# ----------------------------------------------------------------------------- gpt


@pytest.fixture(scope="module")
def gpt_runs(text_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 2-step GPT run on the CPU and on cuda."""
    runs = {}
    for device in ("cpu", "cuda"):
        runs[device] = tmp_path_factory.mktemp("gpt") / device
        train_gpt(text_file, runs[device], device)
    return runs


@cuda
def test_train_gpt_on_cuda_matches_cpu(gpt_runs: dict[str, Path]) -> None:
    on_cpu, on_cuda = (lg.load(gpt_runs[d] / "ckpt.safetensors", map_location="cpu")
                      for d in ("cpu", "cuda"))
    assert int(on_cuda["iter"]) == 2
    a, b = json.loads(on_cpu["history"]), json.loads(on_cuda["history"])
    for key in ("step", "train", "val"):
        assert [it for it, _ in a[key]] == [it for it, _ in b[key]], key
        np.testing.assert_allclose([v for _, v in b[key]], [v for _, v in a[key]],
                                   rtol=1e-3, err_msg=key)
    assert_same_weights(on_cuda["model"], on_cpu["model"])


@cuda
def test_gpt_checkpoint_from_cuda_resumes_on_cpu(gpt_runs: dict[str, Path], text_file: Path,
                                                 tmp_path: Path) -> None:
    resumed = tmp_path / "resumed"
    for name in ("ckpt.safetensors", "tokenizer/chars.json"):
        (resumed / name).parent.mkdir(parents=True, exist_ok=True)
        (resumed / name).write_bytes((gpt_runs["cuda"] / name).read_bytes())
    state = train_gpt(text_file, resumed, "cpu", "--resume", "--max-iters", "3")
    assert int(state["iter"]) == 3
    assert [it for it, _ in json.loads(state["history"])["step"]] == [0, 1, 2]


@cuda
def test_sample_on_cuda(gpt_runs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    for run in ("cpu", "cuda"):  # a checkpoint made on either device samples on cuda
        capsys.readouterr()
        assert main(["sample", "--checkpoint", str(gpt_runs[run]), "--device", "cuda",
                     "--prompt", "the ", "-n", "6", "--seed", "0"]) == 0
        text = capsys.readouterr().out
        assert text.startswith("the ") and len(text) == len("the ") + 6 + 1, repr(text)


# ----------------------------------------------------------------------------- mlp, cnn


def train_classifier(model: str, data: Path, out: Path, device: str, *extra: str) -> dict:
    tiny = ["--hidden", "16"] if model == "mlp" else ["--channels", "2,4", "--hidden", "8"]
    assert main(["train", model, "--data", str(data), "--train-split", "32", "--epochs", "1",
                 "--batch-size", "16", "--dropout", "0", "--lr", "3e-3", "--out", str(out),
                 "--device", device, *tiny, *extra]) == 0
    return lg.load(out / "ckpt.safetensors", map_location="cpu")


@cuda
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_train_classifier_on_cuda_matches_cpu(model: str, idx_dir: Path,
                                              tmp_path: Path) -> None:
    on_cpu = train_classifier(model, idx_dir, tmp_path / "cpu", "cpu")
    on_cuda = train_classifier(model, idx_dir, tmp_path / "cuda", "cuda")
    a, b = on_cpu["history"], on_cuda["history"]
    assert [s for s, _ in b["step"]] == [1, 2]
    np.testing.assert_allclose([v for _, v in b["step"]], [v for _, v in a["step"]],
                               rtol=1e-3)
    np.testing.assert_allclose(b["epoch"], a["epoch"], rtol=1e-3, atol=1e-6)
    assert_same_weights(on_cuda["model"], on_cpu["model"])
    # the cuda run's checkpoint continues on the CPU
    state = train_classifier(model, idx_dir, tmp_path / "cuda", "cpu", "--epochs", "2",
                             "--resume")
    assert state["epoch"] == 2 and len(state["history"]["step"]) == 4


# ----------------------------------------------------------------------------- errors


def test_unknown_device_is_a_clear_error(text_file: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    rc = main(["train", "gpt", "--data", str(text_file), "--out", str(tmp_path), "--device",
               "tpu", *GPT])
    assert rc == 2
    assert "train gpt --device tpu" in capsys.readouterr().err


def test_every_command_has_a_device_option() -> None:
    from lightgrad.cli import build_parser
    parser = build_parser()
    for argv in (["train", "gpt"], ["train", "mlp"], ["train", "cnn"], ["sample"]):
        assert parser.parse_args(argv).device == "cpu"
        assert parser.parse_args([*argv, "--device", "cuda:0"]).device == "cuda:0"
