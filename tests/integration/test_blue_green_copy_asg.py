# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue/green COPY_AUTO_SCALING_GROUP against the test pool's moto server.

The deployment group's Auto Scaling group ``web-asg`` launches from a launch template into one subnet; the Blue
fleet hosts stand for its healthy instances (their ``codedeploy_instance_id``) and are the target group's
registered targets. The deployment copies the group. In a subnet of made-up addresses, no SSH reaches moto's new
instances: the deployment fails at the install stage with its Green instances unreachable, and moves no traffic.
In a subnet of the fleet's own loopback addresses, the copy's instances get the addresses of fleet hosts, which
then stand for them: the deployment installs there, waits in Ready, and another run (the continue or the stop
playbook) finds them again from the record.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import NamedTuple

import boto3

from support.deployments import APP_DESTINATION, addresses, deploy, local, make_revision, records, statuses
from test_traffic_elbv2 import TARGET_GROUP, aws_option, target_group, with_instance_ids
from test_traffic_elbv2_blue_green import registered

ALL_AT_ONCE = "CodeDeployDefault.AllAtOnce"
COPY = {"green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"}}


def auto_scaling_group(aws, subnet: str, size: int) -> tuple:
    """``web-asg`` with ``size`` instances from the launch template ``web``: the autoscaling client, the template's
    ID and the instance IDs."""
    session = dict(endpoint_url=aws["endpoint_url"], region_name="us-east-1", aws_access_key_id="testing",
                   aws_secret_access_key="testing")
    autoscaling, ec2 = boto3.client("autoscaling", **session), boto3.client("ec2", **session)
    template = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="web-asg", MinSize=size, MaxSize=size + 2,
                                          DesiredCapacity=size, VPCZoneIdentifier=subnet,
                                          LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"})
    instances = [instance["InstanceId"] for instance in autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]["Instances"]]
    return autoscaling, template, sorted(instances)


def blue_green_inputs(aws, auto_scaling_groups: list) -> dict:
    return dict(deployment_style={"deployment_type": "BLUE_GREEN"}, load_balancer_info={"target_groups": [TARGET_GROUP]},
                aws=aws_option(aws), auto_scaling_groups=auto_scaling_groups,
                blue_green_deployment_configuration=COPY, deployment_config_name=ALL_AT_ONCE)


def auto_scaling_group_names(autoscaling) -> list[str]:
    return sorted(group["AutoScalingGroupName"] for group in autoscaling.describe_auto_scaling_groups()[
        "AutoScalingGroups"])


def test_the_green_fleet_is_a_copy_of_the_groups_auto_scaling_group(fleet, aws, tmp_path):
    group = fleet(2)
    ec2, elbv2, subnet, arn = target_group(aws)
    autoscaling, template, instances = auto_scaling_group(aws, subnet, 3)
    # One of the three is unhealthy: the copy gets the two healthy ones' worth, and they are the Blue hosts.
    autoscaling.set_instance_health(InstanceId=instances[2], HealthStatus="Unhealthy")
    instance_of = dict(zip(group.hosts, instances[:2]))
    view = with_instance_ids(group, instance_of, tmp_path / "inventory.yml")
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance} for instance in instances[:2]])
    ledger = tmp_path / "ledger"

    run = deploy(view, ledger, local(make_revision(tmp_path / "v1", "1.0.0")), **blue_green_inputs(aws, ["web-asg"]))

    assert run.rc != 0, run.output
    record = records(ledger)[-1]
    copy_name = f"CodeDeploy_prod_{record['deployment_id']}"
    assert record["blue_green"]["green_auto_scaling_group"] == copy_name
    copy = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[copy_name])["AutoScalingGroups"][0]
    assert (copy["MinSize"], copy["MaxSize"], copy["DesiredCapacity"], len(copy["Instances"])) == (2, 2, 2, 2)
    assert (copy["LaunchTemplate"]["LaunchTemplateId"], copy["VPCZoneIdentifier"]) == (template, subnet)
    green = sorted(instance["InstanceId"] for instance in copy["Instances"])
    assert not set(green) & set(instances)
    # Reached (tried) at their private addresses, as the Blue hosts are reached.
    addresses = {instance["InstanceId"]: instance["PrivateIpAddress"] for reservation in ec2.describe_instances(
        InstanceIds=green)["Reservations"] for instance in reservation["Instances"]}
    assert {host["name"]: host["ansible_host"] for host in record["blue_green"]["green_hosts"]} == addresses
    assert {entry["instance_id"]: entry["instance_type"] for entry in record["instances"]} == {
        **{host: "Blue" for host in group.hosts}, **{instance: "Green" for instance in green}}

    # The copy's instances were unreachable: the install stage failed there, and nothing went further.
    assert record["status"] == "Failed"
    assert [wave["stage"] for wave in record["waves"]] == ["install"]
    for entry in record["instances"]:
        if entry["instance_type"] == "Green":
            assert entry["status"] == "Failed"
            failed = [event for event in entry["lifecycle_events"] if event["status"] == "Failed"]
            assert failed and failed[0]["diagnostics"]["message"].startswith(
                "The instance could not be reached"), entry
        else:
            assert entry["status"] in ("Pending", "Skipped"), entry
    # No traffic moved: the target group still lists only the Blue instances.
    assert registered(elbv2, arn) == {(instance, "healthy") for instance in instances[:2]}


