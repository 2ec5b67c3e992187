"""Every method through optax's combinators, transformations of JAX, dtypes and serialization;
its hyperparameters traced and checked; independent optax oracles where optax has the rule.

(What every method shares beyond its own rule; each method's rule is checked step by step against
a NumPy transcription in its own test module, with what is specific to it.)

One table lists every method once, with the extra arguments it needs and the hyperparameter its
updates read (changed mid-run by the inject_hyperparams tests); each property is one test
parametrized over the table. The problem is a small quadratic, ``L = ½ Σ c (w − t_k)²`` with a
target ``t_k`` that moves every step, so gradients and curvature are known in closed form and
every run is a few eager steps (the jit tests compile one function per method).
"""

from __future__ import annotations

import pickle
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import metastep as ms
from metastep.methods import CurvatureVectorProduct


class Case(NamedTuple):
    factory: Any
    settings: dict  # small, stable hyperparameters for the quadratic
    extra: tuple  # the extra arguments of update it needs
    hyperparameter: str  # read at each update: changed mid-run
    changed: float  # its value after the change


CURVATURE = ("curvature",)
METHODS = {
    "sgd": Case(ms.sgd, {"learning_rate": 0.1}, (), "learning_rate", 0.02),
    "delta_delta": Case(ms.delta_delta, {"meta_step_size": 0.5, "initial_step_size": 0.1}, (),
                        "meta_step_size", 5.0),
    "idbd": Case(ms.idbd, {"meta_step_size": 0.1, "initial_step_size": 0.1}, CURVATURE,
                 "meta_step_size", 1.0),
    "autostep": Case(ms.autostep, {"meta_step_size": 0.1, "initial_step_size": 0.1}, CURVATURE,
                     "meta_step_size", 1.0),
    "smd": Case(ms.smd, {"meta_step_size": 0.1, "initial_step_size": 0.1},
                ("curvature_vector_product",), "meta_step_size", 1.0),
    "hypergradient": Case(ms.hypergradient, {"meta_step_size": 0.01, "initial_step_size": 0.1},
                          (), "meta_step_size", 0.1),
    "adam_hypergradient": Case(ms.adam_hypergradient,
                               {"meta_step_size": 1e-3, "initial_step_size": 0.05}, (),
                               "meta_step_size", 0.05),
    "rmsprop": Case(ms.rmsprop, {"learning_rate": 0.01}, (), "learning_rate", 0.002),
    "adam": Case(ms.adam, {"learning_rate": 0.01}, (), "learning_rate", 0.002),
    "metaoptimize": Case(ms.metaoptimize, {"meta_step_size": 0.01, "initial_step_size": 0.05},
                         (), "meta_step_size", 0.1),
    "normalized_idbd": Case(ms.normalized_idbd, {"meta_step_size": 0.05,
                                                 "initial_step_size": 0.05},
                            CURVATURE, "meta_step_size", 0.5),
}
NAMES = list(METHODS)
# Methods with a `granularity` argument that takes "scalar" (one step size for all weights).
SCALAR_GRANULARITY = ("idbd", "smd", "hypergradient", "adam_hypergradient", "metaoptimize")
STEPS = 4
CHANGE_AT = 2  # the update (counting from 0) from which a changed hyperparameter applies

RNG = np.random.default_rng(0)
PARAMS = {"w": jnp.asarray(RNG.normal(size=(3, 2)), jnp.float32),
          "b": jnp.asarray(RNG.normal(size=2), jnp.float32)}
CURVATURES = jax.tree.map(lambda p: jnp.asarray(RNG.uniform(0.5, 2.0, p.shape), p.dtype), PARAMS)
TARGETS = [jax.tree.map(lambda p: jnp.asarray(RNG.normal(size=p.shape), p.dtype), PARAMS)
           for _ in range(2 * STEPS)]


def method_of(name: str, **changes) -> optax.GradientTransformationExtraArgs:
    case = METHODS[name]
    return case.factory(**{**case.settings, **changes})


def gradient(params, step):
    """``c (w − t_k)``, each leaf in its parameter's dtype."""
    return jax.tree.map(lambda c, w, t: (c * (w - t)).astype(jnp.result_type(w)),
                        restrict(CURVATURES, params), params, restrict(TARGETS[step], params))


def restrict(tree, like):
    """The leaves of ``tree`` that ``like`` (a sub-dict of the parameters) has."""
    return {key: tree[key] for key in like}


def _diagonal_product(static, params, operands, vector):
    del static, params
    return jax.tree.map(jnp.multiply, operands, vector)


def side_signals(params, curvature_dtype=None):
    """Every side signal (a method takes what it needs), for the whole of ``params``."""
    curvature = restrict(CURVATURES, params)
    if curvature_dtype is not None:
        curvature = jax.tree.map(lambda c: c.astype(curvature_dtype), curvature)
    return {"curvature": curvature,
            "curvature_vector_product": CurvatureVectorProduct(_diagonal_product, params,
                                                               curvature)}


def run(method, params=PARAMS, steps=STEPS, state=None, start=0, update=None, extra_for=None):
    """``steps`` eager updates on the quadratic; the updates and the final state."""
    update = update or method.update
    state = method.init(params) if state is None else state
    all_updates = []
    for step in range(start, start + steps):
        grads = gradient(params, step)
        extra = (extra_for or side_signals)(params)
        updates, state = update(grads, state, params, **extra)
        all_updates.append(updates)
        params = optax.apply_updates(params, updates)
    return all_updates, state


