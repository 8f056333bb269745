"""Taking an environment out, in Chromium at a phone's size and a laptop's: the "Take it out" section of an
environment's page publishes a built version to a second local registry (htpasswd, as Docker Hub or GHCR
would ask) and shows the digest, the same as the platform's copy; the image file and the Binder-ready
folder download; a publish that cannot happen says why. The Registries page adds a login, lists it and
removes it, and never shows its password. Students see the downloads but not the publish form. The checks
of test_layout.py apply to each page (no sideways scroll, no script error, nothing left "Loading…");
screenshots also go to /tmp/h16-shots/."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tarfile
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from reprolab_cli.import_cmd import pack

from ..integration.test_publish import PASSWORD, USER, auth_registry  # noqa: F401 - the fixture is used by name
from . import test_layout
from .conftest import Portal
from .test_layout import check_page, sign_in, wait

sized = test_layout.sized  # the fixture of the two screen sizes
SHOTS = Path("/tmp/h16-shots")
REPOS = Path(__file__).parents[1] / "importer" / "repos"


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def built(portal: Portal, base_image: str) -> dict:
    """A workspace with one built environment, an instructor and a student."""
    _iname, itoken, teacher = portal.user("out-prof")
    sname, stoken, _ = portal.user("out-stud")
    ws = f"out-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Taking environments out"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "course", "spec": {
        "base": base_image, "python": {"version": "3.11", "requirements": []}}})
    build = teacher.post(f"/workspaces/{ws}/environments/course/versions/1/builds", expect=(202,))
    assert wait(teacher, f"/builds/{build['id']}", ("succeeded", "failed"))["status"] == "succeeded"
    version = teacher.get(f"/workspaces/{ws}/environments/course/versions/1")
    return {"ws": ws, "token": itoken, "teacher": teacher, "student_token": stoken, "digest": version["image_digest"]}


def test_an_image_file_that_cannot_be_made_says_why_and_downloads_once_it_can(portal: Portal, built, tab,
                                                                              tmp_path) -> None:
    """The first test of the module: the workspace's image file is not made yet. With the platform's registry
    down it cannot be: the page says why and no download starts (the browser would save the error under
    the file's name). With the registry back the same link downloads the file."""
    page, errors = tab.page, tab.errors
    ws = built["ws"]
    sign_in(page, portal.url, built["token"])
    page.goto(f"{portal.url}/w/{ws}/env/course")
    link = page.locator("#take-out").get_by_role("link", name="Download v1 as one file")
    downloads: list = []
    page.on("download", lambda d: downloads.append(d))
    registry = portal.platform.registry
    assert registry is not None
    registry.stop()
    try:
        link.click()
        alert = page.locator("#out-archive-status [role=alert]")
        expect(alert).to_contain_text("The file could not be made", timeout=120_000)
        expect(alert).to_contain_text("try again in a minute")
    finally:
        registry.start()
    assert downloads == []
    _shot(page, "take-out-image-file-refused")
    errors[:] = [e for e in errors if "status of 503" not in e]  # the refused request, as the browser logs it
    with page.expect_download(timeout=600_000) as got:
        link.click()
    expect(page.locator("#out-archive-status")).to_contain_text("Downloading course-v1.oci.tar")
    assert got.value.suggested_filename == "course-v1.oci.tar"
    archive = tmp_path / "image.tar"
    got.value.save_as(archive)
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
    assert [m["digest"] for m in index["manifests"]] == [built["digest"]]
    assert not errors, errors


def test_the_registries_page_adds_lists_and_removes_a_login(portal: Portal, built, sized) -> None:
    page, errors, size = sized
    ws, teacher = built["ws"], built["teacher"]
    secret = "rg-page-" + uuid.uuid4().hex
    host = f"registry-{size}.example.org:5000"
    sign_in(page, portal.url, built["token"])
    page.goto(f"{portal.url}/w/{ws}")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Registries").click()
    page.wait_for_url(f"**/w/{ws}/registries")
    check_page(page, errors, f"{size}-registries")
    expect(page.locator("#registries tbody")).to_contain_text("No logins yet")
    page.get_by_label("Registry", exact=True).fill(host)
    page.get_by_label("User name").fill("ci-bot")
    page.get_by_label("Password or access token").fill(secret)
    page.get_by_role("button", name="Save login").click()
    row = page.locator("#registries tbody tr", has_text=host)
    expect(row).to_contain_text("ci-bot")
    expect(page.get_by_label("Password or access token")).to_have_value("")
    assert secret not in page.content()
    listed = teacher.get(f"/workspaces/{ws}/registry-credentials")["items"]
    assert [(c["registry"], c["username"]) for c in listed] == [(host, "ci-bot")] and secret not in str(listed)
    check_page(page, errors, f"{size}-registries-saved")
    _shot(page, f"registries-{size}")
    expect(page.get_by_label("Registry", exact=True)).to_have_value("")  # the form is ready for the next one
    # a host that is not one is refused by the API, and the page says so plainly
    page.get_by_label("Registry", exact=True).fill("not a host/")
    page.get_by_label("User name").fill("x")
    page.get_by_label("Password or access token").fill(secret)
    page.get_by_role("button", name="Save login").click()
    expect(page.locator("#flash.error")).to_contain_text("is not a registry host")
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Remove the login to {host}").click()
    expect(page.locator("#registries tbody")).to_contain_text("No logins yet")
    assert teacher.get(f"/workspaces/{ws}/registry-credentials")["items"] == []
    assert not errors, errors


def test_take_it_out_publishes_with_the_same_digest_and_downloads(portal: Portal, built, sized, auth_registry,  # noqa: F811
                                                                  tmp_path) -> None:
    page, errors, size = sized
    ws, teacher, digest = built["ws"], built["teacher"], built["digest"]
    sign_in(page, portal.url, built["token"])
    page.goto(f"{portal.url}/w/{ws}/env/course")
    section = page.locator("#take-out")
    expect(section).to_be_visible()
    check_page(page, errors, f"{size}-take-out")
    expect(section.get_by_label("Version to take out")).to_have_value("1")
    expect(page.locator("#out-renv-item")).to_be_hidden()  # no R packages in this version
    expect(page.locator("#out-digest")).to_be_hidden()  # the technical detail is one click away
    section.get_by_text("More detail (technical)").click()
    expect(page.locator("#out-digest")).to_have_text(digest)

    # without a login to that registry: the API's reason, plainly
    dest = f"{auth_registry}/course/{ws}:{size}"
    teacher.request("DELETE", f"/workspaces/{ws}/registry-credentials/{auth_registry}", expect=(204, 404))
    section.get_by_label("Destination").fill(dest)
    section.get_by_role("button", name="Publish").click()
    expect(page.locator("#publish-result")).to_contain_text(f"Not published: registry {auth_registry} needs "
                                                            "credentials")
    # with one (saved through the API; the Registries page is tested above)
    teacher.request("PUT", f"/workspaces/{ws}/registry-credentials/{auth_registry}",
                    json={"username": USER, "password": PASSWORD})
    section.get_by_role("button", name="Publish").click()
    expect(page.locator("#publish-result")).to_contain_text(f"Published v1 to {dest}", timeout=300_000)
    expect(page.locator("#publish-result")).to_contain_text("the digests match")
    expect(page.locator("#pub-digest")).to_have_text(digest)
    inspected = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                                f"{USER}:{PASSWORD}", f"docker://{dest}"], capture_output=True, timeout=60)
    assert inspected.returncode == 0, inspected.stderr
    assert "sha256:" + hashlib.sha256(inspected.stdout).hexdigest() == digest
    assert PASSWORD not in page.content()
    check_page(page, errors, f"{size}-take-out-published")
    _shot(page, f"take-out-{size}")
    section.screenshot(path=str(SHOTS / f"take-out-section-{size}.png"))

    # the image as one file: an OCI archive holding the platform's manifest
    with page.expect_download(timeout=600_000) as got:
        section.get_by_role("link", name="Download v1 as one file").click()
    download = got.value
    assert download.suggested_filename == "course-v1.oci.tar"
    archive = tmp_path / "image.tar"
    download.save_as(archive)
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
    assert [m["digest"] for m in index["manifests"]] == [digest]
    # the Binder-ready folder
    with page.expect_download(timeout=120_000) as got:
        section.get_by_role("link", name="Download v1 as a Binder-ready folder").click()
    download = got.value
    assert download.suggested_filename == "course-v1-binder.zip"
    folder = tmp_path / "binder.zip"
    download.save_as(folder)
    with zipfile.ZipFile(folder) as zf:
        assert {"binder/runtime.txt", "REPROLAB-EXPORT.txt"} <= set(zf.namelist())  # no Python packages here
    assert not errors, errors


