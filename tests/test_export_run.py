"""Exports through the library: the gate, independent k/l checks, and what may never appear in the output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datashare import catalog, governance, identifiers
from datashare.errors import InputError, RefusedError, SigningKeyError
from datashare.export.run import export
from datashare.init import init_workspace

from .conftest import PROJECT_ROOT, SAMPLE_CSV, TEST_KDF_ROUNDS, TEST_PASSPHRASE

POLICIES = PROJECT_ROOT / "policies"
ACTOR = "custodian"


@pytest.fixture(scope="module")
def ready(tmp_path_factory):
    """A workspace with the sample registered, a key, and the bundled policies approved."""
    home = tmp_path_factory.mktemp("exports")
    ws = init_workspace(home / "ws", ACTOR)[0]
    governance.create_key(ws, ACTOR, passphrase=TEST_PASSPHRASE, kdf_rounds=TEST_KDF_ROUNDS)
    catalog.register(ws, SAMPLE_CSV, "patients", actor=ACTOR)
    for name in ("hk-clinical-research", "hk-open-data", "hk-refused-by-k"):
        governance.approve(ws, ACTOR, POLICIES / f"{name}.yaml", passphrase=TEST_PASSPHRASE)
    return ws, home


def do_export(ws, out: Path, policy: str = "hk-clinical-research", **kwargs):
    defaults = {"purpose": "clinical-research", "recipient": "cicor", "passphrase": TEST_PASSPHRASE}
    defaults.update(kwargs)
    return export(ws, ACTOR, "patients", POLICIES / f"{policy}.yaml", out, **defaults)


def test_research_export_meets_k_and_l_by_independent_count(ready):
    ws, home = ready
    out = home / "run1"
    manifest = do_export(ws, out)
    data = out / "patients.parquet"
    con = duckdb.connect()
    k, rows = con.execute(f"""SELECT min(people), sum(n) FROM (SELECT count(DISTINCT patient_id) people, count(*) n
                              FROM read_parquet('{data}') GROUP BY age_band, sex, region)""").fetchone()
    l_min = con.execute(f"""SELECT min(d) FROM (SELECT count(DISTINCT diagnosis_prefix3) d FROM read_parquet('{data}')
                            GROUP BY age_band, sex, region)""").fetchone()[0]
    assert k >= 5 and l_min >= 2
    assert rows == manifest["rows"]["out"] and manifest["privacy"]["k_measured"] == k  # in people
    assert manifest["privacy"]["subject"] == "patient_id" and manifest["privacy"]["k_unit"] == "people"
    assert manifest["rows"]["suppressed"] / manifest["rows"]["selected"] <= 0.05
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{data}')").fetchall()]
    assert columns == manifest["columns_out"]
    assert "hkid" not in columns and "email" not in columns  # named drop, and dropped by default
    assert con.execute(f"SELECT min(admission_date) FROM read_parquet('{data}')").fetchone()[0].year >= 2019


def test_the_manifest_file_holds_exactly_the_contract_and_is_what_export_returns(ready):
    ws, home = ready
    out = home / "run-manifest"
    manifest = do_export(ws, out)
    body = (out / "manifest.json").read_bytes()
    on_disk = json.loads(body)
    assert on_disk == manifest
    assert body == (json.dumps(on_disk, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    assert set(on_disk) == {"format", "datashare_version", "dataset", "policy", "transforms", "columns_out",
                            "columns_dropped_by_default", "rows", "privacy", "purpose", "recipient", "actor", "time",
                            "audit_receipt", "signer_key_id", "files", "engine", "content"}
    assert on_disk["engine"] == "duckdb" and set(on_disk["content"]) == {"rows", "digest", "method"}
    assert set(on_disk["dataset"]) == {"name", "version", "source_sha256"}
    assert set(on_disk["policy"]) == {"name", "version", "sha256", "approval"}
    assert set(on_disk["rows"]) == {"in", "selected", "out", "suppressed"}
    assert set(on_disk["privacy"]) == {"quasi_identifiers", "k_required", "k_measured", "l_required", "l_measured",
                                       "max_suppression", "subject", "k_unit", "people", "waivers", "keys", "noise",
                                       "row_order", "linked_releases", "accepted_linkage", "release"}
    assert set(on_disk["audit_receipt"]) == {"seq", "hash"}
    # the data and its codebook; SHA256SUMS lists the manifest instead
    assert [f["name"] for f in on_disk["files"]] == ["codebook.json", "codebook.md", "patients.parquet"]
    assert all(set(f) == {"name", "size", "sha256"} for f in on_disk["files"])
    assert sorted(p.name for p in out.iterdir()) == ["SHA256SUMS", "SHA256SUMS.sig", "codebook.json", "codebook.md",
                                                     "manifest.json", "manifest.json.sig", "patients.parquet"]


def test_nothing_identifying_survives(ready):
    ws, home = ready
    out = home / "run-csv"
    do_export(ws, out, fmt="csv")
    text = (out / "patients.csv").read_text(encoding="utf-8")
    con = duckdb.connect()
    source = con.execute(f"SELECT patient_id, hkid, name_en, name_zh, email FROM read_csv('{SAMPLE_CSV}')").fetchall()
    for row in source:
        for value in row:
            if value:
                assert value.strip() not in text
            if value and identifiers.normalize_hkid(value):
                canonical = identifiers.normalize_hkid(value)
                assert canonical not in text and canonical.replace("(", "").replace(")", "") not in text
    csv_file = out / "patients.csv"
    notes = "\n".join(r[0] or "" for r in con.execute(f"SELECT note FROM read_csv('{csv_file}')").fetchall())
    assert not re.search(identifiers.HKID_PATTERN, notes)
    assert not re.search(identifiers.EMAIL_PATTERN, text)


def test_the_gate_refuses_and_writes_nothing(ready):
    ws, home = ready
    out = home / "refused"
    with pytest.raises(RefusedError, match="privacy gate.*fail k=5"):
        do_export(ws, out, policy="hk-refused-by-k")
    assert not out.exists()
    assert not [p for p in home.iterdir() if p.name.startswith(".refused")]  # no staging left behind


def test_existing_output_needs_overwrite(ready):
    ws, home = ready
    out = home / "twice"
    do_export(ws, out)
    with pytest.raises(InputError, match="not empty"):
        do_export(ws, out)
    do_export(ws, out, overwrite=True)
    assert (out / "manifest.json").exists()
    file_out = home / "afile"
    file_out.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        do_export(ws, file_out)


def test_overwrite_replaces_only_an_earlier_export(ready):
    """--overwrite deletes what it replaces: never a workspace, never a folder with files of someone else's."""
    ws, home = ready
    documents = home / "documents"
    documents.mkdir()
    (documents / "thesis.docx").write_bytes(b"years of work")
    with pytest.raises(InputError, match="not a datashare export"):
        do_export(ws, documents, overwrite=True)
    assert (documents / "thesis.docx").read_bytes() == b"years of work"
    log_before = ws.audit_path.read_bytes()
    with pytest.raises(InputError, match="not a datashare export"):
        do_export(ws, ws.home, overwrite=True)
    assert ws.audit_path.read_bytes().startswith(log_before) and ws.catalog_path.exists()
    earlier = home / "earlier"
    do_export(ws, earlier)
    (earlier / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not part of its export.*notes.txt"):
        do_export(ws, earlier, overwrite=True)
    assert (earlier / "notes.txt").exists()
    (earlier / "notes.txt").unlink()
    do_export(ws, earlier, overwrite=True)
    forged = home / "forged"
    forged.mkdir()
    (forged / "mine.txt").write_text("mine")
    (forged / "manifest.json").write_text('{"files": [{"name": "mine.txt"}]}')
    (forged / "manifest.json.sig").write_text("not a signature")
    with pytest.raises(InputError, match="not an export signed by this workspace's key"):
        do_export(ws, forged, overwrite=True)
    assert (forged / "mine.txt").read_text() == "mine"


def test_pseudonyms_repeat_across_exports_and_differ_per_recipient(ready, tmp_path):
    ws, home = ready
    policy = yaml.safe_load((POLICIES / "hk-clinical-research.yaml").read_text())
    policy.update(policy="per-recipient", recipients=["*"])
    policy["columns"]["patient_id"] = {"transform": "pseudonymize", "per_recipient": True}
    path = tmp_path / "per-recipient.yaml"
    path.write_text(yaml.safe_dump(policy))
    governance.approve(ws, ACTOR, path, passphrase=TEST_PASSPHRASE)
    got = {}
    for recipient in ("alice", "bob"):
        out = home / f"per-{recipient}"
        export(ws, ACTOR, "patients", path, out, purpose="clinical-research", recipient=recipient,
               passphrase=TEST_PASSPHRASE)
        got[recipient] = {r[0] for r in duckdb.connect().execute(
            f"SELECT patient_id FROM read_parquet('{out}/patients.parquet')").fetchall()}
    assert not got["alice"] & got["bob"]
    shared = [tmp_path / "shared-1", tmp_path / "shared-2"]  # the policy as shipped: one key for every recipient
    for out in shared:
        do_export(ws, out)
    a, b = ({r[0] for r in duckdb.connect().execute(f"SELECT patient_id FROM read_parquet('{out}/patients.parquet')")
             .fetchall()} for out in shared)
    assert a == b and a.isdisjoint(got["alice"])


values = st.text(alphabet="ABCXYZ0123456789陳許", min_size=6, max_size=12)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(values, values, values), min_size=5, max_size=30),
       st.sampled_from(["drop", "pseudonymize"]), st.sampled_from(["drop", "pseudonymize"]))
