# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue/green COPY_AUTO_SCALING_GROUP: the replacement (Green) fleet as a copy of the deployment group's one Auto
Scaling group, as CodeDeploy provisions it.

The copy is named ``CodeDeploy_<deployment-group-name>_<deployment-id>``, launches from the original's launch
template (or launch configuration, or mixed instances policy) into the same subnets, and has as many instances
(minimum, maximum and desired) as the original has InService and Healthy. It is not attached to the original's
load balancers or target groups: its instances wait out of rotation until the deployment reroutes traffic to them.

Pure functions plan (:func:`copy_refusal`, :func:`copy_name`, :func:`copy_request`, :func:`green_host`);
:func:`plan_copy` reads the original, :func:`copy_auto_scaling_group` applies the plan with boto3 clients made by ``module_utils.aws`` and waits, bounded,
until the copy's instances are InService. Controller side only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError

COPY_AUTO_SCALING_GROUP = "COPY_AUTO_SCALING_GROUP"
# The service's InvalidBlueGreenDeploymentConfigurationException message, then how to fix it here.
MSG_EXACTLY_ONE = ("Exactly one AutoScaling group must be specified when selecting the COPY_AUTO_SCALING_GROUP "
                   "green fleet provisioning option. The deployment group has {count}{names}: set "
                   "codedeploy_auto_scaling_groups to the one group to copy.")
MSG_NO_LAUNCH_SOURCE = ("Auto Scaling group {name!r} has no launch template, launch configuration or mixed instances "
                        "policy to copy the replacement instances from.")
MSG_NO_HEALTHY = ("Auto Scaling group {name!r} has no InService and Healthy instance: a copy would have no "
                  "replacement instance (COPY_AUTO_SCALING_GROUP copies as many as the original has healthy).")
MSG_NOT_FOUND = "Auto Scaling group {name!r} (codedeploy_auto_scaling_groups) does not exist."
MSG_TIMEOUT = ("The replacement Auto Scaling group {name!r} did not have {wanted} InService instance(s) within "
               "{timeout:g} s (last seen: {seen}): it is left as it is; raise "
               "codedeploy_green_fleet_provisioning_timeout or look at its scaling activities.")
# AWS reserves tag keys starting with this prefix; the copy gets its own aws:autoscaling:groupName anyway.
RESERVED_TAG_PREFIX = "aws:"


class AsgCopyError(OperatorError):
    """Why the replacement fleet cannot be provisioned: one line naming the group and the fix."""


@dataclass(frozen=True)
class GreenFleet:
    """The copy and its instances, as the deployment adds them to the inventory."""

    auto_scaling_group: str
    hosts: list[dict[str, Any]]


def copy_refusal(auto_scaling_groups: Optional[list[str]]) -> Optional[str]:
    """The service's refusal when the deployment group does not list exactly one Auto Scaling group, else None."""
    groups = list(auto_scaling_groups or [])
    if len(groups) == 1:
        return None
    return MSG_EXACTLY_ONE.format(count=len(groups), names=f" ({', '.join(groups)})" if groups else "")


def copy_name(deployment_group_name: str, deployment_id: str) -> str:
    return f"CodeDeploy_{deployment_group_name}_{deployment_id}"


def healthy_instances(group: dict[str, Any]) -> list[str]:
    """Instance IDs of the group's InService and Healthy instances."""
    return [instance["InstanceId"] for instance in group.get("Instances") or []
            if instance.get("LifecycleState") == "InService" and instance.get("HealthStatus") == "Healthy"]


def in_service_instances(group: dict[str, Any]) -> list[str]:
    return [instance["InstanceId"] for instance in group.get("Instances") or []
            if instance.get("LifecycleState") == "InService"]


