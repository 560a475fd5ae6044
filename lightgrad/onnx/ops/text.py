"""String and classic-ML ops (NumPy object arrays of Python str): StringNormalizer,
StringConcat, StringSplit, RegexFullMatch, TfIdfVectorizer, and ai.onnx.ml's LabelEncoder,
Binarizer and ArrayFeatureExtractor.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from .registry import op
from .util import npy

ML = "ai.onnx.ml"


def _strs(v: Any) -> np.ndarray:
    a = np.asarray(npy(v))
    return a.astype(object) if a.dtype != object else a


@op("StringNormalizer")
def string_normalizer(ctx: Any, x: Any, *, case_change_action: str = "NONE",
                      is_case_sensitive: int = 0, locale: str = "",
                      stopwords: Any = None) -> Any:
    a = _strs(x)
    stops = set(stopwords or [])
    folded = {s.lower() for s in stops}

    def keep(s: str) -> bool:
        return s not in stops if is_case_sensitive else s.lower() not in folded

    def change(s: str) -> str:
        return s.lower() if case_change_action == "LOWER" else \
            s.upper() if case_change_action == "UPPER" else s

    if a.ndim == 2:
        rows = [[change(s) for s in row if keep(s)] for row in a.tolist()]
        width = max((len(r) for r in rows), default=0)
        if width == 0:
            return np.array([[""]], dtype=object)
        return np.array(rows, dtype=object).reshape(len(rows), width)
    kept = [change(s) for s in a.tolist() if keep(s)]
    return np.array(kept or [""], dtype=object)


@op("StringConcat")
def string_concat(ctx: Any, x: Any, y: Any) -> Any:
    a, b = np.broadcast_arrays(_strs(x), _strs(y))
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        out[idx] = a[idx] + b[idx]
    return out


@op("StringSplit")
def string_split(ctx: Any, x: Any, *, delimiter: str | None = None,
                 maxsplit: int | None = None) -> Any:
    a = _strs(x)
    parts = np.empty(a.shape, dtype=object)
    counts = np.zeros(a.shape, np.int64)
    for idx in np.ndindex(a.shape):
        s = a[idx]
        limit = -1 if maxsplit is None else maxsplit
        p = s.split(delimiter or None, limit) if delimiter else s.split(None, limit)
        parts[idx] = p
        counts[idx] = len(p)
    width = int(counts.max()) if counts.size else 0
    out = np.full(a.shape + (width,), "", dtype=object)
    for idx in np.ndindex(a.shape):
        for j, w in enumerate(parts[idx]):
            out[idx + (j,)] = w
    return out, ctx.value(counts)


@op("RegexFullMatch")
def regex_full_match(ctx: Any, x: Any, *, pattern: str) -> Any:
    rx = re.compile(pattern)
    a = _strs(x)
    out = np.zeros(a.shape, bool)
    for idx in np.ndindex(a.shape):
        out[idx] = rx.fullmatch(a[idx]) is not None
    return ctx.value(out)


@op("TfIdfVectorizer")
def tfidf_vectorizer(ctx: Any, x: Any, *, max_gram_length: int, max_skip_count: int,
                     min_gram_length: int, mode: str, ngram_counts: list, ngram_indexes: list,
                     pool_int64s: Any = None, pool_strings: Any = None,
                     weights: Any = None) -> Any:
    a = npy(x) if pool_strings is None else _strs(x)
    pool = list(pool_int64s) if pool_int64s is not None else list(pool_strings)
    starts = list(ngram_counts) + [len(pool)]
    table: dict = {}
    k = 0
    for n in range(1, len(ngram_counts) + 1):
        for p in range(starts[n - 1], starts[n], n):
            table[tuple(pool[p:p + n])] = ngram_indexes[k]
            k += 1
    size = max(ngram_indexes) + 1 if len(ngram_indexes) else 0
    rows = a.reshape(1, -1) if a.ndim == 1 else a.reshape(a.shape[0], -1)
    out = np.zeros((rows.shape[0], size), np.float32)
    for r, row in enumerate(rows.tolist()):
        for n in range(min_gram_length, max_gram_length + 1):
            skips = [0] if n == 1 else range(max_skip_count + 1)
            for skip in skips:
                step = skip + 1
                for i in range(len(row) - (n - 1) * step):
                    gram = tuple(row[i + j * step] for j in range(n))
                    hit = table.get(gram)
                    if hit is not None:
                        out[r, hit] += 1
    w = np.asarray(weights, np.float32) if weights is not None else np.ones(size, np.float32)
    if mode == "IDF":
        out = (out > 0).astype(np.float32) * w
    elif mode == "TFIDF":
        out = out * w
    return ctx.value(out.reshape(-1) if a.ndim == 1 else out)


@op("LabelEncoder", domain=ML)
def label_encoder(ctx: Any, x: Any, **attrs: Any) -> Any:
    keys = next((attrs[k] for k in ("keys_strings", "keys_int64s", "keys_floats",
                                    "keys_tensor") if k in attrs), [])
    vals = next((attrs[k] for k in ("values_strings", "values_int64s", "values_floats",
                                    "values_tensor") if k in attrs), [])
    keys, vals = np.asarray(keys).reshape(-1).tolist(), np.asarray(vals).reshape(-1)
    if "default_tensor" in attrs:
        default = np.asarray(attrs["default_tensor"]).reshape(-1)[0]
    elif vals.dtype.kind in "OUS":
        default = attrs.get("default_string", "_Unused")
    elif vals.dtype.kind == "f":
        default = attrs.get("default_float", -0.0)
    else:
        default = attrs.get("default_int64", -1)
    mapping = {}
    for k, v in zip(keys, vals.tolist()):
        mapping[k if not isinstance(k, float) or k == k else "nan"] = v
    a = _strs(x) if np.asarray(npy(x)).dtype.kind in "OUS" else npy(x)
    out = np.empty(a.shape, dtype=vals.dtype if vals.dtype.kind not in "US" else object)
    for idx in np.ndindex(a.shape):
        key = a[idx].item() if hasattr(a[idx], "item") else a[idx]
        if isinstance(key, float) and key != key:
            key = "nan"
        out[idx] = mapping.get(key, default)
    return out if out.dtype == object else ctx.value(out)


@op("Binarizer", domain=ML)
def binarizer(ctx: Any, x: Any, *, threshold: float = 0.0) -> Any:
    a = npy(x)
    return ctx.value((a > threshold).astype(a.dtype))


@op("ArrayFeatureExtractor", domain=ML)
def array_feature_extractor(ctx: Any, x: Any, y: Any) -> Any:
    a = npy(x) if np.asarray(npy(x)).dtype != object else _strs(x)
    idx = npy(y).astype(np.int64).reshape(-1)
    out = np.take(a, idx, axis=-1)
    if a.ndim == 1:
        out = out.reshape(1, -1)
    return out if out.dtype == object else ctx.value(out)


@op("TreeEnsemble", domain=ML)
def tree_ensemble(ctx: Any, x: Any, *, nodes_splits: Any, nodes_featureids: list,
                  nodes_modes: Any, nodes_truenodeids: list, nodes_falsenodeids: list,
                  nodes_trueleafs: list, nodes_falseleafs: list, leaf_targetids: list,
                  leaf_weights: Any, tree_roots: list, post_transform: int = 0,
                  aggregate_function: int = 1, nodes_hitrates: Any = None,
                  nodes_missing_value_tracks_true: Any = None, membership_values: Any = None,
                  n_targets: int | None = None) -> Any:
    """Decision trees: walk each tree per row, aggregate leaf weights per target."""
    if post_transform:
        raise ValueError("TreeEnsemble: only post_transform NONE is supported")
    a = npy(x).astype(np.float64)
    splits = np.asarray(nodes_splits, np.float64).reshape(-1)
    modes = np.asarray(nodes_modes).reshape(-1).astype(int)
    weights = np.asarray(leaf_weights, np.float64).reshape(-1)
    missing = list(nodes_missing_value_tracks_true or [0] * len(modes))
    sets: dict = {}
    if membership_values is not None:
        groups, cur = [], []
        for v in np.asarray(membership_values, np.float64).reshape(-1):
            if np.isnan(v):
                groups.append(set(cur))
                cur = []
            else:
                cur.append(v)
        it = iter(groups)
        sets = {i: next(it) for i, m in enumerate(modes) if m == 6}
    tests = [lambda v, s: v <= s, lambda v, s: v < s, lambda v, s: v >= s,
             lambda v, s: v > s, lambda v, s: v == s, lambda v, s: v != s]
    n_t = n_targets or (max(leaf_targetids) + 1)
    out = np.zeros((a.shape[0], n_t))
    per_tree = np.zeros((len(tree_roots), a.shape[0], n_t))
    for r, row in enumerate(a):
        for t, root in enumerate(tree_roots):
            i, leaf = root, False
            while not leaf:
                v = row[nodes_featureids[i]]
                go = (v in sets[i]) if modes[i] == 6 else tests[modes[i]](v, splits[i])
                go = go or (bool(missing[i]) and np.isnan(v))
                i, leaf = ((nodes_truenodeids[i], nodes_trueleafs[i]) if go else
                           (nodes_falsenodeids[i], nodes_falseleafs[i]))
            per_tree[t, r, leaf_targetids[i]] += weights[i]
    if aggregate_function == 0:
        out = per_tree.mean(axis=0)
    elif aggregate_function == 2:
        out = per_tree.min(axis=0)
    elif aggregate_function == 3:
        out = per_tree.max(axis=0)
    else:
        out = per_tree.sum(axis=0)
    return ctx.value(out.astype(npy(x).dtype))
