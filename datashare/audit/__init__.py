"""The audit trail: the append-only, hash-chained log (``log``), its verification (``verify``), listings
(``query``) and the auditor's commands (``commands``)."""

from __future__ import annotations

from datashare.audit.log import (
    FAILED_AFTER,
    GENESIS_HASH,
    OUTCOME_DENIED,
    OUTCOME_ERROR,
    OUTCOME_OK,
    AuditReceipt,
    AuditRecorder,
    AuditWriteError,
    append,
    audited,
)

__all__ = ["FAILED_AFTER", "GENESIS_HASH", "OUTCOME_DENIED", "OUTCOME_ERROR", "OUTCOME_OK", "AuditReceipt",
           "AuditRecorder", "AuditWriteError", "append", "audited"]
