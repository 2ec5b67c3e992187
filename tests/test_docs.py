"""The documentation in docs/: self-contained, its links resolve, and it agrees with the code.

* Nothing a user reads (src/, tests/, README.md) points to the project's private notes.
* Every link to ``docs/<page>.md#<anchor>`` (from the code, the tests, README.md and the docs
  themselves) names a page that exists and a heading of it (GitHub's heading anchors).
* Every method and every problem has its section; every signature the docs spell out
  (``ms.<name>(<parameters with defaults>)``) is the code's; every published number of every
  experiment is listed in docs/published.md with its value.
"""

from __future__ import annotations

import ast
import inspect
import math
import re
from pathlib import Path

import pytest

import metastep as ms
from metastep import experiments

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# The text users see: source, tests and the README (docs/ is checked by its own links).
USER_TEXT = sorted(
    path for folder in ("src", "tests") for pattern in ("*.py", "*.md")
    for path in (ROOT / folder).rglob(pattern)
) + [ROOT / "README.md"]

# References to the project's private notes: the folder next to the checkout, its two files named
# without a docs/ path (followed by a section sign or a closing bracket), and the notes called by
# their name. Written with character classes so that this file does not match itself.
PRIVATE_NOTES = re.compile(
    r"shared[/]spec|(?<![/\w])(?:problems|methods|td)[.]md(?:[ ]§|[,;)]|$)|\bthe[ ]spec\b"
)
CODE_LINK = re.compile(r"docs/([\w./-]+?\.md)(?:#([\w-]+))?")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*$")
# An inline signature in the docs: `ms.name(...)` (it may span lines); a state: `NameState(...)`.
SIGNATURE = re.compile(r"`ms\.([\w.]+)\(([^`]*)\)`")
STATE = re.compile(r"`(\w+State)\(([^`]*)\)`")
NUMBER = re.compile(r"[−-]?\d+(?:\.\d+)?(?:e[+−-]?\d+)?")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link text kept, lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a page: one per heading outside code fences (a repeated one gets ``-1``,
    ``-2``... as on GitHub), and explicit ``<a id="...">``."""
    text = path.read_text(encoding="utf-8")
    found, seen, in_fence = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text)), {}, False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(f"{slug}-{count}" if count else slug)
    return found


def section(path: Path, title: str) -> str:
    """The text under the heading ``title`` up to the next heading of the same or a higher
    level; empty when there is no such heading."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = level = None
    for number, line in enumerate(lines):
        match = HEADING.match(line)
        if match and start is not None and len(match.group(1)) <= level:
            return "\n".join(lines[start:number])
        if match and start is None and match.group(2) == title:
            start, level = number + 1, len(match.group(1))
    return "" if start is None else "\n".join(lines[start:])


def doc_links() -> list[tuple[str, Path, str | None]]:
    """``(where, target page, anchor)`` of every link into docs/."""
    links = []
    for path in USER_TEXT:
        for match in CODE_LINK.finditer(path.read_text(encoding="utf-8")):
            links.append((str(path.relative_to(ROOT)), DOCS / match.group(1), match.group(2)))
    for page in sorted(DOCS.glob("*.md")):
        for match in MARKDOWN_LINK.finditer(page.read_text(encoding="utf-8")):
            target = match.group(1)
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            links.append((str(page.relative_to(ROOT)),
                          (DOCS / file_part) if file_part else page, anchor or None))
    return links


def test_no_reference_to_the_private_notes():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in USER_TEXT
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE_NOTES.search(line)
    ]
    assert not offenders, "references to notes users do not have:\n" + "\n".join(offenders)


def test_links_into_the_docs_resolve():
    links = doc_links()
    assert len(links) > 50  # the docs link to each other: a scan that finds none is broken
    broken = [
        f"{where}: {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
        + (f"#{anchor}" if anchor else "")
        for where, target, anchor in links
        if not target.is_file() or (anchor is not None and anchor not in anchors(target))
    ]
    assert not broken, "links to missing pages or headings:\n" + "\n".join(broken)


def test_github_slugs():
    assert github_slug("`adam_hypergradient`") == "adam_hypergradient"
    assert github_slug("The optimal tracker (steady-state Kalman gain)") == (
        "the-optimal-tracker-steady-state-kalman-gain"
    )
    assert github_slug("Notation and conventions") == "notation-and-conventions"


