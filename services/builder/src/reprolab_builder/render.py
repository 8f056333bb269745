"""Lock → build context: a deterministic Containerfile plus the files it copies.

``render`` is pure: the same lock gives the same bytes. Layer order puts what changes least
first (base → apt → R → Python → datasets → config) so an edit rebuilds only what follows it.
A derived lock starts FROM the parent's image digest and adds only what the parent lacks.

Wheels are not in ``render``'s output: ``wheelcache.materialize`` links them into
``<context>/wheels``. They reach the build through ``RUN --mount=type=bind`` only, so no layer
contains them, and pip installs them with no index and required hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from reprolab_common import canonical

from . import rlock
from .lock import base_from, lock_digest, one_layer, requirements_text
from .sbom import INVENTORY_STEP

LOCK_PATH = "/etc/reprolab/lock.json"
FILES_DIR = "/opt/reprolab/files"
# Everything apt/dpkg leave behind that records when it ran. fontconfig's caches embed times (R pulls
# fontconfig in) and are rebuilt on demand, so they go too: the layer then depends on the lock alone.
APT_CLEAN = ("apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/log/alternatives.log "
             "/var/cache/ldconfig/aux-cache /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/cache/fontconfig/*")


def _q(value: str) -> str:
    """JSON-quote for exec-form instructions (ENTRYPOINT) and LABEL values."""
    return json.dumps(value, ensure_ascii=False)


def _delta(items: list[dict[str, Any]], parent_items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict]:
    have = {tuple(p[k] for k in keys) for p in parent_items}
    return [p for p in items if tuple(p[k] for k in keys) not in have]


def python_delta(lock: dict[str, Any], parent_lock: dict[str, Any] | None) -> tuple[list[dict], list[str]]:
    """(packages to install, names to uninstall) relative to the parent's image."""
    packages = lock.get("python", {}).get("packages", [])
    if not parent_lock:
        return packages, []
    parent_pkgs = parent_lock.get("python", {}).get("packages", [])
    names = {p["name"] for p in packages}
    removed = sorted(p["name"] for p in parent_pkgs if p["name"] not in names)
    return _delta(packages, parent_pkgs, ("name", "version")), removed


def _apt_run(packages: list[dict[str, str]]) -> str:
    pins = " ".join(f"{p['name']}={p['version']}" for p in sorted(packages, key=lambda p: p["name"]))
    return ("RUN export DEBIAN_FRONTEND=noninteractive \\\n"
            " && apt-get update -q \\\n"
            f" && apt-get install -y -q --no-install-recommends {pins} \\\n"
            f" && {APT_CLEAN}\n")


class Installer(NamedTuple):
    """Shell fragments of a build step that installs locked wheels from ``/wheels`` (bind-mounted)."""
    setup: str
    install: str  # + "-r FILE" or wheel names
    uninstall: str  # + names
    cleanup: str


UV_DIR = "/tmp/reprolab-uv"
# uv writes <dist-info>/uv_cache.json (listed in RECORD) with the ctime of the wheel it installed from:
# a wheel fetched again would change the image. The file only serves uv's own up-to-date check of a
# local source, so it goes, and its RECORD line with it (one Python line, no quote the shell splits).
UV_STRIP = ("python3 -c \"import pathlib,sys,sysconfig as s;[(r.write_text(''.join(ln for ln in "
            "r.read_text().splitlines(True) if not ln.startswith(f.parent.name+'/uv_cache.json,'))),f.unlink()) "
            "for d in (sys.argv[1:] or {s.get_paths()['purelib'],s.get_paths()['platlib']}) "
            "for f in pathlib.Path(d).glob('*.dist-info/uv_cache.json') for r in [f.with_name('RECORD')]]\"")


