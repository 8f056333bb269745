"""A run's code from a Git repository: fetched by the runner on its host, pinned to the commit the ref
named at submit time, archived (``git archive``) into the object store like an uploaded archive.

A student names a repository the way they have it (a URL and a branch, tag or commit); the run records
the full commit sha, so running it again runs the same code even after the branch moved. Only what the
platform can reach and the operator allows is fetched: http(s) and git:// by default, file:// only with
REPROLAB_RUNNER_GIT_ALLOW_FILE (a path on the runner's host is not the student's to name). No URL with
credentials is taken (they would end up in the run's record); private repositories are not supported yet.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reprolab_common.errors import Invalid
from reprolab_common.hostpaths import HostPaths
from reprolab_common.objectstore import ObjectStore

from .config import RunnerSettings

# A branch, tag or (abbreviated) commit: no option-looking or path-escaping names reach git's argv.
_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]{1,200}$")
_HEX = re.compile(r"^[0-9a-f]{7,40}$")
_REF_MISSING = ("couldn't find remote ref", "not our ref", "unadvertised object", "invalid refspec",
                "no such ref", "not a valid object name", "needed a single revision", "unknown revision")


@dataclass(frozen=True)
class Fetched:
    commit: str
    digest: str  # sha256:<hex> of the archive
    object_key: str
    size: int


class GitFailed(Exception):
    pass


def code_key(workspace: str, sha256_hex: str) -> str:
    """Where the gateway keeps an uploaded .tar.gz (runs.code_key): a fetched commit is code like any other."""
    return f"workspaces/{workspace}/code/sha256/{sha256_hex}.tar.gz"


def check_url(url: str, settings: RunnerSettings) -> str:
    """The URL as given when git may fetch it, else Invalid saying what to change."""
    def refuse(why: str) -> Invalid:
        return Invalid(f"cannot fetch code from {url!r}: {why}", errors=[("source.git_url", why)])

    if not url or len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url) or url.startswith("-"):
        raise refuse("give a repository URL such as https://host/owner/repo.git")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise refuse("it is not a URL") from None
    schemes = [*settings.git_schemes, *(["file"] if settings.git_allow_file else [])]
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        why = f"this platform fetches only {allowed} URLs"
        if parts.scheme == "file":
            why += " (a path on the platform's host is not allowed; an operator can allow it with " \
                   "REPROLAB_RUNNER_GIT_ALLOW_FILE=true)"
        raise refuse(why)
    if parts.scheme != "file":
        if "@" in parts.netloc:
            raise refuse("put no user name or password in the URL (it would be kept with the run); "
                         "only public repositories can be fetched for now")
        if not parts.hostname:
            raise refuse("the URL names no host")
    return url


def check_ref(ref: str) -> str:
    if ref and not _REF.match(ref):
        why = "give a branch, tag or commit name (letters, digits, . _ / + -)"
        raise Invalid(f"{ref!r} is not a branch, tag or commit: {why}", errors=[("source.git_ref", why)])
    return ref


class _Git:
    def __init__(self, settings: RunnerSettings, repo: Path) -> None:
        self.settings = settings
        self.repo = repo
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo), "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_ASKPASS": "/bin/true",
            "LC_ALL": "C",
        }
        file_allow = "always" if settings.git_allow_file else "never"
        # no hooks, no ext:: helpers, no following a redirect to somewhere the URL check did not see
        self.config = ["-c", f"protocol.file.allow={file_allow}", "-c", "protocol.ext.allow=never",
                       "-c", "core.hooksPath=/dev/null", "-c", "http.followRedirects=false",
                       "-c", "core.symlinks=true"]

    async def __call__(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "git", *self.config, "-C", str(self.repo), *args, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.settings.git_timeout_seconds)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise GitFailed(f"git {args[0]} took longer than {self.settings.git_timeout_seconds:g} s") from None
        if proc.returncode != 0:
            raise GitFailed(err.decode(errors="replace").strip() or f"git {args[0]} failed ({proc.returncode})")
        return out.decode(errors="replace").strip()


def _last_line(text: str, scrub: HostPaths) -> str:
    lines = [line.removeprefix("fatal: ").strip() for line in text.splitlines() if line.strip()]
    return scrub(lines[-1] if lines else text)[:300]


async def fetch(url: str, ref: str, *, workspace: str, settings: RunnerSettings, store: ObjectStore) -> Fetched:
    """Fetch ``ref`` (default branch when empty) of ``url``, archive its commit into the object store."""
    check_url(url, settings)
    check_ref(ref)
    root = settings.work_root() / "git"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fetch-", dir=root))
    scrub = HostPaths.of({tmp: "<git>", settings.work_root(): "<runner-work>"})
    git = _Git(settings, tmp / "repo.git")
    try:
        await _Git(settings, tmp)("init", "-q", "--bare", str(tmp / "repo.git"))
        try:
            await git("fetch", "-q", "--no-tags", "--depth=1", "--", url, ref or "HEAD")
            commit = await git("rev-parse", "--verify", "FETCH_HEAD^{commit}")
        except GitFailed as first:
            if not (_HEX.match(ref or "") and not _unreachable(str(first))):
                raise
            # an (abbreviated) commit the server will not hand out by name: fetch its branches and tags
            await git("fetch", "-q", "--", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
            commit = await git("rev-parse", "--verify", f"{ref}^{{commit}}")
        archive = tmp / "code.tar.gz"
        await git("archive", "--format=tar.gz", "-o", str(archive), commit)
    except GitFailed as exc:
        text = str(exc)
        if ref and any(marker in text.lower() for marker in _REF_MISSING):
            why = f"no branch, tag or commit {ref!r} in that repository"
            raise Invalid(f"cannot fetch code from {url!r}: {why}", errors=[("source.git_ref", why)]) from None
        why = f"the platform could not reach it ({_last_line(text, scrub)})"
        raise Invalid(f"cannot fetch code from {url!r}: {why}", errors=[("source.git_url", why)]) from None
    try:
        size = archive.stat().st_size
        if size > settings.git_max_bytes:
            why = f"the archive of commit {commit[:12]} is {size} bytes, more than this platform takes " \
                  f"({settings.git_max_bytes})"
            raise Invalid(f"cannot run code from {url!r}: {why}", errors=[("source.git_url", why)])
        sha = hashlib.sha256()
        with archive.open("rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
        key = code_key(workspace, sha.hexdigest())
        if not await asyncio.to_thread(store.exists, key):
            await asyncio.to_thread(store.put_file, key, archive)
        return Fetched(commit=commit, digest=f"sha256:{sha.hexdigest()}", object_key=key, size=size)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unreachable(text: str) -> bool:
    text = text.lower()
    return any(m in text for m in ("could not read from remote", "unable to access", "unable to connect",
                                   "connection refused", "could not resolve", "not found", "does not appear"))
