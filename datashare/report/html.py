"""What both reports share: the Jinja2 templates, bar charts as data for inline SVG, and the atomic write.

A report is one HTML file a committee can open anywhere: inline CSS, inline SVG,
no script, nothing fetched. Every value reaches the page through Jinja2 with
autoescaping on, so a dataset, recipient or column named ``<script>`` is text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datashare.audit.log import AuditRecorder
from datashare.core.fs import staged_writes
from datashare.errors import InputError

TEMPLATES = Path(__file__).resolve().parent / "templates"
REPORT_MODE = 0o600  # like an export's files: its owner decides whom to give it to

# Bar charts: the width of the drawing area for bars, and the height of one bar row, in SVG user units.
CHART_WIDTH = 480
BAR_HEIGHT = 22
PERIOD_LABEL_WIDTH = 70  # room for a date under a column
COLOURS = ("#3b6ea8", "#d08c2c", "#4f9a5a", "#a8463b", "#7b5ea8", "#3b9aa8", "#a8a23b", "#666666")


@dataclass(frozen=True)
class Bar:
    """One bar: its label, the value it stands for (``None`` when withheld or unknown) and the text shown."""

    label: str
    value: float | None
    text: str


def bar_rows(bars: Sequence[Bar], *, scale: float | None = None) -> list[dict[str, Any]]:
    """Each bar with its length in SVG units and its row's top, for a horizontal bar chart.

    ``scale`` is the value of a full-width bar (the largest value by default). A
    bar whose value is withheld has no length; its text says why.
    """
    largest = scale if scale is not None else max((b.value for b in bars if b.value is not None), default=0)
    rows = []
    for index, bar in enumerate(bars):
        length = 0.0 if bar.value is None or not largest else CHART_WIDTH * min(bar.value / largest, 1.0)
        rows.append({"label": bar.label, "text": bar.text, "length": round(length, 1),
                     "top": index * BAR_HEIGHT, "withheld": bar.value is None})
    return rows


def stacked_columns(periods: Sequence[str], series: dict[str, dict[str, int]]) -> dict[str, Any]:
    """A stacked column chart: one column per period, one segment per series (a recipient), in SVG units."""
    height, column = 200, max(12, min(48, CHART_WIDTH // max(len(periods), 1) - 6))
    totals = {p: sum(counts.get(p, 0) for counts in series.values()) for p in periods}
    largest = max(totals.values(), default=0) or 1
    every = max(1, -(-PERIOD_LABEL_WIDTH // (column + 6)))  # label every n-th column so labels do not overlap
    columns = []
    for index, period in enumerate(periods):
        base, segments = height, []
        for number, (name, counts) in enumerate(series.items()):
            count = counts.get(period, 0)
            if count:
                size = height * count / largest
                base -= size
                segments.append({"series": name, "count": count, "y": round(base, 1), "height": round(size, 1),
                                 "colour": COLOURS[number % len(COLOURS)]})
        columns.append({"period": period, "label": period if index % every == 0 else "", "total": totals[period],
                        "x": index * (column + 6), "segments": segments})
    legend = [{"series": name, "colour": COLOURS[n % len(COLOURS)]} for n, name in enumerate(series)]
    return {"columns": columns, "legend": legend, "height": height, "column_width": column,
            "width": max(len(periods), 1) * (column + 6), "largest": largest}


def render(template: str, **context: Any) -> str:
    """A template from ``report/templates`` rendered with autoescaping, failing on any undefined name."""
    # deferred: jinja2 is needed only to write a report
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["count"] = _count
    environment.filters["share"] = _share
    return environment.get_template(template).render(**context)


def _count(value: Any) -> str:
    """A count as shown: ``1,234``, or the text that stands for a withheld one (``<5``, ``withheld``)."""
    return f"{value:,}" if isinstance(value, int) else str(value) if value is not None else "—"


def _share(value: Any, digits: int = 1) -> str:
    """A share as a percentage, or its bound (``<0.0066`` → ``<0.66%``), or ``withheld``."""
    if value is None:
        return "withheld"
    if isinstance(value, str):
        sign, number = value[0], float(value[1:])
        return f"{sign}{number:.2%}"
    return f"{value:.{digits}%}"


def check_out(out: Path) -> Path:
    """Where the report goes: a file in an existing folder (an existing file is replaced, a folder refused)."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give the report's file name (e.g. {out / 'report.html'})")
    if not out.parent.is_dir():
        raise InputError(f"cannot write {out}: the folder {out.parent} does not exist")
    return out


def publish(record: AuditRecorder, out: Path, html: str, sections: list[str]) -> dict[str, Any]:
    """Stage the report beside ``out``, log the access (with the report's SHA-256), then rename it into place.

    The entry is written before the file appears; a rename that fails after it
    is logged as an error naming that entry (see :func:`datashare.audit.log.audited`).
    """
    data = html.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    try:
        with staged_writes({out: (data, REPORT_MODE)}):
            record.ok(sha256=digest, sections=sections)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    return {"path": str(out.absolute()), "sha256": digest, "bytes": len(data), "sections": sections}
