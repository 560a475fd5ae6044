"""lg.save/lg.load: nested checkpoints to paths and file objects, map_location, whole
modules and weights_only, PyTorch pickles refused, damaged files refused clearly."""
from __future__ import annotations

import io
import math
import pickle
import struct

import numpy as np
import pytest

import lightgrad as lg
import lightgrad.io as lio
from lightgrad import nn, optim
from lightgrad.serialization import (
    UnsafeLoadError, add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals,
)


class TinyNet(nn.Module):
    """Importable and constructible with no arguments: can be saved whole."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.norm = nn.BatchNorm1d(2)

    def forward(self, x):
        return self.norm(self.fc(x))


class NeedsArgs(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, width)


def _checkpoint():
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    model(lg.randn(5, 4)).sum().backward()
    opt.step()
    return model, opt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "epoch": 3, "loss": 0.25, "name": "run", "done": False, "note": None,
                        "shape": (2, [3, 4]), "mask": np.array([True, False])}


def _check_checkpoint(back, model, opt):
    assert back["epoch"] == 3 and back["loss"] == 0.25 and back["name"] == "run"
    assert back["done"] is False and back["note"] is None and back["shape"] == (2, [3, 4])
    assert back["mask"].tolist() == [True, False]
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(back["model"][name].numpy(), value.numpy())
    fresh = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    fresh.load_state_dict(back["model"])
    opt2 = optim.AdamW(fresh.parameters(), lr=1e-2)
    opt2.load_state_dict(back["optimizer"])
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", ["str", "path", "bytesio", "open-file"])
def test_checkpoint_round_trip(tmp_path, kind):
    model, opt, ckpt = _checkpoint()
    path = tmp_path / "ckpt.pt"
    if kind == "bytesio":
        buf = io.BytesIO()
        lg.save(ckpt, buf)
        buf.seek(0)
        back = lg.load(buf)
    elif kind == "open-file":
        with open(path, "wb") as f:
            lg.save(ckpt, f)
        with open(path, "rb") as f:
            back = lg.load(f)
    else:
        target = str(path) if kind == "str" else path
        lg.save(ckpt, target)
        back = lg.load(target)
    _check_checkpoint(back, model, opt)


def test_file_object_bytes_are_a_safetensors_file(tmp_path):
    buf = io.BytesIO()
    lg.save({"w": lg.ones(2, 2), "epoch": 1}, buf)
    path = tmp_path / "c.safetensors"
    lg.save({"w": lg.ones(2, 2), "epoch": 1}, path)
    assert buf.getvalue() == path.read_bytes()
    assert lio.load_file(io.BytesIO(buf.getvalue()))["w"].tolist() == [[1, 1], [1, 1]]
    assert lio.read_metadata(io.BytesIO(buf.getvalue()))["format"] == "pt"
    with pytest.raises(TypeError, match="binary mode"):
        lg.load(io.StringIO("text"))
    with pytest.raises(TypeError, match="path or a binary file object"):
        lg.save({}, 42)


def test_a_bare_tensor_and_plain_values_round_trip():
    for obj in (lg.arange(6).reshape(2, 3), 7, "text", None, [1.5, True], (), {}):
        buf = io.BytesIO()
        lg.save(obj, buf)
        buf.seek(0)
        back = lg.load(buf)
        if isinstance(obj, lg.Tensor):
            assert back.tolist() == obj.tolist() and back.dtype is obj.dtype
        else:
            assert back == obj and type(back) is type(obj)


# ----------------------------------------------------------------------------- map_location
def _saved(obj) -> bytes:
    buf = io.BytesIO()
    lg.save(obj, buf)
    return buf.getvalue()


def test_map_location_cpu_strings_devices_dicts_callables():
    raw = _saved({"w": lg.ones(3), "b": [lg.zeros(1)]})
    for where in (None, "cpu", lg.device("cpu"), {"cpu": "cpu"}):
        back = lg.load(io.BytesIO(raw), map_location=where)
        assert back["w"].device == "cpu" and back["b"][0].device == "cpu"
    seen = []

    def fn(tensor, location):
        seen.append(location)
        return tensor * 2
    back = lg.load(io.BytesIO(raw), map_location=fn)
    assert seen == ["cpu", "cpu"] and back["w"].tolist() == [2, 2, 2]
    assert lg.load(io.BytesIO(raw), map_location=lambda t, loc: None)["w"].device == "cpu"
    assert lg.load(io.BytesIO(raw), device="cpu")["w"].device == "cpu"  # the older name
    with pytest.raises(TypeError, match="map_location or device, not both"):
        lg.load(io.BytesIO(raw), map_location="cpu", device="cpu")
    with pytest.raises(TypeError, match="map_location must be"):
        lg.load(io.BytesIO(raw), map_location=3)
    with pytest.raises(RuntimeError, match="tensor 'w' .* saved on cpu and is to go to tpu"):
        lg.load(io.BytesIO(raw), map_location="tpu")


@pytest.mark.skipif(not lg.cuda.is_available(), reason="needs CUDA (or its emulator)")
def test_map_location_moves_between_cpu_and_cuda():
    raw = _saved({"gpu": lg.ones(2, device="cuda"), "cpu": lg.zeros(2)})
    back = lg.load(io.BytesIO(raw))  # None: the saved devices, as in PyTorch
    assert back["gpu"].device.type == "cuda" and back["cpu"].device == "cpu"
    back = lg.load(io.BytesIO(raw), map_location=lambda t, loc: None)  # the saved devices
    assert back["gpu"].device.type == "cuda" and back["cpu"].device == "cpu"
    back = lg.load(io.BytesIO(raw), map_location={"cuda:0": "cuda:0"})
    assert back["gpu"].device.type == "cuda" and back["cpu"].device == "cpu"
    back = lg.load(io.BytesIO(raw), map_location="cpu")
    assert back["gpu"].device == "cpu" and back["gpu"].tolist() == [1, 1]
    back = lg.load(io.BytesIO(raw), map_location={"cuda:0": "cpu"})
    assert back["gpu"].device == "cpu" and back["cpu"].device == "cpu"
    back = lg.load(io.BytesIO(raw), map_location="cuda")
    assert back["cpu"].device.type == "cuda" and back["cpu"].tolist() == [0, 0]
    back = lg.load(io.BytesIO(raw), map_location=lambda t, loc: "cuda" if loc == "cpu" else None)
    assert back["cpu"].device.type == "cuda" and back["gpu"].device.type == "cuda"


# ----------------------------------------------------------------------------- whole modules
def test_module_loads_only_with_weights_only_false(tmp_path):
    lg.manual_seed(1)
    net = TinyNet()
    net(lg.randn(4, 3))  # moves the batch-norm running statistics
    net.eval()
    path = tmp_path / "net.pt"
    lg.save(net, path)
    with pytest.raises(UnsafeLoadError, match="holds a whole nn.Module of class .*TinyNet.*"
                                              "weights_only=False"):
        lg.load(path)
    back = lg.load(path, weights_only=False)
    assert type(back) is TinyNet and not back.training
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name].numpy(), value.numpy())
    x = lg.randn(2, 3)
    np.testing.assert_array_equal(back(x).detach().numpy(), net(x).detach().numpy())
    # A module inside a checkpoint, next to other things.
    lg.save({"model": net, "epoch": 2}, path)
    assert lg.load(path, weights_only=False)["epoch"] == 2


def test_safe_globals_allow_a_class_with_weights_only_true():
    raw = _saved(TinyNet())
    assert get_safe_globals() == []
    with safe_globals([TinyNet]):
        assert type(lg.load(io.BytesIO(raw))) is TinyNet
    assert get_safe_globals() == []
    with pytest.raises(UnsafeLoadError):
        lg.load(io.BytesIO(raw))
    add_safe_globals([TinyNet])
    try:
        assert type(lg.load(io.BytesIO(raw))) is TinyNet
    finally:
        clear_safe_globals()


def test_modules_that_cannot_be_rebuilt_give_clear_errors():
    raw = _saved(NeedsArgs(2))
    with pytest.raises(TypeError, match="constructor needs arguments.*state_dict"):
        lg.load(io.BytesIO(raw), weights_only=False)

    class Local(nn.Module):
        pass
    with pytest.raises(TypeError, match="class must be importable.*state_dict"):
        lg.save(Local(), io.BytesIO())
    # A file naming something that is not a module class is refused, not called.
    forged = raw.replace(b"NeedsArgs", b"_saved\x20\x20\x20")
    with pytest.raises((TypeError, ValueError, AttributeError)):
        lg.load(io.BytesIO(forged), weights_only=False)


# ----------------------------------------------------------------------------- PyTorch pickles
def test_pytorch_pickle_checkpoints_are_refused_with_the_fix(tmp_path):
    torch = pytest.importorskip("torch")
    zipped = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2), "epoch": 1}, zipped)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    for path, kind in ((zipped, "zip format"), (legacy, "legacy format")):
        for weights_only in (True, False):
            with pytest.raises(ValueError, match=f"{path.name} .* PyTorch pickle checkpoint "
                                                 f"\\(torch.save's {kind}.*lightgrad convert "
                                                 "in.pt out.safetensors"):
                lg.load(path, weights_only=weights_only)
        with pytest.raises(ValueError, match="PyTorch pickle"):
            lg.load(io.BytesIO(path.read_bytes()))
    with pytest.raises(ValueError, match="it is a Python pickle.*never unpickles"):
        lg.load(io.BytesIO(pickle.dumps({"a": 1})))


# ----------------------------------------------------------------------------- damaged files
def test_truncated_and_corrupted_files_give_clear_errors():
    raw = _saved({"model": {"w": lg.arange(10).float()}, "epoch": 3})
    for cut in (0, 4, 8, 20, len(raw) - 1):
        with pytest.raises(ValueError, match="not a valid safetensors file"):
            lg.load(io.BytesIO(raw[:cut]))
    (n,) = struct.unpack("<Q", raw[:8])
    huge = struct.pack("<Q", 2**63) + raw[8:]
    with pytest.raises(ValueError, match="header length says"):
        lg.load(io.BytesIO(huge))
    # Every single-byte change either loads or fails with a ValueError, never anything else.
    rng = np.random.default_rng(0)
    for pos in rng.integers(0, 8 + n, 200):
        damaged = bytearray(raw)
        damaged[pos] = (damaged[pos] + 1 + int(rng.integers(0, 254))) % 256
        try:
            lg.load(io.BytesIO(bytes(damaged)))
        except ValueError as err:
            assert "<BytesIO>" in str(err)


@pytest.mark.parametrize("structure, message", [
    ('{"__tensor__": 5}', "refers to tensor 5"),
    ('{"__tuple__": 5}', "invalid structure"),
    ('{"__dict__": [[1]]}', "invalid structure"),
    ('{"__dict__": [[[1], 2]]}', "invalid structure"),
    ('[' * 100000 + ']' * 100000, "not valid JSON|invalid structure"),
    ('{"__module__": {"class": "os:system", "state": {}}}', "weights_only=True refuses"),
])
def test_forged_structures_are_refused(tmp_path, structure, message):
    path = tmp_path / "forged.safetensors"
    lio.save_file({"w": lg.ones(1)}, path, metadata={"lightgrad": structure})
    with pytest.raises((ValueError, UnsafeLoadError), match=message):
        lg.load(path)


def test_forged_module_class_is_checked_before_calling(tmp_path):
    path = tmp_path / "forged.safetensors"
    lio.save_file({"w": lg.ones(1)}, path, metadata={
        "lightgrad": '{"__module__": {"class": "os:getcwd", "state": {}}}'})
    with pytest.raises(TypeError, match="not an nn.Module subclass"):
        lg.load(path, weights_only=False)
    lio.save_file({"w": lg.ones(1)}, path, metadata={
        "lightgrad": '{"__tensor__": "w"}', "lightgrad.devices": '["cuda"]'})
    with pytest.raises(ValueError, match="device metadata is invalid"):
        lg.load(path)


def test_nan_and_inf_survive():
    back = lg.load(io.BytesIO(_saved({"a": float("nan"), "b": -math.inf})))
    assert math.isnan(back["a"]) and back["b"] == -math.inf
