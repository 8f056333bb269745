"""R packages beyond Debian: resolve requests against a CRAN-like repository and lock them.

A CRAN-like repository (a CRAN mirror, a Posit Package Manager snapshot such as
``https://packagemanager.posit.co/cran/2024-06-01``) publishes ``src/contrib/PACKAGES``, a Debian
control file with one stanza per package's current version; older versions live under
``src/contrib/Archive/<pkg>/<pkg>_<ver>.tar.gz``. A request is ``name`` or ``name==version``.
Depends/Imports/LinkingTo are followed recursively; packages shipped inside R (base) are skipped
and R's recommended packages (Matrix, MASS, ...) come from Debian's ``r-cran-*``. Every locked
package names its repository, the archive's path in it and the archive's sha256 (downloaded once
into the content-addressed R source cache, so the build later installs it offline).

Debian stays the fast path: a request without a version, or whose version Debian has, installs
the ``r-cran-*`` deb (see ``split_requests``).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from typing import Any

import httpx

from .backends.base import BuildError
from .config import BuilderSettings

Log = Callable[[str], None]

# Packages that are part of R itself (r-base-core ships them; never installed separately).
BASE_PACKAGES = frozenset({
    "R", "base", "compiler", "datasets", "graphics", "grDevices", "grid", "methods", "parallel", "splines",
    "stats", "stats4", "tcltk", "tools", "utils"})
# R's recommended packages: Debian packages each as r-cran-<lower name> (r-base-core alone lacks them).
RECOMMENDED = frozenset({
    "KernSmooth", "MASS", "Matrix", "boot", "class", "cluster", "codetools", "foreign", "lattice", "mgcv",
    "nlme", "nnet", "rpart", "spatial", "survival"})
DEP_FIELDS = ("Depends", "Imports", "LinkingTo")
REQUEST_RE = re.compile(r"^([A-Za-z][A-Za-z0-9.]*[A-Za-z0-9])(?:==([0-9]+(?:[.-][0-9]+)+))?$")
_DEP_RE = re.compile(r"^([A-Za-z][A-Za-z0-9.]*)\s*(?:\(\s*(>=|<=|==|>|<|=)\s*([^)\s]+)\s*\))?$")


def parse_request(text: str) -> tuple[str, str | None]:
    """``name`` or ``name==version`` → (name, version or None)."""
    m = REQUEST_RE.match(text.strip())
    if not m:
        raise BuildError(f"R package request {text!r} is not 'name' or 'name==version' (e.g. 'jsonlite==1.8.4')")
    return m.group(1), m.group(2)


def version_key(version: str) -> tuple[int, ...]:
    """R's package_version order: numbers separated by '.' or '-'."""
    try:
        return tuple(int(x) for x in re.split(r"[.-]", version))
    except ValueError:
        return (0,)


def same_version(a: str, b: str) -> bool:
    return version_key(a) == version_key(b)


def satisfies(version: str, op: str | None, wanted: str | None) -> bool:
    if not op or wanted is None:
        return True
    a, b = version_key(version), version_key(wanted)
    return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "==": a == b, "=": a == b}[op]


def debian_upstream(deb_version: str) -> str:
    """Debian's ``1:1.8.4+dfsg-1`` → the upstream R package version ``1.8.4``."""
    v = deb_version.split(":", 1)[-1]
    if "-" in v:
        v = v.rsplit("-", 1)[0]
    return re.split(r"[+~]", v, maxsplit=1)[0]


