"""ms.td.DeepTDLearner: stream TD(λ) with ObGD / AdaptiveObGD on a one-hidden-layer network
step by step against a float64 NumPy transcription (forward and backward by hand, the authors'
update per transition), on random non-stationary data with episode ends; its reductions (a
linear model is TDLearner, λ = 0 is TD(0)); stream_mlp's sparse init; ms.sweep; named errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep as ms
from metastep import td
from metastep.deep import Model
from td.td_data import run_td, td_data, transitions

LAMBDA = 0.8
HIDDEN = 8
SPARSITY = 0.5  # 6 inputs: 3 of each unit's input weights cut; 8 hidden: 4 of the output's


def network(num_inputs):
    return td.stream_mlp((num_inputs, HIDDEN, 1), sparsity=SPARSITY)


def forward_backward(params, x):
    """``v(x)`` and its gradient (same order) through linear → LayerNorm → leaky ReLU → linear;
    ``params``: ``[W1, b1, W2, b2]``."""
    w1, b1, w2, b2 = params
    h = x @ w1 + b1
    centred = h - h.mean()
    scale = np.sqrt(np.mean(centred**2) + 1e-5)
    n = centred / scale
    a = np.where(n > 0, n, 0.01 * n)
    value = a @ w2[:, 0] + b2[0]
    dn = w2[:, 0] * np.where(n > 0, 1.0, 0.01)
    dh = (dn - dn.mean() - n * np.mean(dn * n)) / scale
    return value, [np.outer(x, dh), dh, a[:, None], np.ones(1)]


class SampleMeanStd:
    """The authors' running mean and variance (normalization_wrappers.py)."""

    def __init__(self, shape=()):
        self.count, self.mean, self.p, self.var = 0, np.zeros(shape), np.zeros(shape), 1.0

    def update(self, sample):
        count = self.count + 1
        mean = self.mean + (sample - self.mean) / count
        self.p = self.p + (sample - self.mean) * (sample - mean)
        self.count, self.mean = count, mean
        self.var = 1.0 if count < 2 else self.p / (count - 1)


def stream_td_reference(params, xs, rewards, discounts, lam, method, normalize=False,
                        scale_rewards=False, alpha=1.0, kappa=2.0, beta2=0.999, eps=1e-8):
    """The authors' stream TD(λ), one update per transition ``(φ, r, φ', γ)``: both values and
    ∇v(φ) under the current parameters, ∇v(φ) added to the decayed trace (emptied after an
    episode's end), then ObGD, AdaptiveObGD or SGD (step ``alpha``). ``normalize`` and
    ``scale_rewards``: the authors' ``NormalizeObservation`` and ``ScaleReward`` wrappers (the
    prediction scaled back, as their script does). Returns the predictions of ``φ'`` before
    each update."""
    params = [np.array(p, np.float64) for p in params]
    z = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    observations, reward_sums, reward_sum = SampleMeanStd(xs.shape[1]), SampleMeanStd(), 0.0
    previous, predictions = None, []
    for t, (_, gamma_into_phi, x, reward, gamma) in enumerate(
            transitions(xs, rewards, discounts)):
        if normalize:
            observations.update(x)
            x = (x - observations.mean) / np.sqrt(observations.var + 1e-8)
        if scale_rewards and t > 0:
            reward_sum = reward_sum * gamma + reward  # γ = 0: the episode ended
            reward_sums.update(reward_sum)
        scale = np.sqrt(reward_sums.var + 1e-8) if scale_rewards else 1.0
        value_next, _ = forward_backward(params, x)
        predictions.append(value_next * scale)
        if t > 0:  # the stream's first step has no previous state: no transition
            value, gradient = forward_backward(params, previous)
            delta = reward / scale + gamma * value_next - value
            z = [gamma_into_phi * lam * e + g for e, g in zip(z, gradient)]
            scales = [np.ones_like(e) for e in z]
            if method == "sgd":
                step = alpha
            else:
                if method == "adaptive_obgd":
                    v = [beta2 * m + (1 - beta2) * (delta * e) ** 2 for m, e in zip(v, z)]
                    scales = [1 / np.sqrt(m / (1 - beta2**t) + eps) for m in v]
                z_sum = sum(np.sum(np.abs(e * s)) for e, s in zip(z, scales))
                bound = max(abs(delta), 1.0) * z_sum * alpha * kappa
                step = alpha / bound if bound > 1 else alpha
            params = [p + step * s * delta * e for p, s, e in zip(params, scales, z)]
        previous = x
    return np.array(predictions)


