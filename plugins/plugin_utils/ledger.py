# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment ledger: one JSON record per deployment and one lock per deployment group, in a directory on the
controller or under an S3 prefix that every controller (every AWX job) shares.

Layout, the same on disk and under the prefix::

    deployments/<deployment_id>.json   the record, shaped like the API's DeploymentInfo plus instances and events
    locks/<deployment_group_id>.json   the group's lock: which deployment is active, and its lease
    reports/<deployment_id>.xml|.html  the deployment's reports
    cache/                             fetched revisions (a local directory only: with S3, ~/.fleetops-codedeploy/cache)

The lock is a lease. Its holder renews it at every step of the deployment; a lock whose lease ran out belongs to a
controller that is gone (killed job, lost container) and is taken over by the next deployment, which closes the
dead one — on whatever machine it ran. Every change of the lock and of a record is a conditional write (see
ledger_store): two controllers can never both take a lock, nor silently overwrite each other's record.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import time
import uuid
from typing import Any, Callable, Iterator, Optional

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_record import (
    MSG_MANUAL_STOP, current_stage, stop_ready, stop_request_fields)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import utc_timestamp
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger_store import (
    ABSENT, LedgerStoreError, Store, VersionConflict, open_store)

DEFAULT_LEDGER = "~/.fleetops-codedeploy"
ACTIVE_STATUSES = ("Created", "Queued", "InProgress", "Ready")
OVERVIEW_KEYS = ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready")
HELD, READY, RELEASED = "held", "ready", "released"
# Beyond the longest hook: a live controller renews its lease at every step, so only a dead one lets it run out.
LEASE_MARGIN_SECONDS = 300
DEFAULT_HOOK_TIMEOUT = 3600
# A live controller renews its lease this often (lease_keeper); four beats missed and it is taken for gone by a
# stop request, which closes its deployment at once instead of waiting for the lease to run out.
HEARTBEAT_SECONDS = 15
SILENT_AFTER_SECONDS = 4 * HEARTBEAT_SECONDS
# Conditional writes that lose to a renewal of the same lock are retried this many times.
CONFLICT_RETRIES = 5


class LedgerError(OperatorError):
    """A record or lock cannot be used; the message names its location."""


class ActiveDeploymentError(OperatorError):
    """Another deployment of the group is active; the message is the service's."""


class LockLostError(OperatorError):
    """This controller's deployment no longer holds its group's lock (its lease ran out and another took it)."""


def deployment_overview(instances: list[dict]) -> dict[str, int]:
    overview = {key: 0 for key in OVERVIEW_KEYS}
    for instance in instances:
        overview[instance["status"]] = overview.get(instance["status"], 0) + 1
    return overview


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def parse_timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def lease_seconds_for(appspec: Optional[dict[str, Any]], configured: Optional[int] = None) -> int:
    """The lease of a deployment's lock: as configured, else a few minutes past the longest hook timeout. A
    configured lease shorter than the keeper's silence is refused: it runs out under a live controller."""
    if configured:
        if int(configured) < SILENT_AFTER_SECONDS:
            raise LedgerError(f"codedeploy_lock_lease_seconds {configured}: the controller renews its lease every "
                              f"{HEARTBEAT_SECONDS} s, so a shorter lease than {SILENT_AFTER_SECONDS} s would run out "
                              "while it deploys and let another deployment take the group: give at least "
                              f"{SILENT_AFTER_SECONDS}, or 0 for the default")
        return int(configured)
    timeouts = [int(script.get("timeout") or DEFAULT_HOOK_TIMEOUT)
                for scripts in ((appspec or {}).get("hooks") or {}).values() for script in scripts or []]
    return max(timeouts, default=0) + LEASE_MARGIN_SECONDS


