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

:func:`sql_compact` writes text as the leak check compares it (lower case, no
spaces or punctuation); the check itself is :mod:`datashare.leakcheck`.
Everything is SQL: no Python runs per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest

from datashare.identifiers import TextDialect
from datashare.textpatterns import SIMPLIFIED_ZH, THIRD_PARTY_PATTERNS, TRADITIONAL_ZH, TextPattern

# What the fold rewrites: full-width forms and the ideographic space; no-break spaces; Arabic-Indic digits (both
# sets); dashes and curly apostrophes. Then what it deletes: the soft hyphen and zero-width characters, which a
# reader does not see but which would hide a value from a literal match ("C\u200bhan", "A\u00ad123456").
_FOLD_FROM = ("".join(chr(code) for code in range(0xFF01, 0xFF5F)) + "\u3000\u00a0\u2007\u202f"
              + "".join(chr(code) for code in (*range(0x0660, 0x066A), *range(0x06F0, 0x06FA)))
              + "\u2010\u2011\u2012\u2013\u2014\u2015\u2018\u2019")
_FOLD_TO = "".join(chr(code) for code in range(0x21, 0x7F)) + "    " + "0123456789" * 2 + "------''"
# Deleted: the soft hyphen, zero-width spaces and joiners, direction marks and embeddings, invisible operators,
# the combining grapheme joiner, the Mongolian vowel separator and variation selectors.
_FOLD_DELETE = ("\u00ad\u200b\u200c\u200d\u2060\ufeff\u200e\u200f"
                + "".join(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2061, 0x2065), *range(0x2066, 0x206A),
                                                 0x034F, 0x180E, *range(0xFE00, 0xFE10))))
_FOLD_CLASS = ("[\uff01-\uff5e\u3000\u00a0\u2007\u202f\u0660-\u0669\u06f0-\u06f9\u2010-\u2015\u2018\u2019"
               "\u00ad\u200b-\u200f\u2060-\u2064\u2066-\u2069\u202a-\u202e\u034f\u180e\ufe00-\ufe0f\ufeff"
               "\ufb00-\ufb06]")
# Latin ligatures, as text copied from a PDF holds them ("Griﬃn"): each is two or three letters.
_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st",
              "\ufb06": "st"}
# Identifier types: the word in a token and the key of the leak counts.
KINDS = ("NAME", "HKID", "PHONE", "EMAIL", "ADDRESS", "DATE", "ID")
_OWN_KINDS = {"hkid": "HKID", "hkid_shape": "HKID", "phone": "PHONE", "email": "EMAIL", "name": "NAME",
              "name_en": "NAME", "name_zh": "NAME", "address": "ADDRESS"}
# In traditional characters, and in simplified where they differ (a name typed on a mainland keyboard).
COMPOUND_SURNAMES_ZH = ("歐陽", "司徒", "上官", "諸葛", "司馬", "公孫", "端木", "慕容", "夏侯", "皇甫",
                        "欧阳", "诸葛", "司马", "公孙")
MIN_LITERAL = 4  # a row's value of another kind shorter than this is not searched for (it would hit "12" in 12.5)
ADDRESS_TAIL = "(,[^,]*){2}$"  # an address's last two parts: district and region
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff"


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


def sql_fold(expr: str, d: TextDialect) -> str:
    """SQL: full-width letters, digits, punctuation and the ideographic space as ASCII, no-break spaces as spaces,
    Arabic-Indic digits as ASCII digits, dashes and curly apostrophes as ``-`` and ``'``, Latin ligatures as their
    letters, with soft hyphens, zero-width and other invisible characters removed (other text untouched).

    ``translate`` costs much per call, so it runs only on a text holding a full-width character: ASCII text is
    told by its length in bytes, other text by one scan for the full-width block.
    """
    folded = f"translate({expr}, {d.literal(_FOLD_FROM + _FOLD_DELETE)}, {d.literal(_FOLD_TO)})"
    for ligature, letters in _LIGATURES.items():
        folded = f"replace({folded}, {d.literal(ligature)}, {d.literal(letters)})"
    return (f"CASE WHEN {d.byte_length(expr)} = {d.length(expr)} OR NOT {d.regexp_matches(expr, _FOLD_CLASS)} "
            f"THEN {expr} ELSE {folded} END")


def _title(word: str, d: TextDialect) -> str:
    return f"({d.upper(f'left({word}, 1)')} || {d.lower(f'substr({word}, 2)')})"


