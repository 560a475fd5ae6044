"""The Tensor: an n-dimensional array on a device, with PyTorch's methods and autograd.

A Tensor holds a backend buffer (a NumPy array on the CPU) and, when it was computed by a
recorded op, the ``grad_fn`` node that made it. Every method that computes something calls
a ``Function`` from ``lightgrad.ops``; methods here only check arguments and route.

>>> import lightgrad as lg
>>> x = lg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> y = (x @ x.T).relu().sum()
>>> y.backward()
>>> x.grad
tensor([[ 8., 12.],
        [ 8., 12.]])
"""
from __future__ import annotations

import math
from collections import namedtuple
from numbers import Number
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import dtypes
from .autograd import UNRECORDED, _grad_enabled
from .backends import Device, device as as_device

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])
_DTYPE_OF_NUMPY = dtypes._BY_NUMPY
_FLOAT_NUMPY = dtypes.FLOAT_NUMPY_DTYPES
_ALL_AXES = [tuple(range(n)) for n in range(8)]  # every axis of an n-dim tensor
_new = object.__new__


def _shape_args(op: str, shape: Sequence[Any]) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` like PyTorch; validate the sizes."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    for n in shape:
        if type(n) is not int:
            break
    else:  # the common case: plain ints
        return tuple(shape)
    out = []
    for n in shape:
        if isinstance(n, Tensor):
            n = n.item()
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"{op}: sizes must be ints, got {type(n).__name__} in "
                            f"{tuple(shape)}")
        out.append(int(n))
    return tuple(out)


class Tensor:
    """An n-dimensional array with autograd; create one with ``lightgrad.tensor(data)``.

    >>> import lightgrad as lg
    >>> lg.Tensor([1, 2]).dtype
    lightgrad.int64
    """

    __slots__ = ("_data", "device", "requires_grad", "grad", "grad_fn", "_output_nr",
                 "_version", "_hooks", "_base", "__weakref__", "__dict__")
    __hash__ = object.__hash__

    def __init__(self, data: Any = (), dtype: Any = None, device: Any = None,
                 requires_grad: bool = False):
        made = tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
        self._data, self.device = made._data, made.device
        self.requires_grad, self.grad, self.grad_fn = made.requires_grad, None, None
        self._output_nr, self._version, self._hooks, self._base = 0, [0], None, None

    @staticmethod
    def _from_buffer(buf: Any, device: Device, version: list | None = None,
                     base: tuple | None = None) -> "Tensor":
        """A tensor on ``buf``; a view passes the version counter it shares and its base."""
        t = _new(Tensor)
        t._data = buf
        t.device = device
        t.requires_grad = False
        t.grad = None
        t.grad_fn = None
        t._output_nr = 0
        t._version = [0] if version is None else version
        t._hooks = None
        t._base = base
        return t

    @staticmethod
    def _full_like_meta(t: "Tensor", value: float) -> "Tensor":
        return Tensor._from_buffer(t.device.backend.full(t.shape, value, t.dtype.np), t.device)

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return len(self._data.shape)

    @property
    def dtype(self) -> dtypes.DType:
        found = _DTYPE_OF_NUMPY.get(self._data.dtype)  # one dict lookup on the hot path
        return found if found is not None else dtypes.from_numpy_dtype(self._data.dtype)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> "Tensor":
        if self.ndim < 2:
            raise RuntimeError(f"mT: tensor of shape {self.shape} has fewer than 2 dims")
        return self.transpose(-2, -1)

    @property
    def data(self) -> "Tensor":
        """This tensor's numbers outside the graph (shares memory)."""
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data, self.device = value._data, value.device
        self._version[0] += 1

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    # PyTorch's other device and layout flags: lightgrad has none of these kinds.
    is_xpu = property(lambda self: False)
    is_mps = property(lambda self: False)
    is_meta = property(lambda self: False)
    is_sparse = property(lambda self: False)
    is_quantized = property(lambda self: False)

    def size(self, dim: int | None = None) -> Any:
        if dim is None:
            return self.shape
        return self.shape[self._dim("size", dim)]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(math.prod(self.shape))

    nelement = numel

    def element_size(self) -> int:
        return self._data.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def _dim(self, op: str, dim: int) -> int:
        return norm_dim(op, dim, self.ndim, self.shape)

    def _dims(self, op: str, dim: Any) -> tuple[int, ...]:
        return norm_dims(op, dim, self.ndim, self.shape)

    # ------------------------------------------------------------------ conversion
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The values as a NumPy array (shares memory on the CPU)."""
        if self.requires_grad and not force:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy()")
        return self.device.backend.to_numpy(self._data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.device.backend.to_numpy(self._data)
        return arr.astype(dtype) if dtype is not None else arr

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self._data.__dlpack_device__()

    def item(self) -> Any:
        if self.numel() != 1:
            raise RuntimeError(f"item: a tensor with {self.numel()} elements (shape "
                               f"{self.shape}) cannot be converted to a Python number")
        return self.device.backend.to_numpy(self._data).reshape(()).item()

    def tolist(self) -> Any:
        arr = self.device.backend.to_numpy(self._data)
        if not self.dtype.is_floating_point or arr.dtype in (np.float32, np.float64):
            return arr.tolist()
        return arr.astype(np.float32).tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to "
                            f"an index, got {self.dtype.name} of shape {self.shape}")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of a tensor with {self.numel()} values (shape "
                               f"{self.shape}) is ambiguous; use .any() or .all()")
        return bool(self.item())

    def __iter__(self) -> Iterator["Tensor"]:
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self) -> str:
        return format_tensor(self)

    def __format__(self, spec: str) -> str:
        """``format(t, '+.2f')`` formats the number of a one-element tensor (a 0-d one also
        with the empty spec, like PyTorch); other tensors accept only the empty spec (``str``).

        >>> import lightgrad as lg
        >>> f"{lg.tensor(2.5):+.2f} {lg.tensor(2.5)}"
        '+2.50 2.5'
        """
        if self.numel() == 1 and (spec or self.ndim == 0):
            return format(self.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string {spec!r} passed to Tensor.__format__ "
                            f"(only one-element tensors take a format spec; got shape "
                            f"{tuple(self.shape)})")
        return str(self)

    def detach(self) -> "Tensor":
        """A tensor sharing this one's memory, cut from the graph."""
        return Tensor._from_buffer(self._data, self.device, self._version)

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self) -> "Tensor":
        return Copy.apply(self)

    def contiguous(self) -> "Tensor":
        return Copy.apply(self, True)

    def is_contiguous(self) -> bool:
        return self.device.backend.is_contiguous(self._data)

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """Convert dtype and/or device: ``t.to("cpu")``, ``t.to(lg.float16)``, ``t.to(other)``.

        >>> import lightgrad as lg
        >>> lg.ones(2).to(lg.int32)
        tensor([1, 1], dtype=lightgrad.int32)
        """
        if len(args) == 1 and not kwargs and type(args[0]) is dtypes.DType:
            # the common case, t.to(dtype): nothing to parse
            return self if args[0] is self.dtype else Cast.apply(self, args[0])
        dtype, dev = kwargs.pop("dtype", None), kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype, dev = a.dtype, a.device
            elif isinstance(a, (str, Device)) and not (isinstance(a, str) and
                                                        a in dtypes.BY_NAME):
                dev = a
            else:
                dtype = a
        out = self
        if dev is not None and as_device(dev) is not self.device:
            out = ToDevice.apply(out, as_device(dev))
        if dtype is not None and dtypes.as_dtype(dtype) is not out.dtype:
            out = Cast.apply(out, dtypes.as_dtype(dtype))
        if copy and out is self:
            out = self.clone()
        return out

    def type(self, dtype: Any = None) -> Any:
        if dtype is None:
            return f"lightgrad.{self.dtype.name}"
        return self.to(dtype)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def float(self) -> "Tensor":
        return self.to(dtypes.float32)

    def double(self) -> "Tensor":
        return self.to(dtypes.float64)

    def half(self) -> "Tensor":
        return self.to(dtypes.float16)

    def bfloat16(self) -> "Tensor":
        return self.to(dtypes.bfloat16)

    def int(self) -> "Tensor":
        return self.to(dtypes.int32)

    def long(self) -> "Tensor":
        return self.to(dtypes.int64)

    def bool(self) -> "Tensor":
        return self.to(dtypes.bool_)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(f"requires_grad_: only floating-point tensors can require "
                               f"gradients, got {self.dtype.name}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_: can't turn off requires_grad on a non-leaf "
                               "tensor; use detach()")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        >>> import lightgrad as lg
        >>> w = lg.tensor([2.0], requires_grad=True)
        >>> (w * w).sum().backward(); w.grad
        tensor([4.])
        """
        from .autograd import backward
        if inputs is not None:
            from .autograd import grad as grad_fn
            ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            grads = grad_fn(self, ins, gradient, retain_graph, create_graph, allow_unused=True)
            for t, g in zip(ins, grads):
                if g is not None:
                    t.grad = g if t.grad is None else t.grad + g
            return
        backward(self, gradient, retain_graph, create_graph)

    def register_hook(self, hook: Callable[["Tensor"], "Tensor | None"]) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle with ``remove()``.

        >>> import lightgrad as lg
        >>> x = lg.ones(2, requires_grad=True)
        >>> _ = x.register_hook(lambda g: g * 10)
        >>> x.sum().backward(); x.grad
        tensor([10., 10.])
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            node = self.grad_fn
            if node._output_hooks is None:
                node._output_hooks = {}
            hooks = node._output_hooks.setdefault(self._output_nr, [])
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    _post_accumulate_grad_hooks: list | None = None

    def register_post_accumulate_grad_hook(self, hook: Callable[["Tensor"], None]) -> Any:
        """Call ``hook(self)`` on a leaf once backward has accumulated its gradient into
        ``.grad`` (PyTorch's name; DistributedDataParallel starts reducing there). Returns a
        handle with ``remove()``.

        >>> import lightgrad as lg
        >>> w = lg.ones(2, requires_grad=True)
        >>> _ = w.register_post_accumulate_grad_hook(lambda t: print(t.grad))
        >>> (w * 3).sum().backward()
        tensor([3., 3.])
        """
        if not self.requires_grad or self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors that "
                               "require grad accumulate a .grad")
        if self._post_accumulate_grad_hooks is None:
            self._post_accumulate_grad_hooks = []
        self._post_accumulate_grad_hooks.append(hook)
        return _HookHandle(self._post_accumulate_grad_hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is None:
            return

        def keep(g: "Tensor") -> None:
            self.grad = g.detach() if self.grad is None else self.grad + g.detach()
        self.register_hook(keep)

    # ------------------------------------------------------------------ elementwise
    def neg(self) -> "Tensor":
        return elementwise.Neg.apply(self)

    def abs(self) -> "Tensor":
        return elementwise.Abs.apply(self)

    def exp(self) -> "Tensor":
        if _grad_enabled[0] and self.requires_grad:
            return _exp(self)
        return _exp_fwd(UNRECORDED, self)

    def log(self) -> "Tensor":
        return elementwise.Log.apply(self)

    def sqrt(self) -> "Tensor":
        return elementwise.Sqrt.apply(self)

    def rsqrt(self) -> "Tensor":
        return elementwise.Rsqrt.apply(self)

    def sin(self) -> "Tensor":
        return elementwise.Sin.apply(self)

    def cos(self) -> "Tensor":
        return elementwise.Cos.apply(self)

    def tanh(self) -> "Tensor":
        return elementwise.Tanh.apply(self)

    def sigmoid(self) -> "Tensor":
        return elementwise.Sigmoid.apply(self)

    def relu(self) -> "Tensor":
        if _grad_enabled[0] and self.requires_grad:
            return _relu(self)
        return _relu_fwd(UNRECORDED, self)

    def gelu(self, approximate: str = "none") -> "Tensor":
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        fn = elementwise.Gelu if approximate == "none" else elementwise.GeluTanh
        if _grad_enabled[0] and self.requires_grad:
            return fn.apply(self)
        return fn.forward(UNRECORDED, self)

    def silu(self) -> "Tensor":
        return elementwise.Silu.apply(self)

    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> "Tensor":
        scaled = self * beta if beta != 1 else self
        soft = elementwise.Softplus.apply(scaled)
        soft = soft / beta if beta != 1 else soft
        return self.where(scaled > threshold, soft) if threshold is not None else soft

    def erf(self) -> "Tensor":
        return elementwise.Erf.apply(self)

    def reciprocal(self) -> "Tensor":
        return elementwise.Reciprocal.apply(self)

    def sign(self) -> "Tensor":
        return elementwise.Sign.apply(self)

    def floor(self) -> "Tensor":
        return elementwise.Floor.apply(self)

    def ceil(self) -> "Tensor":
        return elementwise.Ceil.apply(self)

    def round(self) -> "Tensor":
        return elementwise.Round.apply(self)

    def logical_not(self) -> "Tensor":
        return elementwise.LogicalNot.apply(self)

    def square(self) -> "Tensor":
        return self * self

    def log1p(self) -> "Tensor":
        return (self + 1).log()

    def clamp(self, min: float | None = None, max: float | None = None) -> "Tensor":
        return Clamp.apply(self, _number(min), _number(max))

    clip = clamp

    def _binary(self, name: str, other: Any, reverse: bool = False) -> "Tensor":
        fn = getattr(elementwise, name)
        return fn.apply(other, self) if reverse else fn.apply(self, other)

    def add(self, other: Any, alpha: float = 1) -> "Tensor":
        return self._binary("Add", other if alpha == 1 else other * alpha)

    def sub(self, other: Any, alpha: float = 1) -> "Tensor":
        return self._binary("Sub", other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> "Tensor":
        return self._binary("Mul", other)

    def div(self, other: Any) -> "Tensor":
        return self._binary("Div", other)

    def pow(self, exponent: Any) -> "Tensor":
        return self._binary("Pow", exponent)

    def maximum(self, other: "Tensor") -> "Tensor":
        return self._binary("Maximum", other)

    def minimum(self, other: "Tensor") -> "Tensor":
        return self._binary("Minimum", other)

    def eq(self, other: Any) -> "Tensor":
        return self._binary("Eq", other)

    def ne(self, other: Any) -> "Tensor":
        return self._binary("Ne", other)

    def lt(self, other: Any) -> "Tensor":
        return self._binary("Lt", other)

    def le(self, other: Any) -> "Tensor":
        return self._binary("Le", other)

    def gt(self, other: Any) -> "Tensor":
        return self._binary("Gt", other)

    def ge(self, other: Any) -> "Tensor":
        return self._binary("Ge", other)

    def logical_and(self, other: "Tensor") -> "Tensor":
        return self._binary("LogicalAnd", other)

    def logical_or(self, other: "Tensor") -> "Tensor":
        return self._binary("LogicalOr", other)

    def logical_xor(self, other: "Tensor") -> "Tensor":
        return self._binary("LogicalXor", other)

    def where(self, condition: "Tensor", other: Any) -> "Tensor":
        """``self`` where ``condition`` else ``other`` (PyTorch's ``x.where(cond, y)``)."""
        return Where.apply(condition, self, other)

    def masked_fill(self, mask: "Tensor", value: Any) -> "Tensor":
        if not isinstance(mask, Tensor) or mask.dtype is not dtypes.bool_:
            raise TypeError(f"masked_fill: mask must be a bool tensor, got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if isinstance(value, Tensor):
            if value.ndim:
                raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got "
                                 f"shape {value.shape}")
            value = value.to(self.dtype)
        else:
            value = _number(value)
        out = Where.apply(mask, value, self)
        return out if out.dtype is self.dtype else out.to(self.dtype)

    # __add__, __sub__, __mul__, __truediv__: made by _binary_method at the end of the module
    __pow__ = pow
    __neg__ = neg
    __abs__ = abs
    __eq__ = eq  # type: ignore[assignment]
    __ne__ = ne  # type: ignore[assignment]
    __lt__ = lt
    __le__ = le
    __gt__ = gt
    __ge__ = ge

    def __radd__(self, other: Any) -> "Tensor":
        return self._binary("Add", other, reverse=True)

    def __rsub__(self, other: Any) -> "Tensor":
        return self._binary("Sub", other, reverse=True)

    def __rmul__(self, other: Any) -> "Tensor":
        return self._binary("Mul", other, reverse=True)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return self._binary("Div", other, reverse=True)

    def __rpow__(self, other: Any) -> "Tensor":
        return self._binary("Pow", other, reverse=True)

    def _logical(self, name: str, other: Any) -> "Tensor":
        if self.dtype is not dtypes.bool_ or getattr(other, "dtype", dtypes.bool_) \
                is not dtypes.bool_:
            raise TypeError(f"{name}: bitwise operators are supported on bool tensors only, "
                            f"got {self.dtype.name} and {getattr(other, 'dtype', other)}")
        return self._binary(name, other)

    def __and__(self, other: Any) -> "Tensor":
        return self._logical("LogicalAnd", other)

    def __or__(self, other: Any) -> "Tensor":
        return self._logical("LogicalOr", other)

    def __xor__(self, other: Any) -> "Tensor":
        return self._logical("LogicalXor", other)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> "Tensor":
        if self.dtype is not dtypes.bool_:
            raise TypeError(f"~: supported on bool tensors only, got {self.dtype.name}")
        return self.logical_not()

    # ------------------------------------------------------------------ reductions
    def sum(self, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> "Tensor":
        if dim is None:
            ndim = len(self._data.shape)
            axes = _ALL_AXES[ndim] if ndim < 8 else tuple(range(ndim))
        else:
            axes = self._dims("sum", dim if dim != () and dim != [] else None)  # () = all
        if dtype is not None:
            dtype = dtypes.as_dtype(dtype).np
        elif self._data.dtype not in _FLOAT_NUMPY:
            dtype = np.int64
        if _grad_enabled[0] and self.requires_grad:
            return _sum(self, axes, keepdim, dtype)
        return _sum_fwd(UNRECORDED, self, axes, keepdim, dtype)

    def mean(self, dim: Any = None, keepdim: bool = False) -> "Tensor":
        if not self.dtype.is_floating_point:
            raise TypeError(f"mean: input dtype must be floating point, got {self.dtype.name}")
        return Mean.apply(self, self._dims("mean", dim), keepdim)

    def prod(self, dim: int | None = None, keepdim: bool = False) -> "Tensor":
        dtype = None if self.dtype.is_floating_point else np.int64
        return Prod.apply(self, self._dims("prod", dim), keepdim, dtype)

    def amax(self, dim: Any = None, keepdim: bool = False) -> "Tensor":
        return Amax.apply(self, self._dims("amax", dim), keepdim)

    def amin(self, dim: Any = None, keepdim: bool = False) -> "Tensor":
        return Amin.apply(self, self._dims("amin", dim), keepdim)

    def _extreme(self, op: str, dim: Any, keepdim: bool) -> Any:
        if isinstance(dim, Tensor):
            return self.maximum(dim) if op == "max" else self.minimum(dim)
        if dim is None:
            return self.amax() if op == "max" else self.amin()
        d = self._dim(op, dim)
        if self.ndim == 0:  # a 0-d tensor is its own extreme, at index 0
            return self.reshape(1)._extreme(op, 0, False)
        if self.shape and self.shape[d] == 0:
            raise IndexError(f"{op}: cannot reduce over dim {dim} of size 0 (shape "
                             f"{self.shape})")
        indices = self.argmax(d, keepdim=True) if op == "max" else self.argmin(d, True)
        values = self.gather(d, indices)
        if not keepdim:
            values, indices = values.squeeze(d), indices.squeeze(d)
        return ValuesIndices(values, indices)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        """The largest value; with ``dim``, ``(values, indices)`` along that dim."""
        return self._extreme("max", dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        """The smallest value; with ``dim``, ``(values, indices)`` along that dim."""
        return self._extreme("min", dim, keepdim)

    def _arg(self, op: str, dim: int | None, keepdim: bool) -> "Tensor":
        axis = None if dim is None else self._dim(op, dim)
        if self.numel() == 0:
            raise RuntimeError(f"{op}: cannot reduce an empty tensor of shape {self.shape}")
        buf = getattr(self.device.backend, op)(self._data, axis, keepdim)
        return Tensor._from_buffer(buf, self.device)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> "Tensor":
        return self._arg("argmax", dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> "Tensor":
        return self._arg("argmin", dim, keepdim)

    def var(self, dim: Any = None, correction: float = 1, keepdim: bool = False,
            unbiased: bool | None = None) -> "Tensor":
        if unbiased is not None:
            correction = 1 if unbiased else 0
        axes = self._dims("var", dim)
        count = math.prod(self.shape[a] for a in axes)
        centered = self - self.mean(axes, keepdim=True)
        return (centered * centered).sum(axes, keepdim=keepdim) / max(count - correction, 0)

    def std(self, dim: Any = None, correction: float = 1, keepdim: bool = False,
            unbiased: bool | None = None) -> "Tensor":
        return self.var(dim, correction, keepdim, unbiased).sqrt()

    def logsumexp(self, dim: Any, keepdim: bool = False) -> "Tensor":
        axes = self._dims("logsumexp", dim)
        peak = self.detach().amax(axes, keepdim=True)
        peak = peak.masked_fill(peak.abs() == math.inf, 0.0)
        out = (self - peak).exp().sum(axes, keepdim=True).log() + peak
        return out if keepdim else out.squeeze(axes)

    def norm(self, p: float = 2, dim: Any = None, keepdim: bool = False) -> "Tensor":
        if p == math.inf:
            return self.abs().amax(dim, keepdim=keepdim)
        total = (self * self if p == 2 else self.abs() ** p).sum(dim, keepdim=keepdim)
        # the root has an infinite slope at 0; like torch, a zero norm gets gradient 0
        zero = total == 0
        root = total.masked_fill(zero, 1.0)
        root = root.sqrt() if p == 2 else root ** (1.0 / p)
        return root.masked_fill(zero, 0.0)

    def all(self, dim: Any = None, keepdim: bool = False) -> "Tensor":
        buf = self.device.backend.all(self._data, self._dims("all", dim), keepdim)
        return Tensor._from_buffer(buf, self.device)

    def any(self, dim: Any = None, keepdim: bool = False) -> "Tensor":
        buf = self.device.backend.any(self._data, self._dims("any", dim), keepdim)
        return Tensor._from_buffer(buf, self.device)

    def cumsum(self, dim: int) -> "Tensor":
        x = self if self.dtype.is_floating_point else self.long()
        axis = self._dim("cumsum", dim)
        if x.ndim == 0:  # a 0-d tensor is its own cumulative sum
            return x.reshape(1).cumsum(0).reshape(())
        return Cumsum.apply(x, axis)

    # ------------------------------------------------------------------ movement
    def reshape(self, *shape: Any) -> "Tensor":
        if len(shape) == 1 and type(shape[0]) is tuple:
            shape = shape[0]
        for n in shape:
            if type(n) is not int or n < 0:
                break
        else:  # the common case: plain sizes, no -1
            if math.prod(shape) == self._data.size:
                if _grad_enabled[0] and self.requires_grad:
                    return _reshape(self, shape)
                return _reshape_fwd(UNRECORDED, self, shape)
        shape = _shape_args("reshape", shape)
        return Reshape.apply(self, _infer_shape("reshape", shape, self))

    def view(self, *shape: Any) -> "Tensor":
        """This tensor's memory read at another shape: always a view (writes show through
        to this tensor), or a RuntimeError when the strides don't allow one (then use
        ``reshape``, which may copy).

        >>> import lightgrad as lg
        >>> lg.arange(6).view(2, -1).shape
        (2, 3)
        """
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
            return bitcast(self, dtypes.as_dtype(shape[0]))  # view(dtype): same bytes
        shape = _infer_shape("view", _shape_args("view", shape), self)
        check_viewable(self, shape)
        return Reshape.apply(self, shape)

    def view_as(self, other: "Tensor") -> "Tensor":
        return self.view(other.shape)

    def reshape_as(self, other: "Tensor") -> "Tensor":
        return self.reshape(other.shape)

    def stride(self, dim: int | None = None) -> Any:
        """The step in elements between neighbours along each dim (or along ``dim``).

        >>> import lightgrad as lg
        >>> lg.zeros(2, 3).t().stride()
        (1, 3)
        """
        strides = element_strides(self._data)
        if strides is None:
            strides = contiguous_strides(self.shape)
        return strides if dim is None else strides[self._dim("stride", dim)]

    def permute(self, *dims: Any) -> "Tensor":
        dims = _shape_args("permute", dims)
        axes = tuple(self._dim("permute", d) for d in dims)
        if sorted(axes) != list(range(self.ndim)):
            raise RuntimeError(f"permute: dims {dims} are not a permutation of the "
                               f"{self.ndim} dims of a tensor of shape {self.shape}")
        return Permute.apply(self, axes)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        ndim = len(self._data.shape)
        axes = list(range(ndim))
        a, b = self._dim("transpose", dim0), self._dim("transpose", dim1)
        if ndim < 2:
            return self
        axes[a], axes[b] = axes[b], axes[a]
        return Permute.apply(self, tuple(axes))  # a valid permutation by construction

    swapaxes = transpose

    def t(self) -> "Tensor":
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dims, got shape {self.shape}")
        return self.T

    def expand(self, *sizes: Any) -> "Tensor":
        sizes = _shape_args("expand", sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(f"expand: the number of sizes {len(sizes)} must be at least "
                               f"the tensor's dims {self.ndim} (shape {self.shape})")
        lead = len(sizes) - self.ndim
        target = []
        for i, n in enumerate(sizes):
            have = self.shape[i - lead] if i >= lead else None
            if n == -1:
                if have is None:
                    raise RuntimeError(f"expand: -1 is not allowed in a new leading dim "
                                       f"(sizes {sizes})")
                n = have
            if have is not None and have != 1 and have != n:
                raise RuntimeError(f"expand: the size {have} of dim {i - lead} of a tensor of "
                                   f"shape {self.shape} cannot expand to {n} (sizes {sizes})")
            target.append(n)
        target = tuple(target)
        return self if target == self.shape else Expand.apply(self, target)

    def expand_as(self, other: "Tensor") -> "Tensor":
        return self.expand(other.shape)

    def broadcast_to(self, shape: Sequence[int]) -> "Tensor":
        return self.expand(tuple(shape))

    def squeeze(self, dim: Any = None) -> "Tensor":
        axes = self._dims("squeeze", dim) if dim is not None else tuple(
            i for i, n in enumerate(self.shape) if n == 1)
        shape = tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1))
        return self if shape == self.shape else self.reshape(shape)

    def unsqueeze(self, dim: int) -> "Tensor":
        d = norm_dim("unsqueeze", dim, self.ndim + 1, self.shape)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        if self.ndim == 0:
            return self.reshape(1)
        s, e = self._dim("flatten", start_dim), self._dim("flatten", end_dim)
        if s > e:
            raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1:])

    def unflatten(self, dim: int, sizes: Sequence[int]) -> "Tensor":
        d = self._dim("unflatten", dim)
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def split(self, split_size: Any, dim: int = 0) -> tuple["Tensor", ...]:
        d = self._dim("split", dim)
        n = self.shape[d]
        if isinstance(split_size, (int, np.integer)):
            if split_size <= 0:
                raise ValueError(f"split: split_size must be positive, got {split_size}")
            sizes = [min(split_size, n - i) for i in range(0, n, split_size)] or [0]
        else:
            sizes = list(split_size)
            if sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} sum to {sum(sizes)} but dim {dim} of "
                                 f"shape {self.shape} has size {n}")
        return Split.apply(self, tuple(sizes), d)

    def chunk(self, chunks: int, dim: int = 0) -> tuple["Tensor", ...]:
        if chunks <= 0:
            raise RuntimeError(f"chunk: chunks must be greater than 0, got {chunks}")
        n = self.shape[self._dim("chunk", dim)]
        return self.split(max(1, -(-n // chunks)), dim)

    def unbind(self, dim: int = 0) -> tuple["Tensor", ...]:
        d = self._dim("unbind", dim)
        index = (slice(None),) * d
        return tuple(self[index + (i,)] for i in range(self.shape[d]))

    def narrow(self, dim: int, start: int, length: int) -> "Tensor":
        d = self._dim("narrow", dim)
        size = self.shape[d]
        if not -size <= start <= size:
            raise IndexError(f"narrow: start {start} is out of range [{-size}, {size}] for dim "
                             f"{dim} of shape {self.shape}")
        start = start + size if start < 0 else start
        if length < 0 or start + length > size:
            raise RuntimeError(f"narrow: start {start} + length {length} exceeds dim {dim} of "
                               f"size {size} (shape {self.shape})")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def flip(self, *dims: Any) -> "Tensor":
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return Flip.apply(self, self._dims("flip", list(dims)))

    def repeat(self, *sizes: Any) -> "Tensor":
        sizes = _shape_args("repeat", sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(f"repeat: got {len(sizes)} repeats for a tensor of shape "
                               f"{self.shape}; need at least {self.ndim}")
        return Tile.apply(self, sizes)

    def tril(self, diagonal: int = 0) -> "Tensor":
        self._need_matrix("tril")
        return Triangle.apply(self, diagonal, False)

    def triu(self, diagonal: int = 0) -> "Tensor":
        self._need_matrix("triu")
        return Triangle.apply(self, diagonal, True)

    def _need_matrix(self, op: str) -> None:
        if self.ndim < 2:
            raise RuntimeError(f"{op}: expects a tensor with at least 2 dims, got shape "
                               f"{self.shape}")

    def _index_arg(self, op: str, index: "Tensor") -> None:
        if not isinstance(index, Tensor) or index.dtype.is_floating_point or \
                index.dtype is dtypes.bool_:
            raise TypeError(f"{op}: index must be an integer tensor, got "
                            f"{getattr(index, 'dtype', type(index).__name__)}")
        if index.device is not self.device:
            raise RuntimeError(f"{op}: index is on {index.device} but the tensor is on "
                               f"{self.device}")

    def _check_bounds(self, op: str, index: "Tensor", size: int) -> None:
        if index.numel() and (int(index.amax().item()) >= size or
                              int(index.amin().item()) < -size):
            raise IndexError(f"{op}: index out of range: values must be in [{-size}, {size}) "
                             f"for a dim of size {size} (tensor of shape {self.shape})")

    def gather(self, dim: int, index: "Tensor") -> "Tensor":
        d = self._dim("gather", dim)
        self._index_arg("gather", index)
        if index.ndim != self.ndim or any(
                i != d and index.shape[i] > self.shape[i] for i in range(self.ndim)):
            raise RuntimeError(f"gather: index of shape {index.shape} does not fit a tensor "
                               f"of shape {self.shape} along dim {dim}")
        self._check_bounds("gather", index, self.shape[d])
        return Gather.apply(self, d, index.long())

    def scatter_add(self, dim: int, index: "Tensor", src: "Tensor") -> "Tensor":
        d = self._dim("scatter_add", dim)
        self._index_arg("scatter_add", index)
        if index.ndim != self.ndim or any(index.shape[i] > src.shape[i]
                                          for i in range(index.ndim)):
            raise RuntimeError(f"scatter_add: index of shape {index.shape} does not fit src "
                               f"of shape {src.shape} and self of shape {self.shape}")
        self._check_bounds("scatter_add", index, self.shape[d])
        return ScatterAdd.apply(self, d, index.long(), src.to(self.dtype))

    def index_select(self, dim: int, index: "Tensor") -> "Tensor":
        d = self._dim("index_select", dim)
        self._index_arg("index_select", index)
        self._check_bounds("index_select", index, self.shape[d])
        return IndexSelect.apply(self, d, index.long().reshape(-1))

    def index_add(self, dim: int, index: "Tensor", source: "Tensor",
                  alpha: float = 1) -> "Tensor":
        d = self._dim("index_add", dim)
        self._index_arg("index_add", index)
        self._check_bounds("index_add", index, self.shape[d])
        src = source if alpha == 1 else source * alpha
        want = self.shape[:d] + (index.numel(),) + self.shape[d + 1:]
        if src.shape != want:
            raise RuntimeError(f"index_add: source has shape {src.shape}, expected {want} for "
                               f"self of shape {self.shape} and {index.numel()} indices")
        return IndexAdd.apply(self, d, index.long().reshape(-1), src.to(self.dtype))

    def __getitem__(self, index: Any) -> "Tensor":
        if type(index) is slice and self._data.shape and (index.step is None or
                                                          index.step > 0):
            index = (index,)  # x[a:b]: nothing to convert
            if _grad_enabled[0] and self.requires_grad:
                return _getitem(self, index, True)
            return _getitem_fwd(UNRECORDED, self, index, True)
        if _plain_index(index, self._data.shape):  # x[:, -1, a:b]: nothing to convert
            if _grad_enabled[0] and self.requires_grad:
                return _getitem(self, index, True)
            return _getitem_fwd(UNRECORDED, self, index, True)
        idx, basic = convert_index(self, index)
        if basic and idx == ():
            return GetItem.apply(self, (Ellipsis,), True)
        return GetItem.apply(self, idx, basic)

    # ------------------------------------------------------------------ linalg and nn
    def matmul(self, other: "Tensor") -> "Tensor":
        if not isinstance(other, Tensor):
            raise TypeError(f"matmul: expected a Tensor, got {type(other).__name__}")
        shape_a, shape_b = self._data.shape, other._data.shape
        if len(shape_a) == 2 and len(shape_b) == 2 and shape_a[1] == shape_b[0]:
            # the common case: two matrices that fit
            if _grad_enabled[0] and (self.requires_grad or other.requires_grad):
                return _matmul(self, other)
            return _matmul_fwd(UNRECORDED, self, other)
        ndim_a, ndim_b = len(shape_a), len(shape_b)
        if ndim_a == 0 or ndim_b == 0:
            raise RuntimeError(f"matmul: both arguments need at least 1 dim, got shapes "
                               f"{self.shape} and {other.shape}")
        a = self.unsqueeze(0) if ndim_a == 1 else self
        b = other.unsqueeze(-1) if ndim_b == 1 else other
        shape_a, shape_b = a._data.shape, b._data.shape
        if shape_a[-1] != shape_b[-2]:
            raise RuntimeError(f"matmul: shapes {self.shape} and {other.shape} do not align: "
                               f"{shape_a[-1]} != {shape_b[-2]}")
        if (len(shape_a) > 2 or len(shape_b) > 2) and shape_a[:-2] != shape_b[:-2]:
            try:
                np.broadcast_shapes(shape_a[:-2], shape_b[:-2])
            except ValueError:
                raise RuntimeError(f"matmul: batch dims of shapes {self.shape} and "
                                   f"{other.shape} do not broadcast") from None
        out = MatMul.apply(a, b)
        if ndim_b == 1:
            out = out.squeeze(-1)
        if ndim_a == 1:
            out = out.squeeze(-2 if ndim_b > 1 else -1)
        return out

    __matmul__ = matmul

    def __rmatmul__(self, other: Any) -> "Tensor":
        return tensor(other).matmul(self)

    def mm(self, mat2: "Tensor") -> "Tensor":
        return linalg_extra.mm(self, mat2)

    def bmm(self, mat2: "Tensor") -> "Tensor":
        return linalg_extra.bmm(self, mat2)

    def mv(self, vec: "Tensor") -> "Tensor":
        return linalg_extra.mv(self, vec)

    def outer(self, vec2: "Tensor") -> "Tensor":
        return linalg_extra.outer(self, vec2)

    def addmm(self, mat1: "Tensor", mat2: "Tensor", *, beta: Any = 1,
              alpha: Any = 1) -> "Tensor":
        return linalg_extra.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def baddbmm(self, batch1: "Tensor", batch2: "Tensor", *, beta: Any = 1,
                alpha: Any = 1) -> "Tensor":
        return linalg_extra.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    # ------------------------------------------------------------------ floor division
    def floor_divide(self, other: Any) -> "Tensor":
        return division.floor_divide(self, other)

    def remainder(self, other: Any) -> "Tensor":
        return division.remainder(self, other)

    def fmod(self, other: Any) -> "Tensor":
        return division.fmod(self, other)

    __floordiv__ = floor_divide
    __mod__ = remainder

    def __rfloordiv__(self, other: Any) -> "Tensor":
        return division.floor_divide(other, self)

    def __rmod__(self, other: Any) -> "Tensor":
        return division.remainder(other, self)

    # ------------------------------------------------------------------ new_* factories
    def _new_args(self, dtype: Any, device: Any) -> tuple:
        return (self.dtype if dtype is None else dtype), (self.device if device is None
                                                          else device)

    def new_full(self, size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
                 requires_grad: bool = False) -> "Tensor":
        """A tensor of ``size`` filled with ``fill_value``, with this tensor's dtype and
        device unless given.

        >>> import lightgrad as lg
        >>> lg.ones(1, dtype=lg.int64).new_full((2,), 7)
        tensor([7, 7])
        """
        from .creation import full
        dt, dev = self._new_args(dtype, device)
        return full(size, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)

    def new_zeros(self, *size: Any, dtype: Any = None, device: Any = None,
                  requires_grad: bool = False) -> "Tensor":
        from .creation import zeros
        dt, dev = self._new_args(dtype, device)
        return zeros(*size, dtype=dt, device=dev, requires_grad=requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, device: Any = None,
                 requires_grad: bool = False) -> "Tensor":
        from .creation import ones
        dt, dev = self._new_args(dtype, device)
        return ones(*size, dtype=dt, device=dev, requires_grad=requires_grad)

    def new_empty(self, *size: Any, dtype: Any = None, device: Any = None,
                  requires_grad: bool = False) -> "Tensor":
        from .creation import empty
        dt, dev = self._new_args(dtype, device)
        return empty(*size, dtype=dt, device=dev, requires_grad=requires_grad)

    def new_tensor(self, data: Any, *, dtype: Any = None, device: Any = None,
                   requires_grad: bool = False) -> "Tensor":
        """A copy of ``data`` with this tensor's dtype and device unless given.

        >>> import lightgrad as lg
        >>> lg.zeros(1, dtype=lg.float64).new_tensor([1, 2]).dtype
        lightgrad.float64
        """
        dt, dev = self._new_args(dtype, device)
        if isinstance(data, Tensor):
            data = data.detach()
        return tensor(data, dtype=dt, device=dev, requires_grad=requires_grad)

    def softmax(self, dim: int) -> "Tensor":
        return Softmax.apply(self, self._dim("softmax", dim))

    def log_softmax(self, dim: int) -> "Tensor":
        return LogSoftmax.apply(self, self._dim("log_softmax", dim))

    def topk(self, k: int, dim: int = -1, largest: bool = True,
             sorted: bool = True) -> ValuesIndices:
        d = self._dim("topk", dim)
        n = self.shape[d] if self.ndim else 1
        if not 0 <= k <= n:
            raise RuntimeError(f"topk: k={k} is out of range for dim {dim} of size {n} "
                               f"(shape {self.shape})")
        src = self if self.ndim else self.reshape(1)
        idx = Tensor._from_buffer(src.device.backend.topk(src._data, k, d, largest), src.device)
        values = src.gather(d, idx)
        if not self.ndim:
            values, idx = values.reshape(()), idx.reshape(())
        return ValuesIndices(values, idx)

    def sort(self, dim: int = -1, descending: bool = False) -> ValuesIndices:
        d = self._dim("sort", dim)
        idx = Tensor._from_buffer(self.device.backend.sort(self._data, d, descending),
                                  self.device)
        return ValuesIndices(self.gather(d, idx), idx)

    def argsort(self, dim: int = -1, descending: bool = False) -> "Tensor":
        return self.sort(dim, descending).indices

    def unique(self, sorted: bool = True, return_inverse: bool = False,
               return_counts: bool = False, dim: int | None = None) -> Any:
        """The distinct values (see ``lightgrad.unique``)."""
        return unique_ops.unique(self, sorted, return_inverse, return_counts, dim)

    def unique_consecutive(self, return_inverse: bool = False, return_counts: bool = False,
                           dim: int | None = None) -> Any:
        """Runs of equal neighbours collapsed (see ``lightgrad.unique_consecutive``)."""
        return unique_ops.unique_consecutive(self, return_inverse, return_counts, dim)

    def multinomial(self, num_samples: int, replacement: bool = False) -> "Tensor":
        if self.ndim not in (1, 2):
            raise RuntimeError(f"multinomial: probabilities must be 1-D or 2-D, got shape "
                               f"{self.shape}")
        probs = self.detach()
        if (probs < 0).any().item() or not (probs == probs).all().item():
            raise RuntimeError("multinomial: probabilities must be non-negative and finite")
        if (probs.sum(-1) <= 0).any().item():
            raise RuntimeError("multinomial: each row of probabilities must have a "
                               "positive sum")
        if not replacement and num_samples > self.shape[-1]:
            raise RuntimeError(f"multinomial: cannot draw {num_samples} samples without "
                               f"replacement from {self.shape[-1]} categories")
        buf = self.device.backend.multinomial(self._data, num_samples, replacement)
        return Tensor._from_buffer(buf, self.device)

    # ------------------------------------------------------------------ in-place
    def _inplace(self, op: str, compute: Callable[["Tensor"], "Tensor"],
                 others: Sequence[Any] = ()) -> "Tensor":
        """Run ``compute`` out of place and write its result into this tensor's memory.

        Under grad mode the op joins the graph: ``self`` takes the result's grad_fn.
        """
        tracked = _grad_enabled[0] and (self.requires_grad or any(
            isinstance(o, Tensor) and o.requires_grad for o in others))
        if tracked:
            if self.requires_grad and self.grad_fn is None:
                raise RuntimeError(
                    f"{op}: a leaf tensor that requires grad (shape {self.shape}) is being "
                    "used in an in-place operation; wrap the update in `with "
                    "lightgrad.no_grad():` or operate on a clone")
            base = self._base[0] if self._base is not None else None
            if base is not None and base.requires_grad and base.grad_fn is None:
                raise RuntimeError(
                    f"{op}: in-place operation on a view (shape {self.shape}) of a leaf "
                    f"tensor that requires grad (shape {base.shape}); wrap it in `with "
                    "lightgrad.no_grad():`")
            result = compute(self.clone())
        else:
            from .autograd import no_grad
            with no_grad():
                result = compute(self)
        if result.shape != self.shape:
            raise RuntimeError(f"{op}: the result has shape {result.shape} but the in-place "
                               f"target has shape {self.shape}")
        if result.dtype is not self.dtype and \
                result.dtype.category > self.dtype.category:
            raise RuntimeError(f"{op}: result type {result.dtype.name} can't be cast to the "
                               f"in-place target's dtype {self.dtype.name}")
        try:
            self.device.backend.assign(self._data, result._data)
        except ValueError as err:
            raise RuntimeError(f"{op}: cannot write into this tensor of shape {self.shape} "
                               f"(it is a read-only view such as an expand(): {err}); clone "
                               "it first") from None
        self._version[0] += 1
        if tracked:
            if self._base is not None:
                self._rebase_view(result)
            else:
                self.requires_grad = True
                self.grad_fn, self._output_nr = result.grad_fn, result._output_nr
        return self

    def _rebase_view(self, result: "Tensor") -> None:
        """After ``result`` was written into this view: give the base a ``CopySlices``
        history and this view the history of "that view of the new base"."""
        base, chain = self._base
        old = base.detach()
        old.requires_grad, old.grad_fn, old._output_nr = \
            base.requires_grad, base.grad_fn, base._output_nr
        new_base = CopySlices.apply(old, result, chain)
        base.requires_grad, base.grad_fn, base._output_nr = True, new_base.grad_fn, 0
        view = replay_view(base, chain)
        self.requires_grad, self.grad_fn, self._output_nr = True, view.grad_fn, 0

    def _arith_fast(self, op: str, other: Any, alpha: float = 1) -> bool:
        """``self = op(self, other * alpha)`` as one in-place backend pass when autograd is
        not involved and nothing needs converting; False when the general path must run."""
        if _grad_enabled[0] and (self.requires_grad or getattr(other, "requires_grad", False)):
            return False
        backend = self.device.backend
        if isinstance(other, Tensor):
            if other.device is not self.device or other._data.dtype != self._data.dtype or (
                    other.shape != self.shape and not _broadcasts_to(other.shape, self.shape)):
                return False  # the general path converts, or raises the clear error
            src = other._data if alpha == 1 else backend.mul(other._data, alpha)
        elif isinstance(other, (int, float)) and not isinstance(other, bool) and \
                self.dtype.is_floating_point:
            src = other * alpha
        else:
            return False
        if op == "div" and not self.dtype.is_floating_point:
            return False
        try:
            backend.binary_inplace(op, self._data, src)
        except ValueError:  # read-only views: the general path gives the clear error
            return False
        self._version[0] += 1
        return True

    def add_(self, other: Any, alpha: float = 1) -> "Tensor":
        if self._arith_fast("add", other, alpha):
            return self
        return self._inplace("add_", lambda s: s.add(other, alpha), (other,))

    def sub_(self, other: Any, alpha: float = 1) -> "Tensor":
        if self._arith_fast("sub", other, alpha):
            return self
        return self._inplace("sub_", lambda s: s.sub(other, alpha), (other,))

    def mul_(self, other: Any) -> "Tensor":
        if self._arith_fast("mul", other):
            return self
        return self._inplace("mul_", lambda s: s * other, (other,))

    def div_(self, other: Any) -> "Tensor":
        if self._arith_fast("div", other):
            return self
        return self._inplace("div_", lambda s: s / other, (other,))

    def pow_(self, exponent: Any) -> "Tensor":
        return self._inplace("pow_", lambda s: s ** exponent, (exponent,))

    def clamp_(self, min: float | None = None, max: float | None = None) -> "Tensor":
        return self._inplace("clamp_", lambda s: s.clamp(min, max))

    def addcmul_(self, t1: "Tensor", t2: "Tensor", value: float = 1) -> "Tensor":
        return self._inplace("addcmul_", lambda s: s + t1 * t2 * value, (t1, t2))

    def addcdiv_(self, t1: "Tensor", t2: "Tensor", value: float = 1) -> "Tensor":
        return self._inplace("addcdiv_", lambda s: s + t1 / t2 * value, (t1, t2))

    def lerp_(self, end: "Tensor", weight: float) -> "Tensor":
        return self._inplace("lerp_", lambda s: s + (end - s) * weight, (end,))

    def masked_fill_(self, mask: "Tensor", value: Any) -> "Tensor":
        return self._inplace("masked_fill_", lambda s: s.masked_fill(mask, value), (value,))

    def _fill_with(self, op: str, make: Callable[[], Any]) -> "Tensor":
        def compute(s: "Tensor") -> "Tensor":
            return Tensor._from_buffer(make(), s.device)
        return self._inplace(op, compute)

    def zero_(self) -> "Tensor":
        return self._fill_with("zero_", lambda: self.device.backend.full(
            self.shape, 0, self._data.dtype))

    def fill_(self, value: Any) -> "Tensor":
        value = _number(value)
        return self._fill_with("fill_", lambda: self.device.backend.full(
            self.shape, value, self._data.dtype))

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> "Tensor":
        backend = self.device.backend

        def make() -> Any:
            u = backend.rand(self.shape, self._data.dtype)
            return backend.add(backend.mul(u, b - a), a)
        return self._fill_with("uniform_", make)

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> "Tensor":
        backend = self.device.backend

        def make() -> Any:
            return backend.add(backend.mul(backend.randn(self.shape, self._data.dtype), std),
                               mean)
        return self._fill_with("normal_", make)

    def copy_(self, src: Any) -> "Tensor":
        if not isinstance(src, Tensor):
            src = tensor(src)

        def compute(s: "Tensor") -> "Tensor":
            moved = src.to(device=s.device, dtype=s.dtype)
            try:
                return moved.expand(s.shape) if moved.shape != s.shape else moved + 0
            except RuntimeError:
                raise RuntimeError(f"copy_: source of shape {src.shape} cannot be broadcast "
                                   f"to the target shape {s.shape}") from None
        return self._inplace("copy_", compute, (src,))

    def __setitem__(self, index: Any, value: Any) -> None:
        if _plain_index(index, self._data.shape):
            idx = index
        else:
            idx, _ = convert_index(self, index)
        if isinstance(value, Tensor):
            if value.device is not self.device:
                raise RuntimeError(f"setitem: value is on {value.device} but the tensor is on "
                                   f"{self.device}")
            if value._data.dtype != self._data.dtype:
                value = value.to(self.dtype)
        else:
            value = _number(value)
        if not (_grad_enabled[0] and (self.requires_grad or getattr(value, "requires_grad",
                                                                     False))):
            # Outside autograd: write straight into memory, no copy of the whole tensor.
            buf = value._data if isinstance(value, Tensor) else value
            try:
                self.device.backend.setitem(self._data, idx, buf)
            except ValueError as err:
                raise RuntimeError(f"setitem: cannot write a value of shape "
                                   f"{getattr(value, 'shape', ())} into index {index!r} of a "
                                   f"tensor of shape {self.shape}: {err}") from None
            self._version[0] += 1
            return
        self._inplace("setitem", lambda s: IndexPut.apply(s, value, idx, False), (value,))

    def __iadd__(self, other: Any) -> "Tensor":
        return self.add_(other)

    def __isub__(self, other: Any) -> "Tensor":
        return self.sub_(other)

    def __imul__(self, other: Any) -> "Tensor":
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> "Tensor":
        return self.div_(other)


