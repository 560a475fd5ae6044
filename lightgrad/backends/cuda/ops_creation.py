"""Creation and random numbers: arange, linspace, eye, and Philox rand/randn/randint
(kernel: random.cu).

The generator is Philox4x32-10, counter-based: a launch needs only (seed, offset), so the
backend keeps those two numbers. ``seed`` sets the key and resets the offset; every random
launch uses the current offset and advances it by one, so successive calls differ and a
seed replays the same calls with the same numbers, on a GPU and on the emulator alike.
Before ``seed`` is called the key comes from ``os.urandom`` (cpu.py's generator is
unseeded too).

>>> import lightgrad as lg                                    # doctest: +SKIP
>>> lg.cuda.manual_seed(0); a = lg.rand(3, device="cuda")     # doctest: +SKIP
>>> lg.cuda.manual_seed(0); bool((a == lg.rand(3, device="cuda")).all())  # doctest: +SKIP
True
"""
from __future__ import annotations

import math
import os

import numpy as np

from .array import DeviceArray
from .backend import FLOATS, HALF, suffix

_MASK64 = (1 << 64) - 1


class CreationOps:
    """arange, linspace, eye, seed, rand, randn, randint (and the Philox state that
    ops_indexing's multinomial draws from)."""

    # --- the generator's state: (key, next offset)
    def seed(self, seed: int) -> None:
        self._philox_state = [int(seed) & _MASK64, 0]

    def philox_next(self) -> tuple[int, int]:
        """(key, offset) for one random launch; the offset moves on."""
        state = getattr(self, "_philox_state", None)
        if state is None:
            state = self._philox_state = [int.from_bytes(os.urandom(8), "little"), 0]
        key, offset = state
        state[1] = (offset + 1) & _MASK64
        return key, offset

    def _random(self, op: str, shape: tuple, dtype: np.dtype, per_block: int,
                extra: tuple = ()) -> DeviceArray:
        out = self.empty(tuple(shape), dtype)
        n = out.size
        key, offset = self.philox_next()  # advance even when empty, as every call does
        if n:
            self.launch_elementwise(self.kernel("random", f"{op}_{suffix(dtype, op)}"),
                                    -(-n // per_block), [n, key, offset, *extra, out])
        return out

    def rand(self, shape, dtype) -> DeviceArray:
        dtype = np.dtype(dtype)
        if suffix(dtype, "rand") not in FLOATS:  # as cpu.py: float32 numbers, converted
            return self.astype(self.rand(shape, np.float32), dtype)
        return self._random("rand", shape, dtype, 2 if dtype == np.float64 else 4)

    def randn(self, shape, dtype) -> DeviceArray:
        dtype = np.dtype(dtype)
        if suffix(dtype, "randn") not in FLOATS:
            return self.astype(self.randn(shape, np.float32), dtype)
        return self._random("randn", shape, dtype, 2 if dtype == np.float64 else 4)

    def randint(self, low, high, shape, dtype) -> DeviceArray:
        low, high = int(low), int(high)
        if high <= low:
            raise ValueError(f"randint: high ({high}) must be above low ({low})")
        if low < -2**63 or high > 2**63:
            raise ValueError(f"randint: [{low}, {high}) does not fit in int64")
        span = (high - low) & _MASK64  # 2**64 wraps to 0, which the kernel reads as 2**64
        out = self._random("randint", shape, np.dtype(np.int64), 2, (low, span))
        return out if np.dtype(dtype) == np.int64 else self.astype(out, dtype)

    # --- deterministic creation
    def arange(self, start, end, step, dtype) -> DeviceArray:
        dtype = np.dtype(dtype)
        n = max(0, math.ceil((end - start) / step))
        out = self.empty((n,), dtype)
        if not n:
            return out
        sfx = suffix(dtype, "arange")
        # NumPy's fill: the first two values converted to the dtype, then first + i * delta
        # in the dtype's arithmetic (float64 for the halves, which cpu.py makes from float64)
        wide = np.dtype(np.float64) if dtype in HALF else dtype
        first, second = (np.array(v).astype(wide)[()] for v in (start, start + step))
        if wide.kind == "f":
            delta = second - first
            args = [first, second, delta]
        else:
            args = [int(first), int(second), int(second) - int(first)]
            args = [((a + 2**63) & _MASK64) - 2**63 for a in args]  # int64 wrap, as in C
        self.launch_elementwise(self.kernel("random", f"arange_{sfx}"), n, [n, *args, out])
        return out

    def linspace(self, start, end, steps, dtype) -> DeviceArray:
        dtype = np.dtype(dtype)
        n = int(steps)
        direct = dtype in (np.float32, np.float64)
        out = self.empty((n,), dtype if direct else np.float64)
        if n:
            start, end = float(start), float(end)
            delta, div = end - start, float(n - 1)
            # NumPy's three cases: a usable step, a step that underflowed to 0, one value
            if n > 1:
                step = delta / div
                mode, step = (0, step) if step != 0 else (1, 0.0)
            else:
                mode, step, div = 2, 0.0, 1.0
            self.launch_elementwise(
                self.kernel("random", f"linspace_{suffix(out.dtype, 'linspace')}"), n,
                [n, mode, start, end, step, div, delta, out])
        return out if direct else self.astype(out, dtype)

    def eye(self, n, m, dtype) -> DeviceArray:
        dtype = np.dtype(dtype)
        out = self.empty((n, m), dtype)
        if out.size:
            one = int(np.array(1).astype(dtype).view(f"u{dtype.itemsize}"))
            self.launch_elementwise(self.kernel("random", f"eye_{dtype.itemsize}"), out.size,
                                    [n, m, one, self.raw(out)])
        return out
