"""Module paths from before sweeps/ was split into rooms (issue 20), kept as aliases.

Ray Tune pickles a launch's callbacks, searcher, scheduler and grid picker into
its experiment state by module path (``sweeps.callback.MLflowTracker``, ...),
so ``ablate run --resume`` of a launch started before the split must still find
them there.  An alias is a finder entry, not a file: importing ``sweeps.callback``
returns the module ``sweeps.runner.tracker`` itself (one module, two names), and
nothing is imported until an old path is asked for.  New code imports the new
paths; tests/sweeps/test_legacy_resume.py resumes a launch of the previous main.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import sys

# Duck-typed finder and loader (the import protocol needs only these methods): importlib.abc / importlib.util
# would pull in typing at the first line of the ``ablate`` console script, before its Ctrl-C handler is set
# (sweeps/cli/signals.py), and a SIGINT landing there printed a traceback.

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


def install() -> None:
    if not any(isinstance(f, LegacyFinder) for f in sys.meta_path):
        sys.meta_path.append(LegacyFinder())
