"""The activity log as a Merkle tree, and its export format ``reprolab-audit/2`` (docs/architecture.md,
"Audit log").

Shared by the audit service (which appends leaves, signs checkpoints and writes bundles) and the
offline verifier (``reprolab audit verify FILE [--against OLD.note]``); it needs nothing but
``cryptography`` and the generated contracts, so the CLI checks a bundle without a server.

Each workspace is one RFC 6962 log (see ``merkle``), entries numbered ``seq`` = 1, 2, ... at leaf
index ``seq - 1``::

    c_seq    = canonical_json(entry_document(event, seq))
    leaf_seq = SHA-256(0x00 || c_seq)

A checkpoint is a C2SP signed note (see ``signednote``) with text ``<origin>\\n<size>\\n<base64 root>\\n``,
signed with Ed25519 under the key name ``<origin>``; the origin is ``<origin prefix>/<workspace>``.
Checkpoints name their key (name + key hash), so a rotated-out key still verifies what it signed.

Bundle (JSON Lines, every line canonical JSON)::

    {"exported_at","format":"reprolab-audit/2","origin","scope","size","type":"header",
     "verifier_keys":[<name+hash+key>...],"workspace"}
    {"entry":<c_seq>,"leaf":"<hex>","seq":<seq>,"type":"entry"}  # an entry the reader may see
    {"leaf":"<hex>","seq":<seq>,"type":"elided"}       # someone else's entry (own-scope export)
    {"checkpoint":"<signed note>","type":"checkpoint"}  # after the entry whose seq == its size
    ...
    {"checkpoint":...}                                  # last line: size == header size

``verify_bundle`` recomputes every leaf and the tree in one streaming pass, checks every checkpoint's
signature and root at its position, and, given a checkpoint the user kept from before, that the
bundle's tree at that size has that root (the log only grew). It names the first bad line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import getitem
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.json_format import MessageToDict
from reprolab.v1 import events_pb2

from . import merkle, signednote
from .canonical import canonical_json
from .merkle import EMPTY_ROOT, CompactRange, fold_right
from .signednote import Checkpoint, NoteError, Verifier

FORMAT = "reprolab-audit/2"
DEFAULT_ORIGIN_PREFIX = "reprolab.local/audit"

SCOPE_OWN = "own"
SCOPE_WORKSPACE = "workspace"
SCOPES = frozenset({SCOPE_OWN, SCOPE_WORKSPACE})

_HEADER_KEYS = frozenset({"type", "format", "origin", "workspace", "scope", "exported_at", "size",
                          "verifier_keys"})
_HEX = frozenset("0123456789abcdef")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_digest = type(hashlib.sha256()).digest  # the method itself: no attribute lookup per call
_CHUNK = 4096  # leaves hashed level by level at a time when verifying (a power of two)
_BLOCK = 1 << 18  # bytes of a bundle file's lines read at a time when verifying: small enough to stay in cache
_LEAF_PREFIXED = hashlib.sha256(b"\x00")  # RFC 6962's leaf and node prefixes, fed once and copied per hash
_NODE_PREFIXED = hashlib.sha256(b"\x01")


def _hashlib_leaf_hashes(docs: list[bytes]) -> list[bytes]:
    """RFC 6962 leaf hashes with hashlib: a copy of a hash already fed the 0x00 prefix, not
    SHA-256(b"\x00" + doc) (no concatenated copy of each document, and copying a started hash costs
    less than starting one)."""
    leaves: list[bytes] = []
    append = leaves.append
    start = _LEAF_PREFIXED.copy
    for doc in docs:
        h = start()
        h.update(doc)
        append(h.digest())
    return leaves


def _hashlib_node_level(nodes: list[bytes]) -> list[bytes]:
    """RFC 6962 node hashes of consecutive pairs (an even count) with hashlib, as for leaves."""
    out: list[bytes] = []
    append = out.append
    start = _NODE_PREFIXED.copy
    for left, right in zip(nodes[0::2], nodes[1::2], strict=True):
        h = start()
        h.update(left)
        h.update(right)
        append(h.digest())
    return out


try:  # the optional C accelerator, the same two functions for a whole run or level in one call
    from reprolab_fasthash import leaf_hashes as _C_LEAVES
    from reprolab_fasthash import node_level as _C_LEVEL
except ImportError:  # the package itself missing (an install without it)
    _C_LEAVES = _C_LEVEL = None
_leaf_hashes = _C_LEAVES or _hashlib_leaf_hashes
_node_level = _C_LEVEL or _hashlib_node_level


def use_accelerator(enabled: bool) -> bool:
    """Verify with the C accelerator (``reprolab_fasthash``) when ``enabled`` and it is built, else
    with ``hashlib`` (same results, about twice the time); returns whether it is now in use. For
    benchmarks and tests that compare the two; the default is to use it when it is there."""
    global _leaf_hashes, _node_level
    on = enabled and _C_LEAVES is not None and _C_LEVEL is not None
    _leaf_hashes, _node_level = (_C_LEAVES, _C_LEVEL) if on else (_hashlib_leaf_hashes, _hashlib_node_level)
    return on


def hash_implementation() -> str:
    """What verification hashes with now: ``"reprolab_fasthash (C, OpenSSL)"`` or ``"hashlib"``."""
    return "reprolab_fasthash (C, OpenSSL)" if _leaf_hashes is _C_LEAVES else "hashlib"


# --- entries ------------------------------------------------------------------------------------

def format_time(dt: datetime) -> str:
    """RFC 3339, UTC, millisecond precision, ``Z``: the only time form inside the log."""
    dt = dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Inverse of ``format_time`` (any RFC 3339 ``Z`` time is accepted)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def now_time() -> str:
    return format_time(datetime.now(UTC))


def event_time(event: events_pb2.Event) -> datetime:
    """The event's time truncated to milliseconds (what the log records)."""
    ms = event.time.seconds * 1000 + event.time.nanos // 1_000_000
    return _EPOCH + timedelta(milliseconds=ms)


