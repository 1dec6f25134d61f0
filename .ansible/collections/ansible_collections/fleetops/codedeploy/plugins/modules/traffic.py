#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: traffic
short_description: Register or deregister instances behind a load balancer and wait until healthy or drained
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - The AllowTraffic and BlockTraffic steps of CodeDeploy, for ELBv2 target groups and for HAProxy.
  - "O(provider=elbv2): registers or deregisters EC2 instances (or IP addresses) in target groups given by name or
    ARN, then polls C(describe_target_health). V(registered) is reached when every target is C(healthy) in every
    group; V(deregistered) when the groups no longer list it (after C(draining))."
  - "O(provider=haproxy): drives servers of one backend through the HAProxy runtime API (a unix socket or a TCP
    address), with nothing but Python's standard library, so it may run on the load balancer's host."
  - "HAProxy V(deregistered): C(set server <backend>/<server> state drain) (no new connections; the ones in
    flight finish), wait until the server has no current sessions and no queued requests, then C(state maint),
    so that stopping the application and its failing health checks change nothing. The server is reported as
    C(MAINT)."
  - "HAProxy V(registered): a server in C(drain) is set C(state ready). A server in C(maint) is not set ready
    directly, because HAProxy counts a server leaving maintenance as UP at once, before any health check ran, and
    sends it traffic until C(fall) checks have failed. It goes C(state drain) (still no new traffic), C(health
    down), then C(state ready), so it takes traffic only after C(rise) health checks have passed. The task
    waits until HAProxy reports it UP with a passed check. A server without health checks is UP as soon as it
    is ready: nothing can tell whether it answers."
  - A target already in the wanted state is left alone (C(changed=false)); a target on its way there (draining,
    or registered but not yet healthy) is only waited for.
options:
  provider:
    description: The load balancer.
    type: str
    required: true
    choices: [elbv2, haproxy]
  state:
    description:
      - V(registered) takes traffic and has passed its health check; V(deregistered) takes no traffic and has
        none in flight.
    type: str
    default: registered
    choices: [registered, deregistered]
  targets:
    description:
      - "V(elbv2): EC2 instance IDs or IP addresses, each optionally with a port (V(i-0abc12:8080),
        V(10.0.0.5:8080), V([2001:db8::5]:8080)); without a port the target group's port is used."
      - "V(haproxy): server names of O(haproxy_backend) (the deploy role uses the inventory hostname). A name with
        a character HAProxy does not allow in names (anything but letters, digits, V(-), V(_), V(.), V(:)) is
        refused before any command is sent."
      - Every target is registered or deregistered in every group of O(target_groups).
    type: list
    elements: str
    required: true
  target_groups:
    description:
      - Target group names or ARNs (C(arn:...)). Required for V(elbv2); not for V(haproxy).
    type: list
    elements: str
  haproxy_socket:
    description:
      - The HAProxy runtime API, a unix socket path (V(/run/haproxy/admin.sock)) or V(host:port)
        (V(127.0.0.1:9999), V([::1]:9999)). It needs C(level admin), for example
        C(stats socket /run/haproxy/admin.sock mode 660 level admin) in the C(global) section of haproxy.cfg.
      - Required for V(haproxy).
    type: str
  haproxy_backend:
    description:
      - The HAProxy backend holding the servers. Required for V(haproxy).
      - Only letters, digits, V(-), V(_), V(.) and V(:), as HAProxy allows; any other name is refused before any
        command is sent.
    type: str
  wait:
    description:
      - Wait until every target has reached O(state).
      - Without it the task returns after the first step. A deregistered HAProxy server is then left in
        C(drain), not C(maint); an ELBv2 target is left C(draining).
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds; the task fails when a target has not reached O(state) by then, naming each
        such target and its last state. V(0) checks once.
      - The default is CodeDeploy's one hour for AllowTraffic.
      - "For an V(elbv2) deregistration the wait also ends at the longest C(deregistration_delay.timeout_seconds)
        of the groups plus 60 seconds: by then the load balancer has dropped the target and its connections, so a
        target still listed means something else is wrong."
      - For V(haproxy) a deregistration waits for the connections in flight for as long as this allows; HAProxy
        has no drain deadline of its own.
    type: int
    default: 3600
extends_documentation_fragment:
  - fleetops.codedeploy.aws
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is changed; RV(targets[].changed) says which targets would get a step.
  diff_mode:
    support: full
    details: One line per target, its state before and after (in check mode, the state it would end in).
  platform:
    platforms: posix
notes:
  - "Run it on the controller (C(delegate_to: localhost)) or, for HAProxy, on the load balancer's host
    (C(delegate_to: <lb host>)) when its runtime API listens on a unix socket there."
  - The O(aws) option is only used by V(elbv2), which needs boto3 where the module runs.
  - "ELBv2 health checks only run in a target group attached to a load balancer; in any other, targets stay
    C(unused) (C(Target.NotInUse)) and never become C(healthy)."
seealso:
  - name: HAProxy management guide, the runtime API
    description: C(set server), C(show stat) and C(show servers state).
    link: https://docs.haproxy.org/2.6/management.html#9.3
  - name: ELBv2 target health states
    description: What C(initial), C(healthy), C(draining), C(unused) mean.
    link: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