def parse_dcf(text: str) -> list[dict[str, str]]:
    """Debian Control File stanzas (blank-line separated; continuation lines start with a space)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_deps(fields: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    """(name, operator, version) of every Depends/Imports/LinkingTo entry, in order."""
    deps = []
    for field in DEP_FIELDS:
        for item in fields.get(field, "").split(","):
            item = item.strip()
            if not item:
                continue
            m = _DEP_RE.match(item)
            if not m:
                raise BuildError(f"cannot read the dependency {item!r} in {field}")
            deps.append((m.group(1), m.group(2), m.group(3)))
    return deps


def normalise_repository(url: str) -> str:
    return url.rstrip("/")


class Repository:
    """A CRAN-like repository's index, read once per resolution."""

    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url = normalise_repository(url)
        self.http = http
        self.packages: dict[str, dict[str, str]] = {}
        self._load()

    def _get(self, path: str) -> httpx.Response | None:
        try:
            resp = self.http.get(f"{self.url}/{path}")
        except httpx.HTTPError as exc:
            raise BuildError(f"R repository {self.url} cannot be reached: {exc}") from exc
        return resp if resp.status_code == 200 else None

    def _load(self) -> None:
        resp = self._get("src/contrib/PACKAGES.gz")
        text = None
        if resp is not None:
            try:
                text = gzip.decompress(resp.content).decode("utf-8", "replace")
            except OSError:
                text = None
        if text is None:
            resp = self._get("src/contrib/PACKAGES")
            if resp is None:
                raise BuildError(f"{self.url} is not a CRAN-like repository: it has no src/contrib/PACKAGES; "
                                 "set r.repository to a CRAN mirror or a Posit Package Manager snapshot URL")
            text = resp.text
        for stanza in parse_dcf(text):
            if "Package" in stanza and "Version" in stanza:
                old = self.packages.get(stanza["Package"])
                if old is None or version_key(stanza["Version"]) > version_key(old["Version"]):
                    self.packages[stanza["Package"]] = stanza

    def path_of(self, name: str, version: str) -> str:
        current = self.packages.get(name)
        filename = f"{name}_{version}.tar.gz"
        if current is not None and same_version(current["Version"], version):
            return f"src/contrib/{filename}"
        return f"src/contrib/Archive/{name}/{filename}"

    def download(self, path: str) -> bytes | None:
        resp = self._get(path)
        return resp.content if resp is not None else None


def description_of(archive: bytes, name: str) -> dict[str, str]:
    """The DESCRIPTION inside a source package tarball (``<name>/DESCRIPTION``)."""
    import io
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            member = tar.extractfile(f"{name}/DESCRIPTION")
            if member is None:
                raise KeyError(name)
            stanzas = parse_dcf(member.read().decode("utf-8", "replace"))
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise BuildError(f"the source archive of R package {name!r} has no readable {name}/DESCRIPTION") from exc
    return stanzas[0] if stanzas else {}


