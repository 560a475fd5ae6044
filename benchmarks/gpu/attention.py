"""Fused attention, lightgrad vs PyTorch's ``scaled_dot_product_attention`` on one GPU.

    python benchmarks/gpu/attention.py [--batch 8] [--heads 12] [--seq 1024] [--dim 64]

GPT-2-like shapes (B=8, H=12, L=1024, E=64), float32, causal and not. Rows: the backend's
fused kernel ``flash_attention(q, k, v, scale, is_causal)`` when it has one (online
softmax, no L x L matrix), the ``scaled_dot_product_attention`` primitive (which also
returns the probabilities that backward uses), and forward + backward through
``F.scaled_dot_product_attention`` with autograd; against PyTorch's SDPA forward and
forward + backward on the same inputs (TF32 off, so both compute in float32). Times are
GPU time by CUDA events; "vs torch" is PyTorch's time over ours (1.0 = as fast, higher
is faster); TFLOP/s counts 4·B·H·L·S·E (halved when causal) for the forward and 2.5x that
for forward + backward. The outputs are compared too. Needs a real GPU (exits 0 otherwise).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import describe, gpu_ms, require_gpu, table, torch_on_gpu  # noqa: E402

TORCH_DEVICE = "cuda"


def to_lightgrad(lg: Any, t: Any) -> Any:
    """A lightgrad cuda tensor holding a copy of the contiguous torch CUDA tensor ``t``."""
    be = lg.device("cuda").backend
    out = be.empty(tuple(t.shape), np.dtype(str(t.dtype).replace("torch.", "")))
    be.rt.dtod(out.ptr, t.data_ptr(), t.numel() * t.element_size())
    return lg.Tensor._from_buffer(out, lg.device("cuda"))


def compare(lg: Any, torch: Any, theirs: tuple, mine: tuple, scale: float, causal: bool,
            iters: int) -> list[list[str]]:
    """Table rows for one masking mode: PyTorch's forward and forward + backward, then ours."""
    import lightgrad.nn.functional as F
    tq, tk, tv, tg = theirs
    q, k, v, g = mine
    B, H, L, E = tq.shape
    be = lg.device("cuda").backend
    rows: list[list[str]] = []
    flops = 4 * B * H * L * L * E * (0.5 if causal else 1.0)
    label = "causal" if causal else "full"

    def torch_fwd() -> Any:
        return torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)

    tq_, tk_, tv_ = (t.clone().requires_grad_() for t in (tq, tk, tv))

    def torch_fwd_bwd() -> None:
        y = torch.nn.functional.scaled_dot_product_attention(tq_, tk_, tv_, is_causal=causal)
        y.backward(tg)
        for t in (tq_, tk_, tv_):
            t.grad = None

    reference = torch_fwd()
    t_fwd, t_both = gpu_ms(torch_fwd, iters), gpu_ms(torch_fwd_bwd, iters)
    rows.append([f"torch SDPA fwd ({label})", f"{t_fwd:.3f}",
                 f"{flops / t_fwd / 1e9:.1f}", "1.00", "-"])
    rows.append([f"torch SDPA fwd+bwd ({label})", f"{t_both:.3f}",
                 f"{2.5 * flops / t_both / 1e9:.1f}", "1.00", "-"])

    def ours(name: str, fn: Callable[[], Any], torch_ms: float, work: float,
             output: Callable[[Any], Any] | None) -> None:
        try:
            result = fn()
            ms = gpu_ms(fn, iters)
        except NotImplementedError:
            rows.append([name, "-", "-", "-", "not implemented on cuda"])
            return
        except Exception as err:  # noqa: BLE001  (report and go on)
            rows.append([name, "-", "-", "-", f"failed: {type(err).__name__}: {err}"[:80]])
            return
        diff = "-"
        if output is not None:
            got = output(result).detach().cpu().numpy()
            diff = f"{np.abs(got - reference.cpu().numpy()).max():.1e}"
        rows.append([name, f"{ms:.3f}", f"{work / ms / 1e9:.1f}", f"{torch_ms / ms:.2f}",
                     diff])

    def wrap(buf: Any) -> Any:
        return lg.Tensor._from_buffer(buf, lg.device("cuda"))

    if hasattr(be, "flash_attention"):
        ours(f"lightgrad flash_attention ({label})",
             lambda: be.flash_attention(q._data, k._data, v._data, scale, causal), t_fwd,
             flops, lambda r: wrap(r[0] if isinstance(r, tuple) else r))
    else:
        rows.append([f"lightgrad flash_attention ({label})", "-", "-", "-",
                     "the backend has none"])
    ours(f"lightgrad sdpa primitive ({label})",
         lambda: be.scaled_dot_product_attention(q._data, k._data, v._data, None, scale,
                                                 causal, None),
         t_fwd, flops, lambda r: wrap(r[0]))
    ours(f"lightgrad F.sdpa fwd ({label})",
         lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), t_fwd, flops,
         lambda r: r)
    q_, k_, v_ = (t.detach().requires_grad_() for t in (q, k, v))

    def lightgrad_fwd_bwd() -> None:
        y = F.scaled_dot_product_attention(q_, k_, v_, is_causal=causal)
        y.backward(g)
        for t in (q_, k_, v_):
            t.grad = None
    ours(f"lightgrad F.sdpa fwd+bwd ({label})", lightgrad_fwd_bwd, t_both, 2.5 * flops,
         None)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--iters", type=int, default=10, help="timed calls per row")
    args = parser.parse_args(argv)
    lg = require_gpu("attention.py")
    torch = torch_on_gpu("attention.py")
    if torch is None:
        return 0

    print(f"attention.py: {describe(lg)}")
    B, H, L, E = args.batch, args.heads, args.seq, args.dim
    scale = 1 / math.sqrt(E)
    print(f"shapes: q, k, v ({B}, {H}, {L}, {E}) float32")
    gen = torch.Generator(device=TORCH_DEVICE).manual_seed(0)
    tq, tk, tv, tg = (torch.randn(B, H, L, E, device=TORCH_DEVICE, generator=gen)
                      for _ in range(4))
    q, k, v, g = (to_lightgrad(lg, t) for t in (tq, tk, tv, tg))

    rows: list[list[str]] = []
    for causal in (True, False):
        rows += compare(lg, torch, (tq, tk, tv, tg), (q, k, v, g), scale, causal, args.iters)
    print(table(rows, ["", "ms", "TFLOP/s", "vs torch", "max |diff|"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
