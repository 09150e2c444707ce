"""Block-circulant linear layers (CDLinear).

Paper: "Communication Dynamics Neural Networks: FFT-Diagonalized Layers"
(shared/seeds/004_ac4f87fd0ce9e956.txt).

* Sec. III.1: the weight W (n_out × n_in) is a K_o × K_i array of B × B
  circulant blocks C_ij with (C_ij)_kl = c_ij[(k − l) mod B]; the parameter
  tensor C has shape (K_o, K_i, B), K_o = n_out / B, K_i = n_in / B.  The paper
  calls c_ij "the first row"; with its index formula it is in fact the first
  *column* of C_ij.  We follow the index formula, because Eq. (2) (a circular
  convolution) and Eq. (3) (its gradient) only hold for it.
* Eq. (2): y_i = Σ_j F⁻¹[F[c_ij] ⊙ F[X_j]], computed here for all blocks and
  the whole batch at once with one rFFT of the input, one of the weights and a
  single complex contraction over j (no Python loop over blocks).
* Parameter count (Sec. III.1): n_in·n_out/B weights + n_out biases.

The gradient (Eqs. 3–4) is left to autograd through torch.fft, which computes
exactly those cross-correlations; `tests/components/test_circulant.py` checks
it against finite differences.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .registry import register


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


@register("linear", "cdlinear")
class CDLinear(nn.Module):
    """Block-circulant linear layer computed by batched FFT (Eq. 2).

    Args:
        in_features: n_in, a multiple of ``block_size``.
        out_features: n_out, a multiple of ``block_size``.
        block_size: B (paper default 4; CD theory prefers odd B = 2ℓ + 1).
        bias: add a learnable n_out bias (default True, as in the paper's
            parameter counts).
    """

    def __init__(self, in_features: int, out_features: int, block_size: int = 4,
                 bias: bool = True) -> None:
        super().__init__()
        _check_positive_int("in_features", in_features)
        _check_positive_int("out_features", out_features)
        _check_positive_int("block_size", block_size)
        for name, size in (("in_features", in_features), ("out_features", out_features)):
            if size % block_size:
                raise ValueError(
                    f"block_size={block_size} must divide {name}={size}; valid block sizes "
                    f"for {in_features}->{out_features}: "
                    f"{[b for b in range(1, min(in_features, out_features) + 1) if in_features % b == 0 and out_features % b == 0]}")
        self.in_features = in_features
        self.out_features = out_features
        self.block_size = block_size
        self.k_out = out_features // block_size
        self.k_in = in_features // block_size
        self.weight = nn.Parameter(torch.empty(self.k_out, self.k_in, block_size))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same fan-in scaling as nn.Linear: each output sums n_in weighted inputs,
        # so U(±1/√n_in) keeps activations at the scale a dense layer would give.
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_features) → (..., out_features)."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"CDLinear expected last dim {self.in_features}, got {tuple(x.shape)}")
        lead = x.shape[:-1]
        xb = x.reshape(-1, self.k_in, self.block_size)                      # (N, K_i, B)
        xf = torch.fft.rfft(xb, dim=-1)                                     # (N, K_i, B/2+1)
        wf = torch.fft.rfft(self.weight, dim=-1)                            # (K_o, K_i, B/2+1)
        # Σ_j F[c_ij] ⊙ F[X_j] for every i at once: a per-frequency (K_o × K_i) matmul.
        yf = torch.einsum("njf,ijf->nif", xf, wf)                           # (N, K_o, B/2+1)
        y = torch.fft.irfft(yf, n=self.block_size, dim=-1).reshape(*lead, self.out_features)
        if self.bias is not None:
            y = y + self.bias
        return y

    def dense_weight(self) -> torch.Tensor:
        """Materialise W (out_features × in_features) with W_ij[k, l] = c_ij[(k − l) mod B]."""
        b = self.block_size
        k = torch.arange(b, device=self.weight.device)
        idx = (k[:, None] - k[None, :]) % b                                 # (B, B)
        blocks = self.weight[:, :, idx]                                     # (K_o, K_i, B, B)
        return blocks.permute(0, 2, 1, 3).reshape(self.out_features, self.in_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"block_size={self.block_size}, bias={self.bias is not None}")


@register("linear", "dense")
class DenseLinear(nn.Linear):
    """nn.Linear under the ``linear`` registry, with the CDLinear signature.

    Args:
        in_features, out_features, bias: as nn.Linear.
        block_size: accepted and ignored so that a sweep can switch
            ``model.linear`` without touching other keys.
    """

    def __init__(self, in_features: int, out_features: int, block_size: int | None = None,
                 bias: bool = True) -> None:
        _check_positive_int("in_features", in_features)
        _check_positive_int("out_features", out_features)
        super().__init__(in_features, out_features, bias=bias)
