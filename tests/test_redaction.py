"""Free-text redaction: the row's own identifiers in every spelling, third parties by pattern, clean text untouched,
and the leak check that runs before an export is signed."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datashare.policy.compiler import compile_policy
from datashare.policy.dialects import DUCKDB
from datashare.policy.keys import key_parameters, keys_table_sql
from datashare.policy.model import load_policy
from datashare.redaction import OwnIdentifier, inline_spellings, sql_redact_text

from .conftest import FIXTURES

COLUMNS = ("name_en", "name_zh", "hkid", "phone", "email", "address", "patient_id")
OWN = [OwnIdentifier(c, k) for c, k in zip(COLUMNS, ("NAME", "NAME", "HKID", "PHONE", "EMAIL", "ADDRESS", "ID"),
                                           strict=True)]
ROW = {"name_en": "CHAN Tai Man", "name_zh": "陳大文", "hkid": "A123456(3)", "phone": "9123 4567",
       "email": "chan.taiman1@gmail.com", "patient_id": "P0000123",
       "address": "Flat 5, 12/F, Block C, Shek Kip Mei Estate, Sham Shui Po, Kowloon"}
CLEAN_NOTES = (FIXTURES / "clean_notes.txt").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    connection.execute(keys_table_sql(), key_parameters(b"k" * 32, None))  # the export's order reads its nonce
    yield connection
    connection.close()


POLICY = ("policy: p\nversion: 1\napplies_to: [t]\npurposes: [r]\nrecipients: [x]\n"
          "columns: {note: {transform: redact_identifiers}, n: {transform: keep}}\n")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The export query of a policy redacting ``note`` in a table whose other columns are direct identifiers."""
    policy = tmp_path_factory.mktemp("policy") / "p.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    columns = [(c, "VARCHAR") for c in (*COLUMNS, "note")] + [("n", "INTEGER")]
    return compile_policy(load_policy(Path(policy)), "t", columns, [(o.expr, o.kind) for o in OWN])


def fill(con, notes: list[str | None], row: dict[str, str]) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE t ({', '.join(f'{c} VARCHAR' for c in COLUMNS)}, note VARCHAR, "
                "n INTEGER)")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * (len(COLUMNS) + 2))})",
                    [[row.get(c) for c in COLUMNS] + [note, n] for n, note in enumerate(notes)])


def redact(con, compiled, notes: list[str | None], row: dict[str, str] = ROW) -> list[str | None]:
    """The export's redaction of each note, in one query, for rows holding ``row`` in their direct columns."""
    fill(con, notes, row)
    return [r[0] for r in con.execute(f"SELECT note FROM ({compiled.export_sql}) ORDER BY n").fetchall()]


# One query for them all (a query per spelling cost a second per ten); a failure lists every spelling that failed.
ROW_SPELLINGS = [
    "CHAN Tai Man", "Chan Tai Man", "chan tai man", "CHAN TAI MAN", "Tai Man Chan", "Tai Man CHAN", "Chan, Tai-man",
    "chan tai-man", "tai-man chan", "CHAN, TAI-MAN",
    "CHAN, Tai Man", "Taiman", "Mr. Chan", "Mr CHAN", "chan", "陳大文", "陳 大 文", "大文", "ＣＨＡＮ Ｔａｉ Ｍａｎ",
    "A123456(3)", "a123456(3)", "A1234563", "A123456", "A123456 (3)", "[A123456(3)]", "A123456-3", "A123456.3",
    "A 123 456(3)", "Ａ１２３４５６（３）", "9123 4567", "91234567", "9123-4567", "91 23 45 67", "9123/4567",
    "+852 9123 4567", "９１２３４５６７", "chan.taiman1@gmail.com", "CHAN.TAIMAN1@GMAIL.COM",
    "chan.taiman1[at]gmail.com", "chan.taiman1 at gmail dot com", "chan.taiman1[at]gmail[dot]com",
    "Flat 5, 12/F, Block C, Shek Kip Mei Estate", "P0000123", "p0000123",
]


