"""Ed25519 signing keys and OpenSSH signatures (SSHSIG) over exports and audit heads.

The private key is stored in OpenSSH format, encrypted with the bcrypt KDF
(``ssh-keygen -y -f`` can load it; PKCS#8's default of 2,048 PBKDF2
iterations is too weak for a key that signs hospital data). Signatures are
armored SSHSIG (namespace ``datashare``, hash sha512), which a recipient
checks with ``ssh-keygen -Y verify`` and no datashare at all.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from datashare.errors import InputError, SigningKeyError, VerificationError
from datashare.fsutil import staged_writes
from datashare.workspace import Workspace, utc_now

NAMESPACE = "datashare"
PASSPHRASE_ENV = "DATASHARE_PASSPHRASE"
NEW_PASSPHRASE_ENV = "DATASHARE_NEW_PASSPHRASE"  # the new key's, when a rotation changes the passphrase
KDF_ROUNDS = 64  # bcrypt rounds; ssh-keygen's default is 16
PRIVATE_KEY_FILE = "signing_key"
PUBLIC_KEY_FILE = "signing_key.pub"
KEYS_INDEX_FILE = "keys.json"
_MAGIC = b"SSHSIG"
_SIG_VERSION = 1
_HASH_ALG = "sha512"
_ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_ARMOR_END = "-----END SSH SIGNATURE-----"
_KEY_TYPE = b"ssh-ed25519"


@dataclass(frozen=True)
class KeyInfo:
    """A public key datashare knows: its id (as ssh-keygen prints it), OpenSSH line, comment, dates."""

    key_id: str
    public_key: str  # "ssh-ed25519 AAAA… comment"
    comment: str
    created: str
    retired: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def blob(self) -> bytes:
        return base64.b64decode(self.public_key.split()[1])


# --- key ids and wire format -----------------------------------------------------------
def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(data: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise VerificationError("bad signature: truncated")
    (length,) = struct.unpack(">I", data[offset:offset + 4])
    end = offset + 4 + length
    if end > len(data):
        raise VerificationError("bad signature: truncated")
    return data[offset + 4:end], end


def key_id_of_blob(blob: bytes) -> str:
    """``SHA256:…`` exactly as ``ssh-keygen -l`` prints a key's fingerprint."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _public_blob(public_key) -> bytes:  # noqa: ANN001 - an Ed25519PublicKey
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _string(_KEY_TYPE) + _string(raw)


