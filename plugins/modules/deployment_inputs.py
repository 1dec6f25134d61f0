#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_inputs
short_description: Decide a deployment's inputs, converted and validated, before anything is created
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - An action plugin that runs on the controller. The C(fleetops.codedeploy.deploy) role calls it first in every
    playbook (deploy, rollback, continue).
  - Each input comes from the target group's first host (extra vars, host vars, group vars) unless that value came
    from another deployment group the host is in, then from the target group's own inputs (the deployment_groups
    inventory plugin's C(codedeploy_deployment_group_inputs)), else from the controller (extra vars, play vars),
    else from the role's argument specification's default.
  - Each is converted to its type (V("false") is false, V("50") is 50, a JSON text a dict or a list; an empty
    string is the default) and validated before anything is created.
  - A C(codedeploy_revision) string is read as C(s3://bucket/key.tgz) (with an optional C(?versionId=)), a git URL
    with C(#commit), or a local path; relative local paths are relative to the directory the run starts in (the
    AWX project's directory).
  - A run whose limit (C(--limit), an AWX Limit) leaves out some of the target group's hosts is refused, unless
    C(codedeploy_allow_partial_group) is true.
options:
  argument_spec:
    description: The options of the role's argument specification.
    type: dict
    required: true
  revision_required:
    description:
      - Whether the run deploys a revision (the deploy and catch-up playbooks) - then C(codedeploy_revision) is
        required, and with C(codedeploy_bundle_transport) V(pull) it must be an C(s3) or C(url) revision (the hosts
        cannot pull one that only the controller has).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  action:
    description: Runs on the controller as an action plugin.
    support: full
  check_mode:
    support: full
    details: It only reads variables.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Resolve and validate the deployment's inputs
  fleetops.codedeploy.deployment_inputs:
    argument_spec: "{{ (lookup('ansible.builtin.file', role_path ~ '/meta/argument_specs.yml')
                       | from_yaml).argument_specs.main.options }}"
  register: codedeploy_resolved
"""

RETURN = r"""
inputs:
  description: Every input of the argument specification, converted; the revision as a dict.
  returned: success
  type: dict
target_hosts:
  description: The target group's hosts the run deploys to (all of them, or the limit's with
    C(codedeploy_allow_partial_group)).
  returned: success
  type: list
  elements: str
limited:
  description: The run's limit leaves out some of the target group's hosts (allowed by
    C(codedeploy_allow_partial_group)).
  returned: success
  type: bool
"""
