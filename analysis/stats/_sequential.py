"""Group-sequential "adaptive seeds" design: m cells against one baseline, seeds added only where undecided.

Method (Jennison & Turnbull 2000, "Group Sequential Methods with Applications to Clinical Trials", ch. 7, 9):
looks at planned cumulative seed counts n_1 < ... < n_K per arm; each cell gets the Bonferroni share
α_cell = α/m of the family-wise α and spends it over the looks with a Lan & DeMets (1983) spending function,
O'Brien–Fleming type α(t) = 2 − 2Φ(z_{1−α/2}/√t) (after O'Brien & Fleming 1979) or Pocock type
α(t) = α·ln(1 + (e − 1)t) (after Pocock 1977), or the Hwang, Shih & DeCani (1990) family
α(t) = α(1 − e^{−γt})/(1 − e^{−γ}) (γ = −4, gsDesign's default, is near O'Brien–Fleming, γ = 1 near Pocock:
one knob between power and early stops, J&T ch. 7.3), t = n_k/n_K. The statistic at look k is the Welch (or
paired) t on all seeds so far, referred to its own df as a nominal two-sided p; the cell crosses if p_k ≤ p*_k.
Classical boundaries assume a z-statistic with known variance, invalid at n = 3, so the p*_k are found by
simulating the null (normal data, n_k per arm, cumulative) so that the cumulative crossing probability is at
most α(t_k) — for Welch at every cell/baseline variance ratio in a grid, because Welch's p at n = 3 is
conservative at equal variances and liberal (2.4× at p = 0.0035) at ratio 100. Repeated confidence intervals (J&T ch. 9)
RCI_k = Δ ± t_{df_k}^{-1}(1 − p*_k/2)·SE_k then cover the true Δ at all looks at once with probability
≥ 1 − α_cell (missing it at look k is the centred statistic crossing), so "equivalent" (RCI inside ±min_effect)
is a valid stop too.

The α split is Bonferroni (α/m per cell) or a group-sequential Holm step-down (Maurer & Bretz 2013; Ye et al.
2013): at each look a cell is tested at α/(m − r), r the cells already better/worse, repeated within the look until
no cell crosses; boundaries for every level α/j come from the same null studies and are monotone in j. This keeps
the family-wise error of false better/worse claims about null cells at α (closed testing); sign errors and
"equivalent" (always judged at α/m) are checked by simulation (analysis/stats/simulate.py, docs/statistics.md).

Written by hand because neither scipy nor statsmodels has group-sequential boundaries (gsDesign and rpact are R)
and the t-based ones need the simulation; each look's test and interval is scipy's ttest_ind / ttest_rel.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import special, stats

from . import _tstat

from ..contract import HSD_GAMMA, HSD_RANGE, SPENDINGS, TESTS
from ..contract import LOOKS_CORRECTIONS as CORRECTIONS

VERDICTS = ("continue", "better", "worse", "equivalent", "undecided")   # index = the vectorised verdict code
RATIOS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)   # Welch's least favourable ratio at n <= 12 lies in 10..300
_NAMES = {"obrien_fleming": "Lan-DeMets O'Brien-Fleming-type", "pocock": "Lan-DeMets Pocock-type",
          "hsd": "Hwang-Shih-DeCani",
          "fixed": "no (fixed design)", "naive": "no (naive peeking, invalid)"}
_CHUNK = 50_000                                          # null studies simulated at once (bounds the memory)


def spend(t, alpha: float, spending: str, gamma: Optional[float] = None) -> np.ndarray:
    """Cumulative α spent at information fraction(s) t in (0, 1] (Lan & DeMets 1983); gamma is the
    Hwang–Shih–DeCani parameter (spending "hsd" only; default HSD_GAMMA; γ = 0 is its limit α·t)."""
    t = np.asarray(t, float)
    if spending == "obrien_fleming":
        return 2.0 - 2.0 * stats.norm.cdf(stats.norm.isf(alpha / 2) / np.sqrt(t))
    if spending == "hsd":
        g = HSD_GAMMA if gamma is None else float(gamma)
        return alpha * t if g == 0 else alpha * np.expm1(-g * t) / np.expm1(-g)
    return alpha * np.log1p((math.e - 1.0) * t)


def _look_stats(x, y, looks, test, sd=1.0):
    """Δ, SE, df and nominal two-sided p at each look (last axis) of cumulative seeds x (cell) vs y (baseline).

    sd multiplies the cell's values (Welch only; an (R, 1) array gives R variance ratios for the price of one).
    "z" (known σ = 1) and "welch_z" (Welch t referred to the normal) exist only to show the z-boundary mistake."""
    out = []
    for n in looks:
        a, b = x[..., :n], y[..., :n]
        if test == "paired":
            d = a - b
            delta, se, df = d.mean(-1), d.std(-1, ddof=1) / math.sqrt(n), np.full(d.shape[:-1], n - 1.0)
        else:
            va, vb = a.var(-1, ddof=1) / n * sd ** 2, b.var(-1, ddof=1) / n
            delta, se = a.mean(-1) * sd - b.mean(-1), np.sqrt(va + vb)
            with np.errstate(divide="ignore", invalid="ignore"):
                df = (va + vb) ** 2 / ((va ** 2 + vb ** 2) / (n - 1))    # Welch–Satterthwaite, as scipy
            se = np.full_like(delta, math.sqrt(2.0 / n)) if test == "z" else se
            df = np.full_like(delta, np.inf) if test in ("z", "welch_z") else df
        out.append(np.broadcast_arrays(delta, se, df))
    delta, se, df = (np.stack(v, -1) for v in zip(*out))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2.0 * special.stdtr(df, -np.abs(delta / se))              # = 2·scipy.stats.t.sf(|t|, df), faster
    return delta, se, df, p


def _calibrate(p: np.ndarray, spent: Sequence[float], fixed: Sequence[float] = ()) -> Tuple[float, ...]:
    """Per-look nominal-p thresholds from null p-values p (R, N, K) simulated under R nuisance settings.

    At look k each setting allows the j-th smallest p of its studies not yet crossed, j = floor(N·spent[k]) −
    crossings so far (threshold 0 where j = 0, e.g. O'Brien–Fleming's first looks); the threshold is the least of
    these, so no setting's cumulative crossing fraction exceeds spent[k], and unspent budget carries on. No
    distributional shortcut is taken (Welch's p is far from uniform at n = 3). ``fixed``: thresholds already used
    at the first looks (kept as they are; the later ones are calibrated given them). NaN p never crosses."""
    n_sim = p.shape[1]
    alive, bounds = np.ones(p.shape[:2], bool), []
    for k in range(p.shape[2]):
        if k < len(fixed):
            bounds.append(float(fixed[k]))
        else:
            allowed = []
            for r in range(p.shape[0]):
                j = int(math.floor(spent[k] * n_sim + 1e-9)) - int(n_sim - alive[r].sum())
                pk = p[r, alive[r], k]
                pk = pk[np.isfinite(pk)]
                allowed.append(float(np.partition(pk, j - 1)[j - 1]) if 0 < j <= pk.size else 0.0 if j <= 0
                               else 1.0)
            bounds.append(min(allowed))
        with np.errstate(invalid="ignore"):
            alive &= ~(p[..., k] <= bounds[-1])
    return tuple(bounds)


def _pattern_stats(x, y, pattern, test, sd):
    """Nominal p at each look of `pattern` ((n_cell, n_base) per look, nested; each >= 2) from null draws x (cell),
    y (base) (..., N); sd (R, 1, 1) scales the cell (Welch). Paired: n_cell = n_base = the pairs."""
    out = []
    for nx, ny in pattern:
        if test == "paired":
            d = x[..., :nx] - y[..., :nx]
            t = d.mean(-1) / (d.std(-1, ddof=1) / math.sqrt(nx))
            df = nx - 1.0
        else:
            a, b = x[..., :nx], y[..., :ny]
            va, vb = a.var(-1, ddof=1) / nx * sd[..., 0] ** 2, b.var(-1, ddof=1) / ny
            t = (a.mean(-1) * sd[..., 0] - b.mean(-1)) / np.sqrt(va + vb)
            df = (va + vb) ** 2 / (va ** 2 / (nx - 1) + vb ** 2 / (ny - 1))
        out.append(2.0 * special.stdtr(df, -np.abs(t)))
    return np.stack(out, -1)


# unequal n (failed runs): either arm may be the one that varies more, so the grid goes both ways (a little
# coarser than RATIOS, and OBSERVED_N_SIM null studies, so that a new pattern of failures costs ~1 s per look)
RATIOS_BOTH = (1e-3, 1e-2, 1 / 30, 0.1, 1 / 3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
OBSERVED_N_SIM = 100_000


@functools.lru_cache(maxsize=24)
def _null_p(design_key, nx: int, ny: int) -> np.ndarray:
    """Null nominal p (R, n_sim) of one look with nx cell and ny baseline values (paired: nx pairs), from the
    design's seeded draws (the first nx / ny of each study's planned seeds, so looks are nested); NaN below 2."""
    looks, _, _, test, n_sim, seed, _ = design_key
    ratios, n_sim = RATIOS_BOTH if test == "welch" else (1.0,), min(n_sim, OBSERVED_N_SIM)
    if min(nx, ny) < 2:
        return np.full((len(ratios), n_sim), np.nan, np.float32)
    sd = np.sqrt(np.asarray(ratios, float))[:, None, None]
    rng, ps = np.random.default_rng(seed), []
    for c in np.diff(np.r_[0:n_sim:_CHUNK, n_sim]):
        x, y = rng.standard_normal((c, looks[-1])), rng.standard_normal((c, looks[-1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            ps.append(_pattern_stats(x[None], y[None], ((nx, ny),), test, sd)[..., 0].astype(np.float32))
    return np.concatenate([np.broadcast_to(p, (len(ratios), p.shape[-1])) for p in ps], axis=1)


@functools.lru_cache(maxsize=512)
def _observed_bounds(design_key, pattern, fixed_rows) -> Tuple[float, ...]:
    """p* of the last look of `pattern` at every level of the design (the rows of ``fixed_rows``: the p* already
    used at the earlier looks, per level), calibrated for the seeds actually present: the null is simulated with
    those counts per arm at every look (Welch: over RATIOS_BOTH), the earlier looks keep the thresholds they were
    decided with, and this look gets the largest p* that keeps every ratio's cumulative crossing within α(t_k).
    Lan & DeMets (1983) spending at the planned t_k; valid when runs fail independently of their values."""
    looks, alphas, spending, _, _, _, gamma = design_key
    k = len(pattern) - 1
    p = np.stack([_null_p(design_key, nx, ny) for nx, ny in pattern], -1)
    frac = np.asarray(looks[:k + 1]) / looks[-1]
    last = [_calibrate(p, spend(frac, a, spending, gamma), fixed)[-1] for a, fixed in zip(alphas, fixed_rows)]
    last = np.minimum.accumulate(np.asarray(last)[::-1])[::-1]          # monotone in the level, as planned
    return tuple(float(b) for b in last)


@functools.lru_cache(maxsize=64)
def _p_bounds(looks, alpha_cells, spending, test, n_sim, seed, ratios=(1.0,), gamma=None):
    """Thresholds under the normal null at every cell/baseline variance ratio in `ratios` (the paired test's null
    does not depend on it), one tuple per level in `alpha_cells` (ascending), all from the same null studies.
    Common random numbers across ratios and levels.

    The thresholds are made monotone in the level (each look's p* at a level is at most its p* at any higher
    level) by lowering a lower level's p* where needed: lowering thresholds only removes crossings, so each
    level stays valid, and the Holm step-down's proof needs "crosses at a lower level ⇒ crosses at a higher"."""
    rng, ps = np.random.default_rng(seed), []
    sd = np.sqrt(np.asarray(ratios, float))[:, None] if test != "paired" else 1.0
    for c in np.diff(np.r_[0:n_sim:_CHUNK, n_sim]):
        x, y = rng.standard_normal((c, looks[-1])), rng.standard_normal((c, looks[-1]))
        ps.append(_look_stats(x, y, looks, test, sd=sd)[3].reshape(-1, c, len(looks)))
    p, frac = np.concatenate(ps, axis=1), np.asarray(looks) / looks[-1]
    raw = np.array([_calibrate(p, spend(frac, a, spending, gamma)) for a in alpha_cells])
    mono = np.minimum.accumulate(raw[::-1], axis=0)[::-1]
    return tuple(tuple(float(b) for b in row) for row in mono)


