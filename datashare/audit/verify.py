"""Verifying the audit log: the hash chain, torn lines, and heads kept elsewhere.

Verification returns a report or raises :class:`VerificationError` naming the
first bad entry and what is wrong with it. It works on the raw bytes of each
line (see :mod:`datashare.audit` for the encoding), so a million entries take
seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datashare.audit.log import GENESIS_HASH
from datashare.errors import VerificationError

_PREFIX = re.compile(rb'^\{"seq":([0-9]+),"prev":"([0-9a-f]{64})"')
_SUFFIX_LEN = len(b',"hash":"') + 64 + len(b'"}')
_HASH_MEMBER = b',"hash":"'
HEAD_FORMAT = 1


@dataclass
class ChainReport:
    """What verification found: how many entries, the last one, and notes (acknowledged crashes)."""

    entries: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    notes: list[str] = field(default_factory=list)
    captured: dict[int, str] = field(default_factory=dict)  # seq -> hash of entries asked for

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "entries": self.entries, "last_seq": self.last_seq, "last_hash": self.last_hash,
                "first_error": None, "notes": self.notes}


class ChainError(VerificationError):
    """The chain is broken at a given entry (``seq``) and line of the file."""

    def __init__(self, message: str, *, seq: int | None, line: int, problem: str) -> None:
        super().__init__(message)
        self.seq = seq
        self.line = line
        self.problem = problem

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "line": self.line, "problem": self.problem}


def _split_line(raw: bytes) -> tuple[int, str, str, bytes] | None:
    """(seq, prev, hash, body) of a well-formed line, else None."""
    match = _PREFIX.match(raw)
    if match is None or len(raw) < _SUFFIX_LEN or not raw.endswith(b'"}'):
        return None
    member = raw[-_SUFFIX_LEN:]
    if not member.startswith(_HASH_MEMBER):
        return None
    digest = member[len(_HASH_MEMBER):-2]
    return int(match.group(1)), match.group(2).decode(), digest.decode("ascii", "replace"), raw[:-_SUFFIX_LEN] + b"}"


def verify_chain(path: Path, *, capture: int | Collection[int] | None = None) -> ChainReport:
    """Recompute the whole chain; raise :class:`ChainError` at the first problem.

    ``capture`` names the entries whose hashes the report keeps (to check a head, or receipts).
    """
    captures = {capture} if isinstance(capture, int) else set(capture or ())
    report = ChainReport()
    pending_torn: tuple[int, bytes] | None = None  # (line number, fragment) awaiting acknowledgement
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return report
    with handle:
        number = 0
        for number, raw in enumerate(handle, start=1):  # number is used after the loop too
            if not raw.endswith(b"\n"):
                raise ChainError(
                    f"torn last line after entry {report.last_seq} (line {number}): a write was interrupted",
                    seq=report.last_seq + 1, line=number, problem="torn")
            raw = raw[:-1]
            parts = _split_line(raw)
            if parts is None:
                if pending_torn is not None:
                    raise ChainError(f"line {pending_torn[0]} is not an audit entry (damaged or inserted)",
                                     seq=None, line=pending_torn[0], problem="damaged")
                pending_torn = (number, raw)
                continue
            seq, prev, digest, body = parts
            if hashlib.sha256(body).hexdigest() != digest:
                raise ChainError(f"entry {seq} (line {number}) was edited: its content does not match its hash",
                                 seq=seq, line=number, problem="edited")
            expected = report.last_seq + 1
            if seq != expected:
                raise _misplaced(path, number, seq, prev, digest, expected)
            if prev != report.last_hash:
                raise ChainError(f"entry {seq} (line {number}) does not follow entry {report.last_seq}: "
                                 "an entry was inserted or replaced", seq=seq, line=number, problem="inserted")
            if pending_torn is not None:
                _check_acknowledged(pending_torn, body, seq)
                report.notes.append(f"line {pending_torn[0]}: a write interrupted after entry {seq - 1}, "
                                    f"acknowledged by entry {seq}")
                pending_torn = None
            elif b'"torn_before":' in body and "torn_before" in json.loads(body):
                raise ChainError(f"entry {seq} (line {number}) acknowledges a torn line that is not there",
                                 seq=seq, line=number, problem="deleted")
            report.entries += 1
            report.last_seq, report.last_hash = seq, digest
            if seq in captures:
                report.captured[seq] = digest
        if pending_torn is not None:
            raise ChainError(f"line {pending_torn[0]} is not an audit entry (damaged or inserted)",
                             seq=None, line=pending_torn[0], problem="damaged")
    return report


def _misplaced(path: Path, line: int, seq: int, prev: str, digest: str, expected: int) -> ChainError:
    """Say why ``line`` holds entry ``seq`` where entry ``expected`` belongs.

    Only on the error path, so it may read the file again: the expected entry
    further down means a reordering (when this entry is itself a genuine link of
    the chain) or an insertion; never found, a deletion; an entry already seen
    again, a duplicate (same bytes) or a forged entry reusing its number.
    """
    later_expected: str | None = None  # hash of the expected entry, when it appears further down
    earlier_same: tuple[int, str] | None = None  # (line, hash) of an earlier entry with this seq
    built_on = False  # a later entry names this one as its prev
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            parts = _split_line(raw[:-1] if raw.endswith(b"\n") else raw)
            if parts is None or number == line:
                continue
            other_seq, other_prev, other_hash, _ = parts
            if number < line and other_seq == seq and earlier_same is None:
                earlier_same = (number, other_hash)
            if number > line:
                if other_seq == expected and later_expected is None:
                    later_expected = other_hash
                built_on = built_on or other_prev == digest
    if seq < expected:
        if earlier_same is not None and earlier_same[1] == digest:
            return ChainError(f"entry {seq} (line {line}) repeats line {earlier_same[0]} after entry {expected - 1}: "
                              "duplicated or reordered", seq=seq, line=line, problem="duplicated")
        return ChainError(f"line {line} claims to be entry {seq}, which an earlier line already holds: "
                          "a forged entry was inserted", seq=seq, line=line, problem="inserted")
    if later_expected is not None:
        if built_on or prev == later_expected:
            return ChainError(f"entry {seq} (line {line}) comes before entry {expected}, which is further down: "
                              "entries were reordered", seq=expected, line=line, problem="reordered")
        return ChainError(f"line {line} holds an entry {seq} that nothing builds on, before entry {expected}: "
                          "an entry was inserted", seq=seq, line=line, problem="inserted")
    missing = f"entry {expected}" if seq == expected + 1 else f"entries {expected}-{seq - 1}"
    return ChainError(f"{missing} deleted: line {line} holds entry {seq}", seq=expected, line=line,
                      problem="deleted")


def _check_acknowledged(torn: tuple[int, bytes], body: bytes, seq: int) -> None:
    line, fragment = torn
    recorded = json.loads(body).get("torn_before")
    actual = {"bytes": len(fragment), "sha256": hashlib.sha256(fragment).hexdigest()}
    if recorded != actual:
        raise ChainError(f"line {line} is not an audit entry (damaged or inserted before entry {seq})",
                         seq=None, line=line, problem="damaged")


def head_body(report: ChainReport, time: str) -> dict[str, Any]:
    """The statement of the log's length and last hash that ``audit head`` prints."""
    return {"format": HEAD_FORMAT, "seq": report.last_seq, "hash": report.last_hash, "count": report.entries,
            "time": time}


