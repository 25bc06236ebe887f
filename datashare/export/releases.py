"""The release ledger: what each export released, and the check of a new export against earlier ones.

Every export adds one JSON line to ``releases.jsonl`` in the workspace (the
whole file rewritten atomically under the workspace lock): the recipient (or
link group), the dataset and version, the policy and version, the subject
column, the quasi-identifiers *as released* (column, transform and options),
and the summary of the release's equivalence classes.

Two releases of one dataset under the same keys (the same recipient, or the
same link group) can be joined on their pseudonyms and shifted dates. Before a
new export, the union of the quasi-identifiers of each such earlier release
and the new one must still meet the stricter k (and l) of the two, counted in
people over the dataset's rows less the subjects the new export suppresses;
otherwise the export is refused, naming the earlier release, unless a
custodian accepts the linkage with a reason (logged, and in the manifest).
"""

from __future__ import annotations

import json
from typing import Any

from datashare.audit.log import audited
from datashare.core.fs import atomic_write_text
from datashare.core.sql import quote_ident
from datashare.errors import RefusedError, WorkspaceError
from datashare.permissions import CUSTODIAN, roles_of
from datashare.policy.compiler import CLASS_SIZE, CLASSES_TABLE, SUBJECT, SUPPRESSED_TABLE, ColumnPlan, CompiledPolicy
from datashare.policy.model import LoadedPolicy
from datashare.policy.transforms import TRANSFORMS, validate_params
from datashare.workspace import FILE_MODE, LEDGER_FILE, Workspace

UNION_PREFIX = "__ds_union_"  # the columns of the union check
# Transforms whose output is the same for one person in two releases under the same keys: the join keys.
LINKING_TRANSFORMS = ("pseudonymize", "date_shift", "keep")


def _ledger_path(ws: Workspace):  # noqa: ANN202
    return ws.home / LEDGER_FILE


def read_ledger(ws: Workspace) -> list[dict[str, Any]]:
    """Every release recorded in the workspace, oldest first."""
    path = _ledger_path(ws)
    if not path.exists():
        return []
    releases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            releases.append(json.loads(line))
        except json.JSONDecodeError:
            raise WorkspaceError(f"{path} line {number} is not valid JSON: the release ledger is damaged",
                                 hint="Restore it from a backup; the audit log lists every export.") from None
    return releases


def append_release(ws: Workspace, release: dict[str, Any]) -> dict[str, Any]:
    """Add ``release`` to the ledger (under the lock, atomically), giving it the next id."""
    with ws.lock():
        releases = read_ledger(ws)
        release = {"id": f"R{len(releases) + 1}", **release}
        lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in [*releases, release]]
        atomic_write_text(_ledger_path(ws), "\n".join(lines) + "\n", mode=FILE_MODE)
    return release


def list_releases(ws: Workspace, actor: str, recipient: str | None = None) -> list[dict[str, Any]]:
    """The ledger (of one recipient, or link group, when given); logged like every read."""
    with audited(ws, "releases", actor, recipient=recipient) as record:
        releases = [r for r in read_ledger(ws)
                    if recipient is None or recipient in (r.get("recipient"), r.get("link_group"))]
        record.ok(count=len(releases))
    return releases


def _spec(plan: ColumnPlan) -> dict[str, Any]:
    data = plan.to_dict()
    return {"column": data["column"], "transform": data["transform"], "params": data["params"]}


