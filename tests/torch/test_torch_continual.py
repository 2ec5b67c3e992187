"""A PyTorch port of a continual benchmark, slowly-changing regression (Dohare et al. 2024;
docs/problems.md#slowly_changing_regression), trained with metastep.torch, learns as the JAX
experiment does.

The port is written from the problem's definition, in PyTorch only (its own random draws): the
target network of linear threshold units, the slow bits redrawn at each task boundary, the fast
bits drawn each step, and the paper's 21-5-1 ReLU learner initialized as ``ms.deep.mlp`` (He
normal weights, zero biases). SGD (``torch.optim.SGD`` against ``ms.sgd``) checks the port of the
stream; IDBD (``mst.IDBD`` against ``ms.idbd``, Gauss-Newton curvature) the front.

Learning curves vary a lot from seed to seed (the mean error of tasks 2-10 at the quick budget
has a standard deviation of 0.1-0.2 over seeds), so curves over a few seeds can show neither
a port right nor a port wrong. The fast tests therefore check each part of the port on its own,
where a mistake cannot hide in seed noise: the target network's thresholds and outputs equal the
JAX problem's on the same weights, the stream's bits and the learner's initial weights are drawn
from the definition's distributions, and the training loop (loss, update, the error measured
before the update) equals ``ms.deep.DeepLearner`` step by step on the same data and weights. The
slow test compares the learning curves themselves, within seed noise."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep as ms
from metastep.problems.slowly_changing_regression import ltu_network, ltu_network_output

torch = pytest.importorskip("torch")
mst = pytest.importorskip("metastep.torch")

NUM_SLOW, NUM_FAST, NUM_TARGET_UNITS, BETA = 15, 5, 100, 0.7
NUM_BITS = NUM_SLOW + NUM_FAST
SIZES = (NUM_BITS + 1, 5, 1)
SLOW_PERIOD, TASKS, SEEDS = 1_000, 8, 6
# (name, JAX method, torch optimizer, curvature source): the same hyperparameters.
METHODS = [
    ("sgd", lambda: ms.sgd(0.01), lambda p: torch.optim.SGD(p, lr=0.01), "none"),
    ("idbd", lambda: ms.idbd(0.01, 0.01), lambda p: mst.IDBD(p, 0.01, 0.01), "gauss_newton"),
]


# ---------------------------------------------------------------------------------------------
# The port: stream and learner in PyTorch only


class TargetNetwork(NamedTuple):
    input_weights: torch.Tensor  # [k, m + 1] ±1; the last column is the units' bias
    thresholds: torch.Tensor  # [k]
    output_weights: torch.Tensor  # [k] ±1
    output_bias: torch.Tensor  # [] ±1


def signs(generator, *shape):
    return 2.0 * torch.randint(0, 2, shape, generator=generator, dtype=torch.float64) - 1.0


def bits(generator, count):
    return torch.randint(0, 2, (count,), generator=generator).to(torch.float64)


def thresholds(input_weights):
    """``θ_i = β (m + 1) − S_i``, ``S_i = (m − Σ_{j<m} V_ij + b_i) / 2`` (Dohare et al.'s code)."""
    negatives = (NUM_BITS - input_weights[:, :NUM_BITS].sum(dim=1) + input_weights[:, -1]) / 2
    return BETA * (NUM_BITS + 1) - negatives


def target_network(generator):
    """±1 weights, each +1 with probability 1/2, and their thresholds."""
    input_weights = signs(generator, NUM_TARGET_UNITS, NUM_BITS + 1)
    output_weights, output_bias = signs(generator, NUM_TARGET_UNITS), signs(generator)
    return TargetNetwork(input_weights, thresholds(input_weights), output_weights, output_bias)


def target_output(network, x):
    """``y* = Σ_i u_i 1[Σ_j V_ij x_j > θ_i] + c`` of inputs ``x`` [..., m + 1]."""
    fired = (x @ network.input_weights.T > network.thresholds).to(torch.float64)
    return fired @ network.output_weights + network.output_bias


def stream(seed, steps, slow_period):
    """``(x [1, m + 1], y* [1])`` for ``steps`` steps, the slow bits redrawn every
    ``slow_period`` steps (a task)."""
    generator = torch.Generator().manual_seed(seed)
    network = target_network(generator)
    for t in range(steps):
        if t % slow_period == 0:
            slow = bits(generator, NUM_SLOW)
        x = torch.cat([slow, bits(generator, NUM_FAST), torch.ones(1, dtype=torch.float64)])
        yield x[None], target_output(network, x)[None]


def learner(seed):
    """21-5-1 ReLU, He normal weights (variance 2 / fan-in) and zero biases."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        linear = torch.nn.Linear(fan_in, fan_out, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.randn(fan_out, fan_in, generator=generator,
                                            dtype=torch.float64) * (2.0 / fan_in) ** 0.5)
            linear.bias.zero_()
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def online_errors(model, make_optimizer, source, samples):
    """The squared error of each step's prediction, made before that step's update."""
    optimizer = make_optimizer(model.parameters())
    curvature = mst.Curvature(model, source=source)
    errors = []
    for x, y in samples:
        optimizer.zero_grad()
        _, diagonal = curvature(x, y)
        errors.append((y - curvature.outputs.reshape(1)).item() ** 2)
        optimizer.step(**({} if source == "none" else {"curvature": diagonal}))
    return np.array(errors)


def torch_task_errors(make_optimizer, source, seed, slow_period=SLOW_PERIOD, tasks=TASKS):
    """The mean online squared error (before each update) of each task."""
    errors = online_errors(learner(seed), make_optimizer, source,
                           stream(seed, slow_period * tasks, slow_period))
    return errors.reshape(tasks, slow_period).mean(axis=1)


# ---------------------------------------------------------------------------------------------
# The JAX experiment's side


def jax_learner(method, source):
    return ms.deep.DeepLearner(ms.deep.mlp(SIZES), method, curvature=source)


def jax_problem(slow_period):
    return ms.problems.slowly_changing_regression("redraw", NUM_SLOW, NUM_FAST, slow_period,
                                                  NUM_TARGET_UNITS, BETA)


def jax_task_errors(method, source, seed, slow_period=SLOW_PERIOD, tasks=TASKS):
    return ms.run(jax_learner(method, source), jax_problem(slow_period), slow_period * tasks,
                  seed, record_every=slow_period, progress=False).squared_error


# ---------------------------------------------------------------------------------------------
# Tests


def binomial_bound(count, probability=0.5, deviations=5.0):
    """``deviations`` standard errors of a frequency over ``count`` draws."""
    return deviations * math.sqrt(probability * (1 - probability) / count)


def test_target_network_is_the_problems(x64):
    # A JAX problem's target network through the port's thresholds and output, on the port's
    # stream and on inputs at the units' firing boundaries (the pattern that a unit's weights
    # select, with its first 0-8 bits changed).
    network = jax.jit(ltu_network, static_argnums=(1, 2))(jax.random.PRNGKey(0), NUM_BITS,
                                                          NUM_TARGET_UNITS, BETA)
    weights = torch.from_numpy(np.array(network.input_weights))
    ported = TargetNetwork(weights, thresholds(weights),
                           torch.from_numpy(np.array(network.output_weights)),
                           torch.from_numpy(np.array(network.output_bias)))
    np.testing.assert_array_equal(ported.thresholds.numpy(), np.asarray(network.thresholds))
    patterns = (weights[:, :NUM_BITS] > 0).to(torch.float64)
    changed = torch.cat([torch.abs(patterns - (torch.arange(NUM_BITS) < count).to(patterns))
                         for count in range(9)])
    near = torch.cat([changed, torch.ones(len(changed), 1, dtype=torch.float64)], dim=1)
    inputs = torch.cat([torch.cat([x for x, _ in stream(0, 300, 100)]), near])
    expected = np.asarray(jax.jit(ltu_network_output)(network, jnp.asarray(inputs.numpy())))
    np.testing.assert_array_equal(target_output(ported, inputs).numpy(), expected)


def test_target_network_draws_signs_with_probability_one_half():
    generator = torch.Generator().manual_seed(0)
    networks = [target_network(generator) for _ in range(20)]
    for field in ("input_weights", "output_weights", "output_bias"):
        values = torch.cat([getattr(n, field).reshape(-1) for n in networks]).numpy()
        assert set(np.unique(values)) == {-1.0, 1.0}, field
        assert abs(np.mean(values > 0) - 0.5) <= binomial_bound(values.size), field


def test_stream_holds_the_slow_bits_and_redraws_them_at_task_boundaries():
    slow_period, tasks, seeds = 20, 30, 4
    for seed in range(seeds):
        samples = list(stream(seed, slow_period * tasks, slow_period))
        x = torch.cat([s[0] for s in samples]).numpy()
        y = torch.cat([s[1] for s in samples]).numpy()
        assert x.shape == (slow_period * tasks, NUM_BITS + 1) and y.shape == (len(x),)
        assert np.all(x[:, -1] == 1.0), "the bias input"
        assert set(np.unique(x[:, :NUM_BITS])) == {0.0, 1.0}
        slow = x[:, :NUM_SLOW].reshape(tasks, slow_period, NUM_SLOW)
        assert np.all(slow == slow[:, :1]), "slow bits held within a task"
        # Each bit is 1 with probability 1/2 (the slow ones drawn once per task); a redrawn
        # slow bit changes at a boundary with probability 1/2, as a fast bit does each step.
        for draws in (slow[:, 0], x[:, NUM_SLOW:NUM_BITS]):
            assert abs(draws.mean() - 0.5) <= binomial_bound(draws.size)
        slow_changes = slow[1:, 0] != slow[:-1, 0]
        assert abs(slow_changes.mean() - 0.5) <= binomial_bound(slow_changes.size)
        fast_changes = np.diff(x[:, NUM_SLOW:NUM_BITS], axis=0) != 0
        assert abs(fast_changes.mean() - 0.5) <= binomial_bound(fast_changes.size)


def test_learner_starts_as_the_deep_mlp():
    # He normal weights: the standardized weights w √(fan_in / 2) of many seeds against N(0, 1)
    # (Kolmogorov-Smirnov at level 0.001; PyTorch's default init, uniform with variance
    # 1 / (3 fan_in), fails it), and zero biases.
    standardized = []
    for seed in range(100):
        for layer in learner(seed)[::2]:
            assert torch.all(layer.bias == 0)
            standardized.append(layer.weight.detach().numpy().ravel()
                                * math.sqrt(layer.in_features / 2))
    values = np.sort(np.concatenate(standardized))
    normal_cdf = torch.special.ndtr(torch.from_numpy(values)).numpy()
    ranks = np.arange(1, len(values) + 1) / len(values)
    distance = max(np.max(ranks - normal_cdf), np.max(normal_cdf - (ranks - 1 / len(values))))
    assert distance <= 1.95 / math.sqrt(len(values)), distance


# IDBD's case is slow (one more compilation): its step is parity-tested in test_torch_parity.py.
@pytest.mark.parametrize("name, jax_method, make_optimizer, source",
                         [METHODS[0], pytest.param(*METHODS[1], marks=pytest.mark.slow)])
def test_training_loop_is_the_deep_learners(x64, name, jax_method, make_optimizer, source):
    # The port's samples and the JAX learner's initial weights in the port's network: the
    # errors of each step (before its update) equal ms.deep.DeepLearner's.
    samples = list(stream(0, 300, 300))
    xs, ys = (torch.cat(arrays).numpy() for arrays in zip(*samples))
    jax_side = jax_learner(jax_method(), source)
    initial = jax.jit(jax_side.init)(jax.random.PRNGKey(2))

    def learn(state, sample):  # the engine's scan, without its records (faster to compile)
        state, output = jax_side.step(state, *sample)
        return state, output.error

    reference = np.asarray(jax.jit(lambda state, xs, ys: jax.lax.scan(
        learn, state, (xs, ys))[1])(initial, xs, ys)) ** 2
    model = learner(0)
    with torch.no_grad():
        for layer, params in zip(model[::2], initial.params):
            layer.weight.copy_(torch.from_numpy(np.array(params["kernel"]).T))
            layer.bias.copy_(torch.from_numpy(np.array(params["bias"])))
    errors = online_errors(model, make_optimizer, source, samples)
    np.testing.assert_allclose(errors, reference, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name, jax_method, make_optimizer, source", METHODS)
def test_port_learns_as_the_jax_experiment(x64, name, jax_method, make_optimizer, source):
    port = np.array([torch_task_errors(make_optimizer, source, seed) for seed in range(SEEDS)])
    reference = np.array([jax_task_errors(jax_method(), source, seed) for seed in range(SEEDS)])
    # Per task, and over the tasks after the first: within 4 standard errors of the difference.
    for errors in (lambda a: a, lambda a: a[:, 1:].mean(axis=1, keepdims=True)):
        difference = errors(port).mean(axis=0) - errors(reference).mean(axis=0)
        noise = np.sqrt((errors(port).var(axis=0, ddof=1) + errors(reference).var(axis=0, ddof=1))
                        / SEEDS)
        assert np.all(np.abs(difference) <= 4 * noise), (name, difference, noise)
