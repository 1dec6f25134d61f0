# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the deployment play needs from the controller's steps, worked out whole: the bundle a phase deploys and
where each host finds it, the host results a wave's record step folds in, what the mark step writes on each
instance that succeeded, the instances the run fails once it ends, what the stop step did, the
verdict on the run and what it gives an AWX workflow's next node (controller only)."""
from __future__ import annotations

import os
from typing import Any, Optional

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DEFAULT_DEPLOYMENT_ROOT, DeploymentRoot, bundle_store_dir)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_record import stop_request_fields
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.untrusted_text import terminal_text

# A blue/green rollback reroutes traffic and installs nothing: it has no revision of its own.
NO_REVISION = {"sha256": None, "bundle_type": None, "appspec": {}, "bundle_env": {}, "host_bundle_path": None}
# What of a recorded revision the next node is not given: it says where the revision came from, not what it holds.
REVISION_HELD_KEYS = ("appspec", "bundle_env", "host_bundle_path")


def bundle_plan(revision: Optional[dict[str, Any]], deployment_root: str, cache_dir: str,
                fetched_path: Optional[str], pull: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The phase's revision, AppSpec, hook environment and bundle: in the host's bundle store by sha256; pushed from
    the controller's copy (the one just fetched, else the cache's) or pulled by the host (``pull``); a rollback
    whose bundle neither the store nor the controller holds takes it from the deployment directory that recorded
    it (``recorded_path``)."""
    revision = revision or dict(NO_REVISION)
    sha256, bundle_type = revision.get("sha256"), revision.get("bundle_type")
    cached = os.path.expanduser(os.path.join(cache_dir, f"{sha256}.{bundle_type}")) if sha256 else None
    controller_path = fetched_path or (cached if cached and os.path.isfile(cached) else None)
    host_path = (os.path.join(bundle_store_dir(deployment_root), f"{sha256}.{bundle_type}") if sha256
                 else revision.get("host_bundle_path"))
    return {"revision": revision, "appspec": revision.get("appspec") or {},
            "bundle_env": revision.get("bundle_env") or {},
            "bundle": {"controller_path": controller_path, "host_path": host_path,
                       "recorded_path": revision.get("host_bundle_path"), "sha256": sha256,
                       "bundle_type": bundle_type, "pull": pull}}


def host_results(names: list[str], registered: dict[str, Any]) -> dict[str, Optional[dict[str, Any]]]:
    """Each host's registered result, or None for a host that registered none."""
    return {name: (dict(registered[name]) if isinstance(registered.get(name), dict) else None) for name in names}


def success_mark(record: dict[str, Any]) -> dict[str, Any]:
    """The mark step's arguments for a deployment that succeeded: the group's last successful deployment, its
    revision (AppSpec and hook environment included) and where each host keeps its bundle, which a rollback from an
    empty ledger (a new AWX job) reads from the hosts."""
    root = DeploymentRoot((record.get("options") or {}).get("deployment_root") or DEFAULT_DEPLOYMENT_ROOT,
                          record["deployment_group_id"])
    revision = record.get("revision") or dict(NO_REVISION)
    return {"deployment_root": root.root, "deployment_group_id": root.deployment_group_id,
            "marker": {"deployment_id": record["deployment_id"], "complete_time": record.get("complete_time"),
                       "revision": {**revision, "appspec": revision.get("appspec") or {},
                                    "bundle_env": revision.get("bundle_env") or {},
                                    "bundle_path": root.bundle_path(record["deployment_id"])}}}


def deployment_and_rollback(outcomes: list[dict[str, Any]]) -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
    """The run's outcomes as the verdict and the stats read them: the deployment's, then its rollback's if any."""
    return outcomes[0], (outcomes[1] if len(outcomes) > 1 else None)


def verdict(outcomes: list[dict[str, Any]]) -> tuple[bool, str]:
    """How the run's deployment ended (``outcomes``: the deployment's record, then its rollback's, each with its
    ``record_path``): whether the run succeeds, and the sentence that says so. A deployment stopped on request (the
    stop playbook's) is what was asked for; its rollback, when it asks for one, must succeed."""
    deployment, rollback = deployment_and_rollback(outcomes)
    # A rollback asked for and not created (the deployment's rollback_info says why) is no success either.
    rollback_ok = rollback["status"] == "Succeeded" if rollback else not deployment.get("rollback_requested")
    ok = deployment["status"] in ("Succeeded", "Ready") or bool(deployment.get("stopped_on_request") and rollback_ok)
    record = f"Record: {deployment.get('record_path')}"
    if deployment["status"] == "Ready":
        return ok, (f"Deployment {deployment['deployment_id']} is Ready: the replacement instances are installed "
                    "and traffic still goes to the original ones. Run the playbook fleetops.codedeploy.continue "
                    f"with the same inputs before {deployment['blue_green']['ready']['until']} to reroute traffic; "
                    f"after that it is Stopped. {record}")
    told = f"Deployment {deployment['deployment_id']} {deployment['status']}"
    if ok:
        rolled_back = f"; rollback {rollback['deployment_id']} {rollback['status']}" if rollback else ""
        return ok, f"{told}{rolled_back}. {record}"
    error = deployment.get("error_information") or {}
    told += f": {error.get('code', '')}: {error.get('message', '')}"
    return ok, f"{told}{rollback_told(deployment, rollback)} {record}"


