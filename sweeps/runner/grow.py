"""Growing a finished launch: ``ablate run SWEEP --retry-failed`` and ``--extend``.

Both add a phase to the launch's state (``retry<k>`` / ``extend<k>``, sweeps/runner/state.py ``added``) that
runs a list of trial keys under the launch's parent run, as Tune runs of their own.  A key that already has
a run in the launch gets a new run (a new attempt, tagged ``ablate.added_in=<phase>``), and the old one is
kept and tagged ``ablate.superseded_by=<new run id>`` by the MLflow tracker (sweeps/runner/tracker.py);
analysis/store.py drops superseded runs, so the table counts each trial once.

* ``--retry-failed``: the keys whose run FAILED (errored or diverged).  Their config must be the one they
  failed with (a retry reruns the same trial after a code fix; another config is a new experiment:
  ``--extend`` or a new launch).
* ``--extend``: every trial of the sweep file as it is now that the launch lacks, and every trial whose
  run did not finish with the same config (MLflow params) and code version (``ablate.git_commit``) as now;
  finished, unchanged trials are reused.

Only the launch recorded in the state file (the study's last) can grow: its state holds the nuisance
values the search chose and where its Tune runs live.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from analysis import contract as C

from ..errors import UsageError
from ..language.expand import final_trials
from ..language.study import Study
from .state import LaunchState


def grown_launch(study: Study, state: Optional[LaunchState], launch_id: Optional[str], flag: str,
                 phases: List[str]) -> LaunchState:
    """The launch that ``flag`` grows: the last one (``launch_id`` None or "latest") and complete; UsageError
    (exit 2) with the reason otherwise."""
    if state is None:
        raise UsageError(f"{flag}: no earlier launch of {study.name!r}; run it first without {flag}")
    if launch_id not in (None, "latest", state.launch):
        raise UsageError(f"{flag}: launch {launch_id!r} is not the last launch of {study.name!r} "
                         f"({state.launch}); only the last launch can be grown")
    if study.looks:
        raise UsageError(f"{flag}: launch {state.launch} of {study.name!r} has adaptive seeds (seeds.looks); "
                         f"its looks decide which trials run, so it cannot be retried or extended")
    if not state.all_done(phases):
        raise UsageError(f"{flag}: launch {state.launch} of {study.name!r} is not complete (phases done: "
                         f"{', '.join(state.done) or 'none'}); finish it first with `ablate run "
                         f"{study.file} --resume`")
    return state


def launch_runs(uri: str, experiment_id: str, launch_id: str) -> Dict[str, Dict[str, Any]]:
    """trial key → {"status", "params", "commit", "run_id"} of the launch's current (not superseded) final run."""
    from .tracking import client

    c, out, token = client(uri), {}, None
    flt = f"{C.equals(C.LAUNCH, launch_id)} and {C.equals(C.PHASE, 'final')}"
    while True:
        page = c.search_runs([experiment_id], filter_string=flt, max_results=50000, page_token=token)
        for r in page:                             # newest first: the newest current run of a key wins
            key = r.data.tags.get(C.TRIAL_KEY)
            if key and C.SUPERSEDED_BY not in r.data.tags and key not in out:
                out[key] = {"status": r.info.status, "params": dict(r.data.params),
                            "commit": r.data.tags.get(C.GIT_COMMIT), "run_id": r.info.run_id}
        token = page.token
        if not token:
            return out


def _changed(spec_params: Dict[str, Any], recorded: Dict[str, str]) -> List[str]:
    """The keys whose value differs between a trial's config and a run's MLflow params (compared as logged)."""
    now = {k: str(v) for k, v in spec_params.items()}
    return sorted(k for k in set(now) | set(recorded) if now.get(k) != recorded.get(k))


def plan_retry(study: Study, state: LaunchState, runs: Dict[str, Dict[str, Any]]) -> Dict[str, Optional[str]]:
    """key → "FAILED" for every failed trial of the launch ({} if none failed); UsageError if a failed trial is
    no longer in the sweep file or its config changed."""
    failed = sorted(k for k, r in runs.items() if r["status"] == "FAILED")
    specs = {t.key: t for t in final_trials(study, state.best_nuisance)}
    gone = [k for k in failed if k not in specs]
    if gone:
        raise UsageError(f"--retry-failed: the sweep file no longer has the failed trials {', '.join(gone)} of "
                         f"launch {state.launch}; restore their cells and seeds to retry them")
    for k in failed:
        diff = _changed(specs[k].config, runs[k]["params"])
        if diff:
            d = diff[0]
            raise UsageError(f"--retry-failed: trial {k} failed with {d}={runs[k]['params'].get(d)!r}, the sweep "
                             f"file now gives {specs[k].config.get(d)!r}; a retry reruns the same trial (restore "
                             f"the value, or use --extend to rerun trials whose config changed)")
    return {k: "FAILED" for k in failed}


def plan_extend(study: Study, state: LaunchState, runs: Dict[str, Dict[str, Any]],
                commit: Optional[str], echo: Callable[[str], None] = lambda s: None) -> Dict[str, Optional[str]]:
    """key → status of the run it replaces (None: new to the launch) for every trial of the sweep file that is
    missing, not FINISHED, or finished with another config or code version; {} if none.

    A finished trial whose config is unchanged but whose run was made by another code version (its
    ``ablate.git_commit`` tag differs from ``commit``: a new commit, or the tree dirty then and not now) is
    rerun, as the issue asks (reuse only unchanged code), and ``echo`` gets one line naming it and the two
    versions, so a rerun of finished trials is never silent."""
    out: Dict[str, Optional[str]] = {}
    for t in final_trials(study, state.best_nuisance):
        r = runs.get(t.key)
        if r is None:
            out[t.key] = None
        elif r["status"] != "FINISHED" or r["commit"] != commit or _changed(t.config, r["params"]):
            out[t.key] = r["status"]
            if r["status"] == "FINISHED" and r["commit"] != commit and not _changed(t.config, r["params"]):
                echo(f"--extend: rerunning trial {t.key}: its code version changed ({r['commit']} -> {commit})")
    return out


def recount(counts: Optional[Dict[str, int]], was: Dict[str, Optional[str]],
            results: List[Dict[str, Any]], keys: List[str]) -> Dict[str, int]:
    """The launch's final counts after an added phase: each rerun key's old outcome replaced by its new one."""
    c = dict(counts or {"trials": 0, "finished": 0, "failed": 0})
    for k in keys:
        old = was.get(k)
        if old is None:
            c["trials"] = c.get("trials", 0) + 1
        elif old == "FINISHED":
            c["finished"] -= 1
        else:
            c["failed"] -= 1
    c["finished"] = c.get("finished", 0) + sum(not r["failed"] for r in results)
    c["failed"] = c.get("failed", 0) + sum(bool(r["failed"]) for r in results)
    return c


def run_added(run) -> None:
    """Every added phase of the launch not done yet (sweeps/runner/launch.py ``run_phases``): its trials as
    one phase whose new runs supersede the keys' old ones; the launch's counts are updated."""
    from .phase import counts

    study, state = run.study, run.state
    for add in state.added or []:
        name = add["phase"]
        if state.is_done(name):
            continue
        want = set(add["keys"])
        trials = [t for t in final_trials(study, state.best_nuisance) if t.key in want]
        results = run.phase(name, name, extra_tags={C.ADDED_IN: name}, trials=trials)
        state.counts = recount(state.counts, add["was"], results, [t.key for t in trials])
        state.mark_done(name)
        run.summary["phases"][name] = counts(results)
