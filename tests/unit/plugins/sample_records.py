# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A finished deployment record made by the record functions the deployment uses."""
from __future__ import annotations

import datetime

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils import deployment_record as records
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import utc_timestamp
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import MinimumHealthyHosts
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
