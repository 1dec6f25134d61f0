#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: revision_install
short_description: Install a CodeDeploy revision on a host, as the agent's Install event does
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Runs the Install lifecycle event of the AWS CodeDeploy agent on the host, from the revision already unpacked
    into C(<deployment_root>/<deployment_group_id>/<deployment_id>/deployment-archive) (see
    M(fleetops.codedeploy.revision_bundle)).
  - First removes what the previous Install of the deployment group created, as listed in
    C(deployment-instructions/<deployment_group_id>-cleanup), in reverse order. Symlinks and files are removed,
    directories only when empty, paths already gone are ignored.
  - Then copies the C(files) of the AppSpec. A file source is copied into the destination directory under its
    own name; a directory source has its contents copied recursively (a source of C(/) is the whole bundle).
    Missing destination directories are created, and every path created is recorded in the new cleanup file
    before it is created, so that the next Install removes it. Files keep their mode and timestamps and, when
    the module runs as root, their owner from the bundle. A symlink to a file is re-created as a symlink; a
    symlink to a directory is followed.
  - A destination that already exists is handled by O(file_exists_behavior), or by the AppSpec's own
    C(file_exists_behavior), which wins.
  - Then applies the C(permissions) of the AppSpec to what this Install copied or created, in the agent's order
    per object (mode, ACL, SELinux context, owner), and writes C(<deployment_group_id>_last_successful_install).
  - "Differences from the agent, on purpose: everything is planned and checked before anything is touched, so
    a DISALLOW conflict, a duplicate destination or permission, an unknown owner, a missing C(setfacl) or
    C(semanage), a file where the revision needs a directory, or a bundle symlink that points outside the bundle
    fails the task with the previous install still in place (the agent has already removed it when it finds a
    DISALLOW conflict). A symlink at a destination exists even when it dangles: DISALLOW refuses it, RETAIN
    keeps it, OVERWRITE replaces the link itself; the agent writes through a dangling link. A numeric C(owner) or
    C(group) that names no user or group is an id, as with C(chown). Permissions never follow a symlink at the
    object: an installed symlink gets its owner only (C(lchown)), never the mode, ACL or context of the file it
    points to."
