"""``python -m analysis.stats``: the minimum-detectable-effect tables of docs/statistics.md."""
from ._power import mde_table

for kind in ("welch", "pooled", "paired"):
    table = mde_table(seeds=(2, 3, 5, 10, 20, 30), alphas=(0.05, 0.01, 0.005), test=kind)
    print(f"\n{kind}\n| seeds per cell | " + " | ".join(table.columns) + " |\n|---|" + "---|" * len(table.columns))
    for n, row in table.iterrows():
        print(f"| {n} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
