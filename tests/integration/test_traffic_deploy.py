# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployments behind a real HAProxy with steady traffic: no request may fail.

The example revision's web app runs on every fleet host (on the host's own address, port 8080); HAProxy on
127.0.0.1 fronts them; a load generator sends 60 requests/s through it for the whole deployment.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
import yaml

from support.deployments import (APP_DESTINATION, DEPLOYMENT_ROOT, EXAMPLE_APP_PORT, REPORT_CALLBACK, addresses,
                                 deploy, deployment_vars, example_revision, load_balancer, local, records,
                                 serving_fleet, statuses, wait_until_up)
from support.haproxy import Haproxy
from support.load import LoadGenerator

RATE = 60
ALL_AT_ONCE = {"deployment_config_name": "CodeDeployDefault.AllAtOnce"}
TRAFFIC_EVENTS = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle",
                  "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService",
                  "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]


def test_rolling_in_place_behind_haproxy_drops_no_request(fleet, tmp_path):
    group, ledger, proxy = serving_fleet(fleet, 4, tmp_path)
    with proxy:
        with LoadGenerator(proxy.frontend_url, rate=RATE) as load:
            time.sleep(1)
            run = deploy(group, ledger, local(example_revision(tmp_path / "v2", "2.0.0")),
                         deployment_config_name="CodeDeployDefault.HalfAtATime",
                         load_balancer_info=load_balancer(proxy))
            finished = time.time()
            time.sleep(1)
        assert run.rc == 0, run.output
        assert load.failures == [], load.failures[:5]
        assert load.rate() >= 50, load.rate()
        assert load.versions_after(finished) == {"2.0.0"}
        assert load.hosts_after(finished) == set(group.hosts)
        assert all(proxy.server_status(host).startswith("UP") for host in group.hosts)

    record = records(ledger)[-1]
    assert record["status"] == "Succeeded"
    assert record["deployment_style"]["deployment_option"] == "WITH_TRAFFIC_CONTROL"
    assert set(statuses(record).values()) == {"Succeeded"}
    for entry in record["instances"]:
        events = {event["lifecycle_event_name"]: event for event in entry["lifecycle_events"]}
        assert list(events) == TRAFFIC_EVENTS
        assert events["BlockTraffic"]["status"] == events["AllowTraffic"]["status"] == "Succeeded"
        # Drained before the application stopped; registered only after it validated.
        assert events["BlockTraffic"]["end_time"] <= events["ApplicationStop"]["start_time"]
        assert events["ValidateService"]["end_time"] <= events["AllowTraffic"]["start_time"]
        assert "MAINT" in events["BlockTraffic"]["diagnostics"]["message"]
        assert "UP" in events["AllowTraffic"]["diagnostics"]["message"]
    # Half at a time: never more than two of the four out of the backend at once.
    assert [len(wave["instances"]) for wave in record["waves"]] == [2, 2]


def test_an_instance_that_never_turns_healthy_fails(fleet, tmp_path):
    group, ledger, proxy = serving_fleet(fleet, 1, tmp_path)
    with proxy:
        # The new revision will serve on another port than the one HAProxy sends to: it never turns healthy there.
        group.path("fleet-h1", "/etc/fleet-app/webapp.env").write_text(f"WEBAPP_PORT={EXAMPLE_APP_PORT + 1}\n")
        run = deploy(group, ledger, local(example_revision(tmp_path / "v2", "2.0.0")),
                     load_balancer_info=load_balancer(proxy), traffic_wait_timeout=3)
    assert run.rc != 0
    record = records(ledger)[-1]
    assert record["status"] == "Failed"
    assert statuses(record) == {"fleet-h1": "Failed"}
    events = {event["lifecycle_event_name"]: event for event in record["instances"][0]["lifecycle_events"]}
    assert events["AllowTraffic"]["status"] == "Failed"
    assert "did not become registered and healthy within 3 s" in events["AllowTraffic"]["diagnostics"]["message"]
    assert events["AfterAllowTraffic"]["status"] == "Skipped"
    assert "fleet-h1 AllowTraffic: " in run.output  # the report's line for the failed event
    # Its host events all succeeded, but the instance did not: the next deployment must order it as unhealthy.
    last = group.path("fleet-h1", f"{DEPLOYMENT_ROOT}/deployment-instructions/"
                                  f"{record['deployment_group_id']}_last_instance_deployment.json")
    assert json.loads(last.read_text())["status"] == "InProgress"


