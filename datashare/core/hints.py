"""The "did you mean" of every message that names something unknown."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


def closest(word: object, choices: Iterable[object]) -> str | None:
    """The choice most like ``word`` (as text), if one is close enough to be a likely typo."""
    matches = get_close_matches(str(word), [str(choice) for choice in choices], n=1)
    return matches[0] if matches else None


def did_you_mean(word: object, choices: Iterable[object], *, before: str = "", after: str = "") -> str:
    """``did you mean 'x'?`` for the closest choice, between ``before`` and ``after``; ``""`` when none is close.

    ``before`` and ``after`` are the punctuation that sets the hint into its message (``"; "``, ``" ("`` and
    ``")"``), so a message without a suggestion carries none of it.
    """
    match = closest(word, choices)
    return f"{before}did you mean {match!r}?{after}" if match else ""
