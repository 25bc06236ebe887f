"""The declared regular-expression subset both engines read alike: the check, and the rewrite for Java.

A transform's pattern runs on DuckDB (RE2) or on Spark (``java.util.regex``),
which agree only on a declared subset (:data:`REGEX_SUBSET`). A pattern is
parsed here and refused, on either engine (:func:`check_regex`), if it goes
beyond it; for Java it is rewritten where Java's meaning differs from RE2's
(``\\b`` treats CJK as word characters in Java 17 and ``\\s`` includes ``\\v``,
so ``\\b``, ``\\d``, ``\\s`` and ``\\w`` are written out as RE2's ASCII classes;
``.`` stops at more line ends, ``$`` matches before a final newline, ``&&``
and ``[`` are special in a class, ``(?i:`` needs ``u`` to fold beyond
ASCII). A replacement's back-references are ``\\1`` in RE2 and ``$1`` in
Java (:func:`java_replacement`).
"""

from __future__ import annotations

# The regex constructs both engines read alike (after the Java rewrite below); anything else is refused.
REGEX_SUBSET = (
    "literal characters (any script), escaped metacharacters \\. \\+ \\* \\? \\( \\) \\[ \\] \\{ \\} \\| \\\\ \\^ "
    "\\$ \\- \\/",
    "classes [...] and [^...] with ranges and \\d \\s \\w inside; \\d \\s \\w \\b outside",
    ". ^ $ | ( ) (?: ) (?i: ) and the quantifiers ? * + {n} {n,} {n,m}, each optionally lazy (?)",
    "in replacements: text and the back-references \\0 to \\9",
)
_META = set(".^$|?*+()[]{}\\")
_ESCAPED_LITERALS = set(".+*?()[]{}|\\^$-/")
_ASCII_WORD = "0-9A-Za-z_"
_RE2_SPACE = "\\t\\n\\f\\r "  # RE2's \s: no \v (Java's has it)
_JAVA_CLASS_SPECIAL = set("[]\\^-&")


class RegexSubsetError(ValueError):
    """A pattern or replacement outside :data:`REGEX_SUBSET`."""


def _quantifier_end(pattern: str, i: int) -> int:
    """The index after a ``{n}``, ``{n,}`` or ``{n,m}`` starting at ``i``."""
    end = pattern.find("}", i)
    body = pattern[i + 1:end] if end > 0 else ""
    low, _, high = body.partition(",")
    if not low.isdigit() or (high and not high.isdigit()):
        raise RegexSubsetError(f"{pattern!r}: a repetition must be {{n}}, {{n,}} or {{n,m}}")
    return end + 1


def _class_to_java(pattern: str, i: int) -> tuple[str, int]:
    """The class starting at ``i`` (``[``) rewritten for Java, and the index after it."""
    out, i = ["["], i + 1
    if pattern[i:i + 1] == "^":
        out.append("^")
        i += 1
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        char, first = pattern[i], False
        if char == "\\":
            nxt = pattern[i + 1:i + 2]
            if nxt == "s":
                out.append(_RE2_SPACE)
            elif nxt == "d":
                out.append("0-9")
            elif nxt == "w":
                out.append(_ASCII_WORD)
            elif nxt in _ESCAPED_LITERALS:
                out.append("\\" + nxt)
            else:
                raise RegexSubsetError(f"{pattern!r}: \\{nxt} is not in the declared subset")
            i += 2
            continue
        if char == "-" and len(out) > 1 and pattern[i + 1:i + 2] not in ("]", ""):
            out.append("-")
        elif char == "[" and pattern[i + 1:i + 2] == ":":
            raise RegexSubsetError(f"{pattern!r}: POSIX classes [:name:] are not in the declared subset")
        else:
            out.append("\\" + char if char in _JAVA_CLASS_SPECIAL else char)
        i += 1
    if i >= len(pattern):
        raise RegexSubsetError(f"{pattern!r}: a class is not closed")
    out.append("]")
    return "".join(out), i + 1


