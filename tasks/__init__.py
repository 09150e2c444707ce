"""Task definitions: data + backbone (from components by name) + loss + metrics
+ training loop, each reading a flat dotted config and reporting per epoch
through the reporter it is given (never importing Ray or MLflow).

Each task module keeps its top level free of heavy imports and defines
``SPEC: tasks.schema.TaskSpec``; the heavy work is imported inside ``run``.
"""
from __future__ import annotations

import importlib
from typing import Dict, List

from .schema import Param, TaskSpec  # noqa: F401

# name → module defining SPEC.  Add a line here when adding a task.
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


def _exists(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def available_tasks() -> List[str]:
    return sorted(n for n, m in TASK_MODULES.items() if _exists(m))


def get_task(name: str) -> TaskSpec:
    if name not in available_tasks():
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(available_tasks())}")
    return importlib.import_module(TASK_MODULES[name]).SPEC
