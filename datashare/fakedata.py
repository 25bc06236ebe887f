"""Realistic fake Hong Kong patient records, generated inside DuckDB.

Every value comes from ``hash(row or patient, seed, salt)``, so the same seed
gives the same file, and ten million rows take seconds, with no Python loop
over rows. The data is messy the way real extracts are: HKIDs with and
without brackets, in lower case, with stray spaces or full-width brackets;
several phone formats; blanks; free-text notes that mention the patient's
name, HKID or phone. Each patient has one identity (a unique HKID, one name,
one date of birth) and often several admissions, so per-subject date
shifting and k-anonymity have something to work on.

Command line: ``datashare generate --rows N --out FILE [--seed S] [--format csv|parquet]``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from datashare.core.fs import fsync_dir, fsync_file
from datashare.core.progress import SILENT, Progress, watching
from datashare.core.sql import sql_string_literal
from datashare.errors import InputError, UsageError
from datashare.identifiers import DISTRICTS, sql_hkid_check_digit

COLUMNS = ("patient_id", "hkid", "name_en", "name_zh", "sex", "dob", "phone", "email", "district", "address",
           "admission_date", "discharge_date", "diagnosis", "hba1c", "ldl", "note")
FORMATS = ("csv", "parquet")
SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
ADMISSIONS_PER_PATIENT = 1.6  # on average; patients are drawn with replacement, so some have many
HKID_LETTERS = "ABCDEGHJKLMNPRSTVWYZ"  # one-letter prefixes; every patient gets a distinct HKID
_HKID_SPACE = len(HKID_LETTERS) * 1_000_000
_HKID_MULTIPLIER = 7_654_321  # coprime with the HKID space, so patient -> HKID is a permutation
MAX_ROWS = int(_HKID_SPACE * ADMISSIONS_PER_PATIENT)

SURNAMES = (("CHAN", "陳"), ("LEE", "李"), ("CHEUNG", "張"), ("WONG", "黃"), ("HO", "何"), ("LAM", "林"),
            ("LEUNG", "梁"), ("NG", "吳"), ("LAU", "劉"), ("CHOI", "蔡"), ("YEUNG", "楊"), ("CHENG", "鄭"),
            ("HUI", "許"), ("TSE", "謝"), ("KWOK", "郭"), ("TSANG", "曾"), ("LAW", "羅"), ("TANG", "鄧"),
            ("FUNG", "馮"), ("CHOW", "周"), ("CHU", "朱"), ("WU", "胡"), ("YIP", "葉"), ("POON", "潘"),
            ("SO", "蘇"), ("LO", "盧"), ("MAK", "麥"), ("YU", "余"), ("KWAN", "關"), ("AU-YEUNG", "歐陽"))
GIVEN = (("Tai", "大"), ("Man", "文"), ("Siu", "小"), ("Ming", "明"), ("Wing", "榮"), ("Ka", "家"),
         ("Yan", "欣"), ("Wai", "偉"), ("Mei", "美"), ("Ling", "玲"), ("Chi", "志"), ("Kin", "健"),
         ("Hoi", "海"), ("Shan", "珊"), ("Kwan", "君"), ("Fai", "輝"), ("Yee", "儀"), ("Hung", "雄"),
         ("Kit", "傑"), ("Lok", "樂"), ("Kung", "功"), ("Koi", "蓋"))
# (ICD-10 code, relative frequency): a few chronic conditions dominate, rare diseases appear now and then.
DIAGNOSES = (("E11.9", 14), ("I10", 12), ("J18.9", 8), ("I50.9", 5), ("I25.1", 5), ("N18.3", 5), ("J44.9", 5),
             ("E78.5", 5), ("N39.0", 5), ("I48.9", 4), ("I63.9", 4), ("K21.9", 4), ("M54.5", 4), ("A41.9", 3),
             ("C34.9", 3), ("K80.2", 3), ("S72.0", 3), ("Z51.1", 3), ("O80", 3), ("C18.9", 2), ("C22.0", 2),
             ("J45.9", 2), ("F32.9", 2), ("I21.9", 2), ("K74.6", 1), ("N17.9", 1), ("R55", 1), ("E75.2", 1),
             ("E84.9", 1), ("G35", 1), ("G71.0", 1), ("Q87.4", 1), ("D57.1", 1), ("G12.2", 1), ("D66", 1),
             ("E70.0", 1), ("Q90.9", 1), ("C91.0", 1))
# Per district, in the order of identifiers.DISTRICTS: (estates and buildings, streets).
PLACES = (
    (("Kwun Lung Lau", "Kennedy Town Centre", "Hill Road House"), ("Des Voeux Road West", "Queen's Road Central")),
    (("Lee Garden Hill", "Convention Plaza", "Tai Hang Terrace"), ("Hennessy Road", "Lockhart Road")),
    (("Taikoo Shing", "Yiu Tung Estate", "Kornhill"), ("King's Road", "Shau Kei Wan Road")),
    (("Wah Fu Estate", "South Horizons", "Lei Tung Estate"), ("Aberdeen Main Road", "Ap Lei Chau Bridge Road")),
    (("Hoi Fu Court", "Prosperous Garden", "Chungking Mansions"), ("Nathan Road", "Shanghai Street")),
    (("Shek Kip Mei Estate", "Mei Foo Sun Chuen", "Un Chau Estate"), ("Cheung Sha Wan Road", "Lai Chi Kok Road")),
    (("Whampoa Garden", "Oi Man Estate", "Kowloon City Plaza"), ("Ma Tau Wai Road", "Prince Edward Road West")),
    (("Choi Hung Estate", "Lok Fu Estate", "Tsz Wan Shan Estate"), ("Lung Cheung Road", "Shatin Pass Road")),
    (("Lam Tin Estate", "Sau Mau Ping Estate", "Amoy Gardens"), ("Kwun Tong Road", "Hoi Bun Road")),
    (("Kwai Chung Estate", "Cheung Ching Estate", "Tsing Yi Garden"), ("Kwai Chung Road", "Tsing Yi Road")),
    (("Luk Yeung Sun Chuen", "Allway Gardens", "Cheung Shek Estate"), ("Castle Peak Road", "Sha Tsui Road")),
    (("Butterfly Estate", "Siu Hong Court", "Tai Hing Gardens"), ("Tuen Mun Heung Sze Wui Road", "Tsing Lun Road")),
    (("Tin Shui Estate", "Long Ping Estate", "Kingswood Villas"), ("Castle Peak Road Yuen Long", "Tai Tong Road")),
    (("Choi Yuen Estate", "Wah Ming Estate", "Cheung Wah Estate"), ("San Fung Avenue", "Jockey Club Road")),
    (("Tai Yuen Estate", "Fu Heng Estate", "Tai Po Centre"), ("Kwong Fuk Road", "On Fu Road")),
    (("Lek Yuen Estate", "City One Shatin", "Sha Kok Estate"), ("Sha Tin Centre Street", "Tai Chung Kiu Road")),
    (("Po Lam Estate", "Hau Tak Estate", "Sai Kung Town Centre"), ("Po Hong Road", "Hiram's Highway")),
    (("Yat Tung Estate", "Discovery Bay", "Fu Tung Estate"), ("Tung Chung Road", "Mui Wo Ferry Pier Road")),
)
DOCTORS = ("LEE", "CHAN", "WONG", "NG", "YEUNG", "TAM", "LAU", "CHEUNG")
DOMAINS = ("gmail.com", "yahoo.com.hk", "netvigator.com", "hotmail.com", "outlook.com", "ymail.com")
# First digits of phone numbers, weighted: mostly mobiles (9, 6, 5), some fixed lines (2, 3), few 4 and 7.
PHONE_FIRST_DIGITS = "999999666665555222347"


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(sql_string_literal(v) for v in values) + "]"


def _pick(values: tuple[str, ...], h: str) -> str:
    """SQL picking one value of a list with a hash expression."""
    return f"{_sql_list(values)}[1 + CAST(({h}) % {len(values)} AS BIGINT)]"


def patients_query(rows: int, seed: int) -> str:
    """The SELECT producing ``rows`` fake admissions for ``seed``; rows come out in a fixed order."""
    seed = int(seed)
    patients = max(1, round(rows / ADMISSIONS_PER_PATIENT))
    id_width = max(7, len(str(patients)))
    hkid_offset = (seed * 2_654_435_761) % _HKID_SPACE

    def h(salt: str, key: str = "p") -> str:
        """A pseudo-random UBIGINT for the patient (key p) or the admission (key i)."""
        return f"hash({key}, {seed}, {sql_string_literal(salt)})"

    def unit(salt: str, key: str = "p") -> str:
        """A pseudo-random DOUBLE in [0, 1)."""
        return f"(({h(salt, key)} % 1000003) / 1000003.0)"

    diagnoses = tuple(code for code, weight in DIAGNOSES for _ in range(weight))
    estates = "[" + ", ".join(_sql_list(e) for e, _ in PLACES) + "]"
    streets = "[" + ", ".join(_sql_list(s) for _, s in PLACES) + "]"
    regions = tuple(region for _, region in DISTRICTS.values())
    return f"""
