"""The audit chain and its export format ``reprolab-audit/1`` (see docs/architecture.md, "Audit chain").

Shared by the audit service (which builds chains, signs checkpoints and writes bundles) and the
offline verifier (``reprolab audit verify FILE``); it needs nothing but ``cryptography`` and the
generated contracts, so the CLI can check a bundle without a server.

Chain, per workspace, entries numbered from 1::

    c_n    = canonical_json(entry_document(event_n, n))
    leaf_n = sha256(c_n)
    hash_n = sha256(hash_{n-1} || leaf_n),   hash_0 = 32 zero bytes

Checkpoints are Ed25519 signatures over ``canonical_json({workspace, size, head, time, key_id, kind})``
(``head`` is ``hash_size`` in hex, ``kind`` is ``periodic`` or ``export``); a key's id is the first 16
hex digits of sha256 of its raw 32-byte public key.

Bundle (JSON Lines, every line canonical JSON)::

    {"type":"header","format":"reprolab-audit/1","workspace","scope","exported_at","public_keys":[...]}
    {"type":"entry","seq","hash","entry":<document>}     # an entry the reader may see
    {"type":"elided","seq","leaf"}                       # someone else's entry (student export)
    {"type":"checkpoint",...,"signature"}                # right after the entry whose seq == size
    ...
    {"type":"checkpoint","kind":"export",...}             # last line: size == last seq

``verify_bundle`` recomputes every leaf, every link and every signature in one streaming pass and
names the first bad line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.json_format import MessageToDict
from reprolab.v1 import events_pb2

from .canonical import canonical_json

FORMAT = "reprolab-audit/1"
ZERO = bytes(32)
ZERO_HEX = ZERO.hex()

KIND_PERIODIC = "periodic"
KIND_EXPORT = "export"
KINDS = frozenset({KIND_PERIODIC, KIND_EXPORT})

SCOPE_OWN = "own"
SCOPE_WORKSPACE = "workspace"
SCOPES = frozenset({SCOPE_OWN, SCOPE_WORKSPACE})

_HEADER_KEYS = frozenset({"type", "format", "workspace", "scope", "exported_at", "public_keys"})
_ENTRY_KEYS = frozenset({"type", "seq", "hash", "entry"})
_ELIDED_KEYS = frozenset({"type", "seq", "leaf"})
_CHECKPOINT_KEYS = frozenset({"type", "workspace", "size", "head", "time", "key_id", "kind", "signature"})
_SIGNED_KEYS = ("workspace", "size", "head", "time", "key_id", "kind")
_HEX = frozenset("0123456789abcdef")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- entries and the chain --------------------------------------------------------------------

def format_time(dt: datetime) -> str:
    """RFC 3339, UTC, millisecond precision, ``Z``: the only time form inside the chain."""
    dt = dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Inverse of ``format_time`` (any RFC 3339 ``Z`` time is accepted)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def now_time() -> str:
    return format_time(datetime.now(UTC))


def event_time(event: events_pb2.Event) -> datetime:
    """The event's time truncated to milliseconds (what the chain records)."""
    ms = event.time.seconds * 1000 + event.time.nanos // 1_000_000
    return _EPOCH + timedelta(milliseconds=ms)


def event_details(event: events_pb2.Event) -> dict[str, Any]:
    kind = event.WhichOneof("payload")
    if kind is None:
        return {}
    return MessageToDict(getattr(event, kind), preserving_proto_field_name=True)


def entry_document(event: events_pb2.Event, seq: int) -> dict[str, Any]:
    """The canonical content of chain entry ``seq`` recording ``event``."""
    return {
        "seq": seq,
        "workspace": event.workspace,
        "event_id": event.id,
        "type": event.type,
        "subject": event.subject,
        "actor": {"id": event.actor.user_id, "name": event.actor.username},
        "time": format_time(event_time(event)),
        "details": event_details(event),
    }


def leaf_hash(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).digest()


