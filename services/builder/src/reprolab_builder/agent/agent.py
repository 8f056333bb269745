#!/usr/bin/env python3
"""The Reprolab activity agent: installed in every image as /opt/reprolab/agent.py.

Standard library only, because the base may be Debian's python3 without pip or any python:3.x-slim.
It records what happens inside a container in a local hash chain (JSON lines, one entry each:
``{chain, seq, time, kind, details, prev, hash}`` with ``hash = sha256(prev || canonical(body))``):

* package installs and removals through wrappers earlier in PATH (pip, pip3, uv, apt, apt-get) and an R
  profile hook, each with its exit status and the before/after difference of installed packages;
* ``reprolab run -- CMD`` (start and end, exit status, duration);
* the image it started from (``/etc/reprolab/image.json``: lock digest, parent, locked packages).

Who may write the chain. The image's USER stays root (so derived builds can install), and its
ENTRYPOINT is ``reprolab init``: started as root it starts ``reprolab logd`` (root) on
``/run/reprolab/agent.sock`` and drops to the ``student`` user (uid 1000) before running the command.
The chain lives in ``/var/lib/reprolab/activity.jsonl`` (root, 0644): the student reads it, only the
daemon writes it, and the daemon takes the writer's uid from the socket (SO_PEERCRED), not from the
request. Someone who is root in the container can rewrite the file; what makes edits evident is the
chain itself plus ``reprolab activity sync`` (or the runner collecting a run's chain), which puts the
entries into the platform's signed audit log. Started as another user (the runner: uid 65534,
read-only root, no new privileges) the agent writes the chain to ``$REPROLAB_ACTIVITY_DIR`` (default
``/outputs/.reprolab`` when /outputs is writable), which the runner collects after the run.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

FORMAT = "reprolab-agent/1"
BUNDLE_FORMAT = "reprolab-agent-bundle/1"
STATE_DIR = "/var/lib/reprolab"
SOCKET = "/run/reprolab/agent.sock"
IMAGE_JSON = "/etc/reprolab/image.json"
BASELINE_JSON = "/etc/reprolab/baseline.json"
WRAPPER_DIR = "/usr/local/reprolab/bin"
STUDENT_UID = 1000
MAX_DETAILS = 64 * 1024
R_LIBS = ["/usr/lib/R/library", "/usr/lib/R/site-library", "/usr/local/lib/R/site-library",
          "/usr/local/lib/R/library"]


# --------------------------------------------------------------------------------------------- chain


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def genesis(chain: str) -> str:
    return hashlib.sha256(f"{FORMAT}:{chain}".encode()).hexdigest()


def entry_hash(prev: str, body: dict) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + canonical(body)).hexdigest()


BODY_KEYS = ("chain", "seq", "time", "kind", "details")


def verify_entries(entries: list[dict]) -> tuple[bool, str]:
    """(ok, why): every entry links to the one before and its hash matches its body."""
    if not entries:
        return True, "empty chain"
    chain = entries[0].get("chain")
    prev = genesis(str(chain))
    for i, e in enumerate(entries, start=1):
        if not isinstance(e, dict) or set(e) != set(BODY_KEYS) | {"prev", "hash"}:
            return False, f"entry {i}: not an agent entry"
        if e["chain"] != chain or e["seq"] != i:
            return False, f"entry {i}: wrong chain id or sequence number"
        if e["prev"] != prev:
            return False, f"entry {i}: does not link to the entry before it"
        if entry_hash(prev, {k: e[k] for k in BODY_KEYS}) != e["hash"]:
            return False, f"entry {i}: its hash does not match its content (edited?)"
        prev = e["hash"]
    return True, f"{len(entries)} entries verified"


def _now() -> str:
    utc = datetime.timezone.utc  # noqa: UP017 - the base may have Python < 3.11
    return datetime.datetime.now(utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_entries(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def image_info() -> dict:
    try:
        with open(IMAGE_JSON, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {k: info.get(k) for k in ("lock_digest", "parent_lock_digest", "base") if info.get(k)}


def append(directory: str, kind: str, details: dict, *, mode: int = 0o644) -> dict:
    """Append one entry under an exclusive lock; the first entry of a chain names the image."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "activity.jsonl")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, mode)
    with os.fdopen(fd, "r+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        lines = [line for line in fh.read().splitlines() if line.strip()]
        if lines:
            last = json.loads(lines[-1])
            chain, seq, prev = last["chain"], last["seq"], last["hash"]
        else:
            chain, seq, prev = secrets.token_hex(16), 0, ""
        new = []
        if not lines:
            new.append(("chain.started", {"image": image_info()}))
        new.append((kind, details))
        out = []
        for k, d in new:
            seq += 1
            prev = prev or genesis(chain)
            body = {"chain": chain, "seq": seq, "time": _now(), "kind": k, "details": d}
            entry = {**body, "prev": prev, "hash": entry_hash(prev, body)}
            fh.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
            prev = entry["hash"]
            out.append(entry)
        fh.flush()
        os.fsync(fh.fileno())
    return out[-1]


def activity_dir() -> str | None:
    """Where this process may append directly: the root-owned state directory (as root), or the run's
    ``$REPROLAB_ACTIVITY_DIR``; None means "ask the daemon"."""
    given = os.environ.get("REPROLAB_ACTIVITY_DIR")
    if given:
        return given
    if os.geteuid() == 0:
        return STATE_DIR
    return None


def log_path() -> str:
    return os.path.join(activity_dir() or STATE_DIR, "activity.jsonl")


# Secrets never enter the chain (it is synced into the activity log): credentials in URLs, API tokens,
# and the value after a password/token option or in a NAME=value with such a name.
_SECRET_URL = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")
_TOKEN = re.compile(r"\brpl_[A-Za-z0-9_-]+")
_SECRET_OPT = re.compile(r"^(--?[\w-]*(password|passwd|token|secret|auth|key)[\w-]*)(=.*)?$", re.I)
_SECRET_ENV = re.compile(r"^([A-Z0-9_]*(PASSWORD|TOKEN|SECRET|KEY)[A-Z0-9_]*)=.*$")


def redact(value: object) -> object:
    if isinstance(value, str):
        value = _TOKEN.sub("rpl_***", _SECRET_URL.sub(r"\1***:***@", value))
        return _SECRET_ENV.sub(r"\1=***", value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        out, hide = [], False
        for item in value:
            if hide and isinstance(item, str):
                out.append("***")
                hide = False
                continue
            m = _SECRET_OPT.match(item) if isinstance(item, str) else None
            if m:
                hide = m.group(3) is None
                out.append(m.group(1) + ("=***" if m.group(3) else ""))
                continue
            out.append(redact(item))
        return out
    return value


def record(kind: str, details: dict) -> dict | None:
    """Record an entry however this process can; never fails the command it describes."""
    details = redact(details)  # type: ignore[assignment]
    blob = canonical(details)
    if len(blob) > MAX_DETAILS:
        details = {"truncated": True, "size": len(blob), "command": details.get("command")}
    try:
        directory = activity_dir()
        if directory:
            return append(directory, kind, {**details, "uid": os.geteuid()})
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(SOCKET)
            s.sendall(canonical({"kind": kind, "details": details}) + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        answer = json.loads(reply or b"{}")
        if "error" in answer:
            raise OSError(answer["error"])
        return answer
    except (OSError, ValueError) as exc:
        print(f"reprolab: activity not recorded ({exc}); start the container with its entrypoint "
              "so the agent runs", file=sys.stderr)
        return None


# --------------------------------------------------------------------------------------------- daemon


ALLOWED_KINDS = re.compile(r"^(install|run\.start|run\.end|capture|capture\.submitted|note|cell)$")


def serve(sock_path: str = SOCKET) -> None:
    """``reprolab logd``: the only writer of the root-owned chain; one JSON request per connection."""
    os.makedirs(os.path.dirname(sock_path), exist_ok=True)
    os.chmod(os.path.dirname(sock_path), 0o755)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    os.chmod(sock_path, 0o666)
    server.listen(16)
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                conn.settimeout(10)
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                pid, uid, _gid = struct.unpack("3i", creds)
                data = b""
                while not data.endswith(b"\n") and len(data) <= MAX_DETAILS + 1024:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                req = json.loads(data)
                kind, details = req.get("kind"), req.get("details")
                if not isinstance(kind, str) or not ALLOWED_KINDS.match(kind) or not isinstance(details, dict):
                    raise ValueError("bad request")
                details = {**details, "uid": uid}  # the kernel's word, not the client's
                entry = append(STATE_DIR, kind, details)
                conn.sendall(canonical({"seq": entry["seq"], "hash": entry["hash"]}) + b"\n")
            except Exception as exc:  # noqa: BLE001 - one bad client never stops the daemon
                try:
                    conn.sendall(canonical({"error": str(exc)[:200]}) + b"\n")
                except OSError:
                    pass


def _start_daemon() -> None:
    try:
        os.unlink(SOCKET)  # a stale socket of an earlier start (podman restart)
    except FileNotFoundError:
        pass
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        for _ in range(100):  # the socket exists before the student's command starts
            if os.path.exists(SOCKET):
                return
            time.sleep(0.02)
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), "logd"])
    finally:
        os._exit(1)


