"""``metastep reproduce`` at the smoke budget.

The fast tests reproduce two experiments (a linear one and a continual one: the two kinds of
figures and report sections); the slow ones reproduce every registered experiment, so that a new
experiment module is covered as soon as it is registered: the run directory must hold its
results, summary, figures (PNG and SVG) and its report section. (test_every_experiment checks
what each experiment's tables, summary and figures hold, for every experiment, in the fast tests.)
"""

import os
import re
import shutil

import pandas as pd
import pytest

from metastep.cli import main
from metastep.experiments import BUDGET_NAMES, EXPERIMENTS
from metastep.experiments._base import FILE_NAME
from metastep.report.storage import TEMPORARY_SUFFIX, read_json


# Saving every experiment's figures as PNG and SVG takes tens of seconds: the fast tests save two.
REPRESENTATIVE = ("delta-delta", "label-permuted-digits")


@pytest.fixture(scope="module")
def representative_run(smoke_run):
    """``reproduce --only`` the two representative experiments, in a run directory of their own
    (their smoke results are computed once per session, in the shared smoke run)."""
    path = smoke_run.path.parent / f"reproduce-{os.getpid()}"
    for name in REPRESENTATIVE:
        smoke_run.tables(name)
        shutil.copytree(smoke_run.path / "results" / name, path / "results" / name)
    assert main(["reproduce", "--budget", "smoke", "--out", str(path),
                 "--only", *REPRESENTATIVE]) == 0
    return path


@pytest.fixture(scope="module")
def run_directory(smoke_run):
    """The shared smoke run: the experiments other tests computed already are resumed."""
    smoke_run.all_tables()  # computed once, whichever worker gets there first
    assert main(["reproduce", "--budget", "smoke", "--out", str(smoke_run.path)]) == 0
    return smoke_run.path


def test_two_experiments_reproduce_with_their_results_figures_and_report(representative_run):
    for name in ("config.json", "summary.json", "report.md", "report.html"):
        assert (representative_run / name).stat().st_size > 0, name
    assert sorted(read_json(representative_run / "config.json")["experiments"]) == sorted(
        REPRESENTATIVE)
    for name in REPRESENTATIVE:
        check_results(representative_run, name)
        check_summary_figures_and_report_section(representative_run, name)
    assert not list(representative_run.rglob(f".*{TEMPORARY_SUFFIX}"))


@pytest.mark.slow
def test_run_directory_layout(run_directory):
    for name in ("config.json", "summary.json", "report.md", "report.html"):
        assert (run_directory / name).stat().st_size > 0, name
    config = read_json(run_directory / "config.json")
    # In the order the experiments were first run (tests may have run some before reproduce).
    assert sorted(config["experiments"]) == sorted(EXPERIMENTS)
    assert config["environment"]["device"]["platform"]
    assert all(config["environment"]["packages"][name] for name in ("jax", "optax", "numpy"))
    assert not list(run_directory.rglob(f".*{TEMPORARY_SUFFIX}"))  # no temporary file left


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_declaration(name):
    experiment = EXPERIMENTS[name]
    assert set(BUDGET_NAMES) <= set(experiment.budgets)
    smoke, quick, full = (experiment.budget(budget) for budget in ("smoke", "quick", "full"))
    assert smoke.steps * smoke.seeds <= quick.steps * quick.seeds <= full.steps * full.seeds
    assert experiment.explanation.strip()
    keys = [published.key for published in experiment.published]
    assert len(keys) == len(set(keys))


def check_results(run_directory, name):
    entry = read_json(run_directory / "config.json")["experiments"][name]
    assert entry["budget"]["name"] == "smoke"
    assert entry["seeds"] == list(range(entry["budget"]["seeds"]))
    for shard in entry["shards"]:
        table = pd.read_parquet(run_directory / "results" / name / f"{shard}.parquet")
        assert list(table.columns[:2]) == ["experiment", "method"], shard
        assert set(table["experiment"]) == {name}, shard


def check_summary_figures_and_report_section(run_directory, name):
    assert read_json(run_directory / "summary.json")[name]
    figures = sorted((run_directory / "figures" / name).iterdir())
    stems = {path.stem for path in figures}
    assert stems and all(FILE_NAME.fullmatch(stem) for stem in stems)
    assert sorted(path.name for path in figures) == sorted(
        f"{stem}.{extension}" for stem in stems for extension in ("png", "svg")
    )
    assert f"## {name}\n" in (run_directory / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_reproduces_with_its_results_figures_and_report(run_directory, name):
    check_results(run_directory, name)
    check_summary_figures_and_report_section(run_directory, name)


@pytest.mark.slow  # rebuilds every figure; tests/test_cli.py checks a resumed run on one experiment
def test_reproduce_again_computes_nothing(run_directory, capsys):
    capsys.readouterr()
    assert main(["reproduce", "--budget", "smoke", "--out", str(run_directory)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in EXPERIMENTS:
        (line,) = [line for line in lines if line.startswith(f"{name}:")]
        assert "(0 shards computed" in line


def check_report_html(run_directory, experiments):
    """Every experiment's figures embedded, compressed; the overview comes first."""
    page = (run_directory / "report.html").read_text()
    figures = re.findall(r'<figure><img [^>]*src="data:image/png;base64,([^"]*)"', page)
    assert len(figures) == len(list(run_directory.glob("figures/*/*.png")))
    assert max(len(figure) for figure in figures) < 200_000  # base64 characters
    assert page.index('<div class="overview">') < page.index("<h2")
    assert page.count('<div class="card">') == len(experiments)
    return page


def test_report_html_of_two_experiments_has_their_figures_and_overview(representative_run):
    check_report_html(representative_run, REPRESENTATIVE)


@pytest.mark.slow
def test_report_html_is_small_with_its_overview_first(run_directory):
    """At the quick budget the page of every experiment is about 2.5 MB (measured), at the smoke
    budget smaller still."""
    page = check_report_html(run_directory, EXPERIMENTS)
    assert len(page.encode()) < 3 * 2**20