def event_details(event: events_pb2.Event) -> dict[str, Any]:
    kind = event.WhichOneof("payload")
    if kind is None:
        return {}
    return MessageToDict(getattr(event, kind), preserving_proto_field_name=True)


def entry_document(event: events_pb2.Event, seq: int) -> dict[str, Any]:
    """The canonical content of log entry ``seq`` recording ``event``."""
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
    """RFC 6962 leaf hash of an entry's canonical bytes."""
    return merkle.leaf_hash(canonical)


def origin_for(workspace: str, prefix: str = DEFAULT_ORIGIN_PREFIX) -> str:
    """The log identity (checkpoint origin and signing key name) of a workspace."""
    origin = f"{prefix.rstrip('/')}/{workspace}"
    if not signednote.valid_key_name(origin):
        raise ValueError(f"origin {origin!r} has whitespace or '+'")
    return origin


@dataclass(frozen=True)
class LogEntry:
    seq: int
    document: dict[str, Any]
    canonical: bytes
    leaf: bytes


class Log:
    """One workspace's tree in memory, continued from its right edge (a ``CompactRange``)."""

    def __init__(self, workspace: str, tree: CompactRange | None = None) -> None:
        self.workspace = workspace
        self.tree = tree or CompactRange()

    @property
    def size(self) -> int:
        return self.tree.size

    def root(self) -> bytes:
        return self.tree.root()

    def append(self, event: events_pb2.Event, on_node=None) -> LogEntry:
        if event.workspace != self.workspace:
            raise ValueError(f"event of workspace {event.workspace!r} appended to log {self.workspace!r}")
        seq = self.tree.size + 1
        doc = entry_document(event, seq)
        canonical = canonical_json(doc)
        leaf = leaf_hash(canonical)
        self.tree.append(leaf, on_node)
        return LogEntry(seq=seq, document=doc, canonical=canonical, leaf=leaf)


# --- keys ---------------------------------------------------------------------------------------

