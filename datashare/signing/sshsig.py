"""OpenSSH signatures (SSHSIG) over bytes, and public-key files, as ``ssh-keygen -Y`` reads and writes them.

Signatures are armored SSHSIG (namespace ``datashare``, hash sha512), which a
recipient checks with ``ssh-keygen -Y verify`` and no datashare at all.
"""

from __future__ import annotations

import base64
import calendar
import fnmatch
import hashlib
import re
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.errors import InputError, UsageError, VerificationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

NAMESPACE = "datashare"


_MAGIC = b"SSHSIG"


_SIG_VERSION = 1


_HASH_ALG = "sha512"


_ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"


_ARMOR_END = "-----END SSH SIGNATURE-----"


KEY_TYPE = b"ssh-ed25519"


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


def public_blob(public_key: Ed25519PublicKey) -> bytes:
    # deferred: only commands that sign or verify need cryptography
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _string(KEY_TYPE) + _string(raw)


def parse_public_key_line(line: str) -> tuple[bytes, str]:
    """(blob, comment) of an ``ssh-ed25519 AAAA… comment`` line."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0] != KEY_TYPE.decode():
        raise InputError("not an ssh-ed25519 public key line")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise InputError("not an ssh-ed25519 public key line (bad base64)") from exc
    return blob, parts[2] if len(parts) > 2 else ""


# --- SSHSIG -------------------------------------------------------------------------------------
_VERIFY_HASHES = ("sha512", "sha256")  # what ssh-keygen -Y verify accepts; datashare signs with sha512


def _signed_data(message: bytes, namespace: str, hash_alg: str = _HASH_ALG) -> bytes:
    digest = hashlib.new(hash_alg, message).digest()
    return _MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_alg.encode()) + _string(digest)


def sign_sshsig(message: bytes, private_key: Ed25519PrivateKey, namespace: str = NAMESPACE) -> str:
    """An armored SSHSIG signature over ``message``, as ``ssh-keygen -Y sign`` makes."""
    blob = public_blob(private_key.public_key())
    raw_sig = private_key.sign(_signed_data(message, namespace))
    signature = _string(KEY_TYPE) + _string(raw_sig)
    body = (_MAGIC + struct.pack(">I", _SIG_VERSION) + _string(blob) + _string(namespace.encode())
            + _string(b"") + _string(_HASH_ALG.encode()) + _string(signature))
    text = base64.b64encode(body).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "\n".join([_ARMOR_BEGIN, *lines, _ARMOR_END]) + "\n"


def verify_sshsig(message: bytes, armored: str, public_keys: list[KeyInfo], namespace: str = NAMESPACE) -> KeyInfo:
    """Return the key that made this signature over ``message``, or raise naming the failed check."""
    # deferred: only commands that sign or verify need cryptography
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
    reserved, offset = _read_string(body, offset)
    if reserved:  # the signature does not cover it (ssh-keygen skips it): room for data to ride along unseen
        raise VerificationError("bad signature: its reserved field holds data (a signature datashare or ssh-keygen "
                                "makes leaves it empty)")
    hash_alg, offset = _read_string(body, offset)
    signature, offset = _read_string(body, offset)
    if offset != len(body):  # as ssh-keygen: nothing may follow the signature (a blob with a rider is not ours)
        raise VerificationError("bad signature: trailing data after the signature")
    if sig_namespace.decode(errors="replace") != namespace:
        raise VerificationError(f"bad signature: namespace {sig_namespace.decode(errors='replace')!r}, "
                                f"expected {namespace!r}")
    if hash_alg.decode(errors="replace") not in _VERIFY_HASHES:
        raise VerificationError(f"bad signature: hash {hash_alg.decode(errors='replace')!r}, expected sha512")
    signer = next((key for key in public_keys if key.blob == blob), None)
    if signer is None:
        raise VerificationError(f"unknown key: signed by {key_id_of_blob(blob)}, which is not a trusted key")
    sig_type, inner = _read_string(signature, 0)
    raw_sig, inner = _read_string(signature, inner)
    key_type, rest = _read_string(blob, 0)
    raw_key, _ = _read_string(blob, rest)
    if sig_type != KEY_TYPE or key_type != KEY_TYPE:
        raise VerificationError("bad signature: only ssh-ed25519 signatures are accepted")
    if inner != len(signature):
        raise VerificationError("bad signature: trailing data after the signature")
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_sig, _signed_data(message, namespace,
                                                                                  hash_alg.decode()))
    except InvalidSignature as exc:
        raise VerificationError("bad signature: the signature does not match the signed file") from exc
    return signer


# --- public key files ---------------------------------------------------------------------
PRINCIPAL_PATTERN = re.compile(r"[A-Za-z0-9_.@+-]{1,200}")


def check_principal(name: str, option: str) -> str:
    """``name`` as a key's comment or an allowed_signers principal: letters, digits and ``_ . @ + -`` (a space, a
    quote or a line break would break the allowed_signers line recipients use)."""
    if not PRINCIPAL_PATTERN.fullmatch(name):
        raise UsageError(f"{option} takes 1 to 200 letters, digits or _ . @ + - (such as custodian@hospital)")
    return name


def allowed_signers_line(info: KeyInfo, principal: str | None = None) -> str:
    """A line for ssh-keygen's allowed_signers file."""
    key_type, key_b64 = info.public_key.split()[:2]
    return f'{principal or info.comment or "datashare"} namespaces="{NAMESPACE}" {key_type} {key_b64}'


