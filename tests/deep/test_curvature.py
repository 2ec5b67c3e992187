"""The curvature sources of ms.deep.extra_args against exact matrices computed by autodiff."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import metastep as ms


def tiny_problem(num_outputs, batch_size, loss, seed=0):
    """A 3-4-K tanh network, its params, a batch of inputs and targets (values or labels).

    Drawn with NumPy: JAX's random draws would cost a compilation per shape.
    """
    model = ms.deep.mlp((3, 4, num_outputs), activation="tanh")
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape)), shapes)
    inputs = jnp.asarray(rng.normal(size=(batch_size, 3)))
    if loss == "squared":
        targets = jnp.asarray(rng.normal(size=(batch_size, num_outputs)))
    else:
        targets = jnp.asarray(rng.integers(0, num_outputs, size=batch_size))
    return model, params, (inputs, targets)


def exact_matrices(model, params, batch, loss):
    """The Hessian and the Gauss-Newton matrix of the batch loss over the flattened params."""
    flat, unravel = ravel_pytree(params)
    return (flat, unravel, *_exact_matrices(model, unravel, flat, batch, loss))


@partial(jax.jit, static_argnums=(0, 1, 4))
def _exact_matrices(model, unravel, flat, batch, loss):
    inputs, targets = batch

    def outputs_of(flat_params):
        return model.apply(unravel(flat_params), inputs)

    def loss_of(flat_params):
        return ms.deep.loss_value(outputs_of(flat_params), targets, loss)

    hessian = jax.hessian(loss_of)(flat)
    outputs = outputs_of(flat)
    jacobian = jax.jacfwd(outputs_of)(flat).reshape(outputs.size, flat.size)
    output_hessian = jax.hessian(lambda o: ms.deep.loss_value(o, targets, loss))(outputs)
    output_hessian = output_hessian.reshape(outputs.size, outputs.size)
    return hessian, jacobian.T @ output_hessian @ jacobian


@partial(jax.jit, static_argnums=(0,), static_argnames=("loss", "curvature"))
def compiled_extra_args(apply_fn, params, batch, vector, *, loss, curvature, key):
    """ms.deep.extra_args under jit (op-by-op dispatch is slow): the loss, outputs, gradient,
    diagonal curvature and the curvature-vector product applied to ``vector``."""
    value, outputs, grads, extra = ms.deep.extra_args(
        apply_fn, params, batch, loss=loss, curvature=curvature, key=key
    )
    product = extra["curvature_vector_product"](vector)
    return value, outputs, grads, extra.get("curvature"), product


def flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


def test_gauss_newton_is_exact_for_one_output(x64):
    """Batch 1, one regression output: c = (∂f/∂w)², with or without a key."""
    model, params, batch = tiny_problem(1, 1, "squared")
    _, _, _, gauss_newton = exact_matrices(model, params, batch, "squared")
    for key in (None, jax.random.PRNGKey(3)):
        _, _, _, diagonal, _ = compiled_extra_args(
            model.apply, params, batch, params, loss="squared", curvature="gauss_newton", key=key
        )
        np.testing.assert_allclose(flat(diagonal), np.diag(gauss_newton), rtol=1e-12)


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_gauss_newton_estimate_is_unbiased(x64, loss):
    """Vector outputs and a batch: the mean over many keys approaches diag(Jᵀ H J)."""
    model, params, batch = tiny_problem(3, 4, loss)
    _, _, _, gauss_newton = exact_matrices(model, params, batch, loss)
    keys = jax.random.split(jax.random.PRNGKey(2), 10_000)

    @jax.jit
    @jax.vmap
    def estimate(key):
        _, _, _, extra = ms.deep.extra_args(model.apply, params, batch, loss=loss, key=key)
        return ravel_pytree(extra["curvature"])[0]

    estimates = np.asarray(estimate(keys))
    exact = np.diag(gauss_newton)
    standard_error = estimates.std(axis=0) / np.sqrt(len(keys))
    assert np.all(np.abs(estimates.mean(axis=0) - exact) <= 5 * standard_error + 1e-12)
    # Not exact one key at a time: the test would pass vacuously otherwise.
    assert np.max(estimates.std(axis=0)) > 0.1 * np.max(exact)


def test_hutchinson_estimate_is_unbiased(x64):
    model, params, batch = tiny_problem(2, 3, "squared")
    _, _, hessian, _ = exact_matrices(model, params, batch, "squared")
    keys = jax.random.split(jax.random.PRNGKey(4), 10_000)

    @jax.jit
    @jax.vmap
    def estimate(key):
        _, _, _, extra = ms.deep.extra_args(
            model.apply, params, batch, curvature="hutchinson", key=key
        )
        return ravel_pytree(extra["curvature"])[0]

    estimates = np.asarray(estimate(keys))
    standard_error = estimates.std(axis=0) / np.sqrt(len(keys))
    assert np.all(np.abs(estimates.mean(axis=0) - np.diag(hessian)) <= 5 * standard_error + 1e-12)


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_gradient_and_curvature_vector_products_are_exact(x64, loss):
    """Every source gives the exact loss and gradient; "hvp" (and "hutchinson") give ∇²L v,
    "gauss_newton" gives Jᵀ H J v, "none" gives 0."""
    model, params, batch = tiny_problem(3, 4, loss)
    flat_params, unravel, hessian, gauss_newton = exact_matrices(model, params, batch, loss)
    expected_value, expected_grads = jax.jit(jax.value_and_grad(
        lambda p: ms.deep.loss_value(model.apply(p, batch[0]), batch[1], loss)
    ))(params)
    vector = jax.random.normal(jax.random.PRNGKey(5), flat_params.shape)
    expected_products = {
        "hvp": hessian @ vector,
        "hutchinson": hessian @ vector,
        "gauss_newton": gauss_newton @ vector,
        "none": np.zeros_like(vector),
    }
    for curvature, expected_product in expected_products.items():
        value, outputs, grads, _, product = compiled_extra_args(
            model.apply, params, batch, unravel(vector), loss=loss, curvature=curvature,
            key=jax.random.PRNGKey(6),
        )
        np.testing.assert_allclose(value, expected_value, rtol=1e-12, err_msg=curvature)
        np.testing.assert_allclose(outputs, model.apply(params, batch[0]), rtol=1e-12)
        np.testing.assert_allclose(flat(grads), flat(expected_grads), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(
            flat(product), expected_product, rtol=1e-9, atol=1e-12, err_msg=curvature
        )


def traced_extra_args(*args, **kwargs):
    """What ms.deep.extra_args returns, traced but not compiled: its extra arguments' names and
    the curvature (as shapes), or the error it raised."""
    found = {}

    def run():
        _, _, _, extra = ms.deep.extra_args(*args, **kwargs)
        found.update(extra)
        return extra.get("curvature")

    return jax.eval_shape(run), set(found)


def test_none_gives_zero_curvature_and_hvp_a_diagonal_only_with_a_key():
    model, params, batch = tiny_problem(2, 1, "squared")
    _, _, _, diagonal, _ = compiled_extra_args(
        model.apply, params, batch, params, loss="squared", curvature="none", key=None
    )
    assert jax.tree.structure(diagonal) == jax.tree.structure(params)
    assert all(np.all(np.asarray(c) == 0) for c in jax.tree.leaves(diagonal))
    _, names = traced_extra_args(model.apply, params, batch, curvature="hvp")
    assert names == {"curvature_vector_product"}
    shapes, names = traced_extra_args(
        model.apply, params, batch, curvature="hvp", key=jax.random.PRNGKey(0)
    )
    assert names == {"curvature", "curvature_vector_product"}
    assert jax.tree.structure(shapes) == jax.tree.structure(params)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"curvature": "hutchinson"}, "key"),
        ({"curvature": "gauss_newton"}, "key"),
        ({"curvature": "fisher"}, "curvature"),
        ({"loss": "hinge"}, "loss"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    model, params, batch = tiny_problem(2, 3, "squared")
    with pytest.raises(ValueError, match=match):
        traced_extra_args(model.apply, params, batch, **kwargs)
