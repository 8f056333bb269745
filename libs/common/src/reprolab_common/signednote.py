"""C2SP signed notes (c2sp.org/signed-note) with Ed25519, and tlog checkpoints (c2sp.org/tlog-checkpoint).

Why this format: it is what Go's checksum database, Sigstore's Rekor v2 and the transparency-log
witness network sign and read. A checkpoint a student keeps is a small text file any of their tools
can check, and a key name plus a 4-byte key hash on every signature line says which key signed it,
so keys can rotate while old checkpoints keep verifying under the key that signed them.

A signed note is the text (UTF-8, ending in a newline, no blank line), a blank line, then one line
per signature::

    — <key name> <base64(key hash (4 bytes, big endian) || Ed25519 signature)>

Key hash = first 4 bytes of SHA-256(key name || 0x0A || 0x01 || 32-byte public key). A verifier key
is written ``<name>+<key hash as 8 hex digits>+<base64(0x01 || public key)>``.

A checkpoint's text is ``<origin>\\n<tree size in decimal>\\n<base64 root hash>\\n`` (then optional
extension lines, which we never write and carry through opaquely). The signing key's name is the
origin.

Parsing follows golang.org/x/mod/sumdb/note: a note is malformed if it is not UTF-8, holds a
control character other than newline, has a bad signature line or more than 100 signatures; a
signature by an unknown key is set aside, a bad signature by a known key is an error, and a note
with no verified signature does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 1
MAX_SIGNATURES = 100
SIG_PREFIX = "\u2014 "  # em dash, space

_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,19})$")


class NoteError(ValueError):
    """A note, key or checkpoint is malformed, or does not verify."""


def valid_key_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name) and all(
        ord(ch) >= 0x20 for ch in name)


def key_hash(name: str, key: bytes) -> int:
    """``key`` is the algorithm byte followed by the public key."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + key).digest()[:4], "big")


