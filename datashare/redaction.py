"""Redaction of free text in SQL: the row's own identifiers first, then third parties' by pattern.

The strongest signal that a note names its patient is the row itself: the
same row holds the patient's name, HKID, phone, e-mail and address in
columns classified *direct*. :func:`sql_redact_text` removes every value of
those columns from the text, in the spellings people write (full-width
characters, capitals, lower case, spaces, brackets, given name first, a
surname alone, a Chinese given name alone), as literals (``replace``, no
regular expression built per row). Then :data:`THIRD_PARTY_PATTERNS` take
what the row cannot know about: other people's names, numbers and addresses.

A text in which nothing was found comes out byte for byte as it went in.
Matching runs on a copy whose full-width forms are folded to ASCII; that copy
is returned only when something in it was redacted.

:func:`sql_leak_checks` is the independent check of the output: it compacts
both the output and the row's values (lower case, no spaces or
punctuation), so a spelling the redaction missed still shows.
:func:`sql_leak_guard` applies it to every cell in the query that writes an
export, before anything is signed. Everything is SQL: no Python runs per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from datashare.core.sql import sql_string_literal
from datashare.identifiers import TextDialect
from datashare.textpatterns import THIRD_PARTY_PATTERNS, TextPattern

_FULL_WIDTH = "".join(chr(code) for code in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF_WIDTH = "".join(chr(code) for code in range(0x21, 0x7F)) + " "
_FULL_WIDTH_CLASS = "[\uff01-\uff5e\u3000]"
# Identifier types: the word in a token and the key of the leak counts.
KINDS = ("NAME", "HKID", "PHONE", "EMAIL", "ADDRESS", "DATE", "ID")
_OWN_KINDS = {"hkid": "HKID", "hkid_shape": "HKID", "phone": "PHONE", "email": "EMAIL", "name": "NAME",
              "name_en": "NAME", "name_zh": "NAME", "address": "ADDRESS"}
COMPOUND_SURNAMES_ZH = ("歐陽", "司徒", "上官", "諸葛", "司馬", "公孫", "端木", "慕容", "夏侯", "皇甫")
MIN_LITERAL = 4  # a row's value of another kind shorter than this is not searched for (it would hit "12" in 12.5)
MIN_COMPACT = 5  # the leak check's shortest compacted value: shorter ones occur by chance in any long text
_ADDRESS_TAIL = "(,[^,]*){2}$"  # an address's last two parts: district and region
_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff"


def token(kind: str) -> str:
    """The token a redacted identifier becomes: no digit, ``@`` or lower-case letter, so it forms no new one."""
    return f"[{kind}]"


@dataclass(frozen=True)
class OwnIdentifier:
    """A column of the same row holding a direct identifier (or the list of its spellings, for redaction)."""

    expr: str  # an already-quoted SQL expression
    kind: str  # one of KINDS
    parts: str | None = None  # its own_parts() struct when computed already (a column of the export's source)



FREE_TEXT_DETECTED = "free_text_with_identifiers"  # the catalog's word for a direct column of free text


def own_identifier_columns(columns: Sequence[tuple[str, str, str | None]]) -> list[tuple[str, str]]:
    """(name, identifier type) of the direct columns among ``(name, class, detected)``, free text excepted.

    Free text is direct because it may name someone; it is not one identifier to look for in other text.
    """
    return [(name, _OWN_KINDS.get(detected or "", "ID")) for name, cls, detected in columns
            if cls == "direct" and detected != FREE_TEXT_DETECTED]


def sql_fold(expr: str) -> str:
    """SQL: full-width letters, digits, punctuation and the ideographic space as ASCII (other text untouched).

    ``translate`` costs much per call, so it runs only on a text holding a full-width character: ASCII text is
    told by its length in bytes, other text by one scan for the full-width block.
    """
    return (f"CASE WHEN strlen({expr}) = length({expr}) OR NOT regexp_matches({expr}, {_lit(_FULL_WIDTH_CLASS)}) "
            f"THEN {expr} ELSE translate({expr}, {_lit(_FULL_WIDTH)}, {_lit(_HALF_WIDTH)}) END")


def _lit(text: str = "") -> str:
    return sql_string_literal(text)


def _title(word: str) -> str:
    return f"(upper(left({word}, 1)) || lower(substr({word}, 2)))"


def _guard(form: str, shortest: int = 2) -> str:
    """SQL: the form, or '' (which ``replace`` ignores) when NULL or too short to search for safely."""
    return f"coalesce(CASE WHEN length({form}) >= {shortest} THEN {form} END, '')"


def _cases(form: str) -> list[str]:
    return [form, f"upper({form})", f"lower({form})"]


def own_parts(ident: OwnIdentifier) -> str:
    """SQL: a struct of what the spellings of the row's value are made from (parsed once per row)."""
    v = f"trim(CAST({ident.expr} AS VARCHAR))"
    fields = {"v": v}
    if ident.kind == "HKID":
        hk = f"regexp_replace(upper({v}), '[^A-Z0-9]', '', 'g')"
        fields["hk"] = f"CASE WHEN regexp_full_match({hk}, '[A-Z]{{1,2}}[0-9]{{6}}[0-9A]') THEN {hk} END"
    elif ident.kind == "PHONE":
        fields["p"] = f"right(regexp_replace({v}, '[^0-9]', '', 'g'), 8)"
    elif ident.kind == "EMAIL":
        fields["e"] = f"lower({v})"
    elif ident.kind == "NAME":
        surname = f"regexp_extract({v}, '^[^ ,]+')"
        given = f"string_split_regex(regexp_replace({v}, '^[^ ,]+[ ,]+', ''), '[ -]+')"
        fields["s"] = surname
        fields["g"] = given
        fields["c"] = f"replace({v}, ' ', '')"
        fields["latin"] = f"strlen({v}) = length({v})"
        # The pieces the English spellings are joined from, cased once per row (the engine computes the repeated
        # surname and given-name expressions once).
        fields["ts"] = _title(surname)
        fields.update({f"t{k}": _title(f"{given}[{k}]") for k in (1, 2, 3)})
        fields.update({f"l{k}": f"lower({given}[{k}])" for k in (2, 3)})
    elif ident.kind == "ADDRESS":
        fields["head"] = f"regexp_replace({v}, {_lit(_ADDRESS_TAIL)}, '')"
    return "struct_pack(" + ", ".join(f"{name} := {sql}" for name, sql in fields.items()) + ")"