def chain_hash(prev: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(prev + leaf).digest()


@dataclass(frozen=True)
class ChainedEntry:
    seq: int
    document: dict[str, Any]
    canonical: bytes
    leaf: bytes
    prev: bytes
    hash: bytes


class Chain:
    """One workspace's chain in memory, continued from a known head (``size``, ``head``)."""

    def __init__(self, workspace: str, size: int = 0, head: bytes = ZERO) -> None:
        self.workspace = workspace
        self.size = size
        self.head = head

    def append(self, event: events_pb2.Event) -> ChainedEntry:
        if event.workspace != self.workspace:
            raise ValueError(f"event of workspace {event.workspace!r} appended to chain {self.workspace!r}")
        seq = self.size + 1
        doc = entry_document(event, seq)
        canonical = canonical_json(doc)
        leaf = leaf_hash(canonical)
        new = chain_hash(self.head, leaf)
        entry = ChainedEntry(seq=seq, document=doc, canonical=canonical, leaf=leaf, prev=self.head, hash=new)
        self.size, self.head = seq, new
        return entry


# --- keys and checkpoints ---------------------------------------------------------------------

def key_id_for(public_key_raw: bytes) -> str:
    return hashlib.sha256(public_key_raw).hexdigest()[:16]


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def checkpoint_message(cp: dict[str, Any]) -> bytes:
    """The signed bytes of a checkpoint."""
    return canonical_json({k: cp[k] for k in _SIGNED_KEYS})


class Signer:
    """An Ed25519 signing key that signs checkpoints."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self.public_key_raw = public_key_raw(private_key.public_key())
        self.public_key_b64 = base64.b64encode(self.public_key_raw).decode()
        self.key_id = key_id_for(self.public_key_raw)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, data: bytes) -> Signer:
        """A PEM (PKCS#8, e.g. ``openssl genpkey -algorithm ed25519``) or a raw 32-byte seed."""
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("the signing key is not an Ed25519 private key")
            return cls(key)
        if len(data) == 32:
            return cls(Ed25519PrivateKey.from_private_bytes(data))
        raise ValueError("the signing key must be a PEM Ed25519 private key or a raw 32-byte seed")

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        """Load the key at ``path``; create it (mode 0600) if it does not exist yet."""
        if path.exists():
            return cls.from_bytes(path.read_bytes())
        path.parent.mkdir(parents=True, exist_ok=True)
        signer = cls.generate()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, signer.private_pem())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process created the key meanwhile: use theirs
        except FileExistsError:
            return cls.from_bytes(path.read_bytes())
        finally:
            os.unlink(tmp)
        return signer

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def public_key_entry(self) -> dict[str, str]:
        return {"key_id": self.key_id, "public_key": self.public_key_b64}

    def sign_checkpoint(self, *, workspace: str, size: int, head: bytes | str, kind: str = KIND_PERIODIC,
                        time: str | None = None) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"unknown checkpoint kind {kind!r}")
        cp: dict[str, Any] = {
            "workspace": workspace, "size": size, "head": head.hex() if isinstance(head, bytes) else head,
            "time": time or now_time(), "key_id": self.key_id, "kind": kind,
        }
        cp["signature"] = base64.b64encode(self.private_key.sign(checkpoint_message(cp))).decode()
        return cp


def verify_checkpoint(cp: dict[str, Any], public_key: bytes | Ed25519PublicKey) -> bool:
    """Whether ``cp["signature"]`` is a valid signature of the checkpoint by ``public_key``."""
    key = Ed25519PublicKey.from_public_bytes(public_key) if isinstance(public_key, bytes) else public_key
    try:
        signature = base64.b64decode(cp["signature"], validate=True)
        key.verify(signature, checkpoint_message(cp))
        return True
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False


# --- writing bundles --------------------------------------------------------------------------

