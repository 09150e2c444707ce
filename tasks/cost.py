"""The cost probe every trial runs (issue 24, "at what cost?"): FLOPs, peak training memory and inference
latency of whatever model a task trains through ``tasks.common.fit``, user components included.

``fit`` captures the first training batch's input with a forward pre-hook on the model (``capture_input``) and,
after the first epoch this attempt trains, calls ``probe`` once.  The probe runs on a deep copy of the model and
optimizer under ``torch.random.fork_rng``, so the trial's weights, optimizer state and every RNG stream are
untouched and a resumed trial stays bit-exact; it never raises (a failure becomes the annotation ``cost_note``).

What it measures (annotations → run tags ``ablate.<name>``, names in analysis/contract.py):

* ``flops_fwd`` / ``flops_step``: FLOPs per sample of one forward (eval mode) and of one training step (forward
  + backward of the surrogate loss ``sum(outputs)``, train mode), by ``torch.utils.flop_counter.FlopCounterMode``
  (2·M·N·K per matmul, the convolution formula for convolutions, attention; elementwise ops are not counted, by
  that module's convention).  What it cannot count is named in ``flops_note`` instead of being silently 0: FFT
  and linear-algebra ATen ops seen during the step (FlopCounterMode has no formula for them: a CDLinear layer's
  ``torch.fft.rfft`` counts 0), and custom autograd Functions (their forward and a backward written with ATen
  ops are counted through those ops; a backward in a C++/CUDA extension is not).
  **A component can declare its own FLOPs**: a module with a method ``flops(input_shape) -> int`` (the FLOPs of
  one forward call on an input of that shape, whole batch; ``input_shape`` is the shape of the call's first
  tensor argument) is counted by it instead of by FlopCounterMode, in the forward and in the training step; its
  backward counts ``backward_flops(input_shape)`` if it defines that, else 2 × ``flops`` (the usual estimate:
  one product for the input gradient, one for the weight gradient).  What FlopCounterMode saw inside such a
  module, forward and backward (attributed by ``torch.utils.module_tracker.ModuleTracker``, as FlopCounterMode
  attributes its own counts), is replaced, its FFT ops are not named as uncounted, and ``flops_note`` names the
  modules whose declaration was used.  The outermost declaring module wins over declarations nested in it.
* ``peak_mem_mb``: peak memory of one training step (forward, backward, optimizer step).  CUDA:
  ``torch.cuda.max_memory_allocated`` reset around the step, minus what was allocated before it, plus the copy's
  parameters and optimizer state.  CPU (no allocator statistics): bytes of the tensors autograd saves for
  backward (``torch.autograd.graph.saved_tensors_hooks``, unique storages, parameters excluded; the method of
  tasks/hyperbolic/memory.py and paper 001's Table 1) plus parameters, gradients and optimizer state.  Transient
  temporaries are not counted on CPU, so CPU and CUDA numbers are not comparable with each other.
* ``latency_ms_b1`` / ``latency_ms_batch``: inference latency (eval mode, ``torch.no_grad``) at batch 1 and at
  the task's batch size (the first batch's size, ``batch``): the median of repeated timed runs after two warm-up
  runs, at ``threads`` = ``torch.get_num_threads()`` (the trial's ``train.threads``).
* **Once per distinct configuration**: a reporter with ``cost_probe = False`` gets no probe.  The sweep runner
  sets it on every final-phase trial whose seed is not the study's first (sweeps/runner/phase.py): the seed
  changes neither FLOPs nor memory, so those are measured once per cell, and latency is timed once per cell.
  Why: on smoke runs the probe took 81-87 % of a trial's training-plus-probe seconds (docs/benchmarks_notes.md),
  far over the 2 % the issue allows; search trials differ in their nuisance values and keep the probe.
  The data-parallel path (resources.workers > 1) still probes every seed.
* ``cost_s``: the probe's own wall time.  The timed repetitions are sized so that the probe stays under
  ``budget_s`` (``fit`` passes 1 % of the trial's estimated time, epochs × first-epoch seconds), with at least
  ``MIN_REPS`` repetitions.

Why not fvcore / ptflops / thop: they trace modules (jit or hooks) and miss functional calls inside user
components; FlopCounterMode dispatches at the ATen level and ships with torch.
"""
from __future__ import annotations

import copy
import statistics
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

import torch
from torch import nn

MB = 2.0 ** 20
MIN_REPS, MAX_REPS = 3, 30
# ATen op families FlopCounterMode has no formula for, though they do real arithmetic (counted 0 otherwise)
UNCOUNTED = ("_fft_", "fft_", "linalg_", "_linalg_", "cholesky", "triangular_solve", "lu_", "svd", "eig")