def init(command: list[str]) -> None:
    """ENTRYPOINT: as root start the daemon, record the session and run ``command`` as the student;
    as anyone else (the runner) point the agent at the run's outputs and run ``command`` as is."""
    if not command:
        command = ["/bin/bash"] if os.path.exists("/bin/bash") else ["/bin/sh"]
    if os.geteuid() == 0 and not os.environ.get("REPROLAB_ACTIVITY_DIR"):
        try:
            os.makedirs(STATE_DIR, mode=0o755, exist_ok=True)
            append(STATE_DIR, "session", {"command": command[:20], "uid": STUDENT_UID})
            _start_daemon()
        except OSError as exc:  # e.g. a read-only root started as root: run anyway, say so
            print(f"reprolab: activity agent not started: {exc}", file=sys.stderr)
        os.environ.update(HOME="/home/student", USER="student", LOGNAME="student")
        if os.getcwd() == "/" and os.path.isdir("/home/student"):
            os.chdir("/home/student")
        os.setgroups([])
        os.setgid(STUDENT_UID)
        os.setuid(STUDENT_UID)
    elif not os.environ.get("REPROLAB_ACTIVITY_DIR") and os.path.isdir("/outputs") and os.access("/outputs", os.W_OK):
        os.environ["REPROLAB_ACTIVITY_DIR"] = "/outputs/.reprolab"
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"reprolab: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        sys.exit(127)


