# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gather what sets a deployment's inputs (extra vars, the target group's first host, the controller, the groups'
own inputs, the run's limit) and let plugin_utils.deployment_inputs decide them."""
from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import load_extra_vars

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_inputs import (
    InputError, derived_target_group, hosts_in_limit, hosts_left_out, input_names, partial_group_message,
    resolve_inputs, revision_problem, unknown_input_warnings)

GROUP_INPUTS_VAR = "codedeploy_deployment_group_inputs"
display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("argument_spec", "revision_required"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        options = self._task.args.get("argument_spec")
        if not isinstance(options, dict):
            raise AnsibleActionFail("argument_spec: the role's argument specification options (a dict)")
        names = [name for option in options for name in input_names(option)]
        # Said before any refusal: a misspelt input may be why the run is refused. ansible-core attaches a warning
        # given while a task runs to its result, and shows it although the result is no_log, failed or not.
        for warning in unknown_input_warnings(load_extra_vars(self._loader), names):
            display.warning(warning)
        controller = {name: self._templar.template(task_vars[name]) for name in names if name in task_vars}
        target = controller.get("codedeploy_target_group") or derived_target_group(
            str(controller.get("codedeploy_application_name", "")),
            str(controller.get("codedeploy_deployment_group_name", "")))
        members = list(task_vars.get("groups", {}).get(target, []))
        first_host = task_vars["hostvars"][members[0]] if members else {}
        first_host_values = {name: first_host[name] for name in names if name in first_host}
        group_inputs = first_host.get(GROUP_INPUTS_VAR, {}) if members else {}
        try:
            inputs = resolve_inputs(options, first_host_values, controller, group_inputs or {}, target, os.getcwd())
        except InputError as error:
            raise AnsibleActionFail(str(error))
        problem = revision_problem(inputs) if boolean(self._task.args.get("revision_required", False)) else None
        if problem:
            raise AnsibleActionFail(problem)

        limit = task_vars.get("ansible_limit")
        in_play = hosts_in_limit(self._loader, task_vars.get("groups", {}), limit, target) if limit else members
        left_out = hosts_left_out(members, in_play)
        # The revision as given may hold credentials (a token in a git URL): the result is not shown; the plan
        # printed after the fetch shows the inputs with the revision as recorded.
        result.update(inputs=inputs, target_hosts=[host for host in members if host not in left_out],
                      limited=bool(left_out), changed=False, _ansible_no_log=True)
        if left_out and not inputs.get("codedeploy_allow_partial_group"):
            raise AnsibleActionFail(partial_group_message(
                limit, inputs["codedeploy_application_name"], inputs["codedeploy_deployment_group_name"], target,
                left_out, result["target_hosts"]))
        return result
