"""The shape of the house (docs/design.md): rooms, import direction and import cost.

- No import cycle at module level anywhere in the four packages (a file split for size must not import
  its other half from its last line; a task's train.py must not import its package's ``__init__``).
- sweeps/ keeps its sweep files at the top and at most 6 Python files beside them.
- The sweep-file language loads in well under 2 s and imports no torch, Ray or MLflow.
- analysis.stats imports no MLflow, Ray, torch or plotting library, whatever is used from it.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

from tests.helpers import ROOT

PACKAGES = ("components", "tasks", "sweeps", "analysis")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(mod: str, is_pkg: bool, level: int, target: str) -> str:
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _runtime_imports(tree: ast.Module):
    """Import statements executed when the module is imported: top level, and inside top-level try / if
    blocks, but not under ``if TYPE_CHECKING`` nor inside functions or classes."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [h for x in node.handlers for h in x.body]


def import_graph() -> Dict[str, Set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: Dict[str, Set[str]] = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        edges: Set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                src = _resolve(mod, is_pkg, node.level, node.module or "") if node.level else node.module
                # `from pkg import name`: the submodule pkg.name if there is one, else pkg itself
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in files else src for a in node.names]
            edges |= {t for t in targets if t in files and t != mod}
        graph[mod] = edges
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_at_module_level():
    found = cycles(import_graph())
    assert not found, "module-level import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_sweeps_keeps_its_files_at_the_top_and_its_code_in_rooms():
    py = sorted(p.name for p in (ROOT / "sweeps").glob("*.py"))
    assert len(py) <= 6, py
    assert {p.name for p in (ROOT / "sweeps").glob("*.yaml")} >= {"quick.yaml", "cdlinear_block.yaml"}
    for room in ("language", "runner", "cli"):
        assert (ROOT / "sweeps" / room / "__init__.py").exists()


def _imported_after(code: str) -> Set[str]:
    r = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    return set(json.loads(r.stdout.splitlines()[-1]))


HEAVY = ("torch", "ray", "mlflow", "matplotlib", "seaborn", "monai", "optuna")


def test_the_sweep_file_language_is_light_and_fast():
    code = ("import time; t = time.perf_counter()\n"
            "from sweeps.language.load import load\n"
            "s = load('sweeps/cdlinear_block.yaml')\n"
            "print(time.perf_counter() - t)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    seconds = float(r.stdout.split()[-1])
    assert seconds < 2.0, f"loading and validating a sweep file took {seconds:.2f} s"
    mods = _imported_after("from sweeps.language.load import load\nload('sweeps/cdlinear_block.yaml')")
    assert not [m for m in mods if m.split(".")[0] in HEAVY]


@pytest.mark.parametrize("use", ["import analysis.stats as S\nfor n in S.__all__: getattr(S, n)",
                                 "from analysis.stats import simulate",
                                 "from analysis.stats import _anova, _checks, _fixed, _intervals, _replay, _sequential, _suite"])
def test_the_statistics_package_imports_no_mlflow_ray_torch_or_plotting(use):
    mods = _imported_after(use)
    heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY)
    assert not heavy, heavy
