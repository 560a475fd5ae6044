"""A traced call (``execute=True``) drops the real buffers of intermediates nothing holds
any more, as eager code frees them, and keeps every buffer still reachable."""
from __future__ import annotations

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.graph import Graph, recording
from lightgrad.graph.recording import tracing


@pytest.mark.skipif(not recording.PRUNE, reason="the sweep is off on this Python")
def test_dead_intermediates_are_dropped_live_ones_kept(monkeypatch):
    monkeypatch.setattr(recording, "PRUNE_EVERY", 1)  # sweep before every recorded call
    w = lg.tensor(np.arange(4, dtype=np.float32))
    g = Graph()
    with tracing(g, execute=True) as recorders:
        rec = recorders[w.device]
        kept = w * 2
        x = kept
        for _ in range(20):  # a chain of temporaries, each dead once the next exists
            x = x + 1
        total = (x * kept).sum()
        computed = [n for n in g.nodes if n.op not in ("param", "input", "constant")]
        held = {kept._data, x._data, total._data}
        assert held <= set(rec.values)  # still reachable: kept
        dropped = [n for n in computed if n not in rec.values]
        assert len(dropped) >= 19  # the chain's middle is gone
        assert not held & set(dropped)
        np.testing.assert_allclose(rec.values[total._data], ((np.arange(4) * 2 + 20)
                                                             * np.arange(4) * 2).sum())


def test_jitted_step_traced_with_sweeps_matches_eager(monkeypatch):
    monkeypatch.setattr(recording, "PRUNE_EVERY", 1)

    def run(jit: bool) -> list[float]:
        lg.manual_seed(0)
        model = lg.nn.Sequential(lg.nn.Linear(5, 8), lg.nn.GELU(), lg.nn.LayerNorm(8),
                                 lg.nn.Linear(8, 3))
        opt = lg.optim.AdamW(model.parameters(), lr=1e-2)
        x = lg.tensor(np.random.default_rng(0).standard_normal((6, 5), dtype=np.float32))
        y = lg.tensor(np.array([0, 1, 2, 0, 1, 2]))

        def step(x, y):
            loss = lg.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        fn = lg.jit(step) if jit else step
        return [fn(x, y).item() for _ in range(5)]
    np.testing.assert_allclose(run(True), run(False), rtol=1e-6)
