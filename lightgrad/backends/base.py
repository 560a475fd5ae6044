"""The op vocabulary: every primitive a backend implements, with its signature and meaning.

A backend works on its own buffer type (NumPy arrays on the CPU, device arrays on CUDA,
IR nodes in graph mode). Every buffer has ``.shape`` (a tuple) and ``.dtype`` (a NumPy
dtype; bfloat16 is ``ml_dtypes.bfloat16``). Primitives never see Tensors or autograd:
``Function``s in ``lightgrad.ops`` call them and handle dtype promotion and gradients.

Conventions: ``axes`` is a tuple of non-negative axes; ``keepdim`` keeps reduced axes with
size 1; binary ops broadcast like NumPy and receive operands already promoted to one dtype
(a Python scalar operand takes the dtype of the other operand); results are new buffers
unless the primitive is documented as a view.

>>> from lightgrad.backends import get_backend
>>> cpu = get_backend("cpu")
>>> cpu.add(cpu.from_numpy(__import__("numpy").ones(2)), 1.0)
array([2., 2.])
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

Buffer = Any
Shape = tuple

UNARY_OPS = (
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu",
    "gelu", "gelu_tanh", "silu", "softplus", "erf", "reciprocal", "sign", "floor", "ceil",
    "round", "logical_not",
)
"""Elementwise ``op(x) -> y``, same shape; float ops receive floating-point buffers."""

BINARY_OPS = (
    "add", "sub", "mul", "div", "pow", "maximum", "minimum",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
)
"""Elementwise ``op(a, b) -> y`` with broadcasting; comparisons and logical ops give bool."""

REDUCE_OPS = ("sum", "mean", "prod", "amax", "amin", "all", "any")
"""``op(x, axes, keepdim) -> y``; ``sum``/``prod``/``mean`` also take ``dtype``."""


# ----------------------------------------------------------------------------- shape rules
# Graph mode runs code on buffers that have a type but no values (IR nodes). Each primitive
# carries a *shape rule* beside its declaration (the ``@rule(...)`` line above it): called
# with the primitive's own arguments, buffers given as anything with ``.shape``/``.dtype``,
# it returns the result's ``Meta``, a tuple of Metas (None where the result is None) for
# primitives returning tuples, or None for primitives that write in place.


class Meta(NamedTuple):
    """The type of a buffer without its values.

    >>> Meta((2, 3), np.dtype("float32")).shape
    (2, 3)
    """

    shape: tuple
    dtype: Any


class ShapeUnknown(RuntimeError):
    """A shape rule can't say the result's shape: it depends on the values (a boolean mask
    index, for example)."""


SHAPE_RULES: dict[str, Callable[..., Any]] = {}
"""Primitive name -> its shape rule."""
MUTATES: dict[str, tuple[int, ...]] = {}
"""In-place primitive name -> positions of the arguments it writes."""
EFFECT_OPS: set[str] = {"seed", "rand", "randn", "randint", "multinomial"}
"""Primitives whose calls must all run, in order (random draws; in-place ops join below)."""
VIEW_OPS: set[str] = set()
"""Primitives whose result may share memory with their first argument."""


def rule(infer: Callable[..., Any], mutates: tuple[str, ...] = (),
         view: bool = False) -> Callable[[Callable], Callable]:
    """Declare ``infer`` as the shape rule of the primitive below it; ``mutates`` names the
    arguments it writes in place, ``view`` says its result may alias its first argument.

    >>> SHAPE_RULES["matmul"](Meta((4, 3), np.dtype("float32")), Meta((3, 5), None)).shape
    (4, 5)
    """
    def declare(fn: Callable) -> Callable:
        SHAPE_RULES[fn.__name__] = infer
        if mutates:
            params = list(inspect.signature(fn).parameters)[1:]
            MUTATES[fn.__name__] = tuple(params.index(name) for name in mutates)
            EFFECT_OPS.add(fn.__name__)
        if view:
            VIEW_OPS.add(fn.__name__)
        return fn
    return declare


def infer(op: str, *args: Any) -> Any:
    """The result type of calling primitive ``op`` with ``args`` (see ``rule``).

    >>> infer("add", Meta((2, 1), np.dtype("float32")), Meta((3,), np.dtype("float32")))
    Meta(shape=(2, 3), dtype=dtype('float32'))
    """
    found = SHAPE_RULES.get(op)
    if found is None:
        raise NotImplementedError(f"{op}: no shape rule; declare one with @rule(...) beside "
                                  "the primitive in lightgrad/backends/base.py")
    return found(*args)


def _is_buffer(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype")


def _same(x: Any, *_: Any) -> Meta:
    return Meta(tuple(x.shape), x.dtype)


def _broadcast(op: str, *operands: Any) -> tuple:
    shapes = [tuple(a.shape) for a in operands if _is_buffer(a)]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        shown = " and ".join(map(str, shapes))
        raise ValueError(f"{op}: shapes {shown} cannot be broadcast together") from None


def _elementwise(op: str, result_dtype: Any = None) -> Callable[..., Meta]:
    def infer_elementwise(*operands: Any) -> Meta:
        dtype = next(a.dtype for a in operands if _is_buffer(a))
        return Meta(_broadcast(op, *operands), result_dtype or dtype)
    return infer_elementwise


def _reduced(shape: tuple, axes: Any, keepdim: bool) -> tuple:
    axes = range(len(shape)) if axes is None else [a % max(len(shape), 1) for a in
                                                    np.atleast_1d(axes).tolist()]
    if keepdim:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _reduce(result_dtype: Any = None) -> Callable[..., Meta]:
    def infer_reduce(x: Any, axes: Any, keepdim: bool, dtype: Any = None) -> Meta:
        out = result_dtype or (np.dtype(dtype) if dtype is not None else x.dtype)
        return Meta(_reduced(tuple(x.shape), axes, keepdim), out)
    return infer_reduce


_BOOL = np.dtype(bool)
_INT64 = np.dtype(np.int64)
for _op in UNARY_OPS:
    SHAPE_RULES[_op] = _elementwise(_op, _BOOL if _op == "logical_not" else None)
for _op in BINARY_OPS:
    SHAPE_RULES[_op] = _elementwise(_op, _BOOL if _op in ("eq", "ne", "lt", "le", "gt", "ge")
                                    or _op.startswith("logical") else None)
for _op in REDUCE_OPS:
    SHAPE_RULES[_op] = _reduce(_BOOL if _op in ("all", "any") else None)


def _arg_index(x: Any, axis: int | None, keepdim: bool) -> Meta:
    return Meta(_reduced(tuple(x.shape), axis, keepdim), _INT64)


def _index_meta(x: Any, index: tuple) -> Meta:
    """NumPy indexing applied to a zero-strided stand-in of ``x``'s shape."""
    def stand_in(i: Any) -> Any:
        if not _is_buffer(i):
            return i
        if np.dtype(i.dtype) == _BOOL:
            raise ShapeUnknown(f"getitem: a boolean mask index of shape {tuple(i.shape)} "
                               "gives a result whose shape depends on the mask's values")
        return np.zeros(i.shape, dtype=np.intp)
    base = np.lib.stride_tricks.as_strided(np.zeros(1, np.int8), tuple(x.shape),
                                           (0,) * len(x.shape))
    return Meta(base[tuple(stand_in(i) for i in index)].shape, x.dtype)