def assert_trees_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def assert_trees_close(actual, expected, rtol=1e-6):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(e, float), rtol=rtol,
                                   atol=1e-7)


@pytest.fixture(scope="module", params=NAMES)
def name(request):
    return request.param


@pytest.fixture(scope="module")
def reference(name):
    """The plain method's updates and final state on the quadratic."""
    return run(method_of(name))


def test_the_table_lists_every_method():
    assert set(NAMES) == {n for n in ms.methods.__all__ if n.islower() and n != "step_sizes"}


def test_float32_by_default(nonstationary_data, name):
    xs, ys = nonstationary_data(8, steps=2, num_features=5)
    learner = ms.LinearLearner(method_of(name), 5)
    state, output = jax.jit(learner.step)(learner.init(), jnp.asarray(xs[0]), jnp.asarray(ys[0]))
    assert output.step_sizes.dtype == jnp.float32
    assert all(leaf.dtype in (jnp.float32, jnp.int32) for leaf in jax.tree.leaves(state))


# ---------------------------------------------------------------------------------------------
# optax combinators


def test_chain_is_transparent(name, reference):
    chain = optax.chain(optax.identity(), method_of(name), optax.identity())
    updates, state = run(chain)
    assert_trees_equal(updates, reference[0])
    assert_trees_equal(ms.step_sizes(state), ms.step_sizes(reference[1]))


def injected(name, **values):
    case = METHODS[name]
    return optax.inject_hyperparams(case.factory)(**{**case.settings, **values})


def test_inject_hyperparams_with_constant_values_is_the_method(name, reference):
    updates, state = run(injected(name))
    assert_trees_close(updates, reference[0])
    hyperparameter = METHODS[name].hyperparameter
    # The hyperparameter and the per-weight step sizes have different names: no ambiguity.
    value = optax.tree.get(state, hyperparameter)
    np.testing.assert_allclose(value, METHODS[name].settings[hyperparameter], rtol=1e-6)
    assert_trees_close(ms.step_sizes(state), ms.step_sizes(reference[1]))


def test_inject_hyperparams_change_mid_run_is_honoured(name, reference):
    """A value changed between updates is used by the next update: the run equals the plain
    method rebuilt with the new value from then on, and differs from the unchanged run."""
    case = METHODS[name]
    method = injected(name)
    state = method.init(PARAMS)
    first, state = run(method, steps=CHANGE_AT, state=state)
    state.hyperparams[case.hyperparameter] = jnp.asarray(case.changed, jnp.float32)
    later, _ = run(method, params=_after(first), steps=STEPS - CHANGE_AT, state=state,
                   start=CHANGE_AT)

    plain_first, plain_state = run(method_of(name), steps=CHANGE_AT)
    plain_later, _ = run(method_of(name, **{case.hyperparameter: case.changed}),
                         params=_after(plain_first), steps=STEPS - CHANGE_AT, state=plain_state,
                         start=CHANGE_AT)
    assert_trees_close(first + later, plain_first + plain_later)
    assert not np.allclose(later[0]["w"], reference[0][CHANGE_AT]["w"], rtol=1e-4)


def _after(updates, params=PARAMS):
    for u in updates:
        params = optax.apply_updates(params, u)
    return params


def schedule_of(name):
    value = METHODS[name].settings[METHODS[name].hyperparameter]
    return optax.piecewise_constant_schedule(value, {CHANGE_AT: 10.0})


def test_inject_hyperparams_schedule_is_followed(name):
    """A schedule given to inject_hyperparams: each update uses its value at that update."""
    case = METHODS[name]
    schedule = schedule_of(name)
    updates, _ = run(injected(name, **{case.hyperparameter: schedule}))
    expected, state, params = [], method_of(name).init(PARAMS), PARAMS
    for step in range(STEPS):
        method = method_of(name, **{case.hyperparameter: float(schedule(step))})
        [update], state = run(method, params=params, steps=1, state=state, start=step)
        expected.append(update)
        params = optax.apply_updates(params, update)
    assert_trees_close(updates, expected)


SCHEDULED = ("sgd", "rmsprop", "adam", "metaoptimize")  # a schedule as the argument itself


@pytest.mark.parametrize("scheduled", SCHEDULED)
def test_schedule_as_the_argument_is_inject_hyperparams(scheduled):
    case = METHODS[scheduled]
    schedule = schedule_of(scheduled)
    updates, _ = run(method_of(scheduled, **{case.hyperparameter: schedule}))
    expected, _ = run(injected(scheduled, **{case.hyperparameter: schedule}))
    assert_trees_close(updates, expected)
    constant, _ = run(method_of(scheduled))
    assert not np.allclose(updates[-1]["w"], constant[-1]["w"], rtol=1e-4)


