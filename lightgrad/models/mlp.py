"""An MLP classifier: flatten the input, then Linear-ReLU(-Dropout) blocks and a Linear head.

The layers live in ``self.layers`` (an ``nn.Sequential``), so the state_dict keys are
``layers.0.weight``, ``layers.0.bias``, ... exactly as the same model written in PyTorch.

>>> import lightgrad as lg
>>> from lightgrad.models.mlp import MLP
>>> lg.manual_seed(0)
>>> model = MLP(64, hidden=(32, 16), num_classes=10)
>>> model(lg.randn(5, 1, 8, 8)).shape
(5, 10)
>>> model.num_parameters()
2778
"""
from __future__ import annotations

from typing import Sequence

from lightgrad import nn
from lightgrad.tensor import Tensor


class MLP(nn.Module):
    """``in_features`` -> ``hidden[0]`` -> ... -> ``num_classes`` logits.

    Any input of shape (N, ...) whose trailing dims hold ``in_features`` values is
    flattened first, so images (N, 1, 28, 28) go in as they come from the data loader.
    ``dropout`` > 0 adds a Dropout after each hidden ReLU.
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (256, 128),
                 num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        sizes = [in_features, *hidden]
        for size in (*sizes, num_classes):
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                raise ValueError(f"MLP: layer sizes must be positive ints, got in_features="
                                 f"{in_features}, hidden={tuple(hidden)}, "
                                 f"num_classes={num_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout}")
        self.in_features, self.num_classes = in_features, num_classes
        blocks: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(n_in, n_out), nn.ReLU()]
            if dropout:
                blocks.append(nn.Dropout(dropout))
        blocks.append(nn.Linear(sizes[-1], num_classes))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        features = 1
        for d in x.shape[1:]:
            features *= d
        if x.ndim < 2 or features != self.in_features:
            raise ValueError(f"MLP: expected input (N, ...) with {self.in_features} features "
                             f"per sample, got shape {tuple(x.shape)}")
        return self.layers(x)

    def num_parameters(self) -> int:
        """How many numbers the model learns."""
        return sum(p.numel() for p in self.parameters())