def test_copy_auto_scaling_group_needs_exactly_one_auto_scaling_group(fleet, aws, tmp_path):
    group = fleet(1)
    _ec2, elbv2, subnet, arn = target_group(aws)
    autoscaling, _template, instances = auto_scaling_group(aws, subnet, 1)
    view = with_instance_ids(group, {group.hosts[0]: instances[0]}, tmp_path / "inventory.yml")
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instances[0]}])
    ledger = tmp_path / "ledger"

    run = deploy(view, ledger, local(make_revision(tmp_path / "v1", "1.0.0")),
                 **blue_green_inputs(aws, ["web-asg", "api-asg"]))

    assert run.rc != 0
    assert ("Exactly one AutoScaling group must be specified when selecting the COPY_AUTO_SCALING_GROUP green "
            "fleet provisioning option. The deployment group has 2 (web-asg, api-asg)") in run.output, run.output
    assert records(ledger) == []
    assert auto_scaling_group_names(autoscaling) == ["web-asg"]
    assert registered(elbv2, arn) == {(instances[0], "healthy")}


READY_WAIT = {"deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT", "wait_time_in_minutes": 30}}


class CopyOntoFleet(NamedTuple):
    """What ``copy_onto_fleet_hosts`` made."""
    view: object  # the fleet view, its inventory giving the Blue hosts their instance IDs
    blue: list  # the Blue hosts, standing for web-asg's instances
    green_addresses: list  # the fleet hosts' addresses the copy's instances get
    autoscaling: object
    elbv2: object
    arn: str  # the target group's
    originals: list  # web-asg's instance IDs
    ledger: Path
    groups: Path  # the inventory of groups: blue, and green (empty)


def copy_onto_fleet_hosts(fleet, aws, tmp_path) -> CopyOntoFleet:
    """``web-asg`` with two instances, Blue: the first two fleet hosts stand for them, serving revision 1.0.0 and
    registered in the target group. Its subnet is the fleet's own /24, its next free addresses those of the next two
    fleet hosts, so that a copy's two instances are reached there."""
    group = fleet(4)
    blue = group.hosts[:2]
    green_addresses = [addresses(group)[host] for host in group.hosts[2:]]
    session = dict(endpoint_url=aws["endpoint_url"], region_name="us-east-1", aws_access_key_id="testing",
                   aws_secret_access_key="testing")
    ec2, elbv2 = boto3.client("ec2", **session), boto3.client("elbv2", **session)
    network = ipaddress.ip_network(f"{green_addresses[0]}/24", strict=False)
    vpc = ec2.create_vpc(CidrBlock=str(network.supernet(new_prefix=16)))["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=str(network))["Subnet"]["SubnetId"]
    arn = elbv2.create_target_group(Name=TARGET_GROUP, Protocol="HTTP", Port=80, VpcId=vpc,
                                    TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    autoscaling, _template, originals = auto_scaling_group(aws, subnet, 2)
    # moto gives a subnet's addresses in order: take those below the first Green host's.
    taken = {instance["PrivateIpAddress"] for reservation in ec2.describe_instances(
        InstanceIds=originals)["Reservations"] for instance in reservation["Instances"]}
    below = int(ipaddress.ip_address(green_addresses[0])) - int(max(map(ipaddress.ip_address, taken))) - 1
    assert below >= 0, (taken, green_addresses)
    if below:
        ec2.run_instances(ImageId="ami-12345678", MinCount=below, MaxCount=below, SubnetId=subnet)
    view = with_instance_ids(group, dict(zip(blue, originals)), tmp_path / "inventory.yml")
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance} for instance in originals])
    groups = tmp_path / "blue-green.ini"
    groups.write_text("[blue]\n" + "\n".join(blue) + "\n[green]\n")
    ledger = tmp_path / "ledger"
    first = deploy(view, ledger, local(make_revision(tmp_path / "v1", "1.0.0")), "-i", str(groups),
                   target_group="blue", deployment_config_name=ALL_AT_ONCE)
    assert first.rc == 0, first.output
    return CopyOntoFleet(view, blue, green_addresses, autoscaling, elbv2, arn, originals, ledger, groups)


