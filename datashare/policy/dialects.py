"""The engine seam: every piece of engine SQL the transforms and the compiler need, for DuckDB and for Spark.

A transform says *what* it computes (an HMAC of the column, the years between
two dates, a regex replacement); a :class:`Dialect` says how one engine writes
it. Engines differ in ways that change results silently, so each method here
is written to give the same value, bit for bit, on both:

* regular expressions are limited to a declared subset, checked on both and
  rewritten for Java where its meaning differs from RE2's
  (:mod:`datashare.policy.javaregex`);
* Spark has no HMAC: it is built from ``sha2`` over the bound key pads;
* ``round(x, d)`` on doubles, ``lower('İ')``, ``upper('ß')`` (DuckDB's one-character
  mapping), years between dates and the text of a double follow DuckDB's definitions;
* lists, lambdas and structs (free text's row-aware redaction) are written in each
  engine's words, with its indexing (DuckDB's lists from 1, Spark's lambdas' from 0).

Keys are never SQL text: DuckDB reads them from the one-row temporary table
``ds_keys`` (bound parameters), Spark from a one-row table of bound bytes that
is broadcast and cross-joined (:meth:`Dialect.key`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from datashare.core.sql import quote_ident, sql_string_literal
from datashare.errors import InputError
from datashare.policy.javaregex import check_anchored, check_regex, java_regex, java_replacement
from datashare.policy.keys import KEYS_TABLE


@dataclass(frozen=True)
class Dialect:
    """How one engine writes what the transforms and the compiler need; :data:`DUCKDB` and :data:`SPARK`.

    ``floating`` names the (quoted) columns holding doubles: rounding them
    follows DuckDB's definition on both engines.
    """

    name: str = "duckdb"
    floating: frozenset[str] = frozenset()

    def for_columns(self, columns: list[tuple[str, str]]) -> Dialect:
        """This dialect, knowing which of ``columns`` (name, DuckDB type) hold doubles."""
        floating = frozenset(self.ident(name) for name, kind in columns if kind.upper() in ("DOUBLE", "FLOAT",
                                                                                             "REAL"))
        return dataclasses.replace(self, floating=floating)

    # --- names, literals, text ---------------------------------------------------------------------------------
    def ident(self, name: str) -> str:
        return quote_ident(name)

    def literal(self, text: str) -> str:
        return sql_string_literal(text)

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def length(self, expr: str) -> str:
        return f"length({expr})"

    def byte_length(self, expr: str) -> str:
        return f"strlen({expr})"

    def lower(self, expr: str) -> str:
        return f"lower({expr})"

    def contains(self, expr: str, needle: str) -> str:
        return f"contains({expr}, {needle})"

    def number_text(self, expr: str) -> str:
        """A double as DuckDB writes it: ``10.0``, ``0.5``, ``1e+16``."""
        return self.text(expr)

    def floor(self, expr: str) -> str:
        """floor() keeping a double a double."""
        return f"floor({expr})"

    # --- hashes and keys ---------------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        """The key ``name`` of the one-row keys table, as an expression."""
        return f"(SELECT {name} FROM {KEYS_TABLE})"

    def utf8(self, text_expr: str) -> str:
        return f"encode({text_expr})"

    def sha256_hex(self, bytes_expr: str) -> str:
        return f"sha256({bytes_expr})"

    def concat_bytes(self, first: str, second: str) -> str:
        return f"{first} || {second}"

    def unhex(self, expr: str) -> str:
        return f"unhex({expr})"

    def hmac_sha256_hex(self, message_text: str, pad: str) -> str:
        """HMAC-SHA256 in SQL, RFC 2104: H((K xor opad) || H((K xor ipad) || m)), pads ``<pad>_ipad``/``_opad``."""
        inner = self.unhex(self.sha256_hex(self.concat_bytes(self.key(f"{pad}_ipad"), self.utf8(message_text))))
        return self.sha256_hex(self.concat_bytes(self.key(f"{pad}_opad"), inner))

    def hex_prefix_int(self, hex_expr: str, digits: int) -> str:
        """The first ``digits`` hex digits (at most 15) of ``hex_expr`` as a BIGINT."""
        return f"CAST('0x' || left({hex_expr}, {int(digits)}) AS BIGINT)"

    # --- dates and numbers -------------------------------------------------------------------------------------
    def date(self, expr: str) -> str:
        return f"CAST({expr} AS DATE)"

    def add_days(self, date_expr: str, days_expr: str) -> str:
        return f"{date_expr} + CAST({days_expr} AS INTEGER)"

    def years_between(self, start_expr: str, end_iso: str) -> str:
        """Whole years from the date ``start_expr`` to the date literal ``end_iso``, as DuckDB's date_sub counts."""
        return f"date_sub('year', {start_expr}, DATE {self.literal(end_iso)})"

    def year_month(self, date_expr: str) -> str:
        """A date's year and month as text: 2024-02."""
        return f"strftime({date_expr}, '%Y-%m')"

    def iso_week(self, date_expr: str) -> str:
        """A date's ISO 8601 week as text: 2024-W33 (its year is the week's, which can differ from the day's)."""
        return f"strftime({date_expr}, '%G-W%V')"

    def round(self, expr: str, digits: int, *, floating: bool | None = None) -> str:
        """``round(expr, digits)``; ``floating`` says ``expr`` is a double (else: a floating column's name)."""
        return f"round({expr}, {int(digits)})"

    # --- regular expressions -----------------------------------------------------------------------------------
    def regexp_replace(self, expr: str, pattern: str, replacement: str, *, every: bool = True) -> str:
        """Every match of ``pattern`` (within :data:`javaregex.REGEX_SUBSET`) replaced (the first only, unless
        ``every``: for a pattern anchored at an end, where both are the same); ``\\1`` in ``replacement``."""
        check_regex(pattern)
        java_replacement(replacement)
        if not every:
            check_anchored(pattern)
            return f"regexp_replace({expr}, {self.literal(pattern)}, {self.literal(replacement)})"
        return f"regexp_replace({expr}, {self.literal(pattern)}, {self.literal(replacement)}, 'g')"

    def regexp_matches(self, expr: str, pattern: str) -> str:
        check_regex(pattern)
        return f"regexp_matches({expr}, {self.literal(pattern)})"

    def regexp_full_match(self, expr: str, pattern: str) -> str:
        check_regex(pattern)
        return f"regexp_full_match({expr}, {self.literal(pattern)})"

    def regexp_extract(self, expr: str, pattern: str) -> str:
        """The first match of ``pattern`` in ``expr`` (the whole match), or ''."""
        check_regex(pattern)
        return f"regexp_extract({expr}, {self.literal(pattern)})"

    def split_regex(self, expr: str, pattern: str) -> str:
        """``expr`` cut at every match of ``pattern`` (empty pieces kept), as a list."""
        check_regex(pattern)
        return f"string_split_regex({expr}, {self.literal(pattern)})"

    # --- text and lists (free text's row-aware redaction) ------------------------------------------------------
    def upper(self, expr: str) -> str:
        return f"upper({expr})"

    def caseless(self, char: str) -> str:
        """True when the one character ``char`` is no letter with case (a word boundary for the redaction)."""
        return f"lower({char}) = upper({char})"

    def all_but_last(self, expr: str) -> str:
        return f"left({expr}, -1)"

    def split(self, expr: str, needle: str) -> str:
        """``expr`` cut at every occurrence of the text ``needle`` (an expression), empty pieces kept."""
        return f"string_split({expr}, {needle})"

    def spaced_characters(self, expr: str) -> str:
        """The characters of ``expr`` with one space between each two."""
        return f"array_to_string(string_split({expr}, ''), ' ')"

    def join(self, items: str, sep: str) -> str:
        return f"array_to_string({items}, {sep})"

    def array(self, items: list[str]) -> str:
        return "[" + ", ".join(items) + "]"

    def item(self, items: str, k: int | str) -> str:
        """The ``k``-th (from 1) item of a list, NULL beyond its end."""
        return f"{items}[{k}]"

    def size(self, items: str) -> str:
        return f"len({items})"

    def array_contains(self, items: str, value: str) -> str:
        return f"list_contains({items}, {value})"

    def struct(self, fields: dict[str, str]) -> str:
        return "struct_pack(" + ", ".join(f"{name} := {sql}" for name, sql in fields.items()) + ")"

    def let(self, value: str, var: str, body: str) -> str:
        """``body`` with the lambda variable ``var`` bound to ``value`` (computed once)."""
        return f"list_transform([{value}], lambda {var}: {body})[1]"

    def transform_indexed(self, items: str, var: str, index: str, body: object) -> str:
        """Each item of a list through ``body(item_var, index_from_1_sql)``, a lambda with the item's position."""
        return f"list_transform({items}, lambda {var}, {index}: {body(var, index)})"  # type: ignore[operator]

    def raise_error(self, message: str) -> str:
        return f"error({self.literal(message)})"

    # --- joins and comparisons ---------------------------------------------------------------------------------
    def semi_join(self) -> str:
        return "SEMI JOIN"

    def anti_join(self) -> str:
        return "ANTI JOIN"

    def null_safe_equal(self, left: str, right: str) -> str:
        return f"{left} IS NOT DISTINCT FROM {right}"

    def row_order_hash(self, row: str, columns: list[str]) -> str:
        """A 64-bit hash of a whole source row (``row`` its alias, ``columns`` its quoted columns)."""
        return f"hash({row})"

    def order_by_key(self, expr: str, key: str) -> str:
        return f"hash({expr}, {self.key(key)})"

    def star_replacing(self, columns: list[str], replacements: dict[str, str]) -> str:
        """Every column of a row, some replaced by expressions (``columns`` and the keys quoted)."""
        if not replacements:
            return "*"
        return "* REPLACE (" + ", ".join(f"{sql} AS {column}" for column, sql in replacements.items()) + ")"

    def with_keys(self, from_clause: str) -> str:
        """A FROM clause that also gives :meth:`key` its table (DuckDB reads keys by scalar subqueries)."""
        return from_clause


