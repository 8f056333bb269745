"""The portal's import form: an instructor uploads a Binder-ready repository archive and sees what
was detected (pack, files read, notes); a refused repository shows the 422's reason."""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import expect
from reprolab_cli.import_cmd import pack

from .test_portal import sign_in

REPOS = Path(__file__).parents[1] / "importer" / "repos"


def _archive(folder: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "repo.tar.gz"
        pack(folder, path)
        return path.read_bytes()


def test_instructor_imports_a_repository_from_the_portal(portal, tab, shot) -> None:
    page = tab.page
    name, token, teacher = portal.user("imp")
    ws = f"imp-{name[-6:]}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Imports"})
    sign_in(page, portal.url, token, name)
    page.goto(f"{portal.url}/w/{ws}")
    form = page.locator("#import-env")
    expect(form).to_be_visible()

    form.get_by_label("Repository archive (.tar.gz or .zip)").set_input_files(
        {"name": "binder-dir.tar.gz", "mimeType": "application/gzip", "buffer": _archive(REPOS / "binder-dir")})
    form.get_by_label("Name of the imported environment").fill("from-binder")
    form.get_by_role("button", name="Import").click()
    result = page.locator("#imp-result")
    expect(result).to_contain_text("python pack, binder/ folder")
    expect(result).to_contain_text("binder/postBuild")
    expect(result).to_contain_text("not guaranteed bit-reproducible")
    expect(result).to_contain_text("at the root ignored")
    expect(page.locator("#environments")).to_contain_text("from-binder")
    shot(page, "imported")
    spec = teacher.get(f"/workspaces/{ws}/environments/from-binder/versions/1")["spec"]
    assert spec["start"] == "binder/start" and spec["build_steps"][0]["run"].endswith("./binder/postBuild")

    # a Dockerfile cannot be honoured: the form says so and nothing is created
    form.get_by_label("Repository archive (.tar.gz or .zip)").set_input_files(
        {"name": "docker.tar.gz", "mimeType": "application/gzip", "buffer": _archive(REPOS / "refuse-dockerfile")})
    form.get_by_label("Name of the imported environment").fill("from-docker")
    form.get_by_role("button", name="Import").click()
    expect(page.get_by_text("a Dockerfile cannot be honoured", exact=False).first).to_be_visible()
    names = [e["name"] for e in teacher.get(f"/workspaces/{ws}/environments")["items"]]
    assert names == ["from-binder"]
    assert not tab.offsite
