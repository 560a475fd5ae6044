"""Reverse-mode autograd: ``Function``, the tape, the backward engine, grad modes, gradcheck.

Every differentiable op, built-in or yours, is a ``Function`` subclass with a ``forward``
and a ``backward``. ``Function.apply`` runs ``forward`` and, when an input requires grad,
records the call as a node of the graph; ``Tensor.backward`` walks the nodes in reverse
topological order and calls each ``backward`` with the gradient of its outputs.

A custom op works exactly like a built-in one:

>>> import lightgrad as lg
>>> class Cube(lg.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x * x * x
...     @staticmethod
...     def backward(ctx, grad):
...         (x,) = ctx.saved_tensors
...         return grad * 3 * x * x
>>> x = lg.tensor([1.0, 2.0], requires_grad=True)
>>> Cube.apply(x).sum().backward()
>>> x.grad
tensor([ 3., 12.])
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import dtypes

# ----------------------------------------------------------------------------- grad mode

_grad_enabled = [True]


def is_grad_enabled() -> bool:
    """True when ops record the graph for backward.

    >>> import lightgrad as lg
    >>> with lg.no_grad():
    ...     lg.is_grad_enabled()
    False
    """
    return _grad_enabled[0]


class set_grad_enabled:
    """Turn graph recording on or off: a function call, a context manager or a decorator.

    >>> import lightgrad as lg
    >>> with lg.set_grad_enabled(False):
    ...     y = lg.ones(2, requires_grad=True) * 2
    >>> y.requires_grad
    False
    """

    def __init__(self, mode: bool = True):
        self.prev = _grad_enabled[0]
        self.mode = bool(mode)
        _grad_enabled[0] = self.mode

    # no_grad/enable_grad read the mode to restore on entry; set_grad_enabled applies its
    # mode at creation (like PyTorch), so it remembers the mode from before that.
    _lazy = False

    def __enter__(self) -> None:
        if self._lazy:
            self.prev = _grad_enabled[0]
        _grad_enabled[0] = self.mode

    def __exit__(self, *exc: object) -> None:
        _grad_enabled[0] = self.prev

    def __call__(self, fn: Callable) -> Callable:
        mode = self.mode
        if not self._lazy:  # used as a decorator: undo the switch made at creation
            _grad_enabled[0] = self.prev

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = _grad_enabled[0]
            _grad_enabled[0] = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _grad_enabled[0] = prev

        return wrapper


class no_grad(set_grad_enabled):
    """Context manager / decorator that disables graph recording (for inference, updates).

    >>> import lightgrad as lg
    >>> @lg.no_grad()
    ... def double(t):
    ...     return t * 2
    >>> double(lg.ones(1, requires_grad=True)).requires_grad
    False
    """

    _lazy = True

    def __init__(self) -> None:
        self.prev = _grad_enabled[0]
        self.mode = False


class enable_grad(set_grad_enabled):
    """Context manager / decorator that re-enables graph recording inside ``no_grad``.

    >>> import lightgrad as lg
    >>> with lg.no_grad(), lg.enable_grad():
    ...     lg.is_grad_enabled()
    True
    """

    _lazy = True

    def __init__(self) -> None:
        self.prev = _grad_enabled[0]
        self.mode = True


_inference_mode = [False]


def is_inference_mode_enabled() -> bool:
    """True inside ``inference_mode()``.

    >>> import lightgrad as lg
    >>> with lg.inference_mode():
    ...     lg.is_inference_mode_enabled()
    True
    """
    return _inference_mode[0]


class inference_mode:
    """Like ``no_grad`` (a context manager or a decorator, with or without parentheses), and
    ``is_inference_mode_enabled()`` reports it. Like PyTorch, ``inference_mode(False)`` turns
    inference mode off and graph recording on.

    >>> import lightgrad as lg
    >>> @lg.inference_mode()
    ... def double(t):
    ...     return t * 2
    >>> double(lg.ones(1, requires_grad=True)).requires_grad
    False
    """

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode) and not isinstance(mode, bool):  # bare @inference_mode
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)
        self._prev: list[tuple[bool, bool]] = []

    def __enter__(self) -> None:
        self._prev.append((_grad_enabled[0], _inference_mode[0]))
        _grad_enabled[0], _inference_mode[0] = not self.mode, self.mode

    def __exit__(self, *exc: object) -> None:
        _grad_enabled[0], _inference_mode[0] = self._prev.pop()

    def __call__(self, fn: Callable) -> Callable:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper


# ----------------------------------------------------------------------------- Function


class Context:
    """The node a ``Function`` call leaves in the graph; ``forward``/``backward`` get it as ctx.

    It holds what ``backward`` needs: saved tensors, ``needs_input_grad`` and any
    attributes that ``forward`` sets on it.
    """

    # Inputs of the call as graph edges, one per input: None, or (node, output_nr, shape,
    # numpy dtype) with node the input's grad_fn (or the leaf tensor itself) and the
    # input's shape and dtype at the call (the gradient returned for it must match).
    _edges: tuple = ()
    _saved: tuple | None = ()
    _saved_versions: tuple = ()
    _released = False
    _output_hooks: dict | None = None
    _non_differentiable: tuple = ()
    _output_meta: tuple = ()
    _n_outputs = 1
    _record = False
    needs_input_grad: tuple = ()

    def save_for_backward(self, *tensors: Any) -> None:
        """Keep tensors for backward; changing one in place before backward is an error."""
        if not self._record:
            return
        self._saved = tensors
        versions = []
        for t in tensors:
            versions.append(t._version[0] if t is not None else 0)
        self._saved_versions = versions

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise RuntimeError(
                f"{self.name()}: trying to backward through the graph a second time (or "
                "to read saved tensors after they were freed). Pass retain_graph=True to "
                "the first backward() if you need to backward twice.")
        saved = self._saved if not self._saved_outputs else self._relinked_outputs()
        for t, version in zip(saved, self._saved_versions):
            if t is not None and t._version[0] != version:
                raise RuntimeError(
                    f"{self.name()}: one of the tensors saved for backward (shape "
                    f"{tuple(t.shape)}, dtype {t.dtype.name}) has been modified by an "
                    f"in-place operation: it is at version {t._version[0]}, expected "
                    f"version {version}.")
        return saved

    # Outputs of this node among its saved tensors: {index in _saved: (output_nr, buffer,
    # device, version counter, view base)}, with None at that index of _saved. An output
    # kept as itself would point at this node while the node holds it: a reference cycle
    # that only the cyclic garbage collector frees (late, activations and all). As in
    # PyTorch, a saved output is stored without its grad_fn and gets it back when read.
    _saved_outputs: dict | None = None

    def _save_output(self, out: Any) -> None:
        """``save_for_backward(out)`` for the single output of this node, stored unlinked
        from the start (what ``_unlink_saved_outputs`` would make of it)."""
        if self._record:
            self._saved, self._saved_versions = (None,), (out._version[0],)
            self._saved_outputs = {0: (0, out._data, out.device, out._version, out._base)}

    def _unlink_saved_outputs(self, outputs: tuple) -> None:
        """Take the outputs of this node out of the saved tensors (see _saved_outputs)."""
        saved, found = list(self._saved), {}
        for i, t in enumerate(saved):
            for nr, o in enumerate(outputs):
                if t is o and isinstance(o, Tensor) and o.grad_fn is self:
                    saved[i] = None
                    found[i] = (nr, o._data, o.device, o._version, o._base)
        if found:
            self._saved, self._saved_outputs = tuple(saved), found

    def _relinked_outputs(self) -> tuple:
        out = list(self._saved)
        for i, (nr, buf, device, version, base) in self._saved_outputs.items():
            t = out[i] = Tensor._from_buffer(buf, device, version, base)
            t.requires_grad, t.grad_fn, t._output_nr = True, self, nr
        return tuple(out)

    def mark_non_differentiable(self, *tensors: Any) -> None:
        """Declare outputs (such as indices) that never carry a gradient."""
        self._non_differentiable = tuple(id(t) for t in tensors)

    @classmethod
    def name(cls) -> str:
        return cls.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    def _release(self) -> None:
        self._saved = self._saved_outputs = None
        self._released = True


class _Unrecorded(Context):
    """The ctx that Tensor methods hand straight to a built-in op's ``forward`` when there
    is nothing to record (no input requires grad, or grad mode is off), skipping
    ``Function.apply``: a third of a small op's time. One shared instance: those forwards
    store nothing on ctx then (``ctx._record`` is False), and storing raises."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"ctx.{name}: a forward must not store anything on ctx when "
                             "ctx._record is False")


