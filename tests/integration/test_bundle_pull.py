# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""codedeploy_bundle_transport: pull on the real fleet: hosts download the bundle themselves, from moto S3 through
presigned URLs (moto serves them on loopback, which the fleet hosts share) or from a url revision served by a local
HTTP server, and keep only the bundle the controller validated."""
from __future__ import annotations

import hashlib
import json
import http.server
import sys
import threading
from pathlib import Path

import pytest

from support.deployments import (APP_DESTINATION, DEPLOYMENT_ROOT, deploy, deployment_vars, local, make_revision,
                                 records)
from support.revisions import archive_tree

ALL_AT_ONCE = {"deployment_config_name": "CodeDeployDefault.AllAtOnce"}
HALF = {"deployment_config_name": "CodeDeployDefault.HalfAtATime"}
KEY = "webapp/bundle.tgz"
# What a presigned URL carries (X-Amz-Signature=) and no output or record may show.
SIGNATURE = "Signature="


def bundle(tmp_path: Path, version: str) -> bytes:
    return archive_tree(make_revision(tmp_path / f"tree-{version}", version), tmp_path / f"{version}.tgz",
                        "tgz").read_bytes()


def s3_revision() -> dict:
    return {"source": "s3", "bucket": "releases", "key": KEY, "bundle_type": "tgz"}


def stored_bundle(fleet, host: str, sha256: str) -> Path:
    return fleet.path(host, f"{DEPLOYMENT_ROOT}/fleetops-bundles/{sha256}.tgz")


def ledger_text(ledger: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in ledger.rglob("*") if path.is_file()
                   and "cache" not in path.parts)


def test_a_pull_deployment_installs_everywhere_with_no_byte_pushed_and_hosts_holding_it_download_nothing(
        fleet, tmp_path, s3):
    client, aws_input, env = s3
    three = fleet(3)
    client.put_bucket_versioning(Bucket="releases", VersioningConfiguration={"Status": "Enabled"})
    body = bundle(tmp_path, "1")
    sha256 = hashlib.sha256(body).hexdigest()
    client.put_object(Bucket="releases", Key=KEY, Body=body)
    ledger = tmp_path / "ledger"
    # The hosts reach moto by another name than the controller does: the URLs are signed for that endpoint.
    pull_endpoint = aws_input["endpoint_url"].replace("127.0.0.1", "localhost")
    run = deploy(three, ledger, s3_revision(), "-v", env=env, aws=aws_input, bundle_transport="pull",
                 bundle_pull_endpoint_url=pull_endpoint, **HALF)
    assert run.rc == 0, run.output
    record = records(ledger)[-1]
    assert record["status"] == "Succeeded"
    for entry in record["instances"]:
        host = entry["instance_id"]
        assert three.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "1\n"
        assert "bundle_push" not in entry, entry
        assert entry["bundle_pull"]["bytes"] == len(body)
        assert entry["bundle_pull"]["start_time"] <= entry["bundle_pull"]["end_time"]
        assert hashlib.sha256(stored_bundle(three, host, sha256).read_bytes()).hexdigest() == sha256
    # The presigned URLs are credentials: not in the output (even verbose), not in the ledger.
    assert SIGNATURE not in run.output and SIGNATURE not in ledger_text(ledger)

    again = deploy(three, ledger, s3_revision(), env=env, aws=aws_input, bundle_transport="pull",
                   bundle_pull_endpoint_url=pull_endpoint, **ALL_AT_ONCE)
    assert again.rc == 0, again.output
    second = records(ledger)[-1]
    assert second["status"] == "Succeeded" and second["deployment_id"] != record["deployment_id"]
    assert [(entry.get("bundle_pull"), entry.get("bundle_push")) for entry in second["instances"]] == [(None, None)] * 3


CHANGE_AFTER_VALIDATION = """
import json, sys
import boto3
change, endpoint, body_path = sys.argv[1:]
client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
if change == "replace":
    with open(body_path, "rb") as handle:
        client.put_object(Bucket="releases", Key="%s", Body=handle.read())
