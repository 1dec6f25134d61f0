# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_flow import (
    RUN_STATS_NAMES, bundle_plan, host_results, run_failures, run_stats, stop_told, success_mark, verdict)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_record import (
    rollback_not_created, rolled_back_by)

REVISION = {"source": "s3", "sha256": "ab" * 32, "bundle_type": "zip", "appspec": {"version": 0.0},
            "bundle_env": {"BUNDLE_COMMIT": None}, "host_bundle_path": "/root/g/d-1/bundle.tar"}
STORE = "/opt/codedeploy-agent/deployment-root/fleetops-bundles"


def test_the_bundle_is_pushed_from_the_fetched_copy_to_the_hosts_store_by_sha256(tmp_path):
    plan = bundle_plan(REVISION, "/opt/codedeploy-agent/deployment-root", str(tmp_path), "/cache/x.zip", None)
    assert plan["bundle"] == {"controller_path": "/cache/x.zip", "host_path": f"{STORE}/{'ab' * 32}.zip",
                              "recorded_path": "/root/g/d-1/bundle.tar", "sha256": "ab" * 32, "bundle_type": "zip",
                              "pull": None}
    assert plan["appspec"] == {"version": 0.0} and plan["bundle_env"] == {"BUNDLE_COMMIT": None}


def test_a_rollback_pushes_the_cached_bundle_or_else_takes_the_recorded_one(tmp_path):
    cached = tmp_path / f"{'ab' * 32}.zip"
    assert bundle_plan(REVISION, "/r", str(tmp_path), None, None)["bundle"]["controller_path"] is None
    cached.write_bytes(b"zip")
    assert bundle_plan(REVISION, "/r", str(tmp_path), None, None)["bundle"]["controller_path"] == str(cached)


def test_a_phase_without_a_revision_installs_nothing(tmp_path):
    plan = bundle_plan(None, "/r", str(tmp_path), None, None)
    assert plan["bundle"]["sha256"] is None and plan["bundle"]["host_path"] is None and plan["appspec"] == {}


def test_pull_goes_with_the_bundle(tmp_path):
    pull = {"url": "https://example.com/a.zip"}
    assert bundle_plan(REVISION, "/r", str(tmp_path), "/c/a.zip", pull)["bundle"]["pull"] == pull


def test_a_host_without_a_result_is_none():
    assert host_results(["h1", "h2"], {"h1": {"status": "Succeeded"}}) == {"h1": {"status": "Succeeded"}, "h2": None}


def outcome(deployment_id, status, code=None, message="", **extra):
    return {"deployment_id": deployment_id, "status": status, "record_path": f"/ledger/{deployment_id}.json",
            "error_information": {"code": code, "message": message} if code else None, **extra}


def test_a_succeeded_deployment_says_so_with_its_record():
    assert verdict([outcome("d-1", "Succeeded")]) == (True, "Deployment d-1 Succeeded. Record: /ledger/d-1.json")


def test_a_failed_deployment_fails_the_run_with_its_code_message_and_rollback():
    ok, told = verdict([outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", "Too many instances failed."),
                        outcome("d-2", "Succeeded")])
    assert not ok
    assert told == ("Deployment d-1 Failed: HEALTH_CONSTRAINTS: Too many instances failed. Rollback d-2 Succeeded. "
                    "Record: /ledger/d-1.json")


def test_a_deployment_stopped_on_request_succeeds_when_its_rollback_does():
    stopped = outcome("d-1", "Stopped", "MANUAL_STOP", "Stopped by the operator.", stopped_on_request=True)
    assert verdict([stopped]) == (True, "Deployment d-1 Stopped. Record: /ledger/d-1.json")
    assert verdict([stopped, outcome("d-2", "Succeeded")])[0]
    assert verdict([stopped, outcome("d-2", "Succeeded")])[1].startswith("Deployment d-1 Stopped; rollback d-2 "
                                                                         "Succeeded.")
    assert not verdict([stopped, outcome("d-2", "Failed", "HEALTH_CONSTRAINTS", "x")])[0]
    # Stopped by an alarm, or by a stop request from elsewhere, is no success.
    assert not verdict([outcome("d-1", "Stopped", "ALARM_ACTIVE", "Alarm high-5xx in ALARM.")])[0]


def test_a_ready_deployment_says_what_to_run_before_when():
    ready = outcome("d-1", "Ready", blue_green={"ready": {"until": "2026-12-06T12:00:00Z"}})
    ok, told = verdict([ready])
    assert ok and "Run the playbook fleetops.codedeploy.continue with the same inputs before 2026-12-06T12:00:00Z" \
        in told and told.endswith("Record: /ledger/d-1.json")


def test_a_rollback_that_failed_too_says_why():
    ok, told = verdict([outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", "Too many instances failed."),
                        outcome("d-2", "Failed", "NO_INSTANCES", "No instance to roll back.")])
    assert not ok
    assert told == ("Deployment d-1 Failed: HEALTH_CONSTRAINTS: Too many instances failed. Rollback d-2 Failed: "
                    "NO_INSTANCES: No instance to roll back. Record: /ledger/d-1.json")


