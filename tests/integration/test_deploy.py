# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy and rollback playbooks on a real fleet, run as an operator runs them, checked from the deployment
records in the ledger and from the files on the hosts.

Failures are injected by the revision itself: its ValidateService fails on the hostnames it lists. On a fresh
fleet every instance is Unhealthy (never deployed), so the service's order is the inventory's: fleet-h1 first.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from support.deployments import (APP_DESTINATION, APPSPEC, DEPLOYMENT_ROOT, REPORT_CALLBACK, active_locks, deploy,
                                 deployment_vars, fewest_healthy, fleet_digest, hold, ledger_digest, local,
                                 make_revision, ran, records, start_in_background, statuses, wait_for_a_wave)
from support.revisions import archive_tree

HALF = {"deployment_config_name": "CodeDeployDefault.HalfAtATime"}
ALL_AT_ONCE = {"deployment_config_name": "CodeDeployDefault.AllAtOnce"}
AUTO_ROLLBACK = {"auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}}


# The record's fields the issue names, in the shape of the API's DeploymentInfo.
RECORD_KEYS = ("deployment_id", "application_name", "deployment_group_name", "deployment_group_id", "status",
               "error_information", "creator", "rollback_info", "revision", "deployment_config_name",
               "minimum_healthy_hosts", "create_time", "complete_time", "deployment_overview", "instances")


def hosts(*numbers: int) -> list[str]:
    return [f"fleet-h{number}" for number in numbers]


def assert_outcome(record: dict, *, status: str, code, minimum: int, succeeded: list[str], failed: list[str],
                   waves: list[list[str]]) -> None:
    """Status, error code, counts, which hosts ran and when — and the minimum held at every instant."""
    assert set(RECORD_KEYS) <= set(record), set(RECORD_KEYS) - set(record)
    assert record["create_time"] <= record["complete_time"]
    for entry in record["instances"]:
        for event in entry["lifecycle_events"]:
            assert set(event) == {"lifecycle_event_name", "status", "start_time", "end_time", "diagnostics"}
    names = [entry["instance_id"] for entry in record["instances"]]
    skipped = [name for name in names if name not in succeeded + failed]
    assert (record["status"], (record["error_information"] or {}).get("code")) == (status, code), record
    assert record["minimum_healthy_hosts"]["count"] == minimum
    overview = record["deployment_overview"]
    assert {key: overview[key] for key in ("Succeeded", "Failed", "Skipped", "Pending", "InProgress")} == {
        "Succeeded": len(succeeded), "Failed": len(failed), "Skipped": len(skipped), "Pending": 0, "InProgress": 0}
    assert statuses(record) == {**{name: "Succeeded" for name in succeeded}, **{name: "Failed" for name in failed},
                                **{name: "Skipped" for name in skipped}}
    assert [wave["instances"] for wave in record["waves"]] == waves
    for entry in record["instances"]:
        if entry["instance_id"] in skipped:
            assert {event["status"] for event in entry["lifecycle_events"]} == {"Skipped"}, entry
    assert fewest_healthy(record) >= minimum


def assert_untouched(fleet, names) -> None:
    for host in names:
        assert not fleet.path(host, DEPLOYMENT_ROOT).exists(), host
        assert not fleet.path(host, APP_DESTINATION).exists(), host


# ----- worked examples of docs/codedeploy-service.md 1.4 and the start refusals of 1.3 --------------------------------
# (instances, configuration, failing hosts, status, error code, minimum, succeeded, failed, waves that ran, and
# lines the deployment_report callback prints)
WORKED_EXAMPLES = [
    pytest.param(10, HALF, hosts(2, 4), "Succeeded", None, 5, hosts(1, 3, 5, 6, 7, 8, 9, 10), hosts(2, 4),
                 [hosts(1, 2, 3, 4, 5), hosts(6, 7, 8), hosts(9), hosts(10)],
                 ["Wave 1/2: 5 instances, 3 succeeded, 2 failed, healthy 8 ≥ 5",
                  "Wave 2/2: 3 instances, 3 succeeded, 0 failed, healthy 8 ≥ 5; 2 deferred to the final pass",
                  "Final pass 3: 1 instance, 1 succeeded, 0 failed, healthy 8 ≥ 5",
                  "Final pass 4: 1 instance, 1 succeeded, 0 failed, healthy 8 ≥ 5"], id="A-half-10-two-failures"),
    pytest.param(9, {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 75}}, hosts(1, 8),
                 "Succeeded", None, 7, hosts(2, 3, 4, 5, 6, 7, 9), hosts(1, 8),
                 [hosts(1, 2), hosts(3), hosts(5), hosts(7), hosts(9), hosts(4), hosts(6), hosts(8)],
                 [], id="B-75pct-9-second-failure-on-last"),
    pytest.param(9, {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 75}}, hosts(1, 3),
                 "Failed", "HEALTH_CONSTRAINTS", 7, hosts(2), hosts(1, 3), [hosts(1, 2), hosts(3)],
                 [], id="B-75pct-9-second-failure-earlier"),
    pytest.param(3, {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 2}}, hosts(2),
                 "Failed", "HEALTH_CONSTRAINTS", 2, hosts(1), hosts(2), [hosts(1), hosts(2)],
                 [], id="C-count2-3-second-fails"),
    pytest.param(3, {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 2}}, hosts(3),
                 "Succeeded", None, 2, hosts(1, 2), hosts(3), [hosts(1), hosts(2), hosts(3)],
                 [], id="C-count2-3-last-fails"),
    pytest.param(1, {"deployment_config_name": "CodeDeployDefault.OneAtATime"}, hosts(1), "Failed",
                 "HEALTH_CONSTRAINTS", 0, [], hosts(1), [hosts(1)], [], id="D-one-at-a-time-1-fails"),
    pytest.param(3, {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 3}}, [],
                 "Failed", "HEALTH_CONSTRAINTS_INVALID", 3, [], [], [], [], id="C-count3-3-refused"),
    pytest.param(1, HALF, [], "Failed", "HEALTH_CONSTRAINTS_INVALID", 1, [], [], [], [], id="D-half-1-refused"),
]


