"""Bad input gives a clear Python exception that names the op and the shapes/dtypes/devices
involved, raised from lightgrad's own code (never a bare NumPy error)."""
from __future__ import annotations

import os
import re
import traceback

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import backends
from lightgrad.backends.cpu import CPUBackend

torch = pytest.importorskip("torch")

PACKAGE_DIR = os.path.dirname(lg.__file__)


def raises_clean(exc_type, pattern, fn):
    """Assert ``fn()`` raises ``exc_type`` matching ``pattern``, from a lightgrad frame, with
    no NumPy exception chained underneath; returns the message."""
    with pytest.raises(exc_type, match=pattern) as info:
        fn()
    err = info.value
    last = traceback.extract_tb(err.__traceback__)[-1]
    assert last.filename.startswith(PACKAGE_DIR), f"raised from {last.filename}"
    shown = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    assert shown is None, f"chained {type(shown).__name__}: {shown}"
    return str(err)


def torch_raises(fn):
    """PyTorch rejects the same input too (so the test isn't asking for something stricter)."""
    with pytest.raises((RuntimeError, IndexError, TypeError, ValueError)):
        fn()


# ----------------------------------------------------------------------------- shapes


def test_add_non_broadcastable_shapes():
    raises_clean(RuntimeError, r"^add: shapes \(2, 3\) and \(4,\) cannot be broadcast",
                 lambda: lg.ones(2, 3) + lg.ones(4))
    raises_clean(RuntimeError, r"^mul: shapes \(2, 3\) and \(3, 2\)",
                 lambda: lg.ones(2, 3) * lg.ones(3, 2))
    raises_clean(RuntimeError, r"^sub: shapes \(5,\) and \(2, 3\)",
                 lambda: lg.ones(5) - lg.ones(2, 3))
    torch_raises(lambda: torch.ones(2, 3) + torch.ones(4))


def test_add_shape_error_with_grad_recording():
    x = lg.ones(2, 3, requires_grad=True)
    raises_clean(RuntimeError, r"^add: shapes \(2, 3\) and \(4,\)", lambda: x + lg.ones(4))


def test_matmul_misaligned():
    raises_clean(RuntimeError, r"^matmul: shapes \(4, 3\) and \(4, 5\) do not align: 3 != 4",
                 lambda: lg.ones(4, 3) @ lg.ones(4, 5))
    raises_clean(RuntimeError, r"^matmul: shapes \(3,\) and \(4,\) do not align",
                 lambda: lg.ones(3).matmul(lg.ones(4)))
    raises_clean(RuntimeError, r"^matmul: batch dims of shapes \(2, 3, 4\) and \(3, 4, 5\)",
                 lambda: lg.ones(2, 3, 4) @ lg.ones(3, 4, 5))
    torch_raises(lambda: torch.ones(4, 3) @ torch.ones(4, 5))


def test_cat_size_mismatch():
    msg = raises_clean(RuntimeError, r"^cat: sizes of tensors must match except in dim 0",
                       lambda: lg.cat([lg.ones(2, 3), lg.ones(2, 4)]))
    assert "(2, 3)" in msg and "(2, 4)" in msg
    raises_clean(RuntimeError, r"^stack: .*\(2, 3\).*\(2, 4\)",
                 lambda: lg.stack([lg.ones(2, 3), lg.ones(2, 4)]))
    torch_raises(lambda: torch.cat([torch.ones(2, 3), torch.ones(2, 4)]))


def test_reshape_invalid_size():
    raises_clean(RuntimeError, r"^reshape: shape \(4, 2\) is invalid for input of size 6",
                 lambda: lg.ones(2, 3).reshape(4, 2))
    raises_clean(RuntimeError, r"^view: shape \(-1, 4\) is invalid for input of size 6",
                 lambda: lg.ones(6).view(-1, 4))
    raises_clean(RuntimeError, r"^reshape: only one dim can be -1",
                 lambda: lg.ones(6).reshape(-1, -1))
    torch_raises(lambda: torch.ones(2, 3).reshape(4, 2))


def test_expand_incompatible():
    raises_clean(RuntimeError, r"^expand: the size 2 of dim 0 of a tensor of shape \(2, 3\) "
                               r"cannot expand to 4", lambda: lg.ones(2, 3).expand(4, 3))


# ----------------------------------------------------------------------------- dtypes


def test_mean_of_int_tensor():
    raises_clean(TypeError, r"^mean: input dtype must be floating point, got int64",
                 lambda: lg.tensor([1, 2, 3]).mean())
    torch_raises(lambda: torch.tensor([1, 2, 3]).mean())


