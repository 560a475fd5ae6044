"""The native-kernel build: compile, cache, load, declare; and the NumPy fallback."""
from __future__ import annotations

import numpy as np
import pytest

from lightgrad.backends import native

SOURCE = """
#include <stdint.h>
void lg_test_axpy(float* y, const float* x, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGRAD_NATIVE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.skipif(native.compiler() is None, reason="no C compiler on this machine")
def test_build_caches_and_calls(tmp_path, cache):
    src = tmp_path / "axpy.c"
    src.write_text(SOURCE)
    path = native.build([src])
    assert path.parent == cache and path.exists()
    stamp = path.stat().st_mtime_ns
    assert native.build([src]) == path and path.stat().st_mtime_ns == stamp  # cached
    lib = native.open_library(path, {"lg_test_axpy": "ppfi"})
    x, y = np.arange(5, dtype=np.float32), np.ones(5, dtype=np.float32)
    lib.lg_test_axpy(native.pointer(y), native.pointer(x), 2.0, 5)
    np.testing.assert_array_equal(y, 1 + 2 * np.arange(5, dtype=np.float32))
    src.write_text(SOURCE + "\n/* changed */\n")
    assert native.build([src]) != path  # a new source is a new library


@pytest.mark.skipif(native.compiler() is None, reason="no C compiler on this machine")
def test_compile_error_names_the_problem(tmp_path, cache):
    src = tmp_path / "bad.c"
    src.write_text("void lg_bad(void) { this is not C; }\n")
    with pytest.raises(native.NativeBuildError, match="error"):
        native.build([src])


def test_missing_compiler_is_a_clear_error(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    src = tmp_path / "axpy.c"
    src.write_text(SOURCE)
    with pytest.raises(native.NativeBuildError, match="no-such-compiler|FileNotFound"):
        native.build([src])


def test_declare_rejects_unknown_argument_types():
    with pytest.raises(ValueError, match="lg_x"):
        native.declare(lg_x="pq")


def test_library_is_none_when_turned_off(monkeypatch):
    monkeypatch.setenv("LIGHTGRAD_NATIVE", "0")
    monkeypatch.setattr(native, "_state", {})
    assert native.library() is None


def test_describe_says_why_without_kernels(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="no-such-compiler"):
        assert native.library() is None
    assert "no-such-compiler" in native.describe()
    monkeypatch.setenv("LIGHTGRAD_NATIVE", "0")
    assert native.describe() == "NumPy only (LIGHTGRAD_NATIVE=0)"
