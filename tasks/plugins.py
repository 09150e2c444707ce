"""Installed plugins: packages that offer components and tasks to ``ablate`` without being named in a sweep file.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."ablate.plugins"]
    mylab = "mylab.ablate_plugin"

and ``mylab/ablate_plugin.py`` registers its components (``components.registry.register``) and tasks
(``tasks.register_task``) when imported.  ``load_plugins`` imports every such module once per process; the task
list (``tasks.available_tasks``) calls it, so every command sees them.  Importing a plugin runs its code.

Light on purpose (importlib.metadata only): the sweep-file language calls it before validating.
"""
from __future__ import annotations

from typing import List

PLUGIN_GROUP = "ablate.plugins"
_LOADED: List[str] = []
_DONE = False


def load_plugins() -> List[str]:
    """Import the module of every ``ablate.plugins`` entry point (once); returns their names."""
    global _DONE
    if _DONE:
        return list(_LOADED)
    _DONE = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin is named, not a traceback from deep inside
            raise ImportError(f"the installed ablate plugin {ep.name!r} ({ep.value}) failed to import: "
                              f"{type(e).__name__}: {e}") from e
        _LOADED.append(ep.value)
    return list(_LOADED)
