"""What the privacy gate sees, counts and links, on generated admissions with repeat visits per patient.

Each test reproduces one way an export could re-identify people and checks it no longer does.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from datashare import catalog, governance
from datashare.errors import PolicyError, RefusedError
from datashare.export.plan import check, explain
from datashare.export.privacy import risk
from datashare.export.run import export

from .conftest import TEST_PASSPHRASE, cli_env, generated_workspace, run_cli

ACTOR = "custodian"
ROWS = 2000

BASE = {
    "policy": "gate", "version": 1, "applies_to": ["patients"], "purposes": ["research"], "recipients": ["*"],
    "columns": {
        "patient_id": {"transform": "pseudonymize"},
        "dob": {"transform": "generalize", "to": "age_band", "width": 20, "reference": "2026-01-01"},
        "sex": {"transform": "keep"},
        "district": {"transform": "generalize", "to": "region"},
        "diagnosis": {"transform": "generalize", "to": "prefix", "length": 1},
        "hba1c": {"transform": "round", "digits": 0},
    },
    "privacy": {"quasi_identifiers": ["dob", "sex", "district"], "subject": "patient_id", "k_anonymity": 5,
                "max_suppression": 0.2},
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    base = tmp_path_factory.mktemp("gate")
    workspace, source = generated_workspace(base, ACTOR, ROWS, 7)
    return workspace, base, source


def policy(base: Path, name: str, change=None, **top) -> Path:
    """A policy file: BASE, changed by ``change(document)`` and the top-level keys given."""
    document = copy.deepcopy(BASE)
    document.update(policy=name, **top)
    if change is not None:
        change(document)
    path = base / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def approve_and_export(ws, path: Path, out: Path, recipient: str | None = None, **kwargs) -> dict:
    """Export under ``path`` (approved first); by default to a recipient of the policy's own, so earlier releases
    to other tests' recipients do not count."""
    governance.approve(ws, ACTOR, path, passphrase=TEST_PASSPHRASE)
    return export(ws, ACTOR, "patients", path, out, purpose="research", recipient=recipient or path.stem,
                  passphrase=TEST_PASSPHRASE, **kwargs)


def rows_of(out: Path, columns: str = "*") -> list[tuple]:
    return duckdb.connect().execute(f"SELECT {columns} FROM read_parquet('{out / 'patients.parquet'}')").fetchall()


# --- 1. classification is enforced -------------------------------------------------------------------------
def test_a_kept_direct_column_is_refused_by_check_approve_and_export(ws):
    """Keeping ``hkid`` (classified direct at registration) was approved and exported, signed k=72."""
    workspace, base, source = ws
    path = policy(base, "keeps-hkid", lambda d: d["columns"].update(hkid={"transform": "keep"}))
    with pytest.raises(RefusedError, match="columns.hkid: 'hkid' is classified direct"):
        check(workspace, ACTOR, path, "patients")
    with pytest.raises(RefusedError, match="columns.hkid: 'hkid' is classified direct"):
        governance.approve(workspace, ACTOR, path, passphrase=TEST_PASSPHRASE)
    # export checks the classes as they are when it runs, after the custodian's `classify`
    catalog.register(workspace, source, "visits", actor=ACTOR)
    approved = policy(base, "visits", applies_to=["visits"])
    governance.approve(workspace, ACTOR, approved, passphrase=TEST_PASSPHRASE)
    catalog.classify(workspace, "visits", {"sex": "direct"}, actor=ACTOR)
    with pytest.raises(RefusedError, match="columns.sex: 'sex' is classified direct"):
        export(workspace, ACTOR, "visits", approved, base / "never", purpose="research", recipient="alice",
               passphrase=TEST_PASSPHRASE)
    assert not (base / "never").exists()


def test_the_cli_refuses_with_exit_3_naming_the_column(ws):
    workspace, base, _ = ws
    path = policy(base, "cli-hkid", lambda d: d["columns"].update(hkid={"transform": "keep"}))
    env = cli_env(workspace.home, DATASHARE_ACTOR=ACTOR)
    for args in (("policy", "check", path, "--dataset", "patients"), ("policy", "approve", path)):
        result = run_cli(*map(str, args), home=workspace.home, env=env)
        assert result.code == 3 and "columns.hkid: 'hkid' is classified direct" in result.stderr, result.stderr
    shown = run_cli("policy", "explain", str(path), "--dataset", "patients", home=workspace.home, env=env)
    assert shown.code == 0 and "refused: columns.hkid" in shown.stdout