def _forms(kind: str, x: str) -> list[str]:
    """SQL expressions: the literal spellings of the row's value, from its :func:`own_parts` ``x``, longest first."""
    v = f"{x}.v"
    # Only what the third-party patterns would not take: those catch the usual dress of any HKID, phone, e-mail.
    if kind == "HKID":
        hk = f"{x}.hk"
        core = f"left({hk}, -1)"
        return [v, hk, f"lower({hk})", core, f"lower({core})"]
    if kind == "PHONE":
        p = f"{x}.p"
        spelt = [f"substr({p}, 1, 4) || ' ' || substr({p}, 5, 4)", p]
        return [v] + [f"CASE WHEN length({p}) = 8 THEN {f} END" for f in spelt]
    if kind == "EMAIL":
        e = f"{x}.e"
        local, domain = f"split_part({e}, '@', 1)", f"split_part({e}, '@', 2)"
        spelt = [f"{local} || '[at]' || {domain}", f"{local} || ' at ' || replace({domain}, '.', ' dot ')"]
        return [v, e] + [f"CASE WHEN contains({e}, '@') THEN {f} END" for f in spelt]
    if kind == "NAME":
        return _english_name_forms(x) + _chinese_name_forms(x)
    if kind == "ADDRESS":
        # The address, and the part before its last two parts (district, region): "Flat 3, 12/F, Block A, X Estate".
        head = f"{x}.head"
        return [v, f"upper({v})", f"CASE WHEN length({head}) >= 10 THEN {head} END"]
    return [f"CASE WHEN length({v}) >= {MIN_LITERAL} THEN {f} END" for f in _cases(v)]


