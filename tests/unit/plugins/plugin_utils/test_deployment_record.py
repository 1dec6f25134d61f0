# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deployment's record driven step by step as the role drives it: zones, up-to-date instances, alarm stops."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.instance_lifecycle import (
    combine_segments, event_record)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils import deployment_record as records
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import (
    order_instances, resolve_minimum_healthy_hosts, resolve_zonal_config)
from sample_records import new_blue_green, run_stage

EVENTS = ["ApplicationStop", "ValidateService"]


def new(names, *, config=None, custom=None, zonal=None, creator="user", sha256="abc"):
    name, minimum = resolve_minimum_healthy_hosts(config, custom)
    return records.new_record(
        deployment_id="d-TEST00001", application_name="webapp", deployment_group_name="prod",
        deployment_group_id="g", creator=creator, revision={"sha256": sha256}, deployment_config_name=name,
        minimum=minimum, instances=list(names), events=EVENTS, options={}, zonal=resolve_zonal_config(zonal))


def outcome(status):
    return {"status": status, "lifecycle_events": [
        {"lifecycle_event_name": event, "status": status, "start_time": "t", "end_time": "t", "diagnostics": None}
        for event in EVENTS]}


def run(record, zones=None, failing=(), alarm_before_wave=None):
    """Plan, then open and record each wave the record gives (``open_next_wave``: the waves, then the final
    one-at-a-time pass), as the deployment's controller steps do;
    ``alarm_before_wave`` is the wave number before which an alarm is in ALARM. Returns the finished record."""
    order = [entry["instance_id"] for entry in record["instances"]]
    order, batches, zone_list, refusal = records.plan_waves(record, order, zones or {})
    assert refusal is None, refusal
    records.start(record, order, batches, zone_list)

    def before(names, final_pass):
        alarm = {"alarms": ["high-5xx"]} if len(record["waves"]) + 1 == alarm_before_wave else None
        return records.monitor_wait(record, names, final_pass), alarm

    while (opened := records.open_next_wave(record, before))["start"]:
        records.record_wave(record, {name: outcome("Failed" if name in failing else "Succeeded")
                                     for name in opened["start"]})
    return records.finish(record)


def waves(record):
    return [wave["instances"] for wave in record["waves"]]


HOSTS = [f"h{number}" for number in range(1, 7)]
# az-1: h1..h4, az-2: h5, h6 (see the zonal integration test).
ZONES = {"h1": "az-1", "h2": "az-1", "h3": "az-1", "h4": "az-1", "h5": "az-2", "h6": "az-2"}
ZONAL = {"minimum_healthy_hosts_per_zone": {"type": "FLEET_PERCENT", "value": 50},
         "monitor_duration_in_seconds": 1, "first_zone_monitor_duration_in_seconds": 3}
ONE = {"type": "HOST_COUNT", "value": 1}


def test_without_zones_the_batches_are_waves_of_n_minus_m():
    record = new(HOSTS, custom={"type": "HOST_COUNT", "value": 2})
    order, batches, zones, refusal = records.plan_waves(record, HOSTS, ZONES)
    assert (order, batches, zones, refusal) == (HOSTS, [4, 2], None, None)


def test_zones_plan_zone_by_zone_with_per_zone_minimums():
    record = new(["h6", "h1", "h5", "h2", "h3", "h4"], custom=ONE, zonal=ZONAL)
    order, batches, zones, refusal = records.plan_waves(record, ["h6", "h1", "h5", "h2", "h3", "h4"], ZONES)
    assert refusal is None
    assert order == ["h1", "h2", "h3", "h4", "h6", "h5"]
    assert zones == [{"name": "az-1", "instances": ["h1", "h2", "h3", "h4"], "minimum": 2},
                     {"name": "az-2", "instances": ["h6", "h5"], "minimum": 1}]
    assert batches == [2, 2, 1, 1]


