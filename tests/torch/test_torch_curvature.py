"""``mst.Curvature`` equals ``ms.deep.extra_args`` for each source and loss on the same model and
data: the loss, the gradient, the diagonal curvature (random estimates with the same signs) and
the curvature-vector product, in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep as ms

torch = pytest.importorskip("torch")
mst = pytest.importorskip("metastep.torch")
from torch_mlp import tanh_mlp  # noqa: E402  (needs torch)

SIZES = (3, 5, 2)
BATCH = 4


def layer_arrays():
    rng = np.random.default_rng(3)
    return [(0.7 * rng.normal(size=(fan_out, fan_in)), 0.2 * rng.normal(size=fan_out))
            for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:])]


def torch_model():
    return tanh_mlp(layer_arrays())


def as_torch(tree):
    """A JAX ``ms.deep.mlp`` pytree as tensors in ``model.parameters()`` order."""
    return [torch.from_numpy(np.array(leaf.T if name == "kernel" else leaf))
            for layer in tree for name, leaf in (("kernel", layer["kernel"]),
                                                 ("bias", layer["bias"]))]


def as_jax(tensors):
    return [{"kernel": jnp.asarray(w.numpy().T), "bias": jnp.asarray(b.numpy())}
            for w, b in zip(tensors[::2], tensors[1::2])]


def batch(loss):
    rng = np.random.default_rng(4)
    inputs = rng.normal(size=(BATCH, SIZES[0]))
    if loss == "squared":
        return inputs, rng.normal(size=(BATCH, SIZES[-1]))
    return inputs, rng.integers(0, SIZES[-1], size=BATCH)


def jax_signals(loss, source, params, inputs, targets, vectors):
    """``ms.deep.extra_args`` with its random signs and its product on ``vectors``, compiled as
    one function (op by op, each operation compiles on its own: slower)."""

    @jax.jit
    def signals(params, inputs, targets, vectors):
        key = jax.random.PRNGKey(7)
        value, outputs, grads, extra = ms.deep.extra_args(
            ms.deep.mlp(SIZES, activation="tanh").apply, params, (inputs, targets),
            loss=loss, curvature=source, key=None if source == "none" else key,
        )
        product = extra["curvature_vector_product"](vectors)
        # The signs extra_args draws from the key.
        if source == "gauss_newton":
            signs = jax.random.rademacher(key, outputs.shape, outputs.dtype)
        else:
            leaves, treedef = jax.tree.flatten(params)
            signs = jax.tree.unflatten(treedef, [
                jax.random.rademacher(k, leaf.shape, leaf.dtype)
                for k, leaf in zip(jax.random.split(key, len(leaves)), leaves)
            ])
        return value, outputs, grads, extra.get("curvature"), product, signs

    return signals(params, jnp.asarray(inputs), jnp.asarray(targets), vectors)


# Both losses and both random estimates in the fast cases: the product of "hvp" is that of
# "hutchinson", and "none" is checked without JAX below.
FAST_SIGNALS = [("gauss_newton", "squared"), ("gauss_newton", "cross_entropy"),
                ("hutchinson", "squared")]
SLOW_SIGNALS = [("hutchinson", "cross_entropy"), ("hvp", "squared"), ("hvp", "cross_entropy"),
                ("none", "squared"), ("none", "cross_entropy")]


@pytest.mark.parametrize("source, loss", FAST_SIGNALS + [
    pytest.param(*case, marks=pytest.mark.slow) for case in SLOW_SIGNALS
])
def test_curvature_equals_extra_args(x64, source, loss):
    inputs, targets = batch(loss)
    model = torch_model()
    params = as_jax([p.detach() for p in model.parameters()])
    rng = np.random.default_rng(5)
    vectors = [torch.from_numpy(rng.normal(size=tuple(p.shape))) for p in model.parameters()]
    value, outputs, grads, expected_diagonal, expected_product, signs = jax_signals(
        loss, source, params, inputs, targets, as_jax(vectors)
    )
    signs = torch.from_numpy(np.array(signs)) if source == "gauss_newton" else as_torch(signs)
    curvature = mst.Curvature(model, loss=loss, source=source)
    torch_value, diagonal = curvature(torch.from_numpy(inputs), torch.from_numpy(targets),
                                      signs=signs if source != "none" else None)

    np.testing.assert_allclose(torch_value.item(), float(value), rtol=1e-12)
    np.testing.assert_allclose(curvature.outputs.numpy(), np.asarray(outputs), rtol=1e-12)
    for p, expected in zip(model.parameters(), as_torch(grads)):
        np.testing.assert_allclose(p.grad.numpy(), expected.numpy(), rtol=1e-10, atol=1e-14)
    if source == "hvp":
        assert diagonal is None
    else:
        for actual, expected in zip(diagonal, as_torch(expected_diagonal)):
            np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-10, atol=1e-14)
    for actual, expected in zip(curvature.vector_product(vectors), as_torch(expected_product)):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-10, atol=1e-14)


def test_one_squared_output_is_exact_without_signs(x64):
    """Batch 1, one output: the Gauss-Newton diagonal ``(∂f/∂w)²`` itself, no draw."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4, dtype=torch.float64), torch.nn.Tanh(),
                                torch.nn.Linear(4, 1, dtype=torch.float64))
    inputs = torch.tensor([[0.3, -1.2, 0.8]], dtype=torch.float64)
    _, diagonal = mst.Curvature(model)(inputs, torch.tensor([0.5], dtype=torch.float64))
    jacobian = torch.autograd.grad(model(inputs).sum(), list(model.parameters()))
    for actual, row in zip(diagonal, jacobian):
        torch.testing.assert_close(actual, row * row, rtol=1e-14, atol=0)


