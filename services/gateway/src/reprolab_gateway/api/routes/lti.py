"""LTI 1.3: LMS registrations (platform admins), the tool's values for the LMS, and per course the
grades sent to the LMS and the roster sync (instructors and admins of the course's workspace)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from reprolab.v1 import common_pb2
from reprolab_common.errors import Forbidden, NotFound, ServiceUnavailable
from sqlalchemy.orm import Session

from ...core.bodylimit import BodyLimitedRoute
from ...lti import audit, flows, grades, platforms
from ...lti.keys import tool_key
from ...lti.launch import tool_base
from ...lti.models import LtiContext, LtiGrade, LtiPlatform
from ...lti.services import ServiceFailed
from ...lti.web import canvas_config, tool_values
from ..deps import PlatformAdmin, RegistryDep, SessionDep, SettingsDep

router = APIRouter(prefix="/lti", tags=["lti"], route_class=BodyLimitedRoute)

MANAGERS = frozenset({common_pb2.ROLE_ADMIN, common_pb2.ROLE_INSTRUCTOR})


class PlatformIn(BaseModel):
    model_config = {"extra": "forbid"}
    title: str = Field(default="", max_length=200, description="A name for people, e.g. 'University Canvas'.")
    issuer: str = Field(min_length=1, max_length=500, description="The LMS's issuer (iss), e.g. "
                        "https://canvas.instructure.com, or the Moodle site's URL.")
    client_id: str = Field(min_length=1, max_length=255, description="The client id the LMS gave this tool.")
    auth_login_url: str = Field(max_length=1000, description="The LMS's OIDC authorization endpoint.")
    token_url: str = Field(max_length=1000, description="The LMS's OAuth2 token endpoint (grades, rosters).")
    jwks_url: str = Field(max_length=1000, description="The LMS's public keyset URL.")
    deployment_ids: list[str] = Field(min_length=1, max_length=100, description="Deployment ids launches may carry.")


class PlatformPatch(BaseModel):
    model_config = {"extra": "forbid"}
    title: str | None = Field(default=None, max_length=200)
    auth_login_url: str | None = Field(default=None, max_length=1000)
    token_url: str | None = Field(default=None, max_length=1000)
    jwks_url: str | None = Field(default=None, max_length=1000)
    deployment_ids: list[str] | None = Field(default=None, min_length=1, max_length=100)


class Platform(BaseModel):
    id: str
    title: str
    issuer: str
    client_id: str
    auth_login_url: str
    token_url: str
    jwks_url: str
    deployment_ids: list[str]
    created_at: datetime

    @classmethod
    def of(cls, p: LtiPlatform) -> Platform:
        created = p.created_at if p.created_at.tzinfo else p.created_at.replace(tzinfo=UTC)
        return cls(id=p.id, title=p.title, issuer=p.issuer, client_id=p.client_id, auth_login_url=p.auth_login_url,
                   token_url=p.token_url, jwks_url=p.jwks_url, deployment_ids=platforms.deployments(p),
                   created_at=created)


class PlatformList(BaseModel):
    items: list[Platform]


class ToolConfig(BaseModel):
    """What an LMS asks when Reprolab is registered in it."""
    login_url: str = Field(description="OIDC login initiation URL (Canvas: OpenID Connect Initiation Url; Moodle: "
                           "Initiate login URL).")
    launch_url: str = Field(description="Target link URI / redirect URI (Moodle: Tool URL and Redirection URI(s)).")
    redirect_uri: str
    jwks_url: str = Field(description="The tool's public keyset URL (Canvas: Public JWK URL; Moodle: Public keyset "
                          "URL, key type 'Keyset URL').")
    deep_link_url: str = Field(description="Content selection URL (Moodle: Supports Deep Linking, Content Selection "
                               "URL).")
    domain: str
    canvas_config_url: str = Field(description="Canvas: Developer Keys → + LTI Key → Method 'Enter URL'.")
    canvas_config: dict = Field(description="The same configuration, to paste (Method 'Paste JSON').")
    jwks: dict = Field(description="The tool's public keyset itself (Moodle's 'RSA key' option takes the PEM; use "
                       "the keyset URL instead).")


class Grade(BaseModel):
    assignment: str
    username: str
    score: float
    status: str = Field(description="sent | failed")
    attempts: int
    last_error: str
    updated_at: datetime

    @classmethod
    def of(cls, g: LtiGrade) -> Grade:
        at = g.updated_at if g.updated_at.tzinfo else g.updated_at.replace(tzinfo=UTC)
        return cls(assignment=g.assignment, username=g.username, score=g.score, status=g.status, attempts=g.attempts,
                   last_error=g.last_error, updated_at=at)


class GradeList(BaseModel):
    items: list[Grade]
    sent: int
    failed: int


class RosterSync(BaseModel):
    members: int = Field(description="Members the LMS listed (active ones).")
    added: int = Field(description="Members added to the workspace now.")
    role_changes: int = Field(description="Members whose LMS role changed (applied to the workspace unless refused, "
                                          "e.g. for its last admin; see lti.role_changed).")
    removed: int = Field(description="Members the LTI link had added who are no longer active in the LMS course, "
                                     "removed now (members added by hand or by invite are never removed).")


@router.post("/platforms", status_code=201, response_model=Platform)
def register_platform(body: PlatformIn, request: Request, db: SessionDep, admin: PlatformAdmin) -> Platform:
    """Register an LMS (platform admins)."""
    row = platforms.register(db, **body.model_dump())
    audit.record(db, request, type="platform_registered", subject=f"lti/platforms/{row.id}",
                 actor=audit.actor_of(admin), issuer=row.issuer, client_id=row.client_id)
    return Platform.of(row)


@router.get("/platforms", response_model=PlatformList)
def list_platforms(db: SessionDep, _admin: PlatformAdmin) -> PlatformList:
    return PlatformList(items=[Platform.of(p) for p in platforms.list_all(db)])


@router.get("/platforms/{platform_id}", response_model=Platform)
def get_platform(platform_id: str, db: SessionDep, _admin: PlatformAdmin) -> Platform:
    return Platform.of(platforms.get(db, platform_id))


@router.patch("/platforms/{platform_id}", response_model=Platform)
def update_platform(platform_id: str, body: PlatformPatch, db: SessionDep, _admin: PlatformAdmin) -> Platform:
    """Change an LMS's URLs or deployments (issuer and client id identify it: register anew to change them)."""
    return Platform.of(platforms.update(db, platform_id, **body.model_dump()))


