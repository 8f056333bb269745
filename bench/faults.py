"""Heavier fault trials than tests/faults (real builds, repeated kills), each with its outcome printed.

1. The OCI registry goes down while a build pushes (stopped the moment the build log shows
   ``buildah push``, or ``COMMIT docker://`` for a one-layer build): the build must reach exactly one
   terminal state, a failure naming the registry (or a
   success, if the push won the race), never hang; with the registry back a new build succeeds.
2. kill -9 of the builder in the middle of a build, ``--kills`` times (a fresh lock each time): each
   build reaches exactly one terminal state, with exactly one ``build.succeeded`` in the activity log.

After the trials: nothing the platform started is left running (checked by pid), and every workspace's
activity log has no gaps and its exported bundle verifies.

3. ``--replicas ROUNDS``: instead, two replicas of every service on one private PostgreSQL and NATS
   (tests/faults/replicas.py; the quick version is tests/faults/test_replicas.py). Each round, through
   both gateways: a fresh lock requested from two workspaces at once and ``--runs`` runs; then kill -9
   of the builder that builds, a runner that drives runs, one audit and registry (the other replica
   each round) and the second gateway (the first is the OCI registry's token realm here; in a cluster
   the realm is the gateway Service, not one pod); the survivors must finish everything, then the
   killed ones are started again. Checked: one build per lock, every run succeeded once with its
   outputs and one terminal event, and every workspace's log has no gap, duplicate or forked
   checkpoint and verifies.

Usage: python bench/faults.py [--kills N] | [--replicas ROUNDS [--runs N]]
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


def terminal_events(admin: Client, ws: str, build_id: str, wait: float = 15.0) -> Counter:
    """The build's terminal events in the activity log. They travel through the builder's outbox and
    NATS after the build's row changes, so this waits up to ``wait`` s for one, then 1 s more for a
    duplicate."""
    deadline = time.monotonic() + wait
    while True:
        items = admin.get(f"/workspaces/{ws}/activity",
                          params={"subject": f"builds/{build_id}", "limit": 100})["items"]
        found = Counter(e["type"] for e in items if e["type"] in ("build.succeeded", "build.failed"))
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if found:
        time.sleep(1.0)
        items = admin.get(f"/workspaces/{ws}/activity",
                          params={"subject": f"builds/{build_id}", "limit": 100})["items"]
        found = Counter(e["type"] for e in items if e["type"] in ("build.succeeded", "build.failed"))
    return found


def registry_down_during_push(platform: Platform, admin: Client, ws: str) -> str:
    env = f"push-{uuid.uuid4().hex[:6]}"
    admin.post(f"/workspaces/{ws}/environments", json={"name": env, "spec": spec(env)})
    build = admin.post(f"/workspaces/{ws}/environments/{env}/versions/1/builds", expect=(202,))
    stopped = threading.Event()

    def stop_at_push() -> None:
        follower = Client(platform.url, platform.admin_token())
        for line in follower.sse(f"/builds/{build['id']}/logs"):
            # a one-layer build pushes as it commits (buildah's "COMMIT docker://..."); older locks push after
            pushing = "buildah push" in line or line.strip().startswith("COMMIT docker://")
            if pushing and platform.registry is not None:
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


def replicas_trial(rounds: int, runs: int) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.faults.replicas import Replicated, children
    from tests.faults.test_replicas import RUN_VERBS, SCRIPT, SPEC, _code, _log_is_whole

    tmp = Path(tempfile.mkdtemp(prefix="reprolab-bench-replicas-"))
    rep = Replicated(tmp)
    failed = False
    try:
        rep.start(timeout=120)
        token = rep.platform.admin_token()
        wss = [f"rep{i}-{uuid.uuid4().hex[:6]}" for i in range(2)]
        admin = Client(rep.urls[0], token)
        for ws in wss:  # the runs' environment, built once before the rounds
            admin.post("/workspaces", json={"slug": ws, "title": f"replica bench {ws}"})
            admin.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": SPEC})
        for b in {admin.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(200, 202))["id"]
                  for ws in wss}:
            assert wait_build(admin, b)["status"] == "succeeded", b
        for r in range(rounds):
            v = r % 2  # the replica of audit and registry killed this round
            gw = [Client(url, token) for url in rep.urls]
            # the gateway killed is always the second: the OCI registry's token realm is the first's URL
            # (in a cluster it is the gateway Service's, which no single pod's death takes away)
            live = gw[0]
            env = f"e{r}"
            for i, ws in enumerate(wss):
                gw[i].post(f"/workspaces/{ws}/environments", json={"name": env, "spec": spec(f"round {r}")})
            ids = {gw[(i + j) % 2].post(f"/workspaces/{ws}/environments/{env}/versions/1/builds",
                                        expect=(200, 202))["id"] for i in range(2) for j, ws in enumerate(wss)}
            deadline = time.monotonic() + 120
            while not any(children(p.pid) for p in rep.procs("builder")):  # kill the builder mid-build
                if time.monotonic() > deadline:
                    print(f"round {r + 1}: no builder ran buildah within 120 s: "
                          f"{[live.get(f'/builds/{b}')['status'] for b in ids]}", flush=True)
                    break
                time.sleep(0.05)
            codes = {ws: _code(gw[0], ws, SCRIPT) for ws in wss}
            submitted = []
            for k in range(runs):
                ws = wss[k % 2]
                submitted.append((ws, gw[k % 2].request("POST", f"/workspaces/{ws}/runs", json={
                    "environment": "py", "code": codes[ws], "command": ["python3", "job.py"], "version": 1,
                    "resources": {"timeout": 300}}, expect=(202,))["id"]))
            time.sleep(r % 3)  # land the kills at different points
            victims = {"audit": rep.procs("audit")[v], "registry": rep.procs("registry")[v],
                       "gateway": rep.second["gateway"]}
            building = [p for p in rep.procs("builder") if children(p.pid)]
            if building:
                victims["builder"] = building[0]
            driving = [p for p, d in zip(rep.procs("runner"), rep.work_dirs("runner"), strict=True)
                       if d.exists() and any(e.name.startswith("reprolab-run-") for e in d.iterdir())]
            if driving:
                victims["runner"] = driving[-1]
            t_kill = time.monotonic()
            for proc in victims.values():
                Replicated.kill(proc)
            builds = {b: wait_build(live, b) for b in ids}
            done: dict[str, dict] = {}
            deadline = time.monotonic() + 600
            while len(done) < len(submitted) and time.monotonic() < deadline:
                for _, rid in submitted:
                    if rid not in done and (run := live.get(f"/runs/{rid}"))["status"] in (
                            "succeeded", "failed", "cancelled", "timed_out"):
                        done[rid] = run
                time.sleep(0.3)
            took = time.monotonic() - t_kill
            time.sleep(3)  # duplicates would arrive right behind
            dup = 0
            for ws, rid in submitted:
                items = live.get(f"/workspaces/{ws}/activity", params={"subject": f"runs/{rid}", "limit": 100})["items"]
                dup += abs(sum(e["type"] in RUN_VERBS for e in items) - 1)
            no_outputs = [rid for _, rid in submitted if rid in done and "done.txt" not in
                          {f["name"] for f in live.get(f"/runs/{rid}/outputs")["files"]}]
            bad_runs = [rid for _, rid in submitted if done.get(rid, {}).get("status") != "succeeded"]
            ok = (len(ids) == 1 and all(b["status"] == "succeeded" for b in builds.values()) and not bad_runs
                  and not no_outputs and dup == 0)
            failed |= not ok
            print(f"round {r + 1}: {'ok' if ok else 'FAILED'}: killed {sorted(victims)}; builds per lock {len(ids)} "
                  f"({[b['status'] + (': ' + b['error'][:300] if b.get('error') else '') for b in builds.values()]}); "
                  f"runs {len(submitted)}, not succeeded {len(bad_runs)}, "
                  f"without outputs {len(no_outputs)}, terminal-event errors {dup}; all done {took:.1f}s after the "
                  f"kills", flush=True)
            for name, proc in victims.items():  # back to two replicas of everything
                if proc is rep.second.get(name):
                    rep.start_second(name)
                else:
                    rep.platform.start_service(name)
            rep.wait_ready(rep.urls[0], 120)
            rep.wait_ready(rep.urls[1], 120)
            for c in gw:
                c.close()
        for ws in wss:
            try:
                print(f"log {ws}: ok: {_log_is_whole(admin, ws, tmp)}")
            except AssertionError as exc:
                failed = True
                print(f"log {ws}: FAILED: {exc}")
    except Exception:
        failed = True
        raise
    finally:
        rep.stop()
        if failed:
            print(f"logs kept in {rep.platform.log_dir if rep.platform else tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3, help="builder kill -9 trials")
    parser.add_argument("--replicas", type=int, default=0, metavar="ROUNDS",
                        help="run the two-replicas trial for this many rounds instead")
    parser.add_argument("--runs", type=int, default=12, help="runs per round of the replicas trial")
    args = parser.parse_args()
    if args.replicas:
        return replicas_trial(args.replicas, args.runs)
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
