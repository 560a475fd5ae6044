"""``--nproc N`` of the training commands: data-parallel training on N processes.

``lightgrad train gpt --nproc 2 ...`` starts itself again on 2 MPI ranks (``lightgrad run``
with one BLAS thread each); every rank builds the same model, draws the same global batch
and trains on its shard of it (a contiguous block of rows), with
gradients averaged by ``DistributedDataParallel``. The result is the same training as one
process on the whole batch (up to float reduction order), so a checkpoint resumes on any
number of processes. Only rank 0 prints progress, evaluates and writes checkpoints.

>>> ctx = DataParallel(rank=1, world=2)
>>> ctx.is_main, ctx.shard(list(range(5))), ctx.loss_scale(5)
(False, [3, 4], 0.8)
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from .common import positive


def add_nproc_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nproc", type=positive(int), default=1,
                        help="train data-parallel on N processes (MPI, one BLAS thread each; "
                             "needs lightgrad[distributed]); the batch is split over them")


def launched_by_mpi() -> bool:
    """Whether this process is a rank started by mpiexec / ``lightgrad run``."""
    return any(v in os.environ for v in ("PMI_RANK", "OMPI_COMM_WORLD_RANK"))


def relaunch(args: argparse.Namespace, cmd: str) -> None:
    """With ``--nproc N > 1`` outside MPI: run this same command on N ranks and exit with
    their status (``SystemExit``). Otherwise return and train here."""
    nproc = getattr(args, "nproc", 1)
    if nproc <= 1 or launched_by_mpi():
        return
    from ..distributed.launch import run
    argv = getattr(args, "argv", None)
    if argv is None:
        argv = sys.argv[1:]
    code = run(nproc, ["-m", "lightgrad.cli", *argv], threads=1)
    if code != 0:
        raise SystemExit(f"{cmd} --nproc {nproc}: a rank failed (exit status {code})")
    raise SystemExit(0)


@dataclass
class DataParallel:
    """Rank, world size, and the helpers a training loop needs."""

    rank: int
    world: int

    @classmethod
    def single(cls) -> "DataParallel":
        return cls(0, 1)

    @classmethod
    def setup(cls, args: argparse.Namespace, batch_size: int, cmd: str) -> "DataParallel":
        """Join the process group when running as a rank; check the batch can be split."""
        nproc = getattr(args, "nproc", 1)
        if not launched_by_mpi():
            return cls.single()
        from .. import distributed as dist
        if not dist.is_initialized():
            dist.init_process_group("mpi")
        world = dist.get_world_size()
        if nproc not in (1, world):
            raise ValueError(f"{cmd}: --nproc {nproc} but the job has {world} processes")
        if batch_size < world:
            raise ValueError(f"{cmd}: --batch-size {batch_size} cannot be split over {world} "
                             f"processes (each needs at least one row)")
        return cls(dist.get_rank(), world)

    def check_device(self, device: Any, cmd: str) -> None:
        """Several ranks train on the CPU (MPI carries CPU tensors)."""
        if self.world > 1 and str(device) != "cpu":
            raise ValueError(f"{cmd} --nproc: data-parallel training from the command line "
                             f"runs on the CPU (MPI); got --device {device}")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def bounds(self, n: int) -> tuple[int, int]:
        """This rank's rows ``[start, stop)`` of a global batch of ``n`` (sizes differ by at
        most one, as ``numpy.array_split``)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra)

    def shard(self, batch: Sequence[Any]) -> Any:
        """This rank's contiguous block of rows of a global batch."""
        if self.world == 1:
            return batch
        start, stop = self.bounds(len(batch))
        return batch[start:stop]

    def loss_scale(self, n: int) -> float:
        """Factor for this rank's mean loss over its shard of a global batch of ``n``, so
        that DDP's average over the ranks is the mean over the whole batch (1 when the
        shards are equal)."""
        start, stop = self.bounds(n)
        return (stop - start) * self.world / n

    def wrap(self, model: Any) -> Any:
        """The model to call in the training step (DDP when there are several ranks)."""
        if self.world == 1:
            return model
        from ..nn.parallel import DistributedDataParallel
        return DistributedDataParallel(model)

    def mean(self, value: float, n: int | None = None) -> float:
        """The mean over the global batch (of ``n`` rows; default: equal shards) of a
        value averaged over this rank's shard, such as its loss."""
        if self.world == 1:
            return value
        from .. import distributed as dist
        from ..creation import tensor
        scale = self.loss_scale(n) if n is not None else 1.0
        t = tensor([value * scale], dtype="float64")
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        return float(t.item())

    def log(self, log: Any) -> Any:
        """``log`` on rank 0, silence elsewhere."""
        return log if self.is_main else (lambda *a, **k: None)

    def progress(self, total: int, **kwargs: Any) -> Any:
        """A progress bar on rank 0; one that shows nothing elsewhere."""
        from .common import Progress
        return Progress(total, **kwargs) if self.is_main else _Silent()

    def close(self) -> None:
        if self.world > 1:
            from .. import distributed as dist
            dist.destroy_process_group()


class _Silent:
    """The progress bar of the ranks other than 0."""

    def update(self, **postfix: Any) -> None:
        pass

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass
