"""What a launch needs to be reproduced, stored on its parent run (issue 22).

A commit id alone does not say what ran: an edited tree is only marked ``-dirty``.  Every launch therefore
logs, under the parent run's ``provenance/`` artifacts:

- ``git.diff``: ``git diff HEAD`` of the ablate checkout (staged and unstaged edits of tracked files);
- ``untracked/<path>``: a copy of every untracked, not ignored file (``git ls-files --others
  --exclude-standard``) up to ``MAX_FILE_BYTES`` each; larger ones are only named with their SHA-256 in
  ``untracked.txt`` (so they still change the hash, and the tree is never called clean);
- ``packages.txt``: the installed distributions as ``name==version`` (``pip freeze``'s content, read with
  importlib.metadata: no subprocess, no pip needed);
- ``hardware.json``: host, CPU model and cores, RAM, and through torch (when importable) its version, the
  CUDA and cuDNN versions and the GPU names.

The tag ``ablate.provenance`` (JSON, analysis/contract.py PROVENANCE) summarises them: commit, whether the tree
is dirty, the SHA-256 of the diff plus untracked files, key package versions, host and device.  ``ablate
trial --from-run`` and ``ablate compare`` read that summary (and ``packages.txt`` for full package lists).
The resolved sweep file is the parent's ``sweep.yaml`` (sweeps/runner/parent.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from analysis import contract as C

ARTIFACT = "provenance"
MAX_FILE_BYTES = 1 << 20            # untracked files above this are hashed and named, not copied
KEY_PACKAGES = ("torch", "ray", "mlflow", "numpy", "scipy", "pandas", "optuna", "monai")


def _git(args: List[str], cwd: Path) -> Optional[str]:
    try:
        r = subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def repo_root(path: Optional[Path] = None) -> Optional[Path]:
    out = _git(["rev-parse", "--show-toplevel"], path or Path(__file__).resolve().parent)
    return Path(out.strip()) if out and out.strip() else None


def git_state(root: Path) -> Tuple[str, str, List[str]]:
    """(commit or "unknown", ``git diff HEAD``, untracked files relative to ``root``)."""
    sha = (_git(["rev-parse", "HEAD"], root) or "").strip() or "unknown"
    diff = _git(["diff", "HEAD", "--binary"], root) or ""
    out = _git(["ls-files", "--others", "--exclude-standard", "-z"], root) or ""
    return sha, diff, sorted(p for p in out.split("\0") if p)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def tree_hash(diff: str, root: Path, untracked: List[str]) -> str:
    """SHA-256 over the diff and every untracked file's path and content: equal hashes, equal edits."""
    h = hashlib.sha256(diff.encode())
    for rel in untracked:
        p = root / rel
        h.update(b"\0" + rel.encode() + b"\0")
        if p.is_file():
            h.update(_sha256(p).encode())
    return h.hexdigest()


def packages() -> List[str]:
    """Installed distributions as sorted ``name==version`` lines (what ``pip freeze`` lists)."""
    import sys
    from importlib import metadata

    # not Ray's vendored copies (ray/thirdparty_files, on sys.path once Ray is imported): what is installed
    paths = [p for p in sys.path if "thirdparty_files" not in p]
    seen: Dict[str, str] = {}
    for d in metadata.distributions(path=paths):
        name = (d.metadata["Name"] or "").strip()
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={d.version}"
    return [seen[k] for k in sorted(seen)]


def versions(lines: List[str]) -> Dict[str, str]:
    from analysis.compare import versions as _v

    return _v(lines)


def hardware() -> Dict[str, object]:
    """Host, CPU, RAM and (through torch, if it imports) CUDA, cuDNN and GPU names."""
    hw: Dict[str, object] = {"host": socket.gethostname(), "platform": platform.platform(),
                             "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                             "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                hw["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        hw["ram_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import torch
    except Exception:  # noqa: BLE001 - a driver without torch still records the rest
        return hw
    hw["torch"] = torch.__version__
    hw["cuda"] = torch.version.cuda
    try:
        hw["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        hw["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a broken driver install: say so instead of failing the launch
        hw["gpus"] = []
    return hw


def device_of(hw: Dict[str, object]) -> str:
    gpus = hw.get("gpus") or []
    return ", ".join(str(g) for g in gpus) if gpus else f"cpu ({hw.get('cpu')})"


def collect(root: Optional[Path] = None) -> Tuple[Dict[str, object], Dict[str, bytes]]:
    """(summary tag, artifact files relative to ``provenance/``) of this checkout and machine."""
    root = root or repo_root()
    files: Dict[str, bytes] = {}
    summary: Dict[str, object] = {}
    if root is not None:
        sha, diff, untracked = git_state(root)
        files["git.diff"] = diff.encode()
        listing = []
        for rel in untracked:
            p = root / rel
            if not p.is_file():
                continue
            if p.stat().st_size <= MAX_FILE_BYTES:
                files[f"untracked/{rel}"] = p.read_bytes()
                listing.append(f"{_sha256(p)}  {rel}")
            else:
                listing.append(f"{_sha256(p)}  {rel}  (not copied: {p.stat().st_size} bytes)")
        files["untracked.txt"] = ("\n".join(listing) + "\n").encode() if listing else b""
        summary.update(commit=sha, dirty=bool(diff.strip() or untracked), untracked=len(untracked),
                       tree_sha256=tree_hash(diff, root, untracked))
    else:
        summary.update(commit="unknown", dirty=None, untracked=0, tree_sha256=None)
    pk = packages()
    files["packages.txt"] = ("\n".join(pk) + "\n").encode()
    hw = hardware()
    files["hardware.json"] = json.dumps(hw, indent=1).encode()
    vers = versions(pk)
    summary["packages"] = {k: vers[k] for k in KEY_PACKAGES if k in vers}
    summary["packages_sha256"] = hashlib.sha256(files["packages.txt"]).hexdigest()
    summary.update(host=hw["host"], device=device_of(hw), cuda=hw.get("cuda"), cudnn=hw.get("cudnn"))
    return summary, files


def log(c, rid: str, root: Optional[Path] = None) -> Dict[str, object]:
    """Collect and log the provenance on run ``rid`` (artifacts under ``provenance/`` and the summary tag)."""
    summary, files = collect(root)
    with tempfile.TemporaryDirectory() as d:
        for rel, data in files.items():
            p = Path(d, rel)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        c.log_artifacts(rid, d, artifact_path=ARTIFACT)
    c.set_tag(rid, C.PROVENANCE, json.dumps(summary, sort_keys=True))
    return summary


def recorded(c, rid: str) -> Optional[Dict[str, object]]:
    """The summary stored on run ``rid`` (a launch's parent), or None for a launch from before issue 22."""
    raw = c.get_run(rid).data.tags.get(C.PROVENANCE)
    return json.loads(raw) if raw else None


def recorded_packages(c, rid: str) -> Optional[Dict[str, str]]:
    try:
        p = c.download_artifacts(rid, f"{ARTIFACT}/packages.txt", tempfile.mkdtemp(prefix="ablate-prov-"))
    except Exception:  # noqa: BLE001 - an older launch or a store without artifacts
        return None
    return versions(Path(p).read_text().splitlines())


def differences(old, new, old_pk=None, new_pk=None, names=("recorded", "now")) -> List[str]:
    """One line per difference of two summaries (analysis.compare.provenance_differences, shared with compare)."""
    from analysis.compare import provenance_differences

    return provenance_differences(old, new, old_pk, new_pk, names)
