"""Task schemas: which flat, dotted config keys a task accepts, their types,
defaults, allowed values and ranges, the task's metrics, and its component
slots.

Pure Python on purpose: `ablate run --dry-run` and sweep validation must answer
in well under 2 s, so nothing here (or in any task module's top level) may
import torch, Ray or MLflow.  Heavy imports live inside each task's ``run``.

Component slots (``Slot``): a place in the task's backbone that any component
of one registry kind fills, chosen by one config key (``model.linear``).  A
component's own constructor arguments become the keys ``<slot key>.<argument>``
(``model.linear.rank``), conditional on the slot's value; they are derived from
the component's signature (components.registry.arguments) only when a sweep
uses them or a value that is not a shipped one, because that needs the
component modules (and torch).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean", object: "value"}


@dataclass(frozen=True)
class Param:
    """One config key of a task.

    type: int, float, str or bool (object: any YAML value, for a component argument whose
    signature does not say).  default: used when a sweep does not set it.
    choices: allowed values (for strings, e.g. registry names).
    low / high: inclusive numeric bounds.  when: the key only applies when
    other keys take one of the listed values (``{"model.linear": ("cdlinear",)}``);
    elsewhere it is dropped from the trial config, so a conditional axis never
    multiplies the trials of cells it does not apply to.
    """

    type: type
    default: Any
    doc: str = ""
    choices: Optional[Tuple[Any, ...]] = None
    low: Optional[float] = None
    high: Optional[float] = None
    when: Optional[Dict[str, Tuple[Any, ...]]] = None

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = _TYPE_NAMES.get(self.type, self.type.__name__)
        if self.low is not None and self.high is not None:
            return f"{kind} in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"{kind} >= {self.low}"
        if self.high is not None:
            return f"{kind} <= {self.high}"
        return kind

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this param's type or raise ValueError(allowed)."""
        t = self.type
        if t is object:
            if self.choices is not None and value not in self.choices:
                raise ValueError(self.allowed())
            return value
        if t is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError(self.allowed())
        if t is int:
            if isinstance(value, bool):
                raise ValueError(self.allowed())
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, str):
                try:
                    value = int(value)
                except ValueError:
                    raise ValueError(self.allowed()) from None
            if not isinstance(value, int):
                raise ValueError(self.allowed())
        elif t is float:
            if isinstance(value, bool):
                raise ValueError(self.allowed())
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise ValueError(self.allowed()) from None
            if not isinstance(value, (int, float)):
                raise ValueError(self.allowed())
            value = float(value)
        elif t is str:
            if self.choices is None and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)      # `--set optim.milestones=40` arrives from YAML as an int
            if not isinstance(value, str):
                raise ValueError(self.allowed())
        if self.choices is not None and value not in self.choices:
            raise ValueError(self.allowed())
        if self.low is not None and value < self.low:
            raise ValueError(self.allowed())
        if self.high is not None and value > self.high:
            raise ValueError(self.allowed())
        return value

    def applies(self, config: Dict[str, Any]) -> bool:
        if not self.when:
            return True
        return all(config.get(k) in vals for k, vals in self.when.items())


@dataclass(frozen=True)
class Slot:
    """A place in a task's backbone that any registered component of one kind fills.

    Args:
        key: the config key that picks the component (``model.linear``); the task declares it as a str Param
            whose ``choices`` are the shipped names (any registered name of ``kind`` is allowed too).
        kind: the registry kind (``linear``).
        contract: one line: what the task passes and the input / output shapes, e.g.
            ``"(in_features, out_features) -> forward(x (N, in_features)) -> (N, out_features)"``.
        passes: constructor arguments the task sets itself from its architecture (never sweep keys).
        task_args: constructor argument → the task's own key that sets it (``{"block_size":
            "model.block_size"}``): keys that predate slots keep working, and are not duplicated as
            ``<key>.<argument>``.
        extra: values of ``key`` the task handles itself, not components (e.g. ``"none"``: no fusion).
        probe: ``"module:function"``; ``function(config) -> [{"kwargs": {...}, "inputs": (...),
            "out_shape": (...)}]``, one entry per distinct call of the slot in the backbone built for
            ``config``, on a small random input.  The pre-flight builds each and runs it (imports torch).
    """

    key: str
    kind: str
    contract: str
    passes: Tuple[str, ...] = ()
    task_args: Tuple[Tuple[str, str], ...] = ()
    extra: Tuple[str, ...] = ()
    probe: str = ""

    def argument_key(self, arg: str) -> str:
        return f"{self.key}.{arg}"


def _component_names(kind: str) -> List[str]:
    """Every registered name of ``kind`` (imports the shipped component families: torch)."""
    import components  # noqa: F401  (registers the shipped families)
    from components.registry import available

    try:
        return available(kind)
    except KeyError:
        return []


