"""Just enough Markdown to HTML for the experiments' explanations (no dependency).

Blocks, separated by blank lines: ``#`` headings, ``-``/``*`` bullet lists, ``1.`` numbered lists
(an indented line continues the item), and paragraphs. Inline: ```code```, ``**bold**``,
``*italic*`` and ``[text](url)``. Everything else is text, escaped.
"""

from __future__ import annotations

import html
import re

_BULLET = re.compile(r"[-*]\s+")
_NUMBERED = re.compile(r"\d+\.\s+")
_HEADING = re.compile(r"(#{1,6})\s+(.*)")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def inline(text: str) -> str:
    """One line of inline Markdown as HTML."""
    parts = text.split("`")
    out = []
    for index, part in enumerate(parts):
        escaped = html.escape(part, quote=False)
        if index % 2 and index < len(parts) - 1:
            out.append(f"<code>{escaped}</code>")
            continue
        if index % 2:  # an unmatched backtick stays a backtick
            escaped = "`" + escaped
        escaped = _LINK.sub(r'<a href="\2">\1</a>', escaped)
        escaped = _STRONG.sub(r"<strong>\1</strong>", escaped)
        out.append(_EMPHASIS.sub(r"<em>\1</em>", escaped))
    return "".join(out)


def _list_items(lines: list[str], marker: re.Pattern) -> list[str]:
    items: list[str] = []
    for line in lines:
        match = marker.match(line)
        if match:
            items.append(line[match.end():].strip())
        elif items:
            items[-1] += " " + line.strip()
    return items


def to_html(text: str) -> str:
    """Markdown ``text`` as an HTML fragment."""
    blocks = re.split(r"\n\s*\n", text.strip("\n"))
    out = []
    for block in blocks:
        lines = block.strip("\n").splitlines()
        if not lines:
            continue
        first = lines[0].lstrip()
        heading = _HEADING.fullmatch(first)
        if heading and len(lines) == 1:
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif _BULLET.match(first):
            items = _list_items(lines, _BULLET)
            out.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>")
        elif _NUMBERED.match(first):
            items = _list_items(lines, _NUMBERED)
            out.append("<ol>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ol>")
        else:
            out.append("<p>" + inline(" ".join(line.strip() for line in lines)) + "</p>")
    return "\n".join(out)
