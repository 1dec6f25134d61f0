# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy playbook on a real fleet with a zonal configuration, update_outdated_instances_only, CloudWatch alarms
(moto) and an unreachable host — checked from the deployment records, the report and the files on the hosts.

Failures are injected by the revision itself (support.deployments: its ValidateService fails on the hostnames it
lists). On a fresh fleet every instance is Unhealthy (never deployed), so within a zone the order is the
inventory's.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from datetime import datetime
from pathlib import Path

import boto3
import pytest
import yaml

from support.deployments import (APP_DESTINATION, DEPLOYMENT_ROOT, REPORT_CALLBACK, active_locks, deploy,
                                 deployment_vars, fewest_healthy, fleet_digest, hold, local, make_revision, ran,
                                 records, start_in_background, statuses, wait_for_a_wave, wait_for_record)

ALL_AT_ONCE = {"deployment_config_name": "CodeDeployDefault.AllAtOnce"}
ONE_HEALTHY = {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}}
ALARM = "webapp-5xx"
# An address of the fleet's range where no sshd listens (hosts use 127.<octet>.0.11 and up, at most 10 of them).
NOWHERE = "127.{octet}.0.99"


def hosts(*numbers: int) -> list[str]:
    return [f"fleet-h{number}" for number in numbers]


def with_inventory(fleet, tmp_path: Path, name: str, keep: list[str], host_vars: dict | None = None,
                   extra_hosts: dict | None = None):
    """The same fleet seen through another inventory: only ``keep`` (in that order, after ``extra_hosts``), with
    extra host vars."""
    inventory = yaml.safe_load(fleet.inventory.read_text())
    group = inventory["all"]["children"]["fleet"]
    group["hosts"] = {**(extra_hosts or {}), **{host: {**group["hosts"][host], **(host_vars or {}).get(host, {})}
                                                for host in keep}}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return dataclasses.replace(fleet, hosts=list(group["hosts"]), inventory=path)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_untouched(fleet, names) -> None:
    for host in names:
        assert not fleet.path(host, DEPLOYMENT_ROOT).exists(), host
        assert not fleet.path(host, APP_DESTINATION).exists(), host


def one_line(text: str) -> str:
    return " ".join(text.split())


# ----- zonal configuration ----------------------------------------------------------------------------------------
ZONES = {**{host: {"codedeploy_availability_zone": "us-east-1b"} for host in hosts(1, 2, 3, 4)},
         **{host: {"codedeploy_availability_zone": "us-east-1a"} for host in hosts(5, 6)}}
ZONAL = {"minimum_healthy_hosts_per_zone": {"type": "FLEET_PERCENT", "value": 50},
         "monitor_duration_in_seconds": 1, "first_zone_monitor_duration_in_seconds": 3}