def test_the_rows_own_identifiers_go_in_every_spelling(con, compiled):
    outs = redact(con, compiled, [f"Seen today; {spelling} informed, stable." for spelling in ROW_SPELLINGS])
    failed = [(spelling, out) for spelling, out in zip(ROW_SPELLINGS, outs, strict=True)
              if not (out.startswith("Seen today; ") and out.endswith("] informed, stable.")) or leaks(out, ROW)]
    assert failed == []


def test_a_surname_goes_only_as_a_word(con, compiled):
    row = {**ROW, "name_en": "HO Siu Ming"}
    out = redact(con, compiled, ["Ho visited; who knows; HOspital staff; Siu Ming called"], row)[0]
    assert out == "[NAME] visited; who knows; HOspital staff; [NAME] called"


THIRD_PARTIES = [
    ("Friend Peter CHAN called", "Friend Peter [NAME] called"),  # an English given name alone is left
    ("Neighbour Lee Siu Ming helps", "Neighbour [NAME] helps"),
    ("neighbour lee siu ming helps", "neighbour [NAME] helps"),
    ("Siu Ming Lee helps", "[NAME] helps"),
    ("Mrs. Wong came", "Mrs. [NAME] came"),
    ("Dr Lee Ka Kit consulted; Mrs. Chan Mei Ling (wife)", "Dr [NAME] consulted; Mrs. [NAME] (wife)"),  # given too
    # two names one character apart (the second was left, and the leak guard refused the export)
    ("Discussed with Dr Lee/Dr Wong.", "Discussed with Dr [NAME]/Dr [NAME]."),
    ("Dr LEE/Dr HO/Dr NG; Wong Siu Ming/Lee Ka Kit", "Dr [NAME]/Dr [NAME]/Dr [NAME]; [NAME]/[NAME]"),
    ("NG tube inserted; NG feeding", "NG tube inserted; NG feeding"),  # NG alone in capitals: a tube
    ("Spouse WONG Mei Ling", "Spouse [NAME]"),
    ("鄰居李小明幫手", "鄰居[NAME]幫手"),
    ("冼 美 玲 探望", "[NAME] 探望"),
    ("王先生來電", "[NAME]先生來電"),
    ("call 27 60 74 32 or 2760/7432", "call [PHONE] or [PHONE]"),
    ("HKID B486892.A and [C123 456(7)] and D234567", "HKID [HKID] and [[HKID]] and [HKID]"),
    ("mail wong.siu[at]yahoo.com or wong at yahoo dot com", "mail [EMAIL] or [EMAIL]"),
    ("DOB 1936-12-04, seen 4/12/1936", "DOB [DATE], seen [DATE]"),
    ("born Dec 4, 1936; 4th December 1936; 1936年12月4號; 1936 年 12 月 4 日",
     "born [DATE]; [DATE]; [DATE]; [DATE]"),
    ("住院2024-01-03至2024-01-10，1/2/2024,3/2/2024", "住院[DATE]至[DATE],[DATE],[DATE]"),  # one character apart
    ("primary 4, 2020 cohort", "primary 4, 2020 cohort"),  # no month in title case: no date
    ("lives at Flat 24A, 38/F, Block 4, Yiu Tung Estate, Eastern", "lives at [ADDRESS], Eastern"),
    ("住在石硤尾邨3座12樓", "[ADDRESS]"),  # the estate's name may take a few characters before it
    ("地址：彌敦道123號", "地址:[ADDRESS]"),
]


def test_third_parties_go_by_pattern(con, compiled):
    outs = redact(con, compiled, [note for note, _ in THIRD_PARTIES], {})
    assert [(note, out) for (note, _), out in zip(THIRD_PARTIES, outs, strict=True)] == THIRD_PARTIES


