"""Sweep files: load a YAML study (or a suite of studies), apply ``--set`` and
``--smoke``, and validate it completely (sweeps/language/validate.py) before anything
is launched.

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
MLflow (validation must take well under 2 s).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from tasks import get_task

from ..errors import SweepError
from .study import SUITE_KEYS, TOP_KEYS, Study, near
from .imports import import_entries
from .validate import top_problems, validate


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


def _merge(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def load_all(path: str, overrides: Optional[Dict[str, Any]] = None, smoke: bool = False,
             only: Optional[List[str]] = None) -> List[Study]:
    """Load a sweep file or a suite file (``studies:``) as a list of Studies.

    A suite's studies are named ``<suite>.<key>`` (one MLflow experiment each)
    and inherit ``defaults``; ``only`` selects some of them by key.
    """
    file = str(path)
    raw = read(file)
    imported = [r.to_json() for r in import_entries(raw.get("imports"), file)]   # before anything names them
    if "studies" not in raw:
        if only:
            raise SweepError(file, [("--only", f"{only} given, but this is a single sweep, not a suite")])
        return [_validate_raw(raw, file, overrides, smoke, imported)]
    P: List[Tuple[str, str]] = top_problems(raw, SUITE_KEYS, "unknown key in a suite file")
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
            # a study (or the suite's defaults) may name its own code too: imported before it is validated
            own = [r.to_json() for r in import_entries(merged.get("imports"), file)]
            mine = imported + [r for r in own if r["module"] not in {i["module"] for i in imported}]
            out.append(_validate_raw(merged, file, overrides, smoke, mine))
        except SweepError as e:
            P.extend((f"studies.{key}.{p}", m) for p, m in e.problems)
    if P:
        raise SweepError(file, P)
    return out


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, again: int):
        super().__init__(f"key {key!r} is given twice (lines {first} and {again}); keep one")
        self.key = key


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, except that a key given twice in one mapping is an error: PyYAML keeps the last
    value silently, so a sweep file could run with a setting its author did not see."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: Dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:             # an unhashable key: PyYAML's own error follows
                    continue
                if first != key_node.start_mark.line + 1:
                    raise _DuplicateKey(key, first, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep)


def read(file: str) -> Dict[str, Any]:
    """The sweep file's raw mapping; SweepError (one line) if it cannot be read, is not UTF-8 text, is not
    valid YAML, gives a key twice, or is not a mapping."""
    try:
        data = Path(file).read_bytes()
    except OSError as e:
        raise SweepError(file, [("<file>", f"cannot read sweep file: {e.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SweepError(file, [("<file>", f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); a "
                                           f"sweep file is YAML saved as UTF-8")]) from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)      # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as e:
        raise SweepError(file, [(str(e.key), str(e))]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SweepError(file, [("<yaml>", f"not valid YAML{where}: {what}")]) from None
    if not isinstance(raw, dict):
        raise SweepError(file, [("<top>", f"a sweep file is a mapping of keys, got {type(raw).__name__}")])
    return raw


def _validate_raw(raw: Dict[str, Any], file: str, overrides, smoke, imported=()) -> Study:
    raw = copy.deepcopy(raw)
    warnings: List[str] = []
    if overrides:
        _apply_overrides(raw, overrides, warnings)
    study = validate(raw, file, smoke=smoke)
    study.warnings = warnings
    study.imports = list(imported)
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
    task = None
    try:
        task = get_task(raw.get("task"))
        task_keys = set(task.params)
    except Exception:
        pass  # an unknown task is reported by validate()
    for key, value in overrides.items():
        top, _, rest = key.partition(".")
        if key in task_keys or (task is not None and task.slot_of_argument(key) is not None):
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
            raise SweepError("--set", [(key, f"unknown key; {near(key, list(task_keys) + list(TOP_KEYS))}"
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