def test_a_policy_that_does_not_fit_its_dataset_is_not_approved(ws):
    """A typo in a column's name was approved, signed and listed active, and no export could ever use it."""
    workspace, base, _ = ws

    def misspelt(document: dict) -> None:
        document["columns"]["distict"] = document["columns"].pop("district")

    path = policy(base, "typo", misspelt)
    with pytest.raises(PolicyError, match="does not fit dataset patients"):
        check(workspace, ACTOR, path)  # without --dataset: against the registered datasets it applies to
    assert check(workspace, ACTOR, policy(base, "no-typo"))["checked_against"] == ["patients"]
    with pytest.raises(PolicyError, match="does not fit dataset patients") as caught:
        governance.approve(workspace, ACTOR, path, passphrase=TEST_PASSPHRASE)
    assert "did you mean 'district'" in str(caught.value.diagnostics())
    assert not [a for a in governance.list_approvals(workspace, ACTOR) if a["policy"] == "typo"]


def test_free_text_leaves_only_through_redact_identifiers(ws):
    """A note column with few identifiers in the classifier's sample is classed sensitive, not direct; ``keep``
    on it was approved and exported as written, a patient's HKID and phone with it."""
    workspace, base, _ = ws
    source = base / "remarks.csv"
    clean = [f"P{i:04d},{50 + i % 30},Seen in clinic; BP stable; review in {i % 6 + 1} weeks." for i in range(59)]
    source.write_text("patient_id,age,remarks\n" + "\n".join(clean)
                      + "\nP9999,70,Seen with HKID A123456(3) and tel 9123 4567.\n", encoding="utf-8")
    catalog.register(workspace, source, "remarks", actor=ACTOR)
    shown = {c.name: c for c in catalog.show(workspace, ACTOR, "remarks")[0].columns}
    assert (shown["remarks"].cls, shown["remarks"].detected) == ("sensitive", "clinical_note")

    def remarks_policy(name: str, rule: dict, **top) -> Path:
        columns = {"patient_id": {"transform": "pseudonymize"}, "remarks": rule}
        return policy(base, name, lambda d: d.update(columns=columns, privacy={}), applies_to=["remarks"], **top)

    released = ({"transform": "keep"}, {"transform": "mask", "keep_first": 40},
                {"transform": "suppress_rare", "min_count": 2})
    for rule in released:
        path = remarks_policy(f"remarks-{rule['transform']}", rule)
        with pytest.raises(RefusedError, match="columns.remarks: 'remarks' is free text"):
            check(workspace, ACTOR, path, "remarks")
        with pytest.raises(RefusedError, match="columns.remarks: 'remarks' is free text"):
            governance.approve(workspace, ACTOR, path, passphrase=TEST_PASSPHRASE)
    redacted = remarks_policy("remarks-redacted", {"transform": "redact_identifiers"})
    governance.approve(workspace, ACTOR, redacted, passphrase=TEST_PASSPHRASE)
    export(workspace, ACTOR, "remarks", redacted, base / "remarks-redacted", purpose="research", recipient="remarks",
           passphrase=TEST_PASSPHRASE)
    notes = [r[0] for r in duckdb.connect().execute(
        f"SELECT remarks FROM read_parquet('{base / 'remarks-redacted' / 'remarks.parquet'}')").fetchall()]
    assert "Seen with HKID [HKID] and tel [PHONE]." in notes
    waived = remarks_policy("remarks-waived", {"transform": "keep"}, waivers={"remarks": "checked by hand"})
    governance.approve(workspace, ACTOR, waived, passphrase=TEST_PASSPHRASE)


def test_a_policy_for_synthesis_is_approved_but_held_to_the_classes_when_it_exports(ws):
    """Synthesis releases no real row, so its policy may keep dates; exporting real rows under it may not."""
    workspace, base, _ = ws
    path = policy(base, "for-synthesis", lambda d: d["columns"].update(admission_date={"transform": "keep"}),
                  synthetic={"method": "copula"})
    governance.approve(workspace, ACTOR, path, passphrase=TEST_PASSPHRASE)
    with pytest.raises(RefusedError, match="columns.admission_date: 'admission_date' is classified quasi"):
        export(workspace, ACTOR, "patients", path, base / "not-synthetic", purpose="research", recipient="synth",
               passphrase=TEST_PASSPHRASE)


