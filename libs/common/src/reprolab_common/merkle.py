"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.

Why a Merkle tree and not a hash chain: with a chain, checking that one entry is in the log, or that
today's log extends the one a student saved last month, means rehashing everything in between. A
Merkle tree answers both with O(log n) hashes (inclusion and consistency proofs), so a checkpoint a
user kept can be checked against the current log without trusting the server.

Hashing (RFC 6962 section 2.1, SHA-256)::

    leaf hash  = SHA-256(0x00 || entry bytes)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])),  k = largest power of two < n

Proof generation needs the hash of *perfect* subtrees (2^level leaves starting at index * 2^level)
from a ``node(level, index)`` source; the audit store keeps those, so a proof costs O(log^2 n)
lookups without reading the log. Verification is a line-by-line port of transparency-dev/merkle's
``proof/verify.go`` (the algorithm Go's sumdb, Sigstore and CT use), so a proof checks the same way
here as in those tools.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256

NodeSource = Callable[[int, int], bytes]
"""``node(level, index)``: hash of the perfect subtree of 2**level leaves starting at leaf index * 2**level."""


class ProofError(ValueError):
    """A proof does not verify (wrong size, wrong hashes, wrong root)."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """Largest power of two k with k < n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- building -----------------------------------------------------------------------------------

class CompactRange:
    """The right edge of a tree: the roots of its perfect subtrees, largest (leftmost) first.

    ``size`` leaves are summarised by popcount(size) hashes; appending a leaf merges equal-sized
    subtrees like a binary counter (amortised one node hash per leaf). ``on_node(level, index, hash)``
    sees every perfect subtree root the moment it is completed (level 0 are the leaves), which is
    how the store records the nodes proofs need.
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ValueError(f"a compact range of size {size} has {bin(size).count('1')} hashes, got {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes, on_node: Callable[[int, int, bytes], None] | None = None) -> None:
        index = self.size
        h = leaf
        level = 0
        if on_node is not None:
            on_node(0, index, h)
        while index & 1:
            h = _sha256(b"\x01" + self.hashes.pop() + h).digest()
            index >>= 1
            level += 1
            if on_node is not None:
                on_node(level, index, h)
        self.hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        return fold_right(self.hashes) if self.hashes else EMPTY_ROOT

    def copy(self) -> CompactRange:
        return CompactRange(self.size, list(self.hashes))


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect subtree roots (left to right, decreasing size) into the tree's root."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = _sha256(b"\x01" + left + h).digest()
    return h


def root_of(leaves: Iterable[bytes]) -> bytes:
    """Root hash of a tree with these leaf hashes (streaming; O(log n) memory)."""
    cr = CompactRange()
    for leaf in leaves:
        cr.append(leaf)
    return cr.root()


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH straight from the RFC's recursive definition: slow, for tests only."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _largest_power_of_two_below(n)
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


# --- proofs from a node source ------------------------------------------------------------------

def range_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees, left to right, whose fold is MTH(D[start:end]) in an RFC 6962 tree.

    ``start`` must be a multiple of the largest power of two not above ``end - start`` (true for
    every range the proof algorithms ask for)."""
    out = []
    pos, n = start, end - start
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            if pos % (1 << level):
                raise ValueError(f"range [{start}, {end}) is not aligned to the tree")
            out.append((level, pos >> level))
            pos += 1 << level
    return out


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 2.1.3.1 PATH(m, D[n]) as the ranges whose MTHs form the proof, bottom-up."""
    path = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
    path.reverse()
    return path


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """RFC 9162 2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true) as ranges, bottom-up."""
    if old == 0 or old == new:
        return []
    path = []
    lo, hi, m, complete = 0, new, old, True
    while True:
        if m == hi - lo:
            if not complete:
                path.append((lo, hi))
            break
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    path.reverse()
    return path


def inclusion_nodes(index: int, size: int) -> set[tuple[int, int]]:
    """Every perfect-subtree node ``inclusion_proof`` will ask for (fetch them in one go)."""
    return {n for r in _inclusion_ranges(index, size) for n in range_nodes(*r)}


def consistency_nodes(old: int, new: int) -> set[tuple[int, int]]:
    return {n for r in _consistency_ranges(old, new) for n in range_nodes(*r)}


def _range_hash(node: NodeSource, start: int, end: int) -> bytes:
    return fold_right([node(level, index) for level, index in range_nodes(start, end)])


def inclusion_proof(index: int, size: int, node: NodeSource) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (0 <= index < size)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    return [_range_hash(node, s, e) for s, e in _inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, node: NodeSource) -> list[bytes]:
    """The proof that the tree of ``old`` leaves is a prefix of the tree of ``new`` (0 <= old <= new)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    return [_range_hash(node, s, e) for s, e in _consistency_ranges(old, new)]


