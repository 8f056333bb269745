"""The registry service end to end: a real subprocess over a real nats-server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.aio.client import Client
from reprolab.v1 import common_pb2, registry_pb2
from reprolab_common.errors import ProblemError
from reprolab_common.nats import call
from reprolab_common.subjects import Registry

from ._support import User, check_events, collect_events, spec_json

pytestmark = pytest.mark.usefixtures("registry")

ROLE = common_pb2


async def setup_course(u: dict[str, User], ws: str) -> None:
    """alice admin, carol instructor, dave and erin students; bob is not a member."""
    await u["alice"](Registry.WORKSPACE_CREATE, slug=ws, title="Course")
    await u["alice"](
        Registry.MEMBER_ADD, workspace=ws, user_id="id-carol", username="carol", role=ROLE.ROLE_INSTRUCTOR
    )
    for student in ("dave", "erin"):
        await u["carol"](
            Registry.MEMBER_ADD,
            workspace=ws,
            user_id=f"id-{student}",
            username=student,
            role=ROLE.ROLE_STUDENT,
        )


async def test_workspaces_and_members(users: dict[str, User], ws: str, nc: Client) -> None:
    info = json.loads((await nc.request("$SRV.INFO.registry", b"", timeout=2)).data)
    assert {e["subject"] for e in info["endpoints"]} == {s.value for s in Registry}

    alice, bob, carol, dave, root = (users[n] for n in ("alice", "bob", "carol", "dave", "root"))
    created = await alice(Registry.WORKSPACE_CREATE, slug=ws, title="Data science 101")
    assert (created.slug, created.title, created.caller_role, created.caller_is_member) == (
        ws,
        "Data science 101",
        ROLE.ROLE_ADMIN,
        True,
    )
    assert created.created_at.seconds > 0

    await alice.fails(409, Registry.WORKSPACE_CREATE, f"workspace '{ws}' already exists", slug=ws)
    bad = await alice.fails(
        422, Registry.WORKSPACE_CREATE, "slug", "not a valid workspace slug", slug="Bad Slug"
    )
    assert bad.errors == [("slug", bad.errors[0][1])]
    with pytest.raises(ProblemError) as anonymous:
        await call(
            nc,
            Registry.WORKSPACE_LIST.value,
            registry_pb2.ListWorkspacesRequest(),
            registry_pb2.WorkspaceList,
        )
    assert anonymous.value.status == 401

    # members: an admin adds an instructor, the instructor adds a student
    member = await alice(
        Registry.MEMBER_ADD, workspace=ws, user_id="id-carol", username="carol", role=ROLE.ROLE_INSTRUCTOR
    )
    assert (member.user_id, member.username, member.role) == ("id-carol", "carol", ROLE.ROLE_INSTRUCTOR)
    await carol(Registry.MEMBER_ADD, workspace=ws, user_id="id-dave", username="dave", role=ROLE.ROLE_STUDENT)
    await carol.fails(
        403,
        Registry.MEMBER_ADD,
        "only an admin",
        workspace=ws,
        user_id="id-x",
        username="x",
        role=ROLE.ROLE_ADMIN,
    )
    missing_role = await carol.fails(
        422, Registry.MEMBER_ADD, "role", workspace=ws, user_id="id-x", username="x"
    )
    assert missing_role.errors[0][0] == "role"
    await alice.fails(
        409,
        Registry.MEMBER_ADD,
        "already a member",
        workspace=ws,
        user_id="id-dave",
        username="dave",
        role=ROLE.ROLE_STUDENT,
    )
    await dave.fails(
        403,
        Registry.MEMBER_ADD,
        "requires the instructor or admin role",
        workspace=ws,
        user_id="id-y",
        username="y",
        role=ROLE.ROLE_STUDENT,
    )
    await bob.fails(
        404,
        Registry.MEMBER_ADD,
        f"workspace '{ws}' not found",
        workspace=ws,
        user_id="id-y",
        username="y",
        role=ROLE.ROLE_STUDENT,
    )

    listed = await carol(Registry.MEMBER_LIST, workspace=ws)
    assert [(m.username, m.role) for m in listed.items] == [
        ("alice", ROLE.ROLE_ADMIN),
        ("carol", ROLE.ROLE_INSTRUCTOR),
        ("dave", ROLE.ROLE_STUDENT),
    ]
    await dave.fails(403, Registry.MEMBER_LIST, "requires the instructor or admin role", workspace=ws)
    await bob.fails(404, Registry.MEMBER_LIST, f"workspace '{ws}' not found", workspace=ws)

    # visibility of the workspace itself
    got = await dave(Registry.WORKSPACE_GET, workspace=ws)
    assert (got.slug, got.caller_role, got.caller_is_member) == (ws, ROLE.ROLE_STUDENT, True)
    assert (await carol(Registry.WORKSPACE_GET, workspace=ws)).caller_role == ROLE.ROLE_INSTRUCTOR
    await bob.fails(404, Registry.WORKSPACE_GET, f"workspace '{ws}' not found", workspace=ws)
    await bob.fails(404, Registry.WORKSPACE_GET, "workspace 'nope-nope' not found", workspace="nope-nope")
    assert ws in [w.slug for w in (await dave(Registry.WORKSPACE_LIST)).items]
    assert ws not in [w.slug for w in (await bob(Registry.WORKSPACE_LIST)).items]
    as_root = await root(Registry.WORKSPACE_GET, workspace=ws)
    assert (as_root.caller_role, as_root.caller_is_member) == (ROLE.ROLE_ADMIN, False)
    root_list = {w.slug: w for w in (await root(Registry.WORKSPACE_LIST)).items}
    assert root_list[ws].caller_is_member is False and root_list[ws].caller_role == ROLE.ROLE_ADMIN
    # a platform admin manages workspaces it does not belong to
    await root(Registry.MEMBER_ADD, workspace=ws, user_id="id-erin", username="erin", role=ROLE.ROLE_ADMIN)
    assert len((await root(Registry.MEMBER_LIST, workspace=ws)).items) == 4

    events = check_events(
        await collect_events(nc, ws, 5),
        ["workspace.created", "member.added", "member.added", "member.added", "member.added"],
    )
    assert events[0].workspace_created.slug == ws and events[0].workspace_created.title == "Data science 101"
    assert events[0].subject == f"workspaces/{ws}" and events[0].actor.username == "alice"
    assert [(e.member_added.username, e.member_added.role) for e in events[1:]] == [
        ("alice", ROLE.ROLE_ADMIN),
        ("carol", ROLE.ROLE_INSTRUCTOR),
        ("dave", ROLE.ROLE_STUDENT),
        ("erin", ROLE.ROLE_ADMIN),
    ]
    assert events[2].subject == "members/id-carol" and events[4].actor.platform_admin


async def test_member_roles_change_and_members_leave(users: dict[str, User], ws: str, nc: Client) -> None:
    """Managers change roles and remove members; only an admin touches an admin; the last admin stays."""
    alice, bob, carol, dave = (users[n] for n in ("alice", "bob", "carol", "dave"))
    await setup_course(users, ws)

    changed = await carol(Registry.MEMBER_UPDATE, workspace=ws, user_id="id-dave", role=ROLE.ROLE_INSTRUCTOR)
    assert (changed.username, changed.role) == ("dave", ROLE.ROLE_INSTRUCTOR)
    same = await carol(Registry.MEMBER_UPDATE, workspace=ws, user_id="id-dave", role=ROLE.ROLE_INSTRUCTOR)
    assert same.role == ROLE.ROLE_INSTRUCTOR  # no change, no event
    await carol.fails(403, Registry.MEMBER_UPDATE, "only an admin", workspace=ws, user_id="id-dave",
                      role=ROLE.ROLE_ADMIN)
    await carol.fails(403, Registry.MEMBER_UPDATE, "only an admin", workspace=ws, user_id="id-alice",
                      role=ROLE.ROLE_STUDENT)
    await carol.fails(403, Registry.MEMBER_REMOVE, "only an admin", workspace=ws, user_id="id-alice")
    await users["erin"].fails(403, Registry.MEMBER_UPDATE, "requires the instructor or admin role",
                              workspace=ws, user_id="id-dave", role=ROLE.ROLE_STUDENT)
    await users["erin"].fails(403, Registry.MEMBER_REMOVE, "requires the instructor or admin role",
                              workspace=ws, user_id="id-dave")
    await bob.fails(404, Registry.MEMBER_REMOVE, f"workspace '{ws}' not found", workspace=ws, user_id="id-dave")
    await carol.fails(404, Registry.MEMBER_REMOVE, "no member 'id-bob'", workspace=ws, user_id="id-bob")
    missing = await carol.fails(422, Registry.MEMBER_UPDATE, "role", workspace=ws, user_id="id-dave")
    assert missing.errors[0][0] == "role"
    # the last admin can be neither demoted nor removed, by anyone
    await alice.fails(409, Registry.MEMBER_UPDATE, "last admin", workspace=ws, user_id="id-alice",
                      role=ROLE.ROLE_INSTRUCTOR)
    await users["root"].fails(409, Registry.MEMBER_REMOVE, "last admin", workspace=ws, user_id="id-alice")
    # with a second admin, the first may step down
    await alice(Registry.MEMBER_UPDATE, workspace=ws, user_id="id-carol", role=ROLE.ROLE_ADMIN)
    stepped = await carol(Registry.MEMBER_UPDATE, workspace=ws, user_id="id-alice", role=ROLE.ROLE_STUDENT)
    assert stepped.role == ROLE.ROLE_STUDENT
    removed = await carol(Registry.MEMBER_REMOVE, workspace=ws, user_id="id-erin")
    assert (removed.username, removed.role) == ("erin", ROLE.ROLE_STUDENT)
    await users["erin"].fails(404, Registry.WORKSPACE_GET, f"workspace '{ws}' not found", workspace=ws)
    await carol.fails(404, Registry.MEMBER_REMOVE, "no member 'id-erin'", workspace=ws, user_id="id-erin")
    listed = await carol(Registry.MEMBER_LIST, workspace=ws)
    assert [(m.username, m.role) for m in listed.items] == [
        ("alice", ROLE.ROLE_STUDENT), ("carol", ROLE.ROLE_ADMIN), ("dave", ROLE.ROLE_INSTRUCTOR)]

    events = check_events(
        await collect_events(nc, ws, 9),
        ["workspace.created", *["member.added"] * 4, *["member.role_changed"] * 3, "member.removed"],
    )
    assert [(e.member_role_changed.username, e.member_role_changed.previous_role, e.member_role_changed.role)
            for e in events[5:8]] == [("dave", ROLE.ROLE_STUDENT, ROLE.ROLE_INSTRUCTOR),
                                      ("carol", ROLE.ROLE_INSTRUCTOR, ROLE.ROLE_ADMIN),
                                      ("alice", ROLE.ROLE_ADMIN, ROLE.ROLE_STUDENT)]
    assert events[8].subject == "members/id-erin" and events[8].actor.username == "carol"
    assert (events[8].member_removed.username, events[8].member_removed.role) == ("erin", ROLE.ROLE_STUDENT)


async def test_environments_versions_and_rollback(users: dict[str, User], ws: str, nc: Client) -> None:
    alice, bob, carol, dave = (users[n] for n in ("alice", "bob", "carol", "dave"))
    await setup_course(users, ws)
    spec1 = spec_json()
    env = await carol(
        Registry.ENV_CREATE, workspace=ws, name="iris", description="Iris course env", spec_json=spec1
    )
    assert (env.workspace, env.name, env.owner, env.latest_version, env.forked_from) == (
        ws,
        "iris",
        "carol",
        1,
        "",
    )
    v1 = env.latest
    assert (v1.number, v1.origin, v1.parent, v1.created_by) == (1, "create", "", "carol")
    assert json.loads(v1.spec_json) == json.loads(spec1)
    assert v1.spec_json == json.dumps(json.loads(spec1), sort_keys=True, separators=(",", ":"))
    assert v1.spec_digest.startswith("sha256:")

    await alice.fails(
        409, Registry.ENV_CREATE, "'iris' already exists", workspace=ws, name="iris", spec_json=spec1
    )
    await alice.fails(422, Registry.ENV_CREATE, "name", workspace=ws, name="Iris!", spec_json=spec1)
    bad_spec = await alice.fails(
        422,
        Registry.ENV_CREATE,
        "spec.python.requirements[1]",
        "'numpy>>1'",
        workspace=ws,
        name="bad",
        spec_json=json.dumps({"base": "python:3.12", "python": {"requirements": ["pandas", "numpy>>1"]}}),
    )
    assert bad_spec.errors[0][0] == "spec.python.requirements[1]"
    await alice.fails(
        422, Registry.ENV_CREATE, "spec.base", workspace=ws, name="bad", spec_json='{"base": "X Y"}'
    )
    await alice.fails(
        422,
        Registry.ENV_CREATE,
        "spec_json",
        "not valid JSON",
        workspace=ws,
        name="bad",
        spec_json="{base: python",
    )
    await dave.fails(
        403,
        Registry.ENV_CREATE,
        "requires the instructor or admin role",
        workspace=ws,
        name="mine",
        spec_json=spec1,
    )
    await bob.fails(
        404, Registry.ENV_CREATE, f"workspace '{ws}' not found", workspace=ws, name="x", spec_json=spec1
    )

    # update: parent is the previous latest
    spec2 = spec_json(apt=["libgomp1"])
    v2 = await carol(
        Registry.VERSION_CREATE, workspace=ws, environment="iris", spec_json=spec2, note="add openmp"
    )
    assert (v2.number, v2.origin, v2.parent, v2.note, v2.rollback_to) == (
        2,
        "update",
        f"{ws}/iris/v1",
        "add openmp",
        0,
    )
    assert v2.spec_digest != v1.spec_digest
    # rollback: a new version equal to version 1, whose parent is version 1
    v3 = await alice(Registry.VERSION_CREATE, workspace=ws, environment="iris", rollback_to=1)
    assert (v3.number, v3.origin, v3.parent, v3.rollback_to) == (3, "rollback", f"{ws}/iris/v1", 1)
    assert (v3.spec_json, v3.spec_digest) == (v1.spec_json, v1.spec_digest)
    await alice.fails(
        422, Registry.VERSION_CREATE, "has no version 9", workspace=ws, environment="iris", rollback_to=9
    )
    await alice.fails(422, Registry.VERSION_CREATE, "spec_json", workspace=ws, environment="iris")
    await alice.fails(
        422,
        Registry.VERSION_CREATE,
        "spec.resources.gpu",
        workspace=ws,
        environment="iris",
        spec_json='{"base": "python", "resources": {"gpu": 0.5}}',
    )
    await dave.fails(
        403,
        Registry.VERSION_CREATE,
        "requires the instructor or admin role",
        "fork it",
        workspace=ws,
        environment="iris",
        spec_json=spec2,
    )
    await alice.fails(
        404,
        Registry.VERSION_CREATE,
        "environment 'nope' not found",
        workspace=ws,
        environment="nope",
        spec_json=spec2,
    )

    versions = await dave(Registry.VERSION_LIST, workspace=ws, environment="iris")
    assert [(v.number, v.origin) for v in versions.items] == [(1, "create"), (2, "update"), (3, "rollback")]
    got2 = await dave(Registry.VERSION_GET, workspace=ws, environment="iris", number=2)
    assert got2 == v2
    await dave.fails(
        404, Registry.VERSION_GET, "has no version 7", workspace=ws, environment="iris", number=7
    )
    env_now = await dave(Registry.ENV_GET, workspace=ws, environment="iris")
    assert (env_now.latest_version, env_now.latest) == (3, v3)
    listed = await dave(Registry.ENV_LIST, workspace=ws)
    assert [(e.name, e.latest_version, e.latest.number) for e in listed.items] == [("iris", 3, 3)]
    await bob.fails(404, Registry.ENV_LIST, f"workspace '{ws}' not found", workspace=ws)
    await bob.fails(404, Registry.ENV_GET, f"workspace '{ws}' not found", workspace=ws, environment="iris")
    await bob.fails(
        404, Registry.VERSION_LIST, f"workspace '{ws}' not found", workspace=ws, environment="iris"
    )

    events = check_events(
        await collect_events(nc, ws, 9),
        [
            "workspace.created",
            "member.added",
            "member.added",
            "member.added",
            "member.added",
            "environment.created",
            "version.created",
            "version.created",
            "version.created",
        ],
    )
    created = events[5]
    assert (created.environment_created.name, created.environment_created.owner, created.subject) == (
        "iris",
        "carol",
        "environments/iris",
    )
    lineage = [
        (
            e.version_created.number,
            e.version_created.origin,
            e.version_created.parent,
            e.version_created.rollback_to,
            e.subject,
        )
        for e in events[6:]
    ]
    assert lineage == [
        (1, "create", "", 0, "environments/iris/versions/1"),
        (2, "update", f"{ws}/iris/v1", 0, "environments/iris/versions/2"),
        (3, "rollback", f"{ws}/iris/v1", 1, "environments/iris/versions/3"),
    ]
    assert events[8].version_created.spec_digest == v1.spec_digest


async def test_forks_lineage_and_student_visibility(users: dict[str, User], ws: str, nc: Client) -> None:
    alice, bob, carol, dave, erin = (users[n] for n in ("alice", "bob", "carol", "dave", "erin"))
    await setup_course(users, ws)
    await carol(Registry.ENV_CREATE, workspace=ws, name="iris", spec_json=spec_json())
    v2 = await carol(
        Registry.VERSION_CREATE, workspace=ws, environment="iris", spec_json=spec_json(apt=["curl"])
    )

    # a student's default fork: <env>-<username>, latest version, personal
    fork = await dave(Registry.ENV_FORK, workspace=ws, environment="iris")
    assert (fork.name, fork.owner, fork.forked_from, fork.latest_version) == (
        "iris-dave",
        "dave",
        f"{ws}/iris/v2",
        1,
    )
    assert (fork.latest.origin, fork.latest.parent, fork.latest.number) == ("fork", f"{ws}/iris/v2", 1)
    assert fork.latest.spec_digest == v2.spec_digest
    old = await dave(Registry.ENV_FORK, workspace=ws, environment="iris", version=1, new_name="iris-old")
    assert (old.forked_from, old.latest.parent) == (f"{ws}/iris/v1", f"{ws}/iris/v1")
    await dave.fails(409, Registry.ENV_FORK, "'iris-dave' already exists", workspace=ws, environment="iris")
    await dave.fails(404, Registry.ENV_FORK, "has no version 5", workspace=ws, environment="iris", version=5)
    await dave.fails(422, Registry.ENV_FORK, "new_name", workspace=ws, environment="iris", new_name="No Way")
    await dave.fails(
        404,
        Registry.ENV_FORK,
        "workspace 'elsewhere-x' not found",
        workspace=ws,
        environment="iris",
        target_workspace="elsewhere-x",
    )
    await bob.fails(404, Registry.ENV_FORK, f"workspace '{ws}' not found", workspace=ws, environment="iris")

    # the student versions its own fork; a fork of a fork keeps the lineage
    dv2 = await dave(
        Registry.VERSION_CREATE,
        workspace=ws,
        environment="iris-dave",
        spec_json=spec_json(apt=["curl", "git"]),
    )
    assert (dv2.number, dv2.origin, dv2.parent, dv2.created_by) == (2, "update", f"{ws}/iris-dave/v1", "dave")
    rolled = await dave(Registry.VERSION_CREATE, workspace=ws, environment="iris-dave", rollback_to=1)
    assert (rolled.number, rolled.parent, rolled.spec_digest) == (3, f"{ws}/iris-dave/v1", v2.spec_digest)

    # another student sees neither of dave's forks
    erin_envs = await erin(Registry.ENV_LIST, workspace=ws)
    assert [e.name for e in erin_envs.items] == ["iris"]
    await erin.fails(
        404, Registry.ENV_GET, "environment 'iris-dave' not found", workspace=ws, environment="iris-dave"
    )
    await erin.fails(
        404, Registry.ENV_FORK, "environment 'iris-dave' not found", workspace=ws, environment="iris-dave"
    )
    await erin.fails(
        404,
        Registry.VERSION_CREATE,
        "environment 'iris-dave' not found",
        workspace=ws,
        environment="iris-dave",
        spec_json=spec_json(),
    )
    await erin.fails(
        404, Registry.VERSION_LIST, "environment 'iris-dave' not found", workspace=ws, environment="iris-dave"
    )
    assert sorted(e.name for e in (await dave(Registry.ENV_LIST, workspace=ws)).items) == [
        "iris",
        "iris-dave",
        "iris-old",
    ]
    # instructors see every environment and may version a student's fork
    assert sorted(e.name for e in (await carol(Registry.ENV_LIST, workspace=ws)).items) == [
        "iris",
        "iris-dave",
        "iris-old",
    ]
    assert (
        await carol(Registry.VERSION_CREATE, workspace=ws, environment="iris-dave", rollback_to=2)
    ).number == 4

    # an instructor's fork is a workspace environment: students see it, and cannot change it
    staff = await carol(
        Registry.ENV_FORK, workspace=ws, environment="iris-dave", version=2, new_name="iris-next"
    )
    assert (staff.forked_from, staff.latest.parent) == (f"{ws}/iris-dave/v2", f"{ws}/iris-dave/v2")
    assert "iris-next" in [e.name for e in (await erin(Registry.ENV_LIST, workspace=ws)).items]
    await erin.fails(
        403,
        Registry.VERSION_CREATE,
        "requires the instructor or admin role",
        workspace=ws,
        environment="iris-next",
        spec_json=spec_json(),
    )
    # fork into another workspace the caller belongs to
    other = ws + "-b"
    await alice(Registry.WORKSPACE_CREATE, slug=other)
    moved = await alice(Registry.ENV_FORK, workspace=ws, environment="iris", target_workspace=other)
    assert (moved.workspace, moved.name, moved.forked_from) == (other, "iris-alice", f"{ws}/iris/v2")

    created, versions = "environment.created", "version.created"
    events = check_events(
        await collect_events(nc, ws, 17),
        ["workspace.created"]
        + ["member.added"] * 4
        + [created, versions, versions]  # iris v1, v2
        + [created, versions, created, versions]  # iris-dave, iris-old
        + [versions, versions, versions]  # iris-dave v2, v3, v4
        + [created, versions],  # iris-next
    )
    forks = [e.environment_created for e in events if e.type == created]
    assert [(f.name, f.owner, f.forked_from) for f in forks] == [
        ("iris", "carol", ""),
        ("iris-dave", "dave", f"{ws}/iris/v2"),
        ("iris-old", "dave", f"{ws}/iris/v1"),
        ("iris-next", "carol", f"{ws}/iris-dave/v2"),
    ]
    first_of_fork = events[9].version_created
    assert (first_of_fork.environment, first_of_fork.number, first_of_fork.origin, first_of_fork.parent) == (
        "iris-dave",
        1,
        "fork",
        f"{ws}/iris/v2",
    )
    elsewhere = check_events(
        await collect_events(nc, other, 4),
        ["workspace.created", "member.added", created, versions],
    )
    assert elsewhere[2].environment_created.forked_from == f"{ws}/iris/v2"
    assert (elsewhere[3].version_created.origin, elsewhere[3].version_created.parent) == (
        "fork",
        f"{ws}/iris/v2",
    )


async def test_datasets(users: dict[str, User], ws: str, nc: Client) -> None:
    alice, bob, carol, dave = (users[n] for n in ("alice", "bob", "carol", "dave"))
    await setup_course(users, ws)
    public, hidden = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    iris = await carol(
        Registry.DATASET_REGISTER,
        workspace=ws,
        name="iris.csv",
        digest=public,
        size=4551,
        media_type="text/csv",
        visibility="public",
    )
    assert (
        iris.workspace,
        iris.name,
        iris.digest,
        iris.size,
        iris.media_type,
        iris.visibility,
        iris.uploaded_by,
    ) == (ws, "iris.csv", public, 4551, "text/csv", "public", "carol")
    assert iris.object_key == "datasets/sha256/" + "1" * 64
    labels = await alice(
        Registry.DATASET_REGISTER,
        workspace=ws,
        name="labels.csv",
        digest=hidden,
        size=10,
        object_key="custom/labels.csv",
    )
    assert (labels.visibility, labels.media_type, labels.object_key) == (
        "hidden",
        "application/octet-stream",
        "custom/labels.csv",
    )
    again = await alice(Registry.DATASET_REGISTER, workspace=ws, name="renamed", digest=public, size=1)
    assert again == iris  # idempotent: the existing record, unchanged

    await dave.fails(
        403,
        Registry.DATASET_REGISTER,
        "requires the instructor or admin role",
        workspace=ws,
        name="x",
        digest="sha256:" + "3" * 64,
        size=1,
    )
    await bob.fails(
        404,
        Registry.DATASET_REGISTER,
        f"workspace '{ws}' not found",
        workspace=ws,
        name="x",
        digest="sha256:" + "3" * 64,
        size=1,
    )
    await carol.fails(
        422, Registry.DATASET_REGISTER, "digest", workspace=ws, name="x", digest="md5:abc", size=1
    )
    bad = await carol.fails(
        422,
        Registry.DATASET_REGISTER,
        "visibility",
        workspace=ws,
        name="x",
        digest="sha256:" + "3" * 64,
        size=1,
        visibility="secret",
    )
    assert bad.errors[0][0] == "visibility"
    await carol.fails(
        422, Registry.DATASET_REGISTER, "name", workspace=ws, name=" ", digest="sha256:" + "3" * 64
    )

    assert [d.name for d in (await carol(Registry.DATASET_LIST, workspace=ws)).items] == [
        "iris.csv",
        "labels.csv",
    ]
    assert [d.name for d in (await dave(Registry.DATASET_LIST, workspace=ws)).items] == ["iris.csv"]
    await bob.fails(404, Registry.DATASET_LIST, f"workspace '{ws}' not found", workspace=ws)
    await dave.fails(404, Registry.DATASET_GET, "not found", workspace=ws, digest=hidden)
    await dave.fails(404, Registry.DATASET_GET, "not found", workspace=ws, digest=hidden, for_download=True)
    assert (await dave(Registry.DATASET_GET, workspace=ws, digest=public)) == iris
    assert (await dave(Registry.DATASET_GET, workspace=ws, digest=public, for_download=True)) == iris
    assert (await carol(Registry.DATASET_GET, workspace=ws, digest=hidden)).name == "labels.csv"

    # specs may mount registered datasets only (and students only public ones)
    mount = [{"digest": public, "mount": "/data/iris"}]
    env = await carol(Registry.ENV_CREATE, workspace=ws, name="iris", spec_json=spec_json(datasets=mount))
    assert json.loads(env.latest.spec_json)["datasets"] == mount
    unknown = await carol.fails(
        422,
        Registry.ENV_CREATE,
        "spec.datasets[0].digest",
        "not registered",
        workspace=ws,
        name="other",
        spec_json=spec_json(datasets=[{"digest": "sha256:" + "9" * 64, "mount": "/data/x"}]),
    )
    assert unknown.errors == [
        ("spec.datasets[0].digest", f"dataset sha256:{'9' * 64} is not registered in workspace '{ws}'")
    ]
    await dave(Registry.ENV_FORK, workspace=ws, environment="iris")
    await dave.fails(
        422,
        Registry.VERSION_CREATE,
        "spec.datasets[0].digest",
        workspace=ws,
        environment="iris-dave",
        spec_json=spec_json(datasets=[{"digest": hidden, "mount": "/data/labels"}]),
    )

    events = check_events(
        await collect_events(nc, ws, 12),
        [
            "workspace.created",
            "member.added",
            "member.added",
            "member.added",
            "member.added",
            "dataset.uploaded",
            "dataset.uploaded",
            "dataset.downloaded",
            "environment.created",
            "version.created",
            "environment.created",
            "version.created",
        ],
    )
    up = events[5].dataset_uploaded
    assert (up.name, up.digest, up.size, up.visibility, events[5].subject) == (
        "iris.csv",
        public,
        4551,
        "public",
        f"datasets/{public}",
    )
    assert events[6].dataset_uploaded.visibility == "hidden"
    down = events[7]
    assert (down.dataset_downloaded.digest, down.dataset_downloaded.name, down.actor.username) == (
        public,
        "iris.csv",
        "dave",
    )


async def test_concurrent_versions_get_distinct_numbers(users: dict[str, User], ws: str) -> None:
    alice = users["alice"]
    await alice(Registry.WORKSPACE_CREATE, slug=ws)
    await alice(Registry.ENV_CREATE, workspace=ws, name="e", spec_json=spec_json())
    made = await asyncio.gather(
        *(
            alice(
                Registry.VERSION_CREATE, workspace=ws, environment="e", spec_json=spec_json(apt=[f"pkg{i}"])
            )
            for i in range(12)
        )
    )
    assert sorted(v.number for v in made) == list(range(2, 14))
    versions = (await alice(Registry.VERSION_LIST, workspace=ws, environment="e")).items
    assert [v.number for v in versions] == list(range(1, 14))
    # each version's parent is the version before it: the numbering was serialised
    assert [v.parent for v in versions[1:]] == [f"{ws}/e/v{n}" for n in range(1, 13)]


async def test_record_image_is_append_only(users: dict[str, User], ws: str, nc: Client) -> None:
    """The builder records a build's lock and image on a version; a version never gets two images."""
    alice, carol, dave = users["alice"], users["carol"], users["dave"]
    await setup_course(users, ws)
    env = await carol(Registry.ENV_CREATE, workspace=ws, name="img", spec_json=spec_json())
    assert env.caller_can_change and not env.latest.image_digest
    assert not (await dave(Registry.ENV_GET, workspace=ws, environment="img")).caller_can_change
    lock, image = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    ref = f"127.0.0.1:5000/{ws}/img:v1"
    fields = dict(workspace=ws, environment="img", number=1, lock_digest=lock, image_ref=ref)
    v = await alice(Registry.VERSION_RECORD_IMAGE, image_digest=image, **fields)
    assert (v.lock_digest, v.image_ref, v.image_digest) == (lock, ref, image)
    again = await alice(Registry.VERSION_RECORD_IMAGE, image_digest=image, **fields)
    assert again.image_digest == image
    await alice.fails(409, Registry.VERSION_RECORD_IMAGE, "two images", image_digest="sha256:" + "3" * 64,
                      **fields)
    await alice.fails(422, Registry.VERSION_RECORD_IMAGE, "image_digest", image_digest="latest", **fields)
    await alice.fails(404, Registry.VERSION_RECORD_IMAGE, "no version 7",
                      **{**fields, "number": 7, "image_digest": image})
    got = await carol(Registry.VERSION_GET, workspace=ws, environment="img", number=1)
    assert got.image_digest == image and got.lock_digest == lock
