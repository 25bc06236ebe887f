"""Whether a policy allows a use: the dataset it applies to, its expiry date, the purpose and the recipient.

``check_use`` and the ``require_`` checks refuse (exit 3); ``recipient_matches`` and ``is_expired`` are the
predicates they use, which listings share (an approval shown as expired).
"""

from __future__ import annotations

import datetime as dt
import re

from datashare.core.hints import did_you_mean
from datashare.errors import RefusedError, UsageError
from datashare.policy.model import LoadedPolicy


def recipient_matches(pattern: str, recipient: str) -> bool:
    """``*`` matches any run of characters; every other character only itself (``?`` and ``[`` too)."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), recipient) is not None


def is_expired(expires: dt.date | str | None, today: dt.date | None = None) -> bool:
    """Whether a policy's ``expires`` date (a date or its ISO text) has passed, in UTC."""
    if expires is None:
        return False
    day = expires if isinstance(expires, dt.date) else dt.date.fromisoformat(expires)
    return day < (today or dt.datetime.now(dt.UTC).date())


def require_unexpired(loaded: LoadedPolicy, today: dt.date | None = None) -> None:
    policy = loaded.policy
    if is_expired(policy.expires, today):
        raise RefusedError(f"policy {policy.policy} v{policy.version} expired on {policy.expires.isoformat()}",
                           hint="Give the policy a new expiry date and version, and have it approved again.")


def require_applies_to(loaded: LoadedPolicy, dataset: str) -> None:
    """Refuse (exit 3) a dataset outside the policy's ``applies_to``."""
    policy = loaded.policy
    if dataset not in policy.applies_to:
        raise RefusedError(f"policy {policy.policy} v{policy.version} does not apply to dataset {dataset!r} "
                           f"(applies_to: {', '.join(policy.applies_to)})")


MAX_USE_NAME = 200


def check_use(loaded: LoadedPolicy, *, dataset: str, purpose: str | None, recipient: str | None,
              today: dt.date | None = None) -> None:
    """Refuse (exit 3) a use the policy does not allow: dataset, expiry, purpose, recipient. A purpose or recipient
    that is no name (empty, a line break or control character, over :data:`MAX_USE_NAME` characters) is a usage
    error: it would go into the manifest, the release ledger and the log as it is."""
    for what, value in (("purpose", purpose), ("recipient", recipient)):
        if value is not None and (not value.strip() or len(value) > MAX_USE_NAME
                                  or not all(ch.isprintable() for ch in value)):
            raise UsageError(f"the {what} must be a name of 1 to {MAX_USE_NAME} printable characters, without line "
                             "breaks or control characters")
    policy = loaded.policy
    require_applies_to(loaded, dataset)
    require_unexpired(loaded, today)
    if purpose is not None and purpose not in policy.purposes:
        hint = did_you_mean(purpose, policy.purposes, before=" (", after=")")
        raise RefusedError(f"purpose {purpose!r} is not allowed by policy {policy.policy}{hint}; "
                           f"allowed: {', '.join(policy.purposes)}")
    if recipient is not None and not any(recipient_matches(p, recipient) for p in policy.recipients):
        raise RefusedError(f"recipient {recipient!r} is not allowed by policy {policy.policy}; "
                           f"allowed: {', '.join(policy.recipients)}")
