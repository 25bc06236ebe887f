"""Applying a policy: planning (``plan``), the privacy gate and risk (``privacy``), the signed export (``run``),
the export directory (``bundle``) and its verification by a recipient (``recipient``)."""

from __future__ import annotations

from datashare.export.leakscan import LeakFoundError
from datashare.export.plan import check, explain
from datashare.export.preview import preview
from datashare.export.privacy import risk
from datashare.export.recipient import verify_directory
from datashare.export.releases import list_releases
from datashare.export.run import FORMATS, export

__all__ = ["FORMATS", "LeakFoundError", "check", "explain", "export", "list_releases", "preview", "risk",
           "verify_directory"]