def blue_green_fleet(fleet, tmp_path, blue_count: int = 3, green_count: int = 3):
    """Blue hosts serving 1.0.0 behind HAProxy; green hosts in the backend too, in maintenance, serving nothing."""
    group = fleet(blue_count + green_count)
    blue, green = group.hosts[:blue_count], group.hosts[blue_count:]
    groups = tmp_path / "blue-green.ini"
    groups.write_text("[blue]\n" + "\n".join(blue) + "\n[green]\n" + "\n".join(green) + "\n")
    ledger = tmp_path / "ledger"
    first = deploy(group, ledger, local(example_revision(tmp_path / "v1", "1.0.0")), "-i", str(groups),
                   target_group="blue", **ALL_AT_ONCE)
    assert first.rc == 0, first.output
    proxy = Haproxy(tmp_path / "haproxy", {host: f"{address}:{EXAMPLE_APP_PORT}"
                                           for host, address in addresses(group).items()},
                    disabled=green, backend="webapp").start()
    wait_until_up(proxy, blue)
    return group, groups, ledger, proxy, blue, green


def blue_green(group, groups, ledger, revision, proxy, **inputs):
    return deploy(group, ledger, local(revision), "-i", str(groups), target_group="blue", green_group="green",
                  deployment_style={"deployment_type": "BLUE_GREEN"}, load_balancer_info=load_balancer(proxy),
                  **inputs)


def test_a_catch_up_of_a_blue_green_group_updates_the_new_instance_in_place_behind_the_load_balancer(fleet, tmp_path):
    """A blue/green group's new instance (its Auto Scaling group scaled out) is caught up in place, taken into the
    load balancer once it runs the revision: no replacement fleet for one instance, the others untouched."""
    group = fleet(3)
    serving, new = group.hosts[:2], group.hosts[2]
    groups = tmp_path / "groups.ini"
    groups.write_text("[serving]\n" + "\n".join(serving) + "\n[web]\n" + "\n".join(group.hosts) + "\n[spare]\n")
    ledger = tmp_path / "ledger"
    first = deploy(group, ledger, local(example_revision(tmp_path / "v1", "1.0.0")), "-i", str(groups),
                   target_group="serving", **ALL_AT_ONCE)
    assert first.rc == 0, first.output
    with Haproxy(tmp_path / "haproxy", {host: f"{address}:{EXAMPLE_APP_PORT}"
                                        for host, address in addresses(group).items()},
                 disabled=[new], backend="webapp").start() as proxy:
        wait_until_up(proxy, serving)

        run = deploy(group, ledger, None, "-i", str(groups), playbook="fleetops.codedeploy.catch_up",
                     target_group="web", green_group="spare", load_balancer_info=load_balancer(proxy),
                     deployment_style={"deployment_type": "BLUE_GREEN"}, **ALL_AT_ONCE)

        assert run.rc == 0, run.output
        wait_until_up(proxy, group.hosts)
    deployed, caught_up = records(ledger)
    assert (caught_up["creator"], caught_up["status"]) == ("autoscaling", "Succeeded")
    assert caught_up["deployment_style"] == {"deployment_type": "IN_PLACE", "deployment_option": "WITH_TRAFFIC_CONTROL"}
    assert [entry["instance_id"] for entry in caught_up["instances"]] == [new]
    assert [event["lifecycle_event_name"] for event in caught_up["instances"][0]["lifecycle_events"]] == TRAFFIC_EVENTS
    assert caught_up["revision"]["sha256"] == deployed["revision"]["sha256"]
    assert sorted(caught_up["skipped_up_to_date"]) == sorted(serving)
    assert not caught_up.get("blue_green")
    assert {host: group.path(host, f"{APP_DESTINATION}/VERSION").read_text() for host in group.hosts} == {
        host: "1.0.0\n" for host in group.hosts}