def controller_identity(pid: int) -> dict[str, Any]:
    """Who runs a deployment, for messages and for a fast check on the same machine: host, boot of its kernel (a
    hostname is not unique: cloned VMs, fixed container hostnames), process, PID namespace (a container on the same
    host has another), and the AWX job when there is one."""
    identity: dict[str, Any] = {"hostname": socket.gethostname(), "boot_id": _boot_id(), "pid": pid,
                                "pid_namespace": _pid_namespace(), "pid_start_ticks": process_start_ticks(pid)}
    if os.environ.get("JOB_ID"):
        identity["job_id"] = os.environ["JOB_ID"]
    return identity


def describe_controller(identity: Optional[dict[str, Any]]) -> str:
    identity = identity or {}
    job = f"AWX job {identity['job_id']}, " if identity.get("job_id") else ""
    return f"{job}pid {identity.get('pid')} on {identity.get('hostname')}"


def lease_expired(lock: dict[str, Any], now: datetime.datetime) -> bool:
    """The holder stopped renewing: its lease is over — or, on this very machine, its process is gone."""
    if lock.get("state") != HELD:
        return False
    if now >= parse_timestamp(lock["lease_expires_at"]):
        return True
    return _controller_gone_here(lock.get("controller") or {})


def heartbeat_silent(lock: dict[str, Any], now: datetime.datetime) -> bool:
    """The holder's keeper stopped renewing: its controller is gone (or cannot reach the ledger)."""
    return lock.get("state") == HELD and (
        now - parse_timestamp(lock["renewed_at"])).total_seconds() > SILENT_AFTER_SECONDS


def takeover_refusal(lock: Optional[dict[str, Any]], deployment_id: str, now: datetime.datetime,
                     location: str) -> Optional[str]:
    """Why a continue cannot take over ``lock`` for ``deployment_id`` now, in a sentence that names the ledger at
    ``location``, or None: the lock must be the deployment's and Ready, or held by a controller that is gone (its
    lease over, or its heartbeat silent)."""
    reason = _takeover_obstacle(lock, deployment_id, now)
    return f"Deployment {deployment_id} cannot be continued from {location}: {reason}" if reason else None


def _takeover_obstacle(lock: Optional[dict[str, Any]], deployment_id: str, now: datetime.datetime) -> Optional[str]:
    left_held = lease_expired(lock or {}, now) or heartbeat_silent(lock or {}, now)
    if lock and lock.get("deployment_id") == deployment_id and lock.get("state") == HELD and not left_held:
        return (f"its lock is still held by {describe_controller(lock.get('controller'))}. If that controller is "
                "gone, it can be continued a minute after its last heartbeat.")
    if not lock or not (lock.get("state") == READY or left_held) or lock.get("deployment_id") != deployment_id:
        return "another controller continued or stopped it."
    if lock.get("stop_request"):
        # Asked to stop after its last wave gate, before it went Ready: the stop is what was asked last.
        request = stop_request_fields(lock["stop_request"])
        return (f"it was asked to stop ({request['by']}, at {request['requested_at']}) before it went Ready. Run the "
                "playbook fleetops.codedeploy.stop to close it (with codedeploy_stop_rollback as wanted); it still "
                "waits in Ready.")
    return None


def ready_wait_over(lock: dict[str, Any], now: datetime.datetime) -> bool:
    return lock.get("state") == READY and now >= parse_timestamp(lock["ready_until"])


def stop_refusal(lock: Optional[dict[str, Any]], group_name: str, deployment_id: Optional[str]) -> Optional[str]:
    """Why StopDeployment has nothing to stop in a group whose lock is ``lock``, or None: no deployment is active, or
    the one named (``deployment_id``) is not the active one."""
    if is_active(lock) and (not deployment_id or lock.get("deployment_id") == deployment_id):
        return None
    return (f"The Deployment Group '{group_name}' has no "
            f"{'deployment ' + deployment_id if deployment_id else 'deployment'} in progress or waiting in "
            "Ready: there is nothing to stop.")