# The names of what a run gives an AWX workflow's next node (run_stats): that node receives them as extra vars.
RUN_STATS_NAMES = frozenset({"codedeploy_deployment_id", "codedeploy_deployment_status", "codedeploy_error_code",
                             "codedeploy_revision", "codedeploy_rollback_deployment_id"})


def run_stats(plan: dict[str, Any]) -> Optional[dict[str, Any]]:
    """What a run gives an AWX workflow's next node once its plan has nothing after it, as set_stats gives it (for
    the run, not per host): the deployment's ID, status, error code and revision, and its rollback's ID when one
    ran. None while something follows."""
    outcomes = plan.get("outcomes") or []
    if plan.get("start_with") != "idle" or not outcomes:
        return None
    deployment, rollback = deployment_and_rollback(outcomes)
    data = {"codedeploy_deployment_id": deployment["deployment_id"],
            "codedeploy_deployment_status": deployment["status"],
            "codedeploy_error_code": (deployment.get("error_information") or {}).get("code"),
            "codedeploy_revision": {key: value for key, value in (deployment.get("revision") or {}).items()
                                    if key not in REVISION_HELD_KEYS}}
    if rollback:
        data["codedeploy_rollback_deployment_id"] = rollback["deployment_id"]
    # Set, not aggregated: a second step's stats would replace the first's, not add strings together.
    return {"data": data, "per_host": False, "aggregate": False}


def run_failures(plan: dict[str, Any]) -> Optional[dict[str, str]]:
    """Once the run's plan has nothing after it, each instance that failed in the run's deployments with the sentence
    its close fails it with (the recap and an AWX job's host summary count it failed); None while something
    follows."""
    return instance_failures(plan.get("outcomes") or []) if plan.get("start_with") == "idle" else None


def instance_failures(outcomes: list[dict[str, Any]]) -> dict[str, str]:
    """Each instance that failed in the run's deployments (``outcomes``), with what it fails with: each deployment it
    failed in, with its failed events and their diagnostics."""
    told: dict[str, list[str]] = {}
    for outcome in outcomes:
        for entry in outcome.get("instances") or []:
            if entry.get("status") != "Failed":
                continue
            events = "".join(f", {event['lifecycle_event_name']}: {diagnostics_message(event)}"
                             for event in entry.get("lifecycle_events") or [] if event.get("status") == "Failed")
            told.setdefault(entry["instance_id"], []).append(f"deployment {outcome['deployment_id']}{events}.")
    # Shown on the operator's screen: what came from hosts and bundles (a script's path) as escapes, as the report
    # callback shows it.
    return {instance: terminal_text(f"{instance} failed: {' '.join(sentences)}")
            for instance, sentences in told.items()}


def diagnostics_message(event: dict[str, Any]) -> str:
    """A lifecycle event's diagnostics message, or nothing."""
    return (event.get("diagnostics") or {}).get("message") or ""


def rollback_told(deployment: dict[str, Any], rollback: Optional[dict[str, Any]]) -> str:
    """How the rollback of a deployment that failed went: its status (why, when it failed too), or why it could not
    be created (the deployment's rollback_info, as the finish step recorded it)."""
    if rollback is None:
        why_none = (deployment.get("rollback_info") or {}).get("rollback_message")
        return f" {why_none}" if deployment.get("rollback_requested") and why_none else ""
    error = rollback.get("error_information") or {}
    why = (f": {error.get('code', '')}: {(error.get('message') or '').rstrip('.')}"
           if rollback["status"] == "Failed" and error else "")
    return f" Rollback {rollback['deployment_id']} {rollback['status']}{why}."


def stop_told(stopped: dict[str, Any], wait_timeout: float) -> str:
    """What the stop step did, in a sentence: what check mode would stop, a stop asked for that the running
    deployment's controller had not carried out after ``wait_timeout`` seconds, or the deployment stopped."""
    deployment_id, outcome = stopped.get("deployment_id"), stopped["outcome"]
    if outcome == "check mode":
        told = (f"Check mode: deployment {deployment_id} would be stopped." if deployment_id
                else "Check mode: the group has no active deployment to stop.")
    elif outcome == "requested":
        told = (f"Deployment {deployment_id} was asked to stop; its controller had not stopped it after "
                f"{wait_timeout:g} s (it stops at its next wave gate).")
    else:
        status = (stopped.get("record") or {}).get("status") or "stopped"
        closed_here = outcome == "stopped"
        told = f"Deployment {deployment_id} is {status}" + (
            " (closed here: it was waiting in Ready or its controller was gone)." if closed_here else ".")
    if stopped.get("earlier_request"):
        earlier = stop_request_fields(stopped["earlier_request"])
        rollback = "with its rollback" if earlier.get("rollback") else "without a rollback"
        told += (f" It had been asked to stop already ({earlier['by']}, at {earlier['requested_at']}, {rollback}): "
                 "that request stands.")
    return f"{told} Record: {stopped['record_path']}" if stopped.get("record_path") else told
