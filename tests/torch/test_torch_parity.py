"""Parity: every optimizer of metastep.torch equals its JAX method step by step in float64, on a
linear unit (against ``ms.LinearLearner`` through ``ms.run_arrays``) and on a small MLP (against
``ms.deep.DeepLearner``, the weights copied across): predictions and step sizes to 1e-9 relative.

The fast test runs one configuration per optimizer for 200 steps; the slow ones run every
configuration for 1,000 steps on both models."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close

import metastep as ms
from metastep.deep import Model

torch = pytest.importorskip("torch")
mst = pytest.importorskip("metastep.torch")
from torch_mlp import tanh_mlp  # noqa: E402  (needs torch)

# name: (JAX method, torch optimizer on a list of parameters), the same hyperparameters.
FAST_CASES = {
    "idbd": (lambda: ms.idbd(0.01, 0.05), lambda p: mst.IDBD(p, 0.01, 0.05)),
    "autostep": (lambda: ms.autostep(0.01, 0.05), lambda p: mst.Autostep(p, 0.01, 0.05)),
    "sgd_hd_tensor": (
        lambda: ms.hypergradient(2e-5, 1e-2, "tensor"),
        lambda p: mst.SGDHD(p, 2e-5, 1e-2, "tensor"),
    ),
    "adam_hd_weight": (
        lambda: ms.adam_hypergradient(1e-4, 1e-2, granularity="weight"),
        lambda p: mst.AdamHD(p, 1e-4, 1e-2, granularity="weight"),
    ),
    "delta_delta": (lambda: ms.delta_delta(), lambda p: mst.DeltaDelta(p)),
    "smd_scalar": (
        lambda: ms.smd(0.01, 0.05, 0.9, granularity="scalar"),
        lambda p: mst.SMD(p, 0.01, 0.05, 0.9, granularity="scalar"),
    ),
    "metaoptimize_adamw": (
        lambda: ms.metaoptimize("adamw", "adam", 1e-2, 1e-2, discount=0.9, weight_decay=1e-2),
        lambda p: mst.MetaOptimize(p, "adamw", "adam", 1e-2, 1e-2, discount=0.9,
                                   weight_decay=1e-2),
    ),
    "normalized_idbd": (lambda: ms.normalized_idbd(0.03),
                        lambda p: mst.NormalizedIDBD(p, 0.03)),
}
MORE_CASES = {
    "idbd_scalar_bounded": (
        lambda: ms.idbd(0.05, 0.05, granularity="scalar", min_log_step_size=-4.0,
                        max_log_step_size_change=0.01),
        lambda p: mst.IDBD(p, 0.05, 0.05, granularity="scalar", min_log_step_size=-4.0,
                           max_log_step_size_change=0.01),
    ),
    "idbd_tensor": (
        lambda: ms.idbd(0.01, 0.05, granularity="tensor"),
        lambda p: mst.IDBD(p, 0.01, 0.05, granularity="tensor"),
    ),
    "autostep_fan_in": (
        lambda: ms.autostep(0.05, 0.5, 100.0, unit_axes="fan_in"),
        lambda p: mst.Autostep(p, 0.05, 0.5, 100.0, unit_axes="fan_in"),
    ),
    "normalized_idbd_plain_gradients": (
        lambda: ms.normalized_idbd(0.03, normalize_gradients=False),
        lambda p: mst.NormalizedIDBD(p, 0.03, normalize_gradients=False),
    ),
    "normalized_idbd_one_tensor_at_a_time": (
        lambda: ms.normalized_idbd(0.03, initial_step_size=0.02, gradient_normalizer_rate=0.01,
                                   meta_normalizer_rate=0.1),
        lambda p: mst.NormalizedIDBD(p, 0.03, initial_step_size=0.02,
                                     gradient_normalizer_rate=0.01, meta_normalizer_rate=0.1,
                                     foreach=False),
    ),
    "sgd_hd": (lambda: ms.hypergradient(1e-5, 1e-2), lambda p: mst.SGDHD(p, 1e-5, 1e-2)),
    "sgd_hd_floor": (
        lambda: ms.hypergradient(1e-4, 1e-2, "weight", min_step_size=8e-3),
        lambda p: mst.SGDHD(p, 1e-4, 1e-2, "weight", min_step_size=8e-3),
    ),
    "adam_hd": (
        lambda: ms.adam_hypergradient(1e-5, 1e-2, 0.2, 0.01, 1e-6),
        lambda p: mst.AdamHD(p, 1e-5, 1e-2, 0.2, 0.01, 1e-6),
    ),
    "adam_hd_tensor": (
        lambda: ms.adam_hypergradient(1e-5, 1e-2, granularity="tensor"),
        lambda p: mst.AdamHD(p, 1e-5, 1e-2, granularity="tensor"),
    ),
    "smd": (lambda: ms.smd(0.01, 0.05, 1.0, 0.5), lambda p: mst.SMD(p, 0.01, 0.05, 1.0, 0.5)),
    "smd_tensor": (
        lambda: ms.smd(0.01, 0.05, 0.9, granularity="tensor"),
        lambda p: mst.SMD(p, 0.01, 0.05, 0.9, granularity="tensor"),
    ),
    **{
        f"metaoptimize_{base}_{meta}_{granularity}": (
            lambda b=base, m=meta, g=granularity: ms.metaoptimize(b, m, 1e-3, 1e-2,
                                                                  granularity=g),
            lambda p, b=base, m=meta, g=granularity: mst.MetaOptimize(p, b, m, 1e-3, 1e-2,
                                                                      granularity=g),
        )
        for base, meta, granularity in [
            ("adam", "adam", "scalar"), ("sgd", "sgd", "weight"),
            ("sgd_momentum", "lion", "tensor"), ("rmsprop", "adam", "weight"),
            ("lion", "sgd", "scalar"), ("adam", "lion", "weight"),
        ]
    },
    "metaoptimize_nesterov": (
        lambda: ms.metaoptimize("sgd_momentum", "adam", 1e-2, 1e-2,
                                base_options={"decay": 0.8, "nesterov": True}),
        lambda p: mst.MetaOptimize(p, "sgd_momentum", "adam", 1e-2, 1e-2,
                                   base_options={"decay": 0.8, "nesterov": True}),
    ),
}
ALL_CASES = {**FAST_CASES, **MORE_CASES}


def test_every_optimizer_has_a_fast_case():
    names = {type(make([torch.zeros(1)])).__name__ for _, make in FAST_CASES.values()}
    assert names == set(mst.__all__) - {"Curvature", "MetaStepOptimizer", "step_sizes"}


def run_torch_linear(make_optimizer, xs, ys):
    """A linear unit ``y = w·x`` (w from 0) trained by the torch optimizer: the gradient
    ``−δ x``, the curvature ``x²`` and the product ``x (x·v)``, as ``ms.LinearLearner``."""
    weights = torch.zeros(xs.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([weights])
    predictions, step_sizes = [], []
    for x, y in zip(torch.from_numpy(xs), torch.from_numpy(ys)):
        prediction = (weights.detach() * x).sum()
        weights.grad = -(y - prediction) * x
        optimizer.step(curvature=[x * x],
                       curvature_vector_product=lambda v, x=x: [x * (x * v[0]).sum()])
        predictions.append(prediction.item())
        step_sizes.append(mst.step_sizes(optimizer)[0].numpy())
    return np.array(predictions), np.array(step_sizes)


def check_linear_parity(name, xs, ys):
    jax_method, make_optimizer = ALL_CASES[name]
    reference = ms.run_arrays(ms.LinearLearner(jax_method(), xs.shape[1]), xs, ys)
    assert reference.diverged is False
    predictions, step_sizes = run_torch_linear(make_optimizer, xs, ys)
    assert np.ptp(reference.step_sizes) > 1e-4 * np.abs(reference.step_sizes).max()  # it learns
    assert_close(predictions, reference.predictions)
    assert_close(step_sizes, reference.step_sizes)


@pytest.mark.parametrize("name", list(FAST_CASES))
def test_linear_unit_matches_jax_200_steps(x64, nonstationary_data, name):
    check_linear_parity(name, *nonstationary_data(steps=200))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ALL_CASES))
def test_linear_unit_matches_jax_1000_steps(x64, nonstationary_data, name):
    check_linear_parity(name, *nonstationary_data(steps=1000))


SIZES = (3, 5, 1)


def mlp_params():
    """The torch MLP's weights ``[out, in]`` and biases, drawn once by NumPy (float64)."""
    rng = np.random.default_rng(0)
    return [(0.5 * rng.normal(size=(fan_out, fan_in)), 0.1 * rng.normal(size=fan_out))
            for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:])]


