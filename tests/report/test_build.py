"""The report: rebuilt from stored results alone, self-contained, with measured vs published."""

import collections
import math
import re

import pytest

from metastep.report import RunDirectory, build_report, run_experiment
from metastep.report._markdown import to_html
from metastep.report.build import Comparison
from metastep.report.storage import read_json

from .toy import make_toy_experiment


@pytest.fixture
def toy_run(tmp_path, toy):
    """A run directory holding the toy's results."""
    experiment, counter = toy
    run_experiment(RunDirectory(tmp_path), experiment, experiment.budget("smoke"), progress=False)
    return tmp_path, counter


def test_report_builds_from_stored_results_alone(toy_run, register):
    directory, counter = toy_run
    # Any computation now would fail: the report may only read what is stored.
    register(make_toy_experiment(collections.Counter(), fail_on="part-0"))
    build_report(directory)  # no exception: part-0 was not computed
    for name in ("summary.json", "report.md", "report.html",
                 "figures/toy/learning-curve.png", "figures/toy/learning-curve.svg"):
        assert (directory / name).stat().st_size > 0, name
    assert sum(counter.values()) == 3


def test_summary_json_has_the_published_keys_with_finite_values(toy_run):
    directory, _ = toy_run
    build_report(directory)
    summary = read_json(directory / "summary.json")
    assert math.isfinite(summary["toy"]["lms"]["best_mse"])
    assert summary["toy"]["lms"]["diverged"] is None  # NaN is stored as null


def test_reports_compare_measured_with_published(toy_run):
    directory, _ = toy_run
    build_report(directory)
    markdown = (directory / "report.md").read_text()
    best_mse = read_json(directory / "summary.json")["toy"]["lms"]["best_mse"]
    assert f"| `lms.best_mse` | {best_mse:.4g} | 1.5 | {best_mse - 1.5:+.3g}" in markdown
    assert "| `lms.signature` | 0.5 | about one half | qualitative | a talk |" in markdown
    assert "![learning-curve](figures/toy/learning-curve.png)" in markdown
    page = (directory / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(source.startswith("data:image/png;base64,") for source in sources)
    assert "<strong>three</strong>" in page and "<li>one</li>" in page
    assert 'id="toy"' in page


def test_an_incomplete_experiment_is_reported_as_such(toy_run):
    directory, _ = toy_run
    RunDirectory(directory).shard_path("toy", "part-2").unlink()
    (report,) = build_report(directory)
    assert not report.complete
    assert read_json(directory / "summary.json") == {}
    assert "**Incomplete**: 2 of 3 shards stored" in (directory / "report.md").read_text()


def test_a_directory_without_config_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        build_report(tmp_path)


@pytest.mark.parametrize("measured, published, deviation", [
    (1.1, 1.0, "+0.1 (+10.0%)"),
    (0.5, 0.0, "+0.5"),
    (None, 1.0, "n/a"),
    (0.3, "a claim", "qualitative"),
])
def test_deviation(measured, published, deviation):
    assert Comparison("key", measured, published, "source").deviation == deviation


def test_markdown_subset():
    html = to_html("# Title\n\nText with `a*b` and *em* and [link](https://x.org) & <tag>.\n\n"
                   "1. first\n   continued\n2. second")
    assert "<h1>Title</h1>" in html
    assert "<code>a*b</code>" in html and "<em>em</em>" in html
    assert '<a href="https://x.org">link</a>' in html and "&amp; &lt;tag&gt;" in html
    assert "<ol><li>first continued</li><li>second</li></ol>" in html


def test_format_value_rounds_numbers_inside_lists():
    from metastep.report.build import format_value

    assert format_value([0.123456789, 2, None]) == "[0.1235, 2, n/a]"
    assert format_value(True) == "yes"
    assert format_value(float("nan")) == "nan"