def initial_params(learner):
    """The learner's initial params (``init()``'s, as run_td's) as ``[W1, b1, W2, b2]``."""
    params = learner.init().params
    return [np.asarray(layer[name]) for layer in params for name in ("kernel", "bias")]


def assert_close(actual, expected, tolerance=1e-9):
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("method, normalize", [("obgd", False), ("adaptive_obgd", True)])
def test_stream_td_matches_the_numpy_transcription(x64, method, normalize):
    """ObGD alone; AdaptiveObGD with both normalizations."""
    data = td_data(seed=21)
    methods = {"obgd": td.obgd(), "adaptive_obgd": td.adaptive_obgd(0.3)}
    alpha = {"obgd": 1.0, "adaptive_obgd": 0.3}[method]
    learner = td.DeepTDLearner(network(data[0].shape[1]), methods[method], discount=0.9,
                               trace_decay=LAMBDA, normalize_observations=normalize,
                               scale_rewards=normalize)
    predictions, _, _ = run_td(learner, *data)
    expected = stream_td_reference(initial_params(learner), *data, LAMBDA, method,
                                   normalize=normalize, scale_rewards=normalize, alpha=alpha)
    assert_close(predictions, expected)
    assert np.std(predictions) > 0.1  # the network moved


def test_lambda_zero_is_td0(x64):
    data = td_data(seed=22, steps=1000)
    learner = td.DeepTDLearner(network(data[0].shape[1]), ms.sgd(0.05), 0.9, trace_decay=0.0)
    predictions, _, _ = run_td(learner, *data)
    assert_close(predictions, stream_td_reference(initial_params(learner), *data, 0.0, "sgd",
                                                  alpha=0.05))


def linear_model(num_inputs):
    """``v(x) = θ·x`` from θ = 0: TDLearner's value function as a network."""
    return Model(lambda key: jnp.zeros(num_inputs), lambda params, inputs: inputs @ params,
                 (num_inputs,))


@pytest.mark.parametrize("make_method", [
    lambda: ms.sgd(0.05), lambda: td.obgd(0.5), lambda: ms.idbd(0.05, 0.05),
    lambda: td.tidbd(0.05, 0.05, "full_gradient"),
], ids=["sgd", "obgd", "idbd-curvature", "tidbd-features"])
def test_a_linear_model_is_td_learner(x64, make_method):
    """Also the side signals: IDBD reads the curvature (∇v(x_{t−1}) ⊙ z = φ z), full-gradient
    TIDBD the features and next features (the value gradients: φ and φ')."""
    data = td_data(seed=23, steps=1000)
    n = data[0].shape[1]
    deep = run_td(td.DeepTDLearner(linear_model(n), make_method(), 0.9, LAMBDA), *data)
    linear = run_td(td.TDLearner(make_method(), n, 0.9, LAMBDA), *data)
    for mine, theirs in zip(deep, linear):  # predictions, TD errors, step sizes
        assert_close(mine, theirs, 1e-12)


def test_stream_mlp_init_is_sparse_uniform_with_zero_biases():
    fan_in, fan_out = 40, 16
    params = td.stream_mlp((fan_in, fan_out, 1), sparsity=0.9).init(jax.random.key(3))
    kernel = np.asarray(params[0]["kernel"])
    # ⌈0.9 × 40⌉ = 36 of each unit's 40 input weights cut, each unit its own.
    np.testing.assert_array_equal((kernel != 0).sum(axis=0), 4)
    assert len({tuple(np.flatnonzero(column)) for column in kernel.T}) > 1
    assert np.abs(kernel).max() <= 1 / math.sqrt(fan_in)
    # The output layer's 16 inputs: ⌈14.4⌉ = 15 cut.
    assert (np.asarray(params[1]["kernel"]) != 0).sum() == 1
    assert all(not np.asarray(layer["bias"]).any() for layer in params)
    dense = td.stream_mlp((fan_in, fan_out, 1), sparsity=0.0).init(jax.random.key(3))
    assert (np.asarray(dense[0]["kernel"]) != 0).all()


