"""Component registries: one small name → constructor table per kind.

Sweep files name components by short registry names (``fusion: cfu``,
``linear: cdlinear``, ``conv: hyper``, ``coarsen: dwt``); task builders turn
those names into modules with :func:`build`.  Modelled on detectron2's
``Registry`` and timm's ``create_model``, reduced to what this project needs:
a decorator that fills a per-kind table, a builder, and errors that list the
valid names.  Neither library is a dependency here, hence this small copy of
the idea rather than an import.

A researcher's own layer registers the same way, from any module::

    from typing import Annotated
    from components.registry import Range, register

    @register("linear", "lowrank")
    class LowRankLinear(nn.Module):
        def __init__(self, in_features: int, out_features: int, rank: Annotated[int, Range(1, None)] = 8): ...

Its constructor's own arguments (here ``rank``) become sweep keys under the
task's slot (``model.linear.rank``), typed and bounded by :func:`arguments`
from the annotations and defaults.  An installed package can offer components
and tasks through the entry-point group ``ablate.plugins`` (:func:`load_plugins`).

This module is import-light (no torch): the sweep-file language uses it.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

_REGISTRIES: Dict[str, Dict[str, Callable[..., Any]]] = {}


def _origin(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def register(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class/function decorator: register ``obj`` as ``kind``/``name``.

    Registering the same name twice for one kind is an error naming both
    constructors, so two modules (a shipped family and a researcher's own) can
    never silently shadow each other.
    """
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        raise ValueError(f"register(kind, name) takes two non-empty strings; got {kind!r}, {name!r}")

    def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
        table = _REGISTRIES.setdefault(kind, {})
        old = table.get(name)
        if old is not None and old is not obj and _origin(old) != _origin(obj):
            raise KeyError(f"component {kind}/{name!r} is registered twice: by {_origin(old)} and by "
                           f"{_origin(obj)}; give one of them another name")
        table[name] = obj
        return obj

    return deco


def available(kind: str | None = None):
    """Sorted registry names of ``kind``; without ``kind`` the sorted kinds."""
    if kind is None:
        return sorted(_REGISTRIES)
    if kind not in _REGISTRIES:
        raise KeyError(f"unknown component kind {kind!r}; valid kinds: "
                       f"{', '.join(sorted(_REGISTRIES))}")
    return sorted(_REGISTRIES[kind])


def lookup(kind: str, name: str) -> Callable[..., Any]:
    """The registered constructor, or a KeyError listing the valid names."""
    names = available(kind)
    if name not in _REGISTRIES[kind]:
        raise KeyError(f"unknown {kind} component {name!r}; valid {kind} names: "
                       f"{', '.join(names)}")
    return _REGISTRIES[kind][name]


def build(kind: str, name: str, **kwargs: Any) -> Any:
    """Construct the component ``kind``/``name`` with explicit keyword args."""
    return lookup(kind, name)(**kwargs)


# ---------------------------------------------------------------- constructor arguments as sweep keys
@dataclass(frozen=True)
class Range:
    """Inclusive bounds of a numeric constructor argument, for ``typing.Annotated``: ``Annotated[int, Range(1,
    None)]`` (None: unbounded on that side)."""

    low: Optional[float] = None
    high: Optional[float] = None


@dataclass(frozen=True)
class Argument:
    """One constructor argument a sweep may set.

    Args:
        name: the argument's name.
        type: int, float, str or bool (from the annotation, else the default's type; None if neither says).
        default: its default (``inspect.Parameter.empty`` when it has none).
        choices: allowed values (``Literal[...]``), or None.
        low, high: inclusive bounds (``Annotated[..., Range(low, high)]``), or None.
        optional: whether None is allowed (``Optional[...]`` or a None default).
    """

    name: str
    type: Optional[type]
    default: Any
    choices: Optional[Tuple[Any, ...]] = None
    low: Optional[float] = None
    high: Optional[float] = None
    optional: bool = False

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


_SIMPLE = (bool, int, float, str)


def _unwrap(annotation: Any) -> Tuple[Any, Optional[Range], bool]:
    """(inner annotation, Range or None, whether None is allowed) of an annotation."""
    rng, optional = None, False
    if typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation = args[0]
        rng = next((a for a in args[1:] if isinstance(a, Range)), None)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (origin is not None and getattr(origin, "__name__", "") == "UnionType"):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
        if typing.get_origin(annotation) is typing.Annotated:
            inner, inner_rng, _ = _unwrap(annotation)
            annotation, rng = inner, rng or inner_rng
    return annotation, rng, optional


def _argument(p: inspect.Parameter, hints: Dict[str, Any]) -> Argument:
    ann = hints.get(p.name, p.annotation)
    ann, rng, optional = _unwrap(ann) if ann is not inspect.Parameter.empty else (None, None, False)
    choices = None
    if typing.get_origin(ann) is typing.Literal:
        choices = tuple(typing.get_args(ann))
        ann = type(choices[0]) if choices and all(type(c) is type(choices[0]) for c in choices) else None
    typ = ann if ann in _SIMPLE else None
    if typ is None and p.default is not inspect.Parameter.empty and type(p.default) in _SIMPLE:
        typ = type(p.default)
    return Argument(p.name, typ, p.default, choices, rng.low if rng else None, rng.high if rng else None,
                    optional or p.default is None)


def arguments(kind: str, name: str) -> Dict[str, Argument]:
    """The keyword arguments of component ``kind``/``name``'s constructor (``*args`` / ``**kwargs`` left out),
    typed from its annotations (``int``, ``float``, ``str``, ``bool``, ``Optional``, ``Literal``,
    ``Annotated[..., Range]``) and defaults."""
    ctor = lookup(kind, name)
    target = ctor.__init__ if inspect.isclass(ctor) else ctor
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: fall back to the raw ones / the defaults
        hints = {}
    out = {}
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        out[p.name] = _argument(p, hints)
    return out