"""

EXAMPLES = r"""
- name: Take the host out of the HAProxy backend before stopping the application
  fleetops.codedeploy.traffic:
    provider: haproxy
    state: deregistered
    targets: ["{{ inventory_hostname }}"]
    haproxy_socket: /run/haproxy/admin.sock
    haproxy_backend: webapp
  delegate_to: lb-1

- name: Put it back once ValidateService passed, and wait until its health check passes
  fleetops.codedeploy.traffic:
    provider: haproxy
    state: registered
    targets: ["{{ inventory_hostname }}"]
    haproxy_socket: 10.0.0.2:9999
    haproxy_backend: webapp
    wait_timeout: 300
  delegate_to: localhost

- name: Register instances in two target groups, one on another port
  fleetops.codedeploy.traffic:
    provider: elbv2
    state: registered
    targets:
      - i-0a1b2c3d4e5f67890
      - i-0fedcba9876543210:8080
    target_groups:
      - webapp-blue
      - arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/webapp-admin/6d0ecf831eec9f09
    aws:
      region: eu-west-1
  delegate_to: localhost

- name: Deregister without waiting for the deregistration delay
  fleetops.codedeploy.traffic:
    provider: elbv2
    state: deregistered
    targets: "{{ ansible_play_hosts | map('extract', hostvars, 'ec2_instance_id') | list }}"
    target_groups: [webapp-blue]
    wait: false
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
targets:
  description: Each target in each target group or backend, in the order given.
  returned: success, and on a timeout
  type: list
  elements: dict
  contains:
    target:
      description: The target as given.
      returned: always
      type: str
      sample: web-1
    target_group:
      description: The target group's name.
      returned: for elbv2
      type: str
      sample: webapp-blue
    backend:
      description: The HAProxy backend.
      returned: for haproxy
      type: str
      sample: webapp
    state_before:
      description:
        - The state before the task. V(elbv2) - the target health state (C(initial), C(healthy), C(unhealthy),
          C(draining), C(unused), C(unavailable)), or C(unregistered) when the group does not list the target.
          V(haproxy) - the server's status as C(show stat) shows it (C(UP), C(DOWN), C(DOWN 1/2), C(MAINT),
          C(DRAIN), C(no check), ...).
      returned: always
      type: str
      sample: UP
    state:
      description: The state at the end, in the same terms; in check mode, the state before.
      returned: always
      type: str
      sample: MAINT
    detail:
      description:
        - "V(elbv2) - the health reason and description (C(Target.FailedHealthChecks: Health checks failed))."
        - V(haproxy) - the administrative state (ready, drain, maint), the sessions in flight and the last check.
      returned: always
      type: str
      sample: "maint, 0 sessions"
    changed:
      description: Whether the task registered, deregistered or changed the state of this target.
      returned: always
      type: bool
      sample: true
waited_seconds:
  description: Seconds from the first step until every target reached the state (or the wait ended).
  returned: success, and on a timeout
  type: float
  sample: 12.4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
    AWS_ARGUMENT_SPEC,
    AWS_ERRORS,
    describe_aws_error,
    require_boto3,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.traffic import (
    STATES,
    TrafficError,
    open_provider,
    reconcile,
    state_diff,
    timeout_message,
)

OPTIONS_OF_PROVIDER = {"elbv2": ("target_groups",), "haproxy": ("haproxy_socket", "haproxy_backend")}


def check_provider_options(module: AnsibleModule) -> None:
    params = module.params
    for provider, options in OPTIONS_OF_PROVIDER.items():
        given = [option for option in options if params[option] is not None]
        if provider != params["provider"] and given:
            module.fail_json(msg=f"{', '.join(given)} belong to provider {provider}, not {params['provider']}")
    if params["provider"] == "elbv2":
        require_boto3(module, "for provider elbv2")


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            provider=dict(type="str", required=True, choices=list(OPTIONS_OF_PROVIDER)),
            state=dict(type="str", default="registered", choices=list(STATES)),
            targets=dict(type="list", elements="str", required=True),
            target_groups=dict(type="list", elements="str"),
            haproxy_socket=dict(type="str"),
            haproxy_backend=dict(type="str"),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=3600),
            **AWS_ARGUMENT_SPEC,
        ),
        required_if=[("provider", "elbv2", ["target_groups"]),
                     ("provider", "haproxy", ["haproxy_socket", "haproxy_backend"])],
        supports_check_mode=True,
    )
    params = module.params
    if params["wait_timeout"] < 0:
        module.fail_json(msg=f"wait_timeout must be 0 or more seconds, not {params['wait_timeout']}")
    try:
        check_provider_options(module)
        provider = open_provider(params["provider"], params["targets"], params["target_groups"],
                                 params["haproxy_socket"], params["haproxy_backend"], params["aws"])
        outcome = reconcile(provider, params["state"], params["wait"], params["wait_timeout"], module.check_mode)
    except TrafficError as error:
        module.fail_json(msg=error.message)
    except AWS_ERRORS as error:
        module.fail_json(msg=describe_aws_error(error, f"ELBv2 {getattr(error, 'operation_name', 'request')}"))
    result = dict(changed=outcome.changed, waited_seconds=outcome.waited_seconds,
                  targets=[report.as_dict(provider.place_key) for report in outcome.reports])
    if module._diff:
        result["diff"] = state_diff(outcome, provider, params["state"], params["wait"], module.check_mode)
    if outcome.timed_out:
        module.fail_json(msg=timeout_message(outcome, params["state"], provider.place_key), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