def test_a_zone_failure_defers_by_the_zone_rule_and_the_final_pass_applies_it():
    record = run(new(HOSTS, custom=ONE, zonal=ZONAL), ZONES, failing={"h1"})
    # h1 fails: az-1 may have 4 - 1 - 2 = 1 in flight, so h4 waits for the final pass (the global rule allows 4).
    assert waves(record) == [["h1", "h2"], ["h3"], ["h5"], ["h6"], ["h4"]]
    assert record["waves"][1]["deferred"] == ["h4"]
    assert [wave["zone"] for wave in record["waves"]] == ["az-1", "az-1", "az-2", "az-2", "az-1"]
    assert record["status"] == "Succeeded"


def test_the_monitor_wait_comes_once_per_zone_change_and_not_in_the_final_pass():
    zones = {**ZONES, "h5": "az-2", "h6": None}
    zonal = {**ZONAL, "minimum_healthy_hosts_per_zone": {"type": "HOST_COUNT", "value": 0}}
    record = run(new(HOSTS, custom=ONE, zonal=zonal), zones, failing={"h1"})
    waits = [(wave["instances"], wave["monitor_wait"]) for wave in record["waves"]]
    assert waits == [
        (["h1", "h2", "h3", "h4"], None),
        (["h5"], {"seconds": 3, "setting": "first_zone_monitor_duration_in_seconds", "after_zone": "az-1",
                  "before_zone": "az-2"}),
        (["h6"], {"seconds": 1, "setting": "monitor_duration_in_seconds", "after_zone": "az-2", "before_zone": ""}),
    ]


def test_first_zone_monitor_duration_defaults_to_the_monitor_duration():
    record = new(HOSTS, custom=ONE, zonal={"monitor_duration_in_seconds": 7})
    order, batches, zones, refusal = records.plan_waves(record, HOSTS, ZONES)
    assert (batches, refusal) == ([4, 2], None)
    records.start(record, order, batches, zones)
    records.gate(record, ["h1", "h2", "h3", "h4"], False)
    assert records.monitor_wait(record, ["h5"], False)["seconds"] == 7


def test_a_zone_at_its_minimum_with_work_pending_stops_the_deployment():
    record = run(new(HOSTS, custom=ONE, zonal=ZONAL), ZONES, failing={"h1", "h2"})
    assert waves(record) == [["h1", "h2"]]
    assert (record["status"], record["error_information"]["code"]) == ("Failed", "HEALTH_CONSTRAINTS")
    assert records.counts(record)["Skipped"] == 4


def test_a_zone_that_cannot_lose_an_instance_is_refused_at_start():
    record = new(HOSTS, custom=ONE, zonal=ZONAL)
    refusal = records.plan_waves(record, HOSTS, {**ZONES, "h6": "az-3"})[3]
    assert refusal.code == "HEALTH_CONSTRAINTS_INVALID"
    assert "in zone az-2: it has 1 instance(s)" in refusal.message


def test_a_rollback_does_not_go_zone_by_zone():
    record = new(HOSTS, custom=ONE, zonal=ZONAL, creator="codeDeployRollback")
    assert record["zonal_config"] is None
    assert records.MSG_ROLLBACK_NOT_ZONAL in record["deployment_status_messages"]
    assert records.plan_waves(record, HOSTS, ZONES)[1:3] == ([5, 1], None)
    assert not records.polls_alarms(record)


def test_up_to_date_instances_leave_the_deployment_and_the_minimum_is_counted_without_them():
    record = new(HOSTS, config="CodeDeployDefault.HalfAtATime")
    assert records.minimum_count(record) == 3
    last = {"h1": (True, "abc"), "h2": (True, "abc"), "h3": (False, "abc"), "h4": (True, "old"), "h5": (None, None)}
    up_to_date = records.up_to_date_instances(record, last)
    assert up_to_date == ["h1", "h2"]
    records.exclude_up_to_date(record, up_to_date)
    assert [entry["instance_id"] for entry in record["instances"]] == ["h3", "h4", "h5", "h6"]
    assert records.minimum_count(record) == 2
    assert record["skipped_up_to_date"] == ["h1", "h2"]
    assert record["deployment_status_messages"] == [
        "2 instance(s) already run this revision and are not part of the deployment "
        "(update_outdated_instances_only): h1, h2."]
    assert run(record)["status"] == "Succeeded"