@pytest.mark.parametrize("rule", [{"transform": "mask", "keep_last": 2}, {"transform": "generalize", "to": "prefix",
                                                                           "length": 4}])
def test_a_partial_transform_of_a_direct_column_is_refused(ws, rule):
    workspace, base, _ = ws
    path = policy(base, "partial-phone", lambda d: d["columns"].update(phone=rule))
    with pytest.raises(RefusedError, match="columns.phone"):
        check(workspace, ACTOR, path, "patients")


def test_a_waiver_lets_a_direct_column_through_and_is_shown_logged_and_in_the_manifest(ws):
    workspace, base, _ = ws
    reason = "the registry's own staff need the phone's last digits to call back"
    path = policy(base, "waived-phone", lambda d: d["columns"].update(phone={"transform": "mask", "keep_last": 2}),
                  waivers={"phone": reason})
    assert explain(workspace, ACTOR, path, "patients")["waivers"] == {"phone": reason}
    manifest = approve_and_export(workspace, path, base / "waived", recipient="waiver-test")
    assert manifest["privacy"]["waivers"] == {"phone": reason}
    entries = [json.loads(line) for line in workspace.audit_path.read_text(encoding="utf-8").splitlines()]
    exported = [e for e in entries if e["action"] == "export" and e["outcome"] == "ok"]
    assert exported[-1]["details"]["waivers"] == {"phone": reason}


def test_an_exported_quasi_column_must_be_counted_by_the_gate(ws):
    """Shifted admission dates were kept but never counted: 99.3% unique, 68.6% of patients re-identified."""
    workspace, base, _ = ws
    shift = {"transform": "date_shift", "max_days": 30, "subject": "patient_id"}
    path = policy(base, "uncounted-date", lambda d: d["columns"].update(admission_date=shift))
    with pytest.raises(RefusedError, match="columns.admission_date: 'admission_date' is classified quasi"):
        check(workspace, ACTOR, path, "patients")

    def counted(document):
        document["columns"]["admission_date"] = shift
        document["privacy"]["quasi_identifiers"].append("admission_date")

    with pytest.raises(RefusedError, match="refused by the privacy gate"):  # counted, the dates are near unique
        approve_and_export(workspace, policy(base, "counted-date", counted), base / "counted")


@pytest.mark.parametrize("privacy", [{"k_anonymity": 10}, {"l_diversity": {"sensitive": "diagnosis", "l": 2}},
                                     {"max_suppression": 0.1}])
def test_gate_settings_without_quasi_identifiers_are_a_policy_error(ws, privacy):
    """``k_anonymity: 10`` without quasi-identifiers silently exported with k=1."""
    workspace, base, _ = ws
    path = policy(base, "no-qi", lambda d: d.update(privacy=privacy))
    with pytest.raises(PolicyError, match="without quasi_identifiers would measure nothing"):
        check(workspace, ACTOR, path)


