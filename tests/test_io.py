"""Checkpoints: safetensors format by hand, nested state dicts, atomic writes, resuming."""
from __future__ import annotations

import json
import math
import os
import pickle
import struct

import ml_dtypes
import numpy as np
import pytest

import lightgrad as lg
import lightgrad.io as lio
from lightgrad import optim
from lightgrad.optim import lr_scheduler

DTYPES = [lg.float64, lg.float32, lg.float16, lg.bfloat16, lg.int64, lg.int32, lg.int16,
          lg.int8, lg.uint8, lg.bool]


def _sample(dtype, shape=(2, 3), seed=0) -> lg.Tensor:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 50
    if dtype is lg.bool:
        return lg.tensor(values > 0)
    if dtype is lg.uint8:
        values = np.abs(values)
    return lg.tensor(values.astype(np.float32)).to(dtype)


def _equal(a: lg.Tensor, b: lg.Tensor) -> None:
    assert a.shape == b.shape and a.dtype is b.dtype
    raw = [np.ascontiguousarray(x.numpy()).reshape(-1).view(np.uint8) for x in (a, b)]
    np.testing.assert_array_equal(*raw)  # bit for bit, NaNs and bfloat16 included


def _parse(path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


# ----------------------------------------------------------------------------- flat files
def test_save_file_round_trip_every_dtype(tmp_path):
    tensors = {f"t.{dt.name}": _sample(dt, seed=i) for i, dt in enumerate(DTYPES)}
    tensors["scalar"] = lg.tensor(3.5)
    tensors["empty"] = lg.zeros(0, 4)
    tensors["strided"] = lg.arange(12).float().reshape(3, 4).T  # not contiguous
    path = tmp_path / "w.safetensors"
    lio.save_file(tensors, path, metadata={"format": "pt", "note": "hi"})
    back = lio.load_file(path)
    assert list(back) and set(back) == set(tensors)
    for name, t in tensors.items():
        _equal(back[name], t.contiguous())
    assert lio.read_metadata(path) == {"format": "pt", "note": "hi"}
    back["t.float32"].add_(1)  # loaded tensors are writable


def test_file_layout_follows_the_safetensors_spec(tmp_path):
    path = tmp_path / "w.safetensors"
    a, b = lg.tensor([1.0, 2.0], dtype=lg.float64), lg.tensor([7], dtype=lg.uint8)
    lio.save_file({"b": b, "a": a}, path)
    header, body = _parse(path)
    assert (8 + len(json.dumps(header, separators=(",", ":")))) <= 8 + len(path.read_bytes())
    assert header["a"] == {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}
    assert header["b"] == {"dtype": "U8", "shape": [1], "data_offsets": [16, 17]}
    assert body == struct.pack("<2d", 1.0, 2.0) + bytes([7])
    assert (len(path.read_bytes()) - len(body)) % 8 == 0  # header padded to 8 bytes


def test_interoperates_with_the_safetensors_package(tmp_path):
    pytest.importorskip("safetensors")
    torch = pytest.importorskip("torch")
    from safetensors import safe_open
    from safetensors.torch import load_file as st_load, save_file as st_save
    ours = {dt.name: _sample(dt, seed=i) for i, dt in enumerate(DTYPES)}
    path = tmp_path / "ours.safetensors"
    lio.save_file(ours, path, metadata={"format": "pt"})
    theirs = st_load(str(path))
    for name, t in ours.items():
        th = theirs[name]
        assert str(th.dtype) == f"torch.{name}"
        expected = t.float().numpy() if t.dtype is lg.bfloat16 else t.numpy()
        got = th.float().numpy() if th.dtype == torch.bfloat16 else th.numpy()
        np.testing.assert_array_equal(got, expected)
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
    # ... and a nested checkpoint opens too, tensors named by their path.
    lio.save({"model": {"fc": {"weight": ours["float32"]}}, "step": 3}, tmp_path / "c.st")
    assert list(st_load(str(tmp_path / "c.st"))) == ["model.fc.weight"]
    # Files written by the safetensors package load here.
    st_save({"w": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3),
             "i": torch.tensor([1, -2], dtype=torch.int16)}, str(tmp_path / "theirs.st"))
    back = lio.load(tmp_path / "theirs.st")
    assert back["w"].dtype is lg.bfloat16 and back["w"].float().tolist() == [[0, 1, 2],
                                                                              [3, 4, 5]]
    assert back["i"].dtype is lg.int16 and back["i"].tolist() == [1, -2]


