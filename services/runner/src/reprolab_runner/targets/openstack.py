"""Run on an OpenStack server (openstacksdk), e.g. at the Mass Open Cloud: Nova boots the image
with the shared cloud-init user-data and LABEL in the server metadata."""

from __future__ import annotations

import base64
import re

from .base import LABEL, RunRequest, TargetError, register
from .vm import CloudVmTarget, VmState

_STATUS = {"BUILD": VmState.PENDING, "ACTIVE": VmState.RUNNING, "SHUTOFF": VmState.STOPPED,
           "STOPPED": VmState.STOPPED, "DELETED": VmState.GONE, "SOFT_DELETED": VmState.GONE,
           "ERROR": VmState.FAILED}


def openstack_error(exc: Exception, doing: str) -> TargetError:
    from keystoneauth1 import exceptions as ks

    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    text = str(getattr(exc, "details", None) or exc)
    if isinstance(exc, (ks.Unauthorized, ks.auth_plugins.MissingAuthPlugin)) or status == 401:
        return TargetError(f"OpenStack rejected the credentials while {doing}: check the auth URL, user or "
                           f"application credential, password and project")
    if "quota exceeded" in text.lower() or (status == 413):
        return TargetError(f"OpenStack quota exceeded while {doing}: {text}")
    if status == 403:
        return TargetError(f"OpenStack refused {doing} (403): {text}")
    return TargetError(f"OpenStack error while {doing}: {text}")


@register("openstack")
class OpenStackTarget(CloudVmTarget):
    """Options: ``image_id``, ``flavor_id``, ``network_id`` (else Nova's "auto"), ``key_name``,
    ``insecure_registry``. Credentials: auth_url, project (name) or project_id, username + password
    (+ user_domain/project_domain) or application_credential_id + application_credential_secret,
    [region]."""

    def __init__(self, settings=None, *, credentials: dict, options: dict | None = None, store=None,
                 installation: str = "", **_) -> None:
        super().__init__(settings, store=store, options=options, installation=installation)
        import openstack.connection

        c = credentials
        if "auth_url" not in c:
            raise TargetError("OpenStack credentials lack auth_url")
        if c.get("application_credential_id"):
            auth_type = "v3applicationcredential"
            auth = {"auth_url": c["auth_url"], "application_credential_id": c["application_credential_id"],
                    "application_credential_secret": c.get("application_credential_secret", "")}
        elif c.get("username"):
            auth_type = "v3password"
            auth = {"auth_url": c["auth_url"], "username": c["username"], "password": c.get("password", ""),
                    "user_domain_name": c.get("user_domain", "Default"),
                    "project_domain_name": c.get("project_domain", "Default")}
            if c.get("project_id"):
                auth["project_id"] = c["project_id"]
            elif c.get("project"):
                auth["project_name"] = c["project"]
            else:
                raise TargetError("OpenStack credentials lack project (or project_id)")
        else:
            raise TargetError("OpenStack credentials need username/password or an application credential")
        self.conn = openstack.connection.Connection(auth_type=auth_type, auth=auth, region_name=c.get("region"),
                                                    interface="public")

    def _create(self, request: RunRequest, user_data: str) -> str:
        from keystoneauth1 import exceptions as ks
        from openstack import exceptions as oe

        for key in ("image_id", "flavor_id"):
            if not self.options.get(key):
                raise TargetError(f"the openstack target needs options.{key}")
        name = ("reprolab-" + re.sub(r"[^A-Za-z0-9-]", "-", request.run_id))[:63]
        networks = [{"uuid": self.options["network_id"]}] if self.options.get("network_id") else "auto"
        kwargs = {"name": name, "image_id": self.options["image_id"], "flavor_id": self.options["flavor_id"],
                  "networks": networks, "metadata": self.tags(request.run_id),
                  # Nova wants user data base64-encoded; the compute proxy passes it through as is.
                  "user_data": base64.b64encode(user_data.encode()).decode()}
        if self.options.get("key_name"):
            kwargs["key_name"] = self.options["key_name"]
        try:
            return self.conn.compute.create_server(**kwargs).id
        except (oe.SDKException, ks.ClientException) as exc:
            raise openstack_error(exc, "creating the server") from None

    def _vm_state(self, vm_id: str) -> tuple[str, str]:
        from keystoneauth1 import exceptions as ks
        from openstack import exceptions as oe

        try:
            server = self.conn.compute.get_server(vm_id)
        except oe.NotFoundException:
            return VmState.GONE, "not found"
        except (oe.SDKException, ks.ClientException) as exc:
            raise openstack_error(exc, "reading the server state") from None
        detail = f"status {server.status}"
        if server.fault:
            detail += f": {server.fault.get('message', '')}"
        return _STATUS.get(server.status, VmState.PENDING), detail

    def _delete(self, vm_id: str) -> None:
        from keystoneauth1 import exceptions as ks
        from openstack import exceptions as oe

        try:
            self.conn.compute.delete_server(vm_id, ignore_missing=True)
        except (oe.SDKException, ks.ClientException) as exc:
            raise openstack_error(exc, "deleting the server") from None

    def _list_owned(self) -> list[tuple[dict[str, str], str]]:
        from keystoneauth1 import exceptions as ks
        from openstack import exceptions as oe

        try:
            return [(dict(s.metadata), s.id) for s in self.conn.compute.servers(details=True)
                    if s.metadata and LABEL in s.metadata]
        except (oe.SDKException, ks.ClientException) as exc:
            raise openstack_error(exc, "listing servers") from None
