# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One instance's lifecycle events, in order, in one call: what the service asks of the agent, event by event.

Each event is the same code the single-event modules run (hooks, bundle, install_plan). The first failed event
fails the instance and the rest are Skipped; with ``ignore_application_stop_failures`` a failed ApplicationStop,
BeforeBlockTraffic or AfterBlockTraffic is recorded and the next event runs, as in the service.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from ansible_collections.fleetops.codedeploy.plugins.module_utils.bundle import (
    BundleError, apply_download_bundle, plan_download_bundle, receive_pushed_bundle)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.bundle_download import DownloadError, download_bundle
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DeploymentRoot, DeploymentRootError, instance_deployment_file, utc_timestamp, write_atomically)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import unexpected_error_message
from ansible_collections.fleetops.codedeploy.plugins.module_utils.hooks import EventRequest, EventRequestError, run_event
from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import AppSpecError
from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import CREATOR_USER, STOP_EVENTS, TRAFFIC_EVENTS
from ansible_collections.fleetops.codedeploy.plugins.module_utils.install_plan import (
    InstallError, InstallResult, install_revision, prepare_install)

STOP_EVENTS_THAT_MAY_BE_IGNORED = STOP_EVENTS
DEFAULT_MAX_UNPACKED_SIZE = 2 * 1024 ** 3


@dataclass(frozen=True)
class LifecycleRequest:
    deployment_id: str
    deployment_group_id: str
    deployment_group_name: str
    application_name: str
    events: list
    appspec: Mapping[str, Any]
    bundle: Mapping[str, Any]
    deployment_root: str
    appspec_filename: str = "appspec.yml"
    bundle_env: Mapping[str, Optional[str]] = field(default_factory=dict)
    deployment_type: str = "IN_PLACE"
    deployment_creator: str = CREATOR_USER
    file_exists_behavior: str = "DISALLOW"
    ignore_application_stop_failures: bool = False
    max_revisions: int = 5
    max_unpacked_size: int = DEFAULT_MAX_UNPACKED_SIZE
    kill_grace_seconds: float = 5
    # False for a part of the events that more follow (traffic control cuts them): its success is not the instance's.
    final_segment: bool = True
    # Where the host downloads the bundle itself (pull): a presigned S3 URL or an HTTP(S) revision's URL.
    bundle_url: Optional[str] = None


def event_record(name: str, status: str, start: Optional[str], end: Optional[str], error_code: str = "Success",
                 message: str = "", script_name: str = "", log_tail: str = "") -> dict[str, Any]:
    return {"lifecycle_event_name": name, "status": status, "start_time": start, "end_time": end,
            "diagnostics": {"error_code": error_code, "script_name": script_name, "message": message,
                            "log_tail": log_tail}}


def run_download_bundle(request: LifecycleRequest, layout: DeploymentRoot, transfers: dict[str, Any]
                        ) -> dict[str, Any]:
    """DownloadBundle; a bundle the host pulls itself is downloaded first, its transfer put in ``transfers``."""
    start = utc_timestamp()
    bundle = request.bundle
    try:
        if request.bundle_url:
            pull_start = utc_timestamp()
            downloaded = download_bundle(request.bundle_url, bundle["src"], bundle["sha256"], request.max_unpacked_size)
            transfers["bundle_pull"] = {"bytes": downloaded.bytes, "start_time": pull_start,
                                        "end_time": utc_timestamp()}
        elif bundle.get("pushed"):
            receive_pushed_bundle(bundle["pushed"], bundle["src"], bundle["sha256"])
        plan = plan_download_bundle(layout, request.deployment_id, bundle["src"], bundle["bundle_type"],
                                    request.max_revisions, request.max_unpacked_size, sha256=bundle.get("sha256"))
        apply_download_bundle(plan)
    except (BundleError, DownloadError, OSError) as error:
        return event_record("DownloadBundle", "Failed", start, utc_timestamp(), "UnknownError",
                            getattr(error, "message", None) or str(error))
    return event_record("DownloadBundle", "Succeeded", start, utc_timestamp())


def run_install(request: LifecycleRequest, layout: DeploymentRoot, run_command: Callable) -> dict[str, Any]:
    start = utc_timestamp()
    try:
        plan = prepare_install(layout, request.deployment_id, request.appspec, request.appspec_filename,
                               request.file_exists_behavior)
        install_revision(layout, request.deployment_id, plan, run_command, InstallResult())
    except (InstallError, AppSpecError) as error:
        return event_record("Install", "Failed", start, utc_timestamp(), "UnknownError", error.message)
    except OSError as error:
        return event_record("Install", "Failed", start, utc_timestamp(), "UnknownError",
                            f"The Install stopped: {error}")
    return event_record("Install", "Succeeded", start, utc_timestamp())


