"""Fixtures: register an experiment for one test; the toy experiment."""

import collections

import pytest

from metastep import experiments
from metastep.experiments import Experiment

from .toy import make_toy_experiment


@pytest.fixture
def register(monkeypatch):
    """``register(experiment)`` puts it in the registry for this test."""

    def register_experiment(experiment: Experiment) -> Experiment:
        monkeypatch.setitem(experiments.EXPERIMENTS, experiment.name, experiment)
        return experiment

    return register_experiment


@pytest.fixture
def toy(register):
    """The registered toy experiment and its computation counter."""
    counter = collections.Counter()
    return register(make_toy_experiment(counter)), counter
