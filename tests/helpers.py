"""Helpers shared by the step-by-step method tests (importable: ``pythonpath`` in pyproject)."""

import jax
import jax.numpy as jnp
import numpy as np

from metastep.learner import LinearLearner


def run_learner(method, xs, ys):
    """Predictions and per-step step sizes of a LinearLearner trained by ``method``."""
    learner = LinearLearner(method, xs.shape[1])
    run = jax.jit(
        lambda state, xs, ys: jax.lax.scan(lambda s, xy: learner.step(s, *xy), state, (xs, ys))
    )
    _, outputs = run(learner.init(), jnp.asarray(xs), jnp.asarray(ys))
    return np.asarray(outputs.prediction), np.asarray(outputs.step_sizes)


def run_dense_kernel(method, xs, ys):
    """Predictions and per-step step sizes of a dense layer ``y = x @ W`` (``W`` [in, out] from
    zeros) trained by ``method`` on the squared loss, with the curvature ``x²`` per weight."""

    def step(carry, data):
        kernel, opt_state = carry
        x, y = data
        prediction = x @ kernel
        grads = -jnp.outer(x, y - prediction)
        curvature = jnp.broadcast_to((x * x)[:, None], kernel.shape)
        updates, opt_state = method.update(grads, opt_state, kernel, curvature=curvature)
        return (kernel + updates, opt_state), (prediction, opt_state.step_sizes)

    kernel = jnp.zeros((xs.shape[1], ys.shape[1]))
    run = jax.jit(lambda carry, xs, ys: jax.lax.scan(step, carry, (xs, ys)))
    _, (predictions, step_sizes) = run((kernel, method.init(kernel)), jnp.asarray(xs),
                                       jnp.asarray(ys))
    return np.asarray(predictions), np.asarray(step_sizes)


def assert_close(actual, expected):
    """Agreement with a NumPy transcription to 1e-9 relative; a diverged reference fails."""
    assert np.all(np.isfinite(expected))  # a diverged run would compare NaN with NaN
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12)