def _b64decode(text: str) -> bytes:
    if not _B64.match(text) or len(text) % 4:
        raise NoteError("invalid base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("invalid base64") from None
    # Unused low bits in the last character must be zero: one text per value, so no edit of a
    # signature or root line can pass as the same note.
    if base64.b64encode(raw).decode() != text:
        raise NoteError("non-canonical base64")
    return raw


class Verifier:
    """An Ed25519 note verifier: a name, a key hash and a public key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        if not valid_key_name(name):
            raise NoteError(f"invalid key name {name!r}")
        if len(public_key) != 32:
            raise NoteError("an Ed25519 public key has 32 bytes")
        self.name = name
        self.public_key = public_key
        self.key_hash = key_hash(name, bytes([ALG_ED25519]) + public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse ``name+hash+base64(0x01||pub)``; the hash must match the name and key."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is <name>+<hash>+<key>")
        name, hash_hex, key_b64 = parts
        if not valid_key_name(name) or not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
            raise NoteError("malformed verifier key")
        key = _b64decode(key_b64)
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key")
        v = cls(name, key[1:])
        if v.key_hash != int(hash_hex, 16):
            raise NoteError("verifier key hash does not match its name and key")
        return v

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_hash:08x}+{base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        try:
            self._key.verify(sig, msg)
            return True
        except InvalidSignature:
            return False

    def __repr__(self) -> str:
        return f"Verifier({self.name}+{self.key_hash:08x})"


class Signer:
    """An Ed25519 note signer under a key name."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not valid_key_name(name):
            raise NoteError(f"invalid key name {name!r}")
        self.name = name
        self.private_key = private_key
        pub = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.verifier = Verifier(name, pub)
        self.key_hash = self.verifier.key_hash

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+name+hash+base64(0x01||seed)`` (Go's note.NewSigner format)."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+<name>+<hash>+<key>")
        name, hash_hex, key_b64 = parts[2:]
        if not valid_key_name(name) or not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
            raise NoteError("malformed signer key")
        key = _b64decode(key_b64)
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise NoteError("signer key is not an Ed25519 key")
        s = cls(name, Ed25519PrivateKey.from_private_bytes(key[1:]))
        if s.key_hash != int(hash_hex, 16):
            raise NoteError("signer key hash does not match its name and key")
        return s

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    def sign(self, msg: bytes) -> bytes:
        return self.private_key.sign(msg)


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: int
    base64: str


@dataclass
class Note:
    text: str
    sigs: list[Signature] = field(default_factory=list)            # verified
    unverified_sigs: list[Signature] = field(default_factory=list)  # by keys we do not know


def _valid_text(text: str) -> bool:
    return text.endswith("\n") and all(ch == "\n" or ord(ch) >= 0x20 for ch in text) and "\ufffd" not in text


def sign(text: str, *signers: Signer) -> str:
    """The signed note: ``text``, a blank line, one signature line per signer."""
    if not _valid_text(text) or "\n\n" in text or not signers:
        raise NoteError("malformed note")
    msg = text.encode()
    lines = []
    for s in signers:
        blob = s.key_hash.to_bytes(4, "big") + s.sign(msg)
        lines.append(f"{SIG_PREFIX}{s.name} {base64.b64encode(blob).decode()}\n")
    return text + "\n" + "".join(lines)


def open_note(msg: bytes | str, verifiers: list[Verifier]) -> Note:
    """Parse and verify a signed note; raise ``NoteError`` unless at least one known key signed it
    and no known key's signature is bad."""
    if isinstance(msg, bytes):
        try:
            msg = msg.decode()
        except UnicodeDecodeError:
            raise NoteError("malformed note (not UTF-8)") from None
    if not all(ch == "\n" or ord(ch) >= 0x20 for ch in msg) or "\ufffd" in msg:
        raise NoteError("malformed note (control character)")
    split = msg.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note (no signatures)")
    text, sig_block = msg[:split + 1], msg[split + 2:]
    if not sig_block or not sig_block.endswith("\n"):
        raise NoteError("malformed note (signature block)")
    by_id: dict[tuple[str, int], list[Verifier]] = {}
    for v in verifiers:
        by_id.setdefault((v.name, v.key_hash), []).append(v)
    note = Note(text=text)
    seen: set[tuple[str, int]] = set()
    seen_unverified: set[Signature] = set()
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("malformed note (too many signatures)")
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise NoteError("malformed note (signature line)")
        rest = line[len(SIG_PREFIX):]
        name, sep, b64 = rest.partition(" ")
        if not sep or not valid_key_name(name) or " " in b64:
            raise NoteError("malformed note (signature line)")
        blob = _b64decode(b64)
        if len(blob) < 5:
            raise NoteError("malformed note (short signature)")
        h = int.from_bytes(blob[:4], "big")
        sig = Signature(name, h, b64)
        found = by_id.get((name, h))
        if not found:
            if sig not in seen_unverified:
                seen_unverified.add(sig)
                note.unverified_sigs.append(sig)
            continue
        if len(found) > 1:
            raise NoteError(f"ambiguous key {name}+{h:08x}")
        if not found[0].verify(text.encode(), blob[4:]):
            raise NoteError(f"invalid signature for key {name}+{h:08x}")
        if (name, h) not in seen:
            seen.add((name, h))
            note.sigs.append(sig)
    if not note.sigs:
        raise NoteError("note has no verifiable signatures")
    return note


# --- checkpoints --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        return format_checkpoint(self.origin, self.size, self.root, self.extensions)


def format_checkpoint(origin: str, size: int, root: bytes, extensions: tuple[str, ...] = ()) -> str:
    if not origin or "\n" in origin:
        raise NoteError("invalid origin")
    if size < 0 or len(root) != 32:
        raise NoteError("invalid checkpoint size or root")
    if any(not ext or "\n" in ext for ext in extensions):
        raise NoteError("invalid checkpoint extension line")
    return "".join(line + "\n" for line in (origin, str(size), base64.b64encode(root).decode(), *extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse the text of a checkpoint (the signed part of the note)."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint text does not end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise NoteError("a checkpoint has at least three non-empty lines: origin, size, root")
    origin, size_text, root_text, *ext = lines
    if not _DECIMAL.match(size_text) or int(size_text) >= 1 << 64:
        raise NoteError(f"checkpoint size {size_text!r} is not a decimal number without leading zeros")
    root = _b64decode(root_text)
    if len(root) != 32:
        raise NoteError("checkpoint root hash is not 32 bytes")
    return Checkpoint(origin=origin, size=int(size_text), root=root, extensions=tuple(ext))


def sign_checkpoint(cp: Checkpoint, *signers: Signer) -> str:
    return sign(cp.text(), *signers)


def open_checkpoint(msg: bytes | str, verifiers: list[Verifier], *, origin: str | None = None) -> tuple[
        Checkpoint, Note]:
    """Verify a signed checkpoint; with ``origin``, its origin must be that one."""
    note = open_note(msg, verifiers)
    cp = parse_checkpoint(note.text)
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not {origin!r}")
    return cp, note


__all__ = [
    "ALG_ED25519", "NoteError", "valid_key_name", "key_hash", "Verifier", "Signer", "Signature", "Note",
    "sign", "open_note", "Checkpoint", "format_checkpoint", "parse_checkpoint", "sign_checkpoint",
    "open_checkpoint",
]
