"""Per-op overhead: microseconds per small op (16 elements), lightgrad vs PyTorch, one run.

    python benchmarks/op_overhead.py

Prints, for each op, µs/op without and with requires_grad (forward only, graph recorded)
and the ratio lightgrad / PyTorch. Target: ratio <= 1.5. Times are CPU time of this
process (``time.process_time``), best of 5, so a busy machine does not inflate them.
"""
from __future__ import annotations

import time
import timeit

import numpy as np

import lightgrad as lg

OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "exp": lambda a, b: a.exp(),
    "relu": lambda a, b: a.relu(),
    "sum": lambda a, b: a.sum(),
    "matmul 4x4": lambda a, b: a @ b,
    "reshape": lambda a, b: a.reshape(16),
    "getitem": lambda a, b: a[1:3],
}


def per_op_us(fn, a, b, number: int = 20000) -> float:
    fn(a, b)
    best = min(timeit.repeat(lambda: fn(a, b), number=number, repeat=5,
                             timer=time.process_time))
    return best / number * 1e6


def main() -> None:
    import torch
    torch.set_num_threads(1)
    data = np.random.default_rng(0).standard_normal((2, 4, 4)).astype(np.float32)
    print(f"{'op':<12} {'grad':<5} {'lightgrad µs':>13} {'torch µs':>9} {'ratio':>6}")
    ratios = []
    for requires_grad in (False, True):
        la = lg.tensor(data[0], requires_grad=requires_grad)
        lb = lg.tensor(data[1], requires_grad=requires_grad)
        ta = torch.tensor(data[0], requires_grad=requires_grad)
        tb = torch.tensor(data[1], requires_grad=requires_grad)
        for name, fn in OPS.items():
            ours, theirs = per_op_us(fn, la, lb), per_op_us(fn, ta, tb)
            ratios.append(ours / theirs)
            print(f"{name:<12} {str(requires_grad):<5} {ours:13.2f} {theirs:9.2f} "
                  f"{ours / theirs:6.2f}")
    print(f"geometric mean ratio: {float(np.exp(np.mean(np.log(ratios)))):.2f}")


if __name__ == "__main__":
    main()
