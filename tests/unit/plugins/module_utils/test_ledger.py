# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's ledger: records, IDs and the one-active-deployment-per-group lock."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.ledger import (
    ActiveDeploymentError, Ledger, deployment_group_id, new_deployment_id)

GROUP = deployment_group_id("webapp", "prod")


def test_ids_have_the_service_shapes():
    assert re.fullmatch(r"d-[A-Z0-9]{9}", new_deployment_id())
    assert GROUP == deployment_group_id("webapp", "prod")
    assert GROUP != deployment_group_id("webapp", "staging")


def record(deployment_id, status="InProgress", created="2026-01-01T00:00:00.000Z"):
    return {"deployment_id": deployment_id, "deployment_group_id": GROUP, "status": status, "create_time": created,
            "instances": [{"instance_id": "a", "status": "Succeeded"}, {"instance_id": "b", "status": "Pending"}]}


def test_records_round_trip_with_overview(tmp_path):
    ledger = Ledger(str(tmp_path))
    ledger.save(record("d-AAAAAAAAA"))
    saved = json.loads((tmp_path / "deployments" / "d-AAAAAAAAA.json").read_text())
    assert saved["deployment_overview"] == {"Pending": 1, "InProgress": 0, "Succeeded": 1, "Failed": 0,
                                            "Skipped": 0, "Ready": 0}
    assert ledger.load("d-AAAAAAAAA")["status"] == "InProgress"


def test_last_successful_is_the_newest_succeeded(tmp_path):
    ledger = Ledger(str(tmp_path))
    ledger.save(record("d-AAAAAAAAA", "Succeeded", "2026-01-01T00:00:00.000Z"))
    ledger.save(record("d-BBBBBBBBB", "Succeeded", "2026-01-02T00:00:00.000Z"))
    ledger.save(record("d-CCCCCCCCC", "Failed", "2026-01-03T00:00:00.000Z"))
    assert ledger.last_successful(GROUP)["deployment_id"] == "d-BBBBBBBBB"


def test_second_deployment_is_refused_with_the_service_message(tmp_path):
    ledger = Ledger(str(tmp_path))
    assert ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", os.getpid()) is None
    with pytest.raises(ActiveDeploymentError) as refused:
        ledger.acquire(GROUP, "prod", "d-BBBBBBBBB", os.getpid())
    assert str(refused.value) == "The Deployment Group 'prod' already has an active Deployment 'd-AAAAAAAAA'"
    ledger.release(GROUP, "d-AAAAAAAAA")
    assert ledger.acquire(GROUP, "prod", "d-BBBBBBBBB", os.getpid()) is None


def test_a_dead_controllers_lock_is_cleared_with_a_warning_and_its_record_failed(tmp_path):
    ledger = Ledger(str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    ledger.save(record("d-AAAAAAAAA"))
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", dead.pid)
    warning = ledger.acquire(GROUP, "prod", "d-BBBBBBBBB", os.getpid())
    assert warning.startswith("Deployment d-AAAAAAAAA was left active by a controller that is no longer running")
    stale = ledger.load("d-AAAAAAAAA")
    assert stale["status"] == "Failed"
    assert stale["error_information"]["code"] == "INTERNAL_ERROR"
    assert [i["status"] for i in stale["instances"]] == ["Succeeded", "Skipped"]
    assert ledger.lock_holder(GROUP)["deployment_id"] == "d-BBBBBBBBB"


def test_check_free_refuses_a_running_deployment_and_leaves_a_stale_lock_alone(tmp_path):
    ledger = Ledger(str(tmp_path))
    ledger.acquire(GROUP, "prod", "d-AAAAAAAAA", os.getpid())
    with pytest.raises(ActiveDeploymentError, match="already has an active Deployment 'd-AAAAAAAAA'"):
        ledger.check_free(GROUP, "prod")
    ledger.release(GROUP, "d-AAAAAAAAA")
    ledger.check_free(GROUP, "prod")
    dead = subprocess.Popen(["true"])
    dead.wait()
    ledger.acquire(GROUP, "prod", "d-BBBBBBBBB", dead.pid)
    ledger.check_free(GROUP, "prod")
    assert ledger.lock_holder(GROUP)["deployment_id"] == "d-BBBBBBBBB"
