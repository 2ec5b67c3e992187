"""Normalized IDBD: IDBD over RMSprop-normalized gradients, with a normalized meta-gradient.

A candidate for one default setting that needs no tuning across problems and data scales
(docs/methods.md#normalized_idbd). It combines normalization and optimization, as Degris et al.
(2024) propose: RMSprop divides each gradient by its running scale, and IDBD learns a step size per
weight on top of that; and, as Autostep does (Mahmood et al. 2012), the meta-gradient is divided by
its own running scale, so that the meta step size is dimensionless. With gradient ``g``, diagonal
curvature ``c``, log step sizes ``β`` (init ``ln α₀``), trace ``h``, the running averages ``v``
(of ``g²``) and ``n`` (of ``(g h)²``), both from 0 and bias-corrected, and ``t`` the update count::

    v ← v + γ (g² − v);         s = 1 / sqrt(v / (1 − (1 − γ)^t) + ε)   # RMSprop's normalizer
    z = g h                                                              # ∂loss/∂β, the OLD h
    n ← n + ρ (z² − n);         β ← β − μ z / sqrt(n / (1 − (1 − ρ)^t))  # 0 where n = 0
    α = exp(β)
    w ← w − α s g
    h ← h [1 − α s c]⁺ − α s g

``h ≈ ∂w/∂β`` as in IDBD, for the normalized update ``α s g`` (the dependence of ``s`` on ``w`` is
dropped). The step size reported per weight (``step_sizes``, as for RMSprop) is ``α s``, the factor
that multiplies ``g``; before any update, ``α₀ / sqrt(ε)`` (the rule at ``v = 0``). Why each part:

* ``z / sqrt(n)``: ``z`` scales with the square of the targets' scale (IDBD's best ``θ`` moves by
  two decades per decade of the data); the ratio does not, so one ``μ`` serves every scale. Its
  size is about 1 whatever the weight, so ``β`` moves by about ``μ`` per step where ``g h`` keeps
  its sign: a step size that should fall falls at a steady rate in ``log α``, not at a rate that
  fades as ``α`` (and with it ``h``) gets small, as IDBD's does.
* ``s``: the update ``α s g`` is in the units of the weights, as Adam's is, so ``α`` has the same
  meaning in every layer and network; ``α₀`` can be set from the network's shape alone.
* ``α₀ = unit_step_size / fan_in`` (default): a unit's inputs share one initial total step size,
  as in LeCun-style initializations; the units are those of Autostep's ``unit_axes="auto"``
  (a 1-D array is one unit: the linear learner's weight vector; a kernel ``[in, out]`` has one unit
  per output, fan-in ``in``).

No bound on the effective step size: Autostep's ``M = max(Σ α c, 1)`` cuts ``α`` on the examples
whose inputs happen to be large, which on Sutton's weight-flipping problem costs more than it
saves (screened over plain gradients at ``μ = 0.003``: MSE 1.97 with ``M``, 1.43 without).
Reductions: with ``μ = 0`` this is RMSprop with bias correction and a fixed step size ``α₀`` per
weight.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common, _signals
from metastep.methods._step_sizes import method_state


@method_state
class NormalizedIDBDState(NamedTuple):
    count: jax.Array  # t, the number of updates made (int32), for the bias corrections
    log_step_size: Any  # β, like the parameters
    meta_trace: Any  # h, like the parameters
    gradient_normalizer: Any  # v, the average of g², like the parameters
    meta_normalizer: Any  # n, the average of (g h)², like the parameters
    step_sizes: Any  # α s, the step size of the last update (multiplying g), per weight


def fan_in(shape: tuple[int, ...]) -> int:
    """The fan-in of a weight in an array of ``shape``: Autostep's ``unit_axes="auto"`` units."""
    axes = (0,) if len(shape) == 1 else range(len(shape) - 1)
    return int(np.prod([shape[axis] for axis in axes], dtype=np.int64))


