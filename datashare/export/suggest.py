"""``policy suggest``: the generalisation of the quasi-identifiers that keeps the most, under k, l and a budget.

The levels of every quasi-identifier (:mod:`datashare.policy.hierarchies`) are computed once, by the very
transforms a policy would apply, into a temporary table, and aggregated once to one row per person and
combination of levels. Each node of the lattice (:mod:`datashare.policy.lattice`) is judged from that table
as the privacy gate would judge it: classes counted in people, whole people suppressed round by round, the
same budget (only the classes a round touched are recounted; a property test holds every node's decision to
the gate's). The nodes reported are judged by the gate's own code over the rows: a node's columns are exposed
as a view, a policy keeping them is compiled, and :func:`~datashare.export.privacy.classify_rows` and
:func:`~datashare.export.privacy.gate` count and decide, as an export would. The written policy applies the
chosen levels to the dataset itself, so it reproduces what was counted.

Loss is the *generalised information loss* (Iyengar's loss metric, ARX's "Loss"): a value released as a group
that covers g of the column's N distinct values loses (g - 1) / (N - 1); a kept value loses 0, a dropped
column 1. It is averaged over the rows, then over the quasi-identifiers. Suppression is not part of it: it is
bounded by ``--max-suppression`` and reported beside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.audit.log import audited
from datashare.catalog.store import DatasetVersion, resolve
from datashare.core.fs import atomic_write_text
from datashare.core.sql import quote_ident, value_kind
from datashare.errors import DatashareError, InputError, RefusedError
from datashare.export.privacy import MAX_SUPPRESSION_ROUNDS, classify_rows, gate
from datashare.policy.compiler import SUBJECT, CompiledPolicy, compile_policy
from datashare.policy.fit import require_classification, require_valid_for
from datashare.policy.hierarchies import Hierarchy, Level, hierarchy_for, kept
from datashare.policy.lattice import Lattice, Node, Outcome, exhaustive, search
from datashare.policy.model import ColumnRule, LDiversity, LoadedPolicy, Policy, Privacy, load_policy
from datashare.policy.transforms import RESERVED_PREFIX, TRANSFORMS
from datashare.workspace import Workspace

if TYPE_CHECKING:
    import duckdb

LEVELS_TABLE = f"{RESERVED_PREFIX}suggest_levels"  # temporary: every level of every quasi-identifier, per row
NODE_VIEW = f"{RESERVED_PREFIX}suggest_node"  # temporary: one node's columns, under their own names
# temporary, with a subject: the levels table aggregated once to one row per person and combination of levels
MEMBERS_BASE = f"{RESERVED_PREFIX}suggest_members"
_BASE_ROWS = f"{RESERVED_PREFIX}n"
# temporary, per node evaluated: its members by class number, its classes, the people suppressed, those added in
# a round and the classes they were in
_M, _C, _S, _N, _T = (f"{RESERVED_PREFIX}suggest_{name}" for name in ("m", "c", "s", "new", "touched"))
_SUBJECT, _SENSITIVE = f"{RESERVED_PREFIX}s", f"{RESERVED_PREFIX}v"
VALID_DAYS = 365  # a suggested policy expires after a year: approval is for a use, not for ever
PLACEHOLDER_PURPOSE, PLACEHOLDER_RECIPIENT = "research", "named-recipient"
MAX_NAME_STEM = 54  # of the dataset's name in the policy's (policy names are at most 64 characters)
_ONE = f"{RESERVED_PREFIX}one"  # a constant column: a node that releases nothing still has a column to count


@dataclass(frozen=True)
class Request:
    """What ``policy suggest`` is asked for."""

    k: int
    l: int = 1  # noqa: E741 - the literature's name
    sensitive: str | None = None
    max_suppression: float = 0.0
    subject: str | None = None
    keep: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()


def _level_column(q: int, j: int) -> str:
    return f"{RESERVED_PREFIX}q{q}_{j}"


def default_subject(dataset: DatasetVersion) -> str | None:
    """The column naming the person behind each row when none is given: the one the catalog calls a record id."""
    ids = [c.name for c in dataset.columns if c.detected == "record_id"]
    return ids[0] if len(ids) == 1 else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def hierarchies(dataset: DatasetVersion, request: Request, reference: dt.date) -> list[Hierarchy]:
    """One hierarchy per column the catalog classes *quasi* (after ``classify``); ``--keep`` ones stay as they are."""
    found = []
    for column in dataset.columns:
        if column.cls != "quasi" or column.name in (request.sensitive, request.subject):
            continue
        if column.name in request.keep:
            found.append(kept(column.name))
        else:
            found.append(hierarchy_for(column.name, value_kind(column.type), column.detected, reference=reference,
                                       low=_number(column.min), high=_number(column.max)))
    return found


def _check_request(dataset: DatasetVersion, request: Request) -> None:
    """Columns that exist, and asked-for uses the catalog's classes allow."""
    columns = {c.name: c for c in dataset.columns}
    named = [("--sensitive", request.sensitive), ("--subject", request.subject)]
    named += [("--keep", column) for column in request.keep]
    for option, column in named:
        if column is not None and column not in columns:
            raise InputError(f"{option}: {dataset.name} has no column {column!r}",
                             hint=f"`datashare show {dataset.name}` lists its columns.")
    for option, column in [("--sensitive", request.sensitive), *(("--keep", c) for c in request.keep)]:
        if column is not None and columns[column].cls == "direct":
            raise RefusedError(f"{option}: {column!r} is classified direct; a policy may not release it",
                               hint="`datashare classify` corrects a class that is wrong.")
    for option, column in [("--sensitive", request.sensitive), *(("--keep", c) for c in request.keep)]:
        if column is not None and columns[column].free_text:
            raise InputError(f"{option}: {column!r} is free text, which a suggested policy drops")
    if request.sensitive is not None and columns[request.sensitive].cls == "quasi":
        raise InputError(f"--sensitive: {request.sensitive!r} is a quasi-identifier; name a sensitive column")
    if request.l > 1 and request.sensitive is None:
        raise InputError("--l needs --sensitive: the column whose distinct values each class must hold")


