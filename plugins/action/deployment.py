# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of a deployment: create it, start it, record each wave and open the next, finish it — in the
ledger; close each instance (the group's last successful deployment marked on those that succeeded, those that
failed counted failed); say how the run ended.

Every step but ``mark`` runs in the controller process without connecting to any host, so a wave costs no extra
round trip; ``mark`` writes one small file through the host's connection with a single command (no module run),
and connects to no host when it only counts an instance failed.
The logic is in plugin_utils (health, deployment_record, ledger: controller only); this plugin only reads its
arguments, checked first against the step's own specification (plugin_utils/deployment_steps.py), and the task
variables.
"""
from __future__ import annotations

import datetime
import json
import os
import time
from typing import Optional

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
    AWS_ERRORS, aws_client_from_options, describe_aws_error)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import (
    FAILED, IN_PLACE, READY, STOPPED)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DEFAULT_DEPLOYMENT_ROOT, DeploymentRoot, DeploymentRootError, replace_file_command, successful_deployment_file,
    utc_timestamp, validate_deployment_group_id, validate_identifiers)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError
from ansible_collections.fleetops.codedeploy.plugins.module_utils.traffic import (
    TrafficError, check_load_balancer_info, load_balancer_target, verify_load_balancer)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils import deployment_record as records
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.alarms import (
    AlarmConfigError, AlarmPoll, poll_alarms, validate_alarm_configuration)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.asg_copy import (
    AsgCopyError, GreenFleet, copy_auto_scaling_group, copy_name, copy_refusal, plan_copy)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_flow import (
    bundle_plan, host_results, run_failures, run_stats, stop_told, success_mark, verdict)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_ids import (
    deployment_group_id, new_deployment_id)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_inputs import hosts_in_limit
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_plan import (
    deployment_outcome, deployment_parameters, ended_plan, fetched_problem, first_phase_plan, next_stage_plan,
    resumed_plan, revision_fetched, stop_plan)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_steps import (
    VALID_ARGS, StepArgumentError, validate_step_args)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import (
    DeploymentConfigError, StartRefusal, instance_health, order_instances, refuse_start, resolve_minimum_healthy_hosts,
    resolve_zonal_config)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.lease_keeper import keep_lease
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger import (
    ACTIVE_STATUSES, HELD, Ledger, controller_identity, describe_controller, lease_seconds_for, now_utc, open_ledger,
    is_active, parse_timestamp, ready_wait_over, stop_refusal, takeover_refusal)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.reports import write_reports
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.triggers import (
    FINAL_EVENTS, INSTANCE_FINAL_EVENTS, TriggerConfigError, notify, validate_trigger_configurations)

# The keys of codedeploy_revision (a revision's source); a recorded revision adds sha256, AppSpec and more.
REVISION_SOURCE_KEYS = ("source", "bucket", "key", "bundle_type", "version", "etag", "repository", "commit_id", "path")
# How many waves the play runs from one include (roles/deploy/tasks/waves.yml): ten keep its nesting of includes
# shallow on hundreds of waves; the phase's first include runs two, so that a deployment that stops in its first wave
# (a bad revision fails on the first host) idles through one more wave at most, not nine.
FIRST_WAVES_PER_INCLUDE = 2
WAVES_PER_INCLUDE = 10
# A stop request is seen at the running deployment's next wave gate, and ends a bake time or termination wait
# within this many seconds; the stop step looks this often whether it was.
STOP_POLL_SECONDS = 2
# What a step raises when its inputs or the world refuse it: a message, not a traceback.
STEP_ERRORS = (DeploymentConfigError, AlarmConfigError, DeploymentRootError, TriggerConfigError, TrafficError,
               OperatorError)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    # What any step takes; each step's own arguments are checked against its specification (deployment_steps).
    _VALID_ARGS = VALID_ARGS

    def run(self, tmp=None, task_vars=None):
        step = self._task.args.get("step")
        try:
            # Before anything runs, even in check mode: an argument at fault is a message naming the step and it.
            args = validate_step_args(step, self._task.args)
        except StepArgumentError as error:
            raise AnsibleActionFail(error.message)
        result = super().run(tmp, task_vars)
        self._hostvars = (task_vars or {}).get("hostvars", {})
        self._groups, self._limit = (task_vars or {}).get("groups", {}), (task_vars or {}).get("ansible_limit")
        # What the step warns of: triggers not delivered, reports not written, a rollback's failure not recorded.
        self._warnings: list = []
        ledger = None
        # A step that fails returns its message with the warnings it gave before (a rollback's failure not recorded,
        # a lock not given back), which a raised error would lose.
        try:
            # mark writes on its host only, conclude reads its arguments: neither opens the ledger (an S3 one would
            # cost a client per host).
            ledger = None if step in ("mark", "conclude") else open_ledger(ledger_location(args), args.get("aws"))
            result.update(getattr(self, f"_{step}")(ledger, args))
            stats, failures = run_stats(result), run_failures(result)
            if stats:  # nothing follows: the run's outcome, for an AWX workflow's next node
                result["ansible_stats"] = stats
            if failures is not None:  # nothing follows: the instances the run fails as it closes them
                result["failed_instances"] = failures
        except STEP_ERRORS as error:
            result.update(failed=True, msg=step_error_message(error))
        except AnsibleActionFail as error:
            result.update(failed=True, msg=error.message)
        warnings = (list(ledger.warnings) if ledger else []) + self._warnings
        if warnings:
            result["warnings"] = list(result.get("warnings") or []) + warnings
        return result

    def _notify(self, record: dict, event: str, instance_ids=()) -> None:
        """The record's triggers for ``event``, at the moment it happens (none in check mode); a failed delivery is
        a warning, in the result and in the record's messages."""
        if not self._task.check_mode:
            self._warnings += notify(record, event, instance_ids)

    # ----- create ------------------------------------------------------------------------------------------
    def _create(self, ledger: Ledger, args: dict) -> dict:
        """A new deployment of what the inputs ask for: refused at once (NO_INSTANCES, HEALTH_CONSTRAINTS_INVALID),
        the task failing with one message, or Created and locked; with the plan of its first phase, whole (see
        deployment_plan)."""
        rolled_back_id = args.get("rollback_of")
        rolled_back = ledger.find(rolled_back_id) if rolled_back_id else None
        if rolled_back_id:  # before anything, so that nothing is recorded on a deployment it does not name rightly
            its_rollback_id = rollback_of(rolled_back)
            its_rollback = ledger.find(its_rollback_id) if its_rollback_id else None
            refusal = rollback_of_refusal(rolled_back, rolled_back_id,
                                          group_of(deployment_parameters(args["inputs"]))[1], its_rollback)
            if refusal:
                raise AnsibleActionFail(refusal)
        try:
            created = self._new_deployment(ledger, args, rolled_back)
        except (AnsibleActionFail, *STEP_ERRORS) as error:
            if rolled_back is not None and not self._task.check_mode:
                # The rollback playbook's: recorded as the finish and stop steps record theirs.
                self._record_no_rollback(ledger, rolled_back, error)
                write_reports(ledger, rolled_back, self._warnings)
            raise
        if created.get("refused"):
            return {"failed": True, "changed": created["changed"], "msg": created["msg"]}
        return created

    def _new_deployment(self, ledger: Ledger, args: dict, found: Optional[dict] = None) -> dict:
        """The create step's deployment (``args``: its arguments; ``found``: the record of the deployment a rollback
        undoes, as the create step found it, when the step ending that deployment does not hold it as
        ``rolled_back``), or its refusal: ``refused``, with its record. The group's lock is taken first (checked, in
        check mode), before anything is made for the deployment (a copied Auto Scaling group), and given back when
        it cannot be created."""
        inputs, fetched = args["inputs"], args.get("fetched")
        problem = fetched_problem(inputs, fetched)
        if problem:
            raise AnsibleActionFail(problem)
        parameters = deployment_parameters(inputs)
        if args.get("creator") == records.CREATOR_AUTOSCALING:
            # A catch-up updates the instances that lack the revision in place, behind the load balancer if the
            # group has one, as the service's deployments to instances Auto Scaling launches do: a blue/green
            # group's inputs would give a replacement fleet (a copy of its Auto Scaling group) for one instance.
            parameters["options"]["deployment_type"] = IN_PLACE
        group, group_id = group_of(parameters)
        validate_deployment_group_id(group_id)
        deployment_id = new_deployment_id()
        revision = revision_fetched(fetched)
        if revision is None:
            # A rollback: the group's last successful revision (before the deployment it undoes, which may have
            # succeeded itself), as the ledger knows it (else the hosts, at start).
            revision = (ledger.last_successful(group_id, before=args.get("rollback_of")) or {}).get("revision")
        else:
            # Where this revision's bundle stays on each host, for a later rollback to it.
            revision = {**revision, "host_bundle_path": DeploymentRoot(
                parameters["options"].get("deployment_root") or DEFAULT_DEPLOYMENT_ROOT, group_id).bundle_path(
                    deployment_id)}
        settings = self._checked_settings(args, parameters)
        lease = lease_seconds_for((revision or {}).get("appspec"), parameters["lease_seconds"])  # checked in check mode
        rolled_back = args.get("rolled_back") or found  # held by the step that ended it, or found by the create step
        if self._task.check_mode:
            ledger.check_free(group_id, group)
            made = self._new_record(args, parameters, settings, group_id, deployment_id, revision, rolled_back)
            if made["refusal"]:
                return self._refused(ledger, made["record"], made["refusal"])
        else:
            rolled_back_id = args.get("rollback_of")
            # A rollback that the step ending its deployment creates may take over that deployment's lock, should
            # its release have failed.
            after = rolled_back_id if args.get("rolled_back") is not None else None
            warning = ledger.acquire(group_id, group, deployment_id, controller_identity(os.getppid()), lease, after)
            if warning:  # a deployment closed on the way: said even when this one is not created
                self._warnings.append(warning)
            with ledger.released_on_failure(group_id, deployment_id):
                keep_lease(ledger_location(args), args.get("aws"), group_id, deployment_id, os.getppid())
                made = self._new_record(args, parameters, settings, group_id, deployment_id, revision, rolled_back)
                record = made["record"]
                if rolled_back_id:
                    records.rolls_back(record, rolled_back_id)
                refused = self._refused(ledger, record, made["refusal"]) if made["refusal"] else None
                if not refused:
                    self._notify(record, "DeploymentStart")
                    ledger.save(record)
            # Once the rollback's record is saved: a link to a rollback that does not exist is never written.
            if rolled_back_id:
                link_rollback(ledger, deployment_id, rolled_back_id, self._warnings, args.get("rolled_back"))
            if refused:
                return refused
        copied = made["copied_hosts"]
        plan = first_phase_plan(inputs, fetched, made["record"], made["phase"], list(args.get("targets") or []),
                                list(args.get("green_targets") or []) + [host["name"] for host in copied],
                                args.get("outcomes") or [])
        # The plan, and the copied instances the role adds to the inventory.
        return {**plan, "copied_hosts": copied, "changed": not self._task.check_mode,
                **({"msg": "check mode"} if self._task.check_mode else {})}

    def _checked_settings(self, args: dict, parameters: dict) -> dict:
        """What the inputs resolve to, each checked before the group's lock is taken (an input at fault changes
        nothing in the ledger): the configuration and its minimum, the zonal configuration, the alarm and trigger
        configurations (normalised into the options), the load balancer (checked in AWS), the blue/green options
        (``copies_fleet``: the replacement fleet is a copy of the Auto Scaling group, made once the lock is held)."""
        options = parameters["options"]
        config_name, minimum = resolve_minimum_healthy_hosts(parameters["deployment_config_name"],
                                                             parameters["minimum_healthy_hosts"])
        zonal = resolve_zonal_config(options.get("zonal_config"))
        options["alarm_configuration"] = validate_alarm_configuration(options.get("alarm_configuration"))
        options["trigger_configurations"] = validate_trigger_configurations(options.get("trigger_configurations"))
        traffic_control = check_load_balancer_info(options.get("load_balancer_info")) is not None
        if traffic_control:
            self._verify_load_balancer(options, [*(args.get("targets") or []), *(args.get("green_targets") or [])])
        copies_fleet = False
        if options.get("deployment_type") == "BLUE_GREEN":
            if not traffic_control:
                raise AnsibleActionFail("A blue/green deployment moves traffic: give codedeploy_load_balancer_info "
                                        "(ELBv2 target_groups or an haproxy backend)")
            unsupported = records.unsupported_blue_green_options(options.get("blue_green") or {})
            if unsupported:
                raise AnsibleActionFail(unsupported)
            copies_fleet = (args.get("creator") != records.CREATOR_ROLLBACK
                            and records.copies_auto_scaling_group(options))
            refusal = copy_refusal(options.get("auto_scaling_groups")) if copies_fleet else None
            if refusal:
                raise AnsibleActionFail(refusal)
        return {"config_name": config_name, "minimum": minimum, "zonal": zonal, "traffic_control": traffic_control,
                "copies_fleet": copies_fleet}

    def _new_record(self, args: dict, parameters: dict, settings: dict, group_id: str, deployment_id: str,
                    revision: Optional[dict], rolled_back: Optional[dict]) -> dict:
        """The new deployment's record (in place, or blue/green with its fleets: a copied Auto Scaling group made
        here), the refusal it meets at once if any, its first ``phase`` and the ``copied_hosts`` to add to the
        inventory. ``settings``: what ``_checked_settings`` resolved; ``rolled_back``: the record of the deployment
        a rollback undoes."""
        options = parameters["options"]
        application, group = parameters["application_name"], parameters["deployment_group_name"]
        targets = list(args.get("targets") or [])
        config_name, minimum, zonal = settings["config_name"], settings["minimum"], settings["zonal"]
        traffic_control = settings["traffic_control"]
        creator = args.get("creator") or "user"
        green_hosts: list = []  # replacement instances to add to the inventory (COPY_AUTO_SCALING_GROUP)
        if options.get("deployment_type") == "BLUE_GREEN":
            green = list(args.get("green_targets") or [])
            copying = settings["copies_fleet"]
            green_fleet = None
            if creator == records.CREATOR_ROLLBACK:
                blue, green = rollback_fleets(rolled_back, targets, green)
                green_hosts = recorded_green_hosts(rolled_back)
            else:
                blue = targets
                if copying:
                    green_fleet = self._copy_green_fleet(group, deployment_id, options)
                    green_hosts = green_fleet.hosts if green_fleet else []
                    green = [host["name"] for host in green_hosts]
            record = records.new_blue_green_record(
                deployment_id=deployment_id, application_name=application, deployment_group_name=group,
                deployment_group_id=group_id, creator=creator, revision=revision, deployment_config_name=config_name,
                minimum=minimum, blue=blue, green=green, options=options)
            if green_fleet:
                record["blue_green"].update(green_auto_scaling_group=green_fleet.auto_scaling_group,
                                            green_hosts=green_fleet.hosts)
            first = records.current_stage(record)
            # In check mode nothing is copied: there is no replacement instance to count yet.
            refusal = None if copying and self._task.check_mode else (
                records.refuse_blue_green(options.get("green_group") or "", blue, green)
                or refuse_start(len(first["instances"]), records.minimum_count(first), config_name))
        else:
            record = records.new_record(
                deployment_id=deployment_id, application_name=application, deployment_group_name=group,
                deployment_group_id=group_id, creator=creator, revision=revision,
                deployment_config_name=config_name, minimum=minimum, instances=targets,
                events=records.in_place_events(traffic_control),
                options=options, zonal=zonal, traffic_control=traffic_control)
            refusal = refuse_start(len(targets), records.minimum_count(record), config_name)
            if refusal and refusal.code != "NO_INSTANCES" and options.get("update_outdated_instances_only"):
                refusal = None  # N and M count only the outdated instances: the start step decides, after the survey
        phase = stage_plan(record) or {"instances": None, "events": records.in_place_events(traffic_control)}
        return {"record": record, "refusal": refusal, "phase": phase, "copied_hosts": green_hosts}

    def _refused(self, ledger: Ledger, record: dict, refusal: StartRefusal) -> dict:
        """A deployment refused at once: Failed in its record (stored, its group released, unless in check mode),
        and one message that says so, its record's path included."""
        refuse_deployment(record, refusal)
        stored = "nothing was stored (check mode)"
        record_path = None
        if not self._task.check_mode:
            self._notify(record, "DeploymentFailure")
            ledger.save(record)
            ledger.release(record["deployment_group_id"], record["deployment_id"])
            record_path = ledger.record_location(record["deployment_id"])
            stored = f"Record: {record_path}"
        return {"refused": True, "changed": not self._task.check_mode, "record": record, "record_path": record_path,
                "msg": f"Deployment {record['deployment_id']} Failed: {refusal.code}: {refusal.message} {stored}"}

    def _copy_green_fleet(self, group: str, deployment_id: str, options: dict) -> Optional[GreenFleet]:
        """COPY_AUTO_SCALING_GROUP: the replacement fleet, a copy of the group's one Auto Scaling group, made once the
        deployment holds the group's lock (None in check mode, once the original is checked)."""
        original = options["auto_scaling_groups"][0]
        name = copy_name(group, deployment_id)
        try:
            autoscaling = aws_client_from_options("autoscaling", options.get("aws"))
            if self._task.check_mode:
                plan_copy(autoscaling, original, name)
                return None
            return copy_auto_scaling_group(autoscaling, aws_client_from_options("ec2", options.get("aws")), original,
                                           name, float(options.get("green_fleet_provisioning_timeout") or 600))
        except AsgCopyError as error:
            raise AnsibleActionFail(error.message)
        except AWS_ERRORS as error:
            raise AnsibleActionFail(describe_aws_error(error, f"Auto Scaling (copying {original!r} to {name!r})"))

    def _verify_load_balancer(self, options: dict, instances: list) -> None:
        info = options["load_balancer_info"]
        targets = [load_balancer_target(info, self._hostvars.get(name) or {}, name) for name in instances]
        try:
            verify_load_balancer(info, targets, options.get("aws"))
        except AWS_ERRORS as error:
            raise AnsibleActionFail(describe_aws_error(error, "ELBv2 (checking the load balancer)"))

    # ----- start -------------------------------------------------------------------------------------------
    def _start(self, ledger: Ledger, args: dict) -> dict:
        """Leave out the instances already up to date (update_outdated_instances_only), order the rest by health
        (from the survey of the hosts: ``survey``, host -> what it reported), group them by zone (zonal
        configuration) and size the waves, then open the first (see ``_open_next_wave``); say which waves come first
        (``upcoming``), which bundle the phase deploys and where each host finds it."""
        record = args.get("record") if self._task.check_mode else ledger.load(args["deployment_id"])
        survey = dict(args.get("survey") or {})
        if record["revision"] is None and not records.is_blue_green(record):
            record["revision"] = revision_from_hosts(
                survey, (record.get("rollback_info") or {}).get("rollback_triggering_deployment_id"))
            if record["revision"] is None:
                return self._abandon(ledger, record, "REVISION_MISSING", (
                    f"There is no earlier successful deployment of deployment group "
                    f"'{record['deployment_group_name']}' to roll back to: neither the controller's ledger "
                    f"({ledger.location}) nor any of its instances records one."))
        group_revision = (ledger.last_successful(record["deployment_group_id"]) or {}).get("revision") or {}
        last_deployments = {name: survey_health(info) for name, info in survey.items()}
        stage = records.current_stage(record)
        if record["options"].get("update_outdated_instances_only") and not records.is_blue_green(record):
            records.exclude_up_to_date(record, records.up_to_date_instances(record, last_deployments))
        targets = [entry["instance_id"] for entry in stage["instances"]]
        health = {name: instance_health(*last_deployments.get(name, (None, None)), group_revision.get("sha256"))
                  for name in targets}
        order, batches, zones, refusal = records.plan_waves(
            stage, order_instances(targets, health, args.get("instance_order")), args.get("zones") or {})
        if refusal:
            return self._abandon(ledger, record, refusal.code, refusal.message)
        records.start(stage, order, batches, zones)
        compose(record)
        plan = bundle_plan(record["revision"], args.get("deployment_root") or DEFAULT_DEPLOYMENT_ROOT,
                           args.get("revision_cache_dir") or "", args.get("fetched_path"), args.get("pull"))
        started = {"changed": not self._task.check_mode, "order": order, "wave_size": stage["wave_size"],
                   "batches": batches, "zones": zones, "skipped_up_to_date": record["skipped_up_to_date"],
                   "health": health, "record": record, "revision": plan["revision"], "phase": plan}
        if self._task.check_mode:
            return {**started, "start": [], "upcoming": []}
        lock = ledger.renew(record["deployment_group_id"], record["deployment_id"])
        opened = self._open_next_wave(ledger, record, lock)
        compose(record)
        ledger.save(record)
        return {**started, **opened, "upcoming": waves_ahead(stage, opened, FIRST_WAVES_PER_INCLUDE)}

    def _abandon(self, ledger: Ledger, record: dict, code: str, message: str) -> dict:
        refuse_deployment(record, StartRefusal(code, message))
        self._notify(record, "DeploymentFailure")
        if not self._task.check_mode:
            ledger.save(record)
            ledger.release(record["deployment_group_id"], record["deployment_id"])
        return {"failed": True, "refused": True, "changed": True, "msg": f"{code}: {message}", "record": record,
                "record_path": ledger.record_location(record["deployment_id"]), "start": [], "upcoming": []}

    # ----- waves: each opened by the step before it (start opens the first, each record the next) ----------
    def _open_next_wave(self, ledger: Ledger, record: dict, lock: dict) -> dict:
        """Open the next wave (deployment_record.open_next_wave): before it, the zone's bake time (or blue/green
        termination wait), which a stop request ends early, then the stop request, else the alarm poll. The caller
        saves the record."""
        warnings: list = []

        def wait_then_poll(batch: list, final_pass: bool) -> tuple:
            current = lock
            waited = (records.monitor_wait(records.current_stage(record), batch, final_pass)
                      or records.termination_wait(record, batch))
            if waited:
                waited["start_time"] = utc_timestamp()
                current = ledger.wait_unless_stopped(record["deployment_group_id"], record["deployment_id"],
                                                     waited["seconds"], STOP_POLL_SECONDS)
                waited["end_time"] = utc_timestamp()
            if current.get("stop_request"):
                return waited, {"manual_stop": current["stop_request"]}
            alarm = AlarmPoll()
            if records.polls_alarms(record):
                alarm = poll_alarms(record["options"].get("alarm_configuration"), record["options"].get("aws"))
            warnings.extend(alarm.warnings)
            return waited, alarm.stop_reason()

        opened = records.open_next_wave(records.current_stage(record), wait_then_poll)
        if opened["start"]:
            self._notify(record, "InstanceStart", opened["start"])
        return {**opened, "warnings": warnings}

    # ----- record ------------------------------------------------------------------------------------------
    def _record(self, ledger: Ledger, args: dict) -> dict:
        """Fold the open wave's host results (``results``: host -> its lifecycle task's result) into the record and
        apply the health rules, then open the next wave (see ``_open_next_wave``): ``start`` is who starts in it,
        ``upcoming`` the waves the play runs from it on, none when the deployment stops or has run them all."""
        record = ledger.load(args["deployment_id"])
        lock = ledger.renew(record["deployment_group_id"], record["deployment_id"])
        stage = records.current_stage(record)
        summary = None
        if stage["waves"] and not stage["waves"][-1]["end_time"]:
            summary = records.record_wave(stage, host_results(list(args.get("hosts") or []),
                                                              dict(args.get("results") or {})))
            if records.is_blue_green(record):
                summary["stage"] = stage["name"]
            compose(record)
            started = stage["waves"][-1]["instances"]
            for status, event in INSTANCE_FINAL_EVENTS.items():
                self._notify(record, event, [name for name in started
                                             if records.instance(stage, name)["status"] == status])
            # Saved before the next wave's bake time, which may be long.
            ledger.save(record)
        waves_before = len(stage["waves"])
        opened = self._open_next_wave(ledger, record, lock)
        opened_any = len(stage["waves"]) > waves_before
        if opened_any:
            compose(record)
            ledger.save(record)
        return {"changed": summary is not None or opened_any, "summary": summary, **opened,
                "upcoming": waves_ahead(stage, opened, WAVES_PER_INCLUDE)}

    # ----- finish ------------------------------------------------------------------------------------------
    def _finish(self, ledger: Ledger, args: dict) -> dict:
        """End the phase of ``plan``: a blue/green deployment's stage, then its next stage or its wait in Ready; or
        the deployment, with its final status, triggers and reports, its lock released, and the rollback it asks
        for created. Returns the plan of what the play runs next (see deployment_plan), with what ended
        (``ended_phase``). A deployment that ended already (refused at start) is only read; in check mode nothing
        was started."""
        plan = args["plan"]
        if self._task.check_mode:
            return {"changed": False, **ended_plan(plan, None),
                    "ended_phase": {"record": None, "succeeded_instances": []}}
        record = ledger.load(plan["deployment_id"])
        ended = {"record": record, "record_path": ledger.record_location(record["deployment_id"]),
                 "rollback_requested": False, "succeeded_instances": []}
        if record["status"] not in ACTIVE_STATUSES:
            return {"changed": False, **ended_plan(plan, deployment_outcome(record, ended["record_path"])),
                    "ended_phase": {**ended, "ended_before": True}}
        options = record["options"]
        stage = records.current_stage(record)
        records.finish(stage, strict=bool(options.get("strict")) or records.stage_is_strict(stage))
        if records.is_blue_green(record):
            following = records.advance_stage(record) if stage["status"] == "Succeeded" else None
            if following is not None and records.waits_in_ready(record):
                records.become_ready(compose(record), datetime.datetime.now(datetime.timezone.utc))
                self._notify(record, "DeploymentReady")
                self._notify(record, "InstanceReady", [entry["instance_id"] for entry in stage["instances"]
                                                       if entry["status"] == "Succeeded"])
                ledger.save(record)
                ledger.hold_ready(record["deployment_group_id"], record["deployment_id"],
                                  record["blue_green"]["ready"]["until"])
                return {"changed": True, **ended_plan(plan, deployment_outcome(record, ended["record_path"])),
                        "ended_phase": {**ended, "ready": record["blue_green"]["ready"]}}
            if following is not None:
                compose(record)
                ledger.save(record)
                return {"changed": True, **next_stage_plan(plan, stage_plan(record)), "ended_phase": ended}
            records.end_blue_green(record)
            if stage["name"] == "terminate":
                self._terminate_ec2(record, stage)
        rollback = rollback_requested(record, options.get("auto_rollback"))
        self._notify(record, FINAL_EVENTS.get(record["status"], ""))
        if rollback:
            self._notify(record, "DeploymentRollback")
        ledger.save(record)
        # The deployment has ended: a lock that cannot be released now is no reason to drop its rollback (which takes
        # the lock over) or its reports.
        ledger.release_or_warn(record["deployment_group_id"], record["deployment_id"],
                               "its rollback takes it over" if rollback else "its lease runs out")
        outcome = deployment_outcome(record, ended["record_path"], rollback)
        following_plan = (self._roll_back(ledger, args, plan, record, outcome) if rollback
                          else ended_plan(plan, outcome))
        succeeded = marked_instances(record) if record["status"] == "Succeeded" else []
        # The reports once the rollback is created: they link to it, or say why there is none.
        ended.update(rollback_requested=rollback, succeeded_instances=succeeded,
                     **write_reports(ledger, record, self._warnings),
                     **({"mark": success_mark(record)} if succeeded else {}))
        return {"changed": True, **following_plan, "ended_phase": ended}

    def _roll_back(self, ledger: Ledger, args: dict, plan: dict, record: dict, outcome: dict) -> dict:
        """The rollback a deployment that ended (``record``, its group released; ``outcome``, as the report reads it)
        asks for: a new deployment (creator codeDeployRollback) of the group's last successful revision, created
        here, and planned for the play to run next (``plan``: the deployment's inputs, ID and hosts). Refused at
        once, or impossible to create, it ends the run: the verdict says why, and the deployment's rollback_info, as
        the service's rollbackMessage does. ``record`` is left linked to the rollback (in the ledger too, unless a
        warning says the link could not be saved), or saying why there is none. Returns the plan of what follows."""
        ended = ended_plan(plan, outcome)
        try:
            created = self._new_deployment(ledger, {
                "ledger": args.get("ledger"), "ledger_dir": args.get("ledger_dir"), "aws": args.get("aws"),
                # A rollback keeps no revision as it was given: the given one may hold credentials.
                "inputs": {**plan["inputs"], "codedeploy_revision": {}}, "fetched": None,
                "creator": records.CREATOR_ROLLBACK, "rollback_of": plan["deployment_id"],
                "targets": plan["group_hosts"], "green_targets": plan["green_hosts"],
                "outcomes": ended["outcomes"], "rolled_back": record})
        except (AnsibleActionFail, *STEP_ERRORS) as error:
            self._record_no_rollback(ledger, record, error)
            return ended_plan(plan, {**outcome, "rollback_info": record["rollback_info"]})
        if created.get("refused"):
            return ended_plan(ended, deployment_outcome(created["record"], created["record_path"]))
        return created

    def _record_no_rollback(self, ledger: Ledger, record: dict, error: Exception) -> None:
        """The rollback ``record`` asked for could not be created: its rollback_info says why, in the ledger (the
        caller writes its reports); when even that fails, a warning (the run's verdict says why all the same)."""
        records.rollback_not_created(record, step_error_message(error))
        save_or_warn(ledger, record, "why it has no rollback", self._warnings)

    def _terminate_ec2(self, record: dict, stage: dict) -> None:
        """TERMINATE on EC2: the original instances (``codedeploy_instance_kind`` ec2) are terminated, once their
        application is stopped; a failure is reported in the record, the deployment having moved traffic already."""
        kinds = {entry["instance_id"]: self._hostvars.get(entry["instance_id"]) or {} for entry in stage["instances"]}
        ids = [host.get("codedeploy_instance_id") for host in kinds.values()
               if host.get("codedeploy_instance_kind") == "ec2" and host.get("codedeploy_instance_id")]
        if not ids:
            return
        try:
            aws_client_from_options("ec2", record["options"].get("aws")).terminate_instances(InstanceIds=ids)
        except AWS_ERRORS as error:
            record["deployment_status_messages"].append(describe_aws_error(error, "EC2 TerminateInstances"))
            return
        record["blue_green"]["terminated_instances"] = ids

    # ----- resume ------------------------------------------------------------------------------------------
    def _resume(self, ledger: Ledger, args: dict) -> dict:
        """ContinueDeployment: the group's blue/green deployment waiting in Ready goes on (reroute, then block), or,
        its wait time over, is Stopped; with the plan of what the deployment play runs (see deployment_plan)."""
        inputs = args["inputs"]
        parameters = deployment_parameters(inputs)
        group, group_id = group_of(parameters)
        holder = ledger.lock_holder(group_id) or {}
        deployment_id = args.get("deployment_id") or holder.get("deployment_id")
        if not deployment_id:
            raise AnsibleActionFail(f"The Deployment Group '{group}' has no deployment waiting in Ready: there is "
                                    "nothing to continue.")
        record = ledger.load(deployment_id)
        # Before its state is read: this group's lock says nothing of another group's deployment.
        refusal = other_group_refusal(record, group_id) or records.continue_refusal(record)
        if refusal:
            raise AnsibleActionFail(refusal)
        resumed = {"changed": True, "record_path": ledger.record_location(deployment_id)}
        until = ((record.get("blue_green") or {}).get("ready") or {}).get("until")
        never_handed_over = holder.get("state") == HELD and holder.get("deployment_id") == deployment_id
        if never_handed_over and until and now_utc() >= parse_timestamp(until):
            # Saved Ready, its lock never handed over (its controller was lost): its wait is over all the same.
            raise AnsibleActionFail(f"Deployment {deployment_id} waited in Ready until {until}, and its controller "
                                    "could not hand its lock over: it can no longer be continued. Run the playbook "
                                    "fleetops.codedeploy.stop to stop it.")
        wait_over = ready_wait_over(holder, now_utc())
        in_run = hosts_in_limit(self._loader, self._groups, self._limit, "all") if self._limit else None
        absent = absent_instances(record, self._hostvars, in_run)
        if absent and not wait_over:
            raise AnsibleActionFail(f"Deployment {deployment_id} waits in Ready on instances this run cannot reach "
                                    f"(not in its inventory, or left out by its limit): {', '.join(absent)}. Run the "
                                    "continue with the inventory of its deployment group and of its replacement "
                                    "instances, and no limit that leaves them out; it still waits in Ready.")
        if self._task.check_mode:  # nothing taken over or saved: what a continue would do, or why it would not
            if wait_over:
                raise AnsibleActionFail(f"Deployment {deployment_id} waited in Ready until {holder.get('ready_until')}:"
                                        " a continue now would stop it (TIMEOUT). Check mode: nothing was changed.")
            refusal = takeover_refusal(holder or None, deployment_id, now_utc(), ledger.location)
            if refusal:
                raise AnsibleActionFail(f"{refusal} Check mode: nothing was changed.")
            return continued(inputs, records.resume(dict(record)), {**resumed, "changed": False, "msg": "check mode"})
        if wait_over:
            warning = ledger.stop_expired_ready(group_id, group)
            record = ledger.load(deployment_id)
            return {**resumed_plan(inputs, record, None, stopped=True, record_path=resumed["record_path"]),
                    **resumed, "stopped": True, "warnings": [warning]}
        ready = ledger.take_over(group_id, group, deployment_id, controller_identity(os.getppid()))
        with ledger.restored_on_failure(group_id, ready):  # still Ready, for a later continue or stop
            keep_lease(ledger_location(args), args.get("aws"), group_id, deployment_id, os.getppid())
            records.resume(record)
            ledger.save(record)
        return continued(inputs, record, resumed)

    # ----- stop --------------------------------------------------------------------------------------------
    def _stop(self, ledger: Ledger, args: dict) -> dict:
        """StopDeployment: the group's running deployment stops at its next wave gate (its controller sees the
        request, and rolls it back when asked); one waiting in Ready, or whose controller is gone, is Stopped here,
        the group released, and the rollback it asks for created here, as the finish step does. Returns what it did
        (``msg``, in a sentence; ``stopped_deployment``) and the plan of what the stop playbook's deployment play
        runs, whole: the rollback, or nothing but the report (see deployment_plan)."""
        inputs = args["inputs"]
        parameters = deployment_parameters(inputs)
        group, group_id = group_of(parameters)
        wait_timeout = float(inputs.get("codedeploy_stop_wait_timeout") or 0)
        controller = controller_identity(os.getppid())
        request = {"by": describe_controller(controller), "requested_at": utc_timestamp(),
                   "rollback": bool(inputs.get("codedeploy_stop_rollback"))}
        if self._task.check_mode:
            lock = ledger.lock(group_id)
            # What the real stop would refuse: a deployment named that is not the group's active one.
            refusal = stop_refusal(lock, group, args.get("deployment_id")) if args.get("deployment_id") else None
            if refusal:
                raise AnsibleActionFail(f"{refusal} Check mode: nothing was changed.")
            held = lock.get("deployment_id") if is_active(lock) else None  # the lock read above, not read again
            checked = {"deployment_id": held, "deployment_group_id": group_id, "outcome": "check mode",
                       "record": None, "record_path": ledger.record_location(held) if held else None,
                       "rollback_requested": False}
            return {"changed": False, **stop_plan(inputs, []), "stopped_deployment": checked,
                    "msg": stop_told(checked, wait_timeout)}
        outcome = ledger.request_stop(group_id, group, args.get("deployment_id"), request, controller)
        deadline = time.monotonic() + wait_timeout
        while outcome["outcome"] == "requested" and time.monotonic() < deadline:
            time.sleep(STOP_POLL_SECONDS)
            closed = ledger.find(outcome["deployment_id"])
            if closed and closed.get("status") not in ACTIVE_STATUSES:
                outcome.update(outcome="stopped by its controller", record=closed)
            elif closed and closed.get("status") == READY:
                # It went Ready before a wave gate saw the request: a deployment waiting in Ready is closed here.
                outcome = ledger.request_stop(group_id, group, outcome["deployment_id"], request, controller)
        record = outcome["record"]
        record_path = ledger.record_location(outcome["deployment_id"])
        stopped = {**outcome, "deployment_group_id": group_id, "rollback_requested": False, "record_path": record_path}
        if outcome["outcome"] != "stopped" or not record:
            return {"changed": True, **stop_plan(inputs, []), "stopped_deployment": stopped,
                    "msg": stop_told(stopped, wait_timeout)}
        # Stopped here: the deployment play's report of it, its rollback when it asks for one, then its reports.
        self._notify(record, "DeploymentStop")
        stopped["rollback_requested"] = rollback_requested(record, (record.get("options") or {}).get("auto_rollback"))
        stopped_outcome = {**deployment_outcome(record, record_path, stopped["rollback_requested"]),
                           "stopped_on_request": True}
        if stopped["rollback_requested"]:
            # The rollback's plan: the deployment it undoes and the group's hosts, which the rollback deploys to.
            following_plan = self._roll_back(ledger, args, {
                **stop_plan(inputs, []), "deployment_id": record["deployment_id"],
                "group_hosts": list(args.get("targets") or []), "green_hosts": list(args.get("green_targets") or [])},
                record, stopped_outcome)
        else:
            save_or_warn(ledger, record, "what its DeploymentStop triggers' delivery left in its messages",
                         self._warnings)
            following_plan = stop_plan(inputs, [stopped_outcome])
        stopped.update(write_reports(ledger, record, self._warnings))
        return {"changed": True, **following_plan, "stopped_deployment": stopped,
                "msg": stop_told(stopped, wait_timeout)}

    # ----- last revision (catch-up) ------------------------------------------------------------------------
    def _last_revision(self, ledger: Ledger, args: dict) -> dict:
        """The revision of the group's last successful deployment, as it was given (its source), for a catch-up
        deployment to the instances that lack it."""
        group = args["deployment_group_name"]
        group_id = args.get("deployment_group_id") or deployment_group_id(args["application_name"], group)
        last = ledger.last_successful(group_id)
        if last is None or not last.get("revision"):
            raise AnsibleActionFail(
                f"The Deployment Group '{group}' has no successful deployment in the ledger ({ledger.location}): "
                "there is no revision to catch up to. Deploy one with fleetops.codedeploy.deploy first.")
        return {"changed": False, "deployment_id": last["deployment_id"],
                "revision": revision_source(last["revision"])}

    # ----- conclude ----------------------------------------------------------------------------------------
    def _conclude(self, _ledger: None, args: dict) -> dict:
        """Say how the run's deployment (and its rollback) ended, failing the run when it did not succeed."""
        succeeded, message = verdict(args["outcomes"])
        # Shown whole, as a debug message is: a Ready deployment's line says what to run next, and when.
        return {"changed": False, "failed": not succeeded, "msg": message, "_ansible_verbose_always": succeeded}

    # ----- mark --------------------------------------------------------------------------------------------
    def _mark(self, _ledger: None, args: dict) -> dict:
        """Close the instance: the group's last successful deployment written on it (``marker``: what a rollback from
        an empty ledger reads), then, when it failed in the run (``failure``), the instance failed with that
        sentence, once, so that the recap counts it failed."""
        result = self._write_marker(args) if args.get("marker") else {"changed": False}
        # The failure is its sentence alone: a result with more would be printed as a raw result.
        return {"changed": result["changed"], "failed": True, "msg": args["failure"]} if args.get("failure") else result

    def _write_marker(self, args: dict) -> dict:
        marker = args["marker"]
        validate_identifiers(marker["deployment_id"], args["deployment_group_id"])
        path = successful_deployment_file(DeploymentRoot(args.get("deployment_root") or DEFAULT_DEPLOYMENT_ROOT,
                                                         args["deployment_group_id"]))
        written = self._low_level_execute_command(
            replace_file_command(path, f".{marker['deployment_id']}"), sudoable=True,
            in_data=json.dumps(marker, indent=2) + "\n")
        if written["rc"] != 0:
            raise AnsibleActionFail(f"Could not write {path}: {written['stderr'].strip() or written['stdout'].strip()}")
        return {"changed": True, "path": path}