def test_anchors_skip_code_and_number_repeats(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('## Step\n```\n# a comment, not a heading\n```\n## Step\n<a id="x"></a>\n')
    assert anchors(page) == {"step", "step-1", "x"}


def problem_factories() -> list[str]:
    """The functions of ``ms.problems`` that return a Problem."""
    return [name for name in ms.problems.__all__
            if inspect.isfunction(function := getattr(ms.problems, name))
            and inspect.signature(function).return_annotation in ("Problem", ms.problems.Problem)]


@pytest.mark.parametrize("page, names", [
    ("methods.md", [name for name in ms.methods.__all__
                    if inspect.isfunction(getattr(ms.methods, name)) and name != "step_sizes"]),
    ("problems.md", problem_factories()),
    ("deep.md", list(ms.deep.CURVATURES)),
])
def test_every_method_problem_and_curvature_source_has_a_section(page, names):
    assert len(names) >= 4
    missing = sorted(set(names) - anchors(DOCS / page))
    assert not missing, f"docs/{page} has no section for {missing}"


def documented_parameters(text: str) -> list[tuple[str, str, object]]:
    """``(name, kind, default)`` of a parameter list as the docs write it."""
    arguments = ast.parse(f"def f({text}): pass").body[0].args
    plain = arguments.posonlyargs + arguments.args
    defaults = [inspect.Parameter.empty] * (len(plain) - len(arguments.defaults)) + [
        ast.literal_eval(node) for node in arguments.defaults]
    result = [(a.arg, "positional", d) for a, d in zip(plain, defaults, strict=True)]
    result += [(a.arg, "keyword", inspect.Parameter.empty if d is None else ast.literal_eval(d))
               for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]
    return result


def code_parameters(function) -> list[tuple[str, str, object]]:
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [(p.name, "keyword" if p.kind is keyword else "positional", p.default)
            for p in inspect.signature(function).parameters.values()]


def test_documented_signatures_are_the_code_signatures():
    checked, wrong = 0, []
    for page in sorted(DOCS.glob("*.md")):
        for match in SIGNATURE.finditer(page.read_text(encoding="utf-8")):
            name, text = match.group(1), " ".join(match.group(2).split())
            if "=" not in text:  # a call, not a signature
                continue
            function = ms
            for part in name.split("."):
                function = getattr(function, part)
            checked += 1
            if documented_parameters(text) != code_parameters(function):
                wrong.append(f"{page.name}: ms.{name}({text}) but the code has "
                             f"{inspect.signature(function)}")
    assert checked >= 15
    assert not wrong, "\n".join(wrong)


def test_documented_state_fields_are_the_code_fields():
    modules = (ms.methods, ms.problems, ms.deep, ms)
    checked, wrong = 0, []
    for page in sorted(DOCS.glob("*.md")):
        for match in STATE.finditer(page.read_text(encoding="utf-8")):
            name, fields = match.group(1), tuple("".join(match.group(2).split()).split(","))
            state = next(getattr(m, name) for m in modules if hasattr(m, name))
            checked += 1
            if fields != state._fields:
                wrong.append(f"{page.name}: {name}{fields} but the code has {state._fields}")
    assert checked >= 10
    assert not wrong, "\n".join(wrong)


def close_to(value: float, cell: str) -> bool:
    numbers = [float(text.replace("−", "-")) for text in NUMBER.findall(cell)]
    return any(math.isclose(number, value, rel_tol=1e-3, abs_tol=1e-12) for number in numbers)


def same_condition(check, cell: str) -> bool:
    """Whether the documented condition on the measured ``m`` (e.g. `0.4 ≤ m ≤ 0.6`) agrees
    with the code's ``check`` on both sides of each of its bounds, and far away."""
    condition = cell.strip().strip("`").replace("≤", "<=").replace("≥", ">=").replace("−", "-")
    bounds = [float(text) for text in NUMBER.findall(condition)]
    probes = [-1e3, 1e3] + [b + d for b in bounds for d in (-1e-6, 0.0, 1e-6)]
    return all(
        eval(condition, {"__builtins__": {}}, {"m": probe}) == check(probe)  # noqa: S307
        for probe in probes
    )


# The kind of a reference in the code, and the words the docs' Kind column uses for it.
KIND_WORDS = {"published": ("paper", "talk"), "simulation": ("simulation",), "theory": ("theory",)}


def row_problems(published, row: str, section_text: str) -> list[str]:
    """What docs/published.md's row says differently from the code's reference."""
    _, _, value, rule, _, kind, _ = row.split("|")
    problems = []
    if not isinstance(published.value, str) and not close_to(published.value, value):
        problems.append(f"value {value.strip()}, the code {published.value}")
    if published.tolerance is not None:
        ok = "within ±" in rule and close_to(published.tolerance, rule)
    elif published.check is not None:
        ok = "`" in rule and same_condition(published.check, rule)
    else:
        ok = rule.strip() == "not judged"
    if not ok:
        problems.append(f"rule {rule.strip()!r} is not the code's")
    if not any(word in kind for word in KIND_WORDS[published.kind]):
        problems.append(f"kind {kind.strip()!r}, the code {published.kind!r}")
    if (published.short_budget or published.known_deviation) and (
        section_text.count(f"`{published.key}`") < 2
    ):
        problems.append("no note on its short-budget or known deviation")
    return problems


@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_published_numbers_are_documented(name):
    text = section(DOCS / "published.md", f"`{name}`")
    assert text, f"docs/published.md has no section `{name}`"
    rows = {row.split("|")[1].strip(): row for row in text.splitlines() if row.startswith("| `")}
    problems = []
    for published in experiments.get(name).published:
        row = rows.get(f"`{published.key}`")
        found = ["no row"] if row is None else row_problems(published, row, text)
        problems += [f"{published.key}: {problem}" for problem in found]
    assert not problems, f"docs/published.md, `{name}`:\n" + "\n".join(problems)
