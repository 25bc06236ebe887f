"""Durable writes: the file appears whole with its mode, or not at all; staged writes are all or nothing."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from datashare.core.fs import HASH_CHUNK, atomic_write_bytes, atomic_write_text, sha256_file, staged_writes


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_sets_content_and_mode_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "secret.key"
    atomic_write_bytes(target, b"\x00\x01key", mode=0o600)
    assert target.read_bytes() == b"\x00\x01key" and mode_of(target) == 0o600
    atomic_write_text(target, "名前\n", mode=0o640)  # replaces it, mode and all
    assert target.read_bytes() == "名前\n".encode() and mode_of(target) == 0o640
    assert os.listdir(tmp_path) == ["secret.key"]


def test_the_mode_is_set_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write_bytes(tmp_path / "public.pub", b"x", mode=0o644)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "public.pub") == 0o644


def test_staged_writes_rename_every_file_on_leaving(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    with staged_writes({a: (b"new a", 0o600), b: (b"new b", 0o644)}):
        assert a.read_bytes() == b"old a" and not b.exists()  # nothing changes inside the block
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"new b")
    assert (mode_of(a), mode_of(b)) == (0o600, 0o644)
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_a_failing_block_replaces_no_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    with pytest.raises(RuntimeError), staged_writes({a: (b"new a", 0o644), b: (b"new b", 0o644)}):
        raise RuntimeError("the audit entry could not be written")
    assert a.read_bytes() == b"old a" and not b.exists()
    assert os.listdir(tmp_path) == ["a"]


def test_a_file_that_cannot_be_staged_stops_all_of_them(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"old a")
    ran = []
    with pytest.raises(FileNotFoundError), staged_writes({a: (b"new a", 0o644),
                                                         tmp_path / "missing" / "b": (b"b", 0o644)}):
        ran.append(True)
    assert not ran and a.read_bytes() == b"old a"
    assert os.listdir(tmp_path) == ["a"]


@pytest.mark.parametrize("size", [0, 1, HASH_CHUNK, 3 * HASH_CHUNK + 7])
def test_sha256_file_matches_hashlib(tmp_path, size):
    path = tmp_path / "data.bin"
    data = os.urandom(size)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