def key_id_for(public_key_raw: bytes) -> str:
    """A key's id in the service's key table: the first 16 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(public_key_raw).hexdigest()[:16]


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Signer:
    """An Ed25519 key that signs checkpoints. One key signs every workspace's log, under each
    log's origin as the note key name (so the verifier key string differs per workspace)."""

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
        signer = cls.generate()
        if signer.write_new(path):
            return signer
        return cls.from_bytes(path.read_bytes())  # another process created it meanwhile: use theirs

    def write_new(self, path: Path) -> bool:
        """Write the key to ``path`` (mode 0600) unless a file is there; whether it was written."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, self.private_pem())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def note_signer(self, origin: str) -> signednote.Signer:
        return signednote.Signer(origin, self.private_key)

    def verifier(self, origin: str) -> Verifier:
        return Verifier(origin, self.public_key_raw)

    def vkey(self, origin: str) -> str:
        return self.verifier(origin).vkey

    def sign_checkpoint(self, origin: str, size: int, root: bytes) -> str:
        """The signed note of the checkpoint (origin, size, root)."""
        return signednote.sign_checkpoint(Checkpoint(origin, size, root), self.note_signer(origin))


def verifier_for(origin: str, public_key_b64: str) -> Verifier:
    return Verifier(origin, base64.b64decode(public_key_b64))


# --- writing bundles ----------------------------------------------------------------------------

class BundleWriter:
    """Writes a ``reprolab-audit/2`` bundle line by line to a binary stream.

    Call ``entry``/``elided`` in seq order from 1, ``checkpoint`` right after the entry its size
    covers, and ``close`` with a checkpoint of the whole bundle. The writer keeps the tree so the
    caller cannot misplace a checkpoint or skip an entry without an exception.
    """

    def __init__(self, out: IO[bytes], *, workspace: str, origin: str, scope: str, exported_at: str,
                 size: int, verifier_keys: Iterable[str]) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.out = out
        self.workspace = workspace
        self.origin = origin
        self.declared_size = size
        self.tree = CompactRange()
        self.lines = 0
        self.entries = 0
        self.elided_count = 0
        self.checkpoints = 0
        self.exported_at = exported_at
        self._write(canonical_json({
            "type": "header", "format": FORMAT, "origin": origin, "workspace": workspace, "scope": scope,
            "exported_at": exported_at, "size": size, "verifier_keys": list(verifier_keys),
        }))

    @property
    def size(self) -> int:
        return self.tree.size

    def root(self) -> bytes:
        return self.tree.root()

    def _write(self, line: bytes) -> None:
        self.out.write(line + b"\n")
        self.lines += 1

    def _advance(self, seq: int, leaf: bytes) -> None:
        if seq != self.tree.size + 1:
            raise ValueError(f"seq {seq} written after seq {self.tree.size}")
        if seq > self.declared_size:
            raise ValueError(f"seq {seq} is beyond the declared size {self.declared_size}")
        self.tree.append(leaf)

    def entry(self, seq: int, canonical: bytes) -> bytes:
        """An entry the reader may see; ``canonical`` is its stored canonical JSON. Returns its leaf."""
        leaf = leaf_hash(canonical)
        self._advance(seq, leaf)
        # Every part is canonical and the keys are in sorted order, so the line is canonical JSON.
        self._write(b'{"entry":' + canonical + b',"leaf":"' + leaf.hex().encode() + b'","seq":' + str(seq).encode()
                    + b',"type":"entry"}')
        self.entries += 1
        return leaf

    def elided(self, seq: int, leaf: bytes) -> None:
        """An entry outside the reader's scope: only its leaf hash."""
        self._advance(seq, leaf)
        self._write(b'{"leaf":"' + leaf.hex().encode() + b'","seq":' + str(seq).encode() + b',"type":"elided"}')
        self.elided_count += 1

    def checkpoint(self, note: str) -> None:
        """A signed checkpoint note; its size must be the number of entries written so far."""
        cp = signednote.parse_checkpoint(note[:note.rfind("\n\n") + 1])
        if cp.origin != self.origin:
            raise ValueError(f"checkpoint of {cp.origin!r} in the bundle of {self.origin!r}")
        if cp.size != self.tree.size or cp.root != self.tree.root():
            raise ValueError(f"checkpoint of size {cp.size} does not match the tree at size {self.tree.size}")
        self._write(canonical_json({"type": "checkpoint", "checkpoint": note}))
        self.checkpoints += 1

    def close(self, note: str) -> None:
        """End with ``note``, a checkpoint of the whole bundle (size == the header's size)."""
        if self.tree.size != self.declared_size:
            raise ValueError(f"{self.tree.size} entries written, the header declares {self.declared_size}")
        self.checkpoint(note)


# --- verifying bundles --------------------------------------------------------------------------