def step_error_message(error: Exception) -> str:
    """What a step's error says (``message`` where the error has one)."""
    return getattr(error, "message", None) or str(error)


def ledger_location(args: dict) -> Optional[str]:
    """The ledger the task names: ``ledger``, else its former name ``ledger_dir``, else None (the default one)."""
    return args.get("ledger") or args.get("ledger_dir")


def waves_ahead(stage: dict, opened: dict, count: int) -> list:
    """The ``count`` waves (at most) the play runs next, before it asks again: the one just opened, with who starts in
    it (``start``), then those expected after it, as far as they are known now; none when no wave is open."""
    if not opened["start"]:
        return []
    open_wave = stage["waves"][-1]
    return ([{"hosts": open_wave["instances"] + open_wave["deferred"], "final_pass": open_wave["final_pass"],
              "start": opened["start"]}]
            + [{"hosts": hosts, "final_pass": final_pass}
               for hosts, final_pass in records.upcoming_batches(stage, count - 1)])


def compose(record: dict) -> dict:
    return records.compose_blue_green(record) if records.is_blue_green(record) else record


def refuse_deployment(record: dict, refusal: StartRefusal) -> None:
    """Refused at create or start: every instance Skipped, Failed with the refusal's code."""
    if records.is_blue_green(record):
        records.refuse(records.current_stage(record), refusal)
        records.end_blue_green(record)
    else:
        records.refuse(record, refusal)