# --------------------------------------------------------------------------------------------- snapshots


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def python_paths() -> list[str]:
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    homes = ["/root", os.path.expanduser("~"), *glob.glob("/home/*")]
    for home in homes:
        paths += sorted(glob.glob(os.path.join(home, ".local/lib/python3*/site-packages")))
    seen: list[str] = []
    for p in paths:
        if p not in seen:
            seen.append(p)
    return seen


def python_packages() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions(path=python_paths()):
        name = dist.metadata["Name"] if dist.metadata else None
        if name and _norm(name) not in found:
            found[_norm(name)] = dist.version
    return dict(sorted(found.items()))


def apt_packages() -> dict[str, str]:
    if not shutil.which("dpkg-query"):
        return {}
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"],
                          capture_output=True, text=True)
    found = {}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].startswith("ii"):
            found[parts[0]] = parts[1]
    return dict(sorted(found.items()))


def r_packages(extra_libs: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """R packages in the system and users' default libraries plus ``extra_libs`` (the R hook passes the
    session's ``.libPaths()`` and the call's ``lib``, which may be anywhere)."""
    found: dict[str, str] = {}
    libs = R_LIBS + sorted(glob.glob("/home/*/R/*/*")) + sorted(glob.glob("/root/R/*/*"))
    libs += [os.path.abspath(lib) for lib in extra_libs if lib and os.path.abspath(lib) not in libs]
    for lib in libs:
        for desc in sorted(glob.glob(os.path.join(lib, "*", "DESCRIPTION"))):
            try:
                text = open(desc, encoding="utf-8", errors="replace").read()
            except OSError:
                continue
            name = re.search(r"^Package:\s*(\S+)", text, re.M)
            version = re.search(r"^Version:\s*(\S+)", text, re.M)
            if name and version and name.group(1) not in found:
                found[name.group(1)] = version.group(1)
    return dict(sorted(found.items()))


SNAPSHOTS = {"python": python_packages, "apt": apt_packages, "r": r_packages}


def snapshot(kinds: tuple[str, ...] = ("python", "apt", "r")) -> dict[str, dict[str, str]]:
    return {k: SNAPSHOTS[k]() for k in kinds}


def diff(before: dict[str, str], after: dict[str, str]) -> dict:
    added = {n: v for n, v in after.items() if n not in before}
    removed = {n: v for n, v in before.items() if n not in after}
    changed = {n: [before[n], v] for n, v in after.items() if n in before and before[n] != v}
    return {k: v for k, v in (("added", added), ("removed", removed), ("changed", changed)) if v}


# --------------------------------------------------------------------------------------------- wrappers


def real_tool(name: str) -> str | None:
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and os.path.realpath(p) != os.path.realpath(WRAPPER_DIR)]
    return shutil.which(name, path=os.pathsep.join(path))


