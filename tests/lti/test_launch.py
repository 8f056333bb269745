"""LTI 1.3 launches from the FAKE LMS (fake_lms.py) into the real platform: the course becomes a workspace on
the first instructor launch, students join it, people are linked by (registration, sub) and signed in with
cookies that work in the LMS's frame; every refused launch is a 4xx page naming the failed check, and
lands in the platform's accounts log."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import LmsBrowser, LtiLab, refusal
from .fake_lms import CLAIM, INSTRUCTOR, LEARNER, REMOVE, TA


def course(lab: LtiLab, label: str = "DS 101"):
    cid = f"course-{uuid.uuid4().hex[:8]}"
    return lab.lms.course(cid, label, f"Data Science {cid}")


def sub() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def launched(response: httpx.Response) -> dict[str, str]:
    import re

    assert response.status_code == 200, response.text[:800]
    tag = re.search(r'id="lti-launched" data-workspace="([^"]*)" data-role="([^"]*)"\s+data-username="([^"]*)"',
                    response.text)
    assert tag, response.text[:800]
    return {"workspace": tag.group(1), "role": tag.group(2), "username": tag.group(3)}


def test_instructor_launch_creates_the_workspace_and_students_join_it(lti_lab: LtiLab) -> None:
    lms = lti_lab.lms
    c = course(lti_lab)
    teacher, student, ta = sub(), sub(), sub()
    lms.enrol(c, teacher, "Ada Lovelace", [INSTRUCTOR])
    lms.enrol(c, student, "Grace Hopper", [LEARNER])
    lms.enrol(c, ta, "Alan Turing", [TA])

    # a student first: no workspace yet, a clear refusal
    early = LmsBrowser(lti_lab)
    response, _ = early.launch(lms.prepare(c, student))
    assert response.status_code == 409 and refusal(response) == "course"
    assert "your instructor opens Reprolab" in response.text

    t = LmsBrowser(lti_lab)
    response, _ = t.launch(lms.prepare(c, teacher))
    first = launched(response)
    assert first["role"] == "instructor" and first["workspace"].startswith("ds-101-")
    assert first["username"].startswith("ada-lovelace-") or first["username"].startswith(teacher[:5])
    assert "created now" in response.text
    # signed in with cookies the browser sends inside the LMS's iframe (a cross-site frame)
    session_cookie = t.attributes["reprolab_session"].lower()
    assert "samesite=none" in session_cookie and "secure" in session_cookie and "httponly" in session_cookie
    assert "samesite=none" in t.attributes["reprolab_lti_browser"].lower()
    # the page may be framed by the LMS, and only by it
    csp = response.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {lms.url}" in csp
    ws = first["workspace"]
    me = t.api("GET", "/me")
    assert me.status_code == 200 and me.json()["username"] == first["username"], me.text
    assert t.api("GET", f"/workspaces/{ws}").json()["caller_role"] == "admin"

    s = LmsBrowser(lti_lab)
    joined = launched(s.launch(lms.prepare(c, student))[0])
    assert joined == {"workspace": ws, "role": "student", "username": joined["username"]}
    assert s.api("GET", f"/workspaces/{ws}").json()["caller_role"] == "student"
    assert launched(LmsBrowser(lti_lab).launch(lms.prepare(c, ta))[0])["role"] == "instructor"

    # the same person again (another browser): the same account, the same workspace
    again = launched(LmsBrowser(lti_lab).launch(lms.prepare(c, teacher))[0])
    assert again == {**first, "workspace": ws}
    assert "created now" not in again
    members = {m["username"]: m["role"] for m in lti_lab.admin.get(f"/workspaces/{ws}/members")["items"]}
    assert members == {first["username"]: "admin", joined["username"]: "student",
                       launched_name(lti_lab, c, ta): "instructor"}

    # logged: the launches in the course's log, the sign-ins in the accounts log
    entries = lti_lab.activity(f"/workspaces/{ws}/activity", type="lti.launched", want=5)
    assert len(entries) >= 4, entries
    assert {e["event"]["details"]["role"] for e in entries} == {"instructor", "student"}
    signins = lti_lab.activity("/accounts/activity", type="account.signed_in", want=1,
                               match=lambda e: e["event"]["details"].get("username") == first["username"])
    assert signins and signins[0]["event"]["details"]["method"] == "lti"
    linked = lti_lab.activity("/accounts/activity", type="lti.account_linked", want=1,
                              match=lambda e: e["event"]["details"].get("lms_subject") == teacher)
    assert len(linked) == 1 and linked[0]["event"]["details"]["issuer"] == lms.issuer  # linked once, reused after
    made = lti_lab.activity(f"/workspaces/{ws}/activity", type="lti.course_linked", want=1)
    assert made[0]["event"]["details"]["context_id"] == c.id and made[0]["actor_name"] == first["username"]


def launched_name(lab: LtiLab, c, person: str) -> str:
    return launched(LmsBrowser(lab).launch(lab.lms.prepare(c, person))[0])["username"]


DEPLOYMENT = CLAIM + "deployment_id"


def _now() -> int:
    return int(time.time())


# (what is wrong, how the FAKE LMS makes it wrong, the check that must refuse it)
NEGATIVE = {
    "wrong aud": (lambda lms: {"tamper": {"aud": "another-tool"}}, "aud"),
    "several audiences without azp": (lambda lms: {"tamper": {"aud": [lms.client_id, "another-tool"]}}, "azp"),
    "azp of another client": (lambda lms: {"tamper": {"aud": [lms.client_id, "x"], "azp": "x"}}, "azp"),
    "expired": (lambda lms: {"tamper": {"exp": _now() - 120, "iat": _now() - 200}}, "exp"),
    "issued in the future": (lambda lms: {"tamper": {"iat": _now() + 600, "exp": _now() + 900}}, "iat"),
    "issued too long ago": (lambda lms: {"tamper": {"iat": _now() - 3600, "exp": _now() + 300}}, "iat"),
    "unknown deployment": (lambda lms: {"tamper": {DEPLOYMENT: "dep-unregistered"}}, "deployment_id"),
    "version 1.1": (lambda lms: {"tamper": {CLAIM + "version": "1.1"}}, "version"),
    "kid not in the JWKS": (lambda lms: {"key": "rogue", "kid": "rogue-1"}, "kid"),
    "forged signature": (lambda lms: {"key": "rogue", "kid": "lms-1"}, "signature"),
    "HS256 instead of RS256": (lambda lms: {"key": "hs256", "kid": "lms-1"}, "alg"),
    "no roles": (lambda lms: {"tamper": {CLAIM + "roles": REMOVE}}, "roles"),
    "no course": (lambda lms: {"tamper": {CLAIM + "context": REMOVE}}, "context"),
    "another issuer": (lambda lms: {"tamper": {"iss": "https://lms.evil.example"}}, "iss"),
    "target_link_uri elsewhere": (lambda lms: {"tamper": {CLAIM + "target_link_uri": "https://evil.example/lti/x"}},
                                  "target_link_uri"),
    "unknown message type": (lambda lms: {"tamper": {CLAIM + "message_type": "LtiSubmissionReviewRequest"}},
                             "message_type"),
    "no resource link": (lambda lms: {"tamper": {CLAIM + "resource_link": REMOVE}}, "resource_link"),
    "no nonce": (lambda lms: {"tamper": {"nonce": REMOVE}}, "claims"),
}


@pytest.fixture(scope="module")
def taught(lti_lab: LtiLab):
    """A course whose workspace exists (its instructor launched once)."""
    c = course(lti_lab, "Refusals")
    teacher = sub()
    lti_lab.lms.enrol(c, teacher, "Teacher", [INSTRUCTOR])
    launched(LmsBrowser(lti_lab).launch(lti_lab.lms.prepare(c, teacher))[0])
    return c


def assert_refused_and_logged(lab: LtiLab, response: httpx.Response, check: str, who: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    assert refusal(response) == check, response.text[:800]
    assert "reprolab_session" not in response.headers.get("set-cookie", "")
    logged = lab.activity("/accounts/activity", type="lti.launch_refused", want=1,
                          match=lambda e: e["event"]["details"].get("lms_subject") == who)
    assert logged, f"no lti.launch_refused entry for {who}"
    details = logged[-1]["event"]["details"]
    assert details["reason"].startswith(f"{check}:") and details["outcome"] == "refused"
    assert "eyJ" not in str(details)  # never a JWT (the id_token) in the log


@pytest.mark.parametrize("case", list(NEGATIVE))
def test_a_bad_launch_is_refused_with_a_page_and_logged(lti_lab: LtiLab, taught, case: str) -> None:
    make, check = NEGATIVE[case]
    who = sub()
    lti_lab.lms.enrol(taught, who, "Mallory", [LEARNER])
    response, _ = LmsBrowser(lti_lab).launch(lti_lab.lms.prepare(taught, who, **make(lti_lab.lms)))
    assert_refused_and_logged(lti_lab, response, check, who)


def test_a_replayed_token_is_refused(lti_lab: LtiLab, taught) -> None:
    who = sub()
    lti_lab.lms.enrol(taught, who, "Replay", [LEARNER])
    b = LmsBrowser(lti_lab)
    first, fields = b.launch(lti_lab.lms.prepare(taught, who))
    launched(first)
    # the same post again: its login (state) is used up
    again = b.post_launch(f"{lti_lab.url}/lti/launch", fields)
    assert again.status_code == 403 and refusal(again) == "state"
    # the same id_token inside a fresh login: its nonce is not that login's
    action, fresh = b.authorize(b.login(lti_lab.lms.prepare(taught, who)))
    replay = b.post_launch(action, {"id_token": fields["id_token"], "state": fresh["state"]})
    assert_refused_and_logged(lti_lab, replay, "nonce", who)


def test_a_launch_from_another_browser_is_refused(lti_lab: LtiLab, taught) -> None:
    """``state`` is bound to the browser that started the login (an attacker's login cannot be finished in a
    victim's browser, nor a victim's token posted from elsewhere)."""
    who = sub()
    lti_lab.lms.enrol(taught, who, "Victim", [LEARNER])
    started = LmsBrowser(lti_lab)
    action, fields = started.authorize(started.login(lti_lab.lms.prepare(taught, who)))
    other = LmsBrowser(lti_lab)
    other.cookies["reprolab_lti_browser"] = "not-the-same-browser"
    refused = other.post_launch(action, fields)
    assert refused.status_code == 403 and refusal(refused) == "state"
    assert "another browser" in refused.text


def test_rotated_keys_are_refetched_once(lti_lab: LtiLab, taught) -> None:
    """A kid the gateway has not seen makes it refetch the LMS's JWKS (keys rotate); one it still cannot find
    is refused without a second fetch."""
    lms = lti_lab.lms
    who = sub()
    lms.enrol(taught, who, "Rotated", [LEARNER])
    kid = lms.rotate()
    before = lms.jwks_requests
    launched(LmsBrowser(lti_lab).launch(lms.prepare(taught, who, kid=kid))[0])
    assert lms.jwks_requests == before + 1
    refused, _ = LmsBrowser(lti_lab).launch(lms.prepare(taught, who, kid="never-published", key="rogue"))
    assert refusal(refused) == "kid" and lms.jwks_requests == before + 2


def test_an_lms_whose_keys_do_not_answer_is_a_clear_page_not_a_hang(lti_lab: LtiLab, taught) -> None:
    """The JWKS refetch has a timeout (REPROLAB_GATEWAY_LTI_HTTP_TIMEOUT_SECONDS, 3 s here)."""
    lms = lti_lab.lms
    who = sub()
    lms.enrol(taught, who, "Slow", [LEARNER])
    kid = lms.rotate()  # a new key: the gateway must fetch the keys again
    lms.slow_jwks = 6
    try:
        started = time.monotonic()
        response, _ = LmsBrowser(lti_lab).launch(lms.prepare(taught, who, kid=kid))
        took = time.monotonic() - started
    finally:
        lms.slow_jwks = 0
    assert response.status_code == 502 and refusal(response) == "jwks" and "could not be fetched" in response.text
    assert took < 6, took


def test_two_posts_of_one_launch_racing_sign_in_once(lti_lab: LtiLab, taught) -> None:
    who = sub()
    lti_lab.lms.enrol(taught, who, "Racer", [LEARNER])
    b = LmsBrowser(lti_lab)
    action, fields = b.authorize(b.login(lti_lab.lms.prepare(taught, who)))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: b.post_launch(action, fields), range(4)))
    assert sorted(r.status_code for r in results) == [200, 403, 403, 403]


def test_login_initiation_refusals(lti_lab: LtiLab) -> None:
    b = LmsBrowser(lti_lab)
    params = {"iss": "https://unknown-lms.example", "login_hint": "x",
              "target_link_uri": f"{lti_lab.url}/lti/launch"}
    r = b.send("POST", f"{lti_lab.url}/lti/login", data=params)
    assert r.status_code == 403 and refusal(r) == "login" and "is registered here" in r.text
    lms = lti_lab.lms
    c = course(lti_lab)
    who = sub()
    lms.enrol(c, who, "X", [LEARNER])
    r = b.login(lms.prepare(c, who), target="https://evil.example/lti/launch")
    assert r.status_code == 403 and refusal(r) == "target_link_uri"
    r = b.login(lms.prepare(c, who), target=f"{lti_lab.url}.evil.example/lti/launch")
    assert r.status_code == 403 and refusal(r) == "target_link_uri"
    r = b.send("POST", f"{lti_lab.url}/lti/login", data={**lms.login_params(lms.prepare(c, who)),
                                                        "lti_deployment_id": "dep-nope"})
    assert r.status_code == 403 and refusal(r) == "deployment_id"
    r = b.send("POST", f"{lti_lab.url}/lti/launch", data={"id_token": "not-a-jwt", "state": "x"})
    assert r.status_code == 400 and refusal(r) == "id_token"
