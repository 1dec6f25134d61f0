# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which callback events the deployment plays' strategy keeps from the callbacks: an include's own, and no other."""
from __future__ import annotations

import pytest
from ansible.executor.task_result import CallbackTaskResult
from ansible.inventory.host import Host
from ansible.playbook.role_include import IncludeRole
from ansible.playbook.task import Task
from ansible.playbook.task_include import TaskInclude

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.include_bookkeeping import (
    INCLUDE_TASK_EVENTS, IncludeEvents, event_task, is_include_bookkeeping)

HOST = Host("fleet-h1")


def result_of(task: Task) -> CallbackTaskResult:
    return CallbackTaskResult(host=HOST, task=task, utr=None)


@pytest.mark.parametrize("include", [TaskInclude(), IncludeRole()], ids=["include_tasks", "include_role"])
def test_an_include_says_nothing_but_its_failure(include):
    assert is_include_bookkeeping("v2_playbook_on_task_start", (include, False))
    assert is_include_bookkeeping("v2_playbook_on_handler_task_start", (include,))
    assert is_include_bookkeeping("v2_runner_on_start", (HOST, include))
    assert is_include_bookkeeping("v2_runner_on_ok", (result_of(include),))
    assert is_include_bookkeeping("v2_runner_on_skipped", (result_of(include),))
    assert is_include_bookkeeping("v2_runner_item_on_skipped", (result_of(include),))
    assert not is_include_bookkeeping("v2_runner_on_failed", (result_of(include),))
    assert not is_include_bookkeeping("v2_runner_on_unreachable", (result_of(include),))


def test_the_lines_that_list_the_hosts_of_an_included_file_are_not_shown():
    assert is_include_bookkeeping("v2_playbook_on_include", (object(),))


@pytest.mark.parametrize("event", sorted(INCLUDE_TASK_EVENTS))
def test_every_event_of_a_task_that_is_not_an_include_is_shown(event):
    task = Task()
    assert not is_include_bookkeeping(event, (task, False))
    assert not is_include_bookkeeping(event, (result_of(task),))


def test_events_about_no_task_are_shown():
    assert not is_include_bookkeeping("v2_playbook_on_play_start", (object(),))
    assert not is_include_bookkeeping("v2_playbook_on_stats", (object(),))
    assert not is_include_bookkeeping("v2_runner_on_ok", ("not a result",))


def test_the_task_of_an_event_is_the_task_itself_or_the_one_a_result_holds():
    task = Task()
    assert event_task(task) is task
    assert event_task(result_of(task)) is task
    assert event_task(HOST) is None


class Noted:
    """A task result with a warning, as a result's ``utr`` holds it."""

    def __init__(self, task):
        self.task = task
        self.utr = type("Utr", (), {"warnings": ["a warning"], "deprecations": None})()


def test_a_failed_include_is_shown_under_its_own_start_not_the_task_before():
    events = IncludeEvents()
    before, include = Task(), TaskInclude()
    assert events.route("v2_playbook_on_task_start", (before, False), {}) == [
        ("v2_playbook_on_task_start", (before, False), {})]
    assert events.route("v2_playbook_on_task_start", (include, False), {}) == []
    assert events.route("v2_runner_on_start", (HOST, include), {}) == []
    failed = result_of(include)
    assert events.route("v2_runner_on_failed", (failed,), {"ignore_errors": False}) == [
        ("v2_playbook_on_task_start", (include, False), {}),
        ("v2_runner_on_failed", (failed,), {"ignore_errors": False})]
    # the start is sent once: a second host's failure follows it
    assert events.route("v2_runner_on_failed", (failed,), {}) == [("v2_runner_on_failed", (failed,), {})]


def test_a_skipped_include_with_a_deprecation_is_shown():
    events = IncludeEvents()
    include = TaskInclude()
    events.route("v2_playbook_on_task_start", (include, False), {})
    noted = Noted(include)
    assert events.route("v2_runner_on_skipped", (noted,), {}) == [
        ("v2_playbook_on_task_start", (include, False), {}), ("v2_runner_on_skipped", (noted,), {})]


def test_an_include_that_says_nothing_is_not_shown_and_its_start_is_not_sent_later():
    events = IncludeEvents()
    include, after = TaskInclude(), Task()
    events.route("v2_playbook_on_task_start", (include, False), {})
    assert events.route("v2_runner_on_ok", (result_of(include),), {}) == []
    assert events.route("v2_playbook_on_include", (object(),), {}) == []
    assert events.route("v2_playbook_on_task_start", (after, False), {}) == [
        ("v2_playbook_on_task_start", (after, False), {})]
    failed = result_of(after)
    assert events.route("v2_runner_on_failed", (failed,), {}) == [("v2_runner_on_failed", (failed,), {})]
