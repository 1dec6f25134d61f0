# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger, on a directory and on S3 (moto server): records, the group's lease lock, stop requests, races."""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import threading
import time
import uuid

import boto3
import pytest

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_ids import (
    deployment_group_id, new_deployment_id)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_record import manual_stop_rollback
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger import (
    ActiveDeploymentError, Ledger, LedgerError, LockLostError, controller_identity, lease_seconds_for, open_ledger)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger_store import (
    ABSENT, LedgerStoreError, LocalStore, VersionConflict, open_store)
from refusing_store import AnswerLosingStore, InterruptedStore, RefusingStore

GROUP = deployment_group_id("webapp", "prod")
ME = controller_identity(os.getpid())
# A controller in another container: another hostname, so only its lease tells whether it still runs.
ELSEWHERE = {"hostname": "awx-job-4711", "pid": 4242, "pid_namespace": "pid:[1]", "pid_start_ticks": 1}


@pytest.fixture(params=["directory", "s3"])
def location(request, tmp_path):
    if request.param == "directory":
        return str(tmp_path / "ledger")
    aws = request.getfixturevalue("aws_options")
    bucket = f"ledger-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/teams/web", aws


def ledger_at(location):
    return open_ledger(*location) if isinstance(location, tuple) else open_ledger(location)


def record(deployment_id, status="InProgress", created="2026-01-01T00:00:00.000Z"):
    return {"deployment_id": deployment_id, "deployment_group_id": GROUP, "status": status, "create_time": created,
            "instances": [{"instance_id": "a", "status": "Succeeded", "lifecycle_events": []},
                          {"instance_id": "b", "status": "InProgress",
                           "lifecycle_events": [{"lifecycle_event_name": "Install", "status": "InProgress"}]},
                          {"instance_id": "c", "status": "Pending", "lifecycle_events": []}]}


def test_ids_have_the_service_shapes():
    assert re.fullmatch(r"d-[A-Z0-9]{9}", new_deployment_id())
    assert GROUP == deployment_group_id("webapp", "prod")
    assert GROUP != deployment_group_id("webapp", "staging")


def test_records_round_trip_with_overview_and_history_oldest_first(location):
    ledger = ledger_at(location)
    ledger.save(record("d-BBBBBBBBB", "Succeeded", "2026-01-02T00:00:00.000Z"))
    ledger.save(record("d-AAAAAAAAA", "Succeeded", "2026-01-01T00:00:00.000Z"))
    ledger.save(record("d-CCCCCCCCC", "Failed", "2026-01-03T00:00:00.000Z"))
    loaded = ledger_at(location).load("d-AAAAAAAAA")
    assert loaded["deployment_overview"] == {"Pending": 1, "InProgress": 1, "Succeeded": 1, "Failed": 0,
                                             "Skipped": 0, "Ready": 0}
    assert [r["deployment_id"] for r in ledger.records(GROUP)] == ["d-AAAAAAAAA", "d-BBBBBBBBB", "d-CCCCCCCCC"]
    assert ledger.last_successful(GROUP)["deployment_id"] == "d-BBBBBBBBB"
    assert ledger.record_location("d-AAAAAAAAA").endswith("deployments/d-AAAAAAAAA.json")


def test_the_last_success_before_a_deployment_is_what_a_rollback_of_it_goes_back_to(location):
    ledger = ledger_at(location)
    ledger.save(record("d-AAAAAAAAA", "Succeeded", "2026-01-01T00:00:00.000Z"))
    ledger.save(record("d-BBBBBBBBB", "Failed", "2026-01-02T00:00:00.000Z"))
    ledger.save(record("d-CCCCCCCCC", "Succeeded", "2026-01-03T00:00:00.000Z"))
    assert ledger.last_successful(GROUP, before="d-CCCCCCCCC")["deployment_id"] == "d-AAAAAAAAA"
    assert ledger.last_successful(GROUP, before="d-BBBBBBBBB")["deployment_id"] == "d-AAAAAAAAA"
    assert ledger.last_successful(GROUP, before="d-AAAAAAAAA") is None
    assert ledger.last_successful(GROUP, before="d-NOTHERE0")["deployment_id"] == "d-CCCCCCCCC"


