"""Run on an AWS EC2 instance (boto3): the instance's cloud-init runs the shared run agent.

The instance terminates itself when the agent powers off (InstanceInitiatedShutdownBehavior), and
the instance and its volumes carry LABEL so the reconciler can find whatever a crash left behind.
"""

from __future__ import annotations

from .base import LABEL, RunRequest, TargetError, register
from .vm import CloudVmTarget, VmState

USER_DATA_LIMIT = 16 * 1024
_AUTH = {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
         "UnauthorizedOperation", "OptInRequired", "ExpiredToken", "InvalidAccessKeyId"}
_QUOTA = {"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded",
          "InsufficientInstanceCapacity"}
_STATES = {"pending": VmState.PENDING, "running": VmState.RUNNING, "stopping": VmState.STOPPED,
           "stopped": VmState.STOPPED, "shutting-down": VmState.STOPPED, "terminated": VmState.STOPPED}


def aws_error(exc: Exception, doing: str) -> TargetError:
    """A botocore ClientError as a TargetError a person can act on."""
    err = getattr(exc, "response", {}).get("Error", {})
    code, message = err.get("Code", ""), err.get("Message", str(exc))
    if code in _AUTH:
        return TargetError(f"AWS rejected the credentials while {doing} ({code}): check the access key, "
                           f"secret and the IAM permissions for EC2")
    if code in _QUOTA:
        return TargetError(f"AWS quota exceeded while {doing} ({code}: {message}); raise the EC2 limit or "
                           f"pick a smaller instance type")
    return TargetError(f"AWS error while {doing}: {code or type(exc).__name__}: {message}")


@register("aws")
class AwsTarget(CloudVmTarget):
    """Options: ``image_id`` (AMI with python3 and podman/docker or cloud-init package access),
    ``instance_type``, ``subnet_id``, ``security_group_ids``, ``key_name``, ``insecure_registry``."""

    def __init__(self, settings=None, *, credentials: dict, options: dict | None = None, store=None,
                 installation: str = "", **_) -> None:
        super().__init__(settings, store=store, options=options, installation=installation)
        import boto3

        missing = {"access_key_id", "secret_access_key", "region"} - credentials.keys()
        if missing:
            raise TargetError(f"AWS credentials lack {', '.join(sorted(missing))}")
        self.ec2 = boto3.client("ec2", region_name=credentials["region"],
                                aws_access_key_id=credentials["access_key_id"],
                                aws_secret_access_key=credentials["secret_access_key"],
                                endpoint_url=credentials.get("endpoint_url"))
        self._client_error = self.ec2.exceptions.ClientError

    def _create(self, request: RunRequest, user_data: str) -> str:
        if "image_id" not in self.options:
            raise TargetError("the aws target needs options.image_id (an AMI)")
        if len(user_data.encode()) > USER_DATA_LIMIT:
            raise TargetError(f"the run's user-data is {len(user_data)} bytes, over EC2's 16 KiB limit")
        tags = [{"Key": k, "Value": v} for k, v in self.tags(request.run_id).items()]
        tags.append({"Key": "Name", "Value": f"reprolab-{request.run_id}"})
        kwargs = {
            "ImageId": self.options["image_id"], "InstanceType": self.options.get("instance_type", "t3.small"),
            "MinCount": 1, "MaxCount": 1, "UserData": user_data,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "ClientToken": request.run_id[:64],  # a retried submit does not boot a second instance
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags},
                                  {"ResourceType": "volume", "Tags": tags}],
            "MetadataOptions": {"HttpTokens": "required"},
        }
        if self.options.get("subnet_id"):
            kwargs["SubnetId"] = self.options["subnet_id"]
        if self.options.get("security_group_ids"):
            kwargs["SecurityGroupIds"] = list(self.options["security_group_ids"])
        if self.options.get("key_name"):
            kwargs["KeyName"] = self.options["key_name"]
        try:
            return self.ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"]
        except self._client_error as exc:
            raise aws_error(exc, "starting the instance") from None

    def _vm_state(self, vm_id: str) -> tuple[str, str]:
        try:
            found = self.ec2.describe_instances(InstanceIds=[vm_id])["Reservations"]
        except self._client_error as exc:
            if exc.response["Error"]["Code"] == "InvalidInstanceID.NotFound":
                return VmState.GONE, "not found"
            raise aws_error(exc, "reading the instance state") from None
        if not found or not found[0]["Instances"]:
            return VmState.GONE, "not found"
        inst = found[0]["Instances"][0]
        name = inst["State"]["Name"]
        reason = (inst.get("StateReason") or {}).get("Message") or inst.get("StateTransitionReason") or ""
        return _STATES.get(name, VmState.FAILED), f"state {name}" + (f": {reason}" if reason else "")

    def _delete(self, vm_id: str) -> None:
        try:
            self.ec2.terminate_instances(InstanceIds=[vm_id])
        except self._client_error as exc:
            if exc.response["Error"]["Code"] != "InvalidInstanceID.NotFound":
                raise aws_error(exc, "terminating the instance") from None

    def _list_owned(self) -> list[tuple[dict[str, str], str]]:
        live = ["pending", "running", "stopping", "stopped", "shutting-down"]
        out = []
        try:
            pages = self.ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "tag-key", "Values": [LABEL]}, {"Name": "instance-state-name", "Values": live}])
            for page in pages:
                for res in page["Reservations"]:
                    for inst in res["Instances"]:
                        out.append(({t["Key"]: t["Value"] for t in inst.get("Tags", [])}, inst["InstanceId"]))
        except self._client_error as exc:
            raise aws_error(exc, "listing instances") from None
        return out