def _given_tokens(v: str) -> str:
    """SQL: the given-name syllables of an English name written surname first (CHAN Tai Man, CHAN, Tai-man)."""
    return f"string_split_regex(regexp_replace(trim({v}), '^[^ ,]+[ ,]+', ''), '[ -]+')"


def _surname(v: str) -> str:
    return f"regexp_extract(trim({v}), '^[^ ,]+')"


def _english_name_forms(x: str) -> list[str]:
    """SQL: the given name in every joining (Tai Man, Tai-man, Taiman), or, with one syllable, the full name.

    The surname is removed on its own afterwards (:func:`_sql_remove_word`), so "Tai Man Chan" and "Chan, Tai-man"
    both go; a lone given syllable ("Man") is too common a word to remove. Names of up to three syllables.
    """
    def join(sep: str, second: str, third: str) -> str:
        return f"{x}.t1 || coalesce({_lit(sep)} || {second}, '') || coalesce({_lit(sep)} || {third}, '')"

    titled, lowered = (f"{x}.t2", f"{x}.t3"), (f"{x}.l2", f"{x}.l3")
    spaced, hyphen_lower, hyphen_title, joined = (join(" ", *titled), join("-", *lowered), join("-", *titled),
                                                  join("", *lowered))
    several = [*_cases(spaced), hyphen_title, f"upper({hyphen_title})", hyphen_lower, joined, f"lower({joined})"]
    surname, one = f"{x}.s", f"{x}.g[1]"
    single = [*_cases(f"{surname} || ' ' || {one}"), f"{x}.ts || ' ' || {x}.t1",
              *_cases(f"{one} || ' ' || {surname}"), f"{x}.t1 || ' ' || {x}.ts"]
    # One slot per spelling: a name of two or more given syllables fills it one way, of one syllable the other.
    return [f"CASE WHEN NOT {x}.latin THEN NULL WHEN len({x}.g) >= 2 THEN {a} ELSE {b} END"
            for a, b in zip(several, single, strict=True)]


def _chinese_name_forms(x: str) -> list[str]:
    """SQL: the name with and without spaces between its characters, and the given name alone (two or more)."""
    compounds = "[" + ", ".join(_lit(s) for s in COMPOUND_SURNAMES_ZH) + "]"
    c = f"{x}.c"
    given = f"substr({c}, CASE WHEN length({c}) >= 4 AND list_contains({compounds}, left({c}, 2)) THEN 3 ELSE 2 END)"
    spaced = "array_to_string(string_split({0}, ''), ' ')"
    forms = [spaced.format(c), c, spaced.format(given), given]
    return [f"CASE WHEN NOT {x}.latin THEN {f} END" for f in forms]


def _sql_remove_word(text: str, word: str, kind: str) -> str:
    """SQL: ``text`` (a lambda variable) with ``word`` replaced wherever it stands as a word.

    A literal split, not a regular expression built per row: the text is cut at every occurrence and each cut
    is joined back with the token when neither neighbour is a letter (``lower(c) = upper(c)``).
    """
    is_boundary = "lower({0}) = upper({0})"
    before, after = "right(parts[i - 1], 1)", "left(part, 1)"
    join = (f"array_to_string(list_transform(parts, lambda part, i: CASE WHEN i = 1 THEN part ELSE "
            f"(CASE WHEN {is_boundary.format(before)} AND {is_boundary.format(after)} THEN {_lit(token(kind))} "
            f"ELSE {word} END) || part END), '')")
    return (f"CASE WHEN length({word}) >= 2 AND contains({text}, {word}) THEN "
            f"list_transform([string_split({text}, {word})], lambda parts: {join})[1] ELSE {text} END")


