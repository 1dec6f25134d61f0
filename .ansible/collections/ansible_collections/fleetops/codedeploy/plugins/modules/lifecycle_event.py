#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: lifecycle_event
short_description: Run the scripts of one CodeDeploy lifecycle event on a host
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Runs the scripts the AppSpec lists for one lifecycle event, in order, as the AWS CodeDeploy agent does, and
    reports the event's status and the agent's diagnostics.
  - The revision whose scripts run is the agent's choice. V(ApplicationStop), V(BeforeBlockTraffic) and
    V(AfterBlockTraffic) run the revision named in C(deployment-instructions/<deployment_group_id>_last_successful_install)
    unless the current deployment's C(deployment-archive) already exists; on the first install of a deployment
    group there is none, and the event is V(Skipped) without running anything. In a blue/green rollback
    (O(deployment_type=BLUE_GREEN), O(deployment_creator=codeDeployRollback)) V(BeforeBlockTraffic) and
    V(AfterBlockTraffic) run the revision in C(_most_recent_install), and V(BeforeAllowTraffic) and
    V(AfterAllowTraffic) the last successful one. Every other event runs the current deployment's revision.
    A pointer to a directory that no longer exists fails with the agent's C(did not find an AppSpec file)
    message.
  - Each script runs in a session and process group of its own with stdin at end of file. Its command line is
    the agent's, as an argument list - the script's path, C(su <runas> -c <path>), C(sudo <path>) or
    C(sudo su <runas> -c <path>). A script without C(#!) line runs through C(/bin/sh), as with the agent.
    A script without execute permission is made executable (C(chmod a+x)) with a warning.
  - Scripts run in C(/opt/codedeploy-agent), the working directory the agent's init script gives hooks, or in
    C(/) where that directory does not exist. Scripts should not depend on it; C($(dirname "$0")) is the
    revision's script directory.
  - "The environment is that of the agent's service, whatever session started the module - C(PATH) is
    C(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), C(HOME) the home of the user the module
    runs as, and the system locale (C(LANG), C(LANGUAGE) and C(LC_*) as C(/etc/locale.conf), else
    C(/etc/default/locale), sets them) - plus C(LIFECYCLE_EVENT), C(DEPLOYMENT_ID), C(APPLICATION_NAME),
    C(DEPLOYMENT_GROUP_NAME), C(DEPLOYMENT_GROUP_ID) and the bundle variables of O(bundle_env). Nothing else:
    no C(SSH_*), C(TERM) or AWS credentials, and no terminal (stdin is C(/dev/null), stdout and stderr are
    pipes, and the session has no controlling terminal). C(su) sets C(HOME), C(SHELL), C(USER) and
    C(LOGNAME) for O(appspec) C(runas) users; C(sudo) may reset the environment according to the host's sudoers."
  - "At a script's timeout its process group gets SIGTERM, then SIGKILL after O(kill_grace_seconds): nothing
    it started in its group outlives the deadline (the agent sends SIGTERM only). For scripts with C(runas) or
    C(sudo), the groups of the processes below C(su) are stopped too, because C(su -c) starts the script
    in a session of its own. A script that exits while a background child still holds its stdout or stderr
    fails at the deadline with C(failed to close STDOUT) as with the agent; here the child is stopped too, and
    the message tells how to detach it."
  - Output is appended line by line to C(<deployment_root>/<deployment_group_id>/<deployment_id>/logs/scripts.log)
    of the current deployment (whichever revision's scripts run) and to the agent's deployments log, in the
    agent's formats. C(ongoing-deployment/<deployment_id>) exists while the scripts run. The first 4 MiB of
    each script's output are logged; the rest is read and counted in a last C([fleetops]) entry, so that a script
    that writes without end fills neither the disk nor the result.
  - An error on the host while a script runs (its log on a full disk, say) stops the script's process groups at
    once and fails the event with C(ScriptFailed) and a message that names the error and the file. Any other
    unexpected error fails the task with a message that names the event, without a traceback.
  - The AppSpec is found as at Install (O(appspec_filename), then C(appspec.yaml), then C(appspec.yml)), where
    the agent's hooks only try O(appspec_filename).
  - A succeeded event returns the tail of its log in RV(diagnostics.log_tail); the agent sends an empty one.
options:
  event:
    description:
      - The lifecycle event whose scripts run.
      - V(DownloadBundle), V(Install), V(BlockTraffic) and V(AllowTraffic) run no scripts and are refused; use
        M(fleetops.codedeploy.revision_bundle), M(fleetops.codedeploy.revision_install) and
        M(fleetops.codedeploy.traffic).
    type: str
    required: true
    choices: [BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic, ApplicationStop, DownloadBundle, BeforeInstall,
              Install, AfterInstall, ApplicationStart, ValidateService, BeforeAllowTraffic, AllowTraffic,
              AfterAllowTraffic]
  appspec:
    description:
      - The normalised AppSpec of the current deployment's revision, as RV(fleetops.codedeploy.appspec_info#module:appspec)
        returns it on the controller.
      - Without it the AppSpec is read from the revision on the host and validated there, with the same rules
        as M(fleetops.codedeploy.appspec_info).
    type: dict
  previous_appspec:
    description:
      - The normalised AppSpec of the revision an event runs when that is not the current one (the last
        successful install, or the most recent one in a blue/green rollback).
      - Without it that revision's AppSpec is read on the host, as for O(appspec).
    type: dict
  bundle_env:
    description:
      - The revision's bundle variables, C(BUNDLE_BUCKET), C(BUNDLE_KEY), C(BUNDLE_VERSION) and C(BUNDLE_ETAG)
        for S3, C(BUNDLE_COMMIT) for git. A null value leaves the variable unset, as with the agent.
    type: dict
    default: {}
  deployment_type:
    description: The deployment's type; a blue/green rollback changes which revision some events run.
    type: str
    choices: [IN_PLACE, BLUE_GREEN]
    default: IN_PLACE
  deployment_creator:
    description: Who created the deployment; V(codeDeployRollback) for a rollback, V(autoscaling) for a catch-up
      deployment.
    type: str
    choices: [user, codeDeployRollback, autoscaling]
    default: user
  kill_grace_seconds:
    description: Seconds between SIGTERM and SIGKILL to a script's process group at its timeout.
    type: float
    default: 5
extends_documentation_fragment:
  - fleetops.codedeploy.deployment
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports the scripts that would run, in RV(scripts) with a null RV(scripts[].rc); runs none.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Runs on Linux hosts as root, as the agent does; C(runas) needs C(su) to work without a terminal.
seealso:
  - module: fleetops.codedeploy.appspec_info
  - module: fleetops.codedeploy.revision_install
"""

EXAMPLES = r"""
- name: Stop the application with the previous revision's ApplicationStop scripts
  fleetops.codedeploy.lifecycle_event:
    event: ApplicationStop
    deployment_id: d-A1B2C3D4E
    deployment_group_id: 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d
    deployment_group_name: web-prod
    application_name: web
    previous_appspec: "{{ previous_revision_spec.appspec }}"
  become: true

- name: Start the new revision
  fleetops.codedeploy.lifecycle_event:
    event: ApplicationStart
    deployment_id: d-A1B2C3D4E
    deployment_group_id: 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d
    deployment_group_name: web-prod
    application_name: web
    appspec: "{{ revision_spec.appspec }}"
    bundle_env:
      BUNDLE_BUCKET: releases
      BUNDLE_KEY: web/web-1.4.2.tgz
      BUNDLE_VERSION: null
      BUNDLE_ETAG: 9b2cf535f27731c974343645a3985328
  become: true
  register: application_start

- name: Show what the scripts printed
  ansible.builtin.debug:
    var: application_start.diagnostics.log_tail
"""

RETURN = r"""
status:
  description:
    - V(Succeeded), V(Failed), or V(Skipped) when no script ran (no earlier install for an event that runs the
      previous revision, no scripts listed for the event, or check mode).
  returned: always
  type: str
  sample: Succeeded
scripts:
  description: The scripts that ran (in check mode, that would run), in order.
  returned: always
  type: list
  elements: dict
  contains:
    location:
      description: The script's location as the AppSpec gives it.
      type: str
      sample: scripts/start.sh
    rc:
      description: Its exit status; null if it did not exit by itself, negative if a signal ended it.
      type: int
      sample: 0
    duration:
      description: Seconds from start to end, stopping included.
      type: float
      sample: 1.204
    timed_out:
      description: Whether its deadline passed (still running, or its output still held open).
      type: bool
      sample: false
diagnostics:
  description: The event's diagnostics, as CodeDeploy reports them.
  returned: always
  type: dict
  contains:
    error_code:
      description: V(Success), V(ScriptMissing), V(ScriptNotExecutable), V(ScriptTimedOut), V(ScriptFailed),
        V(UnknownError) or V(OutputsLeftOpen).
      type: str
      sample: ScriptFailed
    script_name:
      description: The location of the script that failed; empty otherwise.
      type: str
      sample: scripts/start.sh
    message:
      description: The agent's message (V(Succeeded) for a succeeded event); also the task's C(msg) on failure.
      type: str
      sample: "Script at specified location: scripts/start.sh failed with exit code 3"
    log_tail:
      description:
        - The newest whole entries of the event's log, at most 2,048 characters, without timestamps, including
          the C(LifecycleEvent - ) and C(Script - ) lines.
      type: str
      sample: "LifecycleEvent - ApplicationStart\nScript - scripts/start.sh\n[stderr]port 8080 in use\n"
revision_dir:
  description: The deployment directory whose scripts ran; null when there is none.
  returned: always
  type: str
  sample: /opt/codedeploy-agent/deployment-root/4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d/d-A1B2C3D4E
start_time:
  description: When the event started, ISO 8601 UTC.
  returned: always
  type: str
  sample: "2025-03-01T10:15:02.114Z"
end_time:
  description: When the event ended, ISO 8601 UTC.
  returned: always
  type: str
  sample: "2025-03-01T10:15:03.320Z"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import LIFECYCLE_EVENTS
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DEPLOYMENT_ARGUMENT_SPEC,
    DeploymentRootError,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import unexpected_error_message
from ansible_collections.fleetops.codedeploy.plugins.module_utils.hooks import (
    DEPLOYMENT_CREATORS,
    DEPLOYMENT_TYPES,
    STATUS_FAILED,
    EventRequest,
    EventRequestError,
    run_event,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            DEPLOYMENT_ARGUMENT_SPEC,
            event=dict(type="str", required=True, choices=list(LIFECYCLE_EVENTS)),
            appspec=dict(type="dict"),
            previous_appspec=dict(type="dict"),
            bundle_env=dict(type="dict", default={}),
            deployment_type=dict(type="str", choices=list(DEPLOYMENT_TYPES), default="IN_PLACE"),
            deployment_creator=dict(type="str", choices=list(DEPLOYMENT_CREATORS), default="user"),
            kill_grace_seconds=dict(type="float", default=5),
        ),
        supports_check_mode=True,
    )
    params = module.params
    request = EventRequest(
        event=params["event"],
        deployment_id=params["deployment_id"],
        deployment_group_id=params["deployment_group_id"],
        deployment_group_name=params["deployment_group_name"],
        application_name=params["application_name"],
        deployment_root=params["deployment_root"],
        appspec_filename=params["appspec_filename"],
        appspec=params["appspec"],
        previous_appspec=params["previous_appspec"],
        bundle_env=params["bundle_env"],
        deployment_type=params["deployment_type"],
        deployment_creator=params["deployment_creator"],
        kill_grace_seconds=params["kill_grace_seconds"],
        check_mode=module.check_mode,
    )
    try:
        result = run_event(request)
    except (EventRequestError, DeploymentRootError) as error:
        module.fail_json(msg=str(error))
    except Exception as error:  # pylint: disable=broad-exception-caught
        module.fail_json(msg=unexpected_error_message(request.event, error))
    for warning in result.warnings:
        module.warn(warning)
    if result.status == STATUS_FAILED:
        module.fail_json(msg=result.diagnostics.message, changed=result.changed, **result.as_dict())
    module.exit_json(changed=result.changed, **result.as_dict())


if __name__ == "__main__":
    main()