def installer_commands(installer: dict[str, Any], *, target: str = "") -> Installer:
    """How the lock's installer runs inside the build, offline, hash-checked, wheels only.

    uv (locks made since it replaced pip): its wheel is unpacked into ``UV_DIR`` by the image's own
    Python and removed in the same step, so nothing of it stays in the layer; it installs into the
    interpreter's own scheme (Debian's ``/usr/local/lib/python3.X/dist-packages``, as pip does).
    pip (older locks): run from its wheel, as before, so their rebuilds keep their digests."""
    wheel = f"/wheels/{installer['filename']}"
    where = f"--target {target}" if target else "--system --break-system-packages"
    if installer.get("name", "pip") == "uv":
        binary = f"{UV_DIR}/uv-{installer['version']}.data/scripts/uv"
        uv = f"TMPDIR={UV_DIR} {binary}"  # uv's lock file for the environment goes where the step removes it
        common = f"--python python3 --no-config --no-cache --offline --color never {where}"
        return Installer(
            setup=f"python3 -m zipfile -e {wheel} {UV_DIR} && chmod 0755 {binary}",
            install=(f"{uv} pip install {common} --no-index --find-links /wheels --require-hashes --no-deps "
                     "--no-build --link-mode copy"),
            uninstall=f"{uv} pip uninstall {common}",
            cleanup=f"{UV_STRIP}{' ' + target if target else ''} && rm -rf {UV_DIR}")
    flags = "--no-cache-dir --disable-pip-version-check --no-input --root-user-action=ignore"
    if not target:
        flags += " --break-system-packages"
    pip = f"python3 {wheel}/pip"
    return Installer(
        setup="",
        install=(f"{pip} install {flags}{' --target ' + target if target else ''} --no-index --find-links /wheels "
                 "--require-hashes --no-deps --only-binary :all:"),
        uninstall=f"{pip} uninstall -y {flags}",
        cleanup="")


UV_CONTEXT = "uv/uv"
UV_BIN_DIR = "/tmp/reprolab-uvbin"
CONTEXT_MOUNT = "/tmp/reprolab-context"


def uv_from_context(installer: dict[str, Any]) -> Installer:
    """The image build's uv: the binary the builder host took out of the locked wheel (hash-checked,
    ``build.py``), in the context at ``uv/uv`` and bind-mounted, so the step neither unpacks the wheel
    nor removes it. Files are hard-linked from uv's temporary cache, which the step removes, instead
    of copied; the layer holds the same files either way."""
    uv = f"TMPDIR={UV_DIR} {UV_BIN_DIR}/uv"
    common = "--python python3 --no-config --no-cache --offline --color never --system --break-system-packages"
    return Installer(
        setup=f"mkdir -p {UV_DIR}",
        install=(f"{uv} pip install {common} --no-index --find-links /wheels --require-hashes --no-deps "
                 "--no-build --link-mode hardlink"),
        uninstall=f"{uv} pip uninstall {common}",
        cleanup=f"{UV_STRIP} && rm -rf {UV_DIR}")


