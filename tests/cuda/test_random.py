"""Random numbers on the cuda device (a GPU, or the emulator): the Philox4x32-10 kernel
against a pure-Python Philox written from the published algorithm, reproducibility, and
the distributions of rand, randn, randint and multinomial (bounds of about 5 standard
errors: a correct generator fails one of them far less than once in a million runs)."""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import lightgrad as lg

pytestmark = pytest.mark.skipif(not lg.cuda.is_available(),
                                reason="needs the cuda device (a GPU or LIGHTGRAD_CUDA=emulate)")

MASK32 = 0xFFFFFFFF


def philox4x32_10(counter: list[int], key: list[int]) -> list[int]:
    """Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC 2011; the Random123 library): ten
    rounds of two 32x32->64-bit products, the key bumped by the Weyl constants between
    rounds."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + 0x9E3779B9) & MASK32, (k1 + 0xBB67AE85) & MASK32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & MASK32
    return [c0, c1, c2, c3]


def reference_words(seed: int, offset: int, block: int) -> list[int]:
    """The words of Philox block ``block`` at stream ``offset`` (the kernel's counter:
    (block low, block high, offset low, offset high); key: (seed low, seed high))."""
    return philox4x32_10([block & MASK32, block >> 32, offset & MASK32, offset >> 32],
                         [seed & MASK32, seed >> 32])


def backend():
    return lg.device("cuda").backend


# ----------------------------------------------------------------------------- the generator

def test_reference_matches_published_known_answers():
    # Random123's kat_vectors for philox4x32 with 10 rounds
    assert philox4x32_10([0, 0, 0, 0], [0, 0]) == [
        0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert philox4x32_10([MASK32] * 4, [MASK32] * 2) == [
        0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    assert philox4x32_10([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
                         [0xA4093822, 0x299F31D0]) == [
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


@pytest.mark.parametrize("seed, offset", [(0, 0), (0x0123456789ABCDEF, 7),
                                          (2**64 - 1, 2**32 + 5)])
def test_kernel_words_match_reference(seed, offset):
    be = backend()
    blocks = 6
    out = be.empty((blocks * 4,), np.uint32)
    be.kernel("random", "philox_raw")((2,), (32,), [blocks, seed, offset, out])
    words = be.to_numpy(out).reshape(blocks, 4)
    for g in range(blocks):
        assert words[g].tolist() == reference_words(seed, offset, g)


def test_rand_is_built_from_the_philox_words():
    lg.cuda.manual_seed(1234)  # offset 0, then 1 for the next call
    x32 = lg.rand(10, device="cuda").numpy()
    x64 = lg.rand(5, device="cuda", dtype=lg.float64).numpy()
    words = [w for g in range(3) for w in reference_words(1234, 0, g)]
    np.testing.assert_array_equal(x32, [np.float32((w >> 8) / 2**24) for w in words[:10]])
    words = [w for g in range(3) for w in reference_words(1234, 1, g)]
    want = [(((hi << 21) ^ (lo >> 11)) / 2**53) for hi, lo in zip(words[::2], words[1::2])]
    np.testing.assert_array_equal(x64, want[:5])


def test_randint_is_built_from_the_philox_words():
    lg.cuda.manual_seed(99)
    x = lg.randint(-5, 1000, (7,), device="cuda").numpy()
    words = [w for g in range(4) for w in reference_words(99, 0, g)]
    want = [-5 + ((((hi << 32) | lo) * 1005) >> 64) for hi, lo in zip(words[::2], words[1::2])]
    assert x.tolist() == want[:7]


# ----------------------------------------------------------------------------- reproducibility

@pytest.mark.parametrize("make", [
    lambda: lg.rand(37, device="cuda"),
    lambda: lg.randn(3, 11, device="cuda", dtype=lg.float64),
    lambda: lg.randn(9, device="cuda", dtype=lg.float16),
    lambda: lg.randint(0, 10, (33,), device="cuda"),
    lambda: lg.ones(4, 6, device="cuda").multinomial(3),
    lambda: lg.ones(4, 6, device="cuda").multinomial(9, replacement=True),
], ids=["rand", "randn64", "randn16", "randint", "multinomial", "multinomial_repl"])
def test_same_seed_same_numbers_successive_calls_differ(make):
    lg.cuda.manual_seed(7)
    first, second = make().numpy(), make().numpy()
    lg.cuda.manual_seed(7)
    np.testing.assert_array_equal(make().numpy(), first)
    np.testing.assert_array_equal(make().numpy(), second)
    lg.cuda.manual_seed(8)
    other = make().numpy()
    if first.dtype.kind == "f" or first.size > 20:  # a collision is (nearly) impossible
        assert not np.array_equal(first, second)
        assert not np.array_equal(first, other)


def test_manual_seed_seeds_the_cuda_device():
    lg.device("cuda")
    lg.manual_seed(3)
    a = lg.rand(8, device="cuda").numpy()
    lg.manual_seed(3)
    np.testing.assert_array_equal(lg.rand(8, device="cuda").numpy(), a)


def test_works_before_any_seed():
    from lightgrad.backends.cuda import make_backend
    fresh = make_backend(0)  # a backend nobody seeded: a key from os.urandom
    x = fresh.to_numpy(fresh.rand((1000,), np.float32))
    assert 0 <= x.min() and x.max() < 1 and 0.4 < x.mean() < 0.6


# ----------------------------------------------------------------------------- distributions

N = 200_000


@pytest.mark.parametrize("dtype", [lg.float32, lg.float64, lg.float16, lg.bfloat16])
def test_rand_uniform(dtype):
    lg.cuda.manual_seed(11)
    x = lg.rand(N, device="cuda", dtype=dtype).numpy().astype(np.float64)
    assert x.min() >= 0 and x.max() < 1
    assert abs(x.mean() - 0.5) < 5 * math.sqrt(1 / 12 / N)
    assert abs(x.var() - 1 / 12) < 5 * math.sqrt(1 / 180 / N)
    counts = np.histogram(x, bins=16, range=(0, 1))[0]
    expected = N / 16
    assert ((counts - expected) ** 2 / expected).sum() < 50  # chi-square, 15 dof


@pytest.mark.parametrize("dtype", [lg.float32, lg.float64, lg.float16, lg.bfloat16])
def test_randn_moments(dtype):
    lg.cuda.manual_seed(12)
    x = lg.randn(N + 3, device="cuda", dtype=dtype).numpy().astype(np.float64)
    assert np.isfinite(x).all()
    assert abs(x.mean()) < 5 / math.sqrt(N)
    assert abs(x.var() - 1) < 5 * math.sqrt(2 / N) + (0.01 if dtype is lg.bfloat16 else 0)
    assert abs((x ** 3).mean()) < 5 * math.sqrt(15 / N)
    assert abs((x ** 4).mean() - 3) < 5 * math.sqrt(96 / N) + 0.05
    assert abs((np.abs(x) < 1).mean() - 0.682689) < 0.005


def test_randn_pairs_are_independent():
    lg.cuda.manual_seed(13)
    x = lg.randn(N, device="cuda").numpy().astype(np.float64)
    corr = np.corrcoef(x[0::2], x[1::2])[0, 1]  # the two outputs of one Box-Muller pair
    assert abs(corr) < 5 / math.sqrt(N / 2)


def test_randint_range_and_uniformity():
    lg.cuda.manual_seed(14)
    x = lg.randint(-3, 7, (N,), device="cuda").numpy()
    assert x.dtype == np.int64 and x.min() == -3 and x.max() == 6
    counts = np.bincount(x + 3, minlength=10)
    expected = N / 10
    assert ((counts - expected) ** 2 / expected).sum() < 40  # chi-square, 9 dof


def test_randint_huge_range():
    x = lg.randint(-2**62, 2**62, (1000,), device="cuda").numpy()
    assert (x >= -2**62).all() and (x < 2**62).all()
    assert (x < 0).mean() > 0.4 and (x > 0).mean() > 0.4


def _chi_square(counts: np.ndarray, p: np.ndarray) -> float:
    expected = counts.sum() * p
    keep = expected > 0
    assert (counts[~keep] == 0).all()  # a category of probability 0 never comes out
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())


def test_multinomial_with_replacement_frequencies():
    p = np.array([0.1, 0.0, 0.2, 0.3, 0.4])
    lg.cuda.manual_seed(15)
    draws = lg.tensor(p * 3.0, device="cuda").multinomial(50_000, replacement=True).numpy()
    assert draws.shape == (50_000,) and draws.dtype == np.int64
    assert _chi_square(np.bincount(draws, minlength=5), p) < 30  # 3 dof


def test_multinomial_2d_rows_follow_their_own_probabilities():
    p = np.array([[0.7, 0.1, 0.2], [0.0, 0.5, 0.5]])
    lg.cuda.manual_seed(16)
    draws = lg.tensor(p, device="cuda").multinomial(20_000, replacement=True).numpy()
    assert draws.shape == (2, 20_000)
    for row, probs in zip(draws, p):
        assert _chi_square(np.bincount(row, minlength=3), probs) < 30


def test_multinomial_without_replacement():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.0])
    rows = 4000
    lg.cuda.manual_seed(17)
    draws = lg.tensor(np.tile(p, (rows, 1)), device="cuda").multinomial(5).numpy()
    # each row is a permutation, with the category of probability 0 last
    assert (np.sort(draws, axis=1) == np.arange(5)).all()
    assert (draws[:, 4] == 4).all()
    # first draw: p; second draw: sum_i p_i p_j / (1 - p_i)
    assert _chi_square(np.bincount(draws[:, 0], minlength=5), p) < 30
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(5) if i != j)
                       for j in range(5)])
    assert _chi_square(np.bincount(draws[:, 1], minlength=5), second) < 30


def test_multinomial_without_replacement_fewer_samples():
    lg.cuda.manual_seed(18)
    draws = lg.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]] * 3, device="cuda").multinomial(4)
    draws = draws.numpy()
    assert draws.shape == (3, 4)
    assert all(len(set(row)) == 4 for row in draws.tolist())


def test_random_dtypes_and_shapes():
    assert lg.rand(2, 3, device="cuda", dtype=lg.float16).dtype is lg.float16
    assert lg.randn(0, device="cuda").shape == (0,)
    assert lg.randint(0, 3, (2, 0), device="cuda").shape == (2, 0)
    x = lg.rand(5, device="cuda", dtype=lg.bfloat16).numpy()
    assert x.dtype == ml_dtypes.bfloat16