def test_requires_grad_on_int_tensor():
    raises_clean(RuntimeError, r"requires_grad_: only floating-point tensors can require "
                               r"gradients, got int64",
                 lambda: lg.tensor([1, 2], requires_grad=True))
    raises_clean(RuntimeError, r"floating-point.*int32",
                 lambda: lg.zeros(2, dtype=lg.int32, requires_grad=True))
    raises_clean(RuntimeError, r"floating-point.*bool", lambda: lg.tensor([True]).requires_grad_())
    torch_raises(lambda: torch.tensor([1, 2], requires_grad=True))


def test_index_with_float_tensor():
    raises_clean(IndexError, r"^index: tensors used as indices must be integer or bool, got "
                             r"float32", lambda: lg.ones(3)[lg.tensor([0.0, 1.0])])
    raises_clean(IndexError, r"^index: lists used as indices must hold ints or bools",
                 lambda: lg.ones(3)[[0.5]])
    torch_raises(lambda: torch.ones(3)[torch.tensor([0.0, 1.0])])


def test_gather_with_wrong_index_dtype():
    raises_clean(TypeError, r"^gather: index must be an integer tensor, got lightgrad\.float32",
                 lambda: lg.ones(2, 3).gather(1, lg.tensor([[0.0, 1.0]])))
    raises_clean(TypeError, r"^gather: index must be an integer tensor, got .*bool",
                 lambda: lg.ones(2, 3).gather(1, lg.tensor([[True]])))
    raises_clean(TypeError, r"^index_select: index must be an integer tensor",
                 lambda: lg.ones(3).index_select(0, lg.tensor([0.5])))
    torch_raises(lambda: torch.ones(2, 3).gather(1, torch.tensor([[0.0, 1.0]])))


def test_gather_index_shape_and_range():
    raises_clean(RuntimeError, r"^gather: index of shape \(3, 1\) does not fit a tensor of "
                               r"shape \(2, 3\)",
                 lambda: lg.ones(2, 3).gather(1, lg.tensor([[0], [1], [0]])))
    raises_clean(IndexError, r"^gather: index out of range.*size 3 \(tensor of shape \(2, 3\)\)",
                 lambda: lg.ones(2, 3).gather(1, lg.tensor([[0, 3]])))


def test_masked_fill_with_non_bool_mask():
    raises_clean(TypeError, r"^masked_fill: mask must be a bool tensor, got lightgrad\.float32",
                 lambda: lg.ones(3).masked_fill(lg.ones(3), 0.0))


def test_bad_dtype_name():
    raises_clean(TypeError, r"unsupported dtype 'float8'",
                 lambda: lg.zeros(2, dtype="float8"))


def test_inplace_result_dtype_cannot_be_cast():
    raises_clean(RuntimeError, r"^div_: result type float32 can't be cast to the in-place "
                               r"target's dtype int64", lambda: lg.tensor([1, 2]).div_(2))


def test_bool_subtraction_and_negative_int_power_name_the_op():
    # NumPy refuses these; the error must still say which op and which operands
    msg = raises_clean(TypeError, r"^sub: not supported for \(1,\) bool on cpu and \(1,\) bool",
                       lambda: lg.tensor([True]) - lg.tensor([False]))
    assert "bool" in msg
    raises_clean(ValueError, r"^pow: not supported for \(2,\) int64 on cpu and int -1",
                 lambda: lg.tensor([2, 3]) ** -1)
    torch_raises(lambda: torch.tensor([True]) - torch.tensor([False]))
    torch_raises(lambda: torch.tensor([2, 3]) ** -1)


# ----------------------------------------------------------------------------- devices


@pytest.fixture
def fake_cuda():
    """A second device type served by the CPU backend; removed again afterwards."""
    saved_factories = dict(backends._factories)
    saved_devices = dict(backends._devices)
    backends.register_backend("cuda", lambda index: CPUBackend())
    try:
        yield
    finally:
        backends._factories.clear()
        backends._factories.update(saved_factories)
        backends._devices.clear()
        backends._devices.update(saved_devices)


