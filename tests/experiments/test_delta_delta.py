"""The delta-delta experiment: its smoke tables, and the talk's signatures at a small budget
(test_every_experiment checks the tables, summary and figures every experiment owes)."""

import jax
import numpy as np
import pytest

from metastep.experiments import delta_delta, get

EXPERIMENT = get("delta-delta")


def compute(budget):
    return {shard.name: shard.compute() for shard in EXPERIMENT.shards(budget)}


@pytest.fixture(scope="module")
def smoke_tables(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)


def test_smoke_tables_hold_every_case_and_step_of_the_window(smoke_tables):
    budget = EXPERIMENT.budget("smoke")
    trajectories = smoke_tables["trajectories"]
    assert len(trajectories) == len(delta_delta.STEP_SIZES) * budget.seeds * 50
    assert set(smoke_tables["delta-delta"]["case"]) == set(delta_delta.STEP_SIZES)


def test_optimal_step_size_is_the_kalman_gain():
    q, r = delta_delta.WALK_STD**2, delta_delta.NOISE_STD**2
    p = (q + np.sqrt(q * q + 4 * q * r)) / 2
    assert delta_delta.OPTIMAL_STEP_SIZE == pytest.approx(p / (p + r), rel=1e-6)
    assert delta_delta.OPTIMAL_MSE == pytest.approx(p + r, rel=1e-6)


def test_stream_does_not_depend_on_block_sizes():
    problem = delta_delta.tracking_problem()
    generate = jax.jit(problem.generate, static_argnums=1)
    state = problem.init(jax.random.PRNGKey(3))
    whole = problem.sample(jax.random.PRNGKey(3), 12).y
    state, first = generate(state, 5)
    _, second = generate(state, 7)
    np.testing.assert_allclose(np.concatenate([first.y, second.y]), whole, rtol=1e-6)


def test_signatures_and_convergence_at_a_small_budget():
    budget = EXPERIMENT.budget("quick", steps=30_000, seeds=2)
    summary = EXPERIMENT.summarize(compute(budget), budget)
    fixed = summary["fixed"]
    # The talk's signatures: same signs when too small, alternating when too big.
    assert fixed["too_small"]["sign_agreement"] > 0.75
    assert fixed["too_big"]["sign_agreement"] < 0.35
    assert 0.4 < fixed["about_right"]["steady_sign_agreement"] < 0.6
    assert summary["sign_agreement_half_at"] == pytest.approx(delta_delta.OPTIMAL_STEP_SIZE,
                                                              rel=0.15)
    # The ΔΔ rule ends near α* from every start.
    for case in delta_delta.STEP_SIZES:
        final = summary["delta_delta"][f"from_{case}"]["final_step_size"]
        assert final == pytest.approx(delta_delta.OPTIMAL_STEP_SIZE, rel=0.15), case