def _title_parts(word: str, d: TextDialect) -> str:
    """SQL: a surname in title case, each part of a hyphenated or apostrophed one too (Au-Yeung, O'Neill)."""
    def parts(sep: str) -> str:
        first, second = (f"split_part({word}, {d.literal(sep)}, {k})" for k in (1, 2))
        return f"{_title(first, d)} || {d.literal(sep)} || {_title(second, d)}"

    return (f"(CASE WHEN contains({word}, '-') THEN {parts('-')} WHEN contains({word}, {d.literal(chr(39))}) "
            f"THEN {parts(chr(39))} ELSE {_title(word, d)} END)")


def _without_joints(word: str, joint: str, d: TextDialect) -> str:
    """SQL: ``word`` with its hyphens and apostrophes replaced by ``joint``."""
    return f"replace(replace({word}, '-', {d.literal(joint)}), {d.literal(chr(39))}, {d.literal(joint)})"


def sql_latin(v: str, d: TextDialect) -> str:
    """SQL: true for a name with no CJK character (José, Müller as well as Chan), written in English forms."""
    return f"({d.byte_length(v)} = {d.length(v)} OR NOT {d.regexp_matches(v, f'[{CJK_RANGES}]')})"


def sql_simplified(c: str, d: TextDialect) -> str:
    """SQL: a Chinese name in simplified characters (those of :data:`TRADITIONAL_ZH`; others as they are)."""
    return _map_characters(c, TRADITIONAL_ZH, SIMPLIFIED_ZH, d)


def _map_characters(c: str, source: str, target: str, d: TextDialect) -> str:
    """SQL: the first four characters of ``c`` each mapped from ``source`` to ``target``, the rest as they are.

    A look-up per character (``instr``) rather than ``translate``, which rebuilds its table on every call
    (about six times slower on a name).
    """
    def one(k: int) -> str:
        char = f"substr({c}, {k}, 1)"
        mapped = f"substr({d.literal(target)}, nullif(instr({d.literal(source)}, {char}), 0), 1)"
        return f"(CASE WHEN length({c}) >= {k} THEN coalesce({mapped}, {char}) ELSE '' END)"

    return " || ".join([*(one(k) for k in range(1, 5)), f"substr({c}, 5)"])


def chinese_surname(c: str, d: TextDialect) -> str:
    """SQL: the surname of a Chinese name without spaces ``c``: its first character, or two for a compound one."""
    compounds = d.array([d.literal(s) for s in COMPOUND_SURNAMES_ZH])
    return f"(CASE WHEN length({c}) >= 4 AND {d.array_contains(compounds, f'left({c}, 2)')} THEN 2 ELSE 1 END)"


def _guard(form: str, shortest: int = 2) -> str:
    """SQL: the form, or '' (which ``replace`` ignores) when NULL or too short to search for safely."""
    return f"coalesce(CASE WHEN length({form}) >= {shortest} THEN {form} END, '')"


def _cases(form: str, d: TextDialect) -> list[str]:
    return [form, d.upper(form), d.lower(form)]


def own_value(expr: str, d: TextDialect) -> str:
    """SQL: a row's direct value as its spellings are made from it: trimmed, and folded as the text is (full-width
    letters and digits, no-break spaces, dashes, invisible characters), so a value held as ＭＯＲＧＡＮ is found
    where a note writes Morgan."""
    return f"trim({sql_fold(d.text(expr), d)})"


