"""Kubernetes manifests of the kubernetes build backend: pure functions returning plain dicts.

Tested as data (schema validation and assertions) and kept apart from the code that talks to the
API server (``backends/kubernetes.py``), like kubespawner's ``objects.py``.
"""

from __future__ import annotations

import shlex
from typing import Any

BUILD_CONTAINER = "build"
FETCH_CONTAINER = "fetch-context"
COMPONENT = "image-build"
BUILD_ID_LABEL = "reprolab.org/build-id"
WORKSPACE = "/workspace"
AUTH_DIR = "/var/run/reprolab/registry"
STORAGE = "/var/lib/reprolab-build"
TTL_SECONDS_AFTER_FINISHED = 600
RUN_AS_USER = 1000


def build_labels(build_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Labels every object of one build carries (the selector of its pods is the build-id label)."""
    return {
        "app.kubernetes.io/name": "reprolab",
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": "reprolab-builder",
        BUILD_ID_LABEL: build_id,
        **(extra or {}),
    }


SECCOMP_PROFILE = "reprolab-build.json"
# What rootless buildah needs beyond "restricted": SETUID/SETGID are the file capabilities of
# newuidmap/newgidmap (so escalation must be allowed for them), SYS_CHROOT the chroot isolation.
BUILD_CAPABILITIES = ["SETUID", "SETGID", "SYS_CHROOT"]


def _restricted_security_context() -> dict[str, Any]:
    # The "restricted" Pod Security Standard: what the fetch init container runs under.
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def build_security_context(seccomp_profile: str = SECCOMP_PROFILE) -> dict[str, Any]:
    """The build container's context: Pod Security "baseline", not "restricted".

    Rootless buildah unpacks images whose files belong to many users (``0:42`` for /etc/shadow), so
    it makes a user namespace mapping the subordinate ids of /etc/subuid (newuidmap, newgidmap) and
    chroots into each layer. Under "restricted" (no capabilities, no escalation, the runtime's
    default seccomp) ``unshare(CLONE_NEWUSER)`` is refused and buildah falls back to one mapped id,
    which cannot unpack a Debian base. This context adds only SETUID, SETGID and SYS_CHROOT (all
    allowed by "baseline"), lets the two helpers' file capabilities apply, and runs under the
    ``Localhost`` seccomp profile the chart ships (charts/reprolab/files/seccomp): containerd's
    default plus unshare/clone/mount inside the new namespace. The process still runs as uid 1000
    and every id in the namespace maps to unprivileged subordinate ids on the node.
    ``docs/architecture.md`` ("Builds in a cluster") weighs this against ``hostUsers: false``.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "allowPrivilegeEscalation": True,
        "capabilities": {"drop": ["ALL"], "add": list(BUILD_CAPABILITIES)},
        "seccompProfile": {"type": "Localhost", "localhostProfile": seccomp_profile},
    }


def build_script(image_ref: str, *, insecure_registry: bool) -> str:
    """The shell run by the build container; the pushed digest ends up in the termination message."""
    tls = f"--tls-verify={'false' if insecure_registry else 'true'}"
    ref = shlex.quote(image_ref)
    return (
        "set -eu\n"
        f"buildah bud --timestamp 0 --identity-label=false --layers=false {tls}"
        f" --format oci -f {WORKSPACE}/context/Containerfile -t {ref} {WORKSPACE}/context\n"
        f"buildah push {tls} --authfile {AUTH_DIR}/auth.json --digestfile /dev/termination-log {ref}\n"
    )


def fetch_script() -> str:
    """The init container's shell: fetch the context tarball from the presigned URL and unpack it."""
    return (
        "set -eu\n"
        f"mkdir -p {WORKSPACE}/context\n"
        f'curl --fail --silent --show-error --location --retry 3 -o {WORKSPACE}/context.tar "$CONTEXT_URL"\n'
        f"tar -x -f {WORKSPACE}/context.tar -C {WORKSPACE}/context\n"
        f"rm {WORKSPACE}/context.tar\n"
    )