def run_hook_event(request: LifecycleRequest, name: str) -> dict[str, Any]:
    start = utc_timestamp()
    try:
        result = run_event(EventRequest(
            event=name, deployment_id=request.deployment_id, deployment_group_id=request.deployment_group_id,
            deployment_group_name=request.deployment_group_name, application_name=request.application_name,
            deployment_root=request.deployment_root, appspec_filename=request.appspec_filename,
            appspec=request.appspec, bundle_env=request.bundle_env, deployment_type=request.deployment_type,
            deployment_creator=request.deployment_creator, kill_grace_seconds=request.kill_grace_seconds))
    except (EventRequestError, DeploymentRootError) as error:
        return event_record(name, "Failed", start, utc_timestamp(), "UnknownError", str(error))
    diagnostics = result.diagnostics
    return event_record(name, result.status, result.start_time, result.end_time, diagnostics.error_code,
                        diagnostics.message, diagnostics.script_name, diagnostics.log_tail)


def run_event_of(name: str, request: LifecycleRequest, layout: DeploymentRoot, run_command: Callable,
                 transfers: dict[str, Any]) -> dict[str, Any]:
    if name == "DownloadBundle":
        return run_download_bundle(request, layout, transfers)
    if name == "Install":
        return run_install(request, layout, run_command)
    if name in TRAFFIC_EVENTS:
        now = utc_timestamp()
        return event_record(name, "Skipped", now, now, message="No load balancer in this deployment group.")
    return run_hook_event(request, name)


def run_lifecycle(request: LifecycleRequest, run_command: Callable) -> dict[str, Any]:
    """Run the events; return ``status`` (Succeeded|Failed) and ``lifecycle_events`` in the record's shape, and
    ``bundle_pull`` (bytes, start and end) when the host downloaded the bundle."""
    layout = DeploymentRoot(request.deployment_root, request.deployment_group_id)
    events: list[dict[str, Any]] = []
    transfers: dict[str, Any] = {}
    failed: Optional[str] = None
    for name in request.events:
        if failed:
            events.append(event_record(name, "Skipped", None, None))
            continue
        try:
            event = run_event_of(name, request, layout, run_command, transfers)
        except Exception as error:  # pylint: disable=broad-exception-caught
            now = utc_timestamp()
            event = event_record(name, "Failed", now, now, "UnknownError", unexpected_error_message(name, error))
        events.append(event)
        if event["status"] == "Failed":
            if request.ignore_application_stop_failures and name in STOP_EVENTS_THAT_MAY_BE_IGNORED:
                event["diagnostics"]["message"] += " (ignored: ignore_application_stop_failures)"
                continue
            failed = name
    status = "Failed" if failed else "Succeeded"
    # A part that succeeded leaves the instance InProgress (unhealthy to the next deployment's order) until the
    # last part says how the whole ended: a traffic event that fails in between must not leave it Succeeded.
    record_instance_outcome(layout, request, status if failed or request.final_segment else "InProgress")
    return {"status": status, "failed_event": failed, "lifecycle_events": events, **transfers}


def failure_message(result: dict[str, Any]) -> str:
    """``<event> failed: <its diagnostics message>`` for a Failed instance result: the task's ``msg``."""
    failed = next(event for event in result["lifecycle_events"]
                  if event["lifecycle_event_name"] == result["failed_event"])
    return f"{result['failed_event']} failed: {failed['diagnostics']['message']}"


def skipped_after_failure(names: list[str]) -> dict[str, Any]:
    """A segment that does not run because an earlier event failed."""
    return {"status": "Skipped", "failed_event": None,
            "lifecycle_events": [event_record(name, "Skipped", None, None) for name in names]}


def combine_segments(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One instance result from its segments' results, events in order; the first failure is the instance's, and
    the bundle's download is the one segment's that ran DownloadBundle."""
    failed = next((part["failed_event"] for part in parts if part.get("failed_event")), None)
    pulls = [part["bundle_pull"] for part in parts if part.get("bundle_pull")]
    return {"status": "Failed" if failed else "Succeeded", "failed_event": failed,
            "lifecycle_events": [event for part in parts for event in part["lifecycle_events"]],
            **({"bundle_pull": pulls[0]} if pulls else {})}


def record_instance_outcome(layout: DeploymentRoot, request: LifecycleRequest, status: str) -> None:
    """This instance's last deployment, for the health order of the next one (Unhealthy first)."""
    write_atomically(instance_deployment_file(layout), json.dumps({
        "deployment_id": request.deployment_id, "status": status,
        "revision_sha256": request.bundle.get("sha256"), "time": utc_timestamp()}, indent=2))