RANDOM_WALK = ms.problems.random_walk(19)
RECORD_EVERY = 301  # odd: a single lane's loop is not unrolled, which compiles faster


def make_td(learning_rate):
    return td.DeepTDLearner(td.stream_mlp((19, HIDDEN, 1), sparsity=SPARSITY),
                            ms.sgd(learning_rate), discount=1.0, trace_decay=LAMBDA)


@pytest.mark.slow  # two compilations of a network's program, 3-5 s; the engine's lanes
def test_sweep_lane_equals_the_run_alone_and_divergence_is_per_lane():
    sweep = ms.sweep(make_td, RANDOM_WALK, {"learning_rate": [0.02, 50.0]}, seeds=[0, 5],
                     steps=3 * RECORD_EVERY, record_every=RECORD_EVERY)
    alone = ms.run(make_td(0.02), RANDOM_WALK, steps=3 * RECORD_EVERY, seed=5,
                   record_every=RECORD_EVERY)
    for name in ("value_error", "step_sizes", "log10_step_size_mean"):
        np.testing.assert_allclose(sweep.records[name][0, 1], alone.records[name], rtol=1e-5)
    np.testing.assert_allclose(sweep.squared_error[0, 1], alone.squared_error, rtol=1e-5)
    assert not np.allclose(sweep.records["value_error"][0, 0], alone.records["value_error"])
    # α = 50 blows up on both seeds, α = 0.02 on neither.
    np.testing.assert_array_equal(sweep.diverged, [[False, False], [True, True]])
    # The step sizes, one per weight, and their statistics per parameter array.
    learner = make_td(0.02)
    assert alone.records["step_sizes"].shape == (3, sum(learner.layer_sizes))
    np.testing.assert_allclose(alone.records["step_sizes"], 0.02)
    assert alone.records["log10_step_size_mean"].shape == (3, len(learner.layer_names))


@pytest.mark.parametrize("arguments, name", [
    ({"trace_decay": 1.5}, "trace_decay"), ({"trace_decay": -0.1}, "trace_decay"),
    ({"discount": 1.01}, "discount"), ({"discount": float("nan")}, "discount"),
    ({"method": "sgd"}, "method"), ({"normalize_observations": 1}, "normalize_observations"),
    ({"scale_rewards": None}, "scale_rewards"),
    ({"model": ms.deep.mlp((3, 4, 2))}, "model"),
])
def test_bad_learner_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        td.DeepTDLearner(**{"model": network(3), "method": td.obgd(), "discount": 0.9,
                            "trace_decay": 0.5, **arguments})


@pytest.mark.parametrize("arguments, name", [
    ({"sizes": (3, 4, 2)}, "sizes"), ({"sizes": (3,)}, "sizes"), ({"sparsity": 1.0}, "sparsity"),
    ({"sparsity": -0.1}, "sparsity"), ({"activation": "gelu"}, "activation"),
])
def test_bad_network_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        td.stream_mlp(**{"sizes": (3, 4, 1), **arguments})


def test_bad_data_is_named():
    learner = td.DeepTDLearner(network(3), td.obgd(), discount=0.9, trace_decay=0.5)
    with pytest.raises(ValueError, match="`x` must have shape"):
        learner.step(learner.init(), jnp.ones(2), jnp.ones(()))
    with pytest.raises(ValueError, match="`y` must be a scalar reward"):
        learner.step(learner.init(), jnp.ones(3), jnp.ones(2))
    with pytest.raises(ValueError, match="`ys` holds non-finite"):
        ms.run_arrays(learner, np.ones((4, 3)), np.array([0.0, np.nan, 1.0, 0.0]))
    with pytest.raises(ValueError, match="`discount`"):
        ms.run(td.DeepTDLearner(network(19), td.obgd(), 0.9, 0.5), RANDOM_WALK, steps=10,
               record_every=10)