def keys_from_file(path: Path, *, allowed_signers: bool = False, principal: str | None = None) -> list[KeyInfo]:
    """Trusted keys from a ``.pub`` file, or those an ssh-keygen allowed_signers file lets sign now.

    An allowed_signers file is read as ``ssh-keygen -Y verify`` reads it (see
    :func:`_allowed_signer`): a line whose options do not allow namespace
    ``datashare`` at this moment, or that does not parse, is skipped;
    ``cert-authority`` is refused (datashare signs with plain keys). With
    ``principal``, only lines whose principals match it count (``ssh-keygen -I``);
    without, every key in the file is trusted, whatever its principal.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"cannot read {path}: {reason}") from exc
    if allowed_signers:
        return _allowed_signers(path, text, principal=principal)
    keys = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            blob, comment = parse_public_key_line(line)
        except InputError as exc:
            if _parses_as_allowed_signer(line):
                raise InputError(f"{path} is an allowed_signers file, not a public key file",
                                 hint="Pass it with --allowed-signers (and --principal NAME to trust one "
                                      "principal), or pass the .pub file with --pubkey.") from None
            raise InputError(f"{path}: {exc.message}", hint=exc.hint) from None
        keys.append(_key_info(blob, comment))
    if not keys:
        raise InputError(f"no ssh-ed25519 public key in {path}")
    return keys


def _key_info(blob: bytes, comment: str) -> KeyInfo:
    return KeyInfo(key_id_of_blob(blob), f"{KEY_TYPE.decode()} {base64.b64encode(blob).decode()}", comment, "")


# --- allowed_signers, as ssh-keygen reads it (sshsig.c, misc.c) ---------------------------------------
_LINE_SPACE = " \t"
_TOKEN_SPACE = " \t\r\n"
_CERT_AUTHORITY = "cert-authority"
_KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
})


@dataclass(frozen=True)
class _SignerOptions:
    cert_authority: bool = False
    namespaces: str | None = None
    valid_after: int = 0  # seconds since the epoch; 0: not set
    valid_before: int = 0


def _allowed_signers(path: Path, text: str, now: float | None = None, *,
                     principal: str | None = None) -> list[KeyInfo]:
    now = time.time() if now is None else now
    keys, skipped, parsed_any = [], [], False
    for number, line in enumerate(text.split("\n"), start=1):
        try:
            parsed = _allowed_signer(line)
        except ValueError as exc:
            skipped.append(f"line {number}: {exc}")
            continue
        if parsed is None:
            continue
        parsed_any = True
        blob, options, principals = parsed
        if options.cert_authority:
            raise InputError(f"{path} line {number}: cert-authority is not supported (datashare signs with plain "
                             "keys, not certificates)", hint="List the custodian's public key itself.")
        if blob is None:
            continue  # a key of another type: it cannot have made a datashare signature
        if principal is not None and _match_pattern_list(principal, principals) != 1:
            skipped.append(f"line {number}: not for principal {principal!r}")
            continue
        reason = _not_allowed_now(options, now)
        if reason:
            skipped.append(f"line {number}: {reason}")
            continue
        keys.append(_key_info(blob, principals))
    if not keys and not parsed_any and any(_parses_as_public_key(line) for line in text.splitlines()):
        # A .pub file given for an allowed_signers file: the wrong file, not a forged export.
        raise InputError(f"{path} is a public key file, not an allowed_signers file",
                         hint="Pass it with --pubkey, or pass the .allowed_signers file `datashare keys "
                              "export-public` wrote with --allowed-signers.")
    if not keys:
        detail = f" ({'; '.join(skipped[:3])})" if skipped else ""
        who = f" as {principal!r}" if principal is not None else ""
        raise VerificationError(f"unknown key: no line of {path} lets an ssh-ed25519 key sign{who} for namespace "
                                f"{NAMESPACE!r} now{detail}")
    return keys


def _parses_as_allowed_signer(line: str) -> bool:
    try:
        return _allowed_signer(line) is not None
    except ValueError:
        return False


def _parses_as_public_key(line: str) -> bool:
    try:
        parse_public_key_line(line)
    except InputError:
        return False
    return True


def _not_allowed_now(options: _SignerOptions, now: float) -> str | None:
    if options.namespaces is not None and _match_pattern_list(NAMESPACE, options.namespaces) != 1:
        return f"namespace {NAMESPACE!r} is not among namespaces=\"{options.namespaces}\""
    if options.valid_after and now < options.valid_after:
        return "not valid yet (valid-after)"
    if options.valid_before and now > options.valid_before:
        return "expired (valid-before)"
    return None


def _allowed_signer(line: str) -> tuple[bytes | None, _SignerOptions, str] | None:
    """(ed25519 blob or None for another key type, options, principals) of one line; None for a blank or comment.

    ``principals [options] keytype base64 [comment]``. A line that does not
    parse raises ValueError saying why (ssh-keygen skips it too).
    """
    rest = line.lstrip(_LINE_SPACE)
    if not rest or rest.startswith("#"):
        return None
    principals, rest = _first_token(rest)
    if rest is None:
        raise ValueError("no key")
    options_text = None
    key = _read_key(rest)
    if key is None:
        options_text, rest = _split_options(rest)
        key = _read_key(rest)
        if key is None:
            raise ValueError("no valid key after the options")
    key_type, blob = key
    return (blob if key_type == KEY_TYPE.decode() else None), _parse_options(options_text or ""), principals


def _first_token(text: str) -> tuple[str, str | None]:
    """ssh's strdelimw: the first token (a double-quoted one may hold spaces) and what follows, or None."""
    cut = next((i for i, char in enumerate(text) if char in _TOKEN_SPACE or char == '"'), None)
    if cut is None:
        return text, None
    if text[cut] == '"':
        close = text.find('"', cut + 1)
        if close < 0:
            raise ValueError("unterminated quote")
        return text[:cut] + text[cut + 1:close], text[close + 1:].lstrip(_TOKEN_SPACE)
    return text[:cut], text[cut + 1:].lstrip(_TOKEN_SPACE)


