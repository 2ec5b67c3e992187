"""The experiment protocol's shared pieces: a swept method, a shard whose config.json entry is the
arguments of its computation, and the record interval."""

import functools
import json

import jax
import numpy as np
import pytest

import metastep as ms
from metastep.experiments import Budget, Shard, SweptMethod

IDBD = SweptMethod("idbd", "IDBD", "meta_step_size", "θ", (1e-3, 1e-2), ms.idbd,
                   {"initial_step_size": 0.2}, color="tab:red")


def test_a_swept_method_builds_and_records_the_same_settings():
    assert IDBD.label == "IDBD"  # the title, unless given
    assert IDBD.config() == {"method": "idbd", "meta_step_size": [1e-3, 1e-2],
                             "initial_step_size": 0.2}
    learner = IDBD.linear_learners(3)(meta_step_size=1e-2)
    assert isinstance(learner, ms.LinearLearner) and learner.num_features == 3
    np.testing.assert_allclose(learner.step_sizes(learner.init(jax.random.PRNGKey(0))),
                               [0.2] * 3, rtol=1e-6)  # the constant reached the optimizer
    with pytest.raises(ValueError, match="`grid`"):
        SweptMethod("sgd", "SGD", "learning_rate", "α", (), ms.sgd)


def arguments_back(**arguments):
    return arguments


def test_a_shard_records_the_arguments_it_computes_with():
    problem = ms.problems.switching_2d()
    call = functools.partial(ms.problems.slowly_changing_regression, "flip_one", slow_period=50)
    shard = Shard.of_call("sweep", arguments_back, work=10, problem=problem, method=IDBD,
                          seeds=[0, 1], grid=(0.5, np.float32(2.0)), later=call)
    received = shard.compute()
    assert received["problem"] is problem and received["method"] is IDBD
    assert received["later"] is call
    assert shard.parameters == {
        "problem": problem.params,
        "method": IDBD.config(),
        "seeds": [0, 1],
        "grid": [0.5, 2.0],
        "later": {"name": "slowly_changing_regression", "variant": "flip_one", "num_slow": 15,
                  "num_fast": 5, "slow_period": 50, "num_target_units": 100, "beta": 0.7},
    }
    json.dumps(shard.parameters)  # plain JSON values


def brute_force_interval(steps, records, period=None):
    """The definition: the largest common divisor of the run (and the period) not above
    (period or steps) // records, at least 1."""
    span = steps if period is None else period
    limit = max(1, span // records)
    return max(d for d in range(1, limit + 1) if steps % d == 0 and span % d == 0)


@pytest.mark.parametrize("steps, records, period, expected", [
    (30_000, 30, None, 1_000), (3_000, 30, None, 100), (7, 3, None, 1), (1, 5, None, 1),
    (4_000, 10, 1_000, 100), (25_000, 5, 5_000, 1_000),
    (1_000, 5, 5_000, 1_000),  # shorter than a period: the bins still divide the run
    (123_000, 4, 10_000, 1_000),  # --steps not a multiple of the period
    (7, 2, 5, 1), (999, 7, 37, 1), (1_110, 2, 30, 15),
])
def test_the_record_interval_divides_the_run_and_the_period(steps, records, period, expected):
    interval = Budget(steps, 1).record_every(records, period=period)
    assert interval == expected == brute_force_interval(steps, records, period)
    assert Budget(1, 1).record_every(records, steps, period=period) == interval
