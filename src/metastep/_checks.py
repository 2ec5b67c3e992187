"""Argument checks shared by methods, problems, learners and the engine.

Each check raises ``ValueError`` naming the argument. Hyperparameters may be traced JAX values
(``ms.sweep`` ``vmap``s over them): the checks of a number's value then pass without looking, as
there is no concrete number to check; the checks of a dtype run at trace time too.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(value: Any) -> bool:
    """Whether ``value`` is a concrete value, not a tracer."""
    return not isinstance(value, jax.core.Tracer)


def _as_float(name: str, value: Any) -> float | None:
    """The value as a Python float, or None when it is traced."""
    if not is_concrete(value):
        return None
    # float() would parse a numeric string and drop an imaginary part without a word.
    if isinstance(value, (str, bytes)) or np.iscomplexobj(value):
        raise ValueError(f"`{name}` must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must be a real number, got {value!r}") from error


def check_finite(name: str, value: Any) -> None:
    """A finite real number."""
    v = _as_float(name, value)
    if v is not None and not math.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got {v}")


def check_non_negative(name: str, value: Any) -> None:
    """A finite real number ≥ 0."""
    check_finite(name, value)
    v = _as_float(name, value)
    if v is not None and v < 0:
        raise ValueError(f"`{name}` must be >= 0, got {v}")


def check_positive(name: str, value: Any, reason: str = "") -> None:
    """A finite real number > 0; ``reason``, if given, is appended to the error."""
    check_finite(name, value)
    v = _as_float(name, value)
    if v is not None and v <= 0:
        raise ValueError(f"`{name}` must be > 0, got {v}" + (f": {reason}" if reason else ""))


def check_unit_interval(name: str, value: Any) -> None:
    """Rates and decays: a number in [0, 1]."""
    check_finite(name, value)
    v = _as_float(name, value)
    if v is not None and not 0.0 <= v <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1], got {v}")


def check_count(name: str, value: object, minimum: int = 1) -> None:
    """Structural sizes (numbers of inputs, period lengths) shape arrays: Python ints only."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")


def as_count(name: str, value: Any, minimum: int = 1) -> int:
    """A count of the engine's (steps, seeds, lanes per chunk...) as a Python int: NumPy integers
    are taken too, since such counts often come from arrays."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any) -> None:
    """Inputs and targets are real numbers (bool, integer or float): a complex value would lose
    its imaginary part in a cast, a string fail deep inside. A check of the dtype alone, so it
    runs at trace time."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # e.g. metastep.td.TDTarget
        raise ValueError(f"`{name}` must be an array of real numbers, got a "
                         f"{type(value).__name__} (a TD stream's targets need a metastep.td "
                         "learner)")
    dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    if np.dtype(dtype).kind not in "biuf":
        raise ValueError(f"`{name}` must hold real numbers (bool, integer or float), got {dtype}")


def check_float_dtype(name: str, dtype: Any) -> None:
    """A real floating-point dtype (for parameters and states)."""
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"`{name}` must be a real floating-point dtype, got {np.dtype(dtype)}")
