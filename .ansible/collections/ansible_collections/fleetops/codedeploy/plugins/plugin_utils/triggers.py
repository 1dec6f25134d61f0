# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment triggers, as CodeDeploy's ``triggerConfigurations``: a JSON notification to an SNS topic (or, our
extension, an HTTP(S) webhook receiving the same JSON by POST) when a deployment or an instance reaches an event.

The messages have the shape of CodeDeploy's trigger notifications (times in epoch seconds as text, the overview's
counts as text). Delivery is from the controller, with short timeouts and a bounded retry; a delivery that fails is
a warning, never a failed deployment.
"""
from __future__ import annotations

import datetime
import json
import time
import urllib.error
from typing import Any, Callable, Iterable, Optional
from urllib.parse import urlsplit

from ansible.module_utils.urls import open_url

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
    AWS_ERRORS, aws_client_from_options, describe_aws_error)

DEPLOYMENT_EVENTS = ("DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop",
                     "DeploymentRollback", "DeploymentReady")
INSTANCE_EVENTS = ("InstanceStart", "InstanceSuccess", "InstanceFailure", "InstanceReady")
EVENTS = DEPLOYMENT_EVENTS + INSTANCE_EVENTS
# The final status of a deployment, as the event its triggers announce.
FINAL_EVENTS = {"Succeeded": "DeploymentSuccess", "Failed": "DeploymentFailure", "Stopped": "DeploymentStop"}
INSTANCE_FINAL_EVENTS = {"Succeeded": "InstanceSuccess", "Failed": "InstanceFailure"}
OVERVIEW_KEYS = ("Failed", "InProgress", "Pending", "Skipped", "Succeeded")
CONFIGURATION_KEYS = ("trigger_name", "trigger_events", "trigger_target_arn", "trigger_target_url")
# A deployment waits on no notification: a few seconds per attempt, one retry (SNS and webhooks alike).
WEBHOOK_TIMEOUT = 5.0
ATTEMPTS = 2
RETRY_DELAY = 1.0
EVENT_HEADER = "X-Codedeploy-Event"


class TriggerConfigError(Exception):
    """A trigger configuration the deployment cannot use; the message names the entry and the fix."""


def validate_trigger_configurations(configurations: Any) -> list[dict[str, Any]]:
    """The configurations, checked: a name, known events, an SNS topic ARN and/or an HTTP(S) URL each."""
    if configurations in (None, ""):
        return []
    if not isinstance(configurations, list):
        raise TriggerConfigError("codedeploy_trigger_configurations must be a list of "
                                 "{trigger_name, trigger_events, trigger_target_arn or trigger_target_url}")
    checked = []
    for index, entry in enumerate(configurations):
        where = f"codedeploy_trigger_configurations[{index}]"
        if not isinstance(entry, dict):
            raise TriggerConfigError(f"{where} must be a dict with {', '.join(CONFIGURATION_KEYS)}")
        unknown = sorted(set(entry) - set(CONFIGURATION_KEYS))
        if unknown:
            raise TriggerConfigError(f"{where} has unknown key(s) {', '.join(unknown)}: the keys are "
                                     f"{', '.join(CONFIGURATION_KEYS)}")
        name = entry.get("trigger_name")
        if not isinstance(name, str) or not name.strip():
            raise TriggerConfigError(f"{where}.trigger_name must be a non-empty name")
        events = entry.get("trigger_events")
        if not isinstance(events, list) or not events:
            raise TriggerConfigError(f"{where}.trigger_events must list one or more of {', '.join(EVENTS)}")
        wrong = [event for event in events if event not in EVENTS]
        if wrong:
            raise TriggerConfigError(f"{where}.trigger_events: {', '.join(map(str, wrong))} "
                                     f"{'is not an event' if len(wrong) == 1 else 'are not events'}; "
                                     f"the events are {', '.join(EVENTS)}")
        arn, url = entry.get("trigger_target_arn") or "", entry.get("trigger_target_url") or ""
        if not arn and not url:
            raise TriggerConfigError(f"{where} needs a target: trigger_target_arn (an SNS topic ARN) or "
                                     "trigger_target_url (an http:// or https:// URL)")
        if arn and not (isinstance(arn, str) and arn.startswith("arn:") and arn.split(":")[2:3] == ["sns"]):
            raise TriggerConfigError(f"{where}.trigger_target_arn {arn!r} is not an SNS topic ARN "
                                     "(arn:aws:sns:<region>:<account>:<topic>)")
        if url and not (isinstance(url, str) and urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc):
            raise TriggerConfigError(f"{where}.trigger_target_url {url!r} is not an http:// or https:// URL")
        checked.append({"trigger_name": name, "trigger_events": list(dict.fromkeys(events)),
                        "trigger_target_arn": arn, "trigger_target_url": url})
    return checked


def epoch_text(timestamp: Optional[str]) -> Optional[str]:
    """An ISO 8601 UTC time as CodeDeploy's notifications write it: epoch seconds with milliseconds, as text."""
    if not timestamp:
        return None
    moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return f"{moment.timestamp():.3f}"


def _origin(arn: str, region: Optional[str]) -> dict[str, Optional[str]]:
    """``region`` and ``accountId``: the topic's own when the target is an SNS topic."""
    parts = arn.split(":") if arn else []
    if len(parts) >= 6:
        return {"region": parts[3], "accountId": parts[4]}
    return {"region": region, "accountId": None}