class _HookHandle:
    def __init__(self, hooks: list, hook: Callable):
        self.hooks, self.hook = hooks, hook

    def remove(self) -> None:
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)


def _number(value: Any) -> Any:
    """A Python number from a number, a NumPy scalar or a one-element tensor."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Tensor):
        return value.item()
    if isinstance(value, (Number, np.generic)):
        return value.item() if hasattr(value, "item") else value
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target``."""
    if len(shape) > len(target):
        return False
    return all(n == 1 or n == t for n, t in zip(reversed(shape), reversed(target)))


def _plain_index(index: Any, shape: tuple) -> bool:
    """True for a tuple of 1 to ndim slices with positive (or no) steps and in-range ints,
    such as ``x[:, -1, a:b]``: basic indexing that ``convert_index`` would pass through
    unchanged."""
    if type(index) is not tuple or not 0 < len(index) <= len(shape):
        return False
    for item, size in zip(index, shape):
        if type(item) is slice:
            if item.step is not None and item.step <= 0:
                return False
        elif type(item) is not int or not -size <= item < size:
            return False
    return True


def _infer_shape(op: str, shape: tuple[int, ...], x: Tensor) -> tuple[int, ...]:
    numel = x._data.size
    if -1 not in shape:
        if math.prod(shape) != numel or (shape and min(shape) < 0):
            raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel} "
                               f"(shape {x.shape})")
        return shape
    if shape.count(-1) > 1:
        raise RuntimeError(f"{op}: only one dim can be -1, got {shape}")
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel} "
                               f"(shape {x.shape})")
        shape = tuple(numel // known if n == -1 else n for n in shape)
    if math.prod(shape) != numel or any(n < 0 for n in shape):
        raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel} "
                           f"(shape {x.shape})")
    return shape


