"""De-identification transforms: each one validates its parameters and returns a SQL expression.

A transform never sees a row: it turns a column expression into another SQL
expression, so DuckDB applies it to every row at once. Secrets (the HMAC key
pads, the date-shift key) are never written into the SQL text: expressions
refer to the temporary table ``ds_keys`` that the export fills with bound
parameters.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datashare.core.hints import did_you_mean
from datashare.core.sql import quote_ident, sql_string_literal
from datashare.errors import UsageError
from datashare.identifiers import sql_district_region
from datashare.policy.dialects import DUCKDB, Dialect
from datashare.policy.keys import KEYS_TABLE, NOISE_KEY, SHIFT_KEY
from datashare.redaction import OwnSpellings, sql_redact_text

RESERVED_PREFIX = "__ds_"  # names of the compiler's own columns; a quasi-identifier may not use it
ROW_HASH = f"{RESERVED_PREFIX}row"  # the compiler's column holding the SHA-256 of the whole source row
NOISE_BITS = 52  # bits of the keyed hash that make a row's uniform draw (a double's mantissa)
NUMBER = (int, float)
MAX_TEXT_LENGTH = 1000  # characters kept by mask or prefix
MAX_AGE = 150  # years, for age bands
MAX_SHIFT_DAYS = 3650  # date_shift: ten years either way
MAX_DIGITS = 15  # round and noise: beyond a double's precision


class UnsupportedOnEngine(UsageError):
    """A transform the chosen engine cannot run with the same result as DuckDB."""


@dataclass(frozen=True)
class Param:
    """One parameter a transform accepts: its type(s), whether required, and a default."""

    types: tuple[type, ...]
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None  # returns a problem, or None


@dataclass(frozen=True)
class RowIdentifiers:
    """What a row-aware transform gets besides its column: the same row's direct identifiers, as the spellings
    to remove (see :mod:`datashare.redaction`), and the column's text already folded, as SQL expressions."""

    spellings: tuple[OwnSpellings, ...] = ()
    folded: str | None = None


@dataclass(frozen=True)
class Transform:
    name: str
    summary: str
    params: dict[str, Param]
    build: Callable[..., str] | None  # (column, params[, RowIdentifiers when row_aware], dialect); None: dropped
    uses_keys: bool = False
    random: bool = False  # a different draw for nearly every row: unfit for the privacy gate's columns
    needs: Callable[[dict[str, Any]], str | None] = lambda params: None  # the value_kind the column must have
    row_aware: bool = False  # build takes the row's direct identifiers too (free text)


