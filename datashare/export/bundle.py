"""The signed export directory: data files, ``manifest.json``, ``SHA256SUMS`` and their SSHSIG signatures.

The manifest lists the data files; ``SHA256SUMS`` lists the data files, the
manifest and its signature, and is signed itself, so a recipient with only
``ssh-keygen`` and ``sha256sum`` catches every change, addition and removal.
The directory is built in a sibling temporary folder and renamed into place
only when every file is written and synced, so a crash leaves no partial
export under the final name. Verification checks the signatures, then every
file's size and SHA-256, then that nothing is missing or extra — and reports
the first failure.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from datashare import __version__, signing
from datashare.core.fs import fsync_dir, fsync_file, sha256_file
from datashare.core.progress import SILENT, Progress
from datashare.errors import InputError, VerificationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SUMS = "SHA256SUMS"
SUMS_SIGNATURE = "SHA256SUMS.sig"
MANIFEST_FORMAT = 2  # 2: SHA256SUMS lists the manifest and is signed; the manifest no longer lists SHA256SUMS
_SIGNED_SUMS_FORMAT = 2
_BUNDLE_FILES = (MANIFEST, SIGNATURE, SUMS, SUMS_SIGNATURE)  # the files every export has beside its data
# A folder name is at most 255 bytes; the staging folder beside --out adds ".", ".tmp-", a pid and 9 characters.
MAX_OUT_NAME_BYTES = 255 - 32
_FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)

# A check of the manifest's audit receipt (the receipt, the signer's key id, the SHA-256 of the manifest's content)
# -> the sentences saying what was checked, or it raises.
AuditCheck = Callable[[Any, str, str], list[str]]


@dataclass(frozen=True)
class ExportManifest:
    """What an export claims, each figure measured on the rows written; ``manifest.json`` is its JSON, signed.

    The field names and their nesting are a contract: recipients read them.
    """

    dataset: dict[str, Any]  # name, version, source_sha256
    policy: dict[str, Any]  # name, version, sha256, approval
    transforms: dict[str, dict[str, Any]]  # column -> {transform, and its parameters}
    columns_out: list[str]
    columns_dropped_by_default: list[str]
    rows: dict[str, int]  # in, selected, out, suppressed
    privacy: dict[str, Any]  # quasi_identifiers, k_required, k_measured, l_required, l_measured, max_suppression
    purpose: str
    recipient: str
    actor: str
    time: str
    audit_receipt: dict[str, Any]  # the export's entry in the audit log: seq and hash ({} until it is written)
    signer_key_id: str
    files: list[dict[str, Any]]  # name, size and sha256 of each data file, by name
    format: int = MANIFEST_FORMAT
    datashare_version: str = __version__
    engine: str = "duckdb"  # what ran the policy: duckdb or spark
    content: dict[str, Any] = field(default_factory=dict)  # rows, digest, method: see export/digest.py

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        """The exact bytes of ``manifest.json``: sorted keys, two-space indent, UTF-8, a final newline."""
        return _json_bytes(self.to_dict())

    def content_sha256(self) -> str:
        """What the export's audit entry records (``manifest_sha256``): see :func:`content_sha256`."""
        return content_sha256(self.to_dict())


def _json_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def content_sha256(manifest: dict[str, Any]) -> str:
    """SHA-256 of a manifest's content: all of it but the audit receipt, in ``manifest.json``'s encoding.

    The export's audit entry records it; the entry is written before the
    manifest is final (the manifest then names the entry), so the receipt is
    the one part left out. ``manifest`` is the manifest's JSON object, as
    written or as read back: both give the same bytes.
    """
    content = json.loads(_json_bytes({key: value for key, value in manifest.items() if key != "audit_receipt"}))
    return hashlib.sha256(_json_bytes(content)).hexdigest()


def check_destination(final: Path, *, overwrite: bool, trusted_keys: list[signing.KeyInfo] | None = None) -> None:
    """Refuse a destination that is a file, or a non-empty folder unless ``overwrite``.

    With ``trusted_keys`` a folder is replaced only if its manifest is signed by one of them.
    """
    if len(os.fsencode(final.name)) > MAX_OUT_NAME_BYTES:
        raise InputError(f"the --out folder's name is too long: at most {MAX_OUT_NAME_BYTES} bytes "
                         "(the export is staged under a longer name beside it)", hint="Choose a shorter --out.")
    try:
        _check_destination(final, overwrite=overwrite, trusted_keys=trusted_keys)
    except OSError as exc:  # a path too long for the system, a loop of links…
        raise InputError(f"cannot use {final} as --out: {exc.strerror or type(exc).__name__}",
                         hint="Choose another --out.") from None


