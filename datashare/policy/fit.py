"""Whether a loaded policy fits a dataset: its names and types, and what the catalog's classes allow.

Everything here runs before any query: a column the dataset lacks, a
transform on a column of the wrong type, a row filter comparing a date with
a number, or a *direct* column released in part is found from the dataset's
``{column: DuckDB type}`` and ``{column: class}``, never from its rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from datashare.core.hints import closest
from datashare.core.sql import value_kind
from datashare.errors import PolicyError, RefusedError
from datashare.policy.model import LoadedPolicy
from datashare.policy.problems import KeyPath, Problem, locate
from datashare.policy.rowfilter import parse_where, where_problems
from datashare.policy.transforms import TRANSFORMS

# What a column of each catalog class may get (a *direct* column: removed or replaced, never shown in part).
DIRECT_ALLOWED = ("drop", "pseudonymize", "redact", "redact_identifiers")
DIRECT_CLASS, QUASI_CLASS = "direct", "quasi"
_NOTHING_LEFT = ("drop", "redact")  # transforms after which a quasi column says nothing about anyone


def _fully_masked(transform: str, params: dict[str, Any]) -> bool:
    return transform == "mask" and params.get("keep_first", 0) == 0 and params.get("keep_last", 0) == 0


def classification_problems(loaded: LoadedPolicy, classes: dict[str, str],
                            free_text: Collection[str] = ()) -> list[str]:
    """What the catalog's classes (``{column: class}``, after ``classify``) forbid in this policy. Empty when none.

    A *direct* column may only be dropped, pseudonymised or fully redacted; so may a column the catalog
    recognised as free text (``free_text``, whatever its class: a note may name anyone), or be cleaned by
    ``redact_identifiers``. A *quasi* column in the export must be a quasi-identifier of the gate. A
    waiver (``waivers: {column: reason}``) lifts these rules for its column.
    """
    policy, problems = loaded.policy, []
    quasi = set(policy.privacy.quasi_identifiers)
    for column, rule in policy.columns.items():
        cls = classes.get(column)
        if column in policy.waivers or cls is None:
            continue
        params = loaded.params.get(column, {})
        released = rule.transform not in DIRECT_ALLOWED and not _fully_masked(rule.transform, params)
        if cls == DIRECT_CLASS and released:
            problems.append(f"columns.{column}: {column!r} is classified direct, and {rule.transform} would release "
                            "(part of) it; drop, pseudonymize or redact it, or waive it under waivers with a reason")
        elif column in free_text and released:
            problems.append(f"columns.{column}: {column!r} is free text, which may name anyone, and {rule.transform} "
                            "would release it as written; use redact_identifiers, drop it, or waive it under "
                            "waivers with a reason")
        elif cls == QUASI_CLASS and rule.transform not in _NOTHING_LEFT and column not in quasi:
            problems.append(f"columns.{column}: {column!r} is classified quasi and is exported, but it is not in "
                            "privacy.quasi_identifiers, so the gate would not count it; list it, drop it, or waive "
                            "it under waivers with a reason")
    return problems


def require_classification(loaded: LoadedPolicy, classes: dict[str, str], dataset: str,
                           free_text: Collection[str] = ()) -> None:
    """Refuse (exit 3) a policy that releases what the catalog's classes forbid (and free text as written)."""
    problems = classification_problems(loaded, classes, free_text)
    if problems:
        raise RefusedError(f"policy {loaded.name} v{loaded.version} is refused for {dataset}:\n  "
                           + "\n  ".join(problems),
                           hint="`datashare show DATASET` lists the classes; `datashare classify` corrects one.")


def check_against_dataset(loaded: LoadedPolicy, columns: dict[str, str]) -> list[str]:
    """Problems fitting the policy to a dataset's ``{column: DuckDB type}``, as text. Empty when it fits."""
    return [problem.text for problem in dataset_problems(loaded, columns)]


