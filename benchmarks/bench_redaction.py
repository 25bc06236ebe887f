"""Free-text redaction, measured: leaks of the row's own identifiers, of planted third parties, false redactions
of clean text, and the export's time beside a raw DuckDB COPY of the same table, in the same run.

The notes are generated from datashare.fakedata's patients (same seed, same people) with a dense note instead
of the default one: most rows carry several of the row's own identifiers and one or two third parties', in the
spellings of issue "free text that leaks nothing" (given name first, lower case, "Mr. Chan", spaced Chinese
names, HKIDs without check digit or with a dot, phones in pairs or with a slash, e-mails written [at] or
"at ... dot", addresses, dates of birth). What was planted is kept in columns the export drops.

Usage: python benchmarks/bench_redaction.py [--rows 1000000] [--sample 20000] [--big]   (--big adds 10M rows)
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datashare.catalog.store import register  # noqa: E402
from datashare.core.sql import sql_string_literal  # noqa: E402
from datashare.export.run import export  # noqa: E402
from datashare.fakedata import GIVEN, SURNAMES, patients_query  # noqa: E402
from datashare.governance.approvals import approve  # noqa: E402
from datashare.init import initialise  # noqa: E402
from datashare.policy.dialects import DUCKDB  # noqa: E402
from datashare.redaction import sql_compact  # noqa: E402

PASSPHRASE = "bench passphrase"
CLEAN = (ROOT / "tests" / "fixtures" / "clean_notes.txt").read_text(encoding="utf-8").splitlines()
RARE = (("KUNG", "功"), ("SIN", "冼"), ("SHE", "佘"), ("KUNG-SUN", "公孫"))
POLICY = """policy: notes-bench
version: 1
applies_to: [notes]
purposes: [research]
recipients: [uni]
columns:
  diagnosis: {transform: keep}
  admission_date: {transform: generalize, to: month}
  hba1c: {transform: round, digits: 0}
  note: {transform: redact_identifiers}
waivers:
  admission_date: a benchmark of free text, not of the gate