def test_none_is_the_gradient_and_zeros():
    inputs, targets = (torch.from_numpy(a) for a in batch("cross_entropy"))
    model, reference = torch_model(), torch_model()
    curvature = mst.Curvature(model, loss="cross_entropy", source="none")
    value, diagonal = curvature(inputs, targets)
    expected = torch.nn.functional.cross_entropy(reference(inputs), targets)
    expected.backward()
    assert value.item() == expected.item()
    for p, q, d, v in zip(model.parameters(), reference.parameters(), diagonal,
                          curvature.vector_product(list(reference.parameters()))):
        assert torch.equal(p.grad, q.grad)
        assert torch.equal(d, torch.zeros_like(p)) and torch.equal(v, torch.zeros_like(p))


def test_generator_makes_the_draw_reproducible():
    model = torch_model()
    inputs, targets = (torch.from_numpy(a) for a in batch("squared"))
    draws = []
    for _ in range(2):
        curvature = mst.Curvature(model, source="hutchinson",
                                  generator=torch.Generator().manual_seed(11))
        draws.append(curvature(inputs, targets)[1])
    for first, second in zip(*draws):
        assert torch.equal(first, second)


def test_gradients_accumulate_as_backward_does():
    """``.grad`` holds the sum over calls, as after ``loss.backward()`` twice."""
    inputs, targets = (torch.from_numpy(a) for a in batch("squared"))
    for source in ("gauss_newton", "hutchinson"):
        model = torch_model()
        curvature = mst.Curvature(model, source=source)
        curvature(inputs, targets)
        once = [p.grad.clone() for p in model.parameters()]
        curvature(inputs, targets)
        for p, single in zip(model.parameters(), once):
            torch.testing.assert_close(p.grad, 2 * single)


def test_frozen_parameters_get_none():
    model = torch_model()
    model[0].bias.requires_grad_(False)
    inputs, targets = (torch.from_numpy(a) for a in batch("squared"))
    curvature = mst.Curvature(model)
    _, diagonal = curvature(inputs, targets)
    assert [d is None for d in diagonal] == [False, True, False, False]
    product = curvature.vector_product([torch.ones_like(p) for p in model.parameters()])
    assert [v is None for v in product] == [False, True, False, False]


