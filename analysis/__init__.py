"""MLflow runs → pandas → ablation tables (Markdown / LaTeX / CSV) and seaborn
plots.  Reads only the tracking store (and the papers' published numbers);
never imports Ray, tasks or components.

``analysis.compare(df, cells=[...], seed="seed", metric="acc", mode="max", baseline={...})`` gives the same
table, plot and report for runs ablate did not launch (a DataFrame, a CSV, any MLflow experiment;
analysis/api.py).  It is imported on first use, so ``import analysis`` stays light."""

__all__ = ["compare", "Comparison", "MappingError"]


def __getattr__(name):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