def wrap(tool: str, args: list[str]) -> int:
    """Run the real ``tool`` and record it with the packages it added, removed or changed."""
    real = real_tool(tool)
    if real is None:
        print(f"reprolab: {tool} is not installed in this image", file=sys.stderr)
        return 127
    kinds = ("apt",) if tool in ("apt", "apt-get") else ("python",)
    before = snapshot(kinds)
    started = time.monotonic()
    code = subprocess.call([real, *args])
    after = snapshot(kinds)
    changes = {k: d for k in kinds if (d := diff(before[k], after[k]))}
    reads_only = not changes and (not args or args[0] in {
        "list", "show", "freeze", "search", "help", "--version", "-V", "check", "config", "cache", "inspect",
        "index", "debug", "download", "hash", "policy", "depends", "rdepends", "madison", "-h", "--help"})
    if not reads_only:
        record("install", {"tool": tool, "command": [tool, *args][:50], "exit": code,
                           "seconds": round(time.monotonic() - started, 3).__str__(), "changes": changes})
    return code


def r_hook(phase: str, what: str, state_file: str, libs: list[str] | None = None) -> int:
    """Called by the R profile hook around install.packages/remove.packages (before/after). ``libs`` are
    the libraries that call may touch; "after" looks at those of both phases."""
    libs = list(libs or [])
    if phase == "before":
        with open(state_file, "w", encoding="utf-8") as fh:
            json.dump({"libs": libs, "packages": r_packages(libs)}, fh)
        return 0
    try:
        with open(state_file, encoding="utf-8") as fh:
            state = json.load(fh)
        os.unlink(state_file)
        before, libs = state["packages"], [*state["libs"], *libs]
    except (OSError, ValueError, KeyError, TypeError):
        before = {}
    changes = diff(before, r_packages(libs))
    record("install", {"tool": "R", "command": [what], "exit": 0, "changes": {"r": changes} if changes else {}})
    return 0