def test_every_instance_up_to_date_succeeds_with_no_instance():
    record = new(HOSTS[:2], config="CodeDeployDefault.AllAtOnce")
    records.exclude_up_to_date(record, records.up_to_date_instances(record, {"h1": (True, "abc"),
                                                                             "h2": (True, "abc")}))
    assert records.plan_waves(record, [], {}) == ([], [], None, None)
    finished = run(record)
    assert (finished["status"], finished["error_information"], finished["instances"]) == ("Succeeded", None, [])
    assert finished["deployment_status_messages"][-1] == records.MSG_ALL_UP_TO_DATE


def test_too_few_outdated_instances_for_the_minimum_is_refused():
    record = new(HOSTS[:2], config="CodeDeployDefault.HalfAtATime")
    records.exclude_up_to_date(record, ["h1"])
    refusal = records.plan_waves(record, ["h2"], {})[3]
    assert refusal.code == "HEALTH_CONSTRAINTS_INVALID"


@pytest.mark.parametrize("alarm_before_wave, ran", [(1, []), (2, [["h1", "h2", "h3"]])])
def test_an_alarm_stops_the_deployment_and_skips_the_rest(alarm_before_wave, ran):
    record = run(new(HOSTS, custom={"type": "HOST_COUNT", "value": 3}), alarm_before_wave=alarm_before_wave)
    assert waves(record)[:-1] == ran
    assert record["waves"][-1]["alarms"] == ["high-5xx"]
    assert (record["status"], record["error_information"]) == ("Stopped", {
        "code": "ALARM_ACTIVE",
        "message": "The deployment was stopped because the CloudWatch alarm(s) high-5xx entered the ALARM state."})
    assert records.counts(record)["Skipped"] == 6 - 3 * len(ran)


def test_an_alarm_poll_failure_stops_the_deployment_with_the_reason():
    record = new(HOSTS, custom=ONE)
    records.start(record, HOSTS, [5, 1])
    records.gate(record, HOSTS[:5], False, alarm_stop={"alarm_poll_failure": "CloudWatch DescribeAlarms failed: x"})
    records.finish(record)
    assert record["status"] == "Stopped"
    assert record["error_information"]["message"].startswith(
        "The deployment was stopped because the state of its CloudWatch alarm(s) could not be read: CloudWatch "
        "DescribeAlarms failed: x. Set ignore_poll_alarm_failure")


def test_no_monitor_wait_without_zones_or_before_the_first_wave():
    record = new(HOSTS, custom=ONE)
    records.start(record, HOSTS, [5, 1])
    assert records.monitor_wait(record, HOSTS[:5], False) is None
    records.gate(record, HOSTS[:5], False)
    assert records.monitor_wait(record, HOSTS[5:], False) is None


def test_an_instance_named_twice_in_the_instance_order_keeps_each_wave_within_its_zone():
    # A duplicate counted twice made az-1 three instances: one wave took h1, h2 and h3 of az-2 with no bake time
    # between the zones (docs/codedeploy-service.md, 1.6).
    zones = {"h1": "az-1", "h2": "az-1", "h3": "az-2", "h4": "az-2"}
    record = new(["h1", "h2", "h3", "h4"], config="CodeDeployDefault.AllAtOnce",
                 zonal={"monitor_duration_in_seconds": 60})
    order = order_instances(["h1", "h2", "h3", "h4"], {}, ["h1", "h1"])
    order, batches, zone_list, refusal = records.plan_waves(record, order, zones)
    assert (order, batches, refusal) == (["h1", "h2", "h3", "h4"], [2, 2], None)
    records.start(record, order, batches, zone_list)
    first = records.gate(record, *records.next_batch(record))
    assert first["start"] == ["h1", "h2"]


