"""The notebook layer of a session image (issue 12): JupyterLab FROM a version's image, reproducibly.

Why the builder builds it: it has the wheel cache (wheels fetched on the host with its CA bundle,
which never enters a context), the build backend (buildah/docker/Kubernetes jobs) and push rights
to the registry; the runner has none of them. The runner asks over ``builder.session.layer`` and
runs the pushed image.

The layer leaves the environment's lock as the instructor declared it: its own lock (``requirements``,
hashes required) is installed with ``pip --target /opt/reprolab/session/site``, never into the
environment's site-packages, from wheels the builder linked into the context (a bind mount: no wheel
lands in a layer). ``render_layer`` is pure: the same inputs give the same Containerfile and files,
and the tag names their digest, so a second start of the same version finds the layer pushed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .backends.base import BuildBackend, BuildError, BuildResult, LogSink
from .config import BuilderSettings
from .render import APT_CLEAN, installer_commands, write_context
from .wheelcache import cached, fetch, link_wheel, sha256_file, wheels_root

SESSION_DIR = "/opt/reprolab/session"
SITE_DIR = f"{SESSION_DIR}/site"
COURSE_DIR = f"{SESSION_DIR}/course"
LAYER_FORMAT = "reprolab-session-layer/1"
# The agent's step of every Python image sets PATH, but an image FROM a bare base (``make base-image``
# has no PATH in its config) would start its server with none: the layer sets it again, wrappers first.
PATH = "/usr/local/reprolab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
R_KERNEL = {"argv": ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
            "display_name": "R (environment)", "language": "R"}

_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def parse_requirements(text: str) -> list[dict[str, Any]]:
    """``name==version`` lines with their ``--hash`` continuation lines, as wheel-cache packages."""
    packages: list[dict[str, Any]] = []
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("--hash") else raw.strip()
        match = _REQ.match(line)
        if not match:
            continue
        hashes = _HASH.findall(raw)
        if not hashes:
            raise BuildError(f"the session layer's requirement {match.group(1)} has no --hash")
        packages.append({"name": canonicalize_name(match.group(1)), "version": match.group(2), "hashes": hashes})
    if not packages:
        raise BuildError("the session layer's requirements name no package")
    return packages


def layer_digest(image: str, requirements: str, files: dict[str, bytes], with_r: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": LAYER_FORMAT, "image": image, "r": with_r,
                         "requirements": hashlib.sha256(requirements.encode()).hexdigest(),
                         "files": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())}},
                        sort_keys=True).encode())
    return "sha256:" + h.hexdigest()


def layer_ref(image: str, digest: str) -> str:
    """``<the version's repository>:session-<digest prefix>``: the layer sits beside the version it extends."""
    repository = image.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return f"{repository}:session-{digest.removeprefix('sha256:')[:20]}"


