"""The optional sections of a sweep file (plot, artifacts, search, resources,
analysis, checkpoint), nuisance distributions and the --smoke shrink; each
checker takes the validator ``v`` (its ``add`` / ``section`` / ``task``) and
the raw mapping, and returns the section's normalised value."""
from __future__ import annotations

from typing import Any, Dict, Optional

from tasks.schema import TaskSpec

from analysis.contract import (ANALYSIS_KEYS, CORRECTIONS, DEFAULT_ANALYSIS, HSD_GAMMA, HSD_RANGE,
                               LOOKS_CORRECTIONS, SPENDINGS, TESTS)

from .study import (ARTIFACT_KEYS, CHECKPOINT_KEYS, DEFAULT_CHECKPOINT_S, DISTS, PLOT_KEYS, PLOT_KINDS, RESOURCE_KEYS,
                    SCHEDULERS, SEARCH_KEYS, Dist, is_int, is_num, near)


def check_plot(v, raw, scientific) -> Dict[str, Any]:
    plot, task = v.section(raw, "plot", PLOT_KEYS), v.task
    if not plot:
        return {}
    kind = plot.get("kind", "auto")
    if kind not in PLOT_KINDS:
        v.add("plot.kind", f"{kind!r} is not allowed: one of {', '.join(PLOT_KINDS)}")
    for k in ("x", "hue"):
        if k in plot and plot[k] not in scientific:
            v.add(f"plot.{k}", f"{plot[k]!r} is not a scientific axis; allowed: {', '.join(scientific)}")
    if "metric" in plot and plot["metric"] not in task.metrics:
        v.add("plot.metric", f"{plot['metric']!r} is not a metric of task {task.name}; allowed: "
                                f"{', '.join(task.metrics)}")
    ms = plot.get("metrics", [])
    if not isinstance(ms, list) or (kind == "metric_curve" and not ms):
        v.add("plot.metrics", "a non-empty list of metric names (for kind metric_curve)")
    else:
        for m in ms:
            if m not in task.metrics:
                v.add("plot.metrics", f"{m!r} is not a metric of task {task.name}; allowed: "
                                         f"{', '.join(task.metrics)}")
        xv = plot.get("x_values")
        if xv is not None and (not isinstance(xv, list) or len(xv) != len(ms) or not all(map(is_num, xv))):
            v.add("plot.x_values", f"{xv!r} is not allowed: one number per entry of plot.metrics")
    if kind in ("line", "bars") and "x" not in plot:
        v.add("plot.x", f"kind {kind} needs x: one of {', '.join(scientific)}")
    return dict(plot)


def check_artifacts(v, raw) -> Dict[str, bool]:
    arts = v.section(raw, "artifacts", ARTIFACT_KEYS)
    for k, v in arts.items():
        if k in ARTIFACT_KEYS and not isinstance(v, bool):
            v.add(f"artifacts.{k}", f"{v!r} is not allowed: true or false")
    return {"checkpoints": bool(arts.get("checkpoints", False)), "summary": bool(arts.get("summary", True))}


def check_search(v, raw, nuisance, mname, mode, seeds) -> Dict[str, Any]:
    search, task = v.section(raw, "search", SEARCH_KEYS), v.task
    tpc = search.get("trials_per_cell", 8 if nuisance else 1)
    if not is_int(tpc) or tpc < 1:
        v.add("search.trials_per_cell", f"{tpc!r} is not allowed: an integer >= 1")
    sched = search.get("scheduler", "none")
    if sched not in SCHEDULERS:
        v.add("search.scheduler", f"{sched!r} is not allowed: one of {', '.join(SCHEDULERS)}")
    smetric = search.get("metric", mname)
    if smetric not in task.metrics:
        v.add("search.metric", f"{smetric!r} is not a metric of task {task.name}; allowed: "
                                  f"{', '.join(task.metrics)}")
    smode = search.get("mode", task.metrics.get(smetric, mode))
    if smode not in ("max", "min"):
        v.add("search.mode", f"{smode!r} is not allowed: max or min")
    for k, lo in (("grace_period", 1), ("reduction_factor", 2), ("seed", 0)):
        val = search.get(k)
        if val is not None and (not is_int(val) or val < lo):
            v.add(f"search.{k}", f"{val!r} is not allowed: an integer >= {lo}")
    # Tuning seeds apart from evaluation seeds (Eimer et al. 2023): by default the search runs on the smallest
    # seed outside `seeds:`; an explicit search.seed inside them is honoured, and the table flags it.
    taken = {s for s in seeds if is_int(s)}
    seed = search.get("seed", next(i for i in range(len(taken) + 1) if i not in taken))
    return {"trials_per_cell": tpc, "scheduler": sched, "metric": smetric, "mode": smode,
            "grace_period": search.get("grace_period", 1), "reduction_factor": search.get("reduction_factor", 3),
            "seed": seed, "seed_overlaps": bool(nuisance) and seed in taken}