def _read_key(text: str) -> tuple[str, bytes] | None:
    """(type, blob) when ``text`` starts with a public key as ssh's ``sshkey_read`` takes it, else None."""
    fields = text.lstrip(_LINE_SPACE)
    type_end = next((i for i, char in enumerate(fields) if char in _LINE_SPACE), len(fields))
    key_type, rest = fields[:type_end], fields[type_end:].lstrip(_LINE_SPACE)
    if key_type not in _KEY_TYPES or not rest:
        return None
    blob_end = next((i for i, char in enumerate(rest) if char in _LINE_SPACE), len(rest))
    try:
        blob = base64.b64decode("".join(rest[:blob_end].split()), validate=True)
        inner_type, _ = _read_string(blob, 0)
    except (ValueError, VerificationError):
        return None
    if inner_type != key_type.encode():
        return None
    if key_type == KEY_TYPE.decode():
        try:
            _, offset = _read_string(blob, 0)
            raw, offset = _read_string(blob, offset)
        except VerificationError:
            return None
        if len(raw) != 32 or offset != len(blob):
            return None
    return key_type, blob


def _split_options(text: str) -> tuple[str, str]:
    """The options (up to the first space outside double quotes) and the rest, as ``sshkey_advance_past_options``."""
    quoted, i = False, 0
    while i < len(text) and (quoted or text[i] not in _LINE_SPACE):
        if text[i] == "\\" and text[i + 1:i + 2] == '"':
            i += 1
        elif text[i] == '"':
            quoted = not quoted
        i += 1
    if quoted:
        raise ValueError("unterminated quote in the options")
    if i >= len(text):
        raise ValueError("no key after the options")
    return text[:i], text[i + 1:].lstrip(_LINE_SPACE)


