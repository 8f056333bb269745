"""Merkle proofs and signed notes: known vectors, and the mutation suite in the manner of
transparency-dev/merkle's verifier tests (proof/verify_test.go): every honest proof passes, every probe
(leaf index +-1, tree size doubled or halved, wrong root, one bit flipped in each proof hash, a hash
removed or added, truncated proofs, swapped roots) fails."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest
from reprolab_common import merkle, signednote
from reprolab_common.merkle import MemoryTree, ProofError

# transparency-dev/merkle testonly/constants.go (RFC 6962 hashing of these leaf inputs)
LEAF_INPUTS = [bytes.fromhex(x) for x in
               ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# transparency-dev/merkle proof/verify_test.go: (leaf index 1-based, size, proof)
INCLUSION_VECTORS = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY_VECTORS = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

# golang.org/x/mod/sumdb/note note_test.go
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
NOTE_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = ("\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6"
             "RyyBwJnAM=\n")
ENOCH_SIG = ("\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1R"
             "vMc+QQ=\n")


def leaves_of(n: int, seed: int = 0) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {seed}/{i}".encode()) for i in range(n)]


def trees() -> list[MemoryTree]:
    """Every size from 1 to 70 and a few large, irregular ones."""
    return [MemoryTree(leaves_of(n, n)) for n in [*range(1, 71), 127, 128, 129, 1000, 4097]]


TREES = trees()


# --- known vectors ------------------------------------------------------------------------------

def test_roots_match_rfc6962_vectors() -> None:
    leaves = [merkle.leaf_hash(x) for x in LEAF_INPUTS]
    assert merkle.root_of([]) == bytes.fromhex(ROOTS[0]) == merkle.EMPTY_ROOT
    for n in range(1, 9):
        assert MemoryTree(leaves[:n]).root().hex() == ROOTS[n]
        assert merkle.reference_root(leaves[:n]).hex() == ROOTS[n]
        assert merkle.root_of(leaves[:n]).hex() == ROOTS[n]


def test_proofs_match_the_transparency_dev_vectors() -> None:
    tree = MemoryTree(merkle.leaf_hash(x) for x in LEAF_INPUTS)
    for leaf, size, proof in INCLUSION_VECTORS:
        assert [h.hex() for h in tree.inclusion_proof(leaf - 1, size)] == proof
        merkle.verify_inclusion(leaf - 1, size, tree.node(0, leaf - 1), [bytes.fromhex(h) for h in proof],
                                bytes.fromhex(ROOTS[size]))
    for old, new, proof in CONSISTENCY_VECTORS:
        assert [h.hex() for h in tree.consistency_proof(old, new)] == proof
        merkle.verify_consistency(old, new, [bytes.fromhex(h) for h in proof], bytes.fromhex(ROOTS[old]),
                                  bytes.fromhex(ROOTS[new]))


def test_every_size_and_prefix_root_agrees_with_the_rfc_definition() -> None:
    for tree in TREES[:70]:
        leaves = tree.levels[0]
        for size in range(0, tree.size + 1):
            assert tree.root(size) == merkle.reference_root(leaves[:size])


# --- the inclusion mutation suite ---------------------------------------------------------------

def flipped(h: bytes, bit: int = 3) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def inclusion_probes(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes) -> list[tuple]:
    probes = [
        ("leaf index - 1", index - 1, size, leaf, proof, root),
        ("leaf index + 1", index + 1, size, leaf, proof, root),
        ("leaf index ^ 2", index ^ 2, size, leaf, proof, root),
        ("tree size * 2", index, size * 2, leaf, proof, root),
        ("tree size / 2", index, size // 2, leaf, proof, root),
        ("wrong leaf", index, size, merkle.leaf_hash(b"WrongLeaf"), proof, root),
        ("short leaf", index, size, b"WrongLeaf", proof, root),
        ("empty root", index, size, leaf, proof, merkle.EMPTY_ROOT),
        ("random root", index, size, leaf, proof, SOME_HASH),
        ("trailing garbage", index, size, leaf, [*proof, b""], root),
        ("trailing root", index, size, leaf, [*proof, root], root),
        ("preceding garbage", index, size, leaf, [b"", *proof], root),
        ("preceding root", index, size, leaf, [root, *proof], root),
    ]
    for i in range(len(proof)):
        for bit in (0, 3, 7):
            bad = list(proof)
            bad[i] = flipped(bad[i], bit)
            probes.append((f"proof[{i}] bit {bit} flipped", index, size, leaf, bad, root))
    if proof:
        probes.append(("removed last component", index, size, leaf, proof[:-1], root))
        probes.append(("removed first component", index, size, leaf, proof[1:], root))
    if len(proof) > 1:
        probes.append(("inserted component", index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root))
        probes.append(("swapped components", index, size, leaf, [proof[1], proof[0], *proof[2:]], root))
    return probes


def test_every_honest_inclusion_proof_passes_and_every_probe_fails() -> None:
    checked = probed = 0
    for tree in TREES:
        n = tree.size
        indices = range(n) if n <= 70 else sorted({0, 1, n // 3, n // 2, n - 2, n - 1})
        root = tree.root()
        for index in indices:
            leaf = tree.node(0, index)
            proof = tree.inclusion_proof(index)
            merkle.verify_inclusion(index, n, leaf, proof, root)
            assert merkle.root_from_inclusion_proof(index, n, leaf, proof) == root
            checked += 1
            for desc, i, size, lf, pr, rt in inclusion_probes(index, n, proof, root, leaf):
                if (i, size, lf, pr, rt) == (index, n, leaf, proof, root):
                    continue  # e.g. index ^ 2 == index never happens, but size // 2 == size for n = 0
                with pytest.raises(ProofError):
                    merkle.verify_inclusion(i, size, lf, pr, rt)
                    pytest.fail(f"probe {desc!r} verified for leaf {index} of {n}")
                probed += 1
    assert checked > 2500 and probed > 50_000


def test_inclusion_proofs_against_every_earlier_size() -> None:
    tree = TREES[69]  # 70 leaves
    for size in range(1, tree.size + 1):
        root = tree.root(size)
        for index in range(size):
            merkle.verify_inclusion(index, size, tree.node(0, index), tree.inclusion_proof(index, size), root)
            if size < tree.size:  # a proof for one size never verifies against the next size's root
                with pytest.raises(ProofError):
                    merkle.verify_inclusion(index, size, tree.node(0, index), tree.inclusion_proof(index, size),
                                            tree.root(size + 1))


def test_degenerate_inclusion_inputs_fail() -> None:
    h = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(0, 1, h, [], h)  # a one-leaf tree: the root is the leaf
    for index, size in [(0, 0), (1, 0), (2, 1), (-1, 1)]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, size, SOME_HASH, [], merkle.EMPTY_ROOT)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 1, h, [], b"")
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 1, b"", [], h)


# --- the consistency mutation suite -------------------------------------------------------------

def consistency_probes(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> list[tuple]:
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 / 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, SOME_HASH, root2, proof),
        ("wrong root2", size1, size2, root1, SOME_HASH, proof),
        ("short root1", size1, size2, b"WrongRoot", root2, proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, [*proof, b""]),
        ("trailing root1", size1, size2, root1, root2, [*proof, root1]),
        ("trailing root2", size1, size2, root1, root2, [*proof, root2]),
        ("preceding garbage", size1, size2, root1, root2, [b"", *proof]),
        ("preceding root1", size1, size2, root1, root2, [root1, *proof]),
        ("preceding root2", size1, size2, root1, root2, [root2, *proof]),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]),
        ("truncated proof", size1, size2, root1, root2, proof[:-1]),
        ("proof without its head", size1, size2, root1, root2, proof[1:]),
        ("swapped checkpoints", size2, size1, root2, root1, proof),
    ]
    for i in range(len(proof)):
        for bit in (0, 4, 7):
            bad = list(proof)
            bad[i] = flipped(bad[i], bit)
            probes.append((f"proof[{i}] bit {bit} flipped", size1, size2, root1, root2, bad))
    if len(proof) > 1:
        probes.append(("inserted component", size1, size2, root1, root2, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


def test_every_honest_consistency_proof_passes_and_every_probe_fails() -> None:
    checked = probed = 0
    for tree in TREES:
        n = tree.size
        pairs = ([(a, b) for b in range(1, n + 1) for a in range(1, b + 1)] if n <= 40 else
                 [(a, n) for a in sorted({1, 2, 3, n // 2, n // 2 + 1, n - 1, n})])
        for size1, size2 in pairs:
            root1, root2 = tree.root(size1), tree.root(size2)
            proof = tree.consistency_proof(size1, size2)
            merkle.verify_consistency(size1, size2, proof, root1, root2)
            checked += 1
            if size1 == size2:
                assert proof == []
                with pytest.raises(ProofError):
                    merkle.verify_consistency(size1, size2, [SOME_HASH], root1, root2)
                continue
            for desc, s1, s2, r1, r2, pr in consistency_probes(size1, size2, root1, root2, proof):
                if (s1, s2, r1, r2, pr) == (size1, size2, root1, root2, proof):
                    continue
                if s1 == s2 and r1 == r2 and not pr:
                    continue  # e.g. size1 + 1 == size2 with an empty proof: trivially consistent, not a probe
                with pytest.raises(ProofError):
                    merkle.verify_consistency(s1, s2, pr, r1, r2)
                    pytest.fail(f"probe {desc!r} verified for {size1} -> {size2}")
                probed += 1
    assert checked > 9000 and probed > 100_000


def test_consistency_from_the_empty_tree() -> None:
    root = MemoryTree(leaves_of(5)).root()
    merkle.verify_consistency(0, 5, [], merkle.EMPTY_ROOT, root)
    merkle.verify_consistency(0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT)
    with pytest.raises(ProofError):
        merkle.verify_consistency(0, 5, [SOME_HASH], merkle.EMPTY_ROOT, root)
    with pytest.raises(ProofError):
        merkle.verify_consistency(0, 5, [], SOME_HASH, root)
    with pytest.raises(ProofError):
        merkle.verify_consistency(2, 1, [], SOME_HASH, root)


def test_a_log_that_rewrote_history_has_no_consistency_proof() -> None:
    honest = MemoryTree(leaves_of(40))
    rewritten = MemoryTree([*leaves_of(40)[:17], merkle.leaf_hash(b"rewritten"), *leaves_of(40)[18:]])
    for old in range(18, 40):  # any checkpoint that covered entry 17
        proof = rewritten.consistency_proof(old, 40)
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, 40, proof, honest.root(old), rewritten.root(40))
    for old in range(1, 18):  # before the rewrite the prefix is the same: consistent
        merkle.verify_consistency(old, 40, rewritten.consistency_proof(old, 40), honest.root(old), rewritten.root())


def test_random_mutations_of_random_proofs_never_verify() -> None:
    rng = random.Random(6962)
    tree = TREES[-1]  # 4097 leaves
    for _ in range(300):
        size2 = rng.randint(2, tree.size)
        size1 = rng.randint(1, size2 - 1)
        proof = tree.consistency_proof(size1, size2)
        i = rng.randrange(len(proof))
        byte = rng.randrange(32)
        bad = list(proof)
        bad[i] = bad[i][:byte] + bytes([bad[i][byte] ^ (1 << rng.randrange(8))]) + bad[i][byte + 1:]
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size2, bad, tree.root(size1), tree.root(size2))
        index = rng.randrange(size2)
        incl = tree.inclusion_proof(index, size2)
        if incl:
            j = rng.randrange(len(incl))
            incl[j] = hashlib.sha256(incl[j]).digest()
            with pytest.raises(ProofError):
                merkle.verify_inclusion(index, size2, tree.node(0, index), incl, tree.root(size2))


# --- signed notes -------------------------------------------------------------------------------

def test_signed_note_matches_the_go_sumdb_vector() -> None:
    signer = signednote.Signer.parse(PETER_SKEY)
    assert signer.vkey == PETER_VKEY
    assert signednote.sign(NOTE_TEXT, signer) == NOTE_TEXT + "\n" + PETER_SIG
    peter = signednote.Verifier.parse(PETER_VKEY)
    enoch = signednote.Verifier.parse(ENOCH_VKEY)
    note = signednote.open_note(NOTE_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert note.text == NOTE_TEXT
    assert [(s.name, s.key_hash) for s in note.sigs] == [("PeterNeumann", 0xc74f20a3)]
    assert [(s.name, s.key_hash) for s in note.unverified_sigs] == [("EnochRoot", 0xaf0cfe78)]
    both = signednote.open_note(NOTE_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert len(both.sigs) == 2 and not both.unverified_sigs


def test_malformed_and_forged_notes_do_not_open() -> None:
    peter = signednote.Verifier.parse(PETER_VKEY)
    bad_sig = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    cases = {
        "no signature block": NOTE_TEXT,
        "blank line only": NOTE_TEXT + "\n",
        "signature without newline": NOTE_TEXT + "\n" + PETER_SIG[:-1],
        "control character": "\x01" + NOTE_TEXT + "\n" + PETER_SIG,
        "name with a space": NOTE_TEXT + "\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFY"
                                         "C2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        "unexpected line": NOTE_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        "too many signatures": NOTE_TEXT + "\n" + PETER_SIG * 101,
        "invalid signature": NOTE_TEXT + "\n" + bad_sig,
        "only unknown keys": NOTE_TEXT + "\n" + ENOCH_SIG,
        "edited text": NOTE_TEXT.replace("answer", "question") + "\n" + PETER_SIG,
    }
    for desc, msg in cases.items():
        with pytest.raises(signednote.NoteError):
            signednote.open_note(msg, [peter])
            pytest.fail(f"{desc} opened")
    with pytest.raises(signednote.NoteError):
        signednote.open_note(b"\xff" + (NOTE_TEXT + "\n" + PETER_SIG).encode(), [peter])


def test_verifier_key_manglings_are_refused() -> None:
    signednote.Verifier.parse(PETER_VKEY)
    b = bytearray(PETER_VKEY.encode())
    for i in range(len(b)):
        b[i] += 1
        with pytest.raises((signednote.NoteError, UnicodeDecodeError)):
            signednote.Verifier.parse(b.decode())
        b[i] -= 1
    for cut in range(1, len(PETER_VKEY)):
        with pytest.raises(signednote.NoteError):
            signednote.Verifier.parse(PETER_VKEY[:cut])


def test_checkpoint_text_is_the_c2sp_format_and_round_trips() -> None:
    root = bytes(range(32))
    cp = signednote.Checkpoint("example.com/behind-the-sofa", 20852163, root)
    assert cp.text() == f"example.com/behind-the-sofa\n20852163\n{base64.b64encode(root).decode()}\n"
    assert signednote.parse_checkpoint(cp.text()) == cp
    for bad in ["example.com\n012\n" + base64.b64encode(root).decode() + "\n",   # leading zero
                "example.com\n12\n" + base64.b64encode(root[:31]).decode() + "\n",  # short root
                "example.com\n12\n",                                                # no root
                "example.com\n-1\n" + base64.b64encode(root).decode() + "\n",
                "example.com\n12\n" + base64.b64encode(root).decode()]:             # no final newline
        with pytest.raises(signednote.NoteError):
            signednote.parse_checkpoint(bad)


def test_non_canonical_base64_is_refused() -> None:
    peter = signednote.Verifier.parse(PETER_VKEY)
    blob = PETER_SIG.split(" ")[2].rstrip("\n")
    assert blob.endswith("M=")  # 68 bytes: the last character before '=' carries 2 unused bits
    sloppy = blob[:-2] + "N="    # decodes to the same bytes
    assert base64.b64decode(sloppy) == base64.b64decode(blob)
    with pytest.raises(signednote.NoteError):
        signednote.open_note(NOTE_TEXT + "\n" + PETER_SIG.replace(blob, sloppy), [peter])