def check_resources(v, raw) -> Dict[str, Any]:
    res = v.section(raw, "resources", RESOURCE_KEYS)
    cpu, gpu, workers = res.get("cpu", 1), res.get("gpu", 0), res.get("workers", 1)
    if not is_num(cpu) or cpu <= 0:
        v.add("resources.cpu", f"{cpu!r} is not allowed: a number > 0 (CPUs per trial worker)")
    if not is_num(gpu) or gpu < 0 or (gpu > 1 and not float(gpu).is_integer()):
        v.add("resources.gpu", f"{gpu!r} is not allowed: a fraction in [0, 1] or a whole number of GPUs")
    if not is_int(workers) or workers < 1:
        v.add("resources.workers", f"{workers!r} is not allowed: an integer >= 1 (data-parallel workers)")
    return {"cpu": cpu, "gpu": gpu, "workers": workers}


def check_analysis(v, raw, looks, seeds) -> Dict[str, Any]:
    sec = v.section(raw, "analysis", ANALYSIS_KEYS)
    out = {**DEFAULT_ANALYSIS, **{k: v for k, v in sec.items() if k in ANALYSIS_KEYS}}
    a = out["alpha"]
    if not is_num(a) or not 0 < a < 1:
        v.add("analysis.alpha", f"{a!r} is not allowed: a number in (0, 1), e.g. 0.05")
    for key, allowed in (("correction", CORRECTIONS), ("test", TESTS), ("spending", SPENDINGS)):
        if out[key] not in allowed:
            v.add(f"analysis.{key}", f"{out[key]!r} is not allowed: one of {', '.join(allowed)}")
    m = out["min_effect"]
    if m is not None and (not is_num(m) or m <= 0):
        v.add("analysis.min_effect", f"{m!r} is not allowed: a number > 0 in metric units (the smallest "
                                        f"difference that matters), or leave it out")
    if looks and out["correction"] in CORRECTIONS and out["correction"] not in LOOKS_CORRECTIONS:
        v.add("analysis.correction", f"{out['correction']!r} is not allowed with seeds: {{looks: [...]}}: one of "
                                     f"{', '.join(LOOKS_CORRECTIONS)} (the group-sequential design keeps the "
                                     f"family-wise error; {out['correction']} does not)")
    f = out["futility"]
    if f is not None and (not is_num(f) or not 0 < f < 1):
        v.add("analysis.futility", f"{f!r} is not allowed: a conditional power in (0, 1), e.g. 0.01, or leave it "
                                     f"out (no futility stops)")
    elif f is not None and not looks:
        v.add("analysis.futility", "applies to adaptive seeds only: use seeds: {looks: [...]} or remove it")
    if "spending" in sec and not looks:
        v.add("analysis.spending", "applies to adaptive seeds only: use seeds: {looks: [...]} or remove it")
    _check_hsd_gamma(v, out)
    if out["test"] == "paired" and len(seeds) < 2:
        v.add("analysis.test", "paired needs at least 2 seeds per cell (seed-matched pairs)")
    return out


