"""Registering an LMS (API and portal page), and what the tool tells the LMS: its JWKS (public only), the
Canvas developer-key configuration and the values Moodle asks for."""

from __future__ import annotations

import re
import uuid

import httpx
from reprolab_cli.client import ApiError

from .conftest import LtiLab


def test_registration_api_validates_and_is_for_platform_admins(lti_lab: LtiLab) -> None:
    admin = lti_lab.admin
    listed = admin.get("/lti/platforms")["items"]
    assert lti_lab.lms.issuer in [p["issuer"] for p in listed]
    # a second registration of the same issuer and client id is a conflict, a broken one a 422 saying what to fix
    try:
        admin.post("/lti/platforms", json=lti_lab.lms.registration())
        raise AssertionError("registered twice")
    except ApiError as exc:
        assert exc.status == 409
    bad = {**lti_lab.lms.registration(), "client_id": "other", "jwks_url": "ftp://x", "deployment_ids": [""]}
    r = httpx.post(f"{lti_lab.url}/api/v1/lti/platforms", json=bad,
                   headers={"Authorization": f"Bearer {lti_lab.platform.admin_token()}"})
    assert r.status_code == 422 and "jwks_url" in r.text and "deployment_ids" in r.text, r.text
    token = admin.post("/users", json={"username": f"plain-{uuid.uuid4().hex[:6]}"})["token"]
    r = httpx.get(f"{lti_lab.url}/api/v1/lti/platforms", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    # deployments can be changed; the change is what launches are checked against
    pid = lti_lab.platform_id
    changed = admin.request("PATCH", f"/lti/platforms/{pid}",
                            json={"deployment_ids": [lti_lab.lms.deployment_id, "dep-2"]})
    assert changed["deployment_ids"] == [lti_lab.lms.deployment_id, "dep-2"]
    admin.request("PATCH", f"/lti/platforms/{pid}", json={"deployment_ids": [lti_lab.lms.deployment_id]})


def test_the_tool_publishes_only_its_public_key_and_the_lms_values(lti_lab: LtiLab) -> None:
    jwks = httpx.get(f"{lti_lab.url}/lti/jwks").json()
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # never the private half
    values = httpx.get(f"{lti_lab.url}/api/v1/lti/tool").json()
    assert values["login_url"] == f"{lti_lab.url}/lti/login" and values["jwks_url"] == f"{lti_lab.url}/lti/jwks"
    assert values["jwks"] == jwks
    canvas = httpx.get(f"{lti_lab.url}/lti/canvas.json").json()
    assert canvas["oidc_initiation_url"] == values["login_url"] and canvas["public_jwk_url"] == values["jwks_url"]
    assert canvas["target_link_uri"] == f"{lti_lab.url}/lti/launch"
    placements = {p["placement"]: p for p in canvas["extensions"][0]["settings"]["placements"]}
    assert placements["assignment_selection"]["message_type"] == "LtiDeepLinkingRequest"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in canvas["scopes"]


def test_the_portal_page_registers_an_lms(lti_lab: LtiLab) -> None:
    with httpx.Client(base_url=lti_lab.url) as browser:
        assert browser.get("/lti/setup").status_code == 303
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/").text).group(1)
        signed = browser.post("/login", data={"token": lti_lab.platform.admin_token(), "csrf": csrf, "next": "/"})
        assert signed.status_code == 303, signed.text
        page = browser.get("/lti/setup")
        assert page.status_code == 200 and f"{lti_lab.url}/lti/login" in page.text and lti_lab.lms.issuer in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        form = {"csrf": csrf, "title": "Moodle", "issuer": "https://moodle.uni.example", "client_id": "abc",
                "auth_login_url": "https://moodle.uni.example/mod/lti/auth.php",
                "token_url": "https://moodle.uni.example/mod/lti/token.php",
                "jwks_url": "https://moodle.uni.example/mod/lti/certs.php", "deployment_ids": "1, 2"}
        made = browser.post("/lti/setup", data=form)
        assert made.status_code == 201 and "Registered Moodle" in made.text, made.text[:500]
        broken = browser.post("/lti/setup", data={**form, "client_id": "abc2", "token_url": "nope"})
        assert broken.status_code == 422 and "token_url" in broken.text
    registered = {p["issuer"]: p for p in lti_lab.admin.get("/lti/platforms")["items"]}
    assert registered["https://moodle.uni.example"]["deployment_ids"] == ["1", "2"]
    lti_lab.admin.request("DELETE", f"/lti/platforms/{registered['https://moodle.uni.example']['id']}",
                          expect=(204,))