def own_parts(ident: OwnIdentifier, d: TextDialect, value: str | None = None) -> str:
    """SQL: a struct of what the spellings of the row's value are made from (parsed once per row).

    ``value``: an expression (a column, a lambda variable) holding :func:`own_value` of the value already (the
    struct reads it many times, and a query written out that way is quicker to plan).
    """
    v = value or own_value(ident.expr, d)
    fields = {"v": v}
    if ident.kind == "HKID":
        hk = d.regexp_replace(d.upper(v), "[^A-Z0-9]", "")
        fields["hk"] = f"CASE WHEN {d.regexp_full_match(hk, '[A-Z]{1,2}[0-9]{6}[0-9A]')} THEN {hk} END"
    elif ident.kind == "PHONE":
        fields["p"] = f"right({d.regexp_replace(v, '[^0-9]', '')}, 8)"
    elif ident.kind == "EMAIL":
        fields["e"] = d.lower(v)
    elif ident.kind == "NAME":
        surname, given = surname_of(v, d), given_tokens(v, d)
        fields["s"] = surname
        fields["g"] = given
        fields["c"] = f"replace({v}, ' ', '')"
        fields["latin"] = sql_latin(v, d)
        # The pieces the English spellings are joined from, cased once per row (the engine computes the repeated
        # surname and given-name expressions once).
        fields["ts"] = _title_parts(surname, d)
        # A surname of parts as one word in title case (Au-yeung), joined (Auyeung, AuYeung) and spaced (Au Yeung),
        # where that differs: the ways Hong Kong writes AU-YEUNG.
        of_parts = f"contains({surname}, '-') OR contains({surname}, {d.literal(chr(39))})"
        fields["tw"] = f"CASE WHEN {of_parts} THEN {_title(surname, d)} END"
        fields["tj"] = f"CASE WHEN {of_parts} THEN {_title(_without_joints(surname, '', d), d)} END"
        fields["tc"] = f"CASE WHEN {of_parts} THEN {_without_joints(_title_parts(surname, d), '', d)} END"
        # Spaced only where the first part has two letters or more (AU YEUNG, not O NEILL: "TO NEILL").
        first_part = f"length(split_part({surname}, '-', 1)) >= 2"
        fields["tp"] = (f"CASE WHEN contains({surname}, '-') AND {first_part} THEN "
                        f"{_without_joints(_title_parts(surname, d), ' ', d)} END")
        fields["zs"] = f"CASE WHEN NOT {fields['latin']} THEN {sql_simplified(fields['c'], d)} END"
        fields["ml"], fields["mz"] = mixed_name_parts(v, fields["latin"], d)
        fields.update({f"t{k}": _title(d.item(given, k), d) for k in (1, 2, 3)})
        fields.update({f"l{k}": d.lower(d.item(given, k)) for k in (2, 3)})
        # For the leak check: the surname, the given name and its first two syllables compacted as the output is.
        ascii_name = f"{d.byte_length(v)} = {d.length(v)}"
        fields.update({key: f"CASE WHEN {ascii_name} THEN {bare(part, d)} ELSE {sql_compact(part, d)} END"
                       for key, part in (("ks", surname), ("kg", d.join(given, "''")),
                                         ("k2", f"{d.item(given, 1)} || {d.item(given, 2)}"))})
    elif ident.kind == "ADDRESS":
        fields["head"] = d.regexp_replace(v, ADDRESS_TAIL, "", every=False)
    elif ident.kind == "ID":
        fields["n"] = d.regexp_replace(v, "[^0-9]", "")
    return d.struct(fields)


def _forms(kind: str, x: str, d: TextDialect) -> list[str]:
    """SQL expressions: the literal spellings of the row's value, from its :func:`own_parts` ``x``, longest first."""
    v = f"{x}.v"
    # Only what the third-party patterns would not take: those catch the usual dress of any HKID, phone, e-mail.
    if kind == "HKID":
        hk = f"{x}.hk"
        core = d.all_but_last(hk)
        return [v, hk, d.lower(hk), core, d.lower(core)]
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
        # A name is in one script or the other: its English and Chinese spellings share the slots (fewer columns).
        english, chinese = _english_name_forms(x, d), _chinese_name_forms(x, d)
        return [f"coalesce({e}, {c})" for e, c in zip_longest(english, chinese, fillvalue="NULL")]
    if kind == "ADDRESS":
        # The address, and the part before its last two parts (district, region): "Flat 3, 12/F, Block A, X Estate".
        head = f"{x}.head"
        return [v, d.upper(v), f"CASE WHEN length({head}) >= 10 THEN {head} END"]
    # An identifier, and its digits alone when they are six or more ("HN12345678" written "12345678").
    digits = f"CASE WHEN length({x}.n) >= 6 AND {x}.n <> {v} THEN {x}.n END"
    return [f"CASE WHEN length({v}) >= {MIN_LITERAL} THEN {f} END" for f in _cases(v, d)] + [digits]


def mixed_name_parts(v: str, latin: str, d: TextDialect) -> tuple[str, str]:
    """SQL: of a name holding both scripts (CHAN Tai Man 陳大文, CHEUK Pak Lun (卓柏麟)), its Latin letters
    compacted and its Chinese characters; NULL for a name in one script. The spellings are made for one script;
    the leak check looks for these, so such a name refuses the export where its parts are left."""
    mixed = f"(NOT {latin} AND {d.regexp_matches(v, '[A-Za-z]')})"
    return (f"CASE WHEN {mixed} THEN {d.regexp_replace(d.lower(v), '[^a-z]+', '')} END",
            f"CASE WHEN {mixed} THEN {d.regexp_replace(v, f'[^{CJK_RANGES}]+', '')} END")


