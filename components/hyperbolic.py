"""Fully Hyperbolic Convolutional Neural Networks (Lensink, Peters, Haber) —
components/hyperbolic.py: the leapfrog layer (Eqs. 3.2, 3.6, 3.7), the
encoder-decoder of Fig. 2 / Sec. 6, and reversible training (Sec. 5,
Algorithm 5.1). Coarsening operators live in components/wavelets.py.

The network state is a pair (Y_{j-1}, Y_j). Two kinds of operations act on
it, each with an exact inverse when the coarsening is invertible:

* a leapfrog step   (Y_{j-1}, Y_j) -> (Y_j, 2 Y_j - Y_{j-1} + h^2 f(Y_j)),
  f(Y) = -K^T relu(N(K Y [+ b])), N(x) = x / sqrt(sum_c x^2 + 1e-5) per pixel;
* a transition      (P, Q) -> (W P, W Q)   (W = coarsen or its inverse).

Applying W to both states and then a step is exactly Eq. (3.6)/(3.7):
Y_{j+1} = 2 W Y_j - W Y_{j-1} + h^2 f(W Y_j). The backward pass recovers
Y_{j-1} = 2 Y_j + h^2 f(Y_j) - Y_{j+1} and W^{-1}, so with reversible=True
only the final pair is kept for backward (Sec. 5) and activation memory does
not grow with depth.

Choices between the paper's text and the authors' code (klensink/HyperNet),
each a constructor argument (docs/reproduction.md has the table):

* ``bias=False`` (default): f without b, as the authors' code (its symmetric
  layer's convolution has no bias).  The paper's θ_j = {K_j, b_j} (Sec. 3.1)
  has one (``bias=True``).  Default off because the code produced the
  paper's numbers, and because without b the layer keeps f(0) = 0 and is
  invariant to the scale of Y (N normalises K Y): a blank region stays
  blank and the update depends on the state's direction only, where with b
  every layer pushes −Kᵀ relu(N(b)) into flat regions.
* ``layout="reference"`` (default): no learned opening, the image's channels
  are repeated up to ``width`` (the paper's video input "repeating the RGB
  channels twice", Sec. 6.1.2; the code feeds the image in directly) and
  the head is a 3x3 convolution without bias (the code's classifier).
  ``"learned_opening"`` is ablate's layout before issue 26: a 3x3
  convolution in_channels -> width with bias (Fig. 2: "the first layer
  opens the image up"), a 1x1 head with bias.
* ``wavelet_scale``: "orthonormal" (default, the paper's orthogonal W) or
  "reference" (the code's Haar at 2^(−dims/2) ×), passed to the coarsening
  (components/wavelets.py).

Why hand-written: MONAI/torch have no leapfrog or reversible-chain module;
torch.utils.checkpoint still stores one state per segment.
"""
from __future__ import annotations

import inspect
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from . import wavelets  # noqa: F401  (registers the "coarsen" kind)
from .registry import available, lookup, register

_CONV = {2: (F.conv2d, F.conv_transpose2d), 3: (F.conv3d, F.conv_transpose3d)}
_COARSEN = ("dwt", "learnable_dwt", "avgpool", "maxpool")
LAYOUTS = ("reference", "learned_opening")