def test_students_may_download_but_not_publish(portal: Portal, built, sized) -> None:
    page, errors, size = sized
    sign_in(page, portal.url, built["student_token"])
    page.goto(f"{portal.url}/w/{built['ws']}/env/course")
    section = page.locator("#take-out")
    expect(section).to_be_visible()
    check_page(page, errors, f"{size}-take-out-student")
    expect(section.get_by_role("link", name=re.compile("Download v1"))).to_have_count(2)
    expect(page.locator("#publish")).to_be_hidden()
    _shot(page, f"take-out-student-{size}")


def test_an_imported_r_environment_offers_renv_lock_and_the_activity_page_says_what_happened(
        portal: Portal, built, tab, auth_registry, tmp_path) -> None:  # noqa: F811
    """An environment imported from a repository with install.R (R packages from Debian) offers its
    renv.lock; the activity page then says where the import came from and what was downloaded."""
    page = tab.page
    ws, teacher = built["ws"], built["teacher"]
    archive = tmp_path / "repo.tar.gz"
    pack(REPOS / "r-install-R", archive)
    teacher.upload(f"/workspaces/{ws}/environments/import", archive, params={"name": "r-course"},
                   content_type="application/gzip")
    build = teacher.post(f"/workspaces/{ws}/environments/r-course/versions/1/builds", expect=(202,))
    assert wait(teacher, f"/builds/{build['id']}", ("succeeded", "failed"))["status"] == "succeeded"
    sign_in(page, portal.url, built["token"])
    page.goto(f"{portal.url}/w/{ws}/env/r-course")
    link = page.locator("#take-out").get_by_role("link", name="Download renv.lock")
    expect(link).to_be_visible()
    with page.expect_download(timeout=120_000) as got:
        link.click()
    assert got.value.suggested_filename == "r-course-v1-renv.lock"
    doc = json.loads(Path(got.value.path()).read_text())
    assert doc["Packages"]["jsonlite"]["Version"], doc
    with page.expect_download(timeout=120_000) as got:
        page.locator("#take-out").get_by_role("link", name="Download v1 as a Binder-ready folder").click()
    assert got.value.suggested_filename == "r-course-v1-binder.zip"
    dest = f"{auth_registry}/course/{ws}:activity"
    teacher.request("PUT", f"/workspaces/{ws}/registry-credentials/{auth_registry}",
                    json={"username": USER, "password": PASSWORD})
    teacher.post(f"/workspaces/{ws}/environments/course/versions/1/publish", json={"destination": dest})

    # the log is written from the bus after the API answered: look again until it is there
    cells = page.locator("#activity tbody tr td:nth-child(5)")
    deadline = time.monotonic() + 60
    while True:
        page.goto(f"{portal.url}/w/{ws}/activity")
        expect(cells.first).to_be_visible()
        texts = cells.all_inner_texts()
        if f"course v1: published to {dest}" in texts or time.monotonic() > deadline:
            break
        page.wait_for_timeout(1000)
    assert "environment r-course: imported (upload)" in texts, texts
    assert "r-course v1: renv.lock downloaded" in texts, texts
    assert "r-course v1: downloaded as a Binder-ready folder" in texts, texts
    assert f"course v1: published to {dest}" in texts, texts
    assert not tab.errors, tab.errors
