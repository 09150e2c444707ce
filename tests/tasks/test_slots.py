"""Component slots (tasks/schema.py Slot): any registered component of a slot's kind is allowed, its own
constructor arguments are keys <slot key>.<argument> typed from its signature and conditional on the slot's
value; the registry types arguments from annotations; registering a taken name names both; plugins from the
entry-point group ablate.plugins are loaded by `ablate tasks`."""
from __future__ import annotations

import subprocess
import sys
from typing import Annotated, Literal, Optional

import pytest
import torch
from torch import nn

from components.registry import Range, arguments, register
from tasks import get_task, register_task
from tasks.schema import Param, Slot, TaskSpec
from tests.helpers import ROOT, ablate, cli_env

DIGITS = get_task("digits")


@register("linear", "test_probe_lowrank")
class _LowRank(nn.Module):
    def __init__(self, in_features: int, out_features: int, rank: Annotated[int, Range(1, 64)] = 4,
                 mode: Literal["a", "b"] = "a", scale: Optional[float] = None, bias: bool = True):
        super().__init__()
        self.u = nn.Linear(in_features, rank, bias=False)
        self.v = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x):
        return self.v(self.u(x))


@register("linear", "test_needs_width")
class _NeedsWidth(nn.Module):
    def __init__(self, in_features: int, out_features: int, width: int):
        super().__init__()
        self.lin = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.lin(x)


def test_arguments_are_typed_from_annotations_and_defaults():
    args = arguments("linear", "test_probe_lowrank")
    assert (args["rank"].type, args["rank"].default, args["rank"].low, args["rank"].high) == (int, 4, 1, 64)
    assert args["mode"].choices == ("a", "b") and args["mode"].type is str
    assert args["scale"].optional and args["scale"].type is float and args["scale"].default is None
    assert args["bias"].type is bool and not args["bias"].required
    assert arguments("linear", "test_needs_width")["width"].required


def test_any_registered_component_fills_the_slot_and_its_arguments_are_keys():
    cfg = DIGITS.resolve({"model.linear": "test_probe_lowrank", "model.linear.rank": 8, "model.linear.mode": "b"})
    assert cfg["model.linear.rank"] == 8 and cfg["model.linear.mode"] == "b"
    assert DIGITS.slot_kwargs(cfg, "model.linear") == {"rank": 8, "mode": "b"}
    # conditional: a dense cell drops them; cdlinear keeps its own task key model.block_size
    dense = DIGITS.resolve({"model.linear": "dense", "model.linear.rank": 8})
    assert "model.linear.rank" not in dense
    cd = DIGITS.resolve({"model.linear": "cdlinear", "model.block_size": 8})
    assert DIGITS.slot_kwargs(cd, "model.linear") == {"block_size": 8}


@pytest.mark.parametrize("over, words", [
    ({"model.linear": "test_probe_lowrank", "model.linear.rank": 65}, "integer in [1, 64]"),
    ({"model.linear": "test_probe_lowrank", "model.linear.mode": "c"}, "one of 'a', 'b'"),
    ({"model.linear": "no_such_layer"}, "a registered linear component"),
])
def test_bad_values_say_what_is_allowed(over, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        DIGITS.resolve(over)


def test_an_argument_no_component_takes_names_the_ones_they_take():
    with pytest.raises(KeyError) as e:
        DIGITS.resolve({"model.linear": "test_probe_lowrank", "model.linear.rnk": 2})
    assert "did you mean 'model.linear.rank'" in str(e.value) and "test_probe_lowrank:" in str(e.value)


def test_a_required_argument_the_sweep_does_not_set_is_a_problem_of_the_cell():
    cfg = DIGITS.resolve({"model.linear": "test_needs_width"})
    assert DIGITS.slot_problems(cfg) == [("model.linear.width", "the linear component 'test_needs_width' needs "
                                                                "its argument 'width': set model.linear.width")]
    assert DIGITS.slot_problems(DIGITS.resolve({"model.linear": "test_needs_width", "model.linear.width": 3})) == []


def test_a_name_registered_twice_names_both():
    with pytest.raises(KeyError, match=r"registered twice.*circulant.*DenseLinear.*_Impostor"):
        @register("linear", "dense")
        class _Impostor(nn.Module):
            pass
    spec = TaskSpec(name="digits", params={}, metrics={"m": "max"}, run=lambda c, r: {})
    with pytest.raises(KeyError, match="clashes with the shipped task 'digits'"):
        register_task(spec)


def test_a_registered_task_with_a_callable_run_and_a_slot():
    spec = register_task(TaskSpec(
        name="test_slot_task", params={"model.linear": Param(str, "dense", "", choices=("dense",))},
        metrics={"loss": "min"}, run=lambda cfg, reporter: {"loss": 0.0},
        slots=(Slot("model.linear", "linear", "x", passes=("in_features", "out_features")),)))
    assert get_task("test_slot_task") is spec and spec.load_run()({}, None) == {"loss": 0.0}
    with pytest.raises(ValueError, match="needs a str Param"):
        TaskSpec(name="bad", params={}, metrics={"m": "max"}, run="x:y", slots=(Slot("model.x", "linear", ""),))


def test_digits_kappa_is_not_applicable_for_a_layer_without_weight():
    from sweeps.runner.trial import LocalReporter, run_trial

    rep = LocalReporter(echo=lambda s: None)
    cfg = DIGITS.resolve({"model.linear": "test_probe_lowrank", "train.epochs": 1, "data.train_limit": 100})
    final = run_trial("digits", cfg, rep)
    assert "hessian_kappa" not in final and "not applicable" in rep.info["hessian_kappa"]
    assert torch.isfinite(torch.tensor(final["test_acc"]))


def test_an_installed_plugin_registers_through_the_entry_point_group(tmp_path):
    site = tmp_path / "site"
    (site / "mylab_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "mylab_plugin-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab-plugin\n"
                                                                   "Version: 0.1\n")
    (site / "mylab_plugin-0.1.dist-info" / "entry_points.txt").write_text("[ablate.plugins]\nmylab = mylab_plugin\n")
    (site / "mylab_plugin.py").write_text(
        "from tasks import register_task\nfrom tasks.schema import TaskSpec\n"
        "register_task(TaskSpec(name='mylab_task', params={}, metrics={'m': 'max'}, run=lambda c, r: {}))\n")
    r = ablate(["tasks"], tmp_path, env=cli_env(tmp_path, PYTHONPATH=f"{ROOT}:{site}"))
    assert r.returncode == 0 and "mylab_task:" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-c", "import tasks; print(tasks.available_tasks())"], cwd=ROOT,
                       env={**cli_env(tmp_path), "PYTHONPATH": f"{ROOT}:{site}"}, capture_output=True, text=True)
    assert "mylab_task" in r.stdout, r.stderr