def test_multisteps_accumulates_then_updates_once(name):
    """``MultiSteps(k=2)``: zero updates between, and the method on the mean of two gradients
    (taken at the same parameters, since nothing moved in between)."""
    method = optax.MultiSteps(method_of(name), every_k_schedule=2)
    updates, state = run(method, update=jax.jit(method.update))  # one compilation of its conds
    plain, plain_state, params = method_of(name), method_of(name).init(PARAMS), PARAMS
    for step in range(0, STEPS, 2):
        assert all(not np.any(leaf) for leaf in jax.tree.leaves(updates[step]))
        first, second = gradient(params, step), gradient(params, step + 1)
        mean = jax.tree.map(lambda a, b: a + (b - a) / 2, first, second)
        expected, plain_state = plain.update(mean, plain_state, params, **side_signals(params))
        assert_trees_close(updates[step + 1], expected)
        params = optax.apply_updates(params, expected)
    assert_trees_close(ms.step_sizes(state), ms.step_sizes(plain_state))


@pytest.mark.parametrize("mask_extra_args", [False, True])
def test_masked_is_the_method_on_the_masked_part(name, mask_extra_args):
    """The side signals are for all parameters; the method restricts them to its part."""
    method = optax.masked(method_of(name), {"w": True, "b": False},
                          mask_compatible_extra_args=mask_extra_args)
    updates, state = run(method)
    only_w = {"w": PARAMS["w"]}
    expected, expected_state = run(method_of(name), params=only_w)
    assert_trees_equal([{"w": u["w"]} for u in updates], expected)
    params = PARAMS
    for step, u in enumerate(updates):  # the masked-out part passes through unchanged
        np.testing.assert_array_equal(u["b"], gradient(params, step)["b"])
        params = optax.apply_updates(params, u)
    assert_trees_equal(ms.step_sizes(state)["w"], ms.step_sizes(expected_state)["w"])


def test_multi_transform_is_the_method_on_its_group(name):
    method = optax.multi_transform({"meta": method_of(name), "plain": optax.sgd(0.1)},
                                   {"w": "meta", "b": "plain"})
    updates, state = run(method)
    expected, expected_state = run(method_of(name), params={"w": PARAMS["w"]})
    assert_trees_equal([{"w": u["w"]} for u in updates], expected)
    sizes = ms.step_sizes(state)
    assert isinstance(sizes["b"], optax.MaskedNode)
    assert_trees_equal(sizes["w"], ms.step_sizes(expected_state)["w"])


def test_multi_transform_with_an_empty_group(name):
    """A group no parameter belongs to: a leafless tree; its state keeps float dtypes."""
    kwargs = {"granularity": "scalar"} if name in SCALAR_GRANULARITY else {}
    method = optax.multi_transform({"all": optax.sgd(0.1), "none": method_of(name, **kwargs)},
                                   {"w": "all", "b": "all"})
    updates, state = run(method)
    assert_trees_close(updates, run(optax.sgd(0.1))[0])
    empty_state = state.inner_states["none"]
    initial = method.init(PARAMS).inner_states["none"]
    assert jax.tree.structure(empty_state) == jax.tree.structure(initial)
    for leaf, start in zip(jax.tree.leaves(empty_state), jax.tree.leaves(initial)):
        assert leaf.dtype == start.dtype


@pytest.mark.parametrize("scalar_name", SCALAR_GRANULARITY)
def test_one_step_size_for_no_leaves_stays_float(scalar_name):
    """granularity="scalar" on a leafless tree (what an empty group sees): the sum over no
    leaves is a float 0, so the state keeps its dtypes."""
    method = method_of(scalar_name, granularity="scalar")
    state = method.init({})
    _, new_state = method.update({}, state, {}, **side_signals({}))
    assert [leaf.dtype for leaf in jax.tree.leaves(new_state)] == \
        [leaf.dtype for leaf in jax.tree.leaves(state)]
    assert all(jnp.issubdtype(leaf.dtype, jnp.floating)
               for leaf in jax.tree.leaves(new_state) if leaf.dtype != jnp.int32)


def test_apply_if_finite_skips_a_bad_step(name):
    """A non-finite gradient: a zero update and the state untouched; the next steps are those of
    the run without the bad step."""
    method = optax.apply_if_finite(method_of(name), max_consecutive_errors=3)
    bad_step = 1
    state, params, updates = method.init(PARAMS), PARAMS, []
    jitted = jax.jit(method.update)  # one compilation of its cond
    for step in range(STEPS):
        grads = gradient(params, step)
        if step == bad_step:
            grads = dict(grads, b=grads["b"].at[0].set(jnp.nan))
        update, state = jitted(grads, state, params, **side_signals(params))
        updates.append(update)
        params = optax.apply_updates(params, update)
    assert int(state.total_notfinite) == 1
    assert all(not np.any(leaf) for leaf in jax.tree.leaves(updates[bad_step]))
    first, plain_state = run(method_of(name), steps=bad_step)
    rest, _ = run(method_of(name), params=_after(first), steps=STEPS - bad_step - 1,
                  state=plain_state, start=bad_step + 1)
    # apply_if_finite runs the update inside lax.cond (compiled): equal to rounding.
    assert_trees_close(updates[:bad_step] + updates[bad_step + 1:], first + rest)


# ---------------------------------------------------------------------------------------------
# JAX transformations


