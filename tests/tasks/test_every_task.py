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


def slot_table() -> str:
    """README's table of the shipped tasks' component slots, as the SPECs declare them."""
    from tasks import get_task

    rows = ["| task | slot key | kind | contract (what the task passes → forward's shapes) | shipped values |",
            "|---|---|---|---|---|"]
    for name in TASK_MODULES:
        t = get_task(name)
        for s in t.slots:
            vals = ", ".join(map(str, t.params[s.key].choices or ()))
            rows.append(f"| {name} | `{s.key}` | `{s.kind}` | {s.contract} | {vals} |")
    return "\n".join(rows)


def test_the_readme_lists_every_slot_of_every_task():
    readme = (ROOT / "README.md").read_text()
    assert slot_table() in readme, "README's slot table is stale; paste:\n" + slot_table()


if __name__ == "__main__":      # python -m tests.tasks.test_every_task: print the table for the README
    print(slot_table())
