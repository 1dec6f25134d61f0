# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment records made by the record functions the deployment uses: a finished (or running) in-place one, and
blue/green ones stage by stage, up to waiting in Ready."""
from __future__ import annotations

import datetime

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils import deployment_record as records
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import utc_timestamp
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import (
    MinimumHealthyHosts, resolve_minimum_healthy_hosts)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger import deployment_overview

EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "ApplicationStart", "ValidateService"]


def finished_record(names=("web-1", "web-2"), failing=(), deployment_id="d-AAAAAAAAA", created=None,
                    triggers=None, ended=True) -> dict:
    """``ended``: False leaves it InProgress, its one wave recorded, for the finish step to end."""
    record = records.new_record(
        deployment_id=deployment_id, application_name="webapp", deployment_group_name="prod",
        deployment_group_id="group-id", creator="user", revision={"source": "local", "path": "/srv/rev"},
        deployment_config_name="CodeDeployDefault.AllAtOnce", minimum=MinimumHealthyHosts("HOST_COUNT", 0),
        instances=list(names), events=EVENTS, options={"trigger_configurations": triggers or []})
    if created:
        record["create_time"] = created
    records.start(record, list(names), [len(names)])
    records.gate(record, list(names), False)
    began = datetime.datetime.fromisoformat(record["start_time"].replace("Z", "+00:00"))

    def at(seconds):
        return utc_timestamp(began + datetime.timedelta(seconds=seconds))

    results = {}
    for index, name in enumerate(names):
        events = []
        for position, event in enumerate(EVENTS):
            failed = name in failing and event == "ValidateService"
            events.append({"lifecycle_event_name": event, "status": "Failed" if failed else "Succeeded",
                           "start_time": at(index + position), "end_time": at(index + position + 1),
                           "diagnostics": {"error_code": "ScriptFailed", "script_name": "scripts/validate.sh",
                                           "message": "Script at specified location: scripts/validate.sh failed",
                                           "log_tail": f"validation failed on {name}\n"} if failed else None})
        results[name] = {"status": "Failed" if name in failing else "Succeeded", "lifecycle_events": events}
    records.record_wave(record, results)
    if not ended:
        return record
    records.finish(record, strict=bool(failing))  # any failed instance fails it
    record["complete_time"] = at(len(names) + len(EVENTS))
    record["deployment_overview"] = deployment_overview(record["instances"])
    return record


def new_blue_green(blue, green, config="CodeDeployDefault.AllAtOnce", creator="user"):
    name, minimum = resolve_minimum_healthy_hosts(config, None)
    return records.new_blue_green_record(
        deployment_id="d-TEST00002", application_name="webapp", deployment_group_name="prod",
        deployment_group_id="g", creator=creator, revision={"sha256": "abc"}, deployment_config_name=name,
        minimum=minimum, blue=list(blue), green=list(green), options={})


def run_stage(record, failing=()):
    """Start the current stage and run it as one wave; finish it; return the stage."""
    stage = records.current_stage(record)
    order = [entry["instance_id"] for entry in stage["instances"]]
    order, batches, zones, refusal = records.plan_waves(stage, order, {})
    assert refusal is None
    records.start(stage, order, batches, zones)
    decision = records.gate(stage, order, False)
    names = [event["lifecycle_event_name"] for event in stage["instances"][0]["lifecycle_events"]]
    records.record_wave(stage, {host: {"status": "Failed" if host in failing else "Succeeded", "lifecycle_events": [
        {"lifecycle_event_name": name, "status": "Failed" if host in failing else "Succeeded", "start_time": "t",
         "end_time": "t", "diagnostics": None} for name in names]} for host in decision["start"]})
    records.finish(stage, strict=records.stage_is_strict(stage))
    records.compose_blue_green(record)
    return stage


def ready_record(deployment_group_id, ready_until) -> dict:
    """A blue/green deployment of webapp/prod whose replacement instance g1 is installed, waiting in Ready until
    ``ready_until`` (a datetime)."""
    record = {**new_blue_green(["b1"], ["g1"]), "deployment_group_id": deployment_group_id}
    record["options"]["blue_green"] = {"deployment_ready_option": {"action_on_timeout": "STOP_DEPLOYMENT",
                                                                   "wait_time_in_minutes": 5}}
    run_stage(record)
    records.advance_stage(record)
    return records.become_ready(record, ready_until - datetime.timedelta(minutes=5))
