# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-place deployments behind ELBv2 target groups of the test pool's moto server.

Each fleet host stands for a running moto EC2 instance (its host var ``codedeploy_instance_id``) registered in
the target group ``webapp-tg``. While the deployment runs, a thread watches the group through
``describe_target_health``; the test checks that timeline against the deployment record.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import yaml

from support.deployments import (APPSPEC, REPORT_CALLBACK, active_locks, deploy, deployment_vars, fleet_digest, hold,
                                 local, make_revision, records, start_in_background, statuses, wait_for_a_wave)
from support.revisions import write_tree

TARGET_GROUP = "webapp-tg"
HALF_AT_A_TIME = "CodeDeployDefault.HalfAtATime"
INSTALL_EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
                  "ApplicationStart", "ValidateService"]
TRAFFIC_EVENTS = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", *INSTALL_EVENTS,
                  "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]


@dataclass(frozen=True)
class Sample:
    """One describe_target_health answer: asked after ``asked``, answered before ``answered`` (epoch seconds)."""

    asked: float
    answered: float
    targets: dict[str, str]  # registered instance ID -> its health state

    def within(self, start: float, end: float) -> bool:
        return start <= self.asked and self.answered <= end


class TargetGroupWatch(threading.Thread):
    """Polls one target group's registered targets every ``pause`` seconds until stopped."""

    def __init__(self, client, arn: str, pause: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.client, self.arn, self.pause = client, arn, pause
        self.samples: list[Sample] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            asked = time.time()
            descriptions = self.client.describe_target_health(TargetGroupArn=self.arn)["TargetHealthDescriptions"]
            self.samples.append(Sample(asked, time.time(), {
                description["Target"]["Id"]: description["TargetHealth"]["State"] for description in descriptions}))
            self.stopping.wait(self.pause)

    def __enter__(self) -> "TargetGroupWatch":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.join(timeout=10)


def settling_revision(root: Path) -> Path:
    """The test revision with an AfterInstall hook that takes a while, so that the watch sees the install."""
    appspec = APPSPEC.replace("  ApplicationStart:",
                              "  AfterInstall:\n    - location: scripts/settle.sh\n  ApplicationStart:")
    assert appspec != APPSPEC
    return write_tree(make_revision(root, "1.0.0", appspec=appspec), {"scripts/settle.sh": "#!/bin/sh\nsleep 0.6\n"})


def target_group(aws) -> tuple:
    """A moto VPC with one subnet and an empty target group ``webapp-tg`` (port 80): ec2 and elbv2 clients,
    the subnet ID and the group's ARN."""
    session = dict(endpoint_url=aws["endpoint_url"], region_name="us-east-1", aws_access_key_id="testing",
                   aws_secret_access_key="testing")
    ec2, elbv2 = boto3.client("ec2", **session), boto3.client("elbv2", **session)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    arn = elbv2.create_target_group(Name=TARGET_GROUP, Protocol="HTTP", Port=80, VpcId=vpc,
                                    TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    return ec2, elbv2, subnet, arn


def with_instance_ids(group, instance_ids: dict[str, str], path: Path):
    """The FleetView with an inventory of its own that gives each host its ``codedeploy_instance_id``."""
    inventory = yaml.safe_load(group.inventory.read_text())
    for host, instance_id in instance_ids.items():
        inventory["all"]["children"]["fleet"]["hosts"][host]["codedeploy_instance_id"] = instance_id
    path.write_text(yaml.safe_dump(inventory))
    return dataclasses.replace(group, inventory=path)


def aws_option(aws) -> dict[str, str]:
    return {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}


def epoch(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def events_of(entry: dict) -> dict[str, dict]:
    return {event["lifecycle_event_name"]: event for event in entry["lifecycle_events"]}


def test_half_at_a_time_leaves_the_target_group_one_half_at_a_time(fleet, aws, tmp_path):
    group = fleet(4)
    ec2, elbv2, subnet, arn = target_group(aws)
    instances = [instance["InstanceId"] for instance in ec2.run_instances(
        ImageId="ami-12345678", MinCount=4, MaxCount=4, SubnetId=subnet)["Instances"]]
    instance_of = dict(zip(group.hosts, instances))
    view = with_instance_ids(group, instance_of, tmp_path / "elbv2-inventory.yml")
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance} for instance in instances])
    ledger = tmp_path / "ledger"

    with TargetGroupWatch(elbv2, arn) as watch:
        run = deploy(view, ledger, local(settling_revision(tmp_path / "v1")), deployment_config_name=HALF_AT_A_TIME,
                     load_balancer_info={"target_groups": [TARGET_GROUP]}, aws=aws_option(aws))
    assert run.rc == 0, run.output

    record = records(ledger)[-1]
    assert record["status"] == "Succeeded"
    assert record["deployment_style"]["deployment_option"] == "WITH_TRAFFIC_CONTROL"
    assert set(statuses(record).values()) == {"Succeeded"}
    assert [len(wave["instances"]) for wave in record["waves"]] == [2, 2]
    timeline = watch.samples
    assert len(timeline) > 20, timeline

    for entry in record["instances"]:
        instance = instance_of[entry["instance_id"]]
        events = events_of(entry)
        assert list(events) == TRAFFIC_EVENTS
        # ApplicationStop is Skipped on a host's first deployment (no earlier revision to stop).
        assert {event["status"] for event in events.values()} <= {"Succeeded", "Skipped"}
        block, allow = events["BlockTraffic"], events["AllowTraffic"]
        assert f"{instance} (target group {TARGET_GROUP}): healthy -> unregistered" in block["diagnostics"]["message"]
        assert f"{instance} (target group {TARGET_GROUP}): unregistered -> healthy" in allow["diagnostics"]["message"]
        # The install events ran between leaving the group and joining it again ...
        ran = [events[name] for name in INSTALL_EVENTS if events[name]["status"] == "Succeeded"]
        installed_from, installed_to = epoch(ran[0]["start_time"]), epoch(ran[-1]["end_time"])
        assert epoch(block["end_time"]) <= installed_from <= installed_to <= epoch(allow["start_time"])
        # ... and the load balancer saw it out of the group all that time, and in it before and after.
        out = [sample for sample in timeline if sample.within(epoch(block["end_time"]), epoch(allow["start_time"]))]
        assert any(sample.within(installed_from, installed_to) for sample in out), (entry["instance_id"], out)
        assert [sample for sample in out if instance in sample.targets] == []
        before = [sample for sample in timeline if sample.answered <= epoch(block["start_time"])]
        after = [sample for sample in timeline if sample.asked >= epoch(allow["end_time"])]
        assert before and after
        assert all(sample.targets.get(instance) == "healthy" for sample in before + after), entry["instance_id"]

    # Half at a time: two of the four out of the group at once, never more.
    assert max(len(instances) - len(sample.targets) for sample in timeline) == 2
    final = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert {(d["Target"]["Id"], d["TargetHealth"]["State"]) for d in final} == {(i, "healthy") for i in instances}


