"""Run on an Azure VM (azure-identity + azure-mgmt-compute/-network): a NIC on a given subnet and
a Linux VM whose custom data is the shared cloud-init user-data.

The NIC and OS disk are created with ``deleteOption: Delete`` so deleting the VM takes them along;
cleanup still deletes them by name in case the VM never came to exist. Every resource carries
the LABEL tag.
"""

from __future__ import annotations

import base64
import re
import secrets

from .base import LABEL, RunRequest, TargetError, register
from .vm import CloudVmTarget, VmState

_POWER = {"starting": VmState.PENDING, "running": VmState.RUNNING, "stopping": VmState.STOPPED,
          "stopped": VmState.STOPPED, "deallocating": VmState.STOPPED, "deallocated": VmState.STOPPED}
_QUOTA = {"QuotaExceeded", "OperationNotAllowed", "SkuNotAvailable", "ZonalAllocationFailed",
          "AllocationFailed"}
DEFAULT_IMAGE = {"publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"}


def vm_name(run_id: str) -> str:
    """Azure Linux VM names: 1-64 of letters, digits, hyphens."""
    return ("rl-" + re.sub(r"[^A-Za-z0-9-]", "-", run_id))[:64].rstrip("-")


def azure_error(exc: Exception, doing: str) -> TargetError:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    if isinstance(exc, ClientAuthenticationError):
        return TargetError(f"Azure rejected the credentials while {doing}: check the tenant, client id, "
                           f"client secret and the service principal's role on the resource group")
    if isinstance(exc, HttpResponseError):
        code = getattr(exc.error, "code", None) or ""
        message = getattr(exc.error, "message", None) or str(exc)
        if exc.status_code in (401, 403) and code not in _QUOTA:
            return TargetError(f"Azure rejected the credentials while {doing} ({code}): {message}")
        if code in _QUOTA and ("quota" in message.lower() or code == "QuotaExceeded"):
            return TargetError(f"Azure quota exceeded while {doing} ({code}): {message}")
        return TargetError(f"Azure error while {doing}: {code or exc.status_code}: {message}")
    return TargetError(f"Azure error while {doing}: {exc}")


