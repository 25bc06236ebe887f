"""Which text encoding a CSV file is in, judged from its first bytes.

A user names an encoding (UTF-8 by default); :data:`ENCODINGS` maps each name to the one DuckDB, or its
``encodings`` extension, reads. Before DuckDB reads a file, :func:`check_encoding` looks at its first bytes and
refuses a file plainly in another encoding than the one it would be read in (it would give mojibake or no rows),
naming the one to try. When DuckDB cannot decode a file, :func:`encoding_hint` judges from the bytes, never from
DuckDB's message (which can quote a line of the file), which encoding to suggest. Nothing here runs DuckDB.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from datashare.errors import InputError, UsageError

# User-facing encoding names -> the name DuckDB (or its encodings extension) knows.
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",  # DuckDB skips a UTF-8 byte-order mark itself
    "utf-16": "utf-16",
    "latin-1": "latin-1",
    "big5": "glibc-BIG5HKSCS-2.3.3",  # Big5-HKSCS is a superset of Big5
    "big5hkscs": "glibc-BIG5HKSCS-2.3.3",
    "big5-hkscs": "glibc-BIG5HKSCS-2.3.3",
}
# The same names -> the Python codec that reads a sample of the file (to look at its header, to judge it).
PYTHON_CODECS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "utf-8-sig": "utf-8-sig", "utf-16": "utf-16-le",
                 "latin-1": "latin-1", "big5": "big5hkscs", "big5hkscs": "big5hkscs", "big5-hkscs": "big5hkscs"}
_ENCODING_CHOICES = "utf-8 (the default, with or without BOM), big5, big5hkscs, utf-16 or latin-1"
_SAMPLE_BYTES = 1 << 20  # how much of a file the encoding checks look at
_UTF16_LE_BOM = b"\xff\xfe"
_UTF16_BE_BOM = b"\xfe\xff"
_UTF16_NUL_SHARE = 0.25  # UTF-16 text that is mostly ASCII has a zero in every other byte...
_UTF16_STRAY_NUL_SHARE = 0.05  # ...and (almost) none in the bytes between
_UTF16_MIN_NULS = 4
_BIG5_PAIRED_SHARE = 0.5  # Big5 text has its non-ASCII bytes in runs; Latin-1 accents stand alone


def normalise_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    key = encoding.strip().lower().replace("_", "-")
    if key == "big5-hkscs" or key.replace("-", "") == "big5hkscs":
        key = "big5hkscs"
    if key not in ENCODINGS:
        raise UsageError(f"unknown encoding {encoding!r}", hint=f"Use {_ENCODING_CHOICES}.")
    return key


def read_sample(path: Path) -> bytes:
    """The start of a file: what the encoding checks judge, and what a CSV's header is read from."""
    with path.open("rb") as handle:
        return handle.read(_SAMPLE_BYTES)


def _decodes(sample: bytes, codec: str) -> bool:
    """Whether the sample is valid in ``codec`` (a character cut at the sample's end is allowed)."""
    try:
        codecs.getincrementaldecoder(codec)().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _looks_big5(sample: bytes) -> bool:
    runs = re.findall(rb"[\x80-\xff]+", sample)
    total = sum(len(run) for run in runs)
    paired = sum(len(run) for run in runs if len(run) > 1)
    return bool(total) and paired / total >= _BIG5_PAIRED_SHARE and _decodes(sample, "big5hkscs")


def _utf16_byte_order(sample: bytes) -> str | None:
    """"le" or "be" when the bytes look like UTF-16 text without a byte-order mark, else None."""
    halves = {"le": (sample[1::2].count(0), sample[0::2].count(0)), "be": (sample[0::2].count(0),
                                                                          sample[1::2].count(0))}
    half = max(len(sample) // 2, 1)
    for order, (zeros, stray) in halves.items():
        if zeros >= _UTF16_MIN_NULS and zeros >= half * _UTF16_NUL_SHARE and stray <= half * _UTF16_STRAY_NUL_SHARE:
            return order
    return None


def encoding_hint(sample: bytes, tried: str | None = None) -> str:
    """Which encoding to try, judged from the bytes (never from DuckDB's message), other than ``tried``."""
    if sample.startswith(_UTF16_LE_BOM) or _utf16_byte_order(sample) == "le":
        suggestion, text = "utf-16", "Try --encoding utf-16."
    elif _decodes(sample, "utf-8"):
        suggestion, text = "utf-8", "Try --encoding utf-8 (the default: leave --encoding out)."
    elif _looks_big5(sample):
        suggestion, text = "big5hkscs", "It looks like Big5 (a Traditional Chinese system): try --encoding big5hkscs."
    elif not re.search(rb"[\x80-\x9f]", sample):
        suggestion, text = "latin-1", "Try --encoding latin-1, or the encoding the file was exported with."
    else:
        suggestion, text = "big5hkscs", "Try --encoding big5hkscs, or the encoding the file was exported with."
    if PYTHON_CODECS.get(suggestion) == PYTHON_CODECS.get(tried or "utf-8"):
        return ("It may mix encodings, or use one datashare does not read: convert it to UTF-8 first "
                "(e.g. iconv -f ENCODING -t UTF-8).")
    return text


def check_encoding(path: Path, encoding: str | None) -> str | None:
    """Refuse a file that is plainly in another encoding than the one it would be read in.

    A UTF-16 file (little-endian with its byte-order mark) is read as UTF-16
    without being asked. Reading a file in the wrong encoding would give
    mojibake or no rows at all, so it is refused with the encoding to try.
    """
    sample = read_sample(path)
    name = path.name
    current = encoding or "utf-8"
    if sample.startswith(_UTF16_BE_BOM):
        raise InputError(f"{name} is UTF-16 big-endian, which datashare cannot read",
                         hint=f"Convert it to UTF-8 first: iconv -f UTF-16BE -t UTF-8 {name} > {path.stem}.utf8.csv")
    if sample.startswith(_UTF16_LE_BOM):
        if encoding in (None, "utf-16"):
            return "utf-16"
        raise InputError(f"{name} is UTF-16 (it starts with a UTF-16 byte-order mark), not {encoding}",
                         hint="Try --encoding utf-16 (or leave --encoding out).")
    order = _utf16_byte_order(sample)
    if encoding == "utf-16":
        if order == "be":
            raise InputError(f"{name} looks like UTF-16 big-endian, which datashare cannot read",
                             hint=f"Convert it to UTF-8 first: iconv -f UTF-16BE -t UTF-8 {name} > "
                                  f"{path.stem}.utf8.csv")
        if not sample[1::2].count(0):
            raise InputError(f"{name} is not UTF-16 (it has none of the zero bytes UTF-16 text has)",
                             hint=encoding_hint(sample, encoding))
        return encoding
    if order is not None:
        raise InputError(f"{name} looks like UTF-16 without a byte-order mark, not {current}",
                         hint="Try --encoding utf-16." if order == "le" else
                         f"It is big-endian, which datashare cannot read: convert it to UTF-8 first "
                         f"(iconv -f UTF-16BE -t UTF-8 {name} > {path.stem}.utf8.csv).")
    if encoding in ("latin-1", "big5", "big5hkscs") and re.search(rb"[\x80-\xff]", sample):
        if _decodes(sample, "utf-8"):
            raise InputError(f"{name} looks like UTF-8, not {encoding}",
                             hint="Leave --encoding out: UTF-8 is the default.")
        if encoding == "latin-1" and _looks_big5(sample):
            raise InputError(f"{name} looks like Big5, not latin-1", hint="Try --encoding big5hkscs.")
    return encoding
