# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's deployment ledger: one JSON record per deployment, one lock per deployment group.

Layout under the ledger directory (default ``~/.fleetops-codedeploy``)::

    deployments/<deployment_id>.json   the record, shaped like the API's DeploymentInfo plus instances and events
    locks/<deployment_group_id>.json   the active deployment of a group, and the controller process running it
    reports/<deployment_id>.xml        JUnit report written by the deployment_report callback
    cache/                             fetched revisions, content-addressed by sha256
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import uuid
from typing import Any, Optional

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_record import stop_ready
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import utc_timestamp, write_atomically

DEPLOYMENT_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Fixed namespace so that an application + group name always gives the same deployment group ID.
DEPLOYMENT_GROUP_NAMESPACE = uuid.UUID("6f1c6f1e-2a44-5d0b-9a8e-0c0de9d3e7a1")
ACTIVE_STATUSES = ("Created", "Queued", "InProgress", "Ready")
OVERVIEW_KEYS = ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready")


class ActiveDeploymentError(Exception):
    """Another deployment of the group is running; the message is the service's."""


def new_deployment_id() -> str:
    return "d-" + "".join(secrets.choice(DEPLOYMENT_ID_ALPHABET) for _position in range(9))


def deployment_group_id(application_name: str, deployment_group_name: str) -> str:
    return str(uuid.uuid5(DEPLOYMENT_GROUP_NAMESPACE, f"{application_name}/{deployment_group_name}"))


def deployment_overview(instances: list[dict]) -> dict[str, int]:
    overview = {key: 0 for key in OVERVIEW_KEYS}
    for instance in instances:
        overview[instance["status"]] = overview.get(instance["status"], 0) + 1
    return overview


