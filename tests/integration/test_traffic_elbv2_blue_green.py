# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A blue/green deployment behind an ELBv2 target group of the test pool's moto server, and its rollback.

Two Blue hosts serve 0.9.0 and are the target group's registered instances; two Green hosts stand by, each fleet
host standing for a running moto EC2 instance (its ``codedeploy_instance_id``). A thread watches the target group
through ``describe_target_health`` while the deployment runs; the test checks that timeline against the record.
With TERMINATE, the Blue EC2 instances are terminated in moto after the wait.
"""
from __future__ import annotations

import yaml

from support.deployments import APP_DESTINATION, deploy, local, make_revision, records, statuses
from test_traffic_elbv2 import (INSTALL_EVENTS, TARGET_GROUP, TargetGroupWatch, aws_option, epoch, events_of,
                                settling_revision, target_group, with_instance_ids)

ALL_AT_ONCE = "CodeDeployDefault.AllAtOnce"
ALLOW_EVENTS = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
BLOCK_EVENTS = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]


def registered(elbv2, arn: str) -> set[tuple[str, str]]:
    """(instance ID, health state) of every target registered in the group now."""
    return {(description["Target"]["Id"], description["TargetHealth"]["State"])
            for description in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}


def event_times(record: dict, name: str) -> list[tuple[float, float]]:
    """(start, end) in epoch seconds of the event ``name`` on every instance that ran it."""
    return [(epoch(event["start_time"]), epoch(event["end_time"])) for entry in record["instances"]
            for event in entry["lifecycle_events"] if event["lifecycle_event_name"] == name and event["start_time"]]


def blue_serving_behind_a_target_group(group, aws, tmp_path, ec2_kind: bool = False):
    """Half the hosts Blue (serving 0.9.0), half Green, each a running moto EC2 instance (``codedeploy_instance_id``,
    and ``codedeploy_instance_kind: ec2`` with ``ec2_kind``), an empty target group, and the groups' inventory."""
    half = len(group.hosts) // 2
    blue, green = group.hosts[:half], group.hosts[half:]
    ec2, elbv2, subnet, arn = target_group(aws)
    instance_of = dict(zip(group.hosts, (instance["InstanceId"] for instance in ec2.run_instances(
        ImageId="ami-12345678", MinCount=len(group.hosts), MaxCount=len(group.hosts), SubnetId=subnet)["Instances"])))
    view = with_instance_ids(group, instance_of, tmp_path / "elbv2-inventory.yml")
    if ec2_kind:
        inventory = yaml.safe_load(view.inventory.read_text())
        for host in group.hosts:
            inventory["all"]["children"]["fleet"]["hosts"][host]["codedeploy_instance_kind"] = "ec2"
        view.inventory.write_text(yaml.safe_dump(inventory))
    groups = tmp_path / "blue-green.ini"
    groups.write_text("[blue]\n" + "\n".join(blue) + "\n[green]\n" + "\n".join(green) + "\n")
    ledger = tmp_path / "ledger"
    first = deploy(view, ledger, local(make_revision(tmp_path / "v0.9", "0.9.0")), "-i", str(groups),
                   target_group="blue", deployment_config_name=ALL_AT_ONCE)
    assert first.rc == 0, first.output
    return view, blue, green, ec2, elbv2, arn, instance_of, groups, ledger