class InputCapture:
    """A forward pre-hook that keeps the first call's (args, kwargs) of ``model``, then removes itself."""

    def __init__(self, model: nn.Module):
        self.args: Optional[Tuple[Any, ...]] = None
        self.kwargs: Dict[str, Any] = {}
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        if self.args is None and module.training:
            self.args = _detach(args)
            self.kwargs = _detach(kwargs)
            self.remove()
        return None

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def capture_input(model: nn.Module) -> InputCapture:
    return InputCapture(model)


def _detach(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_detach(v) for v in x) if not hasattr(x, "_fields") else type(x)(*(_detach(v) for v in x))
    if isinstance(x, dict):
        return {k: _detach(v) for k, v in x.items()}
    return x


def _tensors(x) -> Iterable[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)


def batch_size(args, kwargs) -> int:
    """The leading dimension of the first tensor of the input (1 if there is none)."""
    for t in _tensors((args, kwargs)):
        if t.dim() > 0:
            return int(t.shape[0])
    return 1


def _first_rows(x, n: int, k: int):
    """The input with every tensor whose leading dimension is the batch (``n``) cut to ``k`` rows."""
    if isinstance(x, torch.Tensor):
        return x[:k] if x.dim() > 0 and x.shape[0] == n else x
    if isinstance(x, (list, tuple)):
        return type(x)(_first_rows(v, n, k) for v in x) if not hasattr(x, "_fields") else \
            type(x)(*(_first_rows(v, n, k) for v in x))
    if isinstance(x, dict):
        return {key: _first_rows(v, n, k) for key, v in x.items()}
    return x


def surrogate_loss(out) -> torch.Tensor:
    """A scalar to backpropagate from any output: the sum of its floating / complex tensors that need grad.
    The task's own loss is not known here; its elementwise cost is not counted by FlopCounterMode anyway."""
    parts = []
    for t in _tensors(out):
        if t.requires_grad and (t.is_floating_point() or t.is_complex()):
            parts.append((torch.view_as_real(t) if t.is_complex() else t).float().sum())
    if not parts:
        raise ValueError("the model's output has no tensor that requires grad: no training step to measure")
    return torch.stack(parts).sum()


def _uncounted(ops: Iterable[str]) -> List[str]:
    return sorted({o for o in ops if any(u in o for u in UNCOUNTED)})