def test_a_record_is_never_overwritten_by_a_writer_that_read_an_older_version(location):
    first, second = ledger_at(location), ledger_at(location)
    first.save(record("d-AAAAAAAAA"))
    mine = second.load("d-AAAAAAAAA")
    theirs = first.load("d-AAAAAAAAA")
    theirs["status"] = "Stopped"
    first.save(theirs)
    mine["status"] = "Succeeded"
    with pytest.raises(LedgerError, match="was changed by another controller since this one read it"):
        second.save(mine)
    assert ledger_at(location).load("d-AAAAAAAAA")["status"] == "Stopped"
    with pytest.raises(LedgerError, match="was changed by another controller"):
        ledger_at(location).save(record("d-AAAAAAAAA"))  # a new record may not replace an existing one


def test_a_damaged_record_is_named_and_skipped_without_hiding_the_others(location):
    ledger = ledger_at(location)
    ledger.save(record("d-AAAAAAAAA", "Succeeded"))
    ledger.store.put("deployments/d-DAMAGED00.json", b'{"deployment_id": "d-DAM')
    reader = ledger_at(location)
    assert [r["deployment_id"] for r in reader.records(GROUP)] == ["d-AAAAAAAAA"]
    assert len(reader.warnings) == 1
    assert reader.warnings[0].startswith(f"Damaged deployment record {reader.location}/deployments/d-DAMAGED00.json")
    with pytest.raises(LedgerError, match="Damaged deployment record .*d-DAMAGED00.json"):
        reader.load("d-DAMAGED00")
    with pytest.raises(LedgerError, match="There is no deployment record .*d-MISSING00.json"):
        reader.load("d-MISSING00")


def test_an_unreadable_record_is_named_and_skipped_without_hiding_the_others(tmp_path):
    ledger = open_ledger(str(tmp_path))
    ledger.save(record("d-AAAAAAAAA", "Succeeded"))
    (tmp_path / "deployments" / "d-UNREAD00.json").mkdir()  # no file to read: as a record the controller may not read
    assert ledger.last_successful(GROUP)["deployment_id"] == "d-AAAAAAAAA"
    (warning,) = ledger.warnings
    assert warning.startswith(
        f"Unreadable deployment record skipped (Cannot read {tmp_path}/deployments/d-UNREAD00.json:")


def test_one_active_deployment_per_group_with_the_service_message(location):
    ledger = ledger_at(location)
    assert ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ME, 600) is None
    with pytest.raises(ActiveDeploymentError) as refused:
        ledger_at(location).acquire(GROUP, "prod", "d-BBBBBBBBB", ELSEWHERE, 600)
    assert str(refused.value) == "The Deployment Group 'prod' already has an active Deployment 'd-AAAAAAAAA'"
    with pytest.raises(ActiveDeploymentError):
        ledger_at(location).check_free(GROUP, "prod")
    ledger.release(GROUP, "d-AAAAAAAAA")
    ledger_at(location).check_free(GROUP, "prod")
    assert ledger_at(location).acquire(GROUP, "prod", "d-BBBBBBBBB", ELSEWHERE, 600) is None


def test_a_lock_whose_lease_ran_out_is_taken_over_and_its_deployment_failed(location):
    dead = ledger_at(location)
    dead.save(record("d-AAAAAAAAA"))
    dead.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    with pytest.raises(ActiveDeploymentError):  # a live lease, on another machine: nothing to decide by PID
        ledger_at(location).acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 600)
    expire_lease(dead)
    taker = ledger_at(location)
    warning = taker.acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 600)
    assert warning.startswith("Deployment d-AAAAAAAAA was left active by a controller that stopped renewing its lock "
                              "(pid 4242 on awx-job-4711")
    closed = taker.load("d-AAAAAAAAA")
    assert closed["status"] == "Failed"
    assert closed["error_information"]["code"] == "INTERNAL_ERROR"
    assert [i["status"] for i in closed["instances"]] == ["Succeeded", "Failed", "Skipped"]
    assert taker.lock_holder(GROUP)["deployment_id"] == "d-BBBBBBBBB"
    with pytest.raises(LockLostError, match="Deployment d-AAAAAAAAA no longer holds .*now d-BBBBBBBBB"):
        dead.renew(GROUP, "d-AAAAAAAAA")
    dead.release(GROUP, "d-AAAAAAAAA")  # the dead one's release leaves the new holder alone
    assert ledger_at(location).lock_holder(GROUP)["deployment_id"] == "d-BBBBBBBBB"


