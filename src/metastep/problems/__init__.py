"""The non-stationary problems, each a pure JAX stream (see :mod:`metastep.problems._base`)."""

from metastep.problems._base import Problem, Sample, step_keys
from metastep.problems.classic_control import mountain_car
from metastep.problems.digits import label_permuted_digits, load_digits_data, permuted_digits
from metastep.problems.fashion import load_fashion_mnist, permuted_fashion, read_idx
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
from metastep.problems.permuted import PermutedState, permuted_classification, task_permutation
from metastep.problems.random_walk import RandomWalkState, random_walk, random_walk_values
from metastep.problems.scaled import scaled_targets
from metastep.problems.slowly_changing_regression import (
    LTUNetwork,
    SlowlyChangingRegressionState,
    ltu_network,
    ltu_network_output,
    slowly_changing_regression,
)
from metastep.problems.trace_patterning import TracePatterningState, trace_patterning
from metastep.problems.switching_2d import Switching2DState, switching_2d
from metastep.problems.weight_flipping import WeightFlippingState, weight_flipping

__all__ = [
    "PRESETS",
    "LTUNetwork",
    "NoisyTrackingState",
    "PermutedState",
    "RandomWalkState",
    "Problem",
    "Sample",
    "SlowlyChangingRegressionState",
    "Switching2DState",
    "TracePatterningState",
    "WeightFlippingState",
    "fixed_step_size_mse",
    "label_permuted_digits",
    "load_digits_data",
    "load_fashion_mnist",
    "ltu_network",
    "ltu_network_output",
    "mountain_car",
    "noise_variances",
    "noisy_tracking",
    "optimal_mse",
    "optimal_step_size",
    "permuted_classification",
    "permuted_digits",
    "permuted_fashion",
    "random_walk",
    "random_walk_values",
    "scaled_targets",
    "read_idx",
    "slowly_changing_regression",
    "steady_state_gain",
    "steady_state_variance",
    "step_keys",
    "switching_2d",
    "task_permutation",
    "trace_patterning",
    "weight_flipping",
]