def test_device_mismatch(fake_cuda):
    gpu = lg.ones(2, 3, device="cuda")
    assert gpu.device == "cuda:0"
    cpu = lg.ones(2, 3)
    for fn, op in [(lambda: cpu + gpu, "add"), (lambda: gpu + cpu, "add"),
                   (lambda: gpu * cpu, "mul"), (lambda: gpu @ lg.ones(3, 2), "matmul"),
                   (lambda: lg.cat([gpu, cpu]), "cat"), (lambda: gpu.mul_(cpu), "mul")]:
        msg = raises_clean(RuntimeError, rf"^{op}: expected all tensors on the same device",
                           fn)
        assert "cpu" in msg and "cuda:0" in msg and "(2, 3)" in msg
    raises_clean(RuntimeError, r"^gather: index is on cpu but the tensor is on cuda:0",
                 lambda: gpu.gather(1, lg.tensor([[0]])))
    raises_clean(IndexError, r"^index: index tensor is on cpu but the indexed tensor is on "
                             r"cuda:0", lambda: gpu[lg.tensor([0])])
    raises_clean(RuntimeError, r"^add: .*cuda:1.*cuda:0",
                 lambda: lg.ones(2, device="cuda:1") + lg.ones(2, device="cuda:0"))
    moved = gpu.to("cpu") + cpu  # an explicit move is the way to mix them
    np.testing.assert_array_equal(moved.numpy(), np.full((2, 3), 2.0, dtype=np.float32))


def test_fake_cuda_fixture_cleans_up():
    assert "cuda" not in backends._factories or "cuda" in lg.available_devices()
    assert not any(k.startswith("cuda") for k in backends._devices) or \
        "cuda" in lg.available_devices()


# ----------------------------------------------------------------------------- autograd


def test_backward_on_non_scalar_without_gradient():
    y = lg.ones(2, 3, requires_grad=True) * 2
    raises_clean(RuntimeError, r"^backward: grad can be implicitly created only for scalar "
                               r"outputs, got an output of shape \(2, 3\)", y.backward)
    raises_clean(RuntimeError, r"^backward: gradient has shape \(3,\) but the output has shape "
                               r"\(2, 3\)", lambda: y.backward(lg.ones(3)))
    torch_raises((torch.ones(2, 3, requires_grad=True) * 2).backward)


def test_backward_on_tensor_without_grad():
    raises_clean(RuntimeError, r"^backward: element of shape \(\) does not require grad",
                 lambda: lg.ones(2).sum().backward())