def given_tokens(v: str, d: TextDialect) -> str:
    """SQL: the given-name syllables of an English name written surname first (CHAN Tai Man, CHAN, Tai-man);
    ``v`` is trimmed already (:func:`own_value`)."""
    return d.split_regex(d.regexp_replace(v, f"^{_COMPOUND_EN}(?:[ ,]+|$)|^[^ ,]+[ ,]+", ""), "[ ,-]+")


def surname_of(v: str, d: TextDialect) -> str:
    """SQL: the surname of a name written surname first; ``v`` is trimmed already (:func:`own_value`). A compound
    surname in two words, as an identity card writes it (AU YEUNG, Ka Yan; SZE TO Wing Kin), is one of two parts:
    AU-YEUNG, spelt as a hyphenated one is (Au-Yeung, Auyeung, Au Yeung)."""
    found = d.regexp_extract(v, f"^{_COMPOUND_EN}(?:[ ,]|$)|^[^ ,]+")  # (v once: it is a long expression)
    return f"replace(trim(replace({found}, ',', '')), ' ', '-')"


# Compound surnames as Hong Kong romanises them, written in two words on identity cards (歐陽 AU YEUNG,
# 司徒 SZE TO, 上官 SHEUNG KOON, 諸葛 CHU KOT, 司馬 SZE MA, 公孫 KUNG SUN, 慕容 MO YUNG, 端木 TUEN MUK).
# Only these: two words in capitals before a comma are as often a surname and a given name (CHAN TAIMAN, Peter).
COMPOUND_SURNAMES_EN = ("AU YEUNG", "SZE TO", "SHEUNG KOON", "SEUNG KOON", "SHEUNG KWUN", "CHU KOT", "SZE MA",
                        "KUNG SUN", "KUNG SUEN", "MO YUNG", "TUEN MUK")
# And a surname after a particle, as Filipino and Portuguese names write it (DELA CRUZ, DE SOUZA, DOS SANTOS).
SURNAME_PARTICLES = ("DE", "DEL", "DELA", "DELLA", "DELOS", "DOS", "DAS", "MAC", "MC")
_COMPOUND_EN = ("(?:(?i:" + "|".join(COMPOUND_SURNAMES_EN) + ")|(?i:" + "|".join(SURNAME_PARTICLES)
                + ") [A-Z][A-Za-z']+)")


def _english_name_forms(x: str, d: TextDialect) -> list[str]:
    """SQL: the given name in every joining (Tai Man, Tai-man, tai-man, Taiman), or, with one syllable, the full name.

    The surname is removed on its own afterwards (:func:`_sql_remove_word`), so "Tai Man Chan" and "Chan, Tai-man"
    both go; a lone given syllable ("Man") is too common a word to remove. Names of up to three syllables; of
    three, the first two alone too, joined in the same ways (an English name written after the Chinese one:
    "CHAN Tai Man, Peter" as "Tai Man", "Tai-man", "Taiman").
    """
    def join(sep: str, second: str, third: str) -> str:
        return f"{x}.t1 || coalesce({d.literal(sep)} || {second}, '') || coalesce({d.literal(sep)} || {third}, '')"

    titled, lowered = (f"{x}.t2", f"{x}.t3"), (f"{x}.l2", f"{x}.l3")
    spaced, hyphen_lower, hyphen_title, joined = (join(" ", *titled), join("-", *lowered), join("-", *titled),
                                                  join("", *lowered))
    several = [*_cases(spaced, d), hyphen_title, d.upper(hyphen_title), hyphen_lower, d.lower(hyphen_title), joined,
               d.lower(joined)]
    surname, one = f"{x}.s", d.item(f"{x}.g", 1)
    single = [*_cases(f"{surname} || ' ' || {one}", d), f"{x}.ts || ' ' || {x}.t1",
              *_cases(f"{one} || ' ' || {surname}", d), f"{x}.t1 || ' ' || {x}.ts", f"{x}.ts || ', ' || {x}.t1"]
    # One slot per spelling: a name of two or more given syllables fills it one way, of one syllable the other.
    forms = [f"CASE WHEN NOT {x}.latin THEN NULL WHEN {d.size(f'{x}.g')} >= 2 THEN {a} ELSE {b} END"
             for a, b in zip(several, single, strict=True)]
    two = f"{x}.t1 || ' ' || {x}.t2"
    # A surname of parts joined or spaced (NULL for any other surname): long and rare enough to replace as they
    # are, without the word test the surname alone needs.
    joined, spaced = f"{x}.tj", f"{x}.tp"
    parts = [*(f"{x}.t1 || ' ' || {s}" for s in (joined, f"{x}.tc", spaced)),  # Mary ONeill: a given name beside
             *(f"{s} || ' ' || {x}.t1" for s in (joined, f"{x}.tc", spaced)),  # it goes too, as beside O'Neill
             joined, d.upper(joined), d.lower(joined), f"{x}.tc", spaced, d.upper(spaced), d.lower(spaced)]
    return forms + [f"CASE WHEN {x}.latin AND {d.size(f'{x}.g')} >= 3 THEN {f} END"
                    for f in (*_cases(two, d), f"{x}.t1 || '-' || {x}.l2", f"{x}.t1 || {x}.l2",
                              d.lower(f"{x}.t1 || {x}.l2"))] + [
        f"CASE WHEN {x}.latin THEN {f} END" for f in parts]


