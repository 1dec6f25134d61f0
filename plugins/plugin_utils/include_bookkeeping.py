# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which callback events only say that a play included a task file: an include's banner, its ``included:`` lines,
its start, its ok or skipped result. The deployment play hands every host a task file by name at every wave
(roles/deploy/tasks/run.yml); shown, these events were most of the operator's screen. The included tasks are shown
as usual, and so is an include that failed or that carries a warning or deprecation: under its own task's banner
(IncludeEvents sends the include's held-back start first), not the banner of the task before it, which is what
the default callback prints for a result whose task never started."""
from __future__ import annotations

import threading
from typing import Any

from ansible.playbook.task import Task
from ansible.playbook.task_include import TaskInclude

# Events about one task (the task, or a result that holds it) that say nothing when the task is an include.
INCLUDE_TASK_EVENTS = frozenset({
    "v2_playbook_on_task_start",
    "v2_playbook_on_handler_task_start",
    "v2_runner_on_start",
    "v2_runner_on_ok",
    "v2_runner_on_skipped",
    "v2_runner_item_on_ok",
    "v2_runner_item_on_skipped",
})
# The events that start a task (and name the banner its results print under).
TASK_START_EVENTS = frozenset({"v2_playbook_on_task_start", "v2_playbook_on_handler_task_start"})
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


def carries_messages(arguments: tuple) -> bool:
    """Whether an event's result holds warnings or deprecations (which the callbacks print with the result)."""
    # The task queue manager is handed a result whose unified result (utr) holds them; the copy a callback is given
    # has them as its own properties.
    for argument in arguments:
        utr = getattr(argument, "utr", None)
        holder = utr if utr is not None else argument
        if getattr(holder, "warnings", None) or getattr(holder, "deprecations", None):
            return True
    return False


class IncludeEvents:
    """Which events to send the callbacks, in order, for each event the task queue manager is asked to send: an
    include's bookkeeping is held back; its start is sent after all, just before the first of its events that says
    something (a failure, an unreachable host, a result with a warning or deprecation). Called from the strategy's
    thread and its results thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held_start: tuple[str, tuple[str, tuple, dict]] | None = None  # (the include's uuid, its start event)

    def route(self, method_name: str, arguments: tuple, keywords: dict) -> list[tuple[str, tuple, dict]]:
        event = (method_name, arguments, keywords)
        task = next((found for found in map(event_task, arguments) if found is not None), None)
        with self._lock:
            if method_name in TASK_START_EVENTS:
                self._held_start = None
            if is_include_bookkeeping(method_name, arguments):
                if method_name in TASK_START_EVENTS:
                    self._held_start = (task._uuid, event)
                    return []
                if not carries_messages(arguments):
                    return []
            if self._held_start is not None and isinstance(task, TaskInclude) and task._uuid == self._held_start[0]:
                held, self._held_start = self._held_start[1], None
                return [held, event]
            return [event]
