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

import base64
import html
import io
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import matplotlib

from metastep import experiments
from metastep.experiments._base import FILE_NAME, Budget, Experiment, is_finite_number, lookup
from metastep.report import _markdown
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


@dataclass
class Comparison:
    """One row of a measured-vs-published table."""

    key: str
    measured: Any
    published: float | str
    source: str

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


def compare(experiment: Experiment, summary: Mapping[str, Any]) -> list[Comparison]:
    rows = []
    for published in experiment.published:
        try:
            measured = lookup(summary, published.key)
        except KeyError:
            measured = "missing"
        rows.append(Comparison(published.key, measured, published.value, published.source))
    return rows


def render_figures(run_dir: RunDirectory, experiment: Experiment, tables, budget: Budget):
    """Draw the experiment's figures, store them as PNG and SVG; name -> PNG bytes."""
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
    return pngs


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


def report_experiment(run_dir: RunDirectory, name: str, entry: Mapping[str, Any]):
    """Summary, figures and comparisons of one recorded experiment (if all shards are stored)."""
    experiment = experiments.get(name)
    budget = Budget.from_dict(entry["budget"])
    if "skipped" in entry:
        return ExperimentReport(experiment, budget, [], [], skipped=entry["skipped"])
    tables, invalid = read_stored_shards(run_dir, name, entry)
    report = ExperimentReport(experiment, budget, list(tables), list(entry["shards"]),
                              invalid=invalid)
    if report.complete:
        report.summary = to_json_value(experiment.summarize(tables, budget))
        report.figures = render_figures(run_dir, experiment, tables, budget)
        report.comparisons = compare(experiment, report.summary)
    return report


def build_report(run_dir: RunDirectory | str) -> list[ExperimentReport]:
    """Rebuild ``summary.json``, the figures, ``report.md`` and ``report.html`` of ``run_dir``
    from its stored results; computes no results. Returns the experiments' reports."""
    run_dir = run_dir if isinstance(run_dir, RunDirectory) else RunDirectory(run_dir)
    config = run_dir.read_config()
    if not config:
        raise FileNotFoundError(f"{run_dir.path} has no config.json: not a run directory")
    recorded = config.get("experiments", {})
    order = [name for name in experiments.EXPERIMENTS if name in recorded]
    order += [name for name in recorded if name not in order]  # unknown: get() says so
    reports = [report_experiment(run_dir, name, recorded[name]) for name in order]
    write_summary(run_dir, reports)
    blocks = report_blocks(config, reports)
    write_text(run_dir.path / "report.md", to_markdown(blocks))
    write_text(run_dir.path / "report.html", to_html(blocks))
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
# The page, as blocks rendered to Markdown and to HTML


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Prose:
    markdown: str


@dataclass
class Image:
    caption: str
    path: str  # relative to the run directory
    png: bytes


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


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
    blocks.append(Prose(experiment.explanation))
    for name, png in report.figures.items():
        blocks.append(Image(name, f"figures/{experiment.name}/{name}.png", png))
    blocks.append(Heading(3, "Measured vs published"))
    if report.comparisons:
        blocks.append(Table(
            ["Quantity", "Measured", "Published", "Deviation", "Source"],
            [[f"`{row.key}`", format_value(row.measured), format_value(row.published),
              row.deviation, row.source] for row in report.comparisons],
        ))
    else:
        blocks.append(Prose("The sources give no number for this experiment."))
    blocks.append(Heading(3, "All headline numbers"))
    blocks.append(Prose(f"As in `summary.json` under `{experiment.name}`."))
    blocks.append(Table(["Key", "Value"], [
        [f"`{key}`", format_value(value)] for key, value in flatten(report.summary).items()
    ]))
    return blocks


def report_blocks(config: Mapping[str, Any], reports: list[ExperimentReport]) -> list:
    environment = config.get("environment", {})
    device = environment.get("device", {})
    packages = environment.get("packages", {})
    versions = ", ".join(f"{name} {version}" for name, version in packages.items() if version)
    blocks: list = [
        Heading(1, "metastep: reproduction report"),
        Prose(
            "This page is rebuilt from the results stored in this run directory "
            "(`results/`, `config.json`) by `metastep report DIR`. For each experiment: what it "
            "shows, its figures, and its measured numbers beside the published ones "
            "(deviation = measured − published)."
        ),
        Prose(
            f"Run created {config.get('created', '?')}, last updated "
            f"{config.get('updated', '?')}; device: {device.get('kind', '?')} "
            f"({device.get('platform', '?')}); Python {environment.get('python', '?')}; "
            f"{versions}."
        ),
        Table(["Experiment", "What it shows", "Budget", "Shards stored"], [
            [f"[{report.experiment.name}](#{report.experiment.name})",
             report.experiment.description,
             budget_line(report.budget),
             "skipped" if report.skipped is not None
             else f"{len(report.stored_shards)} / {len(report.all_shards)}"]
            for report in reports
        ]),
    ]
    for report in reports:
        blocks += experiment_blocks(report)
    return blocks


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Prose):
            out.append(block.markdown.strip())
        elif isinstance(block, Image):
            out.append(f"![{block.caption}]({block.path})")
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(block.header) + " |",
                     "|" + "---|" * len(block.header)]
            lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |"
                      for row in block.rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }
h2 { border-top: 1px solid #ccc; padding-top: 1.5rem; margin-top: 2.5rem; }
img { max-width: 100%; display: block; margin: 1rem auto; }
figure { margin: 1.5rem 0; }
figcaption { text-align: center; color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def to_html(blocks: list) -> str:
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            body.append(f"<h{block.level}{anchor}>{_markdown.inline(block.text)}</h{block.level}>")
        elif isinstance(block, Prose):
            body.append(_markdown.to_html(block.markdown))
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            caption = html.escape(block.caption)
            body.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{caption}</figcaption></figure>")
        elif isinstance(block, Table):
            header = "".join(f"<th>{_markdown.inline(cell)}</th>" for cell in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_markdown.inline(cell)}</td>" for cell in row) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>metastep: reproduction report</title>"
        f"<style>{HTML_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