def dead_deployment_whose_records_are_refused(tmp_path) -> RefusingStore:
    """d-AAAAAAAAA, its controller gone (its lease over), in a store that now refuses to write records."""
    store = RefusingStore(str(tmp_path))
    dead = Ledger(store)
    dead.save(record("d-AAAAAAAAA"))
    dead.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    expire_lease(dead)
    store.refused = "deployments/"
    return store


def test_a_dead_deployment_whose_record_cannot_be_closed_keeps_its_lock_for_a_later_run_to_close(tmp_path):
    store = dead_deployment_whose_records_are_refused(tmp_path)
    with pytest.raises(LedgerStoreError, match="Cannot write .*d-AAAAAAAAA.json"):
        Ledger(store).acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 600)
    assert Ledger(store).lock_holder(GROUP)["deployment_id"] == "d-AAAAAAAAA"  # not d-B, which has no record
    store.refused = ""
    taker = Ledger(store)
    assert taker.acquire(GROUP, "prod", "d-CCCCCCCCC", ME, 600).startswith("Deployment d-AAAAAAAAA was left active")
    assert taker.load("d-AAAAAAAAA")["status"] == "Failed"


def test_a_continued_deployment_whose_record_cannot_be_saved_still_waits_in_ready(tmp_path):
    store = RefusingStore(str(tmp_path))
    ledger = Ledger(store)
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ME, 600)
    ledger.hold_ready(GROUP, "d-AAAAAAAAA", "2999-01-01T00:00:00.000Z")
    continuing = Ledger(store)
    store.refused = "deployments/"
    with pytest.raises(LedgerStoreError):
        with continuing.restored_on_failure(GROUP, continuing.take_over(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE)):
            continuing.save(record("d-AAAAAAAAA"))
    assert Ledger(store).lock_holder(GROUP)["state"] == "ready"
    store.refused = ""
    Ledger(store).take_over(GROUP, "prod", "d-AAAAAAAAA", ME)  # a later continue goes on with it


def test_a_ready_deployment_whose_lock_was_never_handed_over_is_continued_once_its_controller_is_gone(location):
    ledger = ledger_at(location)
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)  # saved Ready; its hold_ready failed
    with pytest.raises(LedgerError, match="d-AAAAAAAAA cannot be continued from .*: its lock is still held by "
                                          "pid 4242 on awx-job-4711.*a minute after its last heartbeat"):
        ledger.take_over(GROUP, "prod", "d-AAAAAAAAA", ME)  # its controller may still be running it
    expire_lease(ledger)
    with pytest.raises(LedgerError, match="d-BBBBBBBBB cannot be continued from "):
        ledger.take_over(GROUP, "prod", "d-BBBBBBBBB", ME)

    ledger.take_over(GROUP, "prod", "d-AAAAAAAAA", ME)

    lock = ledger.lock(GROUP)
    assert (lock["deployment_id"], lock["state"], lock["controller"]) == ("d-AAAAAAAAA", "held", ME)


def test_a_deployment_goes_ready_when_its_lease_keeper_renews_the_lock_at_the_same_moment(tmp_path):
    store = InterruptedStore(str(tmp_path))
    ledger = Ledger(store)
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ME, 600)
    keeper = Ledger(LocalStore(str(tmp_path)))  # the lease keeper: a process of its own
    store.interloper = lambda: keeper.renew(GROUP, "d-AAAAAAAAA")
    ledger.hold_ready(GROUP, "d-AAAAAAAAA", "2999-01-01T00:00:00.000Z")  # not "no longer holds its lock"
    lock = open_ledger(str(tmp_path)).lock(GROUP)
    assert (lock["state"], lock["ready_until"], lock["controller"]) == ("ready", "2999-01-01T00:00:00.000Z", None)
    with pytest.raises(LockLostError):
        keeper.renew(GROUP, "d-AAAAAAAAA")  # handed over: the keeper stops


def test_a_release_that_never_lands_says_so_rather_than_leave_the_lock_held_in_silence(tmp_path):
    store = InterruptedStore(str(tmp_path))
    ledger = Ledger(store)
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ME, 600)
    keeper = Ledger(LocalStore(str(tmp_path)))

    def renewing():  # a renewal lands before each of the release's writes
        keeper.renew(GROUP, "d-AAAAAAAAA")
        store.interloper = renewing

    store.interloper = renewing
    with pytest.raises(LedgerError, match=r"Could not release the lock .*locks/.*\.json: it keeps changing\."):
        ledger.release(GROUP, "d-AAAAAAAAA")
    ledger.release_or_warn(GROUP, "d-AAAAAAAAA")
    assert ledger.warnings[-1].startswith(f"The lock of deployment group {GROUP} stays with d-AAAAAAAAA until its "
                                          "lease runs out: Could not release the lock ")
    assert open_ledger(str(tmp_path)).lock(GROUP)["state"] == "held"