def marked_instances(record: dict) -> list:
    """The instances that now run the group's last successful revision: every succeeded one in place, the
    replacement ones of a blue/green deployment, none after a blue/green rollback (the originals keep theirs)."""
    if records.is_blue_green(record) and record["creator"] == records.CREATOR_ROLLBACK:
        return []
    return [entry["instance_id"] for entry in record["instances"] if entry["status"] == "Succeeded"
            and entry.get("instance_type", records.GREEN) == records.GREEN]


def recorded_green_hosts(record: Optional[dict]) -> list:
    """The replacement instances a COPY_AUTO_SCALING_GROUP deployment added to the inventory, as its record keeps
    them: the runs that come back to it (its continue, its rollback) add them again."""
    return list(((record or {}).get("blue_green") or {}).get("green_hosts") or [])


def group_of(parameters: dict) -> tuple[str, str]:
    """The deployment group's name and ID (given, or made from the application's and the group's names)."""
    group = parameters["deployment_group_name"]
    return group, parameters["deployment_group_id"] or deployment_group_id(parameters["application_name"], group)


def rollback_of(record: Optional[dict]) -> Optional[str]:
    """The ID of the rollback that ``record``'s deployment links to, if any."""
    return ((record or {}).get("rollback_info") or {}).get("rollback_deployment_id")


