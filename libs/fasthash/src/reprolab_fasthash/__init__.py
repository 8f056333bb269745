"""RFC 6962 leaf and node hashes of many inputs per call, in C (OpenSSL's SHA-256).

Python's ``hashlib`` spends most of a 500-byte hash in per-call work (objects, EVP contexts, a
context copy in ``digest()``), and a Merkle log verifier makes two hashes per entry. This module
does a whole list in one call. It is optional: ``leaf_hashes`` and ``node_level`` are ``None``
when the extension was not built (no compiler or OpenSSL headers on the installing machine), and
callers fall back to ``hashlib`` with identical results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

leaf_hashes: Callable[[Sequence[bytes]], list[bytes]] | None
node_level: Callable[[Sequence[bytes]], list[bytes]] | None

try:
    from ._merkle import leaf_hashes, node_level
except ImportError:  # built without the extension
    leaf_hashes = node_level = None

AVAILABLE = leaf_hashes is not None

__all__ = ["AVAILABLE", "leaf_hashes", "node_level"]