def parse_public_key_line(line: str) -> tuple[bytes, str]:
    """(blob, comment) of an ``ssh-ed25519 AAAA… comment`` line."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0] != _KEY_TYPE.decode():
        raise InputError("not an ssh-ed25519 public key line")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise InputError("not an ssh-ed25519 public key line (bad base64)") from exc
    return blob, parts[2] if len(parts) > 2 else ""


# --- passphrases ---------------------------------------------------------------------------
def passphrase_at_hand() -> str | None:
    """``DATASHARE_PASSPHRASE`` when it is set: a passphrase that needs no prompt."""
    return os.environ.get(PASSPHRASE_ENV)


def read_passphrase(*, confirm: bool) -> str:
    """``DATASHARE_PASSPHRASE``, else a hidden prompt (twice when creating a key). Never an argument."""
    value = passphrase_at_hand()
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise SigningKeyError(
            "the signing key's passphrase is needed and there is no terminal to ask on",
            hint=f"Set {PASSPHRASE_ENV} in the environment.",
        )
    import getpass

    first = getpass.getpass("Passphrase for the signing key: ")
    if confirm and getpass.getpass("Same passphrase again: ") != first:
        raise SigningKeyError("the two passphrases differ")
    return first


def read_new_passphrase(current: str) -> str:
    """The passphrase for a rotated key: ``DATASHARE_NEW_PASSPHRASE``, a prompt, or the current one."""
    value = os.environ.get(NEW_PASSPHRASE_ENV)
    if value or not sys.stdin.isatty():
        return value or current  # set but empty: keep the current one, as Enter does at the prompt
    import getpass

    first = getpass.getpass("Passphrase for the new key (Enter keeps the current one): ")
    if not first:
        return current
    if getpass.getpass("Same passphrase again: ") != first:
        raise SigningKeyError("the two passphrases differ")
    return first


# --- the workspace's keys ------------------------------------------------------------------
def _index_path(ws: Workspace) -> Path:
    return ws.keys_dir / KEYS_INDEX_FILE


def _read_index(ws: Workspace) -> dict[str, Any]:
    path = _index_path(ws)
    if not path.exists():
        return {"current": None, "retired": []}
    return json.loads(path.read_text(encoding="utf-8"))


def has_key(ws: Workspace) -> bool:
    return (ws.keys_dir / PRIVATE_KEY_FILE).is_file() and _read_index(ws).get("current") is not None


def current_key(ws: Workspace) -> KeyInfo:
    index = _read_index(ws)
    if not index.get("current"):
        raise SigningKeyError("this workspace has no signing key", hint="Create one: datashare keys generate")
    return KeyInfo(**index["current"])


def load_public_keys(ws: Workspace) -> list[KeyInfo]:
    """The current key and every retired one (so older exports still verify)."""
    index = _read_index(ws)
    keys = [KeyInfo(**index["current"])] if index.get("current") else []
    return keys + [KeyInfo(**item) for item in index.get("retired", [])]


def prepare_key(ws: Workspace, passphrase: str, comment: str, *,
                rotate: bool = False) -> tuple[KeyInfo, dict[Path, tuple[bytes, int]]]:
    """A new Ed25519 key and the files that install it (private key, public key, index), not yet written.

    Write them with :func:`staged_writes` after the audit entry, so a key never
    changes without its entry.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not passphrase:
        raise SigningKeyError("an empty passphrase would leave the signing key unprotected")
    index = _read_index(ws)
    if index.get("current") and not rotate:
        raise SigningKeyError(
            f"this workspace already has a signing key ({index['current']['key_id']})",
            hint="To replace it and keep the old public key for older exports: datashare keys generate --rotate",
        )
    key = Ed25519PrivateKey.generate()
    encryption = serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(KDF_ROUNDS).build(
        passphrase.encode("utf-8"))
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)
    blob = _public_blob(key.public_key())
    line = f"{_KEY_TYPE.decode()} {base64.b64encode(blob).decode()} {comment}".strip()
    info = KeyInfo(key_id_of_blob(blob), line, comment, utc_now())
    ws.keys_dir.mkdir(exist_ok=True, mode=0o700)
    if index.get("current"):
        retired = dict(index["current"])
        retired["retired"] = info.created
        index.setdefault("retired", []).insert(0, retired)
    index["current"] = info.to_dict()
    files = {
        ws.keys_dir / PRIVATE_KEY_FILE: (private_pem, 0o600),
        ws.keys_dir / PUBLIC_KEY_FILE: ((line + "\n").encode("utf-8"), 0o644),
        _index_path(ws): ((json.dumps(index, indent=2) + "\n").encode("utf-8"), 0o644),
    }
    return info, files


def load_private_key(ws: Workspace, passphrase: str):  # noqa: ANN201 - (Ed25519PrivateKey, KeyInfo)
    """The decrypted private key and its info; a wrong passphrase is a clear error."""
    from cryptography.hazmat.primitives import serialization

    info = current_key(ws)
    path = ws.keys_dir / PRIVATE_KEY_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_ssh_private_key(data, passphrase.encode("utf-8"))
    except ValueError as exc:
        raise SigningKeyError(f"wrong passphrase for the signing key {path}",
                              hint=f"Check {PASSPHRASE_ENV} or the passphrase you typed.") from exc
    if key_id_of_blob(_public_blob(key.public_key())) != info.key_id:
        raise SigningKeyError(f"the signing key {path} does not match {info.key_id} in {KEYS_INDEX_FILE}")
    return key, info


