"""`datashare synthesize` end to end: governed like an export, signed, audited, no real row or identifier out."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from datashare.catalog import register
from datashare.fakedata import generate_patients
from datashare.governance import approve, grant, set_service_accounts
from datashare.init import initialise

from .conftest import PROJECT_ROOT, RESEARCH_POLICY, SAMPLE_CSV, TEST_KDF_ROUNDS, TEST_PASSPHRASE, cli_env, run_cli
from .test_cli_export_verify import PRINCIPAL, recipient_checks

COPULA_POLICY = PROJECT_ROOT / "policies" / "hk-synthetic.yaml"
ROWS = 2500

MST_POLICY = """\
policy: hk-synthetic-dp
version: 1
applies_to: [patients]
purposes: [teaching]
recipients: ["*"]
columns:
  patient_id: {transform: pseudonymize}
  sex: {transform: keep}
  district: {transform: generalize, to: region}
  diagnosis: {transform: generalize, to: prefix, length: 1}
  hba1c: {transform: keep}
  admission_date: {transform: keep}
  discharge_date: {transform: keep}
synthetic:
  method: mst
  epsilon: 10.0
  delta: 1.0e-6
  bins: 8
  min_count: 5
  bounds: {hba1c: [4, 10]}   # admission_date: its range is chosen privately
  constraints: ["discharge_date >= admission_date"]   # modelled as the length of stay
