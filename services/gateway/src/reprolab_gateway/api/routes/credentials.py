"""The caller's cloud credentials: ``/me/credentials`` (write-only secrets).

Credentials belong to (user, workspace, vendor): the same person may use a course's AWS account in
one workspace and their lab's OpenStack project in another, and a run uses its requester's
credentials for its workspace. The workspace is a required query parameter and the caller must be
a member of it (the registry answers 404 otherwise).

The secret passes through the gateway once, inside the PUT request to the runner (which owns,
validates and encrypts it); no response, log line, event or error message carries it. Every reply
is metadata: vendor, options, which secret fields are set, the last 4 characters of the key's
identifier and the id of the encryption key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from reprolab.v1 import runner_pb2
from reprolab_common.errors import Invalid

from ...core.bodylimit import BodyLimitedRoute
from ...core.problems import pattern
from ...schemas import NAME_PATTERN, ts
from ..deps import RegistryDep, RunnerDep
from ..params import VENDORS

router = APIRouter(prefix="/me/credentials", tags=["credentials"], route_class=BodyLimitedRoute)

VENDOR_PATTERN = pattern(r"^[a-z][a-z0-9-]{0,31}$", "use one of aws, azure, openstack")
# The runner refuses other vendors with a 422 that names the known ones; the document lists them.
VendorPath = Annotated[str, Path(pattern=VENDOR_PATTERN, description="aws, azure or openstack",
                                 json_schema_extra={"enum": list(VENDORS)})]
WorkspaceQuery = Annotated[str, Query(min_length=1, max_length=63, pattern=NAME_PATTERN,
                                      description="Slug of the workspace the credentials are for (you must be a "
                                                  "member).")]


_SECRET_VALUE = {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "^[^\\x00]*$"}
_OPTION_VALUE = {"type": "string", "maxLength": 4096, "pattern": "^[^\\x00-\\x1f]*$"}


class CredentialPut(BaseModel):
    # Values are typed Any and unknown top-level fields allowed, both checked below: pydantic's own
    # errors would name a bad value's key, and a key is where a pasted secret sometimes lands.
    # The document says what the checks below and the runner enforce: no other fields, string values.
    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False, "examples": [{
        "secret": {"access_key_id": "AKIA...", "secret_access_key": "..."},
        "options": {"region": "us-east-1", "image_id": "ami-0123456789abcdef0"}}]})

    secret: dict[str, Any] = Field(json_schema_extra={"additionalProperties": _SECRET_VALUE}, description=(
        "Secret fields, encrypted at rest and never shown again. aws: access_key_id, secret_access_key; azure: "
        "client_id, client_secret; openstack: username + password, or application_credential_id + "
        "application_credential_secret."))
    options: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"additionalProperties": _OPTION_VALUE},
                                    description=(
        "Non-secret settings, shown back. aws: region (required), endpoint_url, image_id, instance_type, subnet_id, "
        "security_group_ids (comma-separated), key_name; azure: tenant_id, subscription_id, resource_group, location "
        "(required), subnet_id, vm_size, image (publisher:offer:sku:version), ssh_public_key, authority_host, "
        "arm_endpoint, ca_bundle; openstack: auth_url (required), project or project_id, user_domain, "
        "project_domain, region, image_id, flavor_id, network_id, key_name."))


class Credential(BaseModel):
    workspace: str
    vendor: str
    options: dict[str, str]
    secret_fields: list[str] = Field(description="Names of the secret fields that are set; never their values.")
    key_hint: str = Field(description="Last 4 characters of the key's identifier (e.g. the access key id).")
    key_id: str = Field(description="Id of the platform's encryption key the secret is stored under.")
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, c: runner_pb2.CredentialInfo) -> Credential:
        return cls(workspace=c.workspace, vendor=c.vendor, options=dict(c.options),
                   secret_fields=list(c.secret_fields), key_hint=c.key_hint, key_id=c.key_id,
                   created_at=ts(c.created_at), updated_at=ts(c.updated_at))


class CredentialList(BaseModel):
    items: list[Credential]


def _strings(part: str, values: dict[str, Any]) -> dict[str, str]:
    bad = [k for k, v in values.items() if not isinstance(v, str)]
    if bad:
        raise Invalid(f"every value under {part} must be a string ({len(bad)} is not); numbers and lists go in "
                      "as text, e.g. \"sg-1,sg-2\"", errors=[(f"body.{part}", "values must be strings")])
    return values


@router.put("/{vendor}", response_model=Credential)
async def put_credential(vendor: VendorPath, workspace: WorkspaceQuery,
                         body: CredentialPut, registry: RegistryDep, runner: RunnerDep) -> Credential:
    """Set (create or replace) your credentials for ``vendor`` (aws, azure, openstack) in a workspace.
    Missing or unknown keys are a 422 listing the keys expected; the secret is never returned."""
    if body.model_extra:
        known = [k for k in body.model_extra if k in ("vendor", "workspace", "secrets", "option")]
        named = f" ({', '.join(map(repr, known))})" if known else ""
        raise Invalid(f"the body takes only secret and options; remove the {len(body.model_extra)} other "
                      f"field(s){named} (their names are not shown: they may be secrets)",
                      errors=[("body", "unknown field")])
    secret, options = _strings("secret", body.secret), _strings("options", body.options)
    await registry.get_workspace(workspace)  # members only
    return Credential.of(await runner.put_credential(workspace, vendor, secret, options))


@router.get("", response_model=CredentialList)
async def list_credentials(workspace: WorkspaceQuery, registry: RegistryDep, runner: RunnerDep) -> CredentialList:
    """Your credentials in a workspace (metadata only)."""
    await registry.get_workspace(workspace)
    found = await runner.list_credentials(workspace)
    return CredentialList(items=[Credential.of(c) for c in found.items])


@router.get("/{vendor}", response_model=Credential)
async def get_credential(vendor: VendorPath, workspace: WorkspaceQuery, registry: RegistryDep,
                         runner: RunnerDep) -> Credential:
    """Your credentials for ``vendor`` in a workspace: metadata only, never the secret."""
    await registry.get_workspace(workspace)
    return Credential.of(await runner.get_credential(workspace, vendor))


@router.delete("/{vendor}", status_code=204, response_class=Response)
async def delete_credential(vendor: VendorPath, workspace: WorkspaceQuery, registry: RegistryDep,
                            runner: RunnerDep) -> Response:
    """Delete your credentials for ``vendor`` in a workspace; runs on that vendor need new ones."""
    await registry.get_workspace(workspace)
    await runner.delete_credential(workspace, vendor)
    return Response(status_code=204)