def rollback_of_refusal(rolled_back: Optional[dict], deployment_id: str, group_id: str,
                        its_rollback: Optional[dict] = None) -> Optional[str]:
    """Why ``deployment_id`` (``rolled_back``, its record, None when the ledger has none) cannot be the deployment
    that a rollback of group ``group_id`` undoes, or None. ``its_rollback``: the record of the rollback it links to
    already; one that failed or was stopped may be tried again, one that succeeded or runs may not."""
    if rolled_back is None:
        return f"codedeploy_rollback_of: the ledger has no deployment {deployment_id}."
    if rolled_back["deployment_group_id"] != group_id:
        return (f"codedeploy_rollback_of: deployment {deployment_id} is of deployment group "
                f"'{rolled_back['deployment_group_name']}' ({rolled_back['deployment_group_id']}), not of this one "
                f"({group_id}).")
    if its_rollback is not None and its_rollback.get("status") not in (FAILED, STOPPED):
        return (f"codedeploy_rollback_of: deployment {deployment_id} was rolled back already, by "
                f"{its_rollback['deployment_id']} ({its_rollback.get('status')}). Roll back a later deployment, or "
                f"run the rollback without codedeploy_rollback_of to deploy the group's last successful revision "
                f"again.")
    return None


def other_group_refusal(record: dict, group_id: str) -> Optional[str]:
    """Why ``record``, named by codedeploy_deployment_id, cannot be continued by a run of group ``group_id``, or
    None: it is another group's deployment."""
    if record["deployment_group_id"] == group_id:
        return None
    return (f"codedeploy_deployment_id: deployment {record['deployment_id']} is of deployment group "
            f"'{record['deployment_group_name']}' ({record['deployment_group_id']}), not of this one ({group_id}). "
            "Give that group's codedeploy_application_name and codedeploy_deployment_group_name, or this group's "
            "deployment.")