# What each state of a lock is read for: a lock without them stops every deployment of its group with a traceback.
LOCK_TIMES = {HELD: ("renewed_at", "lease_expires_at"), READY: ("ready_until",)}


def check_lock_shape(lock: Any) -> None:
    """Raise ValueError unless ``lock`` (parsed JSON) is a lock document with what its state is read for."""
    if lock is None:
        return  # "null": no lock
    if not isinstance(lock, dict) or not isinstance(lock.get("deployment_id"), str):
        raise ValueError("not a lock")
    for name in LOCK_TIMES.get(lock.get("state"), ()):
        parse_timestamp(str(lock.get(name)))  # ValueError when missing or no time


def is_active(lock: Optional[dict[str, Any]]) -> bool:
    return bool(lock) and lock.get("state") in (HELD, READY)


def new_lock(deployment_id: str, group_name: str, controller: dict[str, Any], lease_seconds: int,
             now: datetime.datetime) -> dict[str, Any]:
    return {"deployment_id": deployment_id, "deployment_group_name": group_name, "state": HELD,
            "controller": controller, "acquired_at": utc_timestamp(now), "lease_seconds": lease_seconds,
            **renewal(lease_seconds, now), "stop_request": None}


def renewal(lease_seconds: int, now: datetime.datetime) -> dict[str, Any]:
    # The nonce makes every write a new ETag: S3's ETag is the content's MD5, and a lease renewed within the same
    # millisecond must still be a change another writer's If-Match can see.
    return {"renewed_at": utc_timestamp(now),
            "lease_expires_at": utc_timestamp(now + datetime.timedelta(seconds=lease_seconds)),
            "nonce": uuid.uuid4().hex}


def active_deployment_error(group_name: str, lock: dict[str, Any]) -> ActiveDeploymentError:
    return ActiveDeploymentError(
        f"The Deployment Group '{group_name}' already has an active Deployment '{lock['deployment_id']}'")


def close_abandoned(record: dict[str, Any], message: str, status: str = "Failed",
                    code: str = "INTERNAL_ERROR") -> dict[str, Any]:
    """A deployment whose controller is gone: closed with ``status``; instances it was deploying Failed (or, when
    stopped on request, Skipped), the ones it had not reached Skipped."""
    record["status"] = status
    record["error_information"] = {"code": code, "message": message}
    record["complete_time"] = utc_timestamp()
    interrupted = "Failed" if status == "Failed" else "Skipped"
    for stage in [record, *((record.get("blue_green") or {}).get("stages") or [])]:
        for instance in stage.get("instances", []):
            if instance["status"] in ("Pending", "InProgress"):
                instance["status"] = interrupted if instance["status"] == "InProgress" else "Skipped"
                for event in instance.get("lifecycle_events", []):
                    if event["status"] in ("Pending", "InProgress"):
                        event["status"] = "Skipped"
    return record