@dataclass(frozen=True)
class Design:
    """A planned group-sequential comparison of n_cells cells with one baseline (build it with `plan`).

    Args:
        looks: cumulative seeds per arm at each look, strictly increasing.
        alpha: family-wise error over all cells, looks and claims (default 0.05).
        n_cells: non-baseline cells; alpha_cell = alpha / n_cells (Bonferroni).
        spending: "obrien_fleming" (default) or "pocock", Lan–DeMets types, or "hsd" (Hwang–Shih–DeCani).
        test: "welch" (default) or "paired" (seed-matched pairs).
        info_fractions: n_k / n_K; alpha_spent: cumulative α_cell spent by each look.
        p_bounds: nominal two-sided p threshold per look at α_cell = α/m (the look's RCI level is 1 − p*_k).
        variance_ratios: cell/baseline variance ratios the Welch boundaries hold at (default RATIOS).
        n_sim, seed: null studies per ratio behind p_bounds (default 200000, 0).
        correction: "bonferroni" (default; every cell at α/m at every look) or "holm" (step-down: with r cells
            already better/worse, the others are tested at α/(m − r); see `bounds`).
        level_bounds: for "holm", level_bounds[j − 1] is the per-look p* at level α/j, j = 1..m; else ().
        gamma: the Hwang–Shih–DeCani γ for spending "hsd" (default −4), else None.
    """
    looks: Tuple[int, ...]
    alpha: float
    n_cells: int
    alpha_cell: float
    spending: str
    test: str
    info_fractions: Tuple[float, ...]
    alpha_spent: Tuple[float, ...]
    p_bounds: Tuple[float, ...]
    variance_ratios: Tuple[float, ...]
    n_sim: int
    seed: int
    correction: str = "bonferroni"
    level_bounds: Tuple[Tuple[float, ...], ...] = ()
    gamma: Optional[float] = None
    eq_bounds: Tuple[float, ...] = ()
    levels: Tuple[float, ...] = ()
    level_rows: Tuple[Tuple[float, ...], ...] = ()

    @property
    def key(self):
        """What the boundaries depend on (the cache key of the observed-n calibration)."""
        return (self.looks, self.levels, self.spending, self.test, self.n_sim, self.seed, self.gamma)

    def level_of(self, remaining: Optional[int] = None, equivalence: bool = False) -> float:
        """The two-sided level a cell is tested at: α/remaining (Holm), α/m (Bonferroni, or remaining None), and
        for equivalence 2α/m (one-sided α/m per side: the 1 − 2α/m repeated interval)."""
        if equivalence:
            return 2 * self.alpha_cell
        self.bounds(remaining)                                   # validates remaining
        return self.alpha / remaining if self.correction == "holm" and remaining is not None else self.alpha_cell

    def observed_bounds(self, pattern) -> Tuple[Tuple[float, ...], ...]:
        """Per level (rows in the order of ``levels``), the p* of looks 0..k for the seeds actually present:
        ``pattern`` = ((n_cell, n_base) per look; paired: (pairs, pairs)). The planned p* where the counts are the
        planned ones; otherwise calibrated at the observed counts (``_observed_bounds``), each look keeping the
        thresholds its earlier looks were decided with."""
        return _rows_for(self, tuple((int(a), int(b)) for a, b in pattern))

    def bounds(self, remaining: Optional[int] = None) -> Tuple[float, ...]:
        """Per-look p* for a cell tested while `remaining` cells (itself included) are not yet better/worse:
        level α/remaining under Holm, α/m under Bonferroni (and for remaining None)."""
        if self.correction != "holm" or remaining is None:
            return self.p_bounds
        if isinstance(remaining, bool) or not isinstance(remaining, (int, np.integer)) or \
                not 1 <= remaining <= self.n_cells:
            raise ValueError(f"remaining must be an integer in [1, {self.n_cells}], got {remaining!r}")
        return self.level_bounds[int(remaining) - 1]

    @property
    def max_trials(self) -> int:
        return (self.n_cells + 1) * self.looks[-1]

    def describe(self) -> str:
        """The plan, for `--dry-run`: looks, most trials, boundaries per look."""
        ratios = f" at variance ratios {'/'.join(f'{r:g}' for r in self.variance_ratios)}" * (self.test == "welch")
        lines = [f"Adaptive seeds: looks at {', '.join(map(str, self.looks))} seeds per arm; at most "
                 f"{self.max_trials} trials ({self.n_cells} cells + baseline) x {self.looks[-1]} seeds.",
                 f"alpha = {self.alpha:g} family-wise, {self._split()}; {self.spending_name} spending; "
                 f"{self.test} t; boundaries from {self.n_sim} null studies{ratios} (seed {self.seed}).",
                 "| look | seeds | t | alpha spent | nominal p* | crit abs(t) at df | crit abs(delta)/SD |",
                 "|---|---|---|---|---|---|---|"]
        for k, (n, t, a, p) in enumerate(zip(self.looks, self.info_fractions, self.alpha_spent, self.p_bounds)):
            df = 2 * n - 2 if self.test == "welch" else n - 1          # Welch: df at equal variances
            crit = stats.t.isf(p / 2, df) if p > 0 else math.inf
            se = math.sqrt((2.0 if self.test == "welch" else 1.0) / n)  # SE in SDs (of a run / of a difference)
            lines.append(f"| {k + 1} | {n} | {t:.3f} | {a:.3g} | {p:.3g} | {crit:.2f} (df {df}) | {crit * se:.2f} |")
        if self.correction == "holm" and self.n_cells > 1:
            lines.append(f"Holm step-down: once r cells are better/worse, the others are tested at alpha/(m - r); "
                         f"last-look p* from {self.p_bounds[-1]:.3g} (alpha/{self.n_cells}) to "
                         f"{self.level_bounds[0][-1]:.3g} (alpha/1).")
        return "\n".join(lines)

    @property
    def spending_name(self) -> str:
        name = _NAMES.get(self.spending, self.spending)
        return f"{name} (gamma = {self.gamma:g})" if self.spending == "hsd" else name

    def _split(self) -> str:
        head = f"{self.alpha:g}/{self.n_cells} = {self.alpha_cell:.4g} per cell"
        return f"Holm step-down from {head}" if self.correction == "holm" else f"Bonferroni {head}"

    def footnote(self) -> str:
        """One line naming the design, for the table."""
        test = {"welch": "Welch", "paired": "paired"}.get(self.test, self.test)
        if self.correction == "holm" and self.n_cells > 1:
            split = f"Holm step-down ({self.alpha_cell:.3g} per cell, rising to alpha/(m - r) after r decisions)"
            level = "the level each cell was tested at (equivalent: always alpha/m)"
        else:
            split, level = f"split Bonferroni ({self.alpha_cell:.3g} each)", f"{100 * (1 - self.alpha_cell):.3g}%"
        return (f"Adaptive seeds: group-sequential {test} t, looks at {'/'.join(map(str, self.looks))} seeds, "
                f"{self.spending_name} alpha-spending, alpha = {self.alpha:g} {split} over {self.n_cells} cells; "
                f"intervals are repeated CIs (Jennison & Turnbull 2000) at {level}.")


