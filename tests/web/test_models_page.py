"""Models in the portal, in Chromium (issue 15): an instructor deploys a run's model file from the run's page,
follows the model's page until the version serves, creates an API key (shown once), predicts with "Try it",
sends traffic whose inputs have shifted, has a monitoring pass made, and sees the charts (inline SVG: one
chart per feature with its mean series beside the training data's, stacked bars of the predicted classes) and
the red drift banner; makes a second version active and rolls back to the first; then revokes the key
(Try it is refused) and stops the model. At a phone's size the
models pages do not scroll sideways.

Real parts: the platform's gateway, runner, builder and podman; a built environment with scikit-learn, a run
that trains on an uploaded dataset (the monitoring reference), the model served in the run's own image and
called through the gateway's /serve. One build, one run and one deploy for the module.
"""

from __future__ import annotations

import csv
import io
import random
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import Portal
from .test_layout import PHONE, check_page, sign_in, wait
from .test_portal import DATA, tar_gz

SHOTS = Path("/tmp/shots")
IRIS = (DATA / "iris-train.csv").read_bytes()
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
TRAIN = """
import csv, json, os
import joblib
from sklearn.linear_model import LogisticRegression
rows = list(csv.DictReader(open("/data/iris-train.csv")))
X = [[float(r[c]) for c in ("sepal_length", "sepal_width", "petal_length", "petal_width")] for r in rows]
y = [r["species"] for r in rows]
model = LogisticRegression(max_iter=500).fit(X, y)
os.makedirs("/outputs", exist_ok=True)
joblib.dump(model, "/outputs/model.joblib")
json.dump({"accuracy": float(model.score(X, y))}, open("/outputs/metrics.json", "w"))
"""


@dataclass
class Trained:
    ws: str
    token: str
    client: object  # reprolab_cli Client of the instructor
    run_id: str


def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"models-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def trained(portal: Portal, base_image: str) -> Trained:
    """A workspace with the Iris training data, an environment with scikit-learn built, and a run that trained
    a classifier on it (made through the API: the pages are what is tested)."""
    _name, token, teacher = portal.user("mp-prof")
    ws = f"mp-{uuid.uuid4().hex[:8]}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Models"})
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "iris-train.csv", "visibility": "public"},
                 content=IRIS)
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "sk", "spec": {
        "base": base_image, "python": {"version": "3.11", "requirements": ["scikit-learn"]}}})
    build = teacher.post(f"/workspaces/{ws}/environments/sk/versions/1/builds", expect=(202,))
    assert wait(teacher, f"/builds/{build['id']}", ("succeeded", "failed"))["status"] == "succeeded"
    code = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"train.py": TRAIN}), expect=(201,))
    run = teacher.post(f"/workspaces/{ws}/runs", json={"environment": "sk", "code": code["digest"],
                                                      "command": ["python3", "train.py"],
                                                      "datasets": ["iris-train.csv"]}, expect=(201, 202))
    done = wait(teacher, f"/runs/{run['id']}", ("succeeded", "failed", "timed_out", "cancelled"))
    assert done["status"] == "succeeded", done
    yield Trained(ws, token, teacher, run["id"])
    for m in teacher.get(f"/workspaces/{ws}/models")["items"]:
        if any(v["state"] in ("serving", "deploying") for v in m["versions"]):
            teacher.request("DELETE", f"/workspaces/{ws}/models/{m['name']}")


def training_rows() -> list[list[float]]:
    return [[float(r[f]) for f in FEATURES] for r in csv.DictReader(io.StringIO(IRIS.decode()))]