def resolve_cran(requests: list[tuple[str, str | None]], repository: str, *, settings: BuilderSettings,
                 provided: dict[str, str] | None = None, r_version: str | None = None,
                 log: Log = print) -> dict[str, Any]:
    """Lock ``requests`` and their dependencies from ``repository``.

    ``provided`` maps packages another source installs (Debian's) to their version: a dependency
    they satisfy is not fetched again. Returns ``{"packages": [...] in install order, "debian":
    [recommended packages needed from Debian]}``; each package is ``{name, version, repository, path,
    sha256, depends}``. Every archive is put into the R source cache (``rcache``)."""
    from . import rcache

    provided = dict(provided or {})
    wanted = {name: version for name, version in requests}
    chosen: dict[str, dict[str, Any]] = {}
    debian: set[str] = set()
    with httpx.Client(verify=rcache.verify_setting(settings), timeout=120, follow_redirects=True) as http:
        repo = Repository(repository, http)
        log(f"R repository {repo.url}: {len(repo.packages)} packages in its index")
        queue: list[tuple[str, str | None, str | None, str]] = [(n, "==" if v else None, v, "the spec")
                                                               for n, v in requests]
        while queue:
            name, op, version, needed_by = queue.pop(0)
            if name in BASE_PACKAGES:
                if name == "R" and r_version and not satisfies(r_version, op, version):
                    raise BuildError(f"R package {needed_by!r} needs R {op} {version}; the base provides "
                                     f"R {r_version}")
                continue
            if name in chosen:
                have = chosen[name]["version"]
                if not satisfies(have, op, version):
                    raise BuildError(f"R package {needed_by!r} needs {name} {op} {version}, but {name} "
                                     f"{have} is locked; ask for a version of {name} that fits both")
                continue
            if name in provided and name not in wanted:
                if satisfies(provided[name], op, version):
                    continue
            if name in RECOMMENDED and name not in wanted:
                debian.add(name)
                continue
            exact = wanted.get(name) if name in wanted else None
            current = repo.packages.get(name)
            if exact is None:
                if current is None:
                    what = "" if needed_by == "the spec" else f" (needed by {needed_by})"
                    raise BuildError(f"R package {name!r}{what} is not in the repository {repo.url}; "
                                     "check the name (it is case-sensitive) or set r.repository to one that has it")
                exact = current["Version"]
                if not satisfies(exact, op, version):
                    raise BuildError(f"R package {needed_by!r} needs {name} {op} {version}, but {repo.url} has "
                                     f"{name} {exact}; pin a version with '{name}==<version>'")
            elif not satisfies(exact, op, version):
                raise BuildError(f"R package {needed_by!r} needs {name} {op} {version}, but the spec asks for "
                                 f"{name}=={exact}")
            path = repo.path_of(name, exact)
            data = repo.download(path)
            if data is None:
                raise BuildError(f"R package {name!r} has no version {exact!r} in {repo.url} (looked for {path}); "
                                 f"the current version is {current['Version'] if current else 'none'}")
            stanza = current if current is not None and path.endswith(f"src/contrib/{name}_{exact}.tar.gz") else None
            if stanza is not None and stanza.get("MD5sum") and hashlib.md5(data).hexdigest() != stanza["MD5sum"]:  # noqa: S324 - the index's own checksum
                raise BuildError(f"R package archive {path} from {repo.url} does not match the MD5sum in the "
                                 "repository's index (a corrupt mirror or a changed file); refusing it")
            fields = stanza if stanza is not None else description_of(data, name)
            digest = rcache.put(settings, data, f"{name}_{exact}.tar.gz")
            deps = parse_deps(fields)
            chosen[name] = {"name": name, "version": exact, "repository": repo.url, "path": path,
                            "sha256": digest,
                            "depends": sorted({d for d, _, _ in deps if d not in BASE_PACKAGES} - {name}),
                            "compiled": fields.get("NeedsCompilation", "no").strip().lower() == "yes"}
            queue.extend((d, o, v, name) for d, o, v in deps)
    for entry in chosen.values():
        entry["depends"] = [d for d in entry["depends"] if d in chosen]
    return {"packages": install_order(list(chosen.values())), "debian": sorted(debian)}


def install_order(packages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dependencies first; ties by name, so the order depends on the lock alone."""
    by_name = {p["name"]: p for p in packages}
    done: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in path:
            raise BuildError(f"R packages depend on each other in a cycle: {' -> '.join(path + (name,))}")
        for dep in sorted(by_name[name]["depends"]):
            visit(dep, path + (name,))
        seen.add(name)
        done.append(by_name[name])

    for name in sorted(by_name):
        visit(name, ())
    return done


def split_requests(requests: list[tuple[str, str | None]], debian: dict[str, str | None], *,
                   repository: str | None) -> tuple[list[str], list[tuple[str, str | None]]]:
    """(names Debian installs, requests for the repository).

    ``debian`` maps each requested name to Debian's candidate version of ``r-cran-<name>`` (None:
    Debian has none). Debian is used when it has the package and no version was asked, or the
    version asked."""
    from_debian, from_repo = [], []
    for name, version in requests:
        deb = debian.get(name)
        if deb is not None and (version is None or same_version(debian_upstream(deb), version)):
            from_debian.append(name)
        elif repository:
            from_repo.append((name, version))
        elif deb is None:
            from_debian.append(name)  # the apt resolution names it as unavailable, as before
        else:
            raise BuildError(f"R package {name!r}=={version} is not the version Debian has "
                             f"({debian_upstream(deb)}); set r.repository to a CRAN-like repository "
                             "(a CRAN mirror or a Posit Package Manager snapshot) to install other versions")
    return from_debian, from_repo


def r_version_of(r_base_core: str) -> str:
    """Debian's ``4.2.2.20221110-2`` → R ``4.2.2``."""
    return ".".join(debian_upstream(r_base_core).split(".")[:3])


