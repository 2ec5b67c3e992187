"""The ``torch.optim.Optimizer`` contract of every metastep.torch optimizer: param groups with
their own hyperparameters, ``state_dict`` round trips that continue bit for bit, parameters
without a gradient, closures, dtypes, and clear errors naming the argument."""

import ast
import re
import copy
import io
import subprocess
import sys
from pathlib import Path

import pytest

import metastep

torch = pytest.importorskip("torch")
mst = pytest.importorskip("metastep.torch")

# name: (optimizer, its hyperparameters, a hyperparameter that groups vary and two values of it).
CONFIGURATIONS = {
    "idbd": (mst.IDBD, {"meta_step_size": 0.05}, "meta_step_size", (0.05, 0.01)),
    "idbd_scalar": (mst.IDBD, {"meta_step_size": 0.05, "granularity": "scalar"},
                    "initial_step_size", (0.05, 0.02)),
    "autostep": (mst.Autostep, {"meta_step_size": 0.05, "initial_step_size": 0.1}, "tau",
                 (1e4, 10.0)),
    "sgd_hd": (mst.SGDHD, {"initial_step_size": 0.05}, "initial_step_size", (0.05, 0.02)),
    "adam_hd": (mst.AdamHD, {"meta_step_size": 1e-4, "initial_step_size": 0.01,
                             "granularity": "tensor"}, "eps", (1e-8, 1e-4)),
    "delta_delta": (mst.DeltaDelta, {"meta_step_size": 0.5, "initial_step_size": 0.05},
                    "min_step_size", (1e-6, 0.03)),
    "smd": (mst.SMD, {"meta_step_size": 0.05, "decay": 0.9}, "decay", (0.9, 0.5)),
    "metaoptimize": (mst.MetaOptimize, {"meta_step_size": 1e-2}, "base", ("adam", "lion")),
    "normalized_idbd": (mst.NormalizedIDBD, {"meta_step_size": 0.03}, "normalize_gradients",
                        (True, False)),
    "normalized_idbd_one_tensor_at_a_time": (
        mst.NormalizedIDBD, {"meta_step_size": 0.03, "foreach": False}, "unit_step_size",
        (0.1, 0.3)),
}
OPTIMIZERS = {
    name: (
        lambda params, cls=cls, defaults=defaults, **changes: cls(
            params, **{**defaults, **changes}
        ),
        hyperparameter, values,
    )
    for name, (cls, defaults, hyperparameter, values) in CONFIGURATIONS.items()
}


def mlp(dtype=torch.float64):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4, dtype=dtype), torch.nn.Tanh(),
                               torch.nn.Linear(4, 1, dtype=dtype))


def stream(steps, dtype=torch.float64, seed=1):
    generator = torch.Generator().manual_seed(seed)
    xs = torch.randn(steps, 1, 3, generator=generator, dtype=dtype)
    return [(x, torch.sin(x.sum(dim=1))) for x in xs]


