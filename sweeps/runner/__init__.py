"""The runner: a validated Study launched on Ray Tune and tracked in MLflow.

``launch`` (the entry point) → ``state`` (LaunchState, Launch) → phases (``phase``: one Tune run each; ``looks``:
adaptive seeds; ``search``: per-cell Optuna TPE + ASHA) → ``trainable`` (inside a Tune trial) → ``trial``
(``run_trial``, the one training entry point, also used by ``ablate trial``).  On the driver: ``tracker`` (the
Tune callback that keeps one MLflow run per trial), ``tracking`` (store resolution, experiments, git commit),
``parent`` (the launch's parent run and summary artifacts), ``progress``, ``cluster``, ``tune_logs``; ``rerun``
reruns a recorded run (``ablate trial --from-run``)."""