def java_regex(pattern: str) -> str:
    """``pattern`` (RE2, within :data:`REGEX_SUBSET`) as a Java regex that matches the same text the same way.

    Raises :class:`RegexSubsetError` for a construct outside the subset, so the
    same check guards DuckDB's patterns (see :func:`check_regex`).
    """
    out: list[str] = []
    i, depth, can_repeat = 0, 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            nxt = pattern[i + 1:i + 2]
            if nxt == "b":
                word = f"[{_ASCII_WORD}]"
                out.append(f"(?:(?<={word})(?!{word})|(?<!{word})(?={word}))")
                can_repeat = False
            elif nxt in ("d", "s", "w"):
                out.append({"d": "[0-9]", "s": f"[{_RE2_SPACE}]", "w": f"[{_ASCII_WORD}]"}[nxt])
                can_repeat = True
            elif nxt in _ESCAPED_LITERALS:
                out.append("\\" + nxt)
                can_repeat = True
            else:
                raise RegexSubsetError(f"{pattern!r}: \\{nxt} is not in the declared subset")
            i += 2
        elif char == "[":
            text, i = _class_to_java(pattern, i)
            out.append(text)
            can_repeat = True
        elif char == "(":
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif pattern.startswith("(?i:", i):
                out.append("(?iu:")  # RE2's case folding is Unicode's; Java's is ASCII's without u
                i += 4
            elif pattern.startswith("(?", i):
                raise RegexSubsetError(f"{pattern!r}: only (...), (?:...) and (?i:...) groups are in the declared "
                                       "subset")
            else:
                out.append("(")
                i += 1
            depth, can_repeat = depth + 1, False
        elif char == ")":
            if depth == 0:
                raise RegexSubsetError(f"{pattern!r}: unbalanced )")
            out.append(")")
            depth, can_repeat, i = depth - 1, True, i + 1
        elif char in "?*+{":
            if not can_repeat:
                raise RegexSubsetError(f"{pattern!r}: a repetition at {i} repeats nothing (or a repetition)")
            end = _quantifier_end(pattern, i) if char == "{" else i + 1
            if pattern[end:end + 1] == "?":
                end += 1  # lazy: the same in both engines
            out.append(pattern[i:end])
            can_repeat, i = False, end
        elif char == ".":
            out.append("[^\\n]")  # RE2's dot stops only at \n; Java's at \r, \u0085, \u2028 and \u2029 too
            can_repeat, i = True, i + 1
        elif char == "$":
            out.append("\\z")  # Java's $ also matches before a final line end
            can_repeat, i = False, i + 1
        elif char in "^|":
            out.append(char)
            can_repeat, i = False, i + 1
        else:
            out.append(char)  # an ordinary character, in any script
            can_repeat, i = True, i + 1
    if depth:
        raise RegexSubsetError(f"{pattern!r}: unbalanced (")
    return "".join(out)


def check_anchored(pattern: str) -> None:
    """Refuse a first-match-only replacement unless the pattern can match once at most (anchored at an end)."""
    if not (pattern.startswith("^") or (pattern.endswith("$") and not pattern.endswith("\\$"))) or "|" in pattern:
        raise RegexSubsetError(f"{pattern!r}: a replacement of the first match only needs a pattern anchored at "
                               "one end, without alternatives")


def check_regex(pattern: str) -> str:
    """``pattern`` itself, or :class:`RegexSubsetError` if it goes beyond :data:`REGEX_SUBSET`."""
    java_regex(pattern)
    return pattern


def java_replacement(replacement: str) -> str:
    """A RE2 replacement (``\\1`` back-references) as Java's (``$1``); literal ``$`` and ``\\`` escaped."""
    out, i = [], 0
    while i < len(replacement):
        char = replacement[i]
        if char == "\\":
            nxt = replacement[i + 1:i + 2]
            if not nxt.isdigit():
                raise RegexSubsetError(f"{replacement!r}: only \\0 to \\9 may follow a backslash in a replacement")
            out.append("$" + nxt)
            i += 2
            continue
        out.append("\\" + char if char == "$" else char)
        i += 1
    return "".join(out)