def _int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _choice(name, v, allowed):
    if v not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {v!r}")
    return v


def plan(looks: Sequence[int], *, alpha: float = 0.05, n_cells: int, spending: str = "obrien_fleming",
         test: str = "welch", variance_ratios: Sequence[float] = RATIOS, n_sim: int = 200_000,
         seed: int = 0, correction: str = "bonferroni", gamma: Optional[float] = None) -> Design:
    """Boundaries for the planned looks (cached; ~1.7 s for Welch over 7 ratios, 0.3 s paired; Holm adds the
    levels α/1..α/m from the same null studies). With n_sim = 200000 the achieved per-cell crossing probability
    has Monte Carlo SE √(α_cell(1 − α_cell)/n_sim) = 2.2e-4 at α_cell = 0.01 (2 % of it), and the family's
    Bonferroni sum at most m times that (the cells share p*). gamma: the Hwang–Shih–DeCani γ, spending "hsd" only
    (default HSD_GAMMA = −4; ValueError with any other spending)."""
    if isinstance(looks, (str, bytes)) or not isinstance(looks, Sequence) or len(looks) < 2:
        raise ValueError(f"looks must be a list of >= 2 cumulative seed counts, got {looks!r}")
    looks = tuple(_int(f"looks[{i}]", n, 2) for i, n in enumerate(looks))
    if any(b <= a for a, b in zip(looks, looks[1:])):
        raise ValueError(f"looks must be strictly increasing, got {list(looks)}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    n_cells, n_sim, seed = _int("n_cells", n_cells, 1), _int("n_sim", n_sim, 1000), _int("seed", seed, 0)
    spending, test = _choice("spending", spending, SPENDINGS), _choice("test", test, TESTS)
    correction, gamma = _choice("correction", correction, CORRECTIONS), _gamma(spending, gamma)
    ratios = tuple(sorted(float(r) for r in variance_ratios)) if isinstance(variance_ratios, Sequence) else ()
    if not ratios or not all(1 <= r < math.inf for r in ratios):
        raise ValueError(f"variance_ratios must be a non-empty list of numbers >= 1, got {variance_ratios!r}")
    ratios = ratios if test == "welch" else (1.0,)
    a_cell, frac = alpha / n_cells, tuple(n / looks[-1] for n in looks)
    holm = correction == "holm"
    steps = tuple(alpha / j for j in range(n_cells, 0, -1)) if holm else (a_cell,)     # ascending
    levels = tuple(sorted({*steps, 2 * a_cell} if 2 * a_cell < 1 else set(steps)))
    rows = _p_bounds(looks, levels, spending, test, n_sim, seed, ratios, gamma)
    at = dict(zip(levels, rows))
    return Design(looks, float(alpha), n_cells, a_cell, spending, test, frac,
                  tuple(float(a) for a in spend(frac, a_cell, spending, gamma)), at[a_cell], ratios, n_sim, seed,
                  correction, tuple(at[a] for a in steps[::-1]) if holm else (), gamma,
                  at.get(2 * a_cell, at[a_cell]), levels, rows)


def _gamma(spending: str, gamma) -> Optional[float]:
    if spending != "hsd":
        if gamma is not None:
            raise ValueError(f"gamma applies to spending='hsd' only, got gamma={gamma!r} with {spending!r}")
        return None
    if gamma is None:
        return HSD_GAMMA
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not HSD_RANGE[0] <= gamma <= HSD_RANGE[1]:
        raise ValueError(f"gamma must be a number in [{HSD_RANGE[0]:g}, {HSD_RANGE[1]:g}], got {gamma!r}")
    return float(gamma)


def plan_for(looks: Sequence[int], analysis, n_cells: int) -> Design:
    """The design of a launch from its analysis settings (the sweep file's `analysis:` section, or the
    `ablate.analysis` tag): one place for the runner (sweeps/runner/looks.py) and the table (table_evidence.py)."""
    return plan(list(looks), alpha=analysis["alpha"], n_cells=max(1, n_cells), spending=analysis["spending"],
                test=analysis["test"], correction=analysis["correction"], gamma=analysis.get("hsd_gamma"))


@functools.lru_cache(maxsize=4096)
def _rows_for(design: Design, pattern) -> Tuple[Tuple[float, ...], ...]:
    k = len(pattern) - 1
    if all(a == b == design.looks[j] for j, (a, b) in enumerate(pattern)):
        return tuple(row[:k + 1] for row in design.level_rows)
    prev = _rows_for(design, pattern[:-1]) if k else tuple(() for _ in design.levels)
    last = _observed_bounds(design.key, pattern, prev)
    return tuple(r + (b,) for r, b in zip(prev, last))


@dataclass(frozen=True)
class LookDecision:
    """One cell's verdict after a look.

    Args:
        verdict: "better"/"worse" (boundary crossed), "equivalent" (RCI inside ±min_effect), "continue", or
            "undecided" (last look reached).
        look: 0-based look index; n, n_base: finished seeds (pairs, for paired) used from cell and baseline.
        delta: mean(cell) − mean(baseline) (nan when an arm is empty); rci_low, rci_high: the repeated CI
            ((−inf, inf) without a test), at the level the cell was tested at, except for "equivalent", whose RCI
            is the 1 − 2α/m one.
        p_nominal: the look's Welch/paired p (1.0 without a test); p_bound: its threshold p*_k at that level.
        seeds_needed: for "undecided", seeds per arm a fixed design needs at alpha_cell with power 0.8 to detect
            ±min_effect (when set) or the observed delta (seeds_basis says which; math.inf when no finite number
            would do); None otherwise.
        ci_low_unadj, ci_high_unadj: the plain (1 − α) t interval at this look (descriptive).
        rci_level: the nominal confidence of rci_low / rci_high at this look (1 − its p*).
    """
    verdict: str
    look: int
    n: int
    n_base: int
    delta: float
    rci_low: float
    rci_high: float
    p_nominal: float
    p_bound: float
    seeds_needed: Optional[float] = None
    ci_low_unadj: float = -math.inf
    ci_high_unadj: float = math.inf
    seeds_basis: str = ""
    rci_level: float = 1.0

    @property
    def stopped(self) -> bool:
        return self.verdict != "continue"


def _verdict(p, bound, delta, lo, hi, mode, min_effect):
    """Vectorised verdict code (index into VERDICTS, "undecided" excepted). A crossing outranks equivalence; NaN
    statistics (too few seeds, zero variance) never stop a cell."""
    p, delta, lo, hi = (np.asarray(v, float) for v in (p, delta, lo, hi))
    crossed, sign = p <= bound, 1.0 if mode == "max" else -1.0
    equiv = (~crossed & (lo > -min_effect) & (hi < min_effect)) if min_effect else np.zeros_like(crossed)
    return np.select([crossed & (sign * delta > 0), crossed & (sign * delta < 0), equiv], [1, 2, 3], 0)


def conditional_power(p, look: int, design: Design, remaining: Optional[int] = None):
    """Conditional power under the current trend (stochastic curtailment: Lan, Simon & Halperin 1982; Jennison &
    Turnbull 2000, ch. 10): the chance that the cell crosses its last-look boundary if the true effect is the one
    estimated now. Normal approximation on the B-value scale: z_k = Φ⁻¹(1 − p_k/2), t = n_k/n_K, z* the last
    look's critical value at the cell's level; CP = Φ((z_k/√t − z*)/√(1 − t)) (the crossing in the observed
    direction). Only ever used to stop a cell, never to claim anything, so it needs no exactness."""
    return _cp(p, design.looks[look] / design.looks[-1], design.bounds(remaining)[-1])


def _cp(p, t, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        z, zc = stats.norm.isf(np.asarray(p, float) / 2), stats.norm.isf(np.asarray(b, float) / 2)
        return stats.norm.cdf((z / math.sqrt(t) - zc) / math.sqrt(1 - t)) if t < 1 else np.where(p <= b, 1.0, 0.0)


def _check_decide(design, look, mode, min_effect, power, futility=None):
    if not isinstance(design, Design):
        raise ValueError(f"design must be a Design from plan(), got {type(design).__name__}")
    if isinstance(look, bool) or not isinstance(look, (int, np.integer)) or not 0 <= look < len(design.looks):
        raise ValueError(f"look must be an integer in [0, {len(design.looks) - 1}], got {look!r}")
    _choice("mode", mode, ("max", "min"))
    if min_effect is not None and not (isinstance(min_effect, (int, float)) and 0 < min_effect < math.inf):
        raise ValueError(f"min_effect must be None or a positive finite number, got {min_effect!r}")
    if not (isinstance(power, float) and 0 < power < 1):
        raise ValueError(f"power must be a float in (0, 1), got {power!r}")
    if futility is not None and (isinstance(futility, bool) or not isinstance(futility, (int, float))
                                 or not 0 < futility < 1):
        raise ValueError(f"futility must be None or a conditional power in (0, 1), got {futility!r}")


def _arm(name, values, seeds, n_max):
    v = np.asarray(values, float)
    if v.ndim != 1 or len(v) > n_max:
        raise ValueError(f"{name} must be 1-D with at most {n_max} values at this look, got shape {v.shape}")
    s = np.arange(len(v)) if seeds is None else np.asarray(seeds)
    if s.shape != v.shape or len(np.unique(s)) != len(s):
        raise ValueError(f"seeds for {name} must be unique and match its {len(v)} values, got {seeds!r}")
    return dict(zip(s.tolist(), v))


def _counts(seeds: Sequence, looks: Sequence[int]) -> Tuple[int, ...]:
    """Values present at each look: seeds below looks[j] (seeds 0..n−1 are a look's), or, for seeds outside that
    numbering, as many as the look allows."""
    s = np.asarray(sorted(seeds))
    if s.size and np.issubdtype(s.dtype, np.integer) and s.min() >= 0 and s.max() < looks[-1]:
        return tuple(int((s < n).sum()) for n in looks)
    return tuple(min(len(s), n) for n in looks)


def decide(design: Design, look: int, cell_values, base_values, *, mode: str, min_effect: Optional[float] = None,
           cell_seeds=None, base_seeds=None, power: float = 0.8, remaining: Optional[int] = None,
           futility: Optional[float] = None) -> LookDecision:
    """Verdict for one cell after look `look` (0-based), from all its finished values so far; non-finite values
    (failed or diverged runs) are dropped, and the boundaries are those calibrated for the seeds actually present
    at every look so far (``Design.observed_bounds``: the planned ones when nothing failed).
    Paired tests use the seeds present in both arms, matched by cell_seeds/base_seeds (else by position).
    remaining: under Holm, the cells not yet better/worse (this one included), which sets the level α/remaining
    of the better/worse test (default None: α/m). Equivalence is judged on the 1 − 2α/m repeated interval (one-sided
    α/m per side, Bonferroni within the equivalence claims; docs/statistics.md says why).
    futility: stop a cell still going at a look between the first and the last as "undecided" when its
    conditional power under the current trend (`conditional_power`) is below this (default None: never). Never at
    the first look: its trend (3 seeds by default) is too noisy to give up on a cell. A non-binding futility stop:
    it only removes chances to cross, so it never raises the error rate."""
    _check_decide(design, look, mode, min_effect, power, futility)
    n_max = design.looks[look]
    xa, ya = _arm("cell_values", cell_values, cell_seeds, n_max), _arm("base_values", base_values, base_seeds, n_max)
    xa, ya = ({k: v for k, v in a.items() if np.isfinite(v)} for a in (xa, ya))
    if design.test == "paired":
        common = sorted(s for s in xa if s in ya)
        x, y = np.array([xa[s] for s in common]), np.array([ya[s] for s in common])
        c = _counts(common, design.looks[:look + 1])
        pattern = tuple(zip(c, c))
    else:
        x, y = np.array(list(xa.values())), np.array(list(ya.values()))
        pattern = tuple(zip(_counts(list(xa), design.looks[:look + 1]), _counts(list(ya), design.looks[:look + 1])))
    rows = dict(zip(design.levels, design.observed_bounds(pattern)))
    bound = rows[design.level_of(remaining)][look]
    eq_bound = rows.get(design.level_of(equivalence=True), rows[design.alpha_cell])[look]
    last = look == len(design.looks) - 1
    st = _tstat.paired(x, y) if design.test == "paired" else _tstat.welch(x, y)
    unadj = st.interval(design.alpha)
    if not st.testable:                                   # < 2 values in an arm, or no variance: cannot test
        verdict = "undecided" if last else "continue"
        basis = _seeds_needed(st, design, min_effect) if last else (None, "")
        return LookDecision(verdict, look, len(x), len(y), st.delta, -math.inf, math.inf, 1.0, bound, basis[0],
                            unadj[0], unadj[1], basis[1], 1.0)
    p, delta = st.p, st.delta
    lo, hi = st.interval(bound)
    elo, ehi = st.interval(eq_bound)
    verdict, needed = VERDICTS[int(_verdict(p, bound, delta, elo, ehi, mode, min_effect))], (None, "")
    level = 1.0 - bound
    if verdict == "equivalent":
        lo, hi, level = elo, ehi, 1.0 - eq_bound
    if verdict == "continue" and (last or (futility and look > 0 and
                                            conditional_power(p, look, design, remaining) < futility)):
        verdict, needed = "undecided", _seeds_needed(st, design, min_effect)
    return LookDecision(verdict, look, len(x), len(y), delta, lo, hi, p, bound, needed[0], unadj[0], unadj[1],
                        needed[1], level)


def _seeds_needed(st, design, min_effect):
    """(seeds per arm a fixed design needs at α/m with power 0.8, basis): to detect ±min_effect at the SD seen
    when it is set, else the observed Δ (math.inf when that is 0 or no SD is known)."""
    from ._power import _seeds_for

    test = "paired" if design.test == "paired" else "welch"
    if not (math.isfinite(st.sd) and st.sd > 0):
        return math.inf, "min_effect" if min_effect else "observed"
    if min_effect:
        n = _seeds_for(min_effect / st.sd, design.alpha_cell, test)
        return (math.inf if n is None else float(n)), "min_effect"
    n = _seeds_for(abs(st.delta) / st.sd, design.alpha_cell, test) if math.isfinite(st.delta) else None
    return (math.inf if n is None else float(n)), "observed"


@dataclass(frozen=True)
class Verdicts:
    """Verdicts of many studies at once (the vectorised twin of `decide`).

    Args:
        verdict: (S, m) verdict strings; stop_look: (S, m) 0-based look each cell stopped at.
        n_cell: (S, m) seeds each cell used; n_base: (S,) seeds the baseline used (the furthest cell's);
        trials: (S,) all trials, cells + baseline.
    """
    verdict: np.ndarray
    stop_look: np.ndarray
    n_cell: np.ndarray
    n_base: np.ndarray
    trials: np.ndarray


def sequential_verdicts(design: Design, cells, base, *, mode: str = "max",
                        min_effect: Optional[float] = None, futility: Optional[float] = None) -> Verdicts:
    """Run the design on complete data: cells (S, m, >= n_K) and base (S, >= n_K), seeds in run order."""
    cells, base = np.asarray(cells, float), np.asarray(base, float)
    _check_decide(design, 0, mode, min_effect, 0.8, futility)
    if base.ndim != 2 or cells.ndim != 3 or len(cells) != len(base) or min(cells.shape[2], base.shape[1]) < \
            design.looks[-1]:
        raise ValueError(f"cells must be (S, m, >={design.looks[-1]}) and base (S, >={design.looks[-1]}), "
                         f"got {cells.shape} and {base.shape}")
    delta, se, df, p = _look_stats(cells, base[:, None, :], design.looks, design.test)
    code, stop = _step_down(design, delta, se, df, p, mode, min_effect, futility)
    n_cell = np.asarray(design.looks)[stop]
    return Verdicts(np.asarray(VERDICTS)[code], stop, n_cell, n_cell.max(-1), n_cell.sum(-1) + n_cell.max(-1))


def _step_down(design, delta, se, df, p, mode, min_effect, futility=None):
    """Verdict codes and stop looks (S, m) from per-look statistics (S, m, K), look by look as `replay` does:
    better/worse at the level of the cells not yet decided (Holm: repeated until no cell crosses), then
    equivalence on the α/m interval, then futility before the last look; cells still going after the last look
    are undecided."""
    S, m, K = p.shape
    levels = np.asarray([design.bounds(j) for j in range(1, m + 1)], float)   # row j − 1: j cells remaining
    code, stop = np.zeros((S, m), int), np.full((S, m), K - 1)
    going, decided = np.ones((S, m), bool), np.zeros(S, int)
    sign = 1.0 if mode == "max" else -1.0
    for k in range(K):
        while True:
            b = levels[np.clip(m - decided, 1, m) - 1, k]
            with np.errstate(invalid="ignore"):
                cross = going & (p[..., k] <= b[:, None])
            if not cross.any():
                break
            code[cross] = np.where(sign * delta[..., k][cross] > 0, 1, 2)
            stop[cross], going, decided = k, going & ~cross, decided + cross.sum(1)
        if min_effect:
            with np.errstate(invalid="ignore"):
                half = stats.t.isf((design.eq_bounds or design.p_bounds)[k] / 2, df[..., k]) * se[..., k]
                eq = going & (delta[..., k] - half > -min_effect) & (delta[..., k] + half < min_effect)
            code[eq], stop[eq], going = 3, k, going & ~eq
        if futility and 0 < k < K - 1:
            last_b = levels[np.clip(m - decided, 1, m) - 1, -1]
            fut = going & (_cp(p[..., k], design.looks[k] / design.looks[-1], last_b[:, None]) < futility)
            code[fut], stop[fut], going = 4, k, going & ~fut
    code[going] = 4
    return code, stop
