"""Which names of a tar or zip member are safe to unpack: relative POSIX paths that stay inside the folder
they are unpacked into. The gateway refuses a student's code archive over them (422 naming the member);
the runner skips such members when it unpacks an assignment's starter code into a session's home."""

from __future__ import annotations

from pathlib import PurePosixPath


def why_unsafe(name: str) -> str | None:
    """What is wrong with ``name`` as an archive member's path, in words, or None when it is safe."""
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
        return f"{name!r} is an absolute or non-POSIX path; use paths relative to the project root"
    if any(part == ".." for part in PurePosixPath(name).parts):
        return f"{name!r} climbs out of the project with '..'"
    return None


def relative_path(name: str) -> str | None:
    """The member's normalised relative path ("./a//b" -> "a/b"), or None when it is unsafe or names only
    the folder itself ("." or "./")."""
    name = name.strip()
    if why_unsafe(name) is not None:
        return None
    return "/".join(p for p in PurePosixPath(name).parts if p not in ("", ".")) or None
