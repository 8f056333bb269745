"""People on the whole platform (SQLite and PostgreSQL): platform admins disable, enable and promote accounts;
instructors see members with how they joined, change roles, remove people and add a class from a CSV list
(existing accounts added, invite links for the others, bad lines reported beside the good ones, a malformed
file refused naming its line, a dry run changing nothing)."""

from __future__ import annotations

import json
import time
import uuid

import httpx
from reprolab_cli.client import ApiError


def _problem(client, method: str, path: str, status: int, **kw) -> dict:
    r = client.response(method, path, expect=(status,), **kw)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    return r.json()


def test_admins_disable_enable_and_promote_accounts(running) -> None:
    name, person = running.user("acct")
    other, other_client = running.user("acct-other")
    accounts = {u["username"]: u for u in running.admin.get("/users/accounts")["items"]}
    assert accounts[name]["auth"] == ["token"] and accounts[name]["disabled"] is False
    assert accounts["admin"]["platform_admin"] is True

    # only platform admins list or change accounts; nothing is revealed to others
    assert _problem(person, "GET", "/users/accounts", 403)["status"] == 403
    assert _problem(person, "PATCH", f"/users/{other}", 403, json={"disabled": True})["status"] == 403

    changed = running.admin.request("PATCH", f"/users/{name}", json={"disabled": True})
    assert changed["disabled"] is True
    # the token stops working at once (no cached copy accepts it)
    with_token = httpx.get(f"{running.platform.url}/api/v1/me",
                           headers={"Authorization": person.http.headers["Authorization"]})
    assert with_token.status_code == 401
    assert {u["username"]: u for u in running.admin.get("/users/accounts")["items"]}[name]["disabled"] is True
    running.admin.request("PATCH", f"/users/{name}", json={"disabled": False})
    assert person.get("/me")["username"] == name

    # make and unmake a platform admin: the new admin can list accounts, then cannot
    assert running.admin.request("PATCH", f"/users/{other}", json={"platform_admin": True})["platform_admin"]
    assert any(u["username"] == name for u in other_client.get("/users/accounts")["items"])
    # an admin cannot disable or demote themself (they would lock themselves out)
    detail = _problem(other_client, "PATCH", f"/users/{other}", 409, json={"platform_admin": False})["detail"]
    assert "yourself" in detail
    running.admin.request("PATCH", f"/users/{other}", json={"platform_admin": False})
    assert _problem(other_client, "GET", "/users/accounts", 403)["status"] == 403
    assert _problem(running.admin, "PATCH", "/users/nobody-" + uuid.uuid4().hex[:6], 404,
                    json={"disabled": True})["status"] == 404

    # the accounts log records each change, by whom (events travel by the outbox, NATS and the audit service)
    ids = {accounts[name]["id"], accounts[other]["id"]}
    deadline = time.monotonic() + 20
    want = {"account.disabled", "account.enabled", "account.admin_granted", "account.admin_revoked"}
    while True:
        items = running.admin.get("/accounts/activity", params={"limit": 1000})["items"]
        kinds = {e["event"]["type"] for e in items if e["event"]["subject"].removeprefix("users/") in ids}
        if want <= kinds or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert want <= kinds, kinds
    admin_id = running.admin.get("/me")["id"]
    disabled = [e for e in items if e["event"]["type"] == "account.disabled"
                and e["event"]["subject"] == f"users/{accounts[name]['id']}"]
    assert disabled and all(admin_id in json.dumps(e["event"]["actor"]) for e in disabled), disabled


def test_members_role_change_removal_and_where_they_came_from(course, running) -> None:
    ws, (iname, instructor), (sname, student) = course
    people = {p["username"]: p for p in instructor.get(f"/workspaces/{ws}/people")["items"]}
    assert people[iname]["role"] == "admin" and people[sname] == {**people[sname], "role": "student",
                                                                   "source": "hand"}
    # a student sees no member list
    assert _problem(student, "GET", f"/workspaces/{ws}/people", 403)["status"] == 403

    # someone who joins by an invite link shows it
    jname, joiner = running.user("joiner")
    url = instructor.post(f"/workspaces/{ws}/invites", json={"role": "student"})["url"]
    joiner.post(f"/invites/{url.rsplit('/', 1)[1]}/accept")
    people = {p["username"]: p for p in instructor.get(f"/workspaces/{ws}/people")["items"]}
    assert people[jname]["source"] == "invite"

    instructor.request("PATCH", f"/workspaces/{ws}/members/{jname}", json={"role": "instructor"})
    assert {p["username"]: p["role"] for p in instructor.get(f"/workspaces/{ws}/people")["items"]}[jname] == \
        "instructor"
    instructor.request("DELETE", f"/workspaces/{ws}/members/{jname}", expect=(204,))
    assert jname not in {p["username"] for p in instructor.get(f"/workspaces/{ws}/people")["items"]}
    # a student cannot change or remove anyone
    assert _problem(student, "DELETE", f"/workspaces/{ws}/members/{iname}", 403)["status"] == 403


