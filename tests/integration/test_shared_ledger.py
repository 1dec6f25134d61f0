# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ledger shared by controllers on different machines (an S3 prefix, on the moto server): each controller here runs
in a "container" of its own — its own hostname (a UTS namespace) and its own empty HOME — as AWX runs its jobs."""
from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import pytest

from conftest import REPO_ROOT, _bin, ansible_env
from support.deployments import APP_DESTINATION, HOLD_FILE, deployment_vars, local, make_revision

ONE_AT_A_TIME = {"deployment_config_name": "CodeDeployDefault.OneAtATime"}


@pytest.fixture
def shared(aws):
    """An S3 ledger on the moto server: its location, the deployments' AWS inputs, a reader of its records, and jobs
    that use it."""
    client = boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"deployments-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    ledger = SharedLedger(client, bucket, {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"})
    yield ledger
    for home in ledger.homes:
        shutil.rmtree(home, ignore_errors=True)


class SharedLedger:
    def __init__(self, client, bucket: str, aws: dict) -> None:
        self.client, self.bucket, self.aws = client, bucket, aws
        self.location = f"s3://{bucket}/webapp"
        self.homes: list[Path] = []

    def inputs(self, revision: dict, **inputs) -> dict:
        extra = deployment_vars(Path("unused"), revision, aws=self.aws, **inputs)
        del extra["codedeploy_ledger_dir"]
        return {**extra, "codedeploy_ledger": self.location}

    def records(self) -> list[dict]:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix="webapp/deployments/").get("Contents", [])
        found = [json.loads(self.client.get_object(Bucket=self.bucket, Key=entry["Key"])["Body"].read())
                 for entry in listed]
        return sorted(found, key=lambda record: record["create_time"])

    def lock(self) -> dict:
        (entry,) = self.client.list_objects_v2(Bucket=self.bucket, Prefix="webapp/locks/")["Contents"]
        return json.loads(self.client.get_object(Bucket=self.bucket, Key=entry["Key"])["Body"].read())

    def job(self, fleet, container: str, playbook: str, extra_vars: dict) -> subprocess.Popen:
        """``ansible-playbook`` in a container of its own: its hostname, an empty HOME, AWS keys in its environment."""
        # Short: ssh's control sockets live under HOME and a socket path has at most 108 bytes.
        home = Path(tempfile.mkdtemp(prefix=f"{container}-"))
        self.homes.append(home)
        argv = ["unshare", "--uts", "--fork", "sh", "-c", 'hostname "$0" && exec "$@"', container,
                _bin("ansible-playbook"), "-i", str(fleet.inventory), playbook, "-e", json.dumps(extra_vars)]
        env = ansible_env(fleet.fleet, {**fleet.env_extra, "HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
                                        "ANSIBLE_CALLBACKS_ENABLED": "fleetops.codedeploy.deployment_report"})
        return subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    def wait_for_wave(self, jobs: list[subprocess.Popen], timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert any(job.poll() is None for job in jobs), "every job ended before a wave started"
            found = self.records()
            if found and found[-1]["status"] == "InProgress" and found[-1]["waves"]:
                return found[-1]
            time.sleep(0.5)
        raise AssertionError("the deployment never started a wave")


def finished(job: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    output = job.communicate(timeout=timeout)[0]
    return job.returncode, " ".join(output.split())


def hold(fleet, hosts) -> None:
    for host in hosts:  # ValidateService waits while the file exists
        assert fleet.ssh(host, f"touch {HOLD_FILE}").rc == 0


def release(fleet, hosts) -> None:
    for host in hosts:
        fleet.ssh(host, f"rm -f {HOLD_FILE}")


def version_on(fleet, host: str) -> str:
    return fleet.path(host, f"{APP_DESTINATION}/VERSION").read_text().strip()


def test_two_jobs_at_once_one_deploys_the_other_is_refused_and_a_stop_from_a_third_rolls_back(
        fleet, tmp_path, shared):
    two = fleet(2)
    first = shared.job(two, "job-1", "fleetops.codedeploy.deploy",
                       shared.inputs(local(make_revision(tmp_path / "v1", "1")), **ONE_AT_A_TIME))
    assert finished(first)[0] == 0
    hold(two, two.hosts)
    v2 = local(make_revision(tmp_path / "v2", "2"))
    racing = [shared.job(two, f"job-{n}", "fleetops.codedeploy.deploy", shared.inputs(v2, **ONE_AT_A_TIME))
              for n in (2, 3)]
    try:
        active = shared.wait_for_wave(racing)
        deadline = time.monotonic() + 120
        while all(job.poll() is None for job in racing) and time.monotonic() < deadline:
            time.sleep(0.5)
        refused = [job for job in racing if job.poll() is not None]
        assert len(refused) == 1, "exactly one of the two jobs must be refused while the other deploys"
        code, output = finished(refused[0])
        assert code != 0
        assert f"The Deployment Group 'prod' already has an active Deployment '{active['deployment_id']}'" in output
        running = next(job for job in racing if job is not refused[0])
        stopper = shared.job(two, "job-4", "fleetops.codedeploy.stop",
                             {**shared.inputs(v2), "codedeploy_stop_rollback": "true"})
        time.sleep(3)  # the stop request is in the lock before the held wave ends
        release(two, two.hosts)
        stop_code, stop_output = finished(stopper)
        run_code, run_output = finished(running)
    finally:
        release(two, two.hosts)
        for job in racing:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
    assert stop_code == 0, stop_output
    assert f"Deployment {active['deployment_id']} is Stopped" in stop_output
    assert run_code != 0, "a stopped deployment fails its own job"
    deployed, stopped, rollback = shared.records()
    assert deployed["status"] == "Succeeded"
    assert stopped["deployment_id"] == active["deployment_id"]
    assert (stopped["status"], stopped["error_information"]["code"]) == ("Stopped", "MANUAL_STOP")
    assert "job-4" in stopped["error_information"]["message"]
    assert [entry["status"] for entry in stopped["instances"]] == ["Succeeded", "Skipped"]
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded")
    assert stopped["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == stopped["deployment_id"]
    assert [version_on(two, host) for host in two.hosts] == ["1", "1"]
    assert shared.lock()["state"] == "released"


def test_a_killed_job_is_taken_over_by_another_container_once_its_lease_ran_out(fleet, tmp_path, shared):
    one = fleet(1)
    hold(one, one.hosts)
    inputs = shared.inputs(local(make_revision(tmp_path / "v1", "1")), lock_lease_seconds=60)
    killed = shared.job(one, "job-1", "fleetops.codedeploy.deploy", inputs)
    try:
        dead = shared.wait_for_wave([killed])
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # the job and its workers; its lease keeper sees it gone and ends
        killed.wait()
        release(one, one.hosts)
    early = shared.job(one, "job-2", "fleetops.codedeploy.deploy", inputs)
    code, output = finished(early)
    assert code != 0 and f"already has an active Deployment '{dead['deployment_id']}'" in output, output
    lease_end = datetime.datetime.fromisoformat(shared.lock()["lease_expires_at"].replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert lease_end > now, "the lease ran out before the early job was refused: nothing was proved"
    time.sleep((lease_end - now).total_seconds() + 1)
    late = shared.job(one, "job-3", "fleetops.codedeploy.deploy",
                      shared.inputs(local(make_revision(tmp_path / "v2", "2"))))
    code, output = finished(late)
    assert code == 0, output
    assert (f"Deployment {dead['deployment_id']} was left active by a controller that stopped renewing its lock "
            "(pid") in output and "on job-1" in output
    closed, deployed = shared.records()  # the early job was refused before it created anything
    assert closed["deployment_id"] == dead["deployment_id"]
    assert (closed["status"], closed["error_information"]["code"]) == ("Failed", "INTERNAL_ERROR")
    assert deployed["status"] == "Succeeded"
    assert version_on(one, one.hosts[0]) == "2"


def test_catch_up_deploys_the_last_good_revision_to_the_one_host_that_lacks_it(fleet, tmp_path, shared):
    three = fleet(3)
    first = shared.job(three, "job-1", "fleetops.codedeploy.deploy",
                       shared.inputs(local(make_revision(tmp_path / "v1", "1")),
                                     deployment_config_name="CodeDeployDefault.AllAtOnce"))
    assert finished(first)[0] == 0
    replaced = three.hosts[2]
    three.fleet.reset([replaced])  # a re-imaged host: nothing of the deployment is left on it
    catch_up = shared.job(three, "job-2", "fleetops.codedeploy.catch_up",
                          {key: value for key, value in shared.inputs({}).items() if key != "codedeploy_revision"})
    code, output = finished(catch_up)
    assert code == 0, output
    deployed, caught_up = shared.records()
    assert (caught_up["creator"], caught_up["status"]) == ("autoscaling", "Succeeded")
    assert [entry["instance_id"] for entry in caught_up["instances"]] == [replaced]
    assert sorted(caught_up["skipped_up_to_date"]) == sorted(three.hosts[:2])
    assert caught_up["revision"]["sha256"] == deployed["revision"]["sha256"]
    assert [version_on(three, host) for host in three.hosts] == ["1", "1", "1"]
