"""Fully Hyperbolic CNNs (Lensink, Peters, Haber; shared/seeds/001), Sec. 4 and
Sec. 6.2.1: the reversible network as a variational auto-encoder, "a
nonlinear analog to the truncated SVD".

* Eq. (4.1a) encoder  Ẑ = Pᵀ F(X, θ);  Eq. (4.1b) decoder  X̂ = F⁻¹(P Ẑ, θ),
  F a reversible network, F⁻¹ its exact inverse (components/hyperbolic.py:
  leapfrog steps and transitions with ``inverse``), P a learnable projection.
* Eq. (4.2) objective  ‖F⁻¹(P Pᵀ F(X)) − X‖² + α ‖P‖_c + β ε(Pᵀ F(X)).
* Sec. 6.2: F is ``units`` units of ``depth`` leapfrog layers with W = I, each
  followed by a 2D Haar DWT; MNIST (32×32): 5 units of 3 layers, h = 1e-2,
  so the state ends at 1×1 with 1024 channels.  After training, the columns
  of P whose entries are all below 1e-3 are removed (1024 → 8 latent
  dimensions) and random latent points are decoded.

Choices where the paper is silent or contradicts itself (constructor
arguments; docs/reproduction.md lists them beside the paper's text):

* No opening convolution: F starts from Y₋₁ = Y₀ = X, so F is invertible and
  P = I gives an (almost, see ``latent``) exact auto-encoder, as Sec. 4 states.
* ``latent="final_state"`` (default): F(X) = Y_N, C·S² numbers (1024 for
  MNIST at 32×32, the paper's "original 1024"), and the decoder runs the
  network backwards from the pair (P Ẑ, P Ẑ), i.e. with zero final velocity
  Y_N − Y_{N−1}, the mirror of the start Y₋₁ = Y₀.  The leapfrog state is a
  pair, so one state cannot be inverted exactly: at h = 1e-2 (5 units of 3
  layers, 32×32, initial weights) P = I reconstructs to 0.2 % relative error
  (per-pixel MSE 5e-6 of unit-variance data), and training the
  reconstruction term trains θ for this decoder.  ``"both_states"``: F(X) =
  (Y_{N−1}, Y_N), 2·C·S² numbers, exactly invertible (ablate's default before
  issue 26); it doubles the latent the group norm has to prune.
* ``groups="rows"`` (default): ‖P‖_c = Σ_i ‖P[i, :]‖₂, Eq. (4.2)'s text: "a
  1-2 group norm ... to obtain a matrix P with very few non-zero rows".  A
  zero row i drops coordinate i of F(X) from both Ẑ = Pᵀ F and P Ẑ, so the
  code lives in the span of the rows kept.  ``"columns"``: Σ_j ‖P[:, j]‖₂,
  matching Sec. 6.2.1, which removes *columns* after training (each column is
  one coordinate of Ẑ).  Either way the truncation of Sec. 6.2.1 removes
  every row and every column whose entries are all below ``tol`` (both are
  no-ops on P Pᵀ up to tol), and ``latent_dims()`` = min(rows kept, columns
  kept) ≥ rank of the truncated P: the dimensions that can still carry
  information.
* ``bias=False`` (default): the leapfrog layers without b, as the authors'
  code (components/hyperbolic.py says why).
* ε: the paper prefers the function of its ref. [44] but does not give it.
  ``gauss="moments"`` (default): ½ Σ_j (μ_j² + ½ (σ_j² − 1)²) with the
  batch's per-dimension mean and variance, a moment match to N(0, 1) whose
  gradient stays bounded.  ``gauss="kl"``: the KL divergence of N(μ_j, σ_j²)
  to N(0, 1) ([24], the alternative the paper names); its −log σ² term
  diverges on dimensions that are constant over the data (the blank border
  of digits gives exactly zero variance with P = I), and SGD then blows up,
  which is why it is not the default.  Both sum over the coordinates of Ẑ
  still active (columns kept; a removed column has zero variance by construction).

Why hand-written: no library has a reversible leapfrog VAE; the network
itself is components/hyperbolic.py's.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from . import wavelets
from .hyperbolic import LeapfrogStep, Transition, _ReversibleChain, coarsen_arguments, propagate, reverse
from .registry import available, lookup, register

_INVERTIBLE = ("dwt", "learnable_dwt")
LATENTS = ("final_state", "both_states")
GROUPS = ("rows", "columns")


@register("hyperbolic_vae", "leapfrog")
class HyperbolicVAE(nn.Module):
    """Reversible hyperbolic auto-encoder with a learnable projection P (Eqs. 4.1, 4.2).

    Args:
        in_channels: image channels C. Default 1 (MNIST).
        size: image side S, a power of two. Default 32 (Sec. 6.2.1).
        units: units (each ends with a DWT), at most log2(S). Default 5.
        depth: leapfrog layers per unit. Default 3.
        h: leapfrog step size (f scaled by h²). Default 1e-2.
        coarsen: "dwt" (Haar, the paper's) or "learnable_dwt". Default "dwt".
        bias: learn b in f(Y) = −Kᵀ relu(N(K Y + b)). Default False (the code's).
        reversible: encoder backward by recomputation (Sec. 5). Default True.
        tol: a row or column of P is removed when all its entries are below
            tol in magnitude (Sec. 6.2.1: 1e-3). Default 1e-3.
        gauss: the Gaussianity penalty ε, "moments" (default) or "kl" (see
            the module docstring).
        latent: "final_state" (default; C S², the paper's 1024 on MNIST) or
            "both_states" (2 C S², exact); see the module docstring.
        groups: groups of the 1-2 norm of P, "rows" (default, Eq. 4.2) or "columns".
        wavelet_scale: "orthonormal" (default) or "reference" (components/wavelets.py).

    ``latent_dim`` is the size of F(X) (and of the square P); ``active()`` says
    which coordinates of Ẑ survive truncation, ``latent_dims()`` how many
    dimensions the truncated P can still carry.
    """

    def __init__(self, in_channels: int = 1, size: int = 32, units: int = 5, depth: int = 3, h: float = 1e-2,
                 coarsen: str = "dwt", bias: bool = False, reversible: bool = True, tol: float = 1e-3,
                 gauss: str = "moments", latent: str = "final_state", groups: str = "rows",
                 wavelet_scale: str = "orthonormal", coarsen_kwargs: Optional[dict] = None) -> None:
        super().__init__()
        for name, v, lo in (("in_channels", in_channels, 1), ("size", size, 1), ("units", units, 0),
                            ("depth", depth, 1)):
            wavelets._check_int(name, v, lo, f"an integer >= {lo}")
        if size & (size - 1):
            raise ValueError(f"size must be a power of two (each unit halves it), got {size}")
        if 2 ** units > size:
            raise ValueError(f"units must be at most log2(size) = {int(math.log2(size))}, got {units}")
        own = coarsen not in _INVERTIBLE and coarsen in available("coarsen")      # a researcher's own coarsening
        if not (coarsen in _INVERTIBLE or (own and getattr(lookup("coarsen", coarsen), "invertible", False))):
            raise ValueError(f"coarsen must be one of {', '.join(_INVERTIBLE)} or a registered invertible coarsen "
                             f"component (F must be invertible), got {coarsen!r}")
        for name, v, ok in (("h", h, lambda v: 0 < v <= 1), ("tol", tol, lambda v: v > 0)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
                raise ValueError(f"{name} must be a positive float{' <= 1' if name == 'h' else ''}, got {v!r}")
        for name, value, allowed in (("gauss", gauss, ("moments", "kl")), ("latent", latent, LATENTS),
                                     ("groups", groups, GROUPS), ("wavelet_scale", wavelet_scale, wavelets.SCALES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        self.in_channels, self.size, self.tol, self.reversible = in_channels, size, float(tol), bool(reversible)
        self.gauss, self.latent, self.groups = gauss, latent, groups
        ops, c = [], in_channels
        for _ in range(units):
            ops.extend(LeapfrogStep(c, 2, float(h), bias) for _ in range(depth))
            ops.append(Transition(lookup("coarsen", coarsen)(channels=c, dims=2, **coarsen_arguments(
                coarsen, wavelet_scale, coarsen_kwargs)), refine=False))
            c *= 4
        self.ops = nn.ModuleList(ops)
        s = size // 2 ** units
        self.state_shape = (c, s, s)
        self.latent_dim = (2 if latent == "both_states" else 1) * in_channels * size * size
        self.P = nn.Parameter(torch.eye(self.latent_dim))

    def F(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) → (N, latent_dim): the final state (both final states with
        latent="both_states"), flattened."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, self.size, self.size):
            raise ValueError(f"input must be (N, {self.in_channels}, {self.size}, {self.size}), "
                             f"got {tuple(x.shape)}")
        if self.reversible and torch.is_grad_enabled():
            params = [p for op in self.ops for p in op.parameters()]
            pair = _ReversibleChain.apply(list(self.ops), x, x, *params)
        else:
            pair = propagate(self.ops, (x, x))
        if self.latent == "final_state":
            return pair[1].flatten(1)
        return torch.cat([pair[0].flatten(1), pair[1].flatten(1)], 1)

    def F_inv(self, v: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) → (N, C, S, S): the inverse network, read out at Y₀ (from the
        pair (v, v), zero final velocity, with latent="final_state")."""
        if self.latent == "final_state":
            y = v.reshape(-1, *self.state_shape)
            return reverse(self.ops, (y, y))[1]
        half = v.shape[1] // 2
        pair = (v[:, :half].reshape(-1, *self.state_shape), v[:, half:].reshape(-1, *self.state_shape))
        return reverse(self.ops, pair)[1]

    def encode(self, x: torch.Tensor, P: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. (4.1a): (N, C, S, S) → Ẑ = Pᵀ F(X), (N, latent_dim); ``P`` defaults to self.P."""
        return self.F(x) @ (self.P if P is None else P)

    def decode(self, z: torch.Tensor, P: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. (4.1b): (N, latent_dim) → X̂ = F⁻¹(P Ẑ), (N, C, S, S); ``P`` defaults to self.P."""
        return self.F_inv(z @ (self.P if P is None else P).T)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, S, S) → (reconstruction (N, C, S, S), code Ẑ (N, latent_dim))."""
        z = self.encode(x)
        return self.decode(z), z

    def kept_rows(self) -> torch.Tensor:
        """Bool (latent_dim,): rows of P with an entry of magnitude ≥ tol."""
        return self.P.detach().abs().amax(1) >= self.tol

    def active(self) -> torch.Tensor:
        """Bool (latent_dim,): columns of P (coordinates of Ẑ) with an entry of magnitude ≥ tol."""
        return self.P.detach().abs().amax(0) >= self.tol

    def latent_dims(self) -> int:
        """min(rows kept, columns kept): an upper bound on the rank of the truncated P."""
        return int(min(self.kept_rows().sum(), self.active().sum()))

    def truncated_P(self) -> torch.Tensor:
        """P with every row and column whose entries are all below tol set to zero (Sec. 6.2.1)."""
        rows, cols = self.kept_rows().to(self.P.dtype), self.active().to(self.P.dtype)
        return self.P.detach() * rows[:, None] * cols[None, :]

    def group_norm(self) -> torch.Tensor:
        """‖P‖_c = Σ_g ‖P_g‖₂ over the rows (groups="rows", Eq. 4.2) or the columns of P."""
        return self.P.norm(dim=1 if self.groups == "rows" else 0).sum()

    @torch.no_grad()
    def prox_group_norm_(self, step: float) -> None:
        """Proximal step of ``step``·‖P‖_c (group soft-thresholding of the rows or columns):
        P_g ← P_g · max(0, 1 − step / ‖P_g‖).  After a gradient step on the smooth
        terms of Eq. (4.2) this is proximal gradient descent; it zeroes groups
        exactly, where a subgradient step only oscillates around zero with
        amplitude ~ step."""
        dim = 1 if self.groups == "rows" else 0
        norms = self.P.norm(dim=dim, keepdim=True)
        self.P.mul_((1.0 - step / norms.clamp_min(1e-30)).clamp_min(0.0))

    def gaussianity(self, z: torch.Tensor) -> torch.Tensor:
        """ε(Ẑ) over the active dimensions from the batch's per-dimension mean μ and
        variance σ² (a batch of at least 2): moment match or KL to N(0, 1)."""
        za = z[:, self.active()]
        if za.shape[1] == 0:
            return z.new_zeros(())
        mu, var = za.mean(0), za.var(0, unbiased=False)
        if self.gauss == "kl":
            var = var + 1e-8
            return 0.5 * (var + mu * mu - 1.0 - var.log()).sum()
        return 0.5 * (mu * mu + 0.5 * (var - 1.0) ** 2).sum()

    def truncated(self, z: torch.Tensor) -> torch.Tensor:
        """Ẑ with the removed columns zeroed: the same as dropping P's columns."""
        return z * self.active().to(z.dtype)

    @torch.no_grad()
    def reconstruct_truncated(self, x: torch.Tensor) -> torch.Tensor:
        """F⁻¹(P_t P_tᵀ F(X)) with P_t = ``truncated_P()``: (N, C, S, S)."""
        P = self.truncated_P()
        return self.decode(self.encode(x, P), P)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n points drawn from N(0, I) on the active coordinates through the
        truncated P: (n, C, S, S)."""
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=self.P.dtype).to(self.P.device)
        return self.decode(self.truncated(z), self.truncated_P())
