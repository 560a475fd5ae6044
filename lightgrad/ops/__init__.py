"""Built-in ops: every one a ``Function`` (forward calls a backend primitive, backward is
written with Tensor ops), grouped by family."""
from . import elementwise, linalg, movement, nn, reduce  # noqa: F401
from . import attention, conv, loss, norm, pool  # noqa: F401
