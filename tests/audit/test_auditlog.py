"""The audit chain library: entry documents, checkpoints, bundles and the tamper-detection suite."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from reprolab.v1 import common_pb2, events_pb2
from reprolab_common import auditlog
from reprolab_common.auditlog import BundleWriter, Chain, Signer, verify_bundle
from reprolab_common.canonical import canonical_json
from reprolab_common.nats import new_event

WS = "cs101"
OTHER_WS = "bio202"
T0 = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
ALICE = common_pb2.Actor(user_id="u-alice", username="alice")
BOB = common_pb2.Actor(user_id="u-bob", username="bob")
CAROL = common_pb2.Actor(user_id="u-carol", username="carol", platform_admin=True)


def payload(i: int) -> dict[str, Any]:
    """One of every payload kind, in turn, with nested-looking values."""
    kinds = [
        ("workspace.created", "workspace_created",
         events_pb2.WorkspaceCreated(slug=WS, title=f"Course {i} ✓")),
        ("member.added", "member_added", events_pb2.MemberAdded(user_id=f"u-{i}", username=f"user{i}",
                                                                role=common_pb2.ROLE_STUDENT)),
        ("environment.created", "environment_created", events_pb2.EnvironmentCreated(
            name=f"env{i}", owner="alice", forked_from=f"{WS}/base/v1")),
        ("version.created", "version_created", events_pb2.VersionCreated(
            environment=f"env{i}", number=i + 1, spec_digest="sha256:" + "ab" * 32,
            parent=f"{WS}/env{i}/v{i}", origin="rollback", rollback_to=1)),
        ("dataset.uploaded", "dataset_uploaded", events_pb2.DatasetUploaded(
            name=f"data{i}", digest="sha256:" + "cd" * 32, size=10_000_000_000 + i, visibility="public")),
        ("dataset.downloaded", "dataset_downloaded",
         events_pb2.DatasetDownloaded(name=f"data{i}", digest="x")),
        ("activity.exported", "activity_exported",
         events_pb2.ActivityExported(entries=i, bundle_sha256="ef" * 32)),
        ("member.removed", "member_removed",
         events_pb2.MemberRemoved(user_id=f"u-{i}", username=f"user{i}")),
    ]
    type_, field, message = kinds[i % len(kinds)]
    return {"type": type_, field: message}


def make_events(workspace: str, n: int) -> list[events_pb2.Event]:
    actors = [ALICE, BOB, CAROL]
    out = []
    for i in range(n):
        p = payload(i)
        out.append(new_event(actor=actors[i % 3], workspace=workspace, subject=f"things/{i}",
                             time=T0 + timedelta(seconds=i, microseconds=i * 1111), **p))
    return out


def make_bundle(events: list[events_pb2.Event], signer: Signer, *, every: int = 10,
                viewer: common_pb2.Actor | None = None,
                extra_signers: list[Signer] | None = None) -> list[bytes]:
    """A bundle as the service writes one; ``viewer`` makes an OWN export for that actor.
    With ``extra_signers``, periodic checkpoints rotate through several keys."""
    signers = [signer, *(extra_signers or [])]
    chain = Chain(events[0].workspace if events else WS)
    buf = io.BytesIO()
    writer = BundleWriter(buf, workspace=chain.workspace, scope="own" if viewer else "workspace",
                          exported_at=auditlog.format_time(T0 + timedelta(days=1)),
                          public_keys=[s.public_key_entry() for s in signers])
    for ev in events:
        e = chain.append(ev)
        if viewer is not None and ev.actor.user_id != viewer.user_id:
            writer.elided(e.seq, e.leaf)
        else:
            writer.entry(e.seq, e.canonical)
        if e.seq % every == 0:
            by = signers[(e.seq // every) % len(signers)]
            writer.checkpoint(by.sign_checkpoint(workspace=chain.workspace, size=e.seq, head=e.hash,
                                                 time=auditlog.format_time(T0 + timedelta(hours=e.seq))))
    writer.close(signer)
    return buf.getvalue().splitlines(keepends=True)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture(scope="module")
def events() -> list[events_pb2.Event]:
    return make_events(WS, 50)


@pytest.fixture(scope="module")
def bundle(events: list[events_pb2.Event], signer: Signer) -> list[bytes]:
    return make_bundle(events, signer)


def obj(line: bytes) -> dict:
    return json.loads(line)


def dump(value: dict) -> bytes:
    return canonical_json(value) + b"\n"


def lines_of(bundle: list[bytes], type_: str) -> list[int]:
    return [i for i, line in enumerate(bundle) if obj(line)["type"] == type_]


def leaf_paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every path to a scalar (and to every object, for key removal) inside a JSON value."""
    if isinstance(value, dict):
        if path:
            yield path
        for k, v in value.items():
            yield from leaf_paths(v, (*path, k))
    else:
        yield path


