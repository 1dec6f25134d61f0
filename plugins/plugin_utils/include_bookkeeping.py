# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which callback events only say that a play included a task file: an include's banner, its ``included:`` lines,
its start, its ok or skipped result. The deployment play hands every host a task file by name at every wave
(roles/deploy/tasks/run.yml); shown, these events were most of the operator's screen. The included tasks are shown
as usual, and so is an include that failed."""
from __future__ import annotations

from typing import Any

from ansible.playbook.task import Task
from ansible.playbook.task_include import TaskInclude

# Events about one task (the task, or a result that holds it) that say nothing when the task is an include.
INCLUDE_TASK_EVENTS = frozenset({
    "v2_playbook_on_task_start",
    "v2_runner_on_start",
    "v2_runner_on_ok",
    "v2_runner_on_skipped",
    "v2_runner_item_on_ok",
    "v2_runner_item_on_skipped",
})
# The event that lists the hosts a file was included for.
INCLUDED_FILE_EVENT = "v2_playbook_on_include"


def event_task(argument: Any) -> Task | None:
    """The task an event's argument is, or holds (a task result's)."""
    if isinstance(argument, Task):
        return argument
    task = getattr(argument, "task", None)
    return task if isinstance(task, Task) else None


def is_include_bookkeeping(method_name: str, arguments: tuple) -> bool:
    """Whether the callback event ``method_name`` with ``arguments`` only says that a task file was included."""
    if method_name == INCLUDED_FILE_EVENT:
        return True
    if method_name not in INCLUDE_TASK_EVENTS:
        return False
    return any(isinstance(event_task(argument), TaskInclude) for argument in arguments)