# ----- blue/green ---------------------------------------------------------------------------------------------
def test_a_blue_green_deployment_installs_on_green_reroutes_then_blocks_blue():
    record = new_blue_green(["b1", "b2"], ["g1", "g2"])
    assert record["deployment_style"] == {"deployment_type": "BLUE_GREEN", "deployment_option": "WITH_TRAFFIC_CONTROL"}
    assert [(entry["instance_id"], entry["instance_type"]) for entry in record["instances"]] == [
        ("b1", "Blue"), ("b2", "Blue"), ("g1", "Green"), ("g2", "Green")]
    stages = []
    while True:
        stages.append(run_stage(record)["name"])
        if records.advance_stage(record) is None:
            break
    records.end_blue_green(record)
    assert stages == ["install", "reroute", "block"]
    assert record["status"] == "Succeeded"
    assert record["blue_green"]["removed_from_deployment_group"] == ["b1", "b2"]
    assert record["deployment_status_messages"][-1] == (
        "The original instances b1, b2 are no longer part of the deployment group: make the group's inventory name "
        "the replacement instances g1, g2 before its next deployment.")
    events = {entry["instance_id"]: [event["lifecycle_event_name"] for event in entry["lifecycle_events"]]
              for entry in record["instances"]}
    assert events["b1"] == list(records.BLOCK_TRAFFIC_EVENTS)
    assert events["g1"] == list(records.INSTALL_EVENTS + records.ALLOW_TRAFFIC_EVENTS)
    assert [wave["stage"] for wave in record["waves"]] == ["install", "reroute", "block"]


def test_traffic_moves_only_to_green_instances_that_installed():
    record = new_blue_green(["b1"], ["g1", "g2"])
    run_stage(record, failing=["g2"])
    reroute = records.advance_stage(record)
    assert [entry["instance_id"] for entry in reroute["instances"]] == ["g1"]
    assert reroute["minimum_healthy_hosts"]["count"] == 0


def test_a_green_install_beyond_the_minimum_ends_the_deployment_before_any_traffic_moves():
    record = new_blue_green(["b1", "b2"], ["g1", "g2"], config="CodeDeployDefault.OneAtATime")
    stage = run_stage(record, failing=["g1"])  # one at a time: g1 fails, g2 would break the minimum
    assert stage["status"] == "Failed"
    records.end_blue_green(record)
    assert (record["status"], record["error_information"]["code"]) == ("Failed", "HEALTH_CONSTRAINTS")
    assert {entry["instance_id"]: entry["status"] for entry in record["instances"]} == {
        "b1": "Skipped", "b2": "Skipped", "g1": "Failed", "g2": "Skipped"}


def test_blocking_blue_is_all_at_once_and_strict():
    record = new_blue_green(["b1", "b2", "b3"], ["g1"], config="CodeDeployDefault.OneAtATime")
    blocking = record["blue_green"]["stages"][2]
    assert records.wave_size_of(blocking) == 3
    assert records.stage_is_strict(blocking)


def test_a_blue_green_rollback_reroutes_back_to_blue_then_blocks_green():
    record = new_blue_green(["b1"], ["g1"], creator=records.CREATOR_ROLLBACK)
    assert [stage["name"] for stage in record["blue_green"]["stages"]] == ["reroute_back", "block_replacement"]
    events = {entry["instance_id"]: [event["lifecycle_event_name"] for event in entry["lifecycle_events"]]
              for entry in record["instances"]}
    assert events == {"b1": list(records.ALLOW_TRAFFIC_EVENTS), "g1": list(records.BLOCK_TRAFFIC_EVENTS)}


@pytest.mark.parametrize("blue, green, code", [
    (["b1"], [], "NO_INSTANCES"),
    (["b1", "x"], ["x"], "HEALTH_CONSTRAINTS_INVALID"),
])
def test_blue_green_refusals(blue, green, code):
    assert records.refuse_blue_green("webapp_green", blue, green).code == code


