"""The run worker: consumes ``jobs.run``, drives a run on its target, records exactly one outcome.

The target's handle is stored as soon as the run is submitted, so a runner killed mid-run resumes
the same container/Job/VM when JetStream redelivers the job (instead of starting a second one);
the terminal state is written once (``service.finish``) and only then is the job acked. The
reconciler removes whatever a target still holds for runs that ended or that nobody knows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from reprolab.v1 import jobs_pb2
from reprolab_common.canonical import canonical_json
from reprolab_common.nats import SCHEMA_VERSION, JobSubject, Stream, ensure_consumer
from reprolab_common.objectstore import ObjectStore
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from . import service
from .config import RunnerSettings
from .models import TERMINAL, Run, Status
from .targets.base import Input, Limits, RunRequest, State, Target, TargetError, target_class

log = logging.getLogger(__name__)
END_HEADER = "Reprolab-Log-End"


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
        "limits": {"cpu_millis": run.cpu_millis, "memory_bytes": run.memory_bytes, "pids": run.pids,
                   "timeout_seconds": run.timeout_seconds},
    }).decode()


class Worker:
    def __init__(self, *, settings: RunnerSettings, sessions: sessionmaker, js: JetStreamContext,
                 store: ObjectStore, wake_outbox: Any) -> None:
        self.settings = settings
        self.sessions = sessions
        self.js = js
        self.store = store
        self.wake_outbox = wake_outbox
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.tasks: set[asyncio.Task] = set()

    def _tx(self, fn: Any) -> Any:
        with self.sessions.begin() as session:
            return fn(session)

    def target(self, name: str) -> Target:
        return target_class(name)(self.settings, docker_url=self.settings.docker_url, store=self.store)

    async def enqueue(self, run: Run) -> None:
        await self.js.publish(JobSubject.RUN.value, job_for(run).SerializeToString(), stream=Stream.JOBS.value,
                              headers={"Nats-Msg-Id": run.id}, timeout=10)

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_consumer(self.js, Stream.JOBS, self.settings.durable, JobSubject.RUN,
                              ack_wait=self.settings.ack_wait_seconds, max_deliver=self.settings.max_deliver)
        sub = await self.js.pull_subscribe(JobSubject.RUN.value, durable=self.settings.durable,
                                           stream=Stream.JOBS.value)
        while not stop.is_set():
            await self.slots.acquire()
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

    async def _guarded(self, msg: Any) -> None:
        try:
            await self.handle(msg)
        except Exception:
            log.exception("run job crashed; it will be redelivered")
        finally:
            self.slots.release()

    async def handle(self, msg: Any) -> None:
        job = jobs_pb2.RunJob()
        try:
            job.ParseFromString(msg.data)
        except Exception:
            log.error("undecodable run job dropped")
            await msg.term()
            return
        run = await asyncio.to_thread(self._tx, lambda s: s.get(Run, job.run_id))
        if run is None or run.status in TERMINAL:
            await msg.ack()
            return
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            await self._drive(run, msg)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, msg: Any) -> None:
        while True:
            await asyncio.sleep(max(self.settings.ack_wait_seconds / 3, 0.5))
            try:
                await msg.in_progress()
            except Exception as exc:
                log.warning("in_progress failed: %s", exc)

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

    def _request(self, run: Run) -> RunRequest:
        """Inputs as local files (the local target bind-mounts them)."""
        work = self._workdir(run.id)
        suffix = ".zip" if run.code_object_key.endswith(".zip") else ".tar.gz"
        code = Input(mount="/work", path=self._download(run.code_object_key, work / "inputs" / f"code{suffix}"),
                     sha256=run.code_digest.removeprefix("sha256:"))
        datasets = [Input(mount=d["mount"], path=self._download(d["object_key"], work / "inputs" / "data" / d["name"]),
                          sha256=d["digest"].removeprefix("sha256:")) for d in json.loads(run.datasets_json)]
        return RunRequest(run_id=run.id, image=run.image, command=json.loads(run.command_json), code=code,
                          datasets=datasets, limits=Limits(cpu_millis=run.cpu_millis, memory_bytes=run.memory_bytes,
                                                           pids=run.pids, timeout_seconds=run.timeout_seconds,
                                                           network=bool(run.network)))

    async def _drive(self, run: Run, msg: Any) -> None:
        target = self.target(run.target)
        handle = run.handle
        if not handle:
            try:
                request = await asyncio.to_thread(self._request, run)
                handle = await asyncio.to_thread(target.submit, request)
            except (TargetError, KeyError, OSError) as exc:
                await self._finish(run, target, "", Status.FAILED, error=f"the run could not start: {exc}")
                await msg.ack()
                return
            run = await asyncio.to_thread(self._tx, lambda s: service.started(session=s, run_id=run.id,
                                                                               handle=handle))
            self.wake_outbox()
        sent = 0
        cancelled = False
        while True:
            fresh = await asyncio.to_thread(self._tx, lambda s: s.get(Run, run.id))
            if fresh.cancel_requested and not cancelled:
                await asyncio.to_thread(target.cancel, handle)
                cancelled = True
            status = await asyncio.to_thread(target.status, handle)
            sent = await self._publish_logs(run.id, target, handle, sent)
            if status.state in (State.EXITED, State.FAILED, State.GONE):
                break
            await asyncio.sleep(self.settings.poll_seconds)
        if cancelled:
            outcome, error = Status.CANCELLED, "cancelled by request"
        elif status.timed_out:
            outcome, error = Status.TIMED_OUT, f"stopped after its {run.timeout_seconds} s timeout"
        elif status.state == State.EXITED and status.exit_code == 0:
            outcome, error = Status.SUCCEEDED, ""
        elif status.state == State.EXITED:
            outcome = Status.FAILED
            error = f"exited with code {status.exit_code}" + (f": {status.reason}" if status.reason else "")
        elif status.state == State.GONE:
            outcome, error = Status.FAILED, "the run's container disappeared (removed outside Reprolab?)"
        else:
            outcome, error = Status.FAILED, status.reason or "the target failed"
        await self._finish(run, target, handle, outcome, exit_code=status.exit_code, error=error)
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
            target.collect(handle, out_dir)
        except TargetError as exc:
            problem = str(exc)
        try:
            (out_dir / "logs.txt").write_text("\n".join(target.logs(handle)) + "\n")
        except Exception as exc:
            log.warning("could not read the logs of %s: %s", run.id, exc)
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

    async def _finish(self, run: Run, target: Target, handle: str, outcome: Status, *, exit_code: int | None = None,
                      error: str = "") -> None:
        metrics, outputs, problem = ("", [], "")
        if handle:
            metrics, outputs, problem = await asyncio.to_thread(self._collect, run, target, handle)
        if problem:
            error = f"{error}; {problem}" if error else problem
        prov = provenance(run)

        def _store(s: Any) -> None:
            fresh = s.get(Run, run.id, with_for_update=True)
            service.finish(session=s, run=fresh, status=outcome, exit_code=exit_code, error=error,
                           metrics_json=metrics, provenance_json=prov, outputs=outputs)

        await asyncio.to_thread(self._tx, _store)
        self.wake_outbox()
        try:
            await self.js.publish(f"logs.run.{run.id}", f"run {outcome}".encode(), headers={END_HEADER: outcome},
                                  timeout=5)
        except Exception as exc:
            log.warning("could not publish the end of the run log: %s", exc)
        if handle:
            await asyncio.to_thread(target.cleanup, handle)
        shutil.rmtree(self.settings.work_root() / run.id, ignore_errors=True)

    async def reconcile(self) -> int:
        """Remove what targets still hold for runs that ended or that this runner does not know."""
        removed = 0
        for name in ("local",):
            try:
                target = self.target(name)
                owned = await asyncio.to_thread(target.owned)
            except Exception as exc:
                log.warning("reconcile %s: %s", name, exc)
                continue
            ids = [o.run_id for o in owned]
            live = await asyncio.to_thread(self._tx, lambda s, ids=ids: {
                r.id for r in s.execute(select(Run).where(Run.id.in_(ids))).scalars() if r.status not in TERMINAL})
            for o in owned:
                if o.run_id not in live:
                    await asyncio.to_thread(target.cleanup, o.handle)
                    removed += 1
        return removed

    async def reconcile_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                n = await self.reconcile()
                if n:
                    log.info("reconciler removed %d leftovers", n)
            except Exception:
                log.exception("reconcile failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.reconcile_seconds)
            except TimeoutError:
                pass
