"""One GPT-2 small (124M) training step on a GPU, lightgrad vs PyTorch eager.

    python benchmarks/gpu/gpt2_step.py [--batch 8] [--seq 1024] [--steps 3] [--rounds 2]

The model is GPT-2 small (12 layers, 12 heads, width 768, context 1024, vocabulary 50257,
no dropout): ``lightgrad.models.gpt.GPT`` on lightgrad's ``cuda`` device and its PyTorch
twin ``benchmarks/torch_gpt.py`` on the same GPU, from the same initial weights, on the
same batch. A step is forward + cross-entropy + backward + ``clip_grad_norm_(1.0)`` + AdamW
(nanoGPT's decay / no-decay groups; PyTorch's default multi-tensor AdamW). Both compute
in float32 (TF32 off in PyTorch; CuPy's cuBLAS does not use TF32 unless CUPY_TF32=1).
Steps are timed by the wall clock with the device synchronised, the two frameworks in
alternating rounds; the best round of each gives tokens/s and the ratio (target:
lightgrad >= 1.0x PyTorch). Also printed: the first step's losses (they should agree), a
forward / backward / optimizer split, and peak memory. Needs a real GPU (exits 0
otherwise).
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # torch_gpt.py

from _common import describe, require_gpu, torch_on_gpu  # noqa: E402

TORCH_DEVICE = "cuda"


def torch_sync(torch: Any) -> None:
    if TORCH_DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def sync() -> None:
    import cupy
    cupy.cuda.runtime.deviceSynchronize()


def timed(fn: Callable[[], Any]) -> float:
    """Milliseconds of one call, the device synchronised before and after."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - start) * 1e3


def training_step(model: Any, opt: Any, x: Any, y: Any, clip: float,
                  clip_fn: Callable[..., Any], sync_fn: Callable[[], None]
                  ) -> Callable[..., dict[str, Any]]:
    """One GPT training step (either framework: its ``clip_grad_norm_`` and device sync);
    with ``split=True`` it syncs after each phase and times forward, backward and
    clip + AdamW."""
    params = list(model.parameters())

    def step(split: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        t0 = time.perf_counter()
        _, loss = model(x, y)
        if split:
            sync_fn()
            out["forward"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if split:
            sync_fn()
            out["backward"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        if clip:
            clip_fn(params, clip)
        opt.step()
        if split:
            sync_fn()
            out["clip + AdamW"] = time.perf_counter() - t2
        out["loss"] = loss
        return out
    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="sequences per step (default 8)")
    parser.add_argument("--seq", type=int, default=1024, help="tokens per sequence (<= 1024)")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per framework")
    parser.add_argument("--no-clip", action="store_true", help="skip clip_grad_norm_")
    parser.add_argument("--preset", default="gpt2",
                        help="model preset of lightgrad.models.gpt (default: gpt2, 124M)")
    args = parser.parse_args(argv)
    lg = require_gpu("gpt2_step.py")
    torch = torch_on_gpu("gpt2_step.py")
    if torch is None:
        return 0
    from lightgrad.models.gpt import GPT, GPTConfig
    from torch_gpt import TorchGPT, copy_weights

    print(f"gpt2_step.py: {describe(lg)}")
    config = GPTConfig.preset(args.preset, dropout=0.0)
    B, T = args.batch, min(args.seq, config.block_size)
    clip = 0.0 if args.no_clip else 1.0
    lg.manual_seed(0)
    start = time.perf_counter()
    model = GPT(config)  # initialised on the CPU, then both copies go to the GPU
    tmodel = TorchGPT(config)
    copy_weights(model, tmodel)
    model.to("cuda")
    tmodel.to(TORCH_DEVICE)
    print(f"model: {args.preset}, {model.num_parameters() / 1e6:.1f}M parameters; batch {B} x "
          f"{T} = {B * T:,} tokens/step; float32; clip {clip or 'off'}; built and copied in "
          f"{time.perf_counter() - start:.0f}s")
    tokens = np.random.default_rng(0).integers(0, config.vocab_size, (B, T + 1))
    x_np, y_np = tokens[:, :-1].copy(), tokens[:, 1:].copy()
    x, y = lg.from_numpy(x_np).to("cuda"), lg.from_numpy(y_np).to("cuda")
    tx, ty = torch.from_numpy(x_np).to(TORCH_DEVICE), torch.from_numpy(y_np).to(TORCH_DEVICE)
    opt = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95))
    topt = tmodel.configure_optimizers(0.1, 6e-4, (0.9, 0.95))
    steps = {"torch": training_step(tmodel, topt, tx, ty, clip,
                                    torch.nn.utils.clip_grad_norm_, lambda: torch_sync(torch)),
             "lightgrad": training_step(model, opt, x, y, clip, lg.nn.utils.clip_grad_norm_,
                                        sync)}

    # first steps: the losses must agree (same weights, same batch), and kernels compile
    first: dict[str, float] = {}
    failed = None
    for name, step in steps.items():
        t0 = time.perf_counter()
        try:
            first[name] = float(step()["loss"].item())
        except Exception as err:  # noqa: BLE001  (report; PyTorch's numbers still print)
            failed = f"{type(err).__name__}: {err}"
            traceback.print_exc(limit=4)
            print(f"gpt2_step.py: lightgrad's step failed: {failed}")
            break
        print(f"first step {name}: loss {first[name]:.4f} "
              f"({time.perf_counter() - t0:.1f}s, with warm-up and kernel compiles)")
    if "lightgrad" in first:
        print(f"first-step loss difference: {abs(first['lightgrad'] - first['torch']):.2e}")

    best = {name: float("inf") for name in steps if name in first}
    for _ in range(args.rounds):
        for name in best:
            ms = sum(timed(steps[name]) for _ in range(args.steps)) / args.steps
            best[name] = min(best[name], ms)
    for name, ms in best.items():
        split = steps[name](split=True)
        parts = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in split.items() if k != "loss")
        print(f"{name:>9}: {ms:8.1f} ms/step  {B * T / (ms / 1e3):>10,.0f} tokens/s   "
              f"({parts})")
    if TORCH_DEVICE.startswith("cuda"):
        print(f"peak memory: lightgrad {lg.cuda.max_memory_allocated() / 2**30:.1f} GiB, "
              f"torch {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if "lightgrad" in best:
        ratio = best["torch"] / best["lightgrad"]
        print(f"gpt2_step.py: lightgrad at {ratio:.2f}x PyTorch eager's tokens/s "
              f"(target >= 1.0x)")
        return 0
    print(f"gpt2_step.py: no lightgrad number ({failed})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
