"""``mst.NormalizedIDBD`` beyond the shared tables: the JAX method's hyperparameters and defaults,
its fan-in on PyTorch's ``[out, in, ...]`` layout, and its two implementations (multi-tensor and
one tensor at a time) giving the same numbers."""

import inspect

import numpy as np
import pytest

import metastep as ms
from metastep.methods.normalized_idbd import fan_in as jax_fan_in

torch = pytest.importorskip("torch")
mst = pytest.importorskip("metastep.torch")
from metastep.torch.normalized_idbd import fan_in  # noqa: E402  (needs torch)


def test_hyperparameters_and_defaults_are_the_jax_methods():
    jax_parameters = inspect.signature(ms.normalized_idbd).parameters
    torch_parameters = dict(inspect.signature(mst.NormalizedIDBD).parameters)
    assert list(torch_parameters)[0] == "params" and list(torch_parameters)[-1] == "foreach"
    del torch_parameters["params"], torch_parameters["foreach"]
    assert list(torch_parameters) == list(jax_parameters)
    for name, parameter in jax_parameters.items():
        assert torch_parameters[name].default == parameter.default, name
        assert torch_parameters[name].kind == parameter.kind, name


# A PyTorch parameter's shape and the permutation that gives the JAX array of the same layer.
LAYERS = {
    "linear weight [out, in]": ((5, 3), (1, 0)),
    "conv weight [out, in, h, w]": ((4, 2, 3, 5), (2, 3, 1, 0)),
    "bias": ((5,), (0,)),
    "scalar": ((), ()),
}


@pytest.mark.parametrize("normalize_gradients", [True, False])
def test_initial_step_sizes_follow_the_jax_fan_in_of_the_same_layer(normalize_gradients):
    """``κ / fan_in``, as ``ms.normalized_idbd`` sets it for the JAX array of the same layer
    (the MLP parity tests check the whole run with the weights transposed across)."""
    params = [torch.zeros(shape, dtype=torch.float64) for shape, _ in LAYERS.values()]
    optimizer = mst.NormalizedIDBD(params, unit_step_size=0.6,
                                   normalize_gradients=normalize_gradients)
    scale = 1.0 / np.sqrt(1e-8) if normalize_gradients else 1.0
    for (shape, axes), actual in zip(LAYERS.values(), mst.step_sizes(optimizer)):
        jax_shape = tuple(shape[axis] for axis in axes)
        expected = np.full(shape, 0.6 / jax_fan_in(jax_shape) * scale)
        np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-15)
    # The linear weight's fan-in is its input size (3), not its output size (5).
    assert mst.step_sizes(optimizer)[0][0, 0] == pytest.approx(0.6 / 3 * scale)


def test_fan_in_is_the_axes_but_the_first():
    assert [fan_in(shape) for shape, _ in LAYERS.values()] == [3, 2 * 3 * 5, 5, 1]


def train(dtype, normalize_gradients, foreach, steps=8):
    """A 3-4-1 tanh MLP trained online with squared loss and Gauss-Newton curvature; its
    parameters and step sizes at the end."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4, dtype=dtype), torch.nn.Tanh(),
                                torch.nn.Linear(4, 1, dtype=dtype))
    optimizer = mst.NormalizedIDBD(model.parameters(), 0.1, normalize_gradients=normalize_gradients,
                                   meta_normalizer_rate=0.3, foreach=foreach)
    curvature = mst.Curvature(model)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(1, 3, generator=generator, dtype=dtype)
        optimizer.zero_grad()
        optimizer.step(curvature=curvature(x, torch.sin(x.sum(dim=1, keepdim=True)))[1])
    return list(model.parameters()), mst.step_sizes(optimizer)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("normalize_gradients", [True, False])
def test_multi_tensor_and_one_tensor_steps_are_equal(dtype, normalize_gradients):
    params, step_sizes = train(dtype, normalize_gradients, foreach=None)
    for foreach in (True, False):
        other_params, other_step_sizes = train(dtype, normalize_gradients, foreach)
        for a, b in zip(params + step_sizes, other_params + other_step_sizes):
            assert torch.equal(a, b)
    initial_step_sizes = mst.step_sizes(mst.NormalizedIDBD(
        params, normalize_gradients=normalize_gradients))
    assert all(not torch.equal(a, b) for a, b in zip(step_sizes, initial_step_sizes))  # learned


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_foreach_rsqrt_is_torch_rsqrt_bit_for_bit(dtype):
    """The fast ``1 / sqrt`` of the normalizers (``x ** -0.5`` in float32 and float64) gives
    ``torch.rsqrt``'s values exactly, subnormal, zero, infinite and negative inputs included."""
    from metastep.torch._optimizer import foreach_rsqrt_

    info = torch.finfo(dtype)
    magnitudes = torch.logspace(np.log10(info.tiny) - 6, np.log10(info.max), 20_001,
                                dtype=torch.float64)
    special = torch.tensor([0.0, -0.0, float("inf"), -1.0, float("nan")], dtype=torch.float64)
    values = torch.cat([magnitudes, special]).to(dtype)
    tensors = [values.clone(), values[:7].clone().reshape(7, 1)]
    foreach_rsqrt_(tensors)
    for actual, given in zip(tensors, (values, values[:7].reshape(7, 1))):
        expected = torch.rsqrt(given)
        assert torch.equal(actual.isnan(), expected.isnan())
        assert torch.equal(actual.nan_to_num(), expected.nan_to_num())


@pytest.mark.parametrize("foreach", [True, False])
def test_counts_as_numbers_and_as_tensors_give_the_same_steps(monkeypatch, foreach):
    """On a CPU (not compiled) the bias corrections are numbers; elsewhere (other devices,
    ``torch.compile``) one-element tensors: the same steps to rounding."""
    from metastep.torch import normalized_idbd

    kinds, step_terms = [], normalized_idbd._step_terms
    monkeypatch.setattr(normalized_idbd, "_step_terms", lambda group, counts, dtype: (
        kinds.append(type(counts[0])), step_terms(group, counts, dtype))[1])
    with_numbers = train(torch.float64, True, foreach, steps=12)
    assert set(kinds) == {int}
    kinds.clear()
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with_tensors = train(torch.float64, True, foreach, steps=12)
    assert set(kinds) == {torch.Tensor}
    for a, b in zip(with_numbers[0] + with_numbers[1], with_tensors[0] + with_tensors[1]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
