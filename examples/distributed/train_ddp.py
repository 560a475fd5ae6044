"""Data-parallel training of a small classifier: run with

    lightgrad run -n 2 -- examples/distributed/train_ddp.py

Every rank loads the same data set, a ``DistributedSampler`` gives each its share of every
epoch, ``DistributedDataParallel`` averages the gradients; rank 0 prints and saves.
"""
from __future__ import annotations

import numpy as np

import lightgrad as lg
import lightgrad.distributed as dist
from lightgrad import nn
from lightgrad.nn.parallel import DistributedDataParallel
from lightgrad.utils.data import DataLoader, DistributedSampler, TensorDataset


def main() -> None:
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)  # the same data on every rank
    x = rng.standard_normal((2048, 16)).astype(np.float32)
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).astype(np.int64)
    data = TensorDataset(lg.tensor(x), lg.tensor(y))
    sampler = DistributedSampler(data, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=64 // world, sampler=sampler)  # global batch 64

    model = DistributedDataParallel(nn.Sequential(nn.Linear(16, 64), nn.ReLU(),
                                                  nn.Linear(64, 2)))
    opt = lg.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        total = lg.zeros(2)  # summed loss and count over this rank's batches
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += lg.tensor([loss.item() * len(yb), len(yb)])
        dist.all_reduce(total)  # over all ranks
        if rank == 0:
            print(f"epoch {epoch}: mean train loss {total[0].item() / total[1].item():.4f} "
                  f"over {int(total[1].item())} samples on {world} ranks")
    if rank == 0:
        lg.save(model.module.state_dict(), "ddp_model.safetensors")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
