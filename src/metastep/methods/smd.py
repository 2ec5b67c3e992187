"""SMD: stochastic meta-descent, local gain adaptation (Schraudolph 1999).

Reference: N. N. Schraudolph, "Local gain adaptation in stochastic gradient descent", ICANN 1999.
Rule as written in docs/methods.md#smd. With gradient ``g``, gains ``p`` (init
``α₀``), trace ``v`` (init 0), meta step size ``μ``, decay ``λ ∈ [0, 1]`` and gain floor factor
``ϱ``, in this order::

    p ← p · max(ϱ, 1 − μ g v)     # the OLD v
    w ← w − p g                   # the NEW p
    v ← λ v − p (g + λ C v)       # C v with the OLD v; linear unit: C v = x (x·v)

``v ≈ ∂w/∂ln p`` (the full vector, through the curvature matrix ``C``, where IDBD keeps only its
diagonal), and ``max(ϱ, ·)`` linearizes ``exp`` while never cutting a gain by more than ``ϱ`` at
once.

Curvature: the extra argument ``curvature_vector_product`` (a function ``v -> C v`` over pytrees
like the parameters, or a :class:`~metastep.methods.CurvatureVectorProduct`, as
:func:`metastep.deep.extra_args` gives, which also works as an argument of a jitted ``update`` and
inside ``optax.masked``/``optax.multi_transform``, where it multiplies by the group's diagonal
block of ``C``) gives the rule above. Without it, SMD falls back to the diagonal ``c ⊙ v``
from the extra argument ``curvature``, which drops the coupling between weights (IDBD's
approximation); with neither, ``update`` raises ``ValueError``.

Granularity (an extension for networks, as IDBD's): with ``"tensor"`` or ``"scalar"`` one gain is
shared by each parameter array or by all weights. ``−g v`` is the per-weight meta-gradient of
``ln p``, so a shared gain takes the sum over its block,
``p_b ← p_b max(ϱ, 1 − μ Σ_{i∈b} g_i v_i)``; ``v`` stays per weight, and ``v ≈ ∂w/∂ln p_b``
through the same recursion with ``p`` broadcast.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common, _signals
from metastep.methods._step_sizes import method_state


@method_state
class SMDState(NamedTuple):
    step_sizes: Any  # p used by the last update, per weight
    meta_trace: Any  # v, like the parameters
    gain: Any  # p, block-shaped (see granularity)


def _curvature_times(trace: Any, grads: Any, extra_args: dict) -> Any:
    """``C v``: exact through ``curvature_vector_product``, else diagonal through ``curvature``."""
    product = extra_args.get("curvature_vector_product")
    if product is not None:
        return _signals.curvature_vector_product(trace, grads, product)
    curvature = extra_args.get("curvature")
    if curvature is not None:
        curvature = _signals.side_signal_like("curvature", curvature, grads)
        return jax.tree.map(jnp.multiply, curvature, trace)
    raise ValueError(
        "smd needs the extra argument `curvature_vector_product` in update(...), a function "
        "v -> C v over pytrees like the parameters (lambda v: x * (x @ v) for a linear unit), or, "
        "for the diagonal approximation C v ≈ c * v, the extra argument `curvature`: "
        + _common.CURVATURE_HINT
    )


@recorded
def smd(
    meta_step_size: float = 0.01,
    initial_step_size: float = 0.05,
    decay: float = 1.0,
    min_gain_factor: float = 0.5,
    *,
    granularity: str = "weight",
) -> optax.GradientTransformationExtraArgs:
    """SMD (Schraudolph 1999): per-weight gains learned through a full curvature-vector product.

    Args:
      meta_step_size: ``μ`` ≥ 0. Like IDBD's ``θ``, its best value depends on the scale of the data.
      initial_step_size: ``α₀`` > 0, the initial gains (it only sets the state at ``init``; the
        other hyperparameters are read at each update).
      decay: ``λ`` in [0, 1], how far back ``v`` remembers the effect of past gains (1: all the
        way, the paper's choice for single-layer models; 0: only the last step).
      min_gain_factor: ``ϱ`` in (0, 1], the most a gain can shrink in one step (the paper's ½).
      granularity: ``"weight"`` (one gain per weight, the paper), ``"tensor"`` (one per parameter
        array) or ``"scalar"`` (one for all weights).

    Extra arguments of ``update``: ``curvature_vector_product`` (``v -> C v``), or, as a diagonal
    fallback, ``curvature`` (``c``); one of them is required.
    """
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _checks.check_positive("initial_step_size", initial_step_size)
    _checks.check_unit_interval("decay", decay)
    _checks.check_unit_interval("min_gain_factor", min_gain_factor)
    _checks.check_positive("min_gain_factor", min_gain_factor)
    _common.check_granularity(granularity)

    def init_fn(params):
        gain = _common.init_blocks(params, initial_step_size, granularity)
        step_size = _common.broadcast_blocks(gain, params, granularity)
        return SMDState(step_size, _common.zeros_like(params), gain)

    def new_gain(p, gv):
        return p * jnp.maximum(min_gain_factor, 1.0 - meta_step_size * gv)

    def new_trace(v, p, g, cv):
        return decay * v - p * (g + decay * cv)

    def update_fn(grads, state, params=None, **extra_args):
        del params
        curvature_times_trace = _curvature_times(state.meta_trace, grads, extra_args)
        meta_gradient = _common.sum_to_blocks(
            jax.tree.map(jnp.multiply, grads, state.meta_trace), granularity
        )
        gain = jax.tree.map(new_gain, state.gain, meta_gradient)
        step_size = _common.broadcast_blocks(gain, grads, granularity)
        updates = jax.tree.map(lambda p, g: -p * g, step_size, grads)
        meta_trace = jax.tree.map(
            new_trace, state.meta_trace, step_size, grads, curvature_times_trace
        )
        return updates, _common.cast_like(SMDState(step_size, meta_trace, gain), state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["SMDState", "smd"]
