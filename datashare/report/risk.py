"""The risk report: ``datashare risk``'s figures for a committee, as one self-contained HTML page.

It shows what ``risk`` shows to the same person and nothing more: the figures
come from :func:`datashare.export.risk` with its lockdown (an analyst needs an
approved policy, counts below k read ``<k``, counts that would give one back
read ``withheld``), and the access is one audit entry, ``report.risk``, with
the policy, the filter's text, the file written and its SHA-256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datashare import __version__
from datashare.audit.log import audited
from datashare.catalog.store import resolve
from datashare.errors import InputError
from datashare.export.privacy import risk
from datashare.policy.model import load_policy
from datashare.report.html import Bar, bar_rows, check_out, publish, render
from datashare.workspace import Workspace, utc_now

SECTIONS = ["summary", "class_sizes", "suppression", "drivers", "risks", "l_diversity"]
MAX_SIZE_BARS = 24  # class sizes drawn one bar each; larger sizes share the last bar


def risk_report(ws: Workspace, actor: str, policy_path: Path, dataset: str, out: Path,
                version: int | None = None, *, passphrase: str | None = None,
                population_fraction: float = 1.0) -> dict[str, Any]:
    """Measure the risk of ``dataset`` under the policy and write the report to ``out``; what was written, and
    the privacy gate's decision (``gate``)."""
    out = check_out(out)
    with audited(ws, "report.risk", actor, dataset=dataset, output=str(out.absolute())) as record:
        figures = risk(ws, actor, policy_path, dataset, version, passphrase=passphrase,
                       population_fraction=population_fraction, record=record)
        with ws.connect(read_only=True) as con:
            resolved = resolve(con, dataset, figures["dataset_version"])
        loaded = load_policy(policy_path)
        if loaded.sha256 != record.target.get("policy_sha256"):  # the figures must be this file's
            raise InputError(f"the policy file {policy_path} changed while the report was made; run it again")
        page = render("risk.html.j2", r=figures, generated=utc_now(), datashare_version=__version__,
                      source={"sha256": resolved.source_sha256, "rows": resolved.rows,
                              "registered_at": resolved.registered_at},
                      policy={"name": loaded.name, "version": loaded.version, "sha256": loaded.sha256,
                              "max_suppression": loaded.policy.privacy.max_suppression,
                              "where": loaded.policy.rows.where},
                      sizes=bar_rows(size_bars(figures["class_sizes"], figures["k"])),
                      suppression=suppression_bars(figures), drivers=bar_rows(driver_bars(figures)),
                      prosecutor=bar_rows(prosecutor_bars(figures), scale=1.0), risks=RISKS)
        written = publish(record, out, page, SECTIONS)
    return {**written, "gate": figures["gate"]}


def size_bars(buckets: list[dict[str, Any]], k: int) -> list[Bar]:
    """Records per class size; sizes past :data:`MAX_SIZE_BARS` share one bar (withheld if any of them is)."""
    shown, rest = buckets[:MAX_SIZE_BARS - 1], buckets[MAX_SIZE_BARS - 1:]
    bars = [_bucket_bar(str(b["class_size"]), b["records"], b["class_size"] < k) for b in shown]
    if len(rest) == 1:
        bars.append(_bucket_bar(str(rest[0]["class_size"]), rest[0]["records"], False))
    elif rest:
        records = [b["records"] for b in rest]
        total = sum(records) if all(isinstance(r, int) for r in records) else "withheld"
        bars.append(_bucket_bar(f"{rest[0]['class_size']}–{rest[-1]['class_size']}", total, False))
    return bars


def _bucket_bar(label: str, records: int | str, small: bool) -> Bar:
    text = f"{records:,} records" if isinstance(records, int) else f"records: {records}"
    return Bar(label + (" (below k)" if small else ""), records if isinstance(records, int) else None, text)


def suppression_bars(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows kept and suppressed by the gate, as shares of the records (withheld shares have no bar)."""
    share = figures["share_suppressed"]
    kept = 1 - share if isinstance(share, float) else None
    return bar_rows([
        Bar("rows kept", kept, f"{kept:.1%}" if kept is not None else "withheld"),
        Bar("rows suppressed", share if isinstance(share, float) else None,
            _bounded(share, figures["rows_suppressed"])),
    ], scale=1.0)


def driver_bars(figures: dict[str, Any]) -> list[Bar]:
    """The records in classes below k as the policy stands, then with each quasi-identifier removed or coarsened
    one level (``risk``'s drivers); a figure ``risk`` gives as ``<k`` or a band is text without a bar."""
    if not figures.get("drivers"):
        return []
    bars = [_records_bar("as the policy stands", figures["records_below_k"])]
    for driver in figures["drivers"]:
        change = "removed" if driver["to"] is None else f"coarsened {driver['to']}"
        bars.append(_records_bar(f"{driver['quasi_identifier']} {change}", driver["records_below_k"]))
    return bars


def _records_bar(label: str, records: int | str) -> Bar:
    return Bar(label, records if isinstance(records, int) else None,
               f"{records:,} records" if isinstance(records, int) else f"records: {records}")


RISKS = (("largest prosecutor", "max_prosecutor_risk"), ("average prosecutor", "avg_prosecutor_risk"),
         ("largest journalist", "max_journalist_risk"), ("marketer", "marketer_risk"))


def prosecutor_bars(figures: dict[str, Any]) -> list[Bar]:
    """The largest and the average prosecutor risk (1 / class size), and the journalist and marketer risks where
    ``risk`` gives them, on a scale of 0 to 1."""
    bars = []
    for label, value in ((label, figures[name]) for label, name in RISKS if name in figures):
        if isinstance(value, float):
            bars.append(Bar(label, value, f"{value:.3f}"))
        elif isinstance(value, str):  # ">0.2": more than 1/k, the exact figure withheld
            bars.append(Bar(label, float(value[1:]), f"{value} (a class below k)"))
        else:
            bars.append(Bar(label, None, "withheld"))
    return bars


def _bounded(share: Any, count: Any) -> str:
    """A share with its count: ``12.0% (92 records)``, ``<0.66% (<5 records)`` or ``withheld``."""
    if isinstance(share, float):
        return f"{share:.1%} ({count:,} records)" if isinstance(count, int) else f"{share:.1%}"
    if isinstance(share, str):
        return f"{share[0]}{float(share[1:]):.2%} ({count} records)"
    return "withheld" if count is None or count == "withheld" else f"{count} records"
