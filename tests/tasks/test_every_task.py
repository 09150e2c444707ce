"""Contract tests over every registered task (as tests/components/test_contract.py does for components)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tasks import TASK_MODULES
from tests.helpers import ROOT

HEAVY = ("torch", "numpy", "scipy", "sklearn", "monai", "components", "ray", "mlflow")


@pytest.mark.parametrize("module", sorted({*TASK_MODULES.values(), "tasks.datasets"}))
def test_a_task_module_imports_nothing_heavy(module):
    # Sweep-file validation imports every task's SPEC: it must stay pure Python (well under 2 s in all)
    code = (f"import sys, importlib; m = importlib.import_module({module!r})\n"
            "spec = getattr(m, 'SPEC', None)\n"
            "spec is not None and spec.resolve({})\n"
            f"print(json.dumps([h for h in {HEAVY!r} if h in sys.modules]))")
    r = subprocess.run([sys.executable, "-c", "import json\n" + code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.splitlines()[-1]) == []
