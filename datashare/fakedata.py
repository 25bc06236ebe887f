"""Realistic fake Hong Kong patient records, generated inside DuckDB.

Every value comes from a hash of the row number and the seed, so the same seed
gives the same file, and ten million rows take seconds, not hours. The data
is messy the way real extracts are: HKIDs with and without brackets, lower
case and stray spaces; three phone formats; blanks in lab values; free-text
notes that mention the patient's name, HKID or phone; several admissions per
patient; common and rare ICD-10 diagnoses.

Usage: python -m datashare.fakedata --rows N --out FILE [--seed S] [--format csv|parquet]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from datashare.identifiers import DISTRICTS, install_sql_macros, sql_string_literal

COLUMNS = ("patient_id", "hkid", "name_en", "name_zh", "sex", "dob", "phone", "email", "district", "address",
           "admission_date", "discharge_date", "diagnosis", "hba1c", "ldl", "note")
SURNAMES = (("CHAN", "陳"), ("LEE", "李"), ("CHEUNG", "張"), ("WONG", "黃"), ("HO", "何"), ("LAM", "林"),
            ("LEUNG", "梁"), ("NG", "吳"), ("LAU", "劉"), ("CHOI", "蔡"), ("YEUNG", "楊"), ("CHENG", "鄭"),
            ("HUI", "許"), ("TSE", "謝"), ("KWOK", "郭"), ("TSANG", "曾"), ("LAW", "羅"), ("TANG", "鄧"),
            ("FUNG", "馮"), ("CHOW", "周"), ("CHU", "朱"), ("WU", "胡"), ("YIP", "葉"), ("POON", "潘"),
            ("SO", "蘇"), ("LO", "盧"), ("MAK", "麥"), ("YU", "余"), ("KWAN", "關"), ("AU-YEUNG", "歐陽"))
GIVEN = (("Tai", "大"), ("Man", "文"), ("Siu", "小"), ("Ming", "明"), ("Wing", "榮"), ("Ka", "家"),
         ("Yan", "欣"), ("Wai", "偉"), ("Mei", "美"), ("Ling", "玲"), ("Chi", "志"), ("Kin", "健"),
         ("Hoi", "海"), ("Shan", "珊"), ("Kwan", "君"), ("Fai", "輝"), ("Yee", "儀"), ("Hung", "雄"),
         ("Kit", "傑"), ("Lok", "樂"), ("Kung", "功"), ("Koi", "蓋"))
COMMON_DIAGNOSES = ("E11.9", "I10", "J18.9", "I25.10", "N18.3", "J44.9", "E78.5", "I48.91", "K21.9", "M54.5")
OTHER_DIAGNOSES = ("A41.9", "C34.90", "C50.919", "C22.0", "D57.1", "E75.22", "E84.9", "F20.9", "G35", "G71.0",
                   "I21.4", "I63.9", "J45.909", "K74.60", "N17.9", "Q87.4", "R55", "S72.001A", "T78.40", "Z99.2")
ESTATES = ("Lek Yuen Estate", "Shek Kip Mei Estate", "Tai Hing Gardens", "Taikoo Shing", "Mei Foo Sun Chuen",
           "Wah Fu Estate", "Kwong Ming Court", "Choi Hung Estate", "Tin Shui Wai Plaza", "Lai Kok Estate")
DOCTORS = ("LEE", "CHAN", "WONG", "NG", "YEUNG", "TAM")
DOMAINS = ("gmail.com", "yahoo.com.hk", "netvigator.com", "hotmail.com", "outlook.com")
HKID_PREFIXES = ("A", "C", "D", "E", "G", "H", "K", "M", "P", "R", "V", "Y", "Z", "XA", "WX")


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(sql_string_literal(v) for v in values) + "]"


def _pick(values: tuple[str, ...], h: str) -> str:
    """SQL picking one value of a list from a hash expression."""
    return f"{_sql_list(values)}[1 + CAST(({h}) % {len(values)} AS BIGINT)]"


def patients_query(rows: int, seed: int) -> str:
    """The SELECT that produces ``rows`` fake records for ``seed``."""
    patients = max(1, int(rows * 0.6))

    def h(salt: str, key: str = "p") -> str:
        return f"hash({key}, {int(seed)}, {sql_string_literal(salt)})"

    surnames_en = tuple(s for s, _ in SURNAMES)
    surnames_zh = tuple(z for _, z in SURNAMES)
    given_en = tuple(g for g, _ in GIVEN)
    given_zh = tuple(z for _, z in GIVEN)
    districts = tuple(DISTRICTS)
    return f"""
