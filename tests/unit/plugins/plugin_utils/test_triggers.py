# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trigger configurations checked, CodeDeploy's notification JSON built from a record, and webhook delivery to a
real local HTTP server (one that answers, one that fails, one that never answers).

SNS delivery through moto is in tests/integration/test_reports_triggers.py."""
from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.triggers import (
    EVENTS, TriggerConfigError, deployment_message, epoch_text, instance_message, notifications, notify,
    validate_trigger_configurations)

from sample_records import finished_record

TOPIC = "arn:aws:sns:eu-west-1:123456789012:deployments"


def test_configurations_in_normal_form():
    assert validate_trigger_configurations(None) == []
    assert validate_trigger_configurations([
        {"trigger_name": "chat", "trigger_events": ["DeploymentFailure", "DeploymentFailure"],
         "trigger_target_arn": TOPIC}]) == [
        {"trigger_name": "chat", "trigger_events": ["DeploymentFailure"], "trigger_target_arn": TOPIC,
         "trigger_target_url": ""}]


@pytest.mark.parametrize("configuration, message", [
    ({"trigger_name": "t", "trigger_events": ["DeploymentSucess"], "trigger_target_arn": TOPIC},
     "codedeploy_trigger_configurations[0].trigger_events: DeploymentSucess is not an event; the events are "
     + ", ".join(EVENTS)),
    ({"trigger_name": "t", "trigger_events": [], "trigger_target_arn": TOPIC},
     "trigger_events must list one or more of DeploymentStart"),
    ({"trigger_name": "", "trigger_events": ["DeploymentStart"], "trigger_target_arn": TOPIC},
     "codedeploy_trigger_configurations[0].trigger_name must be a non-empty name"),
    ({"trigger_name": "t", "trigger_events": ["DeploymentStart"]}, "needs a target: trigger_target_arn"),
    ({"trigger_name": "t", "trigger_events": ["DeploymentStart"], "trigger_target_arn": "arn:aws:sqs:r:1:q"},
     "'arn:aws:sqs:r:1:q' is not an SNS topic ARN"),
    ({"trigger_name": "t", "trigger_events": ["DeploymentStart"], "trigger_target_url": "ftp://host/x"},
     "'ftp://host/x' is not an http:// or https:// URL"),
    ({"trigger_name": "t", "trigger_events": ["DeploymentStart"], "trigger_target_url": "https://h", "target": 1},
     "unknown key(s) target"),
])
def test_invalid_configurations_name_the_entry_and_the_fix(configuration, message):
    with pytest.raises(TriggerConfigError) as raised:
        validate_trigger_configurations([configuration])
    assert message in str(raised.value)


def test_deployment_message_has_codedeploys_shape():
    record = finished_record(failing=["web-2"])
    assert deployment_message(record, "chat", TOPIC) == {
        "region": "eu-west-1", "accountId": "123456789012", "eventTriggerName": "chat", "applicationName": "webapp",
        "deploymentId": "d-AAAAAAAAA", "deploymentGroupName": "prod",
        "createTime": epoch_text(record["create_time"]), "completeTime": epoch_text(record["complete_time"]),
        "deploymentOverview": {"Failed": "1", "InProgress": "0", "Pending": "0", "Skipped": "0", "Succeeded": "1"},
        "status": "Failed",
        "errorInformation": {"ErrorCode": "HEALTH_CONSTRAINTS",
                             "ErrorMessage": record["error_information"]["message"]}}
    assert epoch_text("2015-11-05T17:23:08.595Z") == "1446744188.595"
    assert "errorInformation" not in deployment_message(finished_record(), "chat", "", "us-east-1")


def test_instance_message_has_codedeploys_shape():
    record = finished_record(failing=["web-2"])
    message = instance_message(record, record["instances"][1], "pager", "", "us-east-1")
    assert message["region"] == "us-east-1" and message["accountId"] is None
    assert (message["instanceId"], message["instanceStatus"], message["deploymentId"]) == \
        ("web-2", "Failed", "d-AAAAAAAAA")
    validate = record["instances"][1]["lifecycle_events"][-1]
    assert message["lastUpdatedAt"] == epoch_text(validate["end_time"])
    assert message["lifecycleEvents"][-1] == {
        "LifecycleEvent": "ValidateService", "LifecycleEventStatus": "Failed",
        "StartTime": epoch_text(validate["start_time"]), "EndTime": epoch_text(validate["end_time"])}


def test_only_the_triggers_that_asked_for_an_event_get_it():
    triggers = validate_trigger_configurations([
        {"trigger_name": "all", "trigger_events": list(EVENTS), "trigger_target_url": "http://h/all"},
        {"trigger_name": "failures", "trigger_events": ["DeploymentFailure", "InstanceFailure"],
         "trigger_target_arn": TOPIC}])
    record = finished_record(failing=["web-2"], triggers=triggers)
    assert [(c["trigger_name"], m["status"]) for c, m in notifications(record, "DeploymentFailure")] == \
        [("all", "Failed"), ("failures", "Failed")]
    assert [c["trigger_name"] for c, _m in notifications(record, "DeploymentSuccess")] == ["all"]
    assert [(c["trigger_name"], m["instanceId"]) for c, m in notifications(record, "InstanceFailure", ["web-2"])] == \
        [("all", "web-2"), ("failures", "web-2")]
    assert notifications(record, "InstanceStart", []) == []


class Receiver(http.server.BaseHTTPRequestHandler):
    answers: list = []
    received: list = []

    def do_POST(self):  # noqa: N802  (the http.server method name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["X-Codedeploy-Event"], json.loads(body)))
        self.send_response(self.answers.pop(0) if self.answers else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Receiver.answers, Receiver.received = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Receiver
    server.shutdown()
    server.server_close()


def record_with_hooks(*urls, events=("DeploymentSuccess",)):
    return finished_record(triggers=validate_trigger_configurations([
        {"trigger_name": f"hook{index}", "trigger_events": list(events), "trigger_target_url": url}
        for index, url in enumerate(urls)]))


def test_webhook_receives_the_message_once(webhook):
    url, receiver = webhook
    record = record_with_hooks(f"{url}/deployments")
    assert notify(record, "DeploymentSuccess", delay=0) == []
    assert [(path, event, body["status"], body["eventTriggerName"]) for path, event, body in receiver.received] == \
        [("/deployments", "DeploymentSuccess", "Succeeded", "hook0")]
    assert notify(record, "DeploymentStart", delay=0) == [] and len(receiver.received) == 1


def test_a_failed_answer_is_retried_once(webhook):
    url, receiver = webhook
    receiver.answers = [503]
    record = record_with_hooks(f"{url}/x")
    assert notify(record, "DeploymentSuccess", delay=0) == []
    assert len(receiver.received) == 2


def test_an_unanswered_webhook_is_a_warning_in_the_record_without_its_path(webhook):
    url, receiver = webhook
    receiver.answers = [500, 500]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections wait in the backlog: nobody ever answers
    try:
        record = record_with_hooks(f"{url}/secret-token", f"http://127.0.0.1:{silent.getsockname()[1]}/token")
        warnings = notify(record, "DeploymentSuccess", delay=0, timeout=0.5)
    finally:
        silent.close()
    assert warnings[0] == (f"Trigger 'hook0': DeploymentSuccess not delivered to {url} after 2 attempt(s): "
                           "HTTP 500 Internal Server Error")
    assert warnings[1].startswith("Trigger 'hook1': DeploymentSuccess not delivered to http://127.0.0.1:")
    assert warnings[1].endswith("after 2 attempt(s): no answer in time")
    assert "token" not in " ".join(warnings)
    assert record["deployment_status_messages"][-2:] == warnings


def test_an_sns_topic_that_cannot_be_reached_is_a_warning(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there any more
    record = finished_record(triggers=validate_trigger_configurations([
        {"trigger_name": "sns", "trigger_events": ["DeploymentSuccess"], "trigger_target_arn": TOPIC}]))
    record["options"]["aws"] = {"endpoint_url": f"http://127.0.0.1:{port}"}
    warnings = notify(record, "DeploymentSuccess", delay=0, timeout=1)
    assert len(warnings) == 1 and warnings[0].startswith(
        f"Trigger 'sns': DeploymentSuccess not delivered: SNS Publish to {TOPIC} failed: cannot reach "
        f"http://127.0.0.1:{port}")
    assert record["deployment_status_messages"][-1] == warnings[0]