def test_a_write_applied_whose_answer_was_lost_is_not_a_conflict_with_itself(tmp_path):
    store = AnswerLosingStore(str(tmp_path))
    ledger = Ledger(store)
    store.lose_next_answer = True
    assert ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ME, 600) is None  # not "already has d-AAAAAAAAA"
    store.lose_next_answer = True
    ledger.save(record("d-AAAAAAAAA"))
    ledger.renew(GROUP, "d-AAAAAAAAA")  # the versions read after it are the ledger's own
    other = Ledger(store)
    other.load("d-AAAAAAAAA")
    ledger.save(record("d-AAAAAAAAA", "Succeeded"))
    store.lose_next_answer = False
    with pytest.raises(LedgerError, match="was changed by another controller"):  # a real conflict is one still
        other.save(record("d-AAAAAAAAA", "Stopped"))


@pytest.mark.parametrize("damaged", ['"locked"', '{"state": "held", "deployment_id": "d-AAAAAAAAA"}',
                                     '{"state": "ready", "deployment_id": "d-AAAAAAAAA"}',
                                     '{"state": "held", "deployment_id": "d-AAAAAAAAA", "lease_seconds": 600, '
                                     '"renewed_at": "2026-01-01", "lease_expires_at": "soon"}'])
def test_a_damaged_lock_that_is_still_json_is_replaced_as_an_unreadable_one_is(location, damaged):
    ledger = ledger_at(location)
    ledger.store.put(f"locks/{GROUP}.json", damaged.encode("utf-8"))
    assert ledger_at(location).acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 600) is None  # not a traceback, forever
    assert ledger_at(location).lock_holder(GROUP)["deployment_id"] == "d-BBBBBBBBB"


def test_a_controller_gone_on_this_machine_frees_the_lock_at_once(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    ledger = open_ledger(str(tmp_path))
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", controller_identity(gone.pid), 3600)
    assert ledger.acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 3600).startswith("Deployment d-AAAAAAAAA was left active")


def test_a_controller_on_another_machine_of_the_same_name_keeps_its_lock_until_its_lease_runs_out(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    # Another machine of the same hostname (a cloned VM, a fixed container hostname), in its initial PID namespace
    # as this one is: its controller's PID names no process here, yet it runs there.
    twin = {**controller_identity(gone.pid), "boot_id": str(uuid.uuid4())}
    ledger = open_ledger(str(tmp_path))
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", twin, 3600)
    with pytest.raises(ActiveDeploymentError):
        ledger.acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 3600)


def test_renewal_extends_the_lease_and_brings_back_a_stop_request(location):
    ledger = ledger_at(location)
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    before = ledger.lock(GROUP)["lease_expires_at"]
    renewed = ledger.renew(GROUP, "d-AAAAAAAAA")
    assert renewed["lease_expires_at"] >= before and renewed["stop_request"] is None
    stopper = ledger_at(location)
    outcome = stopper.request_stop(GROUP, "prod", None, {"rollback": True, "by": "pid 1 on test"}, ME)
    assert outcome["outcome"] == "requested" and outcome["deployment_id"] == "d-AAAAAAAAA"
    assert ledger.renew(GROUP, "d-AAAAAAAAA")["stop_request"]["rollback"] is True


def test_a_second_stop_of_a_running_deployment_keeps_the_first_request_and_its_rollback(location):
    ledger = ledger_at(location)
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    first = {"rollback": True, "by": "pid 1 on ops-1", "requested_at": "2026-12-07T06:00:00.000Z"}
    assert "earlier_request" not in ledger_at(location).request_stop(GROUP, "prod", None, first, ME)

    second = ledger_at(location).request_stop(GROUP, "prod", None, {"rollback": False, "by": "pid 2 on ops-2"}, ME)

    assert (second["outcome"], second["earlier_request"]) == ("requested", first)
    assert ledger.renew(GROUP, "d-AAAAAAAAA")["stop_request"] == first