def _chinese_name_forms(x: str, d: TextDialect) -> list[str]:
    """SQL: the name with and without spaces between its characters, and the given name alone (two or more);
    both again in simplified characters when they differ (張偉明 as 张伟明); the surname with a title (陳先生,
    陳小姐, 陳太)."""
    c, zs = f"{x}.c", f"{x}.zs"
    surname = chinese_surname(c, d)
    given, simplified_given = f"substr({c}, {surname} + 1)", f"substr({zs}, {surname} + 1)"
    forms = [d.spaced_characters(c), c, f"CASE WHEN {zs} <> {c} THEN {zs} END", d.spaced_characters(given), given,
             f"CASE WHEN {simplified_given} <> {given} THEN {simplified_given} END",
             *(f"left({c}, {surname}) || {d.literal(title)}" for title in ("先生", "小姐", "太"))]
    return [f"CASE WHEN NOT {x}.latin THEN {f} END" for f in forms]


def _sql_remove_word(text: str, word: str, kind: str, d: TextDialect) -> str:
    """SQL: ``text`` (a lambda variable) with ``word`` replaced wherever it stands as a word.

    A literal split, not a regular expression built per row: the text is cut at every occurrence and each cut
    is joined back with the token when neither neighbour is a letter (``lower(c) = upper(c)``).
    """
    def piece(part: str, i: str) -> str:
        before, after = f"right({d.item('parts', f'{i} - 1')}, 1)", f"left({part}, 1)"
        return (f"CASE WHEN {i} = 1 THEN {part} ELSE "
                f"(CASE WHEN {d.caseless(before)} AND {d.caseless(after)} THEN {d.literal(token(kind))} "
                f"ELSE {word} END) || {part} END")

    join = d.join(d.transform_indexed("parts", "part", "i", piece), "''")
    return (f"CASE WHEN length({word}) >= 2 AND contains({text}, {word}) THEN "
            f"{d.let(d.split(text, word), 'parts', join)} ELSE {text} END")


def own_spellings(kind: str, parts: str, d: TextDialect) -> list[str]:
    """SQL expressions: the spellings of the row's value to remove from text ('' where one does not apply).

    ``parts`` is the :func:`own_parts` struct of the value. Their number depends only on the kind; for a name
    the last :data:`SURNAME_WORDS` are the surname's spellings, removed only where they stand as a word. An
    export computes them once per row, as columns of its source (see the policy compiler).
    """
    spelt = [_guard(form) for form in _forms(kind, parts, d)]
    if kind == "NAME":
        surname = f"{parts}.s"
        spelt += [f"CASE WHEN {parts}.latin THEN {_guard(word)} ELSE '' END"
                  for word in (surname, d.upper(surname), f"{parts}.ts", d.lower(surname), f"{parts}.tw")]
    return spelt


SURNAME_WORDS = 5


@dataclass(frozen=True)
class OwnSpellings:
    """The spellings of one of the row's direct identifiers, as SQL expressions (best: columns)."""

    kind: str
    spellings: tuple[str, ...]