def _arg_param(slot: Slot, arg: str, names: Sequence[str]) -> Optional[Param]:
    """The Param of ``<slot key>.<arg>``: typed from the first component (in ``names``) that takes ``arg``,
    applying where the slot's value is one of the components that take it."""
    from components.registry import arguments

    takers, first = [], None
    for n in names:
        a = arguments(slot.kind, n).get(arg)
        if a is not None:
            takers.append(n)
            first = first or a
    if first is None:
        return None
    typ = first.type or object
    default = None if first.required else first.default
    return Param(typ, default, f"argument {arg!r} of the {slot.kind} component", choices=first.choices,
                 low=first.low, high=first.high, when={slot.key: tuple(takers)})


# Keys every task accepts; `sweeps` fills them, tasks read them.
COMMON: Dict[str, Param] = {
    "seed": Param(int, 0, "replicate seed: seeds every RNG of the trial", low=0, high=2**31 - 1),
    "train.threads": Param(int, 1, "torch intra-op threads; fixed so a rerun reproduces exactly", low=1, high=256),
    "train.device": Param(str, "auto", "auto picks CUDA when present", choices=("auto", "cpu", "cuda")),
    "train.deterministic": Param(bool, True, "torch.use_deterministic_algorithms"),
}


@dataclass
class TaskSpec:
    """What the platform knows about a task without importing it heavily.

    params: task keys (COMMON keys are added automatically).
    metrics: metric name → "max" or "min" (what is better).
    run: "module:function" of ``run(config, reporter) -> dict`` (imported lazily).
    check: optional pure function(config) → list of (key, message) for
        cross-key constraints (e.g. a block size must divide the layer widths).
    smoke: overrides that shrink a trial for tests/CI (few epochs, little data).
    paper: one line naming the paper/section the task reproduces.
    sparse: optional pure function(config) → {metric: (every, key)} for metrics
        reported only every ``every`` epochs (and after the last) under that
        config, ``key`` being the setting that controls it.  A nuisance search
        (ASHA, Optuna) needs its metric every epoch; the sweep validator
        refuses the combination before launch.
    slots: the component slots of the backbone (``Slot``); any component of
        a slot's kind is allowed there, and its constructor's own arguments are
        the keys ``<slot key>.<argument>``.
    run: "module:function", or the function itself (a task registered from a
        researcher's own module with ``tasks.register_task``).
    """

    name: str
    params: Dict[str, Param]
    metrics: Dict[str, str]
    run: Any
    check: Optional[Callable[[Dict[str, Any]], List[Tuple[str, str]]]] = None
    smoke: Dict[str, Any] = field(default_factory=dict)
    description: str = ""
    paper: str = ""
    sparse: Optional[Callable[[Dict[str, Any]], Dict[str, Tuple[int, str]]]] = None
    slots: Tuple[Slot, ...] = ()

    def __post_init__(self) -> None:
        merged = dict(COMMON)
        merged.update(self.params)
        self.params = merged
        for m, mode in self.metrics.items():
            if mode not in ("max", "min"):
                raise ValueError(f"task {self.name}: metric {m} mode must be max or min")
        for s in self.slots:
            if s.key not in self.params or self.params[s.key].type is not str:
                raise ValueError(f"task {self.name}: slot {s.key} needs a str Param of that name (the component)")

    # ------------------------------------------------------------ component slots
    def slot(self, key: str) -> Optional[Slot]:
        """The slot whose component ``key`` picks, or None."""
        return next((s for s in self.slots if s.key == key), None)

    def slot_of_argument(self, key: str) -> Optional[Tuple[Slot, str]]:
        """(slot, argument) when ``key`` is ``<slot key>.<argument>`` and not a key of its own, else None."""
        if key in self.params:
            return None
        for s in self.slots:
            if key.startswith(s.key + ".") and "." not in key[len(s.key) + 1:]:
                return s, key[len(s.key) + 1:]
        return None

    def slot_choices(self, slot: Slot) -> List[Any]:
        """What the slot's key allows: the task's own values and every registered component of its kind."""
        own = list(self.params[slot.key].choices or ())
        return list(dict.fromkeys([*own, *slot.extra, *_component_names(slot.kind)]))

    def argument_params(self, slot: Slot) -> Dict[str, Param]:
        """``<slot key>.<argument>`` → Param, over every registered component of the slot's kind (arguments the
        task passes or sets through its own keys left out).  Imports the component families (torch)."""
        from components.registry import arguments

        names = [n for n in _component_names(slot.kind)]
        skip = set(slot.passes) | {a for a, _ in slot.task_args}
        args = dict.fromkeys(a for n in names for a in arguments(slot.kind, n) if a not in skip)
        out = {}
        for a in args:
            p = _arg_param(slot, a, names)
            if p is not None:
                out[slot.argument_key(a)] = p
        return out

    def param(self, key: str) -> Param:
        """The Param of ``key``: the task's own, or a slot argument's (KeyError naming the valid keys)."""
        if key in self.params:
            return self.params[key]
        hit = self.slot_of_argument(key)
        if hit is not None:
            slot, arg = hit
            p = self.argument_params(slot).get(key)
            if p is not None:
                return p
            takes = {n: sorted(a for a in _args_of(slot, n)) for n in _component_names(slot.kind)}
            shown = "; ".join(f"{n}: {', '.join(a) or '(none)'}" for n, a in takes.items())
            raise KeyError(f"no {slot.kind} component takes an argument {arg!r} (key {key}); "
                           f"{self.suggest(key, extra=self.argument_params(slot))}their arguments: {shown}")
        raise KeyError(f"unknown key {key!r} for task {self.name}; {self.suggest(key)}"
                       f"valid keys: {', '.join(sorted(self.params))}")

    def coerce(self, key: str, value: Any, component: Optional[str] = None) -> Any:
        """``value`` as key's type, or ValueError saying what is allowed.  A slot's key also takes any
        registered component of its kind; a slot argument is checked against ``component``'s own signature
        when given."""
        slot = self.slot(key)
        if slot is not None:
            try:
                return self.params[key].coerce(value)
            except ValueError:
                allowed = self.slot_choices(slot)
                if isinstance(value, str) and value in allowed:
                    return value
                raise ValueError("one of " + ", ".join(repr(c) for c in allowed) +
                                 f" (a registered {slot.kind} component)") from None
        hit = self.slot_of_argument(key)
        if hit is not None and component is not None:
            p = _arg_param(hit[0], hit[1], [component])
            if p is not None:
                return _coerce_optional(p, value)
        return _coerce_optional(self.param(key), value) if hit is not None else self.param(key).coerce(value)

    def slot_kwargs(self, config: Dict[str, Any], key: str) -> Dict[str, Any]:
        """The constructor arguments a config sets for the component in slot ``key``: its
        ``<key>.<argument>`` entries and the task keys mapped by ``task_args`` (those present)."""
        slot = self.slot(key)
        if slot is None:
            raise KeyError(f"task {self.name} has no component slot {key!r}")
        out = {k[len(key) + 1:]: v for k, v in config.items() if k.startswith(key + ".")
               and self.slot_of_argument(k) is not None}
        mapped = {arg: config[tk] for arg, tk in slot.task_args if tk in config}
        name = config.get(key)
        if mapped and isinstance(name, str) and name not in (self.params[key].choices or ()):
            from components.registry import arguments     # another component: only the arguments it takes

            mapped = {a: v for a, v in mapped.items() if a in arguments(slot.kind, name)}
        out.update(mapped)
        return out

    def slot_problems(self, config: Dict[str, Any]) -> List[Tuple[str, str]]:
        """(key, message) for each slot whose component needs an argument the config does not set."""
        out = []
        for s in self.slots:
            name = config.get(s.key)
            if not isinstance(name, str) or name in s.extra or name in (self.params[s.key].choices or ()):
                continue                      # the task's own values: it passes what they need
            from components.registry import arguments

            given = set(self.slot_kwargs(config, s.key)) | set(s.passes)
            for a, spec in arguments(s.kind, name).items():
                if spec.required and a not in given:
                    out.append((s.argument_key(a), f"the {s.kind} component {name!r} needs its argument {a!r}: set "
                                                   f"{s.argument_key(a)}"))
        return out

    def suggest(self, key: str, extra: Optional[Dict[str, Any]] = None) -> str:
        close = difflib.get_close_matches(key, [*self.params, *(extra or {})], n=1, cutoff=0.6)
        return f"did you mean {close[0]!r}? " if close else ""

    def defaults(self) -> Dict[str, Any]:
        return {k: p.default for k, p in self.params.items()}

    def resolve(self, overrides: Dict[str, Any]) -> Dict[str, Any]:
        """Defaults + overrides, conditional keys dropped where they don't apply.

        Raises KeyError/ValueError for unknown keys or bad values (callers that
        need file/key-path context validate first, see sweeps.language.load).
        """
        cfg = self.defaults()
        dynamic: Dict[str, Param] = {}
        for k, v in overrides.items():
            if k in self.params:
                cfg[k] = self.coerce(k, v)
            else:
                dynamic[k] = self.param(k)          # a slot argument (KeyError for an unknown key)
        for k, p in dynamic.items():
            slot, _ = self.slot_of_argument(k)
            if p.applies(cfg):
                cfg[k] = self.coerce(k, overrides[k], component=cfg.get(slot.key))
        return {k: v for k, v in cfg.items() if k in dynamic or self.params[k].applies(cfg)}

    def check_config(self, config: Dict[str, Any]) -> List[Tuple[str, str]]:
        return list(self.check(config)) if self.check else []

    def load_run(self) -> Callable[..., Dict[str, float]]:
        if callable(self.run):
            return self.run
        import importlib

        mod, fn = self.run.split(":")
        return getattr(importlib.import_module(mod), fn)



def _args_of(slot: Slot, name: str) -> List[str]:
    from components.registry import arguments

    skip = set(slot.passes) | {a for a, _ in slot.task_args}
    return [a for a in arguments(slot.kind, name) if a not in skip]


def _coerce_optional(p: Param, value: Any) -> Any:
    """Param.coerce, where an argument whose default is None also takes None."""
    if value is None and p.default is None:
        return None
    return p.coerce(value)
