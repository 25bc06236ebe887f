"""The uses a policy allows: its dataset, its expiry date, its purposes and its recipients' patterns."""

from __future__ import annotations

import datetime as dt

import pytest

from datashare.errors import RefusedError, UsageError
from datashare.policy.model import load_policy
from datashare.policy.use import check_use, recipient_matches

from .conftest import PROJECT_ROOT

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"


def test_uses_the_policy_does_not_allow_are_refused():
    loaded = load_policy(RESEARCH)
    check_use(loaded, dataset="patients", purpose="drug-safety", recipient="incubatee-42", today=dt.date(2026, 1, 1))
    cases = [
        ({"dataset": "cohort", "purpose": "drug-safety", "recipient": "cicor"}, "does not apply to dataset"),
        ({"dataset": "patients", "purpose": "marketing", "recipient": "cicor"}, "purpose 'marketing' is not allowed"),
        ({"dataset": "patients", "purpose": "clinical-researh", "recipient": "cicor"}, "did you mean"),
        ({"dataset": "patients", "purpose": "drug-safety", "recipient": "pharma-x"}, "recipient 'pharma-x'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(RefusedError, match=message):
            check_use(loaded, today=dt.date(2026, 1, 1), **kwargs)
    with pytest.raises(RefusedError, match="expired on 2027-12-31"):
        check_use(loaded, dataset="patients", purpose="drug-safety", recipient="cicor", today=dt.date(2028, 1, 1))


def test_recipient_patterns_know_only_the_star():
    assert recipient_matches("incubatee-*", "incubatee-42") and recipient_matches("*", "anyone")
    assert not recipient_matches("incubatee-?", "incubatee-4")
    assert not recipient_matches("[ab]", "a") and recipient_matches("[ab]", "[ab]")
    assert not recipient_matches("cicor", "cicor2")


@pytest.mark.parametrize("name", ["", "   ", "a\rb", "a\nb", "a\x1b[2Jb", "x" * 201, "a\u200bb"])
def test_a_recipient_or_purpose_that_is_no_name_is_a_usage_error(name):
    """Under recipients: ["*"] these went into the manifest and the release ledger as they were."""
    loaded = load_policy(RESEARCH)
    for kwargs in ({"purpose": name, "recipient": "incubatee-42"}, {"purpose": "drug-safety", "recipient": name}):
        with pytest.raises(UsageError, match="must be a name of 1 to 200 printable characters"):
            check_use(loaded, dataset="patients", today=dt.date(2026, 1, 1), **kwargs)