def test_a_blue_green_deployment_without_original_instances_is_refused_before_traffic_moves():
    # The original instances are the deployment group: none is NO_INSTANCES at start (docs/codedeploy-service.md,
    # 1.3), not a block stage refused once traffic has gone to the replacement instances.
    refusal = records.refuse_blue_green("webapp_green", [], ["g1", "g2"])
    assert refusal is not None and refusal.code == "NO_INSTANCES"


def test_unsupported_blue_green_options_are_named():
    assert records.unsupported_blue_green_options({}) is None
    assert records.unsupported_blue_green_options({
        "green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"},
        "deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT", "wait_time_in_minutes": 5},
        "terminate_blue_instances_on_deployment_success": {"action": "TERMINATE"},
    }) is None
    assert records.unsupported_blue_green_options({
        "green_fleet_provisioning_option": {"action": "COPY_ASG"},
        "terminate_blue_instances_on_deployment_success": {"action": "STOP"},
    }) == ("codedeploy_blue_green_deployment_configuration asks for what this release does not do: "
           "green_fleet_provisioning_option COPY_ASG (supported: DISCOVER_EXISTING, COPY_AUTO_SCALING_GROUP); "
           "terminate_blue_instances_on_deployment_success STOP (supported: KEEP_ALIVE, TERMINATE).")


def test_copying_the_auto_scaling_group_is_read_from_the_provisioning_option():
    assert records.copies_auto_scaling_group(
        {"blue_green": {"green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"}}})
    assert not records.copies_auto_scaling_group(
        {"blue_green": {"green_fleet_provisioning_option": {"action": "DISCOVER_EXISTING"}}})
    assert not records.copies_auto_scaling_group({"blue_green": None})


def test_a_ready_wait_stops_the_deployment_when_nobody_continues():
    record = new_blue_green(["b1"], ["g1"])
    record["options"]["blue_green"] = {"deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT",
                                                                   "wait_time_in_minutes": 5}}
    run_stage(record)
    records.advance_stage(record)
    assert records.waits_in_ready(record)
    now = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    records.become_ready(record, now)
    assert record["status"] == "Ready"
    assert record["blue_green"]["ready"] == {"since": "2026-01-01T12:00:00.000Z", "until": "2026-01-01T12:05:00.000Z",
                                             "wait_time_in_minutes": 5}
    assert records.continue_refusal(record) is None
    records.stop_ready(record)
    assert (record["status"], record["error_information"]["code"]) == ("Stopped", "TIMEOUT")
    assert {entry["instance_id"]: entry["status"] for entry in record["instances"]} == {
        "b1": "Skipped", "g1": "Succeeded"}
    assert records.continue_refusal(record) == (
        "Deployment d-TEST00002 is Stopped, not Ready: only a deployment waiting in Ready can be continued.")


def test_the_record_keeps_a_revision_without_the_credentials_of_its_url():
    name, minimum = resolve_minimum_healthy_hosts(None, None)
    revision = {"source": "git", "repository": "https://bot:t0k@git.example.com/app.git",
                "url": "https://bot:t0k@git.example.com/app.git", "commit_id": "a" * 40, "sha256": "abc"}
    record = records.new_record(
        deployment_id="d-TEST00001", application_name="webapp", deployment_group_name="prod",
        deployment_group_id="g", creator="user", revision=revision, deployment_config_name=name,
        minimum=minimum, instances=["web-1"], events=EVENTS, options={})
    assert record["revision"] == dict(revision, repository="https://***@git.example.com/app.git",
                                      url="https://***@git.example.com/app.git")