class LeapfrogStep(nn.Module):
    """One hyperbolic layer on the state pair (Eq. 3.2 with W_j = I).

    Args:
        channels: channels C of Y_j; K is a C -> C 3x3(x3) convolution.
        dims: 2 or 3.
        h: step size; f is scaled by h^2 as in the leapfrog discretisation
            of Eq. (3.3) (Sec. 5 writes h^2 f explicitly). Default 0.1.
        bias: learn b in K Y + b (theta_j = {K_j, b_j}, Sec. 3.1). Default
            False, the reference code's f(Y) = -K^T relu(N(K Y)) (module docstring).
    """

    def __init__(self, channels: int, dims: int = 2, h: float = 0.1, bias: bool = False) -> None:
        super().__init__()
        self.dims, self.h = dims, h
        self.weight = nn.Parameter(torch.empty(channels, channels, *([3] * dims)))
        # Same init as nn.Conv; h^2 keeps the update small at any width.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def f(self, y: torch.Tensor) -> torch.Tensor:
        """f(Y) = -K^T relu(N(K Y [+ b])), same shape as Y."""
        conv, conv_t = _CONV[self.dims]
        z = conv(y, self.weight, self.bias, padding=1)
        z = z * torch.rsqrt(z.pow(2).sum(1, keepdim=True) + 1e-5)
        return -conv_t(torch.relu(z), self.weight, padding=1)

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(Y_{j-1}, Y_j) -> (Y_j, Y_{j+1}), all (N, C, *S)."""
        y_prev, y = pair
        return y, 2 * y - y_prev + self.h ** 2 * self.f(y)

    def inverse(self, pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(Y_j, Y_{j+1}) -> (Y_{j-1}, Y_j)."""
        y, y_next = pair
        return 2 * y + self.h ** 2 * self.f(y) - y_next, y

    def recompute(self, pair):
        """Input pair (as graph leaves) and output recomputed with a graph from
        the output pair, evaluating f(Y_j) once for both the inversion and the
        graph (4 instead of 5 f-costs per layer for forward + backward)."""
        y = pair[0].detach().requires_grad_()
        with torch.enable_grad():
            fy = self.h ** 2 * self.f(y)
        y_prev = (2 * pair[0] + fy.detach() - pair[1]).requires_grad_()
        with torch.enable_grad():
            return (y_prev, y), (y, 2 * y - y_prev + fy)


class Transition(nn.Module):
    """Apply a coarsen module (or its inverse, ``refine=True``) to both states."""

    def __init__(self, op: nn.Module, refine: bool) -> None:
        super().__init__()
        self.op, self.refine = op, refine

    def forward(self, pair):
        fwd = self.op.inverse if self.refine else self.op
        return fwd(pair[0]), fwd(pair[1])

    def inverse(self, pair):
        if not self.op.invertible:
            raise RuntimeError(f"{type(self.op).__name__} is not invertible")
        inv = self.op if self.refine else self.op.inverse
        return inv(pair[0]), inv(pair[1])

    def recompute(self, pair):
        """(input pair as graph leaves, output recomputed with a graph)."""
        with torch.no_grad():
            inp = tuple(t.requires_grad_() for t in self.inverse(pair))
        with torch.enable_grad():
            return inp, self(inp)


def propagate(ops, pair, keep: bool = False):
    """Run ``ops`` forward; with keep=True also return every intermediate pair."""
    pairs = [pair]
    for op in ops:
        pair = op(pair)
        if keep:
            pairs.append(pair)
    return (pair, pairs) if keep else pair


def reverse(ops, pair, keep: bool = False):
    """Recover the input pair of ``ops`` from their output pair (Algorithm 5.1)."""
    pairs = [pair]
    for op in reversed(ops):
        pair = op.inverse(pair)
        if keep:
            pairs.append(pair)
    return (pair, pairs[::-1]) if keep else pair