class _Evaluator:
    """Runs the privacy gate on one node at a time, keeping each node's numbers."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dataset: DatasetVersion, request: Request,
                 found: list[Hierarchy], *, fast: bool = True) -> None:
        self.con, self.dataset, self.request, self.hierarchies = con, dataset, request, found
        self.fast = fast and request.subject is not None  # without a subject the gate reads the rows directly
        self.stats: dict[Node, dict[str, Any] | None] = {}  # the gate's numbers, for the nodes it judged
        self.passed: dict[Node, bool] = {}  # every node judged, and whether it passes
        self._distinct: dict[int, tuple[int, int]] = {}  # per quasi-identifier: its distinct values, and rows
        self._rows = 0  # in the dataset (with a subject: counted in build)

    def build(self) -> list[list[float]]:
        """The levels table (once), and the loss of every level."""
        selected = [f"{quote_ident(self.request.subject)} AS {_SUBJECT}"] if self.request.subject else []
        if self.request.sensitive:
            selected.append(f"{quote_ident(self.request.sensitive)} AS {_SENSITIVE}")
        for q, hierarchy in enumerate(self.hierarchies):
            for j, level in enumerate(hierarchy.levels):
                build = TRANSFORMS[level.transform].build
                if build is not None:  # the very expression an export of this level would compute
                    sql = build(quote_ident(hierarchy.column), level.params)
                    selected.append(f"{sql} AS {_level_column(q, j)}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {LEVELS_TABLE} AS SELECT {', '.join(selected) or '1'} "
                         f"FROM {self.dataset.table}")
        if self.fast:  # the subject as the gate's pipeline gives it (text, a missing one as '')
            grouped = [f"coalesce(CAST({_SUBJECT} AS VARCHAR), '') AS {SUBJECT}"]
            grouped += [c.rsplit(" AS ", 1)[1] for c in selected[1:]]  # the columns' own names
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {MEMBERS_BASE} AS SELECT {', '.join(grouped)}, "
                             f"count(*) AS {_BASE_ROWS} FROM {LEVELS_TABLE} GROUP BY ALL")
            self._rows = self.con.execute(f"SELECT coalesce(sum({_BASE_ROWS}), 0) FROM {MEMBERS_BASE}").fetchone()[0]
        return [[self._loss(q, j, level) for j, level in enumerate(h.levels)] for q, h in enumerate(self.hierarchies)]

    def _loss(self, q: int, j: int, level: Level) -> float:
        """Generalised information loss of one level, over the rows (a missing value counts as a value)."""
        if level.transform == "keep":
            return 0.0
        original = _level_column(q, 0)
        distinct = f"count(DISTINCT {original}) + (count(*) > count({original}))::INTEGER"
        if q not in self._distinct:
            self._distinct[q] = self.con.execute(f"SELECT {distinct}, count(*) FROM {LEVELS_TABLE}").fetchone()
        values, rows = self._distinct[q]
        if values <= 1:
            return 0.0
        if level.transform == "drop":
            return 1.0
        lost = self.con.execute(
            f"SELECT sum(n * (g - 1)) FROM (SELECT count(*) AS n, {distinct} AS g FROM {LEVELS_TABLE} "
            f"GROUP BY {_level_column(q, j)})").fetchone()[0]
        return float(lost) / (rows * (values - 1))

    def node_policy(self, node: Node) -> LoadedPolicy:
        """A policy keeping the node's columns as the view gives them, under the requested gate."""
        qis = [h.column for h, j in zip(self.hierarchies, node, strict=True) if h.levels[j].transform != "drop"]
        columns = [*qis, *(c for c in (self.request.subject, self.request.sensitive) if c), _ONE]
        privacy: dict[str, Any] = {"subject": self.request.subject}
        if qis:
            privacy.update(quasi_identifiers=qis, k_anonymity=self.request.k,
                           max_suppression=self.request.max_suppression)
            if self.request.sensitive:
                privacy["l_diversity"] = LDiversity(sensitive=self.request.sensitive, l=self.request.l)
        policy = Policy(policy="suggest-node", version=1, applies_to=[self.dataset.name], purposes=["suggest"],
                        recipients=["suggest"], columns={c: ColumnRule(transform="keep") for c in columns},
                        privacy=Privacy(**privacy))
        return LoadedPolicy(policy, Path("suggest-node"), "", {c: {} for c in columns}, None)

    def passes(self, node: Node) -> bool:
        """Whether the gate would let the node's generalisation through (its numbers are kept)."""
        return self._passes_members(node) if self.fast else self._passes_gate(node)

    def _passes_gate(self, node: Node) -> bool:
        """The gate on a view of the node's columns over the levels table, every step as an export runs it."""
        selected = [f"{_level_column(q, j)} AS {quote_ident(h.column)}"
                    for q, (h, j) in enumerate(zip(self.hierarchies, node, strict=True))
                    if h.levels[j].transform != "drop"]
        selected += [f"{name} AS {quote_ident(column)}" for name, column in
                     ((_SUBJECT, self.request.subject), (_SENSITIVE, self.request.sensitive)) if column]
        selected.append(f"1 AS {_ONE}")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {NODE_VIEW} AS SELECT {', '.join(selected)} "
                         f"FROM {LEVELS_TABLE}")
        loaded = self.node_policy(node)
        columns = [(c, "VARCHAR") for c in loaded.policy.columns]
        compiled = compile_policy(loaded, NODE_VIEW, columns)
        try:
            stats = classify_rows(self.con, compiled, budget=self.request.max_suppression)
            if stats is not None:
                gate(loaded, compiled, stats)
        except RefusedError:
            stats = None
        self.stats[node] = stats
        self.passed[node] = stats is not None
        return stats is not None

    def _passes_members(self, node: Node) -> bool:
        """:meth:`passes` from :data:`MEMBERS_BASE`, with the gate's suppression rounds done incrementally.

        The gate builds the classes, then round by round suppresses every person with a row in a failing class
        and builds every class again. Here a node's members (one row per person, class and sensitive value, with
        its rows) are numbered by class once; each round recounts only the classes the people it suppressed had
        rows in. The people suppressed, their rows, the rounds and the decision are the gate's (a property test
        compares them on every node); the figures reported are counted by the gate itself (:meth:`figures`).
        """
        loaded = self.node_policy(node)
        compiled = compile_policy(loaded, NODE_VIEW, [(c, "VARCHAR") for c in loaded.policy.columns])
        level = {h.column: _level_column(q, j) for q, (h, j) in enumerate(zip(self.hierarchies, node, strict=True))}
        if compiled.quasi_identifiers and self._first_round_refuses(compiled, level):
            self.passed[node] = False
            return False
        qis = [level[c] for c in compiled.quasi_identifiers]
        value = _SENSITIVE if compiled.sensitive else "NULL"
        diversity = "count(DISTINCT v)" if compiled.sensitive else "1"
        fail = f"NOT (size >= {int(compiled.k)} AND d >= {int(compiled.l)})"
        number = f"dense_rank() OVER (ORDER BY {', '.join(qis)})" if qis else "1"
        con = self.con
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_M} AS SELECT s, {number} AS cid, v, r FROM "
                    f"(SELECT {SUBJECT} AS s, {', '.join([*qis, ''])}{value} AS v, sum({_BASE_ROWS}) AS r "
                    f"FROM {MEMBERS_BASE} GROUP BY ALL);\n"
                    f"CREATE OR REPLACE TEMP TABLE {_C} AS SELECT cid, sum(r) AS r, count(DISTINCT s) AS size, "
                    f"{diversity} AS d FROM {_M} GROUP BY cid;\n"
                    f"CREATE OR REPLACE TEMP TABLE {_S} (s VARCHAR PRIMARY KEY)")
        rows = self._rows
        suppressed = 0
        budget = self.request.max_suppression
        passed = False
        for _ in range(MAX_SUPPRESSION_ROUNDS):  # as classify_rows: a round that adds nobody settles
            failing_rows = con.execute(f"SELECT coalesce(sum(r), 0) FROM {_C} WHERE {fail}").fetchone()[0]
            if rows and (suppressed + failing_rows) / rows > budget:
                break  # suppression is bound to exceed the budget
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_N} AS SELECT DISTINCT s FROM {_M} "
                        f"WHERE cid IN (SELECT cid FROM {_C} WHERE {fail}) AND s NOT IN (SELECT s FROM {_S})")
            added, added_rows = con.execute(f"SELECT (SELECT count(*) FROM {_N}), (SELECT coalesce(sum(r), 0) "
                                            f"FROM {_M} WHERE s IN (SELECT s FROM {_N}))").fetchone()
            if not added:
                passed = rows > 0 and suppressed / rows <= budget
                break
            suppressed += added_rows
            con.execute(f"INSERT INTO {_S} SELECT s FROM {_N};\n"
                        f"CREATE OR REPLACE TEMP TABLE {_T} AS SELECT DISTINCT cid FROM {_M} "
                        f"WHERE s IN (SELECT s FROM {_N});\n"
                        f"DELETE FROM {_C} WHERE cid IN (SELECT cid FROM {_T});\n"
                        f"INSERT INTO {_C} SELECT cid, sum(r), count(DISTINCT s), {diversity} "
                        f"FROM {_M} WHERE cid IN (SELECT cid FROM {_T}) AND s NOT IN (SELECT s FROM {_S}) "
                        "GROUP BY cid")
        self.passed[node] = passed
        return passed

    def _first_round_refuses(self, compiled: CompiledPolicy, level: dict[str, str]) -> bool:
        """The gate's first check, in one query: the rows of the classes failing before any suppression (which
        suppression can only add to) already exceed the budget. :func:`classify_rows` would refuse there too."""
        diversity = f"count(DISTINCT {_SENSITIVE})" if compiled.sensitive else "1"
        failing = self.con.execute(
            f"SELECT coalesce(sum(r) FILTER (WHERE NOT (size >= {int(compiled.k)} AND d >= {int(compiled.l)})), 0) "
            f"FROM (SELECT sum({_BASE_ROWS}) AS r, count(DISTINCT {SUBJECT}) AS size, {diversity} AS d "
            f"FROM {MEMBERS_BASE} GROUP BY {', '.join(level[c] for c in compiled.quasi_identifiers)})").fetchone()[0]
        return bool(self._rows) and failing / self._rows > self.request.max_suppression

    def figures(self, lattice: Lattice, node: Node | None) -> dict[str, Any] | None:
        """What the report says of a node: its levels, loss and suppression (evaluated now if it was only tagged)."""
        if node is None:
            return None
        if self.fast or self.stats.get(node) is None:  # the figures reported are the gate's own, every step
            self._passes_gate(node)
        stats = self.stats[node]
        if stats is None:  # the shortcut passed a node the gate refuses: nothing is suggested
            raise RefusedError("the privacy gate refuses the generalisation the search chose",
                               hint="Report this: the search and the gate disagree.")
        rows = stats["rows_selected"]
        return {
            "levels": {h.column: {"level": h.levels[j].label(), **h.levels[j].rule()}
                       for h, j in zip(self.hierarchies, node, strict=True)},
            "loss": lattice.loss(node),
            "rows": rows, "rows_suppressed": stats["suppressed"],
            "share_suppressed": stats["suppressed"] / rows if rows else 0.0,
            "people": stats["people_selected"], "people_suppressed": stats["people_suppressed"],
            "k_measured": stats["k"], "l_measured": stats["l"],
        }