def render(lock: dict[str, Any], *, parent_lock: dict[str, Any] | None = None) -> dict[str, bytes]:
    """The build context (path → bytes) for ``lock``; wheels are linked in separately."""
    derived = bool(parent_lock) and "parent" in lock
    if not derived:
        parent_lock = None
    digest = lock_digest(lock)
    files: dict[str, bytes] = {}
    lines = [f"# reprolab {lock['format']} {digest}\n"]
    if derived:
        lines.append(f"FROM {lock['parent']['image']}\n")
    else:
        lines.append(f"FROM {base_from(lock['base'])}\n")

    apt = _delta(lock.get("apt", []), (parent_lock or {}).get("apt", []), ("name", "version"))
    if apt:
        lines.append(_apt_run(apt))

    r_pkgs = lock.get("r", [])
    r_all = [{"name": p["deb"], "version": p["version"]} for p in r_pkgs] + lock.get("r_system", [])
    parent_debs = [] if not parent_lock else (
        parent_lock.get("apt", []) + parent_lock.get("r_system", [])
        + [{"name": p["deb"], "version": p["version"]} for p in parent_lock.get("r", [])])
    r_delta = _delta(r_all, parent_debs, ("name", "version"))
    if r_delta:
        lines.append(_apt_run(r_delta))
    r_source = rlock.source_delta(lock, parent_lock)
    if r_source:  # R packages from a CRAN-like repository, after R itself (rlock.py)
        lines.append(rlock.render_step(r_source, files))

    py = lock.get("python")
    # A derived uv lock's Python step also writes lock.json and runs the agent's commands when nothing
    # comes between them (no datasets, files or repository): one build container and one layer instead
    # of three, which was most of a derived version's build (issue 14 item 5). A lock built from its base
    # keeps its Python layer apart: that layer depends on the wheels alone, so environments with the same
    # packages share it (layer cache, registry, nodes). Locks naming pip render as before.
    merged_step: int | None = None
    if py:
        install, remove = python_delta(lock, parent_lock)
        if install or remove:
            reqs = requirements_text(install).encode()
            files["wheels/requirements.txt"] = reqs
            uv = py["installer"].get("name", "pip") == "uv" and bool(lock["base"].get("python"))
            inst = uv_from_context(py["installer"]) if uv else installer_commands(py["installer"])
            mounts = "--mount=type=bind,source=wheels,target=/wheels"
            if uv:
                files[UV_CONTEXT] = b""  # placeholder: build.py links the binary from the locked wheel
                mounts += f" --mount=type=bind,source=uv,target={UV_BIN_DIR}"
                if derived:
                    mounts += f" --mount=type=bind,source=reprolab,target={CONTEXT_MOUNT}"
            # The requirements digest is part of the instruction so a layer cache never reuses
            # the install of a different wheel set.
            step = (f"RUN {mounts} \\\n"
                    f"    export REPROLAB_WHEELS=sha256:{hashlib.sha256(reqs).hexdigest()} SOURCE_DATE_EPOCH=0 "
                    "PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1")
            if inst.setup:
                step += f" \\\n && {inst.setup}"
            if remove:
                step += f" \\\n && {inst.uninstall} {' '.join(remove)}"
            if install:
                step += f" \\\n && {inst.install} -r /wheels/requirements.txt"
            if inst.cleanup:
                step += f" \\\n && {inst.cleanup}"
            lines.append(step + "\n")
            if uv and derived:
                merged_step = len(lines) - 1

    parent_sets = {(d["digest"], d["mount"]) for d in (parent_lock or {}).get("datasets", [])}
    for d in sorted(lock.get("datasets", []), key=lambda d: d["mount"]):
        if (d["digest"], d["mount"]) in parent_sets:
            continue
        hexd = d["digest"].removeprefix("sha256:")
        files[f"datasets/{hexd}"] = b""  # placeholder: the caller writes the bytes, by digest
        lines.append(f"COPY datasets/{hexd} {d['mount']}\n")

    for f in sorted(lock.get("files", []), key=lambda f: f["path"]):
        files[f"files/{f['path']}"] = f["content"].encode()
    if lock.get("files"):
        lines.append(f"COPY files/ {FILES_DIR}/\n")

    lines += _repository_steps(lock, parent_lock, files)

    files["reprolab/lock.json"] = canonical.canonical_json(lock) + b"\n"
    merged = merged_step is not None and merged_step == len(lines) - 1
    if merged:
        assert merged_step is not None
        # What the step reads from reprolab/ is part of its text, so the layer cache never reuses the
        # layer of another lock (or of another agent) that installs the same wheels FROM the same image.
        read = {"reprolab/lock.json": files["reprolab/lock.json"], **agent_files(lock, digest)}
        ctx_digest = hashlib.sha256(canonical.canonical_json(
            {k: hashlib.sha256(v).hexdigest() for k, v in sorted(read.items())})).hexdigest()
        lines[merged_step] = lines[merged_step].replace(
            "    export REPROLAB_WHEELS=", f"    export REPROLAB_CONTEXT=sha256:{ctx_digest} REPROLAB_WHEELS=", 1)
        agent = AGENT_COMMANDS.format(src=f"{CONTEXT_MOUNT}/agent")
        dirs = "/etc/reprolab \\\n"  # the end of the agent's first line, which makes the directories
        agent = agent.replace(dirs, f"{dirs} && install -m 0644 {CONTEXT_MOUNT}/lock.json {LOCK_PATH} \\\n", 1)
        lines[merged_step] = lines[merged_step].rstrip("\n") + " \\\n" + agent + "\n"
    else:
        if merged_step is not None:  # something comes between: the uv step mounts no reprolab/
            lines[merged_step] = lines[merged_step].replace(
                f" --mount=type=bind,source=reprolab,target={CONTEXT_MOUNT}", "", 1)
        lines.append(f"COPY reprolab/lock.json {LOCK_PATH}\n")
    labels = {"org.reprolab.lock-digest": digest,
              "org.reprolab.base-digest": lock["base"].get("digest") or lock["base"]["id"]}
    if derived:
        labels["org.reprolab.parent-lock-digest"] = lock["parent"]["lock_digest"]
    if lock.get("reproducibility", {}).get("bit_reproducible") is False:
        labels["org.reprolab.bit-reproducible"] = "false"
    lines.append("LABEL " + " \\\n      ".join(f"{k}={_q(v)}" for k, v in sorted(labels.items())) + "\n")
    entrypoint = list(lock.get("entrypoint") or [])
    if lock["base"].get("python"):
        files.update(agent_files(lock, digest))
        lines.append(AGENT_ENV if merged else AGENT_STEP)
        entrypoint = [AGENT_BIN, "init", "--", *entrypoint]
    if one_layer(lock):
        lines.append(_exec(["sh", "-c", INVENTORY_STEP]))
    if lock.get("start"):
        # repo2docker's R2D_ENTRYPOINT: the repository's start script wraps whatever command is run
        at = entrypoint.index("--") + 1 if lock["base"].get("python") else 0
        entrypoint.insert(at, f"{REPO_DIR}/{lock['start']}")
    if entrypoint:
        lines.append("ENTRYPOINT [" + ", ".join(_q(a) for a in entrypoint) + "]\n")
    files["Containerfile"] = "".join(lines).encode()
    return dict(sorted(files.items()))


