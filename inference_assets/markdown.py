"""Markdown for metadata the UI renders: tables and inline PNG images."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence


def table(rows: Sequence[Mapping[str, object]], digits: int = 4) -> str:
    """A markdown table of `rows` (dicts sharing the first row's keys); floats rounded."""
    if not rows:
        return "_(none)_"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(name), digits) for name in columns) + " |")
    return "\n".join(lines)


def png_image(png: bytes, alt: str) -> str:
    """A PNG inlined as a base64 data URI (the UI renders it inside markdown metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")