def test_no_value_of_a_dropped_or_pseudonymized_column_appears(tmp_path_factory, rows, first, second):
    home = tmp_path_factory.mktemp("prop")
    ws = init_workspace(home / "ws", ACTOR)[0]
    governance.create_key(ws, ACTOR, passphrase=TEST_PASSPHRASE, kdf_rounds=TEST_KDF_ROUNDS)
    src = home / "d.csv"
    src.write_text("a,b,c\n" + "".join(f"u{a},v{b},w{c}\n" for a, b, c in rows), encoding="utf-8")
    catalog.register(ws, src, "d", actor=ACTOR)
    policy = {"policy": "p", "version": 1, "applies_to": ["d"], "purposes": ["r"], "recipients": ["*"],
              "columns": {"a": {"transform": first}, "b": {"transform": second}, "c": {"transform": "keep"}},
              "waivers": {"c": "random test text that may look like a name; it is about no one"}}
    path = home / "p.yaml"
    path.write_text(yaml.safe_dump(policy))
    governance.approve(ws, ACTOR, path, passphrase=TEST_PASSPHRASE)
    out = home / "out"
    export(ws, ACTOR, "d", path, out, purpose="r", recipient="z", fmt="csv", passphrase=TEST_PASSPHRASE)
    text = (out / "d.csv").read_text(encoding="utf-8")
    for a, b, _ in rows:
        assert f"u{a}" not in text and f"v{b}" not in text


