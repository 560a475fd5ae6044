"""``einsum``: Einstein summation built from permute, reshape, sum and batched matmul.

Each operand first loses its repeated labels (a diagonal) and the labels no one else needs
(a sum); operands are then contracted left to right, each pair as one
``(batch, M, K) @ (batch, K, N)`` matmul, so autograd comes from those ops.

>>> import lightgrad as lg
>>> lg.einsum("ij,jk->ik", lg.ones(2, 3), lg.ones(3, 4)).shape
(2, 4)
>>> lg.einsum("ii", lg.eye(3)).item()
3.0
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from ..tensor import Tensor
from .common import same_device

_ELL = "..."


def _parse_term(term: str, op_index: Any) -> list[str]:
    """Labels of one subscript term; ``'...'`` stays as one item."""
    where = f"operand {op_index}" if op_index is not None else "the output"
    if term.count(_ELL) > 1 or term.replace(_ELL, "").count(".") > 0:
        raise ValueError(f"einsum: subscripts of {where} may hold '...' at most once and no "
                         f"other '.', got {term!r}")
    labels: list[str] = []
    for i, part in enumerate(term.split(_ELL)):
        if i:
            labels.append(_ELL)
        for c in part:
            if not (c.isascii() and c.isalpha()):
                raise ValueError(f"einsum: invalid subscript {c!r} in {where}: subscripts must "
                                 f"be letters in [a-zA-Z] or '...'")
            labels.append(c)
    return labels


def _expand_ellipsis(labels: list[str], ndim: int, index: int) -> list[Any]:
    """Replace '...' by integer labels -n..-1 (right-aligned, so they broadcast)."""
    named = len(labels) - (_ELL in labels)
    if (_ELL not in labels and named != ndim) or named > ndim:
        raise ValueError(f"einsum: operand {index} has {ndim} dims but its subscripts "
                         f"{''.join(labels)!r} name {named}")
    if _ELL not in labels:
        return list(labels)
    k = labels.index(_ELL)
    return labels[:k] + list(range(-(ndim - named), 0)) + labels[k + 1:]


def _diagonal(t: Tensor, labels: list[Any]) -> tuple[Tensor, list[Any]]:
    """Take the diagonal over every label repeated within one operand."""
    from ..creation import eye
    while len(set(labels)) < len(labels):
        lab = next(x for x in labels if labels.count(x) > 1)
        i = labels.index(lab)
        j = labels.index(lab, i + 1)
        n, m = t.shape[i], t.shape[j]
        if n != m:
            raise ValueError(f"einsum: subscript {lab!r} is repeated in one operand for dims "
                             f"of different sizes {n} and {m}")
        mask_shape = [1] * t.ndim
        mask_shape[i] = mask_shape[j] = n
        mask = eye(n, dtype=t.dtype, device=t.device).reshape(mask_shape)
        t = (t * mask).sum(dim=j)
        labels = labels[:j] + labels[j + 1:]
    return t, labels


def _sum_out(t: Tensor, labels: list[Any], keep: set) -> tuple[Tensor, list[Any]]:
    axes = tuple(i for i, lab in enumerate(labels) if lab not in keep)
    if not axes:
        return t, labels
    return t.sum(dim=axes), [lab for lab in labels if lab in keep]


def _permuted(t: Tensor, labels: list[Any], order: list[Any]) -> Tensor:
    perm = [labels.index(lab) for lab in order]
    return t if perm == list(range(len(perm))) else t.permute(*perm)


def _expand(t: Tensor, labels: list[Any], shared: set, sizes: dict) -> Tensor:
    """Broadcast size-1 dims of the ``shared`` labels to their full size."""
    shape = [sizes[x] if x in shared else n for x, n in zip(labels, t.shape)]
    return t if tuple(shape) == tuple(t.shape) else t.expand(*shape)


def _contract(a: Tensor, la: list[Any], b: Tensor, lb: list[Any], keep: set,
              sizes: dict) -> tuple[Tensor, list[Any]]:
    """Contract two operands (unique labels each) into one holding the labels in ``keep``."""
    a, la = _sum_out(a, la, keep | set(lb))
    b, lb = _sum_out(b, lb, keep | set(la))
    shared = set(la) & set(lb)
    a, b = _expand(a, la, shared, sizes), _expand(b, lb, shared, sizes)
    batch = [x for x in la if x in shared and x in keep]
    summed = [x for x in la if x in shared and x not in keep]
    left = [x for x in la if x not in shared]
    right = [x for x in lb if x not in shared]
    size_a, size_b = dict(zip(la, a.shape)), dict(zip(lb, b.shape))
    a = _permuted(a, la, batch + left + summed)
    b = _permuted(b, lb, batch + summed + right)
    nb, k = math.prod(sizes[x] for x in batch), math.prod(sizes[x] for x in summed)
    m, n = math.prod(size_a[x] for x in left), math.prod(size_b[x] for x in right)
    out = a.reshape(nb, m, k).matmul(b.reshape(nb, k, n))
    shape = [sizes[x] for x in batch] + [size_a[x] for x in left] + [size_b[x] for x in right]
    return out.reshape(*shape) if shape else out.reshape(()), batch + left + right


def _output_labels(out_term: Any, labels: list[list[Any]]) -> list[Any]:
    seen = [x for ls in labels for x in ls]
    ell = sorted({x for x in seen if isinstance(x, int)})
    if out_term is None:  # implicit: ellipsis dims, then labels seen once, sorted
        once = sorted(x for x in set(seen) if isinstance(x, str) and seen.count(x) == 1)
        return ell + once
    out = _parse_term(out_term, None)
    named = [x for x in out if x != _ELL]
    for x in named:
        if named.count(x) > 1:
            raise ValueError(f"einsum: output subscript {x!r} appears more than once")
        if x not in seen:
            raise ValueError(f"einsum: output subscript {x!r} does not appear in any input")
    if _ELL not in out:
        return out
    k = out.index(_ELL)
    return out[:k] + ell + out[k + 1:]


def einsum(equation: str, *operands: Any) -> Tensor:
    """Sum of products over the subscripts of ``equation``, like ``torch.einsum``.

    Supports ``'...'``, implicit outputs (labels seen once, alphabetically), repeated labels
    within an operand (diagonals) and size-1 broadcasting. Operands may also come as one list.

    >>> import lightgrad as lg
    >>> a, b = lg.ones(5, 2, 3), lg.ones(5, 3, 4)
    >>> lg.einsum("bij,bjk->bik", a, b).shape
    (5, 2, 4)
    >>> lg.einsum("...i,i", lg.ones(2, 3), lg.ones(3)).tolist()
    [3.0, 3.0]
    """
    if not isinstance(equation, str):
        raise TypeError(f"einsum: equation must be a str, got {type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ops: Sequence[Tensor] = operands
    if not ops:
        raise ValueError("einsum: must provide at least one operand")
    for t in ops:
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: operands must be Tensors, got {type(t).__name__}")
    same_device("einsum", ops)
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops):
        raise ValueError(f"einsum: equation {equation!r} has {len(terms)} input subscripts "
                         f"but {len(ops)} operands were given")
    labels = [_expand_ellipsis(_parse_term(s, i), t.ndim, i)
              for i, (s, t) in enumerate(zip(terms, ops))]
    out = _output_labels(rhs if arrow else None, labels)
    sizes: dict = {}
    for i, (t, ls) in enumerate(zip(ops, labels)):
        for lab, n in zip(ls, t.shape):
            if sizes.get(lab, n) not in (n, 1) and n != 1:
                name = "'...'" if isinstance(lab, int) else repr(lab)
                raise ValueError(f"einsum: subscript {name} has size {n} in operand {i} "
                                 f"(shape {tuple(t.shape)}) but size {sizes[lab]} elsewhere")
            sizes[lab] = max(sizes.get(lab, 1), n)
    items = [_diagonal(t, ls) for t, ls in zip(ops, labels)]
    t, ls = items[0]
    for i, (t2, ls2) in enumerate(items[1:], start=1):
        later = {x for _, lab in items[i + 1:] for x in lab}
        t, ls = _contract(t, ls, t2, ls2, set(out) | later, sizes)
    if len(items) == 1:
        t, ls = _sum_out(t, ls, set(out))
    t = t.expand(*[sizes[x] for x in ls]) if ls else t
    return _permuted(t, ls, out)