def release_record(loaded: LoadedPolicy, compiled: CompiledPolicy, stats: dict[str, Any], classes: dict[str, Any],
                   *, recipient: str, dataset: str, version: int, actor: str, time: str,
                   accepted_linkage: str | None) -> dict[str, Any]:
    """The ledger's entry for an export (cell values never: names, transforms, counts)."""
    by_column = {p.column: p for p in compiled.plan if p.sql is not None}
    return {
        "time": time, "actor": actor, "recipient": recipient, "link_group": loaded.link_group,
        "dataset": dataset, "dataset_version": version,
        "policy": loaded.name, "policy_version": loaded.version, "policy_sha256": loaded.sha256,
        "subject": compiled.subject, "k_unit": compiled.k_unit,
        "quasi_identifiers": [_spec(by_column[q]) for q in compiled.quasi_identifiers],
        "sensitive": _spec(by_column[compiled.sensitive]) if compiled.sensitive else None,
        "linking_columns": sorted(p.column for p in by_column.values() if p.transform in LINKING_TRANSFORMS),
        "k_required": compiled.k, "l_required": compiled.l if compiled.sensitive else None,
        "classes": {**classes, "k_measured": stats["k"], "l_measured": stats["l"], "rows_out": stats["rows_out"],
                    "people_out": stats["people_out"]},
        "accepted_linkage": accepted_linkage,
    }


def class_summary(con: Any) -> dict[str, Any]:
    """The summary of the released classes: how many, and their sizes (from ``ds_classes`` after suppression)."""
    count, smallest, largest = con.execute(
        f"SELECT count(*), min({CLASS_SIZE}), max({CLASS_SIZE}) FROM {CLASSES_TABLE}").fetchone()
    return {"count": count, "smallest": smallest, "largest": largest}


def joinable(earlier: dict[str, Any], *, recipient: str, dataset: str, group: str | None,
             linking: set[str]) -> bool:
    """Whether an earlier release and this export share keys and a column that joins them."""
    if earlier.get("dataset") != dataset:
        return False
    same_keys = earlier.get("link_group") == group if group is not None else \
        (earlier.get("link_group") is None and earlier.get("recipient") == recipient)
    return same_keys and bool(linking & set(earlier.get("linking_columns") or []))


def _expression(spec: dict[str, Any], types: dict[str, str], release: str) -> str:
    """The SQL of a released column from the ledger, its options checked again (the ledger is a file)."""
    column, transform = spec.get("column"), spec.get("transform")
    if column not in types or transform not in TRANSFORMS or TRANSFORMS[transform].build is None:
        raise RefusedError(f"cannot check this export against release {release}: its column {column!r} "
                           f"({transform}) cannot be rebuilt on this dataset version",
                           hint="A custodian can accept the linkage with --accept-linkage \"reason\".")
    params, problems = validate_params(transform, dict(spec.get("params") or {}))
    if problems:
        raise RefusedError(f"cannot check this export against release {release}: the ledger's options of "
                           f"{column!r} are not valid")
    return TRANSFORMS[transform].build(quote_ident(column), params)


def union_measures(con: Any, compiled: CompiledPolicy, table: str, types: dict[str, str],
                   specs: list[dict[str, Any]], sensitive: dict[str, Any] | None, release: str) -> tuple[Any, Any]:
    """(k, l) over the union of quasi-identifiers, over the rows this export releases.

    The released columns are rebuilt from the source values; the rows are
    those of this export: ``rows.where`` on the shifted dates, less the
    suppressed subjects (or, without a subject, the rows of failing classes).
    """
    union = list(dict.fromkeys(_expression(spec, types, release) for spec in specs))
    derived = [f"{sql} AS {quote_ident(f'{UNION_PREFIX}{i}')}" for i, sql in enumerate(union)]
    if sensitive is not None:
        derived.append(f"{_expression(sensitive, types, release)} AS {UNION_PREFIX}sensitive")
    shifted = [p for p in compiled.plan if p.transform == "date_shift" and p.sql is not None]
    replace = (" REPLACE (" + ", ".join(f"{p.sql} AS {quote_ident(p.column)}" for p in shifted) + ")") if shifted \
        else ""
    base = f"SELECT *, {', '.join(derived)} FROM {table}"
    rows = f"SELECT *{replace} FROM ({base})"
    filters = [compiled.where_sql] if compiled.where_sql else []
    if compiled.subject is not None:
        person = f"coalesce(CAST({quote_ident(compiled.subject)} AS VARCHAR), '')"
        filters.append(f"{person} NOT IN (SELECT {SUBJECT} FROM {SUPPRESSED_TABLE})")
        size = f"count(DISTINCT {person})"
    else:
        size = "count(*)"
    released = f"SELECT * FROM ({rows})" + (f" WHERE {' AND '.join(f'({f})' for f in filters)}" if filters else "")
    if compiled.subject is None and compiled.quasi_identifiers:
        # this export's quasi-identifiers, as released, are the first union columns
        on = " AND ".join(f"r.{quote_ident(f'{UNION_PREFIX}{i}')} IS NOT DISTINCT FROM passing.{quote_ident(q)}"
                          for i, q in enumerate(compiled.quasi_identifiers))
        released = f"SELECT * FROM ({released}) AS r SEMI JOIN ({compiled.passing_sql}) AS passing ON {on}"
    groups = ", ".join(quote_ident(f"{UNION_PREFIX}{i}") for i in range(len(union))) or "1"
    diversity = f"count(DISTINCT {UNION_PREFIX}sensitive)" if sensitive is not None else "1"
    return con.execute(f"SELECT min(n), min(d) FROM (SELECT {size} AS n, {diversity} AS d FROM ({released}) "
                       f"GROUP BY {groups})").fetchone()