def head_signing_bytes(head: dict[str, Any]) -> bytes:
    """What a head's signature covers: its body as compact sorted JSON."""
    body = {key: head[key] for key in ("format", "seq", "hash", "count", "time")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


Receipt = tuple[int, str, str]  # an entry something in the workspace names: (seq, hash, what names it)


def check_receipts(report: ChainReport, receipts: Iterable[Receipt]) -> None:
    """Raise unless the verified log holds each receipt's entry, ``(seq, hash, what holds it)``, with its hash:
    a log cut short at its end is a valid chain, and only something that named a later entry tells."""
    for seq, digest, holder in receipts:
        if seq not in report.captured:
            raise ChainError(f"the log was cut short: it ends at entry {report.last_seq}, and {holder} names entry "
                             f"{seq}", seq=seq, line=0, problem="truncated")
        if report.captured[seq] != digest:
            raise ChainError(f"entry {seq} differs from the one {holder} names: the log was rolled back or "
                             "rewritten", seq=seq, line=0, problem="rewritten")


def check_extends(report: ChainReport, head: dict[str, Any]) -> None:
    """Raise unless the verified log still holds the head's entry with the head's hash."""
    try:
        seq, digest = int(head["seq"]), str(head["hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError("the head file is not a datashare audit head") from exc
    if seq == 0:
        return
    if seq not in report.captured:
        raise ChainError(f"the log was cut short: it ends at entry {report.last_seq}, the head names entry {seq}",
                         seq=seq, line=0, problem="truncated")
    if report.captured[seq] != digest:
        raise ChainError(f"entry {seq} differs from the head kept earlier: the log was rolled back or rewritten",
                         seq=seq, line=0, problem="rewritten")
