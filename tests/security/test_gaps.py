"""The "other gaps" of issue 11, each proved on the running platform (tests/security/conftest.py)."""

from __future__ import annotations

import io
import zipfile

import pytest
from reprolab_cli.client import ApiError

# --- zips written by Python's zipfile.writestr ------------------------------------------------------

def _zip(entries: dict[str, bytes], *, special: tuple[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)  # external_attr = 0o600 << 16: permission bits, no file type
        zf.writestr(zipfile.ZipInfo("bare.txt"), b"no attributes at all")  # external_attr 0 (Windows-like)
        if special:
            info = zipfile.ZipInfo(special[0])
            info.external_attr = special[1] << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_writestr_zips_are_accepted_as_code_and_as_an_import(gaps) -> None:
    ws = gaps.workspace(gaps.admin)
    body = _zip({"main.py": b"print(1)\n", "requirements.txt": b"six==1.16.0\n", "pkg/": b""})
    code = gaps.admin.request("POST", f"/workspaces/{ws}/code", content=body, expect=(201,))
    assert code["format"] == "zip" and code["entries"] == 4
    imported = gaps.admin.request("POST", f"/workspaces/{ws}/environments/import", params={"name": "zipped"},
                                  content=body, headers={"Content-Type": "application/zip"}, expect=(201,))
    assert "requirements.txt" in imported["detected"]["files"]
    # real links and special files are still refused, on both paths
    for mode, word in ((0o120777, "link"), (0o020644, "link or special"), (0o010644, "special")):
        bad = _zip({"main.py": b"x"}, special=("evil", mode))
        for path, params, headers in ((f"/workspaces/{ws}/code", None, None),
                                      (f"/workspaces/{ws}/environments/import", {"name": "evil"},
                                       {"Content-Type": "application/zip"})):
            with pytest.raises(ApiError) as info:
                gaps.admin.request("POST", path, params=params, content=bad, headers=headers, expect=(201,))
            assert info.value.status == 422 and word in info.value.problem["detail"], info.value.problem
