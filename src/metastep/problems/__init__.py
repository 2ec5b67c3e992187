"""The non-stationary problems, each a pure JAX stream (see :mod:`metastep.problems._base`)."""

from metastep.problems._base import Problem, Sample
from metastep.problems.noisy_tracking import (
    PRESETS,
    NoisyTrackingState,
    fixed_step_size_mse,
    noise_variances,
    noisy_tracking,
    optimal_mse,
    optimal_step_size,
    steady_state_gain,
    steady_state_variance,
)
from metastep.problems.switching_2d import Switching2DState, switching_2d
from metastep.problems.weight_flipping import WeightFlippingState, weight_flipping

__all__ = [
    "PRESETS",
    "NoisyTrackingState",
    "Problem",
    "Sample",
    "Switching2DState",
    "WeightFlippingState",
    "fixed_step_size_mse",
    "noise_variances",
    "noisy_tracking",
    "optimal_mse",
    "optimal_step_size",
    "steady_state_gain",
    "steady_state_variance",
    "switching_2d",
    "weight_flipping",
]