def _check_destination(final: Path, *, overwrite: bool, trusted_keys: list | None) -> None:
    if final.is_symlink():
        raise InputError(f"{final} is a symbolic link: give the real folder for the export")
    if final.exists():
        if not final.is_dir():
            raise InputError(f"{final} exists and is not a folder")
        _refuse_to_replace(final, overwrite=overwrite, trusted_keys=trusted_keys)
        if not os.access(final, os.W_OK):  # e.g. immutable: the export would be made, then could not be put there
            raise InputError(f"cannot replace {final}: it is not writable", hint="Choose another --out.")
    parent = final.absolute().parent
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder {parent}: {exc.strerror}") from exc
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write in {parent}")


def _refuse_to_replace(final: Path, *, overwrite: bool, trusted_keys: list[signing.KeyInfo] | None = None
                       ) -> None:
    """An existing non-empty folder is replaced only with ``overwrite``, and only if it is an earlier export.

    ``--overwrite`` deletes what it replaces: a folder holding anything but an
    export's own files (a workspace, someone's documents) is never replaced.
    """
    entries = list(final.iterdir())
    if not entries:
        return
    if not overwrite:
        raise InputError(f"{final} already exists and is not empty", hint="Choose another --out, or --overwrite.")
    try:
        manifest = json.loads((final / MANIFEST).read_bytes())
        listed = {item["name"] for item in manifest["files"]} | set(_BUNDLE_FILES)
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{final} is not a datashare export (no readable {MANIFEST}): --overwrite only replaces "
                         "an earlier export", hint="Choose another --out.") from None
    foreign = sorted(p.name for p in entries if p.name not in listed or p.is_symlink() or not p.is_file())
    if foreign:
        raise InputError(f"{final} holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} that "
                         f"{'is' if len(foreign) == 1 else 'are'} not part of its export (first: {foreign[0]}); "
                         "--overwrite would delete them", hint="Move them away, or choose another --out.")
    if trusted_keys is not None:  # a manifest anyone could write is no proof: the signature is
        try:
            signing.verify((final / MANIFEST).read_bytes(), (final / SIGNATURE).read_text(encoding="utf-8"),
                          trusted_keys)
        except (OSError, UnicodeDecodeError, VerificationError):
            raise InputError(f"{final} is not an export signed by this workspace's key: --overwrite only replaces "
                             "those", hint="Choose another --out.") from None