@dataclass
class VerifyResult:
    """Outcome of ``verify_bundle``. When not ok, ``line`` (1-based) and ``seq`` name the first bad
    spot (``seq`` is the log position being checked there) and ``reason`` says what is wrong."""

    ok: bool
    entries: int = 0            # log positions covered (visible + elided)
    elided: int = 0
    checkpoints: int = 0
    workspace: str = ""
    origin: str = ""
    scope: str = ""
    line: int = 0
    seq: int = 0
    reason: str = ""
    root: str = ""              # hex root of the whole bundle's tree
    key_ids: list[str] = field(default_factory=list)        # key ids of the header's keys
    verifier_keys: list[str] = field(default_factory=list)  # the header's verifier key strings
    signed_by: list[str] = field(default_factory=list)      # key ids that signed a checkpoint
    against_size: int | None = None   # size of the older checkpoint the log was shown to extend


class _Fail(Exception):
    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


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


def _iter_blocks(source: str | os.PathLike[str] | Iterable[bytes | str]) -> Iterator[list[bytes]]:
    """The bundle's lines, each ending with one newline (added to a last line without one), a block of
    lines at a time (a file is read with ``readlines`` about 256 KiB at a time through a 64 KiB buffer:
    each line copied once, in C, far faster than line-by-line iteration or a read and a split)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb", buffering=1 << 16) as fh:
            while lines := fh.readlines(_BLOCK):
                if lines[-1][-1:] != b"\n":
                    lines[-1] += b"\n"
                yield lines
        return
    batch: list[bytes] = []
    for line in source:
        if isinstance(line, str):
            line = line.encode()
        batch.append(line if line[-1:] == b"\n" else line + b"\n")
        if len(batch) == 8192:
            yield batch
            batch = []
    if batch:
        yield batch


_ENTRY_START = b'{"entry":{'


def _group(blocks: Iterable[list[bytes]]) -> Iterator[tuple[int, list[bytes] | bytes]]:
    """Runs of entry lines as lists, any other line on its own, with the 1-based number of their
    first line. Runs are found with C-level list searches, not a Python step per line."""
    lineno = 0
    for block in blocks:
        n = len(block)
        flags = list(map(bytes.startswith, block, [_ENTRY_START] * n))
        if lineno == 0 and n:
            flags[0] = False  # the header
        pos = 0
        while pos < n:
            try:
                nxt = flags.index(False, pos)
            except ValueError:
                nxt = n
            if nxt > pos:
                yield lineno + pos + 1, block[pos:nxt]
            if nxt < n:
                yield lineno + nxt + 1, block[nxt]
            pos = nxt + 1
        lineno += n


def _fast_entries(run: list[bytes], first_seq: int, ws_tail: bytes) -> list[bytes] | None:
    """Leaf hashes of a run of entry lines if every line is exactly right, else None (the caller then
    walks the run line by line to name the first bad one). Every step is a C-level ``map`` over the
    whole run, with no Python code per line but the hashing, and the checks are few: the bytes after
    each entry's document are compared, all lines at once, with the text they must be. Hashing is most
    of the cost."""
    n = len(run)
    if not n:
        return []
    last = first_seq + n - 1
    digits = len(str(first_seq))
    if len(str(last)) != digits:  # the tail's length changes at 10, 100, ...: one digit count per part
        cut = 10 ** digits - first_seq
        head = _fast_entries(run[:cut], first_seq, ws_tail)
        rest = _fast_entries(run[cut:], first_seq + cut, ws_tail) if head is not None else None
        return None if rest is None else head + rest
    # every line is '{"entry":' + doc + ',"leaf":"' + 64 hex + '","seq":' + seq + ',"type":"entry"}\n', the doc
    # ending with ws_tail: the last len(ws_tail) + tail bytes of every line are cut with one slice object
    # (no slice made per line) and compared, all lines in one piece, with what they must be. A line
    # shorter than that gives a shorter piece and the whole differs; a line long enough for the piece
    # but shorter than 10 more bytes cannot match either: its first ten are '{"entry":{' (the caller
    # groups only such lines), which hold no ',' where ws_tail begins.
    tail = 98 + digits  # with the line's newline
    stated = b"".join(map(getitem, run, repeat(slice(-(tail + len(ws_tail)), None), n)))
    docs = list(map(getitem, run, repeat(slice(9, -tail), n)))
    leaves = _leaf_hashes(docs)
    # the text they must be, made without a step per line: the leaves in hex, 64 digits apart, with
    # the text between two leaves put in place of the separator, then every seq formatted in at once
    ws = ws_tail.replace(b"%", b"%%") + b',"leaf":"'
    rest = b'","seq":%d,"type":"entry"}\n'
    expected = ws + b"".join(leaves).hex("|", 32).encode().replace(b"|", rest + ws) + rest
    if stated != expected % tuple(range(first_seq, last + 1)):
        return None
    # the entry's own top-level "seq" is its last ,"seq": (nothing after it can hold a raw one); the text
    # it must start with, ',"seq":<seq>,', is cut from the line's own tail, just checked to be exactly that
    own = map(getitem, run, repeat(slice(-(24 + digits), -16), n))
    if not all(map(bytes.startswith, docs, own, map(bytes.rfind, docs, repeat(b',"seq":', n)))):
        return None
    return leaves


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every perfect subtree of a run of leaves starting at an aligned index, level by level."""
    levels = [leaves]
    cur = leaves
    while len(cur) > 1:
        cur = _node_level(cur if len(cur) % 2 == 0 else cur[:-1])  # an odd last node waits for its pair
        levels.append(cur)
    return levels