def copy_request(original: dict[str, Any], name: str) -> dict[str, Any]:
    """``CreateAutoScalingGroup`` arguments of the copy of ``original`` (a ``DescribeAutoScalingGroups`` entry)."""
    size = len(healthy_instances(original))
    if size == 0:
        raise AsgCopyError(MSG_NO_HEALTHY.format(name=original["AutoScalingGroupName"]))
    request: dict[str, Any] = {"AutoScalingGroupName": name, "MinSize": size, "MaxSize": size,
                               "DesiredCapacity": size}
    template = original.get("LaunchTemplate")
    if template:
        # One of ID or name may be given, not both; the ID survives a rename.
        request["LaunchTemplate"] = {key: template[key] for key in ("LaunchTemplateId", "Version") if template.get(key)}
    elif original.get("LaunchConfigurationName"):
        request["LaunchConfigurationName"] = original["LaunchConfigurationName"]
    elif original.get("MixedInstancesPolicy"):
        request["MixedInstancesPolicy"] = original["MixedInstancesPolicy"]
    else:
        raise AsgCopyError(MSG_NO_LAUNCH_SOURCE.format(name=original["AutoScalingGroupName"]))
    if original.get("VPCZoneIdentifier"):
        request["VPCZoneIdentifier"] = original["VPCZoneIdentifier"]
    else:
        request["AvailabilityZones"] = list(original.get("AvailabilityZones") or [])
    for key in ("HealthCheckType", "HealthCheckGracePeriod"):
        if original.get(key) is not None:
            request[key] = original[key]
    tags = [{"Key": tag["Key"], "Value": tag.get("Value", ""), "PropagateAtLaunch": bool(tag.get("PropagateAtLaunch")),
             "ResourceId": name, "ResourceType": "auto-scaling-group"}
            for tag in original.get("Tags") or [] if not tag["Key"].startswith(RESERVED_TAG_PREFIX)]
    if tags:
        request["Tags"] = tags
    return request


def green_host(instance: dict[str, Any]) -> dict[str, Any]:
    """The inventory entry of one replacement instance (a ``DescribeInstances`` entry): named by its instance ID,
    reached at its private address, as the inventory plugin names an EC2 instance without a preferred name."""
    host = {"name": instance["InstanceId"], "codedeploy_instance_id": instance["InstanceId"],
            "codedeploy_instance_kind": "ec2"}
    if instance.get("PrivateIpAddress"):
        host["ansible_host"] = instance["PrivateIpAddress"]
    zone = (instance.get("Placement") or {}).get("AvailabilityZone")
    if zone:
        host["codedeploy_availability_zone"] = zone
    return host


def describe_group(autoscaling: Any, name: str) -> Optional[dict[str, Any]]:
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return found[0] if found else None


def wait_in_service(autoscaling: Any, name: str, wanted: int, timeout: float, pause: float = 2.0,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Instance IDs of the group once ``wanted`` of its instances are InService; AsgCopyError after ``timeout``."""
    deadline = clock() + timeout
    while True:
        group = describe_group(autoscaling, name) or {}
        ready = in_service_instances(group)
        if len(ready) >= wanted:
            return sorted(ready)
        if clock() >= deadline:
            seen = ", ".join(f"{instance['InstanceId']} {instance.get('LifecycleState')}"
                             for instance in group.get("Instances") or []) or "no instance"
            raise AsgCopyError(MSG_TIMEOUT.format(name=name, wanted=wanted, timeout=timeout, seen=seen))
        sleep(pause)


def plan_copy(autoscaling: Any, original_name: str, name: str) -> dict[str, Any]:
    """The ``CreateAutoScalingGroup`` arguments of the copy, from the original as it is now (nothing changed)."""
    original = describe_group(autoscaling, original_name)
    if original is None:
        raise AsgCopyError(MSG_NOT_FOUND.format(name=original_name))
    return copy_request(original, name)


def copy_auto_scaling_group(autoscaling: Any, ec2: Any, original_name: str, name: str, timeout: float,
                            pause: float = 2.0) -> GreenFleet:
    """Create the copy of ``original_name`` called ``name``, wait until its instances are InService, and return
    them as inventory entries. AWS errors propagate (the caller names the call)."""
    request = plan_copy(autoscaling, original_name, name)
    autoscaling.create_auto_scaling_group(**request)
    ids = wait_in_service(autoscaling, name, request["DesiredCapacity"], timeout, pause)
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    hosts = sorted((green_host(instance) for reservation in reservations for instance in reservation["Instances"]),
                   key=lambda host: host["name"])
    return GreenFleet(name, hosts)