class KeyLoading:
    """:func:`load_private_key` on a thread of its own, started at once.

    bcrypt's KDF releases the GIL, so its deliberate slowness overlaps other
    work (DuckDB's queries). :meth:`result` waits and returns what
    ``load_private_key`` returns, or raises what it raised.
    """

    def __init__(self, ws: Workspace, passphrase: str) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, KeyInfo] | None = None
        self._error: BaseException | None = None
        self._on_failure: Callable[[], object] | None = None
        self._thread = threading.Thread(target=self._run, args=(ws, passphrase), name="datashare-key", daemon=True)
        self._thread.start()

    def _run(self, ws: Workspace, passphrase: str) -> None:
        try:
            self._key = load_private_key(ws, passphrase)
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            with self._lock:
                self._error, on_failure = exc, self._on_failure
            if on_failure is not None:
                with contextlib.suppress(Exception):  # best effort: what it would stop may have ended
                    on_failure()

    def on_failure(self, action: Callable[[], object]) -> None:
        """Run ``action`` (on the loading thread) if loading fails; raise now if it already has."""
        with self._lock:
            self._on_failure, error = action, self._error
        if error is not None:
            raise error

    def result(self) -> tuple[Any, KeyInfo]:
        """Wait for the key: (private key, its info), or the error loading it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._key  # type: ignore[return-value] - set whenever no error was


# --- SSHSIG -------------------------------------------------------------------------------------
def _signed_data(message: bytes, namespace: str) -> bytes:
    digest = hashlib.sha512(message).digest()
    return _MAGIC + _string(namespace.encode()) + _string(b"") + _string(_HASH_ALG.encode()) + _string(digest)


def sign_sshsig(message: bytes, private_key, namespace: str = NAMESPACE) -> str:  # noqa: ANN001
    """An armored SSHSIG signature over ``message``, as ``ssh-keygen -Y sign`` makes."""
    blob = _public_blob(private_key.public_key())
    raw_sig = private_key.sign(_signed_data(message, namespace))
    signature = _string(_KEY_TYPE) + _string(raw_sig)
    body = (_MAGIC + struct.pack(">I", _SIG_VERSION) + _string(blob) + _string(namespace.encode())
            + _string(b"") + _string(_HASH_ALG.encode()) + _string(signature))
    text = base64.b64encode(body).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "\n".join([_ARMOR_BEGIN, *lines, _ARMOR_END]) + "\n"


def verify_sshsig(message: bytes, armored: str, public_keys: list[KeyInfo], namespace: str = NAMESPACE) -> KeyInfo:
    """Return the key that made this signature over ``message``, or raise naming the failed check."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = armored.strip()
    if not (text.startswith(_ARMOR_BEGIN) and text.endswith(_ARMOR_END)):
        raise VerificationError("bad signature: not an armored SSH signature")
    try:
        body = base64.b64decode("".join(text[len(_ARMOR_BEGIN):-len(_ARMOR_END)].split()), validate=True)
    except ValueError as exc:
        raise VerificationError("bad signature: not valid base64") from exc
    if not body.startswith(_MAGIC) or len(body) < 10:
        raise VerificationError("bad signature: not an SSHSIG blob")
    (version,) = struct.unpack(">I", body[6:10])
    if version != _SIG_VERSION:
        raise VerificationError(f"bad signature: unsupported SSHSIG version {version}")
    blob, offset = _read_string(body, 10)
    sig_namespace, offset = _read_string(body, offset)
    _, offset = _read_string(body, offset)
    hash_alg, offset = _read_string(body, offset)
    signature, offset = _read_string(body, offset)
    if sig_namespace.decode(errors="replace") != namespace:
        raise VerificationError(f"bad signature: namespace {sig_namespace.decode(errors='replace')!r}, "
                                f"expected {namespace!r}")
    if hash_alg != _HASH_ALG.encode():
        raise VerificationError(f"bad signature: hash {hash_alg.decode(errors='replace')!r}, expected sha512")
    signer = next((key for key in public_keys if key.blob == blob), None)
    if signer is None:
        raise VerificationError(f"unknown key: signed by {key_id_of_blob(blob)}, which is not a trusted key")
    sig_type, inner = _read_string(signature, 0)
    raw_sig, _ = _read_string(signature, inner)
    key_type, rest = _read_string(blob, 0)
    raw_key, _ = _read_string(blob, rest)
    if sig_type != _KEY_TYPE or key_type != _KEY_TYPE:
        raise VerificationError("bad signature: only ssh-ed25519 signatures are accepted")
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_sig, _signed_data(message, namespace))
    except InvalidSignature as exc:
        raise VerificationError("bad signature: the signature does not match the signed file") from exc
    return signer


