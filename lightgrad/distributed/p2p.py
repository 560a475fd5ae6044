"""Point-to-point messages (PyTorch's signatures): ``send``/``recv`` block, ``isend``/
``irecv`` return a ``Work``. Ranks are global ranks, also with ``group=``; a message of one
``tag`` from one sender arrives in the order sent.

>>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
>>> if dist.get_rank() == 0:                                # doctest: +SKIP
...     dist.send(lg.tensor([1.0, 2.0]), dst=1)
... else:
...     t = lg.zeros(2); dist.recv(t, src=0); t
tensor([1., 2.])
"""
from __future__ import annotations

from typing import Any

from .collectives import _check_tensor, _root, _run, _stage, _start_at, _write
from .group import ProcessGroup, resolve
from .work import Work


def _peer(g: ProcessGroup, what: str, rank: int, name: str) -> int:
    peer = _root(g, what, rank, name)
    if peer == g.rank:
        raise ValueError(f"{what}: {name}={rank} is this rank itself")
    return peer


def isend(tensor: Any, dst: int, group: Any = None, tag: int = 0) -> Work | None:
    """Start sending ``tensor`` to rank ``dst``; ``wait()`` the returned ``Work`` before
    changing ``tensor``."""
    started = _start_at(group, "isend", tensor, dst, "dst", _peer)
    if started is None:
        return None
    g, peer = started
    _, buf = _stage(g, tensor)
    return _run(g, "isend", g.backend.send(buf, peer, tag), lambda: None, True)


def send(tensor: Any, dst: int, group: Any = None, tag: int = 0) -> None:
    """Send ``tensor`` to rank ``dst`` (returns once it has been handed over)."""
    work = isend(tensor, dst, group=group, tag=tag)
    if work is not None:
        work.wait()


def irecv(tensor: Any, src: int | None = None, group: Any = None, tag: int = 0
          ) -> Work | None:
    """Start receiving into ``tensor`` from rank ``src`` (any rank when None); the data is
    in ``tensor`` after ``wait()``."""
    g = resolve(group, "irecv")
    if g is None:
        return None
    return _irecv(g, "irecv", tensor, None if src is None else _peer(g, "irecv", src, "src"),
                  tag)


def _irecv(g: ProcessGroup, what: str, tensor: Any, peer: int | None, tag: int) -> Work:
    _check_tensor(what, tensor, g)
    g.ensure_usable(what)
    view, buf = _stage(g, tensor)
    return _run(g, what, g.backend.recv(buf, peer, tag), lambda: _write(tensor, view, buf),
                True)


def recv(tensor: Any, src: int | None = None, group: Any = None, tag: int = 0) -> int:
    """Receive into ``tensor`` from rank ``src`` (any rank when None); returns the global
    rank of the sender (-1 when this rank is not in ``group``)."""
    g = resolve(group, "recv")
    if g is None:
        return -1
    if src is None:  # wait (with the group's timeout) for a sender, then receive from it
        probe = getattr(g.backend, "probe", None)
        if probe is None:
            raise NotImplementedError(f"recv: the {g.backend.name} backend needs src")
        found: list[int] = []

        def test() -> bool:
            if not found:
                sender = probe(tag)
                if sender is not None:
                    found.append(sender)
            return bool(found)
        Work(g, "recv", test).wait()
        peer = found[0]
    else:
        peer = _peer(g, "recv", src, "src")
    _irecv(g, "recv", tensor, peer, tag).wait()
    return g.ranks[peer]