def test_jit_with_the_state_donated(name, reference):
    """Under jit, with the side signals as arguments (a CurvatureVectorProduct is a pytree) and
    the state returned by an eager init donated."""
    method = method_of(name)
    update = jax.jit(method.update, donate_argnums=1)
    updates, state = run(method, update=update)
    assert_trees_close(updates, reference[0])
    assert_trees_close(ms.step_sizes(state), ms.step_sizes(reference[1]))


def test_init_gives_every_field_its_own_buffer(name):
    state = method_of(name).init(PARAMS)
    pointers = [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(state)]
    assert len(pointers) == len(set(pointers))


def test_vmap_over_parameters_is_each_run(name):
    method = method_of(name)
    shifted = jax.tree.map(lambda p: p + 1.0, PARAMS)
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), PARAMS, shifted)

    def final_updates(params):
        return run(method, params=params, steps=2)[0][-1]

    batched = jax.jit(jax.vmap(final_updates))(batch)  # one compilation, not one per op
    for lane, params in enumerate([PARAMS, shifted]):
        assert_trees_close(jax.tree.map(lambda u, lane=lane: u[lane], batched),
                           final_updates(params))


def test_gradient_through_a_run_is_finite(name):
    """``jax.grad`` of the loss after a few updates, with respect to the initial parameters; one
    gradient coordinate starts at exactly 0 (where sqrt(0) has an infinite derivative)."""
    method = method_of(name)
    start = dict(PARAMS, b=TARGETS[0]["b"].at[0].set(PARAMS["b"][0]))
    targets = [dict(t, b=t["b"].at[0].set(PARAMS["b"][0])) for t in TARGETS]

    def loss(params):
        state = method.init(params)
        for step in range(2):
            grads = jax.tree.map(lambda c, w, t: c * (w - t), CURVATURES, params, targets[step])
            updates, state = method.update(grads, state, params, **side_signals(params))
            params = optax.apply_updates(params, updates)
        return sum(jnp.sum(w * w) for w in jax.tree.leaves(params))

    gradients = jax.jit(jax.grad(loss))(start)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(gradients))


# ---------------------------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_parameters_keep_their_dtype(name, dtype):
    """float16/bfloat16 parameters with a float32 curvature: updates and state stay in the
    parameters' dtype (counts stay int32), and an update fits in lax.cond beside the old state.
    Types only: traced by jax.eval_shape, nothing compiled."""
    method = method_of(name)
    params = jax.tree.map(lambda p: p.astype(dtype), PARAMS)

    def extra_for(p):
        return side_signals(p, curvature_dtype=jnp.float32)

    def two_steps(params):
        state = method.init(params)
        updates, new_state = run(method, params=params, steps=2, state=state,
                                 extra_for=extra_for)
        grads = gradient(params, 0)
        conditional = jax.lax.cond(
            jnp.asarray(True),
            lambda: method.update(grads, state, params, **extra_for(params)),
            lambda: (jax.tree.map(jnp.zeros_like, grads), state),
        )
        return state, updates, new_state, conditional

    state, updates, new_state, _ = jax.eval_shape(two_steps, params)
    dtypes = [leaf.dtype for leaf in jax.tree.leaves(state)]
    assert all(d in (dtype, jnp.int32) for d in dtypes)
    assert all(leaf.dtype == dtype for u in updates for leaf in jax.tree.leaves(u))
    assert [leaf.dtype for leaf in jax.tree.leaves(new_state)] == dtypes


def test_python_float_leaves(name):
    """optax accepts Python numbers as leaves; so do the methods (as float32 0-d arrays)."""
    method = method_of(name)
    params = {"w": PARAMS["w"], "s": 0.5}
    state = method.init(params)
    array_params = {"w": PARAMS["w"], "s": jnp.asarray(0.5)}
    array_state = method.init(array_params)
    for step in range(2):
        grads = {"w": gradient(PARAMS, step)["w"], "s": 0.25 * (step + 1)}
        extra = {"curvature": {"w": CURVATURES["w"], "s": 1.0}}
        extra["curvature_vector_product"] = CurvatureVectorProduct(
            _diagonal_product, array_params, extra["curvature"]
        )
        updates, state = method.update(grads, state, params, **extra)
        array_grads = jax.tree.map(jnp.asarray, grads)
        array_extra = {"curvature": jax.tree.map(jnp.asarray, extra["curvature"]),
                       "curvature_vector_product": extra["curvature_vector_product"]}
        expected, array_state = method.update(array_grads, array_state, array_params,
                                              **array_extra)
        assert_trees_equal(updates, expected)


# ---------------------------------------------------------------------------------------------
# state round trips


def _continue_after_round_trip(name, round_trip):
    method = method_of(name)
    first, state = run(method, steps=2)
    params = _after(first)
    restored = round_trip(state, method.init(PARAMS))
    expected, expected_state = run(method, params=params, steps=2, state=state, start=2)
    updates, restored_state = run(method, params=params, steps=2, state=restored, start=2)
    assert_trees_equal(updates, expected)
    assert_trees_equal(restored_state, expected_state)


def test_pickle_round_trip_continues_bit_for_bit(name):
    _continue_after_round_trip(name, lambda state, template: pickle.loads(pickle.dumps(state)))


def test_flax_serialization_round_trip_continues_bit_for_bit(name):
    def round_trip(state, template):
        return flax.serialization.from_bytes(template, flax.serialization.to_bytes(state))

    _continue_after_round_trip(name, round_trip)