def continued(inputs: dict, record: dict, resumed: dict) -> dict:
    """What the resume step returns for a deployment that goes on (``record`` InProgress): the plan of its next
    stage, with ``resumed`` (what the step says of itself) and the instances of a copied Auto Scaling group, which
    the run adds to its inventory."""
    return {**resumed_plan(inputs, record, stage_plan(record), stopped=False), **resumed, "stopped": False,
            "copied_hosts": recorded_green_hosts(record)}


def absent_instances(record: dict, hostvars, in_run: Optional[list[str]] = None) -> list[str]:
    """The instances of ``record`` that this run cannot reach: not in its inventory (``hostvars``), or left out by
    its limit (``in_run``: the hosts the limit keeps, None without a limit); but for those of a copied Auto Scaling
    group, which the run adds from the record."""
    copied = {host["name"] for host in recorded_green_hosts(record)}
    return [entry["instance_id"] for entry in record["instances"] if entry["instance_id"] not in copied
            and (entry["instance_id"] not in hostvars or (in_run is not None and entry["instance_id"] not in in_run))]


def stage_plan(record: dict) -> Optional[dict]:
    """What the role needs to run the current blue/green stage: its name, instances and events."""
    if not records.is_blue_green(record):
        return None
    stage = records.current_stage(record)
    return {"name": stage["name"], "position": record["blue_green"]["stage"],
            "instances": [entry["instance_id"] for entry in stage["instances"]],
            "events": list(records.STAGES[stage["name"]][1])}