def _matmul(a: Any, b: Any) -> Meta:
    sa, sb = tuple(a.shape), tuple(b.shape)
    if len(sa) < 2 or len(sb) < 2 or sa[-1] != sb[-2]:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not align")
    return Meta(_broadcast("matmul", Meta(sa[:-2], None), Meta(sb[:-2], None)) +
                (sa[-2], sb[-1]), a.dtype)


def _conv2d(x: Any, w: Any, bias: Any, stride: tuple, padding: tuple, dilation: tuple,
            groups: int) -> Meta:
    hw = tuple((n + p[0] + p[1] - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in
               zip(x.shape[2:], w.shape[2:], stride, padding, dilation))
    return Meta((x.shape[0], w.shape[0]) + hw, x.dtype)


def pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: the last window must start inside input or left pad.

    >>> pool_out(5, 2, 2, 0, 1, True)
    3
    """
    span = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool(x: Any, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
          ceil_mode: bool) -> Meta:
    hw = tuple(pool_out(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
               zip(x.shape[2:], kernel, stride, padding, dilation))
    return Meta(tuple(x.shape[:2]) + hw, x.dtype)


def _max_pool2d(x: Any, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                ceil_mode: bool) -> tuple:
    out = _pool(x, kernel, stride, padding, dilation, ceil_mode)
    return out, Meta(out.shape, _INT64)


def _norm_stats(x: Any, n_axes: int) -> Meta:
    return Meta(tuple(x.shape[:len(x.shape) - n_axes]) + (1,) * n_axes, x.dtype)


def _layer_norm_backward(g: Any, x: Any, weight: Any, mean: Any, rstd: Any,
                         n_axes: int) -> tuple:
    params = Meta(tuple(x.shape[len(x.shape) - n_axes:]), x.dtype)
    return _same(x), params if weight is not None else None, params


def _attention(q: Any, k: Any, v: Any, mask: Any, scale: float, is_causal: bool,
               keep: Any) -> tuple:
    batch = _broadcast("scaled_dot_product_attention", Meta(q.shape[:-2], None),
                       Meta(k.shape[:-2], None), Meta(v.shape[:-2], None))
    length = (q.shape[-2],)
    return (Meta(batch + length + (v.shape[-1],), q.dtype),
            Meta(batch + length + (k.shape[-2],), q.dtype))


def _tile(x: Any, reps: Sequence[int]) -> Meta:
    shape, reps = tuple(x.shape), tuple(reps)
    n = max(len(shape), len(reps))
    shape, reps = (1,) * (n - len(shape)) + shape, (1,) * (n - len(reps)) + reps
    return Meta(tuple(a * r for a, r in zip(shape, reps)), x.dtype)


def _cat(xs: Sequence[Any], axis: int) -> Meta:
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return Meta(tuple(shape), xs[0].dtype)


def _with_axis(x: Any, axis: int, size: int, dtype: Any = None) -> Meta:
    shape = list(x.shape)
    shape[axis] = size
    return Meta(tuple(shape), dtype or x.dtype)


def _arange(start: float, end: float, step: float, dtype: Any) -> Meta:
    return Meta((max(0, math.ceil((end - start) / step)),), np.dtype(dtype))


def _bitcast(x: Any, dtype: Any) -> Meta:
    old, new = np.dtype(x.dtype).itemsize, np.dtype(dtype).itemsize
    shape = tuple(x.shape)
    if old != new:
        shape = shape[:-1] + (shape[-1] * old // new,)
    return Meta(shape, np.dtype(dtype))


def _reshape(x: Any, shape: Sequence[int]) -> Meta:
    shape = tuple(shape)
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        shape = tuple(math.prod(x.shape) // max(known, 1) if n == -1 else n for n in shape)
    if math.prod(shape) != math.prod(x.shape):
        raise ValueError(f"reshape: can't reshape {tuple(x.shape)} into {shape}")
    return Meta(shape, x.dtype)


def _selective_scan(u: Any, delta: Any, A: Any, B: Any, C: Any, *_: Any) -> tuple:
    return _same(u), Meta((u.shape[0], u.shape[1], A.shape[1]), u.dtype)


def _selective_scan_backward(grad: Any, grad_last: Any, *inputs: Any) -> tuple:
    return tuple(_same(a) if _is_buffer(a) else None for a in inputs[:8])


def contiguous_strides(shape: tuple) -> tuple:
    """Row-major strides (in elements) of ``shape``."""
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= n
    return tuple(reversed(out))


class Backend:
    """Interface of a backend. Subclasses implement every method; see ``cpu.py``."""

    name = "abstract"

    # --- creation and transfer
    @rule(lambda array: Meta(tuple(array.shape), np.dtype(array.dtype)))
    def from_numpy(self, array: Any) -> Buffer:
        """A buffer holding ``array``'s values (the CPU backend shares its memory)."""
        raise NotImplementedError

    def to_numpy(self, x: Buffer) -> Any:
        """The values of ``x`` as a NumPy array (a view where the backend allows)."""
        raise NotImplementedError

    @rule(lambda shape, value, dtype: Meta(tuple(shape), np.dtype(dtype)))
    def full(self, shape: Shape, value: float, dtype: Any) -> Buffer:
        """A new buffer of ``shape`` filled with ``value``."""
        raise NotImplementedError

    @rule(_arange)
    def arange(self, start: float, end: float, step: float, dtype: Any) -> Buffer:
        """Values ``start, start+step, ...`` below ``end``."""
        raise NotImplementedError

    @rule(lambda start, end, steps, dtype: Meta((steps,), np.dtype(dtype)))
    def linspace(self, start: float, end: float, steps: int, dtype: Any) -> Buffer:
        """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
        raise NotImplementedError

    @rule(lambda n, m, dtype: Meta((n, m), np.dtype(dtype)))
    def eye(self, n: int, m: int, dtype: Any) -> Buffer:
        """An ``n x m`` identity matrix."""
        raise NotImplementedError

    @rule(lambda seed: None)
    def seed(self, seed: int) -> None:
        """Reset the backend's random number generator."""
        raise NotImplementedError

    @rule(lambda shape, dtype: Meta(tuple(shape), np.dtype(dtype)))
    def rand(self, shape: Shape, dtype: Any) -> Buffer:
        """Uniform samples in [0, 1)."""
        raise NotImplementedError

    @rule(lambda shape, dtype: Meta(tuple(shape), np.dtype(dtype)))
    def randn(self, shape: Shape, dtype: Any) -> Buffer:
        """Standard normal samples."""
        raise NotImplementedError

    @rule(lambda low, high, shape, dtype: Meta(tuple(shape), np.dtype(dtype)))
    def randint(self, low: int, high: int, shape: Shape, dtype: Any) -> Buffer:
        """Uniform integers in [low, high)."""
        raise NotImplementedError

    @rule(lambda x, dtype: Meta(tuple(x.shape), np.dtype(dtype)))
    def astype(self, x: Buffer, dtype: Any) -> Buffer:
        """``x`` converted to ``dtype`` (a new buffer)."""
        raise NotImplementedError

    @rule(_same, view=True)
    def contiguous(self, x: Buffer) -> Buffer:
        """``x`` itself when it is C-contiguous, else a C-contiguous copy."""
        raise NotImplementedError

    @rule(_same)
    def copy(self, x: Buffer) -> Buffer:
        """A C-contiguous copy of ``x``."""
        raise NotImplementedError

    def is_contiguous(self, x: Buffer) -> bool:
        """Whether ``x`` is laid out C-contiguously."""
        raise NotImplementedError

    # --- elementwise (names in UNARY_OPS and BINARY_OPS are methods too)
    @rule(_same)
    def gelu_backward(self, x: Buffer, grad: Buffer) -> Buffer:
        """``grad * d gelu(x) / dx`` for exact GELU, fused."""
        raise NotImplementedError

    @rule(lambda x: (_same(x), _same(x)))
    def gelu_and_grad(self, x: Buffer) -> tuple:
        """``(gelu(x), d gelu(x) / dx)`` for exact GELU, computed together: the forward of a
        GELU whose gradient will be needed (its backward is then one product)."""
        raise NotImplementedError

    @rule(lambda cond, a, b: Meta(_broadcast("where", cond, a, b), next(
        t.dtype for t in (a, b) if _is_buffer(t))))
    def where(self, cond: Buffer, a: Buffer, b: Buffer) -> Buffer:
        """``a`` where ``cond`` is true else ``b``, broadcast together."""
        raise NotImplementedError

    @rule(_same)
    def clamp(self, x: Buffer, low: float | None, high: float | None) -> Buffer:
        """``x`` limited to [low, high]; a None bound is open."""
        raise NotImplementedError

    # --- reductions (names in REDUCE_OPS are methods too)
    @rule(_arg_index)
    def argmax(self, x: Buffer, axis: int | None, keepdim: bool) -> Buffer:
        """Index (int64) of the first largest value along ``axis`` (flattened if None)."""
        raise NotImplementedError

    @rule(_arg_index)
    def argmin(self, x: Buffer, axis: int | None, keepdim: bool) -> Buffer:
        """Index (int64) of the first smallest value along ``axis`` (flattened if None)."""
        raise NotImplementedError

    @rule(_same)
    def cumsum(self, x: Buffer, axis: int) -> Buffer:
        """Inclusive running sum along ``axis``."""
        raise NotImplementedError

    # --- movement
    @rule(_reshape, view=True)
    def reshape(self, x: Buffer, shape: Shape) -> Buffer:
        """``x`` with a new shape of the same size (a view when the layout allows)."""
        raise NotImplementedError

    @rule(_bitcast, view=True)
    def bitcast(self, x: Buffer, dtype: Any) -> Buffer:
        """A view of ``x``'s bytes as ``dtype``. With another item size the last dim scales
        by the size ratio and must have stride 1 (the caller checks, as ``Tensor.view``
        does); the other strides scale too."""
        raise NotImplementedError

    @rule(lambda x, axes: Meta(tuple(x.shape[a] for a in axes), x.dtype), view=True)
    def permute(self, x: Buffer, axes: Sequence[int]) -> Buffer:
        """A view of ``x`` with its axes reordered."""
        raise NotImplementedError

    @rule(lambda x, shape: Meta(tuple(shape), x.dtype), view=True)
    def expand(self, x: Buffer, shape: Shape) -> Buffer:
        """A read-only broadcast view of ``x`` at ``shape``."""
        raise NotImplementedError

    @rule(_index_meta, view=True)
    def getitem(self, x: Buffer, index: tuple) -> Buffer:
        """NumPy-style indexing; ``index`` holds ints, slices, None, Ellipsis and int64/bool
        buffers. Basic indexing gives a view; advanced indexing gives a copy."""
        raise NotImplementedError

    @rule(lambda x, index, value: None, mutates=("x",))
    def setitem(self, x: Buffer, index: tuple, value: Buffer | float) -> None:
        """Write ``value`` into ``x[index]`` in place."""
        raise NotImplementedError

    @rule(_same)
    def index_put(self, x: Buffer, index: tuple, value: Buffer, accumulate: bool) -> Buffer:
        """A copy of ``x`` with ``value`` written (or, with accumulate, added, repeated
        indices adding up) at ``index``."""
        raise NotImplementedError

    @rule(lambda dst, src: None, mutates=("dst",))
    def assign(self, dst: Buffer, src: Buffer | float) -> None:
        """Copy ``src`` (broadcast) into ``dst`` in place."""
        raise NotImplementedError

    @rule(lambda op, dst, src: None, mutates=("dst",))
    def binary_inplace(self, op: str, dst: Buffer, src: Buffer | float) -> None:
        """``dst = op(dst, src)`` in place for op in add/sub/mul/div; ``src`` has dst's dtype
        (or is a number) and broadcasts to dst's shape."""
        raise NotImplementedError

    @rule(lambda x, pads, value: Meta(
        tuple(n + a + b for n, (a, b) in zip(x.shape, pads)), x.dtype))
    def pad(self, x: Buffer, pads: Sequence[tuple[int, int]], value: float) -> Buffer:
        """``x`` with ``pads[i] = (before, after)`` elements of ``value`` around axis i."""
        raise NotImplementedError

    @rule(_same)
    def flip(self, x: Buffer, axes: Sequence[int]) -> Buffer:
        """``x`` reversed along ``axes``."""
        raise NotImplementedError

    @rule(_cat)
    def cat(self, xs: Sequence[Buffer], axis: int) -> Buffer:
        """Buffers joined along ``axis``."""
        raise NotImplementedError

    @rule(_tile)
    def tile(self, x: Buffer, reps: Sequence[int]) -> Buffer:
        """``x`` repeated ``reps[i]`` times along axis i (``Tensor.repeat``)."""
        raise NotImplementedError

    @rule(_same)
    def tril(self, x: Buffer, k: int) -> Buffer:
        """Lower triangle of the last two axes (diagonal offset ``k``), zeros elsewhere."""
        raise NotImplementedError

    @rule(_same)
    def triu(self, x: Buffer, k: int) -> Buffer:
        """Upper triangle of the last two axes (diagonal offset ``k``), zeros elsewhere."""
        raise NotImplementedError

    @rule(lambda x, axis, index: Meta(tuple(index.shape), x.dtype))
    def gather(self, x: Buffer, axis: int, index: Buffer) -> Buffer:
        """``out[i][j] = x[i][index[i][j]]`` along ``axis`` (torch.gather)."""
        raise NotImplementedError

    @rule(_same)
    def scatter_add(self, x: Buffer, axis: int, index: Buffer, src: Buffer) -> Buffer:
        """A copy of ``x`` plus ``src`` added at ``index`` along ``axis`` (torch.scatter_add)."""
        raise NotImplementedError

    @rule(_same)
    def index_add(self, x: Buffer, axis: int, index: Buffer, src: Buffer) -> Buffer:
        """A copy of ``x`` with slices of ``src`` added at positions ``index`` of ``axis``."""
        raise NotImplementedError

    @rule(lambda x, axis, index: _with_axis(x, axis, index.shape[0]))
    def index_select(self, x: Buffer, axis: int, index: Buffer) -> Buffer:
        """Slices of ``x`` at positions ``index`` (1-D int64) along ``axis``."""
        raise NotImplementedError

    # --- linear algebra and fused NN ops
    @rule(_matmul)
    def matmul(self, a: Buffer, b: Buffer) -> Buffer:
        """Batched matrix product of buffers with ndim >= 2, batch axes broadcast."""
        raise NotImplementedError

    @rule(_same)
    def softmax(self, x: Buffer, axis: int) -> Buffer:
        """Numerically stable softmax along ``axis``."""
        raise NotImplementedError

    @rule(_same)
    def log_softmax(self, x: Buffer, axis: int) -> Buffer:
        """Numerically stable log-softmax along ``axis``."""
        raise NotImplementedError

    # --- sampling and selection (not differentiable)
    @rule(lambda probs, n, replacement: _with_axis(probs, -1, n, _INT64))
    def multinomial(self, probs: Buffer, num_samples: int, replacement: bool) -> Buffer:
        """int64 indices drawn from each row of the (unnormalised) ``probs``."""
        raise NotImplementedError

    @rule(lambda x, k, axis, largest: _with_axis(x, axis, k, _INT64))
    def topk(self, x: Buffer, k: int, axis: int, largest: bool) -> Buffer:
        """int64 indices of the ``k`` largest (or smallest) values along ``axis``, sorted."""
        raise NotImplementedError

    @rule(lambda x, axis, descending: Meta(tuple(x.shape), _INT64))
    def sort(self, x: Buffer, axis: int, descending: bool) -> Buffer:
        """int64 indices that sort ``x`` along ``axis`` (stable)."""
        raise NotImplementedError

    # --- fused NN primitives (conv, pooling, norms, losses, attention)
    # Spatial arguments are pairs (height, width); ``padding`` for conv is
    # ((top, bottom), (left, right)), for pooling (height, width) on both sides.
    @rule(_conv2d)
    def conv2d(self, x: Buffer, w: Buffer, bias: Buffer | None, stride: tuple,
               padding: tuple, dilation: tuple, groups: int) -> Buffer:
        """2-D cross-correlation: x (N, C, H, W), w (O, C // groups, kh, kw), bias (O,) or
        None -> (N, O, Ho, Wo), zero padding; ``Ho = (H + top + bottom - dh*(kh-1) - 1)
        // sh + 1``."""
        raise NotImplementedError

    @rule(lambda grad, w, input_shape, *_: Meta(tuple(input_shape), grad.dtype))
    def conv2d_backward_input(self, grad: Buffer, w: Buffer, input_shape: Shape,
                              stride: tuple, padding: tuple, dilation: tuple,
                              groups: int) -> Buffer:
        """Gradient of ``conv2d`` w.r.t. x (a transposed convolution of ``grad`` by ``w``)."""
        raise NotImplementedError

    @rule(lambda grad, x, weight_shape, *_: Meta(tuple(weight_shape), grad.dtype))
    def conv2d_backward_weight(self, grad: Buffer, x: Buffer, weight_shape: Shape,
                               stride: tuple, padding: tuple, dilation: tuple,
                               groups: int) -> Buffer:
        """Gradient of ``conv2d`` w.r.t. w: ``grad`` correlated with the input ``x``."""
        raise NotImplementedError

    @rule(_max_pool2d)
    def max_pool2d(self, x: Buffer, kernel: tuple, stride: tuple, padding: tuple,
                   dilation: tuple, ceil_mode: bool) -> tuple[Buffer, Buffer]:
        """(values, indices): the max of each window of x (N, C, H, W) (padding counts as
        -inf) and its flat int64 index ``h * W + w`` in the input plane (PyTorch's)."""
        raise NotImplementedError

    @rule(lambda grad, indices, input_shape: Meta(tuple(input_shape), grad.dtype))
    def max_pool2d_backward(self, grad: Buffer, indices: Buffer, input_shape: Shape) -> Buffer:
        """Zeros of ``input_shape`` with ``grad`` added at ``indices`` of each plane."""
        raise NotImplementedError

    @rule(lambda x, kernel, stride, padding, ceil_mode, *_: _pool(
        x, kernel, stride, padding, (1, 1), ceil_mode))
    def avg_pool2d(self, x: Buffer, kernel: tuple, stride: tuple, padding: tuple,
                   ceil_mode: bool, count_include_pad: bool,
                   divisor_override: int | None) -> Buffer:
        """The mean of each window of x (N, C, H, W), with PyTorch's divisor rules."""
        raise NotImplementedError

    @rule(lambda grad, input_shape, *_: Meta(tuple(input_shape), grad.dtype))
    def avg_pool2d_backward(self, grad: Buffer, input_shape: Shape, kernel: tuple,
                            stride: tuple, padding: tuple, ceil_mode: bool,
                            count_include_pad: bool, divisor_override: int | None) -> Buffer:
        """Gradient of ``avg_pool2d`` w.r.t. its input (each window spreads its share)."""
        raise NotImplementedError

    @rule(lambda x, weight, bias, n_axes, eps: (_same(x), _norm_stats(x, n_axes),
                                                       _norm_stats(x, n_axes)))
    def layer_norm(self, x: Buffer, weight: Buffer | None, bias: Buffer | None,
                   n_axes: int, eps: float) -> tuple[Buffer, Buffer, Buffer]:
        """(y, mean, rstd): x normalised over its last ``n_axes`` axes, then ``* weight +
        bias``; mean and 1/sqrt(var + eps) keep the reduced axes with size 1."""
        raise NotImplementedError

    @rule(_layer_norm_backward)
    def layer_norm_backward(self, g: Buffer, x: Buffer, weight: Buffer | None, mean: Buffer,
                            rstd: Buffer, n_axes: int) -> tuple[Buffer, Buffer, Buffer]:
        """(dx, dweight, dbias) of ``layer_norm`` for the output gradient ``g``, given the
        saved ``mean``/``rstd`` (dweight is None without weight)."""
        raise NotImplementedError

    @rule(lambda x, weight, n_axes, eps: (_same(x), _norm_stats(x, n_axes)))
    def rms_norm(self, x: Buffer, weight: Buffer | None, n_axes: int,
                 eps: float) -> tuple[Buffer, Buffer]:
        """(y, rstd): ``x / sqrt(mean(x**2) + eps) * weight`` over the last ``n_axes`` axes."""
        raise NotImplementedError

    @rule(lambda x: (Meta((x.shape[1],), x.dtype),) * 2)
    def batch_norm_stats(self, x: Buffer) -> tuple[Buffer, Buffer]:
        """(mean, biased var) of x (N, C, ...) per channel (axis 1), each of shape (C,)."""
        raise NotImplementedError

    @rule(_same)
    def batch_norm(self, x: Buffer, weight: Buffer | None, bias: Buffer | None,
                   mean: Buffer, var: Buffer, eps: float) -> Buffer:
        """``(x - mean) / sqrt(var + eps) * weight + bias`` with per-channel (axis 1)
        statistics and affine parameters of shape (C,)."""
        raise NotImplementedError

    @rule(lambda x, target, weight, ignore_index, label_smoothing: (
        Meta(x.shape[:1], x.dtype), _same(x), Meta(x.shape[:1], x.dtype)))
    def cross_entropy(self, x: Buffer, target: Buffer, weight: Buffer | None,
                      ignore_index: int,
                      label_smoothing: float) -> tuple[Buffer, Buffer, Buffer]:
        """(loss, probs, counted) for logits x (M, C): ``target`` holds class indices (M,)
        int64 or class probabilities (M, C). ``loss`` (M,) is each row's weighted,
        label-smoothed cross-entropy (0 where target == ignore_index); ``probs`` is
        softmax(x); ``counted`` (M,) is the weight of each row's target class (1 without
        weights, 0 for ignored rows, 1 for probability targets): 'mean' divides by its sum."""
        raise NotImplementedError

    @rule(_same)
    def cross_entropy_backward(self, probs: Buffer, target: Buffer, weight: Buffer | None,
                               scale: Buffer, ignore_index: int,
                               label_smoothing: float) -> Buffer:
        """d loss / d x (M, C) of ``cross_entropy``, each row times ``scale`` ((M,) or ()):
        ``(probs * sum(q) - q) * scale`` with q the row's weighted, smoothed target."""
        raise NotImplementedError

    @rule(_attention)
    def scaled_dot_product_attention(self, q: Buffer, k: Buffer, v: Buffer,
                                     mask: Buffer | None, scale: float, is_causal: bool,
                                     keep: Buffer | None) -> tuple[Buffer, Buffer]:
        """(out, probs): ``probs = softmax(q @ k^T * scale + mask)`` over the last axis
        (a bool mask keeps True positions, ``is_causal`` keeps key j <= query i; rows with
        nothing kept are 0), ``out = (probs * keep) @ v`` (``keep``: dropout mask already
        scaled by 1/(1-p), or None). q (..., L, E), k (..., S, E), v (..., S, Ev)."""
        raise NotImplementedError

    @rule(_selective_scan)
    def selective_scan(self, u: Buffer, delta: Buffer, A: Buffer, B: Buffer, C: Buffer,
                       D: Buffer | None, z: Buffer | None, delta_bias: Buffer | None,
                       delta_softplus: bool) -> tuple[Buffer, Buffer]:
        """(y, last_state): Mamba's selective scan (``mamba_ssm``'s layout and meaning).
        u, delta, z (b, d, L); A (d, N); B, C (b, N, L), or (b, G, N, L) where channel i
        reads group ``i // (d // G)``; D, delta_bias (d,). ``delta += delta_bias``, then
        ``delta = softplus(delta)`` if ``delta_softplus``; with x[-1] = 0::

            x[t] = exp(delta[t] * A) * x[t-1] + delta[t] * u[t] * B[t]    (b, d, N)
            y[t] = sum_N x[t] * C[t] + D * u[t];   y *= silu(z)

        last_state = x[L-1] (b, d, N). Results in u's dtype (half types compute in float32);
        optional inputs may be None."""
        raise NotImplementedError

    @rule(_selective_scan_backward)
    def selective_scan_backward(self, grad: Buffer, grad_last: Buffer | None, u: Buffer,
                                delta: Buffer, A: Buffer, B: Buffer, C: Buffer,
                                D: Buffer | None, z: Buffer | None, delta_bias: Buffer | None,
                                delta_softplus: bool) -> tuple:
        """(du, ddelta, dA, dB, dC, dD, dz, ddelta_bias) of ``selective_scan`` for the output
        gradient ``grad`` (b, d, L) and the last state's gradient ``grad_last`` (b, d, N) or
        None; None for absent optional inputs; each in its input's shape and dtype. The
        states x are recomputed from the inputs (chunk by chunk), not saved by forward."""
        raise NotImplementedError

    # --- optimizer primitives
    @rule(lambda param, grad, exp_avg, exp_avg_sq, *_: None,
          mutates=("param", "exp_avg", "exp_avg_sq"))
    def adamw_step(self, param: Buffer, grad: Buffer, exp_avg: Buffer, exp_avg_sq: Buffer,
                   lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                   step: int) -> None:
        """One AdamW update, in place on ``param``, ``exp_avg`` and ``exp_avg_sq`` (same
        shape and dtype; ``grad`` is only read). ``step`` counts from 1; a zero
        ``weight_decay`` gives plain Adam (L2 decay is then added to ``grad`` by the caller)::

            param      *= 1 - lr * weight_decay
            exp_avg    += (grad - exp_avg) * (1 - beta1)
            exp_avg_sq  = exp_avg_sq * beta2 + grad * grad * (1 - beta2)
            denom       = sqrt(exp_avg_sq) / sqrt(1 - beta2**step) + eps
            param      -= lr / (1 - beta1**step) * exp_avg / denom
        """
        raise NotImplementedError

    # --- graph mode
    @rule(lambda program, operands: program.result_type(operands))
    def fused_elementwise(self, program: Any, operands: Sequence[Buffer | float]) -> Buffer:
        """Several elementwise primitives run as one call: ``program`` (a
        ``lightgrad.graph.passes.program.Program``, made by graph mode's fusion pass) lists
        steps over ``operands`` and earlier steps' results; the result is the last step's.
        This default runs the steps one by one through the backend's own primitives; a
        backend may run them in one go (the CPU backend: NumPy ``out=`` buffers)."""
        return program.run(self, operands)