class _TreeBuilder:
    """Leaves in, roots at any earlier size out, fast: leaves are hashed a chunk at a time level by
    level (list comprehensions instead of a Python loop per node); full chunks fold into a compact
    range. A root asked for inside the current chunk is answered once the chunk's levels exist, so
    checks are queued (``expect``) and run by ``settle``."""

    def __init__(self) -> None:
        self.outer = CompactRange()   # roots of full chunks
        self.base = 0                 # leaves in full chunks
        self.leaves: list[bytes] = []
        self.pending: list[tuple[int, bytes, int, str]] = []  # (size, root, line, what)

    @property
    def size(self) -> int:
        return self.base + len(self.leaves)

    def expect(self, size: int, root: bytes, line: int, what: str) -> None:
        if size <= self.base:
            if size == self.base and self._root_at(size, []) != root:
                raise _Fail(f"{what} root does not match the entries before it", line)
            if size < self.base:
                raise AssertionError("a check was queued for a size already folded")
            return
        self.pending.append((size, root, line, what))

    def _root_at(self, size: int, levels: list[list[bytes]]) -> bytes:
        if size == 0:
            return EMPTY_ROOT
        # the chunk starts at a multiple of _CHUNK, so its perfect subtrees are the tree's own
        inner = [levels[level][idx] for level, idx in merkle.range_nodes(0, size - self.base)]
        return fold_right(self.outer.hashes + inner)

    def settle(self, levels: list[list[bytes]] | None = None) -> None:
        """Check every queued root that the leaves so far cover; the first mismatch (by line) fails."""
        ready = [p for p in self.pending if p[0] <= self.size]
        if not ready:
            return
        self.pending = [p for p in self.pending if p[0] > self.size]
        levels = levels or _levels(self.leaves)
        for size, root, line, what in sorted(ready, key=lambda p: p[2]):
            if self._root_at(size, levels) != root:
                raise _Fail(f"{what} root does not match the entries before it", line)

    def flush(self) -> None:
        """Called when the chunk is full: settle checks in it, fold it into the outer range."""
        levels = _levels(self.leaves)
        self.settle(levels)
        self.outer.append(levels[-1][0])
        self.base += len(self.leaves)
        self.leaves = []

    def root(self) -> bytes:
        return self._root_at(self.size, _levels(self.leaves)) if self.leaves else (
            self.outer.root() if self.base else EMPTY_ROOT)


def _parse_verifiers(keys: Iterable[str]) -> list[Verifier]:
    return [Verifier.parse(k) for k in keys]