def test_a_stop_request_ends_a_bake_time_within_a_poll_and_a_bake_time_without_one_runs_whole(location):
    ledger = ledger_at(location)
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    began = time.monotonic()
    assert ledger.wait_unless_stopped(GROUP, "d-AAAAAAAAA", 0.6, 0.1)["stop_request"] is None
    assert time.monotonic() - began >= 0.6
    stopper = threading.Timer(0.3, lambda: ledger_at(location).request_stop(
        GROUP, "prod", None, {"rollback": False, "by": "pid 1 on test"}, ME))
    stopper.start()
    began = time.monotonic()
    lock = ledger.wait_unless_stopped(GROUP, "d-AAAAAAAAA", 60, 0.1)
    stopper.join()
    assert lock["stop_request"]["by"] == "pid 1 on test"
    assert time.monotonic() - began < 10  # not the whole minute


def test_stop_closes_a_dead_deployment_at_once_and_frees_the_group(location):
    dead = ledger_at(location)
    dead.save(record("d-AAAAAAAAA"))
    dead.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    expire_lease(dead)
    outcome = ledger_at(location).request_stop(GROUP, "prod", "d-AAAAAAAAA", {"rollback": False, "by": "pid 1 on test"}, ME)
    assert outcome["outcome"] == "stopped"
    stopped = ledger_at(location).load("d-AAAAAAAAA")
    assert stopped["status"] == "Stopped" and stopped["error_information"]["code"] == "MANUAL_STOP"
    assert "had stopped renewing its lock" in stopped["error_information"]["message"]
    assert ledger_at(location).lock_holder(GROUP) is None
    with pytest.raises(LedgerError, match="has no deployment in progress or waiting in Ready"):
        ledger_at(location).request_stop(GROUP, "prod", None, {"rollback": False}, ME)


def test_a_stop_whose_record_cannot_be_saved_leaves_the_lock_as_it_found_it(tmp_path):
    store = dead_deployment_whose_records_are_refused(tmp_path)
    with pytest.raises(LedgerStoreError, match="Cannot write .*d-AAAAAAAAA.json"):
        Ledger(store).request_stop(GROUP, "prod", None, {"rollback": False, "by": "pid 1 on test"}, ME)
    assert Ledger(store).lock(GROUP)["controller"] == ELSEWHERE  # not a new lease for a stop that did not happen
    store.refused = ""
    taker = Ledger(store)
    assert taker.acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 600).startswith("Deployment d-AAAAAAAAA was left active")
    assert taker.load("d-AAAAAAAAA")["status"] == "Failed"


def test_a_deployment_closed_by_a_stop_keeps_the_request_and_its_rollback(location):
    dead = ledger_at(location)
    dead.save(record("d-AAAAAAAAA"))
    dead.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    expire_lease(dead)
    request = {"rollback": True, "by": "pid 1 on test", "requested_at": "2026-12-06T06:00:00.000Z"}
    ledger_at(location).request_stop(GROUP, "prod", None, request, ME)
    stopped = ledger_at(location).load("d-AAAAAAAAA")
    assert stopped["stop_reason"] == {"manual_stop": request}
    assert manual_stop_rollback(stopped)  # the rollback follows, as for a running deployment stopped at its gate


def test_ready_lock_is_continued_by_one_controller_only(location):
    ledger = ledger_at(location)
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ME, 600)
    ledger.hold_ready(GROUP, "d-AAAAAAAAA", "2999-01-01T00:00:00.000Z")
    with pytest.raises(ActiveDeploymentError):
        ledger_at(location).acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 600)
    first, second = ledger_at(location), ledger_at(location)
    first.lock(GROUP)
    second.lock(GROUP)
    first.take_over(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE)
    with pytest.raises(LedgerError, match="cannot be continued from "):
        second.take_over(GROUP, "prod", "d-AAAAAAAAA", ME)
    assert ledger_at(location).lock_holder(GROUP)["controller"]["hostname"] == "awx-job-4711"


def test_lease_defaults_to_the_longest_hook_timeout_plus_a_margin():
    appspec = {"hooks": {"BeforeInstall": [{"location": "a", "timeout": 900}], "ValidateService": [
        {"location": "b", "timeout": 30}, {"location": "c"}]}}
    assert lease_seconds_for(appspec) == 3600 + 300
    assert lease_seconds_for({"hooks": {"BeforeInstall": [{"location": "a", "timeout": 900}]}}) == 1200
    assert lease_seconds_for({"hooks": {}}, configured=90) == 90