def own_spellings(kind: str, parts: str) -> list[str]:
    """SQL expressions: the spellings of the row's value to remove from text ('' where one does not apply).

    ``parts`` is the :func:`own_parts` struct of the value. Their number depends only on the kind; for a name
    the last :data:`SURNAME_WORDS` are the surname's spellings, removed only where they stand as a word. An
    export computes them once per row, as columns of its source (see the policy compiler).
    """
    spelt = [_guard(form) for form in _forms(kind, parts)]
    if kind == "NAME":
        surname = f"{parts}.s"
        spelt += [f"CASE WHEN {parts}.latin THEN {_guard(word)} ELSE '' END"
                  for word in (surname, f"upper({surname})", f"{parts}.ts", f"lower({surname})")]
    return spelt


SURNAME_WORDS = 4


@dataclass(frozen=True)
class OwnSpellings:
    """The spellings of one of the row's direct identifiers, as SQL expressions (best: columns)."""

    kind: str
    spellings: tuple[str, ...]


def inline_spellings(own: Sequence[OwnIdentifier]) -> list[OwnSpellings]:
    """The spellings computed in place, for a query that has no prepared columns (tests, one-off checks)."""
    return [OwnSpellings(o.kind, tuple(f"({s})" for s in own_spellings(o.kind, f"({own_parts(o)})"))) for o in own]


def _sql_own_pass(text: str, folded_input: str, own: Sequence[OwnSpellings]) -> str:
    """SQL: ``text`` with the row's own identifiers removed, kinds in a safe order, all with ``replace``.

    ``own`` holds, per direct column, its :func:`own_spellings` (best columns computed once per row). Each
    spelling is first looked for in the input (``contains`` costs a third of a ``replace``); one that is
    absent becomes '', which ``replace`` skips.
    """
    order = {"EMAIL": 0, "HKID": 1, "PHONE": 2, "ID": 3, "ADDRESS": 4, "NAME": 5}
    result = text
    for ident in sorted(own, key=lambda o: order.get(o.kind, 3)):
        spellings = list(ident.spellings)
        words = spellings[-SURNAME_WORDS:] if ident.kind == "NAME" else []
        for spelt in spellings[:len(spellings) - len(words)]:
            present = f"CASE WHEN contains({folded_input}, {spelt}) THEN {spelt} ELSE '' END"
            result = f"replace({result}, {present}, {_lit(token(ident.kind))})"
        if words:
            # The English surname on its own, as a word; only a text that holds it pays for the split.
            body = "t"
            for word in words:
                body = f"list_transform([{body}], lambda t: {_sql_remove_word('t', word, 'NAME')})[1]"
            holds = f"{words[0]} <> '' AND contains(lower({folded_input}), lower({words[0]}))"
            result = f"list_transform([{result}], lambda t: CASE WHEN {holds} THEN {body} ELSE t END)[1]"
    return result


def _sql_pattern_pass(text: str, patterns: Sequence[TextPattern], d: TextDialect) -> str:
    result = text
    for pattern in patterns:
        result = d.regexp_replace(result, pattern.pattern, pattern.replacement.format(token=token(pattern.kind)))
    return result


def _sql_merge_tokens(text: str) -> str:
    """A name redacted in two parts ("[NAME] [NAME]", "[NAME], [NAME]") becomes one token."""
    name = token("NAME")
    for joint in (", ", " ", "-"):
        text = f"replace({text}, {_lit(name + joint + name)}, {_lit(name)})"
    return text