"""


def _list(values) -> str:
    return "[" + ", ".join(sql_string_literal(v) for v in values) + "]"


def _pick(values, salt: str) -> str:
    return f"{_list(values)}[1 + CAST(hash(pid, {sql_string_literal(salt)}) % {len(values)} AS BIGINT)]"


def dense_notes_query(rows: int, seed: int) -> str:
    """fakedata's patients with a dense ``note`` and the planted third-party values in ``tp_*`` columns."""
    surnames = SURNAMES + RARE
    t = "(upper(left(s, 1)) || lower(substr(s, 2)))"
    tt = "(upper(left(ts, 1)) || lower(substr(ts, 2)))"
    own_name = _pick_sql("own_name", [
        "name_en", f"{t} || ' ' || g1 || ' ' || g2", "lower(name_en)", f"g1 || ' ' || g2 || ' ' || {t}",
        f"{t} || ', ' || g1 || '-' || lower(g2)", f"'Mr. ' || {t}", "name_zh",
        "array_to_string(string_split(name_zh, ''), ' ')", "substr(name_zh, 2)", "g1 || ' ' || g2 || ' ' || s"])
    own_hkid = _pick_sql("own_hkid", [
        "core || '(' || chk || ')'", "core", "lower(core || chk)", "core || '.' || chk",
        "'[' || core || '(' || chk || ')]'",
        "left(core, length(core) - 6) || ' ' || substr(right(core, 6), 1, 3) || ' ' || right(core, 3) || ' (' "
        "|| chk || ')'"])
    own_phone = _pick_sql("own_phone", [
        "substr(p8, 1, 2) || ' ' || substr(p8, 3, 2) || ' ' || substr(p8, 5, 2) || ' ' || substr(p8, 7, 2)",
        "left(p8, 4) || '/' || right(p8, 4)", "left(p8, 4) || ' ' || right(p8, 4)", "p8", "'+852 ' || p8"])
    own_email = _pick_sql("own_email", [
        "email", "replace(email, '@', '[at]')",
        "split_part(email, '@', 1) || ' at ' || replace(split_part(email, '@', 2), '.', ' dot ')"])
    own_other = _pick_sql("own_other", [
        "'DOB ' || strftime(dob, '%Y-%m-%d')", "regexp_replace(address, '(,[^,]*){2}$', '')", "patient_id"])
    tp_name = _pick_sql("tp_name", [
        "ts || ' ' || tg1 || ' ' || tg2", f"{tt} || ' ' || tg1 || ' ' || tg2",
        f"tg1 || ' ' || tg2 || ' ' || {tt}", "lower(ts || ' ' || tg1 || ' ' || tg2)",
        "tz", "array_to_string(string_split(tz, ''), ' ')"])
    tp_number = _pick_sql("tp_number", [
        "tp_letter || tp_digits || '(' || tp_check || ')'", "tp_letter || tp_digits",
        "tp_letter || tp_digits || '.' || tp_check", "'[' || tp_letter || tp_digits || '(' || tp_check || ')]'",
        "substr(tp_phone, 1, 2) || ' ' || substr(tp_phone, 3, 2) || ' ' || substr(tp_phone, 5, 2) || ' ' || "
        "substr(tp_phone, 7, 2)", "left(tp_phone, 4) || '/' || right(tp_phone, 4)", "tp_phone",
        "lower(tg1 || tg2) || '[at]' || 'yahoo.com.hk'", "lower(tg1) || ' at netvigator dot com'",
        "'Flat ' || tp_flat || ', ' || tp_floor || '/F, Block 4, Yiu Tung Estate'",
        "'石硤尾邨' || tp_block || '座' || tp_floor || '樓'", "'DOB ' || tp_date"])
    filler = _pick_sql("filler", [sql_string_literal(c) for c in CLEAN[:60]])
    return f"""
WITH base AS (SELECT row_number() OVER () AS pid, * FROM ({patients_query(rows, seed)})),
parts AS (
    SELECT *, split_part(name_en, ' ', 1) AS s, split_part(name_en, ' ', 2) AS g1, split_part(name_en, ' ', 3) AS g2,
        left(upper(regexp_replace(hkid, '[^A-Za-z0-9]', '', 'g')), -1) AS core,
        right(upper(regexp_replace(hkid, '[^A-Za-z0-9]', '', 'g')), 1) AS chk,
        right(regexp_replace(phone, '[^0-9]', '', 'g'), 8) AS p8,
        {_pick([s for s, _ in surnames], 'ts')} AS ts, {_pick([z for _, z in surnames], 'ts')} AS tsz,
        {_pick([g for g, _ in GIVEN], 'tg1')} AS tg1, {_pick([g for g, _ in GIVEN], 'tg2')} AS tg2,
        {_pick([z for _, z in GIVEN], 'tg1')} AS tz1, {_pick([z for _, z in GIVEN], 'tg2')} AS tz2,
        {_pick(list('ACDEGHKPZ'), 'tl')} AS tp_letter,
        lpad(CAST(hash(pid, 'td') % 1000000 AS VARCHAR), 6, '0') AS tp_digits,
        CAST(hash(pid, 'tc') % 10 AS VARCHAR) AS tp_check,
        {_pick(list('235679'), 'tp1')} || lpad(CAST(hash(pid, 'tp') % 10000000 AS VARCHAR), 7, '0') AS tp_phone,
        CAST(1 + hash(pid, 'tf') % 40 AS VARCHAR) AS tp_floor, CAST(1 + hash(pid, 'tb') % 9 AS VARCHAR) AS tp_block,
        CAST(1 + hash(pid, 'tfl') % 24 AS VARCHAR) || 'A' AS tp_flat,
        strftime(DATE '1930-01-01' + CAST(hash(pid, 'tdt') % 25000 AS INTEGER), '%Y-%m-%d') AS tp_date
    FROM base
), named AS (SELECT *, tsz || tz1 || tz2 AS tz FROM parts)
SELECT * EXCLUDE (pid, s, g1, g2, core, chk, p8, tsz, tz1, tz2, tp_letter, tp_digits, tp_check, tp_phone, tp_floor,
                  tp_block, tp_flat, tp_date, note, tz, ts, tg1, tg2),
    CASE WHEN hash(pid, 'clean') % 10 = 0 THEN {filler}
         ELSE concat_ws(' ', {filler}, 'Pt ' || {own_name} || '.', coalesce({own_hkid}, ''), 'tel ' || {own_phone},
                        coalesce({own_email}, ''), {own_other} || ';', 'friend ' || {tp_name}, {tp_number} || '.')
    END AS note,
    CASE WHEN hash(pid, 'clean') % 10 = 0 THEN NULL ELSE {tp_name} END AS tp_name_written,
    CASE WHEN hash(pid, 'clean') % 10 = 0 THEN NULL ELSE {tp_number} END AS tp_number_written
FROM named
"""


