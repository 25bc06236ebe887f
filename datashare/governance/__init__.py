"""Governance: roles (``roles``), policy approvals (``approvals``), the approved texts (``textstore``, read back
by ``texts``) and the signing key's use cases (``keys``)."""

from __future__ import annotations

from datashare.governance.approvals import (
    approve,
    list_approvals,
    require_approved,
    revoke_policy,
    signed_receipts,
    verify_audit_log,
)
from datashare.governance.keys import create_key, export_public, show_keys, unlock_secret
from datashare.governance.roles import grant, list_roles, revoke, set_service_accounts, workspace_actor
from datashare.governance.texts import diff_policies, show_policy

__all__ = ["approve", "create_key", "diff_policies", "export_public", "grant", "list_approvals", "list_roles",
           "require_approved", "revoke", "revoke_policy", "set_service_accounts", "show_keys", "show_policy",
           "signed_receipts", "unlock_secret", "verify_audit_log", "workspace_actor"]