def sql_redact_text(expr: str, own: Sequence[OwnSpellings] = (), folded: str | None = None, *, d: TextDialect
                    ) -> str:
    """SQL: the text ``expr`` with the row's own identifiers and third parties' removed.

    ``own`` gives, per direct column of the row, its kind and :func:`own_spellings`;
    ``folded`` an expression of :func:`sql_fold` of the text, when one is computed already; ``d`` writes the
    third-party patterns' replacements for its engine (the rest is DuckDB's: the compiler refuses free text on
    another engine). NULL stays NULL;
    a text in which nothing is found is returned unchanged.
    """
    text = f"CAST({expr} AS VARCHAR)"
    folded = folded or sql_fold(text)
    first = [p for p in THIRD_PARTY_PATTERNS if p.before_own]
    then = [p for p in THIRD_PARTY_PATTERNS if not p.before_own]
    redacted = _sql_merge_tokens(_sql_pattern_pass(_sql_own_pass(_sql_pattern_pass(folded, first, d), folded, own),
                                                   then, d))
    # Written out in full: DuckDB computes a repeated subexpression once (and a lambda binding it would run
    # row by row). A text with nothing found comes back as it went in, full-width punctuation and all.
    return f"coalesce(nullif({redacted}, {folded}), {text})"


# --- the leak check ---------------------------------------------------------------------------------------------
def sql_compact(expr: str) -> str:
    """SQL: lower-case folded text with everything but letters, digits and CJK characters removed."""
    # Runs of separators go in one match (", " is one): far fewer replacements than one per character.
    return f"regexp_replace(lower({sql_fold(expr)}), {_lit(f'[^a-z0-9{_CJK_RANGES}]+')}, '', 'g')"


def _own_compact_values(kind: str, v: str) -> str:
    """SQL: the compacted spellings of a row's value whose presence in compacted output is a leak."""
    if kind == "HKID":  # the letters and six digits, without the check digit
        return f"[regexp_extract({sql_compact(v)}, '^[a-z]{{1,2}}[0-9]{{6}}')]"
    if kind == "PHONE":
        return f"[right(regexp_replace({v}, '[^0-9]', '', 'g'), 8)]"
    if kind == "EMAIL":
        return f"[{sql_compact(f'split_part({v}, {_lit(chr(64))}, 1)')}]"
    if kind == "NAME":
        g = _given_tokens(v)
        english = (f"[{sql_compact(v)}, lower(array_to_string({g}, '') || {_surname(v)}), "
                   f"CASE WHEN len({g}) >= 2 THEN lower(array_to_string({g}, '')) END]")
        chinese = (f"list_transform([{sql_compact(v)}], lambda c: "
                   "[c, CASE WHEN length(c) >= 3 THEN substr(c, 2) END])[1]")
        return f"CASE WHEN strlen({v}) = length({v}) THEN {english} ELSE {chinese} END"
    if kind == "ADDRESS":
        head = f"regexp_replace({v}, {_lit(_ADDRESS_TAIL)}, '')"
        return f"[{sql_compact(head)}]"
    return f"[{sql_compact(v)}]"


def _own_compact_from_parts(kind: str, x: str) -> list[str]:
    """SQL expressions: :func:`_own_compact_values` from the value's :func:`own_parts` (few regular expressions)."""
    def bare(text: str) -> str:
        return f"lower(replace(replace(replace(replace({text}, '.', ''), '-', ''), '_', ''), ' ', ''))"

    if kind == "HKID":
        return [f"CASE WHEN {x}.hk IS NOT NULL THEN lower(left({x}.hk, -1)) ELSE {sql_compact(f'{x}.v')} END"]
    if kind == "PHONE":
        return [f"{x}.p"]
    if kind == "EMAIL":
        return [bare(f"split_part({x}.e, {_lit(chr(64))}, 1)")]
    if kind == "NAME":
        given = f"array_to_string({x}.g, '')"
        chinese_given = f"CASE WHEN length({x}.c) >= 3 THEN substr({x}.c, 2) END"
        return [f"CASE WHEN {x}.latin THEN {bare(f'{x}.s || {given}')} ELSE {x}.c END",
                f"CASE WHEN {x}.latin THEN {bare(f'{given} || {x}.s')} ELSE {chinese_given} END",
                f"CASE WHEN {x}.latin AND len({x}.g) >= 2 THEN lower({given}) END"]
    if kind == "ADDRESS":
        return [sql_compact(f"{x}.head")]
    return [sql_compact(f"{x}.v")]


