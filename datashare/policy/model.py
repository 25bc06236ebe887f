"""Policy files: the document's model, loaded and validated (every problem at once, with its key path).

A policy is YAML. It is validated completely before any query runs: unknown
keys, wrong types, unknown transforms and options, a row filter outside the
grammar — each reported with the file, the key path (``columns.phone.keep_last``)
and what would be valid, with a "did you mean" for typos. Whether a policy fits
a dataset (columns it lacks, types) is :mod:`datashare.policy.fit`; whether it
allows a use, :mod:`datashare.policy.use`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datashare.core.hints import closest, did_you_mean
from datashare.errors import InputError, PolicyError
from datashare.policy.document import Document, read_document, text_position
from datashare.policy.problems import (
    NOT_READ,
    UNKNOWN_KEY,
    KeyPath,
    Problem,
    drop_explained,
    locate,
    schema_problems,
    unknown_key,
)
from datashare.policy.rowfilter import MAX_WHERE_LENGTH, parse_where
from datashare.policy.transforms import RESERVED_PREFIX, TRANSFORMS, output_name, validate_params

if TYPE_CHECKING:
    from sqlglot import exp

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
RENAME_KEY = "as"  # a column's key naming it in the export (the transform's options are the others)
MAX_OUTPUT_NAME = 128
MAX_POLICY_BYTES = 1 << 20
# What each pattern of the schema accepts, in words (a problem never shows the regular expression).
_PATTERNS = {NAME_PATTERN: "must be a name of lower-case letters, digits, '.', '_' and '-', starting with a letter "
                           "or digit, at most 64 characters"}
# The keys of a column's rule besides its transform's options (``{transform: mask, keep_last: 2}``).
RULE_KEYS = ("transform", RENAME_KEY)  # a rule's own keys; the others are its transform's options


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class LDiversity(_Strict):
    sensitive: str
    l: int = Field(ge=1, strict=True)  # noqa: E741 - the name used in the literature and the policy file


class Privacy(_Strict):
    quasi_identifiers: list[str] = Field(default_factory=list)
    subject: str | None = None  # the person behind each row; default: the date shifts' subject
    # strict: YAML's `yes` must not become k=1 or a suppression budget of 100%
    k_anonymity: int = Field(default=1, ge=1, strict=True)
    max_suppression: float = Field(default=0.0, ge=0.0, le=1.0, strict=True)
    l_diversity: LDiversity | None = None


class Link(_Strict):
    """Opt-in linkage: every export under the same group name uses the group's keys."""

    group: str = Field(pattern=NAME_PATTERN)


class Rows(_Strict):
    where: str | None = Field(default=None, max_length=MAX_WHERE_LENGTH)


SYNTHETIC_METHODS = ("copula", "mst")


class Synthetic(_Strict):
    """``synthetic:``: how ``datashare synthesize`` may model the dataset (the policy's columns, after transforms).

    ``mst`` is differentially private and needs ``epsilon`` and ``delta``; ``copula`` is not, and may not
    claim an ε. Levels seen fewer than ``min_count`` times are never emitted; for ``mst`` numeric and date
    columns are cut into ``bins`` bins between their public ``bounds``, or a range chosen privately.
    """

    method: Literal["copula", "mst"]
    # strict: YAML's `yes` must not become a budget
    epsilon: float | None = Field(default=None, gt=0, le=20, strict=True)
    delta: float | None = Field(default=None, gt=0, lt=1e-3, strict=True)
    rows: int | None = Field(default=None, ge=1, le=100_000_000, strict=True)
    min_count: int = Field(default=10, ge=1, strict=True)
    max_levels: int = Field(default=200, ge=2, le=10_000, strict=True)
    bins: int = Field(default=32, ge=2, le=1000, strict=True)
    bounds: dict[str, tuple[float | dt.date, float | dt.date]] = Field(default_factory=dict)
    constraints: list[str] = Field(default_factory=list, max_length=50)
    holdout: float = Field(default=0.2, gt=0.0, lt=0.5, strict=True)


class ColumnRule(BaseModel):
    """``{transform: NAME, option: value…}``; the options are checked against the transform."""

    model_config = ConfigDict(extra="allow", frozen=True)
    transform: str

    @property
    def params(self) -> dict[str, Any]:
        return {key: value for key, value in (self.model_extra or {}).items() if key != RENAME_KEY}

    @property
    def rename(self) -> str | None:
        """``as:``: the column's name in the export, chosen by the policy."""
        return (self.model_extra or {}).get(RENAME_KEY)


