"""The micrograd chapter: reverse-mode autograd on single numbers.

A ``Value`` wraps one float. Every arithmetic op on Values returns a new Value that remembers
its inputs (``_prev``), the op's name (``_op``) and a tiny closure (``_backward``) that knows
the op's local derivative. ``backward()`` orders the graph so that every node comes after its
inputs (a topological sort, done with an explicit stack so that graphs with millions of nodes
work) and then walks it from the output back to the inputs, applying the chain rule: each node
adds ``local derivative * its own grad`` to the grads of its inputs.

The closure receives its output Value as an argument instead of capturing it, so no Value
refers to itself in a cycle: a graph is freed as soon as it is dropped, without waiting for
Python's cycle collector.

That is all of backpropagation; the Tensor engine in ``autograd.py`` does the same thing with
arrays instead of floats. ``Neuron``, ``Layer`` and ``MLP`` build a small neural net out of
Values, and ``to_dot`` draws the expression graph.

>>> from lightgrad.micro import Value
>>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
>>> L = a * b + a ** 2          # L = ab + a^2
>>> L.data
-2.0
>>> L.backward()
>>> a.grad, b.grad               # dL/da = b + 2a, dL/db = a
(1.0, 2.0)
"""
from __future__ import annotations

import math
import numbers
import random
from typing import Callable, Sequence, Union

__all__ = ["Value", "Module", "Neuron", "Layer", "MLP", "to_dot", "render"]

Number = int | float
Operand = Union["Value", int, float]

# What counts as a number. float and int come first: checking them is fast, numbers.Real
# (which also admits NumPy scalars, Fractions, ...) is an abstract class and slow to check.
_REAL = (float, int, numbers.Real)


def _no_backward(out: Value) -> None:
    """The backward of a leaf: there is nothing further to propagate to."""


