# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""COPY_AUTO_SCALING_GROUP: the plan from a group's description, and the copy made in a moto server (server mode,
on a free loopback port, through the collection's client factory)."""
from __future__ import annotations

import socket

import pytest
from moto.server import ThreadedMotoServer

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.asg_copy import (
    AsgCopyError, copy_auto_scaling_group, copy_name, copy_refusal, copy_request, green_host, healthy_instances,
    plan_copy, wait_in_service)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import aws_client_from_options

ORIGINAL = {
    "AutoScalingGroupName": "web-asg",
    "LaunchTemplate": {"LaunchTemplateId": "lt-0123", "LaunchTemplateName": "web", "Version": "$Latest"},
    "VPCZoneIdentifier": "subnet-a,subnet-b",
    "AvailabilityZones": ["us-east-1a", "us-east-1b"],
    "HealthCheckType": "ELB",
    "HealthCheckGracePeriod": 120,
    "TargetGroupARNs": ["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1"],
    "Tags": [{"Key": "app", "Value": "web", "PropagateAtLaunch": True, "ResourceId": "web-asg"},
             {"Key": "aws:cloudformation:stack-name", "Value": "s", "PropagateAtLaunch": True}],
    "Instances": [
        {"InstanceId": "i-1", "LifecycleState": "InService", "HealthStatus": "Healthy"},
        {"InstanceId": "i-2", "LifecycleState": "InService", "HealthStatus": "Unhealthy"},
        {"InstanceId": "i-3", "LifecycleState": "Pending", "HealthStatus": "Healthy"},
        {"InstanceId": "i-4", "LifecycleState": "InService", "HealthStatus": "Healthy"},
    ],
}


@pytest.mark.parametrize("groups, message", [
    (["web-asg"], None),
    ([], "The deployment group has 0: set codedeploy_auto_scaling_groups"),
    (["a", "b"], "The deployment group has 2 (a, b): set codedeploy_auto_scaling_groups"),
])
def test_exactly_one_auto_scaling_group_is_copied(groups, message):
    refusal = copy_refusal(groups)
    if message is None:
        assert refusal is None
        return
    assert refusal.startswith("Exactly one AutoScaling group must be specified when selecting the "
                              "COPY_AUTO_SCALING_GROUP green fleet provisioning option.")
    assert message in refusal


def test_the_copy_is_named_after_the_group_and_the_deployment():
    assert copy_name("prod", "d-ABCDEFGH1") == "CodeDeploy_prod_d-ABCDEFGH1"


def test_the_copy_has_the_launch_template_subnets_and_as_many_instances_as_are_healthy():
    assert healthy_instances(ORIGINAL) == ["i-1", "i-4"]
    assert copy_request(ORIGINAL, "CodeDeploy_prod_d-1") == {
        "AutoScalingGroupName": "CodeDeploy_prod_d-1", "MinSize": 2, "MaxSize": 2, "DesiredCapacity": 2,
        "LaunchTemplate": {"LaunchTemplateId": "lt-0123", "Version": "$Latest"},
        "VPCZoneIdentifier": "subnet-a,subnet-b", "HealthCheckType": "ELB", "HealthCheckGracePeriod": 120,
        # Not in the target groups: the deployment registers the copy's instances when it reroutes traffic.
        "Tags": [{"Key": "app", "Value": "web", "PropagateAtLaunch": True, "ResourceId": "CodeDeploy_prod_d-1",
                  "ResourceType": "auto-scaling-group"}],
    }


def test_a_launch_configuration_and_zones_are_copied_when_there_is_no_template_nor_subnet():
    original = {"AutoScalingGroupName": "old", "LaunchConfigurationName": "old-lc", "VPCZoneIdentifier": "",
                "AvailabilityZones": ["us-east-1a"], "Instances": ORIGINAL["Instances"]}
    request = copy_request(original, "copy")
    assert (request["LaunchConfigurationName"], request["AvailabilityZones"]) == ("old-lc", ["us-east-1a"])
    assert "LaunchTemplate" not in request and "VPCZoneIdentifier" not in request


@pytest.mark.parametrize("change, message", [
    ({"Instances": []}, "has no InService and Healthy instance"),
    ({"LaunchTemplate": None}, "has no launch template, launch configuration or mixed instances policy"),
])
def test_a_group_that_cannot_be_copied_is_named(change, message):
    with pytest.raises(AsgCopyError, match=message) as raised:
        copy_request({**ORIGINAL, **change}, "copy")
    assert "'web-asg'" in raised.value.message


def test_a_replacement_instance_is_reached_at_its_private_address():
    assert green_host({"InstanceId": "i-9", "PrivateIpAddress": "10.0.1.7",
                       "Placement": {"AvailabilityZone": "us-east-1b"}}) == {
        "name": "i-9", "ansible_host": "10.0.1.7", "codedeploy_instance_id": "i-9", "codedeploy_instance_kind": "ec2",
        "codedeploy_availability_zone": "us-east-1b"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class PendingGroup:
    """An Auto Scaling client whose group never gets its instances InService."""

    def describe_auto_scaling_groups(self, AutoScalingGroupNames):  # pylint: disable=invalid-name
        return {"AutoScalingGroups": [{"AutoScalingGroupName": AutoScalingGroupNames[0], "Instances": [
            {"InstanceId": "i-7", "LifecycleState": "Pending"}]}]}


def test_the_wait_for_the_copy_is_bounded_and_says_what_it_saw():
    clock = Clock()
    with pytest.raises(AsgCopyError) as raised:
        wait_in_service(PendingGroup(), "copy", 1, 30, pause=5, clock=clock, sleep=clock.sleep)
    assert clock.now == 30
    assert raised.value.message.startswith(
        "The replacement Auto Scaling group 'copy' did not have 1 InService instance(s) within 30 s "
        "(last seen: i-7 Pending)")


@pytest.fixture(scope="module")
def moto_aws():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {"endpoint_url": f"http://127.0.0.1:{port}", "region": "us-east-1"}
    finally:
        server.stop()


@pytest.fixture
def clients(moto_aws, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return aws_client_from_options("autoscaling", moto_aws), aws_client_from_options("ec2", moto_aws)


def test_the_copy_is_created_and_its_instances_become_the_green_hosts(clients):
    autoscaling, ec2 = clients
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.2.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    template = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="web-asg", MinSize=3, MaxSize=5, DesiredCapacity=3,
                                          LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
                                          VPCZoneIdentifier=subnet)

    fleet = copy_auto_scaling_group(autoscaling, ec2, "web-asg", "CodeDeploy_prod_d-1", timeout=30, pause=0.1)

    copy = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet.auto_scaling_group])[
        "AutoScalingGroups"][0]
    assert (copy["MinSize"], copy["MaxSize"], copy["DesiredCapacity"]) == (3, 3, 3)
    assert (copy["LaunchTemplate"]["LaunchTemplateId"], copy["VPCZoneIdentifier"]) == (template, subnet)
    assert sorted(host["name"] for host in fleet.hosts) == sorted(
        instance["InstanceId"] for instance in copy["Instances"])
    assert all(host["ansible_host"].startswith("10.1.2.") and host["codedeploy_instance_kind"] == "ec2"
               for host in fleet.hosts)
    with pytest.raises(AsgCopyError, match="'gone' .* does not exist"):
        plan_copy(autoscaling, "gone", "copy")
