# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ledger shared by jobs that share nothing else: an S3 prefix on the moto server, each job an AWX job
(ansible-runner, a fresh private data dir and HOME, its own hostname, AWS keys injected as a credential does)."""
from __future__ import annotations

import datetime
import json
import time
import uuid

import boto3
import pytest

from support.awx import AWX, jobs_root
from support.deployments import APP_DESTINATION, deployment_vars, hold, local, make_revision

ONE_AT_A_TIME = {"deployment_config_name": "CodeDeployDefault.OneAtATime"}
ALL_AT_ONCE = {"deployment_config_name": "CodeDeployDefault.AllAtOnce"}
# A secret key of its own, to look for afterwards everywhere a job leaves something (moto checks no signature).
SECRET_KEY = f"FleetopsSecret{uuid.uuid4().hex}"


class SharedLedger:
    """The S3 ledger, the deployments' inputs that use it, and a reader of what it holds."""

    def __init__(self, client, bucket: str, aws: dict) -> None:
        self.client, self.bucket, self.aws = client, bucket, aws
        self.location = f"s3://{bucket}/webapp"

    def inputs(self, revision=None, **inputs) -> dict:
        extra = {key: value for key, value in deployment_vars(None, revision, aws=self.aws, **inputs).items()
                 if key != "codedeploy_ledger_dir" and value is not None}
        return {**extra, "codedeploy_ledger": self.location}

    def objects(self) -> dict[str, bytes]:
        listed = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {entry["Key"]: self.client.get_object(Bucket=self.bucket, Key=entry["Key"])["Body"].read()
                for entry in listed}

    def records(self) -> list[dict]:
        found = [json.loads(body) for key, body in self.objects().items() if key.startswith("webapp/deployments/")]
        return sorted(found, key=lambda record: record["create_time"])

    def lock(self) -> dict:
        (body,) = [body for key, body in self.objects().items() if key.startswith("webapp/locks/")]
        return json.loads(body)

    def wait_for_stop_request(self, job, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self.lock().get("stop_request"):
            assert time.monotonic() < deadline and job.process.poll() is None, "the stop job asked for no stop"
            time.sleep(0.5)

    def wait_for_wave(self, jobs, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert any(job.process.poll() is None for job in jobs), "every job ended before a wave started"
            found = self.records()
            if found and found[-1]["status"] == "InProgress" and found[-1]["waves"]:
                return found[-1]
            time.sleep(0.5)
        raise AssertionError("no deployment started a wave")


@pytest.fixture
def shared(aws, fleet):
    """``shared(n)``: (the AWX job template on the first n fleet hosts, the FleetView, the S3 ledger)."""
    client = boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key=SECRET_KEY)
    bucket = f"deployments-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    ledger = SharedLedger(client, bucket, {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"})
    with jobs_root() as root:
        def make(count: int):
            view = fleet(count)
            credential = {"AWS_ACCESS_KEY_ID": "AKIAFLEETOPSTEST", "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
            return AWX(root, view.inventory, credential), view, ledger

        yield make


def versions(fleet) -> list[str]:
    return [fleet.path(host, f"{APP_DESTINATION}/VERSION").read_text().strip() for host in fleet.hosts]


def oneline(text: str) -> str:
    return " ".join(text.split())


def host_files_holding(fleet, needle: bytes) -> list[str]:
    found = []
    for host in fleet.hosts:
        for top in ("/opt/codedeploy-agent", "/var/www", "/srv", "/etc/fleet-app", "/home/deploy", "/tmp"):
            root = fleet.path(host, top)
            for path in root.rglob("*") if root.is_dir() else []:
                if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                    found.append(f"{host}:{path}")
    return found


def test_two_jobs_at_once_one_deploys_the_other_is_refused_a_stop_job_rolls_it_back_and_no_secret_leaks(
        shared, tmp_path):
    controller, two, ledger = shared(2)
    first = controller.run("deploy.yml", ledger.inputs(local(make_revision(tmp_path / "v1", "1")), **ONE_AT_A_TIME),
                           container="job-1")
    assert first.rc == 0, first.stdout[-3000:]
    hold(two, True)
    v2 = local(make_revision(tmp_path / "v2", "2"))
    racing = [controller.start("deploy.yml", ledger.inputs(v2, **ONE_AT_A_TIME), container=f"job-{n}") for n in (2, 3)]
    jobs = [first]
    try:
        active = ledger.wait_for_wave(racing)
        deadline = time.monotonic() + 120
        while all(job.process.poll() is None for job in racing) and time.monotonic() < deadline:
            time.sleep(0.5)
        (refused,) = [job for job in racing if job.process.poll() is not None]
        (running,) = [job for job in racing if job is not refused]
        stopper = controller.start("stop.yml", {**ledger.inputs(), "codedeploy_stop_rollback": "true"},
                                   container="job-4")
        ledger.wait_for_stop_request(stopper)  # in the lock before the held wave ends
        hold(two, False)
        jobs += [refused.wait(), stopper.wait(), running.wait()]
    finally:
        hold(two, False)
        for job in racing:
            job.kill()
    refused_result, stop_result, run_result = jobs[1:]
    assert refused_result.rc != 0
    assert (f"The Deployment Group 'prod' already has an active Deployment '{active['deployment_id']}'"
            in oneline(refused_result.stdout))
    assert stop_result.rc == 0, stop_result.stdout[-3000:]
    assert f"Deployment {active['deployment_id']} is Stopped" in oneline(stop_result.stdout)
    assert run_result.rc != 0, "a stopped deployment fails its own job"
    deployed, stopped, rollback = ledger.records()  # the refused job created nothing
    assert deployed["status"] == "Succeeded"
    assert stopped["deployment_id"] == active["deployment_id"]
    assert (stopped["status"], stopped["error_information"]["code"]) == ("Stopped", "MANUAL_STOP")
    assert "job-4" in stopped["error_information"]["message"]
    assert [entry["status"] for entry in stopped["instances"]] == ["Succeeded", "Skipped"]
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded")
    assert stopped["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == stopped["deployment_id"]
    assert versions(two) == ["1", "1"]
    assert ledger.lock()["state"] == "released"
    assert run_result.artifact_data["codedeploy_rollback_deployment_id"] == rollback["deployment_id"]

    # The job's AWS secret key is nowhere: S3 objects (records, reports, locks), stdout, job events, host files.
    needle = SECRET_KEY.encode()
    assert not [key for key, body in ledger.objects().items() if needle in body]
    for job in jobs:  # what AWX shows and keeps of a job (runner's own record of its environment aside)
        assert SECRET_KEY not in job.stdout
        assert SECRET_KEY not in json.dumps(job.events)
    assert not host_files_holding(two, needle)


def test_a_killed_job_is_taken_over_by_a_job_in_another_container_once_its_lease_ran_out(shared, tmp_path):
    controller, one, ledger = shared(1)
    hold(one, True)
    inputs = ledger.inputs(local(make_revision(tmp_path / "v1", "1")), lock_lease_seconds=60)
    killed = controller.start("deploy.yml", inputs, container="job-1")
    try:
        dead = ledger.wait_for_wave([killed])
    finally:
        killed.kill()  # as the container runtime kills a cancelled job: every process of the container
        hold(one, False)
    early = controller.run("deploy.yml", inputs, container="job-2")
    assert early.rc != 0
    assert f"already has an active Deployment '{dead['deployment_id']}'" in oneline(early.stdout)
    lease_end = datetime.datetime.fromisoformat(ledger.lock()["lease_expires_at"].replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert lease_end > now, "the lease ran out before the early job was refused: nothing was proved"
    time.sleep((lease_end - now).total_seconds() + 1)

    late = controller.run("deploy.yml", ledger.inputs(local(make_revision(tmp_path / "v2", "2"))), container="job-3")

    assert late.rc == 0, late.stdout[-3000:]
    assert (f"Deployment {dead['deployment_id']} was left active by a controller that stopped renewing its lock"
            in oneline(late.stdout)) and "on job-1" in oneline(late.stdout)
    closed, deployed = ledger.records()  # the early job was refused before it created anything
    assert closed["deployment_id"] == dead["deployment_id"]
    assert (closed["status"], closed["error_information"]["code"]) == ("Failed", "INTERNAL_ERROR")
    assert deployed["status"] == "Succeeded"
    assert versions(one) == ["2"]


def test_fresh_jobs_roll_back_automatically_catch_up_the_one_host_lacking_it_and_roll_back_on_demand(
        shared, tmp_path):
    controller, three, ledger = shared(3)
    first = controller.run("deploy.yml", ledger.inputs(local(make_revision(tmp_path / "v1", "1")), **ALL_AT_ONCE),
                           container="job-1")
    assert first.rc == 0, first.stdout[-3000:]
    failing = local(make_revision(tmp_path / "v2", "2", fail_hosts=three.hosts))
    failed = controller.run("deploy.yml", ledger.inputs(failing, auto_rollback='{"enabled": true, "events": '
                                                        '["DEPLOYMENT_FAILURE"]}', **ALL_AT_ONCE),
                            container="job-2")
    assert failed.rc != 0
    replaced = three.hosts[2]
    three.fleet.reset([replaced])  # a re-imaged host: nothing of the deployments is left on it

    caught_up = controller.run("catch_up.yml", ledger.inputs(), container="job-3")

    assert caught_up.rc == 0, caught_up.stdout[-3000:]
    deployed, broken, rollback, catch_up = ledger.records()
    assert (broken["status"], rollback["status"]) == ("Failed", "Succeeded")
    assert broken["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == broken["deployment_id"]
    assert (catch_up["creator"], catch_up["status"]) == ("autoscaling", "Succeeded")
    assert [entry["instance_id"] for entry in catch_up["instances"]] == [replaced]
    assert sorted(catch_up["skipped_up_to_date"]) == sorted(three.hosts[:2])
    assert catch_up["revision"]["sha256"] == deployed["revision"]["sha256"]
    assert versions(three) == ["1", "1", "1"]

    # Re-imaged again, the host asks for its revision itself, as an AWX provisioning callback does: a job limited to
    # the host alone (no localhost in the limit), whose controller steps run delegated to localhost.
    three.fleet.reset([replaced])
    called_back = controller.run("catch_up.yml", ledger.inputs(), container="job-callback", limit=replaced)
    assert called_back.rc == 0, called_back.stdout[-3000:]
    by_callback = ledger.records()[-1]
    assert (by_callback["creator"], by_callback["status"]) == ("autoscaling", "Succeeded")
    assert [entry["instance_id"] for entry in by_callback["instances"]] == [replaced]
    assert called_back.hosts_touched() == {replaced}
    assert versions(three) == ["1", "1", "1"]

    # A manual rollback from yet another fresh job: the group's last successful revision, again, from the ledger.
    manual = controller.run("rollback.yml", ledger.inputs(), container="job-4")
    assert manual.rc == 0, manual.stdout[-3000:]
    again = ledger.records()[-1]
    assert (again["creator"], again["status"]) == ("codeDeployRollback", "Succeeded")
    assert again["revision"]["sha256"] == deployed["revision"]["sha256"]
    assert versions(three) == ["1", "1", "1"]
