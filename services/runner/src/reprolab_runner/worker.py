"""The run worker: consumes ``jobs.run``, drives a run on its target, records exactly one outcome.

The target's handle is stored as soon as the run is submitted, so a runner killed mid-run resumes
the same container/Job/VM when JetStream redelivers the job (instead of starting a second one);
the terminal state is written once (``service.finish``) and only then is the job acked. The
reconciler removes whatever a target still holds for runs that ended or that nobody knows.

Remote targets (kubernetes and the clouds) never see the object store's credentials: the run's
request carries presigned GET URLs for its inputs and one presigned PUT URL per output name into
the run's transfer area (``targets.base.transfer_key``); the outputs are then collected from there
exactly as a local run's are. A cloud target is built per run with the credentials its requester
stored for that vendor (``credstore``); they never reach a log, an event or an error message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import shutil
import tarfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from reprolab.v1 import jobs_pb2, registry_pb2, runner_pb2
from reprolab_common.canonical import canonical_json
from reprolab_common.db import in_transaction, transact
from reprolab_common.errors import ProblemError, ServiceUnavailable
from reprolab_common.hostpaths import HostPaths
from reprolab_common.nats import (
    LOG_END_HEADER,
    SCHEMA_VERSION,
    JobSubject,
    Stream,
    call,
    ensure_consumer,
    keep_in_progress,
)
from reprolab_common.objectstore import ObjectNotFound, ObjectStore, ObjectStoreUnsupported
from reprolab_common.subjects import Registry
from sqlalchemy import or_, select
from sqlalchemy.orm import sessionmaker

from . import hints, inside, service
from .config import RunnerSettings
from .models import TERMINAL, Output, Run, Status
from .targets.base import (
    OUTPUT_NAMES,
    Input,
    Limits,
    RunRequest,
    State,
    Target,
    TargetError,
    target_class,
    transfer_key,
)
from .targets.base import Status as TargetStatus

log = logging.getLogger(__name__)
END_HEADER = LOG_END_HEADER
SCORE_FILE = "score.json"
EVAL_TIMEOUT_SECONDS = 600
CLOUD_TARGETS = ("aws", "azure", "openstack")
STATUS_ERROR_GRACE_SECONDS = 120.0
"""A remote target's API failing this long in a row (while a run is polled) fails the run."""
ENDED = (State.EXITED, State.FAILED, State.GONE)
"""Target states after which a run is only collected and cleaned up."""
QUICK_LOOK_SECONDS = 0.05
"""Shortest pause between two status looks at a young local run (see ``Worker._until_next_poll``)."""
LOCAL_PREFIX = "reprolab-run-"
"""The local target's run folders are named like its containers (``targets.local.NAME_PREFIX``)."""
_RUN_FOLDER = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:\.eval)?$")
"""A run's folder in the work root: its id (a UUID), or its evaluation's (``<id>.eval``)."""


def redact(text: str, secrets: Any) -> str:
    """``text`` with every secret value (of at least 4 characters) replaced by ``***``."""
    for value in secrets or ():
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def job_for(run: Run) -> jobs_pb2.RunJob:
    job = jobs_pb2.RunJob(schema_version=SCHEMA_VERSION, run_id=run.id, workspace=run.workspace,
                          image_digest=run.image, command=json.loads(run.command_json), target=run.target)
    job.actor.user_id, job.actor.username = run.requested_by_id, run.requested_by
    job.requested_at.FromDatetime(run.created_at)
    return job


def provenance(run: Run) -> str:
    command = json.loads(run.command_json)
    return canonical_json({
        "run": run.id, "workspace": run.workspace, "environment": f"{run.environment}/v{run.version}",
        "image": run.image, "code": run.code_digest,
        "datasets": sorted(d["digest"] for d in json.loads(run.datasets_json)),
        "command": command, "command_digest": "sha256:" + hashlib.sha256(canonical_json(command)).hexdigest(),
        "target": run.target, "network": bool(run.network),
        **({"source": source} if (source := json.loads(run.source_json or "{}")) else {}),
        "limits": {"cpu_millis": run.cpu_millis, "memory_bytes": run.memory_bytes, "pids": run.pids,
                   "timeout_seconds": run.timeout_seconds},
    }).decode()