def test_blue_green_cutover_behind_haproxy_drops_no_request(fleet, tmp_path):
    group, groups, ledger, proxy, blue, green = blue_green_fleet(fleet, tmp_path)
    with proxy:
        with LoadGenerator(proxy.frontend_url, rate=RATE) as load:
            started = time.time()
            time.sleep(1)
            run = blue_green(group, groups, ledger, example_revision(tmp_path / "v2", "2.0.0"), proxy,
                             deployment_config_name="CodeDeployDefault.HalfAtATime")
            finished = time.time()
            time.sleep(1)
        assert run.rc == 0, run.output
        assert load.failures == [], load.failures[:5]
        assert load.rate() >= 50, load.rate()
        assert load.versions_after(started) == {"1.0.0", "2.0.0"}
        assert load.versions_after(finished) == {"2.0.0"}
        assert load.hosts_after(finished) == set(green)
        assert all(proxy.server_status(host).startswith("MAINT") for host in blue)

    record = records(ledger)[-1]
    assert record["status"] == "Succeeded"
    assert record["deployment_style"] == {"deployment_type": "BLUE_GREEN", "deployment_option": "WITH_TRAFFIC_CONTROL"}
    kinds = {entry["instance_id"]: entry["instance_type"] for entry in record["instances"]}
    assert kinds == {**{host: "Blue" for host in blue}, **{host: "Green" for host in green}}
    assert set(statuses(record).values()) == {"Succeeded"}
    for entry in record["instances"]:
        names = [event["lifecycle_event_name"] for event in entry["lifecycle_events"]]
        if entry["instance_type"] == "Blue":
            assert names == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
        else:
            assert names == TRAFFIC_EVENTS[3:]
    # Install, then reroute at the configuration's rate (half of 3: one at a time), then block Blue all at once.
    assert [(wave["stage"], len(wave["instances"])) for wave in record["waves"]] == [
        ("install", 1), ("install", 1), ("install", 1), ("reroute", 1), ("reroute", 1), ("reroute", 1), ("block", 3)]
    last_allow = max(event["end_time"] for entry in record["instances"] for event in entry["lifecycle_events"]
                     if event["lifecycle_event_name"] == "AllowTraffic")
    first_block = min(event["start_time"] for entry in record["instances"] for event in entry["lifecycle_events"]
                      if event["lifecycle_event_name"] == "BlockTraffic")
    assert last_allow <= first_block
    # Blue kept alive (KEEP_ALIVE): its application still runs, out of the load balancer.
    assert (group.path(blue[0], "/etc/fleet-app/webapp.pid")).exists()


def test_blue_green_whose_green_fails_validation_leaves_blue_serving(fleet, tmp_path):
    group, groups, ledger, proxy, blue, green = blue_green_fleet(fleet, tmp_path, 2, 2)
    with proxy:
        with LoadGenerator(proxy.frontend_url, rate=RATE) as load:
            time.sleep(1)
            run = blue_green(group, groups, ledger, example_revision(tmp_path / "v2", "2.0.0", fail_hosts=green),
                             proxy, **ALL_AT_ONCE)
            time.sleep(1)
        assert run.rc != 0
        assert load.failures == [], load.failures[:5]
        assert load.versions_after(0) == {"1.0.0"}
        assert load.hosts_after(0) == set(blue)
        assert all(proxy.server_status(host).startswith("MAINT") for host in green)
        assert all(proxy.server_status(host).startswith("UP") for host in blue)
    record = records(ledger)[-1]
    assert record["status"] == "Failed"
    assert record["error_information"]["code"] == "HEALTH_CONSTRAINTS"
    assert statuses(record) == {**{host: "Skipped" for host in blue}, **{host: "Failed" for host in green}}
    assert [wave["stage"] for wave in record["waves"]] == ["install"]


