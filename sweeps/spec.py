"""Sweep files: load a YAML study description and validate it completely
before anything is launched.

A sweep file (see README, "Writing a sweep file")::

    name: cdlinear-block            # experiment name in MLflow
    task: digits                    # tasks.available_tasks()
    metric: {name: test_acc, mode: max}
    baseline: {model.linear: dense} # one scientific cell, the Δ reference
    seeds: [0, 1, 2]                # replicates of every cell
    fixed: {train.epochs: 25}
    scientific: {model.linear: [dense, cdlinear], model.block_size: [4, 8]}
    nuisance: {optim.lr: {loguniform: [1.0e-3, 0.3]}}   # optional, tuned per cell
    search: {trials_per_cell: 8, scheduler: asha, metric: test_acc}
    resources: {cpu: 1, gpu: 0, workers: 1}
    max_failures: 2

Every problem is reported as ``FILE: KEY.PATH: message`` naming the bad value
and what is allowed; the CLI exits 2.  Nothing here imports torch, Ray or
MLflow (validation must take well under 2 s).  pydantic could express the
top-level shape, but the interesting checks (task keys, conditional axes,
component constraints per expanded cell) are task-driven, so a small
hand-written validator gives better messages with fewer moving parts.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from tasks import available_tasks, get_task
from tasks.schema import TaskSpec

TOP_KEYS = ("name", "task", "description", "metric", "baseline", "seeds", "fixed", "scientific",
            "nuisance", "search", "resources", "max_failures", "max_concurrent", "tracking",
            "storage", "smoke", "paper", "plot", "artifacts")
ARTIFACT_KEYS = ("checkpoints", "summary")
PLOT_KINDS = ("auto", "line", "heatmap", "bars", "metric_curve")
PLOT_KEYS = ("kind", "x", "hue", "metric", "metrics", "x_values", "x_label", "logy")
SEARCH_KEYS = ("trials_per_cell", "scheduler", "metric", "mode", "grace_period", "reduction_factor", "seed")
RESOURCE_KEYS = ("cpu", "gpu", "workers")
TRACKING_KEYS = ("uri", "experiment")
DISTS = ("loguniform", "uniform", "int", "choice")
SCHEDULERS = ("none", "asha")
MAX_SEED = 2**31 - 1


class SweepError(Exception):
    """One or more problems in a sweep file; ``str()`` lists them one per line."""

    def __init__(self, file: str, problems: List[Tuple[str, str]]):
        self.file, self.problems = file, problems
        super().__init__("\n".join(f"{file}: {path}: {msg}" for path, msg in problems))


@dataclass
class Dist:
    kind: str
    args: List[Any]

    def describe(self) -> str:
        return f"{self.kind}{self.args}"


@dataclass
class Study:
    """A validated sweep."""

    name: str
    file: str
    task: TaskSpec
    metric: str
    mode: str
    seeds: List[int]
    fixed: Dict[str, Any]
    scientific: Dict[str, List[Any]]
    nuisance: Dict[str, Dist]
    baseline: Dict[str, Any]
    search: Dict[str, Any]
    resources: Dict[str, Any]
    max_failures: int
    max_concurrent: int
    tracking_uri: Optional[str]
    experiment: str
    storage: Optional[str]
    smoke: bool = False
    description: str = ""
    plot: Dict[str, Any] = field(default_factory=dict)
    artifacts: Dict[str, bool] = field(default_factory=lambda: {"checkpoints": False, "summary": True})
    raw: Dict[str, Any] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)   # e.g. a --set that drops the baseline


def _near(key: str, options) -> str:
    close = difflib.get_close_matches(str(key), list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_assignments(items: List[str]) -> Dict[str, Any]:
    """``["a.b=3", "c=[1, 2]"]`` → {"a.b": 3, "c": [1, 2]} (values parsed as YAML)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        if not k.strip():
            raise ValueError(f"--set {item!r}: the key before '=' is empty")
        try:
            out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
        except yaml.YAMLError as e:
            where = getattr(e, "problem", None) or "not valid YAML"
            raise ValueError(f"--set {k.strip()}: value {v!r} is not valid YAML ({where}); "
                             f"quote strings, write lists as [a, b]") from None
    return out


