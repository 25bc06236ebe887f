"""One error hierarchy for datashare.

Every error carries the exit code the command line returns for it, so the CLI
maps errors to exit codes in exactly one place. Messages are written for the
person at the terminal and must never contain cell values, secrets or
passphrases.
"""

from __future__ import annotations

from typing import Any

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_VERIFICATION = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C

# What DuckDB raises when SIGINT arrives while it runs a query: it checks for the signal itself and answers with
# a plain RuntimeError carrying this message (and with InterruptException when a connection is interrupted).
_DUCKDB_INTERRUPTED = "Query interrupted"


class DatashareError(Exception):
    """Base of every error datashare raises on purpose."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The text shown to a person: the message, then what to do about it."""
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


class InputError(DatashareError):
    """Bad input data or arguments the user can correct (missing file, bad name...)."""


class UsageError(DatashareError):
    """A command line that cannot be acted on as written."""

    exit_code = EXIT_USAGE


class WorkspaceError(DatashareError):
    """The workspace is missing, damaged or busy."""


class WorkspaceBusyError(WorkspaceError):
    """Another datashare process held the workspace for longer than the timeout."""


class PolicyError(DatashareError):
    """A policy file that is malformed: wrong keys, types or values."""

    def __init__(self, message: str, *, hint: str | None = None, problems: list[str] | None = None,
                 located: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems if problems is not None else [message]
        # each problem as {file, path, line, column, message, hint}, where the file's lines are known
        self.located = located if located is not None else []


class RefusedError(DatashareError):
    """Refused by policy or governance (not approved, expired, k-anonymity gate...)."""

    exit_code = EXIT_REFUSED


class VerificationError(DatashareError):
    """A signature, checksum, audit chain or receipt did not verify."""

    exit_code = EXIT_VERIFICATION


class SigningKeyError(DatashareError):
    """Signing key problems: missing key, wrong passphrase, unreadable key file."""


def is_interrupt(exc: BaseException | None) -> bool:
    """Whether ``exc`` is Ctrl-C, whichever layer saw it first: Python (KeyboardInterrupt), DuckDB in the middle of
    a query, or click, which raises its Abort from a KeyboardInterrupt."""
    for _ in range(8):  # an exception's explicit causes, as far as they go
        if exc is None or isinstance(exc, DatashareError):
            return False
        if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "InterruptException":
            return True
        if type(exc) is RuntimeError and str(exc) == _DUCKDB_INTERRUPTED:
            return True
        exc = exc.__cause__
    return False