class Policy(_Strict):
    policy: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1, strict=True)
    description: str = ""
    applies_to: list[str] = Field(min_length=1)
    purposes: list[str] = Field(min_length=1)
    recipients: list[str] = Field(min_length=1)
    expires: dt.date | None = None
    columns: dict[str, ColumnRule] = Field(min_length=1)
    privacy: Privacy = Field(default_factory=Privacy)
    rows: Rows = Field(default_factory=Rows)
    waivers: dict[str, str] = Field(default_factory=dict)  # column -> why its class's rule is waived
    link: Link | None = None
    synthetic: Synthetic | None = None

    @field_validator("waivers")
    @classmethod
    def _waivers_have_reasons(cls, waivers: dict[str, str]) -> dict[str, str]:
        for column, reason in waivers.items():
            if not reason.strip():
                raise ValueError(f"the waiver of {column!r} needs a reason")
        return waivers

    @field_validator("purposes", "recipients", "applies_to")
    @classmethod
    def _non_empty_names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip():
                raise ValueError("names may not be empty")
        return values


@dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy, where it came from, and the SHA-256 of the exact file bytes.

    ``where`` is ``rows.where`` parsed and checked against the grammar, once: the
    checks against a dataset and the compiler work on this tree, never the text.
    """

    policy: Policy
    path: Path
    sha256: str
    params: dict[str, dict[str, Any]]  # column -> validated transform parameters (defaults filled)
    where: exp.Expression | None  # None when the policy has no rows.where
    source: bytes = field(default=b"", repr=False)  # the exact bytes read, whose SHA-256 is ``sha256``
    document: Document | None = field(default=None, repr=False, compare=False)  # where each key is in the file

    @property
    def name(self) -> str:
        return self.policy.policy

    @property
    def version(self) -> int:
        return self.policy.version

    @property
    def subject(self) -> str | None:
        """The column naming the person behind each row: ``privacy.subject``, else the date shifts' subject."""
        if self.policy.privacy.subject is not None:
            return self.policy.privacy.subject
        return next((params["subject"] for params in self.params.values() if params.get("subject")), None)

    @property
    def link_group(self) -> str | None:
        return self.policy.link.group if self.policy.link is not None else None

    @property
    def outputs(self) -> dict[str, str]:
        """Each exported column's name in the export: ``as:``, else :func:`output_name` (generalised columns say
        what they hold)."""
        return {column: rule.rename or output_name(column, rule.transform, self.params[column])
                for column, rule in self.policy.columns.items()
                if rule.transform != "drop" and column in self.params}


