"""Every test here runs once per device (cpu, and cuda: a GPU or the emulator)."""
import pytest


@pytest.fixture(autouse=True)
def _each_device(on_device):
    return on_device
