"""``imports:``: a sweep file's own code (a researcher's layers and tasks), imported before the file is validated.

    imports: [lowrank.py, mylayers/, mylab.layers]

Each entry is a ``.py`` file or a package folder, relative to the sweep file (imported as the module named
after the file or folder), or a module name on the Python path.  Importing runs the code: its
``components.registry.register`` and ``tasks.register_task`` calls add the layers and tasks the sweep then
names.  A sweep file with ``imports:`` runs code, like a Python script; the README says so.

Every entry is recorded (``Imported``): module name, path, and the SHA-256 of each of its source files.  The
runner ships the files to every Ray worker (Ray's runtime_env ``py_modules``), logs copies on the launch's
parent run, and ``ablate trial --from-run`` reruns with those copies.  A module installed in site-packages is
not shipped (it must be installed on every node, like any dependency) and not copied; its version is recorded.

Why not just ``importlib.import_module``: a file outside the Python path has no module name, and the same
file must import under the same name on the driver, on every worker and in a later rerun, so that the classes
it registers (and pickles) are the same everywhere.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import sysconfig
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import SweepError


@dataclass(frozen=True)
class Imported:
    """One ``imports:`` entry, imported.

    Args:
        entry: as written in the sweep file.
        module: the module name it imported as.
        path: absolute path of the file or package folder (None: an installed module).
        files: source file (relative to ``path``'s folder, or its own name) → SHA-256 of its content.
        ship: whether the runner ships it to the workers (False for installed modules).
        version: the installed distribution's version, for an installed module.
    """

    entry: str
    module: str
    path: Optional[str]
    files: Dict[str, str] = field(default_factory=dict)
    ship: bool = True
    version: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Imported":
        return cls(**{k: d[k] for k in ("entry", "module", "path", "files", "ship", "version") if k in d})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(path: Path) -> Dict[str, str]:
    """relative name → SHA-256 of a module file, or of every ``.py`` file of a package folder."""
    if path.is_file():
        return {path.name: sha256(path)}
    return {str(p.relative_to(path.parent)): sha256(p) for p in sorted(path.rglob("*.py"))
            if "__pycache__" not in p.parts}


def _is_installed(origin: str) -> bool:
    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    return any(os.path.realpath(origin).startswith(os.path.realpath(r) + os.sep) for r in roots)


def _user_frames(exc: BaseException, keep: Tuple[str, ...]) -> str:
    """The traceback's frames that are in the user's files (``keep``), innermost last, as 'file:line'."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(keep)]
    return "; ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[-3:])


def _import_path(path: Path) -> str:
    """Import a ``.py`` file or package folder under its own name; returns the module name."""
    is_pkg = path.is_dir()
    name = path.name if is_pkg else path.stem
    if not name.isidentifier():
        raise ValueError(f"{path.name!r} is not a Python module name (letters, digits, '_'); rename it")
    init = path / "__init__.py" if is_pkg else path
    if is_pkg and not init.exists():
        raise ValueError(f"folder {path} has no __init__.py: list its .py files, or make it a package")
    have = sys.modules.get(name)
    if have is not None:
        where = getattr(have, "__file__", None) or ""
        if Path(where).resolve() != init.resolve():
            raise ValueError(f"it would be imported as module {name!r}, but a module of that name is already "
                             f"imported{f' from {where}' if where else ''}; rename the file or folder")
        return name
    parent = str(path.parent)
    if parent not in sys.path:
        sys.path.append(parent)                   # its sibling modules import as on the workers' path
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(path)] if is_pkg
                                                  else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return name


def _version_of(module: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    dists = packages_distributions().get(module.split(".")[0], [])
    for d in dists:
        try:
            return f"{d}=={version(d)}"
        except PackageNotFoundError:
            continue
    return None


def import_one(entry: str, base: Path) -> Imported:
    """Import one entry (see the module docstring); raises ImportError/ValueError/... from the user's code."""
    candidate = (base / entry).resolve() if not os.path.isabs(entry) else Path(entry)
    looks_like_path = entry.endswith(".py") or "/" in entry or os.sep in entry or candidate.exists()
    if looks_like_path:
        if not candidate.exists():
            raise FileNotFoundError(f"no such file or folder: {candidate}")
        name = _import_path(candidate)
        return Imported(entry, name, str(candidate), source_files(candidate))
    if not all(part.isidentifier() for part in entry.split(".")):
        raise ValueError("neither a file or folder (relative to the sweep file) nor a module name")
    module = importlib.import_module(entry)
    top = sys.modules[entry.split(".")[0]]
    origin = (list(getattr(top, "__path__", []) or [None])[0]) or getattr(top, "__file__", None)
    if origin is None or _is_installed(origin):
        return Imported(entry, module.__name__, None, {}, ship=False, version=_version_of(entry))
    root = Path(origin)
    return Imported(entry, top.__name__, str(root), source_files(root))


def import_entries(raw: Any, file: str) -> List[Imported]:
    """Import a sweep file's ``imports:`` (a list of strings); SweepError naming the entry and the user's
    frames for anything that does not import."""
    if raw is None:
        return []
    entries = [raw] if isinstance(raw, str) else raw
    if not isinstance(entries, list) or not all(isinstance(e, str) and e.strip() for e in entries):
        raise SweepError(file, [("imports", f"{raw!r} is not allowed: a list of .py files, package folders "
                                            f"(relative to the sweep file) or module names")])
    import components  # noqa: F401  (the shipped families register first: a clash then names the user's code)

    base = Path(file).resolve().parent
    out, problems = [], []
    for i, e in enumerate(entries):
        try:
            out.append(import_one(e.strip(), base))
        except Exception as exc:  # noqa: BLE001 - the user's code may raise anything; name it in one line
            where = _user_frames(exc, (str(base), str((base / e).resolve())))
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            problems.append((f"imports[{i}]", f"cannot import {e!r}: {type(exc).__name__}: {msg}"
                                              f"{f' (at {where})' if where else ''}"))
    if problems:
        raise SweepError(file, problems)
    return out


def ensure_imported(records: List[Dict[str, Any]]) -> Dict[str, str]:
    """On a worker (or in a rerun): import the recorded modules, by name (Ray's py_modules put them on the
    path) or, failing that, from their recorded path if this node has it.  Returns module → the file it was
    imported from.  Errors propagate: the trial fails (a module that the imported code needs but the sweep
    file does not list is missing on the workers: the error says so)."""
    out = {}
    for r in map(Imported.from_json, records or []):
        if r.module not in sys.modules:
            try:
                importlib.import_module(r.module)
            except ModuleNotFoundError as e:
                if e.name != r.module or not r.path or not Path(r.path).exists():
                    if e.name != r.module:
                        raise ModuleNotFoundError(f"{e} (imported by {r.entry!r} of the sweep file's imports: "
                                                  f"list it there too, or install it on every node)",
                                                  name=e.name) from e
                    raise
                _import_path(Path(r.path))
        out[r.module] = getattr(sys.modules[r.module], "__file__", "") or ""
    return out