def verify_bundle(source: str | os.PathLike[str] | Iterable[bytes | str], *,
                  trusted_keys: Iterable[str] | None = None,
                  trusted_key_ids: Iterable[str] | None = None,
                  against: str | bytes | None = None) -> VerifyResult:
    """Check a ``reprolab-audit/2`` bundle (a path or an iterable of lines) in one streaming pass.

    Every entry's leaf is recomputed from its exact bytes, the tree rebuilt, and every checkpoint's
    signature (by a header key) and root at its position checked; the last line must be a
    checkpoint of the header's size. ``trusted_keys`` (verifier key strings or key ids) restricts
    which keys may sign checkpoints. ``against`` is a signed checkpoint the user kept: it must verify
    with the bundle's (or the trusted) keys, be of the same origin, and the bundle's tree at its
    size must have its root, which proves the log it came from only grew since.
    """
    trusted: set[str] | None = None
    if trusted_keys is not None or trusted_key_ids is not None:
        trusted = set(trusted_keys or ()) | set(trusted_key_ids or ())
    result = VerifyResult(ok=False)
    sha256 = hashlib.sha256
    tree = _TreeBuilder()
    leaves = tree.leaves
    verifiers: list[Verifier] = []
    key_id_of: dict[tuple[str, int], str] = {}
    signed_by: dict[str, None] = {}
    origin = workspace = scope = ""
    declared = 0
    ws_tail = b""
    size = 0
    elided_since: int | None = None
    last_was_final_checkpoint = False
    lineno = 0
    seq_ctx = False
    try:
        for start, item in _group(_iter_blocks(source)):
            if isinstance(item, list):  # a run of entry lines
                seq_ctx = True
                last_was_final_checkpoint = False
                got = _fast_entries(item, size + 1, ws_tail) if size + len(item) <= declared else None
                if got is not None:
                    lineno = start + len(item) - 1
                    size += len(got)
                    while got:
                        room = _CHUNK - len(leaves)
                        leaves.extend(got[:room])
                        got = got[room:]
                        if len(leaves) == _CHUNK:
                            tree.flush()
                            leaves = tree.leaves
                    continue
                for i, line in enumerate(item):
                    lineno = start + i
                    line = line[:-1]
                    seqb = str(size + 1).encode()
                    tail = b'","seq":' + seqb + b',"type":"entry"}'
                    if not line.endswith(tail):
                        at = line.rfind(b',"seq":')
                        stated = line[at + 7:line.find(b",", at + 7)] if at > 0 else b""
                        if line.endswith(b',"type":"entry"}') and stated.isdigit() and stated != seqb:
                            raise _Fail(f"seq {stated.decode()} follows seq {size} (an entry is missing or "
                                        "out of order)")
                        raise _Fail("line is not in canonical form (reformatted or edited?)")
                    end = len(line) - len(tail) - 73
                    if line[end:end + 9] != b',"leaf":"':
                        raise _Fail("line is not in canonical form (reformatted or edited?)")
                    doc = line[9:end]
                    if not doc.endswith(ws_tail):
                        raise _Fail(f"entry does not belong to workspace {workspace!r}")
                    k = doc.rfind(b',"seq":')
                    if doc[k + 7:k + 8 + len(seqb)] != seqb + b",":
                        raise _Fail("entry content names another seq")
                    if size >= declared:
                        raise _Fail(f"entry beyond the {declared} entries the header declares")
                    leaf = sha256(b"\x00" + doc).digest()
                    if leaf.hex().encode() != line[end + 9:end + 73]:
                        raise _Fail("entry does not match its leaf hash (edited?)")
                    leaves.append(leaf)
                    size += 1
                    if len(leaves) == _CHUNK:
                        tree.flush()
                        leaves = tree.leaves
                continue

            lineno, line = start, item[:-1]
            seq_ctx = lineno > 1
            if not line.strip():
                raise _Fail("blank line")
            try:
                text = line.decode()
                obj = json.loads(text)
            except ValueError:
                raise _Fail("not valid JSON (truncated or corrupted?)") from None
            if not isinstance(obj, dict):
                raise _Fail("not a JSON object")
            kind = obj.get("type")

            if lineno == 1:
                seq_ctx = False
                if kind != "header" or obj.keys() != _HEADER_KEYS:
                    raise _Fail("the first line is not a reprolab-audit/2 header")
                if obj["format"] != FORMAT:
                    raise _Fail(f"unsupported format {obj['format']!r} (expected {FORMAT})")
                origin, workspace, scope, declared = obj["origin"], obj["workspace"], obj["scope"], obj["size"]
                if not isinstance(workspace, str) or not workspace:
                    raise _Fail("header has no workspace")
                if not isinstance(origin, str) or not signednote.valid_key_name(origin) \
                        or not origin.endswith("/" + workspace):
                    raise _Fail(f"header origin {origin!r} is not a log origin ending in /{workspace}")
                if scope not in SCOPES:
                    raise _Fail(f"header scope {scope!r} is not one of {sorted(SCOPES)}")
                if type(declared) is not int or declared < 0:
                    raise _Fail("header size is not a non-negative integer")
                if not isinstance(obj["exported_at"], str):
                    raise _Fail("header exported_at is not a time")
                vkeys = obj["verifier_keys"]
                if not isinstance(vkeys, list) or not all(isinstance(v, str) for v in vkeys):
                    raise _Fail("header verifier_keys is not a list of verifier keys")
                try:
                    verifiers = _parse_verifiers(vkeys)
                except NoteError as exc:
                    raise _Fail(f"header verifier key is malformed: {exc}") from None
                for v in verifiers:
                    if v.name != origin:
                        raise _Fail(f"header verifier key {v.name}+{v.key_hash:08x} is not named for {origin!r}")
                    kid = key_id_for(v.public_key)
                    if (v.name, v.key_hash) in key_id_of:
                        raise _Fail("header lists a verifier key twice")
                    key_id_of[(v.name, v.key_hash)] = kid
                if canonical_json(obj) != line:
                    raise _Fail("line is not in canonical form (reformatted or edited?)")
                ws_tail = b',"workspace":' + json.dumps(workspace, ensure_ascii=False).encode() + b"}"
                result.workspace, result.origin, result.scope = workspace, origin, scope
                result.verifier_keys = list(vkeys)
                result.key_ids = [key_id_of[(v.name, v.key_hash)] for v in verifiers]
                if against is not None:
                    old = _open_kept_checkpoint(against, verifiers, origin, trusted, key_id_of)
                    if old.size > declared:
                        raise _Fail(f"your checkpoint covers {old.size} entries but this bundle only {declared}: "
                                    "the log would have shrunk or been rewritten")
                    tree.expect(old.size, old.root, 1, f"your checkpoint of size {old.size}:")
                    result.against_size = old.size
                continue

            if kind == "entry":
                raise _Fail("line is not in canonical form (reformatted or edited?)")

            if kind == "elided":
                last_was_final_checkpoint = False
                if obj.keys() != {"type", "seq", "leaf"}:
                    raise _Fail(f"elided line has fields {sorted(obj)}")
                seq = obj["seq"]
                if type(seq) is not int:
                    raise _Fail("seq is not an integer")
                if seq != size + 1:
                    raise _Fail(f"seq {seq} follows seq {size} (an entry is missing or out of order)")
                if scope != SCOPE_OWN:
                    raise _Fail("elided entry in a bundle whose scope is not 'own'")
                leaf_hex = obj["leaf"]
                if not (isinstance(leaf_hex, str) and len(leaf_hex) == 64 and _HEX.issuperset(leaf_hex)):
                    raise _Fail("elided leaf is not a 64-digit lowercase hex digest")
                if line != b'{"leaf":"' + leaf_hex.encode() + b'","seq":' + str(seq).encode() + b',"type":"elided"}':
                    raise _Fail("line is not in canonical form (reformatted or edited?)")
                if size >= declared:
                    raise _Fail(f"entry beyond the {declared} entries the header declares")
                leaves.append(bytes.fromhex(leaf_hex))
                if elided_since is None:
                    elided_since = seq
                result.elided += 1
                size += 1
                if len(leaves) == _CHUNK:
                    tree.flush()
                    leaves = tree.leaves
                continue

            if kind == "checkpoint":
                seq_ctx = False
                if obj.keys() != {"type", "checkpoint"} or not isinstance(obj["checkpoint"], str):
                    raise _Fail(f"checkpoint line has fields {sorted(obj)}")
                if canonical_json(obj) != line:
                    raise _Fail("line is not in canonical form (reformatted or edited?)")
                try:
                    cp, note = signednote.open_checkpoint(obj["checkpoint"], verifiers, origin=origin)
                except NoteError as exc:
                    raise _Fail(f"checkpoint does not verify with the header's keys: {exc}") from None
                signers = [key_id_of[(s.name, s.key_hash)] for s in note.sigs]
                if trusted is not None and not any(
                        k in trusted or _vkey_of(verifiers, s) in trusted for k, s in zip(signers, note.sigs,
                                                                                            strict=True)):
                    raise _Fail(f"checkpoint signed by key {', '.join(signers)}, which is not a trusted key")
                if cp.size != size:
                    raise _Fail(f"checkpoint covers {cp.size} entries but follows seq {size}")
                what = "checkpoint"
                if elided_since is not None:
                    what = f"checkpoint (an elided leaf between seq {elided_since} and {size} altered?)"
                tree.expect(size, cp.root, lineno, what)
                for k in signers:
                    signed_by[k] = None
                elided_since = None
                result.checkpoints += 1
                last_was_final_checkpoint = size == declared
                continue

            if kind == "header":
                raise _Fail("a second header")
            raise _Fail(f"unknown line type {kind!r}")

        if lineno == 0:
            raise _Fail("bundle is empty")
        seq_ctx = False
        tree.settle()
        if size != declared:
            lineno += 1
            raise _Fail(f"bundle ends after {size} of the {declared} entries its header declares (truncated?)")
        if not last_was_final_checkpoint:
            lineno += 1
            raise _Fail("bundle does not end with a checkpoint of all its entries (truncated?)")
    except _Fail as first:
        fail = first
        # A root check queued on an earlier line comes first: settle what the leaves so far cover.
        try:
            tree.settle()
        except _Fail as earlier:
            if earlier.line is not None and earlier.line < lineno:
                fail = earlier
        bad_line = fail.line if fail.line is not None else lineno
        result.line, result.entries = bad_line, size
        if fail.reason.startswith("bundle "):
            result.seq, result.reason = size, fail.reason
        elif seq_ctx and fail.line is None:
            result.seq = size + 1
            result.reason = f"line {bad_line} (seq {result.seq}): {fail.reason}"
        else:
            result.seq = size
            result.reason = f"line {bad_line}: {fail.reason}"
        return result
    result.ok = True
    result.entries = size
    result.root = tree.root().hex()
    result.signed_by = list(signed_by)
    return result


