"""Datasets, DataLoader, default_collate, random_split, IDX/MNIST parsing and sklearn digits."""
from __future__ import annotations

import gzip
import io
import sys
import urllib.error
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import data
from lightgrad.data import (
    MNIST, DataLoader, Dataset, FashionMNIST, Generator, Subset, TensorDataset,
    default_collate, load_idx, random_split,
)

MNIST_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"


def _dataset(n: int = 10) -> TensorDataset:
    return TensorDataset(lg.arange(n).float().reshape(n, 1) * 10, lg.arange(n))


class Squares(Dataset):
    """A map-style dataset without get_batch: samples are (tensor, int, dict)."""

    def __len__(self) -> int:
        return 7

    def __getitem__(self, i: int):
        return lg.tensor([float(i), float(i * i)]), i, {"name": f"s{i}", "w": 0.5 * i}


# ----------------------------------------------------------------------------- datasets
def test_tensor_dataset():
    ds = _dataset(5)
    assert len(ds) == 5
    x, y = ds[3]
    assert x.tolist() == [30.0] and y.item() == 3
    with pytest.raises(ValueError, match=r"first dims differ in shapes \(3,\), \(4, 2\)"):
        TensorDataset(lg.zeros(3), lg.zeros(4, 2))
    with pytest.raises(TypeError, match="expected Tensors, got ndarray"):
        TensorDataset(np.zeros(3))


def test_base_dataset_requires_methods():
    with pytest.raises(NotImplementedError, match="must implement __len__"):
        len(Dataset())


# ----------------------------------------------------------------------------- DataLoader
def test_sequential_batches_cover_everything_in_order():
    loader = DataLoader(_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 1) and batches[0][0].dtype is lg.float32


def test_drop_last():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [len(y) for _, y in loader] == [4, 4]
    assert len(DataLoader(_dataset(8), batch_size=4, drop_last=True)) == 2


def _epoch(loader) -> list[list[int]]:
    return [y.tolist() for _, y in loader]


def test_shuffle_is_seeded_and_covers_all_samples():
    make = lambda seed: DataLoader(_dataset(23), batch_size=5, shuffle=True,  # noqa: E731
                                   generator=Generator().manual_seed(seed))
    a, b, c = make(0), make(0), make(1)
    first, second = _epoch(a), _epoch(a)
    assert first == _epoch(b) and second == _epoch(b)  # same seed: same epochs, in order
    assert first != second  # reshuffled every epoch
    assert first != _epoch(c)
    for epoch in (first, second):
        flat = [i for batch in epoch for i in batch]
        assert sorted(flat) == list(range(23)) and flat != list(range(23))
        assert [len(b) for b in epoch] == [5, 5, 5, 5, 3]


def test_shuffle_with_numpy_generator_and_global_seed():
    a = DataLoader(_dataset(12), batch_size=4, shuffle=True,
                   generator=np.random.default_rng(7))
    b = DataLoader(_dataset(12), batch_size=4, shuffle=True,
                   generator=np.random.default_rng(7))
    assert _epoch(a) == _epoch(b)
    unseeded = DataLoader(_dataset(12), batch_size=4, shuffle=True)
    lg.manual_seed(123)
    run1 = [_epoch(unseeded), _epoch(unseeded)]
    lg.manual_seed(123)
    assert [_epoch(unseeded), _epoch(unseeded)] == run1


def test_x_and_y_stay_paired_when_shuffled():
    for x, y in DataLoader(_dataset(17), batch_size=6, shuffle=True,
                           generator=Generator(3)):
        assert (x.reshape(-1) == y.float() * 10).all().item()


def test_fast_path_equals_default_collate():
    ds = _dataset(9)
    fast = list(DataLoader(ds, batch_size=4, shuffle=True, generator=Generator(5)))
    slow = list(DataLoader(ds, batch_size=4, shuffle=True, generator=Generator(5),
                           collate_fn=default_collate))
    for f, s in zip(fast, slow):
        assert isinstance(f, list) and isinstance(s, list)
        for a, b in zip(f, s):
            assert a.shape == b.shape and a.dtype is b.dtype
            assert (a == b).all().item()


