"""The audit log library: entry documents, leaves, signed checkpoints, bundles (reprolab-audit/2) and the
bundle half of the mutation suite: every honest bundle passes, every edit, deletion, reordering,
truncation, swapped or forged checkpoint fails, naming its line. Every test runs twice: hashing with the
C accelerator (``reprolab_fasthash``) and with ``hashlib`` alone, which must agree on every verdict."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reprolab.v1 import common_pb2, events_pb2
from reprolab_common import auditlog, merkle, signednote
from reprolab_common.auditlog import BundleWriter, Log, Signer, verify_bundle
from reprolab_common.canonical import canonical_json
from reprolab_common.nats import new_event

WS = "cs101"


@pytest.fixture(autouse=True, params=["fasthash", "hashlib"])
def hashing(request: pytest.FixtureRequest) -> Iterator[str]:
    """Verification with the C accelerator, then with hashlib only. The accelerator must be built
    here (``make install`` compiles it): a missing one fails rather than quietly testing hashlib twice."""
    used = auditlog.use_accelerator(request.param == "fasthash")
    assert used == (request.param == "fasthash"), "reprolab_fasthash's C extension is not built"
    try:
        yield request.param
    finally:
        auditlog.use_accelerator(True)

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


ORIGIN = auditlog.origin_for(WS)


def make_bundle(events: list[events_pb2.Event], signer: Signer, *, every: int = 10,
                viewer: common_pb2.Actor | None = None, extra_signers: list[Signer] | None = None,
                notes: dict[int, str] | None = None) -> list[bytes]:
    """A bundle as the service writes one; ``viewer`` makes an OWN export for that actor. With
    ``extra_signers``, checkpoints rotate through several keys; ``notes`` collects every checkpoint."""
    signers = [signer, *(extra_signers or [])]
    workspace = events[0].workspace if events else WS
    origin = auditlog.origin_for(workspace)
    log = Log(workspace)
    buf = io.BytesIO()
    writer = BundleWriter(buf, workspace=workspace, origin=origin, scope="own" if viewer else "workspace",
                          exported_at=auditlog.format_time(T0 + timedelta(days=1)), size=len(events),
                          verifier_keys=[s.vkey(origin) for s in signers])
    for ev in events:
        e = log.append(ev)
        if viewer is not None and ev.actor.user_id != viewer.user_id:
            writer.elided(e.seq, e.leaf)
        else:
            writer.entry(e.seq, e.canonical)
        if e.seq % every == 0 and e.seq != len(events):
            by = signers[(e.seq // every) % len(signers)]
            note = by.sign_checkpoint(origin, e.seq, log.root())
            writer.checkpoint(note)
            if notes is not None:
                notes[e.seq] = note
    closing = signer.sign_checkpoint(origin, log.size, log.root())
    if notes is not None:
        notes[log.size] = closing
    writer.close(closing)
    return buf.getvalue().splitlines(keepends=True)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture(scope="module")
def events() -> list[events_pb2.Event]:
    return make_events(WS, 50)


@pytest.fixture(scope="module")
def notes(events: list[events_pb2.Event], signer: Signer) -> dict[int, str]:
    out: dict[int, str] = {}
    make_bundle(events, signer, notes=out)
    return out


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
        if "\n\n" in value:  # a signed note: change one character of its text
            return value.replace("\n", "0\n", 1) if not value[0].isdigit() else "x" + value
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


def note_of(line: bytes) -> str:
    return obj(line)["checkpoint"]


def cp_of(line: bytes) -> signednote.Checkpoint:
    note = note_of(line)
    return signednote.parse_checkpoint(note[:note.rfind("\n\n") + 1])


# --- entries and the log ------------------------------------------------------------------------

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


def test_log_follows_the_documented_formula(events: list[events_pb2.Event]) -> None:
    log = Log(WS)
    leaves = []
    for ev in events[:9]:
        e = log.append(ev)
        c = canonical_json(auditlog.entry_document(ev, e.seq))
        assert e.canonical == c
        assert e.leaf == hashlib.sha256(b"\x00" + c).digest()
        leaves.append(e.leaf)
        assert log.root() == merkle.reference_root(leaves)
    assert log.size == 9
    with pytest.raises(ValueError):
        log.append(make_events(OTHER_WS, 1)[0])


def test_checkpoint_is_a_c2sp_signed_note_under_the_origin(signer: Signer) -> None:
    root = hashlib.sha256(b"r").digest()
    note = signer.sign_checkpoint(ORIGIN, 3, root)
    text, sigs = note.split("\n\n")
    assert text + "\n" == f"{ORIGIN}\n3\n{base64.b64encode(root).decode()}\n"
    assert ORIGIN == "reprolab.local/audit/cs101"
    name, blob = sigs.rstrip("\n").removeprefix("\u2014 ").split(" ")
    assert name == ORIGIN
    raw = base64.b64decode(blob)
    key_hash = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + signer.public_key_raw).digest()[:4]
    assert raw[:4] == key_hash and len(raw) == 68
    signer.private_key.public_key().verify(raw[4:], (text + "\n").encode())  # raises if wrong
    vkey = signer.vkey(ORIGIN)
    key_b64 = base64.b64encode(b"\x01" + signer.public_key_raw).decode()
    assert vkey == f"{ORIGIN}+{key_hash.hex()}+{key_b64}"
    cp, _ = signednote.open_checkpoint(note, [signednote.Verifier.parse(vkey)], origin=ORIGIN)
    assert (cp.size, cp.root) == (3, root)
    with pytest.raises(signednote.NoteError):
        signednote.open_checkpoint(note, [Signer.generate().verifier(ORIGIN)])
    with pytest.raises(signednote.NoteError):
        signednote.open_checkpoint(note, [signer.verifier(ORIGIN)], origin=auditlog.origin_for(OTHER_WS))


def test_signing_key_file_is_created_private_and_reused(tmp_path) -> None:
    path = tmp_path / "keys" / "audit-signing-key"
    first = Signer.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Signer.load_or_create(path).key_id == first.key_id
    assert Signer.from_bytes(first.private_key.private_bytes_raw()).key_id == first.key_id


# --- bundles that must pass ---------------------------------------------------------------------

def test_untouched_bundle_passes(bundle: list[bytes], signer: Signer, events: list[events_pb2.Event]) -> None:
    result = verify_bundle(bundle)
    assert result.ok, result.reason
    assert (result.entries, result.checkpoints, result.workspace, result.elided) == (50, 5, WS, 0)
    assert result.origin == ORIGIN and result.key_ids == [signer.key_id] and result.signed_by == [signer.key_id]
    log = Log(WS)
    for ev in events:
        log.append(ev)
    assert result.root == log.root().hex()
    assert verify_bundle(bundle, trusted_keys={signer.key_id}).ok
    assert verify_bundle(bundle, trusted_keys={signer.vkey(ORIGIN)}).ok


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
    # the same tree as the full export: nothing was left unchecked
    assert result.root == verify_bundle(make_bundle(events, signer)).root


def test_empty_workspace_bundle_passes(signer: Signer) -> None:
    buf = io.BytesIO()
    BundleWriter(buf, workspace=WS, origin=ORIGIN, scope="workspace", exported_at=auditlog.now_time(), size=0,
                 verifier_keys=[signer.vkey(ORIGIN)]).close(signer.sign_checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT))
    result = verify_bundle(buf.getvalue().splitlines(keepends=True))
    assert result.ok and result.entries == 0 and result.root == merkle.EMPTY_ROOT.hex()


def test_key_rotation_bundle_passes_and_names_every_signer(events: list[events_pb2.Event], signer: Signer) -> None:
    old = Signer.generate()
    rotated = make_bundle(events, signer, extra_signers=[old])
    result = verify_bundle(rotated)
    assert result.ok, result.reason
    assert set(result.key_ids) == set(result.signed_by) == {signer.key_id, old.key_id}
    bad = verify_bundle(rotated, trusted_keys={signer.key_id})
    assert not bad.ok and "not a trusted key" in bad.reason and old.key_id in bad.reason
    assert verify_bundle(rotated, trusted_keys={signer.key_id, old.vkey(ORIGIN)}).ok


def test_sizes_around_the_verifier_chunk_boundary_pass() -> None:
    signer = Signer.generate()
    for n in (4095, 4096, 4097, 8193):
        lines = make_bundle(make_events(WS, n), signer, every=1024)
        result = verify_bundle(lines)
        assert result.ok and result.entries == n, (n, result.reason)
        # a checkpoint note in the middle kept by a user still matches at its size
        kept = note_of(lines[[i for i, line in enumerate(lines) if b'"checkpoint"' in line][1]])
        assert verify_bundle(lines, against=kept).against_size == 2048


# --- against a checkpoint the user kept ---------------------------------------------------------

def test_every_older_checkpoint_is_extended_by_the_bundle(bundle: list[bytes], notes: dict[int, str]) -> None:
    assert sorted(notes) == [10, 20, 30, 40, 50]
    for size, note in notes.items():
        result = verify_bundle(bundle, against=note)
        assert result.ok and result.against_size == size, result.reason


def test_a_kept_checkpoint_of_any_size_is_checked(bundle: list[bytes], signer: Signer,
                                                 events: list[events_pb2.Event]) -> None:
    log = Log(WS)
    kept = {0: signer.sign_checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT)}
    for ev in events:
        log.append(ev)
        kept[log.size] = signer.sign_checkpoint(ORIGIN, log.size, log.root())
    for size, note in kept.items():
        result = verify_bundle(bundle, against=note)
        assert result.ok and result.against_size == size, (size, result.reason)


def test_a_kept_checkpoint_the_bundle_does_not_extend_fails(bundle: list[bytes], signer: Signer,
                                                           events: list[events_pb2.Event]) -> None:
    # the log was rewritten at entry 5: a checkpoint kept at size 10 no longer matches
    altered = list(events)
    altered[4] = make_events(WS, 5)[4]
    log = Log(WS)
    for ev in altered[:10]:
        log.append(ev)
    kept = signer.sign_checkpoint(ORIGIN, 10, log.root())
    result = verify_bundle(bundle, against=kept)
    assert not result.ok and result.line == 1
    assert "your checkpoint of size 10: root does not match" in result.reason
    # a checkpoint larger than the bundle: the log would have shrunk
    bigger = signer.sign_checkpoint(ORIGIN, 51, hashlib.sha256(b"x").digest())
    result = verify_bundle(bundle, against=bigger)
    assert not result.ok and "shrunk" in result.reason
    # of another log, by an unknown key, or mangled
    assert "is of log" in verify_bundle(bundle, against=signer.sign_checkpoint(
        auditlog.origin_for(OTHER_WS), 10, log.root())).reason
    assert "does not verify" in verify_bundle(bundle, against=Signer.generate().sign_checkpoint(
        ORIGIN, 10, log.root())).reason
    assert not verify_bundle(bundle, against="not a note").ok
    # a truncated bundle with its header and final checkpoint redone is an honest older export, but it
    # does not extend a checkpoint the user kept from later
    notes: dict[int, str] = {}
    make_bundle(events, signer, notes=notes)
    older = make_bundle(events[:30], signer)
    assert verify_bundle(older).ok
    result = verify_bundle(older, against=notes[40])
    assert not result.ok and "shrunk" in result.reason


# --- the bundle mutation suite ------------------------------------------------------------------

def test_every_field_of_every_entry_mutated_is_caught_at_its_line(bundle: list[bytes]) -> None:
    checked = 0
    for index in lines_of(bundle, "entry"):
        original = obj(bundle[index])
        seq = original["seq"]
        for path in leaf_paths(original):
            variants = [with_path(original, path, mutate(get(original, path))), without_path(original, path)]
            for variant in variants:
                result = verify_bundle(replaced(bundle, index, dump(variant)))
                assert not result.ok, (path, variant)
                assert (result.line, result.seq) == (index + 1, seq), (path, result)
                assert result.reason.startswith(f"line {index + 1} (seq {seq}):"), (path, result.reason)
                checked += 1
    assert checked > 50 * 20  # every path of every entry (about 25 each) was tried


def test_entry_edits_with_a_recomputed_leaf_are_caught_by_the_next_checkpoint(bundle: list[bytes]) -> None:
    for k in (0, 5, 9, 10, 49):
        index = lines_of(bundle, "entry")[k]
        doc = obj(bundle[index])
        doc["entry"]["subject"] += "x"
        doc["leaf"] = hashlib.sha256(b"\x00" + canonical_json(doc["entry"])).hexdigest()
        result = verify_bundle(replaced(bundle, index, dump(doc)))
        next_cp = min(i for i in lines_of(bundle, "checkpoint") if i > index)
        assert not result.ok and result.line == next_cp + 1, (k, result.reason)
        assert "checkpoint root does not match the entries before it" in result.reason


def test_entry_content_edits_name_the_right_reason(bundle: list[bytes]) -> None:
    index = lines_of(bundle, "entry")[5]
    original = obj(bundle[index])
    seq = original["seq"]
    cases = {
        ("entry", "subject"): "entry does not match its leaf hash",
        ("entry", "actor", "name"): "entry does not match its leaf hash",
        ("entry", "time"): "entry does not match its leaf hash",
        ("leaf",): "entry does not match its leaf hash",
        ("seq",): f"seq {seq + 1} follows seq {seq - 1} (an entry is missing or out of order)",
        ("entry", "seq"): "entry content names another seq",
    }
    for path, reason in cases.items():
        result = verify_bundle(replaced(bundle, index, dump(with_path(original, path, mutate(get(original, path))))))
        assert reason in result.reason, (path, result.reason)
    foreign = with_path(original, ("entry", "workspace"), OTHER_WS)
    result = verify_bundle(replaced(bundle, index, dump(foreign)))
    assert result.reason == f"line {index + 1} (seq {seq}): entry does not belong to workspace '{WS}'"


def test_entry_spliced_from_another_workspace_is_caught(bundle: list[bytes], signer: Signer) -> None:
    other = make_bundle(make_events(OTHER_WS, 50), signer)
    index = lines_of(bundle, "entry")[9]
    result = verify_bundle(replaced(bundle, index, other[index]))
    assert not result.ok and result.line == index + 1
    assert "entry does not belong to workspace 'cs101'" in result.reason


def test_reformatted_entry_line_is_caught(bundle: list[bytes]) -> None:
    index = lines_of(bundle, "entry")[3]
    pretty = (json.dumps(obj(bundle[index]), sort_keys=True) + "\n").encode()  # same content, spaces
    result = verify_bundle(replaced(bundle, index, pretty))
    assert not result.ok and result.line == index + 1 and "canonical" in result.reason
    line = bundle[index].rstrip(b"\n")
    dup = line[:-1] + b',"type":"entry"}\n'  # a duplicated key
    assert not verify_bundle(replaced(bundle, index, dup)).ok


def test_deleted_entries_are_caught(bundle: list[bytes]) -> None:
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
    # renumbered to look in order, leaves recomputed: the checkpoint's root gives it away
    first, second = obj(bundle[a]), obj(bundle[b])
    first["seq"], first["entry"]["seq"], second["seq"], second["entry"]["seq"] = 6, 6, 5, 5
    for d in (first, second):
        d["leaf"] = hashlib.sha256(b"\x00" + canonical_json(d["entry"])).hexdigest()
    renumbered = replaced(replaced(bundle, a, dump(second)), b, dump(first))
    result = verify_bundle(renumbered)
    assert not result.ok and result.line == lines_of(bundle, "checkpoint")[0] + 1
    assert "root does not match" in result.reason


def test_truncated_bundles_are_caught(bundle: list[bytes]) -> None:
    for drop in range(1, 8):
        result = verify_bundle(bundle[:-drop])
        assert not result.ok
        assert "truncated?" in result.reason
        assert result.line == len(bundle) - drop + 1
    data = b"".join(bundle)
    tail_start = len(data) - sum(len(line) for line in bundle[-3:])
    for cut in range(tail_start, len(data) - 1):  # every cut inside the last three lines
        assert not verify_bundle(data[:cut].splitlines(keepends=True)).ok, cut
    for cut in (len(data) // 3, len(data) // 2 + 5):
        assert not verify_bundle(data[:cut].splitlines(keepends=True)).ok
    assert verify_bundle(data[:-1].splitlines(keepends=True)).ok  # only the final newline gone: nothing lost


def test_content_after_the_last_checkpoint_is_caught(bundle: list[bytes]) -> None:
    result = verify_bundle([*bundle, bundle[1]])
    assert not result.ok and result.line == len(bundle) + 1 and "seq 1 follows seq 50" in result.reason
    extra = make_events(WS, 51)[50]
    canonical = canonical_json(auditlog.entry_document(extra, 51))
    line = dump({"type": "entry", "seq": 51, "entry": json.loads(canonical),
                 "leaf": hashlib.sha256(b"\x00" + canonical).hexdigest()})
    result = verify_bundle([*bundle, line])
    assert not result.ok and result.line == len(bundle) + 1 and "beyond the 50 entries" in result.reason


def test_swapped_checkpoints_are_caught(bundle: list[bytes]) -> None:
    cps = lines_of(bundle, "checkpoint")
    for i, j in [(0, 1), (1, 2), (0, 4), (3, 4)]:
        swapped = list(bundle)
        swapped[cps[i]], swapped[cps[j]] = swapped[cps[j]], swapped[cps[i]]
        result = verify_bundle(swapped)
        assert not result.ok and result.line == cps[i] + 1
        assert f"checkpoint covers {(j + 1) * 10} entries but follows seq {(i + 1) * 10}" in result.reason
    # a checkpoint moved to another position
    index = cps[2]
    moved = [*bundle[:index], *bundle[index + 1:index + 3], bundle[index], *bundle[index + 3:]]
    assert not verify_bundle(moved).ok


def test_every_byte_of_every_checkpoint_note_flipped_is_caught_at_its_line(bundle: list[bytes]) -> None:
    checked = 0
    for index in lines_of(bundle, "checkpoint"):
        note = note_of(bundle[index])
        for pos in range(len(note)):
            if note[pos] == "\n":
                continue
            ch = note[pos]
            new = "A" if ch != "A" else "B"
            variant = {"type": "checkpoint", "checkpoint": note[:pos] + new + note[pos + 1:]}
            result = verify_bundle(replaced(bundle, index, dump(variant)))
            assert not result.ok and result.line == index + 1, (index, pos, result.reason)
            checked += 1
    assert checked > 5 * 150


def test_checkpoint_signature_bits_and_roots_are_checked(bundle: list[bytes], signer: Signer) -> None:
    index = lines_of(bundle, "checkpoint")[2]
    note = note_of(bundle[index])
    text, sig = note.split("\n\n")
    name, blob = sig.rstrip("\n").split(" ")[1:]
    for bit in (0, 31, 32, 77, 300, 543):
        raw = bytearray(base64.b64decode(blob))
        raw[bit // 8] ^= 1 << (bit % 8)
        bad = f"{text}\n\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
        result = verify_bundle(replaced(bundle, index, dump({"type": "checkpoint", "checkpoint": bad})))
        assert not result.ok and result.line == index + 1
        assert "does not verify" in result.reason
    # a validly signed checkpoint with the wrong root, size or origin
    cp = cp_of(bundle[index])
    for note2, why in [(signer.sign_checkpoint(ORIGIN, cp.size, hashlib.sha256(b"x").digest()), "root does not match"),
                       (signer.sign_checkpoint(ORIGIN, cp.size - 1, cp.root), "covers 29 entries but follows seq 30"),
                       (signer.sign_checkpoint(auditlog.origin_for(OTHER_WS), cp.size, cp.root), "does not verify")]:
        result = verify_bundle(replaced(bundle, index, dump({"type": "checkpoint", "checkpoint": note2})))
        assert not result.ok and result.line == index + 1 and why in result.reason, result.reason


def test_forged_and_untrusted_keys_are_caught(bundle: list[bytes], signer: Signer,
                                            events: list[events_pb2.Event]) -> None:
    index = lines_of(bundle, "checkpoint")[0]
    cp = cp_of(bundle[index])
    stranger = Signer.generate()
    result = verify_bundle(replaced(bundle, index, dump(
        {"type": "checkpoint", "checkpoint": stranger.sign_checkpoint(ORIGIN, cp.size, cp.root)})))
    assert not result.ok and result.line == index + 1 and "no verifiable signatures" in result.reason
    # a forger who re-signs everything with their own key passes offline only without trusted keys
    forged = make_bundle(events, stranger)
    assert verify_bundle(forged).ok
    result = verify_bundle(forged, trusted_keys={signer.key_id})
    assert not result.ok and "not a trusted key" in result.reason
    # a header key whose hash does not match it, or named for another log
    header = obj(bundle[0])
    vkey = signer.vkey(ORIGIN)
    name, hash_hex, key = vkey.split("+", 2)
    for bad in [f"{name}+{'0' * 8}+{key}", stranger.vkey(ORIGIN), signer.vkey(auditlog.origin_for(OTHER_WS))]:
        result = verify_bundle(replaced(bundle, 0, dump({**header, "verifier_keys": [bad]})))
        assert not result.ok, bad


def test_every_header_field_mutated_is_caught(bundle: list[bytes]) -> None:
    header = obj(bundle[0])
    for path in leaf_paths(header):
        if path == ("exported_at",):  # informational, not signed: the checkpoints carry the log's state
            continue
        result = verify_bundle(replaced(bundle, 0, dump(with_path(header, path, mutate(get(header, path))))))
        assert not result.ok, path
    for key in header:
        assert not verify_bundle(replaced(bundle, 0, dump(without_path(header, (key,))))).ok
    for size in (49, 51, 0):
        assert not verify_bundle(replaced(bundle, 0, dump({**header, "size": size}))).ok
    assert not verify_bundle(bundle[1:]).ok
    assert verify_bundle([]).reason == "bundle is empty"
    old_format = {**header, "format": "reprolab-audit/1"}
    assert "unsupported format" in verify_bundle(replaced(bundle, 0, dump(old_format))).reason


def test_elided_lines_cannot_be_altered(events: list[events_pb2.Event], signer: Signer) -> None:
    own = make_bundle(events, signer, viewer=ALICE)
    checkpoints = lines_of(own, "checkpoint")
    for index in lines_of(own, "elided"):
        doc = obj(own[index])
        next_cp = min(i for i in checkpoints if i > index)
        result = verify_bundle(replaced(own, index, dump({**doc, "leaf": mutate(doc["leaf"])})))
        assert not result.ok
        assert result.line == next_cp + 1, (index, result)
        assert "elided" in result.reason
        for path in (("seq",), ("type",)):
            result = verify_bundle(replaced(own, index, dump(with_path(doc, path, mutate(get(doc, path))))))
            assert not result.ok and result.line == index + 1
    header = obj(own[0])
    result = verify_bundle(replaced(own, 0, dump({**header, "scope": "workspace"})))
    assert not result.ok and "scope" in result.reason
    entry_index = lines_of(own, "entry")[2]
    entry = obj(own[entry_index])
    fake = {"type": "elided", "seq": entry["seq"], "leaf": "00" * 32}
    assert not verify_bundle(replaced(own, entry_index, dump(fake))).ok
    # hiding a visible entry behind its true leaf changes nothing the reader could be misled by
    assert verify_bundle(replaced(own, entry_index, dump({**fake, "leaf": entry["leaf"]}))).ok


# --- the verifier's fast path (whole runs of entry lines at once) agrees with the line-by-line check --

def _run_of(lines: list[bytes]) -> tuple[list[int], list[bytes]]:
    """Indexes and bytes (with their newline, as the verifier reads them) of a bundle's entry lines."""
    idx = lines_of(lines, "entry")
    return idx, [lines[i] for i in idx]