elif change == "forbid":
    client.put_bucket_policy(Bucket="releases", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::releases/*"}]}))
""" % KEY

# The deploy playbook's plays with one task between the validation of the revision and the first wave.
DEPLOY_WITH_A_CHANGE_AFTER_VALIDATION = """
- name: Prepare the deployment (controller)
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Fetch and validate the revision, then create the deployment
      ansible.builtin.import_role:
        name: fleetops.codedeploy.deploy
        tasks_from: prepare.yml
    - name: Change S3 once the revision is validated
      ansible.builtin.command:
        argv: "{{ change_argv }}"
      changed_when: true

- name: Deploy
  ansible.builtin.import_playbook: fleetops.codedeploy.deployment
"""


@pytest.mark.parametrize("change, versioned", [("replace", False), ("replace", True), ("forbid", False)])
def test_what_changes_in_s3_after_validation_never_reaches_a_host(fleet, tmp_path, s3, change, versioned):
    """Unversioned, a replaced object is refused on every host with both digests named and nothing installed;
    versioned, the hosts get the version that was validated; a presigned URL that S3 refuses fails the instance
    with S3's reason."""
    client, aws_input, env = s3
    two = fleet(2)
    if versioned:
        client.put_bucket_versioning(Bucket="releases", VersioningConfiguration={"Status": "Enabled"})
    validated = bundle(tmp_path, "1")
    replacement = tmp_path / "replacement.tgz"
    replacement.write_bytes(bundle(tmp_path, "2"))
    client.put_object(Bucket="releases", Key=KEY, Body=validated)
    playbook = tmp_path / "deploy.yml"
    playbook.write_text(DEPLOY_WITH_A_CHANGE_AFTER_VALIDATION)
    script = tmp_path / "change.py"
    script.write_text(CHANGE_AFTER_VALIDATION)
    ledger = tmp_path / "ledger"
    run = two.playbook(playbook, extra_vars={
        **deployment_vars(ledger, s3_revision(), aws=aws_input, bundle_transport="pull", **ALL_AT_ONCE),
        "change_argv": [sys.executable, str(script), change, aws_input["endpoint_url"], str(replacement)]}, env=env)
    record = records(ledger)[-1]
    validated_sha256 = hashlib.sha256(validated).hexdigest()
    if versioned:
        assert run.rc == 0, run.output
        assert record["status"] == "Succeeded"
        for host in two.hosts:
            assert two.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "1\n"
        return
    assert record["status"] == "Failed", run.output
    for entry in record["instances"]:
        host = entry["instance_id"]
        events = {event["lifecycle_event_name"]: event for event in entry["lifecycle_events"]}
        message = events["DownloadBundle"]["diagnostics"]["message"]
        assert events["DownloadBundle"]["status"] == "Failed"
        assert events["Install"]["status"] == "Skipped"
        if change == "replace":
            replaced_sha256 = hashlib.sha256(replacement.read_bytes()).hexdigest()
            assert f"has sha256 {replaced_sha256}, not {validated_sha256}" in message
        else:
            # moto answers a bucket policy's denial with no error document: the reason is the HTTP status.
            assert f"/releases/{KEY} failed: HTTP 403 FORBIDDEN. The URL was refused" in message
        assert SIGNATURE not in message
        assert "bundle_pull" not in entry and "bundle_push" not in entry
        assert not two.path(host, APP_DESTINATION).exists()
        assert not stored_bundle(two, host, validated_sha256).exists()
        assert not list(two.path(host, DEPLOYMENT_ROOT).rglob("deployment-archive"))
        assert not list(two.path(host, DEPLOYMENT_ROOT).rglob("*.partial"))


class BundleServer:
    """A local HTTP server (the artifact repository) serving bundles by path; it counts the requests."""

    def __init__(self, bundles: dict[str, bytes]) -> None:
        self.paths: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                server.paths.append(self.path)
                body = bundles.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"


def test_a_url_revision_deploys_by_pull_and_by_push(fleet, tmp_path):
    two = fleet(2)
    first, second = bundle(tmp_path, "1"), bundle(tmp_path, "2")
    server = BundleServer({"/releases/webapp-1.tgz": first, "/releases/webapp-2.tgz": second})
    ledger = tmp_path / "ledger"
    try:
        pulled = deploy(two, ledger, {"source": "url", "url": server.url("/releases/webapp-1.tgz?token=s3cr3t"),
                                      "sha256": hashlib.sha256(first).hexdigest()},
                        bundle_transport="pull", **ALL_AT_ONCE)
        assert pulled.rc == 0, pulled.output
        # Once by the controller, which validates it, then once by each host.
        assert len(server.paths) == 3
        pushed = deploy(two, ledger, {"source": "url", "url": server.url("/releases/webapp-2.tgz")}, **ALL_AT_ONCE)
        assert pushed.rc == 0, pushed.output
        assert len(server.paths) == 4
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    by_pull, by_push = records(ledger)
    assert by_pull["revision"]["source"] == "url"
    assert by_push["revision"]["sha256"] == hashlib.sha256(second).hexdigest()
    for pull_entry, push_entry in zip(by_pull["instances"], by_push["instances"]):
        assert (pull_entry["bundle_pull"]["bytes"], "bundle_push" in pull_entry) == (len(first), False)
        assert (push_entry["bundle_push"]["bytes"], "bundle_pull" in push_entry) == (len(second), False)
    for host in two.hosts:
        assert two.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "2\n"
    assert "s3cr3t" not in pulled.output


def test_pull_refuses_a_revision_only_the_controller_has(fleet, tmp_path):
    two = fleet(2)
    run = deploy(two, tmp_path / "ledger", local(make_revision(tmp_path / "tree", "1")), bundle_transport="pull")
    assert run.rc != 0
    assert "codedeploy_bundle_transport pull needs an s3 or url revision: a local revision is only on the " \
           "controller" in run.output
    assert not two.path("fleet-h1", DEPLOYMENT_ROOT).exists()


def test_revision_bundle_downloads_its_url_once_checks_it_and_hides_it(fleet, tmp_path):
    one = fleet(1)
    host = one.hosts[0]
    body = bundle(tmp_path, "1")
    sha256 = hashlib.sha256(body).hexdigest()
    server = BundleServer({"/releases/webapp-1.tgz": body})
    src = f"{DEPLOYMENT_ROOT}/fleetops-bundles/{sha256}.tgz"

    def args(deployment_id: str, digest: str = sha256) -> dict:
        return {"deployment_id": deployment_id, "deployment_group_id": "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d",
                "deployment_group_name": "prod", "application_name": "webapp", "src": src, "bundle_type": "tgz",
                "sha256": digest, "url": server.url("/releases/webapp-1.tgz?token=s3cr3t")}

    try:
        checked = one.results(host, "fleetops.codedeploy.revision_bundle", args("d-PULLED001"), "--check")[host]
        wrong = one.results(host, "fleetops.codedeploy.revision_bundle", args("d-PULLED001", "c" * 64))[host]
        assert not [path for path in one.path(host, DEPLOYMENT_ROOT).rglob("*") if not path.is_dir()]
        first = one.results(host, "fleetops.codedeploy.revision_bundle", args("d-PULLED001"))[host]
        second = one.results(host, "fleetops.codedeploy.revision_bundle", args("d-PULLED002"))[host]
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert (checked["changed"], checked["unpacked"], checked["bundle_pull"]["bytes"]) == (True, True, len(body))
    assert f"has sha256 {sha256}, not {'c' * 64}" in wrong["msg"]
    assert first["bundle_pull"]["bytes"] == len(body) and first["unpacked"]
    assert "bundle_pull" not in second and second["unpacked"]
    # The check-mode run, the refused one and the first real one downloaded; the second found the bundle there.
    assert len(server.paths) == 3
    assert one.path(host, f"{DEPLOYMENT_ROOT}/4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d/d-PULLED002/deployment-archive"
                          "/app/VERSION").read_text() == "1\n"
    assert "s3cr3t" not in json.dumps([checked, wrong, first, second])