@register("azure")
class AzureTarget(CloudVmTarget):
    """Options: ``subnet_id`` (required), ``vm_size``, ``image`` (publisher/offer/sku/version),
    ``ssh_public_key``, ``insecure_registry``.

    Credentials: tenant_id, client_id, client_secret, subscription_id, resource_group, location;
    for a private cloud or a fake: ``authority_host``, ``arm_endpoint``, ``ca_bundle``.
    """

    def __init__(self, settings=None, *, credentials: dict, options: dict | None = None, store=None,
                 installation: str = "", **_) -> None:
        super().__init__(settings, store=store, options=options, installation=installation)
        from azure.identity import ClientSecretCredential
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.network import NetworkManagementClient

        need = {"tenant_id", "client_id", "client_secret", "subscription_id", "resource_group", "location"}
        if missing := need - credentials.keys():
            raise TargetError(f"Azure credentials lack {', '.join(sorted(missing))}")
        self.rg, self.location = credentials["resource_group"], credentials["location"]
        transport = {"connection_verify": credentials["ca_bundle"]} if credentials.get("ca_bundle") else {}
        cred_kwargs = dict(transport)
        if credentials.get("authority_host"):
            cred_kwargs |= {"authority": credentials["authority_host"], "disable_instance_discovery": True}
        self.credential = ClientSecretCredential(credentials["tenant_id"], credentials["client_id"],
                                                 credentials["client_secret"], **cred_kwargs)
        arm = {}
        if credentials.get("arm_endpoint"):
            arm = {"base_url": credentials["arm_endpoint"],
                   "credential_scopes": [credentials["arm_endpoint"].rstrip("/") + "/.default"]}
        self.compute = ComputeManagementClient(self.credential, credentials["subscription_id"], **arm, **transport)
        self.network = NetworkManagementClient(self.credential, credentials["subscription_id"], **arm, **transport)

    def _create(self, request: RunRequest, user_data: str) -> str:
        from azure.core.exceptions import AzureError

        if not self.options.get("subnet_id"):
            raise TargetError("the azure target needs options.subnet_id (an existing VNet subnet)")
        from azure.mgmt.compute import models as cm
        from azure.mgmt.network import models as nm

        name = vm_name(request.run_id)
        tags = self.tags(request.run_id)
        key = self.options.get("ssh_public_key")
        linux = cm.LinuxConfiguration(
            disable_password_authentication=bool(key),
            ssh=cm.SshConfiguration(public_keys=[cm.SshPublicKey(path="/home/reprolab/.ssh/authorized_keys",
                                                                 key_data=key)]) if key else None)
        os_profile = cm.OSProfile(
            computer_name=name, admin_username="reprolab", linux_configuration=linux,
            custom_data=base64.b64encode(user_data.encode()).decode(),
            # Azure insists on some login; a random password nobody keeps is none.
            admin_password=None if key else secrets.token_urlsafe(24) + "aA1!")
        image = cm.ImageReference(**self.options.get("image", DEFAULT_IMAGE))
        try:
            nic = self.network.network_interfaces.begin_create_or_update(self.rg, f"{name}-nic", nm.NetworkInterface(
                location=self.location, tags=tags,
                ip_configurations=[nm.NetworkInterfaceIPConfiguration(
                    name="ipconfig1", subnet=nm.Subnet(id=self.options["subnet_id"]),
                    private_ip_allocation_method="Dynamic")])).result()
            self.compute.virtual_machines.begin_create_or_update(self.rg, name, cm.VirtualMachine(
                location=self.location, tags=tags,
                hardware_profile=cm.HardwareProfile(vm_size=self.options.get("vm_size", "Standard_B2s")),
                storage_profile=cm.StorageProfile(image_reference=image, os_disk=cm.OSDisk(
                    name=f"{name}-osdisk", create_option="FromImage", delete_option="Delete",
                    managed_disk=cm.ManagedDiskParameters(storage_account_type="StandardSSD_LRS"))),
                os_profile=os_profile,
                network_profile=cm.NetworkProfile(network_interfaces=[cm.NetworkInterfaceReference(
                    id=nic.id, primary=True, delete_option="Delete")]))).result()
        except AzureError as exc:
            self._delete(name)
            raise azure_error(exc, "creating the VM") from None
        return name

    def _vm_state(self, vm_id: str) -> tuple[str, str]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            view = self.compute.virtual_machines.instance_view(self.rg, vm_id)
        except ResourceNotFoundError:
            return VmState.GONE, "not found"
        except AzureError as exc:
            raise azure_error(exc, "reading the VM state") from None
        codes = [s.code or "" for s in view.statuses or []]
        if any(c.lower() == "provisioningstate/failed" for c in codes):
            detail = next((s.message or s.display_status for s in view.statuses
                           if (s.code or "").lower().startswith("provisioningstate/")), "")
            return VmState.FAILED, f"provisioning failed: {detail}"
        power = next((c.split("/", 1)[1] for c in codes if c.startswith("PowerState/")), "starting")
        return _POWER.get(power, VmState.PENDING), f"power state {power}"

    def _delete(self, vm_id: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        steps = [lambda: self.compute.virtual_machines.begin_delete(self.rg, vm_id),
                 lambda: self.network.network_interfaces.begin_delete(self.rg, f"{vm_id}-nic"),
                 lambda: self.compute.disks.begin_delete(self.rg, f"{vm_id}-osdisk")]
        for step in steps:
            try:
                step().result()
            except ResourceNotFoundError:
                pass
            except AzureError as exc:
                raise azure_error(exc, "deleting the VM") from None

    def _list_owned(self) -> list[tuple[dict[str, str], str]]:
        from azure.core.exceptions import AzureError

        try:
            return [(dict(vm.tags), vm.name) for vm in self.compute.virtual_machines.list(self.rg)
                    if vm.tags and LABEL in vm.tags]
        except AzureError as exc:
            raise azure_error(exc, "listing VMs") from None