def dataset_problems(loaded: LoadedPolicy, columns: dict[str, str]) -> list[Problem]:
    """Problems fitting the policy to a dataset's ``{column: DuckDB type}``. Empty when it fits.

    Names (columns the dataset lacks, with a suggestion), the privacy gate's
    columns, each transform against its column's type, and ``rows.where``
    against the columns and their types: all before any query runs, because a
    mismatch found by DuckDB half-way through an export would stop it with a
    cell value in the message.
    """
    policy, known = loaded.policy, set(columns)
    problems: list[Problem] = []

    def missing(path: KeyPath, name: str, at: KeyPath | None = None) -> None:
        match = closest(name, known)
        problems.append(Problem(path, f"the dataset has no column {name!r}",
                                hint=f"did you mean {match!r}?" if match else None, at=at))

    for column, rule in policy.columns.items():
        if column not in known:
            missing(("columns", column), column)
            continue
        need = TRANSFORMS[rule.transform].needs(loaded.params[column])
        if need is not None and value_kind(columns[column]) != need:
            what = rule.transform + (f" to {loaded.params[column]['to']}" if rule.transform == "generalize" else "")
            problems.append(Problem(("columns", column), f"{what} needs a {need} column; {column!r} is "
                                                         f"{columns[column]}"))
    for column, params in loaded.params.items():
        subject = params.get("subject")
        if subject is not None and subject not in known:
            missing(("columns", column, "subject"), subject)
    if policy.privacy.subject is not None and policy.privacy.subject not in known:
        missing(("privacy", "subject"), policy.privacy.subject)
    kept = {c for c, rule in policy.columns.items() if rule.transform != "drop"}
    qis: KeyPath = ("privacy", "quasi_identifiers")
    for i, qi in enumerate(policy.privacy.quasi_identifiers):
        if qi not in known:
            missing(qis, qi, at=(*qis, i))
        elif qi not in kept:
            problems.append(Problem(qis, f"{qi!r} is not in the export (its transform drops it, or the policy does "
                                         "not name it)", at=(*qis, i)))
    diversity = policy.privacy.l_diversity
    if diversity is not None:
        sensitive: KeyPath = ("privacy", "l_diversity", "sensitive")
        if diversity.sensitive not in known:
            missing(sensitive, diversity.sensitive)
        elif diversity.sensitive not in kept:
            problems.append(Problem(sensitive, f"{diversity.sensitive!r} is not in the export"))
    if loaded.where is not None:
        problems += [Problem.of(("rows", "where"), p.removeprefix("rows.where: "))
                     for p in where_problems(loaded.where, columns)]
    if policy.synthetic is not None:
        for column, (low, _) in policy.synthetic.bounds.items():
            path = ("synthetic", "bounds", column)
            if column not in known:
                missing(path, column)
            elif column not in kept:
                problems.append(Problem(path, f"{column!r} is not modelled (the policy drops it)"))
            elif value_kind(columns[column]) != ("date" if isinstance(low, dt.date) else "number"):
                problems.append(Problem(path, f"{column!r} is {columns[column]}; its bounds must be "
                                              f"{'dates' if value_kind(columns[column]) == 'date' else 'numbers'}"))
        for i, text in enumerate(policy.synthetic.constraints):
            problems += [Problem.of(("synthetic", "constraints", i), p.removeprefix("rows.where: "))
                         for p in where_problems(parse_where(text), columns)]
    return problems


def require_valid_for(loaded: LoadedPolicy, columns: dict[str, str], dataset: str | None = None) -> None:
    """Raise :class:`PolicyError` listing (each with its place in the file) what does not fit the dataset."""
    problems = dataset_problems(loaded, columns)
    if problems:
        where = loaded.document.position if loaded.document is not None else (lambda path: None)
        located = sorted(locate(problems, where), key=lambda p: p.position or (0, 0))
        named = "the dataset" if dataset is None else f"dataset {dataset}"
        raise PolicyError(f"{loaded.path} does not fit {named}:\n  "
                          + "\n  ".join(p.located(loaded.path) for p in located),
                          problems=[p.text for p in located], located=[p.as_dict(loaded.path) for p in located])