class BundleWriter:
    """Writes a ``reprolab-audit/1`` bundle line by line to a binary stream.

    Call ``entry``/``elided`` in seq order from 1, ``checkpoint`` right after the entry its size
    covers, and ``close`` with the export checkpoint. The writer keeps the chain running so the
    caller cannot misplace a checkpoint or skip an entry without an exception.
    """

    def __init__(self, out: IO[bytes], *, workspace: str, scope: str, exported_at: str,
                 public_keys: Iterable[dict[str, str]]) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.out = out
        self.workspace = workspace
        self.size = 0
        self.head = ZERO
        self.lines = 0
        self.entries = 0
        self.elided_count = 0
        self.checkpoints = 0
        self.exported_at = exported_at
        self._write(canonical_json({
            "type": "header", "format": FORMAT, "workspace": workspace, "scope": scope,
            "exported_at": exported_at, "public_keys": list(public_keys),
        }))

    def _write(self, line: bytes) -> None:
        self.out.write(line + b"\n")
        self.lines += 1

    def _advance(self, seq: int, leaf: bytes) -> bytes:
        if seq != self.size + 1:
            raise ValueError(f"seq {seq} written after seq {self.size}")
        self.size, self.head = seq, chain_hash(self.head, leaf)
        return self.head

    def entry(self, seq: int, canonical: bytes) -> bytes:
        """An entry the reader may see; ``canonical`` is its stored canonical JSON."""
        new = self._advance(seq, leaf_hash(canonical))
        # Every part is canonical and the keys are in sorted order, so the line is canonical JSON.
        self._write(b'{"entry":' + canonical + b',"hash":"' + new.hex().encode()
                    + b'","seq":' + str(seq).encode() + b',"type":"entry"}')
        self.entries += 1
        return new

    def elided(self, seq: int, leaf: bytes) -> bytes:
        """An entry outside the reader's scope: only its leaf digest."""
        new = self._advance(seq, leaf)
        self._write(canonical_json({"type": "elided", "seq": seq, "leaf": leaf.hex()}))
        self.elided_count += 1
        return new

    def checkpoint(self, cp: dict[str, Any]) -> None:
        if cp["size"] != self.size or cp["head"] != self.head.hex():
            raise ValueError(f"checkpoint of size {cp['size']} does not match the chain at seq {self.size}")
        if cp["workspace"] != self.workspace:
            raise ValueError("checkpoint of another workspace")
        self._write(canonical_json({"type": "checkpoint", **cp}))
        self.checkpoints += 1

    def close(self, signer: Signer) -> dict[str, Any]:
        """Sign and write the closing export checkpoint (its time is the header's ``exported_at``)."""
        cp = signer.sign_checkpoint(workspace=self.workspace, size=self.size, head=self.head,
                                    kind=KIND_EXPORT, time=self.exported_at)
        self.checkpoint(cp)
        return cp


# --- verifying bundles ------------------------------------------------------------------------

@dataclass
class VerifyResult:
    """Outcome of ``verify_bundle``. When not ok, ``line`` (1-based) and ``seq`` name the first bad
    spot (``seq`` is the chain position being checked there) and ``reason`` says what is wrong."""

    ok: bool
    entries: int = 0            # chain positions covered (visible + elided)
    elided: int = 0
    checkpoints: int = 0
    workspace: str = ""
    scope: str = ""
    line: int = 0
    seq: int = 0
    reason: str = ""
    head: str = ""
    key_ids: list[str] = field(default_factory=list)


