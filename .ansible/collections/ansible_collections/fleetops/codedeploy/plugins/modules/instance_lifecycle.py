#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: instance_lifecycle
short_description: Run an instance's lifecycle events, in order, in one call
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Runs the given lifecycle events on the host in order, as the CodeDeploy service asks the agent for them one by
    one. Scripted events run as M(fleetops.codedeploy.lifecycle_event) runs them, DownloadBundle as
    M(fleetops.codedeploy.revision_bundle) and Install as M(fleetops.codedeploy.revision_install).
  - The first failed event fails the instance and the later events are Skipped. One call instead of one task per
    event saves a round trip per event; the result still reports every event.
  - Pushes the bundle from the controller first when asked to (O(bundle)); a damaged transfer fails DownloadBundle
    and nothing is stored under the bundle's name.
  - Records the outcome in C(<deployment_root>/deployment-instructions/<dg-id>_last_instance_deployment.json), which
    orders instances by health in the next deployment.
options:
  events:
    description: Lifecycle event names, in the order to run them.
    type: list
    elements: str
    required: true
  appspec:
    description: The revision's AppSpec as M(fleetops.codedeploy.appspec_info) returns it (parsed on the controller).
    type: dict
    required: true
  bundle:
    description:
      - The bundle on the host, C({src, bundle_type, sha256}).
      - With C(controller_src), a path on the controller, the action plugin first pushes that file over the task's
        connection (one transfer, no extra module run) into C(push_dir) when given (the login user's push directory
        that M(fleetops.codedeploy.deployment_group_info) returns; nothing runs before the transfer), else into the
        remote temporary directory; the module checks its sha256, stores it at C(src) before DownloadBundle and
        removes the pushed file (the action removes it when DownloadBundle does not run). Without
        C(controller_src), C(src) must already be on the host.
      - "With C(pull), the host downloads the bundle itself during DownloadBundle, into C(src): C(pull) is
        C({url}) for an HTTP(S) revision, or C({bucket, key, version_id, aws, endpoint_url}) for S3, for which the
        action plugin presigns a GET of that object (valid two hours, made right before the module call that runs
        DownloadBundle) with the controller's credentials (C(aws) as the role's C(codedeploy_aws)), for the
        endpoint the hosts use (C(endpoint_url), default the one of C(aws)). The host needs no AWS credentials."
    type: dict
    required: true
  bundle_url:
    description:
      - The URL the host downloads the bundle from (the action plugin sets it from O(bundle)'s C(pull)). It is a
        credential (a presigned URL's signature, a repository token), never logged nor returned.
      - The download streams to disk, stops past 2 GiB (the limit on what a bundle unpacks to), is tried again up
        to 4 times with a growing pause on 5xx answers and refused, reset or cut connections, and is kept only when
        its sha256 is O(bundle)'s; anything else fails DownloadBundle with a message naming both digests, and
        nothing is installed.
    type: str
  traffic:
    description:
      - The deployment group's load balancer, for this instance; with it, the action plugin runs BlockTraffic
        (deregister, wait until drained) and AllowTraffic (register, wait until healthy) on the controller, between
        module calls for the host events, with the logic of M(fleetops.codedeploy.traffic). Without it, those two
        events are Skipped.
      - "C(load_balancer_info) is C({target_groups: [names or ARNs]}) or C({haproxy: {socket, backend}});
        C(wait_timeout) in seconds (default 3600, as CodeDeploy's AllowTraffic); C(aws) as the role's
        C(codedeploy_aws). The instance's target is its C(codedeploy_instance_id) (ELBv2) or
        C(codedeploy_haproxy_server) (HAProxy) host variable, else its inventory name."
    type: dict
  bundle_env:
    description: BUNDLE_BUCKET, BUNDLE_KEY, BUNDLE_VERSION, BUNDLE_ETAG or BUNDLE_COMMIT for the hooks; nulls left unset.
    type: dict
    default: {}
  deployment_type:
    description: The deployment type, which decides which revision some traffic events run.
    type: str
    choices: [IN_PLACE, BLUE_GREEN]
    default: IN_PLACE
  deployment_creator:
    description: C(user), C(codeDeployRollback) for a rollback, or C(autoscaling) for a catch-up deployment.
    type: str
    choices: [user, codeDeployRollback, autoscaling]
    default: user
  file_exists_behavior:
    description: The deployment's file_exists_behavior; the AppSpec's own key wins.
    type: str
    choices: [DISALLOW, OVERWRITE, RETAIN]
    default: DISALLOW
  ignore_application_stop_failures:
    description: A failed ApplicationStop, BeforeBlockTraffic or AfterBlockTraffic does not fail the instance.
    type: bool
    default: false
  max_revisions:
    description: Revisions kept for the group on the host, counting the new one.
    type: int
    default: 5
  kill_grace_seconds:
    description: Seconds between SIGTERM and SIGKILL to a hook script's process group past its timeout.
    type: float
    default: 5
  final_segment:
    description:
      - Whether these events end the instance's part in the deployment. The action plugin sets V(false) on every
        module call but the last when traffic control cuts the events; such a call that succeeds records the
        instance's last deployment as V(InProgress), so an instance whose later traffic event fails is not left
        recorded as succeeded (the next deployment orders it as unhealthy).
    type: bool
    default: true
extends_documentation_fragment:
  - fleetops.codedeploy.deployment
  - ansible.builtin.action_common_attributes
attributes:
  action:
    description: An action plugin pushes the bundle from the controller before the module runs on the host.
    support: full
  check_mode:
    support: none
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The deploy role does not run this module in check mode; it prints the plan instead.
"""

EXAMPLES = r"""
- name: Run an in-place instance's events
  fleetops.codedeploy.instance_lifecycle:
    deployment_id: d-A1B2C3D4E
    deployment_group_id: 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d
    deployment_group_name: prod
    application_name: webapp
    events: [ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService]
    appspec: "{{ revision_spec.appspec }}"
    bundle:
      src: /opt/codedeploy-agent/deployment-root/fleetops-bundles/0f3c.tar
      bundle_type: tar
      sha256: 0f3c...
"""

RETURN = r"""
status:
  description: Succeeded or Failed.
  returned: always
  type: str
failed_event:
  description: The event that failed the instance, or null.
  returned: always
  type: str
bundle_push:
  description: The bundle's transfer from the controller, when there was one.
  returned: when O(bundle) has C(controller_src)
  type: dict
  contains:
    bytes:
      description: The bundle's size.
      type: int
    start_time:
      description: ISO 8601 UTC.
      type: str
    end_time:
      description: ISO 8601 UTC.
      type: str
bundle_pull:
  description: The bundle's download by the host, when there was one.
  returned: when the host downloaded the bundle (O(bundle_url))
  type: dict
  contains:
    bytes:
      description: The bundle's size.
      type: int
    start_time:
      description: ISO 8601 UTC.
      type: str
    end_time:
      description: ISO 8601 UTC.
      type: str
lifecycle_events:
  description: Every event asked for, in order.
  returned: always
  type: list
  elements: dict
  contains:
    lifecycle_event_name:
      description: The event.
      type: str
    status:
      description: Succeeded, Failed or Skipped.
      type: str
    start_time:
      description: ISO 8601 UTC, null when Skipped after a failure.
      type: str
    end_time:
      description: ISO 8601 UTC, null when Skipped after a failure.
      type: str
    diagnostics:
      description: error_code, script_name, message and log_tail (at most 2,048 characters), as the agent reports.
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import (
    CREATOR_USER, CREATORS, DEPLOYMENT_TYPES, IN_PLACE)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DEPLOYMENT_ARGUMENT_SPEC, DeploymentRootError, validate_identifiers)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import unexpected_error_message
from ansible_collections.fleetops.codedeploy.plugins.module_utils.instance_lifecycle import (
    LifecycleRequest, failure_message, run_lifecycle)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            DEPLOYMENT_ARGUMENT_SPEC,
            events=dict(type="list", elements="str", required=True),
            appspec=dict(type="dict", required=True),
            bundle=dict(type="dict", required=True),
            bundle_env=dict(type="dict", default={}),
            traffic=dict(type="dict"),
            deployment_type=dict(type="str", default=IN_PLACE, choices=list(DEPLOYMENT_TYPES)),
            deployment_creator=dict(type="str", default=CREATOR_USER, choices=list(CREATORS)),
            file_exists_behavior=dict(type="str", default="DISALLOW", choices=["DISALLOW", "OVERWRITE", "RETAIN"]),
            ignore_application_stop_failures=dict(type="bool", default=False),
            max_revisions=dict(type="int", default=5),
            kill_grace_seconds=dict(type="float", default=5),
            final_segment=dict(type="bool", default=True),
            bundle_url=dict(type="str", no_log=True),
        ),
        supports_check_mode=False,
    )
    params = module.params
    try:
        validate_identifiers(params["deployment_id"], params["deployment_group_id"])
    except DeploymentRootError as error:
        module.fail_json(msg=str(error))
    request = LifecycleRequest(**{key: params[key] for key in LifecycleRequest.__dataclass_fields__
                                  if key in params})
    try:
        result = run_lifecycle(request, module.run_command)
    except Exception as error:  # pylint: disable=broad-exception-caught
        # Each event's own errors are in its record; this is what comes after them (the instance's outcome file).
        module.fail_json(msg=unexpected_error_message("The lifecycle events " + ", ".join(request.events), error),
                         changed=True)
    if result["status"] == "Failed":
        module.fail_json(msg=failure_message(result), changed=True, **result)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