def mutate(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        if value and all(c in "0123456789abcdef" for c in value):  # keep hex looking like hex
            return ("1" if value[0] == "0" else "0") + value[1:]
        return value + "x" if value else "x"
    if isinstance(value, dict):
        return {**value, "extra": "x"}
    if isinstance(value, list):
        return [*value, "x"]
    raise AssertionError(f"unexpected {value!r}")


def with_path(doc: dict, path: tuple, new: Any) -> dict:
    doc = json.loads(json.dumps(doc))
    target = doc
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = new
    return doc


def without_path(doc: dict, path: tuple) -> dict:
    doc = json.loads(json.dumps(doc))
    target = doc
    for k in path[:-1]:
        target = target[k]
    del target[path[-1]]
    return doc


def get(doc: dict, path: tuple) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def replaced(bundle: list[bytes], index: int, line: bytes) -> list[bytes]:
    return [*bundle[:index], line, *bundle[index + 1:]]


# --- the chain itself -------------------------------------------------------------------------

def test_entry_document_is_the_canonical_content_of_the_event() -> None:
    ev = new_event(type="dataset.uploaded", actor=ALICE, workspace=WS, subject="datasets/iris",
                   time=datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC),
                   dataset_uploaded=events_pb2.DatasetUploaded(name="iris", digest="sha256:00", size=12,
                                                               visibility="public"))
    assert auditlog.entry_document(ev, 7) == {
        "seq": 7, "workspace": WS, "event_id": ev.id, "type": "dataset.uploaded", "subject": "datasets/iris",
        "actor": {"id": "u-alice", "name": "alice"}, "time": "2026-01-02T03:04:05.678Z",
        # int64 fields are strings in proto JSON: no float ever reaches the canonical form
        "details": {"name": "iris", "digest": "sha256:00", "size": "12", "visibility": "public"},
    }
    enum_ev = new_event(type="member.added", actor=ALICE, workspace=WS, subject="members/u-2",
                        member_added=events_pb2.MemberAdded(user_id="u-2", username="b",
                                                            role=common_pb2.ROLE_ADMIN))
    assert auditlog.entry_document(enum_ev, 1)["details"]["role"] == "ROLE_ADMIN"


def test_chain_follows_the_documented_formula(events: list[events_pb2.Event]) -> None:
    chain = Chain(WS)
    prev = bytes(32)
    for ev in events[:5]:
        e = chain.append(ev)
        c = canonical_json(auditlog.entry_document(ev, e.seq))
        assert e.canonical == c
        assert e.leaf == hashlib.sha256(c).digest()
        assert e.hash == hashlib.sha256(prev + e.leaf).digest()
        prev = e.hash
    assert chain.size == 5 and chain.head == prev
    with pytest.raises(ValueError):
        chain.append(make_events(OTHER_WS, 1)[0])


