"""Many cells against one shared baseline: a max-t step-down (Dunnett 1955; Hasler & Hothorn 2008 for unequal
variances) that uses the correlation the shared baseline puts between the comparisons, where Holm ignores it.

Method. Comparison i has Welch statistic t_i = Δ_i / SE_i with SE_i² = v_i + v_0 (v = s²/n of the cell and of
the baseline). Under the null the t_i are correlated through the baseline's mean: corr(t_i, t_j) ≈ v_0 /
√((v_i + v_0)(v_j + v_0)). Hasler & Hothorn (2008, Biometrical Journal 50, 793–800, "Multiple contrast tests in
the presence of heteroscedasticity") refer the max |t| to a multivariate t with this estimated correlation and, for
comparison i, its own Welch df ν_i. Paired: the correlation of the pair-difference means, estimated on the seeds
every arm shares. The step-down (Westfall & Young 1993, Romano & Wolf 2005): sort by p; at step k the adjusted p
of the k-th comparison is P(max over the comparisons not yet rejected of |T_j| ≥ |t_(k)|), made monotone.

The multivariate-t tail is computed by Monte Carlo (N_DRAWS draws, seed 0, common to all steps, so the result is
deterministic): scipy.stats.dunnett assumes equal variances (a pooled SD), and scipy.stats.multivariate_t.cdf
takes one df per call and ~10 ms each, where the step-down needs one df per comparison. The Monte Carlo SE of an
adjusted p near 0.05 is 0.001. Whether the estimated correlation keeps the error rate at 3–12 seeds and unequal
variances is measured, not assumed (docs/statistics.md, "Dunnett against Holm").
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import special

N_DRAWS = 40_000


def _nearest_corr(r: np.ndarray) -> np.ndarray:
    """r made positive semi-definite (eigenvalues clipped at 0, diagonal reset to 1)."""
    w, v = np.linalg.eigh((r + r.T) / 2)
    r = (v * np.clip(w, 0, None)) @ v.T
    d = np.sqrt(np.clip(np.diag(r), 1e-12, None))
    return np.clip(r / d[:, None] / d[None, :], -1, 1)


def welch_corr(share) -> np.ndarray:
    """Estimated null correlation of Welch statistics sharing the baseline: corr_ij = a_i·a_j, a_i = SE of the
    baseline's mean / SE_i (the baseline's share of comparison i's standard error)."""
    a = np.clip(np.nan_to_num(np.asarray(share, float), nan=0.0, posinf=1.0), 0.0, 1.0)
    r = np.outer(a, a)
    np.fill_diagonal(r, 1.0)
    return r


def maxt_stepdown(t: Sequence[float], df: Sequence[float], corr: np.ndarray, alpha: float,
                  seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Step-down max-t adjusted p-values and, per comparison, the critical |t| of the step it was decided at.

    Args:
        t, df: the comparisons' t statistics and df (all finite, df >= 1).
        corr: their estimated null correlation (m × m).
        alpha: the family-wise level of the critical values.
    Returns (p_adj, crit): a rejected comparison's crit is its step's (1 − α) quantile of max |T|; an accepted
    one's is that of the step where the procedure stopped, so its interval Δ ± crit·SE contains 0.
    """
    t, df = np.abs(np.asarray(t, float)), np.asarray(df, float)
    m = t.size
    if m == 0:
        return np.zeros(0), np.zeros(0)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N_DRAWS, m)) @ np.linalg.cholesky(_nearest_corr(corr) + 1e-12 * np.eye(m)).T
    u = rng.random(N_DRAWS)
    p_raw = 2 * special.stdtr(df, -t)
    order = np.argsort(p_raw, kind="stable")
    alive = np.ones(m, bool)
    p_adj, crit = np.ones(m), np.full(m, np.inf)
    running, stop_crit = 0.0, None
    scale = {}                        # per comparison: √(χ²_ν/ν) at quantile 1 − u (the costly part; computed once)
    for i in order:
        top = np.abs(z[:, alive]).max(1)                                   # max |Z| over the untested ones
        scale[i] = np.sqrt(special.chdtri(df[i], u) / df[i])
        stat = top / scale[i]
        running = max(running, float((stat >= t[i]).mean()))
        p_adj[i] = running
        c = float(np.quantile(stat, 1 - alpha))
        if stop_crit is None:
            crit[i] = c
            if running > alpha:
                stop_crit = alive.copy()                                    # the procedure stops here
        alive[i] = False
    if stop_crit is not None:                                              # accepted ones: the stopping step's crit
        top = np.abs(z[:, stop_crit]).max(1)
        for i in np.flatnonzero(stop_crit):
            crit[i] = float(np.quantile(top / scale[i], 1 - alpha))
    return p_adj, crit


def correlation_paired(diffs: Sequence[Optional[np.ndarray]]) -> np.ndarray:
    """Correlation of paired-difference means from per-seed differences aligned on shared seeds (rows = seeds,
    NaN where a cell lacks the seed): pairwise complete; 0 where fewer than 3 seeds are shared."""
    d = np.asarray(diffs, float)
    m = d.shape[0]
    r = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            ok = np.isfinite(d[i]) & np.isfinite(d[j])
            if ok.sum() >= 3 and np.ptp(d[i, ok]) > 0 and np.ptp(d[j, ok]) > 0:
                r[i, j] = r[j, i] = float(np.corrcoef(d[i, ok], d[j, ok])[0, 1])
    return r

