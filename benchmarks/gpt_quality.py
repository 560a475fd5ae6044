"""Is the GPT's validation loss lightgrad's or the recipe's? Train the same model twice.

    python benchmarks/gpt_quality.py [--data FILE] [--max-iters 2000]

Trains the ``baby`` GPT with ``lightgrad train gpt``'s recipe (AdamW, warm-up + cosine,
clipping, batch 12) in lightgrad and in PyTorch from the same initial weights on the same
batches (both drawn from ``np.random.default_rng([seed, step])``), and prints both final
validation losses (200 fixed batches). Default data: ../shared/data/tinyshakespeare.txt.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgrad as lg  # noqa: E402
from lightgrad.models.gpt import GPT, GPTConfig  # noqa: E402
from lightgrad.models.tokenizer import CharTokenizer  # noqa: E402
from lightgrad.train.common import warmup_cosine_lr  # noqa: E402
from lightgrad.train.gpt import estimate_loss, get_batch, read_text, split_ids  # noqa: E402


def main() -> None:
    import torch
    from torch_gpt import TorchGPT, copy_weights, set_threads
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()
    set_threads(2)
    text = read_text(args.data)
    tok = CharTokenizer(text)
    lg.manual_seed(args.seed)
    model = GPT(GPTConfig.preset("baby", vocab_size=tok.vocab_size))
    splits = split_ids(tok.encode(text), model.config.block_size)
    tmodel = TorchGPT(model.config)
    copy_weights(model, tmodel)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    topt = tmodel.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    start = time.perf_counter()
    for it in range(args.max_iters):
        lr = warmup_cosine_lr(it, 1e-3, 1e-4, 100, args.max_iters)
        for group in opt.param_groups + topt.param_groups:
            group["lr"] = lr
        x, y = get_batch(splits.train, 12, 64, np.random.default_rng([args.seed, it]))
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        lg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        _, tloss = tmodel(torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy()))
        topt.zero_grad()
        tloss.backward()
        torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 1.0)
        topt.step()
        if (it + 1) % 500 == 0:
            print(f"step {it + 1}: train loss lightgrad {loss.item():.4f}, pytorch "
                  f"{tloss.item():.4f} ({time.perf_counter() - start:.0f}s)", flush=True)
    ours = estimate_loss(model, splits, 12, 200, args.seed)
    copy_back = GPT(model.config)
    state = {k: lg.tensor(v.detach().numpy()) for k, v in tmodel.state_dict().items()}
    copy_back.load_state_dict(state, strict=False)
    theirs = estimate_loss(copy_back, splits, 12, 200, args.seed)
    print(f"validation loss after {args.max_iters} steps: lightgrad {ours['val']:.4f}, "
          f"pytorch {theirs['val']:.4f} (same batches, same initial weights)")


if __name__ == "__main__":
    main()