def test_checkpoint_signature_covers_exactly_the_documented_fields(signer: Signer) -> None:
    cp = signer.sign_checkpoint(workspace=WS, size=3, head=b"\x01" * 32, time="2026-01-01T00:00:00.000Z")
    assert set(cp) == {"workspace", "size", "head", "time", "key_id", "kind", "signature"}
    assert cp["kind"] == "periodic" and cp["head"] == "01" * 32
    assert cp["key_id"] == hashlib.sha256(signer.public_key_raw).hexdigest()[:16]
    signed = canonical_json({k: cp[k] for k in ("workspace", "size", "head", "time", "key_id", "kind")})
    public = Ed25519PublicKey.from_public_bytes(signer.public_key_raw)
    public.verify(base64.b64decode(cp["signature"]), signed)  # raises if the signed bytes differ
    assert auditlog.verify_checkpoint(cp, signer.public_key_raw)
    assert not auditlog.verify_checkpoint({**cp, "size": 4}, signer.public_key_raw)
    assert not auditlog.verify_checkpoint(cp, Signer.generate().public_key_raw)


def test_signing_key_file_is_created_private_and_reused(tmp_path) -> None:
    path = tmp_path / "keys" / "audit-signing-key"
    first = Signer.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Signer.load_or_create(path).key_id == first.key_id
    assert Signer.from_bytes(first.private_key.private_bytes_raw()).key_id == first.key_id


# --- bundles that must pass -------------------------------------------------------------------

def test_untouched_bundle_passes(bundle: list[bytes], signer: Signer) -> None:
    result = verify_bundle(bundle)
    assert result.ok, result.reason
    assert (result.entries, result.checkpoints, result.workspace, result.elided) == (50, 6, WS, 0)
    assert result.key_ids == [signer.key_id]
    assert verify_bundle(bundle, trusted_key_ids={signer.key_id}).ok


def test_bundle_read_from_a_file_and_from_odd_chunks_passes(bundle: list[bytes], tmp_path) -> None:
    path = tmp_path / "b.jsonl"
    data = b"".join(bundle)
    path.write_bytes(data)
    assert verify_bundle(path).ok
    assert verify_bundle(str(path)).ok
    chunks = [data[i:i + 7] for i in range(0, len(data), 7)]
    assert verify_bundle(auditlog.split_lines(chunks)).ok
    assert verify_bundle([line.decode() for line in bundle]).ok


def test_student_bundle_with_elided_lines_passes(events: list[events_pb2.Event], signer: Signer) -> None:
    own = make_bundle(events, signer, viewer=ALICE)
    result = verify_bundle(own)
    assert result.ok, result.reason
    assert result.entries == 50 and result.elided == 33 and result.scope == "own"
    text = b"".join(own).decode()
    assert "alice" in text
    assert "bob" not in text and "carol" not in text and "u-bob" not in text
    # the closing checkpoint has the same head as the full export: nothing was left unchecked
    full = verify_bundle(make_bundle(events, signer))
    assert result.head == full.head


def test_empty_workspace_bundle_passes(signer: Signer) -> None:
    buf = io.BytesIO()
    BundleWriter(buf, workspace=WS, scope="workspace", exported_at=auditlog.now_time(),
                 public_keys=[signer.public_key_entry()]).close(signer)
    result = verify_bundle(buf.getvalue().splitlines(keepends=True))
    assert result.ok and result.entries == 0 and result.head == "00" * 32


def test_key_rotation_bundle_passes_and_lists_every_key(events: list[events_pb2.Event],
                                                        signer: Signer) -> None:
    old = Signer.generate()
    rotated = make_bundle(events, signer, extra_signers=[old])
    result = verify_bundle(rotated)
    assert result.ok, result.reason
    assert set(result.key_ids) == {signer.key_id, old.key_id}
    bad = verify_bundle(rotated, trusted_key_ids={signer.key_id})
    assert not bad.ok and "not a trusted key" in bad.reason and old.key_id in bad.reason


# --- the mutation suite -----------------------------------------------------------------------