def _field_names(loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema allows in the mapping that holds ``loc``'s last key."""
    model: Any = Policy
    for part in loc[:-1]:
        field_info = getattr(model, "model_fields", {}).get(part)
        if field_info is None:
            return []
        annotation = field_info.annotation
        model = next((a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")),
                     None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _read_policy_bytes(path: Path) -> bytes:
    """A policy file's bytes: a regular file of at most :data:`MAX_POLICY_BYTES` (``/dev/zero`` never ends)."""
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer; a regular file ignores it.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InputError(f"{path} is not a regular file: a policy is a YAML file")
            data = handle.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError as exc:
        raise InputError(f"no such policy file: {path}") from exc
    except OSError as exc:
        raise InputError(f"cannot read policy file {path}: {exc.strerror or type(exc).__name__}") from exc
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: a policy file is at most 1 MiB")
    return data


def load_policy(path: Path) -> LoadedPolicy:
    """Read and fully validate a policy file, or raise :class:`PolicyError` listing every problem, each located.

    One pass finds everything: the YAML reading's problems (a key given twice, a date that does not exist),
    the schema's, the transforms' options, the row filter and the gate's settings. Only a file that cannot be
    read as YAML at all stops before the schema.
    """
    path = Path(path)
    data = _read_policy_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_policy(path, [Problem((), "not UTF-8 text", hint="save the file as UTF-8", kind=NOT_READ,
                                            position=text_position(data, exc.start))]) from None
    document = read_document(text)
    problems, value = list(document.problems), document.value
    if document.complete and not isinstance(value, dict):
        problems.append(Problem((), "a policy is a YAML mapping with keys policy, version, columns…",
                                position=document.position(())))
    if not document.complete or not isinstance(value, dict):
        raise invalid_policy(path, problems)
    policy: Policy | None = None
    try:
        policy = Policy.model_validate(value)
    except ValidationError as exc:
        problems += [p for p in schema_problems(exc.errors(), value, _field_names, _PATTERNS)
                     if not any(p.path[:len(done)] == done for done in document.replaced)]
    # The columns and the row filter are checked even when the shape is wrong, so every problem shows at once.
    columns = value.get("columns")
    params, found = _check_columns(columns if isinstance(columns, dict) else {})
    problems += found
    rows = value.get("rows")
    where_text = rows.get("where") if isinstance(rows, dict) else None
    where = None
    if isinstance(where_text, str):
        try:
            where = parse_where(where_text)
        except PolicyError as exc:
            problems.append(Problem.of(("rows", "where"), exc.message.removeprefix("rows.where: ")))
    synthetic = value.get("synthetic")
    if isinstance(synthetic, dict):
        problems += _synthetic_problems(synthetic)
    if policy is not None:
        problems += _gate_column_problems(policy)
        problems += _gate_setting_problems(policy, params)
        if all(rule.transform == "drop" for rule in policy.columns.values()):
            problems.append(Problem(("columns",), "every column is dropped; an export needs at least one column "
                                                  "kept"))
    if policy is not None and not problems:
        problems += _output_name_problems(LoadedPolicy(policy, path, "", params, where))
    if problems or policy is None:
        raise invalid_policy(path, locate(drop_explained(problems), document.position))
    return LoadedPolicy(policy, path, hashlib.sha256(data).hexdigest(), params, where, source=data, document=document)


def invalid_policy(path: Path, problems: list[Problem]) -> PolicyError:
    """The error listing every problem of a policy file: ``FILE:LINE:COLUMN: key.path: message (hint)``."""
    problems = sorted(problems, key=lambda p: p.position or (0, 0))  # in the order of the file
    count = f"{len(problems)} problems" if len(problems) != 1 else "1 problem"
    return PolicyError(f"{path} is not a valid policy ({count}):\n  " + "\n  ".join(p.located(path) for p in problems),
                       problems=[p.text for p in problems], located=[p.as_dict(path) for p in problems])


def _check_columns(columns: dict[Any, Any]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Validated parameters per column, and every problem with a transform or its options.

    Works on the raw mapping: a rule whose shape is wrong is left to the schema check, which reports it with
    its key path, but a key that looks like a misspelt ``transform`` is named here (the schema would only say
    that ``transform`` is missing).
    """
    params: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for column, rule in columns.items():
        if not isinstance(rule, dict):
            continue
        if "transform" not in rule:
            problems += [unknown_key(("columns", column, key), RULE_KEYS) for key in rule
                         if key not in RULE_KEYS and closest(key, RULE_KEYS) is not None]
            continue
        transform = rule["transform"]
        if not isinstance(transform, str):
            continue
        if transform not in TRANSFORMS:
            match = closest(transform, TRANSFORMS)
            problems.append(Problem(("columns", column, "transform"), f"unknown transform {transform!r}",
                                    hint=f"did you mean {match!r}?" if match else f"known: {', '.join(TRANSFORMS)}"))
            continue
        params[str(column)], found = validate_params(transform, {k: v for k, v in rule.items() if k not in RULE_KEYS})
        problems += [Problem.of(("columns", column, key), problem,
                                kind=UNKNOWN_KEY if problem.startswith("unknown option") else "bad_value")
                     for key, problem in found]
        if RENAME_KEY in rule:
            problems += [Problem(("columns", column, RENAME_KEY), problem)
                         for problem in _rename_problems(rule, transform)]
    return params, problems


def _rename_problems(rule: dict[Any, Any], transform: str) -> list[str]:
    name = rule[RENAME_KEY]
    if transform == "drop":
        return ["a dropped column has no name in the export"]
    if not isinstance(name, str) or not name.strip():
        return ["must be a column name (text)"]
    if len(name) > MAX_OUTPUT_NAME or not name.isprintable() or name != name.strip():
        return [f"must be at most {MAX_OUTPUT_NAME} printable characters, without spaces around them"]
    if name.startswith(RESERVED_PREFIX):
        return [f"names starting with {RESERVED_PREFIX} are reserved for datashare's own columns"]
    return []


def _output_name_problems(loaded: LoadedPolicy) -> list[Problem]:
    """Two columns may not have one name in the export."""
    seen: dict[str, str] = {}
    problems = []
    for column, name in loaded.outputs.items():
        if name in seen:
            problems.append(Problem(("columns", column), f"its name in the export, {name!r}, is also "
                                    f"{seen[name]!r}'s", hint=f"give one of them another with `{RENAME_KEY}:`"))
        seen.setdefault(name, column)
    return problems


def _synthetic_problems(synthetic: dict[Any, Any]) -> list[Problem]:
    """What the schema cannot say about ``synthetic``: ε only with mst, ordered bounds, constraint grammar."""
    problems = []
    method = synthetic.get("method")
    if method == "mst":
        problems += [Problem(("synthetic", key), f"mst is (ε, δ)-differentially private and needs a {key}",
                             at=("synthetic", "method")) for key in ("epsilon", "delta") if synthetic.get(key) is None]
    elif method == "copula":
        problems += [Problem(("synthetic", key), f"copula is not differentially private; only mst takes an {key}")
                     for key in ("epsilon", "delta") if synthetic.get(key) is not None]
    bounds = synthetic.get("bounds")
    for column, pair in (bounds.items() if isinstance(bounds, dict) else ()):
        if isinstance(pair, list) and any(isinstance(v, float) and not math.isfinite(v) for v in pair):
            problems.append(Problem(("synthetic", "bounds", column), "bounds must be finite numbers"))
        elif (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is type(pair[1])
                and isinstance(pair[0], (int, float, dt.date)) and not pair[0] < pair[1]):
            problems.append(Problem(("synthetic", "bounds", column), "the low bound must be below the high one"))
    constraints = synthetic.get("constraints")
    for i, text in enumerate(constraints if isinstance(constraints, list) else ()):
        if isinstance(text, str):
            try:
                parse_where(text)
            except PolicyError as exc:
                problems.append(Problem.of(("synthetic", "constraints", i), exc.message.removeprefix("rows.where: ")))
    return problems


def _gate_column_problems(policy: Policy) -> list[Problem]:
    """The privacy gate groups rows by these columns: they need stable values and names of their own."""
    qis: KeyPath = ("privacy", "quasi_identifiers")
    gated = [(qis, (*qis, i), qi) for i, qi in enumerate(policy.privacy.quasi_identifiers)]
    if policy.privacy.l_diversity is not None:
        sensitive: KeyPath = ("privacy", "l_diversity", "sensitive")
        gated.append((sensitive, sensitive, policy.privacy.l_diversity.sensitive))
    problems = []
    for path, at, column in gated:
        rule = policy.columns.get(column)
        if column.startswith(RESERVED_PREFIX):
            problems.append(Problem(path, f"names starting with {RESERVED_PREFIX} are reserved for datashare's own "
                                          "columns", at=at))
        elif rule is not None and rule.transform in TRANSFORMS and TRANSFORMS[rule.transform].random:
            problems.append(Problem(path, f"{column!r} gets {rule.transform} (a different draw for nearly every row), "
                                          "so its classes cannot be counted; generalize, round or keep it instead",
                                    at=at))
    return problems


def _gate_setting_problems(policy: Policy, params: dict[str, dict[str, Any]]) -> list[Problem]:
    """Settings of the gate that would silently measure nothing, waivers of nothing, and subjects in conflict."""
    privacy, problems = policy.privacy, []
    if not privacy.quasi_identifiers:
        asked = [f"k_anonymity: {privacy.k_anonymity}"] if privacy.k_anonymity > 1 else []
        asked += ["l_diversity"] if privacy.l_diversity is not None else []
        asked += ["max_suppression"] if "max_suppression" in privacy.model_fields_set else []
        if asked:
            problems.append(Problem(("privacy",), f"{', '.join(asked)} without quasi_identifiers would measure "
                                                  "nothing (every row one class); list the quasi-identifiers, or "
                                                  "remove the setting"))
    for column in policy.waivers:
        if column not in policy.columns:
            hint = did_you_mean(column, policy.columns)
            problems.append(Problem(("waivers", column), f"the policy does not name column {column!r}",
                                    hint=hint or None))
    subjects = sorted({p["subject"] for p in params.values() if p.get("subject")})
    if privacy.subject is None and len(subjects) > 1:
        problems.append(Problem(("privacy", "subject"), f"the date shifts name different subjects "
                                                        f"({', '.join(subjects)}); say which column names the person "
                                                        "behind each row", at=("privacy",)))
    if privacy.subject is not None and privacy.subject.startswith(RESERVED_PREFIX):
        problems.append(Problem(("privacy", "subject"), f"names starting with {RESERVED_PREFIX} are reserved for "
                                                        "datashare's own columns"))
    return problems