# ---------------------------------------------------------------------------------------------
# hyperparameters: traced (for sweeps) and checked


class Traced(NamedTuple):
    seed: int  # of the non-stationary stream
    static: dict  # arguments that are not traced
    lanes: tuple  # two settings of the traced hyperparameters, one vmapped lane each
    unchanged: tuple  # per lane, the step size it keeps (a meta step size of 0), or None
    eager: tuple  # per lane, whether it is compared with the same run without vmap
    rtol: float = 1e-5


def _lanes(**values):
    return tuple(dict(zip(values, lane)) for lane in zip(*values.values()))


TRACED = {
    "sgd": Traced(0, {}, _lanes(learning_rate=(0.1, 0.2)), (0.1, 0.2), (False, True)),
    "delta_delta": Traced(5, {}, _lanes(meta_step_size=(0.0, 0.1),
                                        initial_step_size=(0.01, 0.02)),
                          (0.01, None), (False, True)),
    "idbd": Traced(9, {}, _lanes(meta_step_size=(0.0, 0.01), initial_step_size=(0.05, 0.02)),
                   (0.05, None), (False, True)),
    "autostep": Traced(9, {}, _lanes(meta_step_size=(0.0, 0.1), initial_step_size=(0.005, 0.05),
                                     tau=(1e4, 100.0)),
                       (0.005, None), (False, True)),
    "smd": Traced(9, {}, _lanes(meta_step_size=(0.0, 0.01), initial_step_size=(0.05, 0.02),
                                decay=(1.0, 0.9)),
                  (0.05, None), (False, True)),
    "hypergradient": Traced(8, {"granularity": "weight"},
                            _lanes(meta_step_size=(0.0, 1e-4), initial_step_size=(0.01, 0.02)),
                            (None, None), (True, True)),
    "adam_hypergradient": Traced(8, {"granularity": "weight"},
                                 _lanes(meta_step_size=(0.0, 1e-4),
                                        initial_step_size=(0.01, 0.02)),
                                 (None, None), (True, True)),
    "rmsprop": Traced(4, {}, _lanes(learning_rate=(0.01, 0.003), normalizer_rate=(0.01, 0.1),
                                    eps=(1e-8, 1e-4)),
                      (None, None), (True, True)),
    "adam": Traced(4, {}, _lanes(learning_rate=(0.01, 0.003), momentum_rate=(0.1, 0.5),
                                 normalizer_rate=(0.001, 0.01)),
                   (None, None), (True, True)),
    "metaoptimize": Traced(6, {"base": "adamw", "meta": "adam"},
                           _lanes(meta_step_size=(0.0, 0.01), initial_step_size=(0.01, 0.02),
                                  discount=(1.0, 0.9), weight_decay=(0.0, 1e-3)),
                           (0.01, None), (False, True), rtol=1e-4),
    "normalized_idbd": Traced(7, {}, _lanes(meta_step_size=(0.0, 0.01),
                                            unit_step_size=(0.1, 0.3),
                                            gradient_normalizer_rate=(0.001, 0.01),
                                            meta_normalizer_rate=(0.01, 0.1)),
                              (None, None), (True, True)),
}


def test_hyperparameters_can_be_traced(nonstationary_data, name):
    """Sweeps vmap over hyperparameters: no Python control flow may depend on their values.
    Each vmapped lane keeps its step size where its meta step size is 0, and equals the same run
    without vmap (step sizes and weights after 200 steps)."""
    case = TRACED[name]
    xs, ys = nonstationary_data(case.seed, steps=200, num_features=5)

    def final(hyperparameters):
        learner = ms.LinearLearner(METHODS[name].factory(**case.static, **hyperparameters), 5)
        state, _ = jax.lax.scan(
            lambda s, xy: learner.step(s, *xy), learner.init(), (jnp.asarray(xs), jnp.asarray(ys))
        )
        return learner.step_sizes(state), state.weights

    stacked = {key: jnp.array([lane[key] for lane in case.lanes]) for key in case.lanes[0]}
    swept_step_sizes, swept_weights = jax.jit(jax.vmap(final))(stacked)
    for lane, settings in enumerate(case.lanes):
        if case.unchanged[lane] is not None:
            np.testing.assert_allclose(swept_step_sizes[lane], case.unchanged[lane], rtol=1e-6)
        if case.eager[lane]:
            step_sizes, weights = final(settings)  # Python numbers: constants, not traced
            np.testing.assert_allclose(swept_step_sizes[lane], step_sizes, rtol=case.rtol)
            np.testing.assert_allclose(swept_weights[lane], weights, rtol=case.rtol)
    if name == "metaoptimize":  # the meta step size of lane 1 moved its step size
        assert abs(float(swept_step_sizes[1][0]) - 0.02) > 1e-4