def test_every_field_of_every_entry_mutated_is_caught_at_its_line(bundle: list[bytes]) -> None:
    checked = 0
    for index in lines_of(bundle, "entry"):
        original = obj(bundle[index])
        seq = original["seq"]
        where = f"line {index + 1} (seq {seq}):"
        for path in leaf_paths(original):
            variants = [with_path(original, path, mutate(get(original, path))), without_path(original, path)]
            for variant in variants:
                result = verify_bundle(replaced(bundle, index, dump(variant)))
                assert not result.ok, (path, variant)
                assert (result.line, result.seq) == (index + 1, seq), (path, result)
                assert result.reason.startswith(where), (path, result.reason)
                checked += 1
    assert checked > 50 * 20  # every path of every entry (about 25 each) was tried


def test_entry_content_edits_name_the_right_reason(bundle: list[bytes]) -> None:
    index = lines_of(bundle, "entry")[5]
    original = obj(bundle[index])
    seq = original["seq"]
    cases = {
        ("entry", "details", "name"): "entry hash does not match its content",
        ("entry", "actor", "name"): "entry hash does not match its content",
        ("entry", "time"): "entry hash does not match its content",
        ("hash",): "entry hash does not match its content",
        ("seq",): f"seq {seq + 1} follows seq {seq - 1} (an entry is missing or out of order)",
        ("entry", "seq"): "entry content says seq",
    }
    for path, reason in cases.items():
        doc = obj(bundle[index])
        if path == ("entry", "details", "name") and "name" not in doc["entry"]["details"]:
            path = ("entry", "subject")
        result = verify_bundle(replaced(bundle, index, dump(with_path(doc, path, mutate(get(doc, path))))))
        assert reason in result.reason, (path, result.reason)
    foreign = with_path(original, ("entry", "workspace"), OTHER_WS)
    result = verify_bundle(replaced(bundle, index, dump(foreign)))
    assert result.reason == (f"line {index + 1} (seq {seq}): entry belongs to workspace '{OTHER_WS}', "
                             f"bundle is for '{WS}'")


def test_entry_spliced_from_another_workspace_is_caught(bundle: list[bytes], signer: Signer) -> None:
    other = make_bundle(make_events(OTHER_WS, 50), signer)
    index = lines_of(bundle, "entry")[9]
    result = verify_bundle(replaced(bundle, index, other[index]))
    assert not result.ok and result.line == index + 1
    assert "entry belongs to workspace 'bio202', bundle is for 'cs101'" in result.reason


def test_reformatted_entry_line_is_caught(bundle: list[bytes]) -> None:
    index = lines_of(bundle, "entry")[3]
    pretty = (json.dumps(obj(bundle[index]), sort_keys=True) + "\n").encode()  # same content, spaces
    result = verify_bundle(replaced(bundle, index, pretty))
    assert not result.ok and result.line == index + 1 and "canonical" in result.reason
    # a duplicated key cannot hide a different value from the hash either
    line = bundle[index].rstrip(b"\n")
    dup = line[:-1] + b',"type":"entry"}\n'
    assert not verify_bundle(replaced(bundle, index, dup)).ok


def test_deleted_entry_is_caught(bundle: list[bytes]) -> None:
    entries = lines_of(bundle, "entry")
    for k in (0, 17, 49):
        index = entries[k]
        result = verify_bundle(bundle[:index] + bundle[index + 1:])
        assert not result.ok
        seq = k + 1
        if k == 49:  # the last entry: the closing checkpoint no longer matches the position
            assert result.line == index + 1
            assert "checkpoint covers 50 entries but follows seq 49" in result.reason
        else:
            assert (result.line, result.seq) == (index + 1, seq)
            assert result.reason == (f"line {index + 1} (seq {seq}): seq {seq + 1} follows seq {seq - 1} "
                                     "(an entry is missing or out of order)")


