"""Reports for a committee or an auditor: one self-contained HTML page each (see :mod:`datashare.report.html`)."""

from datashare.report.audit import audit_report
from datashare.report.risk import risk_report

__all__ = ["audit_report", "risk_report"]
