"""A LeNet-style CNN for small single-channel images (8x8 digits, 28x28 MNIST).

Two blocks of conv ("same" padding) -> [BatchNorm] -> ReLU -> 2x2 max-pool halve the image
twice; a hidden Linear layer and a Linear head classify the flattened feature maps. The
flattened size is computed from ``image_size``, so the same class serves 8x8 and 28x28.
Kernels default to 5x5 for images of 16 pixels or more, else 3x3.

>>> import lightgrad as lg
>>> from lightgrad.models.cnn import LeNet
>>> lg.manual_seed(0)
>>> model = LeNet(image_size=28)
>>> model(lg.randn(2, 1, 28, 28)).shape
(2, 10)
>>> model.feature_shape
(32, 7, 7)
"""
from __future__ import annotations

from typing import Sequence

from lightgrad import nn
from lightgrad.tensor import Tensor


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(size)
    if len(size) != 2:
        raise ValueError(f"LeNet: image_size must be an int or (height, width), got {size}")
    return int(size[0]), int(size[1])


class LeNet(nn.Module):
    """conv-relu-pool x2, then ``Linear(feature_size, hidden)``-ReLU-``Linear(hidden,
    num_classes)``.

    ``channels`` are the two convs' output channels; ``batch_norm`` puts a BatchNorm2d
    after each conv (the convs then have no bias); ``dropout`` > 0 adds a Dropout before
    the head. Input: (N, in_channels, H, W) with (H, W) = ``image_size``.
    """

    def __init__(self, image_size: int | Sequence[int] = 28, in_channels: int = 1,
                 num_classes: int = 10, channels: Sequence[int] = (16, 32), hidden: int = 128,
                 kernel_size: int | None = None, batch_norm: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        height, width = _pair(image_size)
        if min(height, width) < 4:
            raise ValueError(f"LeNet: images must be at least 4x4 (two 2x2 poolings), got "
                             f"image_size {(height, width)}")
        if len(channels) != 2:
            raise ValueError(f"LeNet: channels must give the two convs' widths, got "
                             f"{tuple(channels)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"LeNet: dropout must be in [0, 1), got {dropout}")
        if kernel_size is None:
            kernel_size = 5 if min(height, width) >= 16 else 3
        if kernel_size % 2 == 0:
            raise ValueError(f"LeNet: kernel_size must be odd (for 'same' padding), got "
                             f"{kernel_size}")
        self.image_size, self.in_channels = (height, width), in_channels
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            layers.append(nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2,
                                    bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c_in, height // 4, width // 4)
        feature_size = c_in * (height // 4) * (width // 4)
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(feature_size, hidden), nn.ReLU()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(hidden, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or (x.shape[1], *x.shape[2:]) != (self.in_channels, *self.image_size):
            raise ValueError(f"LeNet: expected input (N, {self.in_channels}, "
                             f"{self.image_size[0]}, {self.image_size[1]}), got shape "
                             f"{tuple(x.shape)}")
        return self.classifier(self.features(x))

    def num_parameters(self) -> int:
        """How many numbers the model learns."""
        return sum(p.numel() for p in self.parameters())
