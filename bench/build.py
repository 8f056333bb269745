"""Image build figures, each beside a baseline measured in the same run (buildah backend, real registry).

(a) Cold build of a scientific environment: resolve + fetch wheels + build + push, with an empty
    wheel cache, empty uv/pip caches and no image left from earlier runs; the resolve time apart.
(b) No-op rebuild of the same lock to the same tag (layer cache, nothing pushed).
(c) A derived version adding one package, built FROM the parent image (resolve + fetch + build +
    push), beside the time to install that one package alone: a buildah build FROM the same parent
    whose only step is ``pip install <package>==<version>`` from PyPI (target: ratio <= 1.2). A
    stricter second baseline installs the already-downloaded wheel offline (no fetch, no resolve).
(d) The same environment built the way repo2docker does it (FROM the same base: install pip, then a
    plain ``pip install -r requirements.txt`` from PyPI inside the build): cold (no layer cache) and
    after adding the same package (layer cache allowed), each as a ratio to ours; and whether two
    cold builds give one manifest digest, for repo2docker-style and for ours (the second of ours
    rebuilds the same lock after emptying the wheel cache and local image storage).

(e) Importing a Binder-ready repository (binder/requirements.txt with the same packages, apt.txt-free,
    a postBuild and a notebook): detection as repo2docker does it, canonical repository tar, resolve
    and build + push, with its own empty wheel/uv/pip caches, beside the repo2docker-style cold build
    of (d) (the same requirements, ``pip install -r`` in the build).

Every figure includes the push to a local registry (CNCF distribution on a free loopback port).
Images, registry and temporary files made by the run are removed at the end, also on failure;
the base image and images the run did not make are never touched.

Usage: python bench/build.py [--packages a,b,c] [--add NAME] [--quick] [--no-repro] [--keep-log PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from reprolab_builder.backends.buildah import BuildahBackend
from reprolab_builder.build import build_lock
from reprolab_builder.config import BuilderSettings
from reprolab_builder.lock import resolve, uv_compile
from reprolab_builder.render import python_delta
from reprolab_builder.wheelcache import cached, fetch, wheels_root
from reprolab_common.localregistry import LocalRegistry

BASE = "localhost/reprolab/bookworm-python:latest"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
SCIENTIFIC = ["numpy", "scipy", "pandas", "scikit-learn", "matplotlib",
              "seaborn", "statsmodels", "sympy", "networkx", "pillow"]
QUICK = ["six", "idna", "attrs", "tabulate"]
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
COLD_TARGET = 3.0  # issue 14 item 5: a cold build at least 3x faster than the repo2docker-style one
TARGET = 1.2  # issue 14 item 5: a derived version at most 1.2x installing its one new package alone
PIP_FLAGS = "--no-cache-dir --disable-pip-version-check --no-input --root-user-action=ignore --break-system-packages"


class Failure(Exception):
    pass


class Log:
    """Build output: to a file (shown on failure), with a timestamp per line; collects image ids."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "a", buffering=1)  # noqa: SIM115 - closed in Bench.cleanup
        self.lines: list[tuple[float, str]] = []
        self.t0 = time.monotonic()

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        self.lines.append((now, line))
        self.fh.write(f"{now - self.t0:8.3f} {line}\n")  # seconds since the run started: where the time goes

    def mark(self) -> int:
        return len(self.lines)

    def since(self, mark: int) -> list[tuple[float, str]]:
        return self.lines[mark:]

    def tail(self, n: int = 40) -> str:
        return "\n".join(line for _, line in self.lines[-n:])


