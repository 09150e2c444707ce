"""Chebyshev Fusion Unit (paper 000) cost inside a ResNet basic block.

Step time (forward + backward) of conv3×3–BN–ReLU–conv3×3–BN + fusion + ReLU,
batch 32, 64 channels, 16×16, with CFU at order 9 (the top of the paper's
sweep) against the additive shortcut it replaces (Sec. IV-C).  Target: CFU
block at most 1.3× the additive block.  A second line times the hand-written
fast path against autograd through the reference formula, both in the block.
A third line times one HNN training step (CFU paper Sec. IV-B: the loss is
on ∂H/∂x, so the fusion is differentiated twice) with the closed-form second
derivatives (PolyGateGrad) against autograd through the reference formula.
"""
from __future__ import annotations

import torch
from torch import nn

import components
from benchmarks.common import Result, gc_collect, interleaved_ms, ratio_result


class _BasicBlock(nn.Module):
    def __init__(self, channels: int, fusion: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.fusion = fusion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fusion(x, self.body(x)))


def _step(block: nn.Module, x: torch.Tensor):
    def fn():
        block.zero_grad(set_to_none=True)
        block(x).sum().backward()
    return fn


def _hnn_step(fused: bool, device: str, batch: int, order: int):
    from tasks.physics.models import VectorField

    torch.manual_seed(0)
    field = VectorField(4, "hnn", 200, "cfu", order).to(device)
    field.net.fusion.fused = fused
    opt = torch.optim.Adam(field.parameters(), 1e-3)
    x, dx = torch.randn(batch, 4, device=device), torch.randn(batch, 4, device=device)

    def fn():
        loss = torch.nn.functional.mse_loss(field(x), dx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return fn


def run(quick: bool = False) -> list[Result]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch, channels, size, order = (8, 64, 16, 9) if quick else (32, 64, 16, 9)
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size, device=device)
    blocks = {}
    for key, name, kw in [("add", "add", {}), ("cfu", "cfu", {}), ("cfu_ref", "cfu", {"fused": False})]:
        torch.manual_seed(0)  # identical conv weights in every block
        fusion = components.build("fusion", name, order=order, channels=channels, **kw)
        blocks[key] = _BasicBlock(channels, fusion).to(device)
    gc_collect()
    t = interleaved_ms({k: _step(b, x) for k, b in blocks.items()}, repeat=5 if quick else 20)
    shape = f"batch {batch}, {channels} ch, {size}x{size}, {device}, {torch.get_num_threads()} threads"
    hb = 50 if quick else 200
    th = interleaved_ms({k: _hnn_step(k == "fused", device, hb, order) for k in ("fused", "ref")},
                        repeat=5 if quick else 30)
    return [
        ratio_result(f"ResNet basic block fwd+bwd: CFU order {order} vs additive, {shape}",
                     t["cfu"], t["add"], "ms", max_ratio=1.3,
                     note="CFU: 9 sigmoids + 2 recursions of 9 orders per element"),
        ratio_result(f"ResNet basic block fwd+bwd: CFU fused path vs autograd reference, {shape}",
                     t["cfu"], t["cfu_ref"], "ms", note="informational"),
        ratio_result(f"HNN-CFU training step (2-body MLP 4-200-200, batch {hb}), order {order}: closed-form "
                     f"second derivatives vs autograd through the reference, {device}, "
                     f"{torch.get_num_threads()} threads", th["fused"], th["ref"], "ms", max_ratio=1.0,
                     note="the fused path must not be slower"),
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
