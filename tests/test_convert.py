"""``lightgrad convert in.pt out.safetensors``: torch.save'd state dicts and nested
checkpoints come back through ``lg.load`` with the same structure and values; bad inputs
and a missing PyTorch give one-line errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.cli import main

torch = pytest.importorskip("torch")


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["convert", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _same(ours, theirs) -> None:
    """``ours`` (from lg.load) has ``theirs``' structure, with equal tensors."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, lg.Tensor) and ours.dtype.name == str(theirs.dtype)[6:]
        np.testing.assert_array_equal(ours.float().numpy() if ours.dtype is lg.bfloat16
                                      else ours.numpy(), theirs.float().numpy()
                                      if theirs.dtype == torch.bfloat16 else theirs.numpy())
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            _same(ours[k], theirs[k])
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
    else:
        assert ours == theirs and type(ours) is type(theirs)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(8, 3))


def test_state_dict_converts_and_loads_into_a_lightgrad_model(tmp_path, capsys):
    model = _model()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    code, out, err = _run(capsys, tmp_path / "m.pt", tmp_path / "m.safetensors")
    assert code == 0 and err == "" and "converted 9 tensors" in out
    state = lg.load(tmp_path / "m.safetensors")
    _same(state, dict(model.state_dict()))
    ours = lg.nn.Sequential(lg.nn.Conv2d(1, 2, 3), lg.nn.BatchNorm2d(2), lg.nn.Flatten(),
                            lg.nn.Linear(8, 3))
    ours.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    model.eval(), ours.eval()
    np.testing.assert_allclose(ours(lg.tensor(x)).detach().numpy(),
                               model(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_nested_checkpoint_keeps_its_structure(tmp_path, capsys):
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 1, 4, 4)).sum().backward()
    opt.step()
    shared = torch.arange(6.0).reshape(2, 3)
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
            "losses": [1.5, 0.25], "shape": torch.Size([2, 3]), "note": None,
            "half": torch.ones(2, dtype=torch.bfloat16), "ids": torch.tensor([1, 2]),
            "tied": [shared, shared], "pair": (torch.zeros(1), "x")}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    code, _, err = _run(capsys, tmp_path / "ckpt.pt", tmp_path / "ckpt.safetensors")
    assert code == 0 and err == ""
    back = lg.load(tmp_path / "ckpt.safetensors")
    assert back["shape"] == (2, 3)
    ckpt["shape"] = (2, 3)
    _same(back, ckpt)
    assert back["tied"][0] is back["tied"][1]  # stored once, still one tensor
    assert isinstance(back["optimizer"]["state"], dict) and 0 in back["optimizer"]["state"]


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    cases = [(tmp_path / "missing.pt", "no such file"),
             (tmp_path, "is a directory"),
             (tmp_path / "junk.pt", "can't read")]
    import argparse
    torch.save({"obj": argparse.Namespace(a=1)}, tmp_path / "unsafe.pt")  # weights_only refuses
    cases.append((tmp_path / "unsafe.pt", "can't read"))
    torch.save({"z": torch.zeros(2, dtype=torch.complex64)}, tmp_path / "complex.pt")
    cases.append((tmp_path / "complex.pt", "tensor z is sparse, complex or quantized"))
    for src, words in cases:
        code, out, err = _run(capsys, src, tmp_path / "out.safetensors")
        assert code == 2 and out == "" and words in err, (src, err)
        assert err.startswith("lightgrad: error: convert:") and err.count("\n") == 1
    assert not (tmp_path / "out.safetensors").exists()
    torch.save({"w": torch.zeros(1)}, tmp_path / "ok.pt")
    code, _, err = _run(capsys, tmp_path / "ok.pt", tmp_path / "ok.pt")
    assert code == 2 and "is the input file" in err


def test_without_torch_says_to_install_it(tmp_path, capsys, monkeypatch):
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    code, out, err = _run(capsys, tmp_path / "w.pt", tmp_path / "w.safetensors")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "needs PyTorch" in err and "pip install torch" in err


def test_lightgrad_does_not_import_torch():
    code = ("import sys, lightgrad, lightgrad.cli, lightgrad.convert\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