def render_layer(*, image: str, requirements: str, files: dict[str, bytes], installer: dict[str, Any],
                 with_r: bool, digest: str) -> dict[str, bytes]:
    """The context (path → bytes; wheels are linked in apart). ``installer`` is the lock's installer
    (uv, or pip for locks made before uv)."""
    out: dict[str, bytes] = {f"session/{rel}": data for rel, data in sorted(files.items())}
    out["wheels/requirements.txt"] = requirements.encode()
    if with_r:
        out["session/kernels/ir/kernel.json"] = (json.dumps(R_KERNEL, indent=2) + "\n").encode()
    if installer.get("name", "pip") == "uv":
        inst = installer_commands(installer, target=SITE_DIR)
        install = f" && {inst.setup} \\\n && {inst.install}"
        cleanup = f" && {inst.cleanup}"
    else:  # the text older layers were built from
        flags = ("--no-cache-dir --disable-pip-version-check --no-input --root-user-action=ignore --no-compile "
                 "--no-index --find-links /wheels --require-hashes --no-deps --only-binary :all:")
        install = f" && python3 /wheels/{installer['filename']}/pip install {flags} --target {SITE_DIR}"
        cleanup = ""
    lines = [f"# {LAYER_FORMAT} {digest}\n", f"FROM {image}\n", "USER root\n"]
    if with_r:
        # IRkernel from Debian (r-cran-irkernel): the R the environment has gets a kernel, no CRAN download
        lines.append("RUN export DEBIAN_FRONTEND=noninteractive \\\n && apt-get update -q \\\n"
                     " && apt-get install -y -q --no-install-recommends r-cran-irkernel \\\n"
                     f" && {APT_CLEAN}\n")
    lines.append(
        "RUN --mount=type=bind,source=wheels,target=/wheels \\\n"
        f"    export REPROLAB_WHEELS=sha256:{hashlib.sha256(requirements.encode()).hexdigest()} SOURCE_DATE_EPOCH=0 "
        "PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 \\\n"
        f"{install} -r /wheels/requirements.txt{cleanup} \\\n"
        # bytecode now, not at every start (the student cannot write here): hash-based .pyc files carry no
        # time, so the layer stays reproducible (a file that does not compile only costs its speed-up)
        f" && (python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash {SITE_DIR} >/dev/null || true) \\\n"
        # the course files as the image has them, for the copy-if-absent into the persistent home
        f" && mkdir -p {COURSE_DIR} && if [ -d /home/student ]; then cp -a /home/student/. {COURSE_DIR}/; fi\n")
    lines.append(f"COPY session/ {SESSION_DIR}/\n")
    if "ipython_config.py" in files:
        lines.append(f"RUN install -D -m 0644 {SESSION_DIR}/ipython_config.py /etc/ipython/ipython_config.py\n")
    lines.append(f"ENV PATH={PATH} JUPYTER_PATH={SESSION_DIR}:{SITE_DIR}/share/jupyter "
                 f"JUPYTER_CONFIG_PATH={SITE_DIR}/etc/jupyter JUPYTERLAB_DIR={SITE_DIR}/share/jupyter/lab\n")
    lines.append(f'LABEL "org.reprolab.session-layer"="{digest}"\n')
    out["Containerfile"] = "".join(lines).encode()
    return dict(sorted(out.items()))


def build_layer(*, lock: dict[str, Any], image: str, requirements: str, files: dict[str, bytes],
                settings: BuilderSettings, backend: BuildBackend, log: LogSink) -> tuple[BuildResult, str]:
    """Fetch the layer's wheels for the environment's Python, build FROM ``image`` and push."""
    py = lock.get("python") or {}
    version = py.get("version") or lock.get("base", {}).get("python")
    installer = py.get("installer")
    if not version or not installer:
        raise BuildError("the environment has no Python to run JupyterLab on (its lock names none)")
    for rel in files:
        parts = Path(rel).parts
        if not rel or rel.startswith("/") or ".." in parts:
            raise BuildError(f"session layer file {rel!r} is not a relative path")
    with_r = bool(lock.get("r"))
    digest = layer_digest(image, requirements, files, with_r)
    packages = parse_requirements(requirements)
    pip = {"name": installer.get("name", "pip"), "version": installer["version"], "hashes": [installer["sha256"]]}
    fetch([*packages, pip], python_version=version, settings=settings, log=log)
    contexts = settings.cache_root() / "contexts"
    contexts.mkdir(parents=True, exist_ok=True)
    ctx = Path(tempfile.mkdtemp(prefix="session-" + digest.removeprefix("sha256:")[:12] + "-", dir=contexts))
    try:
        write_context(render_layer(image=image, requirements=requirements, files=files,
                                   installer=installer, with_r=with_r, digest=digest), ctx)
        root = wheels_root(settings)
        for p in [*packages, pip]:
            src = cached(root, p["name"], p["hashes"])
            if src is None or f"sha256:{sha256_file(src)}" not in p["hashes"]:
                raise BuildError(f"wheel of {p['name']}=={p['version']} is missing or corrupt in the wheel cache")
            target = ctx / "wheels" / src.name
            link_wheel(src, target)
        ref = layer_ref(image, digest)
        log(f"session layer {digest[:19]} FROM {image}: building {ref}")
        return backend.build_and_push(ctx, ref, log=log), digest
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
