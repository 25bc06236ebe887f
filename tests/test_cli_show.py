"""What ``show`` (catalog/store.py) gives away: date ranges to the year for anyone but a custodian."""

from __future__ import annotations

import re

import pytest

from .conftest import SAMPLE_CSV, make_workspace, run_cli


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    home = tmp_path_factory.mktemp("show") / "ws"
    make_workspace(home)
    for args in (["register", str(SAMPLE_CSV), "--name", "patients"], ["roles", "grant", "ana", "analyst"],
                 ["roles", "service-accounts", "on"]):
        assert run_cli(*args, home=home).code == 0, args
    return home


def columns(home, *actor: str) -> dict[str, dict]:
    shown = run_cli("show", "patients", "--json", *actor, home=home)
    assert shown.code == 0, shown.stderr
    return {column["name"]: column for column in shown.json()["columns"]}


def test_an_analyst_sees_date_ranges_to_the_year_only(ws):
    analyst = columns(ws, "--actor", "ana")
    custodian = columns(ws)
    for name in ("dob", "admission_date", "discharge_date"):
        assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", custodian[name]["min"]), custodian[name]
        assert analyst[name]["min"] == custodian[name]["min"][:4] and analyst[name]["max"] == custodian[name]["max"][:4]
        assert set(analyst[name]) == set(custodian[name])  # the same fields, coarser values
    assert analyst["hba1c"]["min"] == custodian["hba1c"]["min"]  # numbers are no date of birth
    table = run_cli("show", "patients", "--actor", "ana", home=ws).stdout
    assert custodian["dob"]["min"] not in table and custodian["dob"]["max"] not in table