# Characters whose upper case Java writes as two or more (Unicode's full mapping) and DuckDB as one (the simple
# mapping): Spark's upper() goes round them through the private use area.
_FULL_UPPER = ("ßŉǰΐΰևẖẗẘẙẚὐὒὔὖᾀᾁᾂᾃᾄᾅᾆᾇᾈᾉᾊᾋᾌᾍᾎᾏᾐᾑᾒᾓᾔᾕᾖᾗᾘᾙᾚᾛᾜᾝᾞᾟᾠᾡᾢᾣᾤᾥᾦᾧᾨᾩᾪᾫᾬᾭᾮᾯᾲᾳᾴᾶᾷᾼῂῃῄῆῇῌῒΐῖῗῢΰῤῦῧῲῳῴῶ"
               "ῷῼﬀﬁﬂﬃﬄﬅﬆﬓﬔﬕﬖﬗ")
_SIMPLE_UPPER = ("ẞŉǰΐΰևẖẗẘẙẚὐὒὔὖᾈᾉᾊᾋᾌᾍᾎᾏᾈᾉᾊᾋᾌᾍᾎᾏᾘᾙᾚᾛᾜᾝᾞᾟᾘᾙᾚᾛᾜᾝᾞᾟᾨᾩᾪᾫᾬᾭᾮᾯᾨᾩᾪᾫᾬᾭᾮᾯᾲᾼᾴᾶᾷᾼῂῌῄῆῇῌῒΐῖῗῢΰῤῦῧῲῼῴῶ"
                 "ῷῼﬀﬁﬂﬃﬄﬅﬆﬓﬔﬕﬖﬗ")
