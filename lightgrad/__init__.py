"""lightgrad: a PyTorch-style deep-learning framework you can read end to end.

>>> import lightgrad as lg
>>> x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""
from . import autograd  # noqa: I001  (autograd first: tensor.py imports from it)
from .autograd import (
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled,
)
from .backends import (
    Device, available_devices, device, get_default_device, set_default_device,
)
from .dtypes import (
    DType, bfloat16, float16, float32, float64, get_default_dtype, int8, int16, int32,
    int64, promote_types, result_type, set_default_dtype, uint8,
)
from .dtypes import bool_ as bool  # noqa: A001  (PyTorch's name: lightgrad.bool)
from .tensor import Tensor
from .threads import get_num_threads, set_num_threads
from . import ops  # noqa: F401
from .creation import (
    arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy, full, full_like,
    linspace, manual_seed, ones, ones_like, rand, rand_like, randint, randn, randn_like,
    randperm, tensor, zeros, zeros_like,
)
from .aliases import *  # noqa: F401,F403  (lg.exp(x), lg.sum(x, dim), ...)
from .functions import (  # noqa: F401
    cat, concat, concatenate, matmul, one_hot, pad, stack, where,
)
from .ops.division import floor_divide, fmod, remainder  # noqa: F401
from .ops.einsum import einsum  # noqa: F401
from .ops.linalg_extra import addmm, baddbmm, bmm, mm, mv, outer  # noqa: F401
from .ops.unique import unique, unique_consecutive  # noqa: F401

from .io import load, save

__version__ = "0.1.0"
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001

from . import data, nn, optim  # noqa: E402  (after the core: they build on it)
from . import graph  # noqa: E402  (graph mode: lg.graph, lg.jit)
from .graph import jit  # noqa: E402
from . import cuda  # noqa: E402
from . import accelerator, onnx, serialization  # noqa: E402,F401
from .backends import cudnn as _cudnn, mps as _mps  # noqa: E402,F401  (lg.backends.cudnn)
from . import utils  # noqa: E402  (lightgrad.utils.data, like torch.utils.data)
