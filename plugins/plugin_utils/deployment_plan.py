# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan the deployment play runs (``codedeploy_plan``), as the controller's steps make it (controller only):
the create step from the deployment's inputs, for its first phase; the resume step, for a continued blue/green
deployment; the finish step, for what follows a phase (the next blue/green stage, the rollback it created, or
nothing); the stop step, for the stop playbook's report of the deployment it stopped.

The plan holds what the play's tasks read: the inputs, the deployment and its group's IDs, the hosts of the play
(the group's and the replacement ones), the phase's instances and which of them to survey, its lifecycle events,
the bundle fetched and where the hosts pull it from, the play's title, what it runs next (``start_with``: phase or
idle), and the outcomes so far (each deployment of the run that ended, for the report and the verdict).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import CREATOR_ROLLBACK

# The fetched revision's own facts that the deployment records with its source.
FETCHED_FACTS = ("sha256", "bundle_type", "bundle_env", "appspec")


def deployment_parameters(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The deployment the inputs ask for: its group, its configuration, and the options its record keeps."""
    return {
        "application_name": inputs["codedeploy_application_name"],
        "deployment_group_name": inputs["codedeploy_deployment_group_name"],
        "deployment_group_id": inputs.get("codedeploy_deployment_group_id"),
        "deployment_config_name": inputs.get("codedeploy_deployment_config_name"),
        "minimum_healthy_hosts": inputs.get("codedeploy_minimum_healthy_hosts"),
        "lease_seconds": inputs.get("codedeploy_lock_lease_seconds"),
        "options": {
            "auto_rollback": inputs.get("codedeploy_auto_rollback"),
            "alarm_configuration": inputs.get("codedeploy_alarm_configuration"),
            "trigger_configurations": inputs.get("codedeploy_trigger_configurations"),
            "zonal_config": inputs.get("codedeploy_zonal_config"),
            "aws": inputs.get("codedeploy_aws"),
            "load_balancer_info": inputs.get("codedeploy_load_balancer_info"),
            "ignore_application_stop_failures": inputs.get("codedeploy_ignore_application_stop_failures"),
            "file_exists_behavior": inputs.get("codedeploy_file_exists_behavior"),
            "update_outdated_instances_only": inputs.get("codedeploy_update_outdated_instances_only"),
            "strict": inputs.get("codedeploy_strict"),
            "deployment_root": inputs.get("codedeploy_deployment_root"),
            "deployment_type": (inputs.get("codedeploy_deployment_style") or {}).get("deployment_type")
            or "IN_PLACE",
            "green_group": inputs.get("codedeploy_green_group"),
            "blue_green": inputs.get("codedeploy_blue_green_deployment_configuration"),
            "auto_scaling_groups": inputs.get("codedeploy_auto_scaling_groups"),
            "green_fleet_provisioning_timeout": inputs.get("codedeploy_green_fleet_provisioning_timeout"),
        },
    }


def fetched_problem(inputs: Mapping[str, Any], fetched: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why the revision fetched cannot be deployed, or None: it has no AppSpec."""
    if fetched is not None and fetched.get("appspec") is None:
        return (f"The revision has no {inputs.get('codedeploy_appspec_filename') or 'appspec.yml'} (nor "
                "appspec.yaml) at its root or in a single top-level folder: add one, or set "
                "codedeploy_appspec_filename.")
    return None


def revision_fetched(fetched: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    """The revision the deployment records: its source as fetched (credentials hidden) and what the fetch found in
    it; None for a rollback, whose revision is the group's last successful one."""
    if fetched is None:
        return None
    return {**fetched["revision"], **{fact: fetched.get(fact) for fact in FETCHED_FACTS}}


def pull_source(inputs: Mapping[str, Any], fetched: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    """Where the hosts pull the bundle from (codedeploy_bundle_transport pull): the very object validated (its S3
    version); None when the controller pushes it."""
    if fetched is None or inputs.get("codedeploy_bundle_transport") != "pull":
        return None
    revision = fetched["revision"]
    if revision.get("source") == "url":
        return {"url": revision["url"]}
    return {"bucket": revision["bucket"], "key": revision["key"], "version_id": fetched.get("version_id"),
            "aws": inputs.get("codedeploy_aws"), "endpoint_url": inputs.get("codedeploy_bundle_pull_endpoint_url")
            or None}


def first_phase_plan(inputs: Mapping[str, Any], fetched: Optional[Mapping[str, Any]], record: Mapping[str, Any],
                     phase: Mapping[str, Any], group_hosts: list[str], green_hosts: list[str],
                     outcomes: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The plan of the created deployment's first phase (``phase``: its ``instances``, none for all the group's
    hosts, and its lifecycle ``events``): a blue/green deployment's first stage, the whole deployment in place.
    ``green_hosts`` are the replacement instances, copied ones included; ``outcomes`` the run's deployments that
    ended before this one (the one a rollback undoes)."""
    targets = list(group_hosts if phase.get("instances") is None else phase["instances"])
    verb = "Roll back" if record["creator"] == CREATOR_ROLLBACK else "Deploy to"
    return {
        "deployment_id": record["deployment_id"],
        "deployment_group_id": record["deployment_group_id"],
        "creator": record["creator"],
        "deployment_type": record["deployment_style"]["deployment_type"],
        "events": list(phase["events"]),
        # A rollback keeps no revision as it was given: the given one may hold credentials.
        "inputs": {**inputs, "codedeploy_revision": fetched["revision"] if fetched else {}},
        "fetched_path": fetched["path"] if fetched else None,
        "pull_source": pull_source(inputs, fetched),
        "group_hosts": list(group_hosts),
        "green_hosts": list(dict.fromkeys(green_hosts)),
        "targets": targets,
        "survey": targets,
        "record": dict(record),
        "title": (f"{verb} {inputs['codedeploy_application_name']}/{inputs['codedeploy_deployment_group_name']}: "
                  f"{record['deployment_id']}"),
        "start_with": "phase",
        "outcomes": [dict(outcome) for outcome in outcomes],
    }


def stop_plan(inputs: Mapping[str, Any], outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The plan of the stop playbook's deployment play: nothing to run (the stopped deployment's own controller, or a
    rollback the playbook creates, runs what follows), the deployment stopped here, if any, its outcome. The
    revision given, which may hold credentials, is not kept."""
    return {"start_with": "idle", "inputs": {**inputs, "codedeploy_revision": {}},
            "outcomes": [dict(outcome) for outcome in outcomes],
            "title": f"Stop {inputs['codedeploy_application_name']}/{inputs['codedeploy_deployment_group_name']}"}


def resumed_plan(inputs: Mapping[str, Any], record: Mapping[str, Any], stage: Optional[Mapping[str, Any]],
                 stopped: bool, record_path: Optional[str] = None) -> dict[str, Any]:
    """The plan of a blue/green deployment continued from Ready: its next ``stage`` (traffic rerouted, then the
    original instances blocked) on the fleets its record names, nothing to survey; nothing to run (``start_with``
    idle) when its wait was over and it was Stopped instead, its record (at ``record_path``) the outcome."""
    fleets = record.get("blue_green") or {}
    phase = {"instances": list((stage or {}).get("instances") or []), "events": list((stage or {}).get("events") or [])}
    plan = first_phase_plan(inputs, None, record, phase, list(fleets.get("blue") or []),
                            list(fleets.get("green") or []))
    return {**plan, "inputs": {**inputs, "codedeploy_revision": record.get("revision") or {}}, "survey": [],
            "start_with": "idle" if stopped else "phase",
            "outcomes": [deployment_outcome(record, record_path)] if stopped else [],
            "title": (f"Continue {inputs['codedeploy_application_name']}/{inputs['codedeploy_deployment_group_name']}"
                      f": {record['deployment_id']}")}


def deployment_outcome(record: Mapping[str, Any], record_path: Optional[str],
                       rollback_requested: bool = False) -> dict[str, Any]:
    """A deployment of the run that ended, as the report and the verdict read it: its record, where the record is,
    and whether a rollback follows."""
    return {**record, "rollback_requested": rollback_requested, "record_path": record_path}


def next_stage_plan(plan: Mapping[str, Any], stage: Mapping[str, Any]) -> dict[str, Any]:
    """A blue/green deployment's next ``stage`` (deployment_record's stage plan: its ``instances`` and ``events``),
    run by the same play: nothing to survey (the first stage did)."""
    return {**plan, "events": list(stage["events"]), "targets": list(stage["instances"]), "survey": [],
            "start_with": "phase"}


def ended_plan(plan: Mapping[str, Any], outcome: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Nothing follows the phase: the run goes on to its report, ``outcome`` (none in check mode) added to those so
    far."""
    outcomes = list(plan.get("outcomes") or []) + ([dict(outcome)] if outcome else [])
    return {**plan, "start_with": "idle", "outcomes": outcomes}