def _vkey_of(verifiers: list[Verifier], sig: signednote.Signature) -> str:
    for v in verifiers:
        if v.name == sig.name and v.key_hash == sig.key_hash:
            return v.vkey
    return ""


def _open_kept_checkpoint(note: str | bytes, verifiers: list[Verifier], origin: str, trusted: set[str] | None,
                          key_id_of: dict[tuple[str, int], str]) -> Checkpoint:
    text = note.decode(errors="replace") if isinstance(note, bytes) else note
    try:
        claimed = signednote.parse_checkpoint(text[:text.rfind("\n\n") + 1]).origin
    except NoteError:
        claimed = origin
    if claimed != origin:
        raise _Fail(f"your checkpoint is of log {claimed!r}, the bundle of {origin!r}")
    try:
        cp, opened = signednote.open_checkpoint(note, verifiers)
    except NoteError as exc:
        raise _Fail(f"your checkpoint does not verify with the bundle's keys: {exc}") from None
    if cp.origin != origin:
        raise _Fail(f"your checkpoint is of log {cp.origin!r}, the bundle of {origin!r}")
    if trusted is not None and not any(key_id_of[(s.name, s.key_hash)] in trusted or _vkey_of(verifiers, s) in trusted
                                       for s in opened.sigs):
        raise _Fail("your checkpoint is not signed by a trusted key")
    return cp


def verify_consistency_notes(old_note: str | bytes, new_note: str | bytes, proof: list[bytes],
                             verifiers: list[Verifier]) -> tuple[Checkpoint, Checkpoint]:
    """Check two signed checkpoints of one log and the consistency proof between them (the way a
    user checks, without any bundle, that the log only grew since the checkpoint they kept).
    Raises ``NoteError`` or ``merkle.ProofError``."""
    old, _ = signednote.open_checkpoint(old_note, verifiers)
    new, _ = signednote.open_checkpoint(new_note, verifiers, origin=old.origin)
    if new.size < old.size:
        raise merkle.ProofError(f"the new checkpoint ({new.size}) is smaller than the old one ({old.size})")
    merkle.verify_consistency(old.size, new.size, proof, old.root, new.root)
    return old, new


__all__ = [
    "FORMAT", "DEFAULT_ORIGIN_PREFIX", "SCOPE_OWN", "SCOPE_WORKSPACE", "SCOPES",
    "format_time", "parse_time", "now_time", "event_time", "entry_document", "leaf_hash", "origin_for",
    "Log", "LogEntry", "key_id_for", "Signer", "verifier_for", "BundleWriter", "VerifyResult", "verify_bundle",
    "split_lines", "verify_consistency_notes",
]