@recorded
def normalized_idbd(
    meta_step_size: float = 0.003,
    unit_step_size: float = 0.1,
    *,
    initial_step_size: Any = None,
    gradient_normalizer_rate: float = 0.001,
    meta_normalizer_rate: float = 0.01,
    eps: float = 1e-8,
    normalize_gradients: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Normalized IDBD: per-weight step sizes over RMSprop-normalized gradients.

    Args:
      meta_step_size: ``μ`` ≥ 0, dimensionless: about the largest change of ``ln α`` per step.
      unit_step_size: ``κ`` > 0: ``α₀ = κ / fan_in`` for each weight (see the module docstring),
        unless ``initial_step_size`` is given.
      initial_step_size: ``α₀`` > 0 per weight instead: one number, or a pytree like the
        parameters (each leaf broadcast to its parameter's shape). ``κ`` and ``α₀`` only set
        ``β`` at ``init``; every other hyperparameter is read at each update.
      gradient_normalizer_rate: ``γ`` in (0, 1], the rate of the average of ``g²`` (Adam's
        ``1 − b₂``).
      meta_normalizer_rate: ``ρ`` in (0, 1], the rate of the average of ``(g h)²``.
      eps: ``ε`` > 0, inside the square root of RMSprop's normalizer.
      normalize_gradients: False drops RMSprop's normalizer (``s = 1``, ``v`` stays 0): IDBD over
        plain gradients with the normalized meta-gradient. Then ``α`` has the units of
        ``1 / c`` (``1 / x²`` for a linear unit) and the whole rule is free of the targets'
        scale; see docs/methods.md#normalized_idbd for what each choice wins and loses.

    Extra arguments of ``update``: ``curvature`` (required), the diagonal curvature ``c``.
    """
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _checks.check_positive("unit_step_size", unit_step_size)
    if initial_step_size is not None:
        _common.check_positive_step_sizes("initial_step_size", initial_step_size)
    for name, rate in (("gradient_normalizer_rate", gradient_normalizer_rate),
                       ("meta_normalizer_rate", meta_normalizer_rate)):
        _checks.check_positive(name, rate)
        if _checks.is_concrete(rate) and rate > 1:
            raise ValueError(f"`{name}` must be in (0, 1], got {rate}")
    _common.check_eps(eps)
    if not isinstance(normalize_gradients, bool):
        raise TypeError(f"`normalize_gradients` must be a bool, got {normalize_gradients!r}")

    def init_fn(params):
        if initial_step_size is None:
            step_size = jax.tree.map(
                lambda p: jnp.full(jnp.shape(p), unit_step_size / fan_in(jnp.shape(p)),
                                   _common.dtype_of(p)), params)
        else:
            step_size = _common.initial_blocks("initial_step_size", initial_step_size, params,
                                               "weight")
        return NormalizedIDBDState(
            _common.new_count(), jax.tree.map(jnp.log, step_size), _common.zeros_like(params),
            _common.zeros_like(params), _common.zeros_like(params),
            jax.tree.map(lambda a: a / jnp.sqrt(jnp.asarray(eps, a.dtype)), step_size)
            if normalize_gradients else jax.tree.map(jnp.copy, step_size))

    def update_fn(grads, state, params=None, **extra_args):
        del params
        curvature = _common.require_extra_arg(
            "normalized_idbd", "curvature", extra_args, _common.CURVATURE_HINT
        )
        curvature = _signals.side_signal_like("curvature", curvature, grads)
        count = _common.increment(state.count)

        def per_weight(g, h, beta, v, n, c):
            def correction(rate):  # in the weight's dtype: float16 weights keep float16 updates
                return 1.0 - (1.0 - rate) ** count.astype(_common.dtype_of(g))

            if normalize_gradients:
                v = v + gradient_normalizer_rate * (g * g - v)
                scale = jax.lax.rsqrt(v / correction(gradient_normalizer_rate) + eps)
            else:
                scale = 1.0
            z = g * h
            n = n + meta_normalizer_rate * (z * z - n)
            n_hat = n / correction(meta_normalizer_rate)
            # Double where: n = 0 only where z has always been 0, and 0/0 must not reach values
            # or gradients.
            nonzero = n_hat > 0
            ratio = jnp.where(nonzero, z * jax.lax.rsqrt(jnp.where(nonzero, n_hat, 1.0)), 0.0)
            beta = beta - meta_step_size * ratio
            a = jnp.exp(beta)
            step = a * scale
            h = h * jnp.maximum(1.0 - step * c, 0.0) - step * g
            return -step * g, h, beta, v, n, step

        out = jax.tree.map(per_weight, grads, state.meta_trace, state.log_step_size,
                           state.gradient_normalizer, state.meta_normalizer, curvature)
        treedef = jax.tree.structure(grads)
        per_leaf = treedef.flatten_up_to(out)  # one 6-tuple per leaf (none for an empty tree)
        updates, h, beta, v, n, step = (
            treedef.unflatten([parts[i] for parts in per_leaf]) for i in range(6))
        new_state = NormalizedIDBDState(count, beta, h, v, n, step)
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["NormalizedIDBDState", "normalized_idbd", "fan_in"]