def inline_spellings(own: Sequence[OwnIdentifier], d: TextDialect) -> list[OwnSpellings]:
    """The spellings computed in place, for a query that has no prepared columns (tests, one-off checks).

    Each binds the value's :func:`own_value`, then its :func:`own_parts`, to lambda variables: written out at
    every place it is read, the struct would make a query too large to plan.
    """
    return [OwnSpellings(o.kind, tuple(d.let(own_value(o.expr, d), "own_v",
                                             d.let(own_parts(o, d, "own_v"), "own_x", s))
                                       for s in own_spellings(o.kind, "own_x", d)))
            for o in own]


def _sql_own_pass(text: str, folded_input: str, own: Sequence[OwnSpellings], d: TextDialect) -> str:
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
            result = f"replace({result}, {present}, {d.literal(token(ident.kind))})"
        if words:
            # The English surname on its own, as a word; only a text that holds it pays for the split.
            body = "t"
            for word in words:
                body = d.let(body, "t", _sql_remove_word("t", word, "NAME", d))
            holds = f"{words[0]} <> '' AND contains({d.lower(folded_input)}, {d.lower(words[0])})"
            result = d.let(result, "t", f"CASE WHEN {holds} THEN {body} ELSE t END")
    return result


def _sql_pattern_pass(text: str, patterns: Sequence[TextPattern], d: TextDialect) -> str:
    result = text
    for pattern in patterns:
        result = d.regexp_replace(result, pattern.pattern, pattern.replacement.format(token=token(pattern.kind)))
    return result


def _sql_merge_tokens(text: str, d: TextDialect) -> str:
    """A name redacted in two parts ("[NAME] [NAME]", "[NAME], [NAME]") becomes one token."""
    name = token("NAME")
    for joint in (", ", " ", "-"):
        text = f"replace({text}, {d.literal(name + joint + name)}, {d.literal(name)})"
    return text


def sql_redact_text(expr: str, own: Sequence[OwnSpellings] = (), folded: str | None = None, *, d: TextDialect
                    ) -> str:
    """SQL: the text ``expr`` with the row's own identifiers and third parties' removed.

    ``own`` gives, per direct column of the row, its kind and :func:`own_spellings`;
    ``folded`` an expression of :func:`sql_fold` of the text, when one is computed already; ``d`` writes it for
    its engine. NULL stays NULL; a text in which nothing is found is returned unchanged.
    """
    text = d.text(expr)
    folded = folded or sql_fold(text, d)
    first = [p for p in THIRD_PARTY_PATTERNS if p.before_own]
    then = [p for p in THIRD_PARTY_PATTERNS if not p.before_own]
    redacted = _sql_merge_tokens(_sql_pattern_pass(_sql_own_pass(_sql_pattern_pass(folded, first, d), folded, own,
                                                                 d), then, d), d)
    # Written out in full: DuckDB computes a repeated subexpression once (and a lambda binding it would run
    # row by row). A text with nothing found comes back as it went in, full-width punctuation and all.
    return f"coalesce(nullif({redacted}, {folded}), {text})"


# --- compacting: what the leak check compares ---------------------------------------------------------------
def sql_compact(expr: str, d: TextDialect) -> str:
    """SQL: lower-case folded text with everything but letters, digits and CJK characters removed."""
    return compact_folded(sql_fold(expr, d), d)


def compact_folded(folded: str, d: TextDialect) -> str:
    """SQL: :func:`sql_compact` of text folded already (:func:`sql_fold`)."""
    # Spaces go first by a literal replace (most separators are one), then the remaining runs of separators, each
    # in one match: a regular expression's replacement pays for every match.
    return d.regexp_replace(f"replace({d.lower(folded)}, ' ', '')", f"[^a-z0-9{CJK_RANGES}]+", "")


def bare(text: str, d: TextDialect) -> str:
    """SQL: ASCII ``text`` compacted by literal replaces (the separators a name or e-mail holds), lower case."""
    return d.lower(f"replace(replace(replace(replace(replace({text}, '.', ''), '-', ''), '_', ''), ' ', ''), "
                   f"{d.literal(chr(39))}, '')")


def compact_letters(expr: str, d: TextDialect) -> str:
    """SQL: :func:`sql_compact` without the fold, for a short value with no full-width character to fold."""
    return d.regexp_replace(d.lower(expr), f"[^a-z0-9{CJK_RANGES}]+", "")
