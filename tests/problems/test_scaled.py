"""ms.problems.scaled_targets: the same stream with its targets in other units."""

import jax
import numpy as np
import pytest

import metastep as ms


@pytest.mark.parametrize("factor", [0.1, 10.0])
def test_only_the_targets_are_multiplied(factor):
    problem = ms.problems.noisy_tracking("paper", regime_length=50)
    scaled = ms.problems.scaled_targets(problem, factor)
    key = jax.random.PRNGKey(3)
    plain, multiplied = problem.sample(key, 120), scaled.sample(key, 120)
    np.testing.assert_allclose(multiplied.y, factor * np.asarray(plain.y), rtol=1e-6)
    np.testing.assert_array_equal(multiplied.x, plain.x)
    for name in plain.info:
        np.testing.assert_array_equal(multiplied.info[name], plain.info[name])
    assert scaled.params["target_scale"] == factor
    assert scaled.num_features == problem.num_features


def test_a_learner_with_scale_free_settings_sees_the_error_scaled_by_factor_squared():
    """LMS is linear in the targets from zero weights: its errors scale exactly by s."""
    problem = ms.problems.weight_flipping()
    learner = ms.LinearLearner(ms.sgd(0.02), 20)
    plain = ms.run(learner, problem, steps=2_000, seed=1, record_every=500)
    scaled = ms.run(learner, ms.problems.scaled_targets(problem, 10.0), steps=2_000, seed=1,
                    record_every=500)
    np.testing.assert_allclose(scaled.squared_error, 100.0 * plain.squared_error, rtol=1e-4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="factor"):
        ms.problems.scaled_targets(ms.problems.weight_flipping(), 0.0)
    with pytest.raises(TypeError, match="problem"):
        ms.problems.scaled_targets("weight_flipping", 2.0)
    labels = ms.problems.scaled_targets(ms.problems.permuted_digits(), 2.0)
    with pytest.raises(ValueError, match="class labels"):
        labels.sample(jax.random.PRNGKey(0), 4)