def _check_hsd_gamma(v, out) -> None:
    g, lo, hi = out["hsd_gamma"], *HSD_RANGE
    if g is None:
        if out["spending"] == "hsd":              # recorded with the launch, so its replay never depends on a default
            out["hsd_gamma"] = HSD_GAMMA
        return
    if not is_num(g) or not lo <= g <= hi:
        v.add("analysis.hsd_gamma", f"{g!r} is not allowed: a number in [{lo:g}, {hi:g}] (the Hwang-Shih-DeCani "
                                     f"parameter: -4 is close to obrien_fleming, 1 to pocock), or leave it out")
    elif out["spending"] != "hsd":
        v.add("analysis.hsd_gamma", f"applies to spending: hsd only (spending is {out['spending']!r}): set "
                                     f"analysis.spending: hsd or remove it")


def check_checkpoint(v, raw) -> Dict[str, Any]:
    sec = v.section(raw, "checkpoint", CHECKPOINT_KEYS)
    every = sec.get("every_s", DEFAULT_CHECKPOINT_S)
    if not is_num(every) or every < 0:
        v.add("checkpoint.every_s", f"{every!r} is not allowed: seconds >= 0 between checkpoints of a "
                                       f"trial (0 = every epoch)")
    return {"every_s": every}


def parse_dist(path, spec, param, P) -> Optional[Dist]:
    if not isinstance(spec, dict) or len(spec) != 1:
        P.append((path, f"{spec!r} is not allowed: one of {{loguniform|uniform|int: [low, high]}} or {{choice: [values]}}"))
        return None
    (kind, args), = spec.items()
    if kind not in DISTS:
        P.append((f"{path}.{kind}", f"unknown distribution; {near(kind, DISTS)}allowed: {', '.join(DISTS)}"))
        return None
    if kind == "choice":
        if not isinstance(args, list) or not args:
            P.append((f"{path}.choice", f"{args!r} is not allowed: a non-empty list"))
            return None
        vals = []
        for v in args:
            try:
                vals.append(param.coerce(v))
            except ValueError as e:
                P.append((f"{path}.choice", f"{v!r} is not allowed: {e}"))
        return Dist(kind, vals)
    if not (isinstance(args, list) and len(args) == 2 and all(is_num(a) for a in args) and args[0] < args[1]):
        P.append((f"{path}.{kind}", f"{args!r} is not allowed: [low, high] numbers with low < high"))
        return None
    if kind == "loguniform" and args[0] <= 0:
        P.append((f"{path}.{kind}", f"{args!r} is not allowed: loguniform needs low > 0"))
        return None
    if kind == "int" and param.type is not int or kind != "int" and param.type is not float:
        P.append((f"{path}.{kind}", f"{kind} does not fit a {param.type.__name__} key; "
                                    f"use {'int' if param.type is int else 'uniform/loguniform'} or choice"))
        return None
    for a in args:
        try:
            param.coerce(a)
        except ValueError as e:
            P.append((f"{path}.{kind}", f"bound {a!r} is not allowed: {e}"))
            return None
    return Dist(kind, list(args))


def shrink(raw: Dict[str, Any], task: TaskSpec) -> None:
    """--smoke: one seed (or the first look), few epochs, little data, two search trials per cell."""
    seeds = raw.get("seeds") or [0]
    raw["seeds"] = seeds[:1] if isinstance(seeds, list) else seeds
    fixed = dict(raw.get("fixed") or {}) if isinstance(raw.get("fixed"), dict) else {}
    fixed.update(task.smoke)
    fixed.update((raw.get("smoke") or {}) if isinstance(raw.get("smoke"), dict) else {})
    sci = raw.get("scientific") if isinstance(raw.get("scientific"), dict) else {}
    nui = raw.get("nuisance") if isinstance(raw.get("nuisance"), dict) else {}
    for k in list(fixed):
        if k in sci or k in nui:
            fixed.pop(k)
    raw["fixed"] = fixed
    if raw.get("nuisance"):
        search = dict(raw.get("search") or {}) if isinstance(raw.get("search"), dict) else {}
        tpc = search.get("trials_per_cell", 2)
        search["trials_per_cell"] = min(2, tpc) if isinstance(tpc, int) and not isinstance(tpc, bool) else tpc
        raw["search"] = search