def make_build_job(
    *,
    name: str,
    namespace: str,
    builder_image: str,
    context_url: str,
    image_ref: str,
    registry_secret: str,
    labels: dict[str, str],
    resources: dict[str, Any],
    active_deadline_seconds: int,
    insecure_registry: bool,
    seccomp_profile: str = SECCOMP_PROFILE,
) -> dict[str, Any]:
    """A batch/v1 Job that fetches a build context and builds and pushes it with rootless buildah.

    ``builder_image`` needs buildah, curl and tar, a user 1000 with subordinate ids and newuidmap /
    newgidmap with file capabilities (``make images`` builds localhost/reprolab/build-job so).
    ``seccomp_profile`` names the Localhost profile on the nodes (see :func:`build_security_context`).

    ``context_url`` is a presigned GET URL of the context tarball; ``registry_secret`` names a
    Secret whose ``auth.json`` key is a containers-auth.json for the registry. The pushed digest is
    written to the build container's termination log, so it comes back in
    ``status.containerStatuses[].state.terminated.message``.
    """
    restricted = _restricted_security_context()
    env_storage = [
        {"name": "BUILDAH_ISOLATION", "value": "chroot"},
        {"name": "STORAGE_DRIVER", "value": "vfs"},
        {"name": "HOME", "value": f"{WORKSPACE}/home"},
        # Image storage in its own emptyDir; not under HOME, whose parent the runtime would create as root.
        {"name": "XDG_DATA_HOME", "value": STORAGE},
        {"name": "REGISTRY_AUTH_FILE", "value": f"{AUTH_DIR}/auth.json"},
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
            "activeDeadlineSeconds": active_deadline_seconds,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "initContainers": [{
                        "name": FETCH_CONTAINER,
                        "image": builder_image,
                        "command": ["/bin/sh", "-c", fetch_script()],
                        "env": [{"name": "CONTEXT_URL", "value": context_url}],
                        "securityContext": restricted,
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                      "limits": {"memory": "256Mi"}},
                        "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
                    }],
                    "containers": [{
                        "name": BUILD_CONTAINER,
                        "image": builder_image,
                        "command": ["/bin/sh", "-c", build_script(image_ref, insecure_registry=insecure_registry)],
                        "env": env_storage,
                        "securityContext": build_security_context(seccomp_profile),
                        "resources": resources,
                        "terminationMessagePath": "/dev/termination-log",
                        # On success the file holds the digest; on failure it is empty and the
                        # kubelet uses the log's tail, which is the error worth reporting.
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "volumeMounts": [
                            {"name": "workspace", "mountPath": WORKSPACE},
                            {"name": "containers", "mountPath": STORAGE},
                            {"name": "registry-auth", "mountPath": AUTH_DIR, "readOnly": True},
                        ],
                    }],
                    "volumes": [
                        {"name": "workspace", "emptyDir": {}},
                        {"name": "containers", "emptyDir": {}},
                        {"name": "registry-auth", "secret": {
                            "secretName": registry_secret,
                            "items": [{"key": "auth.json", "path": "auth.json"}],
                        }},
                    ],
                },
            },
        },
    }


def make_builder_service_account(*, name: str, namespace: str) -> dict[str, Any]:
    """The identity the builder service runs as."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": _component_labels()},
    }


def make_builder_role(*, name: str, namespace: str) -> dict[str, Any]:
    """What the builder may do, in its own namespace only: run Jobs and read their pods and logs."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": _component_labels()},
        "rules": [
            {"apiGroups": ["batch"], "resources": ["jobs"],
             "verbs": ["create", "get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
    }


def make_builder_role_binding(*, name: str, namespace: str, role: str, service_account: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": _component_labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
    }


def make_builder_rbac(*, namespace: str, name: str = "reprolab-builder") -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding of the builder service, all in ``namespace``."""
    return [
        make_builder_service_account(name=name, namespace=namespace),
        make_builder_role(name=name, namespace=namespace),
        make_builder_role_binding(name=name, namespace=namespace, role=name, service_account=name),
    ]


def _component_labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "reprolab", "app.kubernetes.io/component": "builder",
            "app.kubernetes.io/managed-by": "reprolab"}