class Worker:
    def __init__(self, *, settings: RunnerSettings, sessions: sessionmaker, js: JetStreamContext,
                 store: ObjectStore, wake_outbox: Any, nc: Any = None) -> None:
        self.settings = settings
        # Request/reply to the registry (RecordScore); the JetStream context's connection by default.
        self.nc = nc if nc is not None else getattr(js, "_nc", None)
        self.sessions = sessions
        self.js = js
        self.store = store
        self.wake_outbox = wake_outbox
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.host_paths = HostPaths.of({settings.work_root(): "<runner-work>",
                                        settings.common.objects_dir(): "<objects>", settings.common.data_dir: "<data>"})
        self.tasks: set[asyncio.Task] = set()
        self._k8s_api: Any = None
        self._status_errors: dict[str, float] = {}
        self._driving: set[str] = set()  # run ids this process handles now (their folders are not leftovers)

    # --- targets -----------------------------------------------------------------------------

    def target(self, name: str, run: Run | None = None) -> Target:
        """The target a run goes to. A cloud target is built per run, with the credentials the run's
        requester stored for that vendor in the run's workspace (``credstore.CredentialMissing``, a
        TargetError saying how to add them, when there are none)."""
        cls = target_class(name)
        if name in CLOUD_TARGETS:
            if run is None:
                raise TargetError(f"the {name} target needs a run's requester's credentials")
            return self._cloud_target(name, run.workspace, run.requested_by_id)
        if name == "kubernetes":
            return cls(self.settings, namespace=self.settings.kubernetes_namespace, api_client=self._k8s_client(),
                       fetcher_image=self.settings.kubernetes_fetcher_image,
                       allowed_egress_cidrs=self.settings.kubernetes_egress_cidrs,
                       allow_dns=self.settings.kubernetes_allow_dns, installation=self.settings.installation_id(),
                       store_ports=self.settings.kubernetes_store_ports,
                       cluster_cidrs=self.settings.kubernetes_cluster_cidrs,
                       storage=self.settings.kubernetes_run_storage,
                       storage_class=self.settings.kubernetes_storage_class)
        return cls(self.settings, docker_url=self.settings.docker_url, store=self.store,
                   installation=self.settings.installation_id())

    def _cloud_target(self, name: str, workspace: str, user_id: str) -> Target:
        """A cloud target with one user's credentials: the non-secret options (region, endpoint,
        image...) and the secret fields both go to the SDK; the secrets are remembered only to be
        blanked out of any message."""
        cred = self.credential(workspace, user_id, name)
        credentials, options = cred.target_args()
        target = target_class(name)(self.settings, credentials=credentials, options=options, store=self.store,
                                    installation=self.settings.installation_id())
        target.secrets = [v for v in cred.secret.values() if isinstance(v, str)]
        return target

    def _k8s_client(self) -> Any:
        """One API client per runner: from ``kubernetes_kubeconfig``, else the in-cluster account."""
        if self._k8s_api is None:
            import kubernetes

            try:
                if self.settings.kubernetes_kubeconfig:
                    self._k8s_api = kubernetes.config.new_client_from_config(
                        config_file=self.settings.kubernetes_kubeconfig)
                else:
                    kubernetes.config.load_incluster_config()
                    self._k8s_api = kubernetes.client.ApiClient()
            except (kubernetes.config.ConfigException, OSError) as exc:
                raise TargetError(f"the kubernetes target has no cluster: {exc}; set "
                                  "REPROLAB_RUNNER_KUBERNETES_KUBECONFIG or run the runner in the cluster") from None
        return self._k8s_api

    def credential(self, workspace: str, user_id: str, vendor: str) -> Any:
        """The stored credential (decrypted) of one user for one vendor in one workspace."""
        from . import credstore
        from .credentials import CredentialError

        try:
            keyring = credstore.keyring_for(self.settings)
            return in_transaction(self.sessions, lambda s: credstore.resolve(
                s, keyring, workspace=workspace, user_id=user_id, vendor=vendor))
        except CredentialError as exc:
            raise TargetError(f"the {vendor} credentials cannot be read: {exc}") from None

    def _build(self, run: Run) -> Target:
        """``target`` for a run, every failure a TargetError whose message holds no secret."""
        try:
            return self.target(run.target, run)
        except TargetError:
            raise
        except Exception as exc:  # an SDK refusing its configuration (bad endpoint URL, ...)
            raise TargetError(f"the {run.target} target could not be set up: {type(exc).__name__}: {exc}") from None

    async def _status(self, run_id: str, target: Target, handle: str) -> TargetStatus:
        """The target's status; a remote API failing is retried, and fails the run only after
        ``STATUS_ERROR_GRACE_SECONDS`` of nothing but failures."""
        loop = asyncio.get_running_loop()
        try:
            status = await asyncio.to_thread(target.status, handle)
        except TargetError as exc:
            first = self._status_errors.setdefault(run_id, loop.time())
            if loop.time() - first < STATUS_ERROR_GRACE_SECONDS:
                log.warning("status of run %s: %s", run_id, redact(str(exc), getattr(target, "secrets", ())))
                return TargetStatus(State.PENDING)
            return TargetStatus(State.FAILED, reason=f"the target stopped answering: {exc}")
        self._status_errors.pop(run_id, None)
        return status

    async def enqueue(self, run: Run, msg_id: str = "") -> None:
        await self.js.publish(JobSubject.RUN.value, job_for(run).SerializeToString(), stream=Stream.JOBS.value,
                              headers={"Nats-Msg-Id": msg_id or run.id}, timeout=10)

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_consumer(self.js, Stream.JOBS, self.settings.durable, JobSubject.RUN,
                              ack_wait=self.settings.ack_wait_seconds, max_deliver=self.settings.max_deliver)
        sub = await self.js.pull_subscribe(JobSubject.RUN.value, durable=self.settings.durable,
                                           stream=Stream.JOBS.value)
        while await self._slot(stop):
            try:
                msgs = await sub.fetch(1, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                self.slots.release()
                continue
            except Exception as exc:  # NATS restarting: keep trying
                self.slots.release()
                log.warning("fetching run jobs failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            task = asyncio.create_task(self._guarded(msgs[0]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        # A pull subscription's inbox collects the server's replies to expired fetches, which no one
        # reads; left subscribed, the connection's drain() waits on them until its timeout.
        try:
            await sub.unsubscribe()
        except Exception as exc:
            log.warning("unsubscribing from run jobs failed: %s", exc)

    async def _slot(self, stop: asyncio.Event) -> bool:
        """Take a run slot, or give up when ``stop`` is set first (every slot may be busy for the length
        of a run, and a stopping runner must not wait for one: its runs are resumed by the next)."""
        if stop.is_set():
            return False
        acquire = asyncio.ensure_future(self.slots.acquire())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not acquire.done():
            acquire.cancel()
            await asyncio.gather(acquire, return_exceptions=True)
        got = acquire.done() and not acquire.cancelled() and acquire.exception() is None
        if got and stop.is_set():
            self.slots.release()
            return False
        return got

    async def _guarded(self, msg: Any) -> None:
        try:
            await self.handle(msg)
        except Exception:
            log.exception("run job crashed; it will be redelivered")
        finally:
            self.slots.release()

    async def _until_next_poll(self, run_id: str, target: Target, handle: str, since: float) -> None:
        """Wait ``poll_seconds`` until the next full poll (cancel requests, logs, status), returning early
        when the run ended. A local run is looked at more often while it is young: most runs are short,
        and one that exited 20 ms after it started should not wait up to ``poll_seconds`` to be recorded.
        The looks back off with the run's age (half of it, at least ``QUICK_LOOK_SECONDS``: about five
        more status requests per run), and stop once it is ``2 * poll_seconds`` old.
        A remote target's status is a cloud or cluster API call, and its runs take minutes: no looks."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.settings.poll_seconds
        while not target.remote:
            step = max(QUICK_LOOK_SECONDS, (loop.time() - since) / 2)
            if loop.time() + step >= end:
                break
            await asyncio.sleep(step)
            if (await self._status(run_id, target, handle)).state in ENDED:
                return
        await asyncio.sleep(max(0.0, end - loop.time()))

    async def _wait(self, run_id: str, target: Target, handle: str,
                    each: Callable[[], Awaitable[None]] | None = None) -> TargetStatus:
        """Poll the target until the run ended and return that last status; ``each`` runs before every
        full look (a run's cancel check and log streaming)."""
        since = asyncio.get_running_loop().time()
        while True:
            if each is not None:
                await each()
            status = await self._status(run_id, target, handle)
            if status.state in ENDED:
                self._status_errors.pop(run_id, None)  # a failure by grace expiry leaves its first error
                return status
            await self._until_next_poll(run_id, target, handle, since)

    async def handle(self, msg: Any) -> None:
        job = jobs_pb2.RunJob()
        try:
            job.ParseFromString(msg.data)
        except Exception:
            log.error("undecodable run job dropped")
            await msg.term()
            return
        run = await transact(self.sessions, lambda s: s.get(Run, job.run_id))
        if run is None or (run.status in TERMINAL and not service.needs_scoring(run)):
            await msg.ack()
            return
        heartbeat = asyncio.create_task(keep_in_progress(msg, self.settings.ack_wait_seconds))
        self._driving.add(run.id)
        try:
            if run.status in TERMINAL:  # redelivered after the run ended but before it was scored
                await self._score(run)
                await msg.ack()
            else:
                await self._drive(run, msg)
        finally:
            self._driving.discard(run.id)
            heartbeat.cancel()

    def _workdir(self, run_id: str) -> Path:
        path = self.settings.work_root() / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _download(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as fh:
            for chunk in self.store.open_chunks(key):
                fh.write(chunk)
        return dest

    def _input(self, target: Target, key: str, mount: str, dest: Path, sha256: str, expires: int) -> Input:
        """A local file for the local target (bind-mounted), a presigned GET URL for a remote one."""
        if target.remote:
            return Input(mount=mount, url=self.store.presigned_get_url(key, expires), sha256=sha256)
        return Input(mount=mount, path=self._download(key, dest), sha256=sha256)

    def _output_urls(self, target: Target, run_id: str, expires: int) -> dict[str, str]:
        """One presigned PUT URL per output name into the run's transfer area (remote targets)."""
        if not target.remote:
            return {}
        return {name: self.store.presigned_put_url(transfer_key(run_id, name), expires) for name in OUTPUT_NAMES}

    def _request(self, run: Run, target: Target) -> RunRequest:
        """Inputs as local files (the local target bind-mounts them) or presigned URLs (remote targets)."""
        work = self._workdir(run.id)
        expires = run.timeout_seconds + self.settings.url_slack_seconds
        suffix = ".zip" if run.code_object_key.endswith(".zip") else ".tar.gz"
        code = self._input(target, run.code_object_key, "/work", work / "inputs" / f"code{suffix}",
                           run.code_digest.removeprefix("sha256:"), expires)
        datasets = [self._input(target, d["object_key"], d["mount"], work / "inputs" / "data" / d["name"],
                                d["digest"].removeprefix("sha256:"), expires) for d in json.loads(run.datasets_json)]
        return RunRequest(run_id=run.id, image=run.image, command=json.loads(run.command_json), code=code,
                          datasets=datasets, limits=Limits(cpu_millis=run.cpu_millis, memory_bytes=run.memory_bytes,
                                                           pids=run.pids, timeout_seconds=run.timeout_seconds,
                                                           network=bool(run.network)),
                          output_urls=self._output_urls(target, run.id, expires))

    async def _drive(self, run: Run, msg: Any) -> None:
        handle = run.handle
        try:
            target = await asyncio.to_thread(self._build, run)
        except TargetError as exc:
            # without a target nothing can be polled or removed; the reconciler finds what is left
            verb = "could not start" if not handle else "can no longer be followed"
            await self._finish(run, None, "", Status.FAILED, error=f"the run {verb}: {exc}")
            await msg.ack()
            return
        if not handle:
            try:
                request = await asyncio.to_thread(self._request, run, target)
                handle = await asyncio.to_thread(target.submit, request)
            except (TargetError, KeyError, OSError, ObjectStoreUnsupported) as exc:
                await self._finish(run, target, "", Status.FAILED, error=f"the run could not start: {exc}")
                await msg.ack()
                return
            recorded = await transact(self.sessions, lambda s: service.started(session=s, run_id=run.id,
                                                                                    handle=handle))
            if recorded is None:  # deleted while starting (cancelled first): nothing may keep running
                log.info("run %s was deleted while it started; removing what was started", run.id)
                await self._cleanup(run.id, target, handle)
                shutil.rmtree(self.settings.work_root() / run.id, ignore_errors=True)
                await msg.ack()
                return
            run = recorded
            self.wake_outbox()
        sent = 0
        cancelled = False

        async def look() -> None:
            nonlocal sent, cancelled
            fresh = await transact(self.sessions, lambda s: s.get(Run, run.id))
            # gone: cancelled (it ends at once now) and then deleted before its container stopped
            if (fresh is None or fresh.cancel_requested) and not cancelled:
                await asyncio.to_thread(target.cancel, handle)
                cancelled = True
            sent = await self._publish_logs(run.id, target, handle, sent)

        status = await self._wait(run.id, target, handle, look)
        await self._publish_logs(run.id, target, handle, sent)  # the lines written before it ended
        if cancelled:
            outcome, error = Status.CANCELLED, "cancelled by request"
        elif status.timed_out:
            outcome, error = Status.TIMED_OUT, f"stopped after its {run.timeout_seconds} s timeout"
        elif status.state == State.EXITED and status.exit_code == 0:
            outcome, error = Status.SUCCEEDED, ""
        elif status.state == State.EXITED:
            outcome = Status.FAILED
            error = f"exited with code {status.exit_code}" + (f": {status.reason}" if status.reason else "")
            if advice := await asyncio.to_thread(self._hint, run, target, handle):
                error += f". Hint: {advice}"
        elif status.state == State.GONE:
            what = {"kubernetes": "Job", "local": "container"}.get(run.target, "VM")
            outcome, error = Status.FAILED, f"the run's {what} disappeared (removed outside Reprolab?)" + (
                f": {status.reason}" if status.reason else "")
        else:
            outcome, error = Status.FAILED, status.reason or "the target failed"
        await self._finish(run, target, handle, outcome, exit_code=status.exit_code, error=error)
        fresh = await transact(self.sessions, lambda s: s.get(Run, run.id))
        if fresh is not None and service.needs_scoring(fresh):
            await self._score(fresh)
        await msg.ack()

    async def _publish_logs(self, run_id: str, target: Target, handle: str, sent: int) -> int:
        try:
            lines = await asyncio.to_thread(lambda: list(target.logs(handle)))
        except Exception:
            return sent
        if len(lines) > sent:
            try:
                await self.js.publish(f"logs.run.{run_id}", "\n".join(lines[sent:]).encode(), timeout=5)
            except Exception as exc:
                log.warning("could not publish run log: %s", exc)
                return sent
        return len(lines)

    def _collect(self, run: Run, target: Target, handle: str) -> tuple[str, list[tuple[str, int, str, str]], str]:
        """Outputs into the object store (size-capped); returns (metrics json, outputs, problem)."""
        out_dir = self._workdir(run.id) / "outputs"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        problem = ""
        try:
            self._gather(run.id, target, handle, out_dir)
        except TargetError as exc:
            problem = str(exc)
        try:
            (out_dir / "logs.txt").write_text("\n".join(target.logs(handle)) + "\n")
        except Exception as exc:
            log.warning("could not read the logs of %s: %s", run.id, exc)
        inside.take(out_dir, self._workdir(run.id))  # the agent's chain becomes events, not an output
        outputs, total, metrics = [], 0, ""
        for path in sorted(p for p in out_dir.rglob("*") if p.is_file() and not p.is_symlink()):
            size = path.stat().st_size
            total += size
            if total > self.settings.max_output_bytes:
                problem = problem or f"outputs exceed {self.settings.max_output_bytes} bytes; the rest were dropped"
                break
            name = path.relative_to(out_dir).as_posix()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            key = f"runs/{run.id}/outputs/{name}"
            self.store.put_file(key, path)
            outputs.append((name, size, digest, key))
            if name == "metrics.json":
                try:
                    doc = json.loads(path.read_text())
                    metrics = json.dumps(doc, sort_keys=True) if isinstance(doc, dict) else ""
                    if not metrics:
                        problem = problem or "metrics.json must hold a JSON object"
                except ValueError as exc:
                    problem = problem or f"metrics.json is not JSON: {exc}"
        return metrics, outputs, problem

    def _gather(self, run_id: str, target: Target, handle: str, dest: Path) -> None:
        """A run's outputs into ``dest``: from the target (local), or unpacked from the
        ``outputs.tar.gz`` a remote run uploaded to its transfer area (capped at max_output_bytes)."""
        if not target.remote:
            target.collect(handle, dest)
            return
        key, limit = transfer_key(run_id, "outputs.tar.gz"), self.settings.max_output_bytes
        try:
            if self.store.size(key) > limit + (1 << 20):
                raise TargetError(f"outputs exceed {limit} bytes; none were kept")
            archive = self._download(key, dest.parent / "outputs.tar.gz")
        except ObjectNotFound:
            raise TargetError("the run uploaded no outputs (outputs.tar.gz)") from None
        total, members, cut = 0, [], False
        try:
            with tarfile.open(archive, "r:gz") as tf:
                for member in tf:
                    if not (member.isfile() or member.isdir()):
                        continue  # no links or devices from a run's outputs
                    total += member.size
                    if total > limit:
                        cut = True
                        break
                    members.append(member)
                tf.extractall(dest, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise TargetError(f"the run's outputs.tar.gz is unreadable: {exc}") from None
        finally:
            archive.unlink(missing_ok=True)
        if cut:
            raise TargetError(f"outputs exceed {limit} bytes; the rest were dropped")

    def _drop_transfer(self, run_id: str) -> None:
        for name in OUTPUT_NAMES:
            try:
                self.store.delete(transfer_key(run_id, name))
            except Exception as exc:
                log.warning("could not remove %s of run %s: %s", name, run_id, exc)

    def _hint(self, run: Run, target: Target, handle: str) -> str:
        """What to change, when the end of a failed run's log shows a known cause (best effort)."""
        try:
            mounted = [d["mount"].removeprefix("/data/") for d in json.loads(run.datasets_json)]
            return hints.hint(list(target.logs(handle)), mounted)
        except Exception:  # a hint is a courtesy: never let it change the run's outcome
            log.exception("no hint for run %s", run.id)
            return ""

    async def _finish(self, run: Run, target: Target | None, handle: str, outcome: Status, *,
                      exit_code: int | None = None, error: str = "") -> None:
        metrics, outputs, problem = ("", [], "")
        if handle and target is not None:
            metrics, outputs, problem = await asyncio.to_thread(self._collect, run, target, handle)
        if problem:
            error = f"{error}; {problem}" if error else problem
        error = self.host_paths(redact(error, getattr(target, "secrets", ())))  # students read it
        prov = provenance(run)

        def _store(s: Any) -> str:
            fresh = s.get(Run, run.id, with_for_update=True)
            if fresh is None:  # cancelled, then deleted while its container stopped: nothing to record
                return ""
            first = fresh.status not in TERMINAL
            service.finish(session=s, run=fresh, status=outcome, exit_code=exit_code, error=error,
                           metrics_json=metrics, provenance_json=prov, outputs=outputs)
            if first:
                inside.emit(s, fresh, self._workdir(run.id))
            return fresh.status

        # the recorded outcome: a run cancelled meanwhile stays cancelled, whatever its container reported
        final = await transact(self.sessions, _store)
        if not final:
            final = Status.CANCELLED
            for _name, _size, _sha, key in outputs:  # no row names them: they would be kept for no one
                try:
                    await asyncio.to_thread(self.store.delete, key)
                except Exception as exc:
                    log.warning("could not remove output %s of the deleted run %s: %s", key, run.id, exc)
        self.wake_outbox()
        try:
            await self.js.publish(f"logs.run.{run.id}", f"run {final}".encode(), headers={END_HEADER: final},
                                  timeout=5)
        except Exception as exc:
            log.warning("could not publish the end of the run log: %s", exc)
        if handle and target is not None:
            await self._cleanup(run.id, target, handle)
        shutil.rmtree(self.settings.work_root() / run.id, ignore_errors=True)

    async def _cleanup(self, run_id: str, target: Target, handle: str) -> None:
        """Remove what the target holds for a run (and a remote run's transfer area); a failure is
        logged and left to the reconciler, never a reason to run the job again."""
        try:
            await asyncio.to_thread(target.cleanup, handle)
        except Exception as exc:
            log.warning("could not remove %s of run %s (the reconciler retries): %s", handle, run_id,
                        redact(str(exc), getattr(target, "secrets", ())))
        if target.remote:
            await asyncio.to_thread(self._drop_transfer, run_id)

    # --- assignment scoring --------------------------------------------------------------------

    def _predictions_key(self, run: Run, predictions: str) -> str | None:
        def _find(s: Any) -> str | None:
            return s.scalar(select(Output.object_key).where(Output.run_id == run.id, Output.name == predictions))
        return in_transaction(self.sessions, _find)

    def _eval_request(self, run: Run, ev: runner_pb2.Evaluation, predictions_key: str, target: Target) -> RunRequest:
        """The evaluation sandbox: the instructor's code in /work, the student's predictions read-only
        at /inputs/<predictions>, the hidden labels read-only at /data/labels; no network. The labels
        exist only here: the student's container never gets them."""
        eval_id = run.id + service.EVAL_SUFFIX
        work = self._workdir(eval_id)
        timeout = min(EVAL_TIMEOUT_SECONDS, self.settings.max_timeout_seconds)
        expires = timeout + self.settings.url_slack_seconds
        suffix = ".zip" if ev.code_object_key.endswith(".zip") else ".tar.gz"
        code = self._input(target, ev.code_object_key, "/work", work / "inputs" / f"code{suffix}",
                           ev.code_digest.removeprefix("sha256:"), expires)
        predictions = self._input(target, predictions_key, f"/inputs/{ev.predictions}",
                                  work / "inputs" / "predictions", "", expires)
        labels = self._input(target, ev.labels_object_key, "/data/labels", work / "inputs" / "labels",
                             ev.labels_digest.removeprefix("sha256:"), expires)
        return RunRequest(run_id=eval_id, image=ev.image, command=list(ev.command) or ["python3", "evaluate.py"],
                          code=code, datasets=[predictions, labels],
                          limits=Limits(cpu_millis=1000, memory_bytes=1 << 30, pids=256, timeout_seconds=timeout,
                                        network=False),
                          output_urls=self._output_urls(target, eval_id, expires))

    def _read_score(self, run: Run, target: Target, handle: str) -> tuple[str, str, str]:
        """(score, private score, error) from the evaluation's /outputs/score.json; its logs are kept
        for instructors."""
        out_dir = self._workdir(run.id + service.EVAL_SUFFIX) / "outputs"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        try:
            self.store.put_bytes(f"runs/{run.id}/evaluation/logs.txt",
                                 ("\n".join(target.logs(handle)) + "\n").encode())
        except Exception as exc:
            log.warning("could not keep the evaluation logs of %s: %s", run.id, exc)
        try:
            self._gather(run.id + service.EVAL_SUFFIX, target, handle, out_dir)
        except TargetError as exc:
            return "", "", f"the evaluation's outputs could not be collected: {exc}"
        path = out_dir / SCORE_FILE
        if not path.is_file() or path.stat().st_size > 4096:
            return "", "", f"the evaluation wrote no /outputs/{SCORE_FILE} (of at most 4 KiB)"
        return parse_scores(path.read_text(errors="replace"))

    async def _record_score(self, run: Run, ev: runner_pb2.Evaluation, score: str, at: datetime,
                            private: str = "") -> str:
        """RecordScore on the registry (idempotent per run and evaluation revision); retried while the
        registry is unreachable. Returns a problem in words, "" when recorded."""
        request = registry_pb2.RecordScoreRequest(
            workspace=run.workspace, assignment=run.assignment, run_id=run.id, user_id=run.requested_by_id,
            username=run.requested_by, score=score, private_score=private, evaluation_revision=ev.revision)
        request.actor.user_id, request.actor.username = run.requested_by_id, run.requested_by
        request.scored_at.FromDatetime(at)
        request.submitted_at.FromDatetime(run.created_at)
        for attempt in range(10):
            try:
                await call(self.nc, Registry.ASSIGNMENT_RECORD_SCORE.value, request, registry_pb2.Score)
                return ""
            except ServiceUnavailable as exc:
                problem = str(exc)
                await asyncio.sleep(min(2.0 ** attempt, 10.0))
            except ProblemError as exc:
                return f"the leaderboard refused the score: {exc.detail or exc}"
        return f"the score could not be recorded on the leaderboard: {problem}"

    async def _score(self, run: Run) -> None:
        """Score a succeeded run of an assignment in a second sandbox on the same target kind; record
        the score (or why there is none) on the run, and on the registry's leaderboard."""
        ev = service.evaluation(run)
        handle = run.eval_handle
        try:
            target = await asyncio.to_thread(self._build, run)
        except TargetError as exc:
            await self._scored(run, None, "", error=f"the evaluation could not run: {exc}")
            return
        score, private, error = "", "", ""
        if not handle:
            key = await asyncio.to_thread(self._predictions_key, run, ev.predictions)
            if key is None:
                await self._scored(run, target, "", error=f"the run wrote no /outputs/{ev.predictions}; assignment "
                                   f"{run.assignment!r} scores that file")
                return
            try:
                request = await asyncio.to_thread(self._eval_request, run, ev, key, target)
                handle = await asyncio.to_thread(target.submit, request)
            except (TargetError, KeyError, OSError, ObjectStoreUnsupported) as exc:
                await self._scored(run, target, "", error=f"the evaluation could not start: {exc}")
                return
            await transact(self.sessions, lambda s: service.eval_started(session=s, run_id=run.id,
                                                                             handle=handle))
        status = await self._wait(run.id + service.EVAL_SUFFIX, target, handle)
        if status.timed_out:
            error = f"the evaluation was stopped after its {EVAL_TIMEOUT_SECONDS} s timeout"
        elif status.state == State.EXITED and status.exit_code == 0:
            score, private, error = await asyncio.to_thread(self._read_score, run, target, handle)
        elif status.state == State.EXITED:
            await asyncio.to_thread(self._read_score, run, target, handle)  # keeps its logs
            error = f"the evaluation failed: it exited with code {status.exit_code}" + (
                f" ({status.reason})" if status.reason else "") + "; an instructor can read its logs"
        elif status.state == State.GONE:
            error = "the evaluation's container disappeared (removed outside Reprolab?)"
        else:
            error = f"the evaluation failed: {status.reason or 'the target failed'}"
        await self._scored(run, target, handle, score=score, error=error, private=private)

    async def _scored(self, run: Run, target: Target | None, handle: str, score: str = "", error: str = "",
                      private: str = "") -> None:
        if score:
            problem = await self._record_score(run, service.evaluation(run), score, datetime.now(UTC), private)
            error = problem
        error = self.host_paths(redact(error, getattr(target, "secrets", ())))  # students read it
        await transact(self.sessions, lambda s: service.scored(session=s, run_id=run.id, score=score,
                                                                   error=error))
        self.wake_outbox()
        if handle and target is not None:
            await self._cleanup(run.id + service.EVAL_SUFFIX, target, handle)
        shutil.rmtree(self.settings.work_root() / (run.id + service.EVAL_SUFFIX), ignore_errors=True)

    async def reconcile(self) -> int:
        """Remove what the enabled targets still hold for runs that ended or that nobody knows.

        Every container, Job and VM carries the run id and this installation's label, and each target
        lists only its own installation's, so a leftover of a run this runner does not know is removed
        too, never another installation's. Containers (local) and Jobs (kubernetes) are listed in the
        platform's own engine or namespace. A cloud VM can only be listed with some user's cloud
        credentials: the VMs are found in the accounts of the requesters of this runner's cloud runs
        that are live or ended within ``reconcile_cloud_hours``. A VM in an account no such run used
        is not seen (it terminates itself when its agent powers off, unless the agent never ran).
        """
        removed = 0
        for name in self.settings.enabled_targets:
            if name in CLOUD_TARGETS:
                removed += await self._reconcile_cloud(name)
                continue
            try:
                target = await asyncio.to_thread(self.target, name)
                owned = await asyncio.to_thread(target.owned)
            except Exception as exc:
                log.warning("reconcile %s: %s", name, exc)
                continue
            removed += await self._reap(target, owned)
        return removed

    async def sweep_work_root(self) -> int:
        """Remove the run folders in this runner's work root(s) that no run needs any more.

        A runner killed between preparing a run's folder and starting its container leaves the folder
        behind (the job goes back to the queue and a replica starts the run afresh in its own root), and
        one killed mid-run leaves the downloaded inputs of a run that another replica finishes. The work
        root is this replica's own (a pod's emptyDir; one directory per runner process on one machine), so
        a folder is a leftover unless this process is handling its run now or a run container of this
        installation (any replica's, since a resumed run keeps the directory it was started with) still
        bind-mounts something under it. ``git/`` and anything not named after a run are left alone.
        """
        roots = {self.settings.work_root()}
        mounted: set[Path] = set()
        if "local" in self.settings.enabled_targets:
            try:
                local = await asyncio.to_thread(self.target, "local")
                mounted = await asyncio.to_thread(local.mounted)
            except Exception as exc:  # without the engine nothing can be told apart: sweep next time
                log.warning("sweep of the run folders skipped: %s", exc)
                return 0
            roots.add(Path(local.work_root))

        def _sweep() -> int:
            removed = 0
            for root in roots:
                try:
                    entries = list(root.iterdir())
                except FileNotFoundError:
                    continue
                for entry in entries:
                    run_id = _RUN_FOLDER.match(entry.name.removeprefix(LOCAL_PREFIX))
                    if run_id is None or run_id.group(1) in self._driving:
                        continue
                    real = entry.resolve()
                    if any(m == real or real in m.parents for m in mounted):
                        continue
                    if entry.is_symlink() or not entry.is_dir():
                        entry.unlink(missing_ok=True)
                    else:
                        shutil.rmtree(entry, ignore_errors=True)
                    log.info("removed the leftover run folder %s", self.host_paths(str(entry)))
                    removed += 1
            return removed

        return await asyncio.to_thread(_sweep)

    async def _reconcile_cloud(self, name: str) -> int:
        since = datetime.now(UTC) - timedelta(hours=self.settings.reconcile_cloud_hours)
        accounts = await transact(self.sessions, lambda s: sorted(set(s.execute(
            select(Run.workspace, Run.requested_by_id).where(
                Run.target == name, or_(Run.status.not_in(list(TERMINAL)), Run.finished_at >= since))).all())))
        removed, seen = 0, set()
        for workspace, user_id in accounts:
            try:
                target = await asyncio.to_thread(self._cloud_target, name, workspace, user_id)
                owned = await asyncio.to_thread(target.owned)
            except Exception as exc:  # no credentials (any more), cloud unreachable: next account
                log.warning("reconcile %s for a user of %s: %s", name, workspace, type(exc).__name__)
                continue
            fresh = [o for o in owned if o.handle not in seen]  # accounts shared by several users
            seen.update(o.handle for o in fresh)
            removed += await self._reap(target, fresh)
        return removed

    async def _reap(self, target: Target, owned: list) -> int:
        ids = sorted({o.run_id.removesuffix(service.EVAL_SUFFIX) for o in owned})

        def _live(s: Any) -> set[str]:
            runs = list(s.execute(select(Run).where(Run.id.in_(ids))).scalars()) if ids else []
            # a run's own container lives while the run does; its evaluation's while it awaits a score
            return {key for r in runs for key, alive in ((r.id, r.status not in TERMINAL),
                                                         (r.id + service.EVAL_SUFFIX, service.needs_scoring(r)))
                    if alive}

        live = await transact(self.sessions, _live)
        removed = 0
        for o in owned:
            if o.run_id in live:
                continue
            try:
                await asyncio.to_thread(target.cleanup, o.handle)
            except Exception as exc:
                log.warning("reconcile: could not remove %s: %s", o.handle,
                            redact(str(exc), getattr(target, "secrets", ())))
                continue
            if target.remote:
                await asyncio.to_thread(self._drop_transfer, o.run_id)
            removed += 1
        return removed

    async def reconcile_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                n = await self.reconcile()
                if n:
                    log.info("reconciler removed %d leftovers", n)
                await self.sweep_work_root()
            except Exception:
                log.exception("reconcile failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.reconcile_seconds)
            except TimeoutError:
                pass


def parse_score_file(text: str) -> tuple[str, str]:
    """``{"score": <number>}`` (a JSON number or a decimal string) → (decimal text, ""), or ("", why)."""
    public, _private, error = parse_scores(text)
    return public, error


def parse_scores(text: str) -> tuple[str, str, str]:
    """``{"score": <public>, "private": <private>}`` → (public, private, ""), or ("", "", why). The
    private split's score is optional; it goes to the registry only (students see it after the due
    date there), never onto the run."""
    try:
        doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        return "", "", f"the evaluation's {SCORE_FILE} is not JSON: {exc}"
    public, error = _decimal_text(doc.get("score") if isinstance(doc, dict) else None, text)
    if error:
        return "", "", error
    private = ""
    if isinstance(doc, dict) and doc.get("private") is not None:
        private, error = _decimal_text(doc["private"], text, key="private")
        if error:
            return "", "", error
    return public, private, ""


def _decimal_text(value: Any, text: str, key: str = "score") -> tuple[str, str]:
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else value
    except InvalidOperation:
        number = None
    if not isinstance(number, Decimal) or not number.is_finite():
        return "", (f'the evaluation\'s {SCORE_FILE} must be {{"score": <number>}} (and optionally "private": '
                    f'<number>), got {key} in {text.strip()[:200]!r}')
    out = format(number, "f")
    if len(out) > 64:
        return "", f"the evaluation's {key} score {out[:40]}... has more than 64 characters"
    return out, ""
