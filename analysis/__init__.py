"""MLflow runs → pandas → ablation tables (Markdown / LaTeX / CSV) and seaborn
plots.  Reads only the tracking store (and the papers' published numbers);
never imports Ray, tasks or components."""
