"""Sweeps: the sweep files (``sweeps/*.yaml``) and the code that runs them, in three rooms.

* ``sweeps.language``: the sweep-file language: load, ``--set`` / ``--smoke``, validate, expand
  into cells and trials, the ``Study`` model.  Pure Python; loads in well under 2 s.
* ``sweeps.runner``: a launch on Ray Tune with MLflow tracking: phases, looks, the per-cell search,
  the Tune trainable, the tracker, the parent run, progress, cluster connection.
* ``sweeps.cli``: the ``ablate`` command, one module per command over the two rooms above and analysis/.

``sweeps.errors`` holds every exception and exit code.  Old module paths (before this split) still
import, for launches whose Tune state names them (``sweeps._legacy``).
"""
from . import _legacy

_legacy.install()
