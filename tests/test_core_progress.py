"""The phase reporter the library talks to: silent by default, DuckDB's progress polled only when someone listens."""

from __future__ import annotations

import duckdb

from datashare.core.progress import SILENT, Progress, watching


class Recorded(Progress):
    def __init__(self) -> None:
        self.heard: list[tuple[str, object]] = []

    def phase(self, label: str) -> None:
        self.heard.append(("phase", label))

    def update(self, percent: float) -> None:
        self.heard.append(("update", percent))


def test_the_silent_reporter_takes_every_call_and_asks_for_no_polling():
    SILENT.phase("Loading x.csv")
    SILENT.update(50.0)
    SILENT.pause()
    assert SILENT.on_percent is None
    assert Recorded().on_percent is not None


def test_watching_ends_a_query_at_100_percent_for_a_listener():
    con = duckdb.connect()
    recorded = Recorded()
    with watching(con, recorded.on_percent):
        assert con.execute("SELECT count(*) FROM range(200000)").fetchone()[0] == 200_000
    assert recorded.heard[-1] == ("update", 100.0)
    assert all(0 <= value <= 100 for kind, value in recorded.heard if kind == "update")


def test_watching_without_a_listener_leaves_the_connection_alone():
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # its default depends on how Python was started
    with watching(con, None):
        con.execute("SELECT 1")
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
