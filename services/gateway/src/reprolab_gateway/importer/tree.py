"""A repository as data: its files (path → bytes) and repo2docker's ``binder/`` folder rule.

Detection never touches the disk: the gateway reads an upload or a directory into a ``RepoTree``
once (``archive.py``), so detectors are pure functions of the tree and unit tests build trees in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class ImportRefused(Exception):
    """The repository asks for something Reprolab cannot honour; ``problems`` are (file, reason)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{f}: {r}" for f, r in problems))


@dataclass(frozen=True)
class RepoTree:
    """The files of a repository, by POSIX path relative to its root; ``executable`` names files
    with an executable bit (a ``postBuild`` without one still runs: repo2docker chmods it)."""

    files: Mapping[str, bytes]
    executable: frozenset[str] = field(default_factory=frozenset)

    def is_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(name.startswith(prefix) for name in self.files)

    @property
    def binder_dir(self) -> str:
        """``.binder`` or ``binder`` when the repository has one (both is an error, as in repo2docker);
        every configuration file is then read from that folder only, and the root's are ignored."""
        has_binder, has_dot = self.is_dir("binder"), self.is_dir(".binder")
        if has_binder and has_dot:
            raise ImportRefused([(".binder, binder", "the repository has both a 'binder' and a '.binder' folder; "
                                  "repo2docker treats them as exclusive: keep one")])
        return ".binder" if has_dot else "binder" if has_binder else ""

    def binder_path(self, name: str) -> str:
        return f"{self.binder_dir}/{name}" if self.binder_dir else name

    def has(self, name: str) -> bool:
        """Whether configuration file ``name`` exists where repo2docker would look for it."""
        return self.binder_path(name) in self.files

    def has_root(self, name: str) -> bool:
        return name in self.files

    def text(self, path: str) -> str:
        """A file's text (UTF-8, or Latin-1 as repo2docker's ``open_guess_encoding`` falls back to)."""
        data = self.files[path]
        for codec in ("utf-8-sig", "latin-1"):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                continue
        raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def tree_of(files: Mapping[str, bytes | str], executable: set[str] | frozenset[str] = frozenset()) -> RepoTree:
    """A tree from text or bytes (for tests and small callers)."""
    return RepoTree({k: v.encode() if isinstance(v, str) else v for k, v in files.items()}, frozenset(executable))
