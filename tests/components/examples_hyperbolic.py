import torch

from tests.components._contract import Example

_C = 3


def _img(dt, dev):
    # requires_grad: dwt/avgpool/maxpool have no parameters, so the contract's
    # loss.backward() needs a differentiable input.
    return (torch.randn(2, _C, 6, 4, dtype=dt, device=dev, requires_grad=True),)


def _coarsen(**extra):
    return Example(
        kwargs=dict(channels=_C, **extra),
        inputs=_img,
        out_shape=(2, 4 * _C, 3, 2),
        invalid=[(dict(channels=0), "channels"), (dict(dims=4), "dims")]
        + [(dict(interp="cubic"), "interp")] * ("interp" in extra)
        + [(dict(theta=float("nan")), "theta"), (dict(phi="x"), "phi")] * ("theta" in extra)
        + [(dict(scale="half"), "scale")] * ("interp" not in extra),
    )


EXAMPLES = {
    ("coarsen", "dwt"): _coarsen(),
    ("coarsen", "learnable_dwt"): _coarsen(theta=0.3, phi=1.0),
    ("coarsen", "avgpool"): _coarsen(interp="nearest"),
    ("coarsen", "maxpool"): _coarsen(interp="linear"),
    ("hyperbolic_net", "leapfrog"): Example(
        kwargs=dict(in_channels=2, out_channels=3, width=4, depth=2, n_levels=1, coarsen="learnable_dwt",
                    h=0.5, reversible=True),
        inputs=lambda dt, dev: (torch.randn(2, 2, 8, 4, dtype=dt, device=dev),),
        out_shape=(2, 3, 8, 4),
        invalid=[(dict(width=0), "width"), (dict(depth=0), "depth"), (dict(n_levels=-1), "n_levels"),
                 (dict(coarsen="bogus"), "coarsen"), (dict(h=0.0), "h"), (dict(dims=1), "dims"),
                 (dict(coarsen="avgpool", reversible=True), "reversible"),
                 (dict(in_channels=0), "in_channels"), (dict(out_channels=0), "out_channels"),
                 (dict(layout="unet"), "layout"), (dict(wavelet_scale="half"), "wavelet_scale"),
                 (dict(width=3), "width")],
    ),
    ("hyperbolic_vae", "leapfrog"): Example(
        kwargs=dict(in_channels=2, size=8, units=2, depth=2, h=0.5, coarsen="learnable_dwt"),
        inputs=lambda dt, dev: (torch.randn(3, 2, 8, 8, dtype=dt, device=dev),),
        out_shape=(3, 2, 8, 8),
        output=lambda out: out[0] + out[1].sum(1).view(-1, 1, 1, 1),
        invalid=[(dict(size=12), "size"), (dict(units=4), "units"), (dict(depth=0), "depth"),
                 (dict(coarsen="avgpool"), "coarsen"), (dict(h=0.0), "h"), (dict(tol=-1.0), "tol"),
                 (dict(in_channels=0), "in_channels"), (dict(gauss="mmd"), "gauss"),
                 (dict(latent="pair"), "latent"), (dict(groups="blocks"), "groups"),
                 (dict(wavelet_scale="half"), "wavelet_scale")],
    ),
}