def test_custom_collate_and_dataset_without_get_batch():
    loader = DataLoader(Squares(), batch_size=3, collate_fn=lambda samples: len(samples))
    assert list(loader) == [3, 3, 1]
    x, i, meta = next(iter(DataLoader(Squares(), batch_size=3)))
    assert x.tolist() == [[0.0, 0.0], [1.0, 1.0], [2.0, 4.0]]
    assert i.tolist() == [0, 1, 2] and i.dtype is lg.int64
    assert meta["name"] == ["s0", "s1", "s2"] and meta["w"].dtype is lg.float64


def test_dataloader_errors():
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="Generator or numpy.random.Generator, got int"):
        DataLoader(_dataset(), shuffle=True, generator=3)


# ----------------------------------------------------------------------------- default_collate
def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(4)]
    Point = namedtuple("Point", "x y")
    cases = [
        [1, 2, 3],
        [0.5, 1.5],
        [True, False],
        [np.int32(3), np.int32(4)],
        [np.float32(1.5), np.float32(2.5)],
        arrays,
        [{"a": 1, "b": (arr, 2.0)} for arr in arrays],
        [(arr, i) for i, arr in enumerate(arrays)],
        [[1, 2.0], [3, 4.0]],
        [Point(1, 2.5), Point(3, 4.5)],
    ]

    def compare(ours, theirs):
        if isinstance(theirs, torch.Tensor):
            assert isinstance(ours, lg.Tensor)
            assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        elif isinstance(theirs, dict):
            assert isinstance(ours, dict) and list(ours) == list(theirs)
            for k in theirs:
                compare(ours[k], theirs[k])
        else:
            assert type(ours) is type(theirs) and len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                compare(a, b)

    for batch in cases:
        compare(default_collate(batch), torch_collate(batch))
    tensors = [lg.tensor(a) for a in arrays]
    compare(default_collate(tensors), torch_collate([torch.tensor(a) for a in arrays]))
    assert default_collate(["a", "b"]) == ["a", "b"]


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="same number of fields, got \\[1, 2\\]"):
        default_collate([(1, 2), (3,)])
    with pytest.raises(RuntimeError, match=r"can't stack NumPy arrays of shapes \(2,\), \(3,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(RuntimeError, match="stack"):
        default_collate([lg.zeros(2), lg.zeros(3)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(ValueError, match="empty batch"):
        default_collate([])


# ----------------------------------------------------------------------------- random_split
@pytest.mark.parametrize("n,lengths", [
    (10, [0.8, 0.2]), (11, [0.5, 0.5]), (7, [0.3, 0.3, 0.4]), (100, [0.33, 0.33, 0.34]),
    (5, [2, 3]), (13, [1 / 3, 1 / 3, 1 / 3]),
])
def test_random_split_lengths_match_torch_and_partition(n, lengths):
    torch = pytest.importorskip("torch")
    theirs = torch.utils.data.random_split(range(n), lengths,
                                           generator=torch.Generator().manual_seed(0))
    parts = random_split(_dataset(n), lengths, generator=Generator(0))
    assert [len(p) for p in parts] == [len(t) for t in theirs]
    flat = [i for p in parts for i in p.indices]
    assert sorted(flat) == list(range(n))
    again = random_split(_dataset(n), lengths, generator=Generator(0))
    assert [p.indices for p in parts] == [p.indices for p in again]
    x, y = parts[0][0]
    assert x.item() == 10 * y.item() == 10 * parts[0].indices[0]


def test_subset_batches_through_the_dataset():
    sub = Subset(_dataset(10), [9, 2, 5])
    x, y = next(iter(DataLoader(sub, batch_size=3)))
    assert y.tolist() == [9, 2, 5] and x.reshape(-1).tolist() == [90.0, 20.0, 50.0]
    plain = Subset(Squares(), [6, 1])
    _, i, _ = next(iter(DataLoader(plain, batch_size=2)))
    assert i.tolist() == [6, 1]


def test_random_split_errors():
    with pytest.raises(ValueError, match=r"lengths \[3, 3\] sum to 6 but the dataset has 10"):
        random_split(_dataset(10), [3, 3])
    with pytest.raises(ValueError, match=r"fraction at index 0 is 1.5, not in \[0, 1\]"):
        random_split(_dataset(10), [1.5, -0.5])


# ----------------------------------------------------------------------------- IDX files
def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


@pytest.mark.parametrize("array,code", [
    (np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4), 0x08),
    (np.array([-3, 5], dtype=np.int8), 0x09),
    (np.arange(-6, 6, dtype=">i2").reshape(3, 4), 0x0B),
    ((np.arange(6).reshape(2, 3) * 100000).astype(">i4"), 0x0C),
    (np.linspace(-1, 1, 5).astype(">f4"), 0x0D),
    (np.linspace(-1, 1, 5).astype(">f8"), 0x0E),
])
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx(tmp_path, array, code, gz):
    raw = _idx_bytes(array, code)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    got = load_idx(path)
    assert got.shape == array.shape and got.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, array)
    got[...] = 0  # writable, native-endian copy


def test_load_idx_errors(tmp_path):
    good = _idx_bytes(np.zeros((2, 3), dtype=np.uint8), 0x08)
    cases = {
        "magic.idx": (b"\x01\x02" + good[2:], r"not an IDX file: its magic number is 0x0102"),
        "code.idx": (good[:2] + b"\x07" + good[3:], "not an IDX file"),
        "short.idx": (good[:-1], r"is truncated: .* shape \(2, 3\) of uint8 \(6 bytes of "
                                 "data\\) but 5 bytes follow"),
        "header.idx": (good[:6], "is truncated: its header declares 2 dims"),
        "extra.idx": (good + b"\x00", "has trailing bytes"),
        "cut.gz": (gzip.compress(good)[:-6], "damaged gzip file"),
    }
    for name, (payload, message) in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(ValueError, match=message) as err:
            load_idx(tmp_path / name)
        assert name in str(err.value)
    with pytest.raises(FileNotFoundError, match="no such file: .*nope.idx"):
        load_idx(tmp_path / "nope.idx")


# ----------------------------------------------------------------------------- MNIST
def _write_mnist(folder: Path, split: str, n: int, gz: bool, seed: int = 0,
                 labels: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8) if labels is None else labels
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr, code in ((f"{split}-images-idx3-ubyte", images, 8),
                            (f"{split}-labels-idx1-ubyte", labels, 8)):
        raw = _idx_bytes(arr, code)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_mnist_reads_small_files(tmp_path, gz, train):
    images, labels = _write_mnist(tmp_path, "train" if train else "t10k", 6, gz)
    ds = MNIST(tmp_path, train=train)
    assert len(ds) == 6
    assert ds.data.shape == (6, 1, 28, 28) and ds.data.dtype is lg.float32
    assert ds.targets.dtype is lg.int64 and ds.targets.tolist() == labels.tolist()
    np.testing.assert_array_equal(ds.data.numpy()[:, 0], images.astype(np.float32) / 255)
    image, label = ds[4]
    assert image.shape == (1, 28, 28) and label == int(labels[4])
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 1, 28, 28) and y.tolist() == labels[:4].tolist()