def _parse_options(text: str) -> _SignerOptions:
    """``cert-authority``, ``namespaces="…"``, ``valid-after="…"``, ``valid-before="…"``, comma-separated."""
    values: dict[str, Any] = {}
    rest = text
    while rest and rest[0] not in _LINE_SPACE:
        lower = rest.lower()
        if lower.startswith(_CERT_AUTHORITY):
            values["cert_authority"] = True
            rest = rest[len(_CERT_AUTHORITY):]
        else:
            for name in ("namespaces", "valid-after", "valid-before"):
                if lower.startswith(name + "="):
                    field_name = name.replace("-", "_")
                    if field_name in values:
                        raise ValueError(f'more than one "{name}"')
                    value, rest = _dequote(rest[len(name) + 1:])
                    values[field_name] = value if name == "namespaces" else _parse_time(value, name)
                    break
        if not rest or rest[0] in _LINE_SPACE:
            break
        if rest[0] != ",":
            raise ValueError("unknown option")
        rest = rest[1:]
        if not rest:
            raise ValueError("options end with a comma")
    options = _SignerOptions(**values)
    if options.valid_after and options.valid_before and options.valid_before <= options.valid_after:
        raise ValueError('"valid-before" is not after "valid-after"')
    return options


def _dequote(text: str) -> tuple[str, str]:
    if not text.startswith('"'):
        raise ValueError("an option value must be in double quotes")
    out, i = [], 1
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and text[i + 1:i + 2] == '"':
            i += 1
        out.append(text[i])
        i += 1
    if i >= len(text):
        raise ValueError("unterminated quote")
    return "".join(out), text[i + 1:]


_TIME_LAYOUTS = {8: (4, 2, 2), 12: (4, 2, 2, 2, 2), 14: (4, 2, 2, 2, 2, 2)}  # YYYYMMDD[HHMM[SS]]
_TIME_RANGES = ((0, 9999), (1, 12), (1, 31), (0, 23), (0, 59), (0, 61))  # what strptime accepts in each field


def _parse_time(value: str, name: str) -> int:
    """``YYYYMMDD[HHMM[SS]]`` in local time, or UTC with a final ``Z`` or ``UTC``, as ssh's parse_absolute_time.

    Days past a month's end roll over (20200231 is 2 March), as mktime does.
    """
    text, utc = value, False
    if len(text) > 1 and text[-1:].upper() == "Z":
        text, utc = text[:-1], True
    elif len(text) > 3 and text[-3:].upper() == "UTC":
        text, utc = text[:-3], True
    layout = _TIME_LAYOUTS.get(len(text))
    if layout is None or not text.isascii() or not text.isdigit():
        raise ValueError(f'invalid "{name}" time')
    fields, start = [], 0
    for width, (low, high) in zip(layout, _TIME_RANGES, strict=False):
        number = int(text[start:start + width])
        if not low <= number <= high:
            raise ValueError(f'invalid "{name}" time')
        fields.append(number)
        start += width
    year, month, day, hour, minute, second = (*fields, 0, 0, 0)[:6]
    moment = (year, month, day, hour, minute, second, 0, 0, 0)  # tm_isdst 0, as ssh leaves it
    try:
        seconds = calendar.timegm(moment) if utc else int(time.mktime(moment))
    except (OverflowError, ValueError) as exc:
        raise ValueError(f'invalid "{name}" time') from exc
    if seconds <= 0:
        raise ValueError(f'invalid "{name}" time')
    return seconds


def _match_pattern_list(string: str, patterns: str) -> int:
    """ssh's match_pattern_list: 1 if a pattern matches and no ``!pattern`` does, -1 if one of those does, else 0."""
    positive = 0
    for pattern in patterns.split(",") if patterns else []:
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(string, _glob(pattern[1:] if negated else pattern)):
            if negated:
                return -1
            positive = 1
    return positive


def _glob(pattern: str) -> str:
    """An ssh pattern (only ``*`` and ``?`` are special) as an fnmatch pattern."""
    return "".join(f"[{char}]" if char in "[]" else char for char in pattern)
