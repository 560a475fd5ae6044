"""Seeded randomness for shuffling and splitting: the same seed gives the same order.

>>> g = Generator().manual_seed(0)
>>> a = g.randperm(5); b = Generator().manual_seed(0).randperm(5)
>>> bool((a == b).all()), sorted(a.tolist())
(True, [0, 1, 2, 3, 4])
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Generator:
    """A random-number source with ``manual_seed`` (like ``torch.Generator``), backed by
    NumPy's PCG64.

    >>> Generator().manual_seed(7).initial_seed()
    7
    """

    def __init__(self, seed: int | None = None):
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from ``seed``; returns ``self`` so calls can be chained."""
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"Generator.manual_seed: expected an int, got "
                            f"{type(seed).__name__}")
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        """The seed the stream was last started from."""
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """The stream's position (a dict) to give to ``set_state`` later."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def randperm(self, n: int) -> np.ndarray:
        """A random permutation of ``0..n-1`` as int64 indices."""
        return self.rng.permutation(n).astype(np.int64)


def as_numpy_rng(generator: "Generator | np.random.Generator | None") -> np.random.Generator:
    """The NumPy generator to draw from. Without one, seed a fresh stream from lightgrad's
    global generator, so ``lightgrad.manual_seed`` makes shuffling reproducible."""
    if generator is None:
        from ..creation import randint
        return np.random.default_rng(int(randint(0, 2**62, (1,)).item()))
    if isinstance(generator, Generator):
        return generator.rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"expected a lightgrad.data.Generator or numpy.random.Generator, got "
                    f"{type(generator).__name__}")
