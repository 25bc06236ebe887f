"""Policies, pure: no workspace, no engine. The model (load, validate), its fit to a dataset and the uses it
allows, the row filter, the transforms, the compiler to SQL, and the derived keys."""

from __future__ import annotations

from datashare.policy.model import LoadedPolicy, load_policy

__all__ = ["LoadedPolicy", "load_policy"]
