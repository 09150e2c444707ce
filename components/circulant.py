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
  the whole batch at once (no Python loop over blocks): a half-spectrum DFT of
  the input and of the weights, one per-frequency contraction over j, one
  inverse DFT.  For B ≤ 256 the DFTs are real matrix products (cheaper than
  torch.fft + complex einsum on CPU, forward and backward); above, torch.fft;
  for layers too small to gain, W is materialised (``CDLinear.path``).
* Parameter count (Sec. III.1): n_in·n_out/B weights + n_out biases.

The gradient (Eqs. 3–4) is left to autograd through whichever path runs (the
transposed DFTs and per-frequency products are exactly those
cross-correlations); `tests/components/test_circulant.py` checks every path
against finite differences.  Dropout, the Fisher penalty and the Hessian
spectrum (Eqs. 5, 7, 8) live in circulant_extras.py.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .registry import register


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


_PATHS = ("dense", "dft", "fft")


@functools.lru_cache(maxsize=64)
def _real_dft(b: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Real matrices of the B-point half-spectrum DFT and its inverse, (2F, B) each, F = B//2+1.

    ``fwd @ x`` stacks [Re F[x](k); Im F[x](k)] for k < F (numpy sign convention,
    as torch.fft.rfft); ``spec.T @ inv`` is torch.fft.irfft (the imaginary
    parts at k = 0 and k = B/2 are ignored, and every other k counts twice for
    its conjugate partner B − k).  Built in float64 from exact integer phases.
    """
    f = b // 2 + 1
    k = torch.arange(f, dtype=torch.int64)
    m = torch.arange(b, dtype=torch.int64)
    ang = (2 * math.pi / b) * ((k[:, None] * m[None, :]) % b).to(torch.float64)
    cos, sin = torch.cos(ang), torch.sin(ang)
    self_conj = (k == 0) | (2 * k == b)
    sin[self_conj] = 0.0
    weight = torch.where(self_conj, 1.0, 2.0).to(torch.float64)[:, None] / b
    fwd = torch.cat([cos, -sin], 0)
    inv = torch.cat([weight * cos, -weight * sin], 0)
    return fwd.to(device=device, dtype=dtype), inv.to(device=device, dtype=dtype)


@register("linear", "cdlinear")
class CDLinear(nn.Module):
    """Block-circulant linear layer computed by batched FFT (Eq. 2).

    Args:
        in_features: n_in, a multiple of ``block_size``.
        out_features: n_out, a multiple of ``block_size``.
        block_size: B (paper default 4; CD theory prefers odd B = 2ℓ + 1).
        bias: add a learnable n_out bias (default True, as in the paper's
            parameter counts).
        norm: DFT normalisation in Eq. (2). "ortho" (default): F is the unitary
            DFT the paper's Sec. II names (F_n "unitary"), so
            y_i = F⁻¹[F c_ij ⊙ F X_j] = (c_ij ⊛ X_j)/√B; "backward": numpy's
            default pair, a plain circular convolution.  The paper leaves it
            open; its experiment decides: with "backward" (and fan-in init)
            SGD(lr 0.1, momentum 0.9) on digits diverges for B = 8 in 2 of 3
            seeds (52 ± 22 % after 25 epochs) because every coefficient is
            shared by B matrix entries and so takes ~B× larger steps; with
            "ortho" it trains stably (B=8: 93.7 ± 0.4 %, B=4: 93.7 ± 1.3 %).
            Initialisation keeps the effective matrix W at nn.Linear's scale
            either way.

    Attribute ``path`` ("auto" | "dense" | "dft" | "fft", default "auto")
    selects the forward algorithm; all give the same function.
    """

    def __init__(self, in_features: int, out_features: int, block_size: int = 4,
                 bias: bool = True, norm: str = "ortho") -> None:
        super().__init__()
        if norm not in ("ortho", "backward"):
            raise ValueError(f"norm must be 'ortho' or 'backward', got {norm!r}")
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
        self.norm = norm
        self.scale = block_size ** -0.5 if norm == "ortho" else 1.0
        self.weight = nn.Parameter(torch.empty(self.k_out, self.k_in, block_size))
        # W.flatten()[r·n_in + col] = weight.flatten()[_flat_idx[...]]: materialising W is then
        # one index_select (its backward one index_add), which keeps tiny layers cheap.
        self.register_buffer("_flat_idx", self._make_flat_idx(), persistent=False)
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        # Forward algorithm, all computing Eq. (2) exactly (they differ only in
        # rounding): "dense" materialises W, "dft" uses real DFT matrices, "fft"
        # torch.fft; "auto" picks by a flop model (_auto_path).  An attribute,
        # not a constructor argument, because it is not part of the model.
        self.path = "auto"
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same fan-in scaling as nn.Linear: each output sums n_in weighted inputs,
        # so U(±1/√n_in) keeps activations at the scale a dense layer would give.
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound / self.scale, bound / self.scale)   # coef ~ U(±bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def coef(self) -> torch.Tensor:
        """Effective circulant coefficients c·s (s = 1/√B for norm="ortho"): the
        first columns of the blocks of W."""
        return self.weight * self.scale if self.scale != 1.0 else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_features) → (..., out_features)."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"CDLinear expected last dim {self.in_features}, got {tuple(x.shape)}")
        path = self.path if self.path != "auto" else self._auto_path()
        if path not in _PATHS:
            raise ValueError(f"path must be one of {_PATHS}, got {path!r}")
        lead = x.shape[:-1]
        xb = x.reshape(-1, self.k_in, self.block_size)                      # (N, K_i, B)
        if path == "dense":
            y = (xb.reshape(-1, self.in_features) @ self.dense_weight().T)
        elif path == "dft":
            y = self._forward_dft(xb)
        else:
            y = self._forward_fft(xb)
        y = y.reshape(*lead, self.out_features)
        if self.bias is not None:
            y = y + self.bias
        return y

    def _auto_path(self) -> str:
        # Multiply-adds per sample: dense W·x vs the spectral route (two real DFTs
        # of (B+2) outputs per element + a per-frequency 2K_i × 2K_o product).
        # The spectral route moves data more (permutes, several kernels), so it
        # must win by 2× to be taken; tiny layers (digits MLP) stay dense.
        # Above B = 256 the O(B) matmul-DFT loses to torch.fft's O(log B).
        n_i, n_o, b = self.in_features, self.out_features, self.block_size
        spectral = (n_i + n_o) * (b + 2) + 2 * n_i * n_o * (b + 2) / b ** 2
        if 2 * spectral >= n_i * n_o:
            return "dense"
        return "dft" if b <= 256 else "fft"

    def _forward_fft(self, xb: torch.Tensor) -> torch.Tensor:
        xf = torch.fft.rfft(xb, dim=-1)                                     # (N, K_i, B/2+1)
        wf = torch.fft.rfft(self.coef, dim=-1)                            # (K_o, K_i, B/2+1)
        # Σ_j F[c_ij] ⊙ F[X_j] for every i at once: a per-frequency (K_o × K_i) matmul.
        yf = torch.einsum("njf,ijf->nif", xf, wf)                           # (N, K_o, B/2+1)
        return torch.fft.irfft(yf, n=self.block_size, dim=-1).reshape(xb.shape[0], -1)

    def _forward_dft(self, xb: torch.Tensor) -> torch.Tensor:
        # Eq. (2) in real arithmetic: the half-spectrum DFT as a (B+2) × B real
        # matrix, the complex product per frequency as one real matmul with
        # [[Re c, Im c], [−Im c, Re c]].  Every step is a real GEMM, whose
        # autograd is cheap; torch.fft + complex einsum spent most of its time
        # in copies and in the backward of rfft (bench_circulant.py).
        n, k_i, b = xb.shape
        k_o, f = self.k_out, b // 2 + 1
        fwd, inv = _real_dft(b, xb.dtype, xb.device)                        # (2F, B) each
        xh = fwd @ xb.reshape(n * k_i, b).T                                 # (2F, N·K_i): [Re; Im]
        xr = xh.view(2, f, n, k_i).permute(1, 2, 0, 3).reshape(f, n, 2 * k_i)
        wh = (fwd @ self.coef.reshape(k_o * k_i, b).T).view(2, f, k_o, k_i).transpose(2, 3)
        re, im = wh[0], wh[1]                                               # (F, K_i, K_o)
        wr = torch.cat([torch.cat([re, im], 2), torch.cat([-im, re], 2)], 1)  # (F, 2K_i, 2K_o)
        yr = torch.bmm(xr, wr)                                              # (F, N, 2K_o): [Re | Im]
        yh = yr.view(f, n, 2, k_o).permute(2, 0, 1, 3).reshape(2 * f, n * k_o)
        return (yh.T @ inv).reshape(n, k_o * b)

    def _make_flat_idx(self) -> torch.Tensor:
        b = self.block_size
        rows = torch.arange(self.out_features)
        cols = torch.arange(self.in_features)
        i, k = (rows // b)[:, None], (rows % b)[:, None]
        j, l = (cols // b)[None, :], (cols % b)[None, :]
        return ((i * self.k_in + j) * b + (k - l) % b).reshape(-1)

    def dense_weight(self) -> torch.Tensor:
        """Materialise W (out_features × in_features) with W_ij[k, l] = c_ij[(k − l) mod B]."""
        w = self.weight.reshape(-1).index_select(0, self._flat_idx).view(self.out_features, self.in_features)
        return w * self.scale if self.scale != 1.0 else w

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"block_size={self.block_size}, bias={self.bias is not None}, norm={self.norm!r}")


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
