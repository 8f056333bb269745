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
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from reprolab.v1 import jobs_pb2, registry_pb2, runner_pb2
from reprolab_common.canonical import canonical_json
from reprolab_common.db import in_transaction, transact
from reprolab_common.errors import ProblemError, ServiceUnavailable
from reprolab_common.nats import SCHEMA_VERSION, JobSubject, Stream, call, ensure_consumer, keep_in_progress
from reprolab_common.objectstore import ObjectStore
from reprolab_common.subjects import Registry
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from . import service
from .config import RunnerSettings
from .models import TERMINAL, Output, Run, Status
from .targets.base import Input, Limits, RunRequest, State, Target, TargetError, target_class

log = logging.getLogger(__name__)
END_HEADER = "Reprolab-Log-End"
SCORE_FILE = "score.json"
EVAL_TIMEOUT_SECONDS = 600


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
                 store: ObjectStore, wake_outbox: Any, nc: Any = None) -> None:
        self.settings = settings
        # Request/reply to the registry (RecordScore); the JetStream context's connection by default.
        self.nc = nc if nc is not None else getattr(js, "_nc", None)
        self.sessions = sessions
        self.js = js
        self.store = store
        self.wake_outbox = wake_outbox
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.tasks: set[asyncio.Task] = set()

    def target(self, name: str) -> Target:
        return target_class(name)(self.settings, docker_url=self.settings.docker_url, store=self.store,
                                   installation=self.settings.installation_id())

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
        run = await transact(self.sessions, lambda s: s.get(Run, job.run_id))
        if run is None or (run.status in TERMINAL and not service.needs_scoring(run)):
            await msg.ack()
            return
        heartbeat = asyncio.create_task(keep_in_progress(msg, self.settings.ack_wait_seconds))
        try:
            if run.status in TERMINAL:  # redelivered after the run ended but before it was scored
                await self._score(run)
                await msg.ack()
            else:
                await self._drive(run, msg)
        finally:
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
            run = await transact(self.sessions, lambda s: service.started(session=s, run_id=run.id,
                                                                               handle=handle))
            self.wake_outbox()
        sent = 0
        cancelled = False
        while True:
            fresh = await transact(self.sessions, lambda s: s.get(Run, run.id))
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
        fresh = await transact(self.sessions, lambda s: s.get(Run, run.id))
        if service.needs_scoring(fresh):
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

        await transact(self.sessions, _store)
        self.wake_outbox()
        try:
            await self.js.publish(f"logs.run.{run.id}", f"run {outcome}".encode(), headers={END_HEADER: outcome},
                                  timeout=5)
        except Exception as exc:
            log.warning("could not publish the end of the run log: %s", exc)
        if handle:
            await asyncio.to_thread(target.cleanup, handle)
        shutil.rmtree(self.settings.work_root() / run.id, ignore_errors=True)

    # --- assignment scoring --------------------------------------------------------------------

    def _predictions_key(self, run: Run, predictions: str) -> str | None:
        def _find(s: Any) -> str | None:
            return s.scalar(select(Output.object_key).where(Output.run_id == run.id, Output.name == predictions))
        return in_transaction(self.sessions, _find)

    def _eval_request(self, run: Run, ev: runner_pb2.Evaluation, predictions_key: str) -> RunRequest:
        """The evaluation sandbox: the instructor's code in /work, the student's predictions read-only
        at /inputs/<predictions>, the hidden labels read-only at /data/labels; no network. The labels
        exist only here: the student's container never gets them."""
        eval_id = run.id + service.EVAL_SUFFIX
        work = self._workdir(eval_id)
        suffix = ".zip" if ev.code_object_key.endswith(".zip") else ".tar.gz"
        code = Input(mount="/work", path=self._download(ev.code_object_key, work / "inputs" / f"code{suffix}"),
                     sha256=ev.code_digest.removeprefix("sha256:"))
        predictions = Input(mount=f"/inputs/{ev.predictions}",
                            path=self._download(predictions_key, work / "inputs" / "predictions"))
        labels = Input(mount="/data/labels", path=self._download(ev.labels_object_key, work / "inputs" / "labels"),
                       sha256=ev.labels_digest.removeprefix("sha256:"))
        timeout = min(EVAL_TIMEOUT_SECONDS, self.settings.max_timeout_seconds)
        return RunRequest(run_id=eval_id, image=ev.image, command=list(ev.command) or ["python3", "evaluate.py"],
                          code=code, datasets=[predictions, labels],
                          limits=Limits(cpu_millis=1000, memory_bytes=1 << 30, pids=256, timeout_seconds=timeout,
                                        network=False))

    def _read_score(self, run: Run, target: Target, handle: str) -> tuple[str, str]:
        """(score, error) from the evaluation's /outputs/score.json; its logs are kept for instructors."""
        out_dir = self._workdir(run.id + service.EVAL_SUFFIX) / "outputs"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        try:
            self.store.put_bytes(f"runs/{run.id}/evaluation/logs.txt",
                                 ("\n".join(target.logs(handle)) + "\n").encode())
        except Exception as exc:
            log.warning("could not keep the evaluation logs of %s: %s", run.id, exc)
        try:
            target.collect(handle, out_dir)
        except TargetError as exc:
            return "", f"the evaluation's outputs could not be collected: {exc}"
        path = out_dir / SCORE_FILE
        if not path.is_file() or path.stat().st_size > 4096:
            return "", f"the evaluation wrote no /outputs/{SCORE_FILE} (of at most 4 KiB)"
        return parse_score_file(path.read_text(errors="replace"))

    async def _record_score(self, run: Run, ev: runner_pb2.Evaluation, score: str, at: datetime) -> str:
        """RecordScore on the registry (idempotent); retried while the registry is unreachable.
        Returns a problem in words, "" when recorded."""
        request = registry_pb2.RecordScoreRequest(
            workspace=run.workspace, assignment=run.assignment, run_id=run.id, user_id=run.requested_by_id,
            username=run.requested_by, score=score)
        request.actor.user_id, request.actor.username = run.requested_by_id, run.requested_by
        request.scored_at.FromDatetime(at)
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
        target = self.target(run.target)
        handle = run.eval_handle
        score, error = "", ""
        if not handle:
            key = await asyncio.to_thread(self._predictions_key, run, ev.predictions)
            if key is None:
                await self._scored(run, target, "", error=f"the run wrote no /outputs/{ev.predictions}; assignment "
                                   f"{run.assignment!r} scores that file")
                return
            try:
                request = await asyncio.to_thread(self._eval_request, run, ev, key)
                handle = await asyncio.to_thread(target.submit, request)
            except (TargetError, KeyError, OSError) as exc:
                await self._scored(run, target, "", error=f"the evaluation could not start: {exc}")
                return
            await transact(self.sessions, lambda s: service.eval_started(session=s, run_id=run.id,
                                                                             handle=handle))
        while True:
            status = await asyncio.to_thread(target.status, handle)
            if status.state in (State.EXITED, State.FAILED, State.GONE):
                break
            await asyncio.sleep(self.settings.poll_seconds)
        if status.timed_out:
            error = f"the evaluation was stopped after its {EVAL_TIMEOUT_SECONDS} s timeout"
        elif status.state == State.EXITED and status.exit_code == 0:
            score, error = await asyncio.to_thread(self._read_score, run, target, handle)
        elif status.state == State.EXITED:
            await asyncio.to_thread(self._read_score, run, target, handle)  # keeps its logs
            error = f"the evaluation failed: it exited with code {status.exit_code}" + (
                f" ({status.reason})" if status.reason else "") + "; an instructor can read its logs"
        elif status.state == State.GONE:
            error = "the evaluation's container disappeared (removed outside Reprolab?)"
        else:
            error = f"the evaluation failed: {status.reason or 'the target failed'}"
        await self._scored(run, target, handle, score=score, error=error)

    async def _scored(self, run: Run, target: Target, handle: str, score: str = "", error: str = "") -> None:
        if score:
            problem = await self._record_score(run, service.evaluation(run), score, datetime.now(UTC))
            error = problem
        await transact(self.sessions, lambda s: service.scored(session=s, run_id=run.id, score=score,
                                                                   error=error))
        self.wake_outbox()
        if handle:
            await asyncio.to_thread(target.cleanup, handle)
        shutil.rmtree(self.settings.work_root() / (run.id + service.EVAL_SUFFIX), ignore_errors=True)

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
            ids = [o.run_id.removesuffix(service.EVAL_SUFFIX) for o in owned]
            # a run's own container lives while the run does; its evaluation's while it awaits a score
            live = await transact(self.sessions, lambda s, ids=ids: {
                key for r in s.execute(select(Run).where(Run.id.in_(ids))).scalars()
                for key, alive in ((r.id, r.status not in TERMINAL),
                                   (r.id + service.EVAL_SUFFIX, service.needs_scoring(r))) if alive})
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


def parse_score_file(text: str) -> tuple[str, str]:
    """``{"score": <number>}`` (a JSON number or a decimal string) → (decimal text, ""), or ("", why)."""
    try:
        doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        return "", f"the evaluation's {SCORE_FILE} is not JSON: {exc}"
    value = doc.get("score") if isinstance(doc, dict) else None
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else value
    except InvalidOperation:
        number = None
    if not isinstance(number, Decimal) or not number.is_finite():
        return "", f'the evaluation\'s {SCORE_FILE} must be {{"score": <number>}}, got {text.strip()[:200]!r}'
    out = format(number, "f")
    if len(out) > 64:
        return "", f"the evaluation's score {out[:40]}... has more than 64 characters"
    return out, ""
