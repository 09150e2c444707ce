"""Provenance (issue 22): a launch stores its git diff, untracked files, packages and hardware on its parent run,
untracked files mark the tree dirty, and ``ablate trial --from-run`` names what differs from the environment now."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sweeps.runner import provenance
from sweeps.runner.tracking import git_commit
from tests.helpers import ablate, out, toy_sweep, write_yaml


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@example.org")
    _git(root, "config", "user.name", "t")
    (root / ".gitignore").write_text("ignored/\n")
    (root / "a.py").write_text("x = 1\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "one")
    return root


def test_a_clean_tree_then_an_edit_then_an_untracked_file(tmp_path):
    root = _repo(tmp_path)
    sha = _git(root, "rev-parse", "HEAD").strip()
    clean, files = provenance.collect(root)
    assert clean["commit"] == sha and clean["dirty"] is False and files["git.diff"] == b""
    assert git_commit(root) == sha

    (root / "a.py").write_text("x = 2\n")
    edited, files = provenance.collect(root)
    assert edited["dirty"] is True and b"+x = 2" in files["git.diff"]
    assert edited["tree_sha256"] != clean["tree_sha256"]
    _git(root, "checkout", "-q", "a.py")

    (root / "new_layer.py").write_text("class Layer: pass\n")
    (root / "ignored").mkdir()
    (root / "ignored" / "big.bin").write_bytes(b"\0" * 10)
    assert git_commit(root) == sha + "-dirty"          # an untracked file is an edit too
    untracked, files = provenance.collect(root)
    assert untracked["dirty"] is True and untracked["untracked"] == 1
    assert files["untracked/new_layer.py"] == b"class Layer: pass\n"
    assert not any("big.bin" in k for k in files)      # ignored files are not source
    assert untracked["tree_sha256"] != clean["tree_sha256"]
    (root / "new_layer.py").write_text("class Layer: x = 1\n")
    assert provenance.collect(root)[0]["tree_sha256"] != untracked["tree_sha256"]


def test_packages_hardware_and_the_difference_lines(tmp_path):
    summary, files = provenance.collect(_repo(tmp_path))
    lines = files["packages.txt"].decode().splitlines()
    assert any(ln.lower().startswith("mlflow==") for ln in lines) 
    names = [ln.split("==")[0].lower() for ln in lines]
    assert names == sorted(names)
    import torch

    assert summary["packages"]["torch"] and summary["packages"]["mlflow"]
    hw = json.loads(files["hardware.json"])
    assert hw["cores"] >= 1 and hw["host"] and hw["torch"] == torch.__version__
    assert provenance.differences(summary, summary) == []
    other = {**summary, "commit": "abc", "host": "elsewhere", "packages": {**summary["packages"], "torch": "0.1"}}
    got = provenance.differences(summary, other)
    assert [g.split(":")[0] for g in got] == ["git commit", "packages", "host"], got
    assert "torch" in got[1] and "0.1" in got[1]


def test_a_launch_stores_its_provenance_and_from_run_reports_what_differs(tmp_path):
    sweep = toy_sweep("prov", tmp_path, seeds=(0,))
    sweep["scientific"] = {"model.kind": ["plain"]}
    sweep.pop("baseline")
    r = ablate(["run", write_yaml(tmp_path / "p.yaml", sweep), "--no-table"], tmp_path)
    assert r.returncode == 0, out(r)[-3000:]
    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    runs = c.search_runs([c.get_experiment_by_name("prov").experiment_id])
    parent = next(x for x in runs if x.data.tags["ablate.phase"] == "launch")
    trial = next(x for x in runs if x.data.tags["ablate.phase"] == "final")
    stored = {a.path for a in c.list_artifacts(parent.info.run_id, "provenance")}
    assert {"provenance/git.diff", "provenance/packages.txt", "provenance/hardware.json"} <= stored, stored
    summary = json.loads(parent.data.tags["ablate.provenance"])
    # (not compared with ablate.git_commit: in a shared checkout others may commit between the two reads)
    assert len(summary["commit"]) == 40 and summary["packages"]["mlflow"] and summary["host"]

    r = ablate(["trial", "--from-run", trial.info.run_id], tmp_path)
    assert r.returncode == 0 and "reproduced exactly" in r.stdout, out(r)
    # a shared working tree may gain commits and files from others meanwhile; packages, host and device cannot
    same = [ln for ln in r.stderr.splitlines() if ln.startswith("differs from") and "git " not in ln]
    assert not same and ("the same commit" in r.stderr or "git " in r.stderr), r.stderr

    # the store's record says another commit and another torch: both are named, one line each, before the rerun
    c.set_tag(parent.info.run_id, "ablate.provenance",
              json.dumps({**summary, "commit": "0" * 40, "packages": {**summary["packages"], "torch": "1.0.0"}}))
    r = ablate(["trial", "--from-run", trial.info.run_id], tmp_path)
    assert r.returncode == 0, out(r)
    diff = [ln for ln in r.stderr.splitlines() if ln.startswith("differs from the run's launch:")]
    assert any("git commit: recorded " + "0" * 40 in ln for ln in diff), r.stderr
    assert not any("packages" in ln for ln in diff), r.stderr    # packages.txt (the full list) is what it compares
    assert r.stderr.index("differs from") < r.stderr.index("rerunning run")