ALARM = "webapp-5xx"


def test_an_alarm_after_cutover_rolls_traffic_back_to_blue_without_dropping_a_request(fleet, tmp_path, aws):
    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
    cloudwatch.put_metric_alarm(AlarmName=ALARM, MetricName="5XXError", Namespace="webapp", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=1,
                                ComparisonOperator="GreaterThanOrEqualToThreshold")
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="test")
    group, groups, ledger, proxy, blue, green = blue_green_fleet(fleet, tmp_path, 2, 2)
    done = threading.Event()

    def raise_the_alarm_once_green_serves():
        # Traffic has moved to Green (both UP, Blue still UP too): the alarm stops the deployment before Blue is
        # blocked, and the rollback sends traffic back to Blue alone.
        while not done.is_set():
            if all(proxy.server_status(host).startswith("UP") for host in green):
                cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx above threshold")
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=raise_the_alarm_once_green_serves)
    with proxy:
        with LoadGenerator(proxy.frontend_url, rate=RATE) as load:
            watcher.start()
            run = blue_green(group, groups, ledger, example_revision(tmp_path / "v2", "2.0.0"), proxy,
                             aws={"endpoint_url": aws["endpoint_url"], "region": "us-east-1"},
                             alarm_configuration={"enabled": True, "alarms": [{"name": ALARM}]},
                             auto_rollback={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
                             env={key: value for key, value in aws.items() if key.startswith("AWS_")},
                             **ALL_AT_ONCE)
            finished = time.time()
            done.set()
            time.sleep(1)
        watcher.join()
        assert run.rc != 0
        assert load.failures == [], load.failures[:5]
        assert "2.0.0" in load.versions_after(0)  # traffic did reach Green before the rollback
        assert load.versions_after(finished) == {"1.0.0"}
        assert load.hosts_after(finished) == set(blue)
        assert all(proxy.server_status(host).startswith("MAINT") for host in green)

    stopped, rollback = records(ledger)[1:]
    assert (stopped["status"], stopped["error_information"]["code"]) == ("Stopped", "ALARM_ACTIVE")
    assert [wave["stage"] for wave in stopped["waves"]][-1] == "block"
    assert statuses(stopped) == {**{host: "Skipped" for host in blue}, **{host: "Succeeded" for host in green}}
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded")
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == stopped["deployment_id"]
    assert stopped["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    kinds = {entry["instance_id"]: (entry["instance_type"], [e["lifecycle_event_name"] for e in entry["lifecycle_events"]])
             for entry in rollback["instances"]}
    assert kinds == {**{host: ("Blue", ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]) for host in blue},
                     **{host: ("Green", ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]) for host in green}}


READY_WAIT = {"deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT", "wait_time_in_minutes": 30}}


