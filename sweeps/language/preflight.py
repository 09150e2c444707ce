"""Pre-flight: every distinct component configuration of a sweep, built once on the driver and run through its
slot's contract before anything launches (``ablate run`` and ``--dry-run``).

For each cell (and both ends of a nuisance range that sets a component argument), each component slot of the
task (tasks.schema.Slot) whose value is a component: the slot's probe says how the backbone calls it (the
constructor arguments exactly as the task passes them, the component's own ``<slot>.<argument>`` keys
included, a small random input, the output shape).  Each distinct (component, arguments) is
built once and checked: the constructor accepts the arguments, the forward pass gives the promised shape, no
NaN or inf, and a backward pass reaches every trainable parameter.  A failure is a one-line sweep error
``FILE: KEY: cell [..]: message`` naming the key that chose the component or its argument (exit 2), so a
rank larger than the layer or a layer whose weights get no gradient is reported in seconds, not after a
launch whose every trial fails on a worker.

Why by hand: it is the slot contract of this project's tasks; torch supplies the building blocks.  The
module's top is light; torch and the component families are imported by ``preflight``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ..errors import SweepError
from .expand import cells
from .study import Study


@dataclass
class Checked:
    """One component configuration the pre-flight built and ran.

    Args:
        slot: the slot's key; component: the registry name; kwargs: its constructor arguments (all calls' union
        of the sweep-set ones); calls: distinct calls of the slot in the backbone; n_params: parameters over
        those calls; cells: the cells that use it.
    """

    slot: str
    component: str
    kwargs: Dict[str, Any]
    calls: int
    n_params: int
    cells: List[str]

    def describe(self) -> str:
        own = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return (f"{self.slot}={self.component}({own}): {self.calls} call(s), {self.n_params:,} parameters, "
                f"cells {', '.join(self.cells)}")


def _configs(study: Study) -> List[Tuple[str, Dict[str, Any]]]:
    """(cell id, resolved config) per cell, and per end of each nuisance range over a slot argument."""
    out = []
    slot_args = {k: d for k, d in study.nuisance.items() if study.task.slot_of_argument(k) is not None}
    for c in cells(study):
        out.append((c.id, c.config))
        for k, d in slot_args.items():
            ends = d.args if d.kind == "choice" else d.args[:2]
            for v in ends:
                try:
                    out.append((f"{c.id},{k}={v}", study.task.resolve({**c.config, k: v})))
                except (KeyError, ValueError):
                    continue              # does not apply to this cell's component
    return out


def _where(study: Study, slot_key: str, own: Dict[str, Any]) -> str:
    """The sweep-file path that chose what failed: a set argument's key, else the slot's key."""
    for key in [f"{slot_key}.{a}" for a in own] + [slot_key]:
        for sec in ("scientific", "nuisance", "fixed"):
            if key in getattr(study, sec):
                return f"{sec}.{key}"
    return slot_key


def _probes(slot, config) -> Optional[List[Dict[str, Any]]]:
    if not slot.probe:
        return None
    import importlib

    mod, fn = slot.probe.split(":")
    return getattr(importlib.import_module(mod), fn)(config)


def _run_contract(module, call: Dict[str, Any]) -> Optional[str]:
    """None if the module keeps the slot's contract on the probe's input, else what broke."""
    import torch

    out = module(*call["inputs"])
    out = call["output"](out) if call.get("output") else out
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        return f"forward returned {type(out).__name__}, not a tensor"
    want = tuple(call["out_shape"](module) if callable(call["out_shape"]) else call["out_shape"])
    if tuple(out.shape) != want:
        return f"forward gave shape {tuple(out.shape)} for input {tuple(call['inputs'][0].shape)}; the slot needs {want}"
    real = torch.view_as_real(out) if out.is_complex() else out
    if not torch.isfinite(real).all():
        return "forward gave NaN or inf on a random input"
    if not real.requires_grad:
        return None if not any(p.requires_grad for p in module.parameters()) else "the output has no gradient"
    (real.float() ** 2).mean().backward()
    dead = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    if dead:
        return f"no gradient reaches parameter(s) {', '.join(dead[:5])}"
    bad = [n for n, p in module.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        return f"NaN or inf gradient in {', '.join(bad[:5])}"
    return None


def _check_one(slot, name: str, kwargs: Dict[str, Any], call: Dict[str, Any]) -> Tuple[Optional[str], int]:
    """(what broke or None, parameter count) of building ``name(**kwargs)`` and running the contract."""
    import torch

    import components

    torch.manual_seed(0)
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        module = components.build(slot.kind, name, **kwargs)
    except Exception as e:  # noqa: BLE001 - the user's constructor may raise anything
        return f"{name}({shown}) raised {type(e).__name__}: {_first_line(e)}", 0
    n = sum(p.numel() for p in module.parameters()) if isinstance(module, torch.nn.Module) else 0
    try:
        broke = _run_contract(module, call)
    except Exception as e:  # noqa: BLE001 - a forward or backward that raises breaks the contract
        return f"{name}({shown}) failed in forward/backward: {type(e).__name__}: {_first_line(e)}", n
    return (f"{name}({shown}): {broke}" if broke else None), n


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else ""


def preflight(study: Study) -> List[Checked]:
    """Build and run every distinct component configuration of ``study``; SweepError listing every failure."""
    task, problems = study.task, []
    done: Dict[Tuple[str, str, str], Checked] = {}
    seen_calls: Dict[Tuple[str, str, str], Tuple[Optional[str], int]] = {}
    for cell_id, cfg in _configs(study):
        for slot in task.slots:
            name = cfg.get(slot.key)
            if not isinstance(name, str) or name in slot.extra:
                continue
            calls = _probes(slot, cfg)
            if not calls:
                continue
            own = task.slot_kwargs(cfg, slot.key)      # shown; the probe's kwargs are the backbone's own call
            cks = [(slot.key, name, repr(sorted(c["kwargs"].items()))) for c in calls]
            key = (slot.key, name, repr(cks))
            if key in done:
                done[key].cells.append(cell_id)
                continue
            n_params, errors = 0, []
            for ck, call in zip(cks, calls):
                if ck not in seen_calls:
                    seen_calls[ck] = _check_one(slot, name, call["kwargs"], call)
                broke, n = seen_calls[ck]
                n_params += n
                if broke:
                    errors.append(broke)
            if errors:
                entry = (_where(study, slot.key, own), f"cell [{cell_id}]: {errors[0]}")
                if not any(p[1].endswith(errors[0]) for p in problems):
                    problems.append(entry)
            shown = {k: v for k, v in calls[0]["kwargs"].items() if k not in slot.passes}
            done[key] = Checked(slot.key, name, shown, len(calls), n_params, [cell_id])
    if problems:
        raise SweepError(study.file, problems)
    return list(done.values())


def summary(checked: List[Checked], seconds: float) -> str:
    """One line for ``ablate run``: how many configurations the pre-flight checked, and how long it took."""
    n = len(checked)
    return f"pre-flight: {n} component configuration{'s' if n != 1 else ''} built and checked in {seconds:.1f} s"