# --- public key files ---------------------------------------------------------------------
def allowed_signers_line(info: KeyInfo, principal: str | None = None) -> str:
    """A line for ssh-keygen's allowed_signers file."""
    key_type, key_b64 = info.public_key.split()[:2]
    return f'{principal or info.comment or "datashare"} namespaces="{NAMESPACE}" {key_type} {key_b64}'


def keys_from_file(path: Path, *, allowed_signers: bool = False) -> list[KeyInfo]:
    """Trusted keys from a ``.pub`` file or an ssh-keygen allowed_signers file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    keys = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if allowed_signers:
            fields = line.split()
            starts = [i for i, item in enumerate(fields) if item == _KEY_TYPE.decode()]
            if not starts:
                continue
            line = " ".join(fields[starts[0]:starts[0] + 2] + fields[:1])
        blob, comment = parse_public_key_line(line)
        keys.append(KeyInfo(key_id_of_blob(blob), f"{_KEY_TYPE.decode()} {base64.b64encode(blob).decode()}",
                            comment, ""))
    if not keys:
        raise InputError(f"no ssh-ed25519 public key in {path}")
    return keys


def export_public(ws: Workspace, actor: str, out: Path, principal: str | None = None) -> tuple[KeyInfo, Path]:
    """Write the public key to ``out`` and an allowed_signers file beside it; logged. Returns (key, that file)."""
    from datashare import audit

    out = Path(out)
    with audit.audited(ws, "keys.export_public", actor, output=str(out.absolute())) as record:
        info = current_key(ws)
        signers = out.with_name(out.name + ".allowed_signers")
        lines = [allowed_signers_line(key, principal) for key in load_public_keys(ws)]
        files = {out: ((info.public_key + "\n").encode("utf-8"), 0o644),
                 signers: (("\n".join(lines) + "\n").encode("utf-8"), 0o644)}
        try:
            with staged_writes(files):  # the entry first: if it cannot be written, no file appears
                record.ok(key_id=info.key_id)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or type(exc).__name__}") from exc
    return info, signers


def create_key(ws: Workspace, actor: str, *, comment: str | None = None, rotate: bool = False,
               passphrase: str | None = None, new_passphrase: str | None = None) -> KeyInfo:
    """Generate (or rotate to) a new workspace key under the lock, with its audit entry.

    Rotating needs the current key's passphrase; the new key takes ``new_passphrase``
    (or ``DATASHARE_NEW_PASSPHRASE``), else keeps the current one.
    """
    from datashare import audit

    action = "keys.rotate" if rotate else "keys.generate"
    with audit.audited(ws, action, actor) as record:
        replacing = rotate and has_key(ws)
        secret = passphrase if passphrase is not None else read_passphrase(confirm=not replacing)
        if replacing:
            # Only whoever can unlock the current key may replace it: the passphrase is the second factor.
            load_private_key(ws, secret)
            secret = new_passphrase if new_passphrase is not None else read_new_passphrase(secret)
        with ws.lock():
            previous = _read_index(ws).get("current")
            # A rotated key keeps the comment (the recipients' principal) unless a new one is given.
            kept = previous.get("comment") if previous and rotate else None
            info, files = prepare_key(ws, secret, comment or kept or f"{actor}@datashare", rotate=rotate)
            with staged_writes(files):  # the entry first: if it cannot be written, the keys stay as they were
                record.ok(key_id=info.key_id, previous_key_id=previous["key_id"] if previous else None)
    return info