def test_an_unknown_target_group_fails_in_the_plan_with_no_host_touched(fleet, aws, tmp_path):
    group = fleet(2)
    target_group(aws)
    ledger = tmp_path / "ledger"
    run = deploy(group, ledger, local(make_revision(tmp_path / "v1", "1.0.0")),
                 load_balancer_info={"target_groups": ["webapp-gt"]}, aws=aws_option(aws))
    assert run.rc != 0
    assert ("target group not found in us-east-1: webapp-gt (did you mean webapp-tg?); "
            "the target groups there: webapp-tg") in run.output
    assert records(ledger) == []
    # Nothing was installed anywhere.
    assert fleet_digest(group) == {host: {} for host in group.hosts}


def registered_fleet(fleet, aws, tmp_path: Path, count: int):
    """``count`` fleet hosts, each a moto EC2 instance registered in the target group: the FleetView (with the
    instance IDs), the ELBv2 client and the group's ARN."""
    group = fleet(count)
    ec2, elbv2, subnet, arn = target_group(aws)
    instances = [instance["InstanceId"] for instance in ec2.run_instances(
        ImageId="ami-12345678", MinCount=count, MaxCount=count, SubnetId=subnet)["Instances"]]
    view = with_instance_ids(group, dict(zip(group.hosts, instances)), tmp_path / "elbv2-inventory.yml")
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance} for instance in instances])
    return view, elbv2, arn


