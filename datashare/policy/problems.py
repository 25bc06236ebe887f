"""What is wrong with a policy file, in one style: where (line and column), the key path, a sentence, a hint.

Every check of a policy (the YAML reading, the schema, the transforms, the row
filter, the privacy gate's settings) reports :class:`Problem` values, so a
person sees one list, each line ``FILE:LINE:COLUMN: key.path: what is wrong
(did you mean 'x'?)``, and ``--json`` gets the same as fields. The schema's
own errors are turned into our sentences here (:func:`schema_problems`): a
pydantic message is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from datashare.core.hints import closest

KeyPath = tuple[Any, ...]  # keys and list indexes from the top of the document
Position = tuple[int, int]  # line and column, from 1

UNKNOWN_KEY, MISSING_KEY, BAD_VALUE, NOT_READ = "unknown_key", "missing_key", "bad_value", "not_read"
_DID_YOU_MEAN = re.compile(r" \((did you mean '.*'\?)\)$", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (``path``, and ``at`` when the place to point at is deeper), what, and a hint."""

    path: KeyPath
    message: str
    hint: str | None = None
    kind: str = BAD_VALUE
    position: Position | None = None
    at: KeyPath | None = None  # where to point, when more precise than ``path`` (an item of a list)

    @classmethod
    def of(cls, path: KeyPath, text: str, **fields: Any) -> Problem:
        """A problem from a sentence that may end in `` (did you mean 'x'?)``: the question becomes the hint."""
        match = _DID_YOU_MEAN.search(text)
        if match and "hint" not in fields:
            return cls(path, text[:match.start()], hint=match.group(1), **fields)
        return cls(path, text, **fields)

    @property
    def key_path(self) -> str:
        return key_path_text(self.path)

    @property
    def text(self) -> str:
        """``key.path: message (hint)``: what ``PolicyError.problems`` has always listed."""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.key_path}: {self.message}{hint}" if self.path else f"{self.message}{hint}"

    def located(self, file: object) -> str:
        """``FILE:LINE:COLUMN: key.path: message (hint)``, as compilers write it (editors jump to it)."""
        where = f"{file}:{self.position[0]}:{self.position[1]}" if self.position else str(file)
        return f"{where}: {self.text}"

    def as_dict(self, file: object) -> dict[str, Any]:
        """The problem for ``--json``: ``{file, path, line, column, message, hint}``."""
        line, column = self.position if self.position else (None, None)
        return {"file": str(file), "path": self.key_path, "line": line, "column": column, "message": self.message,
                "hint": self.hint}


def key_path_text(path: KeyPath) -> str:
    return ".".join(str(part) for part in path)


def unknown_key(path: KeyPath, known: Iterable[str], what: str = "key") -> Problem:
    """``unknown key 'x'``, with the closest known key as a hint, or the list of the known ones."""
    known = list(known)
    match = closest(path[-1], known)
    hint = f"did you mean {match!r}?" if match else (f"known: {', '.join(known)}" if known else None)
    return Problem(path, f"unknown {what} {str(path[-1])!r}", hint=hint, kind=UNKNOWN_KEY)


def locate(problems: Iterable[Problem], where: Callable[[KeyPath], Position]) -> list[Problem]:
    """``problems`` with their positions filled in by ``where`` (a key path to the line and column to show)."""
    return [p if p.position else replace(p, position=where(p.at if p.at is not None else p.path)) for p in problems]


def drop_explained(problems: list[Problem]) -> list[Problem]:
    """Without "X is missing" where an unknown key beside it is a typo of X: one mistake, one line."""
    suggested = {(p.path[:-1], p.hint) for p in problems if p.kind == UNKNOWN_KEY and p.hint}
    return [p for p in problems
            if not (p.kind == MISSING_KEY and (p.path[:-1], f"did you mean {p.path[-1]!r}?") in suggested)]


# --- the schema's errors, in our words --------------------------------------------------------------------