def test_a_blue_green_deployment_waits_in_ready_until_a_continue_from_another_container(fleet, tmp_path, aws):
    group, groups, ledger, proxy, blue, green = blue_green_fleet(fleet, tmp_path, 2, 2)
    revision = example_revision(tmp_path / "v2", "2.0.0")
    # The Ready deployment and its continue share nothing but an S3 ledger: the continue runs in a container of its
    # own (another hostname, an empty HOME), as a later AWX job does.
    s3 = boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="shared-ledger")
    ledger = "s3://shared-ledger/webapp"
    shared = {"aws": {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}}
    with proxy:
        first = blue_green(group, groups, ledger, revision, proxy, blue_green_deployment_configuration=READY_WAIT,
                           **shared, **ALL_AT_ONCE)
        assert first.rc == 0, first.output
        ready = shared_records(s3)[-1]
        assert ready["status"] == "Ready"
        assert f"Deployment {ready['deployment_id']} is Ready" in first.output
        assert "fleetops.codedeploy.continue" in first.output
        assert all(proxy.server_status(host).startswith("MAINT") for host in green)  # installed, no traffic
        # Another deployment of the group is refused while this one waits.
        refused = blue_green(group, groups, ledger, revision, proxy, **shared, **ALL_AT_ONCE)
        assert refused.rc != 0
        assert f"already has an active Deployment '{ready['deployment_id']}'" in refused.output
        # A continue in check mode (naming the deployment) shows the reroute it would run, and changes nothing.
        checked = deploy(group, ledger, local(revision), "-i", str(groups), "--check",
                         playbook="fleetops.codedeploy.continue", target_group="blue", green_group="green",
                         deployment_style={"deployment_type": "BLUE_GREEN"}, load_balancer_info=load_balancer(proxy),
                         blue_green_deployment_configuration=READY_WAIT, deployment_id=ready["deployment_id"],
                         **shared, **ALL_AT_ONCE)
        assert checked.rc == 0, checked.output
        assert "Each instance runs: BeforeAllowTraffic → AllowTraffic → AfterAllowTraffic" in checked.output, (
            checked.output)
        assert shared_records(s3)[-1]["status"] == "Ready"
        assert all(proxy.server_status(host).startswith("MAINT") for host in green)

        with LoadGenerator(proxy.frontend_url, rate=RATE) as load, tempfile.TemporaryDirectory() as home:
            resumed = in_another_container(group, home, groups, deployment_vars(
                ledger, local(revision), target_group="blue", green_group="green",
                deployment_style={"deployment_type": "BLUE_GREEN"}, load_balancer_info=load_balancer(proxy),
                blue_green_deployment_configuration=READY_WAIT, **shared, **ALL_AT_ONCE))
            finished = time.time()
            time.sleep(1)
        assert resumed.rc == 0, resumed.output
        assert load.failures == [], load.failures[:5]
        assert load.hosts_after(finished) == set(green)
    record = next(r for r in shared_records(s3) if r["deployment_id"] == ready["deployment_id"])
    assert record["status"] == "Succeeded"
    assert [wave["stage"] for wave in record["waves"]] == ["install", "reroute", "block"]


def shared_records(s3) -> list[dict]:
    listed = s3.list_objects_v2(Bucket="shared-ledger", Prefix="webapp/deployments/").get("Contents", [])
    found = [json.loads(s3.get_object(Bucket="shared-ledger", Key=entry["Key"])["Body"].read()) for entry in listed]
    return sorted(found, key=lambda record: record["create_time"])


def in_another_container(group, home: str, groups, extra_vars: dict):
    """fleetops.codedeploy.continue under another hostname (a UTS namespace of its own) with an empty HOME."""
    return group.run(["unshare", "--uts", "--fork", "sh", "-c", 'hostname "$0" && exec "$@"', "job-continue",
                      str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(group.inventory), "-i",
                      str(groups), "fleetops.codedeploy.continue", "-e", json.dumps(extra_vars)],
                     env={"HOME": home, **REPORT_CALLBACK})


def test_a_ready_deployment_not_continued_in_time_is_stopped(fleet, tmp_path):
    group, groups, ledger, proxy, blue, green = blue_green_fleet(fleet, tmp_path, 1, 1)
    no_wait = {"deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT", "wait_time_in_minutes": 0}}
    revision = example_revision(tmp_path / "v2", "2.0.0")
    with proxy:
        assert blue_green(group, groups, ledger, revision, proxy, blue_green_deployment_configuration=no_wait,
                          **ALL_AT_ONCE).rc == 0
        late = blue_green(group, groups, ledger, revision, proxy, playbook="fleetops.codedeploy.continue",
                          blue_green_deployment_configuration=no_wait, **ALL_AT_ONCE)
        assert late.rc != 0
        assert proxy.server_status(green[0]).startswith("MAINT") and proxy.server_status(blue[0]).startswith("UP")
    record = records(ledger)[-1]
    assert (record["status"], record["error_information"]["code"]) == ("Stopped", "TIMEOUT")
    assert "was not continued within 0 minute(s) of becoming Ready" in late.output
    assert statuses(record) == {blue[0]: "Skipped", green[0]: "Succeeded"}


