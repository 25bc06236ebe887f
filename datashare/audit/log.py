"""The append-only, tamper-evident audit log.

One JSON object per line in ``<workspace>/audit.log``, appended under the
workspace lock, fsynced, never rewritten. The encoding is fixed so that an
auditor can re-check the chain with a few lines of their own:

* a line is ``{"seq":N,"prev":"<64 hex>",`` then the other keys in sorted
  order, compact JSON (no spaces), UTF-8, and last ``"hash":"<64 hex>"}``;
* ``hash`` is the SHA-256 of the line's bytes with the final
  ``,"hash":"<64 hex>"`` member removed (so it ends with ``}``);
* ``prev`` is the previous entry's ``hash`` (64 zeros for the first entry) and
  ``seq`` counts from 1 without gaps.

A crash mid-append can leave a torn last line (no newline). The next append
does not build on it silently: it starts a new line and records the
fragment's length and SHA-256 in ``torn_before``, so ``audit verify`` can tell
an acknowledged crash from tampering.

Entries never hold cell values, secrets or passphrases: only names, versions,
hashes, counts, paths and reasons written by datashare itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datashare.errors import DatashareError, RefusedError, WorkspaceError, is_interrupt
from datashare.permissions import authorize
from datashare.workspace import Workspace, utc_now

GENESIS_HASH = "0" * 64
OUTCOME_OK = "ok"
OUTCOME_DENIED = "denied"
OUTCOME_ERROR = "error"
FAILED_AFTER = "failed_after"  # in an error entry's details: the seq of the ok entry of an operation that then failed


class AuditWriteError(WorkspaceError):
    """The audit log could not be written: the operation must not happen (fail closed)."""


def _body_bytes(entry: dict[str, Any]) -> bytes:
    """The hashed part of an entry: seq and prev first, then the other keys sorted, compact UTF-8 JSON."""
    rest = {key: entry[key] for key in sorted(entry) if key not in ("seq", "prev", "hash")}
    head = json.dumps({"seq": entry["seq"], "prev": entry["prev"]}, separators=(",", ":"))
    tail = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if tail == "{}":
        return head.encode("utf-8")
    return (head[:-1] + "," + tail[1:]).encode("utf-8")


def canonical_bytes(entry: dict[str, Any]) -> bytes:
    """The bytes an entry's hash is computed over (its line without the ``hash`` member)."""
    return _body_bytes(entry)


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(entry)).hexdigest()


def encode_line(entry: dict[str, Any]) -> bytes:
    """The full line for an entry whose ``hash`` is set (without the newline)."""
    body = _body_bytes(entry)
    return body[:-1] + b',"hash":"' + entry["hash"].encode("ascii") + b'"}'


@dataclass(frozen=True)
class AuditReceipt:
    """Where an entry landed in the log: its sequence number and hash."""

    seq: int
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


@dataclass(frozen=True)
class _Tail:
    seq: int
    hash: str
    torn_bytes: bytes  # a final line with no newline: a crash mid-append


def _read_tail(path: Path) -> _Tail:
    """The last complete entry's sequence number and hash, and any torn fragment."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return _Tail(0, GENESIS_HASH, b"")
    if size == 0:
        return _Tail(0, GENESIS_HASH, b"")
    with path.open("rb") as handle:
        block = 1 << 16
        pos = size
        buffer = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            handle.seek(pos)
            buffer = handle.read(step) + buffer
            lines = buffer.split(b"\n")
            # lines[-1] is the fragment after the last newline (b"" if file ends with \n)
            complete = [line for line in lines[:-1] if line.strip()]
            if complete and (pos == 0 or len(lines) > 2):
                torn = lines[-1]
                last = complete[-1]
                try:
                    entry = json.loads(last)
                    return _Tail(int(entry["seq"]), str(entry["hash"]), torn)
                except (ValueError, KeyError, TypeError) as exc:
                    raise WorkspaceError(
                        f"the audit log {path} ends with a damaged entry",
                        hint="Run `datashare audit verify` to see what is wrong.",
                    ) from exc
        return _Tail(0, GENESIS_HASH, buffer)


def append(
    workspace: Workspace,
    *,
    actor: str,
    action: str,
    outcome: str = OUTCOME_OK,
    target: dict[str, Any] | None = None,
    purpose: str | None = None,
    recipient: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditReceipt:
    """Append one entry, chained to the last, and fsync it before returning.

    A torn last line (a crash mid-append) is not built on silently: the new
    entry records the fragment's length and SHA-256 under ``torn_before`` so
    that ``audit verify`` can tell an acknowledged crash from tampering.
    """
    path = workspace.audit_path
    with workspace.lock():
        try:
            tail = _read_tail(path)
        except OSError as exc:
            raise _write_error(path, exc) from exc
        entry: dict[str, Any] = {
            "seq": tail.seq + 1,
            "time": utc_now(),
            "actor": actor,
            "action": action,
            "target": target or {},
            "purpose": purpose,
            "recipient": recipient,
            "outcome": outcome,
            "reason": reason,
            "details": details or {},
            "prev": tail.hash,
        }
        prefix = b""
        if tail.torn_bytes:
            entry["torn_before"] = {
                "bytes": len(tail.torn_bytes),
                "sha256": hashlib.sha256(tail.torn_bytes).hexdigest(),
            }
            prefix = b"\n"
        entry["hash"] = entry_hash(entry)
        _write_line(path, prefix + encode_line(entry) + b"\n")
    return AuditReceipt(entry["seq"], entry["hash"])


def _write_error(path: Path, exc: OSError) -> AuditWriteError:
    return AuditWriteError(f"cannot write the audit log {path}: {exc.strerror or type(exc).__name__}",
                           hint="Check that it is a file you may write and that the disk has room.")


def _write_line(path: Path, line: bytes) -> None:
    """Append ``line`` and fsync it; any failure is an :class:`AuditWriteError` naming the log."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise AuditWriteError(f"cannot write the audit log {path}: short write (disk full?)")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _write_error(path, exc) from exc


