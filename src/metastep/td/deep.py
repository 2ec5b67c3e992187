"""Streaming deep TD(λ): a network's value ``v(x; θ)`` learned by TD(λ) with accumulating traces
over its parameter pytree, its step sizes from any method (Elsayed, Vasan & Mahmood 2024).

Reference: M. Elsayed, G. Vasan, A. R. Mahmood, "Streaming deep reinforcement learning finally
works", arXiv:2410.14606 (2024): stream TD(λ), ObGD (:func:`metastep.td.obgd`) on a network
with LayerNorm, sparse initialization and normalized observations (:func:`stream_mlp` builds
that network).

Streaming convention (:class:`metastep.td.TDLearner`'s): step ``t`` receives ``x_t``, the reward
``r_t`` of the transition into it and that transition's discount ``γ_t`` (0 when it ended an
episode). With ``θ_t`` the parameters before step t's update (those left by step t − 1), the
step computes, in this order::

    v_t  = v(x_t; θ_t)                          # the prediction of step t
    v̄_t  = v(x_{t−1}; θ_t)                      # the previous state under the SAME parameters
    g_t  = ∇_θ v(x_{t−1}; θ_t)
    δ_t  = r_t + γ_t v_t − v̄_t                  # the TD error of x_{t−1} → x_t
    z    ← z + g_t                              # z held γ_{t−1} λ × the older gradients
    θ    ← θ + (the method's update on the gradient −δ_t z)
    z    ← γ_t λ z                              # ready for the next step

Both values of ``δ_t`` and the gradient added to the trace use ``θ_t``: that is the authors'
stream TD(λ) (its update for the transition ``(s, r, s')`` evaluates ``v(s)``, ``v(s')`` and
``∇v(s)`` with the current parameters, and its ObGD adds ``∇v(s)`` to the decayed trace before
the step, emptying the trace after a terminal transition). The authors' script records the
prediction of ``s'`` after the update; here the prediction of ``x_t`` comes before it, as for
every learner of the engine. The first step has no previous state: its ``v̄`` and ``g`` are 0,
so its δ updates nothing. For a linear model ``v = θ·x`` this is :class:`metastep.td.TDLearner`.

The method sees ``g = −δ z`` and, as extra arguments of ``update``, the TD side signals of
:data:`metastep.td.SIDE_SIGNALS` with the value gradients in place of the features:
``td_error`` δ, ``trace`` z, ``features`` ``∇v(x_{t−1}; θ_t)``, ``next_features`` ``∇v(x_t;
θ_t)`` and ``discount`` γ_t; plus ``curvature = ∇v(x_{t−1}; θ_t) ⊙ z``, the diagonal of the
Jacobian of ``g`` in ``θ`` with z and the target held fixed, dropping the second derivatives of
``v`` (as Gauss-Newton does; for a linear model the ``φ z`` that TDLearner passes). So
``ms.td.obgd`` and ``ms.td.adaptive_obgd`` (whose ``‖z‖₁`` sums over the whole pytree), the
curvature-driven meta methods (``ms.normalized_idbd``, ``ms.idbd``, ``ms.autostep``) and any
optax method run on the network.

The authors' normalizations, both off by default (their wrappers ``NormalizeObservation`` and
``ScaleReward``; running moments by Welford's update, :func:`welford_update`, the variance 1
until two samples):

* ``normalize_observations=True``: the network sees ``x̂_t = (x_t − m_t) / sqrt(s²_t + 10⁻⁸)``,
  ``m_t`` and ``s²_t`` the running mean and sample variance of ``x_0 … x_t`` (updated with
  ``x_t`` before it is normalized).
* ``scale_rewards=True``: the network learns the value of the rewards ``r_t / σ_t``, ``σ_t =
  sqrt(s²_t + 10⁻⁸)`` with ``s²_t`` the running variance of the discounted reward sum ``u_t =
  γ_t u_{t−1} + r_t`` (restarted by an episode's end, ``γ_t = 0``; the stream's first step, which
  closes no transition, is left out). The prediction and the TD error that the step reports are
  back in the problem's units, ``σ_t v(x_t)`` and ``σ_t δ_t``, as the authors' script reports its
  predictions; the method sees ``δ_t`` in the network's units. So ObGD's bound, which assumes
  ``|δ|`` of order 1 at most, keeps its meaning when the returns are large.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metastep._checks import check_real, check_unit_interval
from metastep._learner_protocol import StepOutput, as_method, log10_step_sizes, step_sizes_or_nan
from metastep._structure import recorded
from metastep.deep.learner import QUANTILE_LEVELS, _quantiles_per_array
from metastep.deep.models import ACTIVATIONS, Model, as_model, leaf_names
from metastep.td.learner import LinearTDHooks, reward_and_discount, value_metrics



def leaky_relu(a: jax.Array) -> jax.Array:
    """``a`` where positive, ``0.01 a`` elsewhere; its derivative at 0 is 0.01, as torch's
    (``jax.nn.leaky_relu``'s is 1). It matters: a layer whose input weights all start at 0 (see
    :func:`stream_mlp`) sits at 0."""
    return jnp.where(a > 0, a, 0.01 * a)


STREAM_ACTIVATIONS = {**ACTIVATIONS, "leaky_relu": leaky_relu}
LAYER_NORM_EPS = 1e-5  # torch's F.layer_norm default, as the authors' networks use it
OBSERVATION_EPS = 1e-8  # the authors' NormalizeObservation


# ---------------------------------------------------------------------------------------------
# The network of stream TD(λ)

def sparse_uniform_kernel(values: jax.Array, order: jax.Array, sparsity: float) -> jax.Array:
    """A ``[fan_in, fan_out]`` kernel from two arrays of that shape drawn from ``U(0, 1)``: the
    weights ``U(−1/√fan_in, 1/√fan_in)`` from ``values``, then ``⌈sparsity · fan_in⌉`` of each
    output unit's input weights set to 0, those of the smallest ``order`` in its column (a
    random subset: the authors' ``sparse_init``)."""
    fan_in = values.shape[0]
    kernel = (2.0 * values - 1.0) / math.sqrt(fan_in)
    ranks = jnp.argsort(jnp.argsort(order, axis=0), axis=0)
    return jnp.where(ranks < math.ceil(sparsity * fan_in), 0.0, kernel)