def test_clean_clinical_text_comes_out_byte_for_byte(con, compiled):
    assert len(CLEAN_NOTES) >= 100
    assert redact(con, compiled, CLEAN_NOTES) == CLEAN_NOTES
    assert redact(con, compiled, CLEAN_NOTES, {}) == CLEAN_NOTES
    assert redact(con, compiled, ["石硤尾邨，好。", None, ""]) == ["石硤尾邨，好。", None, ""]
    # The function on its own, without the compiler's prepared columns, does the same.
    fill(con, CLEAN_NOTES, {})
    redacted = f"SELECT {sql_redact_text('note', d=DUCKDB)} FROM t ORDER BY n"
    assert [r[0] for r in con.execute(redacted).fetchall()] == CLEAN_NOTES


def test_text_with_an_identifier_keeps_the_rest(con, compiled):
    assert redact(con, compiled, ["陳大文，血壓穩定。"]) == ["[NAME],血壓穩定。"]  # folded where something was found


def test_the_function_in_place_redacts_as_the_compiled_export(con, compiled):
    notes = ["Pt Chan Tai Man (A 123456(3)) on 9123-4567", "陳 大 文 家屬", CLEAN_NOTES[0]]
    expected = redact(con, compiled, notes)
    own = inline_spellings([o for o in OWN if o.expr in ("name_zh", "hkid")], DUCKDB)
    sql = sql_redact_text("note", own, d=DUCKDB)
    assert [r[0] for r in con.execute(f"SELECT {sql} FROM t ORDER BY n").fetchall()] == expected


def leaks(text: str, row: dict[str, str]) -> list[str]:
    """An independent look for the row's own values: NFKC, lower case, letters, digits and CJK only."""
    def compact(s: str) -> str:
        return re.sub(r"[^a-z0-9\u3400-\u9fff]", "", unicodedata.normalize("NFKC", s).lower())

    body = compact(text)
    found = [v for v in (compact(row["hkid"])[:7], compact(row["phone"]), compact(row["email"].split("@")[0]),
                         compact(row["name_en"]), "taiman", row["name_zh"], row["name_zh"][1:]) if v in body]
    surname = row["name_en"].split()[0].lower()
    return found + ([surname] if surname in re.split(r"[^a-z]+", unicodedata.normalize("NFKC", text).lower()) else [])


NAME_SPELLINGS = ("{S} {G1} {G2}", "{s} {g1} {g2}", "{S_} {G1} {G2}", "{G1} {G2} {S_}", "{S_}, {G1}-{g2}", "{S_}",
                  "Mr. {S_}", "{ZH}", "{Z1} {Z2} {Z3}", "{Z2}{Z3}")
NUMBER_SPELLINGS = ("{P}{D}({C})", "{P}{D}{C}", "{p}{D}({C})", "{P}{D}", "[{P}{D}({C})]", "{P}{D}.{C}",
                    "{T1} {T2}", "{T1}{T2}", "{T1}-{T2}", "{T1}/{T2}", "+852 {T1} {T2}")
SURNAMES = (("CHAN", "陳"), ("LEUNG", "梁"), ("KUNG", "功"), ("SIN", "冼"), ("SHE", "佘"), ("HO", "何"))
GIVEN = (("Tai", "大"), ("Man", "文"), ("Siu", "小"), ("Ming", "明"), ("Wing", "榮"), ("Yan", "欣"))
filler = st.sampled_from(["Seen in clinic.", "BP 130/80.", "HbA1c 7.2%.", "家屬已獲通知。", "Stable,", "review",
                          "E11.9", "metformin 500 mg bd", "石硤尾邨", "，", "(", ")", ";"])


