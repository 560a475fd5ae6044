"""PyTorch's other collectives against NumPy on every rank, for 2 and 3 processes:
new_group (group=), reduce, gather, scatter, send/recv/isend/irecv, all_to_all_single,
broadcast_object_list, all_gather_object; and the progress thread driving async ones."""
from __future__ import annotations

import pytest

SCRIPT = """
import numpy as np
import lightgrad as lg
import lightgrad.distributed as dist
from lightgrad.distributed import ReduceOp

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()

def data(rank, shape, dtype=np.float64):
    rng = np.random.default_rng(300 + rank)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(0.5, 1.5, shape).astype(dtype)
    return rng.integers(-5, 6, shape).astype(dtype)

every = lambda shape, dtype=np.float64: [data(k, shape, dtype) for k in range(n)]

# reduce to the last rank: SUM, PRODUCT, MIN, AVG; other ranks keep their tensor
dst = n - 1
for name, fn in (("sum", np.sum), ("product", np.prod), ("min", np.min), ("max", np.max),
                 ("avg", np.mean)):
    t = lg.tensor(data(r, (2, 3)))
    dist.reduce(t, dst=dst, op=ReduceOp(name))
    want = fn(every((2, 3)), 0) if r == dst else data(r, (2, 3))
    np.testing.assert_allclose(t.numpy(), want, rtol=1e-12, err_msg=name)
t = lg.tensor(data(r, (4,), np.int64))
dist.reduce(t, dst=0, op=ReduceOp.PRODUCT)
if r == 0:
    np.testing.assert_array_equal(t.numpy(), np.prod(every((4,), np.int64), 0))

# gather to rank 0 (async), scatter from the last rank
outs = [lg.zeros(3, dtype=lg.int64) for _ in range(n)] if r == 0 else None
work = dist.gather(lg.tensor(data(r, (3,), np.int64)), outs, dst=0, async_op=True)
work.wait()
if r == 0:
    for k in range(n):
        np.testing.assert_array_equal(outs[k].numpy(), data(k, (3,), np.int64))
parts = [lg.tensor(a) for a in every((2, 2), np.float32)] if r == n - 1 else None
t = lg.zeros(2, 2)
dist.scatter(t, parts, src=n - 1)
np.testing.assert_array_equal(t.numpy(), data(r, (2, 2), np.float32))

# point to point: a ring with isend/irecv, then recv from any source
right, left = (r + 1) % n, (r - 1) % n
got = lg.zeros(5, dtype=lg.float64)
works = [dist.isend(lg.tensor(data(r, (5,))), dst=right), dist.irecv(got, src=left)]
for w in works:
    w.wait()
np.testing.assert_array_equal(got.numpy(), data(left, (5,)))
if r == 0:
    senders = set()
    for _ in range(n - 1):
        t = lg.zeros(2, dtype=lg.int64)
        sender = dist.recv(t, tag=5)
        np.testing.assert_array_equal(t.numpy(), [sender, 10 * sender])
        senders.add(sender)
    assert senders == set(range(1, n)), senders
else:
    dist.send(lg.tensor([r, 10 * r]), dst=0, tag=5)

# all_to_all_single: equal blocks, then uneven split sizes (rank k sends k + j rows to j)
blocks = every((n * 2, 3))
out = lg.zeros(n * 2, 3, dtype=lg.float64)
dist.all_to_all_single(out, lg.tensor(blocks[r]))
np.testing.assert_array_equal(out.numpy(),
                              np.concatenate([blocks[k][2 * r:2 * r + 2] for k in range(n)]))
sizes = lambda k: [k + j for j in range(n)]          # rows rank k sends to each rank
rows = [data(50 + k, (sum(sizes(k)), 2)) for k in range(n)]
recv_sizes = [sizes(k)[r] for k in range(n)]
out = lg.zeros(sum(recv_sizes), 2, dtype=lg.float64)
dist.all_to_all_single(out, lg.tensor(rows[r]), recv_sizes, sizes(r))
want = [rows[k][sum(sizes(k)[:r]):sum(sizes(k)[:r + 1])] for k in range(n)]
np.testing.assert_array_equal(out.numpy(), np.concatenate(want))

# objects (pickle between our own ranks)
objs = [{"lr": 0.1, "rank": r}, "x" * (r + 1), None] if r == 1 else [None, None, None]
dist.broadcast_object_list(objs, src=1)
assert objs == [{"lr": 0.1, "rank": 1}, "xx", None], objs
gathered = [None] * n
dist.all_gather_object(gathered, ("rank", r, list(range(r))))
assert gathered == [("rank", k, list(range(k))) for k in range(n)], gathered

# new_group: ranks {0, n-1}; non-members get NON_GROUP_MEMBER and skip collectives
ends = dist.new_group([n - 1, 0])
member = r in (0, n - 1)
assert (ends is dist.NON_GROUP_MEMBER) == (not member)
assert dist.get_rank(ends) == ({0: 0, n - 1: 1}[r] if member else -1)
assert dist.get_world_size(ends) == (2 if member else -1)
t = lg.tensor(data(r, (3,)))
assert dist.all_reduce(t, group=ends) is None
want = data(0, (3,)) + data(n - 1, (3,)) if member else data(r, (3,))
np.testing.assert_allclose(t.numpy(), want, rtol=1e-12)
t = lg.tensor(data(r, (2,)))
dist.broadcast(t, src=n - 1, group=ends)     # src is a global rank
np.testing.assert_array_equal(t.numpy(), data(n - 1, (2,)) if member else data(r, (2,)))
if member:
    try:
        dist.broadcast(t, src=1 if n == 3 else 5, group=ends)
    except ValueError as e:
        assert "src=" in str(e) and "is not a rank of" in str(e), e
    else:
        raise AssertionError("no error for a src outside the group")
    outs = [lg.zeros(1) for _ in range(2)]
    dist.all_gather(outs, lg.tensor([float(r)]), group=ends)
    assert [o.item() for o in outs] == [0.0, float(n - 1)]
    dist.destroy_process_group(ends)

# async collectives are progressed by the progress thread (MPI_THREAD_MULTIPLE)
from lightgrad.distributed.group import get_group
progress = get_group("test").backend.progress
assert progress is not None and progress.polls > 0
big = lg.ones(1 << 18)
work = dist.all_reduce(big, async_op=True)
assert progress.wait_idle(timeout=30.0)     # completed without the main thread testing it
assert work.is_completed()
work.wait()
assert float(big[0].item()) == n

# bad input: clear errors naming the collective
for call, kind, name in (
        (lambda: dist.gather(lg.zeros(1), [lg.zeros(1)] * n, dst=(r + 1) % n), ValueError,
         "gather"),
        (lambda: dist.scatter(lg.zeros(1), None, src=r), ValueError, "scatter"),
        (lambda: dist.reduce(lg.zeros(1), dst=n), ValueError, "reduce"),
        (lambda: dist.send(lg.zeros(1), dst=r), ValueError, "isend"),
        (lambda: dist.all_to_all_single(lg.zeros(n + 1), lg.zeros(n + 1)), ValueError,
         "all_to_all_single"),
        (lambda: dist.all_gather_object([None] * (n + 1), 1), ValueError,
         "all_gather_object"),
        (lambda: dist.new_group([0, n]), ValueError, "new_group")):
    try:
        call()
    except kind as e:
        assert str(e).startswith(name + ":"), e
    else:
        raise AssertionError(f"no error from {name}")
dist.destroy_process_group()
print(f"OK rank {r}")
"""


@pytest.mark.parametrize("nproc", [2, 3])
def test_more_collectives_match_numpy(tmp_path, nproc, mpirun, mpi_ok):
    mpi_ok(mpirun(tmp_path, SCRIPT, nproc), nproc)