REPO_DIR = "/home/student"
STEP_PATH = f"PATH={REPO_DIR}/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _exec(args: list[str]) -> str:
    """Exec-form RUN: the step's text reaches ``sh -c`` verbatim, whatever quotes or newlines it has."""
    return "RUN [" + ", ".join(_q(a) for a in args) + "]\n"


def _repository_steps(lock: dict[str, Any], parent_lock: dict[str, Any] | None, files: dict[str, bytes]) -> list[str]:
    """The repository's files in the user's home (the working directory, as repo2docker's
    ``REPO_DIR``), owned by the user, then each build step from there: ``student`` steps as uid
    1000 with ``HOME`` set (postBuild runs as the user on mybinder.org), ``root`` steps as root.
    A derived lock whose parent has the same repository and steps inherits them from the image."""
    repo = lock.get("repository")
    steps = lock.get("build_steps", [])
    lines: list[str] = []
    if repo:
        lines.append(f"WORKDIR {REPO_DIR}\n")
    inherited = bool(parent_lock) and parent_lock.get("repository") == repo and \
        parent_lock.get("build_steps", []) == steps and parent_lock.get("start") == lock.get("start")
    if inherited:
        return lines
    if repo:
        hexd = repo["digest"].removeprefix("sha256:")
        files[f"datasets/{hexd}"] = b""  # the repository's tar, fetched by digest like a dataset
        lines.append(_exec(["install", "-d", "-o", "1000", "-g", "1000", "-m", "0755", REPO_DIR]))
        # the tar's entries are owned by uid 1000 already (ADD unpacks archives keeping their owners)
        lines.append(f"ADD datasets/{hexd} {REPO_DIR}/\n")
        if lock.get("start"):
            lines.append(_exec(["chmod", "+x", f"{REPO_DIR}/{lock['start']}"]))
    for step in steps:
        if step.get("user", "student") == "root":
            lines.append(_exec(["env", "HOME=/root", "SOURCE_DATE_EPOCH=0", STEP_PATH, "sh", "-c", step["run"]]))
        else:
            lines.append(_exec(["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "env",
                                f"HOME={REPO_DIR}", "USER=student", "SOURCE_DATE_EPOCH=0", STEP_PATH,
                                "sh", "-c", step["run"]]))
    return lines


