"""The report: rebuilt from stored results alone, self-contained, with measured vs published."""

import base64
import collections
import io
import math
import re

import pytest

from metastep.report import RunDirectory, build_report, run_experiment
from metastep.report._markdown import to_html
from metastep.experiments import EXPERIMENTS, Budget, Published
from metastep.experiments._base import REFERENCE_KINDS
from metastep.report.build import (
    EXPECTED,
    KNOWN_DEVIATION,
    NO_REFERENCE,
    NOT_JUDGED,
    NOT_REPRODUCED,
    REPRODUCED,
    Comparison,
    ExperimentReport,
    answer_text,
    experiment_verdict,
    find_answers,
    judge,
)
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
    assert ("| `lms.signature` | 0.5 | about one half | qualitative | not judged | a claim in "
            "words: the figures show it | published | a talk |") in markdown
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


# ---------------------------------------------------------------------------------------------
# Verdicts

QUICK, FULL, SMOKE = (Budget(steps=10, seeds=1, name=name) for name in ("quick", "full", "smoke"))
NUMBER = Published("x", 1.0, "a paper", tolerance=0.1)
SHORT = Published("x", 1.0, "a paper", tolerance=0.1, short_budget="needs 10^6 steps")
KNOWN = Published("x", 1.0, "a paper", tolerance=0.1, known_deviation="a simulation agrees")
CLAIM = Published("x", "below one", "a talk", check=lambda value: value < 1)


@pytest.mark.parametrize("reference, measured, budget, verdict, why", [
    (NUMBER, 1.05, QUICK, REPRODUCED, "within ± 0.1"),
    (NUMBER, 1.1, FULL, REPRODUCED, "within ± 0.1"),  # at the tolerance, despite rounding
    (NUMBER, 1.2, QUICK, NOT_REPRODUCED, "outside ± 0.1"),
    (NUMBER, 1.2, SMOKE, EXPECTED, "the smoke budget only checks that the pipeline runs"),
    (SHORT, 1.2, QUICK, EXPECTED, "outside ± 0.1; needs 10^6 steps"),
    (SHORT, 1.2, FULL, NOT_REPRODUCED, "outside ± 0.1"),
    (KNOWN, 1.2, FULL, KNOWN_DEVIATION, "outside ± 0.1; a simulation agrees"),
    (KNOWN, 1.0, FULL, REPRODUCED, "within ± 0.1"),
    (CLAIM, 0.5, FULL, REPRODUCED, "the claim holds"),
    (CLAIM, 1.5, FULL, NOT_REPRODUCED, "the claim does not hold"),
    (NUMBER, None, FULL, NOT_REPRODUCED, "no finite measured number"),
    (NUMBER, float("nan"), FULL, NOT_REPRODUCED, "no finite measured number"),
    (Published("x", "a claim", "a talk"), 0.3, FULL, NOT_JUDGED, "a claim in words"),
])
def test_judge(reference, measured, budget, verdict, why):
    assert judge(reference, measured, budget)[0] == verdict
    assert why in judge(reference, measured, budget)[1]


def verdict_of(*verdicts):
    report = ExperimentReport(EXPERIMENTS["delta-delta"], QUICK, ["a"], ["a"])
    report.comparisons = [Comparison(f"k{index}", 1.0, 2.0, "s", "published", verdict, "why")
                          for index, verdict in enumerate(verdicts)]
    return experiment_verdict(report)


def test_the_experiment_verdict_is_its_worst_row_with_the_counts():
    assert verdict_of(REPRODUCED, REPRODUCED, NOT_JUDGED) == (
        REPRODUCED, "2 checks against the references: 2 reproduced", [])
    verdict, counts, misses = verdict_of(REPRODUCED, EXPECTED, KNOWN_DEVIATION)
    assert verdict == EXPECTED
    assert counts.endswith("1 reproduced, 1 known deviation, 1 expected at this budget")
    assert misses == ["k1 = 1 (published: 2): expected at this budget: why",
                      "k2 = 1 (published: 2): known deviation: why"]
    assert verdict_of(EXPECTED, NOT_REPRODUCED)[0] == NOT_REPRODUCED
    assert verdict_of(NOT_JUDGED)[0] == NO_REFERENCE


