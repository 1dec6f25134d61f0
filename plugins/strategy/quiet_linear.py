# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: quiet_linear
short_description: The linear strategy, without the lines its includes print
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Runs a play exactly as P(ansible.builtin.linear#strategy) does, every host in lockstep, task by task.
  - Shows it without the bookkeeping of C(include_tasks) and C(include_role) tasks, to every callback (the stdout
    callback, ansible-runner's and AWX's, the deployment report) - their task banners, their C(included:) lines, and
    the includes a host skipped. The tasks they include are shown as usual, and so is an include that failed or
    carries a warning or deprecation, under its own task banner.
  - The deployment playbooks of this collection run their plays with it. Their flow hands each host a task file by
    name at every wave; shown, those includes were most of the screen.
notes:
  - ansible-core warns, once a run, that strategy plugins outside ansible.builtin are deprecated. With
    C(-e codedeploy_show_includes=true) the deployment playbooks run the same flow on P(ansible.builtin.linear#strategy),
    every include shown, without the warning.
"""

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.include_bookkeeping import IncludeEvents


class StrategyModule(LinearStrategyModule):
    """Linear; while the play runs, the task queue manager sends callbacks every event but an include's own."""

    def run(self, iterator, play_context):
        send_to_callbacks = self._tqm.send_callback
        include_events = IncludeEvents()

        def send_shown(method_name, *args, **kwargs):
            for name, arguments, keywords in include_events.route(method_name, args, kwargs):
                send_to_callbacks(name, *arguments, **keywords)

        self._tqm.send_callback = send_shown
        try:
            return super().run(iterator, play_context)
        finally:
            self._tqm.send_callback = send_to_callbacks
