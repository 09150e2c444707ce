import torch

from tests.components._contract import Example


def _pair(dt, dev, shape=(2, 3, 4, 5)):
    g = torch.Generator().manual_seed(1)
    x = (2 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype=dt, device=dev)
    f = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype=dt, device=dev)
    return x.requires_grad_(), f.requires_grad_()


_POLY_INVALID = [(dict(order=-1), "order"), (dict(order=21), "order"), (dict(order=2.0), "order"),
                 (dict(sigma="relu"), "sigma"), (dict(bound="scale"), "bound"),
                 (dict(alpha_init="zeros"), "alpha_init"), (dict(identity="yes"), "identity")]

EXAMPLES = {
    ("fusion", "cfu"): Example(
        kwargs=dict(order=3, channels=3),
        inputs=_pair, out_shape=(2, 3, 4, 5), invalid=_POLY_INVALID),
    ("fusion", "pu"): Example(
        kwargs=dict(order=3, channels=3),
        inputs=_pair, out_shape=(2, 3, 4, 5), invalid=_POLY_INVALID),
    ("fusion", "add"): Example(
        kwargs=dict(order=3, channels=3),
        inputs=_pair, out_shape=(2, 3, 4, 5)),
    ("fusion", "concat"): Example(
        kwargs=dict(order=3, channels=3),
        inputs=_pair, out_shape=(2, 3, 4, 5),
        invalid=[(dict(channels=0), "channels"), (dict(channels=None), "channels"),
                 (dict(channels=2.5), "channels")]),
}