def ready_copy(made: CopyOntoFleet, aws, tmp_path) -> tuple[dict, dict]:
    """Deploy revision 2.0.0 to a copy of ``web-asg`` and wait in Ready: the deployment's inputs and its record."""
    inputs = {**blue_green_inputs(aws, ["web-asg"]), "target_group": "blue",
              "blue_green_deployment_configuration": {**COPY, **READY_WAIT}}
    run = deploy(made.view, made.ledger, local(make_revision(tmp_path / "v2", "2.0.0")), "-i", str(made.groups),
                 **inputs)
    assert run.rc == 0, run.output
    record = records(made.ledger)[-1]
    assert record["status"] == "Ready", run.output
    return inputs, record


def test_a_copy_reached_installs_waits_in_ready_and_a_continue_moves_the_traffic_to_it(fleet, aws, tmp_path):
    made = copy_onto_fleet_hosts(fleet, aws, tmp_path)
    inputs, ready = ready_copy(made, aws, tmp_path)
    green = {host["name"]: host["ansible_host"] for host in ready["blue_green"]["green_hosts"]}
    assert sorted(green.values()) == made.green_addresses, green
    assert registered(made.elbv2, made.arn) == {(instance, "healthy") for instance in made.originals}
    for host in made.view.hosts[2:]:
        assert made.view.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "2.0.0\n"

    # The continue is another run: it finds the copy's instances in the record.
    run = deploy(made.view, made.ledger, None, "-i", str(made.groups), playbook="fleetops.codedeploy.continue",
                 **inputs)

    assert run.rc == 0, run.output
    record = records(made.ledger)[-1]
    assert record["deployment_id"] == ready["deployment_id"] and record["status"] == "Succeeded", run.output
    assert statuses(record) == {**{host: "Succeeded" for host in made.blue}, **{name: "Succeeded" for name in green}}
    assert registered(made.elbv2, made.arn) == {(instance, "healthy") for instance in green}


def test_a_copy_waiting_in_ready_stopped_with_a_rollback_leaves_the_traffic_on_blue(fleet, aws, tmp_path):
    made = copy_onto_fleet_hosts(fleet, aws, tmp_path)
    inputs, ready = ready_copy(made, aws, tmp_path)
    green = [host["name"] for host in ready["blue_green"]["green_hosts"]]

    run = deploy(made.view, made.ledger, None, "-i", str(made.groups), playbook="fleetops.codedeploy.stop",
                 stop_rollback=True, **inputs)

    assert run.rc == 0, run.output
    stopped, rollback = records(made.ledger)[-2:]
    assert (stopped["deployment_id"], stopped["status"]) == (ready["deployment_id"], "Stopped"), run.output
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded"), run.output
    # The rollback reached the copy's instances (added from the record): each blocked, out of the target group.
    assert [(wave["stage"], sorted(wave["instances"])) for wave in rollback["waves"]] == [
        ("reroute_back", sorted(made.blue)), ("block_replacement", sorted(green))]
    assert statuses(rollback) == {name: "Succeeded" for name in [*made.blue, *green]}
    assert registered(made.elbv2, made.arn) == {(instance, "healthy") for instance in made.originals}
    # The copy stays as it is, for the operator to delete.
    assert ready["blue_green"]["green_auto_scaling_group"] in auto_scaling_group_names(made.autoscaling)