def test_next_batch_gives_the_waves_then_each_deferred_instance_once():
    record = new(["h1", "h2", "h3", "h4"], custom=ONE)
    records.start(record, ["h1", "h2", "h3", "h4"], [3, 1])
    assert records.next_batch(record) == (["h1", "h2", "h3"], False)
    records.gate(record, ["h1", "h2", "h3"], False)
    record["waves"][-1].update(instances=["h1", "h2"], deferred=["h3"])
    records.instance(record, "h3")["status"] = "Pending"
    assert records.next_batch(record) == (["h4"], False)
    records.gate(record, ["h4"], False)
    assert records.next_batch(record) == (["h3"], True)
    records.gate(record, ["h3"], True)
    assert records.next_batch(record) is None


def test_upcoming_batches_are_the_batches_left_then_the_deferred_ones_at_most_count():
    record = new(["h1", "h2", "h3", "h4", "h5"], custom=ONE)
    records.start(record, ["h1", "h2", "h3", "h4", "h5"], [1, 1, 1, 1, 1])
    assert records.upcoming_batches(record, 3) == [(["h1"], False), (["h2"], False), (["h3"], False)]
    records.gate(record, ["h1"], False)
    record["waves"][-1].update(instances=[], deferred=["h1"])
    records.instance(record, "h1")["status"] = "Pending"
    # The final pass waits for every batch to be gated: deferrals may still come.
    assert records.upcoming_batches(record, 10) == [([name], False) for name in ("h2", "h3", "h4", "h5")]
    for name in ("h2", "h3", "h4", "h5"):
        records.gate(record, [name], False)
    assert records.upcoming_batches(record, 10) == [(["h1"], True)]


def test_a_deployment_is_stopped_by_a_gates_stop_reason_or_by_its_minimum():
    record = new(["h1", "h2", "h3"], custom={"type": "HOST_COUNT", "value": 2})
    records.start(record, ["h1", "h2", "h3"], [1, 1, 1])
    assert not records.stopped(record)
    record["stop_reason"] = {"alarms": ["high-5xx"]}
    assert records.stopped(record)
    del record["stop_reason"]
    records.instance(record, "h1")["status"] = "Failed"
    assert records.stopped(record)  # 2 healthy of 3, minimum 2, work pending


def test_opening_a_wave_waits_what_is_due_then_says_who_starts():
    record = new(["h1", "h2", "h3"], custom=ONE)
    records.start(record, ["h1", "h2", "h3"], [2, 1])
    asked = []

    def before(names, final_pass):
        asked.append((names, final_pass))
        return {"seconds": 0, "setting": "monitor_duration_in_seconds"}, None

    opened = records.open_next_wave(record, before)
    assert asked == [(["h1", "h2"], False)]
    assert (opened["start"], opened["stop"], opened["wave"]) == (["h1", "h2"], False, 1)
    kept = {"seconds": 0, "setting": "monitor_duration_in_seconds"}
    assert opened["monitor_wait"] == record["waves"][0]["monitor_wait"] == kept
    assert [records.instance(record, name)["status"] for name in ("h1", "h2", "h3")] == [
        "InProgress", "InProgress", "Pending"]


def test_a_wave_in_which_nobody_may_start_is_recorded_empty_and_the_next_opened():
    record = new(["h1", "h2", "h3"], custom=ONE)
    records.start(record, ["h1", "h2", "h3"], [1, 1, 1])
    records.instance(record, "h1")["status"] = "Skipped"  # not Pending: nobody in the first wave may start
    opened = records.open_next_wave(record, lambda names, final_pass: (None, None))
    assert (opened["start"], opened["wave"]) == (["h2"], 2)
    assert record["waves"][0]["instances"] == [] and record["waves"][0]["end_time"]


def test_a_stop_before_a_wave_opens_it_stopped_and_a_stopped_deployment_opens_none():
    record = new(["h1", "h2"], custom=ONE)
    records.start(record, ["h1", "h2"], [1, 1])
    opened = records.open_next_wave(record, lambda names, final_pass: (None, {"alarms": ["high-5xx"]}))
    assert (opened["start"], opened["stop"], opened["alarms"]) == ([], True, ["high-5xx"])
    assert record["stop_reason"] == {"alarms": ["high-5xx"]} and record["waves"][0]["end_time"]

    def not_asked(names, final_pass):
        raise AssertionError("nothing is due before a wave that does not open")

    assert records.open_next_wave(record, not_asked) == {"start": [], "deferred": [], "stop": True, "wave": None,
                                                         "monitor_wait": None}


