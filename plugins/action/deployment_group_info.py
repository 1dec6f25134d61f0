# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what a host holds for a deployment group, and prepare the directory the controller pushes bundles into.

The push directory (``push_dir``, under the login user's Ansible ``remote_tmp``) is private to the login user and
made here, in the survey that runs before any wave, so that a wave's bundle push is one file transfer with no command
before it (no temporary directory to make, no home to look up): on a fleet all hosts receive at once, and commands
before each transfer are what spread them. Making it is not reported as a change, as Ansible's own temporary
directories are not.
"""
from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import prepare_push_dir_command

MODULE = "fleetops.codedeploy.deployment_group_info"
display = Display()


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(self._execute_module(MODULE, module_args=dict(self._task.args), task_vars=task_vars))
        if not (result.get("failed") or result.get("unreachable") or self._task.check_mode):
            push_dir = self._prepare_push_dir()
            if push_dir:
                result["push_dir"] = push_dir
        return result

    def _prepare_push_dir(self) -> str | None:
        """Make the login user's push directory; None when it cannot be used (the push then goes through a
        temporary directory, as for any Ansible transfer)."""
        if self._is_become_unprivileged():
            return None  # a module run as another unprivileged user could not read the login user's private directory
        command = prepare_push_dir_command(self.get_shell_option("remote_tmp", default="~/.ansible/tmp"))
        if command is None:
            return None
        made = self._low_level_execute_command(command, sudoable=False)
        push_dir = made_push_dir(made)
        if push_dir:
            return push_dir
        display.vvv(f"push directory not made (rc {made.get('rc')}): {made.get('stderr', '').strip()}; "
                    "bundles go through a temporary directory", host=self._play_context.remote_addr)
        return None


def made_push_dir(made: dict) -> str | None:
    """The push directory from the result of its command (``rc``, ``stdout``): the last line it printed, an absolute
    path (a login banner may come before it), or None when the command failed."""
    lines = made.get("stdout", "").strip().splitlines()
    if made.get("rc") == 0 and lines and lines[-1].startswith("/"):
        return lines[-1]
    return None