WITH admissions AS (
    SELECT i, CAST({h('patient', 'i')} % {patients} AS BIGINT) AS p FROM range({int(rows)}) t(i)
), people AS (
    SELECT i, p,
        CAST({h('surname')} % {len(SURNAMES)} AS BIGINT) + 1 AS s,
        CAST({h('given1')} % {len(GIVEN)} AS BIGINT) + 1 AS g1,
        CAST({h('given2')} % {len(GIVEN)} AS BIGINT) + 1 AS g2,
        (p * {_HKID_MULTIPLIER} + {hkid_offset}) % {_HKID_SPACE} AS hkid_number,
        {h('hkid_format')} % 100 AS hkid_format,
        {_pick(tuple(PHONE_FIRST_DIGITS), h('phone1'))}
            || lpad(CAST({h('phone')} % 10000000 AS VARCHAR), 7, '0') AS phone_digits,
        {h('phone_format')} % 100 AS phone_format,
        DATE '1930-01-01' + CAST(33000 * pow(({unit('dob_a')} + {unit('dob_b')}) / 2, 1.6) AS INTEGER) AS dob,
        CAST({h('district')} % {len(DISTRICTS)} AS BIGINT) + 1 AS d,
        {_pick(diagnoses, h('dx', 'i'))} AS diagnosis
    FROM admissions
), named AS (
    SELECT *,
        {_sql_list(tuple(s for s, _ in SURNAMES))}[s] AS surname,
        {_sql_list(tuple(g for g, _ in GIVEN))}[g1] AS given1,
        {_sql_list(tuple(g for g, _ in GIVEN))}[g2] AS given2,
        {_sql_list(tuple(z for _, z in SURNAMES))}[s] || {_sql_list(tuple(z for _, z in GIVEN))}[g1]
            || {_sql_list(tuple(z for _, z in GIVEN))}[g2] AS name_zh,
        CASE WHEN {h('hkid_two_letters')} % 50 = 0 THEN {_pick(('W', 'X'), h('hkid_first'))} ELSE '' END
            || {_sql_list(tuple(HKID_LETTERS))}[1 + CAST(hkid_number // 1000000 AS BIGINT)] AS hkid_prefix,
        lpad(CAST(hkid_number % 1000000 AS VARCHAR), 6, '0') AS hkid_digits,
        greatest(dob, DATE '2018-01-01') AS first_possible_admission
    FROM people
), identified AS (
    SELECT *,
        surname || ' ' || given1 || ' ' || given2 AS name_en,
        hkid_prefix || hkid_digits || '(' || {sql_hkid_check_digit('hkid_prefix', 'hkid_digits')} || ')' AS hkid_clean,
        substr(phone_digits, 1, 4) || ' ' || substr(phone_digits, 5, 4) AS phone_spaced,
        first_possible_admission + CAST({unit('admit', 'i')}
            * date_diff('day', first_possible_admission, DATE '2026-12-31') AS INTEGER) AS admission_date
    FROM named
)
SELECT
    'P' || lpad(CAST(p + 1 AS VARCHAR), {id_width}, '0') AS patient_id,
    CASE WHEN hkid_format < 60 THEN hkid_clean
         WHEN hkid_format < 75 THEN replace(replace(hkid_clean, '(', ''), ')', '')
         WHEN hkid_format < 80 THEN lower(hkid_clean)
         WHEN hkid_format < 87 THEN replace(hkid_clean, '(', ' (')
         WHEN hkid_format < 90 THEN ' ' || hkid_clean || ' '
         WHEN hkid_format < 92 THEN replace(replace(hkid_clean, '(', '（'), ')', '）')
         WHEN hkid_format < 95 THEN lower(replace(replace(hkid_clean, '(', ''), ')', ''))
         ELSE NULL END AS hkid,
    name_en,
    name_zh,
    CASE WHEN {h('sex')} % 2 = 0 THEN 'M' ELSE 'F' END AS sex,
    dob,
    CASE WHEN phone_format < 30 THEN '+852 ' || phone_spaced
         WHEN phone_format < 65 THEN phone_digits
         WHEN phone_format < 85 THEN replace(phone_spaced, ' ', '-')
         WHEN phone_format < 94 THEN phone_spaced
         WHEN phone_format < 97 THEN '(852) ' || phone_digits
         ELSE NULL END AS phone,
    CASE WHEN {h('email_blank')} % 10 = 0 THEN NULL
         ELSE lower(replace(surname, '-', '')) || '.' || lower(given1 || given2) || CAST(p % 100 AS VARCHAR)
              || '@' || {_pick(DOMAINS, h('domain'))} END AS email,
    {_sql_list(tuple(DISTRICTS))}[d] AS district,
    CASE WHEN {h('address_kind')} % 3 = 0
         THEN 'Room ' || CAST(1 + {h('floor')} % 30 AS VARCHAR) || lpad(CAST(1 + {h('flat')} % 12 AS VARCHAR), 2, '0')
              || ', ' || CAST(1 + {h('floor')} % 30 AS VARCHAR) || '/F, ' || CAST(1 + {h('number')} % 300 AS VARCHAR)
              || ' ' || {streets}[d][1 + CAST({h('street')} % 2 AS BIGINT)]
         ELSE 'Flat ' || CAST(1 + {h('flat')} % 24 AS VARCHAR) || ', ' || CAST(1 + {h('floor')} % 40 AS VARCHAR)
              || '/F, Block ' || chr(CAST(65 + {h('block')} % 8 AS INTEGER)) || ', '
              || {estates}[d][1 + CAST({h('estate')} % 3 AS BIGINT)]
         END || ', ' || {_sql_list(tuple(DISTRICTS))}[d] || ', ' || {_sql_list(regions)}[d] AS address,
    admission_date,
    admission_date + CAST(45 * pow({unit('stay', 'i')}, 3) AS INTEGER) AS discharge_date,
    diagnosis,
    CASE WHEN {h('hba1c_blank', 'i')} % 5 = 0 THEN NULL
         WHEN diagnosis = 'E11.9' THEN round(6.5 + 5.0 * {unit('hba1c', 'i')}, 1)
         ELSE round(4.6 + 1.8 * {unit('hba1c', 'i')}, 1) END AS hba1c,
    CASE WHEN {h('ldl_blank', 'i')} % 4 = 0 THEN NULL ELSE round(1.2 + 4.5 * {unit('ldl', 'i')}, 1) END AS ldl,
    CASE {h('note', 'i')} % 10
        WHEN 0 THEN 'Seen by Dr ' || {_pick(DOCTORS, h('doctor', 'i'))} || '. Pt ' || name_en || ' (' || hkid_clean
                    || ') called from ' || phone_spaced || '.'
        WHEN 1 THEN 'Pt ' || name_en || ' admitted via AED.'
        WHEN 2 THEN 'Called patient on ' || phone_digits || ' to rebook follow-up.'
        WHEN 3 THEN name_zh || ' 家屬已獲通知 (family informed).'
        WHEN 4 THEN 'Discussed HbA1c result, diet advice given.'
        WHEN 5 THEN 'Referred to dietitian; contact ' || lower(given1 || given2) || CAST(p % 100 AS VARCHAR) || '@'
                    || {_pick(DOMAINS, h('domain'))}
        WHEN 6 THEN 'Seen by Dr ' || {_pick(DOCTORS, h('doctor', 'i'))} || '. Stable, review in 3 months.'
        WHEN 7 THEN 'Wound dressing done. No fever.'
        WHEN 8 THEN 'HKID ' || hkid_clean || ' checked at registration.'
        ELSE NULL END AS note
FROM identified
"""


def generate_patients(out: Path, rows: int, seed: int = 42, fmt: str = "csv", progress: Progress = SILENT) -> None:
    """Write ``rows`` fake patient admissions to ``out`` (UTF-8 CSV with a header, or Parquet), atomically.

    The file appears under its name only when complete: DuckDB writes a temporary file in the same folder,
    which is flushed to disk and renamed. ``progress`` hears how far the writing has got.
    """
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    if not 1 <= rows <= MAX_ROWS:
        raise InputError(f"rows must be between 1 and {MAX_ROWS:,}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
    con = duckdb.connect()
    try:
        # The source is a range: keeping insertion order keeps the file byte-identical for a seed.
        con.execute("SET preserve_insertion_order = true")
        progress.phase(f"Generating {rows:,} patients")
        with watching(con, progress.on_percent):
            con.execute(f"COPY ({patients_query(rows, seed)}) TO {sql_string_literal(tmp)} ({options})")
        os.chmod(tmp, 0o644)
        fsync_file(Path(tmp))
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        con.close()


def generate_file(out: Path, rows: int, *, seed: int = 42, fmt: str | None = None, overwrite: bool = False,
                  progress: Progress = SILENT) -> str:
    """``generate_patients`` for a person naming a file: the format from ``fmt`` or the file's suffix, and an
    existing file kept unless ``overwrite``. Returns the format written."""
    if str(out) == "-" or out.is_dir():
        raise UsageError("--out names the file to write (e.g. patients.csv)")
    chosen = fmt or SUFFIX_FORMATS.get(out.suffix.lower())
    if chosen is None:
        raise UsageError(f"cannot tell the format from {out.name!r}: name it .csv or .parquet, or give --format")
    if chosen not in FORMATS:
        raise UsageError(f"unknown format {chosen!r}: use {' or '.join(FORMATS)}")
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists", hint="Choose another --out, or --overwrite.")
    generate_patients(out, rows, seed=seed, fmt=chosen, progress=progress)
    return chosen