# ----------------------------------------------------------------------------- nested objects
def test_save_load_nested_structure(tmp_path):
    w = _sample(lg.float32)
    obj = {
        "model": {"fc.weight": w, "fc.bias": _sample(lg.bfloat16, (3,))},
        "optimizer": {"state": {0: {"step": 4, "exp_avg": _sample(lg.float32, seed=2)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0],
                                        "amsgrad": False, "name": None}]},
        "step": 10, "loss": float("nan"), "best": float("inf"), "tag": "run-1",
        "__private": {1.5: "float key", True: "bool key", None: [1, (2, 3)]},
        "array": np.arange(4, dtype=np.int16),
        "np_scalar": np.float32(0.25),
        "tied": [w, w],
        "empty": {}, "nothing": [],
    }
    path = tmp_path / "ckpt.safetensors"
    lg.save(obj, path)
    back = lg.load(path)
    assert set(back) == set(obj)
    _equal(back["model"]["fc.weight"], w)
    _equal(back["model"]["fc.bias"], obj["model"]["fc.bias"])
    assert list(back["optimizer"]["state"]) == [0]  # int keys survive
    assert back["optimizer"]["state"][0]["step"] == 4
    assert back["optimizer"]["param_groups"] == [{"lr": 1e-3, "betas": (0.9, 0.999),
                                                  "params": [0], "amsgrad": False,
                                                  "name": None}]
    assert back["step"] == 10 and math.isnan(back["loss"]) and back["best"] == math.inf
    assert back["__private"] == {1.5: "float key", True: "bool key", None: [1, (2, 3)]}
    assert isinstance(back["array"], np.ndarray) and back["array"].dtype == np.int16
    assert back["np_scalar"] == 0.25 and back["empty"] == {} and back["nothing"] == []
    assert back["tied"][0] is back["tied"][1] is back["model"]["fc.weight"]
    header, _ = _parse(path)
    assert "model.fc.weight" in header and "optimizer.state.0.exp_avg" in header
    assert set(header["__metadata__"]) == {"format", "lightgrad"}


def test_save_rejects_unsupported_objects(tmp_path):
    with pytest.raises(TypeError, match="can't store a function at model.act"):
        lg.save({"model": {"act": lambda x: x}}, tmp_path / "x")
    with pytest.raises(TypeError, match="dict keys must be .* got a tuple key at opt"):
        lg.save({"opt": {(1, 2): 3}}, tmp_path / "x")
    with pytest.raises(TypeError, match="NumPy arrays of dtype complex128"):
        lg.save({"z": np.zeros(2, complex)}, tmp_path / "x")
    with pytest.raises(TypeError, match="value for 'w' is a list, not a Tensor"):
        lio.save_file({"w": [1.0]}, tmp_path / "x")
    with pytest.raises(TypeError, match="metadata must be a dict of str to str"):
        lio.save_file({"w": lg.zeros(1)}, tmp_path / "x", metadata={"step": 1})
    with pytest.raises(FileNotFoundError, match="directory .*missing does not exist"):
        lg.save({"w": lg.zeros(1)}, tmp_path / "missing" / "x")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- atomic writes
def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    lg.save({"w": lg.ones(3), "step": 1}, path)
    before = path.read_bytes()
    calls = []
    real = lio._tensor_bytes

    def crash_on_second_tensor(array):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(array)
    monkeypatch.setattr(lio, "_tensor_bytes", crash_on_second_tensor)
    with pytest.raises(OSError, match="disk full"):
        lg.save({"w": lg.zeros(1000), "v": lg.zeros(1000), "step": 2}, path)
    assert len(calls) == 2  # the failure happened midway through the tensor data
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind
    monkeypatch.setattr(lio, "_tensor_bytes", real)
    back = lg.load(path)
    assert back["step"] == 1 and back["w"].tolist() == [1.0, 1.0, 1.0]


def test_save_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    lg.save({"a": 1}, path)
    os.chmod(path, 0o640)
    lg.save({"a": 2}, path)
    assert lg.load(path) == {"a": 2} and (path.stat().st_mode & 0o777) == 0o640