class Value:
    """A scalar that records the ops applied to it, so that gradients can flow back.

    ``data`` is the number, ``grad`` is d(output)/d(this value) after ``output.backward()``.

    >>> x = Value(0.5)
    >>> y = (x * x).tanh()
    >>> y.backward()
    >>> round(x.grad, 6)          # d tanh(x^2)/dx = 2x (1 - tanh(x^2)^2)
    0.940015
    """

    # __slots__ keeps each Value small: graphs of a few hundred thousand nodes are common.
    __slots__ = ("data", "grad", "_backward", "_prev", "_op", "label")

    def __init__(
        self, data: Number, _children: tuple[Value, ...] = (), _op: str = "", label: str = ""
    ) -> None:
        if not isinstance(data, _REAL):
            raise TypeError(
                f"Value: data must be a real number (int or float), got {type(data).__name__}"
            )
        self.data = float(data)
        self.grad = 0.0
        self._backward: Callable[[Value], None] = _no_backward
        self._prev = tuple(_children)
        self._op = _op
        self.label = label

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data}, grad={self.grad}{label})"

    # ------------------------------------------------------------------ binary ops

    def __add__(self, other: Operand) -> Value:
        other = _as_value(other)
        if other is None:
            return NotImplemented
        out = Value(self.data + other.data, (self, other), "+")

        def _backward(out: Value) -> None:  # d(a+b)/da = 1, d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __sub__(self, other: Operand) -> Value:
        other = _as_value(other)
        if other is None:
            return NotImplemented
        out = Value(self.data - other.data, (self, other), "-")

        def _backward(out: Value) -> None:  # d(a-b)/da = 1, d(a-b)/db = -1
            self.grad += out.grad
            other.grad -= out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Operand) -> Value:
        other = _as_value(other)
        if other is None:
            return NotImplemented
        out = Value(self.data * other.data, (self, other), "*")

        def _backward(out: Value) -> None:  # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other: Operand) -> Value:
        other = _as_value(other)
        if other is None:
            return NotImplemented
        if other.data == 0.0:
            raise ZeroDivisionError(f"div: division by zero ({self.data} / {other.data})")
        out = Value(self.data / other.data, (self, other), "/")

        def _backward(out: Value) -> None:  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
            self.grad += out.grad / other.data
            other.grad -= self.data / (other.data * other.data) * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return self._pow_value(other)
        if not isinstance(other, _REAL):
            return NotImplemented
        n = other
        if self.data < 0 and not float(n).is_integer():
            raise ValueError(
                f"pow: negative base {self.data} with non-integer exponent {n} "
                "has no real result"
            )
        out = Value(_checked_pow(self.data, n), (self,), f"**{n}")

        def _backward(out: Value) -> None:  # d(x^n)/dx = n x^(n-1)
            self.grad += _dpow(self.data, n) * out.grad

        out._backward = _backward
        return out

    def _pow_value(self, other: Value) -> Value:
        """``self ** other`` where the exponent is a Value too: grads flow into both."""
        if self.data < 0:
            raise ValueError(
                f"pow: base must be >= 0 when the exponent is a Value, got base {self.data} "
                "(d/dy x^y = x^y log(x) is not real for x < 0); use a Python number exponent"
            )
        out = Value(_checked_pow(self.data, other.data), (self, other), "**")

        def _backward(out: Value) -> None:  # d(x^y)/dx = y x^(y-1), d(x^y)/dy = x^y log(x)
            self.grad += _dpow(self.data, other.data) * out.grad
            if self.data > 0:  # at x = 0 the limit x^y log(x) -> 0 for y > 0
                other.grad += out.data * math.log(self.data) * out.grad

        out._backward = _backward
        return out

    # Reflected forms, so that Python numbers work on either side: 2 * x, 1 - x, 2 ** x.
    # Python calls them as x.__radd__(2) for 2 + x; anything but a number gets NotImplemented,
    # and with it Python's usual "unsupported operand type(s)" TypeError.
    def __radd__(self, other: Number) -> Value:
        other = _as_value(other)
        return NotImplemented if other is None else other + self

    def __rsub__(self, other: Number) -> Value:
        other = _as_value(other)
        return NotImplemented if other is None else other - self

    def __rmul__(self, other: Number) -> Value:
        other = _as_value(other)
        return NotImplemented if other is None else other * self

    def __rtruediv__(self, other: Number) -> Value:
        other = _as_value(other)
        return NotImplemented if other is None else other / self

    def __rpow__(self, other: Number) -> Value:
        other = _as_value(other)
        return NotImplemented if other is None else other._pow_value(self)

    # ------------------------------------------------------------------ unary ops

    def __neg__(self) -> Value:
        out = Value(-self.data, (self,), "neg")

        def _backward(out: Value) -> None:
            self.grad -= out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        """e^x. ``Value(0.0).exp().data == 1.0``"""
        try:
            result = math.exp(self.data)
        except OverflowError:
            raise OverflowError(f"exp: result overflows a float for input {self.data}") from None
        out = Value(result, (self,), "exp")

        def _backward(out: Value) -> None:  # d e^x/dx = e^x
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        """Natural logarithm. ``Value(1.0).log().data == 0.0``"""
        if self.data <= 0:
            raise ValueError(f"log: input must be positive, got {self.data}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward(out: Value) -> None:  # d log(x)/dx = 1/x
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        """Hyperbolic tangent. ``Value(0.0).tanh().data == 0.0``"""
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward(out: Value) -> None:  # d tanh(x)/dx = 1 - tanh(x)^2
            self.grad += (1.0 - out.data * out.data) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        """max(0, x). ``Value(-2.0).relu().data == 0.0``"""
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        # slope 1 where x > 0, else 0 (also at x = 0, like PyTorch)
        def _backward(out: Value) -> None:
            self.grad += (out.data > 0) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        """1 / (1 + e^-x), computed without overflow. ``Value(0.0).sigmoid().data == 0.5``"""
        if self.data >= 0:
            s = 1.0 / (1.0 + math.exp(-self.data))
        else:  # e^-x would overflow for very negative x; use e^x / (1 + e^x) instead
            e = math.exp(self.data)
            s = e / (1.0 + e)
        out = Value(s, (self,), "sigmoid")

        def _backward(out: Value) -> None:  # d sigmoid(x)/dx = s (1 - s)
            self.grad += out.data * (1.0 - out.data) * out.grad

        out._backward = _backward
        return out

    # ------------------------------------------------------------------ backprop

    def backward(self) -> None:
        """Fill ``.grad`` of every Value this one depends on with d(self)/d(that value).

        Gradients of leaves (inputs and parameters) accumulate across calls, as in PyTorch:
        call ``zero_grad()`` (or set ``.grad = 0.0``) between steps. Intermediate Values are
        reset first, so calling ``backward`` twice, or on two outputs that share a subgraph,
        adds up the leaf gradients correctly.

        >>> x = Value(2.0)
        >>> y = x * x * x
        >>> y.backward()
        >>> x.grad
        12.0
        """
        order = _topological_order(self)
        for node in order:
            if node._prev:
                node.grad = 0.0
        self.grad += 1.0  # d(self)/d(self)
        for node in reversed(order):  # outputs before inputs: the chain rule, one op at a time
            node._backward(node)


def _as_value(x: object) -> Value | None:
    """Wrap a Python number as a constant Value; None for anything that is not a number."""
    if isinstance(x, Value):
        return x
    if isinstance(x, _REAL):
        return Value(x)
    return None


def _checked_pow(base: float, exponent: Number) -> float:
    """``base ** exponent`` with errors that say which op failed."""
    if base == 0.0 and exponent < 0:
        raise ZeroDivisionError(f"pow: 0.0 cannot be raised to a negative power ({exponent})")
    try:
        return float(base**exponent)
    except OverflowError:
        raise OverflowError(
            f"pow: result overflows a float for {base} ** {exponent}"
        ) from None


def _dpow(x: float, n: float) -> float:
    """d(x^n)/dx = n x^(n-1), with the limits PyTorch uses where the formula breaks at x = 0."""
    if n == 0:
        return 0.0
    if x == 0.0 and n < 1:
        return math.inf  # e.g. sqrt(x) has an infinite slope at 0
    return n * x ** (n - 1)


def _topological_order(root: Value) -> list[Value]:
    """Every Value ``root`` depends on (and ``root``), each after all of its inputs.

    An iterative depth-first search: a node is pushed once to visit its inputs and once more
    ("expanded") to be emitted after them. No recursion, so deep graphs cannot hit Python's
    recursion limit.
    """
    order: list[Value] = []
    visited: set[Value] = set()  # Values hash by identity, which is exactly what we want
    stack: list[tuple[Value, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:  # all of its inputs are already in `order`
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for child in reversed(node._prev):  # reversed: the first input is visited first
            if child not in visited:
                stack.append((child, False))
    return order


# ---------------------------------------------------------------------------- neural nets


class Module:
    """Base class of the tiny nets below: a bag of parameters."""

    def zero_grad(self) -> None:
        """Set the grad of every parameter to 0 (grads accumulate across ``backward`` calls)."""
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self) -> list[Value]:
        """All trainable Values of this module."""
        return []


def _make_rng(seed: int | None, rng: random.Random | None) -> random.Random:
    """The generator used for weight init: ``rng``, a fresh one seeded with ``seed``, or one
    seeded from the global ``random`` module (so ``random.seed(...)`` makes init repeatable).
    """
    if seed is not None and rng is not None:
        raise ValueError("pass either seed or rng, not both")
    if rng is not None:
        return rng
    if seed is not None:
        return random.Random(seed)
    return random.Random(random.getrandbits(64))


class Neuron(Module):
    """One neuron: ``relu(w . x + b)``, or just ``w . x + b`` with ``nonlin=False``.

    Weights and bias start uniform in ``[-1/sqrt(nin), 1/sqrt(nin)]``, like ``nn.Linear``.

    >>> n = Neuron(3, seed=0)
    >>> n
    ReLUNeuron(3)
    >>> y = n([1.0, -2.0, 0.5])
    >>> len(n.parameters())
    4
    """

    def __init__(
        self,
        nin: int,
        nonlin: bool = True,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(nin, bool) or not isinstance(nin, int) or nin < 1:
            raise ValueError(f"Neuron: nin must be a positive int, got {nin!r}")
        rng = _make_rng(seed, rng)
        bound = 1.0 / math.sqrt(nin)
        self.w = [Value(rng.uniform(-bound, bound), label=f"w{i}") for i in range(nin)]
        self.b = Value(rng.uniform(-bound, bound), label="b")
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Operand] | Operand) -> Value:
        if isinstance(x, (Value, *_REAL)):
            x = [x]  # a single input, e.g. the output of a 1-neuron layer
        if len(x) != len(self.w):
            raise ValueError(f"Neuron: expected {len(self.w)} inputs, got {len(x)}")
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons that all see the same ``nin`` inputs. Extra keywords go to ``Neuron``.

    Calling a layer returns a list of Values, or a single Value when ``nout == 1``.

    >>> layer = Layer(2, 3, seed=0)
    >>> layer
    Layer of [ReLUNeuron(2), ReLUNeuron(2), ReLUNeuron(2)]
    >>> len(layer([1.0, 2.0]))
    3
    """

    def __init__(
        self,
        nin: int,
        nout: int,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        **kwargs: bool,
    ) -> None:
        if isinstance(nout, bool) or not isinstance(nout, int) or nout < 1:
            raise ValueError(f"Layer: nout must be a positive int, got {nout!r}")
        rng = _make_rng(seed, rng)  # one stream for all neurons, so they differ
        self.neurons = [Neuron(nin, rng=rng, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Operand] | Operand) -> Value | list[Value]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: ReLU hidden layers, a linear last layer.

    ``MLP(3, [4, 4, 1])`` maps 3 inputs through two hidden layers of 4 to one output.

    >>> model = MLP(3, [4, 4, 1], seed=0)
    >>> model
    MLP of [Layer of [ReLUNeuron(3), ReLUNeuron(3), ReLUNeuron(3), ReLUNeuron(3)], \
Layer of [ReLUNeuron(4), ReLUNeuron(4), ReLUNeuron(4), ReLUNeuron(4)], \
Layer of [LinearNeuron(4)]]
    >>> xs, ys = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5]], [1.0, -1.0]
    >>> for step in range(20):                       # plain gradient descent
    ...     loss = sum((model(x) - y) ** 2 for x, y in zip(xs, ys))
    ...     model.zero_grad()
    ...     loss.backward()
    ...     for p in model.parameters():
    ...         p.data -= 0.05 * p.grad
    >>> loss.data < 0.1
    True
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if len(nouts) == 0:
            raise ValueError("MLP: nouts must list at least one layer size, got []")
        rng = _make_rng(seed, rng)
        sizes = [nin] + list(nouts)
        self.layers = [
            Layer(sizes[i], sizes[i + 1], nonlin=i != len(nouts) - 1, rng=rng)
            for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence[Operand] | Operand) -> Value | list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


# ---------------------------------------------------------------------------- drawing


def _escape(text: str, record: bool = False) -> str:
    """Escape text for a double-quoted DOT label (and for record fields, its separators)."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    if record:
        for ch in "{}|<>":
            text = text.replace(ch, "\\" + ch)
    return text


def to_dot(root: Value, rankdir: str = "LR") -> str:
    """Graphviz DOT text of the graph that computes ``root``.

    Each Value is a box ``{ label | data | grad }``; each op is an oval between its inputs and
    its result. Paste the text into any Graphviz viewer, or use ``render`` to write an image.

    >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    >>> dot = to_dot(a * b)
    >>> print(dot)
    digraph lightgrad {
      rankdir=LR;
      node [fontname="Helvetica"];
      v0 [shape=record, label="{ a | data 2.0000 | grad 0.0000 }"];
      v1 [shape=record, label="{ b | data -3.0000 | grad 0.0000 }"];
      v2 [shape=record, label="{  | data -6.0000 | grad 0.0000 }"];
      v2_op [shape=ellipse, label="*"];
      v2_op -> v2;
      v0 -> v2_op;
      v1 -> v2_op;
    }
    """
    order = _topological_order(root)  # iterative, so any depth works
    ids = {id(node): f"v{i}" for i, node in enumerate(order)}
    lines = ["digraph lightgrad {", f"  rankdir={rankdir};", '  node [fontname="Helvetica"];']
    for node in order:
        nid = ids[id(node)]
        label = _escape(node.label, record=True)
        text = f"{{ {label} | data {node.data:.4f} | grad {node.grad:.4f} }}"
        lines.append(f'  {nid} [shape=record, label="{text}"];')
        if node._op:
            lines.append(f'  {nid}_op [shape=ellipse, label="{_escape(node._op)}"];')
            lines.append(f"  {nid}_op -> {nid};")
            for child in node._prev:  # one edge per operand: x * x draws two
                lines.append(f"  {ids[id(child)]} -> {nid}_op;")
    lines.append("}")
    return "\n".join(lines)


def render(root: Value, path: str, format: str = "svg") -> str:
    """Draw the graph of ``root`` to the file ``path`` (``format``: svg, png, pdf, ...).

    Needs the ``graphviz`` Python package and the Graphviz ``dot`` program; ``to_dot`` needs
    neither. Returns ``path``.

    >>> render(Value(1.0) + 2.0, "graph.svg")  # doctest: +SKIP
    'graph.svg'
    """
    try:
        import graphviz
    except ImportError as e:
        raise ImportError(
            "render: needs the 'graphviz' Python package (pip install graphviz) and the "
            "Graphviz 'dot' program; to_dot(value) works without them and returns DOT text"
        ) from e
    data = graphviz.Source(to_dot(root)).pipe(format=format)
    with open(path, "wb") as f:
        f.write(data)
    return path