def test_zone_by_zone_with_both_minimums_and_the_monitor_waits(fleet, tmp_path):
    """8 hosts: us-east-1b (h1-h4, minimum 2 of 4), us-east-1a (h5, h6, minimum 1 of 2), h7, h8 without a zone
    (minimum 1 of 2); globally HOST_COUNT 1. h1 fails: in us-east-1b only 4 - 1 - 2 = 1 more may be out, so h4
    waits for the final pass although the global rule allows 6."""
    eight = with_inventory(fleet(8), tmp_path, "zones", hosts(1, 2, 3, 4, 5, 6, 7, 8), ZONES)
    ledger = tmp_path / "ledger"
    revision = local(make_revision(tmp_path / "revision", "1", hosts(1)))

    plan = deploy(eight, ledger, revision, "--check", zonal_config=ZONAL, **ONE_HEALTHY)
    assert plan.rc == 0, plan.output
    for line in ["Plan: 8 instances, minimum healthy 1, waves of 1, 1, 2, 2, 1, 1",
                 "Zones in order: us-east-1a (2 instances, minimum healthy 1), us-east-1b (4 instances, minimum "
                 "healthy 2), (no zone) (2 instances, minimum healthy 1)",
                 "Monitor after the first zone 3 s, after the others 1 s",
                 "Wave 1 (zone us-east-1a): fleet-h5 (Unhealthy)",
                 "Wave 3 (zone us-east-1b): fleet-h1 (Unhealthy), fleet-h2 (Unhealthy)",
                 "Wave 6 (zone (no zone)): fleet-h8 (Unhealthy)"]:
        assert line in plan.stdout
    assert not ledger.exists()
    assert_untouched(eight, eight.hosts)

    run = deploy(eight, ledger, revision, zonal_config=ZONAL, **ONE_HEALTHY)

    # The deployment succeeds; the run fails with fleet-h1 failed in the play recap.
    assert run.rc == 2, run.output
    assert "fleet-h1 failed: deployment " in run.stdout
    (record,) = records(ledger)
    assert (record["status"], record["error_information"]) == ("Succeeded", None)
    assert record["batches"] == [1, 1, 2, 2, 1, 1]
    assert record["zones"] == [
        {"name": "us-east-1a", "instances": hosts(5, 6), "minimum": 1},
        {"name": "us-east-1b", "instances": hosts(1, 2, 3, 4), "minimum": 2},
        {"name": "", "instances": hosts(7, 8), "minimum": 1}]
    assert [wave["instances"] for wave in record["waves"]] == [
        hosts(5), hosts(6), hosts(1, 2), hosts(3), hosts(7), hosts(8), hosts(4)]
    assert [wave["zone"] for wave in record["waves"]] == [
        "us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b", "", "", "us-east-1b"]
    assert record["waves"][3]["deferred"] == hosts(4)
    assert statuses(record) == {**{host: "Succeeded" for host in hosts(2, 3, 4, 5, 6, 7, 8)}, "fleet-h1": "Failed"}

    # The monitor waits: 3 s after the first zone, 1 s after the second, none in the final pass.
    waits = {wave["index"]: wave["monitor_wait"] for wave in record["waves"] if wave["monitor_wait"]}
    assert {index: (wait["seconds"], wait["after_zone"], wait["before_zone"]) for index, wait in waits.items()} == {
        3: (3, "us-east-1a", "us-east-1b"), 5: (1, "us-east-1b", "")}
    for index, wait in waits.items():
        previous, wave = record["waves"][index - 2], record["waves"][index - 1]
        assert (instant(wave["start_time"]) - instant(previous["end_time"])).total_seconds() >= wait["seconds"]
        assert (instant(wait["end_time"]) - instant(wait["start_time"])).total_seconds() >= wait["seconds"]

    # Healthy never below the minimum, globally and in each zone.
    assert fewest_healthy(record) >= 1
    for zone in record["zones"]:
        members = [entry for entry in record["instances"] if entry["instance_id"] in zone["instances"]]
        assert fewest_healthy({"instances": members}) >= zone["minimum"], zone
    for host in ran(record):
        assert eight.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "1\n"

    for line in ["Deployment " + record["deployment_id"] + ": 8 instances in waves of 1, 1, 2, 2, 1, 1 across zones "
                 "us-east-1a, us-east-1b, (no zone)",
                 "Zone us-east-1a done: waited 3 s (first_zone_monitor_duration_in_seconds) before zone us-east-1b",
                 "Zone us-east-1b done: waited 1 s (monitor_duration_in_seconds) before zone (no zone)",
                 "Wave 3/6 in zone us-east-1b: 2 instances, 1 succeeded, 1 failed, healthy 7 ≥ 1 (zone 3 ≥ 2)",
                 "Wave 4/6 in zone us-east-1b: 1 instance, 1 succeeded, 0 failed, healthy 7 ≥ 1 (zone 3 ≥ 2); "
                 "1 deferred to the final pass",
                 "Final pass 7 in zone us-east-1b: 1 instance, 1 succeeded, 0 failed, healthy 7 ≥ 1 (zone 3 ≥ 2)"]:
        assert line in run.stdout


