#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: deployment
short_description: The controller side of a deployment, step by step, in the ledger
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - An action plugin that runs on the controller; only V(mark) connects to a host. The C(fleetops.codedeploy.deploy)
    role calls it for each phase of a deployment; it keeps the deployment's record in the ledger, with the
    CodeDeploy service's rules for minimum healthy hosts, statuses and error codes.
  - V(create) creates the deployment from the inputs (refusing it with NO_INSTANCES or HEALTH_CONSTRAINTS_INVALID,
    or when another deployment of the group is active) and returns the plan of its first phase, whole - what the
    deployment play reads as C(codedeploy_plan); it checks every input before it takes the group's lock, and gives
    the lock back when the deployment cannot be created (its record not written); V(start) leaves out the instances already up to date (with
    C(update_outdated_instances_only)), orders the rest by health, groups them by zone (with a C(zonal_config)
    option), sizes the waves, opens the first and returns the first ones to run; V(record) folds the open wave's
    results in, applies the health rules, then opens the next wave and returns the waves to run from it on, none when
    the deployment stops. Opening a wave waits a zone's monitor duration when the wave opens the next zone (a stop
    request ends the wait within 2 seconds), polls the CloudWatch alarms, sees a stop request, and decides which
    instances of the wave may start (a wave in which none may is recorded empty, and the next one opened).
    V(finish) ends the phase of O(plan) and returns the whole plan of what the deployment play runs next; it sets
    the deployment's final status, releases the lock and, when a rollback is due, creates the rollback and returns
    its plan - a rollback that cannot be created is recorded in the deployment's C(rollback_info) - then writes the
    reports (for a blue/green deployment, V(finish) ends a stage and returns the plan of the next, or leaves the
    deployment waiting in Ready with C(deployment_ready_option) STOP_DEPLOYMENT); V(resume) continues the group's
    blue/green deployment waiting in Ready (also one whose controller was lost before it handed its lock over, once
    that controller is gone), or stops it when its wait time is over; V(stop) stops the group's active
    deployment, as StopDeployment does - a running one is asked to stop and stops when it opens its next wave, one
    waiting in Ready or whose controller is gone is Stopped at once, and the rollback it asks for created and
    planned, as V(finish) does; V(last_revision) returns the source of the group's last successful revision (for a
    catch-up deployment); V(mark), run on each instance the run closes (C(ended_phase.succeeded_instances) and
    C(failed_instances) returned), records the group's last successful deployment on an instance that succeeded in a
    successful deployment (one command over the host's connection), for a rollback without the controller's ledger, and
    fails an instance that failed in the run, once, so that the recap counts it failed; V(conclude) says how the run's
    deployment and its rollback ended, and fails when the deployment did not succeed (a deployment stopped on request by
    the stop playbook did, when its rollback, if any, succeeded).
  - A step whose plan has nothing after it (V(finish), V(resume) or V(stop) ending the run's last deployment) sets
    the run's custom stats, as M(ansible.builtin.set_stats) does, for the run and not per host -
    C(codedeploy_deployment_id), C(codedeploy_deployment_status), C(codedeploy_error_code), C(codedeploy_revision)
    and, after a rollback, C(codedeploy_rollback_deployment_id) - which an AWX workflow's next node receives as extra
    vars.
  - Each step takes only its own arguments, listed below with the steps that take them; they are checked before
    the step runs (types converted, required ones present, no other), and an argument at fault fails the task
    with a message naming the step and the argument.
options:
  step:
    description: The step to run.
    type: str
    required: true
    choices: [create, start, record, finish, resume, stop, last_revision, mark, conclude]
  ledger:
    description:
      - The ledger - a directory on the controller or C(s3://bucket/prefix) shared by every controller. Every
        write of a record or of a group's lock is conditional, so two controllers never both hold a group nor
        overwrite each other's record.
      - Default O(ledger_dir), else C(~/.fleetops-codedeploy).
      - All steps (V(mark) does not use it).
    type: str
  ledger_dir:
    description: The ledger as a directory, the former name of O(ledger), read when O(ledger) is not given (all
      steps).
    type: str
  aws:
    description:
      - AWS connection options for an S3 ledger (all steps), the same dict as the role input C(codedeploy_aws).
      - Anything left out is resolved by boto3 as usual (environment, shared config and credentials files, an
        instance role).
    type: dict
    suboptions:
      region:
        description: The AWS region.
        type: str
      endpoint_url:
        description: The endpoint to send requests to instead of the AWS one (moto, LocalStack, a VPC endpoint).
        type: str
      profile:
        description: A profile of the shared AWS config and credentials files.
        type: str
      max_attempts:
        description: How many times a request is tried in all, with botocore's V(standard) retry mode.
        type: int
        default: 5
  application_name:
    description: The application (V(last_revision)); required by it.
    type: str
  deployment_group_name:
    description: The deployment group (V(last_revision)); required by it.
    type: str
  deployment_group_id:
    description:
      - The deployment group ID (V(last_revision), V(mark)).
      - Required by V(mark) with O(marker); for V(last_revision), default a UUIDv5 of the application and group
        names.
    type: str
  deployment_id:
    description:
      - The deployment (V(start), V(record), V(resume), V(stop)); required by V(start) and V(record).
      - For V(resume) and V(stop), default the group's deployment waiting in Ready or running.
    type: str
  inputs:
    description:
      - The deployment's inputs, as M(fleetops.codedeploy.deployment_inputs) decided them (V(create), V(resume),
        V(stop)); required by these steps. V(resume) and V(stop) find the deployment group from them, and return the
        plan of what the deployment play runs next; V(stop) reads C(codedeploy_stop_rollback) (roll the stopped
        deployment back) and C(codedeploy_stop_wait_timeout) (seconds to wait until a running deployment's
        controller has stopped it; 0 not to wait). C(codedeploy_revision) is the revision as M(fleetops.codedeploy.revision_fetch) returned it (its
        credentials hidden), or empty for a rollback.
      - The deployment is created from them - the application and group, C(codedeploy_deployment_config_name) or
        C(codedeploy_minimum_healthy_hosts), C(codedeploy_lock_lease_seconds) (the lease of the group's lock; 0 for
        the longest hook timeout plus 5 minutes, renewed while the controller runs, taken over by the next
        deployment once it runs out), and the options its record keeps (auto rollback, alarms, triggers, zonal
        configuration, load balancer, blue/green configuration, and more).
      - C(codedeploy_trigger_configurations) are checked here; their events are sent as they happen (V(create),
        V(start), V(record), V(finish), V(stop)), a failed delivery being a warning.
    type: dict
  fetched:
    description: What M(fleetops.codedeploy.revision_fetch) returned for the revision (V(create)); null for a
      rollback, which takes the group's last successful revision. A revision without an AppSpec is refused.
    type: dict
  targets:
    description: The instances of the deployment (V(create)); for blue/green, the original ones. V(stop) gives them
      to the rollback it creates.
    type: list
    elements: str
  green_targets:
    description: The replacement instances of a blue/green deployment (V(create), V(stop)),
      C(codedeploy_green_group)'s hosts.
    type: list
    elements: str
  creator:
    description: Who creates the deployment (V(create)).
    type: str
    choices: [user, codeDeployRollback, autoscaling]
    default: user
  rollback_of:
    description: The deployment this one rolls back (V(create)).
    type: str
  record:
    description: The record V(create) returned, used by V(start) in check mode, when nothing is stored.
    type: dict
  survey:
    description: Per instance, what M(fleetops.codedeploy.deployment_group_info) returned (V(start)).
    type: dict
  zones:
    description: Per instance, its Availability Zone, empty for none (V(start)); used with a zonal configuration.
    type: dict
  instance_order:
    description: Instances to deploy first (V(start)).
    type: list
    elements: str
  deployment_root:
    description: The deployment root on the hosts (V(start), V(mark)).
    type: str
    default: /opt/codedeploy-agent/deployment-root
  revision_cache_dir:
    description: Where fetched revisions are cached on the controller (V(start)); the bundle pushed to the hosts is
      taken from there when O(fetched_path) is not given.
    type: str
  fetched_path:
    description: The bundle just fetched on the controller (V(start)), null for none.
    type: str
  pull:
    description: Where the hosts pull the bundle from (V(start)) - C({url}) or C({bucket, key, version_id, aws,
      endpoint_url}); null when the controller pushes it.
    type: dict
  hosts:
    description: The hosts that started in the open wave (V(record)), as the step that opened it named them.
    type: list
    elements: str
  results:
    description: Per host of O(hosts), the result its lifecycle task registered (V(record)).
    type: dict
  outcomes:
    description:
      - The run's deployments that ended, each its record with C(record_path) and C(rollback_requested), as the
        plan carries them (C(outcomes) returned); V(conclude) says how they ended, the deployment then its
        rollback, and requires them.
    type: list
    elements: dict
  plan:
    description: The plan of the phase that ends, as the step before returned it (V(finish)); required by it.
    type: dict
  marker:
    description: The group's last successful deployment, to record on the instance (V(mark)); V(mark) takes it,
      O(failure) or both.
    type: dict
    suboptions:
      deployment_id:
        description: The deployment.
        type: str
        required: true
      complete_time:
        description: When it ended.
        type: str
      revision:
        description: Its revision, with the bundle's path on the host and the AppSpec.
        type: dict
  failure:
    description: What the instance fails with, having failed in the run (V(mark)); after O(marker) is recorded.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  action:
    description: Runs on the controller as an action plugin.
    support: full
  check_mode:
    support: partial
    details: V(create), V(start) and V(resume) compute the plan without writing the ledger (V(resume) fails, as the
      continue would, when the deployment cannot be continued or its wait in Ready is over), V(finish) ends the
      plan, V(stop) says which deployment it would stop; the role runs no other step in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Stop the group's active deployment, waiting up to 15 minutes for its controller to stop it
  fleetops.codedeploy.deployment:
    step: stop
    ledger: s3://deployments-ledger/prod
    aws:
      region: eu-west-1
    inputs: "{{ codedeploy_resolved.inputs | combine({'codedeploy_stop_wait_timeout': 900}) }}"
  register: codedeploy_plan

- name: Say what it did
  ansible.builtin.debug:
    msg: "{{ codedeploy_plan.msg }}"

- name: Continue the group's blue/green deployment waiting in Ready
  fleetops.codedeploy.deployment:
    step: resume
    inputs: "{{ codedeploy_resolved.inputs }}"
  register: codedeploy_plan
"""

RETURN = r"""
msg:
  description: How the deployment and its rollback ended, with the record's path (V(conclude)); the failure's
    message when it did not succeed. What V(stop) did, or in check mode would do, in a sentence, with the record's
    path.
  returned: step is conclude or stop
  type: str
  sample: >-
    Deployment d-4XJ2K7Q1B is Stopped (closed here: it was waiting in Ready or its controller was gone).
    Record: s3://deployments-ledger/prod/deployments/d-4XJ2K7Q1B.json
stopped_deployment:
  description: What V(stop) did, and to which deployment. The rest of its result is the plan of what follows - the
    rollback it created, or nothing but the report of the deployment it stopped.
  returned: step is stop
  type: dict
  contains:
    deployment_id:
      description: The deployment stopped, asked to stop, or in check mode the one it would stop (none when the
        group has no active deployment).
      type: str
    deployment_group_id:
      description: Its deployment group's ID.
      type: str
    outcome:
      description: C(requested) (the running controller stops the deployment when it opens its next wave; not seen
        within C(codedeploy_stop_wait_timeout)), C(stopped by its controller), C(stopped) (closed here - it waited
        in Ready or its controller was gone), or C(check mode).
      type: str
    record:
      description: Its record, once stopped (none in check mode, nor when only requested).
      type: dict
    record_path:
      description: Where its record is.
      type: str
    rollback_requested:
      description: The deployment closed here asks for a rollback (its own auto rollback, or the stop request).
      type: bool
    report_path:
      description: Where its JUnit report is, when closed here.
      type: str
    html_report_path:
      description: Where its HTML report is, when closed here.
      type: str
revision:
  description: The source of the group's last successful revision (V(last_revision)), as C(codedeploy_revision)
    gives one.
  returned: step is last_revision
  type: dict
deployment_id:
  description: The new deployment's ID (V(create)), the one continued (V(resume)), the rollback V(finish) or
    V(stop) created.
  returned: step is create, resume or finish; stop, when it created a rollback
  type: str
deployment_group_id:
  description: Its deployment group's ID (V(create)).
  returned: step is create, resume or finish; stop, when it created a rollback
  type: str
creator:
  description: Who created it (V(create)).
  returned: step is create, resume or finish
  type: str
deployment_type:
  description: C(IN_PLACE) or C(BLUE_GREEN) (V(create)).
  returned: step is create, resume or finish
  type: str
events:
  description: The lifecycle events of its first phase (V(create)), or of the stage it goes on to (V(resume)).
  returned: step is create, resume or finish
  type: list
  elements: str
inputs:
  description: The inputs it was created from (V(create)), its revision as fetched (none for a rollback, nor for
    V(stop)).
  returned: step is create, resume, finish or stop
  type: dict
fetched_path:
  description: The bundle fetched on the controller (V(create)), null for a rollback.
  returned: step is create, resume or finish
  type: str
pull_source:
  description: Where the hosts pull the bundle from (V(create)), null when the controller pushes it.
  returned: step is create, resume or finish
  type: dict
group_hosts:
  description: The deployment group's instances in the run (V(create)); for blue/green, the original ones.
  returned: step is create, resume or finish
  type: list
  elements: str
green_hosts:
  description: The replacement instances of a blue/green deployment (V(create)), copied ones included.
  returned: step is create, resume or finish
  type: list
  elements: str
targets:
  description: The instances of its first phase (V(create)), or of the stage it goes on to (V(resume)).
  returned: step is create, resume or finish
  type: list
  elements: str
survey:
  description: The instances the first phase surveys before it orders them (V(create)).
  returned: step is create, resume or finish
  type: list
  elements: str
title:
  description: "The deployment play's name (V(create), V(resume), V(stop)), for example C(Deploy to shop/web:
    d-ABCDEFGH1)."
  returned: step is create, resume, finish or stop
  type: str
refused:
  description: The deployment could not start (V(start)) - no earlier success to roll back to, a zone that cannot
    keep its minimum; C(record) is its record, Failed. A deployment refused at once by V(create) (NO_INSTANCES,
    HEALTH_CONSTRAINTS_INVALID) fails the task instead, its message naming the deployment, the code and the record.
  returned: when the deployment is refused
  type: bool
copied_hosts:
  description: The instances of an Auto Scaling group copied for a blue/green deployment (V(create)), with their
    address, instance ID and zone, for the inventory; those of the deployment continued (V(resume)) or rolled back
    (V(create) of a rollback, V(stop) that created one), from its record.
  returned: step is create; resume, when the deployment goes on; stop, when it created a rollback
  type: list
  elements: dict
record:
  description: The deployment record (V(create), V(start)); the plan V(finish) returns keeps the one of its phase,
    and the plan of a rollback V(finish) or V(stop) created, the rollback's.
  returned: step is create, start or finish; stop, when it created a rollback
  type: dict
order:
  description: Instances in deployment order (V(start)).
  returned: step is start
  type: list
  elements: str
wave_size:
  description: N minus the minimum healthy hosts (V(start)).
  returned: step is start
  type: int
batches:
  description: The batch sizes of the waves (V(start)).
  returned: step is start
  type: list
  elements: int
zones:
  description: With a zonal configuration, the zones in deployment order (V(start)); else null.
  returned: step is start
  type: list
  elements: dict
  contains:
    name:
      description: The zone, empty for the hosts without one.
      type: str
    instances:
      description: Its instances in deployment order.
      type: list
      elements: str
    minimum:
      description: Its minimum healthy hosts.
      type: int
skipped_up_to_date:
  description: The instances left out because they already run the revision (V(start)).
  returned: step is start
  type: list
  elements: str
upcoming:
  description: The waves to run, up to ten, as far as they are known (V(start), V(record)) - the one just opened,
    then those after it; empty when the deployment stops or has run them all.
  returned: step is start or record
  type: list
  elements: dict
  contains:
    hosts:
      description: The wave's instances (its batch).
      type: list
      elements: str
    final_pass:
      description: Whether it is a wave of the final one-at-a-time pass.
      type: bool
    start:
      description: Who starts in the wave just opened (the first one only).
      type: list
      elements: str
phase:
  description: What the phase deploys (V(start)) - its revision, AppSpec, hook environment and bundle (where each
    host finds it).
  returned: step is start
  type: dict
monitor_wait:
  description: The zone monitor wait (or blue/green termination wait) that preceded the wave opened (V(start),
    V(record)), or null.
  returned: step is start or record
  type: dict
  contains:
    seconds:
      description: How long.
      type: int
    setting:
      description: C(first_zone_monitor_duration_in_seconds) or C(monitor_duration_in_seconds).
      type: str
    after_zone:
      description: The zone just finished.
      type: str
    before_zone:
      description: The zone about to start.
      type: str
alarms:
  description: The alarms in ALARM that stopped the deployment when it opened a wave (V(start), V(record)).
  returned: when an alarm stopped the deployment
  type: list
  elements: str
alarm_poll_failure:
  description: Why the alarm states could not be read, when that stopped the deployment (V(start), V(record)).
  returned: when a failed alarm poll stopped the deployment
  type: str
start:
  description: The instances of the wave opened that start now (V(start), V(record)); empty when none was opened.
  returned: step is start or record
  type: list
  elements: str
deferred:
  description: The instances of the wave opened deferred to the final one-at-a-time pass (V(start), V(record)).
  returned: step is start or record
  type: list
  elements: str
stop:
  description: Whether the deployment stopped instead of opening a wave (V(start), V(record)).
  returned: step is start or record
  type: bool
summary:
  description: The recorded wave's counts (V(record)); null when no wave was open.
  returned: step is record
  type: dict
ended_phase:
  description:
    - What V(finish) ended - C(record), C(record_path); C(rollback_requested), whether the deployment asks for a
      rollback; C(succeeded_instances), the instances to mark as running the group's last successful revision,
      with C(mark), the V(mark) step's arguments for them; C(report_path) and C(html_report_path), its JUnit and
      HTML reports, once the deployment ended; C(ready) (C(since), C(until), C(wait_time_in_minutes)) when a
      blue/green deployment stops in Ready (STOP_DEPLOYMENT); C(ended_before) when it had ended before (refused at
      start).
    - The rest of the result is the plan of what follows - the next blue/green stage, the rollback created, or
      the same plan with C(start_with) V(idle).
  returned: step is finish
  type: dict
start_with:
  description: What the deployment play runs next (V(create), V(resume), V(finish), V(stop)) - C(phase), or C(idle)
    when nothing is to run (a deployment stopped instead, or that ended).
  returned: step is create, resume, finish or stop
  type: str
outcomes:
  description: The run's deployments that ended so far, each its record with C(record_path) and
    C(rollback_requested) (V(create), V(resume), V(finish)); V(finish) adds the deployment it ended, and a
    rollback refused at once; a deployment whose rollback could not be created says why in its
    C(rollback_info.rollback_message), in the ledger too.
    V(stop) returns the deployment it stopped here (with C(stopped_on_request)), or none, then its rollback as
    V(finish) does.
  returned: step is create, resume, finish or stop
  type: list
  elements: dict
failed_instances:
  description: Once the plan has nothing after it, each instance that failed in the run's deployments, with the
    sentence V(mark) fails it with.
  returned: step is create, resume, finish or stop, when nothing follows
  type: dict
stopped:
  description: V(resume) found the Ready wait over and stopped the deployment.
  returned: step is resume
  type: bool
"""