_WHOLE, _NUMBER, _DATE = "must be a whole number", "must be a number", "must be a date (YYYY-MM-DD)"
_MAPPING = "must be a mapping (key: value)"
_SENTENCES: dict[str, str] = {
    "int_type": _WHOLE, "int_parsing": _WHOLE, "int_from_float": _WHOLE,
    "float_type": _NUMBER, "float_parsing": _NUMBER, "finite_number": "must be a finite number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "string_type": "must be text", "list_type": "must be a list", "tuple_type": "must be a list",
    "dict_type": _MAPPING, "model_type": _MAPPING, "model_attributes_type": _MAPPING,
    "date_type": _DATE, "date_parsing": _DATE, "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE, "date_past": _DATE, "date_future": _DATE,
    "greater_than": "must be greater than {gt}", "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}", "less_than_equal": "must be at most {le}",
    "too_long": "may have at most {max_length} items", "string_too_long": "may be at most {max_length} characters",
    "string_too_short": "may not be empty", "none_required": "must be empty",
}
_LENGTHS = {"list": "items", "tuple": "values", "dict": "entries", "set": "items"}


def schema_problems(errors: list[dict[str, Any]], document: Any, known_keys: Callable[[KeyPath], list[str]],
                    patterns: dict[str, str]) -> list[Problem]:
    """pydantic's ``errors()`` as problems in our sentences, each at the key path it is about.

    ``known_keys(loc)`` lists the keys allowed beside an unknown one; ``patterns`` says in words what each
    ``pattern=`` of the schema accepts. Errors a union gives for each of its members become one sentence.
    """
    merged: dict[tuple[KeyPath, str], Problem] = {}
    for error in errors:
        problem = _schema_problem(error, document, known_keys, patterns)
        key = (problem.path, problem.kind)
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = problem
        elif problem.message.startswith("must be ") and problem.message not in earlier.message:
            merged[key] = replace(earlier, message=f"{earlier.message} or {problem.message.removeprefix('must be ')}")
    return list(merged.values())


def _schema_problem(error: dict[str, Any], document: Any, known_keys: Callable[[KeyPath], list[str]],
                    patterns: dict[str, str]) -> Problem:
    loc, kind = tuple(error["loc"]), error["type"]
    path = _in_document(loc, document)
    if kind == "extra_forbidden":
        return unknown_key(path, known_keys(loc))
    if kind == "missing":
        missing = loc[len(path)] if len(loc) > len(path) else loc[-1]
        if isinstance(missing, int):  # a pair given one value
            return Problem(path, f"needs {missing + 1} values, not {missing}")
        return Problem((*path, missing), f"the required key {missing!r} is missing", kind=MISSING_KEY, at=path)
    if len(loc) > len(path) and loc[len(path)] == "[key]":
        return Problem(path, "a key here must be a name (text)", hint="write it in quotes")
    return Problem.of(path, _sentence(error, patterns))


def _in_document(loc: KeyPath, document: Any) -> KeyPath:
    """The longest start of ``loc`` that names a place in the document (a union's member names none)."""
    path: list[Any] = []
    value = document
    for part in loc:
        in_list = isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        if not (in_list or (isinstance(value, dict) and part in value)):
            break
        value = value[part]
        path.append(part)
    return tuple(path)


def _sentence(error: dict[str, Any], patterns: dict[str, str]) -> str:
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "value_error":
        return str(ctx.get("error", "is not valid"))
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        match = closest(given, choices) if isinstance(given, str) else None
        hint = f" (did you mean {match!r}?)" if match else ""
        return f"must be one of {', '.join(choices)}{hint}"
    if kind == "string_pattern_mismatch":
        return patterns.get(str(ctx.get("pattern")), "is not in the expected form")
    if kind == "too_short":
        items = _LENGTHS.get(str(ctx.get("field_type", "")).lower(), "items")
        needed = ctx.get("min_length", 1)
        return "may not be empty" if needed == 1 else f"needs at least {needed} {items}"
    sentence = _SENTENCES.get(kind)
    if sentence is None:
        return "is not a valid value here"
    if isinstance(given, bool) and sentence in (_WHOLE, _NUMBER):
        sentence += ", not true or false (YAML reads yes, no, on and off as those)"
    try:
        return sentence.format(**{k: v for k, v in ctx.items() if isinstance(v, (int, float, str))})
    except (KeyError, IndexError, ValueError):
        return sentence.split(" {")[0]
