# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: deployment
short_description: Linear, with each task run only on the hosts it names
version_added: 0.2.0
author:
  - fleetops maintainers (@fleetops)
description:
  - The strategy of the fleetops.codedeploy playbooks' deployment play, whose hosts are the controller and every
    instance the deployment can touch. It is the C(linear) strategy, except that a task whose own C(vars) define
    C(codedeploy_run_on) runs only on the hosts that list names (templated once, when the task comes up). A task
    whose list is empty is not run, and not shown, at all.
  - This is how one play runs a deployment's waves one after another, each on its own instances, with the
    controller's steps between them, and leaves out what a deployment does not need (a rollback, a blue/green
    stage, a final pass) without printing a play, a task or a C(skipping) line for it.
  - Tasks without C(codedeploy_run_on) run on every host of the play, as with C(linear).
notes:
  - The list is templated with the variables of the first host the task would run on; give it values that are the
    same for every host (results registered by C(run_once) tasks, loop variables, literals).
"""

from ansible.errors import AnsibleError
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule
from ansible.template import Templar

RUN_ON_VAR = "codedeploy_run_on"


def run_on_names(value) -> set[str]:
    """The host names a templated codedeploy_run_on gives: a list of names, or one name."""
    if value is None:
        return set()
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, (list, tuple, set)) and all(isinstance(name, str) for name in value):
        return set(value)
    raise AnsibleError(f"{RUN_ON_VAR} must be a host name or a list of host names, not {value!r}")


class StrategyModule(LinearStrategyModule):

    def _get_next_task_lockstep(self, hosts, iterator):
        # The hosts a task leaves out are moved past it, as if it had run there; when it leaves out every host, the
        # next task is taken (linear would otherwise take an empty list for the end of the play).
        while True:
            host_tasks = super()._get_next_task_lockstep(hosts, iterator)
            if not host_tasks:
                return host_tasks
            task = host_tasks[0][1]
            if RUN_ON_VAR not in (task.vars or {}):
                return host_tasks
            names = self._run_on(iterator, host_tasks[0][0], task)
            kept = [(host, task) for host, task in host_tasks if host.name in names]
            if kept:
                return kept

    def _run_on(self, iterator, host, task) -> set[str]:
        task_vars = self._variable_manager.get_vars(play=iterator._play, host=host, task=task,
                                                    _hosts=self._hosts_cache, _hosts_all=self._hosts_cache_all)
        self.add_tqm_variables(task_vars, play=iterator._play)
        return run_on_names(Templar(loader=self._loader, variables=task_vars).template(task.vars[RUN_ON_VAR]))