def test_after_the_last_wave_none_opens():
    record = new(["h1"], custom={"type": "HOST_COUNT", "value": 0})
    records.start(record, ["h1"], [1])
    assert records.open_next_wave(record, lambda names, final_pass: (None, None))["start"] == ["h1"]
    records.record_wave(record, {"h1": outcome("Succeeded")})
    assert records.open_next_wave(record, lambda names, final_pass: (None, None))["start"] == []


def test_a_host_lost_after_its_block_traffic_keeps_the_events_that_ran_and_fails_the_next():
    blocked = {"status": "Succeeded", "failed_event": None, "lifecycle_events": [
        event_record("BeforeBlockTraffic", "Succeeded", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"),
        event_record("BlockTraffic", "Succeeded", "2026-01-01T00:00:01Z", "2026-01-01T00:00:09Z")]}
    lost = records.segment_not_run(["AfterBlockTraffic", "ApplicationStop"],
                                   {"unreachable": True, "msg": "ssh: connect to host web-1 port 22: timed out"})

    instance = combine_segments([blocked, lost])

    assert (instance["status"], instance["failed_event"]) == ("Failed", "AfterBlockTraffic")
    assert [(event["lifecycle_event_name"], event["status"]) for event in instance["lifecycle_events"]] == [
        ("BeforeBlockTraffic", "Succeeded"), ("BlockTraffic", "Succeeded"), ("AfterBlockTraffic", "Failed"),
        ("ApplicationStop", "Skipped")]
    # Which of the call's events ran before the host was lost, the controller cannot know; the message says where.
    assert instance["lifecycle_events"][2]["diagnostics"]["message"] == (
        "The instance could not be reached: ssh: connect to host web-1 port 22: timed out (while AfterBlockTraffic "
        "to ApplicationStop were to run: if it was lost during them, the instance's scripts.log of this deployment "
        "shows those that ran)")


def test_a_host_unreachable_for_a_single_event_is_said_plainly():
    lost = records.segment_not_run(["AfterAllowTraffic"], {"unreachable": True, "msg": "ssh: timed out"})

    assert lost["lifecycle_events"][0]["diagnostics"]["message"] == "The instance could not be reached: ssh: timed out"


def test_a_host_unreachable_from_its_first_call_is_said_to_be_so_for_that_call_only():
    entry = {"instance_id": "web-1", "status": "Pending", "lifecycle_events": [
        {"lifecycle_event_name": name, "status": "Pending", "start_time": None, "end_time": None,
         "diagnostics": None}
        for name in ("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop")]}

    records.apply_instance_result(entry, {"unreachable": True, "msg": "ssh: timed out"})

    # Its first call runs BeforeBlockTraffic alone: BlockTraffic, the controller's, never ran.
    first = entry["lifecycle_events"][0]
    assert first["status"] == "Failed"
    assert first["diagnostics"]["message"] == "The instance could not be reached: ssh: timed out"
    assert {event["status"] for event in entry["lifecycle_events"][1:]} == {"Skipped"}
    without_traffic = {"instance_id": "web-2", "status": "Pending", "lifecycle_events": [
        {"lifecycle_event_name": name, "status": "Pending", "start_time": None, "end_time": None,
         "diagnostics": None} for name in ("ApplicationStop", "DownloadBundle", "ValidateService")]}
    records.apply_instance_result(without_traffic, {"unreachable": True, "msg": "ssh: timed out"})
    assert without_traffic["lifecycle_events"][0]["diagnostics"]["message"].endswith(
        "(while ApplicationStop to ValidateService were to run: if it was lost during them, the instance's "
        "scripts.log of this deployment shows those that ran)")