def check_r_version(wanted: str | None, have: str, base_ref: str) -> None:
    if wanted and have.split(".")[: len(wanted.split("."))] != wanted.split("."):
        raise BuildError(f"spec asks for R {wanted} but base image {base_ref!r} provides R {have} "
                         f"(Debian's r-base-core); set r.version to {have!r} or remove it")


def debian_candidates(base: dict[str, Any], names: list[str], *, settings: BuilderSettings,
                      log: Log = print) -> dict[str, str | None]:
    """Debian's candidate version of ``r-base-core`` (key ``R``) and of ``r-cran-<name>`` per name
    (None: Debian has no such package), read in the base with the shared apt lists cache."""
    import shlex
    import time

    from .lock import APT_LISTS_TTL, _log_output, auth_flag, base_from, run, tls_flag

    image = base_from(base)
    lists = settings.cache_root() / "apt-lists" / (base.get("digest") or base["id"]).replace(":", "-")
    lists.mkdir(parents=True, exist_ok=True)
    stamp = lists / ".reprolab-updated"
    fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < APT_LISTS_TTL
    debs = ["r-base-core"] + [f"r-cran-{n.lower()}" for n in names]
    script = "set -e\n" + ("" if fresh else "apt-get update -q >/dev/null\n") + \
        f"apt-cache policy {' '.join(map(shlex.quote, debs))}\n"
    proc = run(["podman", "run", "--rm", *tls_flag(image, settings), *auth_flag(settings), "--entrypoint", "",
                "-v", f"{lists}:/var/lib/apt/lists:Z", image, "sh", "-c", script], timeout=900)
    if proc.returncode != 0:
        _log_output(log, "apt-cache policy", proc.stdout + proc.stderr)
        raise BuildError(f"could not read Debian's R packages in base image {base['ref']!r} (apt and R packages "
                         "need a Debian-based base)")
    if not fresh:
        stamp.touch()
    found: dict[str, str | None] = {}
    current = None
    for line in proc.stdout.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1]
        elif current and line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            found[current] = None if value == "(none)" else value
    out: dict[str, str | None] = {"R": found.get("r-base-core")}
    for n in names:
        out[n] = found.get(f"r-cran-{n.lower()}")
    return out


def plan(r_spec: dict[str, Any], base: dict[str, Any], *, settings: BuilderSettings,
         log: Log = print) -> tuple[list[str], dict[str, Any]]:
    """Split the spec's R section between Debian and the repository and lock the repository's part.

    Returns (names Debian's ``r-cran-*`` installs, {"packages": locked repository packages in install
    order, "extra_debs": debs the source installs need}). A section with neither versions nor a
    repository nor an R version is Debian's alone, as before (no extra look-up)."""
    requests = [parse_request(p) for p in r_spec.get("packages", [])]
    repository = r_spec.get("repository")
    if not repository and not r_spec.get("version") and all(v is None for _, v in requests):
        return [n for n, _ in requests], {"packages": [], "extra_debs": []}
    candidates = debian_candidates(base, [n for n, _ in requests], settings=settings, log=log)
    if not candidates["R"]:
        raise BuildError(f"base image {base['ref']!r} has no r-base-core in its Debian archive, so R cannot be "
                         "installed")
    r_version = r_version_of(candidates["R"])
    check_r_version(r_spec.get("version"), r_version, base["ref"])
    from_debian, from_repo = split_requests(requests, {n: candidates.get(n) for n, _ in requests},
                                            repository=repository)
    if not from_repo:
        return from_debian, {"packages": [], "extra_debs": []}
    assert repository is not None
    log(f"resolving {len(from_repo)} R packages from {repository} (R {r_version})")
    provided = {n: debian_upstream(v) for n in from_debian if (v := candidates.get(n))}
    locked = resolve_cran(from_repo, repository, settings=settings, provided=provided, r_version=r_version,
                          log=log)
    log(f"locked {len(locked['packages'])} R packages from {repository}")
    return sorted(set(from_debian) | set(locked["debian"])), {
        "packages": locked["packages"],
        # a package with C/C++/Fortran code needs the compilers and R's headers (r-base-dev)
        "extra_debs": ["r-base-core"] + (["r-base-dev"] if any(p["compiled"] for p in locked["packages"]) else [])}