# --- 2. people, not rows ------------------------------------------------------------------------------------
def test_k_counts_people_and_suppresses_whole_people(ws):
    """With repeat visits, the smallest "k=5" class (in rows) held one patient."""
    workspace, base, source = ws
    path = policy(base, "people", lambda d: d["privacy"].update(k_anonymity=8))
    out = base / "people"
    manifest = approve_and_export(workspace, path, out)
    con = duckdb.connect()
    data = f"read_parquet('{out / 'patients.parquet'}')"
    # the independent count, in plain SQL over the exported file: distinct pseudonyms per class
    k_people, k_rows = con.execute(f"""SELECT min(people), min(n) FROM (SELECT count(DISTINCT patient_id) AS people,
                                       count(*) AS n FROM {data}
                                       GROUP BY dob_age_band, sex, district_region)""").fetchone()
    assert k_people >= 8 and manifest["privacy"]["k_measured"] == k_people
    assert manifest["privacy"]["k_unit"] == "people" and manifest["privacy"]["subject"] == "patient_id"
    # counting rows would have passed classes with fewer than 8 people: the source has such classes
    risky = con.execute(f"""SELECT count(*) FROM (SELECT count(DISTINCT patient_id) p, count(*) n FROM
        (SELECT patient_id, sex, date_sub('year', dob, DATE '2026-01-01') // 20 AS band, district FROM '{source}')
        GROUP BY band, sex, district) WHERE n >= 8 AND p < 8""").fetchone()[0]
    assert risky > 0
    # a person is exported with all their rows or not at all: each pseudonym, recomputed from the documented keys
    secret = workspace.secret(TEST_PASSPHRASE)
    scope = json.dumps({"dataset": "patients", "recipient": "people"}, sort_keys=True, separators=(",", ":"))
    key = hmac.new(secret, b"datashare/pseudonym/" + scope.encode(), hashlib.sha256).digest()
    in_source = {hmac.new(key, patient.encode(), hashlib.sha256).hexdigest()[:16]: n
                 for patient, n in con.execute(f"SELECT patient_id, count(*) FROM '{source}' GROUP BY ALL").fetchall()}
    per_person_out = dict(con.execute(f"SELECT patient_id, count(*) FROM {data} GROUP BY ALL").fetchall())
    assert all(in_source[pseudonym] == n for pseudonym, n in per_person_out.items())
    people = manifest["privacy"]["people"]
    assert len(per_person_out) == people["out"] == people["selected"] - people["suppressed"]
    assert sum(per_person_out.values()) == manifest["rows"]["out"]
    assert manifest["rows"]["out"] + manifest["rows"]["suppressed"] == ROWS
    written = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert written["privacy"]["people"] == people and written["privacy"]["release"].startswith("R")


def test_l_counts_distinct_sensitive_values_per_class(ws):
    workspace, base, _ = ws
    path = policy(base, "diverse", lambda d: d["privacy"].update(l_diversity={"sensitive": "diagnosis", "l": 3}))
    out = base / "diverse"
    manifest = approve_and_export(workspace, path, out)
    l_min = duckdb.connect().execute(f"""SELECT min(d) FROM (SELECT count(DISTINCT diagnosis_prefix1) d FROM
        read_parquet('{out / 'patients.parquet'}') GROUP BY dob_age_band, sex, district_region)""").fetchone()[0]
    assert l_min >= 3 and manifest["privacy"]["l_measured"] == l_min


def test_risk_reports_rows_and_people(ws):
    workspace, base, _ = ws
    report = risk(workspace, ACTOR, policy(base, "risky"), "patients")
    assert report["k_unit"] == "people" and report["records"] == ROWS
    assert report["people"] < report["records"]  # repeat visits
    assert all({"records", "people", "classes"} <= set(b) for b in report["class_sizes"])


def test_no_subject_counts_rows_and_explain_says_so(ws):
    workspace, base, _ = ws
    path = policy(base, "rows-only", lambda d: d["privacy"].pop("subject"))
    plan = explain(workspace, ACTOR, path, "patients")
    assert plan["privacy"]["subject"] is None and plan["privacy"]["k_unit"] == "rows"
    assert any("no subject column" in note for note in plan["notes"])


# --- 3. unlinkable by default -------------------------------------------------------------------------------
SHIFTED = {"transform": "date_shift", "max_days": 30, "subject": "patient_id"}


def _with_shift(document):
    document["columns"]["admission_date"] = SHIFTED
    document["waivers"] = {"admission_date": "the linkage test needs the shifted dates"}


def test_two_recipients_share_no_pseudonym_and_no_shifted_date(ws):
    """Pseudonyms were identical for every recipient; per-recipient ones re-joined through the shifted dates."""
    workspace, base, _ = ws
    path = policy(base, "unlinkable", _with_shift)
    for recipient in ("alice", "bob"):
        approve_and_export(workspace, path, base / f"unlinkable-{recipient}", recipient=recipient)
    con = duckdb.connect()
    a, b = (f"read_parquet('{base / f'unlinkable-{r}' / 'patients.parquet'}')" for r in ("alice", "bob"))
    assert con.execute(f"SELECT count(*) FROM {a} SEMI JOIN {b} USING (patient_id)").fetchone()[0] == 0
    # joining on the shifted date and the other columns finds few of the same admissions
    joined = con.execute(f"""SELECT count(*) FROM {a} SEMI JOIN {b}
                             USING (admission_date, dob_age_band, sex, district_region, diagnosis_prefix1,
                                    hba1c)""").fetchone()[0]
    assert joined < 0.2 * con.execute(f"SELECT count(*) FROM {a}").fetchone()[0]