def rollback_fleets(rolled_back: Optional[dict], targets: list, green: list) -> tuple[list, list]:
    """(original, replacement) instances of the blue/green deployment a rollback undoes (``rolled_back``, its
    record), as its record has them; without that record, the deployment group and codedeploy_green_group."""
    if rolled_back and rolled_back.get("blue_green"):
        return list(rolled_back["blue_green"]["blue"]), list(rolled_back["blue_green"]["green"])
    return targets, green


def revision_source(revision: dict) -> dict:
    """Where a recorded revision came from (what codedeploy_revision gave), without what the fetch learned: the
    bundle type of a git or local revision is the fetch's (a directory is packed), an S3 one's was given."""
    keys = REVISION_SOURCE_KEYS if revision.get("source") == "s3" else set(REVISION_SOURCE_KEYS) - {"bundle_type"}
    return {key: value for key, value in revision.items() if key in keys and value is not None}


def survey_health(info):
    """(last deployment succeeded, revision sha256) of an instance, from what its host reported."""
    if not info or info.get("unreachable") or not isinstance(info.get("instance"), dict):
        return (None, None)
    instance = info["instance"]
    return (instance.get("status") == "Succeeded", instance.get("revision_sha256"))


def revision_from_hosts(survey: dict, rolled_back_id: Optional[str] = None) -> Optional[dict]:
    """The newest last-successful deployment any reachable instance records (rollback from an empty ledger), but
    the deployment the rollback undoes (``rolled_back_id``)."""
    markers = [info["last_successful_deployment"] for info in survey.values()
               if isinstance(info, dict) and isinstance(info.get("last_successful_deployment"), dict)]
    markers = [marker for marker in markers if rolled_back_id is None or marker.get("deployment_id") != rolled_back_id]
    if not markers:
        return None
    newest = max(markers, key=lambda marker: marker.get("complete_time") or "")
    return newest.get("revision")