@router.delete("/platforms/{platform_id}", status_code=204, response_class=Response)
def delete_platform(platform_id: str, db: SessionDep, _admin: PlatformAdmin) -> Response:
    """Remove an LMS registration (its courses' links, logins and grade records go with it)."""
    platforms.delete(db, platform_id)
    return Response(status_code=204)


@router.get("/tool", response_model=ToolConfig)
def tool_config(request: Request, db: SessionDep, settings: SettingsDep) -> ToolConfig:
    """The values to enter in Canvas or Moodle when registering Reprolab (public: they hold no secret)."""
    base = tool_base(settings.lti, str(request.base_url))
    return ToolConfig(**tool_values(base), canvas_config=canvas_config(base),
                      jwks={"keys": [tool_key(db).public_jwk()]})


async def _course(ws: str, registry: RegistryDep, db: Session) -> LtiContext:
    workspace = await registry.get_workspace(ws)  # 404 to non-members
    if not registry.actor.platform_admin and workspace.caller_role not in MANAGERS:
        raise Forbidden(f"only an instructor or admin of {ws!r} can see and send its LMS grades or sync its roster")
    context = flows.context_of(db, ws)
    if context is None:
        raise NotFound(f"workspace {ws!r} is not linked to an LMS course; an instructor opens Reprolab from the "
                       "course (LTI launch) to link it")
    return context


@router.get("/courses/{ws}/grades", response_model=GradeList)
async def list_grades(ws: str, registry: RegistryDep, db: SessionDep,
                      assignment: str = Query(default="", max_length=63)) -> GradeList:
    """The grades sent to the LMS (or that failed, with the error), per student and assignment."""
    context = await _course(ws, registry, db)
    rows = grades.list_grades(db, context, assignment)
    return GradeList(items=[Grade.of(g) for g in rows], sent=sum(g.status == grades.SENT for g in rows),
                     failed=sum(g.status == grades.FAILED for g in rows))


@router.get("/courses/{ws}/grades.csv", response_class=PlainTextResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "assignment, username, name, lms_user_id, "
                                                                          "best_score, lms_status"}})
async def grades_csv(ws: str, request: Request, registry: RegistryDep, db: SessionDep) -> PlainTextResponse:
    """Every LMS student's best score per assignment as CSV, to import by hand where the LMS takes no grades
    from tools (``lms_user_id`` is the LMS's id of the person)."""
    context = await _course(ws, registry, db)
    text = await grades.grades_csv(db, request.app, context)
    return PlainTextResponse(text, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{ws}-grades.csv"'})


@router.post("/courses/{ws}/grades/{assignment}/send", response_model=GradeList)
async def send_grades(ws: str, assignment: str, request: Request, registry: RegistryDep,
                      db: SessionDep) -> GradeList:
    """Send every LMS student's best score on the assignment to the LMS gradebook now (failures are retried,
    then listed with their error; send again to retry them)."""
    context = await _course(ws, registry, db)
    await registry.get_assignment(ws, assignment)  # 404 names it
    rows = await grades.send_grades(db, request.app, context, assignment)
    return GradeList(items=[Grade.of(g) for g in rows], sent=sum(g.status == grades.SENT for g in rows),
                     failed=sum(g.status == grades.FAILED for g in rows))


@router.post("/courses/{ws}/roster/sync", response_model=RosterSync)
async def sync_roster(ws: str, request: Request, registry: RegistryDep, db: SessionDep,
                      settings: SettingsDep) -> RosterSync:
    """Bring the LMS course's members (Names and Role Provisioning) into the workspace."""
    context = await _course(ws, registry, db)
    try:
        return RosterSync(**await flows.sync_roster(db, request.app, context, timeout=settings.nats_timeout_seconds))
    except ServiceFailed as exc:
        raise ServiceUnavailable(f"the roster could not be read from the LMS: {exc}") from exc
