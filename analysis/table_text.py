"""Markdown and LaTeX text of an ablation table (analysis.tables.ablation_table): mean ± std, n, params, cost,
Δ with its interval, the adjusted p, the verdict, the best cell in bold, the footnote lines (the test and
family, the ANOVA of a complete grid, smoke and unfinished-run notes).

Written by hand: pandas' to_markdown needs ``tabulate`` (not a dependency) and Styler.to_latex cannot bold one
cell of a formatted "mean ± std" string without the same amount of code.
"""
from __future__ import annotations

import math
from typing import Callable, List, Tuple

import pandas as pd

_P_NAME = {"holm": "Holm", "bonferroni": "Bonf.", "bh": "BH", "none": "unadj.", "dunnett": "Dunnett"}


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def decimals(std: float, mean: float) -> int:
    """Two significant digits of the seed SD (three of the mean when the SD is 0 or unknown)."""
    if _finite(std) and std > 0:
        return int(min(6, max(0, 1 - math.floor(math.log10(std) + 1e-9))))   # 1e-9: 0.00999… is 0.01
    if _finite(mean) and mean:
        return int(min(6, max(0, 3 - math.floor(math.log10(abs(mean)) + 1e-9))))
    return 2


def num(x: float, d: int, sign: bool = False) -> str:
    """Fixed-point with a real minus sign (U+2212), '+' in front of positive numbers when ``sign``."""
    s = f"{x:+.{d}f}" if sign else f"{x:.{d}f}"
    return s.replace("-", "−")


def pval(p: float) -> str:
    """0.351, 0.0011 (two significant digits below 0.01), 3.2e−05 below 1e-4; "–" when undefined."""
    if not _finite(p):
        return "–"
    return f"{p:.3f}" if p >= 0.01 else f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}".replace("-", "−")


def _cost(x: float) -> str:
    return "" if not _finite(x) else (f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}")


def _delta(r, d: int) -> str:
    if r["baseline"]:
        return "baseline"
    if not _finite(r["delta"]):
        return ""
    out = num(r["delta"], d, sign=True)
    if _finite(r["ci_low"]) and _finite(r["ci_high"]):
        out += f" [{num(r['ci_low'], d)}, {num(r['ci_high'], d)}]"
    return out


def _verdict(r) -> str:
    v = r["verdict"]
    if r["baseline"] or not isinstance(v, str):
        return ""
    needed = r["seeds_needed"]
    if v != "undecided" or pd.isna(needed):
        return v
    basis = r.get("seeds_basis", "") if hasattr(r, "get") else ""
    if basis == "min_effect":
        return f"{v} (~{int(needed)} seeds for ±min_effect)"
    if basis == "observed":
        return f"{v} (~{int(needed)} seeds if Δ is as observed)"
    return f"{v} (~{int(needed)} seeds)"


def _p(r, adaptive: bool) -> str:
    if r["baseline"] or not isinstance(r["verdict"], str):
        return ""
    if adaptive:
        return f"{pval(r['p_value'])} / {pval(r['p_bound'])}"
    return pval(r["p_adj"])


def columns(table: pd.DataFrame) -> Tuple[List[str], List[str]]:
    """(label columns, number columns) of the text table."""
    m, mode = table.attrs.get("metric", "metric"), table.attrs.get("mode", "max")
    adaptive = table.attrs.get("design") == "adaptive"
    level = 100 * (1 - table.attrs.get("analysis", {}).get("alpha", 0.05))
    correction = table.attrs.get("analysis", {}).get("correction", "holm")
    rest = [f"{m} {'↑' if mode == 'max' else '↓'} (mean ± std)", "n"]
    rest += ["failed"] * bool(table["failed"].gt(0).any()) + ["params"]
    rest += ["s/epoch"] * bool(table["epoch_s"].notna().any())
    rest += ["peak MB"] * bool("peak_mem_mb" in table and table["peak_mem_mb"].notna().any())
    ci = f"{level:g} % CI" if correction == "none" else "adj. CI"
    rest += (["look", "Δ [RCI]", "p / p*"] if adaptive else [f"Δ [{ci}]", f"p ({_P_NAME[correction]})"])
    return list(table.attrs.get("axes") or ["cell"]), rest + ["verdict"]