class _ReversibleChain(torch.autograd.Function):
    """Backpropagate through ``ops`` storing only the final state pair.

    backward walks the chain in reverse: ``op.recompute`` recovers each op's
    input pair from its output pair (the inverse) and rebuilds that single
    op's graph, and autograd takes its vector-Jacobian product: Algorithm
    5.1 with the per-step Jacobian products done by autograd. Memory: the
    final pair plus one op's graph at a time.
    """

    @staticmethod
    def forward(ctx, ops, y_prev, y, *params):
        pair = propagate(ops, (y_prev, y))
        ctx.ops = ops
        ctx.save_for_backward(*pair)
        return pair

    @staticmethod
    def backward(ctx, g_prev, g):
        ops = ctx.ops
        pair = tuple(t.detach() for t in ctx.saved_tensors)
        grads = tuple(torch.zeros_like(t) if gt is None else gt for t, gt in zip(pair, (g_prev, g)))
        pgrads = {}
        for op in reversed(ops):
            inp, out = op.recompute(pair)
            pair = tuple(t.detach() for t in inp)
            params = [p for p in op.parameters() if p.requires_grad]
            new = [torch.zeros_like(t) for t in pair]
            outs, g_outs = [], []
            for o, go in zip(out, grads):
                # An output that *is* an input (a step's first slot) passes its
                # gradient straight through; autograd.grad wants computed outputs.
                same = [k for k, i in enumerate(inp) if o is i]
                if same:
                    new[same[0]] = new[same[0]] + go
                else:
                    outs.append(o)
                    g_outs.append(go)
            res = torch.autograd.grad(outs, list(inp) + params, g_outs, allow_unused=True)
            for k in range(2):
                if res[k] is not None:
                    new[k] = new[k] + res[k]
            grads = tuple(new)
            for p, gp in zip(params, res[2:]):
                if gp is not None:
                    pgrads[p] = pgrads[p] + gp if p in pgrads else gp
        return (None, *grads, *[pgrads.get(p) for op in ops for p in op.parameters()])


def coarsen_arguments(name: str, wavelet_scale: str, extra: Optional[dict] = None) -> dict:
    """The keyword arguments of the ``coarsen`` component ``name`` besides channels and dims: the wavelet scale
    where the constructor takes one (the wavelets), and ``extra`` (a researcher's own coarsening's arguments)."""
    takes = inspect.signature(lookup("coarsen", name)).parameters
    return {**({"scale": wavelet_scale} if "scale" in takes else {}), **(extra or {})}