def traffic_inputs(aws) -> dict:
    return {"load_balancer_info": {"target_groups": [TARGET_GROUP]}, "aws": aws_option(aws),
            "deployment_config_name": "CodeDeployDefault.AllAtOnce"}


def no_rollback_created(ledger: Path, deployment: dict, output: str) -> str:
    """What the deployment's record, its HTML report and the run say of the rollback that could not be created."""
    message = deployment["rollback_info"]["rollback_message"]
    assert message.startswith("The rollback could not be created: ") and "target group not found" in message
    assert deployment["rollback_info"]["rollback_deployment_id"] is None
    assert message in (ledger / "reports" / f"{deployment['deployment_id']}.html").read_text()
    assert "target group not found" in " ".join(output.split())
    assert active_locks(ledger) == []  # nothing holds the group: the next deployment may start
    return message


def test_a_rollback_that_cannot_be_created_is_said_and_recorded_and_the_group_is_left_free(fleet, aws, tmp_path):
    view, elbv2, arn = registered_fleet(fleet, aws, tmp_path, 2)
    ledger = tmp_path / "ledger"
    assert deploy(view, ledger, local(make_revision(tmp_path / "v1", "1.0.0")), **traffic_inputs(aws)).rc == 0

    # The target group is deleted while the next deployment's wave runs (its hosts held in ValidateService, if they
    # got there): the deployment fails, and its rollback, which checks the load balancer first, cannot be created.
    hold(view, True)
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(deploy(
        view, ledger, local(make_revision(tmp_path / "v2", "2.0.0")),
        auto_rollback={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}, **traffic_inputs(aws))))
    runner.start()
    try:
        wait_for_a_wave(ledger, 2, runner.is_alive)
        elbv2.delete_target_group(TargetGroupArn=arn)
    finally:
        hold(view, False)
        runner.join(timeout=600)
    (run,) = outcome

    assert run.rc != 0, run.output
    deployed, failed = records(ledger)  # no rollback was created
    assert (deployed["status"], failed["status"]) == ("Succeeded", "Failed")
    message = no_rollback_created(ledger, failed, run.output)
    said = " ".join(run.output.split())
    assert f"Deployment {failed['deployment_id']} Failed: HEALTH_CONSTRAINTS" in said and message in said
    assert "Rolling back" not in said


def test_the_stop_playbooks_rollback_that_cannot_be_created_is_recorded_on_the_deployment_it_stopped(
        fleet, aws, tmp_path):
    view, elbv2, arn = registered_fleet(fleet, aws, tmp_path, 2)
    ledger = tmp_path / "ledger"
    assert deploy(view, ledger, local(make_revision(tmp_path / "v1", "1.0.0")), **traffic_inputs(aws)).rc == 0
    hold(view, True)
    running = start_in_background(view, ledger, local(make_revision(tmp_path / "v2", "2.0.0")), **traffic_inputs(aws))
    try:
        wait_for_a_wave(ledger, 2, lambda: running.poll() is None)
    finally:
        os.killpg(running.pid, signal.SIGKILL)  # its controller is gone: the stop closes the deployment itself
        running.wait()
        hold(view, False)
    elbv2.delete_target_group(TargetGroupArn=arn)

    stop = view.playbook("fleetops.codedeploy.stop", extra_vars=deployment_vars(
        ledger, None, stop_rollback=True, **traffic_inputs(aws)), env=REPORT_CALLBACK)

    assert stop.rc != 0, stop.output
    _deployed, stopped = records(ledger)  # no rollback was created
    assert (stopped["status"], stopped["error_information"]["code"]) == ("Stopped", "MANUAL_STOP")
    no_rollback_created(ledger, stopped, stop.output)