def _custom_functions(loss: torch.Tensor) -> List[str]:
    """Names of custom autograd Functions (``torch.autograd.Function`` subclasses) in ``loss``'s graph."""
    seen, names, todo = set(), set(), [loss.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if isinstance(fn, torch.autograd.function.BackwardCFunction):
            names.add(type(fn).__name__.removesuffix("Backward"))
        todo.extend(f for f, _ in fn.next_functions)
    return sorted(names)


class _OpRecorder(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the ATen ops that run (to name the ones FlopCounterMode cannot count), except those inside a
    module that declares its FLOPs (``skip``: names as ModuleTracker gives them)."""

    def __init__(self, skip=frozenset()):
        from torch.utils.module_tracker import ModuleTracker

        super().__init__()
        self.ops: set = set()
        self.skip, self.tracker = set(skip), ModuleTracker()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not (self.skip & self.tracker.parents):
            self.ops.add(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


class _Declared:
    """The outermost modules of ``model`` with a ``flops(input_shape)`` method: hooks sum their declared FLOPs
    per call (``fwd``, ``bwd``); ``names`` as FlopCounterMode and ModuleTracker name them (root class + path)."""

    def __init__(self, model: nn.Module):
        root = type(model).__name__
        mods: Dict[str, nn.Module] = {}
        for path, m in model.named_modules():
            if callable(getattr(m, "flops", None)) and not any(path.startswith(p + ".") or p == "" for p in mods):
                mods[path] = m
        self.names = {(f"{root}.{p}" if p else root): m for p, m in mods.items()}
        self.fwd = self.bwd = 0
        self._hooks = [m.register_forward_hook(self._hook) for m in mods.values()]

    def _hook(self, module, args, out):
        t = next(iter(_tensors(args)), None)
        shape = tuple(t.shape) if t is not None else ()
        f = int(module.flops(shape))
        self.fwd += f
        back = getattr(module, "backward_flops", None)
        self.bwd += int(back(shape)) if callable(back) else 2 * f

    def counted_inside(self, fc) -> float:
        counts = fc.get_flop_counts()
        return float(sum(sum(counts.get(n, {}).values()) for n in self.names))

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()


def count_flops(model: nn.Module, args, kwargs) -> Tuple[float, float, str]:
    """(FLOPs of one forward, of one training step (forward + backward), note) for this input, whole batch.
    ``model`` is a copy: its gradients are written.  Modules that declare ``flops`` count by it (module doc)."""
    try:
        return _count_flops_tracked(model, args, kwargs)
    except RuntimeError as e:
        first = e
    # FlopCounterMode tracks modules with hooks that torch refuses inside torch.autograd.grad ("A leaf node was
    # passed to _will_engine_execute_node"), and its forward runs without grad, which a forward that
    # differentiates cannot: an HNN's field, a reversible net's hand-written backward.  Count with its formulas,
    # untracked and with grad enabled; if that fails too, the first error stands.
    try:
        fwd, step = _flops_untracked(model, args, kwargs)
    except RuntimeError:
        raise first from None
    if fwd is None:
        raise first
    return fwd, step, ("counted without module attribution (the model calls torch.autograd.grad): modules' own "
                       "flops() declarations not used")


def _flops_untracked(model: nn.Module, args, kwargs) -> Tuple[Optional[float], Optional[float]]:
    """(forward, training step) FLOPs from FlopCounterMode's own formulas (``torch.utils.flop_counter.
    flop_registry``) summed by a bare dispatch mode, which needs no module hooks.  The dispatch mode class lives in
    a private torch module: checked at import, (None, None) when this torch does not have it."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry
    except ImportError:
        return None, None

    class _Sum(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    model.eval()
    with _Sum() as fwd:                      # grad enabled: the forward may differentiate (an HNN's field)
        model(*args, **kwargs)
    model.train()
    with _Sum() as step:
        surrogate_loss(model(*args, **kwargs)).backward()
    model.zero_grad(set_to_none=True)
    return float(fwd.total), float(step.total)


def _count_flops_tracked(model: nn.Module, args, kwargs) -> Tuple[float, float, str]:
    from torch.utils.flop_counter import FlopCounterMode

    dec = _Declared(model)
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(*args, **kwargs)
        fwd = fc.get_total_flops() - dec.counted_inside(fc) + dec.fwd
        dec.fwd = dec.bwd = 0
        model.train()
        rec = _OpRecorder(dec.names)
        with FlopCounterMode(display=False) as fc, rec.tracker, rec:
            loss = surrogate_loss(model(*args, **kwargs))
            custom = _custom_functions(loss)
            loss.backward()
        step = fc.get_total_flops() - dec.counted_inside(fc) + dec.fwd + dec.bwd
    finally:
        dec.remove()
    model.zero_grad(set_to_none=True)
    notes = []
    if dec.names:
        notes.append("declared by the module (flops()): " + ", ".join(sorted({type(m).__name__ for m in
                                                                              dec.names.values()})))
    if _uncounted(rec.ops):
        notes.append("not counted (FlopCounterMode has no formula): " + ", ".join(_uncounted(rec.ops)))
    if custom:
        notes.append("custom autograd Functions " + ", ".join(custom) + ": counted through the ATen ops they call "
                     "(a backward in a compiled extension is not counted)")
    return float(fwd), float(step), "; ".join(notes)


def _nbytes(tensors: Iterable[torch.Tensor]) -> int:
    seen = {}
    for t in tensors:
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


def _state_tensors(optimizer: torch.optim.Optimizer) -> List[torch.Tensor]:
    return [v for st in optimizer.state.values() for v in st.values() if isinstance(v, torch.Tensor)]


def peak_train_bytes(model: nn.Module, optimizer: torch.optim.Optimizer, args, kwargs) -> int:
    """Peak bytes of one training step (forward, backward, ``type(optimizer).step``) of ``model`` (a copy,
    which is stepped) with ``optimizer`` (a copy over its parameters); see the module docstring."""
    model.train()
    model.zero_grad(set_to_none=True)
    params = [p for p in model.parameters()]
    dev = next((t.device for t in _tensors((args, kwargs, params))), torch.device("cpu"))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        surrogate_loss(model(*args, **kwargs)).backward()
        type(optimizer).step(optimizer)          # the class's step: not an instance patch (gradient all-reduce)
        torch.cuda.synchronize(dev)
        return int(torch.cuda.max_memory_allocated(dev) - base + _nbytes(params)
                   + _nbytes(_state_tensors(optimizer)))
    exclude = {p.untyped_storage().data_ptr() for p in params}
    saved, loss = saved_bytes(lambda: surrogate_loss(model(*args, **kwargs)), exclude)
    loss.backward()
    type(optimizer).step(optimizer)
    grads = [p.grad for p in params if p.grad is not None]
    return int(saved + _nbytes(params) + _nbytes(grads) + _nbytes(_state_tensors(optimizer)))


def saved_bytes(fn: Callable[[], torch.Tensor], exclude: Set[int]) -> Tuple[int, torch.Tensor]:
    """(unique storage bytes autograd saves for backward while running ``fn``, fn()).

    ``exclude``: storage data pointers not to count (the parameters).  torch's saved-tensor hooks
    (``torch.autograd.graph.saved_tensors_hooks``) see every tensor saved; storages are counted once."""
    seen: Dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in exclude:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def latency_ms(model: nn.Module, args, kwargs, reps: int) -> float:
    """Median wall time (ms) of ``reps`` inference calls (eval, no_grad) after two warm-up calls."""
    model.eval()
    dev = next((t.device for t in _tensors((args, kwargs, list(model.parameters())))), torch.device("cpu"))
    times = []
    with torch.no_grad():
        for i in range(reps + 2):
            _sync(dev)
            t0 = time.perf_counter()
            model(*args, **kwargs)
            _sync(dev)
            if i >= 2:
                times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def _reps(model, args, kwargs, budget_s: float) -> int:
    """Timed repetitions that fit in ``budget_s``, from one untimed-then-timed call (MIN_REPS..MAX_REPS)."""
    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        model(*args, **kwargs)
        one = time.perf_counter() - t0
    return int(max(MIN_REPS, min(MAX_REPS, budget_s / max(one, 1e-6) / 2.5)))


def probe(model: nn.Module, optimizer: Optional[torch.optim.Optimizer], args, kwargs: Optional[Dict] = None,
          budget_s: float = 1.0) -> Dict[str, Any]:
    """The cost annotations of ``model`` on this input (see the module docstring); never raises.

    ``model``, ``optimizer`` and the RNGs are left exactly as they were (a deep copy is measured, under
    ``torch.random.fork_rng``).  A measurement that fails is absent and ``cost_note`` says why."""
    t0 = time.perf_counter()
    kwargs = dict(kwargs or {})
    out: Dict[str, Any] = {"threads": torch.get_num_threads()}
    notes: List[str] = []
    devs = [t.device.index or 0 for t in _tensors((args, kwargs, list(model.parameters()))) if t.is_cuda]
    with torch.random.fork_rng(devices=sorted(set(devs)), device_type="cuda"):
        try:
            memo: Dict[int, Any] = {}
            twin = copy.deepcopy(model, memo)
            opt = copy.deepcopy(optimizer, memo) if optimizer is not None else None
        except Exception as e:  # noqa: BLE001 - a model that cannot be copied is a note, not a failed trial
            return {**out, "cost_note": f"model not copyable, no cost measured: {type(e).__name__}: {e}"[:500]}
        n = batch_size(args, kwargs)
        out["batch"] = n
        steps = (("flops", lambda: _flops(twin, args, kwargs, n, out)),
                 ("memory", lambda: out.update(peak_mem_mb=peak_train_bytes(
                     twin, opt if opt is not None else torch.optim.SGD(twin.parameters(), lr=0.0), args, kwargs) / MB)),
                 ("latency", lambda: _latency(twin, args, kwargs, n, budget_s, out)))
        for name, step in steps:
            try:
                step()
            except Exception as e:  # noqa: BLE001 - never crash a trial over its cost
                notes.append(f"{name}: {type(e).__name__}: {str(e).strip()[:200]}")
    if notes:
        out["cost_note"] = "; ".join(notes)
    out["cost_s"] = round(time.perf_counter() - t0, 4)
    return out


def _flops(twin, args, kwargs, n: int, out: Dict[str, Any]) -> None:
    fwd, step, note = count_flops(twin, args, kwargs)
    out.update(flops_fwd=fwd / n, flops_step=step / n)
    if note:
        out["flops_note"] = note


def _latency(twin, args, kwargs, n: int, budget_s: float, out: Dict[str, Any]) -> None:
    one = (_first_rows(args, n, 1), _first_rows(kwargs, n, 1))
    out["latency_ms_batch"] = latency_ms(twin, args, kwargs, _reps(twin, args, kwargs, budget_s / 2))
    out["latency_ms_b1"] = latency_ms(twin, *one, _reps(twin, *one, budget_s / 2))


class FitProbe:
    """What ``tasks.common.fit`` holds: the input capture from the first epoch this attempt trains, then one
    ``probe`` annotated on the reporter (``done``), with 1 % of the trial's estimated training time as budget."""

    def __init__(self, model: nn.Module):
        self.model, self.capture = model, capture_input(model)

    def done(self, optimizer, reporter, epochs_left: int, epoch_seconds: float) -> None:
        if self.capture is None:
            return
        cap, self.capture = self.capture, None
        cap.remove()
        if not getattr(reporter, "cost_probe", True):
            return              # another seed of this configuration measures it (sweeps/runner/phase.py trial_dict)
        if cap.args is None:
            info = {"threads": torch.get_num_threads(),
                    "cost_note": "the model passed to fit was not called in training mode during the epoch "
                                 "(the task trains another module): no cost measured"}
        else:
            info = probe(self.model, optimizer, cap.args, cap.kwargs,
                         budget_s=max(0.01 * epochs_left * epoch_seconds, 0.0))
        try:
            reporter.annotate(**info)
        except Exception:  # noqa: BLE001 - a reporter without annotate (a test's) gets nothing
            pass
