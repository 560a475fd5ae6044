"""PyTorch's ``torch.backends.mps``: Apple's Metal backend, which lightgrad does not have.

>>> import lightgrad as lg
>>> lg.backends.mps.is_available(), lg.backends.mps.is_built()
(False, False)
"""
from __future__ import annotations


def is_available() -> bool:
    """Whether ``device="mps"`` works: never, in lightgrad."""
    return False


def is_built() -> bool:
    """Whether lightgrad was built with MPS support: no."""
    return False
