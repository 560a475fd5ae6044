"""``DistributedError``: a collective could not finish because of another rank.

>>> from lightgrad.distributed import DistributedError
>>> str(DistributedError("rank 1 died", rank=1))
'rank 1 died'
"""
from __future__ import annotations


class DistributedError(RuntimeError):
    """Raised on every surviving rank when a peer died, raised an exception, or a
    collective did not finish within the process group's timeout. ``rank`` is the peer to
    blame when one is known (else None), ``reason`` what happened to it ("died (pid 12 on
    host)", "raised ValueError: ...").

    >>> DistributedError("timed out").rank is None
    True
    """

    def __init__(self, message: str, rank: int | None = None, reason: str = ""):
        super().__init__(message)
        self.rank, self.reason = rank, reason
