# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment action's own decisions, apart from the ledger and the hosts: whether a rollback follows, which
revision a rollback from the hosts takes, how an instance's survey ranks it, which instances are marked, what
of a recorded revision a catch-up fetches again, and which waves the play runs from one include. Then steps called
in process on a ledger directory, for faults the fleet cannot stage: a lock that cannot be released, a trigger
that cannot be delivered, a continue whose record cannot be saved."""
from __future__ import annotations

import datetime
import os
import threading
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.fleetops.codedeploy.plugins.action import deployment as deployment_action
from ansible_collections.fleetops.codedeploy.plugins.action.deployment import (
    FIRST_WAVES_PER_INCLUDE, WAVES_PER_INCLUDE, ActionModule, absent_instances, link_rollback, marked_instances,
    revision_from_hosts, revision_source, rollback_of, rollback_of_refusal, rollback_requested, survey_health,
    waves_ahead)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils import deployment_record as records
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.alarms import AlarmConfigError
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_ids import deployment_group_id
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import resolve_minimum_healthy_hosts
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger import Ledger, LedgerError, controller_identity
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger_store import LedgerStoreError, LocalStore
from refusing_store import RefusingStore
from sample_records import finished_record, ready_record

GROUP = deployment_group_id("webapp", "prod")
AUTO = {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}


def record(status, code=None, creator="user", **extra):
    return {"status": status, "creator": creator, "error_information": {"code": code} if code else None, **extra}


@pytest.mark.parametrize("ended, auto, rolls_back", [
    (record("Failed", "HEALTH_CONSTRAINTS"), AUTO, True),
    (record("Failed", "HEALTH_CONSTRAINTS"), {"enabled": False, "events": ["DEPLOYMENT_FAILURE"]}, False),
    (record("Failed", "HEALTH_CONSTRAINTS"), None, False),
    (record("Stopped", "ALARM_ACTIVE"), AUTO, True),
    (record("Stopped", "MANUAL_STOP"), AUTO, False),
    (record("Stopped", "MANUAL_STOP"), {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]}, True),
    (record("Succeeded"), AUTO, False),
    # A rollback is not rolled back; a catch-up deploys the last good revision already.
    (record("Failed", "HEALTH_CONSTRAINTS", creator="codeDeployRollback"), AUTO, False),
    (record("Failed", "HEALTH_CONSTRAINTS", creator="autoscaling"), AUTO, False),
])
def test_a_rollback_follows_the_deployments_auto_rollback_events(ended, auto, rolls_back):
    assert rollback_requested(ended, auto) is rolls_back


def test_a_stop_request_asking_for_a_rollback_rolls_back_without_auto_rollback():
    stopped = record("Stopped", "MANUAL_STOP", stop_reason={"manual_stop": {"rollback": True}})
    assert rollback_requested(stopped, None) is True


def test_a_rollback_from_the_hosts_takes_the_newest_marker_any_reachable_host_has():
    survey = {
        "h1": {"last_successful_deployment": {"complete_time": "2026-12-01T10:00:00Z", "revision": {"sha256": "old"}}},
        "h2": {"last_successful_deployment": {"complete_time": "2026-12-02T10:00:00Z", "revision": {"sha256": "new"}}},
        "h3": {"unreachable": True},
        "h4": None,
    }
    assert revision_from_hosts(survey) == {"sha256": "new"}
    assert revision_from_hosts({"h1": {"last_successful_deployment": None}}) is None


def test_a_rollback_from_the_hosts_never_takes_the_deployment_it_undoes():
    survey = {
        "h1": {"last_successful_deployment": {"deployment_id": "d-OLD", "complete_time": "2026-12-01T10:00:00Z",
                                              "revision": {"sha256": "old"}}},
        "h2": {"last_successful_deployment": {"deployment_id": "d-UNDONE", "complete_time": "2026-12-02T10:00:00Z",
                                              "revision": {"sha256": "new"}}},
    }
    assert revision_from_hosts(survey, "d-UNDONE") == {"sha256": "old"}
    assert revision_from_hosts({"h2": survey["h2"]}, "d-UNDONE") is None


@pytest.mark.parametrize("info, health", [
    ({"instance": {"status": "Succeeded", "revision_sha256": "abc"}}, (True, "abc")),
    ({"instance": {"status": "Failed", "revision_sha256": "abc"}}, (False, "abc")),
    ({"instance": None}, (None, None)),
    ({"unreachable": True, "msg": "no route"}, (None, None)),
    (None, (None, None)),
])
def test_the_survey_says_how_the_instances_last_deployment_went(info, health):
    assert survey_health(info) == health


def test_the_marked_instances_are_those_that_now_run_the_revision():
    in_place = {"status": "Succeeded", "creator": "user", "instances": [
        {"instance_id": "h1", "status": "Succeeded"}, {"instance_id": "h2", "status": "Failed"}]}
    assert marked_instances(in_place) == ["h1"]
    blue_green = {"status": "Succeeded", "creator": "user", "blue_green": {"stage": 2}, "deployment_style": {
        "deployment_type": "BLUE_GREEN"}, "instances": [
        {"instance_id": "b1", "status": "Succeeded", "instance_type": "Blue"},
        {"instance_id": "g1", "status": "Succeeded", "instance_type": "Green"}]}
    assert marked_instances(blue_green) == ["g1"]
    assert marked_instances({**blue_green, "creator": "codeDeployRollback"}) == []


def test_a_catch_up_fetches_the_revision_again_from_where_it_was_given():
    s3 = {"source": "s3", "bucket": "releases", "key": "w.zip", "bundle_type": "zip", "etag": None,
          "sha256": "abc", "appspec": {}, "host_bundle_path": "/x"}
    assert revision_source(s3) == {"source": "s3", "bucket": "releases", "key": "w.zip", "bundle_type": "zip"}
    local = {"source": "local", "path": "/build/webapp", "bundle_type": "tar", "sha256": "abc"}
    assert revision_source(local) == {"source": "local", "path": "/build/webapp"}


def test_the_play_runs_the_waves_named_ahead_the_open_one_first_with_who_starts():
    config, minimum = resolve_minimum_healthy_hosts("CodeDeployDefault.OneAtATime", None)
    stage = records.new_record(
        deployment_id="d-TEST00001", application_name="webapp", deployment_group_name="prod",
        deployment_group_id="g", creator="user", revision={"sha256": "abc"}, deployment_config_name=config,
        minimum=minimum, instances=["h1", "h2", "h3", "h4", "h5"], events=["Install"], options={})
    records.start(stage, ["h1", "h2", "h3", "h4", "h5"], [1, 1, 1, 1, 1])
    records.gate(stage, ["h1"], False)
    opened = {"start": ["h1"]}
    # The phase's first include: the open wave and one more (a deployment that stops at once idles through one).
    assert waves_ahead(stage, opened, FIRST_WAVES_PER_INCLUDE) == [
        {"hosts": ["h1"], "final_pass": False, "start": ["h1"]}, {"hosts": ["h2"], "final_pass": False}]
    assert [wave["hosts"] for wave in waves_ahead(stage, opened, WAVES_PER_INCLUDE)] == [
        ["h1"], ["h2"], ["h3"], ["h4"], ["h5"]]
    assert waves_ahead(stage, {"start": []}, WAVES_PER_INCLUDE) == []  # no wave open: the deployment stopped


def step(inventory=("b1", "g1")) -> ActionModule:
    """The deployment action's steps, called in process: their own logic, with no task to run them, in a run whose
    inventory has the hosts ``inventory`` (those of ``ready_record``)."""
    action = object.__new__(ActionModule)
    action._task, action._warnings = SimpleNamespace(check_mode=False), []  # pylint: disable=protected-access
    action._hostvars = {host: {} for host in inventory}  # pylint: disable=protected-access
    action._groups, action._limit = {"all": list(inventory)}, None  # pylint: disable=protected-access
    return action


def test_a_lock_the_finish_step_cannot_release_is_a_warning_and_the_deployment_still_ends_whole(tmp_path):
    store = RefusingStore(str(tmp_path))
    ledger = Ledger(store)
    running = finished_record(ended=False)
    ledger.save(running)
    ledger.acquire(running["deployment_group_id"], "prod", running["deployment_id"], controller_identity(os.getpid()),
                   600)
    store.refused = "locks/"

    finished = step()._finish(ledger, {"plan": {"deployment_id": running["deployment_id"], "outcomes": []}})

    ended = finished["ended_phase"]
    assert (ended["record"]["status"], ledger.load(running["deployment_id"])["status"]) == ("Succeeded", "Succeeded")
    assert ended["succeeded_instances"] == ["web-1", "web-2"]  # marked on the hosts all the same
    assert os.path.exists(ended["html_report_path"]) and os.path.exists(ended["report_path"])
    assert [outcome["deployment_id"] for outcome in finished["outcomes"]] == [running["deployment_id"]]
    (warning,) = ledger.warnings
    assert warning.startswith(f"The lock of deployment group group-id stays with {running['deployment_id']} until "
                              "its lease runs out: Cannot write ")


def test_a_deployment_the_stop_step_closes_keeps_the_stop_trigger_it_could_not_deliver_in_its_record(tmp_path):
    ledger = Ledger(LocalStore(str(tmp_path)))
    hook = {"trigger_name": "ops", "trigger_events": ["DeploymentStop"], "trigger_target_url": "http://127.0.0.1:9/"}
    running = finished_record(ended=False, triggers=[hook])
    ledger.save(running)
    gone = {"hostname": "awx-job-4711", "pid": 4242, "pid_namespace": "pid:[1]", "pid_start_ticks": 1}
    ledger.acquire("group-id", "prod", running["deployment_id"], gone, 600)
    lock = ledger.lock("group-id")
    lock["renewed_at"] = "2000-01-01T00:00:00.000Z"  # its controller stopped renewing: the stop step closes it
    ledger._write_lock("group-id", lock)  # pylint: disable=protected-access

    stopped = step()._stop(ledger, {"inputs": {"codedeploy_application_name": "webapp",
                                               "codedeploy_deployment_group_name": "prod",
                                               "codedeploy_deployment_group_id": "group-id"}})

    assert stopped["stopped_deployment"]["outcome"] == "stopped"
    record = ledger.load(running["deployment_id"])
    assert record["status"] == "Stopped"
    assert any(message.startswith("Trigger 'ops': DeploymentStop not delivered")
               for message in record["deployment_status_messages"]), record["deployment_status_messages"]


def test_a_rollback_whose_link_cannot_be_saved_goes_on_with_a_warning_and_nothing_links_to_it(tmp_path):
    store = RefusingStore(str(tmp_path))
    ledger = Ledger(store)
    failed = finished_record(failing=["web-2"])
    ledger.save(failed)
    store.refused = "deployments/"
    warnings: list = []

    link_rollback(ledger, "d-RRRRRRRRR", failed["deployment_id"], warnings)

    (warning,) = warnings
    assert warning.startswith(f"Deployment {failed['deployment_id']}: its link to its rollback d-RRRRRRRRR could not "
                              "be recorded: Cannot write ")
    assert Ledger(store).load(failed["deployment_id"])["rollback_info"] is None


def test_a_deployment_that_goes_ready_before_a_wave_gate_saw_the_stop_request_is_stopped_by_the_stop_step(
        tmp_path, monkeypatch):
    monkeypatch.setattr(deployment_action, "STOP_POLL_SECONDS", 0.05)
    ready = ready_record(GROUP, datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc))
    ledger = Ledger(LocalStore(str(tmp_path)))
    ledger.save({**ready, "status": "InProgress"})  # its last wave ran; its finish step has not run yet
    ledger.acquire(GROUP, "prod", ready["deployment_id"], controller_identity(os.getpid()), 600)

    def finish_step_goes_ready():  # the deployment's own controller, after the request landed in its lock
        own = Ledger(LocalStore(str(tmp_path)))
        own.save({**own.load(ready["deployment_id"]), "status": "Ready"})
        own.hold_ready(GROUP, ready["deployment_id"], ready["blue_green"]["ready"]["until"])

    going_ready = threading.Timer(0.2, finish_step_goes_ready)
    going_ready.start()
    stopped = step()._stop(ledger, {"inputs": {"codedeploy_application_name": "webapp",
                                               "codedeploy_deployment_group_name": "prod",
                                               "codedeploy_deployment_group_id": GROUP,
                                               "codedeploy_stop_wait_timeout": 30}})
    going_ready.join()

    assert stopped["stopped_deployment"]["outcome"] == "stopped", stopped["msg"]
    assert Ledger(LocalStore(str(tmp_path))).load(ready["deployment_id"])["status"] == "Stopped"
    assert Ledger(LocalStore(str(tmp_path))).lock_holder(GROUP) is None


def create_args(tmp_path, **inputs) -> dict:
    """The create step's arguments: an in-place deployment of webapp/prod (GROUP) to web-1 and web-2 (no revision
    fetched)."""
    return {"ledger": str(tmp_path), "targets": ["web-1", "web-2"], "creator": "user", "inputs": {
        "codedeploy_application_name": "webapp", "codedeploy_deployment_group_name": "prod", **inputs}}


def test_an_input_at_fault_changes_nothing_in_the_ledger_not_even_a_dead_deployment(tmp_path):
    ledger = Ledger(LocalStore(str(tmp_path)))
    dead = {**finished_record(ended=False), "deployment_group_id": GROUP}
    ledger.save(dead)
    gone = {"hostname": "awx-job-4711", "pid": 4242, "pid_namespace": "pid:[1]", "pid_start_ticks": 1}
    ledger.acquire(GROUP, "prod", dead["deployment_id"], gone, 600)
    lock = ledger.lock(GROUP)
    lock["lease_expires_at"] = "2000-01-01T00:00:00.000Z"  # dead: the next deployment that takes the group closes it
    ledger._write_lock(GROUP, lock)  # pylint: disable=protected-access

    with pytest.raises(AlarmConfigError):
        step()._create(ledger, create_args(tmp_path, codedeploy_alarm_configuration={"enabled": True, "alarms": "5xx"}))

    assert Ledger(LocalStore(str(tmp_path))).load(dead["deployment_id"])["status"] == "InProgress"
    assert Ledger(LocalStore(str(tmp_path))).lock_holder(GROUP)["deployment_id"] == dead["deployment_id"]


def test_a_catch_up_with_a_blue_green_groups_inputs_is_in_place_and_copies_no_fleet(tmp_path):
    copying = {"green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"}}
    args = {**create_args(tmp_path, codedeploy_deployment_style={"deployment_type": "BLUE_GREEN"},
                          codedeploy_blue_green_deployment_configuration=copying,
                          codedeploy_auto_scaling_groups=["web-asg"]), "creator": "autoscaling"}

    plan = step()._create(Ledger(LocalStore(str(tmp_path))), args)  # no AWS to copy from: none is asked

    record = Ledger(LocalStore(str(tmp_path))).load(plan["deployment_id"])
    assert (plan["deployment_type"], plan["copied_hosts"]) == ("IN_PLACE", [])
    assert record["deployment_style"]["deployment_type"] == "IN_PLACE" and not record.get("blue_green")
    assert [entry["instance_id"] for entry in record["instances"]] == ["web-1", "web-2"]


def test_a_deployment_whose_record_cannot_be_saved_gives_its_groups_lock_back(tmp_path):
    store = RefusingStore(str(tmp_path))
    store.refused = "deployments/"

    with pytest.raises(LedgerStoreError, match="Cannot write .*/deployments/d-"):
        step()._create(Ledger(store), create_args(tmp_path))

    assert Ledger(store).lock_holder(GROUP) is None  # taken, then given back
    assert list((tmp_path / "locks").iterdir())


def test_the_rollback_takes_over_the_lock_its_deployment_could_not_release(tmp_path):
    store = RefusingStore(str(tmp_path))
    ledger = Ledger(store)
    failed = {**finished_record(failing=["web-2"], ended=False), "deployment_group_id": GROUP}
    failed["options"].update(strict=True, auto_rollback={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    ledger.save(failed)
    ledger.acquire(GROUP, "prod", failed["deployment_id"], controller_identity(os.getpid()), 600)
    store.refused, store.times = "locks/", 1  # the release fails, once
    plan = {"deployment_id": failed["deployment_id"], "outcomes": [], "group_hosts": ["web-1", "web-2"],
            "green_hosts": [], "inputs": create_args(tmp_path)["inputs"]}

    following = step()._finish(ledger, {"plan": plan, "ledger": str(tmp_path)})

    rollback_id = following["deployment_id"]
    try:
        assert following["creator"] == "codeDeployRollback" and following["start_with"] == "phase"
        assert Ledger(store).lock_holder(GROUP)["deployment_id"] == rollback_id
        assert Ledger(store).load(failed["deployment_id"])["rollback_info"]["rollback_deployment_id"] == rollback_id
        (warning,) = ledger.warnings
        assert warning.startswith(f"The lock of deployment group {GROUP} stays with {failed['deployment_id']} until "
                                  "its rollback takes it over: Cannot write ")
    finally:
        Ledger(store).release(GROUP, rollback_id)  # its lease keeper ends at its next beat


def test_a_continue_that_cannot_save_leaves_the_deployment_ready_for_a_later_continue(tmp_path):
    store = RefusingStore(str(tmp_path))
    ledger = Ledger(store)
    ready = ready_record(GROUP, datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc))
    ledger.save(ready)
    ledger.acquire(GROUP, "prod", ready["deployment_id"], controller_identity(os.getpid()), 600)
    ledger.hold_ready(GROUP, ready["deployment_id"], "2999-01-01T00:00:00.000Z")
    store.refused = "deployments/"

    with pytest.raises(LedgerStoreError, match="Cannot write .*/deployments/"):
        step()._resume(ledger, {"ledger": str(tmp_path), "inputs": create_args(tmp_path)["inputs"]})

    lock = Ledger(store).lock(GROUP)
    # Given back to the deployment, still Ready (its lease keeper ends at its next beat): a later continue goes on.
    assert (lock["deployment_id"], lock["state"]) == (ready["deployment_id"], "ready")
    assert Ledger(store).load(ready["deployment_id"])["status"] == "Ready"


def ready_left_held(tmp_path, ready_until):
    """A blue/green deployment saved Ready whose controller could not hand its lock over and is gone: the lock is
    still held, its lease over."""
    ledger = Ledger(LocalStore(str(tmp_path)))
    ready = ready_record(GROUP, ready_until)
    ledger.save(ready)
    gone = {"hostname": "awx-job-4711", "pid": 4242, "pid_namespace": "pid:[1]", "pid_start_ticks": 1}
    ledger.acquire(GROUP, "prod", ready["deployment_id"], gone, 600)
    lock = ledger.lock(GROUP)
    lock["lease_expires_at"] = "2000-01-01T00:00:00.000Z"
    ledger._write_lock(GROUP, lock)  # pylint: disable=protected-access
    return ledger, ready


def test_a_ready_deployment_whose_controller_could_not_hand_its_lock_over_is_continued(tmp_path):
    ledger, ready = ready_left_held(tmp_path, datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc))

    resumed = step()._resume(ledger, {"ledger": str(tmp_path), "inputs": create_args(tmp_path)["inputs"]})

    try:
        assert resumed["stopped"] is False and resumed["start_with"] == "phase"
        assert Ledger(LocalStore(str(tmp_path))).load(ready["deployment_id"])["status"] == "InProgress"
        assert Ledger(LocalStore(str(tmp_path))).lock(GROUP)["controller"] == controller_identity(os.getppid())
    finally:
        Ledger(LocalStore(str(tmp_path))).release(GROUP, ready["deployment_id"])  # its lease keeper ends


def test_a_ready_deployment_left_held_past_its_wait_is_not_continued_and_the_stop_playbook_is_named(tmp_path):
    ledger, ready = ready_left_held(tmp_path, datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))

    with pytest.raises(AnsibleActionFail, match="waited in Ready until 2001-01-01T00:00:00.000Z, and its controller "
                                                "could not hand its lock over: .* fleetops.codedeploy.stop"):
        step()._resume(ledger, {"ledger": str(tmp_path), "inputs": create_args(tmp_path)["inputs"]})
    assert Ledger(LocalStore(str(tmp_path))).load(ready["deployment_id"])["status"] == "Ready"

    stopped = step()._stop(ledger, {"inputs": create_args(tmp_path)["inputs"]})  # what the message says to run

    assert stopped["stopped_deployment"]["outcome"] == "stopped"
    assert Ledger(LocalStore(str(tmp_path))).load(ready["deployment_id"])["status"] == "Stopped"
    assert Ledger(LocalStore(str(tmp_path))).lock_holder(GROUP) is None


def waiting_in_ready(tmp_path, ready_until=datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc)):
    """A blue/green deployment (b1 → g1) waiting in Ready until ``ready_until``, its lock handed over: the ledger,
    the record and the lock."""
    ledger = Ledger(LocalStore(str(tmp_path)))
    ready = ready_record(GROUP, ready_until)
    ledger.save(ready)
    ledger.acquire(GROUP, "prod", ready["deployment_id"], controller_identity(os.getpid()), 600)
    ledger.hold_ready(GROUP, ready["deployment_id"], ready_until.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    return ledger, ready, ledger.lock(GROUP)


def resume_args(tmp_path) -> dict:
    return {"ledger": str(tmp_path), "inputs": create_args(tmp_path)["inputs"]}


def checking() -> ActionModule:
    action = step()
    action._task = SimpleNamespace(check_mode=True)  # pylint: disable=protected-access
    return action


def test_a_continue_whose_inventory_lacks_instances_of_the_deployment_names_them_and_leaves_it_ready(tmp_path):
    ledger, ready, lock = waiting_in_ready(tmp_path)

    with pytest.raises(AnsibleActionFail, match=f"Deployment {ready['deployment_id']} waits in Ready on instances "
                                                r"this run cannot reach \(not in its inventory, or left out by its "
                                                r"limit\): g1\. .* still waits in Ready"):
        step(inventory=["b1"])._resume(ledger, resume_args(tmp_path))

    assert (ledger.lock(GROUP), ledger.load(ready["deployment_id"])["status"]) == (lock, "Ready")


def test_the_instances_of_a_copied_auto_scaling_group_are_not_looked_for_in_the_inventory_and_are_returned(tmp_path):
    ledger, ready, _lock = waiting_in_ready(tmp_path)
    copied = [{"name": "g1", "ansible_host": "10.0.1.7", "codedeploy_instance_id": "g1"}]
    ready["blue_green"]["green_hosts"] = copied
    ledger.save(ready)
    assert absent_instances(ready, {"b1": {}}) == [] and absent_instances(ready, {}) == ["b1"]
    assert absent_instances(ready, {"b1": {}}, in_run=["g1"]) == ["b1"]  # a limit that leaves b1 out

    resumed = step(inventory=["b1"])._resume(ledger, resume_args(tmp_path))

    try:
        assert (resumed["stopped"], resumed["targets"], resumed["copied_hosts"]) == (False, ["g1"], copied)
    finally:
        Ledger(LocalStore(str(tmp_path))).release(GROUP, ready["deployment_id"])  # its lease keeper ends


def test_a_continue_in_check_mode_plans_the_reroute_and_takes_or_saves_nothing(tmp_path):
    ledger, ready, lock = waiting_in_ready(tmp_path)

    planned = checking()._resume(ledger, resume_args(tmp_path))

    assert (planned["changed"], planned["stopped"], planned["start_with"]) == (False, False, "phase")
    assert planned["targets"] == ["g1"] and planned["record"]["status"] == "InProgress"
    # The ledger as it was: the deployment waits in Ready, its lock taken over by no controller.
    assert (ledger.lock(GROUP), ledger.load(ready["deployment_id"])["status"]) == (lock, "Ready")


def test_a_continue_in_check_mode_says_what_the_real_one_would_refuse_or_stop_and_changes_nothing(tmp_path):
    ledger, ready, lock = waiting_in_ready(tmp_path / "over",
                                           datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))
    with pytest.raises(AnsibleActionFail, match="waited in Ready until 2001-01-01T00:00:00.000Z: a continue now "
                                                r"would stop it \(TIMEOUT\). Check mode: nothing was changed."):
        checking()._resume(ledger, resume_args(tmp_path / "over"))
    assert (ledger.lock(GROUP), ledger.load(ready["deployment_id"])["status"]) == (lock, "Ready")

    # Saved Ready, its lock still held by its controller, alive (this process): the continue would be refused.
    held = Ledger(LocalStore(str(tmp_path / "held")))
    ready = ready_record(GROUP, datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc))
    held.save(ready)
    held.acquire(GROUP, "prod", ready["deployment_id"], controller_identity(os.getpid()), 600)
    with pytest.raises(AnsibleActionFail, match="cannot be continued from .*: its lock is still held by "):
        checking()._resume(held, resume_args(tmp_path / "held"))


def test_a_rollback_names_a_deployment_of_its_own_group_that_the_ledger_has():
    other = {"deployment_group_id": "other-id", "deployment_group_name": "staging"}

    assert rollback_of_refusal({"deployment_group_id": GROUP}, "d-OURS", GROUP) is None
    assert rollback_of_refusal(None, "d-TYPO", GROUP) == "codedeploy_rollback_of: the ledger has no deployment d-TYPO."
    assert rollback_of_refusal(other, "d-THEIRS", GROUP) == (
        f"codedeploy_rollback_of: deployment d-THEIRS is of deployment group 'staging' (other-id), not of this one "
        f"({GROUP}).")


def test_a_deployment_rolled_back_already_is_refused_unless_its_rollback_failed_or_was_stopped():
    rolled_back = {"deployment_group_id": GROUP, "rollback_info": {"rollback_deployment_id": "d-BACK"}}
    assert rollback_of(rolled_back) == "d-BACK" and rollback_of({"rollback_info": None}) is None

    def refusal(status):
        return rollback_of_refusal(rolled_back, "d-UNDONE", GROUP, {"deployment_id": "d-BACK", "status": status})

    for status in ("Succeeded", "InProgress", "Ready"):
        assert refusal(status) == (
            f"codedeploy_rollback_of: deployment d-UNDONE was rolled back already, by d-BACK ({status}). Roll back a "
            "later deployment, or run the rollback without codedeploy_rollback_of to deploy the group's last "
            "successful revision again.")
    for status in ("Failed", "Stopped"):
        assert refusal(status) is None
    assert rollback_of_refusal(rolled_back, "d-UNDONE", GROUP, None) is None  # its rollback's record is gone


def test_a_continue_naming_another_groups_deployment_is_refused_and_changes_neither_group(tmp_path):
    # This group's own Ready deployment, its wait over; the deployment named is staging's, still waiting in Ready.
    ledger, ours, _lock = waiting_in_ready(tmp_path, datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))
    staging = deployment_group_id("webapp", "staging")
    theirs = {**ready_record(staging, datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc)),
              "deployment_id": "d-STAGING01", "deployment_group_name": "staging"}
    ledger.save(theirs)
    ledger.acquire(staging, "staging", theirs["deployment_id"], controller_identity(os.getpid()), 600)
    ledger.hold_ready(staging, theirs["deployment_id"], "2999-01-01T00:00:00.000Z")

    with pytest.raises(AnsibleActionFail, match="codedeploy_deployment_id: deployment d-STAGING01 is of deployment "
                                                "group 'staging'"):
        step()._resume(ledger, {**resume_args(tmp_path), "deployment_id": theirs["deployment_id"]})

    assert ledger.load(ours["deployment_id"])["status"] == "Ready"
    assert ledger.load(theirs["deployment_id"])["status"] == "Ready"


def test_a_stop_in_check_mode_naming_a_deployment_not_active_says_what_the_real_stop_would_refuse(tmp_path):
    ledger, ready, lock = waiting_in_ready(tmp_path)
    finished = finished_record(deployment_id="d-FINISHED1")
    ledger.save({**finished, "deployment_group_id": GROUP})

    with pytest.raises(AnsibleActionFail, match="has no deployment d-FINISHED1 in progress or waiting in Ready"):
        checking()._stop(ledger, {"inputs": create_args(tmp_path)["inputs"], "deployment_id": "d-FINISHED1"})

    assert (ledger.lock(GROUP), ledger.load(ready["deployment_id"])["status"]) == (lock, "Ready")


def test_an_instance_that_only_failed_is_closed_failed_without_its_host_being_reached():
    action = step()
    action._low_level_execute_command = None  # pylint: disable=protected-access  # reaching the host would raise

    closed = action._mark(None, {"failure": "web-2 failed: deployment d-1, ValidateService: exit code 1."})

    # Its sentence alone: a result with more would be printed raw.
    assert closed == {"changed": False, "failed": True,
                      "msg": "web-2 failed: deployment d-1, ValidateService: exit code 1."}


def test_a_deployment_asked_to_stop_before_it_went_ready_is_not_continued_and_still_waits_for_the_stop(tmp_path):
    until = datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc)
    ledger, ready = Ledger(LocalStore(str(tmp_path))), ready_record(GROUP, until)
    ledger.save(ready)
    controller = controller_identity(os.getpid())
    ledger.acquire(GROUP, "prod", ready["deployment_id"], controller, 600)
    # A stop that did not wait (codedeploy_stop_wait_timeout: 0), after the last wave gate of the install.
    request = {"by": "ops@laptop", "requested_at": "2026-12-07T06:00:00.000Z", "rollback": True}
    assert ledger.request_stop(GROUP, "prod", None, request, controller)["outcome"] == "requested"
    ledger.hold_ready(GROUP, ready["deployment_id"], until.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    lock = ledger.lock(GROUP)

    refused = (f"Deployment {ready['deployment_id']} cannot be continued from {tmp_path}: it was asked to stop "
               r"\(ops@laptop, at 2026-12-07T06:00:00.000Z\) before it went Ready\. Run the playbook "
               r"fleetops.codedeploy.stop to close it \(with codedeploy_stop_rollback as wanted\); it still waits in "
               r"Ready\.")
    with pytest.raises(AnsibleActionFail, match=refused + " Check mode: nothing was changed."):
        checking()._resume(ledger, resume_args(tmp_path))
    with pytest.raises(LedgerError, match=refused + "$"):
        step()._resume(ledger, resume_args(tmp_path))

    assert (ledger.lock(GROUP), ledger.load(ready["deployment_id"])["status"]) == (lock, "Ready")
    closed = ledger.request_stop(GROUP, "prod", None, request, controller)
    assert (closed["outcome"], closed["record"]["status"]) == ("stopped", "Stopped")
