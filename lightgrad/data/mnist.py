"""MNIST and Fashion-MNIST from their IDX files, and ``load_idx`` to read any IDX file.

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, and the
``t10k-*`` pair for the test split), gzipped or not, are looked up in ``root`` and in
``root/<Name>/raw`` (torchvision's layout). ``download=True`` fetches missing files from
the canonical mirrors.

>>> ds = MNIST("data/mnist", train=False)  # doctest: +SKIP
>>> ds.data.shape, ds.data.dtype, ds.targets[:3]  # doctest: +SKIP
((10000, 1, 28, 28), lightgrad.float32, tensor([7, 2, 1]))
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from .dataset import LabeledImages

_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def load_idx(path: "str | os.PathLike[str]") -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), in native byte order.

    IDX: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dims, each dim as a big-endian uint32,
    then the values, big-endian, row-major.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
    >>> _ = open(path, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 2, 5, 6]))
    >>> load_idx(path)
    array([5, 6], dtype=uint8)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_idx: no such file: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(f"load_idx: {path} is a damaged gzip file ({err}); it may be "
                             "truncated: download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"load_idx: {path} is not an IDX file: its magic number is "
                         f"0x{raw[:4].hex()}, expected 0x0000 then a type code (08, 09, 0b, "
                         "0c, 0d or 0e) and the number of dims")
    ndim, dtype = raw[3], _IDX_TYPES[raw[2]]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"load_idx: {path} is truncated: its header declares {ndim} dims "
                         f"but the file has only {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:start])
    want, have = math.prod(shape) * dtype.itemsize, len(raw) - start
    if have != want:
        problem = "is truncated" if have < want else "has trailing bytes"
        raise ValueError(f"load_idx: {path} {problem}: its header declares shape {shape} of "
                         f"{dtype.name} ({want} bytes of data) but {have} bytes follow")
    array = np.frombuffer(raw, dtype=dtype, offset=start).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


class MNIST(LabeledImages):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images.

    ``data`` holds the images as float32 in [0, 1] with shape (N, 1, 28, 28), ``targets``
    the labels as int64; ``ds[i]`` is ``(transform(image), target_transform(label))``.
    """

    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "http://yann.lecun.com/exdb/mnist/")
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root: "str | os.PathLike[str]", train: bool = True,
                 download: bool = False, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        from ..creation import from_numpy
        self.root, self.train = Path(root), train
        split = "train" if train else "t10k"
        names = (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
        missing = [n for n in names if self._find(n) is None]
        if missing and download:
            self._download(missing)
        elif missing:
            raise FileNotFoundError(
                f"{self._name}: {missing[0]}[.gz] not found in {self.root} (nor in "
                f"{self._raw_dir()}); pass download=True, or put these files (gzipped or "
                f"not) in {self.root}: {', '.join(n + '.gz' for n in names)}")
        image_path, label_path = self._find(names[0]), self._find(names[1])
        images, labels = load_idx(image_path), load_idx(label_path)
        self._check(images, labels, image_path, label_path)
        pixels = images.astype(np.float32)
        np.divide(pixels, 255, out=pixels)
        super().__init__(from_numpy(pixels.reshape(-1, 1, 28, 28)),
                         from_numpy(labels.astype(np.int64)), transform, target_transform)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def _raw_dir(self) -> Path:
        return self.root / self._name / "raw"

    def _find(self, name: str) -> Path | None:
        for folder in (self.root, self._raw_dir()):
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        return None

    def _check(self, images: np.ndarray, labels: np.ndarray, image_path: Path,
               label_path: Path) -> None:
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"{self._name}: {image_path} should hold uint8 images of shape "
                             f"(N, 28, 28), got {images.dtype} of shape {images.shape}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(f"{self._name}: {label_path} should hold uint8 labels of shape "
                             f"(N,), got {labels.dtype} of shape {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{self._name}: {image_path} has {len(images)} images but "
                             f"{label_path} has {len(labels)} labels")
        if labels.size and labels.max() >= len(self.classes):
            raise ValueError(f"{self._name}: {label_path} has label {labels.max()}, expected "
                             f"labels in 0..{len(self.classes) - 1}")

    def _download(self, names: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in names:
            errors = []
            for mirror in self.mirrors:
                url = f"{mirror}{name}.gz"
                try:
                    with urllib.request.urlopen(url, timeout=30) as response:
                        payload = response.read()
                except (urllib.error.URLError, OSError) as err:
                    errors.append(f"{url}: {err}")
                    continue
                tmp = self.root / f".{name}.gz.part"
                tmp.write_bytes(payload)
                os.replace(tmp, self.root / f"{name}.gz")
                break
            else:
                raise RuntimeError(
                    f"{self._name}: could not download {name}.gz ({'; '.join(errors)}). "
                    f"Without network access, put these files in {self.root}: "
                    f"{', '.join(n + '.gz' for n in names)}")


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing."""

    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