WITH admissions AS (
    SELECT i, CAST(hash(i, {int(seed)}, 'patient') % {patients} AS BIGINT) AS p FROM range({int(rows)}) t(i)
), people AS (
    SELECT i, p,
        CAST({h('surname')} % {len(SURNAMES)} AS BIGINT) AS s,
        CAST({h('given1')} % {len(GIVEN)} AS BIGINT) AS g1,
        CAST({h('given2')} % {len(GIVEN)} AS BIGINT) AS g2,
        {_pick(HKID_PREFIXES, h('prefix'))} AS prefix,
        lpad(CAST({h('digits')} % 1000000 AS VARCHAR), 6, '0') AS digits,
        {h('hkid_format')} % 20 AS hkid_format,
        {_pick(('2', '3', '5', '6', '9'), h('phone1'))}
            || lpad(CAST({h('phone')} % 10000000 AS VARCHAR), 7, '0') AS phone_digits,
        {h('phone_format')} % 3 AS phone_format,
        DATE '1930-01-01' + CAST({h('dob')} % 33000 AS INTEGER) AS dob,
        CAST({h('district')} % {len(districts)} AS BIGINT) AS d
    FROM admissions
), named AS (
    SELECT *,
        {_sql_list(surnames_en)}[1 + s] || ' ' || {_sql_list(given_en)}[1 + g1] || ' '
            || {_sql_list(given_en)}[1 + g2] AS name_en,
        {_sql_list(surnames_zh)}[1 + s] || {_sql_list(given_zh)}[1 + g1] || {_sql_list(given_zh)}[1 + g2] AS name_zh,
        prefix || digits || '(' || ds_hkid_expected(prefix || digits || '0') || ')' AS hkid_clean,
        CASE phone_format
            WHEN 0 THEN '+852 ' || substr(phone_digits, 1, 4) || ' ' || substr(phone_digits, 5, 4)
            WHEN 1 THEN phone_digits
            ELSE substr(phone_digits, 1, 4) || '-' || substr(phone_digits, 5, 4) END AS phone
    FROM people
)
SELECT
    'P' || lpad(CAST(p + 1 AS VARCHAR), 7, '0') AS patient_id,
    CASE WHEN hkid_format < 11 THEN hkid_clean
         WHEN hkid_format < 14 THEN replace(replace(hkid_clean, '(', ''), ')', '')
         WHEN hkid_format < 15 THEN lower(hkid_clean)
         WHEN hkid_format < 18 THEN replace(hkid_clean, '(', ' (')
         WHEN hkid_format < 19 THEN ' ' || hkid_clean || ' '
         ELSE NULL END AS hkid,
    name_en,
    name_zh,
    CASE WHEN {h('sex')} % 2 = 0 THEN 'M' ELSE 'F' END AS sex,
    dob,
    phone,
    lower(replace({_sql_list(surnames_en)}[1 + s], '-', '')) || '.' || lower({_sql_list(given_en)}[1 + g1])
        || CAST(p % 100 AS VARCHAR) || '@' || {_pick(DOMAINS, h('domain'))} AS email,
    {_sql_list(districts)}[1 + d] AS district,
    'Flat ' || CAST(1 + {h('flat')} % 30 AS VARCHAR) || chr(CAST(65 + {h('flat_letter')} % 8 AS INTEGER)) || ', '
        || CAST(1 + {h('floor')} % 40 AS VARCHAR) || '/F, Block ' || CAST(1 + {h('block')} % 12 AS VARCHAR) || ', '
        || {_pick(ESTATES, h('estate'))} || ', ' || {_sql_list(districts)}[1 + d] AS address,
    DATE '2018-01-01' + CAST(hash(i, {int(seed)}, 'admit') % 3200 AS INTEGER) AS admission_date,
    DATE '2018-01-01' + CAST(hash(i, {int(seed)}, 'admit') % 3200 + hash(i, {int(seed)}, 'stay') % 21 AS INTEGER)
        AS discharge_date,
    CASE WHEN hash(i, {int(seed)}, 'dx') % 100 < 85 THEN {_pick(COMMON_DIAGNOSES, h('dx1', 'i'))}
         ELSE {_pick(OTHER_DIAGNOSES, h('dx2', 'i'))} END AS diagnosis,
    CASE WHEN hash(i, {int(seed)}, 'hba1c_blank') % 5 = 0 THEN NULL
         ELSE round(4.5 + (hash(i, {int(seed)}, 'hba1c') % 80) / 10.0, 1) END AS hba1c,
    CASE WHEN hash(i, {int(seed)}, 'ldl_blank') % 4 = 0 THEN NULL
         ELSE round(1.2 + (hash(i, {int(seed)}, 'ldl') % 45) / 10.0, 1) END AS ldl,
    CASE hash(i, {int(seed)}, 'note') % 8
        WHEN 0 THEN 'Seen by Dr ' || {_pick(DOCTORS, h('doctor', 'i'))} || '. Stable, review in 3 months.'
        WHEN 1 THEN 'Pt ' || name_en || ' (' || hkid_clean || ') admitted via AED.'
        WHEN 2 THEN 'Called patient on ' || phone || ' to rebook follow-up.'
        WHEN 3 THEN name_zh || ' 家屬已獲通知 (family informed).'
        WHEN 4 THEN 'Discussed HbA1c result, diet advice given.'
        WHEN 5 THEN 'Referred to dietitian; contact ' || lower({_sql_list(given_en)}[1 + g1]) || '.'
            || CAST(p % 100 AS VARCHAR) || '@' || {_pick(DOMAINS, h('domain'))}
        ELSE NULL END AS note
FROM named
ORDER BY i
"""


def generate_patients(out: Path, rows: int, seed: int = 42, fmt: str = "csv") -> None:
    """Write ``rows`` fake patient records to ``out`` (CSV with header, or Parquet), atomically."""
    import duckdb

    if fmt not in ("csv", "parquet"):
        raise ValueError("fmt must be csv or parquet")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet"
    con = duckdb.connect()
    try:
        install_sql_macros(con)
        con.execute(f"COPY ({patients_query(rows, seed)}) TO {sql_string_literal(tmp)} ({options})")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate fake Hong Kong patient records.")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", choices=("csv", "parquet"), default=None)
    args = parser.parse_args(argv)
    fmt = args.format or ("parquet" if args.out.suffix.lower() in (".parquet", ".pq") else "csv")
    generate_patients(args.out, args.rows, seed=args.seed, fmt=fmt)


if __name__ == "__main__":
    main()
