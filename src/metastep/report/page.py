"""The report page as a list of blocks, rendered to Markdown (``report.md``) and to one
self-contained HTML file (``report.html``: figures embedded, no network needed).

The HTML embeds each figure as a compressed PNG of :data:`EMBED_WIDTH` pixels (the full
resolution PNG and the SVG stay in ``figures/``): a click on a figure shows it over the whole
window, another click closes it. The overview at the top shows each experiment as a card with
its verdict and a thumbnail of its first figure.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

from PIL import Image as PILImage

from metastep.report import _markdown

# Sizes that keep report.html of every experiment at the quick budget near 2.5 MB.
EMBED_WIDTH = 1100  # pixels: the page's width, and readable enlarged to the window
PALETTE_COLORS = 128  # an adaptive palette: lines and text stay crisp, heatmaps barely banded
THUMBNAIL_WIDTH = 360
THUMBNAIL_COLORS = 64


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


@dataclass
class Folded:
    """Blocks shown only when the reader opens them (``<details>``)."""

    summary: str
    blocks: list = field(default_factory=list)


@dataclass
class Card:
    """One experiment in the overview: its verdict and its headline figure."""

    name: str
    verdict: str
    text: str
    thumbnail: bytes | None = None  # PNG
    figure_path: str = ""  # the full figure, relative to the run directory


@dataclass
class Overview:
    cards: list[Card]


def compress_png(png: bytes, width: int, colors: int = PALETTE_COLORS) -> bytes:
    """``png`` scaled down to at most ``width`` pixels wide, as a PNG of an adaptive palette
    of ``colors`` colours."""
    with PILImage.open(io.BytesIO(png)) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)),
                                 PILImage.Resampling.LANCZOS)
        image = image.quantize(colors, method=PILImage.Quantize.MEDIANCUT,
                               dither=PILImage.Dither.NONE)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Markdown


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown_block(block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Prose):
        return block.markdown.strip()
    if isinstance(block, Image):
        return f"![{block.caption}]({block.path})"
    if isinstance(block, Table):
        return _markdown_table(block.header, block.rows)
    if isinstance(block, Folded):
        inner = "\n\n".join(_markdown_block(inner) for inner in block.blocks)
        return f"<details><summary>{html.escape(block.summary)}</summary>\n\n{inner}\n\n</details>"
    if isinstance(block, Overview):
        return _markdown_table(
            ["Experiment", "Verdict", "In short", "Headline figure"],
            [[f"[{card.name}](#{card.name})", f"**{card.verdict}**", card.text,
              f"[figure]({card.figure_path})" if card.figure_path else ""]
             for card in block.cards])
    raise TypeError(f"not a block: {block!r}")


def to_markdown(blocks: list) -> str:
    return "\n\n".join(_markdown_block(block) for block in blocks) + "\n"


# ---------------------------------------------------------------------------------------------
# HTML

HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 66rem; margin: 1.5rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }
h1 { margin-bottom: 0.3rem; }
h2 { border-top: 1px solid #ccc; padding-top: 1.5rem; margin-top: 2.5rem; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; display: block; margin: 0 auto; cursor: zoom-in; }
figure img.zoomed { position: fixed; inset: 0; width: 100vw; height: 100vh; max-width: none;
                    object-fit: contain; background: rgba(255, 255, 255, 0.97); z-index: 10;
                    cursor: zoom-out; }
figcaption { text-align: center; color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { background: #f3f3f3; padding: 0 0.2rem; }
details { margin: 1rem 0; }
summary { cursor: pointer; font-weight: 600; }
.overview { display: grid; grid-template-columns: repeat(auto-fill, minmax(19rem, 1fr));
            gap: 0.6rem; margin: 1rem 0; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: 0.4rem 0.6rem; font-size: 0.85rem;
        line-height: 1.3; }
.card a.name { font-weight: 600; font-size: 0.95rem; }
.card img { width: 100%; height: 7.5rem; object-fit: contain; display: block;
            margin-top: 0.3rem; }
.verdict { display: inline-block; border-radius: 4px; padding: 0 0.4rem; font-size: 0.8rem;
           font-weight: 600; background: #e5e5e5; }
.verdict.reproduced { background: #cdebd3; color: #11501e; }
.verdict.known-deviation, .verdict.expected-at-this-budget { background: #fbe7bd;
                                                               color: #5c3d00; }
.verdict.not-reproduced { background: #f6c9c9; color: #6b0f0f; }
"""

# A click on a figure shows it over the window; another click (or Escape) closes it.
HTML_SCRIPT = """
document.addEventListener("click", (event) => {
  if (event.target.matches("figure img")) event.target.classList.toggle("zoomed");
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    document.querySelectorAll("img.zoomed").forEach((image) => image.classList.remove("zoomed"));
  }
});
"""


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def verdict_badge(verdict: str) -> str:
    css_class = verdict.replace(" ", "-")
    return f'<span class="verdict {html.escape(css_class)}">{html.escape(verdict)}</span>'


def _html_card(card: Card) -> str:
    name = html.escape(card.name)
    image = ""
    if card.thumbnail is not None:
        image = (f'<a href="#{name}"><img alt="{name}: headline figure" '
                 f'src="{_data_url(card.thumbnail)}"></a>')
    return (f'<div class="card"><a class="name" href="#{name}">{name}</a> '
            f"{verdict_badge(card.verdict)}<br>{_markdown.inline(card.text)}{image}</div>")


def _html_block(block) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
        return f"<h{block.level}{anchor}>{_markdown.inline(block.text)}</h{block.level}>"
    if isinstance(block, Prose):
        return _markdown.to_html(block.markdown)
    if isinstance(block, Image):
        caption = html.escape(block.caption)
        source = _data_url(compress_png(block.png, EMBED_WIDTH))
        return (f'<figure><img alt="{caption}" title="click to enlarge" src="{source}">'
                f"<figcaption>{caption}</figcaption></figure>")
    if isinstance(block, Table):
        header = "".join(f"<th>{_markdown.inline(cell)}</th>" for cell in block.header)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_markdown.inline(cell)}</td>" for cell in row) + "</tr>"
            for row in block.rows
        )
        return f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Folded):
        inner = "\n".join(_html_block(inner) for inner in block.blocks)
        return (f"<details><summary>{_markdown.inline(block.summary)}</summary>\n{inner}\n"
                "</details>")
    if isinstance(block, Overview):
        return '<div class="overview">' + "".join(map(_html_card, block.cards)) + "</div>"
    raise TypeError(f"not a block: {block!r}")


def to_html(blocks: list, title: str) -> str:
    body = "\n".join(_html_block(block) for block in blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head><body>\n"
        f"{body}\n<script>{HTML_SCRIPT}</script>\n</body></html>\n"
    )
