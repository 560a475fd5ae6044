"""DistributedDataParallel on 2 and 3 processes: N ranks with batch b each train exactly
like one process with batch N*b; no_sync accumulation; unused parameters; shape checks."""
from __future__ import annotations

import pytest

SCRIPT = """
import numpy as np
import lightgrad as lg
import lightgrad.distributed as dist
from lightgrad import nn
from lightgrad.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()
b, K = 4, 3

def make(dtype=lg.float64):
    lg.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh(),
                         nn.Linear(8, 3)).to(dtype)

def batches(k, dtype=np.float64):
    rng = np.random.default_rng(k)
    return rng.standard_normal((n * b, 5)).astype(dtype), \\
        rng.standard_normal((n * b, 3)).astype(dtype)

def loss_of(model, x, y):
    return ((model(lg.tensor(x)) - lg.tensor(y)) ** 2).mean()

def max_diff(m1, m2):
    return max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
               for p, q in zip(m1.parameters(), m2.parameters()))

# 1. N ranks x batch b == 1 process x batch N*b, float64, several buckets and one bucket
for cap in (0.0002, 25):
    ref = make(); opt_ref = lg.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    local = make()
    if r > 0:  # different start on the other ranks: the wrap must broadcast rank 0's
        with lg.no_grad():
            for p in local.parameters():
                p.add_(float(r))
    ddp = DDP(local, bucket_cap_mb=cap)
    assert (len(ddp._buckets) > 2) == (cap < 1), len(ddp._buckets)
    opt = lg.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    for k in range(K):
        x, y = batches(k)
        opt.zero_grad(); loss_of(ddp, x[r * b:(r + 1) * b], y[r * b:(r + 1) * b]).backward()
        opt.step()
        opt_ref.zero_grad(); loss_of(ref, x, y).backward(); opt_ref.step()
    assert max_diff(local, ref) < 1e-12, (cap, max_diff(local, ref))

# 2. buckets are launched during backward, before the last gradient is ready
ddp = DDP(make(), bucket_cap_mb=0.0002)
first = next(iter(ddp.module.parameters()))  # its gradient comes last
seen = []
first.register_post_accumulate_grad_hook(lambda p: seen.append(ddp._next))
x, y = batches(0)
loss_of(ddp, x[:b], y[:b]).backward()
assert seen and seen[0] >= len(ddp._buckets) - 1, (seen, len(ddp._buckets))

# 3. float32: equal within reduction-order tolerance
ref, local = make(lg.float32), make(lg.float32)
ddp = DDP(local)
x, y = batches(1, np.float32)
loss_of(ddp, x[r * b:(r + 1) * b], y[r * b:(r + 1) * b]).backward()
loss_of(ref, x, y).backward()
for p, q in zip(local.parameters(), ref.parameters()):
    np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)

# 4. no_sync: two accumulated micro-batches then a synced one == one batch of 3*N*b / 3
ref, local = make(), make()
ddp = DDP(local, bucket_cap_mb=0.0002)
xs, ys = zip(*[batches(10 + j) for j in range(3)])
for j in range(3):
    x, y = xs[j][r * b:(r + 1) * b], ys[j][r * b:(r + 1) * b]
    if j < 2:
        with ddp.no_sync():
            loss_of(ddp, x, y).backward()
        if j == 0:  # no communication yet: local gradient only
            local_only = make(); loss_of(local_only, x, y).backward()
            assert max(float(np.abs(p.grad.numpy() - q.grad.numpy()).max())
                       for p, q in zip(local.parameters(), local_only.parameters())) < 1e-15
    else:
        loss_of(ddp, x, y).backward()
    loss_of(ref, xs[j], ys[j]).backward()
for p, q in zip(local.parameters(), ref.parameters()):
    assert float(np.abs(p.grad.numpy() - q.grad.numpy()).max()) < 1e-12

# 5. find_unused_parameters: a head used only on rank 0, one never used
class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        lg.manual_seed(1)
        self.body, self.a, self.never = nn.Linear(3, 3), nn.Linear(3, 1), nn.Linear(3, 1)
        self.to(lg.float64)
    def forward(self, x, use_a):
        h = self.body(x)
        return (self.a(h).sum() if use_a else h.sum() * 0.0) + h.sum()
model = TwoHeads()
ddp = DDP(model, find_unused_parameters=True)
xs = [np.random.default_rng(20 + k).standard_normal((2, 3)) for k in range(n)]
ddp(lg.tensor(xs[r]), r == 0).backward()
refs = []
for k in range(n):
    m = TwoHeads(); m(lg.tensor(xs[k]), k == 0).backward(); refs.append(m)
want_a = refs[0].a.weight.grad.numpy() / n
np.testing.assert_allclose(model.a.weight.grad.numpy(), want_a, rtol=1e-12)
want_body = sum(m.body.weight.grad.numpy() for m in refs) / n
np.testing.assert_allclose(model.body.weight.grad.numpy(), want_body, rtol=1e-12)
assert model.never.weight.grad is None
# without find_unused_parameters, a parameter without gradient is a clear error
ddp = DDP(TwoHeads())
try:
    ddp(lg.tensor(xs[r]), True).backward()
except RuntimeError as e:
    assert "never.weight" in str(e) and "find_unused_parameters" in str(e), e
else:
    raise AssertionError("no error for a parameter without gradient")

# 6. mismatched shapes across ranks: detected at wrap time, naming rank and parameter
try:
    DDP(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2 if r < n - 1 else 3)))
except RuntimeError as e:
    assert f"'1.weight' has shape (3, 4) on rank {n - 1} but (2, 4) on rank 0" in str(e), e
else:
    raise AssertionError("no error for mismatched shapes")

# 7. gradient_as_bucket_view (and static_graph accepted): .grad are views of the buckets,
# training equals 1 process x N*b, also zeroing in place and accumulating (no_sync)
ref = make(); opt_ref = lg.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
local = make()
ddp = DDP(local, bucket_cap_mb=0.0002, gradient_as_bucket_view=True, static_graph=True)
opt = lg.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
for k in range(K):
    x, y = batches(30 + k)
    opt.zero_grad(set_to_none=(k == 0)); opt_ref.zero_grad(set_to_none=(k == 0))
    with ddp.no_sync():
        loss_of(ddp, x[r * b:(r + 1) * b], y[r * b:(r + 1) * b]).backward()
    loss_of(ddp, x[r * b:(r + 1) * b], y[r * b:(r + 1) * b]).backward()
    loss_of(ref, x, y).backward(); loss_of(ref, x, y).backward()
    opt.step(); opt_ref.step()
    for bucket in ddp._buckets:
        for p, slot in zip(bucket.params, bucket.slots):
            assert p.grad is slot and np.shares_memory(p.grad._data, bucket.flat._data)
assert max_diff(local, ref) < 1e-12, max_diff(local, ref)
print(f"OK rank {r}")
"""


@pytest.mark.parametrize("nproc", [2, 3])
def test_ddp_matches_single_process(tmp_path, nproc, mpirun, mpi_ok):
    mpi_ok(mpirun(tmp_path, SCRIPT, nproc), nproc)
