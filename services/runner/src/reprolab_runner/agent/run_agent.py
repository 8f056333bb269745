#!/usr/bin/env python3
"""Reprolab run agent: runs one job on a cloud VM, then powers the VM off.

Python 3 standard library only: a VM image has python3 and a container engine (podman, or
docker), nothing else is assumed. cloud-init writes this file and the job JSON, then runs

    python3 run_agent.py job.json [--no-poweroff]

The job (built by reprolab_runner.targets.vm.job_document):
    run_id, image, command, env, workdir,
    limits: {cpu_millis, memory_bytes, pids, timeout_seconds, network},
    code: {url, sha256, mount}           (tar.gz/zip unpacked into mount, usually /work)
    datasets: [{url, sha256, mount}]     (files bound read-only at mount, under /data)
    outputs: {name: presigned PUT url}   (status.json, stdout.log, stderr.log, metrics.json, outputs.tar.gz)
    registry_tls_verify: bool            (false only for a plain-HTTP test registry)
    registry_auth: {registry, username, password}  (optional: a pull grant for this one image)
    user: "65534:65534"

status.json is uploaded last: its presence means the run is over. It is
{"exit_code": int|null, "timed_out": bool, "error": str, "duration_seconds": float}; a non-empty
"error" with exit_code null means the agent itself failed (bad input digest, image pull failed).
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

LABEL = "org.reprolab.run-id"
CHUNK = 1 << 20
RETRIES = 4


class AgentError(Exception):
    """The agent could not run the job (not the student's code failing)."""


def log(msg):
    sys.stderr.write(f"reprolab-agent: {msg}\n")
    sys.stderr.flush()


def _retry(what, fn):
    delay = 1.0
    for attempt in range(RETRIES):
        try:
            return fn()
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and 400 <= exc.code < 500 and exc.code != 429:
                raise AgentError(f"{what}: HTTP {exc.code}") from None
            if attempt == RETRIES - 1:
                raise AgentError(f"{what}: {exc}") from None
            log(f"{what} failed ({exc}); retrying")
            time.sleep(delay)
            delay *= 2


def fetch(url, dest, sha256):
    """GET url into dest, refusing the file unless its sha256 matches."""
    def once():
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    got = _retry(f"download of {os.path.basename(dest)}", once)
    want = (sha256 or "").lower().removeprefix("sha256:")
    if want and got != want:
        os.unlink(dest)
        raise AgentError(f"input {os.path.basename(dest)}: sha256 {got} does not match the expected {want}")


def upload(url, path=None, data=None):
    """PUT a file (or bytes) to a presigned URL."""
    def once():
        body = data if data is not None else open(path, "rb").read()
        req = urllib.request.Request(url, data=body, method="PUT",
                                     headers={"Content-Length": str(len(body)),
                                              "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()

    _retry("upload", once)


def _safe_member(root, name):
    target = os.path.realpath(os.path.join(root, name))
    if not (target == root or target.startswith(root + os.sep)):
        raise AgentError(f"code archive member {name!r} escapes the work directory")
    return target


def unpack(archive, dest):
    root = os.path.realpath(dest)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                _safe_member(root, name)
            zf.extractall(root)
        return
    with tarfile.open(archive) as tf:
        members = []
        for m in tf.getmembers():
            _safe_member(root, m.name)
            if not (m.isfile() or m.isdir()):
                continue  # no links or devices from student archives
            members.append(m)
        tf.extractall(root, members=members)


def chown_tree(path, uid, gid):
    for base, dirs, names in os.walk(path):
        os.chown(base, uid, gid)
        for n in dirs + names:
            os.lchown(os.path.join(base, n), uid, gid)


def engine():
    for name in ("podman", "docker"):
        exe = shutil.which(name)
        if exe:
            return exe
    raise AgentError("neither podman nor docker is installed on the VM")


def pull(exe, image, tls_verify, auth=None, scratch=None):
    cmd = [exe, "pull", "-q"]
    if os.path.basename(exe) == "podman" and not tls_verify:
        cmd.append("--tls-verify=false")
    if auth:
        # in a file only root reads, not on the command line (any process on the VM sees that)
        config_dir = os.path.join(scratch or tempfile.mkdtemp(), "registry-auth")
        os.makedirs(config_dir, mode=0o700, exist_ok=True)
        path = os.path.join(config_dir, "config.json")
        token = base64.b64encode("{}:{}".format(auth["username"], auth["password"]).encode()).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": {auth["registry"]: {"auth": token}}}, f)
        if os.path.basename(exe) == "podman":
            cmd += ["--authfile", path]
        else:
            cmd = [exe, "--config", config_dir] + cmd[1:]
    last = ""
    for attempt in range(3):
        proc = subprocess.run(cmd + [image], capture_output=True, text=True)
        if proc.returncode == 0:
            return
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        last = last[0]
        time.sleep(2 * (attempt + 1))
    raise AgentError(f"could not pull image {image}: {last}")


def sandbox_args(job, exe, name, work, outputs, data_binds):
    """The same sandbox as a local run: see reprolab_runner.targets.base."""
    lim = job.get("limits", {})
    args = [exe, "run", "--name", name, "--label", "{}={}".format(LABEL, job["run_id"]),
            "--user", job.get("user", "65534:65534"),
            "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=256m",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--cpus", "%.3f" % (lim.get("cpu_millis", 1000) / 1000.0),
            "--memory", str(lim.get("memory_bytes", 1 << 30)),
            "--pids-limit", str(lim.get("pids", 256)),
            "--network", "bridge" if lim.get("network") else "none",
            "-v", "{}:{}:rw".format(work, job.get("code", {}).get("mount") or "/work"),
            "-v", f"{outputs}:/outputs:rw",
            "-w", job.get("workdir") or job.get("code", {}).get("mount") or "/work",
            "-e", "HOME=/tmp"]
    if os.path.basename(exe) == "podman":
        args += ["--memory-swap", str(lim.get("memory_bytes", 1 << 30))]
    for src, mount in data_binds:
        args += ["-v", f"{src}:{mount}:ro"]
    for key, value in sorted((job.get("env") or {}).items()):
        args += ["-e", f"{key}={value}"]
    return args + [job["image"]] + list(job["command"])


def run_job(job, scratch):
    """Fetch, run, and return (status dict, files to upload by output name)."""
    exe = engine()
    work, data, outputs = (os.path.join(scratch, d) for d in ("work", "data", "outputs"))
    for d in (work, data, outputs):
        os.makedirs(d, exist_ok=True)
    code = job.get("code") or {}
    if code.get("url"):
        archive = os.path.join(scratch, "code.archive")
        fetch(code["url"], archive, code.get("sha256", ""))
        unpack(archive, work)
    binds = []
    for i, ds in enumerate(job.get("datasets") or []):
        local = os.path.join(data, f"{i}-{os.path.basename(ds['mount'].rstrip('/')) or 'data'}")
        fetch(ds["url"], local, ds.get("sha256", ""))
        os.chmod(local, 0o444)
        binds.append((local, ds["mount"]))
    uid, gid = (int(x) for x in job.get("user", "65534:65534").split(":"))
    chown_tree(work, uid, gid)
    chown_tree(outputs, uid, gid)

    pull(exe, job["image"], job.get("registry_tls_verify", True), job.get("registry_auth"), scratch)
    name = "reprolab-run-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in job["run_id"])
    subprocess.run([exe, "rm", "-f", name], capture_output=True)
    timeout = job.get("limits", {}).get("timeout_seconds", 600)
    stdout_path, stderr_path = os.path.join(scratch, "stdout.log"), os.path.join(scratch, "stderr.log")
    started = time.monotonic()
    timed_out = False
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(sandbox_args(job, exe, name, work, outputs, binds), stdout=out, stderr=err)
        try:
            code_ = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            subprocess.run([exe, "kill", name], capture_output=True)
            code_ = proc.wait()
    subprocess.run([exe, "rm", "-f", name], capture_output=True)
    status = {"exit_code": code_, "timed_out": timed_out, "error": "",
              "duration_seconds": round(time.monotonic() - started, 3)}
    files = {"stdout.log": stdout_path, "stderr.log": stderr_path}
    metrics = os.path.join(outputs, "metrics.json")
    if os.path.isfile(metrics) and not os.path.islink(metrics):
        files["metrics.json"] = metrics
    tarball = os.path.join(scratch, "outputs.tar.gz")
    with tarfile.open(tarball, "w:gz") as tf:
        for entry in sorted(os.listdir(outputs)):
            tf.add(os.path.join(outputs, entry), arcname=entry,
                   filter=lambda ti: ti if (ti.isfile() or ti.isdir()) else None)
    files["outputs.tar.gz"] = tarball
    return status, files


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    poweroff = "--no-poweroff" not in argv and os.environ.get("REPROLAB_AGENT_NO_POWEROFF") != "1"
    if len(args) != 1:
        sys.stderr.write("usage: run_agent.py JOB.json [--no-poweroff]\n")
        return 2
    with open(args[0]) as fh:
        job = json.load(fh)
    urls = job.get("outputs") or {}
    scratch = tempfile.mkdtemp(prefix="reprolab-run-")
    try:
        try:
            status, files = run_job(job, scratch)
        except AgentError as exc:
            log(str(exc))
            status, files = {"exit_code": None, "timed_out": False, "error": str(exc)}, {}
        except Exception as exc:  # report anything rather than leave the runner waiting
            log(f"unexpected: {exc!r}")
            status, files = {"exit_code": None, "timed_out": False, "error": f"run agent crashed: {exc!r}"}, {}
        for name, path in files.items():
            if name in urls:
                try:
                    upload(urls[name], path=path)
                except AgentError as exc:
                    log(str(exc))
                    status.setdefault("upload_errors", []).append(name)
        # status.json last: its presence tells the runner everything else is in place.
        if "status.json" in urls:
            upload(urls["status.json"], data=json.dumps(status).encode())
        log(f"done: {json.dumps(status)}")
        return 0 if status.get("error") == "" else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if poweroff:
            for cmd in (["systemctl", "poweroff"], ["shutdown", "-h", "now"], ["poweroff"]):
                if shutil.which(cmd[0]) and subprocess.run(cmd).returncode == 0:
                    break


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
