"""EConv with Gauss's three-multiplication trick vs the four-multiplication form (seed 002, Sec. 3.1).

The paper reports the trick makes the complex convolution about 25% faster. Both sides are
components.cds.ComplexConv2d with identical weights (``gauss=True`` vs ``gauss=False``),
timed forward + backward (input and weight gradients) in float32, interleaved in one
process. Target: ours / reference <= 1/1.2 (at least 1.2x faster).

Why the ideal 4/3 is not reached: the trick trades one convolution (forward plus its two
backward convolutions) for element-wise work, x + y, A + B, t3 - t2 - t1 and their
backward passes, and both sides pay the same split of the complex input into real and
imaginary planes and the final torch.complex(). On CPU those memory-bound passes are a
visible share at 16x16 maps; the convolutions dominate more as channels grow.
A second row times torch's own complex F.conv2d (which applies the same trick inside
ATen) for context, with no target.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.common import Result, gc_collect, interleaved_ms, ratio_result
from components.cds import ComplexConv2d


def _step(conv_fn, z):
    def f():
        zz = z.detach().requires_grad_()
        out = conv_fn(zz)
        (out.real.sum() + out.imag.sum()).backward()
    return f


def run(quick: bool = False) -> list[Result]:
    results = []
    configs = [(16, 32, 32, 16)] if quick else [(64, 64, 64, 16)]
    repeat = 5 if quick else 20
    for batch, cin, cout, hw in configs:
        torch.manual_seed(0)
        gauss = ComplexConv2d(cin, cout, 3, padding=1, gauss=True)
        four = ComplexConv2d(cin, cout, 3, padding=1, gauss=False)
        four.load_state_dict(gauss.state_dict())
        z = torch.randn(batch, cin, hw, hw, dtype=torch.complex64)

        def native(zz):
            return F.conv2d(zz, torch.complex(gauss.weight_real, gauss.weight_imag), padding=1)

        t = interleaved_ms({"gauss": _step(gauss, z), "four": _step(four, z), "native": _step(native, z)},
                           repeat=repeat, warmup=2)
        shape = f"batch {batch}, {cin}->{cout} ch, {hw}x{hw}, k3, complex64"
        results.append(ratio_result(
            f"EConv Gauss 3-mult vs 4-mult conv, fwd+bwd, {shape}", t["gauss"], t["four"], "ms",
            max_ratio=round(1 / 1.2, 4),
            note=f"speed-up reference/ours = {t['four'] / t['gauss']:.2f}x (paper ~1.25x, target >= 1.2x)"))
        results.append(ratio_result(
            f"torch native complex conv2d vs EConv 4-mult, fwd+bwd, {shape}", t["native"], t["four"], "ms",
            note="context only: ATen's complex conv (also 3-mult) on complex weights"))
        gc_collect()
    return results


if __name__ == "__main__":
    for r in run():
        print(r)
