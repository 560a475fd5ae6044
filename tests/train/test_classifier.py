"""``lightgrad train mlp|cnn`` and the MLP / LeNet models.

Fast tests train for a step or two on a tiny IDX directory written here (and on the
scikit-learn digits when scikit-learn is installed) and check that the loss falls, that
``--resume`` continues the same curve and that bad data gives clear errors. The models are
compared with the same architecture written in PyTorch, forward and backward. The
``slow`` tests (LIGHTGRAD_SLOW=1) train with the default settings and assert the accuracy
targets.
"""
from __future__ import annotations

import argparse
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.cli import build_parser, main
from lightgrad.models.cnn import LeNet
from lightgrad.models.mlp import MLP
from lightgrad.train import classifier

torch = pytest.importorskip("torch")

MNIST_DIR = Path(os.environ.get("LIGHTGRAD_MNIST", "/work/shared/data/mnist"))
TINY_CNN = ["--channels", "4,8", "--hidden", "16"]


# ----------------------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed uint8 IDX file (magic 0x0000, type 0x08, ndim, big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def tiny_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images whose label k is a bright 6x6 square at one of ten places, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28))
    for img, k in zip(images, labels):
        r, c = 3 + 12 * (k // 5), 1 + 5 * (k % 5)
        img[r:r + 6, c:c + 6] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A tiny MNIST-format directory: 128 train and 64 test images."""
    root = tmp_path / "idx"
    root.mkdir()
    for split, n, seed in (("train", 128, 1), ("t10k", 64, 2)):
        images, labels = tiny_images(n, seed)
        write_idx(root / f"{split}-images-idx3-ubyte", images)
        write_idx(root / f"{split}-labels-idx1-ubyte", labels)
    return root


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def checkpoint(out: Path) -> dict:
    return lg.load(out / classifier.CHECKPOINT)


# ----------------------------------------------------------------------------- CLI, fast


def test_every_option_has_help() -> None:
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items()
                 if a[0] == "train")[1]
    models = train._subparsers._group_actions[0].choices
    assert {"mlp", "cnn", "gpt"} <= set(models)
    for name in ("mlp", "cnn"):
        for action in models[name]._actions:
            assert action.help, f"train {name}: option {action.option_strings} has no help"


@pytest.mark.parametrize("model,extra", [("mlp", ["--hidden", "32"]), ("cnn", TINY_CNN)])
def test_idx_training_loss_falls(model: str, extra: list[str], idx_dir: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    rc, stdout, _ = run(["train", model, "--data", str(idx_dir), "--epochs", "3",
                         "--batch-size", "32", "--lr", "3e-3", "--out", str(out), *extra],
                        capsys)
    assert rc == 0
    assert "128 train / 64 test images" in stdout
    assert "test accuracy" in stdout
    assert ("plot written to" in stdout) or ("pip install 'lightgrad[viz]'" in stdout)
    state = checkpoint(out)
    assert state["epoch"] == 3 and state["config"]["model"] == model
    steps = [loss for _, loss in state["history"]["step"]]
    assert len(steps) == 3 * 4
    assert np.mean(steps[-4:]) < 0.7 * steps[0], steps
    epochs = state["history"]["epoch"]
    assert [e[0] for e in epochs] == [1, 2, 3]
    assert epochs[-1][2] < epochs[0][2]  # test loss falls too
    # the saved weights are the trained model: re-evaluating them gives the logged accuracy
    net = classifier.build_model(state["config"])
    net.load_state_dict(state["model"])
    mean, std = state["normalize"]
    images, labels = tiny_images(64, 2)
    x = images.reshape(64, 1, 28, 28).astype(np.float32) / 255
    _, acc = classifier.evaluate(net, lg.tensor((x - mean) / std),
                                 lg.tensor(labels.astype(np.int64)))
    assert acc == pytest.approx(epochs[-1][3])


def test_digits_default_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("sklearn")
    out = tmp_path / "digits"
    rc, stdout, _ = run(["train", "mlp", "--epochs", "1", "--lr", "3e-3", "--out", str(out)],
                        capsys)
    assert rc == 0
    assert "scikit-learn digits (8x8): 1,438 train / 359 test" in stdout
    history = checkpoint(out)["history"]
    (_, _, test_loss, accuracy), = history["epoch"]
    assert test_loss < 0.5 * history["step"][0][1]
    assert accuracy > 0.8  # chance is 0.1


def test_digits_split_is_a_fixed_shuffle() -> None:
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    a, b = classifier.load_digits_data(), classifier.load_digits_data()
    np.testing.assert_array_equal(a.test_y, b.test_y)
    bunch = load_digits()
    assert sorted(np.concatenate([a.train_y, a.test_y]).tolist()) == sorted(bunch.target)
    assert a.train_x.shape == (1438, 1, 8, 8) and a.test_x.shape == (359, 1, 8, 8)
    # every class appears in the test set (the file's tail is not what we test on)
    assert set(a.test_y.tolist()) == set(range(10))


def test_train_split_uses_t10k_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "t10k_only"
    root.mkdir()
    images, labels = tiny_images(80, 3)
    write_idx(root / "t10k-images-idx3-ubyte", images)
    write_idx(root / "t10k-labels-idx1-ubyte", labels)
    rc, _, err = run(["train", "mlp", "--data", str(root), "--out", str(tmp_path / "o")],
                     capsys)
    assert rc == 2 and "--train-split N" in err and "no train-* files" in err
    data = classifier.load_idx_data(root, 60, "train mlp")
    np.testing.assert_array_equal(data.train_y, labels[:60])
    np.testing.assert_array_equal(data.test_y, labels[60:])
    np.testing.assert_allclose(data.test_x[:, 0], images[60:] / 255, rtol=1e-6)
    rc, stdout, _ = run(["train", "mlp", "--data", str(root), "--train-split", "60",
                         "--epochs", "1", "--out", str(tmp_path / "o")], capsys)
    assert rc == 0 and "60 train / 20 test images" in stdout
    rc, _, err = run(["train", "mlp", "--data", str(root), "--train-split", "80",
                      "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "--train-split must be between 1 and 79" in err


def test_resume_continues_the_same_curve(idx_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    common = ["train", "cnn", "--data", str(idx_dir), "--epochs", "2", "--batch-size", "32",
              "--dropout", "0.3", "--batch-norm", *TINY_CNN]
    assert main([*common, "--out", str(tmp_path / "full")]) == 0
    # interrupt the second run during its second epoch's evaluation (Ctrl-C)
    real_evaluate, calls = classifier.evaluate, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)
    monkeypatch.setattr(classifier, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main([*common, "--out", str(tmp_path / "part")])
    assert "continue with --resume" in capsys.readouterr().out
    assert checkpoint(tmp_path / "part")["epoch"] == 1
    monkeypatch.setattr(classifier, "evaluate", real_evaluate)
    assert main([*common, "--out", str(tmp_path / "part"), "--resume"]) == 0
    full, resumed = checkpoint(tmp_path / "full"), checkpoint(tmp_path / "part")
    assert resumed["epoch"] == 2
    np.testing.assert_allclose(np.array(resumed["history"]["step"]),
                               np.array(full["history"]["step"]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.array(resumed["history"]["epoch"]),
                               np.array(full["history"]["epoch"]), rtol=1e-5, atol=1e-7)
    assert "features.1.running_mean" in full["model"]
    for key, value in full["model"].items():
        np.testing.assert_allclose(resumed["model"][key].numpy(), value.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=key)


def test_resume_extends_training(idx_dir: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    args = ["train", "mlp", "--data", str(idx_dir), "--hidden", "16", "--out",
            str(tmp_path / "r")]
    assert main([*args, "--epochs", "1"]) == 0
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    history = checkpoint(tmp_path / "r")["history"]
    assert [e[0] for e in history["epoch"]] == [1, 2]
    assert [s for s, _ in history["step"]] == [1, 2, 3, 4]  # 2 steps of 64 per epoch
    capsys.readouterr()
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    assert "nothing to train" in capsys.readouterr().out


# ----------------------------------------------------------------------------- CLI, errors


def test_missing_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, _, err = run(["train", "cnn", "--data", str(tmp_path / "nope"), "--out",
                      str(tmp_path / "o")], capsys)
    assert rc == 2
    assert f"train cnn: data directory {tmp_path / 'nope'} does not exist" in err


def test_directory_without_idx_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, _, err = run(["train", "mlp", "--data", str(tmp_path), "--out", str(tmp_path / "o")],
                     capsys)
    assert rc == 2 and "no MNIST-format IDX files" in err and "t10k-images-idx3-ubyte" in err
    file = tmp_path / "file"
    file.write_text("x")
    rc, _, err = run(["train", "mlp", "--data", str(file), "--out", str(tmp_path / "o")],
                     capsys)
    assert rc == 2 and "is a file" in err


@pytest.mark.parametrize("damage,message", [
    (lambda raw: b"\x12\x34" + raw[2:], "not an IDX file"),
    (lambda raw: raw[:-100], "is truncated"),
    (lambda raw: raw[:4] + struct.pack(">3I", 128, 27, 28)
     + raw[16:16 + 128 * 27 * 28], r"should hold uint8 images of shape \(N, 28, 28\)"),
])
def test_malformed_idx(damage, message: str, idx_dir: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture) -> None:
    path = idx_dir / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    rc, _, err = run(["train", "mlp", "--data", str(idx_dir), "--out", str(tmp_path / "o")],
                     capsys)
    assert rc == 2
    assert "train mlp: malformed data in" in err and "train-images-idx3-ubyte" in err
    with pytest.raises(ValueError, match=message):
        classifier.load_idx_data(idx_dir, None, "train mlp")


def test_label_count_mismatch(idx_dir: Path) -> None:
    write_idx(idx_dir / "t10k-labels-idx1-ubyte", np.zeros(63, np.uint8))
    with pytest.raises(ValueError, match="has 64 images but .* has 63 labels"):
        classifier.load_idx_data(idx_dir, None, "train cnn")


def test_resume_errors(idx_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o"
    rc, _, err = run(["train", "mlp", "--data", str(idx_dir), "--out", str(out), "--resume"],
                     capsys)
    assert rc == 2 and "--resume: no checkpoint at" in err
    assert main(["train", "mlp", "--data", str(idx_dir), "--hidden", "16", "--epochs", "1",
                 "--out", str(out)]) == 0
    rc, _, err = run(["train", "mlp", "--data", str(idx_dir), "--hidden", "32", "--epochs", "2",
                      "--out", str(out), "--resume"], capsys)
    assert rc == 2 and "different settings" in err and "'hidden': ([16], [32])" in err
    lg.save({"config": "{}", "iter": 3}, out / classifier.CHECKPOINT)  # e.g. a GPT run
    rc, _, err = run(["train", "mlp", "--data", str(idx_dir), "--out", str(out), "--resume"],
                     capsys)
    assert rc == 2 and "is not a checkpoint of `lightgrad train mlp`" in err


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "must be > 0"),
    (["--lr", "-1"], "must be > 0"),
    (["--hidden", "32,x"], "comma-separated ints"),
    (["--optimizer", "lbfgs"], "invalid choice"),
])
def test_bad_options(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "mlp", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_train_split_needs_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, _, err = run(["train", "mlp", "--train-split", "10", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "--train-split only applies to --data" in err


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizers(name: str, idx_dir: Path, tmp_path: Path) -> None:
    args = argparse.Namespace(
        model="mlp", data=idx_dir, train_split=None, epochs=2, batch_size=32, lr=3e-3,
        schedule="constant", optimizer=name, momentum=0.9, weight_decay=1e-4, hidden=(16,),
        dropout=0.0, seed=0, out=tmp_path / name, resume=False)
    result = classifier.train(args, log=lambda *_: None)
    steps = [loss for _, loss in result["history"]["step"]]
    assert np.mean(steps[-4:]) < steps[0]
    assert type(checkpoint(tmp_path / name)["optimizer"]) is dict


# ----------------------------------------------------------------------------- models


def test_lr_schedule() -> None:
    assert classifier.lr_at(0, 10, 0.1, "cosine") == pytest.approx(0.1)
    assert classifier.lr_at(5, 10, 0.1, "cosine") == pytest.approx(0.05)
    assert classifier.lr_at(10, 10, 0.1, "cosine") == pytest.approx(0.0)
    assert classifier.lr_at(7, 10, 0.1, "constant") == 0.1


def _copy_to_torch(model: lg.nn.Module, tmodel: "torch.nn.Module") -> None:
    state = {k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()}
    tmodel.load_state_dict(state, strict=True)


def _compare(model: lg.nn.Module, tmodel: "torch.nn.Module", x: np.ndarray) -> None:
    y = np.arange(len(x)) % 10
    lx = lg.tensor(x, requires_grad=True)
    loss = lg.nn.functional.cross_entropy(model(lx), lg.tensor(y))
    loss.backward()
    tx = torch.tensor(x, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tmodel(tx), torch.tensor(y))
    tloss.backward()
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-5)
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=name)
    tbuffers = dict(tmodel.named_buffers())
    for name, b in model.named_buffers():
        np.testing.assert_allclose(b.numpy(), tbuffers[name].numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_mlp_matches_torch() -> None:
    nn = torch.nn
    model = MLP(64, hidden=(32, 16), num_classes=10)

    class TorchMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(),
                                        nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))

        def forward(self, x):
            return self.layers(x)
    tmodel = TorchMLP()
    _copy_to_torch(model, tmodel)
    _compare(model, tmodel, np.random.default_rng(0).standard_normal((6, 1, 8, 8),
                                                                     dtype=np.float32))


@pytest.mark.parametrize("size,batch_norm", [(8, False), (28, False), ((12, 16), True)])
def test_lenet_matches_torch(size, batch_norm: bool) -> None:
    nn = torch.nn
    model = LeNet(size, channels=(4, 6), hidden=12, batch_norm=batch_norm)
    h, w = (size, size) if isinstance(size, int) else size
    k = 5 if min(h, w) >= 16 else 3

    def block(c_in, c_out):
        layers = [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=not batch_norm)]
        return layers + ([nn.BatchNorm2d(c_out)] if batch_norm else []) + [nn.ReLU(),
                                                                          nn.MaxPool2d(2)]

    class TorchLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*block(1, 4), *block(4, 6))
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(6 * (h // 4) * (w // 4),
                                                                    12),
                                            nn.ReLU(), nn.Linear(12, 10))

        def forward(self, x):
            return self.classifier(self.features(x))
    tmodel = TorchLeNet()
    _copy_to_torch(model, tmodel)
    _compare(model, tmodel, np.random.default_rng(1).standard_normal((5, 1, h, w),
                                                                     dtype=np.float32))
    assert model.feature_shape == (6, h // 4, w // 4)


def test_model_errors() -> None:
    with pytest.raises(ValueError, match=r"MLP: expected input \(N, \.\.\.\) with 64 features "
                                         r"per sample, got shape \(2, 1, 7, 7\)"):
        MLP(64)(lg.zeros(2, 1, 7, 7))
    with pytest.raises(ValueError, match="MLP: layer sizes must be positive ints"):
        MLP(64, hidden=(0,))
    with pytest.raises(ValueError, match=r"LeNet: expected input \(N, 1, 28, 28\), got shape "
                                         r"\(2, 1, 8, 8\)"):
        LeNet(28)(lg.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 4x4"):
        LeNet(3)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        LeNet(28, kernel_size=4)


def test_dropout_only_in_training() -> None:
    model = MLP(16, hidden=(64,), dropout=0.5)
    x = lg.randn(4, 16)
    model.eval()
    np.testing.assert_array_equal(model(x).detach().numpy(), model(x).detach().numpy())
    model.train()
    assert not np.array_equal(model(x).detach().numpy(), model(x).detach().numpy())


# ----------------------------------------------------------------------------- targets, slow


@pytest.mark.slow
@pytest.mark.parametrize("model,target", [("mlp", 0.97), ("cnn", 0.98)])
def test_digits_accuracy_target(model: str, target: float, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    args = build_parser().parse_args(["train", model, "--out", str(tmp_path)])
    result = classifier.train(args)
    assert result["accuracy"] >= target


@pytest.mark.slow
def test_mnist_cnn_accuracy_target(tmp_path: Path) -> None:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no MNIST t10k files in {MNIST_DIR} (set LIGHTGRAD_MNIST)")
    args = build_parser().parse_args(["train", "cnn", "--data", str(MNIST_DIR),
                                      "--train-split", "8000", "--out", str(tmp_path)])
    result = classifier.train(args)
    assert result["accuracy"] >= 0.97