def root_from_nodes(size: int, node: NodeSource) -> bytes:
    return _range_hash(node, 0, size) if size else EMPTY_ROOT


class MemoryTree:
    """All perfect-subtree nodes of a tree held in memory (tests, bundle writers)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        self.range = CompactRange()
        for leaf in leaves:
            self.append(leaf)

    def _record(self, level: int, index: int, h: bytes) -> None:
        if level == len(self.levels):
            self.levels.append([])
        assert len(self.levels[level]) == index
        self.levels[level].append(h)

    def append(self, leaf: bytes) -> None:
        self.range.append(leaf, self._record)

    @property
    def size(self) -> int:
        return self.range.size

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return self.range.root() if size is None else root_from_nodes(size, self.node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.node)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        return consistency_proof(old, self.size if new is None else new, self.node)


# --- verification (port of transparency-dev/merkle proof/verify.go) -----------------------------

def _check_hash(name: str, h: bytes) -> None:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        raise ProofError(f"{name} is not a {HASH_SIZE}-byte hash")


def _decomp_incl_proof(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ProofError(f"index {index} is beyond size {size}")
    _check_hash("leaf hash", leaf)
    for i, h in enumerate(proof):
        _check_hash(f"proof[{i}]", h)
    inner, border = _decomp_incl_proof(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {inner + border}")
    res = _chain_inner(leaf, proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ``ProofError`` unless ``proof`` shows leaf ``index`` with hash ``leaf`` is in the tree
    of ``size`` leaves whose root is ``root``."""
    _check_hash("root", root)
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError("calculated root does not match the expected root")


def root_from_consistency_proof(size1: int, size2: int, proof: Sequence[bytes], root1: bytes) -> bytes:
    _check_hash("root1", root1)
    for i, h in enumerate(proof):
        _check_hash(f"proof[{i}]", h)
    if size1 < 0 or size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 == size2:
        if proof:
            raise ProofError("size1 == size2, but the proof is not empty")
        return root1
    if size1 == 0:
        # Go's verify.go refuses this case; every tree extends the empty one, so we return what the
        # caller must then compare as-is: there is nothing to derive.
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if not proof:
        raise ProofError("empty proof")
    inner, border = _decomp_incl_proof(size1 - 1, size2)
    shift = ((size1 & -size1).bit_length() - 1)
    inner -= shift
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {start + inner + border}")
    proof = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_inner_right(seed, proof[:inner], mask)
    hash1 = _chain_border_right(hash1, proof[inner:])
    if hash1 != root1:
        raise ProofError("the proof does not lead to the old root")
    hash2 = _chain_inner(seed, proof[:inner], mask)
    return _chain_border_right(hash2, proof[inner:])


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Raise ``ProofError`` unless ``proof`` shows the tree (size1, root1) is a prefix of (size2, root2).

    From the empty tree (size1 == 0) only an empty proof and root1 == MTH({}) are accepted."""
    _check_hash("root2", root2)
    if size1 == 0 and size2 >= 0:
        _check_hash("root1", root1)
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        if root1 != EMPTY_ROOT:
            raise ProofError("the root of an empty tree is SHA-256 of nothing")
        return
    if root_from_consistency_proof(size1, size2, proof, root1) != root2:
        raise ProofError("calculated root does not match the new root")


__all__ = [
    "HASH_SIZE", "EMPTY_ROOT", "ProofError", "leaf_hash", "node_hash", "CompactRange", "fold_right", "root_of",
    "reference_root", "range_nodes", "inclusion_nodes", "consistency_nodes", "inclusion_proof",
    "consistency_proof", "root_from_nodes", "MemoryTree", "root_from_inclusion_proof", "verify_inclusion",
    "root_from_consistency_proof", "verify_consistency",
]
