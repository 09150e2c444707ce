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
}


def available_tasks() -> List[str]:
    return sorted(TASK_MODULES)


def get_task(name: str) -> TaskSpec:
    if name not in TASK_MODULES:
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(available_tasks())}")
    return importlib.import_module(TASK_MODULES[name]).SPEC
