"""``model.cds_settings``: the paper's settings or the authors' code's, in one key.

Where the CDS paper (shared/seeds/002) is silent or its text and the authors' code
(sutkarsh/cds, checked in issue 25) differ, the task has one key per setting and a
preset that sets them all.  Each key's default is "preset": as model.cds_settings says.

  key                     paper (default)          reference_code
  model.init              fan_in                   reference (fan-out / groups, gain 1/sqrt 2)
  model.omega_constraint  none (Sec. 3.6)          reference (clamp [0.5, 2] in Type I, relu in Type E)
  model.prototype_scale   mean (Eq. 8)             reference (sum_c f / sqrt(2C), Type E only)
  optim.beta1             0.99 (Sec. 5.2)          0.9 (the reference train.py: AdamW's default)

Precedence: a setting's own key, when given (not "preset"), wins over ``model.cds_settings: paper``,
so single differences can be measured on top of the paper.  ``reference_code`` stands
for the authors' configuration as a whole: a setting's own key that disagrees with it
is a conflict (a one-line error before launch); one that agrees is allowed.
``optim.beta1`` is a string key (a number, or "preset") so that "not given" survives the
round trip through MLflow's string params; tune it over a list of values, not a range.

The paper is the default because ablate reproduces the paper's claims, and the paper
is what a reader of Table 1 has; reference_code is there to separate the two.
Stdlib only (the SPEC imports it).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

CDS_SETTINGS = ("paper", "reference_code")
PRESET = "preset"   # a setting's own key left to model.cds_settings

# key -> (value under "paper", value under "reference_code")
PRESETS: Dict[str, Tuple[Any, Any]] = {
    "model.init": ("fan_in", "reference"),
    "model.omega_constraint": ("none", "reference"),
    "model.prototype_scale": ("mean", "reference"),
    "optim.beta1": (0.99, 0.9),
}
BETA1_RANGE = (0.0, 0.9999)


def preset_value(key: str, settings: str) -> Any:
    return PRESETS[key][CDS_SETTINGS.index(settings)]


def _beta1(value: str) -> float:
    """optim.beta1 as a number; a string key so that "preset" can stand for "not given"."""
    try:
        b = float(value)
    except (TypeError, ValueError):
        b = float("nan")
    if not BETA1_RANGE[0] <= b <= BETA1_RANGE[1]:
        raise ValueError(f"optim.beta1={value!r} is neither {PRESET!r} nor a number in "
                         f"[{BETA1_RANGE[0]:g}, {BETA1_RANGE[1]:g}]")
    return b


def _given(cfg: Dict[str, Any], key: str) -> Any:
    """The value of ``key``'s own setting (beta1 as a float), or None when left to the preset."""
    v = cfg[key]
    if v == PRESET:
        return None
    return _beta1(v) if key == "optim.beta1" else v


def problems(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(key, one-line message) for a bad optim.beta1 and for each setting's own key that
    contradicts model.cds_settings=reference_code."""
    out = []
    for key in (k for k in PRESETS if k in cfg):
        try:
            given = _given(cfg, key)
        except ValueError as e:
            out.append((key, str(e)))
            continue
        preset = preset_value(key, "reference_code")
        if cfg.get("model.cds_settings") == "reference_code" and given is not None and given != preset:
            out.append((key, f"{key}={cfg[key]} conflicts with model.cds_settings=reference_code, which sets "
                             f"{key}={preset}; leave {key} out (or {PRESET}), or combine single settings "
                             f"on model.cds_settings: paper"))
    return out


def effective(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The value each setting that applies to ``cfg`` runs with: its own key if given, else the preset's.

    Raises ValueError on a problem (see ``problems``), for runs that bypass the sweep check.
    """
    bad = problems(cfg)
    if bad:
        raise ValueError(bad[0][1])
    settings = cfg.get("model.cds_settings", "paper")
    out = {}
    for key in (k for k in PRESETS if k in cfg):
        given = _given(cfg, key)
        out[key] = preset_value(key, settings) if given is None else given
    return out
