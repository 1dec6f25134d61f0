#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_info
short_description: A deployment group's history, or one deployment, from the ledger
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - An action plugin that runs on the controller and only reads the ledger, as C(aws deploy list-deployments) and
    C(aws deploy get-deployment) read the CodeDeploy service.
  - With O(application_name) and O(deployment_group_name), lists the group's deployments newest first, each
    summarised (ID, status, error, creator, revision, times, overview of the instances' statuses), filtered by
    O(statuses) and creation time.
  - With O(deployment_id), returns that deployment's whole record, instances and lifecycle events included, as the
    one element of RV(deployments).
  - A record of the ledger that cannot be read is left out of the list and named, with where it is, in the
    warnings.
options:
  ledger:
    description: The ledger, as the deploy role's C(codedeploy_ledger) - a directory on the controller or
      C(s3://bucket/prefix).
    type: str
    default: ~/.fleetops-codedeploy
    aliases: [ledger_dir]
  application_name:
    description: The application; with O(deployment_group_name), list that group's deployments.
    type: str
  deployment_group_name:
    description: The deployment group (with O(application_name)).
    type: str
  deployment_id:
    description: One deployment to return whole, instead of a list. Mutually exclusive with O(application_name).
    type: str
  statuses:
    description: List only the deployments in one of these statuses.
    type: list
    elements: str
    default: []
    choices: [Created, Queued, InProgress, Baking, Ready, Succeeded, Failed, Stopped]
  created_after:
    description: List only the deployments created at or after this ISO 8601 date or time (UTC unless it has an
      offset), for example V(2026-01-31) or V(2026-01-31T12:00:00Z).
    type: str
  created_before:
    description: List only the deployments created at or before this ISO 8601 date or time.
    type: str
  max_results:
    description: At most this many deployments, the newest.
    type: int
extends_documentation_fragment:
  - fleetops.codedeploy.aws
attributes:
  action:
    description: Runs on the controller as an action plugin.
    support: full
  check_mode:
    description: Only reads the ledger, in check mode too.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  platform:
    description: The controller.
    support: full
    platforms: posix
notes:
  - O(aws) is used when the ledger is in S3.
"""

EXAMPLES = r"""
- name: The last five failed deployments of webapp/prod
  fleetops.codedeploy.deployment_info:
    application_name: webapp
    deployment_group_name: prod
    statuses: [Failed]
    max_results: 5
  register: failed

- name: One deployment, with its instances and lifecycle events
  fleetops.codedeploy.deployment_info:
    deployment_id: d-ABCDEFGHI
  register: one

- name: Which instances failed, and where
  ansible.builtin.debug:
    msg: "{{ one.deployments[0].instances | selectattr('status', 'eq', 'Failed') | map(attribute='instance_id') }}"
"""

RETURN = r"""
deployments:
  description:
    - The group's deployments, newest first, summarised; or, with O(deployment_id), that deployment's whole record
      (C(instances) with their C(lifecycle_events), C(waves), C(options), ...) as the one element.
  returned: always
  type: list
  elements: dict
  contains:
    deployment_id:
      description: The deployment's ID.
      type: str
    application_name:
      description: The application.
      type: str
    deployment_group_name:
      description: The deployment group.
      type: str
    status:
      description: Created, InProgress, Ready, Succeeded, Failed or Stopped.
      type: str
    error_information:
      description: C(code) and C(message) of a failed or stopped deployment, else null.
      type: dict
    creator:
      description: V(user), V(autoscaling) or V(codeDeployRollback).
      type: str
    revision:
      description: The revision deployed (its source, location and sha256).
      type: dict
    deployment_config_name:
      description: The deployment configuration.
      type: str
    create_time:
      description: When the deployment was created (ISO 8601 UTC).
      type: str
    start_time:
      description: When its first wave started.
      type: str
    complete_time:
      description: When it ended, or null.
      type: str
    deployment_overview:
      description: How many instances are in each status (C(Pending), C(InProgress), C(Succeeded), C(Failed),
        C(Skipped), C(Ready)).
      type: dict
    rollback_info:
      description: The rollback that undid this deployment, or the deployment this rollback undoes;
        C(rollback_message) says why there is none when the rollback the deployment asked for could not be created.
      type: dict
  sample:
    - deployment_id: d-7Q2M4K1ZP
      application_name: webapp
      deployment_group_name: prod
      status: Succeeded
      error_information: null
      creator: user
      create_time: "2026-01-31T12:00:00.000Z"
      complete_time: "2026-01-31T12:01:10.000Z"
      deployment_overview: {Pending: 0, InProgress: 0, Succeeded: 3, Failed: 0, Skipped: 0, Ready: 0}
ledger:
  description: Where the ledger is.
  returned: always
  type: str
"""