def layer_norm(hidden: jax.Array) -> jax.Array:
    """LayerNorm over the last axis without learned scale or shift (biased variance)."""
    mean = jnp.mean(hidden, axis=-1, keepdims=True)
    variance = jnp.mean(jnp.square(hidden - mean), axis=-1, keepdims=True)
    return (hidden - mean) / jnp.sqrt(variance + LAYER_NORM_EPS)


@recorded
def stream_mlp(sizes: Sequence[int] = (2, 32, 32, 1), *, layer_norm_hidden: bool = True,
               sparsity: float = 0.9, activation: str = "leaky_relu") -> Model:
    """The value network of stream TD(λ) (the authors' ``StreamTD``): linear layers, each hidden
    one followed by LayerNorm (no learned affine) and the activation.

    Params: a list of ``{"kernel": [fan_in, fan_out], "bias": [fan_out]}``, as
    :func:`metastep.deep.mlp`. Kernels start sparse and uniform (:func:`sparse_uniform_kernel`,
    every layer, the output one too), biases at 0. With fewer than 10 inputs, 90% sparsity cuts
    every input weight of the first layer (``⌈0.9 n⌉ = n``), as the authors' code does: the first
    layer starts at 0 and LayerNorm's gradient moves it.

    Args:
      sizes: the inputs, the hidden widths, then 1 (one value).
      layer_norm_hidden: LayerNorm after each hidden layer.
      sparsity: in [0, 1), the fraction of each unit's input weights set to 0 at init.
      activation: one of ``"leaky_relu"`` (the authors'), ``"relu"``, ``"tanh"``, ``"sigmoid"``,
        ``"identity"``.
    """
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                             for s in sizes) or sizes[-1] != 1:
        raise ValueError(f"`sizes` must be two or more positive integers ending in 1 (one "
                         f"value), got {sizes!r}")
    check_unit_interval("sparsity", sparsity)
    if float(sparsity) == 1.0:
        raise ValueError("`sparsity` must be < 1: 1 cuts every weight")
    if activation not in STREAM_ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {tuple(STREAM_ACTIVATIONS)}, "
                         f"got {activation!r}")
    act = STREAM_ACTIVATIONS[activation]

    shapes = list(zip(sizes[:-1], sizes[1:]))
    offsets = np.cumsum([0] + [2 * fan_in * fan_out for fan_in, fan_out in shapes])

    def init(key):
        # One draw for every layer: each random draw compiles on its own, seconds under vmap.
        uniforms = jax.random.uniform(key, (int(offsets[-1]),))
        params = []
        for (fan_in, fan_out), start in zip(shapes, offsets[:-1]):
            values, order = uniforms[start:start + 2 * fan_in * fan_out].reshape(
                2, fan_in, fan_out)
            params.append({"kernel": sparse_uniform_kernel(values, order, sparsity),
                           "bias": jnp.zeros((fan_out,))})
        return params

    def apply(params, inputs):
        hidden = inputs
        for layer in params[:-1]:
            hidden = hidden @ layer["kernel"] + layer["bias"]
            hidden = act(layer_norm(hidden) if layer_norm_hidden else hidden)
        return hidden @ params[-1]["kernel"] + params[-1]["bias"]

    # Compiled as one call: eagerly, each of its small operations would compile on its own.
    return Model(jax.jit(init), apply, (sizes[0],))


