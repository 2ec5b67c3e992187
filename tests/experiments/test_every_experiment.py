"""What every experiment owes, checked once for all on the shared smoke run: tidy tables of the
seeds each shard names, finite numbers at the published and required keys of its summary, and
its figures with labelled axes. (The per-experiment files check the science.)"""

import pytest
from matplotlib.figure import Figure

from metastep.experiments import EXPERIMENTS, lookup
from metastep.experiments._base import FILE_NAME, REQUIRED_COLUMNS, is_finite_number

# The keys each summary must hold besides its published ones (issue 3's, and what the
# figures and the report read), each a finite number or a list of them.
REQUIRED_KEYS = {
    "switching-2d": ("optimum.alpha", "optimum.mse", "idbd.final_alpha"),
    "weight-flipping": (
        "lms.best_mse", "lms.best_alpha", "idbd.best_mse", "idbd.best_theta", "oracle.best_mse",
        "oracle.best_alpha", "autostep.best_mse", "autostep.best_mu", "rmsprop.best_mse",
        "rmsprop.best_eta", "adam.best_mse", "adam.best_eta", "exp2.relevant_alpha",
        "exp2.irrelevant_alpha_max",
    ),
    "noisy-tracking": tuple(
        f"{preset}.{key}" for preset in ("talk", "paper")
        for key in ("optimal_mse", "expected_optimal_mse", "idbd.mse", "autostep.mse",
                    "rmsprop.mse", "sgd.mse")
    ),
    "scale-sensitivity": ("idbd.best_theta_span_decades", "sgd.best_alpha_span_decades",
                          "autostep.best_mu_span_decades"),
    "delta-delta": ("sign_agreement_half_at",),
    "slowly-changing-regression": tuple(
        f"{variant}.{key}" for variant in ("redraw", "flip_one")
        for key in ("answer.tuned_adam", "answer.best_meta_default_vs_tuned_adam")
    ),
    "permuted-digits": ("answer.tuned_adam", "answer.best_meta_default_vs_tuned_adam"),
    "label-permuted-digits": ("answer.tuned_adam", "answer.best_meta_default_vs_tuned_adam"),
    "permuted-fashion": ("answer.tuned_adam", "answer.best_meta_default_vs_tuned_adam"),
    "one-default": ("answer.rows", "answer.passed",
                    "rows.noisy-tracking-paper.methods.normalized-idbd.value",
                    "rows.label-permuted-digits.methods.normalized-idbd.vs_tuned_adam.difference"),
    "td-random-walk": (
        "first_10_episodes.td.best_alpha", "first_10_episodes.td.best_rms_error",
        *(f"first_10_episodes.{method}.default_rms_error"
          for method in ("tidbd-semi", "tidbd-full", "autotidbd", "swifttd")),
    ),
    "td-nonstationary": (
        "td.best.mean_value_error", "td.best.after_switch_error",
        *(f"{method}.default.{key}"
          for method in ("tidbd-semi", "tidbd-full", "autotidbd", "swifttd", "normalized-idbd")
          for key in ("mean_value_error", "after_switch_error", "segment_end_error")),
    ),
    "td-mountain-car": (
        "td.best.mean_error", "td.best.final_error",
        *(f"{method}.default.{key}"
          for method in ("tidbd-semi", "tidbd-full", "autotidbd", "swifttd", "normalized-idbd")
          for key in ("mean_error", "final_error")),
    ),
    "trace-patterning": (
        "return_variance", "zero_prediction_error", "td.best.mean_error", "td.best.msre",
        *(f"{method}.default.{key}"
          for method in ("tidbd-semi", "tidbd-full", "autotidbd", "swifttd", "normalized-idbd")
          for key in ("mean_error", "final_error", "msre", "distractor_to_cs")),
    ),
    "td-deep": ("zero_prediction_error", "adam.best.mean_error", "adam.best.final_error",
                *(f"stream-td.default.{key}" for key in ("mean_error", "final_error"))),
}
FIGURES = {
    "switching-2d": {"error-surface", "step-size-trajectories", "idbd-step-sizes-over-time"},
    "weight-flipping": {"asymptotic-mse", "exp2-step-sizes"},
    "noisy-tracking": {"step-size-trajectories", "step-size-vs-optimal", "mse-per-regime",
                       "hyperparameter-sweeps"},
    "scale-sensitivity": {"error-vs-hyperparameter", "best-hyperparameter-vs-scale"},
    "delta-delta": {"weight-trajectories", "sign-agreement", "delta-delta-step-sizes"},
    "slowly-changing-regression": {
        f"{figure}-{variant}" for variant in ("redraw", "flip_one")
        for figure in ("online-squared-error", "sensitivity", "step-sizes")
    },
    "permuted-digits": {"online-accuracy", "sensitivity", "step-sizes"},
    "label-permuted-digits": {"online-accuracy", "sensitivity", "step-sizes"},
    "permuted-fashion": {"online-accuracy", "sensitivity", "step-sizes"},
    "one-default": {"margin-over-tuned-adam", "candidate-step-sizes", "accuracy-per-task"},
    "td-random-walk": {"error-vs-step-size", "td-lambda-curves", "meta-step-size-sweeps",
                       "step-sizes-per-state"},
    "td-nonstationary": {"error-around-switches", "step-sizes-over-time", "error-vs-step-size"},
    "td-mountain-car": {"error-over-time", "error-vs-step-size", "step-sizes-over-time"},
    "trace-patterning": {"error-over-time", "error-vs-step-size", "step-sizes-per-group"},
    "td-deep": {"error-over-time", "error-vs-step-size", "step-sizes-over-time"},
}