def run_search(con: duckdb.DuckDBPyConnection, dataset: DatasetVersion, request: Request, reference: dt.date, *,
               pruned: bool = True, fast: bool = True) -> tuple[Lattice, Outcome, _Evaluator]:
    """Build the levels, then search the lattice (``pruned=False``: every node; ``fast=False``: every node judged
    by the gate over the rows; both the references for tests and benchmarks)."""
    found = hierarchies(dataset, request, reference)
    evaluator = _Evaluator(con, dataset, request, found, fast=fast)
    lattice = Lattice(found, evaluator.build())
    outcome = (search if pruned else exhaustive)(lattice, evaluator.passes)
    return lattice, outcome, evaluator


def suggest(ws: Workspace, actor: str, dataset: str, request: Request, *, out: Path | None = None,
            version: int | None = None, today: dt.date | None = None) -> dict[str, Any]:
    """Search the dataset's generalisation lattice; with ``out``, write the optimum as a complete policy."""
    today = today or dt.datetime.now(dt.UTC).date()
    with audited(ws, "policy.suggest", actor, dataset=dataset) as record:
        with ws.connect(read_only=True) as con:
            resolved = resolve(con, dataset, version)
            if request.subject is None:
                request = replace(request, subject=default_subject(resolved))
            _check_request(resolved, request)
            if out is not None and (out.exists() or out.is_symlink()):
                raise InputError(f"{out} exists; a suggested policy is never written over a file",
                                 hint="Name another file with --out.")
            with _data_errors(dataset):
                lattice, outcome, evaluator = run_search(con, resolved, request, dt.date(today.year, 1, 1))
                optimum = evaluator.figures(lattice, outcome.optimum)
                runner_up = evaluator.figures(lattice, outcome.runner_up)
        record.target["version"] = resolved.version
        record.details.update(k=request.k, l=request.l, nodes=lattice.size, evaluated=outcome.evaluated)
        if optimum is None:
            raise RefusedError(f"no generalisation of {dataset}'s quasi-identifiers meets k={request.k}"
                               + (f" and l={request.l}" if request.sensitive else "")
                               + f" with at most {request.max_suppression:.1%} suppressed",
                               hint="Allow more suppression, lower k or l, or take a column out of --keep.")
        result = {
            "dataset": dataset, "dataset_version": resolved.version, "k": request.k, "l": request.l,
            "sensitive": request.sensitive, "max_suppression": request.max_suppression,
            "subject": request.subject, "k_unit": "people" if request.subject else "rows",
            "quasi_identifiers": [h.column for h in lattice.hierarchies],
            "loss_measure": "generalised information loss (mean over rows and quasi-identifiers; 0 keeps all, "
                            "1 drops all)",
            "nodes": lattice.size, "evaluated": outcome.evaluated, "passing": outcome.passing,
            "optimum": optimum, "runner_up": runner_up, "policy_file": None,
        }
        if out is not None:
            text = policy_text(resolved, request, optimum, today)
            atomic_write_text(out, text, mode=0o644)
            try:  # what was written is what an approval would read: it must pass what an export checks
                written = load_policy(out)
                require_valid_for(written, resolved.types)
                require_classification(written, resolved.classes, dataset, resolved.free_text_columns)
            except DatashareError:
                out.unlink()
                raise
            result["policy_file"] = str(out)
            record.details["policy_file"] = str(out)
        record.ok()
    return result