def _pick_sql(salt: str, expressions: list[str]) -> str:
    """SQL choosing one of ``expressions`` per row by a hash of the row."""
    whens = " ".join(f"WHEN {k} THEN {e}" for k, e in enumerate(expressions))
    return f"(CASE hash(pid, {sql_string_literal(salt)}) % {len(expressions)} {whens} END)"


def compact(text: str | None) -> str:
    return re.sub(r"[^a-z0-9\u3400-\u9fff]", "", unicodedata.normalize("NFKC", text or "").lower())


def own_values(row: dict) -> list[str]:
    """What of the row's own identifiers must not be found in its note (compacted), and its English surname."""
    hk = compact(row["hkid"])[:-1] if row["hkid"] else ""
    name_zh = row["name_zh"] or ""
    s, *given = (row["name_en"] or "").split()
    values = [hk, compact(row["phone"])[-8:], compact((row["email"] or "").split("@")[0]), compact(row["name_en"]),
              compact("".join(given)), name_zh, name_zh[1:], row["dob"].strftime("%Y%m%d"), compact(row["patient_id"])]
    return [v for v in values if len(v) >= 2]


def accuracy(data: Path, sample: int) -> list[tuple[str, str]]:
    """Leak rates of the row's own identifiers and of planted third parties, and false redactions of clean text."""
    with tempfile.TemporaryDirectory() as tmp:
        ws, actor, policy = _workspace(Path(tmp), data, sample)
        out = Path(tmp) / "out"
        export(ws, actor, "notes", policy, out, purpose="research", recipient="uni", passphrase=PASSPHRASE)
        with ws.connect(read_only=True) as con:
            from datashare.catalog.store import resolve
            from datashare.export.plan import install_keys, prepare
            from datashare.governance.keys import unlock_secret
            from datashare.policy.model import load_policy

            compiled = prepare(load_policy(policy), resolve(con, "notes", None))
            install_keys(con, unlock_secret(ws, actor, PASSPHRASE), "uni")
            note_sql = next(p.sql for p in compiled.plan if p.column == "note")
            source = compiled.export_sql.split("), transformed AS")[0] + ")"
            cursor = con.execute(f"{source} SELECT *, {note_sql} AS redacted FROM source")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    own_leaks = third_leaks = planted = 0
    for row in rows:
        body = compact(row["redacted"])
        words = re.split(r"[^a-z]+", unicodedata.normalize("NFKC", row["redacted"] or "").lower())
        surname = (row["name_en"] or "x").split()[0].lower()
        if any(v in body for v in own_values(row)) or surname in words:
            own_leaks += 1
        if row["tp_name_written"] is not None:
            planted += 1
            if compact(row["tp_name_written"]) in body or compact(row["tp_number_written"]) in body:
                third_leaks += 1
    con = duckdb.connect()
    from datashare.redaction import sql_redact_text

    redacted = f"SELECT {sql_redact_text('x', d=DUCKDB)} FROM unnest(?::VARCHAR[]) t(x)"
    changed = sum(1 for (line,) in con.execute(redacted, [CLEAN]).fetchall() if line not in CLEAN)
    return [("notes checked", f"{len(rows):,}"),
            ("own-identifier leak rate", f"{own_leaks}/{len(rows)} notes"),
            ("planted third-party leak rate", f"{third_leaks}/{planted} notes"),
            ("false redactions, clean corpus", f"{changed}/{len(CLEAN)} sentences changed")]