"""


@pytest.fixture(scope="module")
def synth_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    home = root / "ws"
    ws = initialise(home, None, passphrase=TEST_PASSPHRASE, ask=False, kdf_rounds=TEST_KDF_ROUNDS).workspace
    actor = ws.config()["created_by"]
    generate_patients(root / "patients.parquet", ROWS, seed=7, fmt="parquet")
    register(ws, root / "patients.parquet", "patients", actor=actor)
    mst_policy = root / "hk-synthetic-dp.yaml"
    mst_policy.write_text(MST_POLICY, encoding="utf-8")
    tiny_policy = root / "tiny.yaml"  # a row filter leaving a few dozen rows
    tiny_policy.write_text(MST_POLICY.replace("policy: hk-synthetic-dp", "policy: tiny")
                           + "rows: {where: \"admission_date BETWEEN DATE '2024-01-01' AND DATE '2024-01-31'\"}\n",
                           encoding="utf-8")
    for policy in (COPULA_POLICY, RESEARCH_POLICY, mst_policy, tiny_policy):
        approve(ws, actor, policy, passphrase=TEST_PASSPHRASE)
    return {"root": root, "home": home, "ws": ws, "actor": actor, "mst_policy": mst_policy, "tiny_policy": tiny_policy,
            "source": root / "patients.parquet"}


def synthesize(synth_ws, out, *extra, policy=COPULA_POLICY, purpose="teaching", recipient="trainer", env=None):
    args = ["synthesize", "patients", "--policy", policy, "--out", out, "--purpose", purpose, "--recipient",
            recipient, "--seed", "5", *extra]
    return run_cli(*args, home=synth_ws["home"], env=env)


@pytest.fixture(scope="module")
def copula_run(synth_ws):
    out = synth_ws["root"] / "copula"
    result = synthesize(synth_ws, out, "--json")
    assert result.code == 0, result.stderr
    return result.json(), out


@pytest.fixture(scope="module")
def mst_run(synth_ws):
    out = synth_ws["root"] / "mst"
    result = synthesize(synth_ws, out, "--method", "mst", "--json", policy=synth_ws["mst_policy"])
    assert result.code == 0, result.stderr
    return result.json(), out


def read_rows(out: Path) -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM '{out / 'patients-synthetic.parquet'}'").fetchall()


def test_the_output_is_a_signed_export_that_verify_and_stock_tools_check(synth_ws, copula_run):
    manifest, out = copula_run
    assert sorted(f["name"] for f in manifest["files"]) == ["codebook.json", "codebook.md",
                                                            "patients-synthetic.parquet", "report.html", "report.json"]
    codebook = json.loads((out / "codebook.json").read_text(encoding="utf-8"))
    by_name = {c["name"]: c for c in codebook["columns"]}
    # named as an export names them: the 5-year age bands of dob cannot be taken for dates of birth
    assert [c["name"] for c in codebook["columns"]] == manifest["columns_out"] and "dob_age_band" in by_name
    assert by_name["dob_age_band"]["description"].startswith("synthetic, drawn from a copula model")
    assert by_name["patient_id"]["values"] == "token" and codebook["privacy"] is None
    assert "The rows are synthetic" in (out / "codebook.md").read_text(encoding="utf-8")
    verified = run_cli("verify", out, "--json", home=synth_ws["home"])
    assert verified.code == 0, verified.stderr
    assert "the receipt's entry records this manifest's content (SHA-256)" in verified.json()["checks"]
    public = synth_ws["root"] / "custodian.pub"
    assert run_cli("keys", "export-public", "--out", public, "--principal", PRINCIPAL,
                   home=synth_ws["home"]).code == 0
    assert recipient_checks(out, synth_ws["root"] / "custodian.pub.allowed_signers") == (0, 0, 0)
    original = (out / "report.json").read_bytes()
    (out / "report.json").write_bytes(original.replace(b'"exact_row_copies": 0', b'"exact_row_copies": 1'))
    try:
        assert run_cli("verify", out, home=synth_ws["home"]).code == 4
    finally:
        (out / "report.json").write_bytes(original)


def test_the_manifest_records_method_source_rows_and_figures(synth_ws, copula_run):
    manifest, _ = copula_run
    synthetic = manifest["synthetic"]
    assert synthetic["method"] == "copula" and synthetic["differentially_private"] is False
    assert synthetic["epsilon"] is None and "NOT differentially private" in synthetic["statement"]
    assert synthetic["parameters"]["seed"] == 5
    assert len(manifest["dataset"]["source_sha256"]) == 64
    assert manifest["rows"]["out"] == ROWS - manifest["rows"]["left_out"]
    assert manifest["rows"]["source_train"] + manifest["rows"]["source_holdout"] == ROWS
    assert manifest["report"]["exact_row_copies"] == 0 and manifest["report"]["quasi_identifier_copies"] == 0
    assert manifest["columns_as_fresh_tokens"] == ["patient_id"]
    assert "hkid" in manifest["columns_dropped_by_default"] and "hkid" not in manifest["columns_out"]


def test_the_report_measures_fidelity_and_privacy_on_the_holdout(copula_run):
    _, out = copula_run
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    fidelity, privacy = report["fidelity"], report["privacy"]
    # a few hundred holdout rows: the measures are noisy, but a broken model scores far lower
    assert fidelity["column_shape_mean"] >= 0.85, fidelity["column_shapes"]
    assert fidelity["column_pair_mean"] >= 0.6
    assert abs(privacy["dcr_share"] - 0.5) <= 0.1 and 0.35 <= privacy["membership_auc"] <= 0.65
    assert privacy["exact_row_copies"] == 0 and privacy["quasi_identifier_copies"] == 0
    assert privacy["constraint_breaches"] == 0
    downstream = fidelity["downstream"]
    assert 0 <= downstream["accuracy_trained_on_synthetic"] <= 1 and downstream["target"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "NOT differentially private" in page and "http" not in page and "<script" not in page
    assert all(key in report["explanations"] for key in ("dcr_share", "membership_auc", "column_shape_mean"))


def test_no_real_row_no_identifier_and_no_rare_level_comes_out(synth_ws, copula_run):
    manifest, out = copula_run
    data = out / "patients-synthetic.parquet"
    source = synth_ws["source"]
    names = [r[0] for r in duckdb.sql(f"DESCRIBE SELECT * FROM '{data}'").fetchall()]
    assert names == manifest["columns_out"]
    assert not {"hkid", "name_en", "name_zh", "phone", "email", "address", "note"} & set(names)
    ids = duckdb.sql(f"SELECT count(*), count(DISTINCT patient_id), bool_and(patient_id LIKE 'syn-%') FROM "
                     f"'{data}'").fetchone()
    assert ids == (manifest["rows"]["out"], manifest["rows"]["out"], True)
    assert duckdb.sql(f"SELECT count(*) FROM '{data}' s SEMI JOIN '{source}' r ON s.patient_id = r.patient_id"
                      ).fetchone()[0] == 0
    modelled = ["sex", "district", "admission_date", "discharge_date", "diagnosis", "hba1c", "ldl"]
    on = " AND ".join(f"s.{c} IS NOT DISTINCT FROM r.{c}" for c in modelled)
    assert duckdb.sql(f"SELECT count(*) FROM '{data}' s SEMI JOIN '{source}' r ON {on}").fetchone()[0] == 0
    rare = duckdb.sql(f"SELECT count(*) FROM (SELECT DISTINCT diagnosis FROM '{data}') s WHERE diagnosis NOT IN "
                      f"(SELECT diagnosis FROM '{source}' GROUP BY ALL HAVING count(*) >= 10)").fetchone()[0]
    assert rare == 0
    assert duckdb.sql(f"SELECT count(*) FROM '{data}' WHERE discharge_date < admission_date").fetchone()[0] == 0


def test_a_synthesis_leaves_an_audit_entry(synth_ws, copula_run):
    manifest, _ = copula_run
    entries = [json.loads(line) for line in (synth_ws["home"] / "audit.log").read_text().splitlines()]
    done = [e for e in entries if e["action"] == "synthesize" and e["outcome"] == "ok"
            and e["seq"] == manifest["audit_receipt"]["seq"]]
    assert done and done[0]["purpose"] == "teaching" and done[0]["recipient"] == "trainer"
    assert done[0]["details"]["method"] == "copula"


def test_mst_is_differentially_private_and_writes_its_accounting(mst_run):
    manifest, out = mst_run
    synthetic = manifest["synthetic"]
    assert synthetic["differentially_private"] is True
    assert (synthetic["epsilon"], synthetic["delta"]) == (10.0, 1e-6)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    accounting = report["privacy_accounting"]
    assert accounting["rho"] > 0 and set(accounting["spent"]) == {"levels", "one_way", "selection", "two_way"}
    assert abs(sum(accounting["spent"].values()) - accounting["rho"]) < 1e-9
    assert "(10, 1e-06)-DP" in report["guarantee"] and "only formal guarantee" in report["guarantee"]
    assert report["fidelity"]["column_shape_mean"] >= 0.8
    assert report["privacy"]["exact_row_copies"] == 0
    assert "Privacy accounting" in (out / "report.html").read_text(encoding="utf-8")
    values = duckdb.sql(f"SELECT min(hba1c), max(hba1c), count(DISTINCT district_region), min(admission_date), "
                        f"max(admission_date) FROM '{out / 'patients-synthetic.parquet'}'").fetchone()
    assert 4 <= values[0] <= values[1] <= 10 and values[2] <= 4  # three regions and NULL at most
    assert accounting["private_ranges"] == ["admission_date", "discharge_date − admission_date"]
    assert values[3].year >= 2017 and values[4].year <= 2027  # the admissions' years, found privately
    assert report["privacy"]["constraint_breaches"] == 0
    assert duckdb.sql(f"SELECT count(*) FROM '{out / 'patients-synthetic.parquet'}' WHERE discharge_date < "
                      "admission_date").fetchone()[0] == 0


@pytest.mark.parametrize(("policy", "extra", "purpose", "message"), [
    (RESEARCH_POLICY, [], "clinical-research", "declares no synthetic: section"),
    (COPULA_POLICY, [], "marketing", "purpose 'marketing' is not allowed"),
    (COPULA_POLICY, ["--method", "mst"], "teaching", "allows synthesis by copula, not mst"),
    ("mst", ["--epsilon", "20"], "teaching", "--epsilon 20.0 is not allowed"),
    ("tiny", [], "teaching", "too few rows to model and measure"),
])
def test_refusals_exit_3_and_write_nothing(synth_ws, policy, extra, purpose, message):
    chosen = synth_ws[f"{policy}_policy"] if policy in ("mst", "tiny") else policy
    out = synth_ws["root"] / "refused"
    result = synthesize(synth_ws, out, *extra, policy=chosen, purpose=purpose,
                        recipient="cicor" if policy == RESEARCH_POLICY else "trainer")
    assert result.code == 3, result.stderr
    assert message in result.stderr and not out.exists()
    last = json.loads((synth_ws["home"] / "audit.log").read_text().splitlines()[-1])
    assert (last["action"], last["outcome"]) == ("synthesize", "denied")


def test_an_unapproved_policy_and_a_role_without_the_right_are_refused(synth_ws):
    changed = synth_ws["root"] / "changed.yaml"
    changed.write_text(COPULA_POLICY.read_text(encoding="utf-8").replace("min_count: 10", "min_count: 2"),
                       encoding="utf-8")
    result = synthesize(synth_ws, synth_ws["root"] / "unapproved", policy=changed)
    assert result.code == 3 and "approv" in result.stderr
    ws, actor = synth_ws["ws"], synth_ws["actor"]
    set_service_accounts(ws, actor, True)
    grant(ws, actor, "olivia", "auditor")
    env = cli_env(synth_ws["home"], DATASHARE_ACTOR="olivia")
    result = synthesize(synth_ws, synth_ws["root"] / "auditor", env=env)
    assert result.code == 3 and "needs the analyst or custodian role" in result.stderr
    set_service_accounts(ws, actor, False)


@pytest.mark.parametrize("name", ["hk-synthetic.yaml", "hk-synthetic-dp.yaml"])
def test_the_bundled_synthesis_policies_work_on_the_bundled_sample(tmp_path, name):
    """The README promises every example policy works on the sample; the DP one bounds a difference publicly."""
    home = tmp_path / "ws"
    ws = initialise(home, None, passphrase=TEST_PASSPHRASE, ask=False, kdf_rounds=TEST_KDF_ROUNDS).workspace
    actor = ws.config()["created_by"]
    register(ws, SAMPLE_CSV, "patients", actor=actor)
    policy = PROJECT_ROOT / "policies" / name
    approve(ws, actor, policy, passphrase=TEST_PASSPHRASE)
    result = run_cli("synthesize", "patients", "--policy", policy, "--out", tmp_path / "out", "--purpose", "teaching",
                     "--recipient", "trainer", "--seed", "1", home=home)
    assert result.code == 0, result.stderr
