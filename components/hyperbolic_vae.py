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

Choices where the paper is silent (constructor arguments where they matter):

* No opening convolution: F starts from Y₋₁ = Y₀ = X, so F is invertible and
  P = I gives an exact auto-encoder, as Sec. 4 states.
* The network state is the pair (Y_{N−1}, Y_N) and F⁻¹ needs both, so F(X)
  is both final states concatenated (2·C·S² values) and P is square,
  initialised to I.  The reconstruction is the decoded Y₀.
* ‖P‖_c, "a 1-2 group norm ... to obtain a matrix P with very few non-zero
  rows": the groups are P's columns, Σ_j ‖P[:, j]‖₂, because Ẑ_j = P[:, j]ᵀ F
  and Sec. 6.2.1 shrinks the latent space by removing *columns*; grouping
  rows would drop inputs of P, never a latent dimension.
* ε: the paper prefers the function of its ref. [44] but does not give it.
  ``gauss="moments"`` (default): ½ Σ_j (μ_j² + ½ (σ_j² − 1)²) with the
  batch's per-dimension mean and variance, a moment match to N(0, 1) whose
  gradient stays bounded.  ``gauss="kl"``: the KL divergence of N(μ_j, σ_j²)
  to N(0, 1) ([24], the alternative the paper names); its −log σ² term
  diverges on dimensions that are constant over the data (the blank border
  of digits gives exactly zero variance with P = I), and SGD then blows up,
  which is why it is not the default.  Both sum over the latent dimensions
  still active (a removed dimension has zero variance by construction).

Why hand-written: no library has a reversible leapfrog VAE; the network
itself is components/hyperbolic.py's.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import wavelets
from .hyperbolic import LeapfrogStep, Transition, _ReversibleChain, propagate, reverse
from .registry import lookup, register

_INVERTIBLE = ("dwt", "learnable_dwt")


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
        bias: learn b in f(Y) = −Kᵀ relu(N(K Y + b)). Default True.
        reversible: encoder backward by recomputation (Sec. 5). Default True.
        tol: a latent dimension is removed when every entry of its column of
            P is below tol in magnitude (Sec. 6.2.1: 1e-3). Default 1e-3.
        gauss: the Gaussianity penalty ε, "moments" (default) or "kl" (see
            the module docstring).

    The latent dimension is ``latent_dim = 2 C S²``; ``active()`` says which
    dimensions survive truncation.
    """

    def __init__(self, in_channels: int = 1, size: int = 32, units: int = 5, depth: int = 3, h: float = 1e-2,
                 coarsen: str = "dwt", bias: bool = True, reversible: bool = True, tol: float = 1e-3,
                 gauss: str = "moments") -> None:
        super().__init__()
        for name, v, lo in (("in_channels", in_channels, 1), ("size", size, 1), ("units", units, 0),
                            ("depth", depth, 1)):
            wavelets._check_int(name, v, lo, f"an integer >= {lo}")
        if size & (size - 1):
            raise ValueError(f"size must be a power of two (each unit halves it), got {size}")
        if 2 ** units > size:
            raise ValueError(f"units must be at most log2(size) = {int(math.log2(size))}, got {units}")
        if coarsen not in _INVERTIBLE:
            raise ValueError(f"coarsen must be one of {', '.join(_INVERTIBLE)} (F must be invertible), "
                             f"got {coarsen!r}")
        for name, v, ok in (("h", h, lambda v: 0 < v <= 1), ("tol", tol, lambda v: v > 0)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
                raise ValueError(f"{name} must be a positive float{' <= 1' if name == 'h' else ''}, got {v!r}")
        if gauss not in ("moments", "kl"):
            raise ValueError(f"gauss must be 'moments' or 'kl', got {gauss!r}")
        self.in_channels, self.size, self.tol, self.reversible = in_channels, size, float(tol), bool(reversible)
        self.gauss = gauss
        ops, c = [], in_channels
        for _ in range(units):
            ops.extend(LeapfrogStep(c, 2, float(h), bias) for _ in range(depth))
            ops.append(Transition(lookup("coarsen", coarsen)(channels=c, dims=2), refine=False))
            c *= 4
        self.ops = nn.ModuleList(ops)
        s = size // 2 ** units
        self.state_shape = (c, s, s)
        self.latent_dim = 2 * in_channels * size * size
        self.P = nn.Parameter(torch.eye(self.latent_dim))

    def F(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) → (N, latent_dim): both final states, flattened."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, self.size, self.size):
            raise ValueError(f"input must be (N, {self.in_channels}, {self.size}, {self.size}), "
                             f"got {tuple(x.shape)}")
        if self.reversible and torch.is_grad_enabled():
            params = [p for op in self.ops for p in op.parameters()]
            pair = _ReversibleChain.apply(list(self.ops), x, x, *params)
        else:
            pair = propagate(self.ops, (x, x))
        return torch.cat([pair[0].flatten(1), pair[1].flatten(1)], 1)

    def F_inv(self, v: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) → (N, C, S, S): the inverse network, read out at Y₀."""
        half = v.shape[1] // 2
        pair = (v[:, :half].reshape(-1, *self.state_shape), v[:, half:].reshape(-1, *self.state_shape))
        return reverse(self.ops, pair)[1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. (4.1a): (N, C, S, S) → Ẑ = Pᵀ F(X), (N, latent_dim)."""
        return self.F(x) @ self.P

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Eq. (4.1b): (N, latent_dim) → X̂ = F⁻¹(P Ẑ), (N, C, S, S)."""
        return self.F_inv(z @ self.P.T)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, S, S) → (reconstruction (N, C, S, S), code Ẑ (N, latent_dim))."""
        z = self.encode(x)
        return self.decode(z), z

    def active(self) -> torch.Tensor:
        """Bool (latent_dim,): columns of P with an entry of magnitude ≥ tol."""
        return self.P.detach().abs().amax(0) >= self.tol

    def group_norm(self) -> torch.Tensor:
        """‖P‖_c = Σ_j ‖P[:, j]‖₂ (Eq. 4.2; columns = latent dimensions)."""
        return self.P.norm(dim=0).sum()

    @torch.no_grad()
    def prox_group_norm_(self, step: float) -> None:
        """Proximal step of ``step``·‖P‖_c (group soft-thresholding of the columns):
        P[:, j] ← P[:, j] · max(0, 1 − step / ‖P[:, j]‖).  After a gradient step
        on the smooth terms of Eq. (4.2) this is proximal gradient descent; it
        zeroes columns exactly, where a subgradient step only oscillates around
        zero with amplitude ~ step."""
        norms = self.P.norm(dim=0)
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
        """Ẑ with the removed dimensions zeroed: the same as dropping P's columns."""
        return z * self.active().to(z.dtype)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n points drawn from N(0, I) on the active dimensions: (n, C, S, S)."""
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=self.P.dtype).to(self.P.device)
        return self.decode(self.truncated(z))