@dataclass
class AuditRecorder:
    """Collects what an operation touched so its audit entry can say so."""

    workspace: Workspace
    actor: str
    action: str
    target: dict[str, Any] = field(default_factory=dict)
    purpose: str | None = None
    recipient: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    receipt: AuditReceipt | None = None

    def name_policy(self, loaded: Any) -> None:
        """Say in the entry which policy (name, version, SHA-256 of the file) the operation used."""
        self.target.update(policy=loaded.name, policy_version=loaded.version, policy_sha256=loaded.sha256)
        waivers = getattr(getattr(loaded, "policy", None), "waivers", None)
        if waivers:  # a waived check of the privacy gate is on record wherever the policy is used
            self.details["waivers"] = dict(waivers)

    def ok(self, **details: Any) -> AuditReceipt:
        """Record success. Call it before reporting success to the user."""
        self.details.update(details)
        self.receipt = append(
            self.workspace,
            actor=self.actor,
            action=self.action,
            outcome=OUTCOME_OK,
            target=self.target,
            purpose=self.purpose,
            recipient=self.recipient,
            details=self.details,
        )
        return self.receipt


def failure_reason(exc: BaseException) -> str:
    """What the log says about a failure: our own message, or only the error's type.

    Messages from other libraries may quote data, so only datashare's own
    messages (written never to contain cell values) are logged.
    """
    if isinstance(exc, DatashareError):
        return exc.message
    if is_interrupt(exc):  # Ctrl-C, also when DuckDB saw it first
        return "interrupted"
    return f"internal error ({type(exc).__name__})"


@contextmanager
def audited(workspace: Workspace, action: str, actor: str, **target: Any) -> Iterator[AuditRecorder]:
    """Run an operation that must leave a trace whatever happens.

    The actor's role is checked first (:func:`datashare.governance.authorize`).
    On success the operation calls :meth:`AuditRecorder.ok` (or it is called
    on leaving the block); a refusal is logged as ``denied`` and any other
    failure as ``error`` with its reason, and the exception propagates.

    An operation that fails *after* its ``ok`` entry was written (the final
    rename of an export, a full disk) gets an ``error`` entry whose details
    name that entry (``failed_after``), so the log never claims as done
    something that did not happen.
    """

    recorder = AuditRecorder(workspace, actor, action, target={k: v for k, v in target.items() if v is not None})
    try:
        authorize(workspace, actor, action)  # a refusal for want of a role is logged like any other
        yield recorder
    except BaseException as exc:
        if not isinstance(exc, (GeneratorExit, AuditWriteError)):
            _log_failure(recorder, exc)
        raise
    if recorder.receipt is None:
        recorder.ok()


def _log_failure(recorder: AuditRecorder, exc: BaseException) -> None:
    """Append the ``denied``/``error`` entry for a failed operation (see :func:`audited`)."""
    reason, details = failure_reason(exc), dict(recorder.details)
    if recorder.receipt is not None:
        outcome = OUTCOME_ERROR
        reason = f"the operation did not complete after entry {recorder.receipt.seq} was written: {reason}"
        details = {FAILED_AFTER: recorder.receipt.seq}
    else:
        outcome = OUTCOME_DENIED if isinstance(exc, RefusedError) else OUTCOME_ERROR
    try:
        append(recorder.workspace, actor=recorder.actor, action=recorder.action, outcome=outcome,
               target=recorder.target, purpose=recorder.purpose, recipient=recorder.recipient, reason=reason,
               details=details)
    except DatashareError as log_failure:
        # The operation failed already; say so rather than hide it behind the logging failure.
        if not isinstance(exc, DatashareError):
            raise log_failure from exc
        if log_failure.message != exc.message:  # the same failure (a read-only workspace) is said once
            note = f"The failure could not be logged either: {log_failure.message}"
            exc.hint = f"{exc.hint}\n{note}" if exc.hint else note
