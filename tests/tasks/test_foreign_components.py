"""Every component slot of every shipped task takes a component it has never seen (issue 19, point 5).

The foreign component wraps a shipped one of the slot's kind as a child, so it keeps the slot's contract but
has none of the shipped class's internals: no ``.weight`` or ``.bias`` of its own, another class, parameters
one level down, constructor arguments it does not declare.  Each task's smoke trial runs with it in-process
(the same ``run_trial`` a sweep uses): it must finish with finite metrics, and every metric or diagnostic the
task computes either works or is reported as not applicable (digits' Hessian κ), never a crash after training.
The pre-flight runs the same foreign component through the slot's probe.
"""
from __future__ import annotations

import math

import pytest
from torch import nn

import components
from components.registry import lookup, register
from sweeps.runner.trial import LocalReporter, run_trial
from tasks import TASK_MODULES, get_task

SLOTS = [(name, s.key) for name in TASK_MODULES for s in get_task(name).slots]


def _inner_name(task, slot) -> str:
    """The shipped component the foreign one wraps: the slot's default, else its first component value."""
    choices = [task.params[slot.key].default, *(task.params[slot.key].choices or ())]
    return next(c for c in choices if c in components.available(slot.kind))


def foreign(kind: str, inner: str) -> str:
    """Register (once) a component of ``kind`` wrapping the shipped ``inner``; returns its registry name."""
    name = f"foreign_{kind}_{inner}"
    if name in components.available(kind):
        return name
    shipped = lookup(kind, inner)

    class Foreign(nn.Module):
        invertible = getattr(shipped, "invertible", False)      # a coarsening says whether it inverts

        def __init__(self, **kwargs):
            super().__init__()
            self.inner = shipped(**kwargs)

        def forward(self, *args, **kwargs):
            return self.inner(*args, **kwargs)

        def __getattr__(self, attr):
            try:
                return super().__getattr__(attr)
            except AttributeError:
                if attr in ("weight", "bias"):
                    raise                               # what a task must not rely on
                return getattr(self.inner, attr)

    Foreign.__name__ = Foreign.__qualname__ = name
    register(kind, name)(Foreign)
    return name


@pytest.mark.parametrize("task_name, slot_key", SLOTS, ids=[f"{t}:{k}" for t, k in SLOTS])
def test_a_foreign_component_fills_every_slot(task_name, slot_key):
    task = get_task(task_name)
    slot = task.slot(slot_key)
    name = foreign(slot.kind, _inner_name(task, slot))
    module = components.build(slot.kind, name, **_some_kwargs(task, slot))
    assert not hasattr(module, "weight") and not hasattr(module, "bias")
    cfg = task.resolve({**task.smoke, slot_key: name})
    assert cfg[slot_key] == name, "the slot's key does not apply in the smoke config"
    from sweeps.language.preflight import _probes, _run_contract

    for call in _probes(slot, cfg):                      # the pre-flight's contract, on the foreign component
        assert _run_contract(components.build(slot.kind, name, **call["kwargs"]), call) is None
    reporter = LocalReporter(echo=lambda s: None)
    final = run_trial(task_name, cfg, reporter)
    assert final and all(math.isfinite(v) for v in final.values() if isinstance(v, float)), final
    assert int(final["epoch"]) == cfg["train.epochs"]


def _some_kwargs(task, slot):
    """Constructor arguments the task's probe passes for the slot in the smoke config."""
    from sweeps.language.preflight import _probes

    cfg = task.resolve({**task.smoke, slot.key: _inner_name(task, slot)})
    return _probes(slot, cfg)[0]["kwargs"]


def test_digits_reports_kappa_as_not_applicable_for_a_foreign_linear():
    task = get_task("digits")
    name = foreign("linear", "dense")
    reporter = LocalReporter(echo=lambda s: None)
    final = run_trial("digits", task.resolve({**task.smoke, "model.linear": name}), reporter)
    assert "hessian_kappa" not in final and reporter.info["hessian_kappa"].startswith("not applicable")
