"""A PyTorch port of a continual benchmark, slowly-changing regression (Dohare et al. 2024;
docs/problems.md#slowly_changing_regression), trained with metastep.torch, learns as the JAX
experiment does: the online squared error of each task, averaged over seeds, within seed noise.

The port is written from the problem's definition, in PyTorch only (its own random draws): the
target network of linear threshold units, the slow bits redrawn at each task boundary, the fast
bits drawn each step, and the paper's 21-5-1 ReLU learner initialized as ``ms.deep.mlp`` (He
normal weights, zero biases). SGD (``torch.optim.SGD`` against ``ms.sgd``) checks the port of the
stream; IDBD (``mst.IDBD`` against ``ms.idbd``, Gauss-Newton curvature) the front. Both reach an
online error near 1 in a few tasks of 1,000 steps, where predicting 0 would give about 3 (the mean
of y*²), so a wrong port or learner stands out of the noise (a few tenths)."""

import numpy as np
import pytest

import metastep as ms

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


def signs(generator, *shape):
    return 2.0 * torch.randint(0, 2, shape, generator=generator, dtype=torch.float64) - 1.0


def bits(generator, count):
    return torch.randint(0, 2, (count,), generator=generator).to(torch.float64)


def target_network(generator):
    """±1 weights; unit i fires when ``Σ_j V_ij x_j > θ_i``, ``θ_i = β (m + 1) − S_i``."""
    input_weights = signs(generator, NUM_TARGET_UNITS, NUM_BITS + 1)
    output_weights, output_bias = signs(generator, NUM_TARGET_UNITS), signs(generator)
    negatives = (NUM_BITS - input_weights[:, :NUM_BITS].sum(dim=1) + input_weights[:, -1]) / 2
    thresholds = BETA * (NUM_BITS + 1) - negatives

    def target(x):
        fired = (input_weights @ x > thresholds).to(torch.float64)
        return output_weights @ fired + output_bias

    return target


def stream(seed, steps, slow_period):
    """``(x [1, m + 1], y* [1])`` for ``steps`` steps, the slow bits redrawn every
    ``slow_period`` steps (a task)."""
    generator = torch.Generator().manual_seed(seed)
    target = target_network(generator)
    for t in range(steps):
        if t % slow_period == 0:
            slow = bits(generator, NUM_SLOW)
        x = torch.cat([slow, bits(generator, NUM_FAST), torch.ones(1, dtype=torch.float64)])
        yield x[None], target(x)[None]


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


def torch_task_errors(make_optimizer, source, seed, slow_period=SLOW_PERIOD, tasks=TASKS):
    """The mean online squared error (before each update) of each task."""
    model = learner(seed)
    optimizer = make_optimizer(model.parameters())
    curvature = mst.Curvature(model, source=source)
    errors = []
    for x, y in stream(seed, slow_period * tasks, slow_period):
        optimizer.zero_grad()
        _, diagonal = curvature(x, y)
        errors.append((y - curvature.outputs.reshape(1)).item() ** 2)
        optimizer.step(**({} if source == "none" else {"curvature": diagonal}))
    return np.mean(np.reshape(errors, (tasks, slow_period)), axis=1)


def jax_task_errors(method, source, seed, slow_period=SLOW_PERIOD, tasks=TASKS):
    learner = ms.deep.DeepLearner(ms.deep.mlp(SIZES), method, curvature=source)
    problem = ms.problems.slowly_changing_regression("redraw", NUM_SLOW, NUM_FAST, slow_period,
                                                     NUM_TARGET_UNITS, BETA)
    return ms.run(learner, problem, slow_period * tasks, seed, record_every=slow_period,
                  progress=False).squared_error


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
