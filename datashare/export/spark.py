"""Exports on Spark: the same compiled policy, run by a Spark cluster (or ``local[N]``), with the same result.

The CLI host plans and decides; Spark executes. The source version is staged
once as Parquet (from the catalog) in a private folder beside ``--out``, the
policy is compiled for Spark's dialect (see :mod:`datashare.policy.dialects`),
the gate's class statistics are computed by Spark and decided by the same
Python gate (:func:`datashare.export.privacy.gate`), and Spark writes the rows
as part files that datashare then hashes, lists and signs on the CLI host.

The keys stay on the CLI host's side of every text: they reach Spark as one
row of bound bytes (a DataFrame built from Python values, broadcast and
cross-joined), never as SQL text, so no plan, log or ``explain`` holds them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.core.sql import sql_string_literal
from datashare.errors import InputError, RefusedError, UsageError
from datashare.export.bundle import staging_dir_for
from datashare.export.leakscan import LeakFoundError
from datashare.export.plan import prepare
from datashare.export.privacy import MAX_SUPPRESSION_ROUNDS, gate_measures
from datashare.leakcheck import LEAK_GUARD_MESSAGE
from datashare.policy.compiler import (
    CLASSES_TABLE,
    MEMBERS_TABLE,
    SUBJECT,
    SUPPRESSED_TABLE,
    CompiledPolicy,
)
from datashare.policy.dialects import SPARK, spark_key_column
from datashare.policy.keys import KEY_NAMES, KEYS_TABLE, key_parameters
from datashare.policy.model import LoadedPolicy

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

    from datashare.catalog.store import DatasetVersion

ENGINES = ("duckdb", "spark")
DEFAULT_MASTER = "local[2]"
# A session datashare starts: no UI (no port opened on the CLI host), no progress bars on stderr, UTC dates,
# ANSI SQL (errors, not silent NULLs, on a bad cast), and few shuffle partitions (the gate's tables are small).
SESSION_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
}
# Spark's own logging off from the driver's start (see the file): its lines can quote a cell value. In local mode
# the executors run in the driver; on a cluster their logs are the cluster's (README, "On Spark"). Put before any
# driver options given with --spark-conf, so a configuration file named there still wins.
DRIVER_OPTIONS = "spark.driver.extraJavaOptions"
QUIET_LOGGING = ("-Dlog4j2.configurationFile="
                 + Path(str(resources.files("datashare") / "data" / "spark-log4j2.properties")).resolve().as_uri())
# PySpark's Python loggers that print a failed query's message.
QUERY_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
PART_PREFIX = "part-"


@dataclass(frozen=True)
class SparkOptions:
    """Where Spark runs: ``master`` (None: spark-submit's, or :data:`DEFAULT_MASTER`) and extra ``conf``."""

    master: str | None = None
    conf: tuple[tuple[str, str], ...] = ()


def parse_conf(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``--spark-conf k=v`` options as pairs; a malformed one is a usage error."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not key.startswith("spark."):
            raise UsageError(f"--spark-conf {item!r}: give spark.<name>=<value>")
        pairs.append((key.strip(), value))
    return tuple(pairs)


class SparkFailed(InputError):
    """Spark could not run the policy; its message is withheld (it can quote a cell value)."""


@contextmanager
def spark_errors(what: str) -> Iterator[None]:
    """Spark's and Py4J's errors as one line naming only the error's class."""
    # deferred: pyspark (and py4j, its bridge to the JVM) is an optional extra and heavy to import
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as exc:
        condition = exc.getCondition() if hasattr(exc, "getCondition") else exc.getErrorClass()
        raise SparkFailed(f"Spark could not {what} ({condition or type(exc).__name__}; its message is withheld "
                          "because it can quote a cell value)") from None
    except Py4JError as exc:
        raise SparkFailed(f"Spark could not {what} ({type(exc).__name__}; its message is withheld because it can "
                          "quote a cell value)") from None


def session_conf(options: SparkOptions) -> dict[str, str]:
    """The configuration of a session datashare starts: :data:`SESSION_CONF`, then ``--spark-conf``; the driver's
    Java options start with :data:`QUIET_LOGGING` whatever is given (a later ``-D`` of the same name wins)."""
    conf = {**SESSION_CONF, **dict(options.conf)}
    conf[DRIVER_OPTIONS] = f"{QUIET_LOGGING} {conf.get(DRIVER_OPTIONS, '')}".strip()
    return conf


@contextmanager
def spark_session(options: SparkOptions) -> Iterator[SparkSession]:
    """A Spark session for one export, stopped afterwards; an active one (a test run's, or the driver that
    spark-submit started) is used as it is and left running."""
    try:
        # deferred: pyspark is an optional extra, heavy to import, and starts a JVM
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError("--engine spark needs pyspark: install datashare with its extra, "
                         "pip install 'datashare[spark]'") from None
    _quiet_python_loggers()
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    builder = SparkSession.builder.appName("datashare")
    # Under spark-submit the driver's master is the one given there; otherwise --spark-master, or local.
    master = options.master or (None if "PYSPARK_GATEWAY_PORT" in os.environ else DEFAULT_MASTER)
    if master is not None:
        builder = builder.master(master)
    for key, value in session_conf(options).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # no Java, an unreachable master: pyspark raises several kinds
        raise InputError(f"cannot start Spark ({master or 'spark-submit'}): {str(exc).splitlines()[0][:300]}",
                         hint="--engine spark needs Java 17 or later (JAVA_HOME) and a reachable --spark-master."
                         ) from None
    try:
        yield session
    finally:
        session.stop()


def _quiet_python_loggers() -> None:
    """PySpark's own loggers of a failed query, off: they print Spark's message, which can quote a cell value,
    before datashare turns the error into one line naming its class (:func:`spark_errors`)."""
    # deferred: pyspark is an optional extra and heavy to import
    from pyspark.logger import PySparkLogger

    for name in QUERY_LOGGERS:
        PySparkLogger.getLogger(name).disabled = True


def install_spark_keys(session: SparkSession, keys: list[bytes]) -> None:
    """The one-row keys table: bound bytes in a DataFrame, broadcast, as the temporary view ``ds_keys``."""
    # deferred: pyspark is an optional extra and heavy to import
    from pyspark.sql.functions import broadcast
    from pyspark.sql.types import BinaryType, StructField, StructType

    schema = StructType([StructField(spark_key_column(name), BinaryType(), False) for name in KEY_NAMES])
    row = tuple(bytearray(value) for value in keys)
    broadcast(session.createDataFrame([row], schema)).createOrReplaceTempView(KEYS_TABLE)


def stage_source(con: duckdb.DuckDBPyConnection, table: str, folder: Path) -> Path:
    """The dataset version as one Parquet file in ``folder`` (private, beside --out), for Spark to read."""
    path = folder / "source.parquet"
    con.execute(f"COPY (SELECT * FROM {table}) TO {sql_string_literal(str(path))} (FORMAT parquet)")
    return path


SOURCE_VIEW = "ds_source"  # Spark's name for the staged dataset version


def register_source(session: SparkSession, path: Path) -> str:
    session.read.parquet(str(path)).createOrReplaceTempView(SOURCE_VIEW)
    return SOURCE_VIEW


def _table(session: SparkSession, name: str, query: str) -> DataFrame:
    """``query``'s rows computed now and kept by Spark, as the temporary view ``name``."""
    frame = session.sql(query).localCheckpoint()
    frame.createOrReplaceTempView(name)
    return frame


def spark_classify(session: SparkSession, compiled: CompiledPolicy) -> dict[str, Any]:
    """The gate's numbers, computed by Spark as :func:`datashare.export.privacy.classify_rows` does in DuckDB."""
    if compiled.members_query is not None:
        _table(session, MEMBERS_TABLE, compiled.members_query)
        _table(session, SUPPRESSED_TABLE, f"SELECT CAST(NULL AS STRING) AS {SUBJECT} WHERE false")
    _table(session, CLASSES_TABLE, compiled.classes_query)
    failing = session.sql(compiled.failing_sql).first()[0]
    if compiled.suppress_query is not None:
        for _ in range(MAX_SUPPRESSION_ROUNDS):
            added = session.sql(compiled.suppress_query).localCheckpoint()
            if added.isEmpty():
                break
            session.table(SUPPRESSED_TABLE).union(added).localCheckpoint().createOrReplaceTempView(SUPPRESSED_TABLE)
            _table(session, CLASSES_TABLE, compiled.classes_query)
        else:
            raise RefusedError(f"refused by the privacy gate: suppressing whole subjects did not settle in "
                               f"{MAX_SUPPRESSION_ROUNDS} rounds",
                               hint="Generalise the quasi-identifiers more, or see `datashare risk`.")
    return gate_measures(compiled, failing, tuple(session.sql(compiled.stats_sql).first()))


def mirror_gate_tables(session: SparkSession, con: duckdb.DuckDBPyConnection, compiled: CompiledPolicy,
                       folder: Path) -> None:
    """Spark's classes (and suppressed subjects) as DuckDB's temporary tables of the same names, for the release
    ledger's checks on the CLI host."""
    names = [CLASSES_TABLE] + ([SUPPRESSED_TABLE] if compiled.suppress_query is not None else [])
    for name in names:
        path = folder / name
        session.table(name).coalesce(1).write.mode("overwrite").parquet(str(path))
        files = sql_string_literal(str(path / "*.parquet"))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM read_parquet({files})")


def spark_write(session: SparkSession, compiled: CompiledPolicy, work: Path, staging: Path, dataset: str,
                fmt: str, details: dict[str, Any]) -> list[Path]:
    """Spark writes the export's rows as part files; they are moved into ``staging``, in order, and returned.

    Free text is written through the leak guard, as on DuckDB: a cell that still holds an identifier stops the
    job, Spark counts the hits per type (into ``details``), and :class:`LeakFoundError` refuses the export.
    """
    written = work / "out"
    frame = session.sql(compiled.export_sql)
    try:
        if fmt == "csv":
            frame.write.csv(str(written), header=True, quote='"', escape='"')
        else:
            frame.write.parquet(str(written), compression="zstd")
    except Exception as exc:  # the job's failure reaches Python as one of several Py4J or PySpark errors
        if LEAK_GUARD_MESSAGE not in str(exc):
            raise
        counts = spark_leak_counts(session, compiled) or {"UNCOUNTED": 1}
        details["leaks"] = counts
        raise LeakFoundError(counts) from None
    parts = sorted(p for p in written.iterdir() if p.name.startswith(PART_PREFIX) and p.is_file())
    moved = []
    for index, part in enumerate(parts):
        target = staging / f"{dataset}.part-{index:05d}.{fmt}"
        shutil.move(part, target)
        moved.append(target)
    return moved


def spark_leak_counts(session: SparkSession, compiled: CompiledPolicy) -> dict[str, int]:
    """:func:`datashare.export.leakscan.scan_free_text` run by Spark: cells per identifier type left."""
    if compiled.leak_scan_sql is None:
        return {}
    row = session.sql(compiled.leak_scan_sql).first()
    return {kind: int(count) for kind, count in row.asDict().items() if count}


class SparkExport:
    """One export's Spark side: the policy compiled for Spark, the staged source, the session and the keys.

    Everything it starts or stages is undone by ``stack`` (the staged source
    and Spark's own files removed, a session it started stopped).
    """

    def __init__(self, stack: ExitStack, con: duckdb.DuckDBPyConnection, options: SparkOptions,
                 loaded: LoadedPolicy, resolved: DatasetVersion, out: Path, *, secret: bytes, recipient: str,
                 custodian: bool) -> None:
        # Compiled first: a policy Spark cannot run (noise) is refused before anything starts.
        self.compiled = prepare(loaded, resolved, direct_filter_allowed=custodian, dialect=SPARK, table=SOURCE_VIEW)
        self.work = staging_dir_for(out)  # private (0700), beside --out: the staged source and Spark's files
        stack.callback(shutil.rmtree, self.work, ignore_errors=True)
        source = stage_source(con, resolved.table, self.work)
        self.session = stack.enter_context(spark_session(options))
        stack.enter_context(spark_errors(f"apply policy {loaded.name} v{loaded.version} to {resolved.name}"))
        register_source(self.session, source)
        install_spark_keys(self.session, key_parameters(secret, recipient, resolved.name, loaded.link_group))

    def classify(self, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        """The gate's numbers from Spark; its classes (and suppressed subjects) mirrored into ``con``."""
        stats = spark_classify(self.session, self.compiled)
        mirror_gate_tables(self.session, con, self.compiled, self.work)
        return stats

    def write(self, staging: Path, dataset: str, fmt: str, details: dict[str, Any]) -> list[Path]:
        return spark_write(self.session, self.compiled, self.work, staging, dataset, fmt, details)

    def cancel(self) -> None:
        self.session.sparkContext.cancelAllJobs()
