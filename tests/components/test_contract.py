"""Contract tests over every registry entry (issue 3): output shape, gradients
reach every parameter, no NaN, float32 and float64, CUDA when present, and
invalid constructor arguments raise ValueError naming the argument."""
from __future__ import annotations

import importlib
import pkgutil

import pytest
import torch

import components
import tests.components as _pkg

EXAMPLES = {}
for _m in pkgutil.iter_modules(_pkg.__path__):
    if _m.name.startswith("examples_"):
        EXAMPLES.update(importlib.import_module(f"tests.components.{_m.name}").EXAMPLES)

ENTRIES = [(k, n) for k in components.available() for n in components.available(k)]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _ids(entry):
    return f"{entry[0]}/{entry[1]}"


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_every_entry_has_an_example(entry):
    assert entry in EXAMPLES, f"registry entry {entry} has no contract example in tests/components/examples_*.py"


def _run(entry, dtype, device):
    ex = EXAMPLES[entry]
    torch.manual_seed(0)
    module = components.build(*entry, **ex.kwargs)
    module = module.to(device=device, dtype=dtype) if isinstance(module, torch.nn.Module) else module
    inputs = ex.inputs(dtype, torch.device(device))
    out = module(*inputs)
    out_t = ex.output(out) if ex.output else out
    return ex, module, inputs, out_t


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_shape_grad_finite(entry, dtype, device):
    if entry not in EXAMPLES:
        pytest.skip("no example (reported by test_every_entry_has_an_example)")
    ex, module, inputs, out = _run(entry, dtype, device)
    shape = ex.out_shape(inputs) if callable(ex.out_shape) else ex.out_shape
    assert tuple(out.shape) == tuple(shape)
    assert torch.isfinite(torch.view_as_real(out) if out.is_complex() else out).all()
    real_dtype = torch.view_as_real(out).dtype if out.is_complex() else out.dtype
    assert real_dtype == dtype, f"output dtype {out.dtype} for input dtype {dtype}"
    loss = (out.abs() ** 2).sum() if out.is_complex() else (out ** 2).sum() + out.sum()
    loss.backward()
    for name, p in module.named_parameters():
        if not p.requires_grad or name in ex.no_grad_ok:
            continue
        assert p.grad is not None, f"no gradient reached parameter {name}"
        g = torch.view_as_real(p.grad) if p.grad.is_complex() else p.grad
        assert torch.isfinite(g).all(), f"non-finite gradient in {name}"
        assert g.abs().sum() > 0, f"zero gradient for parameter {name}"


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_invalid_arguments_raise_value_error(entry):
    if entry not in EXAMPLES:
        pytest.skip("no example")
    ex = EXAMPLES[entry]
    for overrides, argname in ex.invalid:
        with pytest.raises(ValueError, match=argname):
            components.build(*entry, **{**ex.kwargs, **overrides})


def test_unknown_name_lists_valid_ones():
    with pytest.raises(KeyError) as err:
        components.build("linear", "no-such-layer", in_features=4, out_features=4)
    assert "cdlinear" in str(err.value) and "dense" in str(err.value)
    with pytest.raises(KeyError, match="valid kinds"):
        components.available("no-such-kind")
