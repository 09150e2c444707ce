"""The ``ablate`` command line: ``main.py`` is the root, one module per command (run, trial, table, plot,
report, ui, tasks), ``common.py`` what several share, ``plan.py`` the ``--dry-run`` plan."""
