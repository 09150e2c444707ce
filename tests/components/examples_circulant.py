import torch

from tests.components._contract import Example

# Dropout has no parameters: the inputs require grad so that the contract's
# backward() has a graph to run through.
_DROPOUT_INVALID = [(dict(p=1.0), "p"), (dict(p=-0.1), "p"), (dict(p="0.1"), "p")]

EXAMPLES = {
    ("linear", "cdlinear"): Example(
        kwargs=dict(in_features=12, out_features=8, block_size=4),
        inputs=lambda dt, dev: (torch.randn(5, 12, dtype=dt, device=dev),),
        out_shape=(5, 8),
        invalid=[(dict(block_size=3), "block_size"), (dict(block_size=0), "block_size"),
                 (dict(in_features=-4), "in_features"), (dict(out_features=6), "out_features"),
                 (dict(norm="unitary"), "norm")],
    ),
    ("linear", "dense"): Example(
        kwargs=dict(in_features=12, out_features=8),
        inputs=lambda dt, dev: (torch.randn(5, 12, dtype=dt, device=dev),),
        out_shape=(5, 8),
        invalid=[(dict(in_features=0), "in_features"), (dict(out_features=-1), "out_features")],
    ),
    ("dropout", "shannon"): Example(
        kwargs=dict(p=0.0118),
        inputs=lambda dt, dev: (torch.randn(4, 3, 6, dtype=dt, device=dev, requires_grad=True),),
        out_shape=(4, 3, 6),
        invalid=_DROPOUT_INVALID,
    ),
    ("dropout", "standard"): Example(
        kwargs=dict(p=0.5),
        inputs=lambda dt, dev: (torch.randn(4, 6, dtype=dt, device=dev, requires_grad=True),),
        out_shape=(4, 6),
        invalid=_DROPOUT_INVALID,
    ),
    ("dropout", "none"): Example(
        kwargs=dict(p=0.0),
        inputs=lambda dt, dev: (torch.randn(4, 6, dtype=dt, device=dev, requires_grad=True),),
        out_shape=(4, 6),
        invalid=_DROPOUT_INVALID,
    ),
}
