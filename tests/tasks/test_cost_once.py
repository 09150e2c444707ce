"""The cost probe runs once per distinct configuration (issue 24): sweeps/runner/phase.py marks only the final
phase's first-seed trials ``cost_probe``; tasks/cost.py's FitProbe measures nothing for a reporter that says no."""
import torch
from torch import nn

from sweeps.language.load import load
from sweeps.runner.phase import trial_dict
from tasks.cost import FitProbe


class Rec:
    def __init__(self, cost_probe=True):
        self.info, self.cost_probe = {}, cost_probe

    def annotate(self, **kw):
        self.info.update(kw)


def _fit_one(rep):
    m = nn.Linear(3, 2)
    fp = FitProbe(m)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m(torch.randn(4, 3)).sum().backward()          # the training call FitProbe captures
    fp.done(opt, rep, epochs_left=2, epoch_seconds=0.01)
    return rep.info


def test_probe_skipped_when_the_reporter_says_so():
    assert _fit_one(Rec(True))["flops_fwd"] == 2 * 3 * 2
    assert _fit_one(Rec(False)) == {}


def test_trial_dict_marks_the_first_seed_only():
    study = load("sweeps/quick.yaml", smoke=True)
    first = list(study.seeds)[0]
    marks = {s: trial_dict(study, "c", {"seed": s}, "final", f"c|seed={s}")["cost_probe"] for s in (first, first + 1)}
    assert marks == {first: True, first + 1: False}
    assert trial_dict(study, "c", {"seed": first + 1}, "search", "k")["cost_probe"]     # search trials all probe