def test_a_rollback_that_could_not_be_created_says_why_as_the_record_does():
    failed = outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", "Too many instances failed.", rollback_requested=True,
                     rollback_info={"rollback_deployment_id": None, "rollback_triggering_deployment_id": None,
                                    "rollback_message": None})
    rollback_not_created(failed, "ELBv2 (checking the load balancer): AccessDenied.")
    assert failed["rollback_info"] == {
        "rollback_deployment_id": None, "rollback_triggering_deployment_id": None,
        "rollback_message": "The rollback could not be created: ELBv2 (checking the load balancer): AccessDenied."}
    ok, told = verdict([failed])
    assert not ok
    assert told == ("Deployment d-1 Failed: HEALTH_CONSTRAINTS: Too many instances failed. The rollback could not be "
                    "created: ELBv2 (checking the load balancer): AccessDenied. Record: /ledger/d-1.json")


def test_a_rolled_back_deployment_names_its_rollback_and_the_verdict_its_status():
    failed = outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", "Too many instances failed.", rollback_requested=True)
    rolled_back_by(failed, "d-2")
    assert failed["rollback_info"] == {"rollback_deployment_id": "d-2", "rollback_triggering_deployment_id": None,
                                       "rollback_message": "Rolled back by d-2."}
    rollback = {"rollback_info": {"rollback_deployment_id": None, "rollback_triggering_deployment_id": "d-1",
                                  "rollback_message": None}}
    rolled_back_by(rollback, "d-3")  # a rollback rolled back in turn still names what it rolled back
    assert rollback["rollback_info"] == {"rollback_deployment_id": "d-3", "rollback_triggering_deployment_id": "d-1",
                                         "rollback_message": "Rolled back by d-3."}
    assert verdict([failed, outcome("d-2", "Succeeded")])[1] == (
        "Deployment d-1 Failed: HEALTH_CONSTRAINTS: Too many instances failed. Rollback d-2 Succeeded. "
        "Record: /ledger/d-1.json")


def test_a_deployment_stopped_on_request_whose_rollback_could_not_be_created_fails_the_run():
    stopped = outcome("d-1", "Stopped", "MANUAL_STOP", "Stopped by the stop playbook.", stopped_on_request=True)
    not_created = {**stopped, "rollback_requested": True}
    rollback_not_created(not_created, "ELBv2 (checking the load balancer): TargetGroupNotFound")
    ok, told = verdict([not_created])
    assert not ok
    assert told.endswith("The rollback could not be created: ELBv2 (checking the load balancer): "
                         "TargetGroupNotFound. Record: /ledger/d-1.json")


def test_a_deployment_that_asked_for_no_rollback_says_nothing_of_one():
    failed = outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", "Too many instances failed.",
                     rollback_info={"rollback_message": "Rolled back by d-0."})
    assert verdict([failed])[1] == ("Deployment d-1 Failed: HEALTH_CONSTRAINTS: Too many instances failed. "
                                    "Record: /ledger/d-1.json")


def test_the_mark_of_a_success_names_the_revision_and_where_each_host_keeps_its_bundle():
    record = {"deployment_id": "d-1", "deployment_group_id": "gid", "complete_time": "2026-12-06T06:00:00Z",
              "options": {"deployment_root": "/srv/deploy"}, "revision": REVISION}
    mark = success_mark(record)
    assert (mark["deployment_root"], mark["deployment_group_id"]) == ("/srv/deploy", "gid")
    assert mark["marker"] == {"deployment_id": "d-1", "complete_time": "2026-12-06T06:00:00Z",
                              "revision": {**REVISION, "bundle_path": "/srv/deploy/gid/d-1/bundle.tar"}}
    default_root = success_mark({**record, "options": {"deployment_root": None}, "revision": None})
    assert default_root["deployment_root"] == "/opt/codedeploy-agent/deployment-root"
    assert (default_root["marker"]["revision"]["sha256"], default_root["marker"]["revision"]["appspec"]) == (None, {})


def test_the_stop_step_says_what_it_did_or_would_do():
    path = "/ledger/deployments/d-1.json"
    assert stop_told({"deployment_id": "d-1", "outcome": "check mode", "record_path": path}, 0) == (
        f"Check mode: deployment d-1 would be stopped. Record: {path}")
    assert stop_told({"deployment_id": None, "outcome": "check mode", "record_path": None}, 0) == (
        "Check mode: the group has no active deployment to stop.")
    assert stop_told({"deployment_id": "d-1", "outcome": "requested", "record_path": path}, 30.0) == (
        "Deployment d-1 was asked to stop; its controller had not stopped it after 30 s (it stops at its next wave "
        f"gate). Record: {path}")
    assert stop_told({"deployment_id": "d-1", "outcome": "stopped by its controller", "record_path": path,
                      "record": {"status": "Stopped"}}, 900) == f"Deployment d-1 is Stopped. Record: {path}"
    assert stop_told({"deployment_id": "d-1", "outcome": "stopped", "record_path": path,
                      "record": {"status": "Stopped"}}, 0) == (
        "Deployment d-1 is Stopped (closed here: it was waiting in Ready or its controller was gone). "
        f"Record: {path}")


