# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployments launched as AWX jobs: ansible-runner in a fresh private data dir and HOME, the example AWX project's
wrapper playbooks, the collection installed from its built tarball, AWS keys injected as a credential does."""
from __future__ import annotations

import json
import time

import boto3
import pytest

from support.awx import AWX, container_processes, jobs_root
from support.deployments import (APP_DESTINATION, DEPLOYMENT_ROOT, HOLD_FILE, deployment_vars, local,
                                 make_revision, records, statuses)
from support.revisions import archive_tree

CREDENTIAL_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture
def awx(fleet):
    """``awx(n)``: a job template on the first n fleet hosts, and the FleetView of those hosts."""
    with jobs_root() as root:
        def make(count: int):
            view = fleet(count)
            return AWX(root, view.inventory, CREDENTIAL_ENV), view

        yield make


def test_a_deploy_job_deploys_through_the_project_wrapper(awx, tmp_path):
    controller, view = awx(2)
    ledger = tmp_path / "ledger"
    revision = make_revision(tmp_path / "rev", "1")

    job = controller.run("deploy.yml", deployment_vars(ledger, local(revision)), container="awx-job-1")

    assert job.rc == 0, job.stdout[-4000:]
    [record] = records(ledger)
    assert statuses(record) == {"fleet-h1": "Succeeded", "fleet-h2": "Succeeded"}
    for host in view.hosts:
        assert view.path(host, APP_DESTINATION).joinpath("VERSION").read_text() == "1\n"
    # The report callback that the project's ansible.cfg enables wrote the JUnit report and printed its table.
    assert (ledger / "reports" / f"{record['deployment_id']}.xml").exists()
    assert f"reports: {ledger}/reports/{record['deployment_id']}.xml (JUnit)" in job.stdout
    assert job.stats["ok"].keys() >= {"fleet-h1", "fleet-h2", "localhost"}


def test_a_job_gives_its_outcome_to_set_stats_and_counts_failed_instances_failed(awx, tmp_path):
    controller, _view = awx(3)
    ledger = tmp_path / "ledger"
    revision = make_revision(tmp_path / "rev", "1", fail_hosts=["fleet-h2"])

    inputs = deployment_vars(ledger, local(revision), deployment_config_name="CodeDeployDefault.AllAtOnce")
    job = controller.run("deploy.yml", inputs)

    [record] = records(ledger)
    assert statuses(record) == {"fleet-h1": "Succeeded", "fleet-h2": "Failed", "fleet-h3": "Succeeded"}
    # AllAtOnce succeeds with one healthy instance; the failed one is failed in the host summary all the same.
    assert record["status"] == "Succeeded"
    assert job.artifact_data == {
        "codedeploy_deployment_id": record["deployment_id"], "codedeploy_deployment_status": "Succeeded",
        "codedeploy_error_code": None,
        "codedeploy_revision": {**local(revision), "sha256": record["revision"]["sha256"], "bundle_type": "tar"}}
    assert {host: job.host_status(host) for host in ("fleet-h1", "fleet-h2", "fleet-h3")} == {
        "fleet-h1": "changed", "fleet-h2": "failed", "fleet-h3": "changed"}
    assert "ValidateService" in job.stdout and "fleet-h2 failed: deployment " + record["deployment_id"] in job.stdout
    assert job.rc == 2


def test_a_limit_that_cuts_the_group_is_refused_before_anything_is_created(awx, tmp_path):
    controller, view = awx(3)
    ledger = tmp_path / "ledger"
    inputs = deployment_vars(ledger, local(make_revision(tmp_path / "rev", "1")))

    cut = controller.run("deploy.yml", inputs, limit="fleet-h1,localhost")

    assert cut.rc != 0
    assert ("The limit 'fleet-h1,localhost' leaves out 2 of the 3 instances of deployment group webapp/prod "
            "(inventory group fleet): fleet-h2, fleet-h3.") in cut.stdout
    assert cut.hosts_touched() == {"localhost"}
    assert not ledger.exists()
    assert all(not view.path(host, DEPLOYMENT_ROOT).exists() for host in view.hosts)

    # A limit without localhost that cuts the group is refused the same way: the controller's steps run delegated to
    # localhost from the limit's first host.
    no_controller = controller.run("deploy.yml", inputs, limit="fleet-h1")
    assert no_controller.rc != 0
    assert "The limit 'fleet-h1' leaves out 2 of the 3 instances" in " ".join(no_controller.stdout.split())
    assert not ledger.exists()

    partial = controller.run("deploy.yml", {**inputs, "codedeploy_allow_partial_group": "true"},
                             limit="fleet-h1,localhost")
    assert partial.rc == 0, partial.stdout[-3000:]
    [record] = records(ledger)
    assert statuses(record) == {"fleet-h1": "Succeeded"}
    assert [host for host in view.hosts if view.path(host, APP_DESTINATION).exists()] == ["fleet-h1"]


def test_survey_answers_are_strings_that_behave_as_their_values(awx, aws, tmp_path):
    """Every answer as AWX sends it (strings); revisions as strings: an S3 URL with its version, then a path in the
    project."""
    controller, view = awx(2)
    s3 = boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="builds")
    s3.put_bucket_versioning(Bucket="builds", VersioningConfiguration={"Status": "Enabled"})
    bundle = archive_tree(make_revision(tmp_path / "v1", "1"), tmp_path / "v1.tgz", "tgz")
    version = s3.put_object(Bucket="builds", Key="webapp/v1.tgz", Body=bundle.read_bytes())["VersionId"]
    ledger = tmp_path / "ledger"
    answers = {
        "codedeploy_application_name": "webapp", "codedeploy_deployment_group_name": "prod",
        "codedeploy_target_group": "fleet", "codedeploy_ledger": str(ledger),
        "codedeploy_revision": f"s3://builds/webapp/v1.tgz?versionId={version}",
        "codedeploy_aws": json.dumps({"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}),
        "codedeploy_deployment_config_name": "CodeDeployDefault.AllAtOnce",
        "codedeploy_update_outdated_instances_only": "false",
        "codedeploy_max_revisions": "2",
        "codedeploy_auto_rollback": '{"enabled": true, "events": ["DEPLOYMENT_FAILURE"]}',
    }

    first = controller.run("deploy.yml", answers)
    assert first.rc == 0, first.stdout[-3000:]
    # "false" is false: the instances already running the revision are deployed again.
    again = controller.run("deploy.yml", answers)
    assert again.rc == 0, again.stdout[-3000:]
    first_record, again_record = records(ledger)
    assert first_record["revision"]["version"] == version
    assert again_record["skipped_up_to_date"] == []
    assert statuses(again_record) == {"fleet-h1": "Succeeded", "fleet-h2": "Succeeded"}

    # A path relative to the project; the JSON auto-rollback rolls the failure back.
    make_revision(tmp_path / "v2", "2", fail_hosts=["fleet-h1"])
    failed = controller.run("deploy.yml", {**answers, "codedeploy_revision": "build/v2",
                                           "codedeploy_deployment_config_name": "CodeDeployDefault.OneAtATime"},
                            project_trees={"build/v2": tmp_path / "v2"})
    assert failed.rc != 0, failed.stdout[-3000:]
    failed_record, rollback_record = records(ledger)[-2:]
    assert failed_record["revision"]["path"] == str(failed.private_data_dir / "project" / "build" / "v2")
    assert (failed_record["status"], rollback_record["status"]) == ("Failed", "Succeeded")
    assert failed.artifact_data["codedeploy_rollback_deployment_id"] == rollback_record["deployment_id"]
    assert failed.artifact_data["codedeploy_error_code"] == failed_record["error_information"]["code"]
    assert failed.host_status("fleet-h1") == "failed"
    for host in view.hosts:
        assert view.path(host, APP_DESTINATION).joinpath("VERSION").read_text() == "1\n"


def test_a_killed_job_leaves_no_process_of_its_container(awx, tmp_path):
    """SIGKILL while an instance runs its hooks: ansible-runner, ansible-playbook and its workers all die."""
    controller, view = awx(1)
    view.ssh("fleet-h1", f"touch {HOLD_FILE}")
    inputs = deployment_vars(tmp_path / "ledger", local(make_revision(tmp_path / "r", "1")))
    job = controller.start("deploy.yml", inputs, container="awx-job-killed")
    try:
        deadline = time.monotonic() + 120
        while not any(event.get("event") == "runner_on_start" and event["event_data"].get("host") == "fleet-h1"
                      and "lifecycle" in event["event_data"].get("task", "") for event in job.events_so_far()):
            assert time.monotonic() < deadline and job.process.poll() is None, "the job never reached its hooks"
            time.sleep(0.5)
        assert len(container_processes(job.home)) >= 3  # runner, ansible-playbook, a worker
        job.kill()
        assert container_processes(job.home) == []
    finally:
        view.ssh("fleet-h1", f"rm -f {HOLD_FILE}")
