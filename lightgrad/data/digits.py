"""scikit-learn's bundled 8x8 handwritten digits (1,797 images): a small real data set
that needs no download.

>>> ds = Digits(train=False)  # doctest: +SKIP
>>> len(ds), ds.data.shape  # doctest: +SKIP
(359, (359, 1, 8, 8))
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .dataset import LabeledImages


class Digits(LabeledImages):
    """The UCI optical digits from ``sklearn.datasets.load_digits``: images as float32 in
    [0, 1] of shape (N, 1, 8, 8) (pixel counts 0..16 divided by 16), labels 0..9 as int64.

    The split is fixed: the last ``test_fraction`` of the samples (rounded down) is the
    test set, the rest the training set.
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, train: bool = True, test_fraction: float = 0.2,
                 transform: Callable | None = None, target_transform: Callable | None = None):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ImportError("Digits needs scikit-learn, which is not installed: "
                              "pip install scikit-learn") from None
        from ..creation import from_numpy
        if not 0 < test_fraction < 1:
            raise ValueError(f"Digits: test_fraction must be in (0, 1), got {test_fraction}")
        bunch = load_digits()
        images = (bunch.images / 16.0).astype(np.float32)[:, None]
        labels = bunch.target.astype(np.int64)
        cut = len(labels) - int(len(labels) * test_fraction)
        part = slice(0, cut) if train else slice(cut, None)
        self.train = train
        super().__init__(from_numpy(np.ascontiguousarray(images[part])),
                         from_numpy(np.ascontiguousarray(labels[part])),
                         transform, target_transform)
