"""The deep learner: the linear learner's numbers on a linear unit, runs, records, interop."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen, nnx

import metastep as ms
from metastep.deep import Model
from metastep.problems import Problem, Sample


def linear_unit(num_features):
    """One linear unit ``y = w·x`` with zero initial weights, as a deep-learner model."""
    return Model(
        lambda key: jnp.zeros((num_features,)), lambda w, inputs: inputs @ w, (num_features,)
    )


@pytest.mark.parametrize(
    "method",
    [ms.idbd(0.005, 0.02), ms.autostep(0.01, 0.05, 100.0), ms.smd(0.005, 0.02, 0.9)],
    ids=["idbd", "autostep", "smd"],
)
def test_single_linear_unit_with_gauss_newton_is_the_linear_learner(
    x64, nonstationary_data, method
):
    """Squared loss and Gauss-Newton curvature on ``y = w·x``: ``g = −δx``, ``c = x²`` and
    ``C v = x (x·v)``, so every step matches the core's LinearLearner."""
    xs, ys = nonstationary_data(0, steps=800, num_features=5)
    expected = ms.run_arrays(ms.LinearLearner(method, 5), xs, ys)
    deep = ms.run_arrays(ms.deep.DeepLearner(linear_unit(5), method), xs, ys)
    assert np.ptp(np.log(expected.step_sizes)) > 0.1  # the step sizes did move
    np.testing.assert_allclose(deep.predictions, expected.predictions, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(deep.errors, expected.errors, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(deep.step_sizes, expected.step_sizes, rtol=1e-12)


def test_effective_step_size_is_sum_of_step_size_times_input_squared(x64):
    """With ``Δw = −α g`` on a linear unit, ``−g·Δw / δ² = Σ α x²`` (rate 1: the last step)."""
    learner = ms.deep.DeepLearner(linear_unit(4), ms.sgd(0.03), average_rate=1.0)
    x = jnp.array([1.0, -2.0, 0.5, 3.0])
    state, _ = learner.step(learner.init(), x, jnp.array(2.0))
    record = learner.record(state)
    np.testing.assert_allclose(record["effective_step_size"], [0.03 * jnp.sum(x * x)], rtol=1e-12)
    np.testing.assert_allclose(record["log10_step_size_mean"], [np.log10(0.03)], rtol=1e-12)
    np.testing.assert_allclose(record["log10_step_size_quantiles"], [[np.log10(0.03)] * 3])


def test_regression_run_records_per_layer_statistics():
    learner = ms.deep.DeepLearner(ms.deep.mlp((20, 8, 1)), ms.idbd(0.01, 0.01))
    assert learner.layer_names == ["layer_0/bias", "layer_0/kernel", "layer_1/bias",
                                   "layer_1/kernel"]
    result = ms.run(learner, ms.problems.weight_flipping(20), steps=200, record_every=50)
    assert result.records["log10_step_size_mean"].shape == (4, 4)
    assert result.records["log10_step_size_quantiles"].shape == (4, 4, 3)
    assert result.records["effective_step_size"].shape == (4, 4)
    # The last record describes the final state: its step sizes' mean and quantiles of log₁₀ α.
    final_logs = [np.log10(np.asarray(a)).ravel()
                  for a in jax.tree.leaves(learner.step_sizes(result.final_state))]
    assert np.ptp(final_logs[1]) > 1e-3  # per-weight step sizes that differ
    np.testing.assert_allclose(result.records["log10_step_size_mean"][-1],
                               [v.mean() for v in final_logs], rtol=1e-5)
    np.testing.assert_allclose(result.records["log10_step_size_quantiles"][-1],
                               [np.quantile(v, learner.quantile_levels) for v in final_logs],
                               rtol=1e-5)
    # error² = 2 × loss, bin by bin.
    np.testing.assert_allclose(result.squared_error, 2 * result.records["loss"], rtol=1e-5)
    assert not result.diverged
    figure = ms.deep.plot_layer_step_sizes(
        result.records, result.steps, learner.layer_names, switch_steps=[100]
    )
    assert len(figure.axes) == 2  # the heatmap and its colorbar


def labelled_blobs(num_features=6, num_classes=3):
    """A stationary classification stream: label = argmax of a fixed linear map of Gaussian x."""

    def init(key):
        return key, jnp.zeros((), jnp.uint32)

    def generate(state, num_steps):
        key, step = state
        keys = jax.vmap(lambda t: jax.random.fold_in(key, t))(step + jnp.arange(num_steps))
        x = jax.vmap(lambda k: jax.random.normal(k, (num_features,)))(keys)
        labels = jnp.argmax(x @ jnp.linspace(-1.0, 1.0, num_features * num_classes).reshape(
            num_features, num_classes), axis=1)
        return (key, step + num_steps), Sample(x, labels, {})

    return Problem("blobs", num_features, {}, init, generate)


def test_classification_run_records_online_accuracy():
    learner = ms.deep.DeepLearner(
        ms.deep.mlp((6, 16, 3)), ms.idbd(0.01, 0.05), loss="cross_entropy"
    )
    result = ms.run(learner, labelled_blobs(), steps=1200, record_every=400)
    accuracy = result.records["accuracy"]
    assert accuracy.shape == (3,)
    assert np.all((accuracy >= 0) & (accuracy <= 1))
    assert accuracy[-1] > 0.7  # a learnable stream: it learns
    np.testing.assert_allclose(result.squared_error, 2 * result.records["loss"], rtol=1e-5)


def test_batches_and_plain_optax_optimizers():
    """A batch step gives one scalar error; optax.adam has no step sizes to report (NaN)."""
    learner = ms.deep.DeepLearner(ms.deep.mlp((4, 5, 2)), optax.adam(1e-3))
    state = learner.init(jax.random.PRNGKey(0))
    state, output = jax.jit(learner.step)(state, jnp.ones((8, 4)), jnp.zeros((8, 2)))
    assert output.prediction.shape == (8, 2) and output.error.shape == ()
    np.testing.assert_allclose(output.error**2, 2 * output.metrics["loss"], rtol=1e-6)
    assert np.all(np.isnan(learner.record(state)["log10_step_size_mean"]))


def test_flax_and_equinox_models_match_the_plain_mlp():
    """The same network in Flax linen, Flax NNX, Equinox and plain JAX, trained by IDBD, gives
    the same numbers (Equinox's Linear holds ``[out, in]`` weights: transposed)."""

    class FlaxNet(linen.Module):
        @linen.compact
        def __call__(self, x):
            hidden = jnp.tanh(linen.Dense(5)(x))
            return linen.Dense(1)(hidden)[..., 0]

    plain = ms.deep.mlp((3, 5, 1), activation="tanh")
    flax_model = ms.deep.as_model(FlaxNet(), input_shape=(3,))
    flax_learner = ms.deep.DeepLearner(flax_model, ms.idbd(0.05, 0.05))
    # The params the learner starts from under run_arrays' default key.
    flax_params = flax_learner.init(jax.random.PRNGKey(0)).params["params"]
    as_list = [dict(flax_params["Dense_0"]), dict(flax_params["Dense_1"])]
    equinox_net = eqx.nn.MLP(3, "scalar", 5, 1, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    equinox_net = eqx.tree_at(
        lambda m: [leaf for layer in m.layers for leaf in (layer.weight, layer.bias)],
        equinox_net,
        [a for layer in as_list for a in (layer["kernel"].T, layer["bias"])],
    )

    class NNXNet(nnx.Module):
        def __init__(self):
            self.hidden = nnx.Linear(3, 5, rngs=nnx.Rngs(0))
            self.output = nnx.Linear(5, 1, rngs=nnx.Rngs(1))

        def __call__(self, x):
            return self.output(jnp.tanh(self.hidden(x)))[..., 0]

    nnx_net = NNXNet()
    for layer, values in zip((nnx_net.hidden, nnx_net.output), as_list):
        layer.kernel[...], layer.bias[...] = values["kernel"], values["bias"]

    xs = jax.random.normal(jax.random.PRNGKey(1), (300, 3))
    ys = jnp.sin(xs[:, 0]) * xs[:, 1]
    method = ms.idbd(0.05, 0.05)
    reference = ms.run_arrays(
        ms.deep.DeepLearner(Model(lambda key: as_list, plain.apply, (3,)), method), xs, ys
    )
    flax_trace = ms.run_arrays(flax_learner, xs, ys)
    equinox_learner = ms.deep.DeepLearner(equinox_net, method, input_shape=(3,))
    equinox_trace = ms.run_arrays(equinox_learner, xs, ys)
    assert equinox_learner.layer_names == [
        "layers/layer_0/weight", "layers/layer_0/bias", "layers/layer_1/weight",
        "layers/layer_1/bias",
    ]
    nnx_learner = ms.deep.DeepLearner(nnx_net, method, input_shape=(3,))
    nnx_trace = ms.run_arrays(nnx_learner, xs, ys)
    assert nnx_learner.layer_names == [
        "hidden/bias", "hidden/kernel", "output/bias", "output/kernel"
    ]
    assert np.ptp(np.log(reference.step_sizes[0]["kernel"][-1])) > 0.01  # IDBD did adapt
    for trace in (flax_trace, equinox_trace, nnx_trace):
        np.testing.assert_allclose(trace.predictions, reference.predictions, rtol=1e-4, atol=1e-5)


def test_flax_params_trained_by_a_chain_with_extra_args():
    """ms.idbd inside an optax chain, fed by ms.deep.extra_args, on a Flax model's params."""
    model = linen.Sequential([linen.Dense(8), linen.relu, linen.Dense(2)])
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    optimizer = optax.chain(optax.clip_by_global_norm(10.0), ms.idbd(0.01, 0.05))
    opt_state = optimizer.init(params)
    xs = jax.random.normal(jax.random.PRNGKey(1), (200, 4, 4))
    ys = jnp.stack([xs[..., 0] - xs[..., 1], xs[..., 2] * 0.5], axis=-1)

    def step(carry, batch):
        params, opt_state = carry
        loss, _, grads, extra = ms.deep.extra_args(
            model.apply, params, batch, curvature="gauss_newton", key=jax.random.PRNGKey(2)
        )
        updates, opt_state = optimizer.update(grads, opt_state, params, **extra)
        return (optax.apply_updates(params, updates), opt_state), loss

    (_, opt_state), losses = jax.jit(lambda c: jax.lax.scan(step, c, (xs, ys)))((params, opt_state))
    assert losses[-20:].mean() < 0.2 * losses[:20].mean()
    step_sizes = ms.step_sizes(opt_state)
    assert jax.tree.structure(step_sizes) == jax.tree.structure(params)


def test_autostep_bound_is_per_output_unit_over_its_fan_in(x64):
    """In a network, Autostep's ``M = max(Σ_i α_ij c_ij, 1)`` is taken per output unit ``j`` of a
    kernel (its column, the fan-in) with ``unit_axes="fan_in"``; a bias is its own unit."""
    model = ms.deep.mlp((6, 4, 3))
    initial = 0.3
    method = ms.autostep(0.0, initial, unit_axes="fan_in")

    @jax.jit
    def first_step(key):
        keys = jax.random.split(key, 3)
        params = model.init(keys[0])
        batch = (jax.random.normal(keys[1], (1, 6)), jnp.ones((1, 3)))
        _, _, grads, extra = ms.deep.extra_args(model.apply, params, batch, key=keys[2])
        _, state = method.update(grads, method.init(params), params, **extra)
        return state.step_sizes, extra["curvature"]

    step_sizes, curvature = first_step(jax.random.PRNGKey(0))
    for alpha, c in zip(step_sizes, curvature):
        column_sums = jnp.sum(initial * c["kernel"], axis=0, keepdims=True)
        expected = jnp.broadcast_to(initial / jnp.maximum(column_sums, 1.0), c["kernel"].shape)
        np.testing.assert_allclose(alpha["kernel"], expected, rtol=1e-12)
        np.testing.assert_allclose(alpha["bias"], initial / jnp.maximum(initial * c["bias"], 1.0))
    # The case the bound is there for: some columns bound, some not.
    sums = jnp.sum(initial * curvature[0]["kernel"], axis=0)
    assert jnp.any(sums > 1.0) and jnp.any(sums < 1.0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="method"):
        ms.deep.DeepLearner(ms.deep.mlp((2, 1)), "idbd")
    with pytest.raises(ValueError, match="loss"):
        ms.deep.DeepLearner(ms.deep.mlp((2, 1)), ms.idbd(), loss="hinge")
    with pytest.raises(ValueError, match="curvature"):
        ms.deep.DeepLearner(ms.deep.mlp((2, 1)), ms.idbd(), curvature="fisher")
    with pytest.raises(ValueError, match="input_shape"):
        ms.deep.DeepLearner(linen.Dense(1), ms.idbd())
    with pytest.raises(ValueError, match="sizes"):
        ms.deep.mlp((3,))


def test_classifier_rejects_real_targets_and_labels_outside_its_logits():
    learner = ms.deep.DeepLearner(ms.deep.mlp((6, 4, 3)), ms.sgd(0.01), loss="cross_entropy",
                                  curvature="none")
    xs = np.random.default_rng(0).normal(size=(5, 6))
    # Real-valued targets were truncated to labels; labels past the logits read as divergence.
    with pytest.raises(ValueError, match="`ys` must hold integer class labels"):
        ms.run_arrays(learner, xs, np.array([0.0, 1.7, 2.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"`ys` holds labels outside \[0, 3\).*: 3 first"):
        ms.run_arrays(learner, xs, np.array([0, 1, 3, 0, 1]))
    with pytest.raises(ValueError, match="`y` must hold integer class labels"):
        learner.step(learner.init(), jnp.ones(6), jnp.array(1.5))
    blobs = labelled_blobs(num_classes=5)
    five_classes = Problem("blobs", 6, {"num_classes": 5}, blobs.init, blobs.generate)
    with pytest.raises(ValueError, match="`problem` 'blobs' has 5 classes but the model gives 3"):
        ms.run(learner, five_classes, steps=10, record_every=10)
    assert learner.num_classes == 3


def test_complex_inputs_and_parameters_are_rejected():
    learner = ms.deep.DeepLearner(linear_unit(2), ms.sgd(0.01))
    with pytest.raises(ValueError, match="`xs` must hold real numbers"):
        ms.run_arrays(learner, np.ones((3, 2)) * (1 + 1j), np.ones(3))
    with pytest.raises(ValueError, match="`x` must hold real numbers"):
        learner.step(learner.init(), jnp.ones(2, jnp.complex64), jnp.array(1.0))
    complex_unit = Model(lambda key: jnp.zeros((2,), jnp.complex64), lambda w, x: x @ w, (2,))
    with pytest.raises(ValueError, match="`model` parameters must be real floating point"):
        ms.deep.DeepLearner(complex_unit, ms.sgd(0.01))


def test_the_default_method_is_normalized_idbd_at_its_defaults():
    """No method given: the library's recommended default, ms.normalized_idbd()."""
    model = ms.deep.mlp((3, 4, 1))
    default, explicit = ms.deep.DeepLearner(model), ms.deep.DeepLearner(model, ms.normalized_idbd())
    key = jax.random.PRNGKey(0)
    state, other = default.init(key), explicit.init(key)
    x, y = jnp.asarray([0.5, -1.0, 2.0]), jnp.asarray(1.5)
    default_step, explicit_step = jax.jit(default.step), jax.jit(explicit.step)
    for _ in range(3):
        state, output = default_step(state, x, y)
        other, expected = explicit_step(other, x, y)
        np.testing.assert_array_equal(output.prediction, expected.prediction)
    assert isinstance(state.opt_state, ms.methods.NormalizedIDBDState)