def train(model, optimizers, data):
    """Online steps: one batch of one example (the Gauss-Newton diagonal is then exact), the
    curvature split over the optimizers in the order of their parameters."""
    curvature = mst.Curvature(model)
    for x, y in data:
        for optimizer in optimizers:
            optimizer.zero_grad()
        _, diagonal = curvature(x, y)
        start = 0
        for optimizer in optimizers:
            count = sum(len(group["params"]) for group in optimizer.param_groups)
            optimizer.step(curvature=diagonal[start:start + count])
            start += count


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_param_groups_equal_separate_optimizers(name):
    make, hyperparameter, (first, second) = OPTIMIZERS[name]
    data = stream(20)
    grouped, separate = mlp(), mlp()
    train(grouped, [make([
        {"params": grouped[0].parameters(), hyperparameter: first},
        {"params": grouped[2].parameters(), hyperparameter: second},
    ])], data)
    train(separate, [make(separate[0].parameters(), **{hyperparameter: first}),
                     make(separate[2].parameters(), **{hyperparameter: second})], data)
    for a, b in zip(grouped.parameters(), separate.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(grouped[0].weight, mlp()[0].weight)  # it learned


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_continues_bit_for_bit(name):
    make = OPTIMIZERS[name][0]
    data = stream(10)
    model = mlp()
    optimizer = make(model.parameters())
    train(model, [optimizer], data[:5])
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    restored_model = copy.deepcopy(model)
    restored = make(restored_model.parameters())
    restored.load_state_dict(torch.load(buffer))
    train(model, [optimizer], data[5:])
    train(restored_model, [restored], data[5:])
    for a, b in zip(model.parameters(), restored_model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(mst.step_sizes(optimizer), mst.step_sizes(restored)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_keeps_the_parameters_dtype(name, dtype):
    make = OPTIMIZERS[name][0]
    model = mlp(dtype)
    optimizer = make(model.parameters())
    train(model, [optimizer], stream(5, dtype))
    for p in model.parameters():
        assert torch.isfinite(p).all()
        for key, value in optimizer.state[p].items():
            expected = torch.int64 if key == "step" else dtype
            assert value.dtype == expected, key
    assert all(s.dtype == dtype for s in mst.step_sizes(optimizer))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_parameter_without_gradient_is_left_alone(name):
    make = OPTIMIZERS[name][0]
    model = mlp()
    frozen = model[2].bias
    frozen.requires_grad_(False)
    before = frozen.clone()
    groups = [{"params": [p for p in model.parameters() if p is not frozen]},
              {"params": [frozen]}]
    optimizer = make(groups)
    train(model, [optimizer], stream(3))
    assert torch.equal(frozen, before)
    assert frozen not in optimizer.state


def test_a_closure_may_return_the_loss_and_the_curvature():
    data = stream(5)
    explicit, closed = mlp(), mlp()
    train(explicit, [mst.IDBD(explicit.parameters(), 0.05)], data)
    optimizer = mst.IDBD(closed.parameters(), 0.05)
    curvature = mst.Curvature(closed)
    for x, y in data:
        def closure(x=x, y=y):
            optimizer.zero_grad()
            return curvature(x, y)

        loss = optimizer.step(closure)
        assert loss.ndim == 0
    for a, b in zip(explicit.parameters(), closed.parameters()):
        assert torch.equal(a, b)


def test_step_sizes_before_the_first_step_are_the_initial_ones():
    p = torch.zeros(2, 3)
    cases = [
        (mst.IDBD([p], initial_step_size=0.3), 0.3),
        (mst.Autostep([p], initial_step_size=0.3), 0.3),
        (mst.SGDHD([p], initial_step_size=0.3), 0.3),
        (mst.AdamHD([p], initial_step_size=0.3, eps=1e-4), 0.3 / 1e-2),
        (mst.DeltaDelta([p], initial_step_size=0.3), 0.3),
        (mst.SMD([p], initial_step_size=0.3), 0.3),
        (mst.MetaOptimize([p], initial_step_size=0.3), 0.3),
        (mst.NormalizedIDBD([p], initial_step_size=0.3, eps=1e-4), 0.3 / 1e-2),
        (mst.NormalizedIDBD([p], 0.1, 0.3, normalize_gradients=False), 0.3 / 3),  # fan-in 3
    ]
    for optimizer, expected in cases:
        (step_sizes,) = mst.step_sizes(optimizer)
        torch.testing.assert_close(step_sizes, torch.full((2, 3), expected))


@pytest.mark.parametrize("make, match", [
    (lambda p: mst.IDBD(p, meta_step_size=-1.0), "`meta_step_size` must be >= 0"),
    (lambda p: mst.IDBD(p, initial_step_size=0.0), "`initial_step_size` must be > 0"),
    (lambda p: mst.IDBD(p, granularity="row"), "`granularity` must be one of"),
    (lambda p: mst.IDBD(p, min_log_step_size=float("nan")), "`min_log_step_size` must be fin"),
    (lambda p: mst.IDBD(p, max_log_step_size_change=0.0), "`max_log_step_size_change` must be"),
    (lambda p: mst.Autostep(p, tau=0.0), "`tau` must be > 0"),
    (lambda p: mst.Autostep(p, granularity="tensor"), "supports only `granularity`='weight'"),
    (lambda p: mst.Autostep(p, unit_axes="rows"), "`unit_axes` must be one of"),
    (lambda p: mst.SGDHD(p, min_step_size=-1.0), "`min_step_size` must be >= 0"),
    (lambda p: mst.AdamHD(p, eps=0.0), "`eps` must be > 0"),
    (lambda p: mst.AdamHD(p, momentum_rate=1.5), r"`momentum_rate` must be in \[0, 1\]"),
    (lambda p: mst.DeltaDelta(p, min_step_size=0.0), "`min_step_size` must be > 0"),
    (lambda p: mst.SMD(p, decay=2.0), r"`decay` must be in \[0, 1\]"),
    (lambda p: mst.SMD(p, min_gain_factor=0.0), "`min_gain_factor` must be > 0"),
    (lambda p: mst.MetaOptimize(p, base="sgdw"), "`base` must be one of"),
    (lambda p: mst.MetaOptimize(p, meta="rmsprop"), "`meta` must be one of"),
    (lambda p: mst.MetaOptimize(p, discount=1.5), r"`discount` must be in \[0, 1\]"),
    (lambda p: mst.MetaOptimize(p, weight_decay=-1.0), "`weight_decay` must be >= 0"),
    (lambda p: mst.MetaOptimize(p, base_options={"beta": 1}), "`base_options` of base 'adam'"),
    (lambda p: mst.MetaOptimize(p, meta_step_size="fast"), "`meta_step_size` must be a real"),
    (lambda p: mst.NormalizedIDBD(p, meta_step_size=-1.0), "`meta_step_size` must be >= 0"),
    (lambda p: mst.NormalizedIDBD(p, unit_step_size=0.0), "`unit_step_size` must be > 0"),
    (lambda p: mst.NormalizedIDBD(p, initial_step_size=-0.1), "`initial_step_size` must be > 0"),
    (lambda p: mst.NormalizedIDBD(p, gradient_normalizer_rate=1.5),
     r"`gradient_normalizer_rate` must be in \(0, 1\]"),
    (lambda p: mst.NormalizedIDBD(p, meta_normalizer_rate=0.0),
     "`meta_normalizer_rate` must be > 0"),
    (lambda p: mst.NormalizedIDBD(p, eps=0.0), "`eps` must be > 0"),
    (lambda p: mst.NormalizedIDBD(p, normalize_gradients=1), "`normalize_gradients` must be a"),
    (lambda p: mst.NormalizedIDBD(p, foreach="yes"), "`foreach` must be a bool"),
])
def test_invalid_hyperparameters_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make([torch.zeros(2, requires_grad=True)])


def test_hyperparameters_are_checked_in_new_groups_and_at_each_step():
    p, q = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    optimizer = mst.IDBD([p])
    with pytest.raises(ValueError, match="`meta_step_size` must be >= 0"):
        optimizer.add_param_group({"params": [q], "meta_step_size": -1.0})
    optimizer.param_groups[0]["meta_step_size"] = float("nan")
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match="`meta_step_size` must be finite"):
        optimizer.step(curvature=[torch.ones(2)])


def test_invalid_steps_are_named():
    p = torch.zeros(2, 3, requires_grad=True)
    p.grad = torch.ones(2, 3)
    for optimizer in (mst.IDBD([p]), mst.Autostep([p]), mst.NormalizedIDBD([p])):
        with pytest.raises(ValueError, match="needs `curvature` in step"):
            optimizer.step()
        with pytest.raises(ValueError, match=r"`curvature\[0\]` must be a tensor of the "
                                             r"parameter's shape \(2, 3\), got \(3, 2\)"):
            optimizer.step(curvature=[torch.ones(3, 2)])
    with pytest.raises(ValueError, match="SMD needs `curvature_vector_product`"):
        mst.SMD([p]).step()
    with pytest.raises(ValueError, match="one tensor per parameter"):
        mst.IDBD([p]).step(curvature=[torch.ones(2, 3)] * 2)
    with pytest.raises(ValueError, match=r"`curvature_vector_product\(v\)\[0\]` must be a tensor"):
        mst.SMD([p]).step(curvature_vector_product=lambda v: [torch.ones(3)])
    with pytest.raises(ValueError, match="must be a real floating-point tensor"):
        mst.IDBD([torch.zeros(2, dtype=torch.int64)])
    q = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="granularity='scalar' shares one step size"):
        mst.SGDHD([p, q]).step()
    with pytest.raises(ValueError, match="`optimizer` must be a metastep.torch optimizer"):
        mst.step_sizes(torch.optim.SGD([p], lr=0.1))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_sparse_gradients_are_refused(name):
    p = torch.zeros(4, requires_grad=True)
    p.grad = torch.ones(4).to_sparse()
    with pytest.raises(ValueError, match="does not support sparse gradients"):
        OPTIMIZERS[name][0]([p]).step(curvature=[torch.ones(4)])


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_no_module_of_the_jax_core_imports_torch():
    """Every import statement of the package outside metastep/torch, lazy ones included."""
    package = Path(metastep.__file__).parent
    core = [path for path in package.rglob("*.py")
            if "torch" not in path.relative_to(package).parts]
    assert len(core) > 20
    for path in core:
        for module in imported_modules(path):
            assert module.split(".")[0] != "torch" and not module.startswith("metastep.torch"), (
                f"{path} imports {module}"
            )


@pytest.mark.slow
def test_importing_the_jax_core_leaves_torch_out():
    code = ("import sys, metastep, metastep.deep, metastep.experiments, metastep.report, "
            "metastep.cli; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["idbd", "metaoptimize", "normalized_idbd"])
def test_torch_compile_of_the_step_matches_eager(name):
    """``torch.compile`` traces the step (it recompiles once, when the state appears)."""
    make = OPTIMIZERS[name][0]
    data = stream(6)
    eager, compiled = mlp(), mlp()
    train(eager, [make(eager.parameters())], data)
    optimizer = make(compiled.parameters())
    step = torch.compile(lambda curvature: optimizer.step(curvature=curvature))
    curvature = mst.Curvature(compiled)
    for x, y in data:
        optimizer.zero_grad()
        step(curvature(x, y)[1])
    for a, b in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("granularity", ["weight", "tensor", "scalar"])
def test_a_zero_dimensional_parameter_in_every_granularity(granularity):
    p = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    optimizer = mst.IDBD([p], 0.1, 0.1, granularity=granularity)
    for gradient in (0.5, -0.25):
        p.grad = torch.tensor(gradient, dtype=torch.float64)
        optimizer.step(curvature=[torch.tensor(1.0, dtype=torch.float64)])
    (step_sizes,) = mst.step_sizes(optimizer)
    assert step_sizes.shape == () and step_sizes.item() != 0.1  # it learned


def test_documented_state_keys_are_the_state():
    """docs/torch.md's table of state keys, against each optimizer's state after two steps."""
    text = (Path(__file__).parents[2] / "docs" / "torch.md").read_text()
    rows = dict(re.findall(r"^\| `mst\.(\w+)` \| ([^|]*) \|$", text, re.MULTILINE))
    assert set(rows) == {cls.__name__ for cls, *_ in CONFIGURATIONS.values()}
    for name, column in rows.items():
        model = mlp()
        optimizer = getattr(mst, name)(model.parameters())
        train(model, [optimizer], stream(2))
        keys = {key for state in optimizer.state.values() for key in state}
        assert keys == set(re.findall(r"`([a-z_]{3,})`", column)), name
