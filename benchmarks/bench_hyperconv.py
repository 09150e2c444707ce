"""Hyper-UNet 5x5 vs UNet 5x5 inference time (seed 003, Sec. 3.2: 16 vs 14 ms per 2D image).

Both models are the same MONAI UNet (2D, channels 16-32-64-128, strides 2-2-2, two
residual units per scale like the paper's two convs per scale,
kernel 5); one is converted with ``convert_convs``.  Eval mode, no_grad: the
hyper-convs reuse their cached generated kernels, so the remaining overhead is
the cache-key check per conv.  A second row measures the uncached cost
(kernel regenerated every call, as in training) for context, with no target.
"""
from __future__ import annotations

import copy

import torch

from benchmarks.common import Result, gc_collect, interleaved_ms, ratio_result
from components.hyperconv import _HyperConvNd, convert_convs


def _models():
    from monai.networks.nets import UNet  # heavy import (~6 s): only when the benchmark runs
    torch.manual_seed(0)
    unet = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128), strides=(2, 2, 2),
                kernel_size=5, num_res_units=2).eval()
    hyper = convert_convs(copy.deepcopy(unet), kind="hyper", n_l=4).eval()
    return unet, hyper


def run(quick: bool = False) -> list[Result]:
    unet, hyper = _models()
    n_hyper = sum(isinstance(m, _HyperConvNd) for m in hyper.modules())
    results = []
    batches = (2,) if quick else (1, 4)
    repeat = 5 if quick else 20
    for batch in batches:
        x = torch.randn(batch, 1, 128, 128)

        def fwd(model):
            def f():
                with torch.no_grad():
                    return model(x)
            return f

        def fwd_uncached():
            with torch.no_grad():
                for m in hyper.modules():
                    if isinstance(m, _HyperConvNd):
                        m._cache = None
                return hyper(x)

        t = interleaved_ms({"hyper": fwd(hyper), "unet": fwd(unet), "uncached": fwd_uncached},
                           repeat=repeat, warmup=2)
        note = f"{n_hyper} hyper-convs (N_L=4), eval + no_grad, cached kernels; paper 16 vs 14 ms (1.14x)"
        results.append(ratio_result(f"Hyper-UNet 5x5 vs UNet 5x5 inference, batch {batch}, 1x128x128",
                                    t["hyper"], t["unet"], "ms", max_ratio=1.2, note=note))
        results.append(ratio_result(f"Hyper-UNet 5x5 (kernel regenerated each call) vs UNet 5x5, batch {batch}",
                                    t["uncached"], t["unet"], "ms",
                                    note="context only: the per-call cost without the eval cache"))
        gc_collect()
    return results


if __name__ == "__main__":
    for r in run():
        print(r)
