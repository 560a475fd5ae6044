"""Shared test setup: seeded RNGs, the `slow` marker, and helpers to compare with PyTorch."""
from __future__ import annotations

import os

import numpy as np
import pytest

import lightgrad as lg


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
