"""The learner protocol and the glue the learners share: one home for the method check, the NaN
step sizes of plain optax optimizers, the log10 step-size statistics and the divergence test."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import metastep as ms
from metastep._learner_protocol import (
    DEFAULT_DIVERGENCE_THRESHOLD,
    as_method,
    diverges,
    log10_step_sizes,
    step_sizes_or_nan,
)
from metastep.experiments import _roster

TINY_NETWORK = ms.deep.mlp((3, 4, 1))


def linear(method):
    return ms.LinearLearner(method, 3)


def deep(method):
    return ms.deep.DeepLearner(TINY_NETWORK, method, curvature="none")


LEARNERS = {"linear": linear, "deep": deep}
STEP_SIZE_RECORDS = {
    "linear": ("step_sizes",), "deep": ("log10_step_size_mean", "log10_step_size_quantiles")
}


def roster_learner():
    """The continual benchmarks' learner: a roster of methods side by side."""
    methods = _roster.roster(["sgd", "idbd"], 1, {})
    return _roster.RosterLearner(TINY_NETWORK, "squared", methods, {"sgd": 0.1, "idbd": 0.01})


@pytest.mark.parametrize("build", [linear, deep, lambda _: roster_learner()],
                         ids=["linear", "deep", "roster"])
def test_the_learners_follow_the_protocol(build):
    assert isinstance(build(ms.sgd(0.1)), ms.Learner)


def test_an_object_without_record_is_not_a_learner():
    class NoRecord:
        def init(self, key):
            return None

        def step(self, state, x, y):
            return state, None

    assert not isinstance(NoRecord(), ms.Learner)


# None is refused by the linear learner; for the deep learner it is the default method
# (tests/deep/test_learner.py).
NOT_METHODS = [(name, method) for name in LEARNERS for method in ("adam", None, optax.sgd)
               if not (name == "deep" and method is None)]


@pytest.mark.parametrize(("name", "method"), NOT_METHODS)
def test_a_method_that_is_not_an_optax_transformation_is_refused(name, method):
    with pytest.raises(ValueError, match="`method` must be an optax GradientTransformation"):
        LEARNERS[name](method)


def test_extra_arguments_reach_only_the_transformations_that_take_them():
    params = jnp.ones(3)
    for transformation in (optax.sgd(0.1), ms.idbd(0.01, 0.1)):
        method = as_method(transformation)
        updates, _ = method.update(-params, method.init(params), params, curvature=params)
        assert updates.shape == (3,)


@pytest.mark.parametrize("kind", LEARNERS)
def test_a_plain_optax_optimizer_reports_nan_step_sizes(kind):
    """optax has no step sizes to report: NaN in the output and in the step-size records; a
    metastep method reports its own on the same learner."""
    x, y = jnp.array([1.0, -2.0, 0.5]), jnp.array(1.5)
    learner = LEARNERS[kind](optax.sgd(0.1))
    state, output = jax.jit(learner.step)(learner.init(jax.random.PRNGKey(0)), x, y)
    record = jax.jit(learner.record)(state)
    for leaf in jax.tree.leaves([output.step_sizes, [record[r] for r in STEP_SIZE_RECORDS[kind]]]):
        assert np.all(np.isnan(leaf))
    learner = LEARNERS[kind](ms.sgd(0.1))
    _, output = jax.jit(learner.step)(learner.init(jax.random.PRNGKey(0)), x, y)
    for leaf in jax.tree.leaves(output.step_sizes):
        np.testing.assert_allclose(leaf, 0.1, rtol=1e-6)


def test_two_step_size_states_for_the_same_weights_still_raise():
    """The NaN fallback covers "no step sizes", never an ambiguous chain."""
    learner = linear(optax.chain(ms.sgd(0.1), ms.sgd(0.2)))
    state = learner.init()
    assert isinstance(step_sizes_or_nan(linear(ms.sgd(0.1)).init().opt_state, state.weights),
                      jax.Array)
    with pytest.raises(ValueError, match="cover the same weights"):
        step_sizes_or_nan(state.opt_state, state.weights)


def test_log10_step_sizes_flattens_each_array_and_floors_at_the_smallest_normal():
    tree = {"a": jnp.array([[1.0, 100.0]]), "b": jnp.array([0.0, -1.0, jnp.nan, 0.1])}
    a, b = log10_step_sizes(tree)
    np.testing.assert_allclose(a, [0.0, 2.0], rtol=1e-6)
    smallest = np.log10(np.finfo(np.float32).tiny)
    np.testing.assert_allclose(b[:2], [smallest, smallest], rtol=1e-6)
    assert np.isnan(b[2])
    np.testing.assert_allclose(b[3], -1.0, rtol=1e-6)


def test_divergence_is_a_squared_error_not_finite_or_above_the_threshold():
    squared_errors = jnp.array([1.0, DEFAULT_DIVERGENCE_THRESHOLD, 1e21, jnp.inf, jnp.nan])
    np.testing.assert_array_equal(diverges(squared_errors), [False, False, True, True, True])
    np.testing.assert_array_equal(diverges(squared_errors, 2.0), [False, True, True, True, True])
