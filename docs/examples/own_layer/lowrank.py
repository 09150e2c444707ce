"""A low-rank linear layer, W = U V with U (out × r) and V (r × in): the README's "your own layer" example.

It is registered as the ``linear`` component ``lowrank``, so any task with a ``linear`` slot (digits'
``model.linear``; the regression task of ``regression_task.py``) can use it, and its own argument ``rank``
becomes the sweep key ``model.linear.rank``.  Parameters: r·(in + out) + out.
"""
from typing import Annotated

import torch
from torch import nn

from components.registry import Range, register


@register("linear", "lowrank")
class LowRankLinear(nn.Module):
    """Args: in_features, out_features (set by the task); rank: the inner width r (8); bias (True)."""

    def __init__(self, in_features: int, out_features: int, rank: Annotated[int, Range(1, None)] = 8,
                 bias: bool = True):
        super().__init__()
        if rank > min(in_features, out_features):
            raise ValueError(f"rank {rank} is larger than the layer's width min(in_features, out_features) = "
                             f"{min(in_features, out_features)}")
        self.down = nn.Parameter(torch.randn(rank, in_features) / in_features ** 0.5)
        self.up = nn.Parameter(torch.randn(out_features, rank) / rank ** 0.5)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in_features) -> (N, out_features)."""
        y = (x @ self.down.t()) @ self.up.t()
        return y + self.bias if self.bias is not None else y