def test_fast_path_gives_the_stated_leaves_across_seq_digit_counts_and_odd_workspace_names(
        signer: Signer) -> None:
    # the expected text is made with %-formatting: a workspace holding '%' or non-ASCII must not upset it
    for ws in (WS, "a%d%s%%b", "kurs-ü✓"):
        lines = make_bundle(make_events(ws, 1005), signer, every=100)
        result = verify_bundle(lines)
        assert result.ok and result.entries == 1005, (ws, result.reason)
        _, run = _run_of(lines)
        ws_tail = b',"workspace":' + json.dumps(ws, ensure_ascii=False).encode() + b"}"
        for first, count in ((1, 9), (1, 10), (5, 200), (95, 10), (990, 16), (1, 1005)):
            got = auditlog._fast_entries(run[first - 1:first - 1 + count], first, ws_tail)
            assert got == [bytes.fromhex(obj(line)["leaf"]) for line in run[first - 1:first - 1 + count]], (ws, first)
        # the same lines named as other seqs, or of another workspace, are refused
        assert auditlog._fast_entries(run[4:20], 4, ws_tail) is None
        assert auditlog._fast_entries(run[:20], 1, b',"workspace":"other"}') is None


def relinked(line: bytes, inner: bytes) -> bytes:
    """An entry line with its entry bytes replaced and its leaf recomputed to match them."""
    doc = obj(line)
    return (b'{"entry":' + inner + b',"leaf":"' + hashlib.sha256(b"\x00" + inner).hexdigest().encode()
            + b'","seq":' + str(doc["seq"]).encode() + b',"type":"entry"}')