@st.composite
def rows_and_notes(draw):
    (s, sz), (g1, z1), (g2, z2) = draw(st.sampled_from(SURNAMES)), draw(st.sampled_from(GIVEN)), draw(
        st.sampled_from(GIVEN))
    prefix, digits = draw(st.sampled_from("ACDGKPZ")), draw(st.text("0123456789", min_size=6, max_size=6))
    check = draw(st.sampled_from("0123456789A"))
    phone = draw(st.sampled_from("2356789")) + draw(st.text("0123456789", min_size=7, max_size=7))
    row = {"name_en": f"{s} {g1} {g2}", "name_zh": sz + z1 + z2, "hkid": f"{prefix}{digits}({check})",
           "phone": f"{phone[:4]} {phone[4:]}", "email": f"{s.lower()}.{g1.lower()}{g2.lower()}@mail.com",
           "address": "Flat 1, 2/F, Block A, Lek Yuen Estate, Sha Tin, New Territories", "patient_id": "P0000042"}
    fields = {"S": s, "s": s.lower(), "S_": s.title(), "G1": g1, "G2": g2, "g1": g1.lower(), "g2": g2.lower(),
              "ZH": row["name_zh"], "Z1": sz, "Z2": z1, "Z3": z2, "P": prefix, "p": prefix.lower(), "D": digits,
              "C": check, "T1": phone[:4], "T2": phone[4:]}
    planted = [draw(st.sampled_from(NAME_SPELLINGS + NUMBER_SPELLINGS)).format(**fields)
               for _ in range(draw(st.integers(1, 4)))]
    pieces = draw(st.permutations(planted + draw(st.lists(filler, max_size=5))))
    return row, " ".join(pieces)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows_and_notes())
def test_no_spelling_of_the_rows_own_identifiers_survives(con, compiled, row_and_note):
    row, note = row_and_note
    out = redact(con, compiled, [note], row)[0]
    assert not leaks(out, row), (note, out)


@pytest.mark.parametrize(("row", "note", "expected"), [
    ({}, "Seen; C\u200bhan Tai\u00a0Man informed.", "Seen; [NAME] informed."),  # zero-width, no-break space
    ({}, "Seen; Ch\u00adan\u2060 on ward.", "Seen; [NAME] on ward."),  # soft hyphen, word joiner
    ({}, "tel \u0669\u0661\u0662\u0663\u0664\u0665\u0666\u0667, 9123\u20134567", "tel [PHONE], [PHONE]"),
    ({}, "HKID A\u200b123456(3)", "HKID [HKID]"),
    ({}, "Ch\u200ean seen; C\u202ahan\u202c; Ch\u034fan; Cha\ufe0fn", "[NAME] seen; [NAME]; [NAME]; [NAME]"),  # marks
    ({"name_en": "GRIFFIN Mary"}, "Mary Gri\ufb03n; Mr Gri\ufb00in", "[NAME]; Mr [NAME]"),  # ligatures from a PDF
    ({"name_en": "AU-YEUNG Ka Yan", "name_zh": "歐陽家欣"}, "Au-Yeung Ka Yan seen", "[NAME] seen"),
    ({"name_en": "AU-YEUNG Ka Yan", "name_zh": "歐陽家欣"}, "Ka Yan Au-Yeung seen", "[NAME] seen"),
    ({"name_en": "O'NEILL Mary Ann"}, "O'Neill Mary Ann and O\u2019Neill", "[NAME] and [NAME]"),
    ({"name_en": "AU-YEUNG Ka Yan"}, "Auyeung K.Y.; Mr AuYeung; AUYEUNG; au yeung; Au Yeung Ka Yan",
     "[NAME] K.Y.; Mr [NAME]; [NAME]; [NAME]; [NAME]"),  # a surname of parts joined or spaced
    ({"name_en": "O'NEILL Mary Ann"}, "ONeill M.; Mrs Oneill", "[NAME] M.; Mrs [NAME]"),
    # a surname of two words in capitals, as an identity card writes it
    ({"name_en": "AU YEUNG, Ka Yan"}, "Auyeung seen; Mr Au Yeung; AU YEUNG Ka Yan; Ka Yan Au-Yeung",
     "[NAME] seen; Mr [NAME]; [NAME]; [NAME]"),
    ({"name_en": "SZE TO Wing Kin"}, "Szeto reviewed; Mr Sze To; Wing Kin", "[NAME] reviewed; Mr [NAME]; [NAME]"),
    ({"name_en": "Au Yeung Ka Yan"}, "Ka Yan seen with mother; Ms Au Yeung informed. Kayan stable.",
     "[NAME] seen with mother; Ms [NAME] informed. [NAME] stable."),  # in any case
    ({"name_en": "DELA CRUZ, Maria Santos"}, "Ms Dela Cruz seen; Delacruz", "Ms [NAME] seen; [NAME]"),  # a particle
    # only those: two words in capitals are as often a surname and a given name
    ({"name_en": "CHAN TAIMAN, Peter"}, "Chan seen; Peter Chan", "[NAME] seen; Peter [NAME]"),
    ({"name_en": "WONG MEI, Mary"}, "Wong seen", "[NAME] seen"),
    ({"name_en": "O'NEILL Mary"}, "Mary ONeill seen; Oneill Mary", "[NAME] seen; [NAME]"),  # one given syllable
    ({"name_zh": "張偉明"}, "家屬张伟明，伟明", "家屬[NAME],[NAME]"),  # simplified characters of the row's name
    ({"name_zh": "歐陽家欣"}, "家欣好轉；歐陽小姐", "[NAME]好轉;[NAME]"),  # a compound surname's given name alone
    ({"name_zh": "欧阳家欣"}, "家欣好转", "[NAME]好转"),  # and the compound surname in simplified characters
    ({}, "陈大文到", "[NAME]到"),  # the whole name, not its given name alone
    ({"name_zh": "龐美玲"}, "龐小姐、龐太、龐先生", "[NAME]、[NAME]、[NAME]"),  # a surname on no list, with a title
    ({"patient_id": "HN12345678"}, "HN no. 12345678", "HN no. [ID]"),
    ({"name_en": "CHAN Tai Man Peter"}, "Chan Tai Man and TAI MAN", "[NAME] and [NAME]"),  # an English name after
    ({"name_en": "CHAN Tai Man, Peter"}, "Tai Man Peter Chan; Tai-man; Taiman; taiman",
     "[NAME]; [NAME]; [NAME]; [NAME]"),
    ({"name_en": "SANTOS José Maria"}, "SANTOS José Maria; José Maria Santos", "[NAME]; [NAME]"),  # not ASCII
    ({"name_en": "MÜLLER Hans"}, "Hans Müller, Mr Müller", "[NAME], Mr [NAME]"),
    # a value held in full-width letters
    ({"name_en": "ＭＯＲＧＡＮ Ｊａｍｅｓ"}, "James Morgan; Mr Morgan; ＭＯＲＧＡＮ", "[NAME]; Mr [NAME]; [NAME]"),
])
def test_unusual_spellings_of_the_rows_own_identifiers_go(con, compiled, row, note, expected):
    assert redact(con, compiled, [note], {**ROW, **row})[0] == expected


