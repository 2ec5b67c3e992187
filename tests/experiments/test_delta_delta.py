"""The delta-delta experiment: a smoke run, and the talk's signatures at a small budget."""

import jax
import numpy as np
import pytest
from matplotlib.figure import Figure

from metastep.experiments import delta_delta, get, lookup
from metastep.experiments._base import is_finite_number

EXPERIMENT = get("delta-delta")


def compute(budget):
    return {shard.name: shard.compute() for shard in EXPERIMENT.shards(budget)}


@pytest.fixture(scope="module")
def smoke_tables(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)


def test_smoke_tables_are_tidy(smoke_tables):
    budget = EXPERIMENT.budget("smoke")
    for name, table in smoke_tables.items():
        assert {"method", "seed", "step"} <= set(table.columns), name
        assert set(table["seed"]) == set(budget.seed_list), name
    trajectories = smoke_tables["trajectories"]
    assert len(trajectories) == len(delta_delta.STEP_SIZES) * budget.seeds * 50
    assert set(smoke_tables["delta-delta"]["case"]) == set(delta_delta.STEP_SIZES)


def test_smoke_summary_has_finite_published_numbers(smoke_tables):
    summary = EXPERIMENT.summarize(smoke_tables, EXPERIMENT.budget("smoke"))
    for published in EXPERIMENT.published:
        assert is_finite_number(lookup(summary, published.key)), published.key


def test_smoke_figures_have_labelled_axes(smoke_tables):
    figures = EXPERIMENT.figures(smoke_tables, EXPERIMENT.budget("smoke"))
    assert set(figures) == {"weight-trajectories", "sign-agreement", "delta-delta-step-sizes"}
    for name, figure in figures.items():
        assert isinstance(figure, Figure)
        for axes in figure.axes:
            if axes.get_subplotspec().is_last_row():
                assert axes.get_xlabel(), name
            if axes.get_subplotspec().is_first_col():
                assert axes.get_ylabel(), name


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
