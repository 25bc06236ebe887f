"""Choosing a run's method and budget from the policy: the command line may only ask for less."""

from __future__ import annotations

import pytest

from datashare.errors import RefusedError, UsageError
from datashare.permissions import PERMISSIONS
from datashare.policy.model import Synthetic
from datashare.synth.run import settings_for

MST = Synthetic(method="mst", epsilon=1.0, delta=1e-6)
COPULA = Synthetic(method="copula")


def test_the_policy_decides_and_a_smaller_budget_may_be_asked_for():
    assert settings_for(MST, method=None, epsilon=None, delta=None, policy_name="p") == ("mst", 1.0, 1e-6)
    assert settings_for(MST, method="mst", epsilon=0.5, delta=1e-7, policy_name="p") == ("mst", 0.5, 1e-7)
    assert settings_for(COPULA, method=None, epsilon=None, delta=None, policy_name="p") == ("copula", None, None)


@pytest.mark.parametrize(("synthetic", "kwargs", "error"), [
    (None, {}, RefusedError),
    (COPULA, {"method": "mst"}, RefusedError),
    (COPULA, {"method": "gan"}, UsageError),
    (COPULA, {"epsilon": 1.0}, UsageError),
    (MST, {"epsilon": 2.0}, RefusedError),
    (MST, {"delta": 1e-3}, RefusedError),
    (MST, {"epsilon": -1.0}, RefusedError),
])
def test_anything_else_is_refused(synthetic, kwargs, error):
    with pytest.raises(error):
        settings_for(synthetic, **{"method": None, "epsilon": None, "delta": None, **kwargs}, policy_name="p")


def test_custodians_and_analysts_may_synthesize():
    assert PERMISSIONS["synthesize"] == frozenset({"custodian", "analyst"})