def test_second_backward_through_freed_graph():
    x = lg.ones(3, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    raises_clean(RuntimeError, r"Backward: trying to backward through the graph a second time"
                               r".*retain_graph=True", y.backward)
    tx = torch.ones(3, requires_grad=True)
    ty = (tx.exp() * tx).sum()
    ty.backward()
    torch_raises(ty.backward)


def test_custom_function_wrong_gradient_shape():
    class Bad(lg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    y = Bad.apply(lg.ones(3, requires_grad=True)).sum()
    raises_clean(RuntimeError, r"^BadBackward returned an invalid gradient for input 0: shape "
                               r"\(\), expected \(3,\)", y.backward)


# ----------------------------------------------------------------------------- dims and indices


@pytest.mark.parametrize("op,call", [
    ("sum", lambda t: t.sum(dim=5)),
    ("mean", lambda t: t.mean(dim=-3)),
    ("softmax", lambda t: t.softmax(dim=2)),
    ("max", lambda t: t.max(dim=2)),
    ("transpose", lambda t: t.transpose(0, 2)),
    ("squeeze", lambda t: t.squeeze(3)),
    ("cat", lambda t: lg.cat([t, t], dim=2)),
    ("size", lambda t: t.size(2)),
])
def test_dim_out_of_range(op, call):
    raises_clean(IndexError, rf"^{op}: dim -?\d is out of range for a tensor of shape \(2, 3\) "
                             r"with 2 dims \(expected a dim in \[-2, 1\]\)",
                 lambda: call(lg.ones(2, 3)))


def test_torch_also_rejects_bad_dim():
    torch_raises(lambda: torch.ones(2, 3).sum(dim=5))


def test_reduce_dim_named_twice():
    raises_clean(ValueError, r"^mean: dim \(0, 0\) names a dimension more than once",
                 lambda: lg.ones(2, 3).mean(dim=(0, 0)))


@pytest.mark.parametrize("index,pattern", [
    (5, r"index 5 is out of range for dim 0 with size 2 \(tensor of shape \(2, 3\)\)"),
    ((0, -4), r"index -4 is out of range for dim 1 with size 3"),
    ((slice(None), 3), r"index 3 is out of range for dim 1 with size 3"),
    ([0, 2], r"index 2 is out of range for dim 0 with size 2"),
    ((0, 0, 0), r"too many indices for a tensor of shape \(2, 3\): 3 given, 2 dims"),
    ((None, 0, 0, 0), r"too many indices"),
    ((Ellipsis, 0, Ellipsis), r"an index can only have a single ellipsis"),
])
def test_bad_indices(index, pattern):
    raises_clean(IndexError, "^index: " + pattern, lambda: lg.ones(2, 3)[index])


def test_bad_tensor_indices():
    raises_clean(IndexError, r"^index: index 2 is out of range for dim 0 with size 2",
                 lambda: lg.ones(2, 3)[lg.tensor([0, 2])])
    raises_clean(IndexError, r"^index: index -3 is out of range for dim 0 with size 2",
                 lambda: lg.ones(2, 3)[lg.tensor([-3])])
    raises_clean(IndexError, r"^index: bool mask of shape \(3,\) does not match",
                 lambda: lg.ones(2, 3)[lg.tensor([True, False, True])])
    torch_raises(lambda: torch.ones(2, 3)[torch.tensor([0, 2])])


def test_bad_index_in_setitem():
    def assign():
        t = lg.zeros(2, 3)
        t[2] = 1.0
    raises_clean(IndexError, r"^index: index 2 is out of range for dim 0 with size 2", assign)


def test_item_on_multi_element_tensor():
    raises_clean(RuntimeError, r"^item: a tensor with 3 elements \(shape \(3,\)\) cannot be "
                               r"converted to a Python number", lambda: lg.ones(3).item())
    raises_clean(RuntimeError, r"^item: a tensor with 0 elements", lambda: lg.ones(0).item())
    torch_raises(lambda: torch.ones(3).item())


def test_bool_of_multi_element_tensor():
    raises_clean(RuntimeError, r"Boolean value of a tensor with 2 values \(shape \(2,\)\) is "
                               r"ambiguous", lambda: bool(lg.ones(2)))


# ----------------------------------------------------------------------------- creation


@pytest.mark.parametrize("op,call", [
    ("zeros", lambda: lg.zeros(-1)),
    ("ones", lambda: lg.ones(2, -3)),
    ("full", lambda: lg.full((-2,), 1.0)),
    ("eye", lambda: lg.eye(-1)),
    ("randn", lambda: lg.randn(-1)),
    ("randint", lambda: lg.randint(0, 3, (-1,))),
])
def test_negative_sizes(op, call):
    raises_clean(RuntimeError, rf"^{op}: sizes must be non-negative, got \(.*-\d", call)


def test_non_int_sizes_and_ragged_data():
    raises_clean(TypeError, r"^zeros: sizes must be ints, got float in \(2\.5,\)",
                 lambda: lg.zeros(2.5))
    raises_clean(ValueError, r"^tensor: could not build a tensor from the data: the nested "
                             r"sequences are ragged", lambda: lg.tensor([[1, 2], [3]]))
    raises_clean(TypeError, r"^tensor: could not infer a dtype", lambda: lg.tensor(["a"]))


def test_chunk_zero_and_split_mismatch():
    raises_clean(RuntimeError, r"^chunk: chunks must be greater than 0, got 0",
                 lambda: lg.ones(3).chunk(0))
    raises_clean(ValueError, r"^split: sizes \[2, 2\] sum to 4 but dim 0 of shape \(5,\) has "
                             r"size 5", lambda: lg.ones(5).split([2, 2]))


def test_operand_of_wrong_type():
    raises_clean(TypeError, r"^add: expected a Tensor or a Python number, got str",
                 lambda: lg.ones(2) + "a")


def test_error_messages_never_mention_numpy_internals():
    """A sweep over the errors above: none comes out of a NumPy frame."""
    calls = [lambda: lg.ones(2, 3) + lg.ones(4), lambda: lg.ones(4, 3) @ lg.ones(4, 5),
             lambda: lg.ones(2, 3).reshape(4, 2), lambda: lg.ones(2, 3)[5],
             lambda: lg.ones(2, 3).sum(dim=5), lambda: lg.zeros(-1),
             lambda: lg.tensor([True]) - lg.tensor([True]), lambda: lg.ones(3).chunk(0)]
    for fn in calls:
        try:
            fn()
        except Exception as err:  # noqa: BLE001  (any type; we check where it came from)
            frame = traceback.extract_tb(err.__traceback__)[-1]
            assert "numpy" not in frame.filename, (frame.filename, err)
            assert re.match(r"^[a-z_]+: ", str(err)), str(err)
        else:
            raise AssertionError("expected an error")


def test_inplace_arithmetic_shape_mismatch_is_clear_outside_autograd():
    x = lg.zeros(3)
    for op in ("add_", "sub_", "mul_", "div_"):
        with pytest.raises(RuntimeError, match=r"\(3,\) and \(4,\)"):
            getattr(x, op)(lg.ones(4))
    with pytest.raises(RuntimeError, match="in-place target has shape"):
        x.add_(lg.ones(2, 3))  # broadcasts, but not to x's own shape
    assert x.tolist() == [0.0, 0.0, 0.0]