def test_a_second_stop_says_the_first_request_stands():
    earlier = {"by": "pid 1 on ops-1", "requested_at": "2026-12-07T06:00:00.000Z", "rollback": True}
    assert stop_told({"deployment_id": "d-1", "outcome": "requested", "record_path": "/l/d-1.json",
                      "earlier_request": earlier}, 0) == (
        "Deployment d-1 was asked to stop; its controller had not stopped it after 0 s (it stops at its next wave "
        "gate). It had been asked to stop already (pid 1 on ops-1, at 2026-12-07T06:00:00.000Z, with its rollback): "
        "that request stands. Record: /l/d-1.json")
    assert stop_told({"deployment_id": "d-1", "outcome": "stopped by its controller", "record": {"status": "Stopped"},
                      "earlier_request": {"rollback": False}}, 30) == (
        "Deployment d-1 is Stopped. It had been asked to stop already (a user, at ?, without a rollback): that request "
        "stands.")


def test_a_run_whose_plan_has_nothing_after_it_gives_its_outcome_to_the_next_node():
    failed = outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", revision={**REVISION, "etag": "e"})
    stats = run_stats({"start_with": "idle", "outcomes": [failed, outcome("d-2", "Succeeded")]})
    assert stats == {"per_host": False, "aggregate": False, "data": {
        "codedeploy_deployment_id": "d-1", "codedeploy_deployment_status": "Failed",
        "codedeploy_error_code": "HEALTH_CONSTRAINTS", "codedeploy_rollback_deployment_id": "d-2",
        # Where the revision came from, not what it holds.
        "codedeploy_revision": {"source": "s3", "sha256": "ab" * 32, "bundle_type": "zip", "etag": "e"}}}
    assert run_stats({"start_with": "idle", "outcomes": [outcome("d-1", "Succeeded")]})["data"] == {
        "codedeploy_deployment_id": "d-1", "codedeploy_deployment_status": "Succeeded",
        "codedeploy_error_code": None, "codedeploy_revision": {}}
    # What the next node's inputs check knows as handed on, not misspelt.
    assert set(stats["data"]) == RUN_STATS_NAMES


def test_a_run_gives_nothing_while_a_stage_or_a_rollback_follows_or_nothing_ended():
    assert run_stats({"start_with": "phase", "outcomes": [outcome("d-1", "Failed", "HEALTH_CONSTRAINTS")]}) is None
    assert run_stats({"start_with": "idle", "outcomes": []}) is None


def instance(name, status, *failed_events):
    return {"instance_id": name, "status": status, "lifecycle_events": [
        {"lifecycle_event_name": "ApplicationStart", "status": "Succeeded", "diagnostics": None},
        *({"lifecycle_event_name": event, "status": "Failed", "diagnostics": {"message": message}}
          for event, message in failed_events)]}


def test_a_run_that_ended_fails_each_instance_that_failed_in_any_of_its_deployments_once():
    failed = outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", instances=[
        instance("h1", "Succeeded"), instance("h2", "Failed", ("ValidateService", "exit code 1")),
        instance("h3", "Skipped")])
    rollback = outcome("d-2", "Failed", "HEALTH_CONSTRAINTS", instances=[
        instance("h1", "Succeeded"), instance("h2", "Failed", ("ApplicationStart", "timed out")),
        instance("h3", "Failed", ("DownloadBundle", ""))])
    assert run_failures({"start_with": "idle", "outcomes": [failed, rollback]}) == {
        "h2": "h2 failed: deployment d-1, ValidateService: exit code 1. deployment d-2, ApplicationStart: timed out.",
        "h3": "h3 failed: deployment d-2, DownloadBundle: ."}


def test_what_an_instance_fails_with_shows_a_scripts_controls_as_escapes():
    failed = outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", instances=[
        instance("h1", "Failed", ("ValidateService", "Script at specified location: v\x1b[2K\u202e.sh failed"))])
    assert run_failures({"start_with": "idle", "outcomes": [failed]}) == {
        "h1": "h1 failed: deployment d-1, ValidateService: Script at specified location: v\\x1b[2K\\u202e.sh failed."}


def test_an_instance_that_failed_before_a_rollback_that_succeeded_is_failed_all_the_same():
    failed = outcome("d-1", "Failed", "HEALTH_CONSTRAINTS", instances=[
        instance("h1", "Succeeded"), instance("h2", "Failed", ("ValidateService", "exit code 1"))])
    rollback = outcome("d-2", "Succeeded", instances=[instance("h1", "Succeeded"), instance("h2", "Succeeded")])
    assert run_failures({"start_with": "idle", "outcomes": [failed, rollback]}) == {
        "h2": "h2 failed: deployment d-1, ValidateService: exit code 1."}


def test_a_run_fails_no_instance_while_a_stage_or_a_rollback_follows():
    assert run_failures({"start_with": "phase", "outcomes": [outcome("d-1", "Failed", "HEALTH_CONSTRAINTS")]}) is None
    # Stopped or refused before any phase ran: no instance failed.
    assert run_failures({"start_with": "idle", "outcomes": []}) == {}