def progress(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise Failure(f"{' '.join(cmd[:3])} failed: {proc.stderr.strip()[-400:]}")
    return proc.stdout.strip()


def image_ids() -> set[str]:
    return set(sh("podman", "images", "-a", "--no-trunc", "--format", "{{.ID}}").split())


def full_id(short: str) -> str | None:
    out = sh("podman", "image", "inspect", "--format", "{{.Id}}", short, check=False)
    return out.removeprefix("sha256:") or None


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix="reprolab-bench-build-"))
        self.log = Log(self.tmp / "build.log")
        self.registry = LocalRegistry(self.tmp / "registry", log_file=self.tmp / "registry.log")
        self.before = image_ids()
        self.base_id = full_id(BASE)
        self.made: list[str] = []   # image ids our builds committed (in order), to remove at the end
        self.refs: list[str] = []   # names we tagged
        self.settings: BuilderSettings | None = None
        self.old_env = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "UV_CACHE_DIR")}

    # -- bookkeeping ---------------------------------------------------------------------------

    def note_images(self, mark: int) -> None:
        """Record the image ids a build printed (``--> <id>``), unless they existed before the run."""
        for _, line in self.log.since(mark):
            m = re.match(r"^--> ([0-9a-f]{8,64})\s*$", line.strip())
            if m:
                fid = full_id(m.group(1))
                if fid and fid not in self.before and fid != self.base_id and fid not in self.made:
                    self.made.append(fid)

    def chain(self, ref: str) -> list[str]:
        """Ids from ``ref`` down its parents (the layer-cache images) that this run committed."""
        ids, current = [], full_id(ref)
        while current and current in self.made and current not in ids:
            ids.append(current)
            current = sh("podman", "image", "inspect", "--format", "{{.Parent}}", current,
                         check=False).removeprefix("sha256:")
        return ids

    def remove_images(self, refs: list[str], *, everything: bool = False) -> None:
        """Remove ``refs`` and the images this run committed under them (``everything``: all of
        them); an image that existed before the run only loses the name."""
        doomed: list[str] = []
        for ref in refs:
            fid = full_id(ref)
            if fid is None:
                continue
            if fid in self.before or fid == self.base_id:
                sh("podman", "untag", fid, ref, check=False)
                continue
            doomed += [i for i in self.chain(ref) if i not in doomed]
            sh("buildah", "rmi", "-f", ref, check=False)
        if everything:
            doomed += [i for i in reversed(self.made) if i not in doomed]
        for fid in doomed:
            if fid != self.base_id and fid not in self.before and full_id(fid):
                sh("buildah", "rmi", "-f", fid, check=False)

    def cleanup(self) -> None:
        try:
            BuildahBackend.wait_for_local_copies()  # the local copies of one-layer builds are this run's too
            self.remove_images(list(self.refs), everything=True)
            ours = f"{self.registry.address}/bench-{self.run}/"
            for line in sh("podman", "images", "--format", "{{.ID}} {{.Repository}}", check=False).splitlines():
                fid, _, repo = line.partition(" ")
                if repo.startswith(ours) and full_id(fid) not in self.before:
                    sh("podman", "rmi", "-f", fid, check=False)
        finally:
            self.registry.stop()
            for k, v in self.old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            self.log.fh.close()
            if self.args.keep_log:
                shutil.copyfile(self.log.path, self.args.keep_log)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def buildah(self, cmd: list[str], what: str) -> None:
        mark = self.log.mark()
        self.log(f"$ {' '.join(cmd)}")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log(line.rstrip("\n"))
        code = proc.wait()
        self.note_images(mark)
        if code != 0:
            raise Failure(f"{what} failed (exit {code})")

    def push(self, ref: str) -> str:
        digestfile = self.tmp / "digest"
        self.buildah(["buildah", "push", "--digestfile", str(digestfile), "--tls-verify=false", ref,
                      f"docker://{ref}"], f"push of {ref}")
        return digestfile.read_text().strip()

    def manifest(self, ref: str) -> dict[str, Any]:
        name, tag = ref.removeprefix(self.registry.address + "/").rsplit(":", 1)
        resp = httpx.get(f"http://{self.registry.address}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT})
        resp.raise_for_status()
        return resp.json()

    def size_mb(self, ref: str) -> float:
        return sum(layer["size"] for layer in self.manifest(ref)["layers"]) / 1e6

    # -- ours ----------------------------------------------------------------------------------

    def ours(self, lock: dict, ref: str, parent_lock: dict | None = None,
             cold: bool = False) -> tuple[float, str, dict[str, float]]:
        """build_lock → (seconds, digest, phases: wheels/context, buildah bud, its pull of the FROM
        image, push)."""
        assert self.settings is not None
        self.refs.append(ref)
        mark = self.log.mark()
        t0 = time.monotonic()
        try:
            result = build_lock(lock, settings=self.settings, backend=BuildahBackend(self.settings),
                                image_ref=ref, parent_lock=parent_lock, log=self.log)
        finally:
            self.note_images(mark)
        total = time.monotonic() - t0
        lines = self.log.since(mark)
        t_ctx = next((t for t, ln in lines if ln.startswith("context ")), t0)
        # a one-layer build commits straight to the registry: its push starts at buildah's COMMIT docker://
        t_push = next((t for t, ln in lines if ln.startswith(("$ buildah push", "COMMIT docker://"))), None)
        end = t0 + total
        phases = {"wheels": t_ctx - t0, "bud": (t_push or end) - t_ctx, "push": end - t_push if t_push else 0.0}
        t_pull = next((t for t, ln in lines if ln.startswith("Trying to pull")), None)
        t_step2 = next((t for t, ln in lines if t_pull and t >= t_pull and ln.startswith("STEP 2/")), t_pull)
        phases["pull"] = (t_step2 - t_pull) if t_pull and t_step2 else 0.0
        if cold and any("Using cache" in ln for _, ln in lines):
            print(f"WARNING: the cold build of {ref} reused cached layers (left from an earlier run?)",
                  file=sys.stderr)
        return total, result.digest, phases

    def pip_wheel(self, lock: dict) -> Path:
        """A pip wheel for the baselines, which install with pip whatever installer the lock names."""
        assert self.settings is not None
        pins = uv_compile(["pip"], python_version=lock["python"]["version"], settings=self.settings,
                          log=lambda _: None)
        pip = next(p for p in pins if p["name"] == "pip")
        return fetch([pip], python_version=lock["python"]["version"], settings=self.settings,
                     log=lambda _: None)["pip"]

    def one_package_baseline(self, parent_image: str, lock: dict, parent_lock: dict) -> tuple[float, list[str]]:
        """buildah build FROM the parent whose only step installs the delta wheel(s) offline."""
        assert self.settings is not None
        install, _ = python_delta(lock, parent_lock)
        root = wheels_root(self.settings)
        pip = self.pip_wheel(lock)
        ctx = self.tmp / "one-package"
        (ctx / "wheels").mkdir(parents=True)
        names = []
        for p in install:
            src = cached(root, p["name"], p["hashes"])
            if src is None:
                raise Failure(f"wheel of {p['name']} is not in the wheel cache")
            os.link(src, ctx / "wheels" / src.name)
            names.append(src.name)
        os.link(pip, ctx / "wheels" / pip.name)
        wheels = " ".join(f"/wheels/{n}" for n in names)
        (ctx / "Containerfile").write_text(
            f"FROM {parent_image}\n"
            "RUN --mount=type=bind,source=wheels,target=/wheels \\\n"
            "    export SOURCE_DATE_EPOCH=0 PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 \\\n"
            f" && python3 /wheels/{pip.name}/pip install {PIP_FLAGS} --no-index --no-deps {wheels}\n")
        ref = f"localhost/reprolab-bench-{self.run}/one-package:latest"
        self.refs.append(ref)
        t0 = time.monotonic()
        self.buildah(["buildah", "bud", "--timestamp", "0", "--identity-label=false", "--format", "oci", "--layers",
                      "--no-cache", "--tls-verify=false", "-f", str(ctx / "Containerfile"), "-t", ref, str(ctx)],
                     "one-package baseline build")
        return time.monotonic() - t0, [p["name"] + "==" + p["version"] for p in install]

    def one_package_online_baseline(self, parent_image: str, lock: dict, parent_lock: dict) -> float:
        """buildah build FROM the parent whose only step is ``pip install NAME==VERSION`` from PyPI
        (pip itself from its wheel, as the parent has none; the host CA bundle mounted, not copied)."""
        assert self.settings is not None
        install, _ = python_delta(lock, parent_lock)
        src = self.pip_wheel(lock)
        ctx = self.tmp / "one-package-online"
        (ctx / "wheels").mkdir(parents=True)
        os.link(src, ctx / "wheels" / src.name)
        cert = "PIP_CERT=/host-ca.crt " if HOST_CA.exists() else ""
        pins = " ".join(f"{p['name']}=={p['version']}" for p in install)
        (ctx / "Containerfile").write_text(
            f"FROM {parent_image}\n"
            f"RUN --mount=type=bind,source=wheels,target=/wheels echo {self.run} >/dev/null \\\n"
            f" && {cert}python3 /wheels/{src.name}/pip install --no-cache-dir --break-system-packages "
            f"--no-deps {pins}\n")
        ref = f"localhost/reprolab-bench-{self.run}/one-package-online:latest"
        self.refs.append(ref)
        cmd = ["buildah", "bud", "--layers", "--no-cache", "--tls-verify=false"]
        if HOST_CA.exists():
            cmd += ["--volume", f"{HOST_CA}:/host-ca.crt:ro"]
        t0 = time.monotonic()
        self.buildah([*cmd, "-f", str(ctx / "Containerfile"), "-t", ref, str(ctx)], "one-package online baseline")
        return time.monotonic() - t0

    # -- repo2docker-style ---------------------------------------------------------------------

    def repo2docker(self, requirements: list[str], ref: str, *, cold: bool) -> tuple[float, float, str]:
        """FROM the base: install pip (python3-venv from Debian, a venv), COPY requirements.txt, a
        plain ``pip install -r`` from PyPI; then push. Returns (build s, push s, digest)."""
        ctx = self.tmp / f"r2d-{len(self.refs)}"
        ctx.mkdir()
        (ctx / "requirements.txt").write_text("\n".join(requirements) + "\n")
        cert = "PIP_CERT=/host-ca.crt " if HOST_CA.exists() else ""
        # the run id keeps earlier runs' layers (same instruction) from being reused
        (ctx / "Containerfile").write_text(
            f"FROM {BASE}\n"
            f"RUN echo reprolab-bench-{self.run} >/dev/null \\\n"
            " && export DEBIAN_FRONTEND=noninteractive && apt-get update -q \\\n"
            " && apt-get install -y -q --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/* \\\n"
            " && python3 -m venv /srv/venv\n"
            "ENV PATH=/srv/venv/bin:$PATH\n"
            "COPY requirements.txt /srv/repo/requirements.txt\n"
            f"RUN {cert}pip install --no-cache-dir -r /srv/repo/requirements.txt\n")
        self.refs.append(ref)
        cmd = ["buildah", "bud", "--layers", *(["--no-cache"] if cold else [])]
        if HOST_CA.exists():
            cmd += ["--volume", f"{HOST_CA}:/host-ca.crt:ro"]
        cmd += ["-f", str(ctx / "Containerfile"), "-t", ref, str(ctx)]
        t0 = time.monotonic()
        self.buildah(cmd, f"repo2docker-style build of {ref}")
        built = time.monotonic() - t0
        t0 = time.monotonic()
        digest = self.push(ref)
        return built, time.monotonic() - t0, digest

    # -- import (issue 16) ---------------------------------------------------------------------

    def imported(self, packages: list[str], ref: str) -> tuple[float, float, str]:
        """A Binder-ready folder → detect → canonical tar → resolve → build + push, cold caches.
        Returns (detect + resolve s, build + push s, pack detected)."""
        import hashlib

        from reprolab_gateway.importer import detect_repository
        from reprolab_gateway.importer.archive import canonical_tar, read_directory

        repo = self.tmp / "binder-repo"
        (repo / "binder").mkdir(parents=True)
        (repo / "binder" / "requirements.txt").write_text("\n".join(packages) + "\n")
        (repo / "binder" / "postBuild").write_text("#!/bin/sh\necho postBuild ran > \"$HOME/.postbuild\"\n")
        (repo / "analysis.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
        settings = BuilderSettings(cache_dir=self.tmp / "cache-import", registry=self.registry.address,
                                   registry_tls_verify=False, pip_cert=HOST_CA if HOST_CA.exists() else None)
        os.environ["XDG_CACHE_HOME"] = str(self.tmp / "xdg-import")
        os.environ["UV_CACHE_DIR"] = str(self.tmp / "xdg-import" / "uv")
        t0 = time.monotonic()
        tree = read_directory(repo)
        detection = detect_repository(tree)
        data = canonical_tar(tree)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        lock = resolve(detection.spec(base=BASE, repository_digest=digest), settings=settings, log=self.log)
        t_resolve = time.monotonic() - t0
        self.refs.append(ref)
        mark = self.log.mark()
        t0 = time.monotonic()
        try:
            build_lock(lock, settings=settings, backend=BuildahBackend(settings), image_ref=ref, log=self.log,
                       datasets=lambda _digest, dest: dest.write_bytes(data))
        finally:
            self.note_images(mark)
        # the package layer has the same instruction as (a)'s, so buildah's layer cache may serve it: say so
        cached = sum(1 for _, ln in self.log.since(mark) if "Using cache" in ln)
        return t_resolve, time.monotonic() - t0, f"{detection.buildpack} pack, {cached} layer(s) from the cache"

    # -- the run -------------------------------------------------------------------------------

    def main(self, packages: list[str], add: str) -> None:
        a = self.args
        if not full_id(BASE):
            raise Failure(f"base image {BASE} is missing (make base-image)")
        self.registry.start()
        reg = self.registry.address
        repo = f"{reg}/bench-{self.run}/env"
        r2d = f"{reg}/bench-{self.run}/repo2docker"
        xdg = self.tmp / "xdg-cache"
        os.environ["XDG_CACHE_HOME"] = str(xdg)          # cold uv resolution cache and pip http cache
        os.environ["UV_CACHE_DIR"] = str(xdg / "uv")
        self.settings = BuilderSettings(cache_dir=self.tmp / "cache", registry=reg, registry_tls_verify=False,
                                        pip_cert=HOST_CA if HOST_CA.exists() else None)
        spec = {"base": BASE, "python": {"requirements": packages}}
        spec2 = {"base": BASE, "python": {"requirements": [*packages, add]}}

        progress(f"(a) cold: resolve {len(packages)} packages")
        t0 = time.monotonic()
        lock = resolve(spec, settings=self.settings, log=self.log)
        t_resolve = time.monotonic() - t0
        locked = len(lock["python"]["packages"])
        progress(f"(a) cold: fetch {locked} wheels, build, push")
        t_build, digest1, ph = self.ours(lock, f"{repo}:v1", cold=True)
        cold = t_resolve + t_build
        size1 = self.size_mb(f"{repo}:v1")

        progress("(a) the builder's local copy of the new image (background, after the build is reported)")
        t0 = time.monotonic()
        BuildahBackend.wait_for_local_copies()
        t_copy = time.monotonic() - t0
        copied = full_id(f"{repo}:v1") is not None

        progress("(b) no-op rebuild of the same lock")
        mark = self.log.mark()
        t_noop, digest_noop, _ = self.ours(lock, f"{repo}:v1")
        pushed_again = not any("not pushing again" in ln for _, ln in self.log.since(mark))

        progress(f"(c) derived version adding {add}")
        parent_image = f"{repo}@{digest1}"
        t0 = time.monotonic()
        lock2 = resolve(spec2, settings=self.settings, parent_lock=lock, parent_image=parent_image, log=self.log)
        t_resolve2 = time.monotonic() - t0
        if "parent" not in lock2:
            raise Failure("the derived lock does not build FROM its parent")
        t_derived, digest2, ph2 = self.ours(lock2, f"{repo}:v2", parent_lock=lock)
        parent_layers = [x["digest"] for x in self.manifest(f"{repo}:v1")["layers"]]
        layers2 = [x["digest"] for x in self.manifest(f"{repo}:v2")["layers"]]
        shares = layers2[: len(parent_layers)] == parent_layers
        derived = t_resolve2 + t_derived
        progress(f"(c) baseline: install {add} alone FROM the parent")
        t_one, delta = self.one_package_baseline(parent_image, lock2, lock)
        progress(f"(c) baseline: pip install {add} alone from PyPI FROM the parent")
        t_online = self.one_package_online_baseline(parent_image, lock2, lock)

        progress(f"(d) repo2docker-style cold build of {len(packages)} packages (pip from PyPI in the build)")
        r_build, r_push, r_digest = self.repo2docker(packages, f"{r2d}:cold", cold=True)
        r_size = self.size_mb(f"{r2d}:cold")
        progress(f"(d) repo2docker-style rebuild after adding {add} (layer cache)")
        c_build, c_push, _ = self.repo2docker([*packages, add], f"{r2d}:plus", cold=False)

        progress(f"(e) import a Binder-ready repository of the same {len(packages)} packages, cold caches")
        i_resolve, i_build, i_pack = self.imported(packages, f"{reg}/bench-{self.run}/imported:v1")
        os.environ["XDG_CACHE_HOME"] = str(xdg)
        os.environ["UV_CACHE_DIR"] = str(xdg / "uv")

        r_digest2 = digest_again = None
        t_again = r_build2 = r_push2 = 0.0
        if not a.no_repro:
            progress("repro: repo2docker-style cold build again")
            r_build2, r_push2, r_digest2 = self.repo2docker(packages, f"{r2d}:cold-again", cold=True)
            progress("repro: ours again from empty wheel cache and image storage (same lock, new tag)")
            self.remove_images([f"{repo}:v2", f"localhost/reprolab-bench-{self.run}/one-package:latest",
                                f"localhost/reprolab-bench-{self.run}/one-package-online:latest", f"{repo}:v1"])
            shutil.rmtree(wheels_root(self.settings), ignore_errors=True)
            shutil.rmtree(xdg, ignore_errors=True)
            if full_id(f"{repo}:v1") or full_id(parent_image):
                raise Failure("could not empty the local image storage of the first build")
            t_again, digest_again, _ = self.ours(lock, f"{repo}:v1-again", cold=True)
            BuildahBackend.wait_for_local_copies()  # its local copy is removed with the run's images

        # -- report ----------------------------------------------------------------------------
        n = os.cpu_count()
        print(f"build bench: {len(packages)} requested ({', '.join(packages)}) -> {locked} locked packages; "
              f"base {BASE} (Python {lock['python']['version']}); buildah backend; {n} CPUs; local registry")
        w = 44

        def row(label: str, secs: float, base_label: str = "", base: float | None = None,
                ratio: float | None = None, note: str = "") -> None:
            line = f"  {label:<{w}} {secs:8.1f} s"
            if base_label:
                line += f"  vs {base_label:<36} {base:7.1f} s  ratio {ratio:5.2f}"
            print(line + (f"   {note}" if note else ""))

        layout = (f"one layer over the base, committed straight to the registry (lock build.layers="
                  f"{lock['build']['layers']!r})" if lock.get("build") else "a layer per step")
        print("(a) ours, cold (empty wheel/uv/pip caches, no earlier images)")
        row("resolve (uv, hashes, base pin, uv installer)", t_resolve)
        row("fetch wheels + build + push", t_build,
            note=f"(wheels {ph['wheels']:.1f} s, buildah bud {ph['bud']:.1f} s, "
                 f"{'commit + ' if lock.get('build') else ''}push {ph['push']:.1f} s)")
        row("resolve + build + push", cold, note=f"image {size1:.0f} MB compressed; {layout}")
        row("local copy for derived builds", t_copy,
            note=f"(pulled by its tag after the build was reported, waited for here: {'kept' if copied else 'MISSING'};"
                 " a derived build FROM it waits for it too)")
        print("(b) ours, no-op rebuild of the same lock, same tag")
        row("build_lock (built again locally, no push)", t_noop,
            note=f"digest unchanged: {'yes' if digest_noop == digest1 else 'NO'}"
                 f"{'; PUSHED AGAIN' if pushed_again else ''}")
        print(f"(c) ours, derived version +{add} FROM the parent image "
              f"(installs {', '.join(delta)}; parent layers shared: {'yes' if shares else 'NO'})")
        ratio_c = derived / t_online
        row("resolve + build + push", derived, f"pip install {add} alone (PyPI)", t_online, ratio_c,
            f"target <= {TARGET}: {'MET' if ratio_c <= TARGET else 'NOT MET'}")
        row("resolve + build + push", derived, f"install {add} wheel offline alone", t_one, derived / t_one,
            "(stricter: the baseline neither resolves nor downloads)")
        row("build + push (resolve excluded)", t_derived, "same offline baseline", t_one, t_derived / t_one,
            f"(resolve {t_resolve2:.1f} s; wheels {ph2['wheels']:.1f} s, bud {ph2['bud']:.1f} s incl. pulling "
            f"the parent by digest {ph2['pull']:.1f} s, push {ph2['push']:.1f} s)")
        print("(d) repo2docker-style (base + pip, plain pip install -r requirements.txt from PyPI in the build)")
        ratio_d = (r_build + r_push) / cold
        row("cold (--no-cache): build + push", r_build + r_push, "ours cold (a)", cold, ratio_d,
            f"target >= {COLD_TARGET}: {'MET' if ratio_d >= COLD_TARGET else 'NOT MET'} (build {r_build:.1f} s, "
            f"push {r_push:.1f} s; image {r_size:.0f} MB)")
        row(f"+{add}, layer cache: build + push", c_build + c_push, "ours derived (c)", derived,
            (c_build + c_push) / derived, f"(build {c_build:.1f} s, push {c_push:.1f} s)")
        print(f"(e) import of a Binder-ready repository (binder/requirements.txt + postBuild; {i_pack}), cold "
              "wheel/uv caches")
        row("detect + resolve + build + push", i_resolve + i_build, "repo2docker-style cold (d)", r_build + r_push,
            (i_resolve + i_build) / (r_build + r_push),
            f"(detect + resolve {i_resolve:.1f} s, build + push {i_build:.1f} s; postBuild makes it not "
            "bit-reproducible)")
        print("reproducibility (manifest digests in the registry)")
        if a.no_repro:
            print(f"  ours, rebuilt same lock/tag: {digest_noop == digest1} ({digest1}); two-cold-build checks "
                  "skipped (--no-repro)")
        else:
            print(f"  ours twice (cold, then again after emptying wheel cache + image storage, "
                  f"{t_again:.1f} s): {'SAME' if digest_again == digest1 else 'DIFFERENT'}  "
                  f"{digest1} / {digest_again}")
            print(f"  repo2docker-style twice (cold, cold; second {r_build2 + r_push2:.1f} s): "
                  f"{'SAME' if r_digest2 == r_digest else 'DIFFERENT'}  {r_digest} / {r_digest2}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", help="comma-separated requirements (default: 10 scientific packages)")
    ap.add_argument("--quick", action="store_true", help=f"tiny set for a smoke test: {', '.join(QUICK)}")
    ap.add_argument("--add", help="package the derived version adds (default tabulate, or toolz when tabulate "
                                  "is already in the environment)")
    ap.add_argument("--no-repro", action="store_true", help="skip the two second cold builds (digest checks)")
    ap.add_argument("--keep-log", type=Path, help="copy the full build output here")
    args = ap.parse_args()
    packages = QUICK if args.quick else SCIENTIFIC
    if args.packages:
        packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    add = args.add or ("toolz" if "tabulate" in packages else "tabulate")
    if add in packages:
        ap.error(f"--add {add} is already in the environment")
    for tool in ("buildah", "podman", "skopeo"):
        if not shutil.which(tool):
            ap.error(f"{tool} is not installed")

    bench = Bench(args)
    previous: dict[int, Callable[..., Any] | int | None] = {}

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, stop)
    try:
        bench.main(packages, add)
    except Exception as exc:
        print(f"bench failed: {exc}\n--- last build output ---\n{bench.log.tail()}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        progress("cleaning up (images made by this run, registry, temporary files)")
        bench.cleanup()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    main()
