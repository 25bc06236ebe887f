"""The leak check of redacted free text, in SQL: the independent look at the output before it is signed.

:func:`sql_leak_checks` compacts both the output and the row's direct values (lower case, no spaces or
punctuation: :func:`datashare.redaction.sql_compact`), so a spelling the redaction missed still shows, and runs
every third-party pattern. :func:`sql_leak_guard` applies it to every cell in the query that writes an export,
before anything is signed. Everything is SQL: no Python runs per row.
"""

from __future__ import annotations

from collections.abc import Sequence

from datashare.identifiers import TextDialect
from datashare.redaction import (
    ADDRESS_TAIL,
    KINDS,
    OwnIdentifier,
    bare,
    chinese_surname,
    compact_folded,
    compact_letters,
    given_tokens,
    mixed_name_parts,
    own_value,
    sql_compact,
    sql_fold,
    sql_latin,
    sql_simplified,
    surname_of,
)
from datashare.textpatterns import THIRD_PARTY_PATTERNS

MIN_COMPACT = 5  # the leak check's shortest compacted value: shorter ones occur by chance in any long text


def _own_compact_values(kind: str, v: str, d: TextDialect) -> str:
    """SQL: the compacted spellings of a row's value whose presence in compacted output is a leak."""
    if kind == "HKID":  # the letters and six digits, without the check digit
        return d.array([d.regexp_extract(sql_compact(v, d), "^[a-z]{1,2}[0-9]{6}")])
    if kind == "PHONE":
        return d.array([f"right({d.regexp_replace(v, '[^0-9]', '')}, 8)"])
    if kind == "EMAIL":
        return d.array([sql_compact(f"split_part({v}, {d.literal(chr(64))}, 1)", d)])
    if kind == "NAME":
        g = given_tokens(v, d)
        given, first_two = d.join(g, chr(39) * 2), f"{d.item(g, 1)} || {d.item(g, 2)}"
        english = d.array([sql_compact(v, d), sql_compact(f"{given} || {surname_of(v, d)}", d),
                           f"CASE WHEN {d.size(g)} >= 2 THEN {sql_compact(given, d)} END",
                           f"CASE WHEN {d.size(g)} >= 3 THEN {sql_compact(first_two, d)} END"])
        return f"CASE WHEN {sql_latin(v, d)} THEN {english} ELSE {_chinese_compact(v, d)} END"
    if kind == "ADDRESS":
        head = d.regexp_replace(v, ADDRESS_TAIL, "", every=False)
        return d.array([sql_compact(head, d)])
    digits = d.regexp_replace(v, "[^0-9]", "")
    return d.array([sql_compact(v, d), f"CASE WHEN length({digits}) >= 6 THEN {digits} END"])


def _chinese_compact(v: str, d: TextDialect) -> str:
    """SQL: a Chinese name compacted, its given name, and both in simplified characters (an array of four)."""
    simplified = sql_simplified("c", d)
    return d.let(sql_compact(v, d), "c", d.array(["c", _chinese_given("c", "c", d), simplified,
                                                  _chinese_given("c", simplified, d)]))


def _chinese_given(c: str, name: str, d: TextDialect) -> str:
    """SQL: the given name of the Chinese ``name`` (``c``, or ``c`` in simplified characters) when of two
    characters or more: after its surname, of one character or two (歐陽家欣's is 家欣), as the redaction takes it."""
    surname = chinese_surname(c, d)
    return f"CASE WHEN length({c}) - {surname} >= 2 THEN substr({name}, {surname} + 1) END"