def rollback_requested(record: dict, auto_rollback) -> bool:
    """Whether a rollback follows: the deployment's auto_rollback events, or a stop request asking for one."""
    if record.get("creator") in (records.CREATOR_ROLLBACK, records.CREATOR_AUTOSCALING):
        return False  # a rollback is not rolled back; a catch-up deploys the last good revision already
    code = (record.get("error_information") or {}).get("code")
    if record["status"] == "Stopped" and code == "MANUAL_STOP" and records.manual_stop_rollback(record):
        return True
    if not auto_rollback or not auto_rollback.get("enabled"):
        return False
    events = auto_rollback.get("events") or []
    if record["status"] == "Failed":
        return "DEPLOYMENT_FAILURE" in events
    if record["status"] == "Stopped" and code == "ALARM_ACTIVE":
        return "DEPLOYMENT_STOP_ON_ALARM" in events
    if record["status"] == "Stopped" and code == "MANUAL_STOP":
        return "DEPLOYMENT_STOP_ON_REQUEST" in events
    return False


def link_rollback(ledger: Ledger, rollback_id: str, triggering_id: str, warnings: list,
                  triggering: Optional[dict] = None) -> None:
    """The deployment a rollback rolls back, linked to it, as the service links them both ways (the rollback's own
    record names it already): ``triggering``, as the step that ended it holds it (and writes its reports after),
    else as the ledger has it, its reports then written again here. A link that cannot be saved, or a report that
    cannot be written, is a warning in ``warnings``: the rollback goes on all the same."""
    held = triggering is not None
    triggering = triggering if held else ledger.find(triggering_id)
    if triggering is None:
        return
    records.rolled_back_by(triggering, rollback_id)
    if save_or_warn(ledger, triggering, f"its link to its rollback {rollback_id}", warnings) and not held:
        write_reports(ledger, triggering, warnings)


def save_or_warn(ledger: Ledger, record: dict, what: str, warnings: list) -> bool:
    """Save ``record`` once what it records has happened already: a save that fails is a warning in ``warnings``
    that says ``what`` was not recorded, not a failure of what happened. Whether it was saved."""
    try:
        ledger.save(record)
    except STEP_ERRORS as unsaved:
        warnings.append(f"Deployment {record['deployment_id']}: {what} could not be recorded: "
                        f"{step_error_message(unsaved)}")
        return False
    return True