def test_two_datasets_to_one_recipient_share_no_pseudonym(ws):
    """Pseudonyms were identical for every dataset: two registries' extracts joined on them."""
    workspace, base, source = ws
    catalog.register(workspace, source, "admissions", actor=ACTOR)
    path = policy(base, "two-datasets", applies_to=["patients", "admissions"])
    governance.approve(workspace, ACTOR, path, passphrase=TEST_PASSPHRASE)
    for dataset in ("patients", "admissions"):
        export(workspace, ACTOR, dataset, path, base / f"two-{dataset}", purpose="research", recipient="olga",
               passphrase=TEST_PASSPHRASE)
    a, b = (f"read_parquet('{base / f'two-{d}' / f'{d}.parquet'}')" for d in ("patients", "admissions"))
    assert duckdb.connect().execute(f"SELECT count(*) FROM {a} SEMI JOIN {b} USING (patient_id)").fetchone()[0] == 0


def test_one_recipient_stays_consistent_across_exports(ws):
    workspace, base, _ = ws
    path = policy(base, "follow-up", _with_shift)
    first = approve_and_export(workspace, path, base / "follow-1", recipient="carol")
    second = approve_and_export(workspace, path, base / "follow-2", recipient="carol")
    assert Counter(rows_of(base / "follow-1")) == Counter(rows_of(base / "follow-2"))
    assert first["privacy"]["keys"] == {"scope": "recipient and dataset", "recipient": "carol",
                                        "dataset": "patients"} == second["privacy"]["keys"]


def test_a_link_group_shares_its_keys(ws):
    workspace, base, _ = ws
    path = policy(base, "consortium", _with_shift, link={"group": "hk-diabetes-consortium"})
    for recipient in ("dave", "erin"):
        manifest = approve_and_export(workspace, path, base / f"group-{recipient}", recipient=recipient)
        assert manifest["privacy"]["keys"] == {"scope": "link group", "link_group": "hk-diabetes-consortium"}
    assert Counter(rows_of(base / "group-dave")) == Counter(rows_of(base / "group-erin"))


# --- 4. nothing lines up by position --------------------------------------------------------------------------
def test_rows_come_out_in_an_order_of_their_own(ws):
    """Rows came out in source order, so two exports lined up by position."""
    workspace, base, _ = ws
    path = policy(base, "order", lambda d: d["columns"].update(hba1c={"transform": "keep"}))
    approve_and_export(workspace, path, base / "order-1", recipient="frank")
    approve_and_export(workspace, path, base / "order-2", recipient="frank")
    first, second = rows_of(base / "order-1"), rows_of(base / "order-2")
    assert Counter(first) == Counter(second) and first != second
    same_place = sum(1 for a, b in zip(first, second, strict=True) if a == b)
    assert same_place < 0.05 * len(first)  # on source order, every row was in the same place


def test_noise_is_fixed_per_recipient_so_averaging_gains_nothing(ws):
    """Averaging 10 noisy exports recovered 78% of the exact values."""
    workspace, base, _ = ws
    noisy = {"transform": "noise", "scale": 1.0, "digits": 2}
    path = policy(base, "noisy", lambda d: d["columns"].update(hba1c=noisy))
    outs = []
    for n, recipient in enumerate(("gina", "gina", "gina", "hank")):
        out = base / f"noisy-{n}"
        manifest = approve_and_export(workspace, path, out, recipient=recipient)
        outs.append(sorted(rows_of(out), key=repr))
    assert "fixed per row and recipient" in manifest["privacy"]["noise"]
    assert outs[0] == outs[1] == outs[2]  # the average of any number of exports is the first one
    # another recipient's noise is independent: few (band, sex, region, chapter, noisy value) rows coincide
    gina, hank = (Counter(row[1:] for row in rows if row[-1] is not None) for rows in (outs[0], outs[3]))
    assert sum((gina & hank).values()) < 0.2 * sum(hank.values())


