"""The store of approved policy texts: content-addressed, atomic, private, and read back only when it verifies."""

from __future__ import annotations

import hashlib
import stat

import pytest

from datashare.errors import VerificationError
from datashare.governance.textstore import store_text, stored_text
from datashare.workspace import open_workspace

from .conftest import make_workspace

TEXT = b"policy: p\nversion: 1\n"
SHA = hashlib.sha256(TEXT).hexdigest()


@pytest.fixture
def ws(tmp_path):
    return open_workspace(make_workspace(tmp_path / "ws"))


def test_a_text_is_stored_once_by_its_sha256_privately(ws):
    store_text(ws, SHA, TEXT)
    store_text(ws, SHA, TEXT)
    path = ws.policy_texts_dir / f"{SHA}.yaml"
    assert path.read_bytes() == TEXT and list(ws.policy_texts_dir.iterdir()) == [path]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(ws.policy_texts_dir.stat().st_mode) == 0o700
    assert stored_text(ws, SHA, "p v1") == TEXT
    assert stored_text(ws, hashlib.sha256(b"other").hexdigest(), "p v2") is None


def test_a_changed_text_is_refused_and_storing_again_repairs_it(ws):
    store_text(ws, SHA, TEXT)
    path = ws.policy_texts_dir / f"{SHA}.yaml"
    path.write_bytes(TEXT.replace(b"1", b"2"))
    with pytest.raises(VerificationError, match="the stored text of p v1 does not match its approved SHA-256"):
        stored_text(ws, SHA, "p v1")
    store_text(ws, SHA, TEXT)
    assert stored_text(ws, SHA, "p v1") == TEXT


def test_only_a_sha256_names_a_text_and_only_its_own_bytes_are_stored(ws, tmp_path):
    with pytest.raises(VerificationError, match="is not a SHA-256"):
        stored_text(ws, "../../config", "p v1")
    with pytest.raises(VerificationError, match="does not match its SHA-256"):
        store_text(ws, SHA, TEXT + b"# more\n")
    store_text(ws, SHA, TEXT)
    path = ws.policy_texts_dir / f"{SHA}.yaml"
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(VerificationError, match="cannot be read"):
        stored_text(ws, SHA, "p v1")
