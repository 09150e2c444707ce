"""tasks/common.py's runtime set-up: determinism is on (warn-only) in a fresh process without importing torch's
compiler stack, which would cost every fresh trial worker about 0.9 s."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.cli_helpers import ROOT


def _fresh(code: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


PROBE = """
import json, sys, torch
from tasks.common import setup_runtime
{before}
setup_runtime({cfg})
ind = sys.modules.get("torch._inductor.config")
print(json.dumps({{"on": torch.are_deterministic_algorithms_enabled(),
                  "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
                  "dynamo": "torch._dynamo" in sys.modules,
                  "inductor_flag": None if ind is None else bool(ind.deterministic)}}))
"""


def test_deterministic_warn_only_without_importing_the_compiler():
    got = _fresh(PROBE.format(before="", cfg={"seed": 0}))
    assert got == {"on": True, "warn_only": True, "dynamo": False, "inductor_flag": None}


def test_inductor_already_loaded_gets_its_flag_and_the_switch_turns_it_off():
    got = _fresh(PROBE.format(before="import torch._inductor.config", cfg={"seed": 0}))
    assert got["on"] and got["warn_only"] and got["inductor_flag"] is True
    off = _fresh(PROBE.format(before="", cfg={"seed": 0, "train.deterministic": False}))
    assert off["on"] is False