@pytest.mark.parametrize("size, config, failing, status, code, minimum, succeeded, failed, waves, report",
                         WORKED_EXAMPLES)
def test_worked_example(fleet, tmp_path, size, config, failing, status, code, minimum, succeeded, failed, waves,
                        report):
    group = fleet(size)
    ledger = tmp_path / "ledger"
    run = deploy(group, ledger, local(make_revision(tmp_path / "revision", "1", failing)), **config)

    # A failed instance fails the run (the play recap counts it failed) even when the deployment succeeded.
    assert (run.rc == 0) == (status == "Succeeded" and not failed), run.output
    (record,) = records(ledger)
    assert [entry["instance_id"] for entry in record["instances"]] == group.hosts
    assert_outcome(record, status=status, code=code, minimum=minimum, succeeded=succeeded, failed=failed,
                   waves=waves)
    # Only the instances that ran hold the revision; the others were never touched.
    ran_hosts = ran(record)
    for host in ran_hosts:
        assert (group.path(host, f"{APP_DESTINATION}/VERSION")).read_text() == "1\n", host
    assert_untouched(group, [host for host in group.hosts if host not in ran_hosts])
    assert not active_locks(ledger), "the group's lock outlives its deployment"
    if code:
        assert record["deployment_id"] in run.output and f"Failed: {code}: " in run.output
    for line in report:
        assert line in run.stdout


def test_an_empty_group_is_refused_with_no_instances(fleet, tmp_path):
    two = fleet(2)
    empty = tmp_path / "empty-group.yml"
    empty.write_text("all:\n  children:\n    nobody:\n      hosts: {}\n")
    ledger = tmp_path / "ledger"
    run = two.playbook("fleetops.codedeploy.deploy", "-i", str(empty), env=REPORT_CALLBACK, extra_vars={
        **deployment_vars(ledger, local(make_revision(tmp_path / "revision", "1")), **ALL_AT_ONCE),
        "codedeploy_target_group": "nobody"})
    assert run.rc != 0
    (record,) = records(ledger)
    assert (record["status"], record["error_information"]["code"], record["instances"]) == (
        "Failed", "NO_INSTANCES", [])
    assert "no instances were found for your deployment group" in run.output
    assert_untouched(two, two.hosts)


