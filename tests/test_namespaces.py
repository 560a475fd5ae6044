"""PyTorch's device namespaces: lg.accelerator, lg.backends.cudnn/mps, lg.onnx."""
from __future__ import annotations

import pytest

import lightgrad as lg


def test_accelerator_agrees_with_cuda():
    assert lg.accelerator.is_available() == lg.cuda.is_available()
    acc = lg.accelerator.current_accelerator()
    if lg.cuda.is_available():
        assert acc == lg.device("cuda") and acc.type == "cuda"
        assert lg.accelerator.device_count() == lg.cuda.device_count() >= 1
    else:
        assert acc is None and lg.accelerator.device_count() == 0


def test_accelerator_without_cuda(monkeypatch):
    monkeypatch.setattr(lg.cuda, "is_available", lambda: False)
    assert lg.accelerator.is_available() is False
    assert lg.accelerator.current_accelerator() is None
    assert lg.accelerator.device_count() == 0


def test_cudnn_flags_are_settable_module_attributes():
    import lightgrad.backends.cudnn as cudnn
    assert lg.backends.cudnn is cudnn
    assert cudnn.is_available() is False and cudnn.version() is None
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == \
        (True, False, False, True)
    try:
        lg.backends.cudnn.benchmark = True
        lg.backends.cudnn.deterministic = True
        assert cudnn.benchmark and cudnn.deterministic
        with cudnn.flags(enabled=False, benchmark=False):
            assert not cudnn.enabled and not cudnn.benchmark and cudnn.deterministic
        assert cudnn.enabled and cudnn.benchmark
    finally:
        cudnn.benchmark = cudnn.deterministic = False


def test_mps_is_never_available():
    assert lg.backends.mps.is_available() is False and lg.backends.mps.is_built() is False


def test_onnx_namespace_imports_and_export_writes_a_file(tmp_path):
    pytest.importorskip("onnx")
    from lightgrad.onnx import export
    assert lg.onnx.export is export and lg.onnx.is_in_onnx_export() is False
    path = tmp_path / "model.onnx"
    lg.onnx.export(lg.nn.Linear(2, 2), (lg.zeros(1, 2),), str(path))
    assert path.stat().st_size > 0


def test_serialization_namespace():
    assert lg.serialization.save is lg.save and lg.serialization.load is lg.load
    assert callable(lg.serialization.safe_globals)
    assert callable(lg.serialization.add_safe_globals)