def rows(table: pd.DataFrame, bold: Callable[[str], str], escape: Callable[[str], str] = str) -> List[List[str]]:
    """The text cells, each passed through ``escape``; the best cell's mean ± std then through ``bold``."""
    axes, rest = columns(table)
    adaptive, n_looks = table.attrs.get("design") == "adaptive", len(table.attrs.get("looks") or [])
    out = []
    for _, r in table.iterrows():
        d = decimals(r["std"], r["mean"])
        ms = ("n/a" if not _finite(r["mean"]) else f"{num(r['mean'], d)} (one seed)" if r["n"] == 1
              else f"{num(r['mean'], d)} ± {r['std']:.{d}f}")
        cells = ["–" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in (r[a] for a in axes)]
        cells += [bold(escape(ms)) if r["best"] else ms, str(int(r["n"]))]
        if "failed" in rest:
            cells.append(str(int(r["failed"])))
        cells.append("" if not _finite(r["params"]) else f"{int(r['params']):,}")
        if "s/epoch" in rest:
            cells.append(_cost(r["epoch_s"]))
        if "peak MB" in rest:
            cells.append(_cost(r["peak_mem_mb"]))
        if adaptive:
            cells.append("" if pd.isna(r["look"]) else f"{int(r['look']) + 1}/{n_looks}")
        cells += [_delta(r, d), _p(r, adaptive), _verdict(r)]
        out.append([c if r["best"] and i == len(axes) else escape(c) for i, c in enumerate(cells)])
    return out


def anova_text(res, fmt: str) -> List[str]:
    """The ANOVA of a complete grid: one Markdown line, or a LaTeX tabular; the reason (one line) instead."""
    if res is None:
        return []
    if res.table is None:
        line = f"ANOVA not computed: {res.reason}"
        return [line] if fmt == "md" else [f"% {line}"]
    from .table_evidence import anova_lines

    lines = anova_lines(res)
    resid = lines[-1][1]
    kind = {2: "Two-way", 3: "Three-way"}.get(len(res.axes), f"{len(res.axes)}-way")
    if fmt == "md":
        parts = [f"{e}: F({df:g}, {resid:g}) = {f:.2f}, p = {pval(p)}, partial η² = {eta:.2f}"
                 for e, df, f, p, eta in lines[:-1]]
        return [f"{kind} ANOVA (type II, seeds as replicates, {res.n_obs} runs): " + "; ".join(parts)]
    body = [f"{esc(e)} & {df:g} & {f:.2f} & {esc(pval(p))} & {eta:.2f} \\\\" for e, df, f, p, eta in lines[:-1]]
    return [f"% {kind} ANOVA (type II, seeds as replicates, {res.n_obs} runs)", r"\begin{tabular}{lrrrr}",
            r"\toprule", r"effect & df & $F$ & $p$ & partial $\eta^2$ \\", r"\midrule", *body,
            f"residual & {resid:g} & & & \\\\", r"\bottomrule", r"\end{tabular}"]


def esc(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("_", r"\_"), ("%", r"\%"), ("#", r"\#"),
                 ("~", r"\textasciitilde{}"), ("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("↑", r"$\uparrow$"),
                 ("↓", r"$\downarrow$"), ("–", "--"), ("−", "$-$"), ("×", r"$\times$"), ("≤", r"$\le$"),
                 ("η²", r"$\eta^2$")):
        s = s.replace(a, b)
    return s


def notes(table: pd.DataFrame) -> List[str]:
    """The lines under the table: the test / design, then the smoke and unfinished-run notes."""
    out = [table.attrs["footnote"]] if table.attrs.get("footnote") else []
    out += list(table.attrs.get("notes", []))
    running = table[table["running"] > 0] if "running" in table else table.iloc[:0]
    if not running.empty:
        out.append(f"{int(running['running'].sum())} unfinished run(s) (RUNNING, or left so by an interrupted "
                   f"launch) are not counted: " + ", ".join(f"{c} ({int(k)})" for c, k in
                                                          zip(running["cell"], running["running"])))
    return out


def render_text(table: pd.DataFrame, fmt: str) -> str:
    axes_h, rest = columns(table)
    head, anova = axes_h + rest, anova_text(table.attrs.get("anova"), fmt)
    if fmt == "md":
        body = rows(table, lambda s: f"**{s}**")
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
        line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
        md = "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])
        return md + "".join(f"\n\n_{n}_" for n in [*notes(table)[:1], *anova, *notes(table)[1:]])
    body = [" & ".join(r) + r" \\" for r in rows(table, lambda s: r"\textbf{" + s + "}", esc)]
    out = [r"\begin{tabular}{" + "l" * len(axes_h) + "r" * len(rest) + "}", r"\toprule",
           " & ".join(esc(h) for h in head) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out + [f"% {n}" for n in notes(table)] + anova)
