"""Runs ablate did not launch (issue 28): an MLflow experiment logged by any script, a CSV (a W&B or MLflow UI
export, a spreadsheet) or a pandas DataFrame, turned into exactly the runs frame that analysis.store.load_runs
makes of ablate's own launches, so analysis.tables.ablation_table, analysis.plots and analysis.report apply
unchanged: the same mean ± std over seeds, Δ with its interval, corrected p, verdicts, plots and report.

A ``RunMapping`` says what ablate's tags say for its own runs: which columns (params) make the scientific cell,
which is the seed, the metric and its mode, the baseline cell, a filter, and what to do with two runs of one
(cell, seed).  Column names are looked up as given, then with MLflow's and W&B's prefixes (``params.``,
``metrics.``, ``tags.``, ``config.``, ``summary.``), so ``--cells lr`` finds MLflow's ``params.lr``.  Values
read back as strings (MLflow params, object columns of a CSV) are cast like load_runs casts params
(analysis.store._num).  A cell is ``col=value,col=value`` over the cell columns a run has a value for (a
conditional column, say a block size only some models have, is left out of the others' cells, as ablate leaves
conditional keys out); cells are listed in the order their first runs ran (MLflow's start time, a CSV's
rows), as ablate lists a grid in the order it runs it.  A ``status``/``state`` column (MLflow's, W&B's)
counts only finished runs, failed and crashed runs appear as failed; without one every row is a finished run.

Every problem with the mapping is a MappingError with one line naming the column and what is present: an
unknown column, no seed column, an empty seed or cell, two runs with one (cell, seed) under
``duplicates="refuse"``, a metric that is not numeric, a baseline that matches no cell or several, a filter that
selects nothing.  pandas' ``DataFrame.query`` filters a CSV or DataFrame, MLflow's own filter string an
experiment (``mlflow.search_runs``): nothing is parsed here.

Modules: ``_mapping`` (RunMapping, Source, MappingError), ``_sources`` (read_csv, read_mlflow, to_runs, the
columns found), ``_rows`` (values, status, seeds, duplicates, baseline, the frame's columns and attrs).
"""
from __future__ import annotations

from ._mapping import DUPLICATES, MODES, PREFIXES, RESERVED, MappingError, RunMapping, Source, metric_name
from ._sources import read_csv, read_mlflow, table, to_runs

__all__ = ["DUPLICATES", "MODES", "PREFIXES", "RESERVED", "MappingError", "RunMapping", "Source", "metric_name",
           "read_csv", "read_mlflow", "table", "to_runs"]
