"""The continual benchmarks' shared machinery: the roster's grids, the plasticity metrics and
summary on hand-made tables, a diverging method inside the roster, and permuted-fashion without
its data. (``test_reproduce`` runs each continual experiment at its smoke budget.)"""

import dataclasses
import functools
import math

import numpy as np
import pandas as pd
import pytest

import metastep as ms
from metastep.cli import main
from metastep.experiments import _continual, _plasticity, _roster, permuted_fashion
from metastep.experiments._continual import Benchmark
from metastep.problems.fashion import FASHION_MNIST_ENV
from metastep.report.storage import read_json


def test_grids_are_centred_on_the_library_defaults():
    (idbd,) = _roster.roster(["idbd"], 5, {})  # ms.idbd's default meta step size: 0.01
    np.testing.assert_allclose(idbd.grid, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    (adam, sgd) = _roster.roster(["adam", "sgd"], 3, {"adam": 1e-3, "sgd": 1e-2})
    np.testing.assert_allclose(adam.grid, [10**-3.5, 1e-3, 10**-2.5])
    assert sgd.name == "sgd"  # in the order asked for
    everything = _roster.roster(_roster.ROSTER, 1, {})
    assert [method.name for method in everything] == list(_roster.ROSTER)
    with pytest.raises(ValueError, match="odd"):
        _roster.roster(["adam"], 4, {"adam": 1e-3})
    with pytest.raises(ValueError, match="unknown methods"):
        _roster.roster(["adam", "lbfgs"], 3, {"adam": 1e-3})
    (sgd,) = _roster.roster(["sgd"], 1, {})  # ms.sgd's default
    assert sgd.grid == (0.01,)


# ---------------------------------------------------------------------------------------------
# Plasticity and the summary, on a hand-made table

TASKS = 20
LEVELS = {"adam": {1e-4: 0.5, 1e-3: 0.7, 1e-2: 0.6}, "idbd": {1e-3: 0.65, 1e-2: 0.75, 1e-1: 0.4}}
DEFAULTS = {"adam": 1e-3, "idbd": 1e-2}
DIVERGED = ("idbd", 1e-1, 1, 12)  # method, value, seed, from task


def hand_made_table(metric: str) -> pd.DataFrame:
    """Two records per task whose mean is ``level + 0.01 task + 0.001 seed``; one lane diverges
    at task 12."""
    rows = []
    for method, levels in LEVELS.items():
        for point, (value, level) in enumerate(levels.items()):
            for seed in (0, 1):
                for task in range(TASKS):
                    mean = level + 0.01 * task + 0.001 * seed
                    for record, offset in enumerate((-0.05, 0.05)):
                        broken = (method, value, seed) == DIVERGED[:3] and task >= DIVERGED[3]
                        rows.append({
                            "method": method, "value": value, "point": point,
                            "default": value == DEFAULTS[method], "seed": seed,
                            "step": 100 * task + 50 * (record + 1), "task": task,
                            metric: np.nan if broken else mean + offset, "diverged": broken,
                        })
    return pd.DataFrame(rows)


def test_early_late_compares_the_first_and_last_tenth_of_the_tasks():
    per_task = pd.Series(np.arange(20.0), index=np.arange(20)[::-1]).sort_index(ascending=False)
    early, late = _plasticity.early_late(per_task)
    assert (early, late) == (np.mean([19, 18]), np.mean([1, 0]))  # by task, not by row order
    assert _plasticity.early_late(pd.Series([3.0, 5.0, 4.0, 1.0, 2.0])) == (3.0, 2.0)  # 1 task


def test_plasticity_per_run_on_a_hand_made_table():
    runs = _plasticity.run_results(hand_made_table("accuracy"), "accuracy")
    adam = runs.loc[("adam", 1e-3, 1)]
    assert adam["average"] == pytest.approx(0.7 + 0.01 * 9.5 + 0.001)
    assert adam["early"] == pytest.approx(0.7 + 0.01 * 0.5 + 0.001)  # tasks 0 and 1
    assert adam["late"] == pytest.approx(0.7 + 0.01 * 18.5 + 0.001)  # tasks 18 and 19
    diverged = runs.loc[("idbd", 1e-1, 1)]  # at task 12: its early tasks still count
    assert diverged[["average", "late"]].isna().all() and diverged["early"] == pytest.approx(0.406)
    assert not runs.loc[("idbd", 1e-1, 0)].isna().any()


def test_summary_on_a_hand_made_table():
    summary = _plasticity.summarize_problem(hand_made_table("accuracy"), "accuracy")
    adam, idbd = summary["methods"]["adam"], summary["methods"]["idbd"]
    assert (adam["default_value"], adam["best_value"]) == (1e-3, 1e-3)
    assert adam["best"]["late_minus_early"] == pytest.approx(0.18)
    assert adam["best"]["average"] == pytest.approx(0.7955)
    # IDBD's best is 1e-2: 1e-1 would be worse anyway, and a seed diverged there.
    assert idbd["best_value"] == 1e-2
    assert idbd["sensitivity"]["diverged_points"] == 1
    assert idbd["sensitivity"]["spread"] == pytest.approx(0.1)  # 0.75 vs 0.65; 1e-1 left out
    assert idbd["sensitivity"]["decades"] == pytest.approx(2.0)
    assert math.isnan(idbd["sensitivity"]["averages"][2])
    answer = summary["answer"]
    assert answer["tuned_adam"] == pytest.approx(0.7955)
    assert answer["best_meta_default"] == pytest.approx(0.8455)
    assert answer["best_meta_default_method"] == "idbd"
    assert answer["best_meta_default_vs_tuned_adam"] == pytest.approx(0.05)  # IDBD is better
    assert answer["standard_error"] == pytest.approx(0.0)  # the seeds differ by the same 0.001


def test_an_error_is_better_lower():
    summary = _plasticity.summarize_problem(hand_made_table("squared_error"), "squared_error")
    assert summary["methods"]["adam"]["best_value"] == 1e-4
    assert summary["methods"]["idbd"]["best_value"] == 1e-3
    # IDBD's default error (0.8455) is above tuned Adam's (0.5955): the meta method is worse.
    assert summary["answer"]["best_meta_default_vs_tuned_adam"] == pytest.approx(-0.25)


# ---------------------------------------------------------------------------------------------
# The roster side by side


def test_a_diverging_method_stops_counting_alone():
    exploding_sgd, idbd = _roster.roster(["sgd", "idbd"], 1, {"sgd": 1e3})
    benchmark = Benchmark(
        name="", title="", switch_every=100, sizes=(21, 4, 1), loss="squared",
        problem=functools.partial(ms.problems.slowly_changing_regression, "redraw",
                                  slow_period=100),
        methods=(exploding_sgd, idbd),
    )
    table = _continual.roster_sweep(benchmark, [0], 400, 50)
    assert list(table.columns[:10]) == ["method", "family", "parameter", "value", "point",
                                        "default", "seed", "step", "task", "squared_error"]
    assert len(table) == 2 * 8
    np.testing.assert_array_equal(table["task"], np.tile(np.repeat([0, 1, 2, 3], 2), 2))
    sgd, idbd = (table[table["method"] == name] for name in ("sgd", "idbd"))
    assert sgd["diverged"].all() and sgd["squared_error"].isna().all()
    assert sgd["log10_step_size:layer_0/kernel"].isna().all()
    assert not idbd["diverged"].any() and np.isfinite(idbd["squared_error"]).all()
    assert np.isfinite(idbd["log10_step_size:layer_0/kernel"]).all()


# ---------------------------------------------------------------------------------------------
# permuted-fashion without its data


@pytest.fixture
def no_fashion_data(monkeypatch, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv(FASHION_MNIST_ENV, str(empty))
    return empty


def test_the_fashion_data_are_found_or_the_reason_says_how_to_get_them(no_fashion_data,
                                                                       monkeypatch,
                                                                       fashion_mnist_files):
    reason = permuted_fashion.EXPERIMENT.unavailable()
    assert "apt-get install dataset-fashion-mnist" in reason
    assert FASHION_MNIST_ENV in reason and str(no_fashion_data) in reason
    monkeypatch.setenv(FASHION_MNIST_ENV, str(fashion_mnist_files))
    assert permuted_fashion.EXPERIMENT.unavailable() is None


def test_reproduce_skips_permuted_fashion_without_its_data(no_fashion_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "--budget", "smoke", "--only", "permuted-fashion",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "permuted-fashion: skipped: Fashion-MNIST (train) not found" in printed
    reason = read_json(out / "summary.json")["permuted-fashion"]["skipped"]
    assert "apt-get install dataset-fashion-mnist" in reason
    assert f"**Skipped**: {reason}" in (out / "report.md").read_text()
    assert not (out / "results").exists() or not list((out / "results").rglob("*.parquet"))
    # Asked for by name, the experiment that cannot run is an error.
    assert main(["run", "permuted-fashion", "--budget", "smoke", "--out",
                 str(tmp_path / "run-one")]) == 1


def split_table(experiment_module, seeds: int, **split) -> tuple[list[str], pd.DataFrame]:
    """The shard names and the joined table of a continual experiment at the smoke budget with
    ``seeds`` seeds and the budget settings ``split``, sorted by method, point, seed, step."""
    budget = experiment_module.EXPERIMENT.budget("smoke", seeds=seeds)
    budget = dataclasses.replace(budget, settings={**budget.settings, **split})
    (benchmark,) = experiment_module.benchmarks(budget)
    tables = {shard.name: shard.compute()
              for shard in experiment_module.EXPERIMENT.shards(budget)}
    table = _continual.benchmark_table(tables, benchmark)
    return list(tables), table.sort_values(SPLIT_KEYS, ignore_index=True)


SPLIT_KEYS = ["method", "point", "seed", "step"]


@pytest.mark.slow
def test_shards_of_one_family_each_give_the_table_of_the_whole_roster(smoke_run):
    """The finer shards of a cluster, a family of methods each, change no result: a method trains
    alone in its lane, so their tables, joined, equal the roster run as one shard, bit for bit."""
    from metastep.experiments import permuted_digits

    (whole,) = smoke_run.tables("permuted-digits").values()
    whole = whole.drop(columns="experiment").sort_values(SPLIT_KEYS, ignore_index=True)
    names, split = split_table(permuted_digits, 1, method_groups="family")
    assert names == ["tuned-seeds-0-0", "meta-seeds-0-0"]
    pd.testing.assert_frame_equal(whole, split, check_exact=True)


@pytest.mark.slow
def test_shards_of_one_seed_each_give_the_table_of_a_seed_block_to_rounding():
    """Seeds run as lanes of one vectorized program; a block of another size vectorizes
    differently, so one-seed shards equal a two-seed shard to float32 rounding, not bit for bit
    (the full budgets are defined with one seed per shard: the same on any executor)."""
    from metastep.experiments import permuted_digits

    whole_names, whole = split_table(permuted_digits, 2)
    names, split = split_table(permuted_digits, 2, seeds_per_shard=1)
    assert (whole_names, names) == (["seeds-0-1"], ["seeds-0-0", "seeds-1-1"])
    pd.testing.assert_frame_equal(whole, split, rtol=1e-5, atol=1e-5)
