"""The sweep-file language: a YAML study (or suite of studies) loaded (``load``), overridden by ``--set`` and
``--smoke``, validated completely before anything launches (``validate``, ``sections``) into a ``Study``
(``study``), and expanded into cells and trials (``expand``).  Pure Python: nothing here imports torch, Ray or
MLflow (tests/test_house.py keeps it under 2 s)."""
