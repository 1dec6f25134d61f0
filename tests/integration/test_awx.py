# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployments launched as AWX jobs: ansible-runner in a fresh private data dir and HOME, the example AWX project's
wrapper playbooks, the collection installed from its built tarball, AWS keys injected as a credential does."""
from __future__ import annotations

import pytest

from support.awx import AWX, jobs_root
from support.deployments import APP_DESTINATION, deployment_vars, local, make_revision, records, statuses

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
    # The report callback the project's ansible.cfg enables printed its table into the job's stdout.
    assert "fleet-h1" in job.stdout and record["deployment_id"] in job.stdout
    assert job.stats["ok"].keys() >= {"fleet-h1", "fleet-h2", "localhost"}


def test_a_job_gives_its_outcome_to_set_stats_and_counts_failed_instances_failed(awx, tmp_path):
    controller, _ = awx(3)
    ledger = tmp_path / "ledger"
    revision = make_revision(tmp_path / "rev", "1", fail_hosts=["fleet-h2"])

    job = controller.run("deploy.yml", deployment_vars(ledger, local(revision),
                                                        deployment_config_name="CodeDeployDefault.AllAtOnce"))

    [record] = records(ledger)
    assert statuses(record) == {"fleet-h1": "Succeeded", "fleet-h2": "Failed", "fleet-h3": "Succeeded"}
    # AllAtOnce succeeds with one healthy instance; the failed one is failed in the host summary all the same.
    assert record["status"] == "Succeeded"
    assert job.artifact_data == {
        "codedeploy_deployment_id": record["deployment_id"], "codedeploy_deployment_status": "Succeeded",
        "codedeploy_error_code": None, "codedeploy_revision": {**local(revision), "sha256": record["revision"]["sha256"],
                                                                "bundle_type": "tar"}}
    assert {host: job.host_status(host) for host in ("fleet-h1", "fleet-h2", "fleet-h3")} == {
        "fleet-h1": "changed", "fleet-h2": "failed", "fleet-h3": "changed"}
    assert "ValidateService" in job.stdout and "fleet-h2 failed: deployment " + record["deployment_id"] in job.stdout
    assert job.rc == 2