@pytest.mark.parametrize("source", ["gauss_newton", "hvp"])
def test_vector_product_runs_the_model_again_only_after_a_parameter_changed(source):
    """The call's graph serves ``vector_product`` at the same parameters; after an update the
    product is the one at the new parameters."""
    inputs, targets = (torch.from_numpy(a) for a in batch("cross_entropy"))
    model, reference = torch_model(), torch_model()
    forward_passes = []
    model.register_forward_hook(lambda *_: forward_passes.append(1))
    curvature = mst.Curvature(model, loss="cross_entropy", source=source)
    vectors = [torch.ones_like(p) for p in model.parameters()]
    for update in (False, True):
        if update:
            with torch.no_grad():
                for p, q in zip(model.parameters(), reference.parameters()):
                    p.mul_(1.5)
                    q.mul_(1.5)
        expected = mst.Curvature(reference, loss="cross_entropy", source=source)
        expected(inputs, targets)
        if not update:
            curvature(inputs, targets)
        for actual, wanted in zip(curvature.vector_product(vectors),
                                  expected.vector_product(vectors)):
            torch.testing.assert_close(actual, wanted, rtol=1e-14, atol=0)
        assert len(forward_passes) == 1 + update


@pytest.mark.parametrize("source", ["gauss_newton", "hutchinson", "none"])
def test_without_the_diagonal_the_rest_is_unchanged(source):
    inputs, targets = (torch.from_numpy(a) for a in batch("squared"))
    signals = []
    for diagonal in (True, False):
        model = torch_model()
        curvature = mst.Curvature(model, source=source, diagonal=diagonal,
                                  generator=torch.Generator().manual_seed(5))
        value, estimate = curvature(inputs, targets)
        assert (estimate is None) == (not diagonal)
        product = curvature.vector_product([torch.ones_like(p) for p in model.parameters()])
        signals.append([value, *(p.grad for p in model.parameters()), *product])
    for with_diagonal, without in zip(*signals):
        torch.testing.assert_close(with_diagonal, without, rtol=1e-14, atol=0)


@pytest.mark.parametrize("arguments, match", [
    ({"loss": "hinge"}, "`loss` must be one of"),
    ({"source": "fisher"}, "`source` must be one of"),
    ({"diagonal": "no"}, "`diagonal` must be True or False"),
])
def test_invalid_arguments_are_named(arguments, match):
    with pytest.raises(ValueError, match=match):
        mst.Curvature(torch_model(), **arguments)


def test_invalid_calls_are_named():
    with pytest.raises(ValueError, match="`model` must be a torch.nn.Module"):
        mst.Curvature(lambda x: x)
    curvature = mst.Curvature(torch_model(), loss="cross_entropy")
    with pytest.raises(ValueError, match="call the Curvature object first"):
        curvature.vector_product([])
    inputs = torch.zeros(BATCH, SIZES[0], dtype=torch.float64)
    with pytest.raises(ValueError, match="`targets` must hold integer class labels"):
        curvature(inputs, torch.zeros(BATCH, dtype=torch.float64))
    with pytest.raises(ValueError, match="`targets` of shape"):
        mst.Curvature(torch_model())(inputs, torch.zeros(BATCH, dtype=torch.float64))
    labels = torch.zeros(BATCH, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"`signs` must have the outputs' shape \(4, 2\)"):
        curvature(inputs, labels, signs=torch.ones(BATCH))
    with pytest.raises(ValueError, match="`signs` must hold one tensor per learned parameter"):
        mst.Curvature(torch_model(), source="hutchinson")(
            inputs, torch.zeros(BATCH, SIZES[-1], dtype=torch.float64), signs=[torch.ones(1)]
        )
    curvature(inputs, labels)
    with pytest.raises(ValueError, match="`vectors` must hold one tensor per parameter"):
        curvature.vector_product([torch.zeros(1)])


@pytest.mark.parametrize("source", ["gauss_newton", "hutchinson"])
def test_a_parameter_the_outputs_do_not_use_gets_zeros(source):
    class WithUnused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used = torch.nn.Linear(3, 2, dtype=torch.float64)
            self.unused = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))

        def forward(self, inputs):
            return torch.tanh(self.used(inputs))

    model = WithUnused()
    inputs, targets = (torch.from_numpy(a) for a in batch("squared"))
    curvature = mst.Curvature(model, source=source)
    _, diagonal = curvature(inputs, targets)
    product = curvature.vector_product([torch.ones_like(p) for p in model.parameters()])
    names = [name for name, _ in model.named_parameters()]
    unused = names.index("unused")
    assert torch.equal(diagonal[unused], torch.zeros(2, dtype=torch.float64))
    assert torch.equal(product[unused], torch.zeros(2, dtype=torch.float64))
    assert diagonal[names.index("used.weight")].abs().sum() > 0