def jax_mlp():
    """``ms.deep.mlp`` with the same weights (kernels ``[in, out]``: the transposes)."""
    model = ms.deep.mlp(SIZES, activation="tanh")
    params = [{"kernel": jnp.asarray(w.T), "bias": jnp.asarray(b)} for w, b in mlp_params()]
    return Model(lambda key: params, model.apply, model.input_shape)


def torch_mlp():
    return tanh_mlp(mlp_params())


def run_torch_mlp(make_optimizer, xs, ys):
    model = torch_mlp()
    optimizer = make_optimizer(model.parameters())
    curvature = mst.Curvature(model, loss="squared", source="gauss_newton")
    predictions, step_sizes = [], []
    for x, y in zip(torch.from_numpy(xs), torch.from_numpy(ys)):
        optimizer.zero_grad()
        _, diagonal = curvature(x[None], y[None])
        optimizer.step(curvature=diagonal, curvature_vector_product=curvature.vector_product)
        predictions.append(curvature.outputs.item())
        step_sizes.append([s.numpy() for s in mst.step_sizes(optimizer)])
    return np.array(predictions), step_sizes


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ALL_CASES))
def test_mlp_matches_deep_learner_1000_steps(x64, nonstationary_data, name):
    jax_method, make_optimizer = ALL_CASES[name]
    xs, ys = nonstationary_data(steps=1000, num_features=SIZES[0])
    ys = np.tanh(ys)
    learner = ms.deep.DeepLearner(jax_mlp(), jax_method(), curvature="gauss_newton")
    reference = ms.run_arrays(learner, xs, ys)
    assert reference.diverged is False
    predictions, step_sizes = run_torch_mlp(make_optimizer, xs, ys)
    assert_close(predictions, reference.predictions)
    for layer, expected in enumerate(reference.step_sizes):
        weights = np.array([sizes[2 * layer] for sizes in step_sizes])
        biases = np.array([sizes[2 * layer + 1] for sizes in step_sizes])
        assert_close(np.swapaxes(weights, 1, 2), expected["kernel"])
        assert_close(biases, expected["bias"])
