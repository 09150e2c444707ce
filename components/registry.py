"""Component registries: one small name → constructor table per kind.

Sweep files name components by short registry names (``fusion: cfu``,
``linear: cdlinear``, ``conv: hyper``, ``coarsen: dwt``); task builders turn
those names into modules with :func:`build`.  Modelled on detectron2's
``Registry`` and timm's ``create_model``, reduced to what this project needs:
a decorator that fills a per-kind table, a builder, and errors that list the
valid names.  Neither library is a dependency here, hence this ~60-line copy
of the idea rather than an import.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

_REGISTRIES: Dict[str, Dict[str, Callable[..., Any]]] = {}


def register(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class/function decorator: register ``obj`` as ``kind``/``name``.

    Registering the same name twice for one kind is a programming error and
    raises, so two modules can never silently shadow each other.
    """

    def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
        table = _REGISTRIES.setdefault(kind, {})
        if name in table and table[name] is not obj:
            raise KeyError(f"component {kind}/{name!r} is registered twice "
                           f"({table[name]!r} and {obj!r})")
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