class _Fail(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _iter_lines(source: str | os.PathLike[str] | Iterable[bytes | str]) -> Iterator[bytes]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            yield from fh
    else:
        for line in source:
            yield line.encode() if isinstance(line, str) else line


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Turn a stream of byte chunks (an object store download) into lines, keeping the newlines."""
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = rest + chunk
        start = 0
        while (nl := data.find(b"\n", start)) >= 0:
            yield data[start:nl + 1]
            start = nl + 1
        rest = data[start:]
    if rest:
        yield rest


def _is_hex32(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and _HEX.issuperset(value)


def _is_int(value: Any) -> bool:
    return type(value) is int


def _canonical(dumps: Any, obj: Any, line: bytes) -> bool:
    try:
        return dumps(obj).encode() == line
    except (ValueError, TypeError):
        return False


def verify_bundle(source: str | os.PathLike[str] | Iterable[bytes | str], *,
                  trusted_key_ids: Iterable[str] | None = None) -> VerifyResult:
    """Check a ``reprolab-audit/1`` bundle (a path or an iterable of lines) in one streaming pass.

    Every line must be canonical JSON; every entry's leaf and link is recomputed, every checkpoint's
    position, head and signature checked, and the bundle must end with the export checkpoint.
    With ``trusted_key_ids``, a checkpoint signed by any other key fails the bundle.
    """
    trusted = set(trusted_key_ids) if trusted_key_ids is not None else None
    result = VerifyResult(ok=False)
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                             allow_nan=False).encode
    scan_once = json.JSONDecoder().scan_once  # the C scanner: no per-line wrapper frames
    sha256 = hashlib.sha256
    keys: dict[str, Ed25519PublicKey] = {}
    workspace = scope = exported_at = ""
    size = 0
    head = ZERO
    head_hex = ZERO_HEX
    elided_since: int | None = None   # first seq of elided entries not yet anchored by a hash
    closed = False
    lineno = 0
    seq_ctx = False   # whether the current line's failure names a seq
    try:
        for raw in _iter_lines(source):
            lineno += 1
            seq_ctx = not closed and lineno > 1   # a bad line in the body is where entry size+1 should be
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if closed:
                raise _Fail("content after the closing export checkpoint")
            if not line.strip():
                raise _Fail("blank line")
            try:
                text = line.decode()
                obj, end = scan_once(text, 0)
                if end != len(text):
                    raise ValueError("trailing data")
            except (ValueError, StopIteration):
                raise _Fail("not valid JSON (truncated or corrupted?)") from None
            if not isinstance(obj, dict):
                raise _Fail("not a JSON object")
            kind = obj.get("type")

            if lineno == 1:
                if kind != "header" or obj.keys() != _HEADER_KEYS:
                    raise _Fail("the first line is not a reprolab-audit header")
                if obj["format"] != FORMAT:
                    raise _Fail(f"unsupported format {obj['format']!r} (expected {FORMAT})")
                workspace, scope, exported_at = obj["workspace"], obj["scope"], obj["exported_at"]
                if not isinstance(workspace, str) or not workspace:
                    raise _Fail("header has no workspace")
                if scope not in SCOPES:
                    raise _Fail(f"header scope {scope!r} is not one of {sorted(SCOPES)}")
                if not isinstance(exported_at, str):
                    raise _Fail("header exported_at is not a time")
                if not isinstance(obj["public_keys"], list):
                    raise _Fail("header public_keys is not a list")
                for item in obj["public_keys"]:
                    if not isinstance(item, dict) or item.keys() != {"key_id", "public_key"}:
                        raise _Fail("header public key entry is malformed")
                    try:
                        pub = base64.b64decode(item["public_key"], validate=True)
                        key = Ed25519PublicKey.from_public_bytes(pub)
                    except (ValueError, TypeError):
                        raise _Fail(f"header public key {item.get('key_id')!r} is not an Ed25519 key"
                                    ) from None
                    if key_id_for(pub) != item["key_id"]:
                        raise _Fail(f"header key id {item['key_id']!r} does not match its public key")
                    keys[item["key_id"]] = key
                if not _canonical(dumps, obj, line):
                    raise _Fail("line is not in canonical form (reformatted or edited?)")
                result.workspace, result.scope, result.key_ids = workspace, scope, list(keys)
                continue

            if kind == "entry" or kind == "elided":
                if obj.keys() != (_ENTRY_KEYS if kind == "entry" else _ELIDED_KEYS):
                    raise _Fail(f"{kind} line has fields {sorted(obj)}")
                seq = obj["seq"]
                if not _is_int(seq):
                    raise _Fail("seq is not an integer")
                if seq != size + 1:
                    raise _Fail(f"seq {seq} follows seq {size} (an entry is missing or out of order)")
                if kind == "entry":
                    doc = obj["entry"]
                    stated = obj["hash"]
                    if not isinstance(doc, dict):
                        raise _Fail("entry is not an object")
                    if doc.get("workspace") != workspace:
                        raise _Fail(f"entry belongs to workspace {doc.get('workspace')!r}, "
                                    f"bundle is for {workspace!r}")
                    if doc.get("seq") != seq:
                        raise _Fail(f"entry content says seq {doc.get('seq')!r}")
                    # The line must be exactly {"entry":<c_n>,"hash":"<hex>","seq":<n>,"type":"entry"};
                    # the leaf is taken over the bytes of <c_n> as they stand, so any edit changes it.
                    suffix = f',"hash":"{stated}","seq":{seq},"type":"entry"}}'.encode()
                    if not (line.startswith(b'{"entry":{') and line.endswith(suffix)):
                        raise _Fail("line is not in canonical form (reformatted or edited?)")
                    head = sha256(head + sha256(line[9:len(line) - len(suffix)]).digest()).digest()
                    head_hex = head.hex()
                    if stated != head_hex:
                        if elided_since is not None:
                            raise _Fail("entry hash does not match its content or the chain before it "
                                        f"(an elided leaf between seq {elided_since} and {seq - 1} "
                                        "or this entry was altered)")
                        raise _Fail("entry hash does not match its content")
                    elided_since = None
                else:
                    if scope != SCOPE_OWN:
                        raise _Fail("elided entry in a bundle whose scope is not 'own'")
                    leaf_hex = obj["leaf"]
                    if not _is_hex32(leaf_hex):
                        raise _Fail("elided leaf is not a 64-digit lowercase hex digest")
                    if line != f'{{"leaf":"{leaf_hex}","seq":{seq},"type":"elided"}}'.encode():
                        raise _Fail("line is not in canonical form (reformatted or edited?)")
                    head = sha256(head + bytes.fromhex(leaf_hex)).digest()
                    head_hex = head.hex()
                    if elided_since is None:
                        elided_since = seq
                    result.elided += 1
                size = seq
                continue

            if kind == "checkpoint":
                seq_ctx = False
                if obj.keys() != _CHECKPOINT_KEYS:
                    raise _Fail(f"checkpoint line has fields {sorted(obj)}")
                if obj["workspace"] != workspace:
                    raise _Fail(f"checkpoint belongs to workspace {obj['workspace']!r}, "
                                f"bundle is for {workspace!r}")
                if obj["kind"] not in KINDS:
                    raise _Fail(f"checkpoint kind {obj['kind']!r} is unknown")
                key_id = obj["key_id"]
                if not isinstance(key_id, str) or key_id not in keys:
                    raise _Fail(f"checkpoint signed by unknown key id {key_id!r} (not in the bundle header)")
                if trusted is not None and key_id not in trusted:
                    raise _Fail(f"checkpoint signed by key {key_id}, which is not a trusted key")
                if obj["size"] != size or not _is_int(obj["size"]):
                    raise _Fail(f"checkpoint covers {obj['size']!r} entries but follows seq {size}")
                if obj["head"] != head_hex:
                    if elided_since is not None:
                        raise _Fail(f"checkpoint head does not match the chain at seq {size} "
                                    f"(an elided leaf between seq {elided_since} and {size} was altered?)")
                    raise _Fail(f"checkpoint head does not match the chain at seq {size}")
                if not verify_checkpoint(obj, keys[key_id]):
                    raise _Fail("checkpoint signature is invalid")
                if not _canonical(dumps, obj, line):
                    raise _Fail("line is not in canonical form (reformatted or edited?)")
                elided_since = None
                result.checkpoints += 1
                if obj["kind"] == KIND_EXPORT:
                    if obj["time"] != exported_at:
                        raise _Fail("closing checkpoint time differs from the header's exported_at")
                    closed = True
                continue

            if kind == "header":
                raise _Fail("a second header")
            raise _Fail(f"unknown line type {kind!r}")

        if lineno == 0:
            raise _Fail("bundle is empty")
        if not closed:
            lineno += 1
            raise _Fail("bundle ends without the closing export checkpoint (truncated?)")
    except _Fail as fail:
        result.line, result.entries, result.head = lineno, size, head_hex
        if fail.reason.startswith("bundle "):
            result.seq, result.reason = size, fail.reason
        elif seq_ctx:
            result.seq = size + 1
            result.reason = f"line {lineno} (seq {result.seq}): {fail.reason}"
        else:
            result.seq = size
            result.reason = f"line {lineno}: {fail.reason}"
        return result
    result.ok = True
    result.entries = size
    result.head = head_hex
    return result


__all__ = [
    "FORMAT", "ZERO", "KIND_PERIODIC", "KIND_EXPORT", "SCOPE_OWN", "SCOPE_WORKSPACE",
    "format_time", "parse_time", "now_time", "event_time", "entry_document", "leaf_hash", "chain_hash",
    "Chain", "ChainedEntry", "key_id_for", "checkpoint_message", "Signer", "verify_checkpoint",
    "BundleWriter", "VerifyResult", "verify_bundle", "split_lines",
]