SUITE_KEYS = ("name", "description", "defaults", "studies", "paper")


def _merge(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _top_problems(raw: Dict[str, Any], allowed, what: str) -> List[Tuple[str, str]]:
    """Unknown top-level keys and an invalid ``name``, for sweep and suite files alike."""
    P = [(str(k), f"{what}; {_near(k, allowed)}allowed: {', '.join(allowed)}") for k in raw if k not in allowed]
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        P.append(("name", f"{name!r} is not allowed: a name of letters, digits, '_', '.', '-'"))
    return P


def load_all(path: str, overrides: Optional[Dict[str, Any]] = None, smoke: bool = False,
             only: Optional[List[str]] = None) -> List[Study]:
    """Load a sweep file or a suite file (``studies:``) as a list of Studies.

    A suite's studies are named ``<suite>.<key>`` (one MLflow experiment each)
    and inherit ``defaults``; ``only`` selects some of them by key.
    """
    file = str(path)
    raw = _read(file)
    if "studies" not in raw:
        if only:
            raise SweepError(file, [("--only", f"{only} given, but this is a single sweep, not a suite")])
        return [_validate_raw(raw, file, overrides, smoke)]
    P: List[Tuple[str, str]] = _top_problems(raw, SUITE_KEYS, "unknown key in a suite file")
    name = raw.get("name")
    studies, defaults = raw.get("studies"), raw.get("defaults") or {}
    if not isinstance(studies, dict) or not studies:
        P.append(("studies", "must map study keys to sweep mappings"))
    if not isinstance(defaults, dict):
        P.append(("defaults", "must be a mapping of sweep keys"))
    if P:
        raise SweepError(file, P)
    keys = list(studies)
    for k in only or []:
        if k not in studies:
            P.append(("--only", f"{k!r} is not a study of this suite; studies: {', '.join(keys)}"))
    if P:
        raise SweepError(file, P)
    out = []
    for key in (only or keys):
        sub = studies[key]
        if not isinstance(sub, dict):
            P.append((f"studies.{key}", "must be a sweep mapping"))
            continue
        merged = _merge(defaults, sub)
        merged["name"] = f"{name}.{key}"
        try:
            out.append(_validate_raw(merged, file, overrides, smoke))
        except SweepError as e:
            P.extend((f"studies.{key}.{p}", m) for p, m in e.problems)
    if P:
        raise SweepError(file, P)
    return out


def _read(file: str) -> Dict[str, Any]:
    try:
        text = Path(file).read_text()
    except OSError as e:
        raise SweepError(file, [("<file>", f"cannot read sweep file: {e.strerror}")]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SweepError(file, [("<yaml>", f"not valid YAML: {e}")]) from None
    if not isinstance(raw, dict):
        raise SweepError(file, [("<top>", f"a sweep file is a mapping of keys, got {type(raw).__name__}")])
    return raw


def _validate_raw(raw: Dict[str, Any], file: str, overrides, smoke) -> Study:
    raw = copy.deepcopy(raw)
    warnings: List[str] = []
    if overrides:
        _apply_overrides(raw, overrides, warnings)
    study = validate(raw, file, smoke=smoke)
    study.warnings = warnings
    return study


def load(path: str, overrides: Optional[Dict[str, Any]] = None, smoke: bool = False) -> Study:
    """Read, override (``--set``), shrink (``--smoke``) and validate a single-study sweep file."""
    studies = load_all(path, overrides, smoke)
    if len(studies) != 1:
        raise SweepError(str(path), [("studies", f"a suite of {len(studies)} studies; use load_all()")])
    return studies[0]


# Sections whose entries are the task's dotted keys: ``--set baseline.model.linear=cdlinear``
# addresses the entry "model.linear" of "baseline", not baseline → model → linear.
DOTTED_SECTIONS = ("baseline", "fixed", "scientific", "nuisance", "smoke")


def _apply_overrides(raw: Dict[str, Any], overrides: Dict[str, Any], warnings: List[str]) -> None:
    """``--set`` on the raw sweep mapping: a task key goes to the scientific axis it
    names (narrowing the grid) or to ``fixed``; a sweep key to its section."""
    task_keys: set = set()
    try:
        task_keys = set(get_task(raw.get("task")).params)
    except Exception:
        pass  # an unknown task is reported by validate()
    for key, value in overrides.items():
        top, _, rest = key.partition(".")
        if key in task_keys:
            _override_task_key(raw, key, value, warnings)
        elif top in DOTTED_SECTIONS and rest:
            sec = raw.get(top)
            if not isinstance(sec, dict):
                sec = raw[top] = {}
            sec[rest] = value
        elif top in TOP_KEYS:
            node = raw
            parts = key.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    node[p] = {}       # e.g. --set seeds.looks=[3,5] turns a seed list into a mapping
                node = node[p]
            node[parts[-1]] = value
        else:
            raise SweepError("--set", [(key, f"unknown key; {_near(key, list(task_keys) + list(TOP_KEYS))}"
                                            f"--set takes a key of task {raw.get('task')!r} or a sweep-file key "
                                            f"({', '.join(TOP_KEYS)})")])


def _override_task_key(raw: Dict[str, Any], key: str, value: Any, warnings: List[str]) -> None:
    sci = raw.get("scientific") or {}
    if isinstance(sci, dict) and key in sci:
        sci[key] = value if isinstance(value, list) else [value]
        base = raw.get("baseline") or {}
        if isinstance(base, dict) and key in base and base[key] not in sci[key]:
            # The override narrows the grid past the baseline: no Δ column then.
            raw["baseline"] = {}
            warnings.append(f"--set {key}={value} leaves out the baseline cell ({key}={base[key]}): "
                            f"the table has no Δ vs baseline, intervals or verdicts")
        return
    nui = raw.get("nuisance")
    if isinstance(nui, dict) and key in nui:
        nui.pop(key)
        warnings.append(f"--set {key}={value} fixes a nuisance key: it is no longer tuned")
    if not isinstance(raw.get("fixed"), dict):
        raw["fixed"] = {}
    raw["fixed"][key] = value


def validate(raw: Dict[str, Any], file: str, smoke: bool = False) -> Study:
    P: List[Tuple[str, str]] = _top_problems(raw, TOP_KEYS, "unknown key")
    name = raw.get("name")

    task_name = raw.get("task")
    task = None
    if task_name not in available_tasks():
        P.append(("task", f"unknown task {task_name!r}; {_near(task_name, available_tasks())}"
                          f"valid tasks: {', '.join(available_tasks())}"))
    else:
        task = get_task(task_name)
    if task is None:
        raise SweepError(file, P)
    if smoke:
        _shrink(raw, task)

    # metric
    metric = raw.get("metric", {})
    if isinstance(metric, str):
        metric = {"name": metric}
    if not isinstance(metric, dict):
        P.append(("metric", "must be {name: METRIC, mode: max|min}"))
        metric = {}
    for k in metric:
        if k not in ("name", "mode"):
            P.append((f"metric.{k}", f"unknown key; allowed: name, mode"))
    mname = metric.get("name")
    if mname not in task.metrics:
        P.append(("metric.name", f"{mname!r} is not a metric of task {task.name}; "
                                 f"{_near(mname, task.metrics)}allowed: {', '.join(task.metrics)}"))
    mode = metric.get("mode", task.metrics.get(mname, "max"))
    if mode not in ("max", "min"):
        P.append(("metric.mode", f"{mode!r} is not allowed: max or min"))

    # seeds
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds:
        P.append(("seeds", f"{seeds!r} is not allowed: a non-empty list of integers in [0, {MAX_SEED}]"))
        seeds = []
    for i, s in enumerate(seeds):
        if not _is_int(s) or not 0 <= s <= MAX_SEED:
            P.append((f"seeds[{i}]", f"{s!r} is not allowed: seeds are integers in [0, {MAX_SEED}]"))
    if len(set(map(repr, seeds))) != len(seeds):
        P.append(("seeds", f"{seeds} repeats a seed; replicates must be distinct"))

    def check_key(section: str, key: str) -> bool:
        if key in ("seed",):
            P.append((f"{section}.{key}", "the seed is set by 'seeds', not here"))
            return False
        if key not in task.params:
            P.append((f"{section}.{key}", f"unknown key for task {task.name}; {_near(key, task.params)}"
                                          f"valid keys: {', '.join(sorted(k for k in task.params if k != 'seed'))}"))
            return False
        return True

    def check_value(path: str, key: str, value: Any) -> Any:
        try:
            return task.params[key].coerce(value)
        except ValueError as e:
            P.append((path, f"{value!r} is not allowed: {e}"))
            return None

    fixed_raw = raw.get("fixed") or {}
    sci_raw = raw.get("scientific") or {}
    nui_raw = raw.get("nuisance") or {}
    for sec, val in (("fixed", fixed_raw), ("scientific", sci_raw), ("nuisance", nui_raw)):
        if not isinstance(val, dict):
            P.append((sec, f"must be a mapping of task keys, got {type(val).__name__}"))
    fixed_raw = fixed_raw if isinstance(fixed_raw, dict) else {}
    sci_raw = sci_raw if isinstance(sci_raw, dict) else {}
    nui_raw = nui_raw if isinstance(nui_raw, dict) else {}

    fixed = {}
    for k, v in fixed_raw.items():
        if check_key("fixed", k):
            c = check_value(f"fixed.{k}", k, v)
            if c is not None:
                fixed[k] = c
    scientific: Dict[str, List[Any]] = {}
    for k, vals in sci_raw.items():
        if not check_key("scientific", k):
            continue
        if k in fixed_raw:
            P.append((f"scientific.{k}", "also set in 'fixed'; a key is fixed, scientific or nuisance"))
        if not isinstance(vals, list) or not vals:
            P.append((f"scientific.{k}", f"{vals!r} is not allowed: a non-empty list of values"))
            continue
        out = []
        for i, v in enumerate(vals):
            c = check_value(f"scientific.{k}[{i}]", k, v)
            if c is not None:
                out.append(c)
        if len(set(map(repr, out))) != len(out):
            P.append((f"scientific.{k}", f"{vals} repeats a value"))
        scientific[k] = out
    nuisance: Dict[str, Dist] = {}
    for k, spec in nui_raw.items():
        if not check_key("nuisance", k):
            continue
        if k in fixed_raw or k in sci_raw:
            P.append((f"nuisance.{k}", "also set in 'fixed' or 'scientific'"))
        d = _parse_dist(f"nuisance.{k}", spec, task.params[k], P)
        if d:
            nuisance[k] = d

    # baseline
    baseline = raw.get("baseline") or {}
    if not isinstance(baseline, dict):
        P.append(("baseline", "must map scientific axes to one value each"))
        baseline = {}
    for k, v in baseline.items():
        if k not in scientific:
            P.append((f"baseline.{k}", f"not a scientific axis; allowed: {', '.join(scientific) or '(none)'}"))
        elif v not in scientific[k]:
            P.append((f"baseline.{k}", f"{v!r} is not allowed: one of the axis values {scientific[k]}"))

    smoke_raw = raw.get("smoke") or {}
    if not isinstance(smoke_raw, dict):
        P.append(("smoke", "must be a mapping of task keys (overrides used by --smoke)"))
    else:
        for k, v in smoke_raw.items():
            if check_key("smoke", k):
                check_value(f"smoke.{k}", k, v)

    plot = _check_section(raw, "plot", PLOT_KEYS, P)
    if plot:
        kind = plot.get("kind", "auto")
        if kind not in PLOT_KINDS:
            P.append(("plot.kind", f"{kind!r} is not allowed: one of {', '.join(PLOT_KINDS)}"))
        for k in ("x", "hue"):
            if k in plot and plot[k] not in scientific:
                P.append((f"plot.{k}", f"{plot[k]!r} is not a scientific axis; allowed: {', '.join(scientific)}"))
        if "metric" in plot and plot["metric"] not in task.metrics:
            P.append(("plot.metric", f"{plot['metric']!r} is not a metric of task {task.name}; allowed: "
                                     f"{', '.join(task.metrics)}"))
        ms = plot.get("metrics", [])
        if not isinstance(ms, list) or (kind == "metric_curve" and not ms):
            P.append(("plot.metrics", "a non-empty list of metric names (for kind metric_curve)"))
        else:
            for m in ms:
                if m not in task.metrics:
                    P.append(("plot.metrics", f"{m!r} is not a metric of task {task.name}; allowed: "
                                              f"{', '.join(task.metrics)}"))
            xv = plot.get("x_values")
            if xv is not None and (not isinstance(xv, list) or len(xv) != len(ms) or not all(_is_num(v) for v in xv)):
                P.append(("plot.x_values", f"{xv!r} is not allowed: one number per entry of plot.metrics"))
        if kind in ("line", "bars") and "x" not in plot:
            P.append(("plot.x", f"kind {kind} needs x: one of {', '.join(scientific)}"))

    arts = _check_section(raw, "artifacts", ARTIFACT_KEYS, P)
    for k, v in arts.items():
        if k in ARTIFACT_KEYS and not isinstance(v, bool):
            P.append((f"artifacts.{k}", f"{v!r} is not allowed: true or false"))
    artifacts = {"checkpoints": bool(arts.get("checkpoints", False)), "summary": bool(arts.get("summary", True))}

    search = _check_section(raw, "search", SEARCH_KEYS, P)
    tpc = search.get("trials_per_cell", 8 if nuisance else 1)
    if not _is_int(tpc) or tpc < 1:
        P.append(("search.trials_per_cell", f"{tpc!r} is not allowed: an integer >= 1"))
    sched = search.get("scheduler", "none")
    if sched not in SCHEDULERS:
        P.append(("search.scheduler", f"{sched!r} is not allowed: one of {', '.join(SCHEDULERS)}"))
    smetric = search.get("metric", mname)
    if smetric not in task.metrics:
        P.append(("search.metric", f"{smetric!r} is not a metric of task {task.name}; allowed: {', '.join(task.metrics)}"))
    smode = search.get("mode", task.metrics.get(smetric, mode))
    if smode not in ("max", "min"):
        P.append(("search.mode", f"{smode!r} is not allowed: max or min"))
    for k, lo in (("grace_period", 1), ("reduction_factor", 2), ("seed", 0)):
        v = search.get(k)
        if v is not None and (not _is_int(v) or v < lo):
            P.append((f"search.{k}", f"{v!r} is not allowed: an integer >= {lo}"))
    search = {"trials_per_cell": tpc, "scheduler": sched, "metric": smetric, "mode": smode,
              "grace_period": search.get("grace_period", 1), "reduction_factor": search.get("reduction_factor", 3),
              "seed": search.get("seed", seeds[0] if seeds and _is_int(seeds[0]) else 0)}

    res = _check_section(raw, "resources", RESOURCE_KEYS, P)
    cpu, gpu, workers = res.get("cpu", 1), res.get("gpu", 0), res.get("workers", 1)
    if not _is_num(cpu) or cpu <= 0:
        P.append(("resources.cpu", f"{cpu!r} is not allowed: a number > 0 (CPUs per trial worker)"))
    if not _is_num(gpu) or gpu < 0 or (gpu > 1 and not float(gpu).is_integer()):
        P.append(("resources.gpu", f"{gpu!r} is not allowed: a fraction in [0, 1] or a whole number of GPUs"))
    if not _is_int(workers) or workers < 1:
        P.append(("resources.workers", f"{workers!r} is not allowed: an integer >= 1 (data-parallel workers)"))
    resources = {"cpu": cpu, "gpu": gpu, "workers": workers}

    mf = raw.get("max_failures", 2)
    if not _is_int(mf) or mf < -1:
        P.append(("max_failures", f"{mf!r} is not allowed: an integer >= 0 (-1 = retry forever)"))
    mc = raw.get("max_concurrent", 0)
    if not _is_int(mc) or mc < 0:
        P.append(("max_concurrent", f"{mc!r} is not allowed: an integer >= 0 (0 = as many as fit)"))
    tr = _check_section(raw, "tracking", TRACKING_KEYS, P)
    uri = tr.get("uri")
    if uri is not None and not isinstance(uri, str):
        P.append(("tracking.uri", f"{uri!r} is not allowed: a tracking URI string"))
    storage = raw.get("storage")
    if storage is not None and not isinstance(storage, str):
        P.append(("storage", f"{storage!r} is not allowed: a directory or URI string"))
    study = Study(name=name, file=file, task=task, metric=mname, mode=mode, seeds=list(seeds), fixed=fixed,
                  scientific=scientific, nuisance=nuisance, baseline=dict(baseline), search=search,
                  resources=resources, max_failures=mf, max_concurrent=mc, tracking_uri=uri,
                  experiment=tr.get("experiment", name), storage=storage, smoke=smoke,
                  description=str(raw.get("description", "")), raw=raw, plot=dict(plot),
                  artifacts=artifacts)
    # Per-cell checks (conditional keys, component constraints) need the expansion.
    # They run even when other keys are wrong, so that one pass reports everything.
    from .expand import cells

    if not _is_num(study.resources["cpu"]) or study.resources["cpu"] <= 0:
        study.resources = {**study.resources, "cpu": 1}
    cell_problems: List[Tuple[str, str]] = []
    cs = cells(study, problems=cell_problems)
    if nuisance and task.sparse:
        # Tune's strict metric check fails a trial whose result lacks the search
        # metric, and ASHA's rungs would never see it: refuse before launch.
        for c in cs:
            every, key = task.sparse(c.config).get(search["metric"], (1, ""))
            if every > 1:
                cell_problems.append(("search.metric", f"{search['metric']!r} is reported only every {every} "
                                      f"epochs in cell [{c.id}] ({key}); a nuisance search needs its metric "
                                      f"every epoch: set fixed.{key}: 1 or search on another metric"))
                break
    if baseline and not P and not any(all(c.values.get(k) == v for k, v in baseline.items()) for c in cs):
        cell_problems.append(("baseline", f"{baseline} matches no scientific cell"))
    P.extend(p for p in cell_problems if p not in P)
    if P:
        raise SweepError(file, P)
    study.resources = resources
    return study


def _check_section(raw, key, allowed, P) -> Dict[str, Any]:
    sec = raw.get(key) or {}
    if not isinstance(sec, dict):
        P.append((key, f"must be a mapping with keys {', '.join(allowed)}"))
        return {}
    for k in sec:
        if k not in allowed:
            P.append((f"{key}.{k}", f"unknown key; {_near(k, allowed)}allowed: {', '.join(allowed)}"))
    return sec


def _parse_dist(path, spec, param, P) -> Optional[Dist]:
    if not isinstance(spec, dict) or len(spec) != 1:
        P.append((path, f"{spec!r} is not allowed: one of {{loguniform|uniform|int: [low, high]}} or {{choice: [values]}}"))
        return None
    (kind, args), = spec.items()
    if kind not in DISTS:
        P.append((f"{path}.{kind}", f"unknown distribution; {_near(kind, DISTS)}allowed: {', '.join(DISTS)}"))
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
    if not (isinstance(args, list) and len(args) == 2 and all(_is_num(a) for a in args) and args[0] < args[1]):
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


def _shrink(raw: Dict[str, Any], task: TaskSpec) -> None:
    """--smoke: one seed, few epochs, little data, two search trials per cell."""
    seeds = raw.get("seeds") or [0]
    raw["seeds"] = seeds[:1] if isinstance(seeds, list) else seeds
    fixed = dict(raw.get("fixed") or {})
    fixed.update(task.smoke)
    fixed.update((raw.get("smoke") or {}) if isinstance(raw.get("smoke"), dict) else {})
    sci = raw.get("scientific") or {}
    for k in list(fixed):
        if k in sci or k in (raw.get("nuisance") or {}):
            fixed.pop(k)
    raw["fixed"] = fixed
    if raw.get("nuisance"):
        search = dict(raw.get("search") or {})
        search["trials_per_cell"] = min(2, search.get("trials_per_cell", 2) if isinstance(search.get("trials_per_cell"), int) else 2)
        raw["search"] = search