UNRECORDED = _Unrecorded()


class Function(Context):
    """Base class of every differentiable op.

    Subclass it with two static methods: ``forward(ctx, *args)`` returning a Tensor (or a
    tuple of Tensors) and ``backward(ctx, *grads)`` returning one gradient (or None) per
    argument of forward. Call it with ``MyOp.apply(*args)``. ``forward`` runs with grad
    recording off; ``backward`` is written with Tensor ops, so ``create_graph=True`` gives
    higher derivatives. See the module docstring for an example.
    """

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("Function subclasses must implement forward")

    @staticmethod
    def backward(ctx: Context, *grads: Any) -> Any:
        raise NotImplementedError("Function subclasses must implement backward")

    # True for Functions defined outside lightgrad: their forward may read
    # ctx.needs_input_grad even when nothing is recorded (lightgrad's own ops don't).
    _custom = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._custom = not cls.__module__.startswith("lightgrad.")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        if _grad_enabled[0]:
            for a in args:
                if isinstance(a, Tensor) and a.requires_grad:
                    return _new(cls)._recorded_call(args, kwargs)
        # Nothing to differentiate: forward runs as is, nothing is saved or linked.
        ctx = _new(cls)
        if cls._custom:
            ctx.needs_input_grad = (False,) * len(args)
        if kwargs:
            return cls.forward(ctx, *args, **kwargs)
        return cls.forward(ctx, *args)

    def _recorded_call(self, args: tuple, kwargs: dict) -> Any:
        """``apply`` when an input requires grad: run forward, link this node to the graph."""
        self._record = True
        # One pass over the inputs: the graph edge to each that needs a gradient (its
        # grad_fn, or the leaf tensor itself, with its shape/dtype for checking grads).
        edges = []
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                fn, buf = a.grad_fn, a._data
                if fn is None:
                    edges.append((a, 0, buf.shape, buf.dtype))
                else:
                    edges.append((fn, a._output_nr, buf.shape, buf.dtype))
            else:
                edges.append(None)
        self._edges = edges
        self.needs_input_grad = tuple(map(bool, edges))  # an edge is a non-empty tuple
        _grad_enabled[0] = False
        try:
            out = type(self).forward(self, *args, **kwargs) if kwargs else \
                type(self).forward(self, *args)
        finally:
            _grad_enabled[0] = True
        if type(out) is Tensor and out._data.dtype in _FLOAT and not self._non_differentiable:
            for a in args:  # the common case: one new float tensor
                if out is a:
                    break
            else:
                out.requires_grad = True
                out.grad_fn = self
                out._output_nr = 0
                for t in self._saved:  # saved its own output (see _saved_outputs)?
                    if t is out:
                        self._unlink_saved_outputs((out,))
                        break
                return out
        out = self._connect(args, out)
        if self._saved:
            self._unlink_saved_outputs(out if isinstance(out, tuple) else (out,))
        return out

    def _connect(self, args: Sequence[Any], out: Any) -> Any:
        """Make the outputs of forward point at this node."""
        if not isinstance(out, tuple):
            return self._link(args, out, 0)
        outputs = tuple([self._link(args, o, nr) for nr, o in enumerate(out)])
        self._n_outputs = len(outputs)
        self._output_meta = tuple((o._data.shape, o._data.dtype, o.device) for o in outputs)
        return outputs

    def _link(self, args: Sequence[Any], o: Any, nr: int) -> Any:
        """Output ``nr`` of forward, pointed at this node (integer outputs and those marked
        non-differentiable stay out of the graph)."""
        if not isinstance(o, Tensor):
            raise TypeError(f"{type(self).__name__}.forward must return Tensors, "
                            f"got {type(o).__name__} at output {nr}")
        for a in args:
            if o is a:  # forward returned an input unchanged: output a new alias of it
                o = o.detach()
                break
        skip = self._non_differentiable
        if o._data.dtype in _FLOAT and (not skip or id(o) not in skip):
            o.requires_grad = True
            o.grad_fn = self
            o._output_nr = nr
        return o