def test_a_stop_requested_during_a_bake_time_ends_it_and_the_next_zone_is_never_deployed(fleet, tmp_path):
    four = with_inventory(fleet(4), tmp_path, "two-zones", hosts(1, 2, 3, 4), {
        **{host: {"codedeploy_availability_zone": "us-east-1a"} for host in hosts(1, 2)},
        **{host: {"codedeploy_availability_zone": "us-east-1b"} for host in hosts(3, 4)}})
    ledger = tmp_path / "ledger"
    baking = {**ZONAL, "first_zone_monitor_duration_in_seconds": 3600}  # an hour after us-east-1a
    running = start_in_background(four, ledger, local(make_revision(tmp_path / "v1", "1")), zonal_config=baking,
                                  **ONE_HEALTHY)
    try:
        # us-east-1a's two waves are recorded: its bake time runs.
        wait_for_record(ledger, lambda found: len([wave for wave in found[-1]["waves"] if wave["end_time"]]) == 2,
                        lambda: running.poll() is None)

        stop = four.playbook("fleetops.codedeploy.stop", env=REPORT_CALLBACK,
                             extra_vars=deployment_vars(ledger, None, stop_wait_timeout=60))
        stopped_run = running.wait(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it did not end: it and its workers
            os.killpg(running.pid, signal.SIGKILL)
        running.wait()

    assert stop.rc == 0, stop.output
    (record,) = records(ledger)
    assert f"Deployment {record['deployment_id']} is Stopped." in one_line(stop.output), stop.output
    assert stopped_run != 0  # the deployment's own run ended, Stopped
    assert (record["status"], record["error_information"]["code"]) == ("Stopped", "MANUAL_STOP")
    assert ran(record) == hosts(1, 2)  # us-east-1a only
    (wait,) = [wave["monitor_wait"] for wave in record["waves"] if wave["monitor_wait"]]
    assert wait["seconds"] == 3600 and wait["end_time"]  # ended by the stop, not by the hour
    assert_untouched(four, hosts(3, 4))
    assert not active_locks(ledger)


@pytest.mark.parametrize("zonal, message", [
    ({**ZONAL, "monitor_duration_in_seconds": -5},
     "zonal_config.monitor_duration_in_seconds must be a whole number of seconds, 0 or more, not -5"),
    ({"minimum_healthy_hosts_per_zone": {"type": "HOST_COUNT", "value": 2}},
     "HEALTH_CONSTRAINTS_INVALID: The deployment can't start because the minimum number of healthy instances per "
     "zone (2) is not available in zone us-east-1a: it has 2 instance(s)"),
], ids=["negative-duration", "zone-cannot-lose-an-instance"])
def test_a_zonal_configuration_that_cannot_work_fails_with_no_host_touched(fleet, tmp_path, zonal, message):
    six = with_inventory(fleet(6), tmp_path, "zones", hosts(1, 2, 3, 4, 5, 6), ZONES)
    ledger = tmp_path / "ledger"
    run = deploy(six, ledger, local(make_revision(tmp_path / "revision", "1")), zonal_config=zonal, **ONE_HEALTHY)
    assert run.rc != 0
    assert message in one_line(run.output)
    assert_untouched(six, six.hosts)
    assert not active_locks(ledger)


# ----- update_outdated_instances_only -----------------------------------------------------------------------------
def test_update_outdated_instances_only_leaves_up_to_date_instances_out(fleet, tmp_path):
    three = fleet(3)
    two = with_inventory(three, tmp_path, "first-two", hosts(1, 2))
    ledger = tmp_path / "ledger"
    revision = local(make_revision(tmp_path / "revision", "1"))
    assert deploy(two, ledger, revision, **ALL_AT_ONCE).rc == 0
    (first,) = records(ledger)

    run = deploy(three, ledger, revision, update_outdated_instances_only=True)

    assert run.rc == 0, run.output
    second = records(ledger)[1]
    assert (second["status"], second["skipped_up_to_date"], statuses(second)) == (
        "Succeeded", hosts(1, 2), {"fleet-h3": "Succeeded"})
    # OneAtATime over the one outdated instance: N = 1, M = 0.
    assert second["minimum_healthy_hosts"]["count"] == 0
    assert second["deployment_status_messages"] == [
        "2 instance(s) already run this revision and are not part of the deployment "
        "(update_outdated_instances_only): fleet-h1, fleet-h2."]
    for host in hosts(1, 2):
        group_root = three.path(host, f"{DEPLOYMENT_ROOT}/{first['deployment_group_id']}")
        assert sorted(path.name for path in group_root.iterdir() if path.is_dir()) == [first["deployment_id"]]
    assert three.path("fleet-h3", f"{APP_DESTINATION}/VERSION").read_text() == "1\n"

    again = deploy(three, ledger, revision, update_outdated_instances_only=True)

    assert again.rc == 0, again.output
    third = records(ledger)[-1]
    assert (third["status"], third["instances"], third["skipped_up_to_date"]) == ("Succeeded", [], hosts(1, 2, 3))
    assert "Every instance already runs this revision: there was nothing to deploy." in again.stdout

    # Half at a time over one host would be refused (N = M = 1), but that host is up to date: nothing to refuse.
    only_first = with_inventory(three, tmp_path, "only-first", hosts(1))
    half = deploy(only_first, ledger, revision, update_outdated_instances_only=True,
                  deployment_config_name="CodeDeployDefault.HalfAtATime")
    assert half.rc == 0, half.output
    assert (records(ledger)[-1]["status"], records(ledger)[-1]["skipped_up_to_date"]) == ("Succeeded", hosts(1))


# ----- CloudWatch alarms ------------------------------------------------------------------------------------------
@pytest.fixture
def cloudwatch(aws):
    """A moto CloudWatch with the alarm ``webapp-5xx`` (OK), the ``codedeploy_aws`` input and the environment."""
    client = boto3.client("cloudwatch", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.put_metric_alarm(AlarmName=ALARM, MetricName="5XXError", Namespace="webapp", Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    client.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="test")
    env = {name: value for name, value in aws.items() if name.startswith("AWS_")}
    return client, {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}, env


def alarms(*names: str, **options) -> dict:
    return {"enabled": True, "alarms": [{"name": name} for name in names], **options}


def test_an_alarm_in_alarm_stops_the_deployment_before_its_first_wave(fleet, tmp_path, cloudwatch):
    client, aws, env = cloudwatch
    two = fleet(2)
    client.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx above threshold")
    ledger = tmp_path / "ledger"

    run = deploy(two, ledger, local(make_revision(tmp_path / "revision", "1")), env=env, aws=aws,
                 alarm_configuration=alarms(ALARM, "not-defined"), **ALL_AT_ONCE)

    assert run.rc != 0
    (record,) = records(ledger)
    assert (record["status"], record["error_information"]) == ("Stopped", {
        "code": "ALARM_ACTIVE",
        "message": f"The deployment was stopped because the CloudWatch alarm(s) {ALARM} entered the ALARM state."})
    assert statuses(record) == {host: "Skipped" for host in two.hosts}
    assert record["waves"][0]["alarms"] == [ALARM]
    assert f"Stopping: alarm(s) {ALARM} in ALARM" in run.stdout
    assert "CloudWatch has no alarm named 'not-defined': it is not watched" in one_line(run.output)
    assert_untouched(two, two.hosts)


def test_an_alarm_poll_that_fails_stops_the_deployment(fleet, tmp_path):
    one = fleet(1)
    ledger = tmp_path / "ledger"
    closed = {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1", "max_attempts": 1}
    run = deploy(one, ledger, local(make_revision(tmp_path / "revision", "1")), aws=closed,
                 alarm_configuration=alarms(ALARM), **ALL_AT_ONCE)
    assert run.rc != 0
    (record,) = records(ledger)
    assert (record["status"], record["error_information"]["code"]) == ("Stopped", "ALARM_ACTIVE")
    assert record["error_information"]["message"].startswith(
        "The deployment was stopped because the state of its CloudWatch alarm(s) could not be read: CloudWatch "
        "DescribeAlarms failed: cannot reach http://127.0.0.1:9")
    assert_untouched(one, one.hosts)


def test_an_alarm_between_waves_stops_the_deployment_and_the_rollback_restores_the_hosts(fleet, tmp_path,
                                                                                         cloudwatch):
    client, aws, env = cloudwatch
    three = fleet(3)
    ledger = tmp_path / "ledger"
    inputs = {"aws": aws, "alarm_configuration": alarms(ALARM), **ONE_HEALTHY,
              "auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}}
    assert deploy(three, ledger, local(make_revision(tmp_path / "v1", "1")), env=env, **inputs).rc == 0
    before = fleet_digest(three)
    hold(three, True)  # the test raises the alarm meanwhile

    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(
        deploy(three, ledger, local(make_revision(tmp_path / "v2", "2")), env=env, **inputs)))
    runner.start()
    try:
        running = wait_for_a_wave(ledger, 2, runner.is_alive)
        assert running["waves"][0]["instances"] == hosts(1, 2)
        client.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx above threshold")
    finally:
        hold(three, False)
        runner.join(timeout=600)
    (run,) = outcome

    assert run.rc != 0
    stopped, rollback = records(ledger)[1:]
    assert (stopped["status"], stopped["error_information"]["code"]) == ("Stopped", "ALARM_ACTIVE")
    assert statuses(stopped) == {"fleet-h1": "Succeeded", "fleet-h2": "Succeeded", "fleet-h3": "Skipped"}
    assert [wave["instances"] for wave in stopped["waves"]] == [hosts(1, 2), []]
    assert stopped["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    # Its report links to the rollback (written once the rollback was created).
    assert f'href="{rollback["deployment_id"]}.html"' in (
        ledger / "reports" / f"{stopped['deployment_id']}.html").read_text()
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded")
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == stopped["deployment_id"]
    assert fleet_digest(three) == before


# ----- unreachable instance ---------------------------------------------------------------------------------------
def test_an_unreachable_host_counts_as_failed(fleet, tmp_path):
    """A host in the inventory that nobody answers for: it fails its first event with UnknownError, counts in F
    (so only 4 - 1 - 2 = 1 of the second wave starts), and the deployment goes on."""
    three = fleet(3)
    octet = three.fleet.load().hosts[0].address.split(".")[1]
    ghost = {"fleet-ghost": {"ansible_host": NOWHERE.format(octet=octet)}}
    four = with_inventory(three, tmp_path, "with-ghost", hosts(1, 2, 3), extra_hosts=ghost)
    ledger = tmp_path / "ledger"

    run = deploy(four, ledger, local(make_revision(tmp_path / "revision", "1")),
                 minimum_healthy_hosts={"type": "HOST_COUNT", "value": 2})

    # The deployment succeeds; the run fails with fleet-ghost failed in the play recap.
    assert run.rc == 2, run.output
    assert "fleet-ghost failed: deployment " in run.stdout
    (record,) = records(ledger)
    assert record["status"] == "Succeeded"
    assert [wave["instances"] for wave in record["waves"]] == [["fleet-ghost", "fleet-h1"], hosts(2), hosts(3)]
    assert statuses(record) == {"fleet-ghost": "Failed", **{host: "Succeeded" for host in hosts(1, 2, 3)}}
    (ghost_entry,) = [entry for entry in record["instances"] if entry["instance_id"] == "fleet-ghost"]
    first, *rest = ghost_entry["lifecycle_events"]
    assert (first["lifecycle_event_name"], first["status"], first["diagnostics"]["error_code"]) == (
        "ApplicationStop", "Failed", "UnknownError")
    assert first["diagnostics"]["message"].startswith("The instance could not be reached: ")
    assert {event["status"] for event in rest} == {"Skipped"}
    assert fewest_healthy(record) >= 2