def test_blue_green_behind_a_target_group_cuts_over_and_the_rollback_cuts_back(fleet, aws, tmp_path):
    view, blue, green, ec2, elbv2, arn, instance_of, groups, ledger = blue_serving_behind_a_target_group(
        fleet(4), aws, tmp_path)
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance_of[host]} for host in blue])
    assert registered(elbv2, arn) == {(instance_of[host], "healthy") for host in blue}
    inputs = dict(target_group="blue", green_group="green", deployment_style={"deployment_type": "BLUE_GREEN"},
                  load_balancer_info={"target_groups": [TARGET_GROUP]}, aws=aws_option(aws),
                  deployment_config_name=ALL_AT_ONCE)
    revision = local(settling_revision(tmp_path / "v1"))

    with TargetGroupWatch(elbv2, arn) as watch:
        run = deploy(view, ledger, revision, "-i", str(groups), **inputs)
    assert run.rc == 0, run.output
    timeline = watch.samples
    assert len(timeline) > 20, timeline

    record = records(ledger)[-1]
    assert record["status"] == "Succeeded"
    assert record["deployment_style"] == {"deployment_type": "BLUE_GREEN", "deployment_option": "WITH_TRAFFIC_CONTROL"}
    assert {entry["instance_id"]: entry["instance_type"] for entry in record["instances"]} == {
        **{host: "Blue" for host in blue}, **{host: "Green" for host in green}}
    assert set(statuses(record).values()) == {"Succeeded"}
    assert [(wave["stage"], sorted(wave["instances"])) for wave in record["waves"]] == [
        ("install", green), ("reroute", green), ("block", blue)]

    last_allow = max(end for _start, end in event_times(record, "AllowTraffic"))
    first_block = min(start for start, _end in event_times(record, "BlockTraffic"))
    assert last_allow <= first_block
    for entry in record["instances"]:
        instance = instance_of[entry["instance_id"]]
        events = events_of(entry)
        if entry["instance_type"] == "Blue":
            assert list(events) == BLOCK_EVENTS
            assert (f"{instance} (target group {TARGET_GROUP}): healthy -> unregistered"
                    in events["BlockTraffic"]["diagnostics"]["message"])
            # Serving until the deployment blocked it, which happened once every Green instance served.
            before = [sample for sample in timeline if sample.answered <= epoch(events["BlockTraffic"]["start_time"])]
            assert before and all(sample.targets.get(instance) == "healthy" for sample in before), entry
            continue
        assert list(events) == INSTALL_EVENTS + ALLOW_EVENTS
        # ApplicationStop is Skipped on a host's first deployment (no earlier revision to stop).
        assert {event["status"] for event in events.values()} <= {"Succeeded", "Skipped"}
        assert (f"{instance} (target group {TARGET_GROUP}): unregistered -> healthy"
                in events["AllowTraffic"]["diagnostics"]["message"])
        ran = [events[name] for name in INSTALL_EVENTS if events[name]["status"] == "Succeeded"]
        installed_from, installed_to = epoch(ran[0]["start_time"]), epoch(ran[-1]["end_time"])
        assert installed_to <= epoch(events["AllowTraffic"]["start_time"])
        # Out of the group while it installed (the watch saw that) and until AllowTraffic registered it.
        out = [sample for sample in timeline if sample.answered <= epoch(events["AllowTraffic"]["start_time"])]
        assert any(sample.within(installed_from, installed_to) for sample in out), (entry["instance_id"], out)
        assert [sample for sample in out if instance in sample.targets] == [], entry["instance_id"]

    # Never an instant without a registered target: Blue left only once both Green instances were registered, and
    # the watch saw all four in the group at once in between.
    blue_ids, green_ids = {instance_of[host] for host in blue}, {instance_of[host] for host in green}
    assert all(sample.targets for sample in timeline), [sample for sample in timeline if not sample.targets]
    assert all(green_ids <= set(sample.targets) for sample in timeline if not blue_ids <= set(sample.targets))
    assert any(set(sample.targets) == blue_ids | green_ids for sample in timeline)
    assert registered(elbv2, arn) == {(instance, "healthy") for instance in green_ids}
    # Green serves the new revision; Blue, kept alive out of the group, still holds the old one.
    assert {host: view.path(host, f"{APP_DESTINATION}/VERSION").read_text() for host in view.hosts} == {
        **{host: "0.9.0\n" for host in blue}, **{host: "1.0.0\n" for host in green}}

    with TargetGroupWatch(elbv2, arn) as watch:
        back = deploy(view, ledger, revision, "-i", str(groups), playbook="fleetops.codedeploy.rollback", **inputs)
    assert back.rc == 0, back.output
    rollback = records(ledger)[-1]
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded")
    assert rollback["deployment_id"] != record["deployment_id"]
    assert {entry["instance_id"]: (entry["instance_type"], list(events_of(entry)), entry["status"])
            for entry in rollback["instances"]} == {
        **{host: ("Blue", ALLOW_EVENTS, "Succeeded") for host in blue},
        **{host: ("Green", BLOCK_EVENTS, "Succeeded") for host in green}}
    assert [(wave["stage"], sorted(wave["instances"])) for wave in rollback["waves"]] == [
        ("reroute_back", blue), ("block_replacement", green)]
    assert max(end for _start, end in event_times(rollback, "AllowTraffic")) <= min(
        start for start, _end in event_times(rollback, "BlockTraffic"))
    # Back on Blue: Green left only once both Blue instances were registered again; no install anywhere.
    assert watch.samples and all(sample.targets for sample in watch.samples)
    assert all(blue_ids <= set(sample.targets) for sample in watch.samples
               if not green_ids <= set(sample.targets))
    assert any(set(sample.targets) == blue_ids | green_ids for sample in watch.samples)
    assert registered(elbv2, arn) == {(instance, "healthy") for instance in blue_ids}
    assert {host: view.path(host, f"{APP_DESTINATION}/VERSION").read_text() for host in view.hosts} == {
        **{host: "0.9.0\n" for host in blue}, **{host: "1.0.0\n" for host in green}}


def test_terminate_stops_and_terminates_the_original_ec2_instances_after_the_wait(fleet, aws, tmp_path):
    view, blue, green, ec2, elbv2, arn, instance_of, groups, ledger = blue_serving_behind_a_target_group(
        fleet(2), aws, tmp_path, ec2_kind=True)
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance_of[host]} for host in blue])

    run = deploy(view, ledger, local(make_revision(tmp_path / "v1", "1.0.0")), "-i", str(groups),
                 target_group="blue", green_group="green", deployment_style={"deployment_type": "BLUE_GREEN"},
                 load_balancer_info={"target_groups": [TARGET_GROUP]}, aws=aws_option(aws),
                 blue_green_deployment_configuration={"terminate_blue_instances_on_deployment_success": {
                     "action": "TERMINATE", "termination_wait_time_in_minutes": 0.05}},
                 deployment_config_name=ALL_AT_ONCE)
    assert run.rc == 0, run.output

    record = records(ledger)[-1]
    assert record["status"] == "Succeeded"
    assert [wave["stage"] for wave in record["waves"]] == ["install", "reroute", "block", "terminate"]
    assert record["waves"][-1]["monitor_wait"]["seconds"] == 3
    assert record["blue_green"]["terminated_instances"] == [instance_of[blue[0]]]
    states = {instance["InstanceId"]: instance["State"]["Name"]
              for reservation in ec2.describe_instances(InstanceIds=list(instance_of.values()))["Reservations"]
              for instance in reservation["Instances"]}
    assert states[instance_of[blue[0]]] in ("shutting-down", "terminated")
    assert states[instance_of[green[0]]] == "running"
    assert registered(elbv2, arn) == {(instance_of[green[0]], "healthy")}
