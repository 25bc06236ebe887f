"""Reading a policy's YAML: every key's and value's line and column, and what a plain load would accept, refused."""

from __future__ import annotations

import datetime as dt

import pytest

from datashare.policy.document import MAX_DEPTH, read_document, text_position


def test_values_are_built_and_every_key_and_value_has_its_place():
    document = read_document("policy: p\nexpires: 2027-12-31\ncolumns:\n  hkid: {transform: drop}\nlist:\n  - 1\n")
    assert document.complete and document.problems == []
    assert document.value == {"policy": "p", "expires": dt.date(2027, 12, 31),
                              "columns": {"hkid": {"transform": "drop"}}, "list": [1]}
    assert document.keys[("columns", "hkid", "transform")] == (4, 10)
    assert document.values[("columns", "hkid", "transform")] == (4, 21)
    assert document.position(("list", 0)) == (6, 5)
    assert document.position(("columns", "hkid", "keep_last")) == (4, 3)  # not written: its mapping's key
    assert document.position(("nothing",)) == (1, 1)


@pytest.mark.parametrize(("text", "position", "message"), [
    ("a: 1\nb: 2027-13-45\n", (2, 4), "'2027-13-45' is not a date that exists"),
    ("a: 1\na: 2\n", (2, 1), "the key 'a' is given twice, here and on line 1"),
    ("policy: p\nversion: !!python/object:os.system 1\n", (2, 10),
     "the YAML tag '!!python/object:os.system' is not allowed in a policy"),
    ("description: !!binary aGk=\n", (1, 14), "the YAML tag '!!binary' is not allowed in a policy"),
    ("s: !!set {a: null}\n", (1, 4), "the YAML tag '!!set' is not allowed in a policy"),
    ("base: &b {k_anonymity: 5}\nprivacy:\n  <<: *b\n", (3, 3), "merge keys (<<) are not allowed in a policy"),
    ("a: &a [*a]\n", (1, 8), "the alias *a names no complete value before it"),
    ("? [1]\n: 2\n", (1, 3), "a key must be a plain name, not a list or mapping"),
    ("n: " + "1" * 5000 + "\n", (1, 4), f"'{'1' * 40}…' cannot be read as a number"),
])
def test_what_a_plain_load_would_accept_is_reported_in_place_and_reading_goes_on(text, position, message):
    document = read_document(text + "last: 1\n")
    assert [(p.position, p.message) for p in document.problems] == [(position, message)]
    assert document.complete and document.value["last"] == 1


@pytest.mark.parametrize(("text", "position", "message"), [
    ("a: [1, 2\n", (2, 1), "not valid YAML: did not find expected ',' or ']'"),
    ("a: 1\n---\nb: 2\n", (2, 1), "a policy is one YAML document (this file holds more)"),
    ("a: " + "[" * 40 + "]" * 40, (1, 4 + MAX_DEPTH - 1), f"nested more than {MAX_DEPTH} levels deep"),
    ("a: \x07\n", (1, 4), "not valid YAML: a character that YAML does not allow"),
])
def test_what_cannot_be_read_stops_reading_with_its_place(text, position, message):
    document = read_document(text)
    assert not document.complete
    assert [(p.position, p.message) for p in document.problems] == [(position, message)]


def test_an_alias_to_a_complete_value_is_that_value():
    document = read_document("q: &q [sex, dob]\nprivacy: {quasi_identifiers: *q}\n")
    assert document.problems == [] and document.value["privacy"]["quasi_identifiers"] == ["sex", "dob"]


def test_text_position_counts_lines_and_columns_from_one():
    assert text_position("ab\ncd", 0) == (1, 1)
    assert text_position("ab\ncd", 4) == (2, 2)
    assert text_position(b"ab\n\xe9", 3) == (2, 1)
