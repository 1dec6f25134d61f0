# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alarm configurations checked with the service's rules; a poll's outcome, and a poll that cannot reach CloudWatch.

Polls of a real CloudWatch (moto) are in tests/integration/test_deploy_zones_alarms.py."""
from __future__ import annotations

import socket

import pytest

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.alarms import (
    AlarmConfigError, AlarmPoll, alarm_names, poll_alarms, read_alarm_states, validate_alarm_configuration)


def test_defaults_and_normal_form():
    assert validate_alarm_configuration({}) == {"enabled": False, "ignore_poll_alarm_failure": False, "alarms": []}
    assert validate_alarm_configuration({"enabled": True, "alarms": [{"name": "5xx"}, {"name": "latency"}]}) == {
        "enabled": True, "ignore_poll_alarm_failure": False, "alarms": [{"name": "5xx"}, {"name": "latency"}]}


@pytest.mark.parametrize("configuration, message", [
    ({"enabled": True, "alarms": []},
     "alarm_configuration is enabled but lists no alarm: add alarms [{name}] or set enabled: false"),
    ({"enabled": True, "alarms": [{"name": "a"}, {"name": "a"}]},
     "alarm_configuration.alarms[1]: alarm 'a' is listed twice"),
    ({"enabled": True, "alarms": [{"name": f"a{n}"} for n in range(11)]},
     "alarm_configuration.alarms has 11 alarms: at most 10 are allowed"),
    ({"enabled": True, "alarms": [{"name": ""}]}, "alarm_configuration.alarms[0] must be {name: <alarm name"),
    ({"enabled": True, "alarms": ["5xx"]}, "alarm_configuration.alarms[0] must be {name: <alarm name"),
    ({"enabled": True, "alarms": [{"name": "x" * 256}]}, "alarm_configuration.alarms[0] must be {name"),
    ({"enabled": True, "alarms": [{"name": "a", "region": "x"}]}, "alarm_configuration.alarms[0] must be {name"),
    ({"enabled": "yes", "alarms": [{"name": "a"}]}, "alarm_configuration.enabled must be true or false, not 'yes'"),
    ({"enable": True}, "alarm_configuration has unknown key(s) enable: use enabled, ignore_poll_alarm_failure, "
                       "alarms"),
    ({"enabled": True, "alarms": {"name": "a"}}, "alarm_configuration.alarms must be a list of {name}"),
])
def test_invalid_configurations(configuration, message):
    with pytest.raises(AlarmConfigError) as raised:
        validate_alarm_configuration(configuration)
    assert str(raised.value).startswith(message)


def test_a_disabled_configuration_polls_nothing():
    assert alarm_names({"enabled": False, "alarms": [{"name": "a"}]}) == []
    assert poll_alarms({"enabled": False, "alarms": [{"name": "a"}]}, {"endpoint_url": "http://127.0.0.1:1"}) == (
        AlarmPoll())


def test_states_read_from_describe_alarms():
    poll = read_alarm_states(["5xx", "latency", "typo"], [
        {"AlarmName": "latency", "StateValue": "OK"}, {"AlarmName": "5xx", "StateValue": "ALARM"}])
    assert poll.active == ["5xx"]
    assert poll.stop_reason() == {"alarms": ["5xx"]}
    assert poll.warnings == ["CloudWatch has no alarm named 'typo': it is not watched"]
    assert read_alarm_states(["a"], [{"AlarmName": "a", "StateValue": "INSUFFICIENT_DATA"}]).stop_reason() is None


@pytest.fixture
def closed_endpoint(monkeypatch):
    """An endpoint nothing listens on, and credentials so that boto3 gets as far as connecting."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {"endpoint_url": f"http://127.0.0.1:{port}", "region": "us-east-1", "max_attempts": 1}


def test_a_failed_poll_stops_the_deployment(closed_endpoint):
    poll = poll_alarms({"enabled": True, "alarms": [{"name": "5xx"}]}, closed_endpoint)
    assert poll.active == []
    assert poll.failure.startswith(f"CloudWatch DescribeAlarms failed: cannot reach {closed_endpoint['endpoint_url']}")
    assert poll.stop_reason() == {"alarm_poll_failure": poll.failure}


def test_a_failed_poll_is_a_warning_with_ignore_poll_alarm_failure(closed_endpoint):
    poll = poll_alarms({"enabled": True, "ignore_poll_alarm_failure": True, "alarms": [{"name": "5xx"}]},
                       closed_endpoint)
    assert poll.stop_reason() is None
    assert poll.warnings[0].startswith("alarm states could not be read, going on (ignore_poll_alarm_failure): "
                                       "CloudWatch DescribeAlarms failed: cannot reach")
