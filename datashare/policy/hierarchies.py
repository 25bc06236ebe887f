"""Generalisation hierarchies: for each quasi-identifier, the levels ``policy suggest`` may choose among.

Every level is a policy rule that exists (``keep``, ``generalize`` with a ``to``, ``drop``), so the policy
written for a level reproduces exactly what was counted. Levels are partially ordered by *refinement*: level
A refines level B when every value A gives determines the value B gives (5-year age bands refine 10-year bands;
weeks refine neither months nor years, since a week can straddle two). The search relies on this order only
where it holds: if a node passes the privacy gate, every node that it refines passes too.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

AGE_WIDTHS = (1, 2, 5, 10, 20)  # years
AGE_TOP = 90  # top-coded bands put every age from this one up in one band, "90+"
DATE_UNITS = ("week", "month", "quarter", "year")
_DATE_CHAIN = ("month", "quarter", "year")  # each refines the ones after it; a week refines none of them
CODE_PREFIXES = (3, 1)  # characters kept of a code (E11.9 -> E11 -> E)
MAX_BIN_RATIO = 100  # numeric bins: no finer than a hundredth of the range, no coarser than half of it
MIN_BIN_RATIO = 2


@dataclass(frozen=True)
class Level:
    """One way to release a column: a transform and its options, as the policy file states them."""

    transform: str  # keep, generalize or drop
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def to(self) -> str | None:
        return self.params.get("to")

    def rule(self) -> dict[str, Any]:
        """The policy's rule for this level: ``{transform: generalize, to: month}``."""
        return {"transform": self.transform, **self.params}

    def label(self) -> str:
        """In words, for a person: ``age band 5 years, 90+``."""
        if self.transform != "generalize":
            return {"keep": "as it is", "drop": "dropped"}.get(self.transform, self.transform)
        p = self.params
        if self.to == "age_band":
            return f"age band {p['width']} year{'s' if p['width'] > 1 else ''}" + (f", {p['top']}+" if "top" in p
                                                                                   else "")
        if self.to == "bins":
            return f"bins of {p['width']:g}"
        if self.to == "prefix":
            return f"first {p['length']} character{'s' if p['length'] > 1 else ''}"
        return str(self.to)

    def __hash__(self) -> int:
        return hash((self.transform, tuple(sorted((k, str(v)) for k, v in self.params.items()))))


def refines(fine: Level, coarse: Level) -> bool:
    """Whether every value ``fine`` gives determines the value ``coarse`` gives (a level refines itself)."""
    if fine == coarse or coarse.transform == "drop" or fine.transform == "keep":
        return True
    if fine.transform == "drop" or coarse.transform == "keep":
        return False
    a, b = fine.params, coarse.params
    if fine.to == "age_band" and coarse.to == "age_band":
        if b["width"] % a["width"]:
            return False
        if "top" not in b:
            return "top" not in a
        # fine's bands must not straddle coarse's top, and fine's own top band must lie inside coarse's
        return b["top"] % a["width"] == 0 and a.get("top", math.inf) >= b["top"]
    if fine.to in _DATE_CHAIN and coarse.to in _DATE_CHAIN:
        return _DATE_CHAIN.index(fine.to) <= _DATE_CHAIN.index(coarse.to)
    if fine.to == "bins" and coarse.to == "bins":
        ratio = Fraction(str(b["width"])) / Fraction(str(a["width"]))
        return ratio.denominator == 1
    if fine.to == "prefix" and coarse.to == "prefix":
        return b["length"] <= a["length"]
    return fine == coarse


@dataclass(frozen=True)
class Hierarchy:
    """A column's levels, finest first (``keep``) and coarsest last (``drop``), with their refinement order."""

    column: str
    levels: tuple[Level, ...]

    def coarser(self, index: int) -> tuple[int, ...]:
        """The levels that ``levels[index]`` refines (itself included)."""
        return tuple(j for j, level in enumerate(self.levels) if refines(self.levels[index], level))

    def finer(self, index: int) -> tuple[int, ...]:
        """The levels that refine ``levels[index]`` (itself included)."""
        return tuple(j for j, level in enumerate(self.levels) if refines(level, self.levels[index]))


def age_levels(reference: dt.date) -> list[Level]:
    """Age bands of 1, 2, 5, 10 and 20 years from a date of birth, each also top-coded at :data:`AGE_TOP`."""
    levels = []
    for width in AGE_WIDTHS:
        base = {"to": "age_band", "width": width, "reference": reference}
        levels += [Level("generalize", base), Level("generalize", {**base, "top": AGE_TOP})]
    return levels


def bin_widths(low: float, high: float) -> list[float | int]:
    """Round widths (1, 2 or 5 times a power of ten) that cut ``[low, high]`` into 2 to 100 bins."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return []
    widths: list[float | int] = []
    for exponent in range(math.floor(math.log10(span / MAX_BIN_RATIO)), math.ceil(math.log10(span)) + 1):
        for step in (1, 2, 5):
            width = Fraction(step) * Fraction(10) ** exponent
            if MIN_BIN_RATIO <= span / width <= MAX_BIN_RATIO:
                widths.append(int(width) if width.denominator == 1 else float(width))
    return widths


def hierarchy_for(column: str, kind: str, detected: str | None, *, reference: dt.date,
                  low: float | None = None, high: float | None = None) -> Hierarchy:
    """The levels for a quasi-identifier of value ``kind`` (number, date, text…) that the catalog recognised as
    ``detected`` (dob, district, sex, age…); ``low`` and ``high`` are a number column's range."""
    middle: list[Level] = []
    if kind == "date" and detected == "dob":
        middle = age_levels(reference)
    elif kind == "date":
        middle = [Level("generalize", {"to": unit}) for unit in DATE_UNITS]
    elif detected == "district":
        middle = [Level("generalize", {"to": "region"})]
    elif kind == "number" and detected == "age":
        middle = [Level("generalize", {"to": "bins", "width": width}) for width in AGE_WIDTHS]
    elif kind == "number" and low is not None and high is not None:
        middle = [Level("generalize", {"to": "bins", "width": width}) for width in bin_widths(low, high)]
    elif kind == "text" and detected != "sex":
        middle = [Level("generalize", {"to": "prefix", "length": length}) for length in CODE_PREFIXES]
    return Hierarchy(column, (Level("keep"), *middle, Level("drop")))


def kept(column: str) -> Hierarchy:
    """A quasi-identifier released as it is (``--keep``): one level."""
    return Hierarchy(column, (Level("keep"),))
