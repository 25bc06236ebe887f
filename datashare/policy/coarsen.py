"""One level coarser: the next generalisation of a quasi-identifier, in the transforms a policy can apply.

``risk`` shows, for each quasi-identifier, what the classes below k would become
if that one column were coarsened one level (its "drivers"). The levels are the
transforms' own: age bands of 1, 2, 5, 10 and 20 years then top-coded at 80;
dates to month, quarter, year; code prefixes one character shorter; number bins
twice as wide; one rounding digit fewer; rare values merged under twice the
count. A column with no coarser level of its own (a region, a kept category)
shows only what removing it would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AGE_BAND_WIDTHS = (1, 2, 5, 10, 20)
AGE_TOP = 80  # the age at which the widest band is top-coded (80+)
DATE_LEVELS = ("month", "quarter", "year")


@dataclass(frozen=True)
class Coarsening:
    """The transform and parameters one level coarser than a column's, and that level in words."""

    transform: str
    params: dict[str, Any]
    description: str


def coarser(transform: str, params: dict[str, Any], kind: str) -> Coarsening | None:
    """The level above ``transform`` with ``params`` on a column of ``kind`` (``date``, ``number``, ``text``…), or
    ``None`` when there is none."""
    to = params.get("to") if transform == "generalize" else None
    if to == "age_band":
        return _wider_age_band(params)
    if to in DATE_LEVELS:
        level = DATE_LEVELS.index(to)
        return None if level + 1 == len(DATE_LEVELS) else _date(DATE_LEVELS[level + 1])
    if to == "prefix":
        length = int(params["length"])
        return None if length <= 1 else Coarsening(
            "generalize", {"to": "prefix", "length": length - 1}, f"first {length - 1} characters")
    if to == "bins":
        width = params["width"] * 2
        return Coarsening("generalize", {"to": "bins", "width": width}, f"bins of {width:g}")
    if transform in ("keep", "date_shift") and kind == "date":
        return _date("month")
    if transform == "round":
        digits = int(params.get("digits", 0)) - 1
        return Coarsening("round", {"digits": digits}, f"rounded to {digits} digits")
    if transform == "suppress_rare":
        count = int(params["min_count"]) * 2
        return Coarsening("suppress_rare", {**params, "min_count": count}, f"values seen fewer than {count} times "
                          "merged")
    return None


def _date(level: str) -> Coarsening:
    return Coarsening("generalize", {"to": level}, f"to the {level}")


def _wider_age_band(params: dict[str, Any]) -> Coarsening | None:
    width = int(params["width"])
    wider = next((w for w in AGE_BAND_WIDTHS if w > width), None)
    if wider is not None:
        return Coarsening("generalize", {**params, "width": wider}, f"age bands of {wider} years")
    if params.get("top") is None or int(params["top"]) > AGE_TOP:
        return Coarsening("generalize", {**params, "top": AGE_TOP}, f"age bands of {width} years, {AGE_TOP}+")
    return None
