"""The C kernels (``lightgrad/backends/cpu_native.py``) against their NumPy twins and
PyTorch's CPU kernels, at the sizes of a GPT ``baby`` training step (batch 12, context 64,
width 128, 4 heads, MLP 512, vocabulary 65): CPU time, one thread, best of 5 rounds.

    python benchmarks/native_kernels.py

Each line: one kernel's C time, its NumPy twin's, PyTorch's, in microseconds per call.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from cpu_time import best_ms  # noqa: E402

from lightgrad.backends import cpu_gelu, cpu_native, cpu_norm, native  # noqa: E402

cpu = importlib.import_module("lightgrad.backends.cpu")


def cases(torch) -> list:
    """(name, C kernel, NumPy twin, PyTorch) triples of zero-argument functions."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    act = rng.standard_normal((12, 64, 512)).astype(f32)
    h = rng.standard_normal((12, 64, 128)).astype(f32)
    w, b = rng.standard_normal(128).astype(f32), rng.standard_normal(128).astype(f32)
    y, mean, rstd = cpu_norm.layer_norm(h, w, b, 1, 1e-5)
    scores = rng.standard_normal((12, 4, 64, 64)).astype(f32)
    logits = rng.standard_normal((768, 65)).astype(f32)
    targets = rng.integers(0, 65, 768)
    n = 800_000  # about the baby model's parameter count
    p, g, m, v = (rng.standard_normal(n).astype(f32) for _ in range(4))
    v = np.abs(v)
    t_act, t_h, t_w, t_b = (torch.from_numpy(a) for a in (act, h, w, b))
    t_h.requires_grad_(True)
    t_scores, t_logits = torch.from_numpy(scores), torch.from_numpy(logits)
    t_targets = torch.from_numpy(targets)
    t_ln = torch.nn.functional.layer_norm(t_h, (128,), t_w, t_b)
    t_gy = torch.from_numpy(act)
    t_g = torch.from_numpy(h)
    t_p, t_grad, t_m, t_v = (torch.from_numpy(a.copy()) for a in (p, g, m, v))
    adam = torch.optim.AdamW([torch.nn.Parameter(t_p)], lr=1e-3, foreach=False)
    adam.param_groups[0]["params"][0].grad = t_grad
    adam.step()
    gelu_t = torch.ops.aten.gelu_backward

    def twin_adam() -> None:
        with_twin = (p.copy(), m.copy(), v.copy())
        saved = native._state["lib"]
        native._state["lib"], cpu_native._kernels = None, {}
        try:
            cpu.CPUBackend().adamw_step(with_twin[0], g, with_twin[1], with_twin[2], 1e-3,
                                        0.9, 0.99, 1e-8, 0.1, 5)
        finally:
            native._state["lib"], cpu_native._kernels = saved, {}

    def copies() -> None:  # the state copies twin_adam makes, subtracted from its time
        (p.copy(), m.copy(), v.copy())

    return [
        ("gelu forward (12,64,512)", lambda: cpu_native.gelu(act),
         lambda: cpu_gelu.gelu(act), lambda: torch.nn.functional.gelu(t_act)),
        ("gelu_and_grad (12,64,512)", lambda: cpu_native.gelu_and_grad(act),
         lambda: cpu_gelu.gelu_and_grad(act),
         lambda: gelu_t(t_gy, t_act)),  # torch's backward only: it recomputes the CDF
        ("gelu_backward (12,64,512)", lambda: cpu_native.gelu_backward(act, act),
         lambda: cpu_gelu.gelu_backward(act, act), lambda: gelu_t(t_gy, t_act)),
        ("layer_norm fwd (12,64,128)", lambda: cpu_native.layer_norm(h, w, b, 1, 1e-5),
         lambda: cpu_norm.layer_norm(h, w, b, 1, 1e-5),
         lambda: torch.nn.functional.layer_norm(t_h.detach(), (128,), t_w, t_b)),
        ("layer_norm bwd (12,64,128)",
         lambda: cpu_native.layer_norm_backward(h, h, w, mean, rstd, 1),
         lambda: cpu_norm.layer_norm_backward(h, h, w, mean, rstd, 1),
         lambda: torch.autograd.grad(t_ln, [t_h], t_g, retain_graph=True)),
        ("causal softmax (12,4,64,64)",
         lambda: cpu_native.attention_softmax_(scores.copy(), True),
         lambda: cpu._attention_softmax(scores.copy(), None, True),
         lambda: torch.softmax(t_scores.clone() + torch.zeros(64, 64), -1)),
        ("log_softmax (768,65)", lambda: cpu_native.log_softmax(logits, -1),
         lambda: cpu._log_softmax(logits, -1), lambda: torch.log_softmax(t_logits, -1)),
        ("cross_entropy fwd (768,65)",
         lambda: cpu_native.cross_entropy(logits, targets, None, -100, 0.0),
         lambda: cpu._cross_entropy(logits, targets, None, -100, 0.0),
         lambda: torch.nn.functional.cross_entropy(t_logits, t_targets, reduction="none")),
        ("adamw 800k params", lambda: cpu_native.adamw_step(p, g, m, v, 1e-3, 0.9, 0.99,
                                                            1e-8, 0.1, 5),
         twin_adam, adam.step, copies),
    ]


def main() -> None:
    import torch
    torch.set_num_threads(1)
    if native.library() is None:
        sys.exit("native kernels unavailable (no compiler, or LIGHTGRAD_NATIVE=0)")
    print("CPU time per call, us, 1 thread:       C      NumPy twin    PyTorch   twin/C")
    for name, *fns in cases(torch):
        times = [t * 1e3 for t in best_ms(fns, rounds=5, n=10)]
        if len(times) == 4:  # the state copies of the twin's run
            times[1] -= times.pop()
        print(f"  {name:30} {times[0]:10.1f} {times[1]:12.1f} {times[2]:10.1f}"
              f" {times[1] / times[0]:7.1f}x")


if __name__ == "__main__":
    main()
