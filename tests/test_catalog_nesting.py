"""The JSON nesting scan (catalog/nesting.py) against Python's own parser, with chunk boundaries anywhere."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datashare.catalog.nesting import MAX_JSON_DEPTH, NestingError, check_json_depth

# Text that tries to fool a scanner: quotes, backslashes, brackets and escapes inside strings.
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\/,:') + list(string.ascii_letters[:4]) + ["é", "\n"]),
                      max_size=8)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    return 0


def refused(path, limit: int, chunk_bytes: int) -> bool:
    try:
        check_json_depth(path, limit, chunk_bytes=chunk_bytes)
    except NestingError:
        return True
    return False


@settings(max_examples=300, deadline=None)
@given(documents=st.lists(values, min_size=1, max_size=3), chunk_bytes=st.integers(1, 40),
       layout=st.sampled_from(["array", "ndjson", "indented"]))
def test_refused_exactly_when_deeper_than_the_limit(tmp_path_factory, documents, chunk_bytes, layout):
    path = tmp_path_factory.mktemp("json") / "doc.json"
    if layout == "ndjson":
        text = "".join(json.dumps(document, ensure_ascii=False) + "\n" for document in documents)
        deepest = max(depth(document) for document in documents)
    else:
        text = json.dumps(documents, ensure_ascii=False, indent=1 if layout == "indented" else None)
        deepest = depth(documents)
    path.write_text(text, encoding="utf-8")
    assert not refused(path, deepest, chunk_bytes)
    assert refused(path, deepest - 1, chunk_bytes)


@pytest.mark.parametrize("body", [
    b"[" * 10_000 + b"]" * 10_000,  # 20 KB of nested arrays: minutes and gigabytes in DuckDB's type inference
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,  # a segmentation fault in DuckDB
    b'[{"ok": "[[[["}, ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"]",
])
def test_hostile_nesting_is_refused(tmp_path, body):
    path = tmp_path / "deep.json"
    path.write_bytes(body)
    with pytest.raises(NestingError, match=f"more than {MAX_JSON_DEPTH} levels"):
        check_json_depth(path)


def test_the_limit_itself_is_allowed(tmp_path):
    path = tmp_path / "ok.json"
    path.write_bytes(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    check_json_depth(path)


@pytest.mark.parametrize("body, reason", [
    (b"]]][[[", "never opened"),
    (b'{"a": "x\n[[["}', "end of its line"),  # a raw newline in a string: the quotes do not pair up
    (b'{"a": "open', "end of the file"),
])
def test_brackets_and_quotes_that_do_not_pair_up_are_refused(tmp_path, body, reason):
    path = tmp_path / "bad.json"
    path.write_bytes(body)
    with pytest.raises(NestingError, match=reason):
        check_json_depth(path)


def test_a_string_cut_by_a_chunk_boundary_hides_nothing(tmp_path):
    """A deep array right after a long string with escapes: found whichever byte a chunk ends on."""
    path = tmp_path / "cut.json"
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    path.write_bytes(b'[{"a": "' + b'\\\\' * 7 + b'\\"' + b"[" * 20 + b'"}, ' + deep + b"]")
    for chunk_bytes in range(1, 80):
        with pytest.raises(NestingError):
            check_json_depth(path, chunk_bytes=chunk_bytes)
