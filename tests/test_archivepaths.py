"""Archive member paths: the one rule the gateway (refuse a code archive) and the runner (skip a starter
file) share."""

from __future__ import annotations

import pytest
from reprolab_common.archivepaths import relative_path, why_unsafe


@pytest.mark.parametrize(("name", "path"), [
    ("a.py", "a.py"), ("./src//b.py", "src/b.py"), (" nb/x.ipynb ", "nb/x.ipynb"), ("a/./b", "a/b"),
    (".", None), ("./", None), ("", None), ("/etc/passwd", None), ("../up.py", None), ("a/../../b", None),
    ("C:/x.py", None), ("a\\b.py", None),
])
def test_relative_path_normalises_safe_members_and_drops_the_rest(name: str, path: str | None) -> None:
    assert relative_path(name) == path


def test_why_unsafe_says_what_to_fix() -> None:
    assert why_unsafe("src/a.py") is None and why_unsafe("./") is None
    assert "absolute or non-POSIX" in why_unsafe("/abs") and "relative to the project root" in why_unsafe("C:\\x")
    assert "climbs out of the project with '..'" in why_unsafe("a/../../etc")
