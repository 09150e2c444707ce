import torch

from tests.components._contract import Example


def _invalid(dims):
    return [(dict(kernel_size=4), "kernel_size"), (dict(kernel_size=0), "kernel_size"),
            (dict(kernel_size=(3,) * (dims + 1)), "kernel_size"), (dict(in_channels=0), "in_channels"),
            (dict(out_channels=-2), "out_channels"), (dict(stride=0), "stride"), (dict(dilation=0), "dilation"),
            (dict(groups=4), "groups"), (dict(padding="full"), "padding"), (dict(padding=-1), "padding"),
            (dict(padding_mode="mirror"), "padding_mode"), (dict(n_l=0), "n_l"), (dict(n_l=2.5), "n_l")]


def _hyper_invalid(dims):
    return _invalid(dims) + [(dict(hidden=()), "hidden"),
                             (dict(hidden=(16, 0)), "hidden"), (dict(negative_slope=-0.1), "negative_slope"),
                             (dict(init="xavier"), "init")]


EXAMPLES = {
    ("conv2d", "hyper"): Example(
        kwargs=dict(in_channels=3, out_channels=6, kernel_size=5, n_l=4, stride=2),
        inputs=lambda dt, dev: (torch.randn(2, 3, 9, 8, dtype=dt, device=dev),),
        out_shape=(2, 6, 5, 4),
        invalid=_hyper_invalid(2),
    ),
    ("conv2d", "standard"): Example(
        kwargs=dict(in_channels=3, out_channels=6, kernel_size=5, stride=2),
        inputs=lambda dt, dev: (torch.randn(2, 3, 9, 8, dtype=dt, device=dev),),
        out_shape=(2, 6, 5, 4),
        invalid=_invalid(2),
    ),
    ("conv3d", "hyper"): Example(
        kwargs=dict(in_channels=2, out_channels=4, kernel_size=3, n_l=4),
        inputs=lambda dt, dev: (torch.randn(2, 2, 5, 4, 3, dtype=dt, device=dev),),
        out_shape=(2, 4, 5, 4, 3),
        invalid=_hyper_invalid(3),
    ),
    ("conv3d", "standard"): Example(
        kwargs=dict(in_channels=2, out_channels=4, kernel_size=3),
        inputs=lambda dt, dev: (torch.randn(2, 2, 5, 4, 3, dtype=dt, device=dev),),
        out_shape=(2, 4, 5, 4, 3),
        invalid=_invalid(3),
    ),
}
