"""Names of platform objects made from free text (shared by the registry, which checks names, and the
gateway, which proposes them)."""

from __future__ import annotations

import re


def sanitize_name(raw: str) -> str:
    """Best-effort conversion of free text (e.g. ``iris-Ada.Lovelace``) into a valid name."""
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")
    return name[:63].rstrip("-") or "env"
