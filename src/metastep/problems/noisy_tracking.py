"""One-dimensional noisy tracking (the talk; Degris et al. 2024, Fig. 3).

Reference: docs/problems.md#noisy_tracking. A single input ``x ≡ 1``; the learner tracks a
number ``z`` that follows a random walk and is observed with noise::

    y*_t = z_t + N(0, r),   z_{t+1} = z_t + N(0, q),   z_0 = 0

Every ``regime_length`` steps a new ``σ ~ U(0, sigma_max)`` is drawn: at steps 0, L, 2L, ...; the
``σ`` of step ``t`` sets both the noise of ``y*_t`` and the increment ``z_t → z_{t+1}``. Presets:

* ``"talk"``: q = 1, r = σ² (the walk's increments are N(0, 1), the observation noise N(0, σ²));
* ``"paper"`` (Degris et al. 2024): q = σ², r = 1.

The best tracker ``w ← w + α (y* − w)`` uses the steady-state Kalman gain (Sutton 1981)::

    P = (q + sqrt(q² + 4 q r)) / 2,   α* = P / (P + r),   optimal MSE = P + r

``P`` is the variance of ``z_t`` given ``y*_0 .. y*_{t−1}``; closed forms: ``α* = 2 / (1 +
sqrt(1 + 4σ²))`` (talk) and ``α* = (−σ² + sqrt(σ⁴ + 4σ²)) / 2`` (paper). ``info`` holds, per step,
``true_weights`` ([1], the current ``z``), ``sigma``, ``optimal_step_size`` and ``optimal_mse``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metastep._checks import check_count, check_non_negative
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample, step_keys
from metastep.problems._common import standard_draws, steps_of_block

PRESETS = ("talk", "paper")


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {PRESETS}, got {preset!r}")


def noise_variances(sigma: Any, preset: str = "talk") -> tuple[jax.Array, jax.Array]:
    """``(q, r)``: the variances of the walk's increments and of the observation noise."""
    _check_preset(preset)
    variance = jnp.square(jnp.asarray(sigma, jnp.result_type(float)))
    one = jnp.ones_like(variance)
    return (one, variance) if preset == "talk" else (variance, one)


def steady_state_variance(q: Any, r: Any) -> jax.Array:
    """``P = (q + sqrt(q² + 4 q r)) / 2``: the steady-state prior variance of the Kalman filter."""
    return (q + jnp.sqrt(q * q + 4 * q * r)) / 2


def steady_state_gain(q: Any, r: Any) -> jax.Array:
    """``α* = P / (P + r)``; 1 when ``q = r = 0`` (exact observations: take them as they are)."""
    p = steady_state_variance(q, r)
    total = p + r
    # The inner where keeps 0/0 out of the branch that is not selected too.
    return jnp.where(total > 0, p / jnp.where(total > 0, total, 1), 1)


def optimal_step_size(sigma: Any, preset: str = "talk") -> jax.Array:
    """The optimal fixed step size ``α*`` of the tracker at noise level ``σ``."""
    return steady_state_gain(*noise_variances(sigma, preset))


def optimal_mse(sigma: Any, preset: str = "talk") -> jax.Array:
    """The MSE ``P + r`` of the optimal tracker (the steady-state Kalman filter) at ``σ``."""
    q, r = noise_variances(sigma, preset)
    return steady_state_variance(q, r) + r


def fixed_step_size_mse(step_size: Any, sigma: Any, preset: str = "talk") -> jax.Array:
    """The steady-state MSE of ``w ← w + α (y* − w)`` for a fixed ``α`` in (0, 2) at ``σ``.

    The prior error variance ``V`` solves ``V = (1 − α)² V + α² r + q``, and the MSE is ``V + r``;
    at ``α = α*`` it equals :func:`optimal_mse`.
    """
    q, r = noise_variances(sigma, preset)
    alpha = jnp.asarray(step_size, q.dtype)
    return (alpha * alpha * r + q) / (alpha * (2 - alpha)) + r


class NoisyTrackingState(NamedTuple):
    key: jax.Array  # the stream key: step t draws from fold_in(key, t)
    step: jax.Array  # uint32, the index of the next step
    z: jax.Array  # [] the tracked number at the next step
    sigma: jax.Array  # [] the σ of the current regime


@recorded
def noisy_tracking(
    preset: str = "talk", regime_length: int = 50_000, sigma_max: float = 3.0
) -> Problem:
    """The noisy-tracking stream (the talk; Degris et al. 2024).

    Args:
      preset: ``"talk"`` (q = 1, r = σ²) or ``"paper"`` (q = σ², r = 1).
      regime_length: ``L`` ≥ 1, the number of steps between draws of ``σ``.
      sigma_max: ``σ`` is drawn from ``U(0, sigma_max)``, ``sigma_max`` ≥ 0; may be traced.
    """
    _check_preset(preset)
    check_count("regime_length", regime_length)
    check_non_negative("sigma_max", sigma_max)
    talk = preset == "talk"

    def draw(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        noises, u = standard_draws(key, 2, 1)
        return noises, sigma_max * u[0]

    def init(key: jax.Array) -> NoisyTrackingState:
        # Step 0 starts the first regime; its draw gives the σ of the state from the start.
        _, sigma = draw(step_keys(key, jnp.uint32(0), 1)[0])
        return NoisyTrackingState(key, jnp.uint32(0), jnp.zeros_like(sigma), sigma)

    def step(carry, inputs):
        z, sigma = carry
        new_regime, new_sigma, (walk_noise, observation_noise) = inputs
        sigma = jnp.where(new_regime, new_sigma, sigma)
        walk_std, observation_std = (1, sigma) if talk else (sigma, 1)
        y = z + observation_std * observation_noise
        return (z + walk_std * walk_noise, sigma), (z, sigma, y)

    def generate(state: NoisyTrackingState, num_steps: int) -> tuple[NoisyTrackingState, Sample]:
        noises, new_sigmas = jax.vmap(draw)(step_keys(state.key, state.step, num_steps))
        new_regime = steps_of_block(state.step, num_steps) % regime_length == 0
        # The walk is summed sequentially (not by cumsum, whose order of additions depends on the
        # block length), so the stream is the same to the bit whatever the block sizes.
        (z, sigma), (zs, sigmas, y) = jax.lax.scan(
            step, (state.z, state.sigma), (new_regime, new_sigmas, (noises[:, 0], noises[:, 1]))
        )
        info = {
            "true_weights": zs[:, None],
            "sigma": sigmas,
            "optimal_step_size": optimal_step_size(sigmas, preset),
            "optimal_mse": optimal_mse(sigmas, preset),
        }
        x = jnp.ones((num_steps, 1), zs.dtype)
        return NoisyTrackingState(state.key, state.step + num_steps, z, sigma), Sample(x, y, info)

    q_text, r_text = ("1", "σ²") if talk else ("σ²", "1")
    return Problem(
        name="noisy_tracking",
        num_features=1,
        params={"preset": preset, "regime_length": regime_length, "sigma_max": sigma_max},
        init=init,
        generate=generate,
        description=(
            f"1-D noisy tracking ({preset} preset: q = {q_text}, r = {r_text}), "
            f"σ ~ U(0, {sigma_max}) every {regime_length} steps"
        ),
    )
