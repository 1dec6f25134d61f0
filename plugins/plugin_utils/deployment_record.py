# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deployment's record and its state machine, as the CodeDeploy service keeps it: pure functions over a dict.

The record is the shape of the API's DeploymentInfo (snake_case) plus ``instances`` with their lifecycle events,
``waves``, the ``batches`` (Ansible ``serial``) and, with a zonal configuration, the ``zones``. The role drives it:
``new_record`` → ``exclude_up_to_date`` and ``plan_waves`` → ``start`` → per wave ``monitor_wait``, ``gate`` and
``record_wave`` → ``finish``. The ledger stores it after every step, so a killed controller leaves InProgress.
"""
from __future__ import annotations

import datetime
from typing import Any, Callable, Optional

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import (
    MSG_HEALTH_CONSTRAINTS, MSG_NO_INSTANCES, MinimumHealthyHosts, StartRefusal, ZonalConfig, batch_sizes, final_status,
    must_stop, plan_zones, refuse_start, refuse_zones, split_wave, split_wave_by_zone, zonal_batch_sizes, zone_label)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import utc_timestamp
from ansible_collections.fleetops.codedeploy.plugins.module_utils.revision_source import display_revision
from ansible_collections.fleetops.codedeploy.plugins.module_utils import codedeploy_names
from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import (
    ALLOW_TRAFFIC_EVENTS, BLOCK_TRAFFIC_EVENTS, CREATOR_ROLLBACK, INSTALL_EVENTS, lifecycle_segments)

MSG_ALARM_ACTIVE = "The deployment was stopped because the CloudWatch alarm(s) {alarms} entered the ALARM state."
MSG_ALARM_POLL_FAILED = ("The deployment was stopped because the state of its CloudWatch alarm(s) could not be read: "
                         "{failure}. Set ignore_poll_alarm_failure to go on when alarm states cannot be read.")
MSG_UP_TO_DATE = ("{count} instance(s) already run this revision and are not part of the deployment "
                  "(update_outdated_instances_only): {names}.")
MSG_ALL_UP_TO_DATE = "Every instance already runs this revision: there was nothing to deploy."
MSG_ROLLBACK_NOT_ZONAL = "A rollback does not go zone by zone: the zonal configuration is not applied."
CREATOR_AUTOSCALING = codedeploy_names.CREATOR_AUTOSCALING  # as callers of this module know it
MSG_MANUAL_STOP = "The deployment was stopped on request ({by}, at {requested_at})."
MSG_STRICT = ("The deployment failed because {failed} instance(s) failed and codedeploy_strict requires every "
              "instance to succeed.")


def in_place_events(with_load_balancer: bool) -> list[str]:
    if with_load_balancer:
        return list(BLOCK_TRAFFIC_EVENTS + INSTALL_EVENTS + ALLOW_TRAFFIC_EVENTS)
    return list(INSTALL_EVENTS)


def pending_event(name: str) -> dict[str, Any]:
    return {"lifecycle_event_name": name, "status": "Pending", "start_time": None, "end_time": None,
            "diagnostics": None}


def new_record(*, deployment_id: str, application_name: str, deployment_group_name: str, deployment_group_id: str,
               creator: str, revision: dict[str, Any], deployment_config_name: str,
               minimum: MinimumHealthyHosts, instances: list[str], events: list[str],
               options: dict[str, Any], zonal: Optional[ZonalConfig] = None,
               traffic_control: bool = False) -> dict[str, Any]:
    """A Created deployment. ``zonal`` is the resolved zonal configuration; a rollback never goes zone by zone.
    ``traffic_control``: the instances are behind a load balancer (the Block/AllowTraffic events). The revision is
    recorded as shown: credentials in its URL redacted."""
    messages = []
    if zonal is not None and creator == CREATOR_ROLLBACK:
        zonal = None
        messages.append(MSG_ROLLBACK_NOT_ZONAL)
    return {
        "deployment_id": deployment_id,
        "application_name": application_name,
        "deployment_group_name": deployment_group_name,
        "deployment_group_id": deployment_group_id,
        "status": "Created",
        "error_information": None,
        "creator": creator,
        "rollback_info": None,
        "revision": display_revision(revision) if revision else revision,
        "deployment_config_name": deployment_config_name,
        "minimum_healthy_hosts": {"type": minimum.type, "value": minimum.value,
                                  "count": minimum.count(len(instances))},
        "deployment_style": {"deployment_type": "IN_PLACE", "deployment_option": (
            "WITH_TRAFFIC_CONTROL" if traffic_control else "WITHOUT_TRAFFIC_CONTROL")},
        "options": options,
        "create_time": utc_timestamp(),
        "start_time": None,
        "complete_time": None,
        "instances": [{"instance_id": name, "status": "Pending",
                       "lifecycle_events": [pending_event(event) for event in events]} for name in instances],
        "waves": [],
        "wave_size": None,
        "batches": None,
        "zonal_config": None if zonal is None else {
            "minimum_healthy_hosts_per_zone": {"type": zonal.minimum_per_zone.type,
                                               "value": zonal.minimum_per_zone.value},
            "monitor_duration_in_seconds": zonal.monitor_duration,
            "first_zone_monitor_duration_in_seconds": zonal.first_zone_monitor_duration},
        "zones": None,
        "skipped_up_to_date": [],
        "deployment_status_messages": messages,
    }


def minimum_count(record: dict[str, Any]) -> int:
    return record["minimum_healthy_hosts"]["count"]


def minimum_rule(record: dict[str, Any]) -> MinimumHealthyHosts:
    return MinimumHealthyHosts(record["minimum_healthy_hosts"]["type"], record["minimum_healthy_hosts"]["value"])


def zone_of(record: dict[str, Any]) -> dict[str, str]:
    """Instance -> zone name ("" for no zone), for a zonal deployment once started; else empty."""
    return {name: zone["name"] for zone in record.get("zones") or [] for name in zone["instances"]}


def zone_counts(record: dict[str, Any], zone: dict[str, Any]) -> dict[str, int]:
    members = set(zone["instances"])
    return counts({"instances": [entry for entry in record["instances"] if entry["instance_id"] in members]})


def counts(record: dict[str, Any]) -> dict[str, int]:
    found = {"instances": len(record["instances"]), "Pending": 0, "InProgress": 0, "Succeeded": 0, "Failed": 0,
             "Skipped": 0}
    for instance in record["instances"]:
        found[instance["status"]] = found.get(instance["status"], 0) + 1
    return found


def instance(record: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in record["instances"]:
        if entry["instance_id"] == name:
            return entry
    raise KeyError(f"{name} is not an instance of deployment {record['deployment_id']}")


def refuse(record: dict[str, Any], refusal: StartRefusal) -> dict[str, Any]:
    """A deployment that cannot start: Failed, nothing touched, every instance Skipped."""
    for entry in record["instances"]:
        entry["status"] = "Skipped"
        for event in entry["lifecycle_events"]:
            event["status"] = "Skipped"
    record["status"] = "Failed"
    record["error_information"] = {"code": refusal.code, "message": refusal.message}
    record["complete_time"] = utc_timestamp()
    return record


def exclude_up_to_date(record: dict[str, Any], up_to_date: list[str]) -> dict[str, Any]:
    """update_outdated_instances_only: the instances that already run this revision leave the deployment, and
    N and the minimum are counted without them."""
    if not up_to_date:
        return record
    record["instances"] = [entry for entry in record["instances"] if entry["instance_id"] not in up_to_date]
    record["skipped_up_to_date"] = list(up_to_date)
    record["minimum_healthy_hosts"]["count"] = minimum_rule(record).count(len(record["instances"]))
    record["deployment_status_messages"].append(MSG_UP_TO_DATE.format(count=len(up_to_date),
                                                                      names=", ".join(up_to_date)))
    return record


def up_to_date_instances(record: dict[str, Any], last_deployments: dict[str, tuple]) -> list[str]:
    """The instances whose own last deployment succeeded with this revision's bundle: ``last_deployments`` maps an
    instance to (its last deployment succeeded, that deployment's bundle sha256)."""
    sha256 = (record.get("revision") or {}).get("sha256")
    return [entry["instance_id"] for entry in record["instances"]
            if sha256 and last_deployments.get(entry["instance_id"]) == (True, sha256)]


def plan_waves(record: dict[str, Any], order: list[str], zones_of_hosts: dict[str, Optional[str]]
               ) -> tuple[list[str], list[int], Optional[list[dict[str, Any]]], Optional[StartRefusal]]:
    """(instances in deployment order, batch sizes, zones, refusal) for the instances left in the deployment.

    Without a zonal configuration: waves of N - M in ``order``. With one: zone after zone, each zone's instances
    keeping their relative ``order``, waves capped at Nz - Mz. No instance left (all up to date) is no refusal."""
    size = wave_size_of(record)
    if not order and record["skipped_up_to_date"]:
        return [], [], None, None
    refusal = refuse_start(len(order), minimum_count(record), record["deployment_config_name"])
    config = record.get("zonal_config")
    if refusal or config is None:
        return order, batch_sizes(len(order), size), None, refusal
    per_zone = config["minimum_healthy_hosts_per_zone"]
    zones = plan_zones(order, zones_of_hosts, MinimumHealthyHosts(per_zone["type"], per_zone["value"]))
    zone_dicts = [{"name": zone.name, "instances": list(zone.instances), "minimum": zone.minimum} for zone in zones]
    ordered = [name for zone in zones for name in zone.instances]
    return ordered, zonal_batch_sizes(zones, size), zone_dicts, refuse_zones(zones)


def wave_size_of(record: dict[str, Any]) -> int:
    """N - M, at least 1."""
    return max(len(record["instances"]) - minimum_count(record), 1)


def start(record: dict[str, Any], order: list[str], batches: list[int],
          zones: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """Put instances in deployment order and the deployment InProgress."""
    position = {name: index for index, name in enumerate(order)}
    record["instances"].sort(key=lambda entry: position[entry["instance_id"]])
    record["wave_size"] = wave_size_of(record)
    record["batches"] = list(batches)
    record["planned_waves"] = len(batches)
    record["zones"] = zones
    record["status"] = "InProgress"
    record["start_time"] = utc_timestamp()
    return record


def stuck_zone(record: dict[str, Any]) -> Optional[str]:
    """A zone with work pending whose healthy count is at its minimum (Nz - Fz <= Mz), or None."""
    for zone in record.get("zones") or []:
        state = zone_counts(record, zone)
        if must_stop(state["instances"], zone["minimum"], state["Failed"], state["Pending"]):
            return zone["name"]
    return None


def should_stop(record: dict[str, Any]) -> bool:
    """Work is pending and the healthy count is at the minimum, of the deployment or of a zone."""
    state = counts(record)
    return (must_stop(state["instances"], minimum_count(record), state["Failed"], state["Pending"])
            or stuck_zone(record) is not None)


def stopped(record: dict[str, Any]) -> bool:
    """The deployment starts no more waves: an alarm or a stop request stopped it at a gate (its ``stop_reason``),
    or the minimum healthy hosts would be broken."""
    return bool(record.get("stop_reason")) or should_stop(record)


def monitor_wait(record: dict[str, Any], batch: list[str], final_pass: bool) -> Optional[dict[str, Any]]:
    """The bake time due before ``batch``: when it is the first wave of a zone after another zone's waves.

    The final one-at-a-time pass revisits zones already deployed and baked: it waits for none."""
    config = record.get("zonal_config")
    if config is None or final_pass or not batch or not record["waves"] or should_stop(record):
        return None
    zones = zone_of(record)
    finished, upcoming = record["waves"][-1].get("zone"), zones.get(batch[0])
    if finished == upcoming:
        return None
    # The first zone has its own bake time (first_zone_monitor_duration_in_seconds, defaulting to the other).
    key = ("first_zone_monitor_duration_in_seconds" if finished == record["zones"][0]["name"]
           else "monitor_duration_in_seconds")
    return {"seconds": config[key], "setting": key, "after_zone": finished, "before_zone": upcoming}


def upcoming_batches(record: dict[str, Any], count: int) -> list[tuple[list[str], bool]]:
    """The next waves to gate, at most ``count``, as (instances, final pass), as far as they are known now.

    The started deployment's batches not gated yet (waves of N - M, or zone by zone); once every batch has been
    gated, each instance deferred so far that has not had its turn in the final one-at-a-time pass, in the order
    they were deferred."""
    regular = [wave for wave in record["waves"] if not wave["final_pass"]]
    batches = record.get("batches") or []
    order = [entry["instance_id"] for entry in record["instances"]]
    position = sum(batches[:len(regular)])
    upcoming: list[tuple[list[str], bool]] = []
    for size in batches[len(regular):]:
        upcoming.append((order[position:position + size], False))
        position += size
    if not upcoming:
        tried = {name for wave in record["waves"] if wave["final_pass"]
                 for name in wave["instances"] + wave["deferred"]}
        upcoming = [([name], True) for wave in regular for name in wave["deferred"]
                    if name not in tried and instance(record, name)["status"] == "Pending"]
    return upcoming[:count]


def next_batch(record: dict[str, Any]) -> Optional[tuple[list[str], bool]]:
    """The next wave to gate (see ``upcoming_batches``), or None when every wave has been gated."""
    upcoming = upcoming_batches(record, 1)
    return upcoming[0] if upcoming else None


def polls_alarms(record: dict[str, Any]) -> bool:
    """A rollback does not poll alarms: the alarm that stopped the deployment it undoes is most likely still in
    ALARM, and the rollback is the remedy."""
    return record.get("creator") != CREATOR_ROLLBACK


def gate(record: dict[str, Any], batch: list[str], final_pass: bool, waited: Optional[dict[str, Any]] = None,
         alarm_stop: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Decide which instances of ``batch`` start now; the rest wait for the final one-at-a-time pass.

    ``waited`` is the monitor wait that preceded this gate (see ``monitor_wait``), kept in the wave;
    ``alarm_stop`` (``{"alarms": [...]}`` or ``{"alarm_poll_failure": message}``) stops the deployment here."""
    if should_stop(record):
        return {"start": [], "deferred": [], "stop": True, "wave": None}
    candidates = [name for name in batch if instance(record, name)["status"] == "Pending"]
    zones = zone_of(record)
    wave = {"index": len(record["waves"]) + 1, "final_pass": final_pass, "zone": None, "monitor_wait": waited,
            "instances": [], "deferred": [], "start_time": utc_timestamp(), "end_time": None}
    if zones and candidates:
        wave["zone"] = zones[candidates[0]]
    record["waves"].append(wave)
    if alarm_stop:
        record["stop_reason"] = alarm_stop
        wave.update(end_time=wave["start_time"], **alarm_stop)
        return {"start": [], "deferred": [], "stop": True, "wave": wave["index"]}
    state = counts(record)
    if zones:
        allowed_in_zone = {}
        for zone in record["zones"]:
            zone_state = zone_counts(record, zone)
            allowed_in_zone[zone["name"]] = zone_state["instances"] - zone_state["Failed"] - zone["minimum"]
        started, deferred = split_wave_by_zone(
            candidates, state["instances"] - state["Failed"] - minimum_count(record), allowed_in_zone, zones)
    else:
        started, deferred = split_wave(candidates, state["instances"], minimum_count(record), state["Failed"])
    for name in started:
        instance(record, name)["status"] = "InProgress"
    wave.update(instances=started, deferred=deferred)
    return {"start": started, "deferred": deferred, "stop": False, "wave": wave["index"]}


# What is due before a wave opens (the caller waits and polls): (the wait it kept, or None; a stop reason, or None).
BeforeWave = Callable[[list[str], bool], tuple[Optional[dict[str, Any]], Optional[dict[str, Any]]]]


def open_next_wave(record: dict[str, Any], before: BeforeWave) -> dict[str, Any]:
    """Open the wave ``record`` expects next (``next_batch``): ``before(batch, final_pass)`` waits what is due before
    it (a zone's bake time) and says whether something stops the deployment there (an alarm, a stop request); then
    ``gate`` decides who starts. A wave in which nobody may start is recorded empty and the one after it opened; a
    deployment that stopped, or ran every wave, opens none. Returns the gate's decision with the wait and the stop
    reason (``start`` empty when no wave is open)."""
    while not stopped(record) and (batch := next_batch(record)) is not None:
        names, final_pass = batch
        waited, stop_reason = before(names, final_pass)
        decision = gate(record, names, final_pass, waited=waited, alarm_stop=stop_reason)
        if decision["start"] or decision["stop"]:
            return {"monitor_wait": waited, **(stop_reason or {}), **decision}
        record_wave(record, {})  # everyone deferred: the wave ends here, empty
    return {"start": [], "deferred": [], "stop": stopped(record), "wave": None, "monitor_wait": None}


def unreachable_events(events: list[dict[str, Any]], message: str) -> list[dict[str, Any]]:
    """The host could not be reached: the first event that should have run fails, the rest are skipped."""
    now = utc_timestamp()
    failed = False
    for event in events:
        if event["status"] != "Pending":
            continue
        if not failed:
            event.update(status="Failed", start_time=now, end_time=now, diagnostics={
                "error_code": "UnknownError", "script_name": "", "message": message, "log_tail": ""})
            failed = True
        else:
            event["status"] = "Skipped"
    return events


def apply_instance_result(entry: dict[str, Any], result: Optional[dict[str, Any]]) -> None:
    """Fold one host's lifecycle result (or its absence, or unreachability) into its instance entry."""
    reported_events = result.get("lifecycle_events") if result else None
    for transfer in ("bundle_push", "bundle_pull"):
        if result and result.get(transfer):
            entry[transfer] = result[transfer]
    if isinstance(reported_events, list) and result.get("status") in ("Succeeded", "Failed"):
        reported = {event["lifecycle_event_name"]: event for event in reported_events}
        for event in entry["lifecycle_events"]:
            event.update(reported.get(event["lifecycle_event_name"], {}))
        entry["status"] = result["status"]
        return
    events = entry["lifecycle_events"]
    unreachable_events(events, not_run_message(result, first_call(events)))
    entry["status"] = "Failed"


def first_call(events: list[dict[str, Any]]) -> list[str]:
    """The pending events that the instance's first module call runs: those before its first traffic event (the
    controller's), or all of them without a load balancer."""
    pending = [event["lifecycle_event_name"] for event in events if event["status"] == "Pending"]
    return next((names for kind, names in lifecycle_segments(pending) if kind == "host"), [])


def not_run_message(result: Optional[dict[str, Any]], pending: list[str]) -> str:
    """Why a host's lifecycle events did not run, from its task result (or its absence); ``pending``: those its
    module call was to run. A host lost in the middle of the call may have run some of them: the controller cannot
    know which, and the message says where the host's own log tells."""
    if result and result.get("unreachable"):
        message = f"The instance could not be reached: {result.get('msg', 'unreachable')}"
        if len(pending) > 1:
            message += (f" (while {pending[0]} to {pending[-1]} were to run: if it was lost during them, the "
                        "instance's scripts.log of this deployment shows those that ran)")
        return message
    if result:
        return f"The instance failed before its lifecycle events ran: {result.get('msg', 'no message')}"
    return ("The instance did not run its lifecycle events: it is not in this run's play (not in its inventory, left "
            "out by its limit, or failed in an earlier task).")


def segment_not_run(names: list[str], result: dict[str, Any]) -> dict[str, Any]:
    """A run of host events that did not run (``result``: the host unreachable, the module not started) after
    earlier events of the instance did: its part of the instance result, its first event Failed with why, the rest
    Skipped."""
    pending = [{"lifecycle_event_name": name, "status": "Pending", "start_time": None, "end_time": None,
                "diagnostics": None} for name in names]
    return {"status": "Failed", "failed_event": names[0],
            "lifecycle_events": unreachable_events(pending, not_run_message(result, names))}


def record_wave(record: dict[str, Any], results: dict[str, Optional[dict[str, Any]]]) -> dict[str, Any]:
    """Fold the last wave's host results into the record; return the wave's summary line data."""
    wave = record["waves"][-1]
    for name in wave["instances"]:
        apply_instance_result(instance(record, name), results.get(name))
    wave["end_time"] = utc_timestamp()
    state = counts(record)
    outcomes = [instance(record, name)["status"] for name in wave["instances"]]
    summary = {
        "wave": wave["index"],
        "final_pass": wave["final_pass"],
        "planned_waves": record.get("planned_waves"),
        "instances": len(wave["instances"]),
        "deferred": len(wave["deferred"]),
        "succeeded": outcomes.count("Succeeded"),
        "failed": outcomes.count("Failed"),
        "healthy": state["instances"] - state["Failed"],
        "minimum": minimum_count(record),
        "stop": should_stop(record),
        "zone": None,
        "stuck_zone": stuck_zone(record),
    }
    for zone in record.get("zones") or []:
        if zone["name"] == wave["zone"]:
            zone_state = zone_counts(record, zone)
            summary.update(zone=zone_label(zone["name"]), zone_healthy=zone_state["instances"] - zone_state["Failed"],
                           zone_minimum=zone["minimum"])
    if summary["stuck_zone"] is not None:
        summary["stuck_zone"] = zone_label(summary["stuck_zone"])
    return summary


def finish(record: dict[str, Any], strict: bool = False) -> dict[str, Any]:
    """Final status: Stopped on alarm (``stop_reason``), Failed on health constraints (or strict), else Succeeded
    — also with no instance at all when every one was already up to date."""
    stopped_early = any(entry["status"] == "Pending" for entry in record["instances"])
    stop_reason = record.get("stop_reason") or {}
    for entry in record["instances"]:
        if entry["status"] in ("Pending", "InProgress"):
            entry["status"] = "Skipped"
            for event in entry["lifecycle_events"]:
                if event["status"] == "Pending":
                    event["status"] = "Skipped"
    state = counts(record)
    if stop_reason.get("manual_stop"):
        record["status"] = "Stopped"
        record["error_information"] = {"code": "MANUAL_STOP", "message": MSG_MANUAL_STOP.format(
            **{"by": "a user", "requested_at": "?", **stop_reason["manual_stop"]})}
    elif stop_reason.get("alarms"):
        record["status"] = "Stopped"
        record["error_information"] = {"code": "ALARM_ACTIVE",
                                       "message": MSG_ALARM_ACTIVE.format(alarms=", ".join(stop_reason["alarms"]))}
    elif stop_reason.get("alarm_poll_failure"):
        record["status"] = "Stopped"
        record["error_information"] = {"code": "ALARM_ACTIVE", "message": MSG_ALARM_POLL_FAILED.format(
            failure=stop_reason["alarm_poll_failure"])}
    elif not record["instances"] and record.get("skipped_up_to_date"):
        record["status"] = "Succeeded"
        record["deployment_status_messages"].append(MSG_ALL_UP_TO_DATE)
    elif stopped_early or final_status(minimum_count(record), state["Succeeded"]) == "Failed":
        record["status"] = "Failed"
        record["error_information"] = {"code": "HEALTH_CONSTRAINTS", "message": MSG_HEALTH_CONSTRAINTS}
    elif strict and state["Failed"]:
        record["status"] = "Failed"
        record["error_information"] = {"code": "HEALTH_CONSTRAINTS", "message": MSG_STRICT.format(
            failed=state["Failed"])}
    else:
        record["status"] = "Succeeded"
    record["complete_time"] = utc_timestamp()
    return record


# --- blue/green -----------------------------------------------------------------------------------------------
# A blue/green deployment runs in stages, each one a record of the in-place kind (the same waves, gate, health
# rules and finish) over the instances and events of that stage: install on the replacement (Green) instances,
# reroute traffic to them at the configuration's rate, then block traffic to the original (Blue) ones. A rollback
# reroutes back: allow traffic on Blue, block it on Green. The deployment's own record shows every instance, labelled
# Blue or Green, with the events of all its stages, and the waves of all stages.
BLUE, GREEN = "Blue", "Green"
STAGES = {
    "install": (GREEN, INSTALL_EVENTS),
    "reroute": (GREEN, ALLOW_TRAFFIC_EVENTS),
    "block": (BLUE, BLOCK_TRAFFIC_EVENTS),
    "reroute_back": (BLUE, ALLOW_TRAFFIC_EVENTS),
    "block_replacement": (GREEN, BLOCK_TRAFFIC_EVENTS),
    # TERMINATE: after the wait, the originals' application is stopped (and EC2 instances are terminated).
    "terminate": (BLUE, ["ApplicationStop"]),
}
DEPLOYMENT_STAGES = ["install", "reroute", "block"]
ROLLBACK_STAGES = ["reroute_back", "block_replacement"]
# Any deregistration failure fails the deployment, and a rollback must restore every original instance.
STRICT_STAGES = ("block", "reroute_back", "block_replacement", "terminate")
# ... and they move all of their instances at once.
ALL_AT_ONCE = MinimumHealthyHosts("HOST_COUNT", 0)
MSG_NO_GREEN = ("A blue/green deployment needs replacement instances: the group {group!r} (codedeploy_green_group) "
                "has none.")
MSG_GREEN_IN_BLUE = ("The replacement instances must not be original instances too: {names} are in both the "
                     "deployment group and codedeploy_green_group.")


def new_blue_green_record(*, deployment_id: str, application_name: str, deployment_group_name: str,
                          deployment_group_id: str, creator: str, revision: dict[str, Any],
                          deployment_config_name: str, minimum: MinimumHealthyHosts, blue: list[str],
                          green: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """A Created blue/green deployment (or the rollback of one, by ``creator``) with its stages planned."""
    names = ROLLBACK_STAGES if creator == CREATOR_ROLLBACK else DEPLOYMENT_STAGES + (
        ["terminate"] if termination(options) is not None else [])
    hosts = {BLUE: list(blue), GREEN: list(green)}
    record = new_record(deployment_id=deployment_id, application_name=application_name,
                        deployment_group_name=deployment_group_name, deployment_group_id=deployment_group_id,
                        creator=creator, revision=revision, deployment_config_name=deployment_config_name,
                        minimum=minimum, instances=[], events=[], options=options, traffic_control=True)
    record["deployment_style"]["deployment_type"] = "BLUE_GREEN"
    record["blue_green"] = {"blue": list(blue), "green": list(green), "stage": 0, "ready": None, "stages": [
        {"name": name, **new_record(
            deployment_id=deployment_id, application_name=application_name,
            deployment_group_name=deployment_group_name, deployment_group_id=deployment_group_id, creator=creator,
            revision=revision, deployment_config_name=deployment_config_name,
            minimum=ALL_AT_ONCE if name in STRICT_STAGES else minimum,
            instances=hosts[STAGES[name][0]], events=STAGES[name][1], options=options, traffic_control=True)}
        for name in names]}
    record["minimum_healthy_hosts"] = dict(record["blue_green"]["stages"][0]["minimum_healthy_hosts"])
    return compose_blue_green(record)


def is_blue_green(record: dict[str, Any]) -> bool:
    return bool(record.get("blue_green"))


def refuse_blue_green(green_group: str, blue: list[str], green: list[str]) -> Optional[StartRefusal]:
    if not green:
        return StartRefusal("NO_INSTANCES", MSG_NO_GREEN.format(group=green_group))
    if not blue:
        # The original instances are the deployment group: none is NO_INSTANCES before anything is touched
        # (docs/codedeploy-service.md, 1.3), not a block stage refused once traffic has moved.
        return StartRefusal("NO_INSTANCES", MSG_NO_INSTANCES)
    both = sorted(set(blue) & set(green))
    if both:
        return StartRefusal("HEALTH_CONSTRAINTS_INVALID", MSG_GREEN_IN_BLUE.format(names=", ".join(both)))
    return None


def current_stage(record: dict[str, Any]) -> dict[str, Any]:
    """The stage record the wave steps work on: the deployment itself when it is not blue/green."""
    if not is_blue_green(record):
        return record
    return record["blue_green"]["stages"][record["blue_green"]["stage"]]


def stop_request_fields(request: dict[str, Any]) -> dict[str, Any]:
    """A stop request, with who asked and when said even when the request does not say."""
    return {"by": "a user", "requested_at": "?", **request}


def manual_stop_rollback(record: dict[str, Any]) -> bool:
    """The stop request that stopped this deployment (its current stage) asked for a rollback."""
    return bool(((current_stage(record).get("stop_reason") or {}).get("manual_stop") or {}).get("rollback"))


def rolls_back(record: dict[str, Any], triggering_id: str) -> None:
    """The rollback_info of a rollback: the deployment it rolls back."""
    record["rollback_info"] = {"rollback_deployment_id": None, "rollback_triggering_deployment_id": triggering_id,
                               "rollback_message": None}


def rolled_back_by(record: dict[str, Any], rollback_id: str) -> None:
    """The rollback_info of a deployment that a rollback undoes (the service links them both ways)."""
    # A rollback rolled back in turn keeps the link to the deployment it rolled back.
    triggering_id = (record.get("rollback_info") or {}).get("rollback_triggering_deployment_id")
    record["rollback_info"] = {"rollback_deployment_id": rollback_id,
                               "rollback_triggering_deployment_id": triggering_id,
                               "rollback_message": f"Rolled back by {rollback_id}."}


def rollback_not_created(record: dict[str, Any], reason: str) -> None:
    """The rollback the deployment asked for could not be created: its rollback_info says so, and why (the
    service's rollbackMessage)."""
    record["rollback_info"] = {**(record.get("rollback_info") or {}), "rollback_deployment_id": None,
                               "rollback_message": f"The rollback could not be created: {reason.rstrip('.')}."}


def stage_is_strict(stage: dict[str, Any]) -> bool:
    return stage.get("name") in STRICT_STAGES


def advance_stage(record: dict[str, Any]) -> Optional[dict[str, Any]]:
    """After a stage succeeded: the next stage, its instances narrowed to those the last stage left serving (traffic
    is rerouted only to replacement instances that installed); None after the last stage."""
    info = record["blue_green"]
    done = info["stages"][info["stage"]]
    if info["stage"] + 1 >= len(info["stages"]):
        return None
    info["stage"] += 1
    following = info["stages"][info["stage"]]
    if following["name"] == "reroute":
        installed = [entry["instance_id"] for entry in done["instances"] if entry["status"] == "Succeeded"]
        following["instances"] = [entry for entry in following["instances"] if entry["instance_id"] in installed]
        following["minimum_healthy_hosts"]["count"] = minimum_rule(following).count(len(installed))
    return following


def end_blue_green(record: dict[str, Any]) -> dict[str, Any]:
    """The deployment ends with its current stage: that stage's status is the deployment's; later stages never
    ran (their instances' events are Skipped)."""
    info = record["blue_green"]
    stage = info["stages"][info["stage"]]
    for later in info["stages"][info["stage"] + 1:]:
        refuse(later, StartRefusal("", ""))
        later.update(status="Skipped", error_information=None)
    record["status"] = stage["status"]
    record["error_information"] = stage["error_information"]
    if stage["name"] == "terminate" and stage["status"] != "Succeeded":
        # Traffic has moved: what happens to the originals afterwards does not undo the deployment.
        failed = [entry["instance_id"] for entry in stage["instances"] if entry["status"] != "Succeeded"]
        record["status"], record["error_information"] = "Succeeded", None
        record["deployment_status_messages"].append(MSG_NOT_STOPPED.format(names=", ".join(failed)))
    record["deployment_status_messages"] += [message for message in stage["deployment_status_messages"]
                                             if message not in record["deployment_status_messages"]]
    if record["status"] == "Succeeded" and record["creator"] != CREATOR_ROLLBACK:
        # The originals leave the deployment group (KEEP_ALIVE: still running, out of the load balancer; TERMINATE:
        # stopped). The group is an inventory group here: the operator points it at the replacement instances.
        info["removed_from_deployment_group"] = list(info["blue"])
        record["deployment_status_messages"].append(MSG_BLUE_REMOVED.format(
            blue=", ".join(info["blue"]), green=", ".join(info["green"])))
    record["start_time"] = record["start_time"] or stage.get("start_time")
    record["complete_time"] = stage["complete_time"] or utc_timestamp()
    return compose_blue_green(record)


def compose_blue_green(record: dict[str, Any]) -> dict[str, Any]:
    """The deployment's instances and waves from its stages: each instance labelled Blue or Green with the events of
    every stage it is in, in order; its status Failed if a stage failed it, else that of its latest stage that ran
    (a Green instance installed before the deployment stopped stays Succeeded), else Skipped or Pending."""
    info = record["blue_green"]
    entries = []
    for kind in (BLUE, GREEN):
        for name in info[kind.lower()]:
            parts = [stage_entry for stage in info["stages"] for stage_entry in stage["instances"]
                     if stage_entry["instance_id"] == name]
            statuses = [part["status"] for part in parts]
            ran = [status for status in statuses if status not in ("Pending", "Skipped")]
            status = ("Failed" if "Failed" in statuses else ran[-1] if ran
                      else "Skipped" if "Skipped" in statuses else "Pending")
            entries.append({"instance_id": name, "instance_type": kind, "status": status,
                            "lifecycle_events": [event for part in parts for event in part["lifecycle_events"]]})
    record["instances"] = entries
    record["waves"] = [{**wave, "stage": stage["name"]} for stage in info["stages"] for wave in stage["waves"]]
    record["start_time"] = record["start_time"] or next(
        (stage["start_time"] for stage in info["stages"] if stage.get("start_time")), None)
    if record["status"] == "Created" and record["start_time"]:
        record["status"] = "InProgress"
    return record


SUPPORTED_BLUE_GREEN_OPTIONS = {
    "green_fleet_provisioning_option": ("DISCOVER_EXISTING", "COPY_AUTO_SCALING_GROUP"),
    "deployment_ready_option": ("CONTINUE_DEPLOYMENT", "STOP_DEPLOYMENT"),
    "terminate_blue_instances_on_deployment_success": ("KEEP_ALIVE", "TERMINATE"),
}
BLUE_GREEN_ACTION_KEYS = {"deployment_ready_option": "action_on_timeout"}


def copies_auto_scaling_group(options: dict[str, Any]) -> bool:
    """The replacement fleet is a copy of the deployment group's Auto Scaling group (else an inventory group)."""
    provisioning = ((options.get("blue_green") or {}).get("green_fleet_provisioning_option") or {})
    return provisioning.get("action") == "COPY_AUTO_SCALING_GROUP"


def unsupported_blue_green_options(config: dict[str, Any]) -> Optional[str]:
    """Why ``codedeploy_blue_green_deployment_configuration`` asks for something this release cannot do, or None."""
    problems = []
    for option, supported in SUPPORTED_BLUE_GREEN_OPTIONS.items():
        action = ((config or {}).get(option) or {}).get(BLUE_GREEN_ACTION_KEYS.get(option, "action"))
        if action and action not in supported:
            problems.append(f"{option} {action} (supported: {', '.join(supported)})")
    if not problems:
        return None
    return ("codedeploy_blue_green_deployment_configuration asks for what this release does not do: "
            + "; ".join(problems) + ".")


MSG_READY_TIMEOUT = ("The deployment was not continued within {minutes} minute(s) of becoming Ready "
                     "(deployment_ready_option STOP_DEPLOYMENT): it is Stopped and traffic still goes to the "
                     "original instances.")


def stop_ready(record: dict[str, Any]) -> dict[str, Any]:
    """A Ready deployment whose wait time passed: Stopped (TIMEOUT), its remaining stages Skipped."""
    minutes = record["blue_green"]["ready"]["wait_time_in_minutes"]
    stage = record["blue_green"]["stages"][record["blue_green"]["stage"]]
    stage.update(status="Stopped", error_information={"code": "TIMEOUT",
                                                      "message": MSG_READY_TIMEOUT.format(minutes=minutes)},
                 complete_time=utc_timestamp())
    for entry in stage["instances"]:
        entry["status"] = "Skipped"
        for event in entry["lifecycle_events"]:
            event["status"] = "Skipped"
    return end_blue_green(record)


def waits_in_ready(record: dict[str, Any]) -> bool:
    """The next stage reroutes traffic and the configuration asks to stop there until someone continues."""
    option = ((record["options"].get("blue_green") or {}).get("deployment_ready_option") or {})
    return (option.get("action_on_timeout") == "STOP_DEPLOYMENT"
            and current_stage(record).get("name") == "reroute" and record["creator"] != CREATOR_ROLLBACK)


def become_ready(record: dict[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """Green is installed; traffic waits: status Ready until ``until`` (the ready option's wait time)."""
    minutes = int(((record["options"].get("blue_green") or {}).get("deployment_ready_option") or {}).get(
        "wait_time_in_minutes") or 0)
    until = now + datetime.timedelta(minutes=minutes)
    record["status"] = "Ready"
    record["blue_green"]["ready"] = {"since": utc_timestamp(now), "until": utc_timestamp(until),
                                     "wait_time_in_minutes": minutes}
    return record


MSG_NOT_READY = "Deployment {deployment_id} is {status}, not Ready: only a deployment waiting in Ready can be continued."
MSG_NOT_BLUE_GREEN = "Deployment {deployment_id} is an in-place deployment: only blue/green deployments wait in Ready."


def continue_refusal(record: dict[str, Any]) -> Optional[str]:
    """Why ContinueDeployment does not apply (DeploymentIsNotInReadyState, UnsupportedActionForDeploymentType)."""
    if not is_blue_green(record):
        return MSG_NOT_BLUE_GREEN.format(deployment_id=record["deployment_id"])
    if record["status"] != "Ready":
        return MSG_NOT_READY.format(deployment_id=record["deployment_id"], status=record["status"])
    return None


def resume(record: dict[str, Any]) -> dict[str, Any]:
    record["status"] = "InProgress"
    return record


MSG_BLUE_REMOVED = ("The original instances {blue} are no longer part of the deployment group: make the group's "
                    "inventory name the replacement instances {green} before its next deployment.")
MSG_NOT_STOPPED = ("ApplicationStop did not succeed on original instance(s) {names}: their application may still run "
                   "(TERMINATE).")


def termination(options: dict[str, Any]) -> Optional[float]:
    """With TERMINATE, the wait before the originals are stopped (and terminated on EC2), in seconds; else None.
    ``termination_wait_time_in_minutes`` may have decimals."""
    option = (options.get("blue_green") or {}).get("terminate_blue_instances_on_deployment_success") or {}
    if option.get("action") != "TERMINATE":
        return None
    return float(option.get("termination_wait_time_in_minutes") or 0) * 60


def termination_wait(record: dict[str, Any], batch: list[str]) -> Optional[dict[str, Any]]:
    """The wait due before the first wave of the terminate stage, as a wave's ``monitor_wait``."""
    stage = current_stage(record)
    if not is_blue_green(record) or stage.get("name") != "terminate" or stage["waves"] or not batch:
        return None
    return {"seconds": termination(record["options"]), "setting": "termination_wait_time_in_minutes",
            "after_zone": None, "before_zone": None}
