"""Granularity of the learned step sizes on networks: weight, tensor, scalar."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import metastep as ms
from metastep.deep import Model


def data(steps=150):
    xs = np.random.default_rng(1).normal(size=(steps, 4))
    ys = np.sin(2.0 * xs[:, 0]) + xs[:, 1] * xs[:, 2]
    return xs, ys


def mlp_with_fixed_params():
    """A 4-6-1 tanh MLP whose params are drawn once by NumPy: no random draws to compile."""
    model = ms.deep.mlp((4, 6, 1), activation="tanh")
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    params = jax.tree.map(lambda s: jnp.asarray(0.5 * rng.normal(size=s.shape)), shapes)
    return Model(lambda key: params, model.apply, model.input_shape)


def one_tensor_model():
    """``f(x) = Σ_j tanh(x @ W)_j``: a nonlinear model whose params are one array."""
    kernel = 0.5 * jnp.cos(jnp.arange(12.0)).reshape(4, 3)
    return Model(
        lambda key: kernel, lambda kernel, inputs: jnp.sum(jnp.tanh(inputs @ kernel), axis=-1), (4,)
    )


BLOCK_METHODS = {
    "idbd": lambda granularity: ms.idbd(0.05, 0.05, granularity=granularity),
    "smd": lambda granularity: ms.smd(0.05, 0.05, 0.9, granularity=granularity),
    "hypergradient": lambda granularity: ms.hypergradient(0.01, 0.05, granularity),
    "adam_hypergradient": lambda granularity: ms.adam_hypergradient(
        1e-3, 0.01, granularity=granularity
    ),
    "metaoptimize": lambda granularity: ms.metaoptimize(
        "adam", "adam", 0.01, 0.01, granularity=granularity
    ),
}


@pytest.mark.parametrize("name", list(BLOCK_METHODS))
def test_tensor_on_a_one_tensor_model_equals_scalar(x64, name):
    xs, ys = data()
    traces = {
        granularity: ms.run_arrays(
            ms.deep.DeepLearner(one_tensor_model(), BLOCK_METHODS[name](granularity)), xs, ys
        )
        for granularity in ("tensor", "scalar")
    }
    tensor, scalar = traces["tensor"], traces["scalar"]
    assert np.ptp(scalar.step_sizes) > 1e-4 * np.abs(scalar.step_sizes).max()  # they moved
    np.testing.assert_allclose(tensor.predictions, scalar.predictions, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tensor.step_sizes, scalar.step_sizes, rtol=1e-12)


BASES = {"sgd": ms.sgd(0.05), "adam": ms.adam(0.01), "optax.adam": optax.adam(0.01)}
ZERO_META_STEP = {  # every granularity of IDBD, one each for the others
    "idbd-weight": (lambda: ms.idbd(0.0, 0.05, granularity="weight"), "sgd"),
    "idbd-tensor": (lambda: ms.idbd(0.0, 0.05, granularity="tensor"), "sgd"),
    "idbd-scalar": (lambda: ms.idbd(0.0, 0.05, granularity="scalar"), "sgd"),
    "smd-tensor": (lambda: ms.smd(0.0, 0.05, granularity="tensor"), "sgd"),
    "hypergradient-tensor": (lambda: ms.hypergradient(0.0, 0.05, "tensor"), "sgd"),
    "adam_hypergradient-weight": (
        lambda: ms.adam_hypergradient(0.0, 0.01, granularity="weight"), "adam"
    ),
    "metaoptimize-tensor": (
        lambda: ms.metaoptimize("adam", "adam", 0.0, 0.01, granularity="tensor"), "optax.adam"
    ),
}


@pytest.fixture(scope="module")
def base_runs():
    """Each base optimizer's run, computed once (each run costs a compilation)."""
    with jax.enable_x64(True):
        xs, ys = data(100)
        return {
            name: ms.run_arrays(ms.deep.DeepLearner(mlp_with_fixed_params(), base,
                                                    curvature="none"), xs, ys)
            for name, base in BASES.items()
        }


@pytest.mark.parametrize("case", list(ZERO_META_STEP))
def test_zero_meta_step_size_is_the_base(x64, base_runs, case):
    """On an MLP, a meta step size of 0 leaves the base optimizer at its initial step size."""
    xs, ys = data(100)
    make_method, base = ZERO_META_STEP[case]
    learner = ms.deep.DeepLearner(mlp_with_fixed_params(), make_method(), curvature="none")
    trace = ms.run_arrays(learner, xs, ys)
    expected = base_runs[base]
    assert np.ptp(expected.predictions) > 0.5
    np.testing.assert_allclose(trace.predictions, expected.predictions, rtol=1e-10, atol=1e-12)


def test_autostep_has_no_block_granularity():
    with pytest.raises(ValueError, match="granularity"):
        ms.autostep(granularity="tensor")
