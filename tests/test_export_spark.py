"""DuckDB against Spark: the same policy gives the same rows, column by column, and the same gate.

One Spark session (local[2]) serves the whole run (the ``spark`` fixture); each test batches its checks into few
queries. Select them with ``-m spark``; they run in the normal test command too.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from datashare import catalog, governance, identifiers, redaction
from datashare.core.sql import quote_ident
from datashare.export.leakscan import LeakFoundError
from datashare.export.run import export
from datashare.export.spark import (
    DRIVER_OPTIONS,
    QUIET_LOGGING,
    SOURCE_VIEW,
    SparkOptions,
    install_spark_keys,
    register_source,
    session_conf,
)
from datashare.init import init_workspace
from datashare.policy.dialects import DUCKDB, SPARK
from datashare.policy.keys import KEY_NAMES, key_parameters
from datashare.policy.model import load_policy
from datashare.policy.transforms import TRANSFORMS, validate_params

from .conftest import PROJECT_ROOT, SAMPLE_CSV, TEST_KDF_ROUNDS, TEST_PASSPHRASE, run_cli

pytestmark = pytest.mark.spark

ACTOR = pwd.getpwuid(os.geteuid()).pw_name  # the OS account, so the CLI acts as the workspace's custodian
RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"

# Rows that trip engines up: CJK next to Latin names, combining marks, \v, İ, emoji, NULLs, Feb 29 birthdays,
# future dates, halves for rounding.
AWKWARD = [
    {"id": "A1", "name": "陳大文", "dob": "2000-02-29", "adm": "2024-02-29",
     "district": " Central and Western District ", "value": 0.125, "amount": 12.5, "score": 7, "code": "E11.9",
     "label": "ÉCLAIR", "category": "x",
     "note": "陳大文CHAN Tai Man came with Dr WONG; call 9123 4567. 陳 大 文 said 大文Tai Man; 陈大文, 陳太"},
    {"id": "A2", "name": "CHAN Tai Man", "dob": "2004-02-29", "adm": "2023-12-31", "district": "İslands",
     "value": 2.675, "amount": -0.5, "score": 95, "code": "I10", "label": "ab", "category": "y",
     "note": "İstanbul trip; WONG Siu Ming 😀CHAN Tai Man😀 e\u0301 LEE Ka Ho; Ｃｈａｎ Ｔａｉ Ｍａｎ，chan tai man, "
             "Taiman Chan and ChanTai ß Chan ﬁ"},
    {"id": "A3", "name": "Ｃｈａｎ", "dob": "2031-05-05", "adm": "2020-01-01", "district": "sha\vtin",
     "value": 1.005, "amount": 1e16, "score": None, "code": None, "label": None, "category": "x",
     "note": "line\vbreak Mr WONG, HKID Ａ１２３４５６（３） and a.b@example.com 中文CHAN Tai Man"},
    {"id": "A4", "name": None, "dob": None, "adm": None, "district": None, "value": None, "amount": None,
     "score": 0, "code": "C50.1", "label": "😀😀😀", "category": None, "note": None},
    {"id": "A5", "name": "李小明", "dob": "1926-01-01", "adm": "2025-06-30", "district": "沙田",
     "value": -0.125, "amount": 0.1, "score": -3, "code": "J45", "label": "e\u0301e\u0301e\u0301", "category": "x",
     "note": "李小明 called from 91234567 (+852 2345 6789) re: \\1 and $1 — CHAN, TAI-MAN; 李 小 明，小明CHAN"},
    {"id": "A6", "name": "O'Brien", "dob": "1999-03-01", "adm": "2022-03-01", "district": "Kwun Tong",
     "value": -2.5, "amount": 99.99, "score": 50, "code": "E11", "label": "O'Brien", "category": "y",
     "note": "Mrs. LAU saw Prof CHEUNG\u3000at ＱＥＨ; ref A123456(3). O\u2019Brien well; OBrien and Obrien."},
    {"id": "A7", "name": "WONG Siu Ming", "dob": "2024-02-29", "adm": "2024-03-01", "district": "KWUN TONG",
     "value": 12345.675, "amount": 5.0, "score": 12, "code": "Z00", "label": "x", "category": "z",
     "note": "\t\n\v\f\r mixed spaces CHAN Tai Man\u00a0WONG; Siu-ming Wong\u3000ＷＯＮＧ Ｓｉｕ Ｍｉｎｇ, wong"},
    {"id": "A8", "name": "ZHANG Wei", "dob": "1980-12-31", "adm": "2026-01-01", "district": "Tai Po",
     "value": 0.5, "amount": 1e-5, "score": 13, "code": "E11.65", "label": "Zoë", "category": "x",
     "note": "Σ ΣΑΣ ß ﬁ — no names here; tel \u0669\u0661\u0662\u0663\u0664\u0665\u0666\u0667, Z\u00adhang"},
]
AWKWARD_POLICY = {
    "policy": "awkward", "version": 1, "description": "Every transform Spark runs, on awkward rows",
    "applies_to": ["awkward"], "purposes": ["testing"], "recipients": ["lab"], "expires": "2099-12-31",
    "columns": {
        "id": {"transform": "pseudonymize"},
        "name": {"transform": "pseudonymize", "prefix": "p-", "length": 10},
        "dob": {"transform": "generalize", "to": "age_band", "width": 5, "reference": "2024-02-29", "top": 90},
        "adm": {"transform": "date_shift", "max_days": 30, "subject": "id"},
        "district": {"transform": "generalize", "to": "region"},
        "value": {"transform": "round", "digits": 2},
        "amount": {"transform": "generalize", "to": "bins", "width": 10},
        "score": {"transform": "top_code", "at": 50},
        "code": {"transform": "generalize", "to": "prefix", "length": 3},
        "label": {"transform": "mask", "keep_first": 1, "keep_last": 1},
        "category": {"transform": "suppress_rare", "min_count": 2},
        "note": {"transform": "redact_identifiers"},  # the row's own name in its spellings, and third parties'
    },
    "privacy": {"quasi_identifiers": ["district", "dob"], "k_anonymity": 1, "max_suppression": 0.5},
}


@pytest.fixture(scope="module")
def ready(tmp_path_factory):
    """A workspace with the sample and the awkward rows registered and both policies approved."""
    home = tmp_path_factory.mktemp("spark")
    ws = init_workspace(home / "ws", ACTOR)[0]
    governance.create_key(ws, ACTOR, passphrase=TEST_PASSPHRASE, kdf_rounds=TEST_KDF_ROUNDS)
    catalog.register(ws, SAMPLE_CSV, "patients", actor=ACTOR)
    rows = home / "awkward.json"
    rows.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in AWKWARD), encoding="utf-8")
    catalog.register(ws, rows, "awkward", actor=ACTOR)
    catalog.classify(ws, "awkward", {"name": "direct", "note": "other", "label": "other", "adm": "other"}, actor=ACTOR)
    policy = home / "awkward.yaml"
    policy.write_text(yaml.safe_dump(AWKWARD_POLICY, allow_unicode=True), encoding="utf-8")
    for path in (RESEARCH, policy):
        governance.approve(ws, ACTOR, path, passphrase=TEST_PASSPHRASE)
    return ws, home, policy


def columns_of(directory: Path) -> tuple[list[tuple[str, str]], dict[str, list]]:
    """(name, type) of an export's columns, and each column's values as text, rows in one canonical order."""
    files = "[" + ", ".join(f"'{p}'" for p in sorted(directory.glob("*.parquet"))) + "]"
    with duckdb.connect() as con:
        schema = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({files})").fetchall()]
        texts = [f"to_json({quote_ident(name)})" for name, _ in schema]
        rows = con.execute(f"SELECT {', '.join(texts)} FROM read_parquet({files}) ORDER BY ALL").fetchall()
    return schema, {name: [row[i] for row in rows] for i, (name, _) in enumerate(schema)}


def assert_same_columns(duck: Path, spark: Path) -> None:
    duck_schema, duck_values = columns_of(duck)
    spark_schema, spark_values = columns_of(spark)
    assert spark_schema == duck_schema
    for name, _ in duck_schema:
        assert spark_values[name] == duck_values[name], f"column {name} differs between DuckDB and Spark"


def assert_same_gate(duck: dict, spark: dict) -> None:
    assert spark["rows"] == duck["rows"]
    for key in ("k_measured", "l_measured", "people", "k_required", "max_suppression"):
        assert spark["privacy"][key] == duck["privacy"][key], key
    assert spark["content"] == duck["content"]
    assert (spark["engine"], duck["engine"]) == ("spark", "duckdb")


def test_the_research_policy_on_the_sample_gives_the_same_rows_and_gate_on_spark(ready, spark):
    ws, home, _ = ready
    kwargs = {"purpose": "clinical-research", "recipient": "cicor", "passphrase": TEST_PASSPHRASE}
    # The policy as shipped: its free-text note redacted (the row's own identifiers, third parties', the guard).
    duck = export(ws, ACTOR, "patients", RESEARCH, home / "duck", **kwargs)
    on_spark = export(ws, ACTOR, "patients", RESEARCH, home / "on-spark", engine="spark", **kwargs)
    assert duck["rows"]["suppressed"] > 0 and duck["rows"]["out"] > 700  # the gate had work to do
    assert_same_gate(duck, on_spark)
    # The release ledger's check ran on the classes Spark computed: the second export joins the first.
    assert on_spark["privacy"]["linked_releases"] == [duck["privacy"]["release"]]
    assert_same_columns(home / "duck", home / "on-spark")
    data = [f["name"] for f in on_spark["files"] if f["name"].endswith(".parquet")]
    assert data and all(name.startswith("patients.part-") for name in data)
    # A recipient compares the two, whatever their files and row order; and a changed export is told apart.
    result = run_cli("verify", str(home / "on-spark"), "--same-content", str(home / "duck"), "--json",
                     home=ws.home)
    assert result.code == 0, result.stderr
    assert any("same content" in check for check in result.json()["checks"])
    other = run_cli("verify", str(home / "on-spark"), "--same-content", str(home / "missing"), home=ws.home)
    assert other.code == 4


def test_awkward_rows_give_the_same_columns_on_spark_through_the_cli(ready, spark):
    ws, home, policy = ready
    args = ["export", "awkward", "--policy", str(policy), "--purpose", "testing", "--recipient", "lab", "--json"]
    duck = run_cli(*args, "--out", str(home / "awkward-duck"), home=ws.home)
    assert duck.code == 0, duck.stderr
    on_spark = run_cli(*args, "--out", str(home / "awkward-spark"), "--engine", "spark", "--spark-conf",
                       "spark.sql.shuffle.partitions=2", home=ws.home)
    assert on_spark.code == 0, on_spark.stderr
    assert_same_columns(home / "awkward-duck", home / "awkward-spark")
    assert_same_gate(duck.json(), on_spark.json())
    _, values = columns_of(home / "awkward-duck")
    regions = next(v for name, v in values.items() if name.startswith("district"))  # named for what it holds
    assert '"Kowloon"' in regions and '"New Territories"' in regions
    # The row's own name went in every spelling: spaced Chinese, full-width, beside CJK; the guard let it pass.
    notes = "".join(value for value in values["note"] if value)
    assert notes.count("[NAME]") >= 10
    for spelling in ("陳 大 文", "李 小 明", "小明", "Ｃｈａｎ", "Taiman", "Siu-ming", "ＷＯＮＧ", "陈大文", "陳太",
                     "Brien", "hang", "\u0669\u0661\u0662"):
        assert spelling not in notes


def test_a_leak_in_free_text_is_refused_on_spark_with_duckdbs_counts(ready, spark):
    ws, home, _ = ready
    rows = home / "leaky.json"
    leaky_note = "seen: C.H.A.N. T.A.I. M.A.N."  # spelt in a way no redaction spelling takes; the guard must
    rows.write_text(json.dumps({"id": "L1", "name": "CHAN Tai Man", "note": leaky_note}), encoding="utf-8")
    catalog.register(ws, rows, "leaky", actor=ACTOR)
    catalog.classify(ws, "leaky", {"name": "direct", "note": "other"}, actor=ACTOR)
    policy = home / "leaky.yaml"
    leaky = {**AWKWARD_POLICY, "policy": "leaky", "applies_to": ["leaky"], "privacy": {"k_anonymity": 1},
             "columns": {"id": {"transform": "pseudonymize"}, "note": {"transform": "redact_identifiers"}}}
    policy.write_text(yaml.safe_dump(leaky, allow_unicode=True), encoding="utf-8")
    governance.approve(ws, ACTOR, policy, passphrase=TEST_PASSPHRASE)
    kwargs = {"purpose": "testing", "recipient": "lab", "passphrase": TEST_PASSPHRASE}
    counts = {}
    for engine in ("duckdb", "spark"):
        with pytest.raises(LeakFoundError) as refused:
            export(ws, ACTOR, "leaky", policy, home / f"leaky-{engine}", engine=engine, **kwargs)
        counts[engine] = refused.value.counts
        assert not (home / f"leaky-{engine}").exists()
    assert counts["spark"] == counts["duckdb"] == {"NAME": 1}


def test_the_redaction_patterns_replace_the_same_text_on_spark(tmp_path, spark):
    # The regular expressions of free text, rewritten for Java, must mean the same: the third-party patterns and
    # the identifier patterns, on awkward notes (the whole redaction is compared in the exports above).
    notes = [row["note"] for row in AWKWARD] + [
        "陳大文CHAN Tai Man", "王小明Dr WONG", "CHAN Tai Man陳", "x\vCHAN Tai Man\v", "call 9123\v4567 now",
        "Mr\vWONG and Mrs\u2028LEE", "ends with a phone 91234567\n", "İİ WONG Siu Ming İ", "LAU, Ka Ho😀CHEUNG Wai",
        "flat 3 at 12 Nathan Road, Yau Ma Tei", "born 1980-12-31, seen 29/02/2024", "[at] x (AT) y a.b[at]c.com"]
    path = tmp_path / "notes.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT row_number() OVER () AS id, n AS note FROM unnest(?::VARCHAR[]) t(n)) TO '{path}' "
                    "(FORMAT parquet)", [notes])
        duck = con.execute(f"SELECT {sql_patterns(DUCKDB)}, {identifiers.sql_redact_identifiers(NOTE, DUCKDB)} "
                           f"FROM read_parquet('{path}') ORDER BY id").fetchall()
    spark.read.parquet(str(path)).createOrReplaceTempView("notes")
    on_spark = spark.sql(f"SELECT {sql_patterns(SPARK)}, {identifiers.sql_redact_identifiers(NOTE, SPARK)} "
                         "FROM notes ORDER BY id").collect()
    assert [tuple(row) for row in on_spark] == duck
    assert sum(1 for (a, _), b in zip(duck, notes, strict=True) if a != b) >= len(notes) // 2  # they did work


NOTE = "note"  # a plain name: the same identifier in both dialects


def sql_patterns(d) -> str:
    return redaction._sql_pattern_pass(d.text(NOTE), redaction.THIRD_PARTY_PATTERNS, d)


def _grid(con: duckdb.DuckDBPyConnection, path: Path, query: str) -> None:
    con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)")


def test_age_band_round_and_bins_grids_are_the_same_on_spark(tmp_path, spark):
    dates, numbers = tmp_path / "dates.parquet", tmp_path / "numbers.parquet"
    with duckdb.connect() as con:
        _grid(con, dates, "SELECT row_number() OVER () AS id, CAST(d AS DATE) AS d FROM ("
                          "SELECT d FROM range(DATE '1995-01-01', DATE '2032-01-01', INTERVAL 1 DAY) AS t(d) "
                          "UNION ALL SELECT NULL)")
        _grid(con, numbers, "SELECT row_number() OVER () AS id, x, "
                            "CASE WHEN abs(x) < 1e12 THEN CAST(x * 200 AS BIGINT) END AS i FROM ("
                            "SELECT n / 200.0 AS x FROM range(-4000, 4001) AS t(n) UNION ALL "
                            "SELECT unnest([1.005, 2.675, 8.345, 123456.785, -0.125, 1e15 + 0.5, 4503599627370497.0, "
                            "0.49999999999999994, 1e-5, 1e16, 1e21, -1e-7, NULL]))")
    expressions = {"dates": [], "numbers": []}
    for reference in ("2024-02-29", "2026-01-01", "2023-03-01"):
        for width, top in ((1, None), (5, 90), (20, None)):
            params = {"to": "age_band", "width": width, "reference": reference, **({"top": top} if top else {})}
            expressions["dates"].append(("generalize", params, '"d"'))
    for unit in ("week", "month", "quarter", "year"):
        expressions["dates"].append(("generalize", {"to": unit}, '"d"'))
    for digits in (-2, -1, 0, 1, 2, 3):
        expressions["numbers"].append(("round", {"digits": digits}, '"x"'))
        expressions["numbers"].append(("round", {"digits": digits}, '"i"'))
    for width in (10, 0.5, 2.5, 1000):
        expressions["numbers"].append(("generalize", {"to": "bins", "width": width}, '"x"'))
    for table, path in (("dates", dates), ("numbers", numbers)):
        types = [("d", "DATE")] if table == "dates" else [("x", "DOUBLE"), ("i", "BIGINT")]
        built = {}
        for dialect in (DUCKDB, SPARK):
            d = dialect.for_columns(types)
            sqls = []
            for name, given, column in expressions[table]:
                params, problems = validate_params(name, given)
                assert problems == []
                column = column if dialect is DUCKDB else d.ident(column.strip('"'))
                sqls.append(TRANSFORMS[name].build(column, params, d))
            built[dialect.name] = sqls
        with duckdb.connect() as con:
            duck = con.execute(f"SELECT {', '.join(built['duckdb'])} FROM read_parquet('{path}') ORDER BY id")\
                .fetchall()
        spark.read.parquet(str(path)).createOrReplaceTempView("grid")
        on_spark = [tuple(row) for row in spark.sql(f"SELECT {', '.join(built['spark'])} FROM grid ORDER BY id")
                    .collect()]
        assert len(on_spark) == len(duck) > 1000
        for position, (name, params, column) in enumerate(expressions[table]):
            mismatched = [(a[position], b[position]) for a, b in zip(duck, on_spark, strict=True)
                          if a[position] != b[position]]
            assert mismatched == [], f"{name} {params} on {column}: {mismatched[:3]}"
    assert dt.date(2000, 2, 29)  # the grid spans Feb 29 birthdays and dates after the reference (negative ages)


def test_the_keys_reach_spark_as_bound_bytes_never_in_sql_or_a_plan(tmp_path, spark, capsys):
    keys = key_parameters(b"k" * 32, "cicor", "patients")
    source = tmp_path / "source.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_csv('{SAMPLE_CSV}') LIMIT 50) TO '{source}' (FORMAT parquet)")
        columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM '{source}'").fetchall()]
    register_source(spark, source)
    install_spark_keys(spark, keys)
    from datashare.policy.compiler import compile_policy

    research = yaml.safe_load(RESEARCH.read_text(encoding="utf-8"))
    research["columns"]["note"] = {"transform": "drop"}
    (tmp_path / "research.yaml").write_text(yaml.safe_dump(research, allow_unicode=True), encoding="utf-8")
    compiled = compile_policy(load_policy(tmp_path / "research.yaml"), SOURCE_VIEW, columns, dialect=SPARK)
    query = spark.sql(f"{compiled.pipeline_sql}\nSELECT * FROM transformed")
    assert len(query.collect()) > 0  # executed, so the plans below are the ones that ran
    for mode in ("simple", "extended", "codegen", "cost", "formatted"):
        query.explain(mode=mode)
    shown = capsys.readouterr().out + compiled.pipeline_sql
    assert "__ds_key_pseudonym_ipad" in shown  # the plans were printed, keys by their column name
    for name, key in zip(KEY_NAMES, keys, strict=True):
        for spelling in (key.hex(), key.hex().upper(), base64.b64encode(key).decode(), key[:16].hex().upper()):
            assert spelling not in shown, name


QUIET_SESSION = """
from datashare.export.spark import SparkOptions, spark_session
with spark_session(SparkOptions()) as session:
    try:
        session.sql("SELECT CAST(x AS INT) FROM VALUES ('CHAN Tai Man') t(x)").collect()
    except Exception as exc:
        print("failed:", type(exc).__name__)
