"""Issue 10, item 4: two replicas of every service (builders, runners, audits, registries, gateways) on one
PostgreSQL and one NATS, driven through both gateways alternately, with ``kill -9`` of one replica of each
service mid-work. The survivors must finish everything, with exactly one build per lock, exactly one
terminal state per run, and an activity log in every workspace with no gap, no duplicate and no fork.
The figures are printed (run with ``-s`` to see them)."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from reprolab_cli.client import Client
from reprolab_cli.main import app
from reprolab_common import signednote
from typer.testing import CliRunner

from .replicas import Replicated, children

BASE = "localhost/reprolab/bookworm-python:latest"
SPEC = {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}
RUNS = 8
SCRIPT = "import time, six; time.sleep(4); open('/outputs/done.txt', 'w').write(six.__version__)"
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")
RUN_VERBS = ("run.succeeded", "run.failed", "run.cancelled", "run.timed_out")


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory, base_image) -> Iterator[Replicated]:
    rep = Replicated(tmp_path_factory.mktemp("replicas"))
    try:
        rep.start()
        yield rep
    finally:
        rep.stop()


def _until(what: str, check, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)
    return got


def _code(client: Client, ws: str, script: str) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = script.encode()
        info = tarfile.TarInfo("job.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return client.request("POST", f"/workspaces/{ws}/code", content=buf.getvalue(), expect=(201,))["digest"]


def _log_is_whole(admin: Client, ws: str, tmp_path: Path) -> dict:
    """No gap, no duplicate seq, no fork (two checkpoints of one size with different roots); the exported
    bundle verifies offline. Returns the figures."""
    items = admin.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]
    seqs = [e["seq"] for e in items]
    dup = [s for s, n in Counter(seqs).items() if n > 1]
    assert not dup, f"{ws}: duplicate seqs {dup}"
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"{ws}: the chain has gaps: {sorted(seqs)}"
    bundle = tmp_path / f"{ws}.jsonl"
    cli = CliRunner()
    common = ["--url", admin.http.base_url.scheme + "://" + admin.http.base_url.netloc.decode(),
              "--token", admin.http.headers["Authorization"].split()[1]]
    out = cli.invoke(app, ["audit", "export", ws, "-o", str(bundle), *common], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    out = cli.invoke(app, ["audit", "verify", str(bundle)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    roots: dict[int, set[str]] = {}
    for line in bundle.read_text().splitlines():
        obj = json.loads(line)
        if obj.get("type") == "checkpoint":
            note = obj["checkpoint"]
            cp = signednote.parse_checkpoint(note[:note.rfind("\n\n") + 1])
            roots.setdefault(cp.size, set()).add(bytes(cp.root).hex())
    forks = {size: r for size, r in roots.items() if len(r) > 1}
    assert not forks, f"{ws}: forked checkpoints {forks}"
    return {"entries": len(seqs), "checkpoints": len(roots)}


def test_two_replicas_of_everything_survive_kill_9(replicated: Replicated, tmp_path: Path) -> None:
    rep = replicated
    token = rep.platform.admin_token()
    gw = [Client(url, token) for url in rep.urls]
    figures: dict[str, object] = {}

    # --- identical locks through both gateways at once: one build ---------------------------------
    wss = [f"r{i}-{uuid.uuid4().hex[:6]}" for i in range(2)]
    for i, ws in enumerate(wss):
        gw[i].post("/workspaces", json={"slug": ws, "title": f"Replica trial {ws}"})
        gw[1 - i].post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": SPEC})
    asks = [(gw[(i + j) % 2], wss[j]) for i in range(3) for j in range(2)]  # 6 requests, alternating gateways
    with ThreadPoolExecutor(len(asks)) as pool:
        builds = list(pool.map(lambda a: a[0].post(f"/workspaces/{a[1]}/environments/py/versions/1/builds",
                                                   expect=(202, 200)), asks))
    ids = {b["id"] for b in builds}
    assert len(ids) == 1, f"one lock, several builds: {ids}"
    build_id = ids.pop()
    figures["build requests"] = len(asks)

    # kill -9 the builder replica that is building (it has buildah children), mid-build
    def building() -> list:
        return [p for p in rep.procs("builder") if children(p.pid)]
    busy = _until("a builder to run buildah", building, 120, 0.05)
    t_kill = time.monotonic()
    Replicated.kill(busy[0])
    figures["builder killed"] = "replica 1" if busy[0] is rep.platform.procs["builder"] else "replica 2"
    done = _until("the build to end", lambda: (b := gw[0].get(f"/builds/{build_id}"))["status"] in
                  ("succeeded", "failed") and b, 300, 0.5)
    assert done["status"] == "succeeded", done
    figures["build finished after the builder's kill (s)"] = round(time.monotonic() - t_kill, 1)
    registry = rep.platform.registry.address

    def tagged(ws: str) -> str | None:  # the digest each workspace's v1 tag names in the OCI registry
        r = gw[0].http.get("/registry/token", params={"service": "reprolab-registry",
                                                       "scope": f"repository:{ws}/py:pull"})
        r.raise_for_status()
        got = httpx.head(f"http://{registry}/v2/{ws}/py/manifests/v1", headers={
            "Authorization": f"Bearer {r.json()['token']}", "Accept": "application/vnd.oci.image.manifest.v1+json"})
        return got.headers.get("docker-content-digest") if got.status_code == 200 else None
    digests = {ws: _until(f"{ws}'s v1 tag", lambda ws=ws: tagged(ws), 60, 0.5) for ws in wss}
    assert set(digests.values()) == {done["image_digest"]}, (digests, done["image_digest"])
    for ws in wss:
        verbs = Counter(e["type"] for e in gw[0].get(f"/workspaces/{ws}/activity", params={
            "subject": f"builds/{build_id}", "limit": 100})["items"])
        assert verbs["build.succeeded"] <= 1 and verbs["build.failed"] == 0, (ws, verbs)
    # the build's own workspace has its one success; the other joined it
    owner = Counter(e["type"] for ws in wss for e in gw[0].get(f"/workspaces/{ws}/activity", params={
        "subject": f"builds/{build_id}", "limit": 100})["items"])
    assert owner["build.succeeded"] == 1 and owner["build.started"] == 1, owner

    # --- a batch of runs through both gateways; kill -9 one replica of the other four mid-work ------
    codes = {ws: _code(gw[0], ws, SCRIPT) for ws in wss}
    runs: list[tuple[int, str, str]] = []
    for k in range(RUNS):
        ws = wss[k % 2]
        body = {"environment": "py", "code": codes[ws], "command": ["python3", "job.py"], "version": 1,
                "resources": {"timeout": 120}}
        runs.append((k % 2, ws, gw[k % 2].request("POST", f"/workspaces/{ws}/runs", json=body, expect=(202,))["id"]))
    stop_polling = threading.Event()
    poll_errors: list[str] = []

    def keep_polling() -> None:  # traffic through the second gateway while it is killed
        while not stop_polling.is_set():
            try:
                gw[1].get(f"/runs/{runs[1][2]}")
            except Exception as exc:
                poll_errors.append(type(exc).__name__)
            time.sleep(0.05)

    poller = threading.Thread(target=keep_polling, daemon=True)
    poller.start()

    def driving() -> list:  # runner replicas holding a run (a folder per run they drive)
        dirs = rep.work_dirs("runner")
        return [p for p, d in zip(rep.procs("runner"), dirs, strict=True)
                if d.exists() and any(e.name.startswith("reprolab-run-") for e in d.iterdir())]
    busy = _until("a runner to drive a run", driving, 60, 0.05)
    _until("a run to be running", lambda: any(gw[0].get(f"/runs/{r}")["status"] == "running"
                                              for _, _, r in runs), 60, 0.1)
    runner_dirs = dict(zip((id(p) for p in rep.procs("runner")), rep.work_dirs("runner"), strict=True))
    held = [d.name for d in runner_dirs[id(busy[-1])].iterdir() if d.name.startswith("reprolab-run-")]
    t_kill = time.monotonic()
    victims = {"runner": busy[-1], "audit": rep.second["audit"], "registry": rep.platform.procs["registry"],
               "gateway": rep.second["gateway"]}
    for proc in victims.values():
        Replicated.kill(proc)
    figures["runner killed"] = "replica 1" if busy[-1] is rep.platform.procs["runner"] else "replica 2"
    figures["runs the killed runner was driving"] = len(held)
    assert held, "the killed runner held no run: nothing was resumed"
    stop_polling.set()
    poller.join()

    finished = {}
    deadline = time.monotonic() + 180
    while len(finished) < len(runs):
        assert time.monotonic() < deadline, f"runs still going: {set(r for _, _, r in runs) - set(finished)}"
        for _, _, rid in runs:
            if rid not in finished and (r := gw[0].get(f"/runs/{rid}"))["status"] in TERMINAL:
                finished[rid] = r
        time.sleep(0.3)
    figures["runs"] = len(runs)
    figures["runs finished after the kills (s)"] = round(time.monotonic() - t_kill, 1)
    assert all(r["status"] == "succeeded" for r in finished.values()), \
        {rid: (r["status"], r.get("error")) for rid, r in finished.items() if r["status"] != "succeeded"}

    for _, _, rid in runs:  # a run resumed by the other runner still has its outputs
        names = {f["name"] for f in gw[0].get(f"/runs/{rid}/outputs")["files"]}
        assert "done.txt" in names, (rid, names, finished[rid].get("error"))

    # exactly one terminal event per run (and it arrives: the killed audit's share is taken by the other)
    def terminal_counts() -> dict[str, int]:
        return {rid: sum(e["type"] in RUN_VERBS for e in gw[0].get(f"/workspaces/{ws}/activity", params={
            "subject": f"runs/{rid}", "limit": 100})["items"]) for _, ws, rid in runs}
    _until("every run's terminal event", lambda: all(n >= 1 for n in terminal_counts().values()), 60, 0.5)
    time.sleep(2.0)  # a duplicate would arrive right behind
    counts = terminal_counts()
    figures["duplicate terminal events"] = sum(n - 1 for n in counts.values())
    assert set(counts.values()) == {1}, counts

    # nothing left on the engine: no reconciler removed a live run's container, none left a dead one
    left = [rid for _, _, rid in runs if subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label=org.reprolab.run-id={rid}", "-q"],
        capture_output=True, text=True).stdout.strip()]
    assert not left, f"containers of ended runs left behind: {left}"
    # The surviving runner leaves no run directory.
    killed_root = runner_dirs[id(victims["runner"])]

    def run_folders(roots: list[Path]) -> list[Path]:
        return [d for root in roots if root.exists() for d in root.iterdir() if d.name != "git"]
    dirs = run_folders([root for root in rep.work_dirs("runner") if root != killed_root])
    assert not dirs, f"run directories left behind by the surviving runner: {dirs}"
    # The killed one's work root keeps what it held when it died (the folder of a run it had prepared but
    # not started, the inputs of a run the survivor finished). Its container comes back, as the kubelet
    # restarts a killed container with its emptyDir kept, and its reconciler removes every one of them.
    figures["folders in the killed runner's work root"] = len(run_folders([killed_root]))
    t_back = time.monotonic()
    rep.restart("runner", victims["runner"])
    _until("the restarted runner to remove its leftovers", lambda: not run_folders([killed_root]), 120, 0.3)
    figures["leftovers removed after the restart (s)"] = round(time.monotonic() - t_back, 1)
    assert not run_folders(rep.work_dirs("runner")), run_folders(rep.work_dirs("runner"))

    # --- every workspace's log: no gap, duplicate or fork; the bundle verifies ----------------------
    for ws in wss:
        figures[f"log {ws}"] = _log_is_whole(gw[0], ws, tmp_path)
    figures["gateway-2 poll errors while killed"] = dict(Counter(poll_errors))
    print("\nreplica trial:", json.dumps(figures, indent=1))
    for c in gw:
        c.close()