def sql_leak_checks(out: str, own: Sequence[OwnIdentifier], *, folded: str | None = None,
                    compact: str | None = None, with_patterns: bool = True) -> dict[str, str]:
    """SQL boolean per identifier type: true when the redacted text ``out`` still holds one of that type.

    The row's own values are found in the compacted output (so "A 1 2 3 4 5 6" or "chan-tai-man" still
    count), an English surname as a word, and every third-party pattern. ``folded`` and ``compact`` are
    expressions of :func:`sql_fold` and :func:`sql_compact` of ``out`` when computed already.
    """
    folded = folded or sql_fold(out)
    compact = compact or sql_compact(out)
    checks: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for ident in own:
        v = f"trim(CAST({ident.expr} AS VARCHAR))"
        if ident.parts:
            spelt = _own_compact_from_parts(ident.kind, ident.parts)
        else:
            values = _own_compact_values(ident.kind, v)
            spelt = [f"{values}[{k}]" for k in (1, 2, 3)]
        for value in spelt:
            shortest = f"CASE WHEN strlen({value}) = length({value}) THEN {MIN_COMPACT} ELSE 2 END"
            found = f"length({value}) >= {shortest} AND contains({compact}, {value})"
            checks[ident.kind].append(f"coalesce({found}, false)")
        if ident.kind == "NAME":
            surname = f"lower({ident.parts}.s)" if ident.parts else f"lower({_surname(v)})"
            words = f"string_split_regex(lower({folded}), '[^a-z]+')"
            latin = f"{ident.parts}.latin" if ident.parts else f"strlen({v}) = length({v})"
            checks["NAME"].append(f"CASE WHEN {latin} AND length({surname}) >= 2 "
                                  f"AND contains(lower({folded}), {surname}) THEN list_contains({words}, {surname}) "
                                  "ELSE false END")
    for pattern in THIRD_PARTY_PATTERNS if with_patterns else ():
        checks[pattern.kind].append(f"regexp_matches({folded}, {_lit(pattern.pattern)})")
    return {kind: sql_any(list(dict.fromkeys(found))) for kind, found in checks.items() if found}


def sql_any(conditions: Sequence[str]) -> str:
    """SQL: true when one of ``conditions`` is (NULLs aside). ``greatest`` evaluates each condition once over the
    whole batch, which for many heavy conditions costs about half of an ``OR`` chain's short-circuiting."""
    return conditions[0] if len(conditions) == 1 else f"greatest({', '.join(conditions)})"


LEAK_GUARD_MESSAGE = "datashare leak guard: an identifier is left in free text"
_ANY_PATTERN = "|".join(dict.fromkeys(f"(?:{p.pattern})" for p in THIRD_PARTY_PATTERNS))


def sql_leak_guard(column: str, own: Sequence[OwnIdentifier], folded: str | None = None,
                   compact: str | None = None) -> str:
    """SQL: the redacted text in ``column``, or a query error (:data:`LEAK_GUARD_MESSAGE`) when a check hits.

    The export writes its file through this guard, so every cell written has been checked against its own
    row in the same pass; a hit stops the query, and the export counts the hits per type before it refuses.
    The third-party patterns are checked as one alternation: a match-only scan costs little. ``column``
    is read many times: pass a column, and its folded and compacted forms as columns too.
    """
    folded = folded or sql_fold(column)
    own_checks = sql_leak_checks(column, own, folded=folded, compact=compact or sql_compact(column),
                                 with_patterns=False)
    hit = sql_any([*own_checks.values(), f"regexp_matches({folded}, {_lit(_ANY_PATTERN)})"])
    return f"CASE WHEN {hit} THEN error({_lit(LEAK_GUARD_MESSAGE)}) ELSE {column} END"