def test_published_checks_its_fields():
    with pytest.raises(ValueError, match="kind"):
        Published("x", 1.0, "a paper", kind="guess")
    with pytest.raises(ValueError, match="check"):
        Published("x", "a claim", "a talk", tolerance=0.1)
    with pytest.raises(ValueError, match="tolerance"):
        Published("x", 1.0, "a paper", tolerance=-1)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_reference_number_is_judged(name):
    """Each experiment says how precise each of its reference numbers is, and of what kind."""
    for reference in EXPERIMENTS[name].published:
        assert reference.kind in REFERENCE_KINDS
        if not isinstance(reference.value, str):
            assert reference.tolerance is not None or reference.check is not None, reference.key


ANSWER = {"tuned_adam": 0.84, "best_meta_default": 0.79, "best_meta_default_method": "idbd",
          "best_meta_default_vs_tuned_adam": 0.056, "standard_error": 0.026}


@pytest.mark.parametrize("changes, ending", [
    ({}, "+0.056 ± 0.026 (the meta method is better)"),
    ({"best_meta_default_vs_tuned_adam": -0.04}, "-0.04 ± 0.026 (a tie: within 2 standard errors)"),
    ({"best_meta_default_vs_tuned_adam": -0.06}, "-0.06 ± 0.026 (tuned Adam is better)"),
    ({"standard_error": None}, "+0.056 (one seed: no standard error)"),
    ({"best_meta_default_vs_tuned_adam": None}, "no finite difference (a run diverged)"),
])
def test_answer_text(changes, ending):
    text = answer_text("redraw", {**ANSWER, **changes})
    assert text.startswith("redraw: idbd at its default 0.79 vs tuned Adam 0.84: ")
    assert text.endswith(ending)


def test_find_answers_at_any_depth():
    summary = {"answer": ANSWER, "redraw": {"answer": ANSWER, "methods": {}}, "other": 1}
    assert [where for where, _ in find_answers(summary)] == ["", "redraw"]


# ---------------------------------------------------------------------------------------------
# The page's layout


def test_the_page_opens_with_an_overview_and_folds_the_long_tables(toy_run):
    directory, _ = toy_run
    build_report(directory)
    page = (directory / "report.html").read_text()
    first_section = page.index('<h2 id="toy">')
    overview = page.index('<div class="overview">')
    assert overview < first_section
    card = page[overview:first_section]
    assert '<a class="name" href="#toy">toy</a>' in card
    assert f'<span class="verdict {NO_REFERENCE.replace(" ", "-")}">' in card
    assert card.count("<img") == 1  # the headline figure's thumbnail
    section = page[first_section:]
    for table in ("Measured vs reference", "All headline numbers"):
        opening = section.index(f"<details><summary>{table}")
        assert section.index("<table>", opening) < section.index("</details>", opening)
    assert "<table>" not in section[:section.index("<details>")]
    assert 'classList.toggle("zoomed")' in page  # click to enlarge
    markdown = (directory / "report.md").read_text()
    assert markdown.index("| [toy](#toy) | **no published number** |") < markdown.index("## toy")
    assert "<details><summary>Measured vs reference" in markdown


def test_embedded_figures_are_compressed(toy_run):
    from PIL import Image as PILImage

    from metastep.report.page import EMBED_WIDTH, PALETTE_COLORS, THUMBNAIL_WIDTH

    directory, _ = toy_run
    build_report(directory)
    page = (directory / "report.html").read_text()
    stored = (directory / "figures/toy/learning-curve.png").read_bytes()
    embedded = [base64.b64decode(data)
                for data in re.findall(r'src="data:image/png;base64,([^"]*)"', page)]
    assert len(embedded) == 2  # the thumbnail and the figure
    widths = sorted(PILImage.open(io.BytesIO(png)).width for png in embedded)
    assert widths[0] <= THUMBNAIL_WIDTH and widths[1] <= EMBED_WIDTH
    for png in embedded:
        image = PILImage.open(io.BytesIO(png))
        assert image.mode == "P" and len(image.getcolors()) <= PALETTE_COLORS
        assert len(png) < len(stored)
