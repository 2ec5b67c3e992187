"""The report of a run directory, rebuilt from its stored results alone.

For every experiment recorded in ``config.json`` whose shards are all stored, the experiment's
``summarize`` and ``figures`` run on the stored tables; the headline numbers go to
``summary.json``, the figures to ``figures/`` (PNG and SVG), and one page, read top to bottom,
to ``report.md`` (figures linked) and ``report.html`` (self-contained: figures embedded). An
experiment that was skipped (it could not run there: its data are missing, ...) is reported as
such, with the reason, in the page and in ``summary.json`` (``{"skipped": reason}``).

A shard is used only if it verifies (:meth:`RunDirectory.read_shard`): one that does not is
named in the page, with why, and its experiment is incomplete. ``summary.json`` is updated, not
rewritten: the numbers of an experiment now incomplete stay as an earlier build stored them.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import matplotlib

from metastep import experiments
from metastep.experiments._base import (
    FILE_NAME,
    Budget,
    Experiment,
    Published,
    is_finite_number,
    lookup,
)
from metastep.report.page import (
    THUMBNAIL_COLORS,
    THUMBNAIL_WIDTH,
    Card,
    Folded,
    Heading,
    Image,
    Overview,
    Prose,
    Table,
    compress_png,
    to_html,
    to_markdown,
)
from metastep.report.storage import (
    RunDirectory,
    RunDirectoryError,
    ShardError,
    read_json_object,
    shard_provenance,
    to_json_value,
    write_bytes,
    write_json,
    write_text,
)

# Figures readable in print: sizes in points at the saved size, light grids, tight margins.
FIGURE_STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.5,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
}


# ---------------------------------------------------------------------------------------------
# What the report says about one experiment


# Verdicts on a reference number, and on an experiment, from the best to the worst.
REPRODUCED = "reproduced"
KNOWN_DEVIATION = "known deviation"  # differs as an independent simulation also finds
EXPECTED = "expected at this budget"  # differs, as it should below the full budget
NOT_REPRODUCED = "not reproduced"
VERDICTS = (REPRODUCED, KNOWN_DEVIATION, EXPECTED, NOT_REPRODUCED)
NOT_JUDGED = "not judged"  # a claim in words without a check: the figures show it
NO_REFERENCE = "no published number"  # an experiment without a checked reference
SMOKE_BUDGET = "the smoke budget only checks that the pipeline runs"


@dataclass
class Comparison:
    """One row of a measured-vs-reference table, with its verdict and why."""

    key: str
    measured: Any
    published: float | str
    source: str
    kind: str = "published"
    verdict: str = NOT_JUDGED
    why: str = ""

    @property
    def deviation(self) -> str:
        """``measured − published`` (and relative), or why there is no number."""
        if isinstance(self.published, str):
            return "qualitative"
        if not is_finite_number(self.measured):
            return "n/a"
        difference = float(self.measured) - float(self.published)
        text = f"{difference:+.3g}"
        if self.published:
            text += f" ({100 * difference / abs(float(self.published)):+.1f}%)"
        return text


@dataclass
class ExperimentReport:
    """One experiment of the run directory, as the report presents it."""

    experiment: Experiment
    budget: Budget
    stored_shards: list[str]
    all_shards: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)  # name -> PNG
    comparisons: list[Comparison] = field(default_factory=list)
    skipped: str | None = None  # why the experiment did not run (its data are missing, ...)
    thumbnail: bytes | None = None  # PNG: the first figure, small, for the overview
    invalid: dict[str, str] = field(default_factory=dict)  # stored shards not verifying: why
    summary_kept: bool = False  # summary.json keeps its numbers of an earlier complete build

    @property
    def complete(self) -> bool:
        return self.skipped is None and len(self.stored_shards) == len(self.all_shards)

    def missing_text(self) -> str:
        """Which shards are missing and which do not verify (and why); ``""`` when none."""
        absent = [shard for shard in self.all_shards
                  if shard not in self.stored_shards and shard not in self.invalid]
        parts = [f"missing: {', '.join(absent)}"] if absent else []
        parts += [f"not usable: {why}" for why in self.invalid.values()]
        if parts and self.summary_kept:
            parts.append("summary.json keeps the numbers of the earlier complete run")
        return "; ".join(parts)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if is_finite_number(value):
        return f"{float(value):.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return "n/a" if value is None else str(value)


def judge(reference: Published, measured: Any, budget: Budget) -> tuple[str, str]:
    """The verdict on one reference number (one of :data:`VERDICTS`, or :data:`NOT_JUDGED`),
    and why, in words."""
    if reference.check is None and reference.tolerance is None:
        return NOT_JUDGED, "a claim in words: the figures show it"
    if not is_finite_number(measured):
        return NOT_REPRODUCED, "no finite measured number"
    if reference.check is not None:
        holds = bool(reference.check(float(measured)))
        agreement = "the claim holds" if holds else "the claim does not hold"
    else:
        # A measured grid point may sit exactly at the tolerance: allow for rounding.
        slack = 1e-9 * max(1.0, abs(float(reference.value)))
        holds = abs(float(measured) - float(reference.value)) <= reference.tolerance + slack
        agreement = f"{'within' if holds else 'outside'} ± {reference.tolerance:g}"
    if holds:
        return REPRODUCED, agreement
    if budget.name == "smoke":
        return EXPECTED, f"{agreement}; {SMOKE_BUDGET}"
    if reference.short_budget is not None and budget.name != "full":
        return EXPECTED, f"{agreement}; {reference.short_budget}"
    if reference.known_deviation is not None:
        return KNOWN_DEVIATION, f"{agreement}; {reference.known_deviation}"
    return NOT_REPRODUCED, agreement


def compare(experiment: Experiment, summary: Mapping[str, Any],
            budget: Budget) -> list[Comparison]:
    rows = []
    for reference in experiment.published:
        try:
            measured = lookup(summary, reference.key)
        except KeyError:
            measured = "missing"
        verdict, why = judge(reference, measured, budget)
        rows.append(Comparison(reference.key, measured, reference.value, reference.source,
                               reference.kind, verdict, why))
    return rows


def experiment_verdict(report: ExperimentReport) -> tuple[str, str, list[str]]:
    """The experiment's verdict: the worst of its rows' verdicts (or ``"skipped"``,
    ``"incomplete"``, :data:`NO_REFERENCE`); a sentence counting the checks by verdict (or why
    there is none); and for each checked row not reproduced, its numbers and why."""
    if report.skipped is not None:
        return "skipped", report.skipped, []
    if not report.complete:
        return "incomplete", (f"{len(report.stored_shards)} of {len(report.all_shards)} shards "
                              f"stored ({report.missing_text()}): rerun the same command with "
                              "--out this directory"), []
    judged = [row for row in report.comparisons if row.verdict != NOT_JUDGED]
    if not judged:
        return NO_REFERENCE, "no published number to check", []
    worst = max((row.verdict for row in judged), key=VERDICTS.index)
    counts = ", ".join(f"{sum(row.verdict == verdict for row in judged)} {verdict}"
                       for verdict in VERDICTS if any(row.verdict == verdict for row in judged))
    misses = [f"{row.key} = {format_value(row.measured)} ({row.kind}: "
              f"{format_value(row.published)}): {row.verdict}: {row.why}"
              for row in judged if row.verdict != REPRODUCED]
    if misses and report.budget.name == "smoke":  # one reason for them all
        misses = [f"{len(misses)} differ: {SMOKE_BUDGET}"]
    return worst, f"{len(judged)} checks against the references: {counts}", misses


def find_answers(summary: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Mapping]]:
    """The continual benchmarks' ``answer`` entries of a summary, with where they are (e.g.
    ``"redraw"`` for ``summary["redraw"]["answer"]``; ``""`` at the top)."""
    found = []
    for key, value in summary.items():
        if key == "answer" and isinstance(value, Mapping):
            found.append((prefix.rstrip("."), value))
        elif isinstance(value, Mapping):
            found += find_answers(value, f"{prefix}{key}.")
    return found


def answer_text(where: str, answer: Mapping[str, Any]) -> str:
    """A continual benchmark's answer in words: the best meta method at its default against
    tuned Adam, the difference ± its standard error (positive: the meta method is better); an
    answer that states itself in words (``text``) as it is."""
    if "text" in answer:
        return f"{where + ': ' if where else ''}{answer['text']}"
    difference = answer["best_meta_default_vs_tuned_adam"]
    error = answer.get("standard_error")
    text = (f"{where + ': ' if where else ''}{answer['best_meta_default_method']} at its default "
            f"{format_value(answer['best_meta_default'])} vs tuned Adam "
            f"{format_value(answer['tuned_adam'])}: ")
    if not is_finite_number(difference):
        return text + "no finite difference (a run diverged)"
    text += f"{float(difference):+.3g}"
    if not is_finite_number(error):
        return text + " (one seed: no standard error)"
    text += f" ± {float(error):.2g}"
    if abs(float(difference)) <= 2 * float(error):
        return text + " (a tie: within 2 standard errors)"
    return text + (" (the meta method is better)" if difference > 0 else " (tuned Adam is better)")


def render_figures(run_dir: RunDirectory, experiment: Experiment, tables, budget: Budget):
    """Draw the experiment's figures, store them as PNG and SVG; name -> PNG bytes, and a
    thumbnail of the first figure (the headline figure, for the overview)."""
    pngs = {}
    with matplotlib.rc_context(FIGURE_STYLE):
        for name, figure in experiment.figures(tables, budget).items():
            if not FILE_NAME.fullmatch(name):
                raise ValueError(f"{experiment.name}: figure name {name!r} must match "
                                 f"{FILE_NAME.pattern}")
            for extension in ("png", "svg"):
                buffer = io.BytesIO()
                figure.savefig(buffer, format=extension)
                write_bytes(run_dir.figure_path(experiment.name, name, extension),
                            buffer.getvalue())
                if extension == "png":
                    pngs[name] = buffer.getvalue()
    if not pngs:
        return pngs, None
    return pngs, compress_png(next(iter(pngs.values())), THUMBNAIL_WIDTH, THUMBNAIL_COLORS)


def read_stored_shards(run_dir: RunDirectory, name: str, entry: Mapping[str, Any]):
    """The tables of the recorded experiment's stored shards that verify (stored with the
    recorded parameters, intact); and for each stored shard that does not, why."""
    tables, invalid = {}, {}
    for shard, parameters in entry["shards"].items():
        try:
            tables[shard] = run_dir.read_shard(
                name, shard, shard_provenance(parameters, entry["budget"]))
        except FileNotFoundError:
            continue
        except ShardError as error:
            invalid[shard] = str(error)
    return tables, invalid


def report_experiment(run_dir: RunDirectory, name: str, entry: Mapping[str, Any], *,
                      figures: bool = True) -> ExperimentReport:
    """Summary, comparisons and (if asked) figures of one recorded experiment, if all its
    shards are stored."""
    experiment = experiments.get(name)
    budget = Budget.from_dict(entry["budget"])
    if "skipped" in entry:
        return ExperimentReport(experiment, budget, [], [], skipped=entry["skipped"])
    tables, invalid = read_stored_shards(run_dir, name, entry)
    report = ExperimentReport(experiment, budget, list(tables), list(entry["shards"]),
                              invalid=invalid)
    if report.complete:
        report.summary = to_json_value(experiment.summarize(tables, budget))
        if figures:
            report.figures, report.thumbnail = render_figures(run_dir, experiment, tables,
                                                              budget)
        report.comparisons = compare(experiment, report.summary, budget)
    return report


def summarize_stored(run_dir: RunDirectory | str, name: str) -> ExperimentReport:
    """The summary, comparisons and verdict of one experiment of ``run_dir`` from its stored
    results, without figures and without writing anything (the runner's closing line)."""
    run_dir = run_dir if isinstance(run_dir, RunDirectory) else RunDirectory(run_dir)
    entry = run_dir.read_config().get("experiments", {}).get(name)
    if entry is None:
        raise KeyError(f"{run_dir.path} has not recorded the experiment {name!r}")
    return report_experiment(run_dir, name, entry, figures=False)


def build_report(run_dir: RunDirectory | str,
                 progress: Callable[[int, int, str], None] | None = None
                 ) -> list[ExperimentReport]:
    """Rebuild ``summary.json``, the figures, ``report.md`` and ``report.html`` of ``run_dir``
    from its stored results; computes no results. Returns the experiments' reports.

    ``progress(index, count, name)`` is called before each experiment's summary and figures
    are made (index from 1), e.g. to say on the terminal what the build is doing.
    """
    run_dir = run_dir if isinstance(run_dir, RunDirectory) else RunDirectory(run_dir)
    config = run_dir.read_config()
    if not config:
        raise FileNotFoundError(f"{run_dir.path} has no config.json: not a run directory")
    recorded = config.get("experiments", {})
    order = [name for name in experiments.EXPERIMENTS if name in recorded]
    order += [name for name in recorded if name not in order]  # unknown: get() says so
    reports = []
    for index, name in enumerate(order, 1):
        if progress is not None:
            progress(index, len(order), name)
        reports.append(report_experiment(run_dir, name, recorded[name]))
    write_summary(run_dir, reports)
    blocks = report_blocks(config, reports)
    write_text(run_dir.path / "report.md", to_markdown(blocks))
    write_text(run_dir.path / "report.html", to_html(blocks, TITLE))
    return reports


def write_summary(run_dir: RunDirectory, reports: list[ExperimentReport]) -> None:
    """Update ``summary.json`` (one read-modify-write under the directory's lock): a complete
    experiment's numbers replace its entry; a skipped one is noted as ``{"skipped": reason}``.
    Numbers are never replaced by less: an experiment now incomplete or skipped keeps the
    numbers stored earlier (``report.summary_kept``), and so does one no longer recorded."""
    with run_dir.locked():
        try:
            summary = read_json_object(run_dir.summary_path)
        except RunDirectoryError as error:  # nothing in it is readable: rebuilt from the results
            print(f"metastep: {error}; writing it anew", file=sys.stderr)
            summary = {}
        for report in reports:
            name = report.experiment.name
            stored = summary.get(name)
            if report.complete:
                summary[name] = report.summary
            elif stored is not None and "skipped" not in stored:
                report.summary_kept = True
            elif report.skipped is not None:
                summary[name] = {"skipped": report.skipped}
            else:
                summary.pop(name, None)  # a note that it was skipped, now out of date
        write_json(run_dir.summary_path, summary)


# ---------------------------------------------------------------------------------------------
# The page: an overview, then each experiment; rendered by metastep.report.page

TITLE = "metastep: reproduction report"
CARD_TEXT_LENGTH = 160  # characters of an overview card's text


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def budget_line(budget: Budget) -> str:
    seeds = f"{budget.seeds} seed" + ("s" if budget.seeds != 1 else "")
    return f"{budget.name or 'custom'}: {budget.steps:,} steps, {seeds}"


def budget_text(budget: Budget) -> str:
    settings = ", ".join(f"{key} = {value}" for key, value in budget.settings.items())
    text = f"**Budget** {budget_line(budget)}"
    return text + (f"; {settings}." if settings else ".")


def verdict_text(report: ExperimentReport) -> str:
    """The verdict in Markdown: the counts, each row not reproduced, a benchmark's answer."""
    verdict, checks, misses = experiment_verdict(report)
    items = [f"- {miss}" for miss in misses]
    items += [f"- **Answer**: {answer_text(where, answer)}"
              for where, answer in find_answers(report.summary)]
    return "\n\n".join([f"**Verdict: {verdict}**. {checks}.", *(["\n".join(items)] * bool(items))])


def comparison_table(report: ExperimentReport) -> Table:
    return Table(
        ["Quantity", "Measured", "Reference", "Deviation", "Verdict", "Why", "Kind", "Source"],
        [[f"`{row.key}`", format_value(row.measured), format_value(row.published),
          row.deviation, row.verdict, row.why, row.kind, row.source]
         for row in report.comparisons],
    )


def experiment_blocks(report: ExperimentReport) -> list:
    experiment = report.experiment
    blocks: list = [
        Heading(2, experiment.name, anchor=experiment.name),
        Prose(f"*{experiment.description}*"),
        Prose(budget_text(report.budget)),
    ]
    if report.skipped is not None:
        return blocks + [Prose(f"**Skipped**: {report.skipped}")]
    if not report.complete:
        return blocks + [Prose(
            f"**Incomplete**: {len(report.stored_shards)} of {len(report.all_shards)} shards "
            f"stored ({report.missing_text()}). Rerun the same command with `--out` this "
            "directory to finish it."
        )]
    blocks.append(Prose(verdict_text(report)))
    blocks.append(Prose(experiment.explanation))
    for name, png in report.figures.items():
        blocks.append(Image(name, f"figures/{experiment.name}/{name}.png", png))
    if report.comparisons:
        blocks.append(Folded(
            f"Measured vs reference ({len(report.comparisons)} rows: published numbers, "
            "independent simulations, theory)", [comparison_table(report)]))
    else:
        blocks.append(Prose("The sources give no number for this experiment."))
    blocks.append(Folded(f"All headline numbers (as in `summary.json` under "
                         f"`{experiment.name}`)", [Table(["Key", "Value"], [
                             [f"`{key}`", format_value(value)]
                             for key, value in flatten(report.summary).items()])]))
    return blocks


def overview_card(report: ExperimentReport) -> Card:
    verdict, checks, _ = experiment_verdict(report)
    answers = find_answers(report.summary)
    text = answer_text(*answers[0]) if answers else checks
    if len(text) > CARD_TEXT_LENGTH:  # e.g. how to get missing data: the section says it all
        text = text[:CARD_TEXT_LENGTH].rsplit(" ", 1)[0] + " …"
    figure = next(iter(report.figures), None)
    return Card(report.experiment.name, verdict, text, report.thumbnail,
                f"figures/{report.experiment.name}/{figure}.png" if figure else "")


def report_blocks(config: Mapping[str, Any], reports: list[ExperimentReport]) -> list:
    environment = config.get("environment", {})
    device = environment.get("device", {})
    packages = environment.get("packages", {})
    versions = ", ".join(f"{name} {version}" for name, version in packages.items() if version)
    git = environment.get("git")
    commit = (f"; git commit {git['commit'][:12]}{' (with local changes)' if git['dirty'] else ''}"
              if git else "")
    blocks: list = [
        Heading(1, TITLE),
        Prose(
            "Verdicts: **reproduced** (every checked number within its tolerance), **known "
            "deviation** (a difference found by independent simulation too), **expected at "
            "this budget** (the full budget should remove it), **not reproduced**. A reference "
            "is *published* (the paper's number), a *simulation* (an independent one) or "
            "*theory*. Click a figure to enlarge it; [about this run](#about)."
        ),
        Overview([overview_card(report) for report in reports]),
    ]
    for report in reports:
        blocks += experiment_blocks(report)
    blocks.append(Heading(2, "About this run", anchor="about"))
    blocks.append(Prose(
        "This page is rebuilt from the results stored in this run directory (`results/`, "
        "`config.json`) by `metastep report DIR`. "
        f"Run created {config.get('created', '?')}, last updated {config.get('updated', '?')}; "
        f"device: {device.get('kind', '?')} ({device.get('platform', '?')}); Python "
        f"{environment.get('python', '?')}; {versions}{commit}."
    ))
    blocks.append(Table(["Experiment", "What it shows", "Budget", "Shards stored"], [
        [f"[{report.experiment.name}](#{report.experiment.name})",
         report.experiment.description, budget_line(report.budget),
         "skipped" if report.skipped is not None
         else f"{len(report.stored_shards)} / {len(report.all_shards)}"]
        for report in reports
    ]))
    return blocks