options:
  appspec:
    description:
      - The AppSpec of the revision, as parsed and normalised on the controller by
        M(fleetops.codedeploy.appspec_info) (its RV(fleetops.codedeploy.appspec_info#module:appspec) result). It is
        checked again on the host.
      - Without it, the AppSpec is read from the unpacked revision (O(appspec_filename), then C(appspec.yaml),
        then C(appspec.yml)), with PyYAML where the host has it and the collection's own YAML loader where not.
    type: dict
  file_exists_behavior:
    description:
      - What to do with a file the revision installs where a file already exists and was not installed by the
        previous deployment of this deployment group. The AppSpec's C(file_exists_behavior) wins over this.
      - V(DISALLOW) fails the Install with the agent's message; a symlink there counts, even a dangling one.
      - No behaviour replaces a file by a directory the revision needs, or a directory by a file.
      - V(OVERWRITE) replaces the file; it is then recorded, so the next Install removes it.
      - V(RETAIN) keeps the existing file; it is not recorded and gets no C(permissions).
    type: str
    default: DISALLOW
    choices: [DISALLOW, OVERWRITE, RETAIN]
extends_documentation_fragment:
  - fleetops.codedeploy.deployment
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be removed, created, copied and given permissions; changes nothing.
  diff_mode:
    support: full
    details: Before lists the paths removed or replaced, after the paths installed with their permissions.
  platform:
    platforms: posix
notes:
  - C(acls) need C(setfacl) on the host (the C(acl) package); C(context) needs C(semanage) and C(restorecon).
  - Relative C(files) destinations and C(permissions) objects are refused; the agent expands them against its
    own working directory.
seealso:
  - module: fleetops.codedeploy.appspec_info
  - module: fleetops.codedeploy.revision_bundle
  - module: fleetops.codedeploy.lifecycle_event
"""

EXAMPLES = r"""
- name: Parse the revision's AppSpec on the controller
  fleetops.codedeploy.appspec_info:
    path: build/webapp
  delegate_to: localhost
  run_once: true
  register: webapp_spec

- name: Install the revision
  fleetops.codedeploy.revision_install:
    deployment_id: d-A1B2C3D4E
    deployment_group_id: 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d
    deployment_group_name: webapp-production
    application_name: webapp
    appspec: "{{ webapp_spec.appspec }}"
    file_exists_behavior: OVERWRITE

- name: Show what an Install would do, without doing it
  fleetops.codedeploy.revision_install:
    deployment_id: d-A1B2C3D4E
    deployment_group_id: 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d
    deployment_group_name: webapp-production
    application_name: webapp
    appspec: "{{ webapp_spec.appspec }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
file_exists_behavior:
  description: The behaviour applied to existing files, from the AppSpec or O(file_exists_behavior).
  returned: always
  type: str
  sample: DISALLOW
removed:
  description: What the cleanup of the previous Install removed (or would remove, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [/var/www/app/old.html, /var/www/app/assets]
created_dirs:
  description: The directories created, in order.
  returned: always
  type: list
  elements: str
  sample: [/var/www/app, /var/www/app/assets]
copied:
  description: The files and symlinks copied, in order.
  returned: always
  type: list
  elements: str
  sample: [/var/www/app/index.html]
retained:
  description: Destinations that already existed and were kept (V(RETAIN)).
  returned: always
  type: list
  elements: str
  sample: [/etc/fleet-app/app.conf]
permissions_applied:
  description: Per object, in order, what the C(permissions) section set on it.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file or directory.
      type: str
      returned: always
      sample: /var/www/app/run.sh
    mode:
      description: The mode set, or V(null).
      type: str
      returned: always
      sample: "0755"
    owner:
      description: The owner set, or V(null).
      type: str
      returned: always
      sample: deploy
    group:
      description: The group set, or V(null).
      type: str
      returned: always
      sample: deploy
    acls:
      description: The ACL entries listed (setfacl also gets the base entries derived from the mode).
      type: list
      elements: str
      returned: always
      sample: ["user:deploy:rwx"]
    context:
      description: The SELinux context set (C(name), C(type), C(range)), or V(null).
      type: dict
      returned: always
last_successful_install:
  description: The deployment directory written to C(<deployment_group_id>_last_successful_install).
  returned: success
  type: str
  sample: /opt/codedeploy-agent/deployment-root/4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d/d-A1B2C3D4E
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import AppSpecError
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DEPLOYMENT_ARGUMENT_SPEC,
    DeploymentRoot,
    DeploymentRootError,
    validate_identifiers,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import unexpected_error_message
from ansible_collections.fleetops.codedeploy.plugins.module_utils.install_plan import (
    FILE_EXISTS_BEHAVIORS,
    Copy,
    InstallError,
    InstallPlan,
    InstallResult,
    MakeDirectory,
    install_revision,
    plan_diff,
    plan_report,
    prepare_install,
)


def partial_report(plan: InstallPlan, result: InstallResult) -> dict:
    """What an Install that stopped half-way had done, for its failure result."""
    return {
        "file_exists_behavior": plan.file_exists_behavior,
        "removed": result.removed,
        "created_dirs": [i.directory for i in result.done if isinstance(i, MakeDirectory)],
        "copied": [i.destination for i in result.done if isinstance(i, Copy)],
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            DEPLOYMENT_ARGUMENT_SPEC,
            appspec=dict(type="dict"),
            file_exists_behavior=dict(type="str", default="DISALLOW", choices=list(FILE_EXISTS_BEHAVIORS)),
        ),
        supports_check_mode=True,
    )
    params = module.params
    deployment_id = params["deployment_id"]
    try:
        validate_identifiers(deployment_id, params["deployment_group_id"])
    except DeploymentRootError as error:
        module.fail_json(msg=str(error))
    layout = DeploymentRoot(params["deployment_root"], params["deployment_group_id"])
    try:
        plan = prepare_install(layout, deployment_id, params["appspec"], params["appspec_filename"],
                               params["file_exists_behavior"])
    except (InstallError, AppSpecError) as error:
        module.fail_json(msg=error.message)
    except Exception as error:  # pylint: disable=broad-exception-caught
        module.fail_json(msg=unexpected_error_message("Install", error))

    deployment_dir = layout.deployment_dir(deployment_id)
    changed = bool(plan.removed or plan.instructions) or layout.last_successful_dir() != deployment_dir
    report = plan_report(plan)
    diff = plan_diff(plan, params["deployment_group_id"])
    if module.check_mode:
        module.exit_json(changed=changed, diff=diff, **report)

    result = InstallResult()
    try:
        install_revision(layout, deployment_id, plan, module.run_command, result)
    except InstallError as error:
        module.fail_json(msg=error.message, **partial_report(plan, result))
    except Exception as error:  # pylint: disable=broad-exception-caught
        # A full disk, say: the host is left as the agent leaves it, and the next Install cleans up.
        module.fail_json(msg=f"{unexpected_error_message('Install', error)} What it installed so far is listed"
                             f" in {layout.cleanup_file} and is removed by the next Install.",
                         **partial_report(plan, result))
    module.exit_json(changed=changed, diff=diff, last_successful_install=deployment_dir, **report)


if __name__ == "__main__":
    main()