def _own_compact_from_parts(kind: str, x: str, d: TextDialect) -> list[str]:
    """SQL expressions: :func:`_own_compact_values` from the value's :func:`own_parts` (few regular expressions)."""
    if kind == "HKID":
        return [f"CASE WHEN {x}.hk IS NOT NULL THEN {d.lower(d.all_but_last(f'{x}.hk'))} "
                f"ELSE {sql_compact(f'{x}.v', d)} END"]
    if kind == "PHONE":
        return [f"{x}.p"]
    if kind == "EMAIL":
        # (compacted as the output is: ky+clinic is kyclinic there, a&b.smith absmith)
        return [compact_letters(f"split_part({x}.e, {d.literal(chr(64))}, 1)", d)]
    if kind == "NAME":
        # The Chinese name compacted as the output is (穆罕默德·阿里 is 穆罕默德阿里 there), and its given name.
        compacted = compact_letters(f"{x}.c", d)
        chinese_given, other_given = _chinese_given(compacted, compacted, d), _chinese_given(f"{x}.c", f"{x}.zs", d)
        size = d.size(f"{x}.g")
        # English and Chinese share the slots: a name is in one script.
        return [f"CASE WHEN {x}.latin THEN {x}.ks || {x}.kg ELSE {compacted} END",
                f"CASE WHEN {x}.latin THEN {x}.kg || {x}.ks ELSE {chinese_given} END",
                f"CASE WHEN {x}.latin THEN (CASE WHEN {size} >= 2 THEN {x}.kg END) "
                f"WHEN {x}.zs <> {x}.c THEN {x}.zs END",
                f"CASE WHEN {x}.latin THEN (CASE WHEN {size} >= 3 THEN {x}.k2 END) "
                f"WHEN {x}.zs <> {x}.c THEN {other_given} END"]
    if kind == "ADDRESS":
        return [sql_compact(f"{x}.head", d)]
    return [sql_compact(f"{x}.v", d), f"CASE WHEN length({x}.n) >= 6 AND {x}.n <> {x}.v THEN {x}.n END"]


def sql_leak_checks(out: str, own: Sequence[OwnIdentifier], *, d: TextDialect, folded: str | None = None,
                    compact: str | None = None, unspaced: str | None = None,
                    with_patterns: bool = True) -> dict[str, str]:
    """SQL boolean per identifier type: true when the redacted text ``out`` still holds one of that type.

    The row's own values are found in the compacted output (so "A 1 2 3 4 5 6" or "chan-tai-man" still
    count), an English surname as a word, and every third-party pattern. ``folded`` and ``compact`` are
    expressions of :func:`sql_fold` and :func:`sql_compact` of ``out`` when computed already.
    """
    folded = folded or sql_fold(out, d)
    compact = compact or compact_folded(folded, d)
    # A Chinese name is looked for across spaces and line breaks (陳 大 文), not across punctuation: compacted,
    # 回家，明天 holds 家明, and a patient of that given name refused the export for a sentence about someone else.
    unspaced = unspaced or sql_unspaced(folded, d)
    checks: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for ident in own:
        v = own_value(ident.expr, d)
        if ident.parts:
            spelt = _own_compact_from_parts(ident.kind, ident.parts, d)
        else:
            values = _own_compact_values(ident.kind, v, d)
            spelt = [d.item(values, k) for k in (1, 2, 3, 4)]
        latin = (f"{ident.parts}.latin" if ident.parts else sql_latin(v, d)) if ident.kind == "NAME" else None
        haystack = compact if latin is None else f"(CASE WHEN {latin} THEN {compact} ELSE {unspaced} END)"
        for value in spelt:
            shortest = f"CASE WHEN {d.byte_length(value)} = {d.length(value)} THEN {MIN_COMPACT} ELSE 2 END"
            found = f"length({value}) >= {shortest} AND contains({haystack}, {value})"
            checks[ident.kind].append(f"coalesce({found}, false)")
        if ident.kind == "NAME":
            surname = d.lower(f"{ident.parts}.s") if ident.parts else d.lower(surname_of(v, d))
            words = d.split_regex(d.lower(folded), "[^a-z]+")
            # A name in both scripts: its Latin letters, its Chinese name and that name's given name (from a
            # name in one script these are NULL, and so is each check).
            ml, mz = (f"{ident.parts}.ml", f"{ident.parts}.mz") if ident.parts else mixed_name_parts(v, latin, d)
            checks["NAME"] += [f"coalesce(length({ml}) >= {MIN_COMPACT} AND contains({compact}, {ml}), false)",
                               f"coalesce(length({mz}) >= 2 AND contains({unspaced}, {mz}), false)",
                               f"coalesce(length({mz}) >= 3 AND contains({unspaced}, {_chinese_given(mz, mz, d)}), "
                               "false)"]
            latin = f"({latin} OR {ml} IS NOT NULL)"  # the surname as a word: of a Latin name, or a mixed one
            # A surname of parts (AU-YEUNG, O'NEILL) or of letters beyond ASCII (MÜLLER) is no word of the split
            # text: its compacted letters anywhere count.
            joined = f"{ident.parts}.ks" if ident.parts else (
                f"CASE WHEN {d.byte_length(surname)} = {d.length(surname)} THEN {bare(surname, d)} "
                f"ELSE {compact_letters(surname, d)} END")
            checks["NAME"].append(f"CASE WHEN NOT {latin} THEN false WHEN length({joined}) < length({surname}) THEN "
                                  f"coalesce(length({joined}) >= {MIN_COMPACT} AND contains({compact}, {joined}), "
                                  "false) "
                                  f"WHEN length({surname}) >= 2 AND contains({d.lower(folded)}, {surname}) THEN "
                                  f"{d.array_contains(words, surname)} ELSE false END")
    for pattern in THIRD_PARTY_PATTERNS if with_patterns else ():
        checks[pattern.kind].append(d.regexp_matches(folded, pattern.pattern))
    return {kind: sql_any(list(dict.fromkeys(found))) for kind, found in checks.items() if found}


