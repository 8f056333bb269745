"""The web portal end to end in headless Chromium: an instructor's flow and a student's flow, against
the whole platform (real builds with buildah, real runs in podman, the real activity log).

Every step goes through the pages as a user would (labels, buttons, links); the API is used only to
set up users (the portal has no user admin) and to check what the pages claim. Each test saves
screenshots under tests/web/screenshots/.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from reprolab_cli.demo import EVALUATE_PY, EXTRA_PACKAGE, TRAIN_PY

BASE = "localhost/reprolab/bookworm-python:latest"
DATA = Path(__file__).resolve().parents[2] / "cli" / "src" / "reprolab_cli" / "data"
BUILD_TIMEOUT = 600_000  # ms: a first build fetches pandas and scikit-learn wheels from PyPI
RUN_TIMEOUT = 300_000


def tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sign_in(page: Page, url: str, token: str, name: str) -> None:
    page.goto(url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in with token").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


def checkbox(page: Page, name: str):
    return page.get_by_role("checkbox", name=re.compile(rf"^{re.escape(name)}\b"))


def test_instructor_flow(portal, tab, shot, base_image) -> None:
    page = tab.page
    iname, itoken, instructor = portal.user("teach")
    sname, _, _ = portal.user("stud")
    slug = f"course-{int(time.time() * 1000) % 10**8}"

    # sign in with a token, create a workspace
    page.goto(portal.url + "/")
    shot(page, "login")
    sign_in(page, portal.url, itoken, iname)
    page.get_by_label("Short name (URL)").fill(slug)
    page.get_by_label("Title", exact=True).fill("Data science 101")
    page.get_by_role("button", name="Create workspace").click()
    page.wait_for_url(f"**/w/{slug}")
    expect(page.locator("#ws-role")).to_have_text("you: admin")

    # add a student
    page.get_by_label("Username").fill(sname)
    page.get_by_label("Role").select_option("student")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#members")).to_contain_text(sname)
    roles = {m["username"]: m["role"] for m in instructor.get(f"/workspaces/{slug}/members")["items"]}
    assert roles[sname] == "student"

    # upload a dataset; the upload is throttled so the progress bar is seen moving
    big = (DATA / "iris-train.csv").read_bytes() * 700  # ~2 MiB
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 800_000})
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "iris-big.csv", "mimeType": "text/csv", "buffer": big})
    expect(page.locator("#upload-dataset").get_by_label("Name", exact=True)).to_have_value("iris-big.csv")
    page.get_by_role("button", name="Upload", exact=True).click()
    progress = page.get_by_label("Upload progress")
    page.wait_for_function("() => { const v = document.querySelector('#ds-progress').value; return v > 5 && v < 95; }")
    shot(page, "upload-progress")
    expect(page.locator("#ds-progress-text")).to_contain_text("Uploaded iris-big.csv", timeout=60_000)
    expect(progress).to_have_js_property("value", 100)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    expect(page.locator("#datasets")).to_contain_text("iris-big.csv")
    # the hidden labels for the assignment
    page.get_by_label("File", exact=True).set_input_files(str(DATA / "iris-test-labels.csv"))
    page.get_by_label("Hidden: instructors only").check()
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#datasets")).to_contain_text("iris-test-labels.csv")
    uploaded = {d["name"]: d for d in instructor.get(f"/workspaces/{slug}/datasets")["items"]}
    assert uploaded["iris-big.csv"]["size"] == len(big) and uploaded["iris-test-labels.csv"]["visibility"] == "hidden"
    shot(page, "workspace")

    # an environment from the editor: Python + pandas + scikit-learn (found by searching)
    page.get_by_role("link", name="New environment").click()
    page.get_by_label("Environment name").fill("py")
    page.get_by_label("Base image").fill(base_image)
    expect(page.get_by_label("Python", exact=True)).to_be_checked()
    page.get_by_label("Search packages").fill("learn")
    expect(checkbox(page, "pandas")).to_be_hidden()
    checkbox(page, "scikit-learn").check()
    page.get_by_label("Search packages").fill("")
    checkbox(page, "pandas").check()
    expect(page.locator("#e-summary")).to_have_text("2 packages selected; Python 3.11.")
    shot(page, "editor")
    page.get_by_role("button", name="Create environment").click()
    page.wait_for_url(f"**/w/{slug}/env/py?created=1")
    v1 = instructor.get(f"/workspaces/{slug}/environments/py/versions/1")
    assert v1["spec"] == {"base": base_image, "python": {"version": "3.11", "requirements": ["pandas", "scikit-learn"]}}

    # build it and watch the live log until it succeeds; then the pull instructions
    page.get_by_role("button", name="Build", exact=True).click()
    expect(page.locator("#build-status")).to_contain_text("running", timeout=120_000)
    expect(page.locator("#build-log")).not_to_be_empty(timeout=120_000)
    shot(page, "build-running")
    expect(page.locator("#build-status")).to_contain_text("succeeded", timeout=BUILD_TIMEOUT)
    v1 = instructor.get(f"/workspaces/{slug}/environments/py/versions/1")
    repo = v1["image_ref"].rsplit(":", 1)[0]
    host = repo.split("/", 1)[0]
    expect(page.locator("#pull-cmd")).to_have_text(f"podman login --tls-verify=false {host} -u {iname}\n"
                                                   f"podman pull --tls-verify=false {repo}@{v1['image_digest']}")
    expect(page.locator("#build-log")).to_contain_text("pushed")
    shot(page, "build-succeeded")

    # a new version from the editor, then roll back to v1 and build that (it reuses v1's image)
    page.get_by_label("Other Python requirements").fill("six==1.16.0")
    page.get_by_label("Note for this version").fill("add six")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.locator("#flash")).to_contain_text("Saved v2")
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.locator("#flash")).to_contain_text("Created v3 equal to v1")
    expect(page.locator("#lineage svg")).to_contain_text("rollback to v1")
    expect(page.locator("#versions tbody tr")).to_have_count(3)
    page.get_by_label("Version to build").select_option("3")
    page.get_by_role("button", name="Build", exact=True).click()
    expect(page.locator("#build-status")).to_contain_text("succeeded", timeout=120_000)
    expect(page.locator("#pull-version")).to_have_text("v3")
    v3 = instructor.get(f"/workspaces/{slug}/environments/py/versions/3")
    assert v3["rollback_to"] == 1 and v3["image_digest"] == v1["image_digest"]
    shot(page, "versions-lineage")

    # an assignment on the built environment, evaluated against the hidden labels
    page.get_by_role("link", name=slug, exact=True).click()
    form = page.locator("#create-assignment")
    form.get_by_label("Name", exact=True).fill("iris")
    form.get_by_label("Title").fill("Iris species")
    form.get_by_label("Evaluation environment").select_option("py")
    form.get_by_label("Hidden labels dataset").select_option(label="iris-test-labels.csv")
    form.get_by_label("Evaluation code (.tar.gz or .zip)").set_input_files(
        {"name": "evaluation.tar.gz", "mimeType": "application/gzip", "buffer": tar_gz({"evaluate.py": EVALUATE_PY})})
    form.get_by_role("button", name="Create assignment").click()
    page.wait_for_url(f"**/w/{slug}/assignments/iris")
    expect(page.locator("#assignment-details")).to_contain_text("/outputs/predictions.csv")
    expect(page.locator("#assignment-details")).to_contain_text("iris-test-labels.csv")
    expect(page.locator("#leaderboard")).to_contain_text("No scored runs yet.")
    assert instructor.get(f"/workspaces/{slug}/assignments/iris")["labels_name"] == "iris-test-labels.csv"

    # the activity log: filter, export, verify
    page.get_by_role("link", name="Activity", exact=True).click()
    expect(page.locator("#activity tbody tr")).not_to_have_count(0)
    expect(page.locator("#activity")).to_contain_text("workspace.created")
    page.get_by_label("Type").fill("dataset.uploaded")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#activity tbody tr")).to_have_count(2)
    types = page.locator("#activity tbody tr td:nth-child(4)").all_inner_texts()
    assert types == ["dataset.uploaded", "dataset.uploaded"]
    shot(page, "activity-filtered")
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#activity")).to_contain_text("assignment.created")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export (JSON lines)").click()
    bundle = Path(download.value.path()).read_text()
    assert download.value.suggested_filename == f"{slug}-activity.jsonl"
    assert "assignment.created" in bundle and "member.added" in bundle
    page.get_by_role("button", name="Verify the log").click()
    expect(page.locator("#verify-result")).to_contain_text("Verified the current log", timeout=60_000)
    expect(page.locator("#verify-result")).to_contain_text("signed with this platform's keys")
    # a tampered export is caught
    tampered = bundle.replace("iris-test-labels.csv", "iris-test-label5.csv", 1)
    assert tampered != bundle
    page.get_by_label("…or verify an exported file").set_input_files(
        {"name": "tampered.jsonl", "mimeType": "application/x-ndjson", "buffer": tampered.encode()})
    expect(page.locator("#verify-result")).to_contain_text("Verification failed for tampered.jsonl", timeout=60_000)
    shot(page, "activity-verified")

    # signing out removes the session: pages send you back to the sign-in form
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{portal.url}/w/{slug}")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert not tab.errors, tab.errors
    assert not tab.offsite, tab.offsite


@pytest.fixture
def course(portal, base_image):
    """Set up through the API: a workspace with Iris data, a built pandas + scikit-learn environment,
    an assignment, and a student."""
    _, _, teacher = portal.user("prof")
    sname, stoken, student = portal.user("learner")
    ws = f"lab-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Machine learning lab"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    for name, visibility in (("iris-train.csv", "public"), ("iris-test-features.csv", "public"),
                             ("iris-test-labels.csv", "hidden")):
        teacher.post(f"/workspaces/{ws}/datasets", params={"name": name, "visibility": visibility},
                     content=(DATA / name).read_bytes())
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": base_image, "python": {"version": "3.11", "requirements": ["pandas", "scikit-learn>=1.5"]}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + BUILD_TIMEOUT / 1000
    while (status := teacher.get(f"/builds/{build['id']}")["status"]) not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(1)
    assert status == "succeeded", teacher.get(f"/builds/{build['id']}")
    code = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": EVALUATE_PY}),
                           expect=(201,))
    teacher.post(f"/workspaces/{ws}/assignments", json={
        "name": "iris", "title": "Iris species", "environment": "py", "evaluation_code": code["digest"],
        "labels": "iris-test-labels.csv", "metric": "accuracy"})
    return ws, sname, stoken, student


def test_student_flow(portal, tab, shot, course) -> None:
    page = tab.page
    ws, sname, stoken, student = course
    fork = f"mine-{sname}"[:63]  # not the name the page suggests

    sign_in(page, portal.url, stoken, sname)
    expect(page.locator("#workspaces")).to_contain_text(ws)
    shot(page, "dashboard")
    page.get_by_role("link", name=ws).click()
    expect(page.locator("#ws-role")).to_have_text("you: student")
    expect(page.locator("#environments")).to_contain_text("py")
    # students see public datasets only, and no instructor forms
    expect(page.locator("#datasets")).to_contain_text("iris-train.csv")
    expect(page.locator("#datasets")).not_to_contain_text("iris-test-labels.csv")
    expect(page.locator("#upload-dataset")).to_be_hidden()
    expect(page.locator("#create-assignment")).to_be_hidden()
    shot(page, "workspace")

    # the course's environment: read-only for a student, so fork it and add a package. The build history
    # is held back while the student types a name for the fork: the page used to put its suggested name
    # in once the history had arrived, over (or, mid-typing, into) what the student had typed.
    held: list[Any] = []
    history = f"**/api/v1/workspaces/{ws}/environments/py/builds"
    page.route(history, lambda route: held.append(route))
    page.get_by_role("link", name="py", exact=True).click()
    expect(page.locator("#env-summary")).to_contain_text("You can fork it to change it.")
    expect(page.locator("#pull-cmd")).to_contain_text("podman pull --tls-verify=false")
    expect(page.get_by_role("button", name="Build", exact=True)).to_be_hidden()
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the environment page never asked for its build history"
    expect(page.get_by_label("Name of the fork")).to_have_value(f"py-{sname}"[:63])  # the suggestion
    page.get_by_label("Name of the fork").fill(fork)
    page.unroute(history)
    for route in held:
        route.continue_()
    expect(page.locator("#builds")).to_contain_text("Show log")  # the history arrived
    expect(page.get_by_label("Name of the fork")).to_have_value(fork)
    page.get_by_role("button", name="Fork").click()
    page.wait_for_url(f"**/w/{ws}/env/{fork}?forked=1")
    expect(page.locator("#env-summary")).to_contain_text(f"forked from {ws}/py")
    expect(checkbox(page, "pandas")).to_be_checked()
    expect(checkbox(page, "scikit-learn")).to_be_checked()  # pinned ("scikit-learn>=1.5") still ticks its box
    expect(page.get_by_label("Other Python requirements")).to_have_value("")
    page.get_by_label("Other Python requirements").fill(EXTRA_PACKAGE)
    page.get_by_label("Note for this version").fill("tabulate for my report")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.locator("#flash")).to_contain_text("Saved v2")
    expect(page.get_by_label("Version to build")).to_have_value("2")
    page.get_by_role("button", name="Build", exact=True).click()
    expect(page.locator("#build-status")).to_contain_text("succeeded", timeout=BUILD_TIMEOUT)
    expect(page.locator("#build-log")).to_contain_text("tabulate")
    expect(page.locator("#pull-version")).to_have_text("v2")
    shot(page, "fork-built")
    mine = student.get(f"/workspaces/{ws}/environments/{fork}/versions/2")
    assert EXTRA_PACKAGE.replace(" ", "") in mine["spec"]["python"]["requirements"] and mine["image_digest"]
    assert "scikit-learn>=1.5" in mine["spec"]["python"]["requirements"]  # the pin survives the editor

    # submit a run of the fork for the assignment, with a code archive and the public datasets
    page.get_by_role("link", name="Runs", exact=True).click()
    page.get_by_label("Environment", exact=True).select_option(fork)
    page.get_by_label("For assignment (optional)").select_option("iris")
    page.get_by_label("Code archive (.tar.gz or .zip)").set_input_files(
        {"name": "code.tar.gz", "mimeType": "application/gzip", "buffer": tar_gz({"train.py": TRAIN_PY})})
    page.get_by_label("Command").fill("python3 train.py")
    page.get_by_label("iris-train.csv").check()
    page.get_by_label("iris-test-features.csv").check()
    expect(page.get_by_label("Target")).to_have_value("local")
    shot(page, "submit-run")
    page.get_by_role("button", name="Submit run").click()
    page.wait_for_url(re.compile(rf".*/w/{ws}/runs/[^/]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#run-log")).to_contain_text("5-fold CV", timeout=RUN_TIMEOUT)
    expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=RUN_TIMEOUT)
    expect(page.locator("#score .score")).to_have_text(re.compile(r"^0\.9\d*|^1(\.0+)?$"), timeout=RUN_TIMEOUT)
    expect(page.locator("#metrics")).to_contain_text("cv_accuracy")
    expect(page.locator("#outputs")).to_contain_text("predictions.csv")
    run = student.get(f"/runs/{run_id}")
    assert run["status"] == "succeeded" and run["environment"] == fork and run["scoring"] == "scored"
    expect(page.locator("#score .score")).to_have_text(run["score"])
    with page.expect_download() as download:
        page.get_by_role("link", name="predictions.csv").click()
    assert Path(download.value.path()).read_text().startswith("id,species")
    shot(page, "run-results")

    # the leaderboard
    page.get_by_role("link", name="iris").click()
    expect(page.locator("#leaderboard tbody tr")).to_have_count(1)
    expect(page.locator("#leaderboard")).to_contain_text(sname)
    expect(page.locator("#leaderboard")).to_contain_text(run["score"])
    expect(page.locator("#assignment-details")).not_to_contain_text("iris-test-labels.csv")
    shot(page, "leaderboard")

    # cloud credentials through the write-only form: the secret is never shown again
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    page.get_by_role("link", name="Cloud credentials").click()
    page.get_by_label("Workspace", exact=True).select_option(ws)
    page.get_by_label("Vendor").select_option("aws")
    expect(page.get_by_label("Secret access key")).to_have_attribute("type", "password")
    page.get_by_label("Access key ID").fill("AKIAIOSFODNN7EXAMPLE")
    page.get_by_label("Secret access key").fill(secret)
    page.get_by_label("Region").fill("eu-west-1")
    page.get_by_label("Instance type").fill("t3.small")
    page.get_by_label("More options").fill("image_id=ami-0123456789abcdef0")
    page.get_by_role("button", name="Save credentials").click()
    expect(page.locator("#flash")).to_contain_text("Saved aws credentials")
    expect(page.get_by_label("Secret access key")).to_have_value("")
    expect(page.get_by_label("Access key ID")).to_have_value("")
    saved = page.locator("#credentials tbody tr")
    expect(saved).to_have_count(1)
    expect(saved).to_contain_text("access_key_id, secret_access_key (key ****MPLE)")
    expect(saved).to_contain_text("region=eu-west-1")
    expect(saved).to_contain_text("image_id=ami-0123456789abcdef0")
    shot(page, "credentials")
    page.reload()
    expect(page.locator("#credentials tbody tr")).to_contain_text("instance_type=t3.small")
    assert secret not in page.content() and "AKIAIOSFODNN7EXAMPLE" not in page.content()
    listed = student.get("/me/credentials", params={"workspace": ws})
    assert secret not in str(listed) and [c["vendor"] for c in listed["items"]] == ["aws"]

    # their own activity only
    page.get_by_role("link", name="Activity", exact=True).click()
    expect(page.locator("#activity")).to_contain_text("run.")
    actors = set(page.locator("#activity tbody tr td:nth-child(3)").all_inner_texts())
    assert actors == {sname}, actors
    shot(page, "activity")
    assert not tab.errors, tab.errors
    assert not tab.offsite, tab.offsite
