# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What deployments leave behind, on a real fleet: the JUnit and HTML reports (looked at in headless Chromium)
written without the report callback, the notifications of their triggers (an SNS topic of the moto server read back
through an SQS subscription, a local webhook, a webhook nobody answers), and their history through deployment_info.
"""
from __future__ import annotations

import http.server
import json
import re
import socket
import threading
from pathlib import Path
from xml.etree import ElementTree

import boto3
import pytest

from support.browser import colours, dom, screenshot
from support.controller import run_on_controller
from support.deployments import deployment_vars, local, make_revision, records

DEPLOY = "fleetops.codedeploy.deploy"
INFO = "fleetops.codedeploy.deployment_info"
GREEN, RED = bytes.fromhex("2e7d32"), bytes.fromhex("c62828")  # the report's Succeeded and Failed colours


class Webhook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802  (the http.server method name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.headers["X-Codedeploy-Event"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Webhook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/deployments", Webhook.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_webhook():
    """A URL whose server takes connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/never"
    listener.close()


@pytest.fixture
def topic(aws):
    """An SNS topic of the moto server with an SQS queue subscribed; a function that drains the queue into
    (event, message) pairs."""
    clients = {name: boto3.client(name, endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing")
               for name in ("sns", "sqs")}
    arn = clients["sns"].create_topic(Name="deployments")["TopicArn"]
    queue = clients["sqs"].create_queue(QueueName="deployments")["QueueUrl"]
    queue_arn = clients["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    clients["sns"].subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])

    def drain() -> list[tuple[str, dict]]:
        found = []
        while True:
            batch = clients["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                found.append((envelope["Subject"].split(":")[0], json.loads(envelope["Message"])))
                clients["sqs"].delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    return arn, drain


def events_of(received: list, deployment_id: str) -> list[tuple]:
    return [(event, message.get("instanceId")) for event, message in received
            if message["deploymentId"] == deployment_id]


def test_reports_triggers_and_history(fleet, aws, topic, webhook, silent_webhook, tmp_path):
    two = fleet(2)
    good_host, bad_host = two.hosts
    arn, drain = topic
    hook_url, hooked = webhook
    ledger = tmp_path / "ledger"
    aws_input = {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}
    triggers = [
        {"trigger_name": "sns", "trigger_target_arn": arn,
         "trigger_events": ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "InstanceFailure"]},
        {"trigger_name": "chat", "trigger_target_url": hook_url, "trigger_events": ["InstanceFailure"]},
    ]

    # A good deployment, without the report callback; a trigger nobody answers.
    good_run = two.playbook(DEPLOY, extra_vars=deployment_vars(
        ledger, local(make_revision(tmp_path / "good", "1")), aws=aws_input,
        deployment_config_name="CodeDeployDefault.AllAtOnce", trigger_configurations=triggers + [
            {"trigger_name": "nobody", "trigger_target_url": silent_webhook, "trigger_events": ["DeploymentStart"]}]))
    assert good_run.rc == 0, good_run.output
    good = records(ledger)[-1]
    assert good["status"] == "Succeeded"
    warning = re.search(r"Trigger 'nobody': DeploymentStart not delivered to (\S+) after 2 attempt\(s\): "
                        r"no answer in time", good_run.output)
    assert warning and warning.group(1) == silent_webhook.rsplit("/", 1)[0], good_run.output
    assert any(message.startswith("Trigger 'nobody': DeploymentStart not delivered")
               for message in good["deployment_status_messages"])
    assert events_of(drain(), good["deployment_id"]) == [("DeploymentStart", None), ("DeploymentSuccess", None)]
    assert hooked == []

    # Its reports, though no callback ran; the HTML as a browser shows it.
    reports = ledger / "reports"
    suite = ElementTree.parse(reports / f"{good['deployment_id']}.xml").getroot().find("testsuite")
    assert sorted(case.get("name") for case in suite.findall("testcase")) == sorted(two.hosts)
    page = reports / f"{good['deployment_id']}.html"
    assert not re.search(r"<script|<link|<img|src=|url\(", page.read_text())
    document = dom(page)
    assert sorted(re.findall(r'<g class="instance-row" data-instance="([^"]+)" data-status="Succeeded"',
                             document)) == sorted(two.hosts)
    ran = [event for entry in good["instances"] for event in entry["lifecycle_events"] if event["start_time"]]
    assert len(ran) == 2 * 7 and len(re.findall(r'<rect class="event"', document)) == len(ran)
    painted = colours(screenshot(page, tmp_path / "good.png"))
    assert sum(painted.values()) - painted.get(b"\xff\xff\xff", 0) > 0.05 * sum(painted.values())
    # Green badges, dots and bars; of red only the legend's 12 x 12 swatch.
    assert painted.get(GREEN, 0) > 1000 and painted.get(RED, 0) <= 12 * 12

    # A failed deployment: ValidateService fails on one host, and any failure fails the deployment.
    failed_run = two.playbook(DEPLOY, extra_vars=deployment_vars(
        ledger, local(make_revision(tmp_path / "bad", "2", [bad_host])), aws=aws_input,
        trigger_configurations=triggers, deployment_config_name="CodeDeployDefault.AllAtOnce", strict=True))
    assert failed_run.rc != 0
    failed = records(ledger)[-1]
    assert failed["status"] == "Failed"
    sent = events_of(drain(), failed["deployment_id"])
    assert sent[0] == ("DeploymentStart", None) and sent[-1] == ("DeploymentFailure", None)
    assert sorted(sent[1:-1]) == [("InstanceFailure", bad_host)]
    assert events_of(hooked, failed["deployment_id"]) == [("InstanceFailure", bad_host)]
    failure = next(message for event, message in hooked if event == "InstanceFailure")
    assert failure["instanceStatus"] == "Failed" and failure["lifecycleEvents"][-1] == {
        "LifecycleEvent": "ValidateService", "LifecycleEventStatus": "Failed",
        "StartTime": failure["lifecycleEvents"][-1]["StartTime"], "EndTime": failure["lifecycleEvents"][-1]["EndTime"]}
    document = dom(ledger / "reports" / f"{failed['deployment_id']}.html")
    assert f'data-instance="{bad_host}" data-status="Failed"' in document
    assert f"validation failed on {bad_host}" in document
    assert colours(screenshot(ledger / "reports" / f"{failed['deployment_id']}.html", tmp_path / "bad.png")).get(
        RED, 0) > 1000

    # The history: newest first, one whole by ID, a damaged record named in the warnings.
    (ledger / "deployments" / "d-DAMAGED00.json").write_text("{ cut short")
    rc, listed, output = run_on_controller(INFO, {"ledger": str(ledger), "application_name": "webapp",
                                                  "deployment_group_name": "prod"}, "--check")
    assert rc == 0, output
    assert [d["deployment_id"] for d in listed["deployments"]] == [failed["deployment_id"], good["deployment_id"]]
    assert [d["status"] for d in listed["deployments"]] == ["Failed", "Succeeded"]
    assert listed["deployments"][1]["deployment_overview"]["Succeeded"] == 2
    assert f"Damaged deployment record {ledger / 'deployments' / 'd-DAMAGED00.json'} skipped" in " ".join(
        output.split())
    rc, one, output = run_on_controller(INFO, {"ledger": str(ledger), "deployment_id": good["deployment_id"]})
    assert rc == 0, output
    assert one["deployments"] == [json.loads((ledger / "deployments" / f"{good['deployment_id']}.json").read_text())]


def test_a_trigger_typo_is_refused_with_the_event_names(fleet, tmp_path):
    one = fleet(1)
    ledger = tmp_path / "ledger"
    run = one.playbook(DEPLOY, extra_vars=deployment_vars(ledger, local(make_revision(tmp_path / "r", "1")),
                                                          trigger_configurations=[{
                                                              "trigger_name": "chat",
                                                              "trigger_target_url": "http://127.0.0.1:9/x",
                                                              "trigger_events": ["DeploymentSucess"]}]))
    assert run.rc != 0
    assert "DeploymentSucess" in run.output and "DeploymentSuccess" in run.output and "InstanceReady" in run.output
    assert records(ledger) == []
    assert not Path(one.path(one.hosts[0], "/var/www/webapp")).exists()


def test_an_s3_ledger_keeps_the_reports_and_the_history(fleet, aws, tmp_path):
    one = fleet(1)
    s3 = boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="history")
    aws_input = {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}
    extra = deployment_vars(tmp_path / "unused", local(make_revision(tmp_path / "r", "1")), aws=aws_input)
    del extra["codedeploy_ledger_dir"]
    extra["codedeploy_ledger"] = "s3://history/webapp"
    run = one.playbook(DEPLOY, extra_vars=extra)
    assert run.rc == 0, run.output
    keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket="history", Prefix="webapp/")["Contents"]]
    (record_key,) = [key for key in keys if key.startswith("webapp/deployments/")]
    deployment_id = Path(record_key).stem
    assert {f"webapp/reports/{deployment_id}.xml", f"webapp/reports/{deployment_id}.html"} <= set(keys)
    page = tmp_path / "report.html"
    page.write_bytes(s3.get_object(Bucket="history", Key=f"webapp/reports/{deployment_id}.html")["Body"].read())
    assert f'data-instance="{one.hosts[0]}" data-status="Succeeded"' in dom(page)

    env = {name: value for name, value in aws.items() if name.startswith("AWS_")}
    rc, listed, output = run_on_controller(INFO, {"ledger": "s3://history/webapp", "aws": aws_input,
                                                  "application_name": "webapp", "deployment_group_name": "prod"},
                                           env=env)
    assert rc == 0, output
    assert [(d["deployment_id"], d["status"]) for d in listed["deployments"]] == [(deployment_id, "Succeeded")]
    rc, whole, output = run_on_controller(INFO, {"ledger": "s3://history/webapp", "aws": aws_input,
                                                 "deployment_id": deployment_id}, env=env)
    assert rc == 0, output
    assert [entry["instance_id"] for entry in whole["deployments"][0]["instances"]] == one.hosts