def test_mnist_transforms_and_torchvision_layout(tmp_path):
    _, labels = _write_mnist(tmp_path / "FashionMNIST" / "raw", "t10k", 3, gz=True)
    ds = FashionMNIST(tmp_path, train=False, transform=lambda im: im.reshape(-1),
                      target_transform=lambda y: ds.classes[y])
    image, name = ds[0]
    assert image.shape == (784,) and name == FashionMNIST.classes[labels[0]]
    x, names = next(iter(DataLoader(ds, batch_size=3)))
    assert x.shape == (3, 784) and names == [FashionMNIST.classes[k] for k in labels]


def test_mnist_missing_files_and_offline_download(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"MNIST: train-images-idx3-ubyte\[.gz\] not "
                                                r"found in .*pass download=True") as err:
        MNIST(tmp_path)
    assert "train-labels-idx1-ubyte.gz" in str(err.value)

    def offline(url, timeout=None):
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(RuntimeError, match="could not download t10k-images-idx3-ubyte.gz") as err:
        MNIST(tmp_path / "new", train=False, download=True)
    message = str(err.value)
    assert "network is unreachable" in message and str(tmp_path / "new") in message
    assert "t10k-labels-idx1-ubyte.gz" in message


def test_mnist_download_writes_the_files(tmp_path, monkeypatch):
    source = tmp_path / "mirror"
    images, labels = _write_mnist(source, "t10k", 4, gz=True)
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return io.BytesIO((source / url.rsplit("/", 1)[1]).read_bytes())
    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    ds = MNIST(tmp_path / "root", train=False, download=True)
    assert ds.targets.tolist() == labels.tolist()
    assert requested == [MNIST.mirrors[0] + "t10k-images-idx3-ubyte.gz",
                         MNIST.mirrors[0] + "t10k-labels-idx1-ubyte.gz"]
    assert (tmp_path / "root" / "t10k-images-idx3-ubyte.gz").is_file()


