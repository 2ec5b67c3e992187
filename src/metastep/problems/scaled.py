"""A problem with its targets multiplied by a constant: the same stream in other units.

A method whose hyperparameters are free of the scale of the data learns the scaled stream with
the same settings and an error ``factor²`` times larger; one whose hyperparameters have units
(IDBD's meta step size has the units of ``1/y²``) needs retuning. The inputs are unchanged.
"""

from __future__ import annotations

from typing import Any

import jax

from metastep._checks import check_positive
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample


@recorded
def scaled_targets(problem: Problem, factor: float) -> Problem:
    """``problem`` with every target ``y`` multiplied by ``factor``.

    Args:
      problem: any :class:`~metastep.problems.Problem` with real-valued targets (not class labels).
      factor: ``s`` > 0; may be a traced value (a sweep over scales reuses one program).

    ``info`` is passed through unchanged: it describes the underlying problem, in its own units
    (e.g. the noisy-tracking stream's optimal MSE is ``s²`` times smaller than the scaled
    stream's).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"`problem` must be a metastep Problem, got {type(problem).__name__}")
    check_positive("factor", factor)

    def generate(state: Any, num_steps: int) -> tuple[Any, Sample]:
        state, sample = problem.generate(state, num_steps)
        if not jax.numpy.issubdtype(sample.y.dtype, jax.numpy.floating):
            raise ValueError(
                f"`problem` {problem.name!r} has {sample.y.dtype} targets (class labels?): only "
                "real-valued targets can be scaled"
            )
        return state, sample._replace(y=sample.y * factor)

    return Problem(
        name=f"{problem.name}_scaled",
        num_features=problem.num_features,
        params={**problem.params, "target_scale": factor},
        init=problem.init,
        generate=generate,
        description=f"{problem.description} Targets multiplied by {factor}.".strip(),
    )


__all__ = ["scaled_targets"]
