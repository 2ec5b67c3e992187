"""Slowly-changing regression: the target of Dohare et al. (2024) for loss of plasticity.

Reference: S. Dohare, J. F. Hernandez-Garcia, Q. Lan, P. Rahman, A. R. Mahmood and R. S. Sutton,
"Loss of plasticity in deep continual learning", Nature 632 (2024), Extended Data Fig. 2, and the
authors' code (github.com/shibhansh/loss-of-plasticity: ``lop/nets/fix_ltu_net.py`` and
``lop/slowly_changing_regression/slowly_changing_regression.py``, configurations ``prob.json`` and
``flip_one_prob.json``); docs/problems.md#slowly_changing_regression.

The input ``x`` has ``m + 1`` entries, all 0 or 1: indices ``0 .. f − 1`` are the ``f`` slow bits,
``f .. m − 1`` the ``m − f`` fast bits, and the last index ``m`` is the bias input, always 1 (the
default: f = 15, m = 20, so x has 21 entries and x[20] = 1). Fast bits are drawn fresh each step,
each 1 with probability 1/2. The slow bits are held for ``slow_period`` steps (a *task*); task
``k`` covers steps ``k T .. (k + 1) T − 1``, and at each task boundary the slow bits change:

* ``"redraw"``: every slow bit is drawn afresh (1 with probability 1/2, so about half of them
  change); the authors' default (``prob.json``).
* ``"flip_one"``: one slow bit, chosen uniformly, flips (``flip_one_prob.json``; the version that
  the paper's Extended Data Fig. 2 describes).

The target is a fixed random network of ``k`` linear threshold units (LTUs; k = 100, β = 0.7 in
the paper's experiments). Every weight is −1 or +1 with probability 1/2: input weights ``V``
[k, m + 1], whose last column ``b`` is the hidden units' bias, output weights ``u`` [k] and an
output bias ``c``. Unit ``i`` fires (outputs 1, else 0) when its input exceeds its threshold::

    h_i = 1[ Σ_j V_ij x_j > θ_i ],   θ_i = β (m + 1) − S_i,   S_i = (m − Σ_{j<m} V_ij + b_i) / 2
    y*  = Σ_i u_i h_i + c

``S_i`` is as in the authors' code (commented there as "the number of −1s in the input weights").
Counting the negative weights among all ``m + 1`` input weights (the bias weight included) would
give the same units when ``b_i = +1`` (at β = 0.7 they fire when at most 6 of the 20 bits differ
from the pattern that the weights' signs select) but not when ``b_i = −1``: the code's unit
fires with at most 3 mismatches, the count's with at most 5. The code's form is kept because the
published curves come from it: with it the best linear fit of each task ("redraw") leaves a mean
squared error of about 0.78, below the ≈ 0.88 reported for an online linear learner, while the
count's form would leave about 1.09. There is no noise.

``info["task"]`` holds the task index ``⌊t / T⌋``. The slow bits of task 0 are drawn from step 0's
key; the bits drawn at a boundary step come from that step's key, so the stream is the same
whatever the block sizes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metastep._checks import check_count, check_finite
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample, step_keys
from metastep.problems._common import is_boundary, steps_of_block

VARIANTS = ("redraw", "flip_one")


class LTUNetwork(NamedTuple):
    input_weights: jax.Array  # [k, m + 1] ±1; the last column is the hidden units' bias
    thresholds: jax.Array  # [k] θ_i
    output_weights: jax.Array  # [k] ±1
    output_bias: jax.Array  # [] ±1


def ltu_network(key: jax.Array, num_inputs: int, num_units: int, beta: Any) -> LTUNetwork:
    """A random target network of ``num_units`` LTUs over ``num_inputs`` bits and a bias input.

    Weights are ±1 with probability 1/2; thresholds as in the module docstring (Dohare et al.).
    """
    dtype = jnp.result_type(float)
    input_key, output_key = jax.random.split(key)
    weights = jax.random.rademacher(input_key, (num_units, num_inputs + 1), dtype=dtype)
    output = jax.random.rademacher(output_key, (num_units + 1,), dtype=dtype)
    negatives = (num_inputs - jnp.sum(weights[:, :num_inputs], axis=1) + weights[:, -1]) / 2
    thresholds = beta * (num_inputs + 1) - negatives
    return LTUNetwork(weights, thresholds.astype(dtype), output[:-1], output[-1])


def ltu_network_output(network: LTUNetwork, x: jax.Array) -> jax.Array:
    """The target ``y*`` [...] of inputs ``x`` [..., m + 1] (bias input included)."""
    # HIGHEST keeps the integer-valued sums exact on accelerators (no TF32), so that the
    # comparison with the threshold is exact.
    pre_activation = jnp.matmul(x, network.input_weights.T, precision=jax.lax.Precision.HIGHEST)
    hidden = (pre_activation > network.thresholds).astype(x.dtype)
    return (
        jnp.matmul(hidden, network.output_weights, precision=jax.lax.Precision.HIGHEST)
        + network.output_bias
    )


class SlowlyChangingRegressionState(NamedTuple):
    key: jax.Array  # the stream key: step t draws from fold_in(key, t)
    step: jax.Array  # uint32, the index of the next step
    slow_bits: jax.Array  # [num_slow] 0/1, the slow bits in force before the next step
    target: LTUNetwork


@recorded
def slowly_changing_regression(
    variant: str = "redraw",
    num_slow: int = 15,
    num_fast: int = 5,
    slow_period: int = 10_000,
    num_target_units: int = 100,
    beta: Any = 0.7,
) -> Problem:
    """The slowly-changing regression stream (Dohare et al. 2024).

    Args:
      variant: ``"redraw"`` (all slow bits drawn afresh at each boundary) or ``"flip_one"``
        (one slow bit, chosen uniformly, flips).
      num_slow: ``f`` ≥ 1, the number of slow bits.
      num_fast: ``m − f`` ≥ 0, the number of bits drawn fresh each step.
      slow_period: ``T`` ≥ 1, the number of steps the slow bits are held.
      num_target_units: ``k`` ≥ 1, the number of LTUs of the target network.
      beta: ``β``, the LTUs' threshold parameter (finite; may be traced).

    ``x`` has ``num_slow + num_fast + 1`` entries, the bias input (always 1) last.
    """
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}")
    check_count("num_slow", num_slow)
    check_count("num_fast", num_fast, minimum=0)
    check_count("slow_period", slow_period)
    check_count("num_target_units", num_target_units)
    check_finite("beta", beta)
    num_bits = num_slow + num_fast
    redraw = variant == "redraw"

    def draw(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """A step's fresh slow bits (used at boundaries), fast bits and flip choice."""
        dtype = jnp.result_type(float)
        u = jax.random.uniform(key, (num_bits + 1,), dtype)
        bits = (u[:num_bits] < 0.5).astype(dtype)
        # floor(u f), guarded against rounding up to f.
        choice = jnp.minimum((u[num_bits] * num_slow).astype(jnp.int32), num_slow - 1)
        return bits[:num_slow], bits[num_slow:], choice

    def init(key: jax.Array) -> SlowlyChangingRegressionState:
        # The target network uses its own key so that no step key is reused.
        target_key, stream_key = jax.random.split(key)
        slow_bits, _, _ = draw(step_keys(stream_key, jnp.uint32(0), 1)[0])
        target = ltu_network(target_key, num_bits, num_target_units, beta)
        return SlowlyChangingRegressionState(stream_key, jnp.uint32(0), slow_bits, target)

    def step(slow_bits, inputs):
        boundary, fresh, choice = inputs
        if redraw:
            slow_bits = jnp.where(boundary, fresh, slow_bits)
        else:
            flip = boundary & (jnp.arange(num_slow) == choice)
            slow_bits = jnp.where(flip, 1 - slow_bits, slow_bits)
        return slow_bits, slow_bits

    def generate(
        state: SlowlyChangingRegressionState, num_steps: int
    ) -> tuple[SlowlyChangingRegressionState, Sample]:
        fresh, fast, choice = jax.vmap(draw)(step_keys(state.key, state.step, num_steps))
        steps = steps_of_block(state.step, num_steps)
        # Sequential only where it must be: the slow bits carry over between boundaries.
        final_bits, slow = jax.lax.scan(
            step, state.slow_bits, (is_boundary(steps, slow_period), fresh, choice)
        )
        x = jnp.concatenate([slow, fast, jnp.ones((num_steps, 1), fast.dtype)], axis=1)
        y = ltu_network_output(state.target, x)
        task = (steps // slow_period).astype(jnp.int32)
        new_state = state._replace(step=state.step + num_steps, slow_bits=final_bits)
        return new_state, Sample(x, y, {"task": task})

    return Problem(
        name="slowly_changing_regression",
        num_features=num_bits + 1,
        params={
            "variant": variant,
            "num_slow": num_slow,
            "num_fast": num_fast,
            "slow_period": slow_period,
            "num_target_units": num_target_units,
            "beta": beta,
        },
        init=init,
        generate=generate,
        description=(
            f"Dohare et al. (2024) slowly-changing regression ({variant}): {num_slow} slow bits "
            f"held {slow_period} steps, {num_fast} fast bits, a bias; target {num_target_units} "
            f"LTUs (β = {beta})"
        ),
    )