@pytest.mark.parametrize("configured", [10, 59, -1])
def test_a_lease_a_live_controller_cannot_keep_is_refused_before_anything_is_locked(tmp_path, configured):
    # The keeper renews every 15 s: a shorter lease runs out under a live deployment (a negative one at once), and
    # the next deployment of the group takes its lock over while it still deploys.
    with pytest.raises(LedgerError, match=f"codedeploy_lock_lease_seconds {configured}: .* at least 60"):
        lease_seconds_for({"hooks": {}}, configured=configured)


def test_the_store_writes_conditionally(location):
    store = ledger_at(location).store
    version = store.put("locks/x.json", b"1", ABSENT)
    with pytest.raises(VersionConflict):
        store.put("locks/x.json", b"2", ABSENT)
    with pytest.raises(VersionConflict):
        store.put("locks/x.json", b"2", "not-the-version")
    store.put("locks/x.json", b"3", version)
    assert store.get("locks/x.json")[0] == b"3"


def test_a_document_the_directory_cannot_take_is_a_message_naming_it_and_the_old_one_stays(tmp_path):
    ledger = open_ledger(str(tmp_path))
    ledger.save(record("d-AAAAAAAAA"))
    (tmp_path / "reports").write_text("")  # no directory where the reports go: as a full or read-only disk would
    with pytest.raises(LedgerStoreError, match=f"Cannot write {tmp_path}/reports/d-AAAAAAAAA.html: "):
        ledger.store.put("reports/d-AAAAAAAAA.html", b"<html>")
    (tmp_path / ".write-lock").unlink()
    (tmp_path / ".write-lock").mkdir()  # the writers' lock file cannot be opened: no write goes through
    with pytest.raises(LedgerStoreError, match=f"Cannot write {tmp_path}/deployments/d-AAAAAAAAA.json: "):
        ledger.save(record("d-AAAAAAAAA", "Succeeded"))
    assert ledger.load("d-AAAAAAAAA")["status"] == "InProgress"


def test_a_deployment_that_cannot_be_created_gives_its_groups_lock_back(tmp_path):
    ledger = open_ledger(str(tmp_path))
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    (tmp_path / "deployments").write_text("")  # its record cannot be saved
    with pytest.raises(LedgerStoreError, match="Cannot write .*d-AAAAAAAAA.json"):
        with ledger.released_on_failure(GROUP, "d-AAAAAAAAA"):
            ledger.save(record("d-AAAAAAAAA"))
    assert ledger.lock_holder(GROUP) is None
    assert open_ledger(str(tmp_path)).acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 600) is None  # at once, warning none
    with ledger.released_on_failure(GROUP, "d-BBBBBBBBB"):
        pass  # created: the lock stays
    assert ledger.lock_holder(GROUP)["deployment_id"] == "d-BBBBBBBBB"


def test_a_lock_that_cannot_be_given_back_either_is_a_warning_under_the_first_error(tmp_path):
    ledger = open_ledger(str(tmp_path))
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 600)
    (tmp_path / "deployments").write_text("")
    (tmp_path / "locks").rename(tmp_path / "locks-moved")
    (tmp_path / "locks").write_text("")  # nor can the lock be read, or written
    with pytest.raises(LedgerStoreError, match="Cannot write .*d-AAAAAAAAA.json"):
        with ledger.released_on_failure(GROUP, "d-AAAAAAAAA"):
            ledger.save(record("d-AAAAAAAAA"))
    (warning,) = ledger.warnings
    assert warning.startswith(f"The lock of deployment group {GROUP} stays with d-AAAAAAAAA until its lease runs out: "
                              "Cannot read ")


def test_a_ledger_location_that_is_no_directory_nor_s3_is_refused():
    with pytest.raises(LedgerStoreError, match="give a directory on the controller or s3://bucket/prefix"):
        open_store("https://example.invalid/ledger")
    with pytest.raises(LedgerStoreError, match="names no bucket"):
        open_store("s3:///prefix")


def expire_lease(ledger):
    """Move the lease of the group's lock into the past, as time would for a controller that stopped renewing."""
    lock = ledger.lock(GROUP)
    lock["lease_expires_at"] = "2000-01-01T00:00:00.000Z"
    ledger._write_lock(GROUP, lock)  # pylint: disable=protected-access