# Late imports: these modules need Tensor defined first.
from .creation import tensor  # noqa: E402
from .indexing import convert_index  # noqa: E402
from .ops import division, elementwise, linalg_extra  # noqa: E402
from .ops import unique as unique_ops  # noqa: E402
from .ops.common import norm_dim, norm_dims  # noqa: E402
from .ops.elementwise import Clamp, Where  # noqa: E402
from .ops.linalg import MatMul  # noqa: E402
from .ops.movement import (  # noqa: E402
    Cast, Copy, CopySlices, Expand, Flip, Gather, GetItem, IndexAdd, IndexPut, IndexSelect,
    Permute, Reshape, ScatterAdd, Split, Tile, ToDevice, Triangle, check_viewable,
    bitcast, contiguous_strides, element_strides, replay_view,
)
from .ops.nn import LogSoftmax, Softmax  # noqa: E402
from .ops.reduce import Amax, Amin, Cumsum, Mean, Prod, Sum  # noqa: E402
from .printing import format_tensor  # noqa: E402

# The most frequent ops, bound once. With nothing to record, their Tensor methods call the
# op's forward directly with the shared UNRECORDED ctx (see autograd._Unrecorded), else
# ``apply``, which records the call.
_exp, _relu, _sum, _matmul, _reshape, _getitem = (
    f.apply for f in (elementwise.Exp, elementwise.Relu, Sum, MatMul, Reshape, GetItem))
_exp_fwd, _relu_fwd, _sum_fwd, _matmul_fwd, _reshape_fwd, _getitem_fwd = (
    f.forward for f in (elementwise.Exp, elementwise.Relu, Sum, MatMul, Reshape, GetItem))


def _binary_method(fn: type, name: str) -> Callable[[Tensor, Any], Tensor]:
    """``Tensor.<name>``: ``fn.apply`` when an operand needs its gradient recorded, else
    ``fn.forward`` with the UNRECORDED ctx."""
    apply, forward = fn.apply, fn.forward

    def method(self: Tensor, other: Any) -> Tensor:
        if _grad_enabled[0] and (self.requires_grad or isinstance(other, Tensor) and
                                 other.requires_grad):
            return apply(self, other)
        return forward(UNRECORDED, self, other)
    method.__name__ = method.__qualname__ = name
    return method


for _name, _fn in (("__add__", elementwise.Add), ("__sub__", elementwise.Sub),
                   ("__mul__", elementwise.Mul), ("__truediv__", elementwise.Div)):
    setattr(Tensor, _name, _binary_method(_fn, _name))