@contextmanager
def _data_errors(dataset: str) -> Iterator[None]:
    """DuckDB's errors while the levels are counted, without its text (which can quote a cell value)."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    try:
        yield
    except duckdb.OutOfMemoryException:
        raise InputError("DuckDB ran out of memory counting the generalisation lattice",
                         hint="Free memory, or keep some quasi-identifiers as they are (--keep).") from None
    except duckdb.Error as exc:
        raise InputError(f"DuckDB could not count the generalisations of {dataset} ({type(exc).__name__}; its "
                         "message is withheld because it can quote a cell value)") from None


def policy_document(dataset: DatasetVersion, request: Request, optimum: dict[str, Any],
                    today: dt.date) -> dict[str, Any]:
    """The policy for the optimum: default-deny, direct identifiers dropped (the subject pseudonymised), free
    text dropped, the chosen levels, the ``--keep`` and l-diversity columns kept, the gate as searched."""
    columns: dict[str, dict[str, Any]] = {}
    for column in dataset.columns:
        name = column.name
        if name in optimum["levels"]:
            columns[name] = {k: v for k, v in optimum["levels"][name].items() if k != "level"}
        elif name == request.subject and column.cls == "direct":
            columns[name] = {"transform": "pseudonymize"}
        elif column.cls == "direct" or column.free_text:
            columns[name] = {"transform": "drop"}
        elif name in request.keep or name in (request.sensitive, request.subject):
            columns[name] = {"transform": "keep"}
    qis = [c for c, rule in columns.items() if c in optimum["levels"] and rule["transform"] != "drop"]
    privacy: dict[str, Any] = {}
    if qis:
        privacy = {"quasi_identifiers": qis, "k_anonymity": request.k, "max_suppression": request.max_suppression}
        if request.sensitive:
            privacy["l_diversity"] = {"sensitive": request.sensitive, "l": request.l}
    if request.subject:
        privacy["subject"] = request.subject
    return {
        "policy": f"{dataset.name[:MAX_NAME_STEM]}-suggested", "version": 1,
        "description": f"Suggested for {dataset.name} v{dataset.version}: k={request.k}"
                       + (f", l={request.l} on {request.sensitive}" if request.sensitive else "")
                       + f", at most {request.max_suppression:.1%} suppressed, loss {optimum['loss']:.3f}",
        "applies_to": [dataset.name],
        "purposes": list(request.purposes) or [PLACEHOLDER_PURPOSE],
        "recipients": list(request.recipients) or [PLACEHOLDER_RECIPIENT],
        "expires": today + dt.timedelta(days=VALID_DAYS),
        "columns": columns,
        "privacy": privacy,
    }


def policy_text(dataset: DatasetVersion, request: Request, optimum: dict[str, Any], today: dt.date) -> str:
    """The policy document as YAML, with a header saying where it came from and what to review."""
    # deferred: PyYAML is needed only when a policy is written
    import yaml

    header = [
        f"# Suggested by `datashare policy suggest` for {dataset.name} v{dataset.version} on {today.isoformat()}.",
        "# Columns it does not name are dropped. Review the purposes and recipients before approval.",
    ]
    body = yaml.safe_dump(policy_document(dataset, request, optimum, today), sort_keys=False, allow_unicode=True,
                          default_flow_style=None, width=120)
    return "\n".join(header) + "\n" + body