# ----- races: many controllers at once ---------------------------------------------------------------------------
def contender(location, deployment_id, start, results):
    ledger = ledger_at(location)
    start.wait()
    try:
        ledger.acquire(GROUP, "prod", deployment_id, ELSEWHERE, 600)
        results.put(deployment_id)
    except ActiveDeploymentError:
        results.put(None)


def race(location, contenders):
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=contender, args=(location, f"d-RACE{index:05d}", start, results))
                 for index in range(contenders)]
    for process in processes:
        process.start()
    start.set()
    outcomes = [results.get(timeout=60) for _process in processes]
    for process in processes:
        process.join(timeout=60)
    return [winner for winner in outcomes if winner]


@pytest.mark.parametrize("before", ["no lock", "released", "dead holder", "damaged lock"])
def test_exactly_one_of_twenty_racing_controllers_takes_the_local_lock_every_time(tmp_path, before):
    for trial in range(25):  # 4 starting states x 25 trials = 100 races of 20 processes
        location = str(tmp_path / f"trial-{trial}")
        ledger = open_ledger(location)
        if before in ("released", "dead holder"):
            ledger.save(record("d-EARLIER00"))
            ledger.acquire(GROUP, "prod", "d-EARLIER00", ELSEWHERE, 600)
            if before == "released":
                ledger.release(GROUP, "d-EARLIER00")
            else:
                expire_lease(ledger)
        elif before == "damaged lock":
            os.makedirs(os.path.join(location, "locks"))
            with open(os.path.join(location, "locks", f"{GROUP}.json"), "w", encoding="utf-8") as handle:
                handle.write('{"deployment_id": "d-')
        winners = race(location, 20)
        assert len(winners) == 1, f"trial {trial} ({before}): winners {winners}"
        assert open_ledger(location).lock_holder(GROUP)["deployment_id"] == winners[0]
        if before == "dead holder":
            assert open_ledger(location).load("d-EARLIER00")["status"] == "Failed"


def test_exactly_one_of_twenty_racing_controllers_takes_the_s3_lock(aws_options):
    client = boto3.client("s3", endpoint_url=aws_options["endpoint_url"], region_name="us-east-1")
    for trial in range(5):
        bucket = f"race-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        winners = race((f"s3://{bucket}/ledger", aws_options), 20)
        assert len(winners) == 1, f"trial {trial}: winners {winners}"
        stored = json.loads(client.get_object(Bucket=bucket, Key=f"ledger/locks/{GROUP}.json")["Body"].read())
        assert stored["deployment_id"] == winners[0]


def test_stop_closes_at_once_a_deployment_whose_controller_stopped_its_heartbeat(location):
    silent = ledger_at(location)
    silent.save(record("d-AAAAAAAAA"))
    silent.acquire(GROUP, "prod", "d-AAAAAAAAA", ELSEWHERE, 3600)
    lock = silent.lock(GROUP)
    lock["renewed_at"] = "2000-01-01T00:00:00.000Z"  # the lease runs for an hour, but nobody renews it
    silent._write_lock(GROUP, lock)  # pylint: disable=protected-access
    with pytest.raises(ActiveDeploymentError):  # a new deployment waits for the lease...
        ledger_at(location).acquire(GROUP, "prod", "d-BBBBBBBBB", ME, 600)
    outcome = ledger_at(location).request_stop(GROUP, "prod", None, {"rollback": False, "by": "pid 1 on test"}, ME)
    assert outcome["outcome"] == "stopped"  # ...an operator's stop does not
    assert ledger_at(location).load("d-AAAAAAAAA")["status"] == "Stopped"


def test_a_directory_ledger_puts_a_document_on_disk_before_renaming_it_into_place_and_the_rename_after(
        tmp_path, monkeypatch):
    # Without both, a power loss can leave a lock or a record empty: the rename reached the disk, the content not.
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source, destination):
        events.append(("replace", str(source), str(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    directory = tmp_path / "deployments"

    LocalStore(str(tmp_path)).put("deployments/d-1.json", b"{}", ABSENT)

    (synced_content, renamed, synced_entry) = events
    assert synced_content == ("fsync", renamed[1]) and renamed[1].startswith(f"{directory}/.tmp-")
    assert renamed[2] == f"{directory}/d-1.json"
    assert synced_entry == ("fsync", str(directory))
