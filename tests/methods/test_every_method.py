"""What every method shares: float32 by default, and its step sizes found by ``step_sizes``."""

import jax
import jax.numpy as jnp
import optax
import pytest

import metastep as ms
from metastep.learner import LinearLearner

METHODS = {
    "sgd": lambda: ms.sgd(0.01),
    "delta_delta": ms.delta_delta,
    "idbd": ms.idbd,
    "autostep": ms.autostep,
    "smd": ms.smd,
    "hypergradient": ms.hypergradient,
    "adam_hypergradient": ms.adam_hypergradient,
    "rmsprop": ms.rmsprop,
    "adam": ms.adam,
    "metaoptimize": ms.metaoptimize,
}


@pytest.mark.parametrize("name", list(METHODS))
def test_float32_by_default(nonstationary_data, name):
    xs, ys = nonstationary_data(8, steps=2, num_features=5)
    learner = LinearLearner(METHODS[name](), 5)
    state, output = jax.jit(learner.step)(learner.init(), jnp.asarray(xs[0]), jnp.asarray(ys[0]))
    assert output.step_sizes.dtype == jnp.float32
    assert all(leaf.dtype in (jnp.float32, jnp.int32) for leaf in jax.tree.leaves(state))


@pytest.mark.parametrize("name", list(METHODS))
def test_step_sizes_are_found_inside_an_optax_chain(name):
    params = {"w": jnp.zeros(3)}
    chain = optax.chain(optax.clip_by_global_norm(1.0), METHODS[name]())
    sizes = ms.step_sizes(chain.init(params))
    assert jax.tree.structure(sizes) == jax.tree.structure(params)
    assert sizes["w"].shape == (3,)
