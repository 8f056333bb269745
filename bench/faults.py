"""Heavier fault trials than tests/faults (real builds, repeated kills), each with its outcome printed.

1. The OCI registry goes down while a build pushes (stopped the moment the build log shows
   ``buildah push``): the build must reach exactly one terminal state, a failure naming the registry (or a
   success, if the push won the race), never hang; with the registry back a new build succeeds.
2. kill -9 of the builder in the middle of a build, ``--kills`` times (a fresh lock each time): each
   build reaches exactly one terminal state, with exactly one ``build.succeeded`` in the activity log.

After the trials: nothing the platform started is left running (checked by pid), and every workspace's
activity log has no gaps and its exported bundle verifies.

Usage: python bench/faults.py [--kills N]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from reprolab_cli.client import Client
from reprolab_cli.main import app
from reprolab_cli.platformlock import process_identity
from reprolab_cli.supervisor import Platform
from typer.testing import CliRunner

BASE = "localhost/reprolab/bookworm-python:latest"


def spec(marker: str) -> dict:
    # a marker file makes a lock no other build shares (identical locks join one build)
    return {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]},
            "files": [{"path": "marker.txt", "content": marker}]}


def wait_build(admin: Client, build_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while (b := admin.get(f"/builds/{build_id}"))["status"] not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"build {build_id} still {b['status']} after {timeout:.0f}s")
        time.sleep(0.5)
    return b


def terminal_events(admin: Client, ws: str, build_id: str) -> Counter:
    items = admin.get(f"/workspaces/{ws}/activity", params={"subject": f"builds/{build_id}", "limit": 100})["items"]
    return Counter(e["type"] for e in items if e["type"] in ("build.succeeded", "build.failed"))


def registry_down_during_push(platform: Platform, admin: Client, ws: str) -> str:
    env = f"push-{uuid.uuid4().hex[:6]}"
    admin.post(f"/workspaces/{ws}/environments", json={"name": env, "spec": spec(env)})
    build = admin.post(f"/workspaces/{ws}/environments/{env}/versions/1/builds", expect=(202,))
    stopped = threading.Event()

    def stop_at_push() -> None:
        follower = Client(platform.url, platform.admin_token())
        for line in follower.sse(f"/builds/{build['id']}/logs"):
            if "buildah push" in line and platform.registry is not None:
                platform.registry.stop()
                stopped.set()
                return

    watcher = threading.Thread(target=stop_at_push, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    done = wait_build(admin, build["id"])
    took = time.monotonic() - t0
    events = terminal_events(admin, ws, build["id"])
    if not stopped.is_set():
        return f"FAILED: the build never reached its push ({done['status']}: {done.get('error')})"
    assert platform.registry is not None
    platform.registry.start()
    once = sum(events.values()) == 1 and events[f"build.{done['status']}"] == 1
    outcome = (f"{done['status']} after {took:.0f}s: {(done.get('error') or '')[:120]}; terminal events {dict(events)}")
    if done["status"] == "failed" and "registry" not in (done.get("error") or ""):
        return "FAILED (error does not name the registry): " + outcome
    # with the registry back, building again works (a new build of version 1)
    again = admin.post(f"/workspaces/{ws}/environments/{env}/versions/1/builds", expect=(202,))
    redone = wait_build(admin, again["id"])
    ok = once and redone["status"] == "succeeded"
    return f"{'ok' if ok else 'FAILED'}: {outcome}; rebuilt with the registry back: {redone['status']}"


def builder_killed_mid_build(platform: Platform, admin: Client, ws: str, trial: int) -> str:
    env = f"kill-{trial}-{uuid.uuid4().hex[:6]}"
    admin.post(f"/workspaces/{ws}/environments", json={"name": env, "spec": spec(env)})
    build = admin.post(f"/workspaces/{ws}/environments/{env}/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while admin.get(f"/builds/{build['id']}")["status"] != "running":
        if time.monotonic() > deadline:
            return "FAILED: the build never started"
        time.sleep(0.1)
    time.sleep(trial % 3)  # land the kill at different points of the build
    platform.stop_service("builder", sig=signal.SIGKILL)
    platform.start_service("builder")
    platform.wait_ready(120)
    done = wait_build(admin, build["id"])
    events = terminal_events(admin, ws, build["id"])
    ok = done["status"] == "succeeded" and events == Counter({"build.succeeded": 1})
    return f"{'ok' if ok else 'FAILED'}: {done['status']}; terminal events {dict(events)}"


def log_intact(platform: Platform, ws: str, tmp: Path) -> str:
    admin = Client(platform.url, platform.admin_token())
    seqs = [e["seq"] for e in admin.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]]
    gaps = sorted(seqs) != list(range(1, len(seqs) + 1))
    bundle = tmp / f"{ws}.jsonl"
    common = ["--url", platform.url, "--token", platform.admin_token()]
    cli = CliRunner()
    exported = cli.invoke(app, ["audit", "export", ws, "-o", str(bundle), *common])
    verified = cli.invoke(app, ["audit", "verify", str(bundle)])
    ok = not gaps and exported.exit_code == 0 and verified.exit_code == 0
    return f"{'ok' if ok else 'FAILED'}: {len(seqs)} entries, gaps: {gaps}, bundle verifies: {verified.exit_code == 0}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3, help="builder kill -9 trials")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="reprolab-bench-faults-"))
    # no periodic reconciling: on a shared engine it would touch other platforms' containers
    platform = Platform(tmp / "platform", extra_env={"REPROLAB_BUILDER_ACK_WAIT_SECONDS": "10",
                                                     "REPROLAB_RUNNER_RECONCILE_SECONDS": "86400"})
    outcomes: list[tuple[str, str]] = []
    started: dict[int, tuple[int, list[str]]] = {}
    try:
        platform.start(timeout=120)
        if platform.registry is None:
            print("the platform runs without its own registry (configured outside?)", file=sys.stderr)
            return 2
        admin = Client(platform.url, platform.admin_token())
        ws = f"faults-{uuid.uuid4().hex[:6]}"
        admin.post("/workspaces", json={"slug": ws, "title": "fault trials"})
        for trial, fn in [("registry down during push", lambda: registry_down_during_push(platform, admin, ws))] + [
                (f"builder kill -9 mid build #{i + 1}", lambda i=i: builder_killed_mid_build(platform, admin, ws, i))
                for i in range(args.kills)]:
            try:
                outcome = fn()
            except Exception as exc:  # a trial that breaks is an outcome too
                outcome = f"FAILED: {type(exc).__name__}: {exc}"
            outcomes.append((trial, outcome))
            print(f"{trial:<32} {outcome}", flush=True)
        outcomes.append(("activity log", log_intact(platform, ws, tmp)))
        print(f"{'activity log':<32} {outcomes[-1][1]}")
        started = {p: i for p in [*(pr.pid for pr in platform.procs.values()), platform.nats.proc.pid,
                                  platform.registry.proc.pid] if (i := process_identity(p))}
    finally:
        platform.stop()
    left = [" ".join(argv[:3]) for pid, (start, argv) in started.items() if process_identity(pid) == (start, argv)]
    outcomes.append(("nothing left running", "ok" if not left else f"FAILED: {left}"))
    print(f"{'nothing left running':<32} {outcomes[-1][1]}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if any(o.startswith("FAILED") for _, o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