def process_is_running(pid: int, start_ticks: Optional[int]) -> bool:
    """True if ``pid`` is alive and is the same process (same start time) that took the lock."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    if fields[0] == "Z":
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


def process_start_ticks(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def is_stale(holder: dict[str, Any]) -> bool:
    """A lock taken by a controller on this machine that is no longer running. A blue/green deployment waiting in
    Ready holds its lock without a controller, until its wait time is over."""
    if holder.get("ready_until"):
        return False
    return holder.get("hostname") == socket.gethostname() and not process_is_running(
        holder.get("pid", 0), holder.get("pid_start_ticks"))


def ready_wait_over(holder: dict[str, Any], now: Optional[str] = None) -> bool:
    """The Ready wait of the deployment holding this lock has passed (ISO 8601 UTC times compare as text)."""
    return bool(holder.get("ready_until")) and (now or utc_timestamp()) >= holder["ready_until"]


def active_deployment_error(group_name: str, holder: dict[str, Any]) -> ActiveDeploymentError:
    return ActiveDeploymentError(
        f"The Deployment Group '{group_name}' already has an active Deployment '{holder['deployment_id']}'")


class Ledger:
    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))

    def path(self, *parts: str) -> str:
        return os.path.join(self.directory, *parts)

    def record_path(self, deployment_id: str) -> str:
        return self.path("deployments", f"{deployment_id}.json")

    def lock_path(self, group_id: str) -> str:
        return self.path("locks", f"{group_id}.json")

    def report_path(self, deployment_id: str) -> str:
        return self.path("reports", f"{deployment_id}.xml")

    @property
    def cache_dir(self) -> str:
        return self.path("cache")

    # ----- records -----------------------------------------------------------------------------------------
    def save(self, record: dict[str, Any]) -> None:
        record["deployment_overview"] = deployment_overview(record.get("instances", []))
        write_atomically(self.record_path(record["deployment_id"]), json.dumps(record, indent=2, sort_keys=True))

    def load(self, deployment_id: str) -> dict[str, Any]:
        with open(self.record_path(deployment_id), encoding="utf-8") as handle:
            return json.load(handle)

    def records(self, group_id: str) -> list[dict[str, Any]]:
        """The group's records, oldest first."""
        found = []
        directory = self.path("deployments")
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            if name.endswith(".json"):
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    record = json.load(handle)
                if record.get("deployment_group_id") == group_id:
                    found.append(record)
        return sorted(found, key=lambda r: r.get("create_time", ""))

    def last_successful(self, group_id: str) -> Optional[dict[str, Any]]:
        succeeded = [r for r in self.records(group_id) if r.get("status") == "Succeeded"]
        return succeeded[-1] if succeeded else None

    # ----- locks -------------------------------------------------------------------------------------------
    def acquire(self, group_id: str, group_name: str, deployment_id: str, owner_pid: int) -> Optional[str]:
        """Make ``deployment_id`` the group's active deployment, held by the controller process ``owner_pid``.

        Returns a warning when a stale lock (its controller is gone) was cleared; raises ActiveDeploymentError
        when another deployment is running."""
        warning = None
        holder = self.lock_holder(group_id)
        if holder is not None and ready_wait_over(holder):
            warning = self.stop_expired_ready(group_id, holder)
        elif holder is not None:
            if not is_stale(holder):
                raise active_deployment_error(group_name, holder)
            warning = self.clear_stale(group_id, holder)
        os.makedirs(self.path("locks"), exist_ok=True)
        lock = {
            "deployment_id": deployment_id,
            "hostname": socket.gethostname(),
            "pid": owner_pid,
            "pid_start_ticks": process_start_ticks(owner_pid),
            "since": utc_timestamp(),
        }
        try:
            fd = os.open(self.lock_path(group_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise active_deployment_error(group_name, self.lock_holder(group_id) or {"deployment_id": "unknown"})
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(lock, handle)
        return warning

    def check_free(self, group_id: str, group_name: str) -> None:
        """What ``acquire`` would refuse, without changing anything (check mode): a stale lock counts as free."""
        holder = self.lock_holder(group_id)
        if holder is not None and not is_stale(holder):
            raise active_deployment_error(group_name, holder)

    def lock_holder(self, group_id: str) -> Optional[dict[str, Any]]:
        try:
            with open(self.lock_path(group_id), encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None
        except ValueError:
            # A lock file cut short by a crash names no live process: treat it as stale.
            return {"deployment_id": "unknown", "hostname": socket.gethostname(), "pid": 0}

    def clear_stale(self, group_id: str, holder: dict[str, Any]) -> str:
        stale_id = holder.get("deployment_id", "unknown")
        message = (f"Deployment {stale_id} was left active by a controller that is no longer running "
                   f"(pid {holder.get('pid')} on {holder.get('hostname')}, since {holder.get('since')}); "
                   "it is marked Failed and its lock is cleared. Hosts may hold a partial install of it; "
                   "this deployment redeploys them.")
        if os.path.exists(self.record_path(stale_id)):
            record = self.load(stale_id)
            if record.get("status") in ACTIVE_STATUSES:
                record["status"] = "Failed"
                record["error_information"] = {
                    "code": "INTERNAL_ERROR",
                    "message": "The controller running this deployment stopped before it finished.",
                }
                record["complete_time"] = utc_timestamp()
                for instance in record.get("instances", []):
                    if instance["status"] in ("Pending", "InProgress"):
                        instance["status"] = "Failed" if instance["status"] == "InProgress" else "Skipped"
                self.save(record)
        os.unlink(self.lock_path(group_id))
        return message

    def hold_ready(self, group_id: str, deployment_id: str, until: str) -> None:
        """The deployment waits in Ready: its lock stays, held by no controller, until ``until``."""
        with open(self.lock_path(group_id), "w", encoding="utf-8") as handle:
            json.dump({"deployment_id": deployment_id, "hostname": socket.gethostname(), "pid": None,
                       "since": utc_timestamp(), "ready_until": until}, handle)

    def take_over(self, group_id: str, deployment_id: str, owner_pid: int) -> None:
        """A controller continues the deployment waiting in Ready: the lock is its own again."""
        with open(self.lock_path(group_id), "w", encoding="utf-8") as handle:
            json.dump({"deployment_id": deployment_id, "hostname": socket.gethostname(), "pid": owner_pid,
                       "pid_start_ticks": process_start_ticks(owner_pid), "since": utc_timestamp()}, handle)

    def stop_expired_ready(self, group_id: str, holder: dict[str, Any]) -> str:
        """The Ready wait is over and nobody continued the deployment: it is Stopped and its lock cleared."""
        deployment_id = holder.get("deployment_id", "unknown")
        if os.path.exists(self.record_path(deployment_id)):
            record = self.load(deployment_id)
            if record.get("status") == "Ready":
                self.save(stop_ready(record))
        os.unlink(self.lock_path(group_id))
        return (f"Deployment {deployment_id} waited in Ready until {holder.get('ready_until')} and was not "
                "continued: it is Stopped, traffic still goes to the original instances.")

    def release(self, group_id: str, deployment_id: str) -> None:
        holder = self.lock_holder(group_id)
        if holder is not None and holder.get("deployment_id") == deployment_id:
            os.unlink(self.lock_path(group_id))
