"""One training step of the LeNet-style CNN on 28x28 images (batch 64): forward, backward,
Adam update.

    python benchmarks/cnn_step.py [--batch 64] [--channels 32,64] [--iters 30] [--threads 2]

Runs the same step in lightgrad (``lightgrad.models.cnn.LeNet`` + F.cross_entropy +
optim.Adam) and in PyTorch (the same architecture and weights) in one process, both on
``--threads`` threads (default 2; 0 keeps each framework's default),
prints ms/step (CPU time with ``--threads 1``, else wall time) and the ratio (target:
lightgrad <= 1.5x PyTorch), then the share of lightgrad's step spent in each backend
function (``cpu_conv`` holds the convolutions and pooling).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import numpy as np

import lightgrad as lg
from steps import classifier_step


def timed(step, warmup: int = 3, iters: int = 30, clock=time.perf_counter) -> float:
    """Best of 5 rounds of ``iters // 5`` steps, in ms per step (robust to a busy machine)."""
    for _ in range(warmup):
        step()
    best = float("inf")
    per_round = max(1, iters // 5)
    for _ in range(5):
        start = clock()
        for _ in range(per_round):
            step()
        best = min(best, (clock() - start) / per_round)
    return best * 1e3


def torch_lenet(model: lg.nn.Module):
    """The same network in PyTorch, with lightgrad's weights copied in."""
    import torch
    from torch import nn

    conv1, conv2 = model.features[0], model.features[3]
    fc1, fc2 = model.classifier[1], model.classifier[-1]
    k = conv1.kernel_size[0]

    class TorchLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(conv1.in_channels, conv1.out_channels, k, padding=k // 2),
                nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(conv2.in_channels, conv2.out_channels, k, padding=k // 2),
                nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(fc1.in_features, fc1.out_features), nn.ReLU(),
                nn.Linear(fc2.in_features, fc2.out_features))

        def forward(self, x):
            return self.classifier(self.features(x))

    tmodel = TorchLeNet()
    tmodel.load_state_dict({name: torch.tensor(v.numpy())
                            for name, v in model.state_dict().items()})
    return tmodel


def backend_profile(step, iters: int = 5) -> list[tuple[str, float]]:
    """(primitive, share of the step) for lightgrad's CPU backend functions."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(iters):
        step()
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, _), (_, _, tt, _, _) in stats.items())
    rows = [(f"{Path(path).stem}.{name}", tt / total)
            for (path, _, name), (_, _, tt, _, _) in stats.items() if "backends" in path]
    return sorted(rows, key=lambda r: -r[1])[:8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="images per step (default: 64)")
    parser.add_argument("--channels", default="32,64",
                        help="the two convs' channels (default: 32,64, the CLI's default)")
    parser.add_argument("--iters", type=int, default=30, help="timed steps (default: 30)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for both (default 2; 0: lightgrad automatic, torch's own)")
    args = parser.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
        lg.set_num_threads(args.threads)
    from lightgrad import optim
    from lightgrad.models.cnn import LeNet
    from lightgrad.nn import functional as F

    lg.manual_seed(0)
    channels = tuple(int(c) for c in args.channels.split(","))
    model = LeNet(28, channels=channels)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, args.batch)
    tmodel = torch_lenet(model)

    opt = optim.Adam(model.parameters(), lr=1e-3)
    lx, ly = lg.tensor(x), lg.tensor(y)

    lg_step = classifier_step(model, opt, F, lx, ly)

    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    tx, ty = torch.tensor(x), torch.tensor(y)

    torch_step = classifier_step(tmodel, topt, torch.nn.functional, tx, ty)

    first = (lg_step().item(), torch_step().item())
    # one thread: CPU time, which other processes on the machine barely disturb
    clock = time.process_time if args.threads == 1 else time.perf_counter
    t_lg = timed(lg_step, iters=args.iters, clock=clock)
    t_torch = timed(torch_step, iters=args.iters, clock=clock)
    print(f"LeNet {channels} on 28x28, batch {args.batch}: forward + backward + Adam step "
          f"(first losses: lightgrad {first[0]:.5f}, pytorch {first[1]:.5f})")
    print(f"  lightgrad {t_lg:8.2f} ms/step")
    print(f"  pytorch   {t_torch:8.2f} ms/step   lightgrad/pytorch = {t_lg / t_torch:.2f}x "
          "(target <= 1.5x)")
    print("lightgrad time by backend function (share of the whole step):")
    for name, share in backend_profile(lg_step):
        print(f"  {name:28s} {100 * share:5.1f}%")


if __name__ == "__main__":
    main()