def _positive_at_most(high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if 0 < value <= high else f"must be greater than 0 and at most {high:g}"

    return check


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    """A check that a number lies in [low, high]: bounds keep the generated SQL's arithmetic in range."""

    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be from {low:g} to {high:g}"

    return check


# --- the transforms: each writes its SQL through the dialect ------------------------------------------------
def _keep(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    return col


def _redact(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE {d.literal(str(p['value']))} END"


def _mask(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    first, last, char = int(p["keep_first"]), int(p["keep_last"]), d.literal(p["char"])
    s = d.text(col)
    n = d.length(s)
    return (f"CASE WHEN {col} IS NULL THEN NULL WHEN {n} <= {first + last} THEN repeat({char}, {n}) "
            f"ELSE left({s}, {first}) || repeat({char}, {n} - {first + last}) || right({s}, {last}) END")


def _pseudonymize(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    # Keys are scoped to the recipient and dataset (or link group) whatever per_recipient says (kept for old files).
    digest = f"left({d.hmac_sha256_hex(d.text(col), 'pseudonym')}, {int(p['length'])})"
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE {d.literal(p['prefix'])} || {digest} END"


def _generalize(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    to = p["to"]
    if to == "age_band":
        width = int(p["width"])
        age = d.years_between(d.date(col), str(p["reference"]))
        band = f"CAST(floor({age} / {width}) * {width} AS INTEGER)"
        label = f"{d.text(band)} || '-' || {d.text(f'{band} + {width - 1}')}"
        if p.get("top") is not None:
            top = int(p["top"])
            label = f"CASE WHEN {age} >= {top} THEN '{top}+' ELSE {label} END"
        return label  # NULL in, NULL out: || and the comparison pass NULL on (a CASE around it costs a third more)
    if to == "bins":
        width = p["width"]
        low = f"{d.floor(f'CAST({col} AS DOUBLE) / {width}')} * {width}"
        return (f"CASE WHEN {col} IS NULL THEN NULL ELSE {d.number_text(low)} || '-' || "
                f"{d.number_text(f'{low} + {width}')} END")
    if to == "year":  # a number, not a date: 2024, never 2024-01-01, which reads as a day
        return f"CAST(year({d.date(col)}) AS INTEGER)"
    if to == "quarter":
        day = d.date(col)
        return f"{d.text(f'year({day})')} || '-Q' || {d.text(f'quarter({day})')}"
    if to == "month":
        return d.year_month(d.date(col))
    if to == "week":  # the ISO 8601 week, which starts on a Monday and can straddle two years: 2024-W33
        return d.iso_week(d.date(col))
    if to == "region":
        return sql_district_region(col, d)
    if to == "prefix":
        return f"left({d.text(col)}, {int(p['length'])})"
    raise AssertionError(to)


def _date_shift(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    span = 2 * int(p["max_days"]) + 1
    subject = d.ident(p["subject"])
    # The offset is 48 bits of SHA-256(key || subject), reduced to the span. A prefix-keyed hash would be a weak
    # MAC, but only because its full digest lets anyone extend the message; here no more than a few bits of it
    # ever show (the offset), and one hash costs a quarter of an HMAC's four SHA-256 blocks.
    keyed = d.sha256_hex(d.concat_bytes(d.key(SHIFT_KEY), d.utf8(d.text(subject))))
    offset = f"({d.hex_prefix_int(keyed, 12)} % {span}) - {int(p['max_days'])}"
    return d.add_days(d.date(col), offset)


def _round(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    return d.round(col, int(p["digits"]))


def _top_code(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    # least() skips a NULL on both engines: a missing value would come out as the bound.
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE least({col}, {p['at']}) END"


def _bottom_code(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE greatest({col}, {p['at']}) END"


def _noise(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    # Laplace(0, scale) by inverse CDF. u in (-1/2, 1/2) comes from a keyed hash of the column's name and the whole
    # source row, with a key of the recipient's: exporting again gives the same noise (averaging gains nothing),
    # another recipient independent noise. It is bound once per row through a one-element list.
    if d.name != "duckdb":
        raise UnsupportedOnEngine(f"noise is not available on the {d.name} engine: its draw hashes the source row "
                                  "as DuckDB writes it")
    scale = float(p["scale"])
    keyed = (f"sha256((SELECT {NOISE_KEY} FROM {KEYS_TABLE}) || encode({sql_string_literal(col)} || ':' || "
             f"{quote_ident(ROW_HASH)}))")
    bits = f"CAST('0x' || left({keyed}, {NOISE_BITS // 4}) AS BIGINT)"
    uniform = f"(CAST({bits} AS DOUBLE) + 0.5) / {float(2 ** NOISE_BITS)!r} - 0.5"
    draw = f"list_transform([{uniform}], u -> -{scale} * sign(u) * ln(greatest(1 - 2 * abs(u), 1e-300)))[1]"
    noisy = f"CAST({col} AS DOUBLE) + {draw}"
    if p.get("digits") is not None:
        noisy = d.round(noisy, int(p["digits"]), floating=True)
    return noisy


def _suppress_rare(col: str, p: dict, d: Dialect = DUCKDB) -> str:
    return (f"CASE WHEN {col} IS NULL THEN NULL WHEN count(*) OVER (PARTITION BY {col}) < {int(p['min_count'])} "
            f"THEN {d.literal(str(p['value']))} ELSE {d.text(col)} END")


def _redact_identifiers(col: str, p: dict, row: RowIdentifiers = RowIdentifiers(), d: Dialect = DUCKDB) -> str:
    return sql_redact_text(col, row.spellings, row.folded, d=d)


def _date_value(value: Any) -> str | None:
    if isinstance(value, dt.date):
        return None
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return "must be a date like 2026-01-01"
    return None


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("keep", "kept as it is", {}, _keep),
    Transform("drop", "dropped", {}, None),
    Transform("redact", "replaced by a constant", {"value": Param((str,), default="[REDACTED]")}, _redact),
    Transform("mask", "masked except the first/last characters", {
        "keep_first": Param((int,), default=0, check=_between(0, MAX_TEXT_LENGTH)),
        "keep_last": Param((int,), default=0, check=_between(0, MAX_TEXT_LENGTH)),
        "char": Param((str,), default="*", check=lambda v: None if len(v) == 1 else "must be one character"),
    }, _mask),
    Transform("pseudonymize", "keyed HMAC-SHA256 pseudonym (key of the recipient and dataset, or link group)", {
        "per_recipient": Param((bool,), default=True),  # what every pseudonym is now; false is ignored
        "length": Param((int,), default=16, check=lambda v: None if 8 <= v <= 64 else "must be 8 to 64"),
        "prefix": Param((str,), default=""),
    }, _pseudonymize, uses_keys=True),
    Transform("generalize", "generalised", {
        "to": Param((str,), required=True, choices=("age_band", "bins", "week", "month", "quarter", "year",
                                                    "region", "prefix")),
        "width": Param(NUMBER, check=_positive_at_most(1e12)),
        "reference": Param((dt.date, str), check=_date_value),
        "top": Param((int,), check=_between(1, MAX_AGE)),
        "length": Param((int,), check=_between(1, MAX_TEXT_LENGTH)),
    }, _generalize, needs=lambda p: GENERALIZE_KIND.get(p.get("to"))),
    Transform("date_shift", "shifted by a per-subject offset (key of the recipient and dataset, or link group)", {
        "max_days": Param((int,), required=True, check=_between(1, MAX_SHIFT_DAYS)),
        "subject": Param((str,), required=True),
    }, _date_shift, uses_keys=True, needs=lambda p: "date"),
    Transform("round", "rounded", {"digits": Param((int,), default=0, check=_between(-MAX_DIGITS, MAX_DIGITS))},
              _round, needs=lambda p: "number"),
    Transform("top_code", "top-coded", {"at": Param(NUMBER, required=True, check=_between(-1e15, 1e15))},
              _top_code, needs=lambda p: "number"),
    Transform("bottom_code", "bottom-coded", {"at": Param(NUMBER, required=True, check=_between(-1e15, 1e15))},
              _bottom_code,
              needs=lambda p: "number"),
    Transform("noise", "Laplace noise added, fixed per row and recipient", {
        "scale": Param(NUMBER, required=True, check=_positive_at_most(1e12)),
        "digits": Param((int,), check=_between(-MAX_DIGITS, MAX_DIGITS)),
    }, _noise, uses_keys=True, random=True, needs=lambda p: "number"),
    Transform("suppress_rare", "rare values replaced by a constant", {
        "min_count": Param((int,), required=True, check=_between(1, 1e12)),
        "value": Param((str,), default="Other"),
    }, _suppress_rare),
    Transform("redact_identifiers", "the row's own identifiers and others' removed from the text ([NAME], [HKID]…)",
              {}, _redact_identifiers, row_aware=True),
)}

# What a generalised column is called in the export, so it cannot be taken for the original: its name with the
# level as a suffix (a date's trailing "_date" replaced: admission_date -> admission_year). A policy's `as:` names
# any output column itself.
GENERALIZED_SUFFIX = {"age_band": "_age_band", "bins": "_bin", "week": "_week", "month": "_month",
                      "quarter": "_quarter", "year": "_year", "region": "_region", "prefix": "_prefix"}
DATE_SUFFIX = "_date"
DATE_LEVELS = ("week", "month", "quarter", "year")


def output_name(column: str, transform: str, params: dict[str, Any]) -> str:
    """The name a column gets in the export without ``as:``: a generalised one says what it now holds."""
    if transform != "generalize":
        return column
    to = params["to"]
    stem = column.removesuffix(DATE_SUFFIX) if to in DATE_LEVELS and column != DATE_SUFFIX else column
    suffix = GENERALIZED_SUFFIX[to] + (str(int(params["length"])) if to == "prefix" else "")
    return stem + suffix


# Options that must come together for generalize, and the kind of column each target needs.
GENERALIZE_NEEDS = {"age_band": ("width", "reference"), "bins": ("width",), "prefix": ("length",)}
GENERALIZE_KIND = {"age_band": "date", "week": "date", "month": "date", "quarter": "date", "year": "date",
                   "bins": "number"}


_KIND_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false", dt.date: "a date"}


def _kinds(types: tuple[type, ...]) -> str:
    """``a whole number or a number`` reads badly: a float that takes ints too is just a number."""
    words = [_KIND_WORDS.get(t, t.__name__) for t in types if not (t is int and float in types)]
    return " or ".join(words)


def validate_params(name: str, given: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Fill defaults and check every parameter; return (params, [(param, problem)])."""

    transform = TRANSFORMS[name]
    problems: list[tuple[str, str]] = []
    params: dict[str, Any] = {}
    for key, value in given.items():
        spec = transform.params.get(key)
        if spec is None:
            hint = did_you_mean(key, transform.params, before=" (", after=")")
            allowed = ", ".join(transform.params) or "no options"
            problems.append((key, f"unknown option {str(key)!r} for {name}{hint or f'; {name} takes {allowed}'}"))
            continue
        if isinstance(value, bool) and bool not in spec.types:
            problems.append((key, f"must be {_kinds(spec.types)}, not true or false"))
            continue
        if not isinstance(value, spec.types):
            problems.append((key, f"must be {_kinds(spec.types)}"))
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append((key, "must be a finite number"))
            continue
        if spec.choices is not None and value not in spec.choices:
            hint = did_you_mean(value, spec.choices, before=" (", after=")")
            problems.append((key, f"must be one of {', '.join(map(str, spec.choices))}{hint}"))
            continue
        if spec.check is not None and (problem := spec.check(value)) is not None:
            problems.append((key, problem))
            continue
        params[key] = value
    for key, spec in transform.params.items():
        if key not in given:
            if spec.required:
                problems.append((key, f"{name} needs {key}"))
            elif spec.default is not None:
                params[key] = spec.default
    if name == "generalize" and params.get("to") in GENERALIZE_NEEDS:
        for needed in GENERALIZE_NEEDS[params["to"]]:
            if needed not in given:
                problems.append((needed, f"generalize to {params['to']} needs {needed}"))
        width = params.get("width")
        if params["to"] == "age_band" and width is not None and not (isinstance(width, int) and width <= MAX_AGE):
            problems.append(("width", f"an age band is a whole number of years, 1 to {MAX_AGE}"))
    return params, problems