@pytest.mark.parametrize(("row", "note"), [
    ({"name_en": "AU-YEUNG Ka Yan"}, "Au.Yeung K.Y. seen"),
    ({"name_en": "O'NEILL Mary Ann"}, "O.Neill M. seen"),
    ({"name_en": "CHAN Tai Man Peter"}, "TAIMAN seen"),
    ({"name_en": "MÜLLER Hans"}, "MÜLLERHANS seen"),
    ({"name_en": "CHAN Tai Man"}, "CHAN\u2063TAIMAN seen"),  # an invisible character in a spelling it misses
    ({"name_en": "CHEUK Pak Lun (卓柏麟)"}, "柏麟覆診"),  # a name in both scripts: its spellings are of neither
    ({"name_en": "SANTOS José Maria"}, "JOSÉMARIA seen"),
])
def test_a_spelling_the_redaction_misses_is_refused_by_the_guard(con, compiled, row, note):
    with pytest.raises(duckdb.Error, match="leak guard"):
        redact(con, compiled, [note], {**ROW, **row})


def test_an_e_mail_written_with_spaced_brackets_goes(con, compiled):
    notes = ["mail wong (at) yahoo (dot) com", "mail wong [at] yahoo [dot] com [dot] hk"]
    assert redact(con, compiled, notes, {}) == ["mail [EMAIL]", "mail [EMAIL]"]