class Ledger:
    """Records, reports and locks in one store (see :func:`open_ledger`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.warnings: list[str] = []
        self._versions: dict[str, str] = {}  # key -> version read, for the conditional write that follows

    @property
    def location(self) -> str:
        return self.store.location()

    def record_location(self, deployment_id: str) -> str:
        return self.store.location(record_key(deployment_id))

    def report_location(self, deployment_id: str, extension: str) -> str:
        return self.store.location(f"reports/{deployment_id}.{extension}")

    # ----- records -----------------------------------------------------------------------------------------
    def save(self, record: dict[str, Any]) -> None:
        """Write the record, only over the version this ledger read (or as a new one): never over a write of
        another controller."""
        record["deployment_overview"] = deployment_overview(record.get("instances", []))
        key = record_key(record["deployment_id"])
        data = json.dumps(record, indent=2, sort_keys=True).encode("utf-8")
        try:
            self._put(key, data)
        except VersionConflict:
            raise LedgerError(
                f"Deployment record {self.store.location(key)} was changed by another controller since this one read "
                "it; nothing was overwritten. Another job may have taken over or stopped this deployment: see the "
                "record.") from None

    def load(self, deployment_id: str) -> dict[str, Any]:
        key = record_key(deployment_id)
        found = self.store.get(key)
        if found is None:
            raise LedgerError(f"There is no deployment record {self.store.location(key)}: no deployment "
                              f"{deployment_id} in this ledger.")
        record = self._parse(key, found[0])
        if record is None:
            raise LedgerError(self.warnings[-1])
        self._versions[key] = found[1]
        return record

    def find(self, deployment_id: Optional[str]) -> Optional[dict[str, Any]]:
        """The record, or None when there is none (a damaged one is a warning)."""
        if not deployment_id:
            return None
        try:
            return self.load(deployment_id)
        except LedgerError:
            return None

    def records(self, group_id: Optional[str] = None) -> list[dict[str, Any]]:
        """The group's records (every group's without ``group_id``), oldest first. A damaged or unreadable record
        is skipped and named in ``warnings``; it does not hide the others, nor stop every deployment of the ledger."""
        found = []
        for key in self.store.keys("deployments"):
            if not key.endswith(".json"):
                continue
            try:
                stored = self.store.get(key)
            except LedgerStoreError as error:
                self.warnings.append(f"Unreadable deployment record skipped ({error}): give the controller access "
                                     "to it, or remove it; the other records are used.")
                continue
            record = self._parse(key, stored[0]) if stored else None
            if record is not None and (group_id is None or record.get("deployment_group_id") == group_id):
                found.append(record)
        return sorted(found, key=lambda r: r.get("create_time") or "")

    def last_successful(self, group_id: str, before: Optional[str] = None) -> Optional[dict[str, Any]]:
        """The group's last successful deployment; with ``before`` (a deployment ID), the last one created before
        that deployment: what a rollback of it goes back to, even when it succeeded itself."""
        found = self.records(group_id)
        ids = [r["deployment_id"] for r in found]
        if before in ids:
            found = found[:ids.index(before)]
        succeeded = [r for r in found if r.get("status") == "Succeeded"]
        return succeeded[-1] if succeeded else None

    def put_report(self, deployment_id: str, extension: str, text: str) -> str:
        key = f"reports/{deployment_id}.{extension}"
        self.store.put(key, text.encode("utf-8"))
        return self.store.location(key)

    def _parse(self, key: str, data: bytes) -> Optional[dict[str, Any]]:
        try:
            record = json.loads(data)
            if not isinstance(record, dict) or "deployment_id" not in record:
                raise ValueError("not a deployment record")
        except ValueError as error:
            self.warnings.append(f"Damaged deployment record {self.store.location(key)} skipped ({error}): repair "
                                 "or remove it; the other records are used.")
            return None
        return record

    # ----- the group's lock --------------------------------------------------------------------------------
    def lock(self, group_id: str) -> Optional[dict[str, Any]]:
        """The group's lock document (any state), remembering its version for the next conditional write."""
        key = lock_key(group_id)
        found = self.store.get(key)
        if found is None:
            self._versions.pop(key, None)
            return None
        try:
            lock = json.loads(found[0])
            check_lock_shape(lock)
        except ValueError:
            # A lock is only ever written whole; an unreadable one (or one that parses, but is not a lock the ledger
            # wrote) is treated as released, and replaced.
            lock = {"state": RELEASED, "deployment_id": "unknown"}
        self._versions[key] = found[1]
        return lock

    def lock_holder(self, group_id: str) -> Optional[dict[str, Any]]:
        """The group's active lock (held or waiting in Ready), or None."""
        lock = self.lock(group_id)
        return lock if is_active(lock) else None

    def acquire(self, group_id: str, group_name: str, deployment_id: str, controller: dict[str, Any],
                lease_seconds: int, after: Optional[str] = None) -> Optional[str]:
        """Make ``deployment_id`` the group's active deployment. Returns a warning when a dead deployment (lease
        over) or an expired Ready one was closed on the way; raises ActiveDeploymentError when one is active.
        ``after``: the deployment this one follows in the same step (a rollback, the deployment it rolls back, which
        has ended): a lock it still holds, because its release failed, is taken over."""
        lock = self.lock(group_id)
        now = now_utc()
        # What the previous holder left is closed only once the lock is ours; if it cannot be, the lock is its again.
        closing: Optional[Callable[[dict[str, Any]], str]] = None
        if is_active(lock) and not (after and lock.get("deployment_id") == after and lock.get("state") == HELD):
            if lease_expired(lock, now):
                closing = self._close_dead
            elif ready_wait_over(lock, now):
                closing = self._stop_expired_ready
            else:
                raise active_deployment_error(group_name, lock)
        document = new_lock(deployment_id, group_name, controller, lease_seconds, now)
        try:
            self._write_lock(group_id, document)
        except VersionConflict:
            raise active_deployment_error(group_name, self.lock_holder(group_id) or {"deployment_id": "unknown"})
        if not (closing and lock):
            return None
        with self.restored_on_failure(group_id, lock):
            return closing(lock)

    def check_free(self, group_id: str, group_name: str) -> None:
        """What ``acquire`` would refuse, changing nothing (check mode)."""
        lock = self.lock(group_id)
        now = now_utc()
        if is_active(lock) and not lease_expired(lock, now) and not ready_wait_over(lock, now):
            raise active_deployment_error(group_name, lock)

    def renew(self, group_id: str, deployment_id: str) -> dict[str, Any]:
        """Extend this deployment's lease; returns the lock (its ``stop_request`` included). Raises LockLostError
        when another deployment took the lock."""
        for _attempt in range(CONFLICT_RETRIES):
            lock = self._own_lock(group_id, deployment_id)
            lock.update(renewal(int(lock["lease_seconds"]), now_utc()))
            try:
                self._write_lock(group_id, lock)
                return lock
            except VersionConflict:
                continue  # a stop request was written in between: read it and renew again
        raise LedgerError(f"Could not renew the lock {self.store.location(lock_key(group_id))}: it keeps changing.")

    def wait_unless_stopped(self, group_id: str, deployment_id: str, seconds: float,
                            poll_seconds: float) -> dict[str, Any]:
        """Wait ``seconds`` (a zone's bake time, a blue/green termination wait) unless a stop request comes, the lock
        read every ``poll_seconds``. Returns the lock renewed at the end, its ``stop_request`` included; raises
        LockLostError when another deployment took it meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, poll_seconds))
            try:
                if (self.lock(group_id) or {}).get("stop_request"):
                    break
            except LedgerStoreError:
                continue  # a store hiccup: the wait goes on, and the renewal at its end says if it lasts
        return self.renew(group_id, deployment_id)

    def release(self, group_id: str, deployment_id: str) -> None:
        """The deployment is over: the group is free. A lock held by another deployment is left alone. Raises
        LedgerError when the lock kept changing under every attempt (it stays held until its lease runs out)."""
        for _attempt in range(CONFLICT_RETRIES):
            lock = self.lock(group_id)
            if not lock or lock.get("deployment_id") != deployment_id or lock.get("state") == RELEASED:
                return
            try:
                self._write_lock(group_id, {**lock, "state": RELEASED, "released_at": utc_timestamp(),
                                            "nonce": uuid.uuid4().hex})
                return
            except VersionConflict:
                continue
        raise LedgerError(f"Could not release the lock {self.store.location(lock_key(group_id))}: it keeps changing.")

    @contextlib.contextmanager
    def released_on_failure(self, group_id: str, deployment_id: str) -> Iterator[None]:
        """The lock ``deployment_id`` has just taken is given back when what follows fails (its record cannot be
        saved, say): a deployment that was not created must not hold its group until its lease runs out. The
        error raised is the first one; a release that fails as well is a warning, the lock then free when its lease
        runs out."""
        try:
            yield
        except BaseException:
            self.release_or_warn(group_id, deployment_id)
            raise

    @contextlib.contextmanager
    def restored_on_failure(self, group_id: str, previous: dict[str, Any]) -> Iterator[None]:
        """The lock this controller has just written goes back to ``previous`` when what follows fails (the record
        of the deployment it names cannot be closed, or continued): that deployment is then closed, or continued, by
        a later run, not left active with no lock naming it. A lock that cannot be put back is a warning."""
        try:
            yield
        except BaseException:
            try:
                self._write_lock(group_id, previous)
            except (OperatorError, VersionConflict) as error:
                why = "another controller changed it meanwhile" if isinstance(error, VersionConflict) else error
                self.warnings.append(f"The lock of deployment group {group_id} could not be given back to deployment "
                                     f"{previous.get('deployment_id')}: {why}")
            raise

    def release_or_warn(self, group_id: str, deployment_id: str, until: str = "its lease runs out") -> None:
        """``release``, or a warning when the lock cannot be written, which says ``until`` when the lock is
        held."""
        try:
            self.release(group_id, deployment_id)
        except OperatorError as error:
            self.warnings.append(f"The lock of deployment group {group_id} stays with {deployment_id} until {until}: "
                                 f"{error}")

    def hold_ready(self, group_id: str, deployment_id: str, until: str) -> None:
        """The deployment waits in Ready: its lock stays, held by no controller, until ``until``. Raises
        LockLostError when another deployment took the lock."""
        for _attempt in range(CONFLICT_RETRIES):
            lock = self._own_lock(group_id, deployment_id)
            try:
                self._write_lock(group_id, {**lock, "state": READY, "ready_until": until, "controller": None,
                                            "nonce": uuid.uuid4().hex})
                return
            except VersionConflict:
                continue  # its lease keeper renewed it, or a stop request came, in between: read it again
        raise LedgerError(f"Could not hand over the lock {self.store.location(lock_key(group_id))}: it keeps "
                          "changing.")

    def take_over(self, group_id: str, group_name: str, deployment_id: str,
                  controller: dict[str, Any]) -> dict[str, Any]:
        """A controller continues the deployment waiting in Ready: the lock is held again, by this controller.
        Returns the Ready lock it replaced (see ``restored_on_failure``). A lock still held by a controller that is
        gone counts as Ready: it saved the deployment Ready and could not hand the lock over (the caller checked
        that the record is Ready)."""
        lock = self.lock(group_id)
        now = now_utc()
        refusal = takeover_refusal(lock, deployment_id, now, self.location)
        if refusal:
            raise LedgerError(refusal)
        lease = int(lock.get("lease_seconds") or LEASE_MARGIN_SECONDS)
        try:
            self._write_lock(group_id, {**new_lock(deployment_id, group_name, controller, lease, now),
                                        "acquired_at": lock.get("acquired_at")})
        except VersionConflict:
            raise active_deployment_error(group_name, self.lock_holder(group_id) or lock) from None
        return lock

    def stop_expired_ready(self, group_id: str, group_name: str) -> str:
        """The Ready wait is over and nobody continued the deployment: Stopped, and the group released."""
        lock = self.lock(group_id)
        if not lock or not ready_wait_over(lock, now_utc()):
            raise LedgerError(f"The Deployment Group '{group_name}' has no deployment whose Ready wait is over.")
        try:
            self._write_lock(group_id, {**lock, "state": RELEASED, "released_at": utc_timestamp(),
                                        "nonce": uuid.uuid4().hex})
        except VersionConflict:
            raise active_deployment_error(group_name, self.lock_holder(group_id) or lock) from None
        with self.restored_on_failure(group_id, lock):
            return self._stop_expired_ready(lock)

    def request_stop(self, group_id: str, group_name: str, deployment_id: Optional[str], request: dict[str, Any],
                     controller: dict[str, Any]) -> dict[str, Any]:
        """StopDeployment. A deployment whose controller runs is asked to stop (it stops at its next wave gate);
        one waiting in Ready, or whose controller is gone, is closed here, Stopped, and the group released.
        A deployment asked to stop already keeps the first request (``earlier_request`` returned).
        Returns ``{"deployment_id", "outcome": "requested" | "stopped", "record"}``."""
        for _attempt in range(CONFLICT_RETRIES):
            lock = self.lock(group_id)
            refusal = stop_refusal(lock, group_name, deployment_id)
            if refusal:
                raise LedgerError(refusal)
            active_id = lock["deployment_id"]
            now = now_utc()
            try:
                if lock["state"] == HELD and not lease_expired(lock, now) and not heartbeat_silent(lock, now):
                    earlier = lock.get("stop_request")
                    if earlier:
                        # The first request stands: a second would change what the deployment's controller was
                        # asked, and a stop without rollback would cancel the first one's rollback.
                        return {"deployment_id": active_id, "outcome": "requested", "record": self.find(active_id),
                                "earlier_request": earlier}
                    self._write_lock(group_id, {**lock, "stop_request": request, "nonce": uuid.uuid4().hex})
                    return {"deployment_id": active_id, "outcome": "requested", "record": self.find(active_id)}
                # Ready, or its controller is gone: this controller takes the lock to close the deployment.
                self._write_lock(group_id, new_lock(active_id, group_name, controller, LEASE_MARGIN_SECONDS, now))
            except VersionConflict:
                continue
            # A record that cannot be closed leaves the lock as it was: still Ready, or still the dead controller's
            # (its lease over), not held by this stop, which ends here, for a lease more.
            with self.restored_on_failure(group_id, lock):
                record = self._close_stopped(lock, request)
            self.release(group_id, active_id)
            return {"deployment_id": active_id, "outcome": "stopped", "record": record}
        raise LedgerError(f"Could not stop the deployment: the lock {self.store.location(lock_key(group_id))} keeps "
                          "changing.")

    # ----- internals ---------------------------------------------------------------------------------------
    def _close_stopped(self, lock: dict[str, Any], request: dict[str, Any]) -> Optional[dict[str, Any]]:
        """The record of the deployment ``lock`` names, Stopped on ``request`` (waiting in Ready, or its controller
        gone) and saved; None when the ledger has no record of it."""
        record = self.find(lock["deployment_id"])
        if record is not None and record.get("status") in ACTIVE_STATUSES:
            message = manual_stop_message(request)
            if lock["state"] == READY:
                record = stop_ready(record)
                record["error_information"] = {"code": "MANUAL_STOP", "message": message}
            else:
                close_abandoned(record, message + f" Its controller ({describe_controller(lock.get('controller'))}"
                                ") had stopped renewing its lock.", status="Stopped", code="MANUAL_STOP")
            # As a running deployment's gate records the request: whether it asked for a rollback.
            current_stage(record)["stop_reason"] = {"manual_stop": request}
            self.save(record)
        return record

    def _write_lock(self, group_id: str, document: dict[str, Any]) -> None:
        self._put(lock_key(group_id), json.dumps(document, indent=2, sort_keys=True).encode("utf-8"))

    def _put(self, key: str, data: bytes) -> None:
        """Write ``data`` over the version this ledger read (or as a new document). A conflict whose document is
        already ``data`` is this very write: applied, then retried after its answer was lost (an S3 500 or a reset
        connection), the retry refused. No other controller's write has the same bytes: a lock it writes holds a
        new nonce, and a lock given back (``restored_on_failure``) goes over a version only this ledger holds."""
        try:
            self._versions[key] = self.store.put(key, data, self._versions.get(key, ABSENT))
        except VersionConflict:
            current = self.store.get(key)
            if current is None or current[0] != data:
                raise
            self._versions[key] = current[1]

    def _own_lock(self, group_id: str, deployment_id: str) -> dict[str, Any]:
        lock = self.lock(group_id)
        if not lock or lock.get("deployment_id") != deployment_id or lock.get("state") != HELD:
            raise self._lost(group_id, deployment_id, lock)
        return lock

    def _lost(self, group_id: str, deployment_id: str, lock: Optional[dict[str, Any]] = None) -> LockLostError:
        lock = lock if lock is not None else (self.lock(group_id) or {})
        holder = lock.get("deployment_id") if lock.get("state") in (HELD, READY) else None
        now_by = f"; the group's active deployment is now {holder}" if holder and holder != deployment_id else ""
        return LockLostError(
            f"Deployment {deployment_id} no longer holds its deployment group's lock "
            f"({self.store.location(lock_key(group_id))}){now_by}. Its lease ran out — this controller did not renew "
            "it in time — or it was stopped. Nothing more is changed; see the record.")

    def _close_dead(self, lock: dict[str, Any]) -> str:
        dead_id = lock.get("deployment_id", "unknown")
        message = (f"Deployment {dead_id} was left active by a controller that stopped renewing its lock "
                   f"({describe_controller(lock.get('controller'))}, lease until {lock.get('lease_expires_at')}); "
                   "it is marked Failed and its lock is taken over. Hosts may hold a partial install of it; this "
                   "deployment redeploys them.")
        record = self.find(dead_id)
        if record is not None and record.get("status") in ACTIVE_STATUSES:
            self.save(close_abandoned(record, "The controller running this deployment stopped before it finished "
                                              f"({describe_controller(lock.get('controller'))})."))
        return message

    def _stop_expired_ready(self, lock: dict[str, Any]) -> str:
        deployment_id = lock.get("deployment_id", "unknown")
        record = self.find(deployment_id)
        if record is not None and record.get("status") == "Ready":
            self.save(stop_ready(record))
        return (f"Deployment {deployment_id} waited in Ready until {lock.get('ready_until')} and was not "
                "continued: it is Stopped, traffic still goes to the original instances.")


def open_ledger(location: Optional[str] = None, aws: Optional[dict[str, Any]] = None) -> Ledger:
    """The ledger at ``location``: a directory (default ``~/.fleetops-codedeploy``) or ``s3://bucket/prefix``."""
    return Ledger(open_store(location or DEFAULT_LEDGER, aws))