# (method, arguments, what the error names): each must raise ValueError at construction.
INVALID = [
    ("sgd", {"learning_rate": -0.1}, "`learning_rate`"),
    ("sgd", {"learning_rate": float("nan")}, "`learning_rate`"),
    ("sgd", {"learning_rate": float("inf")}, "`learning_rate`"),
    ("sgd", {"learning_rate": np.array([0.1, -0.1])}, "`learning_rate`"),
    ("sgd", {"learning_rate": {"w": -1.0}}, "`learning_rate`"),
    ("delta_delta", {"meta_step_size": -0.1}, "`meta_step_size`"),
    ("delta_delta", {"initial_step_size": 0.0}, "`initial_step_size`"),
    ("delta_delta", {"initial_step_size": float("nan")}, "`initial_step_size`"),
    ("delta_delta", {"min_step_size": 0.0}, "`min_step_size`"),
    ("delta_delta", {"min_step_size": -1e-6}, "`min_step_size`"),
    ("idbd", {"meta_step_size": -0.1}, "meta_step_size"),
    ("idbd", {"initial_step_size": 0.0}, "initial_step_size"),
    ("idbd", {"initial_step_size": -1.0}, "initial_step_size"),
    ("idbd", {"granularity": "layer"}, "granularity"),
    ("idbd", {"max_log_step_size_change": 0.0}, "max_log_step_size_change"),
    ("idbd", {"min_log_step_size": float("nan")}, "min_log_step_size"),
    ("autostep", {"meta_step_size": -0.1}, "meta_step_size"),
    ("autostep", {"initial_step_size": 0.0}, "initial_step_size"),
    ("autostep", {"initial_step_size": -1.0}, "initial_step_size"),
    ("autostep", {"tau": 0.0}, "tau"),
    ("autostep", {"tau": -1.0}, "tau"),
    ("autostep", {"granularity": "tensor"}, "granularity"),
    ("autostep", {"granularity": "scalar"}, "granularity"),
    ("autostep", {"granularity": "layer"}, "granularity"),
    ("autostep", {"unit_axes": "rows"}, "unit_axes"),
    ("smd", {"meta_step_size": -0.1}, "meta_step_size"),
    ("smd", {"initial_step_size": 0.0}, "initial_step_size"),
    ("smd", {"initial_step_size": -1.0}, "initial_step_size"),
    ("smd", {"decay": -0.1}, "decay"),
    ("smd", {"decay": 1.5}, "decay"),
    ("smd", {"min_gain_factor": 0.0}, "min_gain_factor"),
    ("smd", {"min_gain_factor": 1.5}, "min_gain_factor"),
    *[(hd, kwargs, match) for hd in ("hypergradient", "adam_hypergradient")
      for kwargs, match in [({"meta_step_size": -0.1}, "`meta_step_size`"),
                            ({"initial_step_size": -1.0}, "`initial_step_size`"),
                            ({"initial_step_size": float("inf")}, "`initial_step_size`"),
                            ({"granularity": "layer"}, "`granularity`"),
                            ({"min_step_size": -1.0}, "`min_step_size`")]],
    ("adam_hypergradient", {"momentum_rate": 1.5}, "`momentum_rate`"),
    ("adam_hypergradient", {"normalizer_rate": -0.1}, "`normalizer_rate`"),
    ("adam_hypergradient", {"eps": -1e-8}, "`eps`"),
    ("rmsprop", {"learning_rate": -0.1}, "`learning_rate`"),
    ("rmsprop", {"learning_rate": float("nan")}, "`learning_rate`"),
    ("rmsprop", {"normalizer_rate": 1.5}, "`normalizer_rate`"),
    ("rmsprop", {"normalizer_rate": -0.1}, "`normalizer_rate`"),
    ("rmsprop", {"eps": -1e-8}, "`eps`"),
    ("adam", {"learning_rate": -0.1}, "`learning_rate`"),
    ("adam", {"momentum_rate": 1.5}, "`momentum_rate`"),
    ("adam", {"momentum_rate": float("nan")}, "`momentum_rate`"),
    ("adam", {"normalizer_rate": -0.1}, "`normalizer_rate`"),
    ("adam", {"eps": -1e-8}, "`eps`"),
    ("normalized_idbd", {"meta_step_size": -0.1}, "`meta_step_size`"),
    ("normalized_idbd", {"unit_step_size": 0.0}, "`unit_step_size`"),
    ("normalized_idbd", {"initial_step_size": float("nan")}, "`initial_step_size`"),
    ("normalized_idbd", {"gradient_normalizer_rate": 1.5}, "`gradient_normalizer_rate`"),
    ("normalized_idbd", {"meta_normalizer_rate": -0.1}, "`meta_normalizer_rate`"),
    ("normalized_idbd", {"eps": 0.0}, "`eps`"),
    ("metaoptimize", {"base": "adagrad"}, "base"),
    ("metaoptimize", {"meta": "rmsprop"}, "meta"),
    ("metaoptimize", {"meta_step_size": -1.0}, "meta_step_size"),
    ("metaoptimize", {"initial_step_size": 0.0}, "initial_step_size"),
    ("metaoptimize", {"granularity": "layer"}, "granularity"),
    ("metaoptimize", {"discount": 1.5}, "discount"),
    ("metaoptimize", {"weight_decay": -0.1}, "weight_decay"),
    ("metaoptimize", {"base": optax.scale_by_adam(), "base_options": {"b1": 0.5}},
     "base_options"),
]


def test_every_method_has_invalid_hyperparameter_cases():
    assert {method for method, _, _ in INVALID} == set(NAMES)


