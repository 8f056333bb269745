"""Request/reply endpoints of the runner (``runner.run.*``, ``runner.credential.*``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from nats.micro.service import Service
from reprolab.v1 import runner_pb2
from reprolab_common.db import transact
from reprolab_common.errors import Conflict, Invalid
from reprolab_common.nats import InFlight, endpoint
from reprolab_common.objectstore import ObjectStore
from reprolab_common.subjects import Runner
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from . import credstore, gitsource, notebook, quotas, service
from .config import RunnerSettings
from .credentials import Keyring
from .models import Run, Status
from .targets.base import target_class

PUT_ATTEMPTS = 5  # a credential PUT racing other PUTs/DELETEs of the same row is retried this often

STATUS = {Status.QUEUED: runner_pb2.RUN_STATUS_QUEUED, Status.STARTING: runner_pb2.RUN_STATUS_STARTING,
          Status.RUNNING: runner_pb2.RUN_STATUS_RUNNING, Status.SUCCEEDED: runner_pb2.RUN_STATUS_SUCCEEDED,
          Status.FAILED: runner_pb2.RUN_STATUS_FAILED, Status.CANCELLED: runner_pb2.RUN_STATUS_CANCELLED,
          Status.TIMED_OUT: runner_pb2.RUN_STATUS_TIMED_OUT}


def run_proto(run: Run) -> runner_pb2.Run:
    msg = runner_pb2.Run(
        id=run.id, workspace=run.workspace, environment=run.environment, version=run.version, image=run.image,
        code_digest=run.code_digest, command=json.loads(run.command_json), target=run.target,
        resources=runner_pb2.RunResources(cpu_millis=run.cpu_millis, memory_bytes=run.memory_bytes, pids=run.pids,
                                          timeout_seconds=run.timeout_seconds),
        network=bool(run.network), status=STATUS[Status(run.status)], exit_code=run.exit_code or 0, error=run.error,
        requested_by=run.requested_by, metrics_json=run.metrics_json, provenance_json=run.provenance_json,
        assignment=run.assignment, score=run.score,
        datasets=[runner_pb2.DatasetMount(digest=d["digest"], name=d["name"], mount=d["mount"])
                  for d in json.loads(run.datasets_json)],
        source=json_format.ParseDict(json.loads(run.source_json or "{}"), runner_pb2.CodeSource()),
    )
    msg.scoring, msg.score_error = service.scoring_state(run)
    msg.created_at.FromDatetime(run.created_at)
    if run.started_at:
        msg.started_at.FromDatetime(run.started_at)
    if run.finished_at:
        msg.finished_at.FromDatetime(run.finished_at)
    return msg


@dataclass
class Api:
    settings: RunnerSettings
    sessions: sessionmaker
    # (run, job message id = the run's id)
    enqueue: Callable[..., Awaitable[None]]
    wake_outbox: Callable[[], None]
    # Re-read on every use, so a rotation that edits the keyring file needs no restart.
    keyring: Callable[[], Keyring] | None = None
    # Where code fetched from a Git repository is kept (the code archives' store).
    store: ObjectStore | None = None

    def _keyring(self) -> Keyring:
        return self.keyring() if self.keyring else credstore.keyring_for(self.settings)

    def _resources(self, r: runner_pb2.RunResources) -> runner_pb2.RunResources:
        s = self.settings
        out = runner_pb2.RunResources(
            cpu_millis=r.cpu_millis or 1000, memory_bytes=r.memory_bytes or (1 << 30), pids=r.pids or 256,
            timeout_seconds=r.timeout_seconds or s.default_timeout_seconds)
        problems = []
        if not 10 <= out.cpu_millis <= 64_000:
            problems.append(("resources.cpu", "must be between 0.01 and 64 CPUs"))
        if not 16 << 20 <= out.memory_bytes <= 256 << 30:
            problems.append(("resources.memory", "must be between 16 MiB and 256 GiB"))
        if not 16 <= out.pids <= 65_536:
            problems.append(("resources.pids", "must be between 16 and 65536"))
        if not 1 <= out.timeout_seconds <= s.max_timeout_seconds:
            problems.append(("resources.timeout", f"must be between 1 and {s.max_timeout_seconds} seconds"))
        if problems:
            raise Invalid("; ".join(f"{loc} {msg}" for loc, msg in problems), errors=problems)
        return out

    async def submit(self, r: runner_pb2.SubmitRunRequest) -> runner_pb2.Run:
        try:
            target_class(r.target)
        except ValueError as exc:
            raise Invalid(str(exc), errors=[("target", str(exc))]) from exc
        if r.target not in self.settings.enabled_targets:
            wanted = json.dumps([*self.settings.enabled_targets, r.target], separators=(",", ":"))
            detail = (f"runs cannot use {r.target!r} on this platform; choose one of: "
                      f"{', '.join(self.settings.enabled_targets)}")
            # only the platform's admin can act on the operator's setting; others are told whom to ask
            detail += (f" (an operator enables it with REPROLAB_RUNNER_ENABLED_TARGETS='{wanted}')"
                       if r.actor.platform_admin else " (ask the platform's administrator to enable it)")
            raise Invalid(detail, errors=[("target", detail)])
        await self._check_remote(r)
        await self._code_source(r)
        if not r.command:
            raise Invalid("a run needs a command, e.g. [\"python\", \"train.py\"]", errors=[("command", "empty")])
        if r.assignment:
            ev = r.evaluation
            missing = [name for name in ("image", "code_object_key", "labels_object_key", "predictions")
                       if not getattr(ev, name)]
            if missing:
                raise Invalid(f"a run of assignment {r.assignment!r} needs its evaluation's "
                              f"{', '.join(missing)}", errors=[(f"evaluation.{m}", "missing") for m in missing])
        resources = self._resources(r.resources)

        def _create(s: Any) -> Run:
            quotas.admit(s, workspace=r.workspace, user_id=r.actor.user_id, what="run")  # 429 beyond the quota
            return service.create_run(session=s, request=r, resources=resources)

        run = await transact(self.sessions, _create)
        self.wake_outbox()
        await self.enqueue(run)
        return run_proto(run)

    async def _code_source(self, r: runner_pb2.SubmitRunRequest) -> None:
        """Fill the code and command a source names: a Git repository is fetched now and pinned to its
        commit (an unreachable or refused URL is the submitter's 4xx, not a failed run later); a notebook
        becomes the executor's command."""
        src = r.source
        if src.notebook:
            if r.command:
                raise Invalid("a notebook run takes no command (its cells are the program)",
                              errors=[("command", "not with a notebook")])
            r.command.extend(notebook.command(src.notebook))
            src.notebook = notebook.check_path(src.notebook)
        if src.git_url and src.git_commit and r.code_digest:
            pass  # an earlier run's fetched commit, run again: its archive is already kept
        elif src.git_url:
            if r.code_digest:
                raise Invalid("give either uploaded code or a Git repository, not both",
                              errors=[("code", "not with a Git repository")])
            if self.store is None:
                raise Invalid("this runner keeps no code store; Git repositories cannot be fetched here",
                              errors=[("source.git_url", "no store")])
            fetched = await gitsource.fetch(src.git_url, src.git_ref, workspace=r.workspace,
                                            settings=self.settings, store=self.store)
            r.code_digest, r.code_object_key, src.git_commit = fetched.digest, fetched.object_key, fetched.commit
        elif src.git_ref or src.git_commit:
            raise Invalid("a Git ref needs a Git URL", errors=[("source.git_url", "missing")])
        if not r.code_digest:
            raise Invalid("a run needs code: an uploaded archive or a Git repository",
                          errors=[("code", "missing")])

    async def _check_remote(self, r: runner_pb2.SubmitRunRequest) -> None:
        """Refuse up front what a remote run could only fail on later: no object store to presign
        URLs from, or (clouds) no usable credentials of the requester for the vendor."""
        if target_class(r.target).remote and self.settings.common.object_store != "s3":
            detail = (f"target {r.target!r} runs elsewhere and fetches inputs and uploads outputs through presigned "
                      "URLs, which the local object store cannot hand out; an operator must configure "
                      "REPROLAB_OBJECT_STORE=s3 (an S3 API the target can reach)")
            raise Invalid(detail, errors=[("target", detail)])
        if r.target in credstore.VENDORS:
            keyring = self._keyring()
            try:
                await transact(self.sessions, lambda s: credstore.resolve(
                    s, keyring, workspace=r.workspace, user_id=r.actor.user_id, vendor=r.target))
            except credstore.CredentialMissing as exc:
                raise Invalid(str(exc), errors=[("target", str(exc))]) from None

    async def get(self, r: runner_pb2.GetRunRequest) -> runner_pb2.Run:
        return run_proto(await transact(self.sessions, lambda s: service.get_run(session=s, run_id=r.run_id)))

    async def rescore(self, r: runner_pb2.RescoreRunRequest) -> runner_pb2.Run:
        """Queue a succeeded assignment run for scoring with a new evaluation (the gateway checked that
        the caller manages the run's workspace and that the run belongs to the assignment)."""
        run = await transact(self.sessions, lambda s: service.rescore(session=s, run_id=r.run_id,
                                                                          new=r.evaluation))
        # a job id of its own: the stream drops a second message with the run's id as a duplicate
        await self.enqueue(run, f"{run.id}.rescore.{r.evaluation.revision}")
        return run_proto(run)

    async def cancel(self, r: runner_pb2.CancelRunRequest) -> runner_pb2.Run:
        run = await transact(self.sessions, lambda s: service.request_cancel(session=s, run_id=r.run_id))
        self.wake_outbox()
        return run_proto(run)

    async def delete(self, r: runner_pb2.GetRunRequest) -> runner_pb2.RunOutputs:
        def _delete(s: Any) -> runner_pb2.RunOutputs:
            run, files = service.delete_run(session=s, run_id=r.run_id, actor=r.actor)
            # the reply is made before the commit: the deleted rows' attributes expire with it
            return runner_pb2.RunOutputs(run_id=run.id, files=[
                runner_pb2.OutputFile(name=o.name, size=o.size, sha256=o.sha256, object_key=o.object_key)
                for o in files])

        reply = await transact(self.sessions, _delete)
        self.wake_outbox()
        return reply

    async def list(self, r: runner_pb2.ListRunsRequest) -> runner_pb2.RunList:
        runs = await transact(self.sessions, lambda s: service.list_runs(
            session=s, workspace=r.workspace, user_id=r.actor.user_id if r.own_only else None))
        return runner_pb2.RunList(items=[run_proto(x) for x in runs])

    async def targets(self, r: runner_pb2.ListTargetsRequest) -> runner_pb2.TargetList:
        return runner_pb2.TargetList(items=[
            runner_pb2.Target(name=name, needs_credentials=name in credstore.VENDORS)
            for name in self.settings.enabled_targets])

    async def outputs(self, r: runner_pb2.GetRunRequest) -> runner_pb2.RunOutputs:
        def _read(s: Any) -> runner_pb2.RunOutputs:
            run = service.get_run(session=s, run_id=r.run_id)
            files = [runner_pb2.OutputFile(name=o.name, size=o.size, sha256=o.sha256, object_key=o.object_key)
                     for o in service.outputs(session=s, run_id=r.run_id)]
            return runner_pb2.RunOutputs(run_id=run.id, files=files, metrics_json=run.metrics_json)

        return await transact(self.sessions, _read)

    # --- credentials: the secret arrives in put and never leaves; replies carry metadata only ---------

    async def credential_put(self, r: runner_pb2.PutCredentialRequest) -> runner_pb2.CredentialInfo:
        credstore.validate(r.vendor, dict(r.secret), dict(r.options), workspace=r.workspace)
        keyring = self._keyring()
        for attempt in range(PUT_ATTEMPTS):
            try:
                info = await transact(self.sessions, lambda s: credstore.info(credstore.put(
                    s, keyring, actor=r.actor, workspace=r.workspace, vendor=r.vendor, secret=dict(r.secret),
                    options=dict(r.options))))
                break
            # Another request changed the row between our read and our write: a PUT inserted it first
            # (IntegrityError) or a DELETE removed the row we were updating (StaleDataError; SQLite has
            # no row lock). Either way the next attempt reads the new state: the last writer wins.
            except (IntegrityError, StaleDataError):
                if attempt == PUT_ATTEMPTS - 1:
                    raise Conflict(f"your {r.vendor} credentials in {r.workspace!r} kept changing while this "
                                   "request ran; send it again") from None
        self.wake_outbox()
        return info

    async def credential_get(self, r: runner_pb2.GetCredentialRequest) -> runner_pb2.CredentialInfo:
        return await transact(self.sessions, lambda s: credstore.info(credstore.get(
            s, workspace=r.workspace, user_id=r.actor.user_id, vendor=r.vendor)))

    async def credential_list(self, r: runner_pb2.ListCredentialsRequest) -> runner_pb2.CredentialList:
        return await transact(self.sessions, lambda s: runner_pb2.CredentialList(items=[
            credstore.info(row) for row in credstore.list_for(s, workspace=r.workspace, user_id=r.actor.user_id)]))

    async def credential_delete(self, r: runner_pb2.DeleteCredentialRequest) -> runner_pb2.CredentialInfo:
        info = await transact(self.sessions, lambda s: credstore.info(credstore.delete(
            s, actor=r.actor, workspace=r.workspace, vendor=r.vendor)))
        self.wake_outbox()
        return info


async def add_endpoints(micro: Service, api: Api, in_flight: InFlight) -> None:
    for subject, req_type, fn in (
        (Runner.SUBMIT, runner_pb2.SubmitRunRequest, api.submit),
        (Runner.GET, runner_pb2.GetRunRequest, api.get),
        (Runner.CANCEL, runner_pb2.CancelRunRequest, api.cancel),
        (Runner.DELETE, runner_pb2.GetRunRequest, api.delete),
        (Runner.RESCORE, runner_pb2.RescoreRunRequest, api.rescore),
        (Runner.LIST, runner_pb2.ListRunsRequest, api.list),
        (Runner.OUTPUTS, runner_pb2.GetRunRequest, api.outputs),
        (Runner.TARGETS, runner_pb2.ListTargetsRequest, api.targets),
        (Runner.CREDENTIAL_PUT, runner_pb2.PutCredentialRequest, api.credential_put),
        (Runner.CREDENTIAL_GET, runner_pb2.GetCredentialRequest, api.credential_get),
        (Runner.CREDENTIAL_LIST, runner_pb2.ListCredentialsRequest, api.credential_list),
        (Runner.CREDENTIAL_DELETE, runner_pb2.DeleteCredentialRequest, api.credential_delete),
    ):
        await micro.add_endpoint(name=subject.value.replace(".", "-"), subject=subject.value,
                                 handler=in_flight.wrap(endpoint(req_type, fn)))
