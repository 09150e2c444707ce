"""Contract examples for the CDS components (paper 002): cds_encodings.py and cds_models.py,
which build the layers of cds.py and cds_invariant.py."""
import torch

from tests.components._contract import Example

_CPLX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _rgb(dt, dev):
    # encodings have no parameters: the input needs a gradient for the contract's backward()
    return (torch.rand(2, 3, 8, 8, dtype=dt, device=dev, requires_grad=True),)


def _z(channels, size=32):
    return lambda dt, dev: (torch.randn(3, channels, size, size, dtype=_CPLX[dt], device=dev),)


_MODEL_INVALID = [(dict(in_channels=0), "in_channels"), (dict(num_classes=-1), "num_classes"),
                  (dict(input_size=4), "input_size")]
_SETTINGS_INVALID = [(dict(init="reference_ungrouped"), "init"), (dict(omega_constraint="clamp"), "omega_constraint")]

EXAMPLES = {
    ("encoding", "rgb"): Example(kwargs={}, inputs=_rgb, out_shape=(2, 3, 8, 8)),
    ("encoding", "sliding"): Example(kwargs={}, inputs=_rgb, out_shape=(2, 2, 8, 8)),
    ("encoding", "lab"): Example(kwargs=dict(scale=100.0), inputs=_rgb, out_shape=(2, 2, 8, 8),
                                 invalid=[(dict(scale=0.0), "scale"), (dict(scale=-1.0), "scale")]),
    # the authors' code's settings (issue 25), so that their paths get the contract's checks too
    ("complex_model", "type_i"): Example(
        kwargs=dict(in_channels=2, init="reference", omega_constraint="reference"), inputs=_z(2), out_shape=(3, 10),
        invalid=_MODEL_INVALID + _SETTINGS_INVALID + [(dict(metric="cosine"), "metric"), (dict(div_eps=0.0), "div_eps"),
                                                      (dict(div_eps=float("inf")), "div_eps")]),
    ("complex_model", "type_e"): Example(
        kwargs=dict(in_channels=3, num_classes=4, input_size=28, metric="manifold", prototype_scale="reference"),
        inputs=_z(3, 28), out_shape=(3, 4),
        invalid=_MODEL_INVALID + _SETTINGS_INVALID + [(dict(metric="l1"), "metric"),
                                                      (dict(prototype_scale="sum"), "prototype_scale")]),
    ("complex_model", "dcn"): Example(
        kwargs=dict(in_channels=2, widths=(4, 8, 8, 16)), inputs=_z(2), out_shape=(3, 10),
        invalid=_MODEL_INVALID + [(dict(widths=(4, 8, 8)), "widths"), (dict(widths=(4, 0, 8, 8)), "widths")]),
    ("complex_model", "real"): Example(
        kwargs=dict(in_channels=2, input_size=16), inputs=_z(2, 16), out_shape=(3, 10),
        invalid=_MODEL_INVALID + [(dict(widths=(4, 8, 8, -1)), "widths")]),
}
