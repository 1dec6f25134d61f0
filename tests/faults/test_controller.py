# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults of the controller and of its ledger: a controller killed at each step of a deployment, a damaged record.

Each scenario checks what the next run says, the ledger and the hosts."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support.deployments import (APP_DESTINATION, REPORT_CALLBACK, active_locks, deploy, deployment_vars, hold,
                                 local, make_revision, records, start_in_background, wait_for_a_wave)
from support.faults import mounted_apart, read_only, refuse_writes

ONE_AT_A_TIME = {"deployment_config_name": "CodeDeployDefault.OneAtATime"}
ROLLBACK = {"auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}}


def kill_when(process: subprocess.Popen, ledger: Path, moment, timeout: float = 180) -> list[dict]:
    """SIGKILL the controller (its whole process group) as soon as the ledger shows ``moment``; the records then."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the deployment ended before the moment to kill it"
            try:
                found = records(ledger)
            except ValueError:  # a record being replaced at this very moment
                found = []
            if found and moment(found):
                return found
            time.sleep(0.1)
        raise AssertionError("the deployment never reached the moment to kill it")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def versions(fleet) -> list[str]:
    return [fleet.path(host, f"{APP_DESTINATION}/VERSION").read_text().strip() for host in fleet.hosts]


def created_not_started(found: list[dict]) -> bool:
    return found[-1]["status"] == "Created"


def in_a_wave(found: list[dict]) -> bool:
    return found[-1]["status"] == "InProgress" and bool(found[-1]["waves"])


def rollback_in_a_wave(found: list[dict]) -> bool:
    return found[-1]["creator"] == "codeDeployRollback" and in_a_wave(found)


@pytest.mark.parametrize("moment", [created_not_started, in_a_wave, rollback_in_a_wave],
                         ids=["during-the-survey", "mid-wave", "during-the-rollback"])
def test_a_controller_killed_at_a_step_is_closed_by_the_next_run_which_deploys(fleet, tmp_path, moment):
    two = fleet(2)
    ledger = tmp_path / "ledger"
    assert deploy(two, ledger, local(make_revision(tmp_path / "v1", "1")), **ONE_AT_A_TIME).rc == 0
    failing = moment is rollback_in_a_wave
    v2 = local(make_revision(tmp_path / "v2", "2", fail_hosts=two.hosts[:1] if failing else ()))
    hold(two, moment is in_a_wave)
    running = start_in_background(two, ledger, v2, **ONE_AT_A_TIME, **(ROLLBACK if failing else {}))
    held = []

    def hold_the_rollback(found: list[dict]) -> bool:
        """v2's first wave fails at once; the rollback that follows is held in its ValidateService."""
        if not held and len(found) > 1 and found[1]["status"] == "Failed":
            hold(two, True)
            held.append(True)
        return moment(found)

    kill_when(running, ledger, hold_the_rollback if failing else moment)
    hold(two, False)
    killed = records(ledger)[-1]

    closed_by_the_next_run_which_deploys(two, ledger, tmp_path, killed["deployment_id"])


def closed_by_the_next_run_which_deploys(two, ledger: Path, tmp_path: Path, left_active: str) -> None:
    """The next run closes the deployment ``left_active`` (Failed, INTERNAL_ERROR, every instance in a final
    status), says so, and deploys revision 3 to both hosts, leaving the group free."""
    run = deploy(two, ledger, local(make_revision(tmp_path / "v3", "3")), **ONE_AT_A_TIME)

    assert run.rc == 0, run.output
    assert (f"Deployment {left_active} was left active by a controller that stopped renewing its lock"
            in " ".join(run.output.split()))
    closed = next(r for r in records(ledger) if r["deployment_id"] == left_active)
    assert (closed["status"], closed["error_information"]["code"]) == ("Failed", "INTERNAL_ERROR")
    assert all(entry["status"] in ("Succeeded", "Failed", "Skipped") for entry in closed["instances"])
    assert records(ledger)[-1]["status"] == "Succeeded"
    assert versions(two) == ["3", "3"]
    assert not active_locks(ledger)


def test_the_stop_playbook_closes_a_deployment_whose_controller_was_killed_and_rolls_it_back(fleet, tmp_path):
    two = fleet(2)
    ledger = tmp_path / "ledger"
    assert deploy(two, ledger, local(make_revision(tmp_path / "v1", "1")), **ONE_AT_A_TIME).rc == 0
    hold(two, True)
    running = start_in_background(two, ledger, local(make_revision(tmp_path / "v2", "2")), **ONE_AT_A_TIME)
    try:
        kill_when(running, ledger, in_a_wave)
    finally:
        hold(two, False)
    killed = records(ledger)[-1]

    stop = two.playbook("fleetops.codedeploy.stop", extra_vars=deployment_vars(ledger, None, stop_rollback=True),
                        env=REPORT_CALLBACK)

    assert stop.rc == 0, stop.output  # stopped as asked, and rolled back
    said = " ".join(stop.output.split())
    assert (f"Deployment {killed['deployment_id']} is Stopped (closed here: it was waiting in Ready or its controller "
            "was gone).") in said
    _first, stopped, rollback = records(ledger)
    assert (stopped["status"], stopped["error_information"]["code"]) == ("Stopped", "MANUAL_STOP")
    assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded")
    assert rollback["rollback_info"]["rollback_triggering_deployment_id"] == stopped["deployment_id"]
    assert stopped["rollback_info"]["rollback_deployment_id"] == rollback["deployment_id"]
    assert f'href="{rollback["deployment_id"]}.html"' in (
        ledger / "reports" / f"{stopped['deployment_id']}.html").read_text()  # its report, written again, links to it
    assert f"Deployment {stopped['deployment_id']} Stopped; rollback {rollback['deployment_id']} Succeeded" in said
    assert versions(two) == ["1", "1"]
    assert not active_locks(ledger)


def test_a_damaged_record_is_named_and_skipped_and_blocks_no_deployment(fleet, tmp_path):
    one = fleet(1)
    ledger = tmp_path / "ledger"
    assert deploy(one, ledger, local(make_revision(tmp_path / "v1", "1"))).rc == 0
    (first,) = records(ledger)
    damaged = ledger / "deployments" / f"{first['deployment_id']}.json"
    damaged.write_text(damaged.read_text()[:200])  # cut short, as a full disk or a killed copy leaves it

    run = deploy(one, ledger, local(make_revision(tmp_path / "v2", "2")))

    assert run.rc == 0, run.output
    assert f"Damaged deployment record {damaged} skipped" in " ".join(run.output.split())
    assert versions(one) == ["2"]
    assert len(damaged.read_text()) == 200, "the damaged record is left for the operator to repair"


def test_a_rollback_whose_records_cannot_be_written_says_why_and_leaves_the_group_free(fleet, tmp_path):
    two = fleet(2)
    ledger = tmp_path / "ledger"
    assert deploy(two, ledger, local(make_revision(tmp_path / "v1", "1")), **ONE_AT_A_TIME).rc == 0
    failing = local(make_revision(tmp_path / "v2", "2", fail_hosts=two.hosts[:1]))
    assert deploy(two, ledger, failing, **ONE_AT_A_TIME).rc != 0  # Failed, without automatic rollback
    (_first, failed) = records(ledger)
    left = versions(two)

    # The rollback playbook, asked to roll back the failed deployment on a controller whose disk takes no record
    # (the records' directory read-only): the rollback takes the group's lock, then cannot write its record.
    refused = deploy(two, ledger, {}, playbook="fleetops.codedeploy.rollback",
                     wrapper=read_only(ledger / "deployments"), rollback_of=failed["deployment_id"], **ONE_AT_A_TIME)

    assert refused.rc != 0, refused.output
    said = " ".join(refused.output.split())
    assert re.search(rf"Cannot write {re.escape(str(ledger / 'deployments'))}/d-\w+\.json: Read-only file system",
                     said), refused.output
    assert f"Deployment {failed['deployment_id']}: why it has no rollback could not be recorded" in said
    assert "The rollback could not be created: Cannot write" in (
        ledger / "reports" / f"{failed['deployment_id']}.html").read_text()  # its report says why
    assert not active_locks(ledger), "a rollback that was not created holds the group"
    assert records(ledger)[1]["rollback_info"] is None  # nothing links to the rollback that was not created
    assert len(records(ledger)) == 2
    assert versions(two) == left  # no host was touched

    again = deploy(two, ledger, {}, playbook="fleetops.codedeploy.rollback", **ONE_AT_A_TIME)

    assert again.rc == 0, again.output
    assert "left active" not in again.output
    assert versions(two) == ["1", "1"]


def test_a_ledger_that_refuses_writes_mid_wave_ends_the_run_and_the_next_run_closes_the_deployment(fleet, tmp_path):
    two = fleet(2)
    ledger = tmp_path / "ledger"
    assert deploy(two, ledger, local(make_revision(tmp_path / "v1", "1")), **ONE_AT_A_TIME).rc == 0
    records_dir = ledger / "deployments"
    output = tmp_path / "run.log"
    hold(two, True)
    running = start_in_background(two, ledger, local(make_revision(tmp_path / "v2", "2")), **ONE_AT_A_TIME,
                                  wrapper=mounted_apart(records_dir), output=output)
    try:
        in_wave = wait_for_a_wave(ledger, 2, lambda: running.poll() is None)
        # The controller's disk refuses the records from now on (full, or remounted read-only), in the wave.
        refuse_writes(running.pid, records_dir)
        hold(two, False)
        ended = running.wait(timeout=180)
    finally:
        hold(two, False)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.pid, signal.SIGKILL)
        running.wait()

    said = " ".join(output.read_text().split())
    assert ended != 0, said
    assert f"Cannot write {records_dir}/{in_wave['deployment_id']}.json: Read-only file system" in said
    assert "Traceback" not in said
    left = records(ledger)[-1]
    assert (left["deployment_id"], left["status"]) == (in_wave["deployment_id"], "InProgress")  # as last written
    assert versions(two)[1] == "1"  # the second wave never started

    closed_by_the_next_run_which_deploys(two, ledger, tmp_path, in_wave["deployment_id"])