def test_terminate_stops_the_original_instances_after_the_wait(fleet, tmp_path):
    group, groups, ledger, proxy, blue, green = blue_green_fleet(fleet, tmp_path, 1, 1)
    terminate = {"terminate_blue_instances_on_deployment_success": {"action": "TERMINATE",
                                                                    "termination_wait_time_in_minutes": 0.05}}
    with proxy:
        run = blue_green(group, groups, ledger, example_revision(tmp_path / "v2", "2.0.0"), proxy,
                         blue_green_deployment_configuration=terminate, **ALL_AT_ONCE)
        assert run.rc == 0, run.output
    record = records(ledger)[-1]
    assert record["status"] == "Succeeded"
    assert [wave["stage"] for wave in record["waves"]] == ["install", "reroute", "block", "terminate"]
    assert record["waves"][-1]["monitor_wait"]["seconds"] == 3
    events = {e["lifecycle_event_name"]: e for e in record["instances"][0]["lifecycle_events"]}
    assert list(events) == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop"]
    assert events["ApplicationStop"]["status"] == "Succeeded"
    blocked = datetime.datetime.fromisoformat(events["AfterBlockTraffic"]["end_time"].replace("Z", "+00:00"))
    stopped = datetime.datetime.fromisoformat(events["ApplicationStop"]["start_time"].replace("Z", "+00:00"))
    assert (stopped - blocked).total_seconds() >= 3
    # The original's application is stopped (its ApplicationStop ran) and the host left alone; Green serves.
    assert not group.path(blue[0], "/etc/fleet-app/webapp.pid").exists()
    assert group.path(green[0], "/etc/fleet-app/webapp.pid").exists()
    assert "Traffic moved: waited 3 s (termination_wait_time_in_minutes) before stopping Blue" in run.output


def test_a_stop_whose_inventory_lacks_the_replacement_fails_it_in_the_rollback_and_keeps_blue_serving(fleet, tmp_path):
    group, groups, ledger, proxy, blue, green = blue_green_fleet(fleet, tmp_path, 1, 1)
    with proxy:
        assert blue_green(group, groups, ledger, example_revision(tmp_path / "v2", "2.0.0"), proxy,
                          blue_green_deployment_configuration=READY_WAIT, **ALL_AT_ONCE).rc == 0
        # Stopped with a rollback from another inventory, which has the original instance but not the replacement:
        # the rollback (its fleets from the record) reaches the one and fails the other, saying why.
        inventory = yaml.safe_load(group.inventory.read_text())
        del inventory["all"]["children"]["fleet"]["hosts"][green[0]]
        (tmp_path / "without-replacement.yml").write_text(yaml.safe_dump(inventory))
        without = dataclasses.replace(group, inventory=tmp_path / "without-replacement.yml")
        (tmp_path / "blue-only.ini").write_text(f"[blue]\n{blue[0]}\n[green]\n")
        stop = deploy(without, ledger, None, "-i", str(tmp_path / "blue-only.ini"), playbook="fleetops.codedeploy.stop",
                      target_group="blue", green_group="green", stop_rollback=True,
                      deployment_style={"deployment_type": "BLUE_GREEN"}, load_balancer_info=load_balancer(proxy))
        assert proxy.server_status(blue[0]).startswith("UP"), proxy.server_status(blue[0])
        assert proxy.server_status(green[0]).startswith("MAINT"), proxy.server_status(green[0])
    assert stop.rc != 0 and "Error while resolving" not in stop.output, stop.output
    stopped, rollback = records(ledger)[-2:]
    assert stopped["status"] == "Stopped", stop.output
    # The rollback is run whole by its rules: it fails, naming the instance it could not reach.
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Failed"), stop.output
    assert statuses(rollback) == {blue[0]: "Succeeded", green[0]: "Failed"}, stop.output
    (replacement,) = [entry for entry in rollback["instances"] if entry["instance_id"] == green[0]]
    assert replacement["status"] == "Failed", replacement
    failed = [event for event in replacement["lifecycle_events"] if event["status"] == "Failed"]
    assert "did not run its lifecycle events: it is not in this run's play" in failed[0]["diagnostics"]["message"]
