"""NATS subjects of the request/reply endpoints (NATS services API) and the micro service names."""

from enum import StrEnum
from typing import Any


class ServiceName(StrEnum):
    """Names registered with ``nats.micro``; ``$SRV.PING.<name>`` checks readiness."""

    REGISTRY = "registry"
    AUDIT = "audit"
    BUILDER = "builder"
    RUNNER = "runner"


# Published by the registry (core NATS, no reply) after each committed change to a workspace's data; the
# payload is the workspace slug and nothing else. Gateways drop their cached reads of that workspace
# (reprolab_gateway/core/readcache.py). Not a request subject: no enum, nobody answers it.
REGISTRY_CHANGED = "registry.changed"

# Request fields naming a workspace a registry request may change (``slug``: CreateWorkspaceRequest,
# ``target_workspace``: a fork into another workspace).
_WORKSPACE_FIELDS = ("workspace", "target_workspace", "slug")


def request_workspaces(request: Any) -> set[str]:
    """The workspaces a registry request (a protobuf message) names: whose data it may change. The
    registry announces them on ``REGISTRY_CHANGED``; a gateway drops them from its read cache."""
    if request is None:
        return set()
    fields = request.DESCRIPTOR.fields_by_name
    return {value for name in _WORKSPACE_FIELDS if name in fields and (value := getattr(request, name))}


class Registry(StrEnum):
    WORKSPACE_CREATE = "registry.workspace.create"
    WORKSPACE_LIST = "registry.workspace.list"
    WORKSPACE_GET = "registry.workspace.get"
    MEMBER_ADD = "registry.member.add"
    MEMBER_LIST = "registry.member.list"
    MEMBER_UPDATE = "registry.member.update"
    MEMBER_REMOVE = "registry.member.remove"
    ENV_CREATE = "registry.env.create"
    ENV_LIST = "registry.env.list"
    ENV_GET = "registry.env.get"
    ENV_FORK = "registry.env.fork"
    ENV_ARCHIVE = "registry.env.archive"
    ENV_DELETE = "registry.env.delete"
    VERSION_CREATE = "registry.version.create"
    VERSION_LIST = "registry.version.list"
    VERSION_GET = "registry.version.get"
    DATASET_REGISTER = "registry.dataset.register"
    DATASET_LIST = "registry.dataset.list"
    DATASET_GET = "registry.dataset.get"
    DATASET_DELETE = "registry.dataset.delete"
    VERSION_RECORD_IMAGE = "registry.version.record_image"
    ASSIGNMENT_CREATE = "registry.assignment.create"
    ASSIGNMENT_LIST = "registry.assignment.list"
    ASSIGNMENT_GET = "registry.assignment.get"
    ASSIGNMENT_RECORD_SCORE = "registry.assignment.record_score"
    ASSIGNMENT_LEADERBOARD = "registry.assignment.leaderboard"
    ASSIGNMENT_UPDATE = "registry.assignment.update"
    ASSIGNMENT_ADMIT = "registry.assignment.admit"
    ASSIGNMENT_GRADEBOOK = "registry.assignment.gradebook"
    ASSIGNMENT_FEEDBACK = "registry.assignment.feedback"


class Audit(StrEnum):
    QUERY = "audit.query"
    EXPORT = "audit.export"
    VERIFY = "audit.verify"
    CHECKPOINT = "audit.checkpoint"
    INCLUSION_PROOF = "audit.proof.inclusion"
    CONSISTENCY_PROOF = "audit.proof.consistency"


class Builder(StrEnum):
    REQUEST = "builder.build.request"
    GET = "builder.build.get"
    LIST = "builder.build.list"
    SBOM = "builder.build.sbom"
    LOCK = "builder.lock.get"
    REGISTRY_CREDENTIAL_PUT = "builder.registry_credential.put"
    REGISTRY_CREDENTIAL_LIST = "builder.registry_credential.list"
    REGISTRY_CREDENTIAL_DELETE = "builder.registry_credential.delete"
    PUBLISH = "builder.image.publish"
    EXPORT = "builder.image.export"
    PACKAGE_INDEX_PUT = "builder.package_index.put"
    PACKAGE_INDEX_LIST = "builder.package_index.list"
    PACKAGE_INDEX_DELETE = "builder.package_index.delete"
    SESSION_LAYER = "builder.session.layer"


class Runner(StrEnum):
    SUBMIT = "runner.run.submit"
    GET = "runner.run.get"
    CANCEL = "runner.run.cancel"
    DELETE = "runner.run.delete"
    LIST = "runner.run.list"
    OUTPUTS = "runner.run.outputs"
    TARGETS = "runner.target.list"
    CREDENTIAL_PUT = "runner.credential.put"
    CREDENTIAL_GET = "runner.credential.get"
    CREDENTIAL_LIST = "runner.credential.list"
    CREDENTIAL_DELETE = "runner.credential.delete"
    RESCORE = "runner.run.rescore"
    SESSION_START = "runner.session.start"
    SESSION_GET = "runner.session.get"
    SESSION_LIST = "runner.session.list"
    SESSION_STOP = "runner.session.stop"
    SESSION_CONNECT = "runner.session.connect"
    SESSION_TOUCH = "runner.session.touch"
    SESSION_POLICY_GET = "runner.session.policy.get"
    SESSION_POLICY_PUT = "runner.session.policy.put"
    SESSION_CAPTURE = "runner.session.capture"
    QUOTA_GET = "runner.quota.get"
    QUOTA_PUT = "runner.quota.put"
    MODEL_DEPLOY = "runner.model.deploy"
    MODEL_LIST = "runner.model.list"
    MODEL_GET = "runner.model.get"
    MODEL_ACTIVATE = "runner.model.activate"
    MODEL_STOP = "runner.model.stop"
    MODEL_ROUTE = "runner.model.route"
    MODEL_KEY_CREATE = "runner.model.key.create"
    MODEL_KEY_LIST = "runner.model.key.list"
    MODEL_KEY_REVOKE = "runner.model.key.revoke"
    MODEL_KEY_CHECK = "runner.model.key.check"
    MODEL_MONITOR = "runner.model.monitor"