def run(command: list[str]) -> int:
    """``reprolab run -- CMD``: the command with its start and end in the chain."""
    if not command:
        print("reprolab run: give the command after --", file=sys.stderr)
        return 2
    start = record("run.start", {"command": command[:50], "cwd": os.getcwd()})
    started = time.monotonic()
    try:
        code = subprocess.call(command)
    except OSError as exc:
        print(f"reprolab run: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        code = 127
    record("run.end", {"command": command[:50], "exit": code, "start_seq": (start or {}).get("seq"),
                       "seconds": str(round(time.monotonic() - started, 3))})
    return code


# --------------------------------------------------------------------------------------------- capture


def capture() -> dict:
    """What changed since the image was built (its baseline) and the lock it was built from."""
    try:
        with open(BASELINE_JSON, encoding="utf-8") as fh:
            baseline = json.load(fh)
        with open(IMAGE_JSON, encoding="utf-8") as fh:
            image = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"reprolab env capture: this image has no Reprolab baseline ({exc})") from None
    now = snapshot()
    changes = {k: diff(baseline.get(k, {}), now[k]) for k in now}
    py = changes["python"]
    locked = {p["name"]: p["version"] for p in image.get("python_packages", [])}
    for name in py.get("removed", {}):
        locked.pop(name, None)
    for name, version in {**py.get("added", {}), **{n: v[1] for n, v in py.get("changed", {}).items()}}.items():
        locked[name] = version
    def names(kind: str) -> list[str]:  # the image's apt/R names, with what was added kept, what was removed gone
        c = changes[kind]
        return sorted((set(image.get(kind, [])) | set(c.get("added", {})) | set(c.get("changed", {})))
                      - set(c.get("removed", {})))

    proposed = {
        "python": {"requirements": [f"{n}=={v}" for n, v in sorted(locked.items())]},
        "apt": names("apt"),
        "r": {"packages": names("r")},
    }
    entries = read_entries(log_path())
    head = entries[-1] if entries else {}
    return {"format": "reprolab-capture/1", "image": {k: image.get(k) for k in ("lock_digest", "parent_lock_digest")},
            "changes": {k: v for k, v in changes.items() if v}, "proposed_spec": proposed,
            "chain": {"id": head.get("chain"), "seq": head.get("seq"), "hash": head.get("hash")}}


def _print_changes(doc: dict) -> None:
    if not doc["changes"]:
        print("no changes since the image was built")
    for kind, d in doc["changes"].items():
        for name, version in d.get("added", {}).items():
            print(f"+ {kind} {name} {version}")
        for name, version in d.get("removed", {}).items():
            print(f"- {kind} {name} {version}")
        for name, (old, new) in d.get("changed", {}).items():
            print(f"~ {kind} {name} {old} -> {new}")


# --------------------------------------------------------------------------------------------- activity


def export(out: str) -> int:
    entries = read_entries(log_path())
    ok, why = verify_entries(entries)
    header = {"format": BUNDLE_FORMAT, "image": image_info(), "entries": len(entries),
              "chain": entries[0]["chain"] if entries else None, "head": entries[-1]["hash"] if entries else None}
    data = "".join(json.dumps(x, sort_keys=True, ensure_ascii=False) + "\n" for x in [header, *entries])
    if out == "-":
        sys.stdout.write(data)
    else:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(data)
        print(f"wrote {len(entries)} entries to {out} ({why})", file=sys.stderr)
    return 0 if ok else 1


def verify_bundle(path: str) -> tuple[bool, str]:
    try:
        lines = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    except (OSError, ValueError) as exc:
        return False, f"unreadable bundle: {exc}"
    if not lines or lines[0].get("format") != BUNDLE_FORMAT:
        return False, "not an agent bundle"
    header, entries = lines[0], lines[1:]
    if header.get("entries") != len(entries) or (entries and header.get("head") != entries[-1].get("hash")):
        return False, "the header does not match the entries (entries dropped or added)"
    return verify_entries(entries)


