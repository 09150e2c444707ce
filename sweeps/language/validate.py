"""Validate a raw sweep mapping completely before anything is launched.

Every problem is collected as ``(KEY.PATH, message)`` naming the bad value and
what is allowed, so one pass reports everything; the CLI prints them as
``FILE: KEY.PATH: message`` and exits 2.  pydantic could express the
top-level shape, but the interesting checks (task keys, conditional axes,
component constraints per expanded cell) are task-driven, so a small
hand-written validator, one method per section, gives better messages.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from tasks import available_tasks, get_task
from tasks.schema import TaskSpec

from ..errors import SweepError
from .expand import cells, final_trials
from .sections import (check_analysis, check_artifacts, check_checkpoint, check_plot, check_resources, check_search,
                       parse_dist, shrink)
from .study import MAX_SEED, SEED_KEYS, TOP_KEYS, TRACKING_KEYS, Dist, Study, is_int, is_num, near


def top_problems(raw: Dict[str, Any], allowed, what: str) -> List[Tuple[str, str]]:
    """Unknown top-level keys and an invalid ``name``, for sweep and suite files alike."""
    P = [(str(k), f"{what}; {near(k, allowed)}allowed: {', '.join(allowed)}") for k in raw if k not in allowed]
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        P.append(("name", f"{name!r} is not allowed: a name of letters, digits, '_', '.', '-'"))
    return P


def validate(raw: Dict[str, Any], file: str, smoke: bool = False) -> Study:
    P = top_problems(raw, TOP_KEYS, "unknown key")
    task_name = raw.get("task")
    if task_name not in available_tasks():
        P.append(("task", f"unknown task {task_name!r}; {near(task_name, available_tasks())}"
                          f"valid tasks: {', '.join(available_tasks())}"))
        raise SweepError(file, P)
    v = _Validator(get_task(task_name), P)
    planned = v.looks(raw)                   # before --smoke shrinks the seeds
    if smoke:
        shrink(raw, v.task)
    # --smoke keeps only the first look: a fixed design on its seeds
    looks = None if smoke else planned
    metric, mode = v.metric(raw)
    seeds = list(range(planned[0] if smoke else planned[-1])) if planned else v.seeds(raw)
    fixed, scientific, nuisance = v.params(raw)
    study = Study(name=raw.get("name"), file=file, task=v.task, metric=metric, mode=mode, seeds=seeds,
                  fixed=fixed, scientific=scientific, nuisance=nuisance, baseline=v.baseline(raw, scientific),
                  search=check_search(v, raw, nuisance, metric, mode, seeds), resources=check_resources(v, raw),
                  max_failures=v.integer(raw, "max_failures", 2, -1, "an integer >= 0 (-1 = retry forever)"),
                  max_concurrent=v.integer(raw, "max_concurrent", 0, 0, "an integer >= 0 (0 = as many as fit)"),
                  tracking_uri=None, experiment=raw.get("name"), storage=v.storage(raw), smoke=smoke,
                  description=str(raw.get("description", "")), raw=raw, plot=check_plot(v, raw, scientific),
                  artifacts=check_artifacts(v, raw), looks=looks, analysis=check_analysis(v, raw, planned, seeds),
                  checkpoint=check_checkpoint(v, raw))
    study.tracking_uri, study.experiment = v.tracking(raw, study.name)
    v.smoke_section(raw)
    v.cells(study)
    if P:
        raise SweepError(file, P)
    return study


class _Validator:
    def __init__(self, task: TaskSpec, problems: List[Tuple[str, str]]):
        self.task, self.P = task, problems

    def add(self, path: str, msg: str) -> None:
        if (path, msg) not in self.P:
            self.P.append((path, msg))

    def section(self, raw, key, allowed) -> Dict[str, Any]:
        sec = raw.get(key) or {}
        if not isinstance(sec, dict):
            self.add(key, f"must be a mapping with keys {', '.join(allowed)}")
            return {}
        for k in sec:
            if k not in allowed:
                self.add(f"{key}.{k}", f"unknown key; {near(k, allowed)}allowed: {', '.join(allowed)}")
        return sec

    def metric(self, raw) -> Tuple[Optional[str], str]:
        task, metric = self.task, raw.get("metric", {})
        if isinstance(metric, str):
            metric = {"name": metric}
        if not isinstance(metric, dict):
            self.add("metric", "must be {name: METRIC, mode: max|min}")
            metric = {}
        for k in metric:
            if k not in ("name", "mode"):
                self.add(f"metric.{k}", "unknown key; allowed: name, mode")
        mname = metric.get("name")
        if mname not in task.metrics:
            self.add("metric.name", f"{mname!r} is not a metric of task {task.name}; "
                                    f"{near(mname, task.metrics)}allowed: {', '.join(task.metrics)}")
        mode = metric.get("mode", task.metrics.get(mname, "max"))
        if mode not in ("max", "min"):
            self.add("metric.mode", f"{mode!r} is not allowed: max or min")
        return mname, mode

    def seeds(self, raw) -> List[int]:
        seeds = raw.get("seeds", [0])
        if is_int(seeds):
            seeds = [seeds]
        if not isinstance(seeds, list) or not seeds:
            self.add("seeds", f"{seeds!r} is not allowed: a non-empty list of integers in [0, {MAX_SEED}], "
                              f"or {{looks: [n1, n2, ...]}} for adaptive seeds")
            return []
        for i, s in enumerate(seeds):
            if not is_int(s) or not 0 <= s <= MAX_SEED:
                self.add(f"seeds[{i}]", f"{s!r} is not allowed: seeds are integers in [0, {MAX_SEED}]")
        if len(set(map(repr, seeds))) != len(seeds):
            self.add("seeds", f"{seeds} repeats a seed; replicates must be distinct")
        return [s for s in seeds if is_int(s)]

    def looks(self, raw) -> Optional[List[int]]:
        """``seeds: {looks: [3, 5, 8, 12]}``: cumulative seed counts of a
        group-sequential design (at least two, strictly increasing, first ≥ 2)."""
        seeds = raw.get("seeds")
        if not isinstance(seeds, dict):
            return None
        sec = self.section(raw, "seeds", SEED_KEYS)
        looks = sec.get("looks")
        ok = (isinstance(looks, list) and len(looks) >= 2 and all(is_int(n) for n in looks)
              and looks[0] >= 2 and all(b > a for a, b in zip(looks, looks[1:])) and looks[-1] <= 10000)
        if not ok:
            self.add("seeds.looks", f"{looks!r} is not allowed: a strictly increasing list of at least two "
                                    f"cumulative seed counts, the first >= 2 (e.g. [3, 5, 8, 12])")
            return None
        return list(looks)

    def check_key(self, section: str, key: str) -> bool:
        if key == "seed":
            self.add(f"{section}.{key}", "the seed is set by 'seeds', not here")
            return False
        if key in self.task.params:
            return True
        if self.task.slot_of_argument(key) is not None:       # <slot key>.<argument> of a component
            try:
                self.task.param(key)
                return True
            except KeyError as e:
                self.add(f"{section}.{key}", str(e).strip('"'))
                return False
        self.add(f"{section}.{key}", f"unknown key for task {self.task.name}; {near(key, self.task.params)}"
                                     f"valid keys: {', '.join(sorted(k for k in self.task.params if k != 'seed'))}")
        return False

    def value(self, path: str, key: str, value: Any) -> Any:
        try:
            return self.task.coerce(key, value)
        except ValueError as e:
            self.add(path, f"{value!r} is not allowed: {e}")
            return None

    def params(self, raw):
        secs = {}
        for sec in ("fixed", "scientific", "nuisance"):
            val = raw.get(sec) or {}
            if not isinstance(val, dict):
                self.add(sec, f"must be a mapping of task keys, got {type(val).__name__}")
                val = {}
            secs[sec] = val
        fixed = {}
        for k, v in secs["fixed"].items():
            if self.check_key("fixed", k) and (c := self.value(f"fixed.{k}", k, v)) is not None:
                fixed[k] = c
        scientific = {k: vals for k, vals in ((k, self._axis(k, vals, secs["fixed"]))
                                              for k, vals in secs["scientific"].items()) if vals is not None}
        nuisance: Dict[str, Dist] = {}
        for k, spec in secs["nuisance"].items():
            if not self.check_key("nuisance", k):
                continue
            if k in secs["fixed"] or k in secs["scientific"]:
                self.add(f"nuisance.{k}", "also set in 'fixed' or 'scientific'; a key is fixed, scientific or "
                                          "nuisance (remove it from the other section)")
            d = parse_dist(f"nuisance.{k}", spec, self.task.param(k), self.P)
            if d:
                nuisance[k] = d
        return fixed, scientific, nuisance

    def _axis(self, k, vals, fixed_raw) -> Optional[List[Any]]:
        if not self.check_key("scientific", k):
            return None
        if k in fixed_raw:
            self.add(f"scientific.{k}", "also set in 'fixed'; a key is fixed, scientific or nuisance")
        if not isinstance(vals, list) or not vals:
            self.add(f"scientific.{k}", f"{vals!r} is not allowed: a non-empty list of values")
            return None
        out = [c for i, v in enumerate(vals) if (c := self.value(f"scientific.{k}[{i}]", k, v)) is not None]
        if len(set(map(repr, out))) != len(out):
            self.add(f"scientific.{k}", f"{vals} repeats a value")
        return out

    def baseline(self, raw, scientific) -> Dict[str, Any]:
        baseline = raw.get("baseline") or {}
        if not isinstance(baseline, dict):
            self.add("baseline", "must map scientific axes to one value each")
            return {}
        for k, v in baseline.items():
            if k not in scientific:
                self.add(f"baseline.{k}", f"not a scientific axis; allowed: {', '.join(scientific) or '(none)'}")
            elif v not in scientific[k]:
                self.add(f"baseline.{k}", f"{v!r} is not allowed: one of the axis values {scientific[k]}")
        return dict(baseline)

    def smoke_section(self, raw) -> None:
        smoke_raw = raw.get("smoke") or {}
        if not isinstance(smoke_raw, dict):
            self.add("smoke", "must be a mapping of task keys (overrides used by --smoke)")
            return
        for k, v in smoke_raw.items():
            if self.check_key("smoke", k):
                self.value(f"smoke.{k}", k, v)

    def integer(self, raw, key, default, lo, allowed) -> Any:
        v = raw.get(key, default)
        if not is_int(v) or v < lo:
            self.add(key, f"{v!r} is not allowed: {allowed}")
        return v

    def tracking(self, raw, name) -> Tuple[Optional[str], str]:
        tr = self.section(raw, "tracking", TRACKING_KEYS)
        uri, exp = tr.get("uri"), tr.get("experiment", name)
        if uri is not None and (not isinstance(uri, str) or not uri.strip()):
            self.add("tracking.uri", f"{uri!r} is not allowed: a tracking URI string")
        if not isinstance(exp, str) or not exp.strip():
            self.add("tracking.experiment", f"{exp!r} is not allowed: an experiment name string")
        return uri, exp

    def storage(self, raw) -> Optional[str]:
        storage = raw.get("storage")
        if storage is not None and (not isinstance(storage, str) or not storage.strip()):
            self.add("storage", f"{storage!r} is not allowed: a directory or URI string")
        return storage

    def cells(self, study: Study) -> None:
        """Per-cell checks (conditional keys, component constraints) need the
        expansion; they run even when other keys are wrong (one pass reports all)."""
        res = study.resources
        if not is_num(res["cpu"]) or res["cpu"] <= 0:
            study.resources = {**res, "cpu": 1}
        local: List[Tuple[str, str]] = []
        cs = cells(study, problems=local)
        study.resources = res
        for p in local + self._sparse_search(study, cs):
            self.add(*p)
        if isinstance(study.raw.get("seeds"), dict) and not study.baseline:
            self.add("seeds.looks", "adaptive seeds compare every cell with the baseline cell: set baseline: "
                                    "{AXIS: VALUE}")
        if study.baseline and not self.P and not any(
                all(c.values.get(k) == v for k, v in study.baseline.items()) for c in cs):
            self.add("baseline", f"{study.baseline} matches no scientific cell")
        if study.analysis["test"] == "paired" and not self.P:
            self._paired_seeds(study)

    def _sparse_search(self, study, cs) -> List[Tuple[str, str]]:
        # Tune's strict metric check fails a trial whose result lacks the search
        # metric, and ASHA's rungs would never see it: refuse before launch.
        if not (study.nuisance and self.task.sparse):
            return []
        for c in cs:
            every, key = self.task.sparse(c.config).get(study.search["metric"], (1, ""))
            if every > 1:
                return [("search.metric", f"{study.search['metric']!r} is reported only every {every} epochs in "
                                          f"cell [{c.id}] ({key}); a nuisance search needs its metric every "
                                          f"epoch: set fixed.{key}: 1 or search on another metric")]
        return []

    def _paired_seeds(self, study) -> None:
        """A paired test compares seed i of a cell with seed i of the baseline:
        every cell must run the same seeds."""
        per_cell: Dict[str, set] = {}
        for t in final_trials(study):
            per_cell.setdefault(t.cell.id, set()).add(t.seed)
        if len({frozenset(s) for s in per_cell.values()}) > 1:
            self.add("analysis.test", "paired needs every cell to run the same seeds; cells run "
                     + "; ".join(f"[{c}] {sorted(s)}" for c, s in per_cell.items()))