# ----------------------------------------------------------------------------- bad files
def test_load_errors_name_the_file_and_the_problem(tmp_path):
    good = tmp_path / "good.safetensors"
    lio.save_file({"a": lg.arange(10).float(), "b": lg.ones(2)}, good)
    raw = good.read_bytes()
    header, _ = _parse(good)
    with pytest.raises(FileNotFoundError, match="load: no such file: .*nope.safetensors"):
        lg.load(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        lg.load(tmp_path)

    def check(name, payload, message, op=lg.load):
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(ValueError, match=message) as err:
            op(path)
        assert str(path) in str(err.value)

    check("empty.st", b"", "only 0 bytes, too few")
    check("cut.st", raw[:-5], r"tensor 'b' ends at byte 48 of the data but only 43 bytes .*"
                              r"\(truncated file\)")
    check("cut-header.st", raw[:20], "the header length says .* bytes but only 12 follow")
    check("extra.st", raw + b"\0", "the tensors cover 48 bytes but 49 follow the header")
    n = struct.unpack("<Q", raw[:8])[0]
    check("garbage.st", raw[:8] + b"{" * n + raw[8 + n:], "its header is not valid JSON")
    check("pickle.st", pickle.dumps({"a": 1}), "not a valid safetensors file",
          op=lio.load_file)

    def with_header(new_header):
        text = json.dumps(new_header).encode()
        text += b" " * (-len(text) % 8)
        return struct.pack("<Q", len(text)) + text + raw[8 + n:]
    bad = dict(header, a=dict(header["a"], dtype="C64"))
    check("dtype.st", with_header(bad), "tensor 'a' has unsupported or missing dtype 'C64'")
    bad = dict(header, a=dict(header["a"], shape=[3]))
    check("shape.st", with_header(bad), r"tensor 'a' of shape \(3,\) .* needs 12 bytes but its "
                                        "data_offsets span 40")
    bad = dict(header, b=dict(header["b"], data_offsets=[32, 40]))  # overlaps 'a'
    check("gap.st", with_header(bad), "leave a gap or overlap")
    bad = dict(header, a=dict(header["a"], data_offsets=[-1, 39]))
    check("offsets.st", with_header(bad), "invalid data_offsets")
    bad = dict(header, __metadata__={"lightgrad": "{not json"})
    check("meta.st", with_header(bad), "its lightgrad metadata is not valid JSON")


# ----------------------------------------------------------------------------- resuming
def _model(seed: int) -> dict[str, lg.Tensor]:
    rng = np.random.default_rng(seed)
    return {name: lg.tensor(rng.standard_normal(shape) * 0.5, dtype=lg.float32,
                            requires_grad=True)
            for name, shape in (("w1", (4, 8)), ("b1", (8,)), ("w2", (8, 3)), ("b2", (3,)))}


def _loss(params, x, y) -> lg.Tensor:
    hidden = (x @ params["w1"] + params["b1"]).tanh()
    logits = hidden @ params["w2"] + params["b2"]
    return -(logits.log_softmax(-1) * y).sum(-1).mean()


def _setup(params):
    groups = [{"params": [params["w1"], params["w2"]]},
              {"params": [params["b1"], params["b2"]], "weight_decay": 0.0}]
    opt = optim.AdamW(groups, lr=0.05, weight_decay=0.1, amsgrad=False)
    warm = lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=3)
    cos = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=1e-3)
    sched = lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[3])
    return opt, sched


def _train(params, opt, sched, steps, start):
    rng = np.random.default_rng(100)
    batches = [(rng.standard_normal((16, 4)), np.eye(3)[rng.integers(0, 3, 16)])
               for _ in range(start + steps)][start:]
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = _loss(params, lg.tensor(x, dtype=lg.float32), lg.tensor(y, dtype=lg.float32))
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def test_resume_gives_identical_losses(tmp_path):
    whole = _model(0)
    opt_whole, sched_whole = _setup(whole)
    uninterrupted = _train(whole, opt_whole, sched_whole, 12, 0)

    params = _model(0)
    opt, sched = _setup(params)
    first = _train(params, opt, sched, 5, 0)
    path = tmp_path / "ckpt.safetensors"
    lg.save({"model": {k: v.detach() for k, v in params.items()},
             "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": 5}, path)

    fresh = _model(1)  # different initial values, overwritten by the checkpoint
    opt2, sched2 = _setup(fresh)
    ckpt = lg.load(path)
    with lg.no_grad():
        for name, value in ckpt["model"].items():
            fresh[name].copy_(value)
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    assert ckpt["step"] == 5
    rest = _train(fresh, opt2, sched2, 7, 5)
    assert first + rest == uninterrupted  # bit for bit
    assert sched2.get_last_lr() == sched_whole.get_last_lr()
    for name in whole:
        _equal(fresh[name].detach(), whole[name].detach())


def test_scheduler_state_survives_a_checkpoint(tmp_path):
    """MultiStepLR keeps its milestones in a Counter with int keys."""
    def build():
        w = lg.zeros(1, requires_grad=True)
        opt = optim.SGD([w], lr=1.0)
        steps = lr_scheduler.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.5)
        return opt, steps
    opt, sched = build()
    for _ in range(3):
        sched.step()
    lg.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "s.st")
    opt2, sched2 = build()
    ckpt = lg.load(tmp_path / "s.st")
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.milestones == sched.milestones
    for _ in range(4):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
    assert sched.get_last_lr() == [0.125]


def test_bfloat16_checkpoint_round_trip(tmp_path):
    w = lg.tensor(np.linspace(-3, 3, 7).astype(ml_dtypes.bfloat16))
    lg.save({"w": w}, tmp_path / "bf16.st")
    back = lg.load(tmp_path / "bf16.st")["w"]
    assert back.dtype is lg.bfloat16
    np.testing.assert_array_equal(back.numpy().view(np.uint16), w.numpy().view(np.uint16))