def sql_unspaced(folded: str, d: TextDialect) -> str:
    """SQL: folded text without its spaces, tabs and line breaks (punctuation kept), where a Chinese name is
    looked for (see :func:`sql_leak_checks`)."""
    for space in ("' '", "chr(10)", "chr(13)", "chr(9)"):  # (chr: a raw line break in a literal is fragile)
        folded = f"replace({folded}, {space}, '')"
    return folded


def sql_any(conditions: Sequence[str]) -> str:
    """SQL: true when one of ``conditions`` is (NULLs aside). ``greatest`` evaluates each condition once over the
    whole batch, which for many heavy conditions costs about half of an ``OR`` chain's short-circuiting."""
    return conditions[0] if len(conditions) == 1 else f"greatest({', '.join(conditions)})"


LEAK_GUARD_MESSAGE = "datashare leak guard: an identifier is left in free text"
_ANY_PATTERN = "|".join(dict.fromkeys(f"(?:{p.pattern})" for p in THIRD_PARTY_PATTERNS))


def sql_leak_guard(column: str, own: Sequence[OwnIdentifier], folded: str | None = None,
                   compact: str | None = None, unspaced: str | None = None, *, d: TextDialect) -> str:
    """SQL: the redacted text in ``column``, or a query error (:data:`LEAK_GUARD_MESSAGE`) when a check hits.

    The export writes its file through this guard, so every cell written has been checked against its own
    row in the same pass; a hit stops the query, and the export counts the hits per type before it refuses.
    The third-party patterns are checked as one alternation: a match-only scan costs little. ``column``
    is read many times: pass a column, and its folded, compacted and unspaced forms as columns too.
    """
    folded = folded or sql_fold(column, d)
    own_checks = sql_leak_checks(column, own, d=d, folded=folded, compact=compact, unspaced=unspaced,
                                 with_patterns=False)
    hit = sql_any([*own_checks.values(), d.regexp_matches(folded, _ANY_PATTERN)])
    return f"CASE WHEN {hit} THEN {d.raise_error(LEAK_GUARD_MESSAGE)} ELSE {column} END"