def revision_cache_dir(location: str) -> str:
    """Fetched revisions stay on this machine: in the ledger's directory, or in the default one beside an S3 ledger."""
    return os.path.join(DEFAULT_LEDGER if location.startswith("s3://") else location, "cache")


def record_key(deployment_id: str) -> str:
    return f"deployments/{deployment_id}.json"


def lock_key(group_id: str) -> str:
    return f"locks/{group_id}.json"


def manual_stop_message(request: dict[str, Any]) -> str:
    return MSG_MANUAL_STOP.format(**stop_request_fields(request))


def _pid_namespace() -> Optional[str]:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _boot_id() -> Optional[str]:
    """This boot of this machine's kernel: the same in every container on it, another on any other machine."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def process_start_ticks(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _controller_gone_here(controller: dict[str, Any]) -> bool:
    """The holder ran on this machine, in this PID namespace, and its process is gone (or is another process now).
    Anywhere else only the lease tells. This machine is this boot of this kernel: every machine's first PID
    namespace is the same inode, and two machines may share a hostname."""
    if not controller.get("pid") or controller.get("hostname") != socket.gethostname():
        return False
    if not controller.get("boot_id") or controller.get("boot_id") != _boot_id():
        return False
    if controller.get("pid_namespace") != _pid_namespace():
        return False
    try:
        with open(f"/proc/{controller['pid']}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] == "Z" or (controller.get("pid_start_ticks") is not None
                                and int(fields[19]) != controller["pid_start_ticks"])
