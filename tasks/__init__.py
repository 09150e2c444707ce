"""Task definitions: data + backbone (from components by name) + loss + metrics
+ training loop, each reading a flat dotted config and reporting per epoch
through the reporter it is given (never importing Ray or MLflow).

Each shipped task module keeps its top level free of heavy imports and defines
``SPEC: tasks.schema.TaskSpec``; the heavy work is imported inside ``run``.

A researcher's own task registers a TaskSpec from any module (a sweep file's
``imports:``, or a package's ``ablate.plugins`` entry point)::

    from tasks import register_task
    from tasks.schema import Param, Slot, TaskSpec

    register_task(TaskSpec(name="diabetes", params={...}, metrics={"test_mse": "min"}, run=run,
                           slots=(Slot("model.linear", "linear", "..."),)))

``run(config, reporter)`` may be the function itself.  A name that clashes
with a shipped task (or another registered one) is an error naming both.
"""
from __future__ import annotations

import importlib
from typing import Dict, List

from .schema import TaskSpec

# name → module defining SPEC.  Add a line here when adding a task to the package.
TASK_MODULES: Dict[str, str] = {
    "digits": "tasks.digits",
    "image_classification": "tasks.image_classification",
    "complex_classification": "tasks.complex_classification",
    "segmentation": "tasks.segmentation",
    "hyperbolic": "tasks.hyperbolic",
    "hyperbolic_vae": "tasks.hyperbolic_vae",
    "physics": "tasks.physics",
    "toy": "tasks.toy",
}
_REGISTERED: Dict[str, TaskSpec] = {}


def _where(spec: TaskSpec) -> str:
    run = spec.run
    return getattr(run, "__module__", None) or str(run).split(":")[0]


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a task (a TaskSpec) to the ones ``ablate`` knows; returns it.  Registering a name twice from two
    places is an error naming both (the same module imported again replaces its own entry)."""
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"register_task takes a tasks.schema.TaskSpec; got {type(spec).__name__}")
    if spec.name in TASK_MODULES:
        raise KeyError(f"task {spec.name!r} from {_where(spec)} clashes with the shipped task {spec.name!r} "
                       f"({TASK_MODULES[spec.name]}); give yours another name")
    old = _REGISTERED.get(spec.name)
    if old is not None and _where(old) != _where(spec):
        raise KeyError(f"task {spec.name!r} is registered twice: by {_where(old)} and by {_where(spec)}; "
                       f"give one of them another name")
    _REGISTERED[spec.name] = spec
    return spec


def _exists(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def available_tasks() -> List[str]:
    """Shipped tasks, tasks registered by imported modules, and those of installed ``ablate.plugins``."""
    from .plugins import load_plugins

    load_plugins()
    return sorted({*(n for n, m in TASK_MODULES.items() if _exists(m)), *_REGISTERED})


def get_task(name: str) -> TaskSpec:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in available_tasks():
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(available_tasks())}")
    if name in _REGISTERED:                      # registered by a plugin that available_tasks() just loaded
        return _REGISTERED[name]
    return importlib.import_module(TASK_MODULES[name]).SPEC
