"""The experiments of the reproduction, one module each (see :mod:`metastep.experiments._base`).

Every module of this package whose name does not start with ``_`` is an experiment and defines
``EXPERIMENT``; :data:`EXPERIMENTS` collects them, in the order the report presents them.
"""

from __future__ import annotations

import importlib
import pkgutil

from metastep.experiments._base import (
    BUDGET_NAMES,
    Budget,
    Experiment,
    Published,
    Shard,
    SweptMethod,
    lookup,
    sweep_table,
)

# The report's reading order; experiments not named here follow, alphabetically.
REPORT_ORDER = (
    "switching-2d", "weight-flipping", "noisy-tracking", "scale-sensitivity", "delta-delta",
    "slowly-changing-regression", "permuted-digits", "label-permuted-digits", "permuted-fashion",
    "one-default",
)


def _discover() -> dict[str, Experiment]:
    found = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        experiment = getattr(module, "EXPERIMENT", None)
        if not isinstance(experiment, Experiment):
            raise TypeError(f"{module.__name__} must define EXPERIMENT = Experiment(...)")
        if experiment.name in found:
            raise ValueError(f"two experiments are named {experiment.name!r}")
        found[experiment.name] = experiment

    def position(name):
        return (REPORT_ORDER.index(name) if name in REPORT_ORDER else len(REPORT_ORDER), name)

    return {name: found[name] for name in sorted(found, key=position)}


EXPERIMENTS: dict[str, Experiment] = _discover()


class UnknownExperimentError(KeyError):
    """No experiment of that name is registered."""


def get(name: str) -> Experiment:
    """The experiment called ``name``; the error lists the known ones."""
    if name not in EXPERIMENTS:
        raise UnknownExperimentError(f"no experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


__all__ = [
    "BUDGET_NAMES",
    "EXPERIMENTS",
    "Budget",
    "Experiment",
    "Published",
    "Shard",
    "SweptMethod",
    "UnknownExperimentError",
    "get",
    "lookup",
    "sweep_table",
]