# ---------------------------------------------------------------------------------------------
# The learner

class RunningMoments(NamedTuple):
    """Welford's running moments (the authors' ``SampleMeanStd``)."""

    count: jax.Array  # samples seen
    mean: jax.Array  # m
    squares: jax.Array  # Σ (x − m_old)(x − m_new)


def new_moments(shape: Sequence[int], dtype: Any) -> RunningMoments:
    zeros = jnp.zeros(shape, dtype)
    return RunningMoments(jnp.zeros((), jnp.int32), zeros, jnp.zeros_like(zeros))


def welford_update(moments: RunningMoments, x: jax.Array):
    """The moments updated with ``x``, and the sample variance (1 until two samples)."""
    count = moments.count + 1
    mean = moments.mean + (x - moments.mean) / count
    squares = moments.squares + (x - moments.mean) * (x - mean)
    variance = jnp.where(count < 2, 1.0, squares / jnp.maximum(count - 1, 1))
    return RunningMoments(count, mean, squares), variance


class DeepTDLearnerState(NamedTuple):
    params: Any  # θ
    trace: Any  # γ_{t−1} λ z: the decayed trace, before the next gradient is added
    previous_features: jax.Array  # x_{t−1} as the network saw it (normalized, if so)
    has_previous: jax.Array  # bool: False before the first step
    observations: RunningMoments  # of x (normalize_observations)
    reward_sum: jax.Array  # u_t, the discounted reward sum (scale_rewards)
    reward_sums: RunningMoments  # of u (scale_rewards)
    opt_state: Any