def test_the_gate_counts_missing_quasi_identifiers_as_one_class(tmp_path):
    """Rows whose quasi-identifier is empty form a class of their own, counted like any other."""
    ws = init_workspace(tmp_path / "ws", ACTOR)[0]
    governance.create_key(ws, ACTOR, passphrase=TEST_PASSPHRASE, kdf_rounds=TEST_KDF_ROUNDS)
    src = tmp_path / "d.csv"
    rows = ["a,1"] * 5 + [",1"] * 5 + [",2"] * 2 + ["b,1"] * 2  # 5 of a, 7 of empty, 2 of b (below k)
    src.write_text("region,score\n" + "\n".join(rows) + "\n", encoding="utf-8")
    catalog.register(ws, src, "d", actor=ACTOR)
    policy = {"policy": "nulls", "version": 1, "applies_to": ["d"], "purposes": ["r"], "recipients": ["*"],
              "columns": {"region": {"transform": "keep"}, "score": {"transform": "keep"}},
              "privacy": {"quasi_identifiers": ["region"], "k_anonymity": 5, "max_suppression": 0.2}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(policy))
    governance.approve(ws, ACTOR, path, passphrase=TEST_PASSPHRASE)
    out = tmp_path / "out"
    manifest = export(ws, ACTOR, "d", path, out, purpose="r", recipient="z", passphrase=TEST_PASSPHRASE)
    got = duckdb.connect().execute(f"SELECT region, count(*) FROM read_parquet('{out}/d.parquet') GROUP BY ALL "
                                   "ORDER BY ALL").fetchall()
    assert got == [("a", 5), (None, 7)]
    assert manifest["rows"] == {"in": 14, "selected": 14, "out": 12, "suppressed": 2}
    assert manifest["privacy"]["k_measured"] == 5


def test_an_unknown_dataset_is_named_before_any_governance_check(ready, tmp_path):
    ws, home = ready
    with pytest.raises(InputError, match="no dataset named 'nosuch'"):
        export(ws, ACTOR, "nosuch", POLICIES / "hk-clinical-research.yaml", tmp_path / "x",
               purpose="clinical-research", recipient="cicor", passphrase=TEST_PASSPHRASE)


def test_an_out_where_no_folder_can_be_made_is_a_clear_error(ready):
    ws, home = ready
    with pytest.raises(InputError, match="cannot (create|write)"):
        do_export(ws, Path("/proc/datashare-export"))


def test_a_wrong_passphrase_is_reported_before_a_gate_refusal(ready):
    ws, home = ready
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        do_export(ws, home / "refused-wrong-key", policy="hk-refused-by-k", passphrase="not the passphrase")
    with pytest.raises(RefusedError):
        do_export(ws, home / "refused-right-key", policy="hk-refused-by-k")


def test_spill_files_a_killed_process_left_are_removed(ready):
    ws, _ = ready
    spill = ws.catalog_path.with_name(ws.catalog_path.name + ".tmp")
    spill.mkdir()
    (spill / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"stale intermediate rows")
    with ws.connect(read_only=True) as con:
        assert con.execute("SELECT 1").fetchone() == (1,)
    assert not spill.exists()
