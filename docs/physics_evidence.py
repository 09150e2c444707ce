"""Evidence columns for the recorded physics grids of docs/reproduction.md (n = 3 per cell, 11 cells),
recomputed with analysis.stats from the means and SDs recorded there: with three seeds, m + s·(−1, 0, 1)
has mean m and sample SD s exactly, and every Welch statistic (Δ, interval, p, Holm, g, MDE) depends on
the data only through (mean, SD, n).  The recorded SDs have two significant digits, so the numbers are
good to about that.  Run: .venv/bin/python docs/physics_evidence.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
from analysis.stats import compare_to_baseline

def arr(m, s): return [m - s, m, m + s]

def show(title, rows, mode="min"):
    base = arr(*rows["none"])
    cells = {k: arr(*v) for k, v in rows.items() if k != "none"}
    fam = compare_to_baseline(cells, base, mode=mode, correction="holm")
    print(f"\n{title}\n")
    print("| cell | mean ± std | Δ [adj. CI] | p_adj (Holm) | verdict | MDE | seeds needed |")
    print("|---|---|---|---|---|---|---|")
    m, s = rows["none"]; print(f"| none (baseline) | {m:.3g} ± {s:.2g} | | | | | |")
    for k, c in fam.comparisons.items():
        m, s = rows[k]
        sn = "" if c.seeds_needed is None else str(c.seeds_needed)
        print(f"| {k} | {m:.3g} ± {s:.2g} | {c.delta:+.2g} [{c.ci_low:+.2g}, {c.ci_high:+.2g}] | {c.p_adj:.2g} | {c.verdict} | {c.mde:.2g} | {sn} |")
    print(f"\n_{fam.footnote()}_")

pend = {"none": (0.0183, 0.0011), "add": (0.01796, 0.00076), "cfu 1": (0.01812, 0.00072), "cfu 2": (0.01816, 0.00070),
        "cfu 3": (0.01821, 0.00067), "cfu 4": (0.01817, 0.00063), "cfu 5": (0.01816, 0.00058), "cfu 6": (0.01815, 0.00040),
        "cfu 7": (0.01833, 0.00043), "cfu 8": (0.01835, 0.00037), "cfu 9": (0.01846, 0.00042)}
two = {"none": (0.022, 0.028), "add": (0.042, 0.052), "cfu 1": (0.020, 0.022), "cfu 2": (0.024, 0.030), "cfu 3": (0.042, 0.064),
       "cfu 4": (0.024, 0.028), "cfu 5": (0.028, 0.029), "cfu 6": (0.036, 0.042), "cfu 7": (0.042, 0.065), "cfu 8": (0.020, 0.020),
       "cfu 9": (0.028, 0.016)}
two_e = {"none": (5.3e-5, 8.4e-5), "add": (8.0e-5, 1.0e-4), "cfu 1": (4.5e-5, 3.0e-5), "cfu 2": (4.4e-5, 4.1e-5),
         "cfu 3": (6.5e-5, 8.8e-5), "cfu 4": (4.5e-5, 3.3e-5), "cfu 5": (5.8e-5, 2.4e-5), "cfu 6": (6.1e-5, 5.1e-5),
         "cfu 7": (5.9e-5, 8.3e-5), "cfu 8": (2.3e-5, 2.5e-5), "cfu 9": (1.17e-4, 8.2e-5)}
three = {"none": (0.0956, 0.0073), "add": (0.091, 0.018), "cfu 1": (0.136, 0.047), "cfu 2": (0.173, 0.065), "cfu 3": (0.157, 0.075),
         "cfu 4": (0.191, 0.063), "cfu 5": (0.150, 0.047), "cfu 6": (0.30, 0.19), "cfu 7": (0.179, 0.060), "cfu 8": (0.161, 0.078),
         "cfu 9": (0.242, 0.060)}
three_e = {"none": (0.30, 0.30), "add": (0.29, 0.14), "cfu 1": (60, 101), "cfu 2": (4.0, 3.8), "cfu 3": (2.2, 2.3), "cfu 4": (2.7, 1.4),
           "cfu 5": (3.0, 2.8), "cfu 6": (19, 22), "cfu 7": (6.7, 6.2), "cfu 8": (3.9, 2.3), "cfu 9": (4.0, 1.6)}
three_l = {"none": (0.612, 0.018), "add": (0.656, 0.014), "cfu 1": (0.615, 0.019), "cfu 2": (0.604, 0.010), "cfu 3": (0.616, 0.016),
           "cfu 4": (0.645, 0.049), "cfu 5": (0.627, 0.018), "cfu 6": (0.6558, 0.0065), "cfu 7": (0.648, 0.025), "cfu 8": (0.618, 0.023),
           "cfu 9": (0.689, 0.030)}
show("pendulum test_traj_mse", pend)
show("2-body test_traj_mse", two)
show("2-body test_energy_mse", two_e)
show("3-body test_traj_mse", three)
show("3-body test_energy_mse", three_e)
show("3-body test_loss", three_l)
