#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_group_info
short_description: What a host holds for one deployment group
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Reads, without changing anything, what the host records for a deployment group under the deployment root
    the CodeDeploy agent's way (last successful and most recent installs, the revisions kept) and the
    collection's own records (the last deployment this instance took part in, and the group's last successful
    deployment with its revision, bundle and AppSpec).
  - The deploy role uses it to order instances by health and to roll back without the controller's ledger.
  - Its action plugin also makes, as the login user, the directory the controller pushes bundles into
    (C(fleetops-codedeploy-push) under Ansible's C(remote_tmp), by default C(~/.ansible/tmp), mode 0700; files left
    there by a run that was killed are removed once a day old), so that M(fleetops.codedeploy.instance_lifecycle)
    transfers a bundle with no command before it. Not in check mode, not when C(become_user) is an unprivileged
    user, and not for a C(remote_tmp) starting with C(~user) or holding quotes or backslashes. Like Ansible's own
    temporary directories, making it is not reported as a change.
options:
  deployment_group_id:
    description: The deployment group ID (a UUID); anything else is refused before it is read as a path.
    type: str
    required: true
  deployment_root:
    description: The deployment root.
    type: path
    default: /opt/codedeploy-agent/deployment-root
  prepare_push_dir:
    description:
      - Make the login user's push directory (RV(push_dir)), for a bundle the controller pushes. Not needed when the
        hosts pull their bundle (C(codedeploy_bundle_transport=pull)); the action plugin reads it, the module
        ignores it.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  action:
    description: An action plugin makes the push directory after the module has run on the host.
    support: full
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Read what the host holds for the group
  fleetops.codedeploy.deployment_group_info:
    deployment_group_id: 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d
  register: group_state
"""

RETURN = r"""
last_successful_install:
  description: The deployment directory named by C(<dg-id>_last_successful_install), or null.
  returned: always
  type: str
most_recent_install:
  description: The deployment directory named by C(<dg-id>_most_recent_install), or null.
  returned: always
  type: str
revisions:
  description: The deployment directories kept for the group, oldest first.
  returned: always
  type: list
  elements: str
instance:
  description: The last deployment this instance took part in (deployment_id, status, revision_sha256), or null.
  returned: always
  type: dict
last_successful_deployment:
  description: The group's last successful deployment as recorded on this host (deployment_id, revision,
    bundle_path, bundle_type, appspec), or null.
  returned: always
  type: dict
push_dir:
  description:
    - The absolute path of the login user's push directory, for
      O(fleetops.codedeploy.instance_lifecycle#module:bundle).
  returned: when the directory could be made (not in check mode)
  type: str
  sample: /home/deploy/.ansible/tmp/fleetops-codedeploy-push
bundles:
  description: The bundles the controller has pushed to this host and that it still holds, named
    C(<sha256>.<bundle type>), in C(<deployment_root>/fleetops-bundles); the role does not push them again.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DeploymentRoot, DeploymentRootError, held_bundles, instance_deployment_file, read_json_file,
    successful_deployment_file, validate_deployment_group_id)


def kept_revisions(group_dir: str) -> list[str]:
    if not os.path.isdir(group_dir):
        return []
    entries = [os.path.join(group_dir, name) for name in os.listdir(group_dir)]
    return sorted((entry for entry in entries if os.path.isdir(entry)), key=os.path.getmtime)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(deployment_group_id=dict(type="str", required=True),
                           deployment_root=dict(type="path", default="/opt/codedeploy-agent/deployment-root"),
                           prepare_push_dir=dict(type="bool", default=True)),
        supports_check_mode=True)
    try:
        validate_deployment_group_id(module.params["deployment_group_id"])
    except DeploymentRootError as error:
        module.fail_json(msg=str(error))
    layout = DeploymentRoot(module.params["deployment_root"], module.params["deployment_group_id"])
    module.exit_json(
        changed=False,
        last_successful_install=layout.last_successful_dir(),
        most_recent_install=layout.most_recent_dir(),
        revisions=kept_revisions(layout.group_dir),
        instance=read_json_file(instance_deployment_file(layout)),
        last_successful_deployment=read_json_file(successful_deployment_file(layout)),
        bundles=held_bundles(module.params["deployment_root"]))


if __name__ == "__main__":
    main()