@pytest.mark.parametrize(
    ("method", "kwargs", "match"),
    [pytest.param(*case, id=f"{case[0]}-{'-'.join(case[1])}-{index}")
     for index, case in enumerate(INVALID)],
)
def test_invalid_hyperparameters_raise(method, kwargs, match):
    with pytest.raises(ValueError, match=match):
        METHODS[method].factory(**kwargs)


# What the error names when update is called without the extra argument a method needs.
MISSING_EXTRA = {"idbd": "`curvature`", "autostep": "`curvature`",
                 "normalized_idbd": "`curvature`",
                 "smd": "`curvature_vector_product`.*`curvature`"}


def test_the_missing_extra_table_lists_every_method_that_needs_one():
    assert set(MISSING_EXTRA) == {name for name in NAMES if METHODS[name].extra}


@pytest.mark.parametrize("needs_extra", list(MISSING_EXTRA))
def test_missing_extra_argument_raises(needs_extra):
    method = METHODS[needs_extra].factory()
    params = jnp.zeros(3)
    with pytest.raises(ValueError, match=MISSING_EXTRA[needs_extra]):
        method.update(params, method.init(params), params)


# ---------------------------------------------------------------------------------------------
# a nested pytree under jit, against the rule in closed form

NESTED_PARAMS = {"layer": {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}, "scale": jnp.asarray(1.0)}
NESTED_GRADS = {"layer": {"w": jnp.full((2, 3), 2.0), "b": jnp.ones(3)},
                "scale": jnp.asarray(-4.0)}


def _hypergradient_step_sizes(granularity):
    """After gradients g then g/2: α = 0.1 + 0.01 Σ g·(g/2), the sum over the weights that share
    a step size (all of them, one array, or none)."""
    products = jax.tree.map(lambda g: 0.5 * g * g, NESTED_GRADS)
    if granularity == "scalar":
        total = sum(float(jnp.sum(p)) for p in jax.tree.leaves(products))
        return jax.tree.map(lambda p: jnp.full(p.shape, 0.1 + 0.01 * total), products)
    if granularity == "tensor":
        return jax.tree.map(lambda p: jnp.full(p.shape, 0.1 + 0.01 * jnp.sum(p)), products)
    return jax.tree.map(lambda p: 0.1 + 0.01 * p, products)


class Nested(NamedTuple):
    method: Any
    scales: tuple  # the gradient of update k is scales[k] · NESTED_GRADS
    step_sizes: Any  # the expected step sizes after the last update, like the parameters
    rtol: float = 1e-6


NESTED = {
    # Δ = −0.1 g twice, so α = 0.1 + 10 (0.1 g)² after the third update.
    "delta_delta": Nested(ms.delta_delta(10.0, 0.1), (1.0, 1.0, 1.0),
                          jax.tree.map(lambda g: 0.1 + 10.0 * (0.1 * g) ** 2, NESTED_GRADS)),
    **{f"hypergradient-{granularity}": Nested(ms.hypergradient(0.01, 0.1, granularity),
                                               (1.0, 0.5), _hypergradient_step_sizes(granularity))
       for granularity in ("scalar", "tensor", "weight")},
    # v = 0.5 g² after one update, so α = 0.01 / sqrt(0.5 g² + ε).
    "rmsprop": Nested(ms.rmsprop(0.01, 0.5, 1e-8), (1.0,),
                      jax.tree.map(lambda g: 0.01 / jnp.sqrt(0.5 * g * g + 1e-8), NESTED_GRADS)),
    # A constant gradient: m̂ = g and v̂ = g² at every update.
    "adam": Nested(ms.adam(0.01), (1.0, 1.0, 1.0),
                   jax.tree.map(lambda g: 0.01 / jnp.sqrt(g * g + 1e-8), NESTED_GRADS), rtol=1e-5),
}


@pytest.mark.parametrize("case", list(NESTED))
def test_nested_pytree_under_jit(case):
    """Updates keep the parameters' nesting; the step sizes are the rule's, and the last update
    is −α g (the extra arguments, here the gradients as curvature, are accepted and ignored)."""
    method, scales, expected, rtol = NESTED[case]
    update = jax.jit(method.update)
    state = method.init(NESTED_PARAMS)
    for scale in scales:
        grads = jax.tree.map(lambda g, scale=scale: scale * g, NESTED_GRADS)
        updates, state = update(grads, state, NESTED_PARAMS, curvature=grads)
    assert jax.tree.structure(updates) == jax.tree.structure(NESTED_PARAMS)
    jax.tree.map(
        lambda a, e: np.testing.assert_allclose(a, jnp.broadcast_to(e, a.shape), rtol=rtol),
        ms.step_sizes(state), expected,
    )
    jax.tree.map(
        lambda u, a, g: np.testing.assert_allclose(u, -a * g, rtol=rtol),
        updates, ms.step_sizes(state), grads,
    )


# ---------------------------------------------------------------------------------------------
# independent oracles: optax's own transformations where one computes the same rule

