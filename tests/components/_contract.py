"""Per-entry examples for the registry contract tests (tests/components/test_contract.py).

Every family adds a module ``tests/components/examples_<family>.py`` that
defines ``EXAMPLES: dict[tuple[str, str], Example]`` keyed by (kind, name).
The contract test fails for any registered component that has no example, so
a new registry entry cannot skip the contract.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch


@dataclass
class Example:
    """How to exercise one registry entry.

    kwargs: valid constructor keyword arguments (small sizes).
    inputs: (dtype, device) -> tuple of forward() positional inputs. ``dtype``
        is the real dtype under test (float32 or float64); complex families
        produce the matching complex dtype themselves.
    out_shape: the expected output shape, or a callable(inputs) -> shape.
    invalid: (kwargs overrides, argument name) pairs; constructing with
        ``{**kwargs, **overrides}`` must raise ValueError whose message names
        the argument.
    output: optional callable(module_output) -> Tensor used for shape/NaN/loss
        when forward returns a tuple or a complex tensor.
    """

    kwargs: dict
    inputs: Callable[[torch.dtype, torch.device], tuple]
    out_shape: Any
    invalid: Sequence[tuple[dict, str]] = field(default_factory=list)
    output: Callable[[Any], torch.Tensor] | None = None
    # Parameters that legitimately receive no gradient for this example input
    # (for example a bias that a following normalisation cancels). Say why.
    no_grad_ok: Sequence[str] = ()