@pytest.mark.timeout(900)
def test_deploy_try_monitor_and_alert_from_the_portal(portal: Portal, trained: Trained, tab, browser: Browser) -> None:
    page, errors = tab.page, tab.errors
    ws, t = trained.ws, trained.client
    sign_in(page, portal.url, trained.token)

    # the models page before anything is deployed says how to deploy, in words
    page.goto(f"{portal.url}/w/{ws}")
    page.get_by_role("link", name="Models").click()
    page.wait_for_url(f"**/w/{ws}/models")
    expect(page.locator("#models-table tbody")).to_contain_text("No models yet: open a finished run")

    # deploy from the run's outputs
    page.goto(f"{portal.url}/w/{ws}/runs/{trained.run_id}")
    deploy = page.get_by_role("button", name="Deploy model.joblib as a model")
    expect(deploy).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Deploy metrics.json as a model")).to_have_count(0)  # not a model file
    deploy.click()
    expect(page.get_by_label("Model name")).to_have_value("model")  # from the file's name
    page.get_by_label("Model name").fill("iris")
    page.locator("#deploy-form").get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator("#deployed")).to_contain_text("version 1 of model iris")
    shot(page, "01-run-deploy")
    page.locator("#deployed").get_by_role("link").click()
    page.wait_for_url(f"**/w/{ws}/models/iris")

    # the version serves; its provenance: run, environment version, image digest, file
    versions = page.locator("#versions-table tbody")
    expect(versions).to_contain_text("serving", timeout=180_000)
    row = versions.locator("tr").first
    expect(row).to_contain_text("v1")
    expect(row).to_contain_text("sk v1")
    expect(row).to_contain_text("model.joblib")
    expect(row.get_by_role("link", name=trained.run_id[:8])).to_have_attribute("href", f"/w/{ws}/runs/{trained.run_id}")
    digest = t.get(f"/workspaces/{ws}/models/iris")["versions"][0]["image"].split("@sha256:")[1]
    expect(row).to_contain_text(digest[:12])
    expect(page.locator("#model-details")).to_contain_text(f"/serve/{ws}/iris/v2/models/iris")

    # a key: the secret is shown once, and filled into Try it
    page.get_by_label("What it is for").fill("portal test")
    page.get_by_role("button", name="Create a key").click()
    expect(page.get_by_label("New key")).to_have_value(re.compile(r"^rlm_"))
    secret = page.get_by_label("New key").input_value()
    assert secret.startswith("rlm_"), secret
    expect(page.get_by_label("Model API key (optional)")).to_have_value(secret)
    keys = page.locator("#keys-table tbody")
    expect(keys).to_contain_text("portal test")
    expect(keys).to_contain_text("active")
    assert secret not in keys.inner_text()  # the list shows only the prefix

    # Try it: rows as JSON, answered by the model's address with the key
    page.get_by_label(re.compile("Rows to predict")).fill("[[5.9, 3.0, 4.2, 1.3]]")
    page.get_by_role("button", name="Predict").click()
    result = page.locator("#try-result")
    expect(result).to_contain_text("Predicted:")
    expect(result).to_contain_text(re.compile(r"setosa|versicolor|virginica"))
    expect(result).to_contain_text("version 1")

    # traffic: 40 rows like the training data, then 40 with three features shifted
    rng = random.Random(15)
    rows = training_rows()
    normal = [rng.choice(rows) for _ in range(40)]
    shifted = [[r[0] + 3, r[1], r[2] + 3, r[3] + 2] for r in (rng.choice(rows) for _ in range(40))]
    with httpx.Client(base_url=portal.url, timeout=60, headers={"Authorization": f"Bearer {secret}"}) as http:
        for batch in (normal[:20], normal[20:], shifted[:20], shifted[20:]):
            r = http.post(f"/serve/{ws}/iris/v2/models/iris/predict", json={"rows": batch})
            assert r.status_code == 200, r.text
    sent = 1 + len(normal) + len(shifted)
    # the gateway writes collected traffic every few seconds: ask for passes until all of it is in
    deadline = time.monotonic() + 60
    while True:
        report = t.post(f"/workspaces/{ws}/models/iris/monitoring")
        if sum(w["count"] for w in report["windows"]) >= sent:
            break
        assert time.monotonic() < deadline, report["windows"]
        time.sleep(1)
    assert report["reference"] == {"dataset": "iris-train.csv", "rows": 120}, report["reference"]
    assert report["alerts"] and report["alerts"][0]["kind"] == "drift", report["alerts"]

    # the page's own "Check now" shows the report: charts, drift, the banner
    page.get_by_role("button", name="Check now").click()
    banner = page.locator("#model-alerts .alert-banner")
    expect(banner).to_contain_text("Input drift detected in the hour from")
    expect(banner).to_contain_text(re.compile(r"\d of 4 features drifted"))
    figures = page.locator("#monitoring figure[data-feature]")
    expect(figures).to_have_count(4)
    for i in range(4):
        chart = figures.nth(i).locator("svg")
        assert chart.locator("[data-series]").count() == 2  # the requests' mean and the training data's
        assert chart.locator("[data-series='mean'] circle").count() == len(report["windows"])
        assert chart.locator("[data-band]").count() == 1
    bars = page.locator("#class-shares svg rect[data-bar]")
    expected_bars = sum(1 for p in report["predictions"] for v in p["class_shares"].values() if v > 0)
    assert expected_bars >= 2
    expect(bars).to_have_count(expected_bars)
    drift_rows = page.locator("#drift-table tbody tr")
    expect(drift_rows).to_have_count(len(report["windows"]))
    last = report["windows"][-1]["drift"]
    drifted = [f["feature"] for f in last["features"] if f["drifted"]]
    assert "petal_length" in drifted, last
    expect(drift_rows.first).to_contain_text("drifted")
    expect(drift_rows.first).to_contain_text("Kolmogorov")
    for feature in drifted:
        expect(drift_rows.first).to_contain_text(feature)
    expect(page.locator("#no-labels")).to_contain_text("No true labels yet")
    check_page(page, errors, "models-laptop-model")
    shot(page, "02-model-laptop")

    # the workspace's models page and the activity log name it
    page.get_by_role("link", name="Models", exact=True).click()
    page.wait_for_url(f"**/w/{ws}/models")
    listed = page.locator("#models-table tbody tr").first
    expect(listed).to_contain_text("version 1 of 1")
    expect(listed).to_contain_text("serving")
    expect(listed).to_contain_text(f"/serve/{ws}/iris/v2/models/iris")
    check_page(page, errors, "models-laptop-list")
    shot(page, "03-models-laptop")
    page.goto(f"{portal.url}/w/{ws}/activity")
    expect(page.locator("#activity")).to_contain_text("model.drift_alert", timeout=30_000)
    expect(page.locator("#activity").get_by_role("link", name="model iris v1").first).to_be_visible()

    # at a phone's size: nothing scrolls sideways
    phone = browser.new_context(viewport=PHONE)
    try:
        small = phone.new_page()
        phone_errors: list[str] = []
        small.on("pageerror", lambda exc: phone_errors.append(str(exc)))
        sign_in(small, portal.url, trained.token)
        small.goto(f"{portal.url}/w/{ws}/models/iris")
        expect(small.locator("#model-alerts .alert-banner")).to_be_visible()
        expect(small.locator("#monitoring figure[data-feature]")).to_have_count(4)
        check_page(small, phone_errors, "models-phone-model")
        shot(small, "04-model-phone")
        small.goto(f"{portal.url}/w/{ws}/models")
        check_page(small, phone_errors, "models-phone-list")
        shot(small, "05-models-phone")
    finally:
        phone.close()

    # a second version (deployed through the API: the button is tested above): make it active, roll back
    t.post(f"/workspaces/{ws}/models", json={"run_id": trained.run_id, "artifact": "model.joblib", "name": "iris"},
           expect=(202,))
    page.goto(f"{portal.url}/w/{ws}/models/iris")
    newest = versions.locator("tr").first
    expect(newest).to_contain_text("v2")
    expect(newest).to_contain_text("serving", timeout=180_000)
    newest.get_by_role("button", name="Make active").click()
    expect(page.locator("#flash")).to_contain_text("Version 2 now answers")
    expect(page.locator("#model-details")).to_contain_text("version 2")
    older = versions.locator("tr").nth(1)
    older.get_by_role("button", name="Roll back to v1").click()
    expect(page.locator("#flash")).to_contain_text("Version 1 now answers")
    expect(versions.locator("tr").nth(1)).to_contain_text("active")
    assert t.get(f"/workspaces/{ws}/models/iris")["active_version"] == 1
    shot(page, "06-model-rolled-back")

    # revoke the key: Try it is refused with the proxy's words; then stop the model
    page.get_by_role("button", name=re.compile("Revoke the key starting rlm_")).click()
    expect(page.locator("#keys-table tbody")).to_contain_text("revoked")
    page.get_by_label("Model API key (optional)").fill(secret)
    page.get_by_role("button", name="Predict").click()
    expect(result).to_contain_text("401: the model API key is unknown or has been revoked")
    # no key: the signed-in person calls it by the portal's session (cookie + CSRF header)
    page.get_by_label("Model API key (optional)").fill("")
    page.get_by_role("button", name="Predict").click()
    expect(result).to_contain_text("Predicted:")
    forged = page.request.post(f"{portal.url}/serve/{ws}/iris/v2/models/iris/predict",
                               data={"rows": [[5.9, 3.0, 4.2, 1.3]]})  # the cookie alone, as another site's form
    assert forged.status == 403 and "CSRF" in forged.json()["error"], forged.text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop serving this model").click()
    expect(versions).to_contain_text("stopped", timeout=60_000)
    expect(page.get_by_role("button", name="Stop serving this model")).to_be_hidden()
    shot(page, "07-model-stopped")
    assert not errors, errors
    assert not tab.offsite, tab.offsite