# ----- rollback ---------------------------------------------------------------------------------------------------
def test_failed_deployment_rolls_back_to_identical_trees(fleet, tmp_path):
    """Example A with no failure, then with the first five failing: the health gate stops it and the automatic
    rollback puts back, byte for byte, what the first deployment installed."""
    ten = fleet(10)
    ledger = tmp_path / "ledger"
    first_run = deploy(ten, ledger, local(make_revision(tmp_path / "v1", "1")), **HALF)
    assert first_run.rc == 0, first_run.output
    (first,) = records(ledger)
    assert_outcome(first, status="Succeeded", code=None, minimum=5, succeeded=ten.hosts, failed=[],
                   waves=[hosts(1, 2, 3, 4, 5), hosts(6, 7, 8, 9, 10)])
    before = fleet_digest(ten)
    assert all(before[host] == before["fleet-h1"] and "VERSION" in before[host] for host in ten.hosts)

    run = deploy(ten, ledger, local(make_revision(tmp_path / "v2", "2", hosts(1, 2, 3, 4, 5))), **HALF,
                 **AUTO_ROLLBACK)

    assert run.rc != 0, run.output
    _first, failed, rollback = records(ledger)
    assert_outcome(failed, status="Failed", code="HEALTH_CONSTRAINTS", minimum=5, succeeded=[],
                   failed=hosts(1, 2, 3, 4, 5), waves=[hosts(1, 2, 3, 4, 5)])
    assert_outcome(rollback, status="Succeeded", code=None, minimum=5, succeeded=ten.hosts, failed=[],
                   waves=[hosts(1, 2, 3, 4, 5), hosts(6, 7, 8, 9, 10)])
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["revision"]["sha256"] == first["revision"]["sha256"]
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == failed["deployment_id"]
    assert failed["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert fleet_digest(ten) == before


def test_rollback_playbook_alone_restores_from_what_the_hosts_record(fleet, tmp_path):
    """An operator (or AWX) with an empty ledger rolls back a failed deployment from the hosts' own records."""
    three = fleet(3)
    first_ledger = tmp_path / "ledger"
    assert deploy(three, first_ledger, local(make_revision(tmp_path / "v1", "1")), **ALL_AT_ONCE).rc == 0
    before = fleet_digest(three)
    failed_run = deploy(three, first_ledger, local(make_revision(tmp_path / "v2", "2", three.hosts)), **ALL_AT_ONCE)
    assert failed_run.rc != 0, failed_run.output
    assert fleet_digest(three) != before, "the failed deployment should have installed revision 2's files"

    empty_ledger = tmp_path / "empty-ledger"
    run = deploy(three, empty_ledger, {}, playbook="fleetops.codedeploy.rollback", **ALL_AT_ONCE)

    assert run.rc == 0, run.output
    (rollback,) = records(empty_ledger)
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded")
    assert rollback["revision"]["sha256"] == records(first_ledger)[0]["revision"]["sha256"]
    assert fleet_digest(three) == before


def test_rolling_back_a_deployment_that_succeeded_brings_back_the_revision_before_it_once(fleet, tmp_path):
    """An operator undoes a release that deployed well but misbehaves: the rollback names it, and redeploys the
    group's last successful revision before it, not its own. Asked again, the rollback is refused, touching
    nothing."""
    two = fleet(2)
    ledger = tmp_path / "ledger"
    assert deploy(two, ledger, local(make_revision(tmp_path / "v1", "1")), **ALL_AT_ONCE).rc == 0
    before = fleet_digest(two)
    assert deploy(two, ledger, local(make_revision(tmp_path / "v2", "2")), **ALL_AT_ONCE).rc == 0
    first, released = records(ledger)

    run = deploy(two, ledger, {}, playbook="fleetops.codedeploy.rollback", rollback_of=released["deployment_id"],
                 **ALL_AT_ONCE)

    assert run.rc == 0, run.output
    _first, released, rollback = records(ledger)
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded")
    assert rollback["revision"]["sha256"] == first["revision"]["sha256"]
    assert released["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert fleet_digest(two) == before

    again = deploy(two, ledger, {}, playbook="fleetops.codedeploy.rollback", rollback_of=released["deployment_id"],
                   **ALL_AT_ONCE)

    assert again.rc != 0
    assert (f"codedeploy_rollback_of: deployment {released['deployment_id']} was rolled back already, by "
            f"{rollback['deployment_id']} (Succeeded)." in " ".join(again.output.split())), again.output
    assert len(records(ledger)) == 3 and not active_locks(ledger)
    assert fleet_digest(two) == before


def test_rollback_without_an_earlier_success_says_so_and_touches_nothing(fleet, tmp_path):
    one = fleet(1)
    ledger = tmp_path / "ledger"
    run = deploy(one, ledger, {}, playbook="fleetops.codedeploy.rollback", **ALL_AT_ONCE)
    assert run.rc != 0
    assert ("There is no earlier successful deployment of deployment group 'prod' to roll back to"
            in " ".join(run.output.split()))
    (record,) = records(ledger)
    assert (record["creator"], record["status"], record["error_information"]["code"]) == (
        "codeDeployRollback", "Failed", "REVISION_MISSING")
    assert not active_locks(ledger)
    assert_untouched(one, one.hosts)


# ----- one active deployment per group ----------------------------------------------------------------------------
def test_one_active_deployment_per_group_a_checked_stop_changes_nothing_and_a_killed_controllers_lock_is_cleared(
        fleet, tmp_path):
    two = fleet(2)
    ledger = tmp_path / "ledger"
    hold(two, True)  # the deployment stays active
    running = start_in_background(two, ledger, local(make_revision(tmp_path / "v1", "1")), **ALL_AT_ONCE)
    try:
        active = wait_for_a_wave(ledger, 1, lambda: running.poll() is None)
        refused = deploy(two, ledger, local(make_revision(tmp_path / "v2", "2")), **ALL_AT_ONCE)
        checked = deploy(two, ledger, local(make_revision(tmp_path / "v2", "2")), "--check", **ALL_AT_ONCE)
        stop_checked = two.playbook("fleetops.codedeploy.stop", "--check", extra_vars=deployment_vars(ledger, None))
        assert running.poll() is None, "the first deployment should still be running"
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait()
        hold(two, False)  # the killed controller's hooks end on the hosts
    assert stop_checked.rc == 0, stop_checked.output
    assert f"Check mode: deployment {active['deployment_id']} would be stopped." in " ".join(
        stop_checked.output.split())
    (lock,) = active_locks(ledger)
    assert lock["deployment_id"] == active["deployment_id"] and not lock.get("stop_request")
    for attempt in (refused, checked):
        assert attempt.rc != 0
        assert (f"The Deployment Group 'prod' already has an active Deployment '{active['deployment_id']}'"
                in attempt.output)
    assert "Plan:" not in checked.output
    (killed,) = records(ledger)
    assert killed["status"] == "InProgress", "the refused deployment touched the active one's record"

    run = deploy(two, ledger, local(make_revision(tmp_path / "v2", "2")), **ALL_AT_ONCE)

    assert run.rc == 0, run.output
    assert f"Deployment {active['deployment_id']} was left active by a controller that stopped renewing its lock" in (
        " ".join(run.output.split()))
    killed, fresh = records(ledger)
    assert killed["deployment_id"] == active["deployment_id"]
    assert (killed["status"], killed["complete_time"] is not None) == ("Failed", True)
    assert fresh["status"] == "Succeeded"
    for host in two.hosts:
        assert two.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "2\n"


# ----- revisions: S3, git, local; refused in the plan -------------------------------------------------------------
def upload(client, tmp_path: Path, tree: Path) -> dict:
    body = archive_tree(tree, tmp_path / "bundle.tgz", "tgz").read_bytes()
    etag = client.put_object(Bucket="releases", Key="webapp/bundle.tgz", Body=body)["ETag"]
    return {"source": "s3", "bucket": "releases", "key": "webapp/bundle.tgz", "bundle_type": "tgz", "etag": etag}


def git_repository(tmp_path: Path, tree: Path) -> tuple[Path, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True,
                              env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                                   "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}).stdout
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "revision")
    return tree, git("rev-parse", "HEAD").strip()


def hook_environment(fleet, host: str) -> dict[str, str]:
    lines = fleet.path(host, "/srv/hook-env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_the_bundle_is_pushed_once_checked_and_kept_under_its_sha256(fleet, tmp_path):
    """Each host receives the bundle into the login user's private push directory, stores it under its sha256 and
    keeps nothing behind; a second deployment of the same revision sends nothing."""
    two = fleet(2)
    ledger = tmp_path / "ledger"
    revision = local(make_revision(tmp_path / "tree", "pushed-" + tmp_path.name))
    assert deploy(two, ledger, revision, **ALL_AT_ONCE).rc == 0
    first = records(ledger)[-1]
    sha256, bundle_type = first["revision"]["sha256"], first["revision"]["bundle_type"]
    for entry in first["instances"]:
        stored = two.path(entry["instance_id"], f"{DEPLOYMENT_ROOT}/fleetops-bundles/{sha256}.{bundle_type}")
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha256
        assert entry["bundle_push"]["bytes"] == stored.stat().st_size
        assert entry["bundle_push"]["start_time"] <= entry["bundle_push"]["end_time"]
    # The fleet's login user is root, whose home the fleet hosts share with the controller.
    push_dir = Path("/root/.ansible/tmp/fleetops-codedeploy-push")
    assert oct(push_dir.stat().st_mode & 0o777) == "0o700"
    assert not list(push_dir.glob(f"*-{sha256}.{bundle_type}"))

    assert deploy(two, ledger, revision, **ALL_AT_ONCE).rc == 0
    second = records(ledger)[-1]
    assert second["deployment_id"] != first["deployment_id"] and second["status"] == "Succeeded"
    assert [entry.get("bundle_push") for entry in second["instances"]] == [None, None]


def test_s3_revision_deploys_and_hooks_see_the_bundle(fleet, tmp_path, s3):
    client, aws_input, env = s3
    two = fleet(2)
    revision = upload(client, tmp_path, make_revision(tmp_path / "tree", "1"))
    run = deploy(two, tmp_path / "ledger", revision, env=env, aws=aws_input, **ALL_AT_ONCE)
    assert run.rc == 0, run.output
    for host in two.hosts:
        assert two.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "1\n"
        seen = hook_environment(two, host)
        assert (seen["BUNDLE_BUCKET"], seen["BUNDLE_KEY"], seen["BUNDLE_ETAG"]) == (
            "releases", "webapp/bundle.tgz", revision["etag"].strip('"'))
        assert "BUNDLE_COMMIT" not in seen and "BUNDLE_VERSION" not in seen


def test_git_revision_deploys_and_hooks_see_the_commit(fleet, tmp_path):
    two = fleet(2)
    repository, commit = git_repository(tmp_path, make_revision(tmp_path / "repo", "1"))
    run = deploy(two, tmp_path / "ledger", {"source": "git", "repository": str(repository), "commit_id": commit},
                 **ALL_AT_ONCE)
    assert run.rc == 0, run.output
    for host in two.hosts:
        assert two.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "1\n"
        seen = hook_environment(two, host)
        assert seen["BUNDLE_COMMIT"] == commit
        assert not {"BUNDLE_BUCKET", "BUNDLE_KEY", "BUNDLE_ETAG"} & set(seen)


def bad_appspec(tmp_path: Path, request) -> tuple[dict, str]:
    tree = make_revision(tmp_path / "tree", "1", appspec=APPSPEC.replace("version: 0.0", "version: 1.0"))
    return local(tree), "an invalid version value (1.0)"


def wrong_etag(tmp_path: Path, request) -> tuple[dict, str]:
    client, _aws_options, _environment = request.getfixturevalue("s3")
    revision = upload(client, tmp_path, make_revision(tmp_path / "tree", "1"))
    return {**revision, "etag": '"0123456789abcdef0123456789abcdef"'}, (
        'Expected deployment artifact bundle etag "0123456789abcdef0123456789abcdef" but was actually')


def missing_commit(tmp_path: Path, request) -> tuple[dict, str]:
    repository, _commit = git_repository(tmp_path, make_revision(tmp_path / "repo", "1"))
    return {"source": "git", "repository": str(repository), "commit_id": "0" * 40}, "0" * 40


@pytest.mark.parametrize("broken", [bad_appspec, wrong_etag, missing_commit])
def test_a_broken_revision_fails_in_the_plan_with_no_host_touched(fleet, tmp_path, request, broken):
    two = fleet(2)
    revision, named = broken(tmp_path, request)
    aws, env = ({}, {}) if revision["source"] != "s3" else request.getfixturevalue("s3")[1:]
    ledger = tmp_path / "ledger"
    run = deploy(two, ledger, revision, env=env, aws=aws, **ALL_AT_ONCE)
    assert run.rc != 0
    assert named in run.output
    assert_untouched(two, two.hosts)
    assert not list((ledger / "locks").glob("*")), "a deployment refused in the plan holds the group's lock"
    assert all(record["status"] == "Failed" for record in records(ledger))


# ----- check mode -------------------------------------------------------------------------------------------------
def test_check_mode_prints_the_plan_and_changes_nothing(fleet, tmp_path):
    """After a deployment that failed on fleet-h2, the plan starts with that unhealthy instance; a misspelt input is
    named, with the input it resembles."""
    three = fleet(3)
    ledger = tmp_path / "ledger"
    # The deployment succeeds; the run fails with fleet-h2 failed in the play recap.
    assert deploy(three, ledger, local(make_revision(tmp_path / "v1", "1", hosts(2))), **ALL_AT_ONCE).rc == 2
    trees = {path: fleet_digest(three, path) for path in ("/opt/codedeploy-agent", "/var/www", "/srv")}
    kept = ledger_digest(ledger)

    run = deploy(three, ledger, local(make_revision(tmp_path / "v2", "2")), "--check",
                 minimum_healthy_hosts={"type": "HOST_COUNT", "value": 1}, auto_rolback={"enabled": True})

    assert run.rc == 0, run.output
    assert ("[WARNING]: codedeploy_auto_rolback (an extra var) is not an input of a deployment. Did you mean "
            "codedeploy_auto_rollback?") in run.output
    assert "Plan: 3 instances, minimum healthy 1, waves of 2" in run.stdout
    assert "Wave 1: fleet-h2 (Unhealthy), fleet-h1 (Current)" in run.stdout
    assert "Wave 2: fleet-h3 (Current)" in run.stdout
    assert ("Each instance runs: ApplicationStop → DownloadBundle → BeforeInstall → Install → AfterInstall → "
            "ApplicationStart → ValidateService") in run.stdout
    assert "Scripts from the AppSpec for: ApplicationStop, BeforeInstall, ApplicationStart, ValidateService" in (
        run.stdout)
    assert {path: fleet_digest(three, path) for path in trees} == trees
    assert ledger_digest(ledger) == kept


def test_check_mode_reports_a_refused_deployment_and_fails(fleet, tmp_path):
    one = fleet(1)
    ledger = tmp_path / "ledger"
    run = deploy(one, ledger, local(make_revision(tmp_path / "v1", "1")), "--check", **HALF)
    assert run.rc != 0
    assert "Failed: HEALTH_CONSTRAINTS_INVALID: " in run.output
    assert "Plan:" not in run.output
    assert not ledger.exists()
    assert_untouched(one, one.hosts)
