"""The error tree: each error carries its exit code; diagnostics() is what a person reads."""

from __future__ import annotations

import pytest

from datashare import errors
from datashare.errors import (
    DatashareError,
    InputError,
    PolicyError,
    RefusedError,
    SigningKeyError,
    UsageError,
    VerificationError,
    WorkspaceBusyError,
    WorkspaceError,
)


@pytest.mark.parametrize(("cls", "code"), [
    (DatashareError, 1), (InputError, 1), (WorkspaceError, 1), (WorkspaceBusyError, 1), (PolicyError, 1),
    (SigningKeyError, 1), (UsageError, 2), (RefusedError, 3), (VerificationError, 4),
])
def test_each_error_carries_its_documented_exit_code(cls, code):
    assert cls("x").exit_code == code
    assert issubclass(cls, DatashareError)


def test_the_exit_codes_are_the_documented_numbers():
    assert (errors.EXIT_ERROR, errors.EXIT_USAGE, errors.EXIT_REFUSED, errors.EXIT_VERIFICATION) == (1, 2, 3, 4)


def test_diagnostics_is_the_message_then_the_hint():
    assert InputError("no such file: a.csv").diagnostics() == "no such file: a.csv"
    error = RefusedError("policy p v1 is not approved", hint="A custodian approves it.")
    assert error.diagnostics() == "policy p v1 is not approved\nA custodian approves it."
    assert str(error) == error.message == "policy p v1 is not approved"


def test_a_busy_workspace_is_a_workspace_error():
    with pytest.raises(WorkspaceError):
        raise WorkspaceBusyError("workspace busy")


def test_a_policy_error_lists_its_problems():
    assert PolicyError("bad policy").problems == ["bad policy"]
    error = PolicyError("2 problems", problems=["columns.a: unknown transform", "version: not a number"])
    assert error.problems == ["columns.a: unknown transform", "version: not a number"]


def test_ctrl_c_is_recognised_whichever_layer_saw_it_first():
    import threading

    import duckdb
    import typer

    con = duckdb.connect()
    threading.Timer(0.2, con.interrupt).start()
    with pytest.raises(duckdb.InterruptException) as interrupted:
        con.execute("SELECT count(*) FROM range(100000000000) t(i) WHERE i % 7 = 3").fetchall()
    assert errors.is_interrupt(interrupted.value)
    assert errors.is_interrupt(KeyboardInterrupt())
    assert errors.is_interrupt(RuntimeError("Query interrupted"))  # DuckDB's answer to SIGINT mid-query
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise typer.Abort() from exc
    except typer.Abort as abort:
        assert errors.is_interrupt(abort)
    assert not errors.is_interrupt(RuntimeError("something else"))
    assert not errors.is_interrupt(typer.Abort())
    assert not errors.is_interrupt(InputError("Query interrupted"))
    assert errors.EXIT_INTERRUPTED == 130