# --- 5. the filter does not bound the shift -------------------------------------------------------------------
def test_a_filter_on_a_shifted_date_applies_to_the_shifted_value(ws):
    """``rows.where`` ran on the true dates, so shifted dates near the cut-off bounded the shift."""
    workspace, base, _ = ws
    cut = dt.date(2022, 1, 1)
    path = policy(base, "cut-off", _with_shift, rows={"where": f"admission_date >= DATE '{cut}'"})
    approve_and_export(workspace, path, base / "cut-off")
    dates = [r[0] for r in rows_of(base / "cut-off", "admission_date")]
    assert min(dates) >= cut  # on true dates, shifted ones reached up to 30 days before the cut-off


# --- 7. no export ever holds a direct column's values unless waived ------------------------------------------
DIRECT = ("patient_id", "hkid", "name_en", "name_zh", "phone", "email", "address")
QUASI = ("sex", "dob", "district")
RULES = {
    "keep": {"transform": "keep"}, "drop": {"transform": "drop"}, "pseudonymize": {"transform": "pseudonymize"},
    "redact": {"transform": "redact"}, "mask-all": {"transform": "mask"},
    "mask-part": {"transform": "mask", "keep_last": 4}, "prefix": {"transform": "generalize", "to": "prefix",
                                                                   "length": 6},
}
ALLOWED_ON_DIRECT = {"drop", "pseudonymize", "redact", "mask-all"}
_examples = iter(range(10_000))


# On a direct column an allowed transform is drawn nine times in ten, so that about half the policies export.
_DIRECT_CHOICES = sorted(ALLOWED_ON_DIRECT) * 5 + sorted(RULES)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({**{c: st.sampled_from(_DIRECT_CHOICES) for c in DIRECT},
                              **{c: st.sampled_from(sorted(RULES)) for c in QUASI}}),
       st.sets(st.sampled_from(DIRECT), max_size=2))
@example({**dict.fromkeys(DIRECT, "mask-all"), "patient_id": "pseudonymize", "phone": "mask-part", "sex": "keep",
          "dob": "prefix", "district": "keep"}, {"phone"})  # always one that exports, with a waived column
def test_no_export_holds_a_direct_columns_values_unless_waived(ws, rules, waived):
    workspace, base, source = ws
    n = next(_examples)
    kept = [c for c in DIRECT + QUASI if rules[c] != "drop"]
    if not kept:
        return
    document = {
        "policy": f"random-{n}", "version": 1, "applies_to": ["patients"], "purposes": ["research"],
        "recipients": ["*"], "columns": {c: RULES[rules[c]] for c in DIRECT + QUASI},
        "privacy": {"quasi_identifiers": [c for c in QUASI if c in kept]},
        "waivers": {c: "a property test waives it" for c in waived},
    }
    path = base / f"random-{n}.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    forbidden = [c for c in DIRECT if c not in waived and rules[c] not in ALLOWED_ON_DIRECT]
    if forbidden:  # refused exactly when a direct column, not waived, would be released in whole or in part
        with pytest.raises(RefusedError, match=f"columns.{forbidden[0]}: "):
            governance.approve(workspace, ACTOR, path, passphrase=TEST_PASSPHRASE)
        return
    out = base / f"random-{n}"
    governance.approve(workspace, ACTOR, path, passphrase=TEST_PASSPHRASE)
    export(workspace, ACTOR, "patients", path, out, purpose="research", recipient=f"random-{n}", fmt="csv",
           passphrase=TEST_PASSPHRASE)
    con = duckdb.connect()
    written = f"read_csv('{out / 'patients.csv'}', all_varchar=true)"
    cells = f"(SELECT value FROM (UNPIVOT {written} ON COLUMNS(*) INTO NAME name VALUE value))"
    for column in DIRECT:
        if column in waived:
            continue
        leaked = con.execute(f"""SELECT count(*) FROM (SELECT DISTINCT CAST("{column}" AS VARCHAR) AS v
                                 FROM read_csv('{source}', all_varchar=true) WHERE length(v) >= 4)
                                 WHERE v IN {cells}""").fetchone()[0]
        assert leaked == 0, column
