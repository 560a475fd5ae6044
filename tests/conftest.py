"""Shared test setup: seeded RNGs, the `slow` marker, and helpers to compare with PyTorch."""
from __future__ import annotations

import os

import numpy as np
import pytest


def _gpu_present() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001  (no CuPy, no driver, no device)
        return False


if "LIGHTGRAD_CUDA" not in os.environ and not _gpu_present():
    os.environ["LIGHTGRAD_CUDA"] = "emulate"  # before lightgrad is imported

import lightgrad as lg  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    lg.manual_seed(0)
    np.random.seed(0)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("LIGHTGRAD_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow end-to-end run; set LIGHTGRAD_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# --------------------------------------------------------------------------- devices
# Without a GPU the `cuda` device runs on the emulator, so every device-parametrized test
# runs our CUDA kernels in CI too. Set LIGHTGRAD_CUDA yourself to choose (e.g. on a GPU).
DEVICES = ["cpu"] + (["cuda"] if lg.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Each device this machine has (cpu; cuda on a GPU or on the emulator)."""
    return request.param


@pytest.fixture
def on_device(device):
    """Run the test with ``device`` as the default device of creation functions."""
    lg.set_default_device(device)
    try:
        yield device
    finally:
        lg.set_default_device("cpu")