AGENT_SOURCE = Path(__file__).parent / "agent" / "agent.py"
AGENT_BIN = "/usr/local/bin/reprolab"
WRAPPED_TOOLS = ("apt", "apt-get", "pip", "pip3", "uv")
# The activity agent's layer, last so that a derived image (FROM its parent) rewrites it: the parent's
# agent and wrappers are replaced by this builder's, and the baseline describes the new image. It adds
# the ``student`` user (uid 1000) by appending to the account files (useradd would stamp today's date
# into /etc/shadow), records the baseline (installed packages) that ``reprolab env capture`` compares
# with, hooks R's install.packages when R is present, and makes ``python`` run python3 where the base has
# only python3 (Debian's), since course material says ``python train.py``. Idempotent, so a derived build repeats it.
AGENT_MOUNT = "/tmp/reprolab-agent"
# The agent's commands, reading its files from {src} (the context's reprolab/agent, bind-mounted)
AGENT_COMMANDS = """ && install -d -m 0755 /opt/reprolab /usr/local/reprolab/bin /var/lib/reprolab /etc/reprolab \\
 && install -m 0644 {src}/agent.py /opt/reprolab/agent.py \\
 && install -m 0644 {src}/image.json /etc/reprolab/image.json \\
 && install -m 0755 {src}/reprolab /usr/local/bin/reprolab \\
 && install -m 0755 {src}/bin/* /usr/local/reprolab/bin/ \\
 && if ! grep -q '^student:' /etc/passwd; then \\
      echo 'student:x:1000:1000:Reprolab student:/home/student:/bin/sh' >> /etc/passwd \\
      && echo 'student:x:1000:' >> /etc/group \\
      && echo 'student:*::0:99999:7:::' >> /etc/shadow; fi \\
 && install -d -m 0755 -o 1000 -g 1000 /home/student \\
 && if [ -d /etc/R ] && ! grep -q reprolab /etc/R/Rprofile.site 2>/dev/null; then \\
      cat {src}/Rprofile.site >> /etc/R/Rprofile.site; fi \\
 && if ! command -v python >/dev/null 2>&1; then ln -s "$(command -v python3)" /usr/local/bin/python; fi \\
 && python3 /opt/reprolab/agent.py baseline > /etc/reprolab/baseline.json \\
 && chmod 0644 /etc/reprolab/baseline.json"""
AGENT_ENV = "ENV PATH=/usr/local/reprolab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
AGENT_STEP = (f"RUN --mount=type=bind,source=reprolab/agent,target={AGENT_MOUNT} \\\n"
              "    export PYTHONDONTWRITEBYTECODE=1 \\\n"
              + AGENT_COMMANDS.format(src=AGENT_MOUNT) + "\n" + AGENT_ENV)


R_PROFILE = """
## reprolab: record install.packages/remove.packages in the activity chain (with the libraries the call
## may touch: its lib argument, wherever that is, and the session's .libPaths())
local({
  hook <- function(...) {
    for (fn in c("install.packages", "remove.packages")) {
      state <- tempfile("reprolab-r-")
      hook_call <- function(phase, fn, state) substitute(try(system2("/usr/local/bin/reprolab", c("r-hook", P, F, S,
        shQuote(unique(c(tryCatch(as.character(lib), error = function(e) NULL), .libPaths()))))), silent = TRUE),
        list(P = phase, F = fn, S = state))
      suppressMessages(trace(fn, where = asNamespace("utils"), print = FALSE,
        tracer = hook_call("before", fn, state), exit = hook_call("after", fn, state)))
    }
  }
  setHook(packageEvent("utils", "onLoad"), hook)
  if ("utils" %in% loadedNamespaces()) hook()
})
"""


def agent_files(lock: dict[str, Any], digest: str) -> dict[str, bytes]:
    """The agent's files (context ``reprolab/agent/``): the same lock gives the same bytes."""
    image = {
        "format": "reprolab-image/1", "lock_digest": digest, "base": lock["base"]["ref"],
        "parent_lock_digest": (lock.get("parent") or {}).get("lock_digest"),
        "python_packages": [{"name": p["name"], "version": p["version"]}
                            for p in (lock.get("python") or {}).get("packages", [])],
        "apt": sorted(p["name"] for p in lock.get("apt", [])),
        "r": sorted([p["name"] for p in lock.get("r", [])] + [p["name"] for p in lock.get("r_source", [])]),
    }
    files = {
        "reprolab/agent/agent.py": AGENT_SOURCE.read_bytes(),
        "reprolab/agent/image.json": canonical.canonical_json(image) + b"\n",
        "reprolab/agent/reprolab": b'#!/bin/sh\nexec python3 /opt/reprolab/agent.py "$@"\n',
        "reprolab/agent/Rprofile.site": R_PROFILE.encode(),
    }
    for tool in WRAPPED_TOOLS:
        script = f'#!/bin/sh\nexec python3 /opt/reprolab/agent.py wrap {tool} "$@"\n'
        files[f"reprolab/agent/bin/{tool}"] = script.encode()
    return files


def write_context(files: dict[str, bytes], dest: Path) -> Path:
    """Write rendered files under ``dest`` with fixed modes (0644 files, 0755 directories)."""
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    for rel, data in sorted(files.items()):
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(dest).parents:
            if str(parent) != ".":
                os.chmod(dest / parent, 0o755)
        path.write_bytes(data)
        os.chmod(path, 0o644)
    return dest
