"""Canonical JSON: the one byte form used for digests, the audit log and the agent's hash chain."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any, *, allow_floats: bool = False) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8. Floats are refused: they have no single
    textual form across languages, and nothing we hash needs them.

    ``allow_floats=True`` is the in-image agent's chain form (``reprolab-agent/1``): the agent is
    standard-library Python and hashes ``json.dumps`` output as is, floats and NaN included, so a
    chain it wrote verifies here only if the platform encodes the same way."""
    if allow_floats:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    _reject_floats(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest(obj: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``obj``."""
    return "sha256:" + hashlib.sha256(canonical_json(obj)).hexdigest()


def _reject_floats(obj: Any) -> None:
    if isinstance(obj, float):
        raise TypeError("floats are not allowed in canonical JSON; use strings or integers")
    if isinstance(obj, dict):
        for v in obj.values():
            _reject_floats(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _reject_floats(v)