# (method, optax transformation computing the same rule); rates γ are optax's 1 − decay.
ORACLES = {
    # α = η / sqrt(v̂ + ε), w ← w − α m̂: optax's Adam with ε inside the root (eps_root), none out.
    "adam": (ms.adam(0.01, momentum_rate=0.1, normalizer_rate=0.01, eps=1e-6),
             optax.chain(optax.scale_by_adam(b1=1 - 0.1, b2=1 - 0.01, eps=0.0, eps_root=1e-6),
                         optax.scale(-0.01))),
    # α = η / sqrt(v + ε), w ← w − α g, no bias correction: optax's RMSprop, ε inside the root.
    "rmsprop": (ms.rmsprop(0.01, normalizer_rate=0.05, eps=1e-6),
                optax.chain(optax.scale_by_rms(decay=1 - 0.05, eps=1e-6, initial_scale=0.0,
                                               eps_in_sqrt=True, bias_correction=False),
                            optax.scale(-0.01))),
    "sgd": (ms.sgd(0.02), optax.sgd(0.02)),
}


@pytest.mark.parametrize("oracle", list(ORACLES))
def test_equals_an_independent_optax_oracle(x64, nonstationary_data, oracle):
    """Each trains its own float64 linear weights on the same non-stationary stream for 300
    steps; the updates agree step by step to rounding (the formulas are the same, the
    operations' order differs)."""
    method, expected = ORACLES[oracle]
    xs, ys = nonstationary_data(3, steps=300, num_features=5)

    def trajectory(transformation):
        def step(carry, xy):
            w, state = carry
            x, y = xy
            grads = -(y - w @ x) * x
            updates, state = transformation.update(grads, state, w)
            return (w + updates, state), updates

        w = jnp.zeros(5, jnp.float64)
        _, updates = jax.lax.scan(step, (w, transformation.init(w)),
                                  (jnp.asarray(xs), jnp.asarray(ys)))
        return updates

    actual, reference = map(np.asarray, jax.jit(lambda: (trajectory(method),
                                                         trajectory(expected)))())
    assert actual.dtype == np.float64
    assert np.all(np.isfinite(reference)) and np.ptp(np.abs(reference)) > 1e-3
    np.testing.assert_allclose(actual, reference, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# the step-size protocol and arguments


def test_step_sizes_of_two_chained_methods_is_ambiguous():
    state = optax.chain(ms.idbd(), ms.sgd()).init(PARAMS)
    with pytest.raises(ValueError, match=r"ambiguous.*ms\.step_sizes\(state\[0\]\)"):
        ms.step_sizes(state)
    assert_trees_equal(ms.step_sizes(state[1]), jax.tree.map(lambda p: jnp.full_like(p, 0.01),
                                                             PARAMS))


def test_step_sizes_of_methods_on_different_groups_are_merged():
    method = optax.multi_transform({"a": ms.sgd(0.1), "b": ms.idbd(initial_step_size=0.2)},
                                   {"w": "a", "b": "b"})
    sizes = ms.step_sizes(method.init(PARAMS))
    np.testing.assert_allclose(sizes["w"], np.full((3, 2), 0.1))
    np.testing.assert_allclose(sizes["b"], np.full(2, 0.2), rtol=1e-6)


def test_a_learner_with_two_chained_methods_raises():
    learner = ms.LinearLearner(optax.chain(ms.idbd(), ms.sgd()), 3)
    with pytest.raises(ValueError, match="ambiguous"):
        learner.step(learner.init(), jnp.ones(3), jnp.asarray(1.0))


@pytest.mark.parametrize("factory", [ms.rmsprop, ms.adam, ms.adam_hypergradient])
def test_zero_eps_is_refused(factory):
    with pytest.raises(ValueError, match="`eps` must be > 0"):
        factory(eps=0.0)


def test_smd_with_deep_extra_args_in_a_group_under_jit():
    """SMD on the output layer of a network, the hidden layer frozen, through multi_transform
    and a jitted update taking ms.deep.extra_args' output: the same as SMD on a network whose
    hidden layer is a constant (the Gauss-Newton block of the output layer)."""
    model = ms.deep.mlp((3, 4, 1), activation="tanh")
    params = model.init(jax.random.PRNGKey(0))
    hidden, output = params
    labels = [jax.tree.map(lambda _: "frozen", hidden), jax.tree.map(lambda _: "smd", output)]
    method = optax.multi_transform({"smd": ms.smd(0.1, 0.1), "frozen": optax.set_to_zero()},
                                   labels)
    update = jax.jit(method.update)

    def output_only(output_params, inputs):
        return model.apply([hidden, output_params], inputs)

    extra_args = jax.jit(ms.deep.extra_args, static_argnums=0)  # eager autodiff is slow
    state = method.init(params)
    only = ms.smd(0.1, 0.1)
    only_state = only.init(output)
    rng = np.random.default_rng(1)
    for _ in range(3):
        batch = (jnp.asarray(rng.normal(size=(1, 3)), jnp.float32),
                 jnp.asarray(rng.normal(size=(1, 1)), jnp.float32))
        _, _, grads, extra = extra_args(model.apply, params, batch)
        updates, state = update(grads, state, params, **extra)
        params = optax.apply_updates(params, updates)
        _, _, only_grads, only_extra = extra_args(output_only, output, batch)
        expected, only_state = only.update(only_grads, only_state, output, **only_extra)
        output = optax.apply_updates(output, expected)
        assert_trees_close(updates[1], expected, rtol=1e-5)
    assert_trees_equal(params[0], hidden)