def check_linkage(con: Any, ws: Workspace, actor: str, loaded: LoadedPolicy, compiled: CompiledPolicy, *,
                  table: str, types: dict[str, str], recipient: str, dataset: str,
                  accept_linkage: str | None) -> list[str]:
    """Refuse (exit 3) an export whose union with an earlier joinable release falls below k or l.

    Returns the ids of the earlier releases it can be joined with. With
    ``accept_linkage`` (custodians only) a failing union is accepted instead.
    """
    if accept_linkage is not None:
        if not accept_linkage.strip():
            raise RefusedError("--accept-linkage needs a reason")
        if CUSTODIAN not in roles_of(ws, actor):
            raise RefusedError(f"{actor} may not accept linkage between releases: it needs the custodian role")
    by_column = {p.column: p for p in compiled.plan if p.sql is not None}
    linking = {c for c, p in by_column.items() if p.transform in LINKING_TRANSFORMS}
    mine = [_spec(by_column[q]) for q in compiled.quasi_identifiers]
    my_sensitive = _spec(by_column[compiled.sensitive]) if compiled.sensitive else None
    linked = []
    for earlier in read_ledger(ws):
        if not joinable(earlier, recipient=recipient, dataset=dataset, group=loaded.link_group, linking=linking):
            continue
        release = str(earlier.get("id"))
        linked.append(release)
        k_needed = max(compiled.k, int(earlier.get("k_required") or 1))
        l_needed = max(compiled.l if compiled.sensitive else 1, int(earlier.get("l_required") or 1))
        sensitive = my_sensitive or earlier.get("sensitive")
        specs = [*mine, *[s for s in earlier.get("quasi_identifiers") or [] if s not in mine]]
        if k_needed <= 1 and l_needed <= 1:
            continue
        try:
            k, l_got = union_measures(con, compiled, table, types, specs, sensitive if l_needed > 1 else None,
                                      release)
        except RefusedError:
            if accept_linkage is None:
                raise
            continue
        if (k is not None and k < k_needed) or (l_got is not None and l_got < l_needed):
            if accept_linkage is not None:
                continue
            columns = ", ".join(dict.fromkeys(str(s.get("column")) for s in specs))
            raise RefusedError(
                f"refused: this export can be joined with release {release} ({earlier.get('policy')} "
                f"v{earlier.get('policy_version')} to {earlier.get('link_group') or earlier.get('recipient')}, "
                f"{earlier.get('time')}), and together their quasi-identifiers ({columns}) give k={k} "
                f"{compiled.k_unit}" + (f" and l={l_got}" if l_needed > 1 else "")
                + f", below the k={k_needed}" + (f" and l={l_needed}" if l_needed > 1 else "") + " required",
                hint="Release the same quasi-identifiers as before, export under another recipient, or have a "
                     "custodian accept the linkage: --accept-linkage \"reason\".")
    return linked