def test_reordered_entries_are_caught(bundle: list[bytes]) -> None:
    entries = lines_of(bundle, "entry")
    a, b = entries[4], entries[5]
    swapped = list(bundle)
    swapped[a], swapped[b] = swapped[b], swapped[a]
    result = verify_bundle(swapped)
    assert not result.ok and (result.line, result.seq) == (a + 1, 5)
    assert "seq 6 follows seq 4" in result.reason
    # renumbered to look in order: the hashes give it away
    first, second = obj(bundle[a]), obj(bundle[b])
    first["seq"], first["entry"]["seq"], second["seq"], second["entry"]["seq"] = 6, 6, 5, 5
    renumbered = replaced(replaced(bundle, a, dump(second)), b, dump(first))
    result = verify_bundle(renumbered)
    assert not result.ok and (result.line, result.seq) == (a + 1, 5)
    assert "entry hash does not match" in result.reason


def test_truncated_tail_is_caught(bundle: list[bytes]) -> None:
    for drop in range(1, 8):
        result = verify_bundle(bundle[:-drop])
        assert not result.ok
        assert result.reason == "bundle ends without the closing export checkpoint (truncated?)"
        assert result.line == len(bundle) - drop + 1
    data = b"".join(bundle)
    tail_start = len(data) - sum(len(line) for line in bundle[-3:])
    for cut in range(tail_start, len(data) - 1):  # every cut inside the last three lines
        result = verify_bundle(data[:cut].splitlines(keepends=True))
        assert not result.ok, cut
    for cut in (len(data) // 3, len(data) // 2 + 5):
        result = verify_bundle(data[:cut].splitlines(keepends=True))
        assert not result.ok and ("not valid JSON" in result.reason or "truncated" in result.reason)
    assert verify_bundle(data[:-1].splitlines(keepends=True)).ok  # only the final newline gone: nothing lost


def test_content_after_the_closing_checkpoint_is_caught(bundle: list[bytes]) -> None:
    result = verify_bundle([*bundle, bundle[1]])
    assert not result.ok and result.line == len(bundle) + 1 and "after the closing" in result.reason


def test_swapped_and_flipped_checkpoint_signatures_are_caught(bundle: list[bytes]) -> None:
    cps = lines_of(bundle, "checkpoint")
    a, b = obj(bundle[cps[1]]), obj(bundle[cps[2]])
    a["signature"], b["signature"] = b["signature"], a["signature"]
    result = verify_bundle(replaced(replaced(bundle, cps[1], dump(a)), cps[2], dump(b)))
    assert not result.ok
    assert result.reason == f"line {cps[1] + 1}: checkpoint signature is invalid"
    for cp_index in (cps[0], cps[-1]):
        for bit in (0, 77, 511):
            doc = obj(bundle[cp_index])
            raw = bytearray(base64.b64decode(doc["signature"]))
            raw[bit // 8] ^= 1 << (bit % 8)
            doc["signature"] = base64.b64encode(bytes(raw)).decode()
            result = verify_bundle(replaced(bundle, cp_index, dump(doc)))
            assert result.reason == f"line {cp_index + 1}: checkpoint signature is invalid"


def test_every_field_of_every_checkpoint_mutated_is_caught_at_its_line(bundle: list[bytes]) -> None:
    for index in lines_of(bundle, "checkpoint"):
        original = obj(bundle[index])
        for path in leaf_paths(original):
            changed = with_path(original, path, mutate(get(original, path)))
            for variant in (changed, without_path(original, path)):
                result = verify_bundle(replaced(bundle, index, dump(variant)))
                assert not result.ok and result.line == index + 1, (path, result)


def test_checkpoint_size_and_head_changes_are_caught(bundle: list[bytes]) -> None:
    index = lines_of(bundle, "checkpoint")[2]
    doc = obj(bundle[index])
    result = verify_bundle(replaced(bundle, index, dump({**doc, "size": doc["size"] - 1})))
    assert result.reason == f"line {index + 1}: checkpoint covers 29 entries but follows seq 30"
    result = verify_bundle(replaced(bundle, index, dump({**doc, "head": "ab" * 32})))
    assert result.reason == f"line {index + 1}: checkpoint head does not match the chain at seq 30"
    # a checkpoint moved to another position
    moved = [*bundle[:index], *bundle[index + 1:index + 3], bundle[index], *bundle[index + 3:]]
    assert not verify_bundle(moved).ok


def test_unknown_key_ids_are_caught(bundle: list[bytes], signer: Signer,
                                    events: list[events_pb2.Event]) -> None:
    index = lines_of(bundle, "checkpoint")[0]
    unknown = {**obj(bundle[index]), "key_id": "0123456789abcdef"}
    result = verify_bundle(replaced(bundle, index, dump(unknown)))
    assert result.reason == (f"line {index + 1}: checkpoint signed by unknown key id '0123456789abcdef' "
                             "(not in the bundle header)")
    # a forger who re-signs everything with their own key passes offline only without trusted keys
    forger = Signer.generate()
    forged = make_bundle(events, forger)
    assert verify_bundle(forged).ok
    result = verify_bundle(forged, trusted_key_ids={signer.key_id})
    assert not result.ok and "not a trusted key" in result.reason
    # a header key that does not hash to its id
    header = obj(bundle[0])
    header["public_keys"] = [{"key_id": signer.key_id, "public_key": forger.public_key_b64}]
    result = verify_bundle(replaced(bundle, 0, dump(header)))
    assert not result.ok and result.line == 1 and "does not match its public key" in result.reason


def test_every_header_field_mutated_is_caught(bundle: list[bytes]) -> None:
    header = obj(bundle[0])
    for path in leaf_paths(header):
        result = verify_bundle(replaced(bundle, 0, dump(with_path(header, path, mutate(get(header, path))))))
        assert not result.ok, path
    for key in header:
        assert not verify_bundle(replaced(bundle, 0, dump(without_path(header, (key,))))).ok
    result = verify_bundle(replaced(bundle, 0, dump({**header, "exported_at": "2020-01-01T00:00:00.000Z"})))
    assert result.line == len(bundle) and "exported_at" in result.reason
    assert not verify_bundle(bundle[1:]).ok
    assert verify_bundle([]).reason == "bundle is empty"


def test_elided_lines_cannot_be_altered(events: list[events_pb2.Event], signer: Signer) -> None:
    own = make_bundle(events, signer, viewer=ALICE)
    elided = lines_of(own, "elided")
    anchors = [i for i in range(len(own)) if obj(own[i])["type"] in ("entry", "checkpoint")]
    for index in elided:
        doc = obj(own[index])
        next_anchor = min(i for i in anchors if i > index)
        result = verify_bundle(replaced(own, index, dump({**doc, "leaf": mutate(doc["leaf"])})))
        assert not result.ok
        assert result.line == next_anchor + 1, (index, result)
        assert "elided" in result.reason
        for path in (("seq",), ("type",)):
            result = verify_bundle(replaced(own, index, dump(with_path(doc, path, mutate(get(doc, path))))))
            assert not result.ok and result.line == index + 1
    # an elided line in a full export, or a visible entry turned into a wrong elided one
    header = obj(own[0])
    result = verify_bundle(replaced(own, 0, dump({**header, "scope": "workspace"})))
    assert not result.ok and "scope" in result.reason
    entry_index = lines_of(own, "entry")[2]
    entry = obj(own[entry_index])
    fake = {"type": "elided", "seq": entry["seq"], "leaf": "00" * 32}
    assert not verify_bundle(replaced(own, entry_index, dump(fake))).ok
    # hiding a visible entry behind its true leaf is detectable by nobody but changes nothing either:
    true_leaf = hashlib.sha256(canonical_json(entry["entry"])).hexdigest()
    assert verify_bundle(replaced(own, entry_index, dump({**fake, "leaf": true_leaf}))).ok


def test_verification_streams_fast() -> None:
    signer = Signer.generate()
    n = 20_000
    lines = make_bundle(make_events(WS, n), signer, every=100)
    start = time.perf_counter()
    result = verify_bundle(lines)
    rate = n / (time.perf_counter() - start)
    assert result.ok and result.entries == n
    assert rate > 30_000, f"{rate:.0f} entries/s"  # ~120k/s on a laptop core; a quadratic slip fails
