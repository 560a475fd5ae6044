"""``CUDABackend``: every mixin of the CUDA backend, put together."""
from __future__ import annotations

from .backend import BackendCore
from .ops_conv import ConvOps
from .ops_creation import CreationOps
from .ops_elementwise import ElementwiseOps
from .ops_indexing import IndexingOps
from .ops_linalg import LinalgOps
from .ops_nn import NNOps
from .ops_reduce import ReduceOps
from .ops_scan import ScanOps
from .ops_views import ViewOps


class CUDABackend(ElementwiseOps, ReduceOps, ViewOps, IndexingOps, CreationOps, LinalgOps,
                  NNOps, ConvOps, ScanOps, BackendCore):
    """The op vocabulary on our CUDA kernels (see ``backends/base.py`` for each meaning)."""

    def __init__(self, index: int = 0):
        BackendCore.__init__(self, index)
        ElementwiseOps.__init__(self)
