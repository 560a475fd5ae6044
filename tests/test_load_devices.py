"""``lg.load`` puts tensors back on the device they were saved from (PyTorch's rule), and
says to pass ``map_location`` when that device isn't available."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

import lightgrad as lg
from lightgrad.io import read_metadata

needs_cuda = pytest.mark.skipif(not lg.cuda.is_available(), reason="needs CUDA or its emulator")


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    lg.save(obj, buf)
    return buf.getvalue()


@needs_cuda
def test_load_restores_saved_devices():
    raw = _saved({"model": {"w": lg.ones(2, 3, device="cuda")}, "steps": [lg.zeros(1)]})
    assert json.loads(read_metadata(io.BytesIO(raw))["lightgrad.devices"]) == \
        {"model.w": "cuda:0"}
    back = lg.load(io.BytesIO(raw))
    assert back["model"]["w"].device.type == "cuda" and back["steps"][0].device == "cpu"
    assert back["model"]["w"].tolist() == [[1.0] * 3] * 2
    cpu = lg.load(io.BytesIO(raw), map_location="cpu")["model"]["w"]
    assert cpu.device == "cpu" and cpu.tolist() == [[1.0] * 3] * 2


@needs_cuda
def test_missing_cuda_index_asks_for_map_location():
    raw = _saved({"w": lg.ones(2, device="cuda")})
    with pytest.raises(RuntimeError, match=r"saved on cuda:0 and is to go to cuda:7.*"
                                           r"map_location='cpu'"):
        lg.load(io.BytesIO(raw), map_location={"cuda:0": "cuda:7"})


@needs_cuda
def test_cuda_checkpoint_on_a_machine_without_cuda(tmp_path):
    path = tmp_path / "gpu.safetensors"
    lg.save({"w": lg.arange(3.0, device="cuda")}, path)
    child = (
        "import sys, lightgrad as lg\n"
        "try:\n"
        "    lg.load(sys.argv[1])\n"
        "except RuntimeError as err:\n"
        "    print('ERR', err)\n"
        "print('CPU', lg.load(sys.argv[1], map_location='cpu')['w'].tolist())\n")
    env = {k: v for k, v in os.environ.items() if k != "LIGHTGRAD_CUDA"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # a real GPU, if any, is hidden too
    out = subprocess.run([sys.executable, "-c", child, str(path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    err_line = next(line for line in out.stdout.splitlines() if line.startswith("ERR"))
    assert "saved on cuda:0" in err_line and "map_location='cpu'" in err_line
    assert "CPU [0.0, 1.0, 2.0]" in out.stdout


def test_cpu_checkpoints_stay_on_the_cpu():
    raw = _saved({"w": lg.ones(2)})
    assert "lightgrad.devices" not in read_metadata(io.BytesIO(raw))
    assert lg.load(io.BytesIO(raw))["w"].device == "cpu"