_FLOAT = dtypes.FLOAT_NUMPY_DTYPES
_new = object.__new__


# ----------------------------------------------------------------------------- engine


def _topo_order(roots: Iterable[Context]) -> list[Context]:
    """Graph nodes reachable from roots, each after every node that feeds it a gradient."""
    order: list[Context] = []
    visited: set[int] = set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack = [(root, iter(root._edges))]
        while stack:
            node, children = stack[-1]
            for edge in children:
                if edge is None:
                    continue
                child = edge[0]
                if isinstance(child, Context) and id(child) not in visited:
                    visited.add(id(child))
                    stack.append((child, iter(child._edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _check_grad(node: Context, index: int, grad: Any) -> Any:
    _, _, shape, np_dtype = node._edges[index]
    if not isinstance(grad, Tensor):
        raise TypeError(f"{node.name()} returned a {type(grad).__name__} as gradient for "
                        f"input {index}; expected a Tensor or None")
    if grad._data.shape != shape:
        raise RuntimeError(f"{node.name()} returned an invalid gradient for input {index}: "
                           f"shape {tuple(grad.shape)}, expected {tuple(shape)}")
    if grad._data.dtype != np_dtype:
        grad = grad.to(dtypes.from_numpy_dtype(np_dtype))
    return grad


def _accumulate(store: dict, key: int, nr: int, grad: Any, n: int) -> None:
    slot = store.get(key)
    if slot is None:
        slot = store[key] = [None] * n
    slot[nr] = grad if slot[nr] is None else slot[nr] + grad


# Callbacks queued during a backward run, one list per (possibly nested) run.
_callback_stack: list[list[Callable[[], None]]] = []


def queue_callback(callback: Callable[[], None]) -> None:
    """Run ``callback()`` once the backward pass now running has finished (every leaf's
    ``.grad`` written); for hooks that start work during backward and must finish it, like
    DistributedDataParallel waiting for its gradient all-reduces.

    >>> import lightgrad as lg
    >>> x = lg.ones(2, requires_grad=True)
    >>> _ = x.register_hook(lambda g: queue_callback(lambda: print("done")))
    >>> x.sum().backward()
    done
    """
    if not _callback_stack:
        raise RuntimeError("queue_callback: can only be called while backward is running "
                           "(from a hook)")
    _callback_stack[-1].append(callback)


def _leaf_edge_counts(order: list[Context]) -> dict[int, int]:
    """How many graph edges lead into each leaf: its gradient is final after that many."""
    counts: dict[int, int] = {}
    for node in order:
        for edge in node._edges:
            if edge is not None and not isinstance(edge[0], Context):
                counts[id(edge[0])] = counts.get(id(edge[0]), 0) + 1
    return counts


def _finish_leaf(leaf: Any, g: Any, claimed: set, create_graph: bool) -> None:
    """Run the leaf's hooks, accumulate ``g`` into ``.grad``, then its post-accumulate
    hooks."""
    for hook in leaf._hooks or ():
        new = hook(g)
        g = new if new is not None else g
    if leaf.grad is None:
        if create_graph:
            leaf.grad = g
        else:
            # .grad must not share memory with another leaf's .grad or with a
            # gradient the caller passed in: copy those, keep fresh results (and
            # views of them, such as a transposed weight gradient) as they are
            storage = id((g._base[0] if g._base is not None else g)._data)
            if storage in claimed:
                leaf.grad = g.detach().clone()
            else:
                leaf.grad = g.detach()
                claimed.add(storage)
    elif create_graph:
        leaf.grad = leaf.grad + g
    else:
        leaf.grad._data = leaf.grad.device.backend.add(leaf.grad._data, g._data)
    for hook in leaf._post_accumulate_grad_hooks or ():
        hook(leaf)


def run_backward(tensors: Sequence[Any], grad_tensors: Sequence[Any], retain_graph: bool,
                 create_graph: bool, inputs: Sequence[Any] | None = None) -> list | None:
    """The engine: propagate ``grad_tensors`` from ``tensors`` back through the graph.

    With ``inputs=None`` gradients accumulate into the ``.grad`` of leaves, each leaf as
    soon as its gradient is final (then its post-accumulate hooks run); otherwise the
    gradients of ``inputs`` are returned (and no ``.grad`` is touched).
    """
    roots = []
    node_grads: dict[int, list] = {}
    leaf_grads: dict[int, Any] = {}
    leaves: dict[int, Any] = {}
    for t, g in zip(tensors, grad_tensors):
        if t.grad_fn is None:
            if t.requires_grad:
                leaves[id(t)] = t
                leaf_grads[id(t)] = g if id(t) not in leaf_grads else leaf_grads[id(t)] + g
            continue
        roots.append(t.grad_fn)
        _accumulate(node_grads, id(t.grad_fn), t._output_nr, g, t.grad_fn._n_outputs)
    wanted = None
    if inputs is not None:
        wanted = {}
        for i, t in enumerate(inputs):
            wanted[(id(t.grad_fn), t._output_nr) if t.grad_fn is not None else (id(t), -1)] = i
    results: list = [None] * len(inputs) if inputs is not None else []

    prev_mode = _grad_enabled[0]
    _grad_enabled[0] = create_graph
    order = _topo_order(roots)
    pending = _leaf_edge_counts(order) if wanted is None else None
    claimed = {id(g._data) for g in grad_tensors}
    _callback_stack.append([])
    try:
        for node in order:
            grads = node_grads.pop(id(node), None)
            if grads is None:
                if pending is not None:
                    _edges_done(node, pending, leaves, leaf_grads, claimed, create_graph)
                continue
            if node._output_hooks:
                for nr, hooks in node._output_hooks.items():
                    for hook in hooks:
                        if grads[nr] is not None:
                            new = hook(grads[nr])
                            grads[nr] = new if new is not None else grads[nr]
            if wanted is not None:
                for nr, g in enumerate(grads):
                    i = wanted.get((id(node), nr))
                    if i is not None:
                        results[i] = g
            edges = node._edges
            if not any(edges):
                continue
            if node._n_outputs > 1:  # a single output's gradient is always there
                for nr, g in enumerate(grads):
                    if g is None:
                        shape, np_dtype, dev = node._output_meta[nr]
                        grads[nr] = Tensor._from_buffer(dev.backend.full(shape, 0, np_dtype),
                                                        dev)
            out = type(node).backward(node, *grads)
            if not isinstance(out, tuple):
                out = (out,)
            if len(out) < len(edges):
                raise RuntimeError(f"{node.name()} returned {len(out)} gradients, expected "
                                   f"{len(edges)} (one per forward argument)")
            if not retain_graph:
                node._release()
            for i, edge in enumerate(edges):
                if edge is None:
                    continue
                child, nr = edge[0], edge[1]
                g = out[i]
                if g is not None:
                    g = _check_grad(node, i, g)
                if isinstance(child, Context):
                    if g is not None:
                        _accumulate(node_grads, id(child), nr, g, child._n_outputs)
                    continue
                key = id(child)
                if g is not None:
                    leaves[key] = child
                    leaf_grads[key] = g if key not in leaf_grads else leaf_grads[key] + g
                if pending is not None:  # one edge into this leaf less to wait for
                    pending[key] -= 1
                    if pending[key] == 0 and key in leaf_grads:
                        _finish_leaf(child, leaf_grads.pop(key), claimed, create_graph)
        for key, leaf in leaves.items():
            if wanted is not None:
                g = leaf_grads[key]
                for hook in leaf._hooks or ():
                    new = hook(g)
                    g = new if new is not None else g
                i = wanted.get((key, -1))
                if i is not None:
                    results[i] = g
            elif key in leaf_grads:  # not finished early (a root, or fed by no node)
                _finish_leaf(leaf, leaf_grads.pop(key), claimed, create_graph)
        callbacks = _callback_stack[-1]
        while callbacks:
            callbacks.pop(0)()
    finally:
        _callback_stack.pop()
        _grad_enabled[0] = prev_mode
    return results if inputs is not None else None


def _edges_done(node: Context, pending: dict, leaves: dict, leaf_grads: dict, claimed: set,
                create_graph: bool) -> None:
    """``node`` has sent its gradients: finish the leaves it was the last to feed."""
    for edge in node._edges:
        if edge is None or isinstance(edge[0], Context):
            continue
        key = id(edge[0])
        pending[key] -= 1
        if pending[key] == 0 and key in leaf_grads:
            _finish_leaf(leaves[key], leaf_grads.pop(key), claimed, create_graph)


def _as_grad_list(tensors: Any, grads: Any, op: str) -> tuple[list, list]:
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grads is None or isinstance(grads, Tensor):
        grads = [grads] * len(tensors) if grads is None else [grads]
    grads = list(grads)
    if len(grads) != len(tensors):
        raise ValueError(f"{op}: got {len(tensors)} outputs but {len(grads)} gradients")
    filled = []
    for t, g in zip(tensors, grads):
        if not t.requires_grad:
            raise RuntimeError(f"{op}: element of shape {tuple(t.shape)} does not require "
                               "grad and does not have a grad_fn")
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(
                    f"{op}: grad can be implicitly created only for scalar outputs, got an "
                    f"output of shape {tuple(t.shape)}; pass gradient= of that shape")
            g = Tensor._full_like_meta(t, 1.0)
        else:
            if not isinstance(g, Tensor):
                g = Tensor._full_like_meta(t, 0.0) + g
            if g.shape != t.shape:
                raise RuntimeError(f"{op}: gradient has shape {tuple(g.shape)} but the "
                                   f"output has shape {tuple(t.shape)}")
        filled.append(g)
    return tensors, filled


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves they depend on.

    >>> import lightgrad as lg
    >>> x = lg.tensor(3.0, requires_grad=True)
    >>> lg.autograd.backward(x * x); x.grad
    tensor(6.)
    """
    tensors, grads = _as_grad_list(tensors, grad_tensors, "backward")
    retain = create_graph if retain_graph is None else retain_graph
    run_backward(tensors, grads, retain, create_graph)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, returned instead of accumulated.

    >>> import lightgrad as lg
    >>> x = lg.tensor(2.0, requires_grad=True)
    >>> (dx,) = lg.autograd.grad(x ** 3, x, create_graph=True)
    >>> lg.autograd.grad(dx, x)[0]
    tensor(12.)
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(f"grad: an input of shape {tuple(t.shape)} does not require "
                               "grad")
    outputs, grads = _as_grad_list(outputs, grad_outputs, "grad")
    retain = create_graph if retain_graph is None else retain_graph
    results = run_backward(outputs, grads, retain, create_graph, inputs=inputs)
    for i, r in enumerate(results):
        if r is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {tuple(inputs[i].shape)}) was not "
                               "used to compute the outputs; pass allow_unused=True to get "
                               "None for it")
    return tuple(results)


# ----------------------------------------------------------------------------- gradcheck


def _numerical_jacobian(fn: Callable, inputs: list, index: int, eps: float) -> np.ndarray:
    x = inputs[index]
    backend = x.device.backend
    flat = backend.reshape(x._data, (x.numel(),))
    values = backend.to_numpy(flat).copy()
    columns = []
    for k in range(values.size):
        orig = values[k]
        backend.setitem(flat, (k,), orig + eps)
        plus = np.concatenate([o.detach().numpy().reshape(-1) for o in _outputs(fn(*inputs))])
        backend.setitem(flat, (k,), orig - eps)
        minus = np.concatenate([o.detach().numpy().reshape(-1) for o in _outputs(fn(*inputs))])
        backend.setitem(flat, (k,), orig)
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=1)


def _outputs(out: Any) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def gradcheck(fn: Callable, inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Compare backward with central finite differences; inputs must be float64.

    >>> import lightgrad as lg
    >>> x = lg.randn(3, dtype=lg.float64, requires_grad=True)
    >>> lg.autograd.gradcheck(lambda t: (t * t).sin(), [x])
    True
    """
    inputs = list(inputs)
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and t.dtype is not dtypes.float64:
            raise TypeError(f"gradcheck: inputs that require grad must be float64, got "
                            f"{t.dtype.name} of shape {tuple(t.shape)}")
    outs = _outputs(fn(*inputs))
    outs = [o for o in outs if o.requires_grad]
    sizes = [o.numel() for o in outs]
    total = sum(sizes)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        with no_grad():
            numerical = _numerical_jacobian(fn, inputs, i, eps)
        analytical = np.zeros((total, x.numel()))
        row = 0
        for o in outs:
            for k in range(o.numel()):
                seed = np.zeros(o.numel())
                seed[k] = 1.0
                host = seed.reshape(o.shape).astype(o.dtype.np)
                g = Tensor._from_buffer(o.device.backend.from_numpy(host), o.device)
                got = grad(o, x, g, retain_graph=True, allow_unused=True)[0]
                if got is not None:
                    analytical[row] = got.numpy().reshape(-1)
                row += 1
        if not np.allclose(analytical, numerical, atol=atol, rtol=rtol):
            diff = np.abs(analytical - numerical).max()
            if raise_exception:
                raise AssertionError(
                    f"gradcheck: backward and finite differences disagree for input {i} "
                    f"(shape {tuple(x.shape)}): max abs difference {diff:.3g}\n"
                    f"analytical:\n{analytical}\nnumerical:\n{numerical}")
            return False
    return True


from .tensor import Tensor  # noqa: E402  (Tensor needs Function, Function needs Tensor)