"""


def test_a_session_datashare_starts_keeps_sparks_log_lines_which_quote_cell_values_off_stderr():
    """Spark logs a failed cast with the value it could not cast, at ERROR, before the error reaches Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    done = subprocess.run([sys.executable, "-c", QUIET_SESSION], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("failed:"), done.stdout + done.stderr
    # No value, and no line of Spark's logging (log4j's lines, PySpark's JSON ones, the log-level banner).
    assert "CHAN" not in done.stderr
    spark_lines = re.compile(r'^(\d\d/\d\d/\d\d \d\d:\d\d:\d\d |\{"ts"|.*log4j|.*log level)', re.IGNORECASE)
    assert [line for line in done.stderr.splitlines() if spark_lines.match(line)] == []


def test_driver_options_given_with_spark_conf_keep_the_quiet_logging_first():
    """A later -D of the same name wins in Java: a configuration file of the user's own turns logging back on."""
    assert session_conf(SparkOptions())[DRIVER_OPTIONS] == QUIET_LOGGING
    given = session_conf(SparkOptions(conf=(("spark.driver.extraJavaOptions", "-Xss16m"),)))
    assert given[DRIVER_OPTIONS] == f"{QUIET_LOGGING} -Xss16m"
    assert given["spark.ui.enabled"] == "false"