@recorded
class DeepTDLearner:
    """TD(λ) on a network's value, accumulating traces over its parameters, step sizes from
    ``method``; see the module docstring for the step.

    Args:
      model: a :class:`metastep.deep.Model` with one output (:func:`stream_mlp`,
        ``ms.deep.mlp((n, ..., 1))``) or a Flax or Equinox model (with ``input_shape``).
      method: ``ms.td.obgd()`` (stream TD(λ)), ``ms.td.adaptive_obgd()``, a metastep method
        (``ms.normalized_idbd``, ``ms.idbd``, ``ms.autostep``: they read ``curvature``),
        ``ms.sgd(α)`` (semi-gradient TD(λ)) or any optax transformation, given the gradient
        ``−δ z`` and the side signals of the module docstring.
      discount: ``γ`` in [0, 1] for streams of plain rewards; a problem's stream carries its own
        per-step discount, which must equal it.
      trace_decay: ``λ`` in [0, 1].
      input_shape: the shape of one input, for Flax and Equinox models.
      normalize_observations: normalize the inputs by their running mean and variance.
      scale_rewards: divide the rewards by the running standard deviation of their discounted
        sum (the predictions and TD errors reported are scaled back).

    Attributes:
      layer_names: the parameter arrays, in the order of the records.
      layer_sizes: their sizes: ``records["step_sizes"]`` concatenates them in that order.
      num_features: the length of one input when it is a vector, else None.
    """

    quantile_levels = QUANTILE_LEVELS

    def __init__(self, model: Model | Any, method: optax.GradientTransformation,
                 discount: float, trace_decay: float, *,
                 input_shape: Sequence[int] | None = None, normalize_observations: bool = False,
                 scale_rewards: bool = False):
        self.method = as_method(method)
        check_unit_interval("discount", discount)
        check_unit_interval("trace_decay", trace_decay)
        for name, flag in (("normalize_observations", normalize_observations),
                           ("scale_rewards", scale_rewards)):
            if not isinstance(flag, bool):
                raise ValueError(f"`{name}` must be True or False, got {flag!r}")
        self.model = as_model(model, input_shape)
        self.discount = discount
        self.trace_decay = trace_decay
        self.normalize_observations = normalize_observations
        self.scale_rewards = scale_rewards
        self.input_shape = self.model.input_shape
        self.num_features = self.input_shape[0] if len(self.input_shape) == 1 else None
        param_shapes = jax.eval_shape(self.model.init, jax.random.PRNGKey(0))
        self.layer_names = leaf_names(param_shapes)
        self.layer_sizes = [math.prod(leaf.shape) for leaf in jax.tree.leaves(param_shapes)]
        for name, leaf in zip(self.layer_names, jax.tree.leaves(param_shapes)):
            if not jnp.issubdtype(leaf.dtype, jnp.floating):
                raise ValueError(f"`model` parameters must be real floating point, got "
                                 f"{leaf.dtype} for {name!r}")
        output = jax.eval_shape(self.model.apply, param_shapes,
                                jax.ShapeDtypeStruct((1, *self.input_shape), float))
        if math.prod(output.shape) != 1:
            raise ValueError(f"`model` must give one value per input (output [1] or [1, 1] for a "
                             f"batch of 1), got {output.shape}")

    def init(self, key: jax.Array | None = None) -> DeepTDLearnerState:
        """Params from ``model.init(key)``, zero trace, no previous state."""
        key = jax.random.PRNGKey(0) if key is None else key
        params = self.model.init(key)
        dtype = jnp.result_type(*jax.tree.leaves(params))
        return DeepTDLearnerState(params, jax.tree.map(jnp.zeros_like, params),
                                  jnp.zeros(self.input_shape, dtype), jnp.zeros((), bool),
                                  new_moments(self.input_shape, dtype), jnp.zeros((), dtype),
                                  new_moments((), dtype), self.method.init(params))

    def value(self, params: Any, x: jax.Array) -> jax.Array:
        """``v(x; θ)`` of one input."""
        return self.model.apply(params, x[None]).reshape(())

    def step(self, state: DeepTDLearnerState, x: jax.Array, y: Any):
        """Predict ``v(x_t)``, then close the previous step (see the module docstring). ``y``: a
        :class:`metastep.td.TDTarget`, or the reward alone (the learner's ``discount``)."""
        check_real("x", x)
        if jnp.shape(x) != self.input_shape:
            raise ValueError(f"`x` must have shape {list(self.input_shape)}, got {jnp.shape(x)}")
        reward, discount, true_value = reward_and_discount(y, self.discount)
        params = state.params
        dtype = jnp.result_type(*jax.tree.leaves(params))
        x = jnp.asarray(x, dtype)
        started = state.has_previous
        reward, discount = jnp.asarray(reward, dtype), jnp.asarray(discount, dtype)
        observations, reward_sum, reward_sums = (state.observations, state.reward_sum,
                                                 state.reward_sums)
        if self.normalize_observations:
            observations, variance = welford_update(observations, x)
            x = (x - observations.mean) / jnp.sqrt(variance + OBSERVATION_EPS)
        scale = jnp.ones((), dtype)
        if self.scale_rewards:  # from the first transition on (step 0 closes none)
            reward_sum = jnp.where(started, discount * reward_sum + reward, reward_sum)
            updated, variance = welford_update(reward_sums, reward_sum)
            reward_sums = jax.tree.map(lambda new, old: jnp.where(started, new, old),
                                       updated, reward_sums)
            scale = jnp.sqrt(variance + OBSERVATION_EPS)  # variance 1 before a transition
        # Both states under θ_t, each its own pass: a method that ignores ``next_features``
        # leaves x_t's backward pass unused, and the compiler drops it.
        value_and_grad = jax.value_and_grad(self.value)
        previous_value, previous_gradient = value_and_grad(params, state.previous_features)
        prediction, next_gradient = value_and_grad(params, x)
        previous_value = jnp.where(started, previous_value, 0.0)
        previous_gradient = jax.tree.map(lambda g: jnp.where(started, g, 0.0), previous_gradient)
        td_error = reward / scale + discount * prediction - previous_value
        trace = jax.tree.map(jnp.add, state.trace, previous_gradient)
        updates, opt_state = self.method.update(
            jax.tree.map(lambda z: -td_error * z, trace), state.opt_state, params,
            td_error=td_error, trace=trace, features=previous_gradient,
            next_features=next_gradient, discount=discount,
            curvature=jax.tree.map(jnp.multiply, previous_gradient, trace))
        decayed = jax.tree.map(lambda z: discount * self.trace_decay * z, trace)
        new_state = DeepTDLearnerState(optax.apply_updates(params, updates), decayed, x,
                                       jnp.ones((), bool), observations, reward_sum,
                                       reward_sums, opt_state)
        return new_state, StepOutput(scale * prediction, scale * td_error,
                                     self.step_sizes(new_state),
                                     value_metrics(scale * prediction, true_value))

    def step_sizes(self, state: DeepTDLearnerState) -> Any:
        """Per-weight step sizes used by the last update, a pytree like the params (NaN for
        plain optax optimizers)."""
        return step_sizes_or_nan(state.opt_state, state.params)

    def record(self, state: DeepTDLearnerState) -> dict[str, jax.Array]:
        """``"step_sizes"`` [P]: every parameter's step size, the arrays of ``layer_names``
        concatenated; ``"log10_step_size_mean"`` [L] and ``"log10_step_size_quantiles"``
        [L, 3] per array (as ``ms.deep.DeepLearner``'s)."""
        step_sizes = self.step_sizes(state)
        logs = log10_step_sizes(step_sizes)
        return {
            "step_sizes": jnp.concatenate([a.reshape(-1) for a in jax.tree.leaves(step_sizes)]),
            "log10_step_size_mean": jnp.stack([jnp.mean(values) for values in logs]),
            "log10_step_size_quantiles": _quantiles_per_array(logs, self.quantile_levels),
        }

    bin_records = LinearTDHooks.bin_records  # value_error as a root mean square per bin
    check_problem = LinearTDHooks.check_problem  # the stream's discount must be the learner's


__all__ = ["DeepTDLearner", "DeepTDLearnerState", "RunningMoments", "sparse_uniform_kernel",
           "stream_mlp", "welford_update"]
