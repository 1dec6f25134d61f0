# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CloudWatch alarms polled between waves: any alarm in ALARM stops the deployment (Stopped, ALARM_ACTIVE).

``alarm_configuration`` is the service's ``alarmConfiguration``: ``{enabled, ignore_poll_alarm_failure,
alarms: [{name}]}``, checked with its rules (docs/codedeploy-service.md, 4.2). A poll that cannot read the alarm states
stops the deployment too, unless ``ignore_poll_alarm_failure``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

ALARM_CONFIGURATION_KEYS = ("enabled", "ignore_poll_alarm_failure", "alarms")
MAX_ALARMS = 10
MAX_ALARM_NAME_LENGTH = 255


class AlarmConfigError(ValueError):
    """An alarm configuration the service would refuse (InvalidAlarmConfigException, AlarmsLimitExceeded...)."""


@dataclass
class AlarmPoll:
    """The outcome of one poll: alarms in ALARM, or why the states could not be read (``failure``)."""

    active: list[str] = field(default_factory=list)
    failure: Optional[str] = None
    warnings: list[str] = field(default_factory=list)

    def stop_reason(self) -> Optional[dict[str, Any]]:
        """What stops the deployment, as the record keeps it, or None."""
        if self.active:
            return {"alarms": list(self.active)}
        if self.failure:
            return {"alarm_poll_failure": self.failure}
        return None


def validate_alarm_configuration(configuration) -> dict[str, Any]:
    """The configuration with its defaults, or AlarmConfigError naming the key and the rule."""
    if not configuration:
        return {"enabled": False, "ignore_poll_alarm_failure": False, "alarms": []}
    if not isinstance(configuration, Mapping):
        raise AlarmConfigError(f"alarm_configuration must be a dict {{{', '.join(ALARM_CONFIGURATION_KEYS)}}}, "
                               f"not {configuration!r}")
    unknown = sorted(set(configuration) - set(ALARM_CONFIGURATION_KEYS))
    if unknown:
        raise AlarmConfigError(f"alarm_configuration has unknown key(s) {', '.join(unknown)}: use "
                               f"{', '.join(ALARM_CONFIGURATION_KEYS)}")
    flags = {}
    for key in ("enabled", "ignore_poll_alarm_failure"):
        value = configuration.get(key, False)
        if not isinstance(value, bool):
            raise AlarmConfigError(f"alarm_configuration.{key} must be true or false, not {value!r}")
        flags[key] = value
    alarms = configuration.get("alarms")
    alarms = [] if alarms is None else alarms
    if not isinstance(alarms, list):
        raise AlarmConfigError(f"alarm_configuration.alarms must be a list of {{name}}, not {alarms!r}")
    if len(alarms) > MAX_ALARMS:
        raise AlarmConfigError(f"alarm_configuration.alarms has {len(alarms)} alarms: at most {MAX_ALARMS} are "
                               "allowed")
    names: list[str] = []
    for index, alarm in enumerate(alarms):
        name = alarm.get("name") if isinstance(alarm, Mapping) else None
        if not isinstance(alarm, Mapping) or set(alarm) != {"name"} or not isinstance(name, str) or not (
                0 < len(name) <= MAX_ALARM_NAME_LENGTH):
            raise AlarmConfigError(f"alarm_configuration.alarms[{index}] must be {{name: <alarm name, 1 to "
                                   f"{MAX_ALARM_NAME_LENGTH} characters>}}, not {alarm!r}")
        if name in names:
            raise AlarmConfigError(f"alarm_configuration.alarms[{index}]: alarm {name!r} is listed twice")
        names.append(name)
    if flags["enabled"] and not names:
        raise AlarmConfigError("alarm_configuration is enabled but lists no alarm: add alarms [{name}] or set "
                               "enabled: false")
    return {**flags, "alarms": [{"name": name} for name in names]}


def alarm_names(configuration: Optional[dict[str, Any]]) -> list[str]:
    """The alarms to poll: none when the configuration is off (the console's "ignore alarm configuration")."""
    if not configuration or not configuration.get("enabled"):
        return []
    return [alarm["name"] for alarm in configuration.get("alarms") or []]


def read_alarm_states(names: list[str], metric_alarms: list[dict[str, Any]]) -> AlarmPoll:
    """The poll's outcome from DescribeAlarms' ``MetricAlarms``: listed alarms CloudWatch does not know are a
    warning (a misspelt name protects nothing), not a stop."""
    states = {alarm["AlarmName"]: alarm.get("StateValue") for alarm in metric_alarms}
    missing = [name for name in names if name not in states]
    warnings = [f"CloudWatch has no alarm named {', '.join(repr(name) for name in missing)}: it is not watched"
                ] if missing else []
    return AlarmPoll(active=[name for name in names if states.get(name) == "ALARM"], warnings=warnings)


def poll_alarms(configuration: Optional[dict[str, Any]], aws: Optional[dict[str, Any]]) -> AlarmPoll:
    """Alarms in ALARM now. A failed poll stops the deployment unless ignore_poll_alarm_failure is set."""
    names = alarm_names(configuration)
    if not names:
        return AlarmPoll()
    # Imported here: only deployments with alarms need boto3.
    from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
        HAS_BOTO3, aws_client_from_options, describe_aws_error)

    if not HAS_BOTO3:
        failure = "CloudWatch DescribeAlarms failed: the controller's Python has no boto3 (pip install boto3)"
    else:
        try:
            client = aws_client_from_options("cloudwatch", aws)
            return read_alarm_states(names, client.describe_alarms(AlarmNames=names)["MetricAlarms"])
        except Exception as error:  # pylint: disable=broad-exception-caught  # any failure to poll is one decision
            failure = describe_aws_error(error, "CloudWatch DescribeAlarms")
    if (configuration or {}).get("ignore_poll_alarm_failure"):
        return AlarmPoll(warnings=[f"alarm states could not be read, going on (ignore_poll_alarm_failure): "
                                   f"{failure}"])
    return AlarmPoll(failure=failure)
