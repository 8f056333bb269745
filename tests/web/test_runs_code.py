"""The run form with code the way students have it (issue 17 item 5), in Chromium at a laptop's and a
phone's size against the whole platform: a notebook picked as one file (run top to bottom, its executed
copy among the outputs), a folder, a Git repository served by `git daemon`, then "Run again" in another
version and "Edit and re-run" from the run's page. Each page must not scroll sideways, log no script
error and leave nothing on "Loading…"; screenshots go to tests/web/screenshots/."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..integration.test_code_sources import NOTEBOOK, Repo
from .conftest import Portal
from .test_layout import LAPTOP, PHONE, check_page, sign_in, wait

TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def lab(portal: Portal, base_image: str, tmp_path_factory: pytest.TempPathFactory):
    """A student in a workspace with a built environment (v1, and v2 with the same image)."""
    _, ttoken, teacher = portal.user("rc-prof")
    sname, stoken, student = portal.user("rc-stud")
    ws = f"rc-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Runs from files, folders and Git"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    spec = {"base": base_image, "python": {"version": "3.11", "requirements": []}}
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": spec})
    teacher.post(f"/workspaces/{ws}/environments/py/versions", json={"spec": spec, "note": "same"})
    for n in (1, 2):
        build = teacher.post(f"/workspaces/{ws}/environments/py/versions/{n}/builds", expect=(202,))
        assert wait(teacher, f"/builds/{build['id']}", ("succeeded", "failed"))["status"] == "succeeded"
    repo = Repo(tmp_path_factory.mktemp("rc-git"))
    yield ws, stoken, student, repo, ttoken
    repo.stop()


def _sized(browser, portal, size):
    context = browser.new_context(viewport=size, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "status of 4" not in msg.text
            else None)
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(portal.url) else route.abort())
    return context, page, errors


@pytest.mark.parametrize("size", [pytest.param(LAPTOP, id="laptop"), pytest.param(PHONE, id="phone")])
def test_notebook_folder_and_git_runs_from_the_form_then_run_again(portal: Portal, browser, lab, size,
                                                                   tmp_path: Path) -> None:
    ws, stoken, student, repo, _ = lab
    label = "laptop" if size is LAPTOP else "phone"
    context, page, errors = _sized(browser, portal, size)
    try:
        sign_in(page, portal.url, stoken)

        # one notebook file: the form switches to "a notebook" by itself
        page.goto(f"{portal.url}/w/{ws}/runs")
        page.wait_for_selector("body[data-ready]", state="attached")
        page.get_by_label("Code from").select_option("files")
        page.get_by_label("Code files").set_input_files(
            {"name": "week1.ipynb", "mimeType": "application/json", "buffer": json.dumps(NOTEBOOK).encode()})
        expect(page.get_by_label("Run", exact=True)).to_have_value("notebook")
        expect(page.get_by_label("Notebook")).to_have_value("week1.ipynb")
        expect(page.get_by_label("Command")).to_be_hidden()
        check_page(page, errors, f"runs-code-form-notebook-{label}")
        page.get_by_role("button", name="Submit run").click()
        page.wait_for_url(re.compile(rf".*/w/{ws}/runs/[^/]+$"))
        notebook_run = page.url.rsplit("/", 1)[1]
        expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=TIMEOUT_MS)
        expect(page.locator("#run-details")).to_contain_text("week1.ipynb")
        expect(page.locator("#outputs")).to_contain_text("week1.executed.ipynb", timeout=30_000)
        expect(page.locator("#metrics")).to_contain_text("total")
        check_page(page, errors, f"runs-code-notebook-run-{label}")
        assert student.get(f"/runs/{notebook_run}")["source"] == {"notebook": "week1.ipynb"}

        # a folder: its own name left out, .git and __pycache__ left behind
        folder = tmp_path / "project"
        (folder / "lib").mkdir(parents=True)
        (folder / "__pycache__").mkdir()
        (folder / "main.py").write_text("import lib.helper\nprint('folder says', lib.helper.WORD)\n")
        (folder / "lib" / "__init__.py").write_text("")
        (folder / "lib" / "helper.py").write_text("WORD = 'hello'\n")
        (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
        page.goto(f"{portal.url}/w/{ws}/runs")
        page.wait_for_selector("body[data-ready]", state="attached")
        page.get_by_label("Code from").select_option("folder")
        page.get_by_label("Code folder").set_input_files(folder)
        page.get_by_label("Command").fill("python3 main.py")
        page.get_by_role("button", name="Submit run").click()
        page.wait_for_url(re.compile(rf".*/w/{ws}/runs/[^/]+$"))
        expect(page.locator("#run-log")).to_contain_text("folder says hello", timeout=TIMEOUT_MS)
        expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=TIMEOUT_MS)

        # a Git repository at a branch: the run names the pinned commit
        commit = repo.commit({"train.py": f"print('from git {label}')\n"}, label)
        page.goto(f"{portal.url}/w/{ws}/runs")
        page.wait_for_selector("body[data-ready]", state="attached")
        page.get_by_label("Code from").select_option("git")
        page.get_by_label("Repository URL").fill(repo.url)
        page.get_by_label("Branch, tag or commit").fill("main")
        page.get_by_label("Command").fill("python3 train.py")
        check_page(page, errors, f"runs-code-form-git-{label}")
        page.get_by_role("button", name="Submit run").click()
        page.wait_for_url(re.compile(rf".*/w/{ws}/runs/[^/]+$"))
        git_run = page.url.rsplit("/", 1)[1]
        expect(page.locator("#run-details")).to_contain_text(commit[:12])
        expect(page.locator("#run-log")).to_contain_text(f"from git {label}", timeout=TIMEOUT_MS)
        expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=TIMEOUT_MS)

        # run again in v1 (this run used v2, the newest built)
        expect(page.get_by_label("Environment version")).to_have_value("2")
        page.get_by_label("Environment version").select_option("1")
        check_page(page, errors, f"runs-code-run-again-{label}")
        page.get_by_role("button", name="Run again").click()
        page.wait_for_url(re.compile(rf".*/w/{ws}/runs/(?!{git_run})[^/]+$"))
        again = student.get(f"/runs/{page.url.rsplit('/', 1)[1]}")
        assert again["version"] == 1 and again["source"]["git_commit"] == commit
        expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=TIMEOUT_MS)

        # edit and re-run: the form comes filled in with the earlier run's choices, its code kept
        page.get_by_role("link", name="Edit and re-run").click()
        page.wait_for_url(re.compile(rf".*/w/{ws}/runs\?again="))
        page.wait_for_selector("body[data-ready]", state="attached")
        expect(page.get_by_label("Code from")).to_have_value("again")
        expect(page.locator("#r-again-code")).to_contain_text(commit[:12])
        expect(page.get_by_label("Command")).to_have_value("python3 train.py")
        page.get_by_label("Command").fill("python3 -c \"print('edited run')\"")
        check_page(page, errors, f"runs-code-edit-rerun-{label}")
        page.get_by_role("button", name="Submit run").click()
        page.wait_for_url(re.compile(rf".*/w/{ws}/runs/[^/?]+$"))
        expect(page.locator("#run-log")).to_contain_text("edited run", timeout=TIMEOUT_MS)
        edited = student.get(f"/runs/{page.url.rsplit('/', 1)[1]}")
        assert edited["source"]["git_commit"] == commit and edited["command"][:2] == ["python3", "-c"]
        check_page(page, errors, f"runs-code-edited-run-{label}")
    finally:
        context.close()


def test_the_editor_offers_only_the_python_its_base_has(portal: Portal, browser, lab) -> None:
    """Python 3.12 was offered on the default base, which has only 3.11 (the build then failed)."""
    ws, _, _, _, ttoken = lab
    context, page, errors = _sized(browser, portal, PHONE)
    try:
        sign_in(page, portal.url, ttoken)
        page.goto(f"{portal.url}/w/{ws}/new-environment")
        page.wait_for_selector("body[data-ready]", state="attached")
        offered = lambda: page.get_by_label("Python version").locator("option").all_inner_texts()  # noqa: E731
        assert offered() == ["3.11"]
        expect(page.locator("#e-pyver-hint")).to_contain_text("python:3.12-slim-bookworm")
        check_page(page, errors, "runs-code-editor-python-phone")
        page.get_by_label("Base image").fill("docker.io/library/python:3.12-slim-bookworm")
        page.get_by_label("Base image").dispatch_event("change")
        assert offered() == ["3.12"]
        page.get_by_label("Base image").fill("registry.example.org/lab/base:2024")
        page.get_by_label("Base image").dispatch_event("change")
        assert offered() == ["3.11", "3.12", "3.13"]
        expect(page.locator("#e-pyver-hint")).to_contain_text("The base image decides")
        assert not errors, errors
    finally:
        context.close()
