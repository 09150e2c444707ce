"""The physics task's networks: the HNN reference MLP with a cross-layer
fusion, the Hamiltonian vector field (HNN) and the direct-field baseline.

Where the fusion sits (CFU paper Sec. III-B: "x and f(x), where f(·) serves as
the transformation of the neural network between them"): the HNN MLP
in→h→h→out has exactly one pair of same-width features joined by a learned
transformation, the two hidden layers.  So the shortcut is the first hidden
layer's output h1 and the current feature is f(h1) = tanh(W2 h1 + b2); the
output layer reads fusion(h1, f(h1)).  No projection is needed (both are
h wide), so CFU adds exactly d + 1 parameters (Sec. III-C).  The input x
itself (2-12 coordinates) cannot be the shortcut without a projection the
paper never mentions.  ``none`` returns f(h1): the reference HNN MLP, the
paper's "Baseline HNN".  The same MLP is the neural ODE's dynamics network on
the bouncing ball.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch import nn

import components
from components.fusion import FORMS

FUSIONS = ("none", "add", "concat", "cfu", "pu")


class FusionMLP(nn.Module):
    """in → hidden → hidden → out with tanh and a fusion of the two hidden layers.

    HNN reference: orthogonal init of every linear weight, no bias in the
    last layer (the HNN's output is only used through its gradient, a bias
    there would be dead).

    Args:
        n_in, n_out: input and output widths.
        hidden: width of both hidden layers (200).
        fusion: "none" (reference MLP), "add", "concat", "cfu" or "pu".
        order: d of cfu/pu (4).
        form: cfu/pu as "eq4" (default: Eq. 4 verbatim, f(h1) ∘ gate(h1)) or
            "bounded_additive" (h1 + f(h1) ∘ gate(tanh h1)); components.fusion.FORMS.
        fused: cfu/pu use their hand-written backward (True; same values as
            the reference formula, and with create_graph=True, as an HNN
            needs, closed-form second derivatives: components/fusion_kernels.py).
    """

    def __init__(self, n_in: int, n_out: int, hidden: int = 200, fusion: str = "none",
                 order: int = 4, form: str = "eq4", fused: bool = True,
                 fusion_kwargs: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        for name, v in (("n_in", n_in), ("n_out", n_out), ("hidden", hidden)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if fusion not in FUSIONS and fusion not in components.available("fusion"):
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)} or a registered fusion component, "
                             f"got {fusion!r}")
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
        self.linear1 = nn.Linear(n_in, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, n_out, bias=False)
        for lin in (self.linear1, self.linear2, self.linear3):
            nn.init.orthogonal_(lin.weight)
        self.fusion_name = fusion
        if fusion == "none":
            self.fusion: Optional[nn.Module] = None
        elif fusion in ("cfu", "pu"):
            self.fusion = components.build("fusion", fusion, order=order, channels=hidden, fused=fused,
                                           **FORMS[form])
        else:                                     # add, concat, or a researcher's own (its own arguments)
            self.fusion = components.build("fusion", fusion, channels=hidden, **(fusion_kwargs or {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, n_in) → (N, n_out)."""
        h1 = torch.tanh(self.linear1(x))
        h2 = torch.tanh(self.linear2(h1))
        return self.linear3(h2 if self.fusion is None else self.fusion(h1, h2))


class VectorField(nn.Module):
    """dx/dt of canonical states x = (q, p): HNN or the direct baseline.

    kind "hnn": the MLP outputs (F1, F2) and dx/dt = ∂F2/∂x · Mᵀ with
    M = [[0, I], [−I, 0]], i.e. (∂F2/∂p, −∂F2/∂q): F2 is a learned Hamiltonian
    (the reference's "solenoidal" field; F1, its conservative part, is unused,
    as in the reference).  kind "mlp": the MLP outputs dx/dt directly.

    Args:
        dim: state dimension D (even for hnn).
        kind: "hnn" or "mlp".
        the rest: :class:`FusionMLP`'s.
    """

    def __init__(self, dim: int, kind: str = "hnn", hidden: int = 200, fusion: str = "none",
                 order: int = 4, form: str = "eq4", fusion_kwargs: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        if kind not in ("hnn", "mlp"):
            raise ValueError(f"kind must be 'hnn' or 'mlp', got {kind!r}")
        if kind == "hnn" and dim % 2:
            raise ValueError(f"dim must be even for an HNN (q and p halves), got {dim}")
        self.kind, self.dim = kind, dim
        self.net = FusionMLP(dim, 2 if kind == "hnn" else dim, hidden, fusion, order, form, fused=True,
                             fusion_kwargs=fusion_kwargs)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) → (N,) learned Hamiltonian F2 (hnn only)."""
        return self.net(x)[:, 1]

    def forward(self, x: torch.Tensor, create_graph: Optional[bool] = None) -> torch.Tensor:
        """x: (N, D) → dx/dt (N, D).  ``create_graph`` (default: grad mode) keeps
        the HNN's inner gradient differentiable for training."""
        if self.kind == "mlp":
            return self.net(x)
        if create_graph is None:
            create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            x = x if x.requires_grad else x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.hamiltonian(x).sum(), x, create_graph=create_graph)
        gq, gp = g.chunk(2, dim=1)
        return torch.cat([gp, -gq], dim=1)     # ∂F2/∂x · Mᵀ without materialising M


def rk4_rollout(field, y0: torch.Tensor, t: torch.Tensor, substeps: int) -> torch.Tensor:
    """Classic RK4 with ``substeps`` equal steps per interval of the grid ``t``.

    field: (N, D) → (N, D); y0: (N, D); t: (T,) increasing → (N, T, D),
    the first slice being y0.  Fixed steps integrate a whole batch of
    trajectories in lockstep, which an adaptive per-trajectory solver would not.
    """
    out = [y0]
    y = y0
    for k in range(len(t) - 1):
        h = (t[k + 1] - t[k]) / substeps
        for _ in range(substeps):
            k1 = field(y)
            k2 = field(y + 0.5 * h * k1)
            k3 = field(y + 0.5 * h * k2)
            k4 = field(y + h * k3)
            y = y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y)
    return torch.stack(out, 1)