# ---------------------------------------------------------------------------------------------
# the build step (render.py calls it; the archives are linked into <context>/rsources by rcache)

SITE_LIBRARY = "/usr/local/lib/R/site-library"
BUILD_DIR = "/tmp/reprolab-r-build"  # where each archive is unpacked and built (a fixed path: render_step)
# R CMD INSTALL stamps the install time into DESCRIPTION's Built field and Meta/package.rds (R 4.2
# ignores SOURCE_DATE_EPOCH there); everything else it writes is a function of the sources. So the
# stamp is set to the epoch afterwards: the layer then depends on the lock alone.
NORMALISE_R = """lib <- commandArgs(TRUE)[1]
stamp <- "1970-01-01 00:00:00 UTC"
for (p in commandArgs(TRUE)[-1]) {
  f <- file.path(lib, p, "Meta", "package.rds")
  m <- readRDS(f)
  m$Built$Date <- stamp
  m$DESCRIPTION[["Built"]] <- sub("; [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC;", paste0("; ", stamp, ";"),
                                  m$DESCRIPTION[["Built"]])
  saveRDS(m, f)
  d <- file.path(lib, p, "DESCRIPTION")
  x <- read.dcf(d, keep.white = names(read.dcf(d)))
  x[, "Built"] <- m$DESCRIPTION[["Built"]]
  write.dcf(x, d, keep.white = colnames(x))
}
"""


def source_delta(lock: dict[str, Any], parent_lock: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The lock's repository packages the parent's image lacks (same name, version and sha256 = present)."""
    have = {(p["name"], p["version"], p["sha256"]) for p in (parent_lock or {}).get("r_source", [])}
    return [p for p in lock.get("r_source", []) if (p["name"], p["version"], p["sha256"]) not in have]


def render_step(packages: list[dict[str, Any]], files: dict[str, bytes]) -> str:
    """The RUN that installs ``packages`` (in lock order) from the bind-mounted archives, offline.

    buildah 1.28 has no ``RUN --network=none``; nothing here asks for the network (no ``repos``), and a
    proxy at a closed port makes any attempt fail instead of silently downloading."""
    import json

    files["rsources/normalise.R"] = NORMALISE_R.encode()
    order = json.dumps([[p["name"], p["version"], p["sha256"]] for p in packages], separators=(",", ":"))
    files["rsources/order.json"] = order.encode() + b"\n"
    # Unpacked by us at a fixed path, not by R CMD INSTALL into its random tempfile("R.INSTALL") directory:
    # that path reaches the installed files (help/paths.rds stores its length; a compiled library's
    # debug info and GNU build id embed it), so a random one made two builds of one lock differ.
    installs = " \\\n && ".join(
        f"tar -xzf /tmp/reprolab-r/{p['name']}_{p['version']}.tar.gz -C {BUILD_DIR} "
        f"&& R CMD INSTALL --no-docs --library={SITE_LIBRARY} {BUILD_DIR}/{p['name']}"
        for p in packages)
    names = " ".join(p["name"] for p in packages)
    return ("RUN --mount=type=bind,source=rsources,target=/tmp/reprolab-r \\\n"
            f"    export REPROLAB_R_SOURCES=sha256:{hashlib.sha256(order.encode()).hexdigest()} SOURCE_DATE_EPOCH=0 "
            "TZ=UTC LC_ALL=C.UTF-8 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \\\n"
            f" && mkdir -p {SITE_LIBRARY} {BUILD_DIR} \\\n"
            f" && {installs} \\\n"
            f" && Rscript /tmp/reprolab-r/normalise.R {SITE_LIBRARY} {names} \\\n"
            f" && rm -rf /tmp/Rtmp* {BUILD_DIR}\n")