def test_a_class_list_adds_accounts_invites_the_rest_and_reports_bad_lines(course, running) -> None:
    ws, (iname, instructor), (sname, student) = course
    a, _ = running.user("csv-a")
    b, b_client = running.user("csv-b")
    new_mail = f"new-{uuid.uuid4().hex[:6]}@example.edu"
    text = ("username,email,name,role\n"
            f"{a},,Ada A,student\n"
            f"{b},,Bo B,instructor\n"
            f",{new_mail},\"Newcomer, Nina\",\n"
            f"{sname},,Already Here,student\n"
            ",not-an-address,Bad Mail,student\n"
            f"{a},,Ada again,student\n"
            f",x-{new_mail},Odd Role,professor\n")

    preview = instructor.post(f"/workspaces/{ws}/class-list", json={"csv": text, "dry_run": True})
    assert preview["dry_run"] is True
    assert (preview["added"], preview["invited"], preview["already_members"], preview["errors"]) == (2, 1, 1, 3)
    by_line = {r["line"]: r for r in preview["rows"]}
    assert by_line[6]["action"] == "error" and "not an e-mail" in by_line[6]["detail"]
    assert by_line[7]["action"] == "error" and "line 2" in by_line[7]["detail"]
    assert by_line[8]["action"] == "error" and "professor" in by_line[8]["detail"]
    assert not any(r["invite_url"] for r in preview["rows"])
    # the dry run changed nothing
    members = {p["username"] for p in instructor.get(f"/workspaces/{ws}/people")["items"]}
    assert a not in members and b not in members
    assert instructor.get(f"/workspaces/{ws}/invites")["items"] == []

    done = instructor.post(f"/workspaces/{ws}/class-list", json={"csv": text})
    assert (done["added"], done["invited"], done["already_members"], done["errors"]) == (2, 1, 1, 3)
    people = {p["username"]: p for p in instructor.get(f"/workspaces/{ws}/people")["items"]}
    assert people[a]["role"] == "student" and people[a]["source"] == "csv"
    assert people[b]["role"] == "instructor" and people[b]["source"] == "csv"
    assert b_client.get(f"/workspaces/{ws}")["caller_role"] == "instructor"
    invite = next(r for r in done["rows"] if r["action"] == "invite")
    assert invite["who"] == new_mail and "/invite/rin_" in invite["invite_url"]
    listed = instructor.get(f"/workspaces/{ws}/invites")["items"]
    assert [(i["role"], i["max_uses"], i["state"]) for i in listed] == [("student", 1, "open")]

    # the newcomer follows the link (here with an account made for them) and shows as joined by invite
    nname, newcomer = running.user("nina")
    newcomer.post(f"/invites/{invite['invite_url'].rsplit('/', 1)[1]}/accept")
    assert {p["username"]: p["source"] for p in instructor.get(f"/workspaces/{ws}/people")["items"]}[nname] == "invite"

    # students may not add a class; only a workspace admin may add admins (the instructor b is not one)
    assert _problem(student, "POST", f"/workspaces/{ws}/class-list", 403, json={"csv": text})["status"] == 403
    c, _ = running.user("csv-c")
    report = b_client.post(f"/workspaces/{ws}/class-list", json={"csv": f"username,role\n{c},admin\n"})
    assert report["errors"] == 1 and "only a workspace admin" in report["rows"][0]["detail"]


def test_a_malformed_class_list_is_refused_naming_its_line(course) -> None:
    ws, (_, instructor), _ = course
    cases = {
        "": "empty",  # refused by the class-list reader, not by a length rule
        "first,second\nx,y\n": "line 1",
        "username,name\nann,Ann\nbob,Bob,extra,fields\n": "line 3",
        'username,name\nann,"Ann\nbob,Bob\n': "line",
        "username,role\n": "nobody",
    }
    for text, needle in cases.items():
        try:
            instructor.post(f"/workspaces/{ws}/class-list", json={"csv": text})
        except ApiError as exc:
            assert exc.status == 422, (text, exc)
            assert needle in str(exc), (text, str(exc))
        else:
            raise AssertionError(f"accepted {text!r}")
