"""Typed clients of the registry and audit services (NATS request/reply), bound to the caller.

Every request carries the ``Actor`` the gateway authenticated; the services decide what that
actor may do. Errors arrive as ``ProblemError`` (mapped to problem+json by the app); an absent
service or NATS outage is a 503 ``ServiceUnavailable``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message
from reprolab.v1 import audit_pb2, builder_pb2, common_pb2, registry_pb2, runner_pb2, serving_pb2
from reprolab_common.nats import call
from reprolab_common.subjects import Audit, Builder, Registry, Runner, request_workspaces

from .core.natslink import NatsLink


class _Client:
    def __init__(self, link: NatsLink, actor: common_pb2.Actor, timeout: float) -> None:
        self._link = link
        self.actor = actor
        self._timeout = timeout

    async def _call(self, subject: str, request: Message, reply_type: type, deadline: float | None = None):
        return await call(self._link.client, subject, request, reply_type, timeout=deadline or self._timeout)


# Registry subjects that change nothing the read cache keeps (core/readcache.py), and VERSION_GET without an
# export_kind (with one, the registry records an export). Every other subject the gateway sends drops the
# workspaces its request names once the registry has answered (or failed to).
_REGISTRY_READS = frozenset({
    Registry.WORKSPACE_LIST, Registry.WORKSPACE_GET, Registry.MEMBER_LIST, Registry.ENV_LIST, Registry.ENV_GET,
    Registry.VERSION_LIST, Registry.DATASET_LIST, Registry.ASSIGNMENT_LIST, Registry.ASSIGNMENT_LEADERBOARD,
    Registry.ASSIGNMENT_GRADEBOOK,
})


class RegistryClient(_Client):
    """``cached=True`` (the HTTP read routes) lets a read reuse this process's copy of the registry's reply to
    the same caller (core/readcache.py); any other call goes to the registry."""

    async def _call(self, subject: str, request: Message, reply_type: type, deadline: float | None = None):
        cache = self._link.read_cache
        if cache is None or subject in _REGISTRY_READS or (subject == Registry.VERSION_GET
                                                           and not request.export_kind):
            return await super()._call(subject, request, reply_type, deadline)
        try:
            return await super()._call(subject, request, reply_type, deadline)
        finally:  # before the caller's response: read-your-writes in this process
            for workspace in request_workspaces(request):
                cache.drop(workspace)

    async def _cached(self, subject: Registry, workspace: str, params: tuple, make_request, reply_type: type):
        cache = self._link.read_cache
        since = cache.begin() if cache is not None else None
        if since is None:
            return await self._call(subject, make_request(), reply_type)
        actor = self.actor
        key = (actor.user_id, actor.username, actor.platform_admin, subject, workspace, params)
        reply = cache.get(key)
        if reply is None:
            reply = await self._call(subject, make_request(), reply_type)
            cache.put(key, workspace, reply, since)
        return reply

    async def create_workspace(self, slug: str, title: str) -> registry_pb2.Workspace:
        return await self._call(
            Registry.WORKSPACE_CREATE,
            registry_pb2.CreateWorkspaceRequest(actor=self.actor, slug=slug, title=title),
            registry_pb2.Workspace,
        )

    async def list_workspaces(self) -> registry_pb2.WorkspaceList:
        return await self._call(
            Registry.WORKSPACE_LIST,
            registry_pb2.ListWorkspacesRequest(actor=self.actor),
            registry_pb2.WorkspaceList,
        )

    async def get_workspace(self, workspace: str, *, cached: bool = False) -> registry_pb2.Workspace:
        def request() -> registry_pb2.GetWorkspaceRequest:
            return registry_pb2.GetWorkspaceRequest(actor=self.actor, workspace=workspace)

        if cached:
            return await self._cached(Registry.WORKSPACE_GET, workspace, (), request, registry_pb2.Workspace)
        return await self._call(Registry.WORKSPACE_GET, request(), registry_pb2.Workspace)

    async def add_member(
        self, workspace: str, *, user_id: str, username: str, role: int
    ) -> registry_pb2.Member:
        return await self._call(
            Registry.MEMBER_ADD,
            registry_pb2.AddMemberRequest(
                actor=self.actor, workspace=workspace, user_id=user_id, username=username, role=role
            ),
            registry_pb2.Member,
        )

    async def update_member(self, workspace: str, *, user_id: str, role: int) -> registry_pb2.Member:
        return await self._call(
            Registry.MEMBER_UPDATE,
            registry_pb2.UpdateMemberRequest(actor=self.actor, workspace=workspace, user_id=user_id, role=role),
            registry_pb2.Member,
        )

    async def remove_member(self, workspace: str, *, user_id: str) -> registry_pb2.Member:
        return await self._call(
            Registry.MEMBER_REMOVE,
            registry_pb2.RemoveMemberRequest(actor=self.actor, workspace=workspace, user_id=user_id),
            registry_pb2.Member,
        )

    async def list_members(self, workspace: str) -> registry_pb2.MemberList:
        return await self._call(
            Registry.MEMBER_LIST,
            registry_pb2.ListMembersRequest(actor=self.actor, workspace=workspace),
            registry_pb2.MemberList,
        )

    async def create_environment(
        self, workspace: str, *, name: str, description: str, spec_json: str, imported_from: str = "",
        repository_digest: str = "",
    ) -> registry_pb2.Environment:
        return await self._call(
            Registry.ENV_CREATE,
            registry_pb2.CreateEnvironmentRequest(
                actor=self.actor, workspace=workspace, name=name, description=description, spec_json=spec_json,
                imported_from=imported_from, repository_digest=repository_digest,
            ),
            registry_pb2.Environment,
        )

    async def list_environments(self, workspace: str, include_archived: bool = False, *,
                                cached: bool = False) -> registry_pb2.EnvironmentList:
        def request() -> registry_pb2.ListEnvironmentsRequest:
            return registry_pb2.ListEnvironmentsRequest(actor=self.actor, workspace=workspace,
                                                        include_archived=include_archived)

        if cached:
            return await self._cached(Registry.ENV_LIST, workspace, (include_archived,), request,
                                      registry_pb2.EnvironmentList)
        return await self._call(Registry.ENV_LIST, request(), registry_pb2.EnvironmentList)

    async def archive_environment(self, workspace: str, environment: str, archived: bool) -> registry_pb2.Environment:
        return await self._call(
            Registry.ENV_ARCHIVE,
            registry_pb2.ArchiveEnvironmentRequest(actor=self.actor, workspace=workspace, environment=environment,
                                                   archived=archived),
            registry_pb2.Environment,
        )

    async def delete_environment(self, workspace: str, environment: str, runs: list[str]) -> registry_pb2.Environment:
        return await self._call(
            Registry.ENV_DELETE,
            registry_pb2.DeleteEnvironmentRequest(actor=self.actor, workspace=workspace, environment=environment,
                                                  runs=runs),
            registry_pb2.Environment,
        )

    async def get_environment(self, workspace: str, environment: str, *,
                              cached: bool = False) -> registry_pb2.Environment:
        def request() -> registry_pb2.GetEnvironmentRequest:
            return registry_pb2.GetEnvironmentRequest(actor=self.actor, workspace=workspace, environment=environment)

        if cached:
            return await self._cached(Registry.ENV_GET, workspace, (environment,), request, registry_pb2.Environment)
        return await self._call(Registry.ENV_GET, request(), registry_pb2.Environment)

    async def fork_environment(
        self,
        workspace: str,
        environment: str,
        *,
        version: int = 0,
        new_name: str = "",
        target_workspace: str = "",
    ) -> registry_pb2.Environment:
        return await self._call(
            Registry.ENV_FORK,
            registry_pb2.ForkEnvironmentRequest(
                actor=self.actor,
                workspace=workspace,
                environment=environment,
                version=version,
                new_name=new_name,
                target_workspace=target_workspace,
            ),
            registry_pb2.Environment,
        )

    async def create_version(
        self,
        workspace: str,
        environment: str,
        *,
        spec_json: str | None = None,
        rollback_to: int | None = None,
        note: str = "",
        parent_version: int = 0,
    ) -> registry_pb2.Version:
        request = registry_pb2.CreateVersionRequest(
            actor=self.actor, workspace=workspace, environment=environment, note=note, parent_version=parent_version
        )
        if spec_json is not None:
            request.spec_json = spec_json
        else:
            request.rollback_to = rollback_to or 0
        return await self._call(Registry.VERSION_CREATE, request, registry_pb2.Version)

    async def list_versions(self, workspace: str, environment: str, *,
                            cached: bool = False) -> registry_pb2.VersionList:
        def request() -> registry_pb2.ListVersionsRequest:
            return registry_pb2.ListVersionsRequest(actor=self.actor, workspace=workspace, environment=environment)

        if cached:
            return await self._cached(Registry.VERSION_LIST, workspace, (environment,), request,
                                      registry_pb2.VersionList)
        return await self._call(Registry.VERSION_LIST, request(), registry_pb2.VersionList)

    async def get_version(self, workspace: str, environment: str, number: int, *, export_kind: str = "",
                          export_destination: str = "", export_digest: str = "",
                          cached: bool = False) -> registry_pb2.Version:
        """A version; with ``export_kind`` the registry records the read as ``version.exported`` (never
        answered from the cache: the record is the point)."""
        def request() -> registry_pb2.GetVersionRequest:
            return registry_pb2.GetVersionRequest(
                actor=self.actor, workspace=workspace, environment=environment, number=number,
                export_kind=export_kind, export_destination=export_destination, export_digest=export_digest,
            )

        if cached and not export_kind:
            return await self._cached(Registry.VERSION_GET, workspace, (environment, number), request,
                                      registry_pb2.Version)
        return await self._call(Registry.VERSION_GET, request(), registry_pb2.Version)

    async def register_dataset(
        self,
        workspace: str,
        *,
        name: str,
        digest: str,
        size: int,
        media_type: str,
        visibility: str,
        object_key: str,
    ) -> registry_pb2.Dataset:
        return await self._call(
            Registry.DATASET_REGISTER,
            registry_pb2.RegisterDatasetRequest(
                actor=self.actor,
                workspace=workspace,
                name=name,
                digest=digest,
                size=size,
                media_type=media_type,
                visibility=visibility,
                object_key=object_key,
            ),
            registry_pb2.Dataset,
        )

    async def list_datasets(self, workspace: str) -> registry_pb2.DatasetList:
        return await self._call(
            Registry.DATASET_LIST,
            registry_pb2.ListDatasetsRequest(actor=self.actor, workspace=workspace),
            registry_pb2.DatasetList,
        )

    async def delete_dataset(self, workspace: str, digest: str) -> registry_pb2.DatasetDeletion:
        return await self._call(
            Registry.DATASET_DELETE,
            registry_pb2.DeleteDatasetRequest(actor=self.actor, workspace=workspace, digest=digest),
            registry_pb2.DatasetDeletion,
        )

    async def get_dataset(
        self, workspace: str, digest: str, *, for_download: bool = False
    ) -> registry_pb2.Dataset:
        return await self._call(
            Registry.DATASET_GET,
            registry_pb2.GetDatasetRequest(
                actor=self.actor, workspace=workspace, digest=digest, for_download=for_download
            ),
            registry_pb2.Dataset,
        )

    async def create_assignment(self, request: registry_pb2.CreateAssignmentRequest) -> registry_pb2.Assignment:
        request.actor.CopyFrom(self.actor)
        return await self._call(Registry.ASSIGNMENT_CREATE, request, registry_pb2.Assignment)

    async def list_assignments(self, workspace: str) -> registry_pb2.AssignmentList:
        return await self._call(Registry.ASSIGNMENT_LIST,
                                registry_pb2.ListAssignmentsRequest(actor=self.actor, workspace=workspace),
                                registry_pb2.AssignmentList)

    async def get_assignment(self, workspace: str, name: str, *, for_run: bool = False) -> registry_pb2.Assignment:
        return await self._call(Registry.ASSIGNMENT_GET,
                                registry_pb2.GetAssignmentRequest(actor=self.actor, workspace=workspace, name=name,
                                                                  for_run=for_run),
                                registry_pb2.Assignment)

    async def leaderboard(self, workspace: str, assignment: str) -> registry_pb2.Leaderboard:
        return await self._call(Registry.ASSIGNMENT_LEADERBOARD,
                                registry_pb2.LeaderboardRequest(actor=self.actor, workspace=workspace,
                                                                assignment=assignment),
                                registry_pb2.Leaderboard)

    async def update_assignment(self, request: registry_pb2.UpdateAssignmentRequest) -> registry_pb2.RescoreTargets:
        request.actor.CopyFrom(self.actor)
        return await self._call(Registry.ASSIGNMENT_UPDATE, request, registry_pb2.RescoreTargets)

    async def admit_submission(self, workspace: str, assignment: str) -> registry_pb2.Admission:
        return await self._call(Registry.ASSIGNMENT_ADMIT, registry_pb2.AdmitSubmissionRequest(
            actor=self.actor, workspace=workspace, assignment=assignment), registry_pb2.Admission)

    async def gradebook(self, workspace: str, assignment: str) -> registry_pb2.Gradebook:
        return await self._call(Registry.ASSIGNMENT_GRADEBOOK, registry_pb2.GradebookRequest(
            actor=self.actor, workspace=workspace, assignment=assignment), registry_pb2.Gradebook)

    async def give_feedback(self, workspace: str, assignment: str, run_id: str, text: str) -> registry_pb2.Feedback:
        return await self._call(Registry.ASSIGNMENT_FEEDBACK, registry_pb2.FeedbackRequest(
            actor=self.actor, workspace=workspace, assignment=assignment, run_id=run_id, text=text),
            registry_pb2.Feedback)


class AuditClient(_Client):
    def __init__(self, link: NatsLink, actor: common_pb2.Actor, timeout: float, long_timeout: float) -> None:
        super().__init__(link, actor, timeout)
        self._long_timeout = long_timeout

    async def query(
        self,
        workspace: str,
        *,
        scope: int,
        actor_name: str = "",
        subject_prefix: str = "",
        type: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> audit_pb2.ActivityList:
        request = audit_pb2.QueryActivityRequest(
            actor=self.actor,
            workspace=workspace,
            scope=scope,
            subject_prefix=subject_prefix,
            actor_name=actor_name,
            type=type,
            limit=limit,
            after_seq=after_seq,
        )
        if since is not None:
            request.time.since.FromDatetime(since)
        if until is not None:
            request.time.until.FromDatetime(until)
        return await self._call(Audit.QUERY, request, audit_pb2.ActivityList)

    async def export(self, workspace: str, *, scope: int, for_verification: bool = False
                     ) -> audit_pb2.ExportActivityReply:
        return await self._call(
            Audit.EXPORT,
            audit_pb2.ExportActivityRequest(actor=self.actor, workspace=workspace, scope=scope,
                                            for_verification=for_verification),
            audit_pb2.ExportActivityReply,
            deadline=self._long_timeout,
        )

    async def verify(self, object_key: str, old_checkpoint: str = "") -> audit_pb2.VerifyActivityReply:
        return await self._call(
            Audit.VERIFY,
            audit_pb2.VerifyActivityRequest(actor=self.actor, object_key=object_key, old_checkpoint=old_checkpoint),
            audit_pb2.VerifyActivityReply,
            deadline=self._long_timeout,
        )

    async def checkpoint(self, workspace: str) -> audit_pb2.SignedCheckpoint:
        return await self._call(Audit.CHECKPOINT, audit_pb2.GetCheckpointRequest(actor=self.actor, workspace=workspace),
                                audit_pb2.SignedCheckpoint)

    async def inclusion_proof(self, workspace: str, index: int, size: int) -> audit_pb2.InclusionProof:
        return await self._call(Audit.INCLUSION_PROOF, audit_pb2.InclusionProofRequest(
            actor=self.actor, workspace=workspace, index=index, size=size), audit_pb2.InclusionProof)

    async def consistency_proof(self, workspace: str, old_size: int, new_size: int) -> audit_pb2.ConsistencyProof:
        return await self._call(Audit.CONSISTENCY_PROOF, audit_pb2.ConsistencyProofRequest(
            actor=self.actor, workspace=workspace, old_size=old_size, new_size=new_size), audit_pb2.ConsistencyProof)


class BuilderClient(_Client):
    """Locking a spec takes seconds (it resolves packages against the index): requests get the long timeout."""

    def __init__(self, link: NatsLink, actor: common_pb2.Actor, timeout: float, long_timeout: float) -> None:
        super().__init__(link, actor, timeout)
        self._long_timeout = long_timeout

    async def request(self, workspace: str, environment: str, version: int, spec_json: str,
                      parent_lock_digest: str) -> builder_pb2.Build:
        return await self._call(Builder.REQUEST, builder_pb2.RequestBuildRequest(
            actor=self.actor, workspace=workspace, environment=environment, version=version, spec_json=spec_json,
            parent_lock_digest=parent_lock_digest), builder_pb2.Build, deadline=self._long_timeout)

    async def get(self, build_id: str) -> builder_pb2.Build:
        return await self._call(Builder.GET, builder_pb2.GetBuildRequest(actor=self.actor, build_id=build_id),
                                builder_pb2.Build)

    async def list(self, workspace: str, environment: str, version: int = 0, limit: int = 100) -> builder_pb2.BuildList:
        return await self._call(Builder.LIST, builder_pb2.ListBuildsRequest(
            actor=self.actor, workspace=workspace, environment=environment, version=version, limit=limit),
            builder_pb2.BuildList)

    async def sbom(self, build_id: str) -> builder_pb2.Sbom:
        return await self._call(Builder.SBOM, builder_pb2.GetSbomRequest(actor=self.actor, build_id=build_id),
                                builder_pb2.Sbom)

    async def lock(self, lock_digest: str) -> builder_pb2.Lock:
        return await self._call(Builder.LOCK, builder_pb2.GetLockRequest(actor=self.actor, lock_digest=lock_digest),
                                builder_pb2.Lock)

    async def put_registry_credential(self, workspace: str, registry: str, username: str,
                                      password: str) -> builder_pb2.RegistryCredential:
        return await self._call(Builder.REGISTRY_CREDENTIAL_PUT, builder_pb2.PutRegistryCredentialRequest(
            actor=self.actor, workspace=workspace, registry=registry, username=username, password=password),
            builder_pb2.RegistryCredential)

    async def list_registry_credentials(self, workspace: str) -> builder_pb2.RegistryCredentialList:
        return await self._call(Builder.REGISTRY_CREDENTIAL_LIST, builder_pb2.ListRegistryCredentialsRequest(
            actor=self.actor, workspace=workspace), builder_pb2.RegistryCredentialList)

    async def delete_registry_credential(self, workspace: str, registry: str) -> builder_pb2.RegistryCredentialList:
        return await self._call(Builder.REGISTRY_CREDENTIAL_DELETE, builder_pb2.DeleteRegistryCredentialRequest(
            actor=self.actor, workspace=workspace, registry=registry), builder_pb2.RegistryCredentialList)

    async def put_package_index(self, workspace: str, name: str, url: str, kind: str, priority: int, username: str,
                                password: str, token: str) -> builder_pb2.PackageIndex:
        return await self._call(Builder.PACKAGE_INDEX_PUT, builder_pb2.PutPackageIndexRequest(
            actor=self.actor, workspace=workspace, name=name, url=url, kind=kind, priority=priority,
            username=username, password=password, token=token), builder_pb2.PackageIndex)

    async def list_package_indexes(self, workspace: str) -> builder_pb2.PackageIndexList:
        return await self._call(Builder.PACKAGE_INDEX_LIST, builder_pb2.ListPackageIndexesRequest(
            actor=self.actor, workspace=workspace), builder_pb2.PackageIndexList)

    async def delete_package_index(self, workspace: str, name: str) -> builder_pb2.PackageIndexList:
        return await self._call(Builder.PACKAGE_INDEX_DELETE, builder_pb2.DeletePackageIndexRequest(
            actor=self.actor, workspace=workspace, name=name), builder_pb2.PackageIndexList)

    async def export_image(self, workspace: str, source_ref: str, source_digest: str) -> builder_pb2.ExportedImage:
        return await self._call(Builder.EXPORT, builder_pb2.ExportImageRequest(
            actor=self.actor, workspace=workspace, source_ref=source_ref, source_digest=source_digest),
            builder_pb2.ExportedImage, deadline=self._long_timeout)

    async def publish(self, workspace: str, source_ref: str, source_digest: str,
                      destination: str) -> builder_pb2.PublishResult:
        """Copying an image can take minutes: the long timeout."""
        return await self._call(Builder.PUBLISH, builder_pb2.PublishRequest(
            actor=self.actor, workspace=workspace, source_ref=source_ref, source_digest=source_digest,
            destination=destination), builder_pb2.PublishResult, deadline=self._long_timeout)


class RunnerClient(_Client):
    GIT_FETCH_SECONDS = 150.0  # the runner fetches a Git repository before it answers (its git timeout: 60 s a step)

    async def submit(self, request: runner_pb2.SubmitRunRequest) -> runner_pb2.Run:
        request.actor.CopyFrom(self.actor)
        fetches = request.source.git_url and not request.code_digest
        return await self._call(Runner.SUBMIT, request, runner_pb2.Run,
                                deadline=self.GIT_FETCH_SECONDS if fetches else None)

    async def get(self, run_id: str) -> runner_pb2.Run:
        return await self._call(Runner.GET, runner_pb2.GetRunRequest(actor=self.actor, run_id=run_id), runner_pb2.Run)

    async def targets(self) -> runner_pb2.TargetList:
        return await self._call(Runner.TARGETS, runner_pb2.ListTargetsRequest(actor=self.actor), runner_pb2.TargetList)

    async def rescore(self, run_id: str, evaluation: runner_pb2.Evaluation) -> runner_pb2.Run:
        return await self._call(Runner.RESCORE, runner_pb2.RescoreRunRequest(actor=self.actor, run_id=run_id,
                                                                             evaluation=evaluation), runner_pb2.Run)

    async def cancel(self, run_id: str) -> runner_pb2.Run:
        return await self._call(Runner.CANCEL, runner_pb2.CancelRunRequest(actor=self.actor, run_id=run_id),
                                runner_pb2.Run)

    async def delete(self, run_id: str) -> runner_pb2.RunOutputs:
        return await self._call(Runner.DELETE, runner_pb2.GetRunRequest(actor=self.actor, run_id=run_id),
                                runner_pb2.RunOutputs)

    async def list(self, workspace: str, *, own_only: bool) -> runner_pb2.RunList:
        return await self._call(Runner.LIST, runner_pb2.ListRunsRequest(actor=self.actor, workspace=workspace,
                                                                        own_only=own_only), runner_pb2.RunList)

    async def outputs(self, run_id: str) -> runner_pb2.RunOutputs:
        return await self._call(Runner.OUTPUTS, runner_pb2.GetRunRequest(actor=self.actor, run_id=run_id),
                                runner_pb2.RunOutputs)

    async def put_credential(self, workspace: str, vendor: str, secret: dict[str, str],
                             options: dict[str, str]) -> runner_pb2.CredentialInfo:
        return await self._call(Runner.CREDENTIAL_PUT, runner_pb2.PutCredentialRequest(
            actor=self.actor, workspace=workspace, vendor=vendor, secret=secret, options=options),
            runner_pb2.CredentialInfo)

    async def list_credentials(self, workspace: str) -> runner_pb2.CredentialList:
        return await self._call(Runner.CREDENTIAL_LIST,
                                runner_pb2.ListCredentialsRequest(actor=self.actor, workspace=workspace),
                                runner_pb2.CredentialList)

    async def get_credential(self, workspace: str, vendor: str) -> runner_pb2.CredentialInfo:
        return await self._call(Runner.CREDENTIAL_GET, runner_pb2.GetCredentialRequest(
            actor=self.actor, workspace=workspace, vendor=vendor), runner_pb2.CredentialInfo)

    async def delete_credential(self, workspace: str, vendor: str) -> runner_pb2.CredentialInfo:
        return await self._call(Runner.CREDENTIAL_DELETE, runner_pb2.DeleteCredentialRequest(
            actor=self.actor, workspace=workspace, vendor=vendor), runner_pb2.CredentialInfo)

    # --- JupyterLab sessions (issue 12) ------------------------------------------------------------

    async def start_session(self, request: runner_pb2.StartSessionRequest) -> runner_pb2.Session:
        request.actor.CopyFrom(self.actor)
        return await self._call(Runner.SESSION_START, request, runner_pb2.Session)

    async def get_session(self, session_id: str) -> runner_pb2.Session:
        return await self._call(Runner.SESSION_GET, runner_pb2.GetSessionRequest(actor=self.actor,
                                                                                 session_id=session_id),
                                runner_pb2.Session)

    async def list_sessions(self, workspace: str, *, own_only: bool, active_only: bool = False
                            ) -> runner_pb2.SessionList:
        return await self._call(Runner.SESSION_LIST, runner_pb2.ListSessionsRequest(
            actor=self.actor, workspace=workspace, own_only=own_only, active_only=active_only), runner_pb2.SessionList)

    async def stop_session(self, session_id: str) -> runner_pb2.Session:
        return await self._call(Runner.SESSION_STOP, runner_pb2.StopSessionRequest(actor=self.actor,
                                                                                   session_id=session_id),
                                runner_pb2.Session)

    async def connect_session(self, session_id: str) -> runner_pb2.SessionConnection:
        """The proxy's upstream and the server token: for the gateway's proxy only, never a response body."""
        return await self._call(Runner.SESSION_CONNECT, runner_pb2.ConnectSessionRequest(
            actor=self.actor, session_id=session_id), runner_pb2.SessionConnection)

    async def touch_session(self, session_id: str, at: datetime | None = None) -> runner_pb2.Session:
        request = runner_pb2.TouchSessionRequest(actor=self.actor, session_id=session_id)
        request.at.FromDatetime(at or datetime.now(UTC))
        return await self._call(Runner.SESSION_TOUCH, request, runner_pb2.Session)

    async def capture_session(self, session_id: str) -> runner_pb2.SessionCapture:
        """What the running session installed beyond its version's lock (the in-image agent's capture)."""
        return await self._call(Runner.SESSION_CAPTURE, runner_pb2.GetSessionRequest(
            actor=self.actor, session_id=session_id), runner_pb2.SessionCapture, deadline=150)

    async def get_session_policy(self, workspace: str) -> runner_pb2.SessionPolicy:
        return await self._call(Runner.SESSION_POLICY_GET, runner_pb2.GetSessionPolicyRequest(
            actor=self.actor, workspace=workspace), runner_pb2.SessionPolicy)

    async def put_session_policy(self, policy: runner_pb2.SessionPolicy) -> runner_pb2.SessionPolicy:
        return await self._call(Runner.SESSION_POLICY_PUT, runner_pb2.PutSessionPolicyRequest(
            actor=self.actor, policy=policy), runner_pb2.SessionPolicy)

    # --- workspace quotas (issue 17) ---------------------------------------------------------------

    async def get_quota(self, workspace: str) -> runner_pb2.QuotaUsage:
        return await self._call(Runner.QUOTA_GET, runner_pb2.GetQuotaRequest(actor=self.actor, workspace=workspace),
                                runner_pb2.QuotaUsage)

    async def put_quota(self, quota: runner_pb2.WorkspaceQuota) -> runner_pb2.QuotaUsage:
        return await self._call(Runner.QUOTA_PUT, runner_pb2.PutQuotaRequest(actor=self.actor, quota=quota),
                                runner_pb2.QuotaUsage)

    # --- model serving (issue 15) -------------------------------------------------------------------

    async def deploy_model(self, request: serving_pb2.DeployModelRequest) -> serving_pb2.ModelVersion:
        request.actor.CopyFrom(self.actor)
        return await self._call(Runner.MODEL_DEPLOY, request, serving_pb2.ModelVersion)

    async def list_models(self, workspace: str, name: str = "") -> serving_pb2.ModelList:
        return await self._call(Runner.MODEL_LIST, serving_pb2.ListModelsRequest(
            actor=self.actor, workspace=workspace, name=name), serving_pb2.ModelList)

    async def get_model(self, workspace: str, name: str, version: int = 0) -> serving_pb2.ModelVersion:
        return await self._call(Runner.MODEL_GET, serving_pb2.GetModelRequest(
            actor=self.actor, workspace=workspace, name=name, version=version), serving_pb2.ModelVersion)

    async def activate_model(self, workspace: str, name: str, version: int) -> serving_pb2.ModelVersion:
        return await self._call(Runner.MODEL_ACTIVATE, serving_pb2.ActivateModelRequest(
            actor=self.actor, workspace=workspace, name=name, version=version), serving_pb2.ModelVersion)

    async def stop_model(self, workspace: str, name: str, version: int) -> serving_pb2.ModelVersion:
        return await self._call(Runner.MODEL_STOP, serving_pb2.StopModelRequest(
            actor=self.actor, workspace=workspace, name=name, version=version), serving_pb2.ModelVersion)

    async def route_model(self, workspace: str, name: str, version: int = 0) -> serving_pb2.ModelRoute:
        """The active version's upstream (or that version's): for the serving proxy only, never a response body."""
        return await self._call(Runner.MODEL_ROUTE, serving_pb2.RouteModelRequest(
            actor=self.actor, workspace=workspace, name=name, version=version), serving_pb2.ModelRoute)

    async def monitor_model(self, workspace: str, name: str, window: str, run_now: bool = False
                            ) -> serving_pb2.ModelMonitorReport:
        return await self._call(Runner.MODEL_MONITOR, serving_pb2.ModelMonitorRequest(
            actor=self.actor, workspace=workspace, name=name, window=window, run_now=run_now),
            serving_pb2.ModelMonitorReport)

    async def create_model_key(self, workspace: str, name: str, label: str,
                               rate_per_minute: int) -> serving_pb2.CreatedModelKey:
        return await self._call(Runner.MODEL_KEY_CREATE, serving_pb2.CreateModelKeyRequest(
            actor=self.actor, workspace=workspace, name=name, label=label, rate_per_minute=rate_per_minute),
            serving_pb2.CreatedModelKey)

    async def list_model_keys(self, workspace: str, name: str) -> serving_pb2.ModelKeyList:
        return await self._call(Runner.MODEL_KEY_LIST, serving_pb2.ListModelKeysRequest(
            actor=self.actor, workspace=workspace, name=name), serving_pb2.ModelKeyList)

    async def revoke_model_key(self, workspace: str, name: str, key_id: str) -> serving_pb2.ModelKey:
        return await self._call(Runner.MODEL_KEY_REVOKE, serving_pb2.RevokeModelKeyRequest(
            actor=self.actor, workspace=workspace, name=name, key_id=key_id), serving_pb2.ModelKey)

    async def check_model_key(self, secret: str) -> serving_pb2.CheckedModelKey:
        return await self._call(Runner.MODEL_KEY_CHECK, serving_pb2.CheckModelKeyRequest(
            actor=self.actor, secret=secret), serving_pb2.CheckedModelKey)