def test_mnist_validation_names_the_file(tmp_path):
    _write_mnist(tmp_path / "a", "t10k", 3, gz=False, labels=np.array([1, 2, 12], np.uint8))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte has label 12"):
        MNIST(tmp_path / "a", train=False)
    _write_mnist(tmp_path / "b", "t10k", 3, gz=False, labels=np.array([1, 2], np.uint8))
    with pytest.raises(ValueError, match="has 3 images but .*labels-idx1-ubyte has 2 labels"):
        MNIST(tmp_path / "b", train=False)
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte").write_bytes(
        _idx_bytes(np.zeros((2, 8, 8), np.uint8), 8))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(2, np.uint8), 8))
    with pytest.raises(ValueError, match=r"images-idx3-ubyte should hold uint8 images of shape "
                                         r"\(N, 28, 28\), got uint8 of shape \(2, 8, 8\)"):
        MNIST(folder, train=False)


@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="shared MNIST files not present")
def test_real_mnist_test_set():
    ds = MNIST(MNIST_DIR, train=False)
    assert len(ds) == 10000 and ds.data.shape == (10000, 1, 28, 28)
    targets = ds.targets.numpy()
    assert targets.min() == 0 and targets.max() == 9
    assert sorted(np.unique(targets).tolist()) == list(range(10))
    # Independent read: gzip + fixed IDX offsets (16-byte image header, 8-byte label header).
    with gzip.open(MNIST_DIR / "t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(10000, 28, 28)
    with gzip.open(MNIST_DIR / "t10k-labels-idx1-ubyte.gz") as f:
        raw_labels = np.frombuffer(f.read(), np.uint8, offset=8)
    np.testing.assert_array_equal(targets, raw_labels)
    pixels = ds.data.numpy()
    for i, r, c in [(0, 14, 14), (1, 10, 10), (9999, 20, 13), (5000, 7, 21)]:
        assert pixels[i, 0, r, c] == np.float32(raw[i, r, c]) / np.float32(255)
    np.testing.assert_array_equal(np.rint(pixels[:, 0] * 255).astype(np.uint8), raw)
    assert float(pixels.sum(dtype=np.float64)) == pytest.approx(raw.sum() / 255, rel=1e-6)
    assert targets[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels
    assert 0.0 <= pixels.min() and pixels.max() == 1.0


# ----------------------------------------------------------------------------- digits
def test_digits_split():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    bunch = load_digits()
    train, test = data.Digits(train=True), data.Digits(train=False)
    assert (len(train), len(test)) == (1438, 359)
    assert train.data.shape == (1438, 1, 8, 8) and train.data.dtype is lg.float32
    np.testing.assert_array_equal(test.data.numpy()[:, 0], bunch.images[1438:] / 16)
    np.testing.assert_array_equal(train.targets.numpy(), bunch.target[:1438])
    image, label = test[0]
    assert image.shape == (1, 8, 8) and label == bunch.target[1438]
    assert 0.0 <= train.data.numpy().min() and train.data.numpy().max() == 1.0


def test_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        data.Digits()


def test_digits_softmax_regression_learns():
    """End to end: Digits + DataLoader + AdamW + a schedule fit a linear classifier."""
    pytest.importorskip("sklearn")
    from lightgrad import optim
    train, test = data.Digits(train=True), data.Digits(train=False)
    w = lg.zeros(64, 10, requires_grad=True)
    b = lg.zeros(10, requires_grad=True)
    opt = optim.AdamW([w, b], lr=0.05, weight_decay=1e-3)
    loader = DataLoader(train, batch_size=64, shuffle=True, generator=Generator(0))
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4 * len(loader))
    for _ in range(4):
        for x, y in loader:
            opt.zero_grad()
            logp = (x.reshape(len(x), 64) @ w + b).log_softmax(-1)
            loss = -logp.gather(1, y.reshape(-1, 1)).mean()
            loss.backward()
            opt.step()
            sched.step()
    with lg.no_grad():
        pred = (test.data.reshape(len(test), 64) @ w + b).argmax(-1)
    accuracy = (pred == test.targets).float().mean().item()
    assert accuracy > 0.85, accuracy