def staging_dir_for(final: Path) -> Path:
    """A new temporary folder beside ``final`` (same filesystem, so the last rename is atomic).

    Its name carries this process's id (``.NAME.tmp-<pid>-XXXXXXXX``). Staging
    folders for the same final name left by a process that no longer exists
    (killed mid-export) hold de-identified data nobody will publish: they are
    removed first.
    """
    parent = final.absolute().parent
    _recover_from_crashes(parent, final.name)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{final.name}{_STAGING_MARK}{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise InputError(f"cannot create a folder in {parent}: {exc.strerror or type(exc).__name__}",
                         hint="Choose another --out.") from None


_STAGING_MARK = ".tmp-"
_STAGING_SUFFIX = re.compile(r"([0-9]+)-[a-z0-9_]{8}")  # what follows ".NAME.tmp-": pid, then mkdtemp's 8 characters
_REPLACED_MARK = ".old-"  # ".NAME.old-<pid>": the earlier export while --overwrite swaps in the new one
_REPLACED_SUFFIX = re.compile(r"([0-9]+)")  # what follows ".NAME.old-": the pid


def _recover_from_crashes(parent: Path, name: str) -> None:
    """Tidy what exports of ``name`` killed mid-way left in ``parent`` (their process is gone).

    A staging folder holds de-identified data nobody will publish: removed. An
    earlier export moved aside by --overwrite goes back under its name if the new
    one never arrived, and is removed if it did.
    """
    final = parent / name
    for mark, suffix in ((_STAGING_MARK, _STAGING_SUFFIX), (_REPLACED_MARK, _REPLACED_SUFFIX)):
        prefix = f".{name}{mark}"
        try:
            with os.scandir(parent) as listing:
                entries = [entry for entry in listing if entry.name.startswith(prefix)]
        except OSError:
            return
        for entry in entries:
            match = suffix.fullmatch(entry.name[len(prefix):])
            if match is None or not entry.is_dir(follow_symlinks=False) or _process_exists(int(match.group(1))):
                continue
            if mark == _REPLACED_MARK and not final.exists():
                with contextlib.suppress(OSError):
                    os.replace(entry.path, final)
                    continue
            shutil.rmtree(entry.path, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal counts: it exists)."""
    if pid <= 0 or pid == os.getpid():
        return True  # not a name this code makes for another process: leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def list_files(staging: Path) -> list[dict[str, Any]]:
    """The manifest's ``files``: name, size and SHA-256 of each data file in ``staging``."""
    data_files = sorted(p for p in staging.iterdir() if p.is_file())
    return [{"name": p.name, "size": p.stat().st_size, "sha256": sha256_file(p)} for p in data_files]


class SignedManifest(Protocol):
    """A manifest that can be signed: an :class:`ExportManifest`, or another use case's own (synthetic data)."""

    files: list[dict[str, Any]]

    def to_bytes(self) -> bytes: ...


def publish_export(staging: Path, final: Path, manifest: SignedManifest, private_key: Ed25519PrivateKey, *,
                   overwrite: bool = False) -> None:
    """Write the manifest, ``SHA256SUMS`` and their signatures into ``staging``, sync, and rename it to ``final``.

    ``SHA256SUMS`` lists the data files (:func:`list_files`), the manifest and
    the manifest's signature: every file but itself and its own signature.
    """
    body = manifest.to_bytes()
    write_export_file(staging / MANIFEST, body)
    signature = signing.sign(body, private_key).encode("utf-8")
    write_export_file(staging / SIGNATURE, signature)
    digests = [*((item["sha256"], item["name"]) for item in manifest.files),  # measured once, by list_files
               (hashlib.sha256(body).hexdigest(), MANIFEST), (hashlib.sha256(signature).hexdigest(), SIGNATURE)]
    sums = "".join(f"{digest}  {name}\n" for digest, name in digests).encode("utf-8")
    write_export_file(staging / SUMS, sums)
    write_export_file(staging / SUMS_SIGNATURE, signing.sign(sums, private_key).encode("utf-8"))
    try:
        for path in staging.iterdir():
            fsync_file(path)
        fsync_dir(staging)
    except OSError as exc:
        raise _export_write_error(staging, exc) from None
    _move_into_place(staging, final, overwrite=overwrite)


def write_export_file(path: Path, data: bytes) -> None:
    """Write one of the export's own files; a failure (a full disk) is one message, not a traceback."""
    try:
        with path.open("wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise _export_write_error(path, exc) from None


def _export_write_error(path: Path, exc: OSError) -> InputError:
    full = " (disk full?)" if exc.errno in _FULL_DISK_ERRNOS else ""
    return InputError(f"cannot write the export's {path.name}{full}: {exc.strerror or type(exc).__name__}; "
                      "no export was made", hint="Free some space (or choose another --out) and export again.")


def _move_into_place(staging: Path, final: Path, *, overwrite: bool) -> None:
    old = None
    try:
        if final.exists():
            _refuse_to_replace(final, overwrite=overwrite)  # again: it may have changed while the data was written
            old = final.with_name(f".{final.name}{_REPLACED_MARK}{os.getpid()}")
            os.replace(final, old)
        try:
            os.replace(staging, final)
        except OSError:
            if old is not None:
                os.replace(old, final)
            raise
    except OSError as exc:
        raise InputError(f"cannot put the export in place at {final}: {exc.strerror or type(exc).__name__}",
                         hint="Check that the folder and its parent can be written, or choose another --out.") from None
    fsync_dir(final.absolute().parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class VerifyReport:
    """What was checked, and by whom the export was signed."""

    directory: str
    signer: str
    checks: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "directory": self.directory, "signer": self.signer, "checks": self.checks,
                "files": self.files, "dataset": self.manifest.get("dataset"), "policy": self.manifest.get("policy"),
                "audit_receipt": self.manifest.get("audit_receipt"), "recipient": self.manifest.get("recipient"),
                "purpose": self.manifest.get("purpose"), "time": self.manifest.get("time")}


def verify_export(directory: Path, public_keys: list[signing.KeyInfo], *, audit_check: AuditCheck | None = None,
                  progress: Progress = SILENT) -> VerifyReport:
    """Check an export directory; return what was checked or raise naming the first failure.

    ``audit_check(receipt, signer_key_id, content_sha256)`` checks the receipt
    against a workspace's log and returns what it checked (a list of sentences).
    ``progress`` hears each file being hashed.
    """

    directory = Path(directory)
    if not directory.is_dir():
        raise VerificationError(f"missing export: {directory} is not a folder")
    body = _read_bytes(directory, MANIFEST)
    signer = _verify_signature(body, directory, SIGNATURE, public_keys)
    report = VerifyReport(str(directory), signer.key_id, checks=[f"signature by {signer.key_id}"])
    try:
        manifest = json.loads(body)
        files = {item["name"]: item for item in manifest["files"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError("bad manifest: not a datashare manifest") from exc
    report.manifest = manifest
    signed_sums = isinstance(manifest.get("format"), int) and manifest["format"] >= _SIGNED_SUMS_FORMAT
    bundle = {MANIFEST, SIGNATURE} | ({SUMS, SUMS_SIGNATURE} if signed_sums else set())
    for name, item in sorted(files.items()):
        path = directory / name
        if "/" in name or name in bundle or not path.is_file():
            raise VerificationError(f"missing file {name}")
        progress.phase(f"Hashing {name}")
        if path.stat().st_size != item.get("size") or sha256_file(path) != item.get("sha256"):
            raise VerificationError(f"changed file {name}: its SHA-256 differs from the manifest")
        report.files.append(name)
    report.checks.append(f"{len(files)} files: sizes and SHA-256 match the manifest")
    extra = sorted(p.name for p in directory.iterdir() if p.name not in files and p.name not in bundle)
    if extra:
        raise VerificationError(f"extra file {extra[0]}: not listed in the manifest")
    report.checks.append("no missing or extra files")
    expected = {name: item.get("sha256") for name, item in files.items() if name != SUMS}
    sums = _read_bytes(directory, SUMS)
    if signed_sums:
        sums_signer = _verify_signature(sums, directory, SUMS_SIGNATURE, public_keys)
        if sums_signer.key_id != signer.key_id:
            raise VerificationError(f"bad signature: {SUMS_SIGNATURE} is by {sums_signer.key_id}, the manifest "
                                    f"by {signer.key_id}")
        report.checks.append(f"{SUMS} signature by {signer.key_id}")
        expected.update({MANIFEST: hashlib.sha256(body).hexdigest(), SIGNATURE: sha256_file(directory / SIGNATURE)})
    listed = _parse_sums(sums)
    for name, digest in listed:
        if expected.get(name) != digest:
            raise VerificationError(f"changed file {SUMS}: its entry for {name} differs from the export")
    if signed_sums and sorted(name for name, _ in listed) != sorted(expected):
        raise VerificationError(f"changed file {SUMS}: it does not list every file of the export exactly once")
    report.checks.append(f"{SUMS} agrees with the manifest" if signed_sums else
                         f"{SUMS} agrees with the manifest (not signed itself: an export made before 2026-11-30, "
                         "whose manifest signature covers it)")
    if audit_check is None:
        report.checks.append("audit receipt not checked: no workspace here")
    else:
        report.checks.extend(audit_check(manifest.get("audit_receipt"), signer.key_id, content_sha256(manifest)))
    return report


# The most a manifest, SHA256SUMS or a signature file of an export is read to (an Ed25519 signature's armor is
# under 400 bytes; a manifest lists a few files): a hostile export cannot make verify read without end.
_MAX_READ = 64 * 2**20
_MAX_SIGNATURE = 16 * 2**10


def _read_bytes(directory: Path, name: str, limit: int = _MAX_READ) -> bytes:
    """The file's bytes: a regular file (a FIFO would hang the reader, a device never end, a link point anywhere) of
    ``limit`` at most."""
    try:  # a symbolic link is not followed: datashare writes regular files
        fd = os.open(directory / name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise VerificationError(f"missing file {name}") from exc
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symbolic link; a socket
            raise VerificationError(f"changed file {name}: not a regular file") from exc
        raise InputError(f"cannot read {directory / name}: {exc.strerror or type(exc).__name__}") from exc
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise VerificationError(f"missing file {name}")
        if not stat.S_ISREG(mode):
            raise VerificationError(f"changed file {name}: not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise VerificationError(f"changed file {name}: larger than datashare writes it ({limit:,} bytes at most)")
    return data


def _verify_signature(message: bytes, directory: Path, name: str, public_keys: list[signing.KeyInfo]
                      ) -> signing.KeyInfo:
    """The trusted key that made the signature in ``directory/name`` over ``message``."""
    try:
        armored = _read_bytes(directory, name, _MAX_SIGNATURE).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError(f"bad signature: {name} is not text") from exc
    try:
        return signing.verify(message, armored, public_keys)
    except VerificationError as exc:
        if name != SIGNATURE:  # the manifest's signature keeps its messages as they were; others say which file
            raise VerificationError(exc.message.replace("bad signature", f"bad signature ({name})", 1)) from exc
        raise


_SUMS_LINE = re.compile(r"([0-9a-f]{64})  ([^/\n]+)")


def _parse_sums(sums: bytes) -> list[tuple[str, str]]:
    """(name, digest) of each line of a ``SHA256SUMS`` as datashare writes it; anything else is a change."""
    try:
        lines = sums.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise VerificationError(f"changed file {SUMS}: not text") from exc
    if lines[-1] == "":
        lines.pop()
    parsed = []
    for line in lines:
        match = _SUMS_LINE.fullmatch(line)
        if match is None:
            raise VerificationError(f"changed file {SUMS}: a line is not '<sha256>  <name>'")
        parsed.append((match.group(2), match.group(1)))
    return parsed
