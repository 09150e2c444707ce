"""Sweeps: the sweep files (``sweeps/*.yaml``) and the code that runs them, in three rooms.

* ``sweeps.language``: the sweep-file language: load, ``--set`` / ``--smoke``, validate, expand
  into cells and trials, the ``Study`` model.  Pure Python; loads in well under 2 s.
* ``sweeps.runner``: a launch on Ray Tune with MLflow tracking: phases, looks, the per-cell search,
  the Tune trainable, the tracker, the parent run, progress, cluster connection.
* ``sweeps.cli``: the ``ablate`` command, one module per command over the two rooms above and analysis/.

``sweeps.errors`` holds every exception and exit code.

Module paths from before this split (issue 20) are kept as aliases, below.  Ray Tune pickles a
launch's callbacks, searcher, scheduler and grid picker into its experiment state by module path
(``sweeps.callback.MLflowTracker``, ...), so ``ablate run --resume`` of a launch started before the
split must still find them there.  An alias is a finder entry, not a file: importing
``sweeps.callback`` returns the module ``sweeps.runner.tracker`` itself (one module, two names), and
nothing is imported until an old path is asked for.  New code imports the new paths;
tests/sweeps/test_legacy_resume.py resumes a launch of the previous main.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import sys

# This package body runs before the ``ablate`` console script sets its Ctrl-C handler (sweeps/cli/console.py),
# so it imports nothing that is not loaded already: a SIGINT landing in an import here printed a traceback.
# Hence a duck-typed finder and loader (the import protocol needs only these methods), no importlib.abc /
# importlib.util (they pull in typing), and these aliases live here rather than in a module of their own
# (whose file lookup alone took about 0.5 ms of that window).

OLD_TO_NEW = {
    "sweeps.callback": "sweeps.runner.tracker",
    "sweeps.reporter": "sweeps.runner.trainable",
    "sweeps.phase": "sweeps.runner.phase",
    "sweeps.search": "sweeps.runner.search",
    "sweeps.progress": "sweeps.runner.progress",
    "sweeps.tracking": "sweeps.runner.tracking",
    "sweeps.trial": "sweeps.runner.trial",
    "sweeps.run": "sweeps.runner.launch",
    "sweeps.spec": "sweeps.language.load",
    "sweeps.expand": "sweeps.language.expand",
}


class _AliasLoader:
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        pass                                  # the target module is already executed


class LegacyFinder:
    """Resolves the old module paths of OLD_TO_NEW to their new modules."""

    def find_spec(self, fullname, path=None, target=None):
        new = OLD_TO_NEW.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


if not any(type(f).__name__ == "LegacyFinder" for f in sys.meta_path):
    sys.meta_path.append(LegacyFinder())