def test_fast_path_refuses_every_line_the_line_by_line_check_refuses(bundle: list[bytes]) -> None:
    idx, run = _run_of(bundle)
    ws_tail = b',"workspace":"' + WS.encode() + b'"}'
    assert auditlog._fast_entries(run, 1, ws_tail) is not None
    k = 12  # seq 13
    line = run[k].rstrip(b"\n")
    doc = obj(line)
    leaf = doc["leaf"]
    inner = canonical_json(doc["entry"])
    variants = {
        "uppercase leaf": line.replace(leaf.encode(), leaf.upper().encode()),
        "short line": line[-60:],
        "tail only": line[line.index(b',"workspace":'):],
        # the leaf recomputed: only the check of the entry's own seq can catch these
        "no seq in the entry": relinked(line, inner.replace(b',"seq":13,', b',"sex":13,')),
        "another seq in the entry": relinked(line, inner.replace(b',"seq":13,', b',"seq":14,')),
        "a later seq in the entry": relinked(line, inner.replace(b'"time":', b'"seq":14,"time":')),
        "space before the leaf": line.replace(b',"leaf":', b', "leaf":'),
        "one byte more at the end": line + b" ",
        "one byte less at the end": line[:-1],
    }
    # a line read without its newline (the verifier adds one to a last line) is left to the slow walk
    assert auditlog._fast_entries([*run[:k], line, *run[k + 1:]], 1, ws_tail) is None
    for what, bad in variants.items():
        assert auditlog._fast_entries([*run[:k], bad + b"\n", *run[k + 1:]], 1, ws_tail) is None, what
        result = verify_bundle(replaced(bundle, idx[k], bad + b"\n"))
        assert not result.ok and result.line == idx[k] + 1, (what, result)
    # a "seq" inside the entry before its own is no business of the check
    details = {**doc["entry"]["details"], "deep": {"a": 1, "seq": 99}}
    doc_ok = {**doc["entry"], "details": details}
    ok_line = dump({**doc, "entry": doc_ok,
                    "leaf": hashlib.sha256(b"\x00" + canonical_json(doc_ok)).hexdigest()})
    assert b',"seq":99}' in ok_line
    got = auditlog._fast_entries([*run[:k], ok_line, *run[k + 1:]], 1, ws_tail)
    assert got is not None and got[k].hex() == obj(ok_line)["leaf"]