def _workspace(tmp: Path, data: Path, rows: int | None):
    ws = initialise(tmp / "ws", None, passphrase=PASSPHRASE, ask=False, kdf_rounds=1).workspace
    actor = ws.config()["created_by"]
    source = data
    if rows is not None:
        source = tmp / "sample.parquet"
        duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet('{data}') LIMIT {rows}) TO '{source}' "
                                 "(FORMAT parquet)")
    register(ws, source, "notes", actor=actor)
    policy = tmp / "notes.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    approve(ws, actor, policy, passphrase=PASSPHRASE)
    return ws, actor, policy


def speed(data: Path) -> tuple[float, float, float, float, float]:
    """Seconds for the export (redaction, leak guard, gate, signature) and for a raw COPY of the same catalog
    table: elapsed, and CPU time of this process (all its threads), which other work on the machine disturbs less.
    Last, the CPU time of one piece of the export alone: the leak guard compacting every note (lower case, no
    spaces or punctuation), a floor under any design that checks the output that way."""
    with tempfile.TemporaryDirectory() as tmp:
        ws, actor, policy = _workspace(Path(tmp), data, None)
        start, cpu = time.perf_counter(), time.process_time()
        export(ws, actor, "notes", policy, Path(tmp) / "out", purpose="research", recipient="uni",
               passphrase=PASSPHRASE)
        ours, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
        with ws.connect(read_only=True) as con:
            table = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'data'"
                                ).fetchone()[0]
            start, cpu = time.perf_counter(), time.process_time()
            con.execute(f"COPY (SELECT * FROM data.\"{table}\") TO '{tmp}/raw.parquet' "
                        "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)")
            raw, raw_cpu = time.perf_counter() - start, time.process_time() - cpu
            cpu = time.process_time()
            con.execute(f"SELECT sum(strlen({sql_compact('note', DUCKDB)})) FROM data.\"{table}\"").fetchall()
            compacting_cpu = time.process_time() - cpu
    return ours, raw, ours_cpu, raw_cpu, compacting_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--big", action="store_true", help="add 10M rows")
    args = parser.parse_args()
    sizes = args.rows + ([10_000_000] if args.big else [])
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "dense.parquet"
        duckdb.connect().execute(f"COPY ({dense_notes_query(max(sizes + [args.sample]), 7)}) TO '{data}' "
                                 "(FORMAT parquet)")
        print("\nfree-text redaction on identifier-dense notes (targets: own leaks 0, third parties < 1 in 10,000)")
        for what, value in accuracy(data, args.sample):
            print(f"{what:34} {value}")
        print("\nexport of identifier-dense notes vs raw COPY (targets: 1M <= 3x, 10M <= 2x)")
        print(f"{'rows':>10}  {'export':>8}  {'raw COPY':>8}  ratio    CPU: {'export':>8}  {'raw COPY':>8}  ratio")
        for rows in sizes:
            sized = Path(tmp) / f"dense-{rows}.parquet"
            duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet('{data}') LIMIT {rows}) TO '{sized}' "
                                     "(FORMAT parquet)")
            ours, raw, ours_cpu, raw_cpu, compacting_cpu = speed(sized)
            print(f"{rows:>10,}  {ours:>7.2f}s  {raw:>7.2f}s  {ours / raw:5.2f}x       {ours_cpu:>7.2f}s  "
                  f"{raw_cpu:>7.2f}s  {ours_cpu / raw_cpu:5.2f}x", flush=True)
            print(f"{'':>10}  the leak guard's compaction of the notes alone: {compacting_cpu:.2f}s CPU, "
                  f"{compacting_cpu / raw_cpu:.2f}x the raw COPY's", flush=True)


if __name__ == "__main__":
    main()
