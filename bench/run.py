"""Run figures through the whole platform, each beside a raw ``podman run`` measured in the same run.

1. Latency. Submit-to-container-start: from the wall-clock time just before ``POST
   /workspaces/{ws}/runs`` to the wall-clock timestamp the run's command prints as its first action
   (``python3 -c "import time; print(repr(time.time()))"``; containers share the host's clock); and
   submit-to-succeeded (the ``finished_at`` the runner records with the terminal state). Beside a raw
   ``podman run`` of the same image with the sandbox flags of the local target (network none, user
   65534, read-only root, tmpfs /tmp, cap-drop ALL, no-new-privileges, the same CPU/memory/pids
   limits, /work and /outputs bind mounts), measured the same way: time before ``podman run`` ->
   printed timestamp, and -> ``podman run`` exits with 0. Medians over N repetitions after one
   warm-up of each, platform and raw interleaved so that background load hits both alike.
   Target: ratio <= 1.5 or at most +300 ms.
2. Throughput. K runs submitted at once (concurrent POSTs), time until all succeeded, runs/s;
   beside K raw ``podman run`` launched at once with the same flags, time until all exited with 0.

Setup: a Platform (nats-server, local OCI registry, podman's Docker-compatible API and the five
services; SQLite) in a temporary directory, an admin-owned workspace, a tiny environment (base
localhost/reprolab/bookworm-python, Python 3.11, six==1.16.0) built through the platform, one small
code archive. At the end, also on failure, the platform is stopped and its temporary directory
removed, with every container the run started (raw ones by label, platform ones by run id) and the
image names it added under the platform's registry; images it did not add are never touched.

Other Reprolab platforms on the same podman engine interfere: a runner's reconciler removes run
containers whose run ids it does not know. This bench's runner therefore reconciles only at its start
(REPROLAB_RUNNER_RECONCILE_SECONDS=86400); a measurement whose container another runner removed is
taken again (up to three times) and counted in the header, with the other runners seen on the host.

Usage: python bench/run.py [-n N] [--concurrent K] [--quick] [--runner-concurrency C]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform
from reprolab_runner.config import RunnerSettings
from reprolab_runner.targets.base import LABEL, Limits
from reprolab_runner.targets.local import DEFAULT_TMP_BYTES, OUTPUTS, RUN_GID, RUN_UID, WORKDIR, unpack_code
from reprolab_runner.worker import QUICK_LOOK_SECONDS

BASE = "localhost/reprolab/bookworm-python:latest"
SPEC = {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}
COMMAND = ["python3", "-c", "import time; print(repr(time.time()), flush=True)"]
CODE = {"main.py": "print('hello from the bench')\n", "README.md": "A tiny code archive for bench/run.py.\n"}
LIMITS = Limits(timeout_seconds=120)
RESOURCES = {"cpu": f"{LIMITS.cpu_millis}m", "memory": f"{LIMITS.memory_bytes >> 20}Mi", "pids": LIMITS.pids,
             "timeout": LIMITS.timeout_seconds}
BENCH_LABEL = "org.reprolab.bench"
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")
TARGET_RATIO, TARGET_EXTRA = 1.5, 0.300


class Failure(Exception):
    pass


class Disappeared(Failure):
    """A platform run's container was removed by someone else: on a shared podman engine, the
    reconciler of another Reprolab runner removes run containers whose run ids it does not know."""


def progress(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def sh(*cmd: str, check: bool = True, timeout: float = 120) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise Failure(f"{' '.join(cmd[:3])} failed: {proc.stderr.strip()[-400:]}")
    return proc.stdout.strip()


def tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def epoch(value: str | None) -> float:
    if not value:
        raise Failure("the run has no timestamp where one was expected")
    return datetime.fromisoformat(value).timestamp()


def first_stamp(output: str, what: str) -> float:
    for line in output.splitlines():
        try:
            return float(line.strip())
        except ValueError:
            continue
    raise Failure(f"{what} printed no timestamp: {output[-300:]!r}")


def other_runners(mine: int | None) -> int:
    """Reprolab runner processes on this host other than ours (each reconciles the shared engine)."""
    n = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"reprolab_runner" in args and int(cmdline.parent.name) != mine:
            n += 1
    return n


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (5 min {five:.2f})"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


@dataclass
class Sample:
    start: float               # submit -> the container process's first timestamp
    done: float                # submit -> succeeded (platform: finished_at; raw: podman run exited)
    answered: float = 0.0      # platform: POST /runs answered
    running: float = 0.0       # platform: started_at (the runner marked it running)
    observed: float = 0.0      # platform: the client saw "succeeded" (polling)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tag = uuid.uuid4().hex[:8]
        self.ws = f"bench-{self.tag}"
        self.tmp = Path(tempfile.mkdtemp(prefix="reprolab-bench-run-"))
        # No periodic reconciling by our runner (its startup pass cannot be avoided): on a shared
        # engine it would remove the run containers of other Reprolab platforms on this host.
        extra = {"REPROLAB_RUNNER_RECONCILE_SECONDS": "86400"}
        if args.runner_concurrency:
            extra["REPROLAB_RUNNER_CONCURRENCY"] = str(args.runner_concurrency)
        self.platform = Platform(self.tmp / "platform", extra_env=extra)
        self.admin: Client | None = None
        self.registry = ""           # the platform's registry address, kept for the image cleanup
        self.image = ""              # the run image (<ref>@sha256:...) as the platform reports it
        self.code = ""
        self.run_ids: set[str] = set()
        self.raw_n = 0
        self.clients: list[Client] = []
        self.redone = 0

    # -- platform ----------------------------------------------------------------------------------

    def setup(self) -> None:
        if not sh("podman", "image", "inspect", "--format", "{{.Id}}", BASE, check=False):
            raise Failure(f"base image {BASE} is missing (make base-image)")
        progress(f"starting the platform in {self.platform.data_dir}")
        self.platform.start(timeout=120)
        if self.platform.registry is None or self.platform.podman is None:
            raise Failure("the platform runs without its own registry or podman API (configured outside?)")
        self.registry = self.platform.registry.address
        self.admin = Client(self.platform.url, self.platform.admin_token())
        admin = self.admin
        admin.post("/workspaces", json={"slug": self.ws, "title": "run bench"})
        admin.post(f"/workspaces/{self.ws}/environments", json={"name": "py", "spec": SPEC})
        progress("building the environment (six==1.16.0) through the platform")
        build = admin.post(f"/workspaces/{self.ws}/environments/py/versions/1/builds", expect=(202,))
        deadline = time.monotonic() + 600
        while (b := admin.get(f"/builds/{build['id']}"))["status"] not in ("succeeded", "failed"):
            if time.monotonic() > deadline:
                raise Failure("the environment build did not finish in 600 s")
            time.sleep(0.5)
        if b["status"] != "succeeded":
            raise Failure(f"the environment build failed: {b.get('error')}")
        self.code = admin.request("POST", f"/workspaces/{self.ws}/code", content=tar_gz(CODE),
                                  expect=(201,))["digest"]
        self.clients = [Client(self.platform.url, self.platform.admin_token()) for _ in range(self.args.concurrent)]

    def submit(self, client: Client) -> tuple[str, float, float]:
        """POST one run; returns (id, wall clock just before the POST, wall clock when answered)."""
        body = {"environment": "py", "code": self.code, "command": COMMAND, "resources": RESOURCES}
        t0 = time.time()
        run = client.request("POST", f"/workspaces/{self.ws}/runs", json=body, expect=(202,))
        answered = time.time()
        self.run_ids.add(run["id"])
        return run["id"], t0, answered

    def wait_runs(self, ids: list[str], timeout: float = 300) -> tuple[dict[str, dict], float]:
        """Poll until every run is terminal (one GET per run, or the workspace's list for many);
        returns the runs and the wall clock when the last one was seen finished."""
        assert self.admin is not None
        pending, done = set(ids), {}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise Failure(f"{len(pending)} runs not finished after {timeout:.0f} s")
            if len(pending) == 1:
                rid = next(iter(pending))
                found = [self.admin.get(f"/runs/{rid}")]
            else:
                found = self.admin.get(f"/workspaces/{self.ws}/runs")["items"]
            for run in found:
                if run["id"] in pending and run["status"] in TERMINAL:
                    pending.discard(run["id"])
                    done[run["id"]] = run
            if pending:
                time.sleep(0.1 if len(ids) == 1 else 0.2)
        seen = time.time()
        bad = [r for r in done.values() if r["status"] != "succeeded"]
        if bad and all("disappeared" in (r.get("error") or "") for r in bad):
            raise Disappeared(f"{len(bad)} of {len(ids)} run container(s) removed outside this platform "
                              f"(another Reprolab runner's reconciler on this host?): {bad[0].get('error')}")
        if bad:
            raise Failure(f"{len(bad)} run(s) did not succeed, e.g. {bad[0]['status']}: {bad[0].get('error')}")
        return done, seen

    def stamp(self, run_id: str) -> float:
        assert self.admin is not None
        logs = self.admin.get(f"/runs/{run_id}/outputs/logs.txt")
        return first_stamp(logs.decode() if isinstance(logs, bytes) else str(logs), f"run {run_id}")

    def platform_once(self) -> Sample:
        assert self.admin is not None
        rid, t0, answered = self.submit(self.admin)
        runs, seen = self.wait_runs([rid])
        run = runs[rid]
        if not self.image:
            self.image = run["image"]
        return Sample(start=self.stamp(rid) - t0, done=epoch(run["finished_at"]) - t0, answered=answered - t0,
                      running=epoch(run["started_at"]) - t0, observed=seen - t0)

    def platform_many(self, k: int) -> dict[str, float]:
        t0 = time.time()
        with ThreadPoolExecutor(k) as pool:
            submitted = list(pool.map(self.submit, self.clients[:k]))
        answered = max(a for _, _, a in submitted) - t0
        runs, seen = self.wait_runs([rid for rid, _, _ in submitted])
        last = max(epoch(r["finished_at"]) for r in runs.values()) - t0
        starts = sorted(self.stamp(rid) - t0 for rid in runs)
        return {"total": last, "observed": seen - t0, "answered": answered, "first": starts[0], "last": starts[-1]}

    def again(self, fn: Callable[[], Any], what: str, attempts: int = 3) -> Any:
        """``fn()``, measured again (up to ``attempts`` times) when another platform removed a container."""
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except Disappeared as exc:
                if attempt == attempts:
                    raise
                self.redone += 1
                progress(f"{what}: {exc}; measuring it again")
        raise AssertionError("unreachable")

    # -- raw podman --------------------------------------------------------------------------------

    def raw_dirs(self, name: str) -> tuple[Path, Path]:
        """/work (the same code, unpacked) and /outputs for one raw container, owned by the run user."""
        root = self.tmp / "raw" / name
        work, outputs = root / "work", root / "outputs"
        work.mkdir(parents=True)
        outputs.mkdir()
        archive = self.tmp / "code.tar.gz"
        if not archive.exists():
            archive.write_bytes(tar_gz(CODE))
        unpack_code(archive, work)
        for path in [work, outputs, *work.rglob("*")]:
            if os.geteuid() == 0:
                os.chown(path, RUN_UID, RUN_GID, follow_symlinks=False)
            else:
                path.chmod(0o777 if path.is_dir() else 0o666)
        return work, outputs

    def raw_cmd(self) -> list[str]:
        self.raw_n += 1
        name = f"reprolab-bench-{self.tag}-{self.raw_n}"
        work, outputs = self.raw_dirs(name)
        mem = str(LIMITS.memory_bytes)
        return ["podman", "run", "--name", name, "--label", f"{BENCH_LABEL}={self.tag}",
                "--network", "none", "--user", f"{RUN_UID}:{RUN_GID}", "--read-only",
                "--tmpfs", f"/tmp:rw,nosuid,nodev,size={DEFAULT_TMP_BYTES},mode=1777",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--cpus", f"{LIMITS.cpu_millis / 1000:g}", "--memory", mem, "--memory-swap", mem,
                "--pids-limit", str(LIMITS.pids), "-w", WORKDIR, "-e", "HOME=/tmp",
                "-v", f"{work}:{WORKDIR}:rw", "-v", f"{outputs}:{OUTPUTS}:rw",
                self.image, *COMMAND]

    def raw_once(self) -> Sample:
        cmd = self.raw_cmd()
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        t1 = time.time()
        if proc.returncode != 0:
            raise Failure(f"podman run exited with {proc.returncode}: {proc.stderr.strip()[-400:]}")
        sample = Sample(start=first_stamp(proc.stdout, "podman run") - t0, done=t1 - t0)
        self.remove_raw()
        return sample

    def raw_many(self, k: int) -> dict[str, float]:
        cmds = [self.raw_cmd() for _ in range(k)]
        t0 = time.time()
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
        outs = [p.communicate(timeout=300) for p in procs]
        total = time.time() - t0
        for p, (_, err) in zip(procs, outs, strict=True):
            if p.returncode != 0:
                raise Failure(f"a concurrent podman run exited with {p.returncode}: {err.strip()[-400:]}")
        starts = sorted(first_stamp(out, "podman run") - t0 for out, _ in outs)
        self.remove_raw()
        return {"total": total, "first": starts[0], "last": starts[-1]}

    def remove_raw(self) -> None:
        ids = sh("podman", "ps", "-aq", "--filter", f"label={BENCH_LABEL}={self.tag}", check=False).split()
        if ids:
            sh("podman", "rm", "-f", *ids, check=False)

    # -- cleanup -----------------------------------------------------------------------------------

    def remove_platform_leftovers(self) -> None:
        """Containers of this run's platform runs that the runner did not remove (e.g. after a failure)."""
        out = sh("podman", "ps", "-a", "--filter", f"label={LABEL}", "--format", "json", check=False)
        try:
            listed = json.loads(out or "[]")
        except ValueError:
            return
        doomed = [c["Id"] for c in listed if (c.get("Labels") or {}).get(LABEL) in self.run_ids]
        if doomed:
            sh("podman", "rm", "-f", *doomed, check=False)

    def remove_images(self) -> None:
        """Names under this platform's registry (its workspace), and images that only they held."""
        if not self.registry:
            return
        prefix = f"{self.registry}/{self.ws}/"
        try:
            listed = json.loads(sh("podman", "images", "--format", "json", check=False) or "[]")
        except ValueError:
            return
        for image in listed:
            names = [n for n in image.get("Names") or [] if n.startswith(prefix)]
            others = [n for n in image.get("Names") or [] if not n.startswith(prefix)]
            if not names:
                continue
            if others:
                for name in names:
                    sh("podman", "untag", image["Id"], name, check=False)
            else:
                sh("podman", "rmi", image["Id"], check=False)

    def cleanup(self) -> None:
        for client in [*self.clients, *([self.admin] if self.admin else [])]:
            client.close()
        try:
            self.remove_raw()
        finally:
            try:
                self.platform.stop()
            finally:
                self.remove_platform_leftovers()
                self.remove_images()
                shutil.rmtree(self.tmp, ignore_errors=True)

    def tails(self) -> str:
        return "\n".join(f"--- {name} log (tail) ---\n{self.platform.tail(name, 15)}" for name in ("runner", "gateway"))

    # -- the run -----------------------------------------------------------------------------------

    def main(self) -> None:
        a = self.args
        load_start, others_start = load(), other_runners(None)
        self.setup()
        progress("warm-up: one platform run (pulls the image into podman's storage), one raw podman run")
        self.again(self.platform_once, "warm-up")
        self.raw_once()

        plat: list[Sample] = []
        raw: list[Sample] = []
        for i in range(a.repetitions):
            progress(f"(1) latency {i + 1}/{a.repetitions}: platform run, raw podman run")
            plat.append(self.again(self.platform_once, "latency"))
            raw.append(self.raw_once())
        load_mid = load()

        k = a.concurrent
        progress(f"(2) throughput: {k} platform runs submitted at once")
        ours = self.again(lambda: self.platform_many(k), "throughput")
        progress(f"(2) throughput: {k} raw podman runs at once")
        base = self.raw_many(k)
        load_end = load()
        runner = self.platform.procs.get("runner")
        others_end = other_runners(runner.pid if runner else None)

        # -- report ------------------------------------------------------------------------------
        med = statistics.median
        version = sh("podman", "version", "--format", "{{.Client.Version}}", check=False)
        settings = RunnerSettings.model_fields
        conc = a.runner_concurrency or int(os.environ.get("REPROLAB_RUNNER_CONCURRENCY",
                                                          settings["concurrency"].default))
        poll = float(os.environ.get("REPROLAB_RUNNER_POLL_SECONDS", settings["poll_seconds"].default))
        print(f"run bench: image {self.image.split('@')[0]} (six==1.16.0 on {BASE}); {os.cpu_count()} CPUs; "
              f"podman {version}; SQLite; runner concurrency {conc}, status poll {poll:g} s (a young local run "
              f"is looked at from {QUICK_LOOK_SECONDS * 1000:.0f} ms on, backing off with its age)")
        print(f"  sandbox of both: network none, user {RUN_UID}:{RUN_GID}, read-only, tmpfs /tmp "
              f"{DEFAULT_TMP_BYTES >> 20} MiB, cap-drop ALL, no-new-privileges, {LIMITS.cpu_millis / 1000:g} CPU, "
              f"{LIMITS.memory_bytes >> 20} MiB, {LIMITS.pids} pids; command {' '.join(COMMAND[:2])} '...time.time()'")
        print(f"  load average (1 min) at start {load_start}, after (1) {load_mid}, at end {load_end}; other "
              f"Reprolab runners on this host: {others_start} at start, {others_end} at end"
              + (f"; {self.redone} measurement(s) redone after another runner removed our container"
                 if self.redone else ""))

        def row(label: str, ours_s: float, base_label: str, base_s: float) -> None:
            ratio, diff = ours_s / base_s, ours_s - base_s
            met = ratio <= TARGET_RATIO or diff <= TARGET_EXTRA
            print(f"  {label:<44} {ms(ours_s)}   vs {base_label:<32} {ms(base_s)}   ratio {ratio:5.2f}  "
                  f"{diff * 1000:+6.0f} ms   target (ratio <= {TARGET_RATIO} or +{TARGET_EXTRA * 1000:.0f} ms): "
                  f"{'MET' if met else 'NOT MET'}")

        print(f"(1) latency, medians of {a.repetitions} (after one warm-up each; platform and raw interleaved)")
        row("POST /runs -> container process starts", med(s.start for s in plat),
            "podman run -> process starts", med(s.start for s in raw))
        row("POST /runs -> succeeded (runner's finished_at)", med(s.done for s in plat),
            "podman run -> exited 0", med(s.done for s in raw))
        def spread(samples: list[Sample], field: str) -> str:
            values = [getattr(s, field) * 1000 for s in samples]
            return f"{min(values):.0f}-{max(values):.0f} ms"

        steps = {f: med(getattr(s, f) for s in plat) * 1000 for f in ("answered", "start", "running", "done",
                                                                        "observed")}
        print(f"  platform steps (medians): POST answered {steps['answered']:.0f} ms, process starts "
              f"{steps['start']:.0f} ms, marked running {steps['running']:.0f} ms, succeeded {steps['done']:.0f} ms, "
              f"seen by the client (polling 0.1 s) {steps['observed']:.0f} ms")
        print(f"  spread (min-max): platform start {spread(plat, 'start')}, succeeded {spread(plat, 'done')}; "
              f"raw start {spread(raw, 'start')}, exited {spread(raw, 'done')}")

        ours_rate, base_rate = k / ours["total"], k / base["total"]
        print(f"(2) throughput, {k} runs at once")
        print(f"  {f'{k} POST /runs at once -> all succeeded':<44} {ours['total']:7.2f} s  {ours_rate:6.2f} runs/s   "
              f"vs {f'{k} podman run at once -> all exited 0':<36} {base['total']:7.2f} s  {base_rate:6.2f} runs/s   "
              f"ratio {ours_rate / base_rate:.2f}")
        print(f"  platform: all POSTs answered after {ours['answered']:.2f} s; processes started from "
              f"{ours['first']:.2f} s to {ours['last']:.2f} s; all seen succeeded by the client after "
              f"{ours['observed']:.2f} s; the runner drives {conc} runs at once")
        print(f"  raw: processes started from {base['first']:.2f} s to {base['last']:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--repetitions", type=int, help="latency repetitions (default 10; --quick 3)")
    ap.add_argument("--concurrent", type=int, help="runs at once for the throughput figure (default 20; --quick 5)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 repetitions, 5 runs at once")
    ap.add_argument("--runner-concurrency", type=int,
                    help="REPROLAB_RUNNER_CONCURRENCY for the platform's runner (default: the runner's default)")
    args = ap.parse_args()
    args.repetitions = args.repetitions or (3 if args.quick else 10)
    args.concurrent = args.concurrent or (5 if args.quick else 20)
    if args.repetitions < 1 or args.concurrent < 1:
        ap.error("--repetitions and --concurrent must be at least 1")
    if not shutil.which("podman"):
        ap.error("podman is not installed")

    bench = Bench(args)
    previous: dict[int, Callable[..., Any] | int | None] = {}

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, stop)
    try:
        bench.main()
    except Exception as exc:
        print(f"bench failed: {exc}\n{bench.tails()}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        # a second signal must not cut the cleanup short (it would leave the platform's processes behind)
        previous.setdefault(signal.SIGINT, signal.getsignal(signal.SIGINT))
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        progress("cleaning up (platform, containers and image names of this run, temporary files)")
        try:
            bench.cleanup()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


if __name__ == "__main__":
    main()
