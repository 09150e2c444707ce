"""The launch's own MLflow run: one parent per launch, the trials its children.

MLflow's UI nests runs whose ``mlflow.parentRunId`` tag names another run, so
a launch shows as one row that expands into its trials.  The parent carries
the sweep file as run (after ``--set`` / ``--smoke``) as ``sweep.yaml`` and,
when the launch completes, the ablation table (md, LaTeX, CSV), the plot and
the HTML report.  Its id is kept in the launch state, so ``--resume`` reopens
the same parent and no trial is orphaned.  Status: RUNNING while trials run,
KILLED when the launch is interrupted, FINISHED when it completed.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict

import yaml

from analysis import contract as C

from ..language.study import Study
from . import tracking

if TYPE_CHECKING:
    from .state import LaunchState


def open_parent(study: Study, uri: str, exp_id: str, tags: Dict[str, str], state: "LaunchState") -> str:
    """The launch's parent run id: created on a new launch, reopened on a resume (recorded in ``state``)."""
    c = tracking.client(uri)
    rid = state.parent_run_id
    if rid:
        try:
            run = c.get_run(rid)
            if run.info.status != "RUNNING":
                c.update_run(rid, status="RUNNING")
            return rid
        except Exception:  # noqa: BLE001 - a store that lost the parent gets a new one below
            pass
    run = c.create_run(exp_id, tags={**tags, C.PHASE: C.PHASE_LAUNCH}, run_name=f"launch:{tags[C.LAUNCH]}")
    rid = run.info.run_id
    tracking.share_launch_view(uri, exp_id, tags[C.LAUNCH], study.metric, list(study.scientific))
    with tempfile.TemporaryDirectory() as d:
        Path(d, "sweep.yaml").write_text(sweep_as_run(study))
        c.log_artifacts(rid, d)
    if study.imports:
        log_imports(c, rid, study.imports)
    _log_provenance(c, rid)
    state.parent_run_id = rid
    return rid


def _log_provenance(c, rid: str) -> None:
    """git diff, untracked files, packages and hardware on the parent (sweeps/runner/provenance.py)."""
    import sys

    from . import provenance

    try:
        provenance.log(c, rid)
    except Exception as e:  # noqa: BLE001 - the launch runs without it, and says so
        print(f"warning: could not record the launch's provenance ({type(e).__name__}: {e})", file=sys.stderr)


IMPORTS_ARTIFACT = "imports"      # the parent's copies of the sweep file's own code: imports/<module>/<file|folder>


def log_imports(c, rid: str, imports) -> None:
    """A copy of every shipped ``imports:`` file or package (the code the launch ran), under IMPORTS_ARTIFACT;
    ``ablate trial --from-run`` reruns with it (sweeps/runner/rerun.py)."""
    import shutil

    with tempfile.TemporaryDirectory() as d:
        for r in imports:
            if not (r.get("ship") and r.get("path")) or not Path(r["path"]).exists():
                continue
            src, dest = Path(r["path"]), Path(d, r["module"])
            dest.mkdir(parents=True, exist_ok=True)
            if src.is_file():
                shutil.copy2(src, dest / src.name)
            else:
                shutil.copytree(src, dest / src.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        c.log_artifacts(rid, d, artifact_path=IMPORTS_ARTIFACT)


def sweep_as_run(study: Study) -> str:
    """The sweep file after --set and --smoke, as YAML (what this launch ran)."""
    head = f"# {study.file}{' (--smoke)' if study.smoke else ''}, as run by launch\n"
    return head + yaml.safe_dump(study.raw, sort_keys=False, allow_unicode=True)


def end_parent(uri: str, rid: str, status: str) -> None:
    try:
        tracking.client(uri).set_terminated(rid, status=status)
    except Exception:  # noqa: BLE001 - the trials' runs are what matters; never mask the real outcome
        pass


def log_launch_artifacts(study: Study, uri: str, rid: str, launch: str, echo: Callable[[str], None]) -> Path | None:
    """Table (md, LaTeX, CSV), plot and HTML report of a completed launch, on its parent run;
    returns the path of the report kept in the run directory (None if it could not be written)."""
    from analysis.plots import NothingToPlot, plot_ablation
    from analysis.store import load_runs
    from analysis.tables import ablation_table, render

    try:
        runs = load_runs(study.experiment, uri, launch=launch)
    except LookupError:
        return None
    table = ablation_table(runs)
    c = tracking.client(uri)
    with tempfile.TemporaryDirectory() as d:
        for fmt, ext in (("md", "md"), ("latex", "tex"), ("csv", "csv")):
            Path(d, f"table.{ext}").write_text(render(table, fmt) + "\n")
        try:
            plot_ablation(runs, table, Path(d, "plot.png"), title=study.name)
        except NothingToPlot:
            pass        # every trial failed: the table and the report say so (and `--plot` in one line)
        except Exception as e:  # noqa: BLE001 - the trials are done and recorded; a figure must not undo that
            echo(f"warning: could not draw the summary plot ({type(e).__name__}: {e}); "
                 f"the table is logged, retry with `ablate plot {study.experiment}`")
        report = write_launch_report(study, uri, launch, Path(d, "report.html"), echo)
        c.log_artifacts(rid, d)
    return report


def report_path(study: Study, launch: str) -> Path:
    return tracking.ensure_home() / "reports" / f"{study.name}-{launch}.html"


def write_launch_report(study: Study, uri: str, launch: str, out: Path, echo) -> Path | None:
    """The HTML report of the launch, written to ``out`` and to the run directory."""
    from analysis.report import collect_study, write_report

    try:
        rs = collect_study(uri, study.experiment, launch=launch, sweep_yaml=sweep_as_run(study))
        write_report([rs], out)
        keep = report_path(study, launch)
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_bytes(out.read_bytes())
        return keep
    except Exception as e:  # noqa: BLE001 - as for the plot: report the problem, keep the launch's outcome
        echo(f"warning: could not write the HTML report ({type(e).__name__}: {e}); "
             f"retry with `ablate report {study.experiment}`")
        return None
