"""Whole programs in the style of PyTorch's examples, run unchanged on both libraries.

Each program in this folder is one source text written against ``torch`` names only. It is
executed twice: once as is (PyTorch), once with every ``torch[.x.y]`` module name bound to
``lightgrad[.x.y]`` (a temporary ``sys.modules`` swap, restored afterwards), so ``import
torch`` gives lightgrad. The lightgrad run starts from the PyTorch run's initial weights;
the per-step losses and the final parameters must agree to float32 precision. Dropout is
random in both libraries with different generators, so the compared runs set it to 0."""
from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import lightgrad as lg

torch = pytest.importorskip("torch")
HERE = Path(__file__).parent
ALIASED = ("lightgrad.nn.functional", "lightgrad.nn.init", "lightgrad.nn.utils",
           "lightgrad.nn.parallel", "lightgrad.optim.lr_scheduler", "lightgrad.utils.data",
           "lightgrad.serialization", "lightgrad.cuda")


@contextlib.contextmanager
def torch_is_lightgrad() -> Iterator[None]:
    """``import torch`` (and ``torch.nn``, ``torch.utils.data``...) gives lightgrad's modules
    inside the block; the real PyTorch modules are put back after it."""
    for name in ALIASED:  # loaded now, so that no `torch.x` import loads a second copy
        importlib.import_module(name)
    saved = {k: v for k, v in sys.modules.items() if k == "torch" or k.startswith("torch.")}
    for k in saved:
        del sys.modules[k]
    for name, module in list(sys.modules.items()):
        if name == "lightgrad" or name.startswith("lightgrad."):
            sys.modules["torch" + name[len("lightgrad"):]] = module
    try:
        yield
    finally:
        for k in [k for k in sys.modules if k == "torch" or k.startswith("torch.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def run_program(name: str, use_lightgrad: bool, *args: Any, **kwargs: Any) -> Any:
    """Execute the program ``name`` and call its ``main(*args, **kwargs)``."""
    path = HERE / f"{name}.py"
    code = compile(path.read_text(), str(path), "exec")
    namespace: dict[str, Any] = {"__name__": f"program_{name}", "__file__": str(path)}
    context = torch_is_lightgrad() if use_lightgrad else one_torch_thread()
    with context:
        exec(code, namespace)
        return namespace["main"](*args, **kwargs)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread: these small ops gain nothing from more, and on a busy machine
    its spinning worker threads can make a run take a hundred times longer."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def numpy_of(x: Any) -> np.ndarray:
    if isinstance(x, lg.Tensor):
        return x.detach().numpy()
    return x.detach().cpu().numpy()


def to_lightgrad(state: dict) -> dict:
    return {k: lg.tensor(numpy_of(v)) for k, v in state.items()}


def assert_states_close(ours: dict, theirs: dict, rtol: float, atol: float) -> None:
    assert list(ours) == list(theirs)
    for k in theirs:
        np.testing.assert_allclose(numpy_of(ours[k]), numpy_of(theirs[k]), rtol=rtol,
                                   atol=atol, err_msg=k)


def compare(name: str, argv: list[str], rtol: float = 1e-4, atol: float = 1e-5,
            param_tol: tuple[float, float] = (1e-3, 1e-4), tmp_path: Path | None = None) -> tuple:
    extra = {} if tmp_path is None else {"workdir": tmp_path / "torch"}
    theirs = run_program(name, False, argv, **extra)
    if tmp_path is not None:
        extra = {"workdir": tmp_path / "lightgrad"}
    ours = run_program(name, True, argv, to_lightgrad(theirs["initial"]), **extra)
    assert all(isinstance(t, lg.Tensor) for t in ours["final"].values())
    assert len(ours["losses"]) == len(theirs["losses"]) > 0
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=rtol, atol=atol)
    assert_states_close(ours["final"], theirs["final"], *param_tol)
    assert "torch" in sys.modules and sys.modules["torch"] is torch  # swap undone
    return ours, theirs


def test_mnist_cnn_adadelta_steplr():
    ours, theirs = compare("mnist_cnn", ["--no-cuda", "--dropout", "0", "0"])
    assert ours["lrs"] == pytest.approx(theirs["lrs"]) and len(ours["lrs"]) == 2
    for (loss, correct), (tloss, tcorrect) in zip(ours["tests"], theirs["tests"]):
        assert loss == pytest.approx(tloss, rel=1e-4) and correct == tcorrect
    assert theirs["losses"][-1] < theirs["losses"][0]


def test_mnist_cnn_runs_with_dropout():
    ours = run_program("mnist_cnn", True, ["--no-cuda", "--epochs", "1"])
    assert np.isfinite(ours["losses"]).all()


def test_dcgan_step():
    ours, theirs = compare("dcgan", [])
    assert len(theirs["losses"]) == 4 * 5  # 4 batches, 5 numbers each


@pytest.mark.parametrize("argv", [["--dropout", "0"], ["--dropout", "0", "--tied",
                                                       "--model", "GRU", "--nlayers", "1"]])
def test_lstm_word_language_model_save_load(tmp_path, argv):
    ours, theirs = compare("word_language_model", argv, tmp_path=tmp_path)
    np.testing.assert_allclose(ours["val"], theirs["val"], rtol=1e-4)
    assert ours["test"] == pytest.approx(theirs["test"], rel=1e-4)
    assert (tmp_path / "lightgrad" / "model.pt").read_bytes()[8:9] == b"{"  # safetensors