def sync() -> int:
    """POST the chain to the gateway with the user's token; the platform dedupes by (chain, seq)."""
    url, token = os.environ.get("REPROLAB_URL"), os.environ.get("REPROLAB_TOKEN")
    workspace = os.environ.get("REPROLAB_WORKSPACE")
    if not (url and token and workspace):
        print("reprolab activity sync: set REPROLAB_URL, REPROLAB_WORKSPACE and REPROLAB_TOKEN", file=sys.stderr)
        return 2
    entries = read_entries(log_path())
    body = canonical({"image": image_info(), "entries": entries})
    req = urllib.request.Request(f"{url.rstrip('/')}/api/v1/workspaces/{workspace}/activity/agent", data=body,
                                 method="POST", headers={"Authorization": f"Bearer {token}",
                                                         "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        print(f"reprolab activity sync: HTTP {exc.code}: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"reprolab activity sync: {url} is unreachable: {exc}", file=sys.stderr)
        return 1
    print(f"synced {answer.get('accepted', 0)} entries of chain {answer.get('chain')}")
    return 0


def main(argv: list[str]) -> int:
    # Commands that pass the rest of the line through are parsed by hand: argparse would take their
    # options (``pip --version``) for its own.
    rest = argv[2:][1:] if argv[2:3] == ["--"] else argv[2:]
    if argv[1:2] == ["run"]:
        return run(rest)
    if argv[1:2] == ["init"]:
        init(rest)
        return 0
    if argv[1:2] == ["wrap"] and len(argv) > 2:
        return wrap(argv[2], argv[3:])
    parser = argparse.ArgumentParser(prog="reprolab", description="Reprolab's activity agent (inside the image)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="reprolab run -- CMD: run a command and record it")
    sub.add_parser("init", help="the image's entrypoint")
    sub.add_parser("logd", help="the root daemon that writes the chain")
    sub.add_parser("wrap", help="reprolab wrap TOOL ARGS: run a package tool and record what it changed")
    p = sub.add_parser("r-hook")
    p.add_argument("phase", choices=["before", "after"])
    p.add_argument("what")
    p.add_argument("state")
    p.add_argument("libs", nargs="*")
    p = sub.add_parser("record", help="append a note or a capture link to the chain")
    p.add_argument("kind", choices=["note", "capture.submitted"])
    p.add_argument("details", help="a JSON object")
    sub.add_parser("baseline", help="print the installed packages (written into the image at build time)")
    p = sub.add_parser("activity", help="show, export, verify or sync the chain")
    p.add_argument("action", choices=["show", "export", "verify", "sync"], nargs="?", default="show")
    p.add_argument("-o", "--output", default="-")
    p.add_argument("bundle", nargs="?")
    p = sub.add_parser("env", help="env capture: what changed since the image was built")
    p.add_argument("action", choices=["capture"])
    p.add_argument("--json", action="store_true")
    args = parser.parse_args(argv[1:])
    if args.cmd == "logd":
        serve()
        return 0
    if args.cmd == "r-hook":
        return r_hook(args.phase, args.what, args.state, args.libs)
    if args.cmd == "record":
        details = json.loads(args.details)
        if not isinstance(details, dict):
            parser.error("details must be a JSON object")
        entry = record(args.kind, details)
        print(json.dumps(entry))
        return 0 if entry else 1
    if args.cmd == "baseline":
        sys.stdout.write(json.dumps(snapshot(), sort_keys=True, indent=1) + "\n")
        return 0
    if args.cmd == "env":
        doc = capture()
        if args.json:
            print(json.dumps(doc, sort_keys=True, indent=1))
        else:
            _print_changes(doc)
        return 0
    if args.action == "show":
        entries = read_entries(log_path())
        for e in entries:
            print(f"{e['seq']:>5} {e['time']} {e['kind']:<18} {json.dumps(e['details'], sort_keys=True)}")
        ok, why = verify_entries(entries)
        print(("chain ok: " if ok else "CHAIN BROKEN: ") + why, file=sys.stderr)
        return 0 if ok else 1
    if args.action == "export":
        return export(args.output)
    if args.action == "verify":
        ok, why = verify_bundle(args.bundle or args.output)
        print(("ok: " if ok else "FAILED: ") + why)
        return 0 if ok else 1
    return sync()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
