# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CloudWatch alarms polled between waves: any alarm in ALARM stops the deployment (ALARM_ACTIVE)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class AlarmPoll:
    active: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def alarm_names(configuration: Optional[dict[str, Any]]) -> list[str]:
    if not configuration or not configuration.get("enabled"):
        return []
    return [alarm["name"] for alarm in configuration.get("alarms") or []]


def poll_alarms(configuration: Optional[dict[str, Any]], aws: Optional[dict[str, Any]]) -> AlarmPoll:
    """Alarms in ALARM now. A failed poll stops the deployment unless ignore_poll_alarm_failure is set."""
    names = alarm_names(configuration)
    if not names:
        return AlarmPoll()
    # Imported here: only deployments with alarms need boto3.
    from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import aws_client, describe_aws_error

    try:
        client = aws_client("cloudwatch", **(aws or {}))
        alarms = client.describe_alarms(AlarmNames=names)["MetricAlarms"]
    except Exception as error:  # pylint: disable=broad-exception-caught  # any failure to poll is one decision
        message = describe_aws_error(error, "CloudWatch DescribeAlarms")
        if (configuration or {}).get("ignore_poll_alarm_failure"):
            return AlarmPoll(warnings=[f"alarm states could not be read, continuing as configured: {message}"])
        return AlarmPoll(active=[f"(poll failed: {message})"])
    return AlarmPoll(active=sorted(alarm["AlarmName"] for alarm in alarms if alarm["StateValue"] == "ALARM"))