_PRIVATE = "".join(chr(0xF0000 + k) for k in range(len(_FULL_UPPER)))
_SPARK_NUMBER_PLAIN = 1e16  # below it (and from 1e-4) DuckDB writes a double in plain digits
_BIG = 9.0e18  # a double beyond it is a whole number and floor() to BIGINT would overflow


@dataclass(frozen=True)
class SparkDialect(Dialect):
    """Spark SQL (ANSI mode) giving DuckDB's results; keys come from a broadcast one-row table."""

    name: str = "spark"

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def literal(self, text: str) -> str:
        if "\x00" in text:
            raise InputError("text holding a NUL character cannot be used in a query")
        escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
        return "'" + escaped + "'"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS STRING)"

    def byte_length(self, expr: str) -> str:
        return f"octet_length({expr})"

    def lower(self, expr: str) -> str:
        # Java lowers İ to i + a combining dot and a final Σ to ς; DuckDB (simple case mapping) to i and σ.
        return f"lower(translate({expr}, 'İΣ', 'iσ'))"

    def number_text(self, expr: str) -> str:
        # DuckDB writes a double in plain digits from 1e-4 up to 1e16 (a whole one with ".0"), else as 1e+16 or
        # 1.5e-05; Java switches at 1e-3 and 1e7 and writes 1.0E16. A decimal made from the double takes Java's
        # shortest digits, and its trailing zeros go; the exponent form is respelt.
        plain = f"regexp_replace(CAST(CAST({expr} AS DECIMAL(38, 22)) AS STRING), '0+$', '')"
        java = f"CAST({expr} AS STRING)"
        for pattern, replacement in (("\\.0E", "E"), ("E(-?)([0-9])$", "E$10$2"), ("E([0-9])", "e+$1"),
                                     ("E-", "e-")):
            java = f"regexp_replace({java}, {self.literal(pattern)}, {self.literal(replacement)})"
        return (f"CASE WHEN {expr} = 0 THEN '0.0' "
                f"WHEN abs({expr}) < {_SPARK_NUMBER_PLAIN!r}D AND {expr} = {self.floor(expr)} "
                f"THEN CAST(CAST({expr} AS BIGINT) AS STRING) || '.0' "
                f"WHEN abs({expr}) < {_SPARK_NUMBER_PLAIN!r}D AND abs({expr}) >= 1.0E-4D THEN {plain} "
                f"ELSE {java} END")

    def floor(self, expr: str) -> str:
        # Spark's floor() gives a BIGINT, which overflows (an error in ANSI mode) where every double is whole.
        return f"CASE WHEN abs({expr}) >= {_BIG!r}D THEN {expr} ELSE CAST(floor({expr}) AS DOUBLE) END"

    def key(self, name: str) -> str:
        return f"{KEYS_TABLE}.{spark_key_column(name)}"

    def utf8(self, text_expr: str) -> str:
        return f"CAST({text_expr} AS BINARY)"

    def sha256_hex(self, bytes_expr: str) -> str:
        return f"sha2({bytes_expr}, 256)"

    def concat_bytes(self, first: str, second: str) -> str:
        return f"concat({first}, {second})"

    def hex_prefix_int(self, hex_expr: str, digits: int) -> str:
        return f"CAST(conv(left({hex_expr}, {int(digits)}), 16, 10) AS BIGINT)"

    def add_days(self, date_expr: str, days_expr: str) -> str:
        return f"date_add({date_expr}, CAST({days_expr} AS INT))"

    def years_between(self, start_expr: str, end_iso: str) -> str:
        # DuckDB's count: whole months from the earlier date to the later, a day of month that the later month
        # lacks counting as its last day, then whole years, with the sign of the order.
        end = f"DATE {self.literal(end_iso)}"
        lo, hi = f"least({start_expr}, {end})", f"greatest({start_expr}, {end})"
        borrow = f"CASE WHEN day({hi}) < day({lo}) AND day({hi}) <> day(last_day({hi})) THEN 1 ELSE 0 END"
        months = f"(year({hi}) - year({lo})) * 12 + month({hi}) - month({lo}) - {borrow}"
        # least() and greatest() skip a NULL: the sign, NULL for a NULL date, keeps the result NULL.
        return f"(CASE WHEN {start_expr} > {end} THEN -1 WHEN {start_expr} <= {end} THEN 1 END * (({months}) div 12))"

    def year_month(self, date_expr: str) -> str:
        return f"date_format({date_expr}, 'yyyy-MM')"

    def iso_week(self, date_expr: str) -> str:
        # The ISO year is the year of the week's Thursday; weekofyear() is ISO's week number.
        thursday = f"date_add({date_expr}, 3 - ((dayofweek({date_expr}) + 5) % 7))"
        return f"CAST(year({thursday}) AS STRING) || '-W' || lpad(CAST(weekofyear({date_expr}) AS STRING), 2, '0')"

    def round(self, expr: str, digits: int, *, floating: bool | None = None) -> str:
        digits = int(digits)
        if floating is None:
            floating = expr in self.floating
        if not floating or digits == 0:
            return f"round({expr}, {digits})"  # exact on integers and decimals; on doubles with 0 digits too
        # DuckDB on a double: scale by 10^|d| (a product, or a quotient for d < 0), add a half to the magnitude,
        # floor, put the sign back, scale back.
        scale = f"{float(10 ** abs(digits))!r}D"
        scaled = f"({expr} * {scale})" if digits > 0 else f"({expr} / {scale})"
        whole = (f"CASE WHEN abs({scaled}) >= {_BIG!r}D THEN {scaled} "
                 f"ELSE floor(abs({scaled}) + 0.5D) * signum({scaled}) END")
        return f"(({whole}) / {scale})" if digits > 0 else f"(({whole}) * {scale})"

    def regexp_replace(self, expr: str, pattern: str, replacement: str, *, every: bool = True) -> str:
        if not every:
            check_anchored(pattern)
        return (f"regexp_replace({expr}, {self.literal(java_regex(pattern))}, "
                f"{self.literal(java_replacement(replacement))})")

    def regexp_matches(self, expr: str, pattern: str) -> str:
        return f"({expr} RLIKE {self.literal(java_regex(pattern))})"

    def regexp_full_match(self, expr: str, pattern: str) -> str:
        return f"({expr} RLIKE {self.literal('^(?:' + java_regex(pattern) + ')' + chr(92) + 'z')})"

    def regexp_extract(self, expr: str, pattern: str) -> str:
        return f"regexp_extract({expr}, {self.literal(java_regex(pattern))}, 0)"

    def split_regex(self, expr: str, pattern: str) -> str:
        return f"split({expr}, {self.literal(java_regex(pattern))}, -1)"

    def upper(self, expr: str) -> str:
        # Java's upper case is Unicode's full mapping (ß to SS); DuckDB's the simple one, character for character.
        return f"translate(upper(translate({expr}, {self.literal(_FULL_UPPER)}, {self.literal(_PRIVATE)})), " \
               f"{self.literal(_PRIVATE)}, {self.literal(_SIMPLE_UPPER)})"

    def caseless(self, char: str) -> str:
        return f"{self.lower(char)} = {self.upper(char)}"

    def all_but_last(self, expr: str) -> str:
        return f"substr({expr}, 1, length({expr}) - 1)"

    def split(self, expr: str, needle: str) -> str:
        quoted = f"concat('\\\\Q', replace({needle}, '\\\\E', '\\\\E\\\\\\\\E\\\\Q'), '\\\\E')"
        return f"split({expr}, {quoted}, -1)"

    def spaced_characters(self, expr: str) -> str:
        return f"regexp_replace({expr}, '(?<=.)(?=.)', ' ')"

    def join(self, items: str, sep: str) -> str:
        return f"array_join({items}, {sep})"

    def array(self, items: list[str]) -> str:
        return "array(" + ", ".join(items) + ")"

    def item(self, items: str, k: int | str) -> str:
        return f"try_element_at({items}, {k})"

    def size(self, items: str) -> str:
        return f"size({items})"

    def array_contains(self, items: str, value: str) -> str:
        return f"array_contains({items}, {value})"

    def struct(self, fields: dict[str, str]) -> str:
        return "named_struct(" + ", ".join(f"{self.literal(name)}, {sql}" for name, sql in fields.items()) + ")"

    def let(self, value: str, var: str, body: str) -> str:
        return f"element_at(transform(array({value}), {var} -> {body}), 1)"

    def transform_indexed(self, items: str, var: str, index: str, body: object) -> str:
        return f"transform({items}, ({var}, {index}) -> {body(var, f'({index} + 1)')})"  # type: ignore[operator]

    def raise_error(self, message: str) -> str:
        return f"raise_error({self.literal(message)})"

    def semi_join(self) -> str:
        return "LEFT SEMI JOIN"

    def anti_join(self) -> str:
        return "LEFT ANTI JOIN"

    def null_safe_equal(self, left: str, right: str) -> str:
        return f"{left} <=> {right}"

    def row_order_hash(self, row: str, columns: list[str]) -> str:
        return f"xxhash64({', '.join(columns)})"

    def order_by_key(self, expr: str, key: str) -> str:
        return f"xxhash64({expr}, {self.key(key)})"

    def star_replacing(self, columns: list[str], replacements: dict[str, str]) -> str:
        return ", ".join(f"{replacements[c]} AS {c}" if c in replacements else c for c in columns)

    def with_keys(self, from_clause: str) -> str:
        # The keys' one-row table, cross-joined: Spark broadcasts it, and its bytes never enter the SQL text or a plan.
        return f"{from_clause} CROSS JOIN {KEYS_TABLE}" if from_clause else f"\nCROSS JOIN {KEYS_TABLE}"


def spark_key_column(name: str) -> str:
    """The column of Spark's keys table holding key ``name`` (prefixed: no dataset column can share it)."""
    return f"__ds_key_{name}"


DUCKDB = Dialect()
SPARK = SparkDialect()
DIALECTS = {"duckdb": DUCKDB, "spark": SPARK}