def test_the_tables_cover_every_experiment():
    assert set(REQUIRED_KEYS) == set(EXPERIMENTS) == set(FIGURES)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_smoke_tables_are_tidy(smoke_run, name):
    experiment = EXPERIMENTS[name]
    tables = smoke_run.tables(name)
    for shard in experiment.shards(experiment.budget("smoke")):
        table = tables[shard.name]
        assert len(table) and set(REQUIRED_COLUMNS) <= set(table.columns), shard.name
        assert not table[list(REQUIRED_COLUMNS)].isna().any().any(), shard.name
        # The seeds the shard's config.json entry names, all of them and no other.
        assert sorted(set(table["seed"])) == sorted(shard.parameters["seeds"]), shard.name


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_smoke_summary_has_finite_published_and_required_numbers(smoke_run, name):
    experiment = EXPERIMENTS[name]
    summary = experiment.summarize(smoke_run.tables(name), experiment.budget("smoke"))
    keys = REQUIRED_KEYS[name] + tuple(published.key for published in experiment.published)
    for key in keys:
        value = lookup(summary, key)
        values = value if isinstance(value, list) else [value]
        assert values and all(is_finite_number(v) for v in values), (key, value)


def labelled_panels(figure: Figure) -> list:
    """The panels of a figure that carry data: visible, with axes, in a grid (no colorbar)."""
    return [axes for axes in figure.axes
            if axes.get_visible() and axes.axison and axes.get_label() != "<colorbar>"
            and axes.get_subplotspec() is not None]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_smoke_figures_have_labelled_axes(smoke_run, name):
    figures = smoke_run.figures(name)
    assert set(figures) == FIGURES[name]
    for figure_name, figure in figures.items():
        assert FILE_NAME.fullmatch(figure_name) and isinstance(figure, Figure), figure_name
        panels = labelled_panels(figure)
        assert panels, figure_name
        for axes in panels:
            spec = axes.get_subplotspec()
            if spec.is_last_row():
                assert axes.get_xlabel(), (figure_name, axes.get_title())
            if spec.is_first_col():
                assert axes.get_ylabel(), (figure_name, axes.get_title())
