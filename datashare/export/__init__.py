"""Applying a policy: planning (``plan``), the privacy gate and risk (``privacy``), the signed export (``run``),
the export directory (``bundle``) and its verification by a recipient (``recipient``); on Spark (``spark``), with
a content digest that any two exports can be compared by (``digest``)."""

from __future__ import annotations

from datashare.export.leakscan import LeakFoundError
from datashare.export.plan import check, explain
from datashare.export.preview import preview
from datashare.export.privacy import risk
from datashare.export.recipient import verify_directory
from datashare.export.releases import list_releases
from datashare.export.run import FORMATS, export
from datashare.export.spark import ENGINES, SparkOptions, parse_conf

__all__ = ["ENGINES", "FORMATS", "LeakFoundError", "SparkOptions", "check", "explain", "export", "list_releases",
           "parse_conf", "preview", "risk", "verify_directory"]