@register("hyperbolic_net", "leapfrog")
class HyperbolicNet(nn.Module):
    """Fully hyperbolic encoder-decoder for dense prediction (Fig. 2, Sec. 3.2, 6).

    Layout: an opening in_channels -> width (``layout``: the image's channels
    repeated, or a 3x3 convolution), Y_{-1} = Y_0 = its output, then
    2 n_levels + 1 units of ``depth`` leapfrog layers each: n_levels units
    each followed by coarsening (channels x 2^dims, resolution / 2), one
    bottom unit, and n_levels units each preceded by the inverse (refine).
    Every transition applies the same W to both states (Eqs. 3.6, 3.7). A
    head width -> out_channels gives the logits (3x3 without bias, or 1x1
    with bias). Each transition
    has its own coarsen module (its own two angles for learnable_dwt: "the
    best wavelet for each particular layer", Sec. 3.3). No long skip
    connections: with an invertible W none are needed (Sec. 3.2).

    Args:
        in_channels: input channels. Default 3.
        out_channels: output channels (classes). Default 2.
        width: channels at full resolution; level l has width * 2^(dims l).
            Default 6 (the paper's video: RGB repeated twice, Table 2); a
            multiple of in_channels with layout="reference".
        depth: leapfrog layers per unit (total 2 n_levels + 1 units, so
            depth * (2 n_levels + 1) layers). Default 4.
        n_levels: number of coarsenings (= refinements). Default 2. Spatial
            sizes must be divisible by 2^n_levels.
        coarsen: "dwt" (default), "learnable_dwt", "avgpool" or "maxpool".
        dims: 2 (images) or 3 (volumes/video). Default 2.
        h: leapfrog step size, f scaled by h^2. Default 0.1.
        bias: learn b in f (see LeapfrogStep). Default False (the authors' code).
        reversible: backpropagate by recomputing states backwards (Sec. 5);
            needs an invertible coarsen. Default True; False = plain autograd.
        layout: "reference" (default: repeated channels, 3x3 head without
            bias) or "learned_opening" (3x3 opening conv, 1x1 head); see the
            module docstring.
        wavelet_scale: "orthonormal" (default) or "reference", for dwt and
            learnable_dwt (ignored by the pooling coarsenings).

    Precision: the backward recomputation is exact algebraically, not in
    floating point. The leapfrog recurrence has a double root at 1, so
    rounding errors grow like (layers)^1.5 * eps: in float64 gradients
    match autograd to ~1e-12; in float32 at 160 layers (depth 32, 2 levels)
    we measured a global relative gradient error of 2e-3 (worst tensor 2%)
    against 8e-6 for float32 autograd. Use float64 or moderate depth where
    that matters.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 2, width: int = 6, depth: int = 4,
                 n_levels: int = 2, coarsen: str = "dwt", dims: int = 2, h: float = 0.1,
                 bias: bool = False, reversible: bool = True, layout: str = "reference",
                 wavelet_scale: str = "orthonormal", coarsen_kwargs: Optional[dict] = None) -> None:
        super().__init__()
        for name, v, lo in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                            ("width", width, 1), ("depth", depth, 1), ("n_levels", n_levels, 0)):
            wavelets._check_int(name, v, lo, f"an integer >= {lo}")
        wavelets._check_dims(dims)
        if coarsen not in _COARSEN and coarsen not in available("coarsen"):
            raise ValueError(f"coarsen must be one of {', '.join(_COARSEN)} or a registered coarsen component, "
                             f"got {coarsen!r}")
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 < h <= 1:
            raise ValueError(f"h must be a float in (0, 1], got {h!r}")
        if reversible and not lookup("coarsen", coarsen).invertible:
            raise ValueError(f"reversible=True needs an invertible coarsen (dwt, learnable_dwt), "
                             f"got coarsen={coarsen!r}; use reversible=False")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        if layout == "reference" and width % in_channels:
            raise ValueError(f"width must be a multiple of in_channels ({in_channels}) with layout='reference' "
                             f"(the image's channels are repeated up to width), got {width}")
        if wavelet_scale not in wavelets.SCALES:
            raise ValueError(f"wavelet_scale must be one of {', '.join(wavelets.SCALES)}, got {wavelet_scale!r}")
        self.dims, self.n_levels, self.reversible, self.layout = dims, n_levels, bool(reversible), layout
        conv = (nn.Conv2d, nn.Conv3d)[dims - 2]
        coarsen_kw = coarsen_arguments(coarsen, wavelet_scale, coarsen_kwargs)
        self.open = conv(in_channels, width, 3, padding=1) if layout == "learned_opening" else None
        self._repeat = width // in_channels
        ops, c = [], width
        for level in range(2 * n_levels + 1):
            if level > n_levels:  # decoder: refine before the unit
                c //= 2 ** dims
                ops.append(Transition(lookup("coarsen", coarsen)(channels=c, dims=dims, **coarsen_kw),
                                      refine=True))
            ops.extend(LeapfrogStep(c, dims, h, bias) for _ in range(depth))
            if level < n_levels:
                ops.append(Transition(lookup("coarsen", coarsen)(channels=c, dims=dims, **coarsen_kw),
                                      refine=False))
                c *= 2 ** dims
        self.ops = nn.ModuleList(ops)
        if layout == "reference":
            self.head = conv(width, out_channels, 3, padding=1, bias=False)
        else:
            self.head = conv(width, out_channels, 1)

    def opening(self, x: torch.Tensor) -> torch.Tensor:
        """Y_0 = Y_{-1}: (N, in_channels, *S) -> (N, width, *S), the channels repeated or the opening conv."""
        return self.open(x) if self.open is not None else x.repeat(1, self._repeat, *([1] * self.dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, *S) -> (N, out_channels, *S) logits; S divisible by 2^n_levels."""
        if x.dim() != self.dims + 2 or any(s % 2 ** self.n_levels for s in x.shape[2:]):
            raise ValueError(f"input must be (N, C, {', '.join('S' * self.dims)}) with sizes divisible "
                             f"by 2^n_levels = {2 ** self.n_levels}, got {tuple(x.shape)}")
        y0 = self.opening(x)
        if self.reversible and torch.is_grad_enabled():
            params = [p for op in self.ops for p in op.parameters()]
            _, y = _ReversibleChain.apply(list(self.ops), y0, y0, *params)
        else:
            _, y = propagate(self.ops, (y0, y0))
        return self.head(y)