def deployment_message(record: dict[str, Any], trigger_name: str, arn: str = "",
                       region: Optional[str] = None) -> dict[str, Any]:
    """A deployment event's notification."""
    counts = {key: 0 for key in OVERVIEW_KEYS}
    for entry in record.get("instances") or []:
        if entry["status"] in counts:
            counts[entry["status"]] += 1
    error = record.get("error_information") or {}
    message = {
        **_origin(arn, region),
        "eventTriggerName": trigger_name,
        "applicationName": record["application_name"],
        "deploymentId": record["deployment_id"],
        "deploymentGroupName": record["deployment_group_name"],
        "createTime": epoch_text(record.get("create_time")),
        "completeTime": epoch_text(record.get("complete_time")),
        "deploymentOverview": {key: str(value) for key, value in counts.items()},
        "status": record["status"],
    }
    if error:
        message["errorInformation"] = {"ErrorCode": error.get("code"), "ErrorMessage": error.get("message")}
    return message


def instance_message(record: dict[str, Any], instance: dict[str, Any], trigger_name: str, arn: str = "",
                     region: Optional[str] = None) -> dict[str, Any]:
    """An instance event's notification: the instance's status and its lifecycle events so far."""
    events = instance.get("lifecycle_events") or []
    times = [time for event in events for time in (event.get("start_time"), event.get("end_time")) if time]
    return {
        **_origin(arn, region),
        "eventTriggerName": trigger_name,
        "applicationName": record["application_name"],
        "deploymentId": record["deployment_id"],
        "deploymentGroupName": record["deployment_group_name"],
        "instanceId": instance["instance_id"],
        "lastUpdatedAt": epoch_text(max(times)) if times else None,
        "instanceStatus": instance["status"],
        "lifecycleEvents": [{"LifecycleEvent": event["lifecycle_event_name"],
                             "LifecycleEventStatus": event["status"],
                             "StartTime": epoch_text(event.get("start_time")),
                             "EndTime": epoch_text(event.get("end_time"))} for event in events],
    }


def notifications(record: dict[str, Any], event: str, instance_ids: Iterable[str] = ()) -> list[tuple[dict, dict]]:
    """(trigger configuration, message) for each trigger of the record that asked for ``event``: one message per
    trigger for a deployment event, one per trigger and instance for an instance event."""
    configurations = (record.get("options") or {}).get("trigger_configurations") or []
    region = ((record.get("options") or {}).get("aws") or {}).get("region")
    wanted = [config for config in configurations if event in config["trigger_events"]]
    if event in DEPLOYMENT_EVENTS:
        return [(config, deployment_message(record, config["trigger_name"], config.get("trigger_target_arn") or "",
                                            region)) for config in wanted]
    by_id = {entry["instance_id"]: entry for entry in record.get("instances") or []}
    return [(config, instance_message(record, by_id[name], config["trigger_name"],
                                      config.get("trigger_target_arn") or "", region))
            for config in wanted for name in instance_ids if name in by_id]


def subject(event: str, record: dict[str, Any]) -> str:
    """The SNS subject: the event first, as CodeDeploy's subjects start with the deployment's state."""
    return (f"{event}: fleetops.codedeploy {record['deployment_id']} of "
            f"{record['application_name']}/{record['deployment_group_name']}")[:100]


def post_webhook(url: str, event: str, body: bytes, timeout: float = WEBHOOK_TIMEOUT) -> None:
    """POST the JSON body; an answer other than 2xx raises."""
    with open_url(url, data=body, method="POST", timeout=timeout, http_agent="fleetops.codedeploy",
                  headers={"Content-Type": "application/json", EVENT_HEADER: event}) as answer:
        answer.read()


def _with_retry(send: Callable[[], None], attempts: int, delay: float) -> None:
    for attempt in range(1, attempts + 1):
        try:
            send()
            return
        except Exception:  # pylint: disable=broad-except  # re-raised after the last attempt
            if attempt == attempts:
                raise
            time.sleep(delay)


def url_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def describe_webhook_error(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return f"{type(error).__name__}: {error}"


def notify(record: dict[str, Any], event: str, instance_ids: Iterable[str] = (), *, attempts: int = ATTEMPTS,
           delay: float = RETRY_DELAY, timeout: float = WEBHOOK_TIMEOUT) -> list[str]:
    """Deliver ``event`` to the record's triggers that asked for it. Returns a warning per failed delivery, and adds
    it to the record's ``deployment_status_messages`` (the caller saves the record)."""
    warnings = []
    sns = None
    for config, message in notifications(record, event, instance_ids):
        body = json.dumps(message)
        name = config["trigger_name"]
        if config.get("trigger_target_arn"):
            arn = config["trigger_target_arn"]
            try:
                if sns is None:
                    aws = dict((record.get("options") or {}).get("aws") or {})
                    sns = aws_client_from_options("sns", {**aws, "region": aws.get("region") or arn.split(":")[3],
                                                          "max_attempts": attempts}, timeout=timeout)
                sns.publish(TopicArn=arn, Subject=subject(event, record), Message=body, MessageAttributes={
                    "event": {"DataType": "String", "StringValue": event}})
            except AWS_ERRORS as error:
                warnings.append(f"Trigger {name!r}: {event} not delivered: "
                                f"{describe_aws_error(error, f'SNS Publish to {arn}')}")
        if config.get("trigger_target_url"):
            url = config["trigger_target_url"]
            try:
                _with_retry(lambda url=url, body=body: post_webhook(url, event, body.encode(), timeout),
                            attempts, delay)
            except Exception as error:  # pylint: disable=broad-except  # a notification never fails a deployment
                # Only the URL's origin: its path or query often holds the webhook's secret token.
                warnings.append(f"Trigger {name!r}: {event} not delivered to {url_origin(url)} after {attempts} "
                                f"attempt(s): {describe_webhook_error(error)}")
    record.setdefault("deployment_status_messages", []).extend(warnings)
    return warnings
