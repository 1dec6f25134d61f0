# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what a host holds for a deployment group, and prepare the directory the controller pushes bundles into.

The push directory (``push_dir``, under the login user's Ansible ``remote_tmp``) is private to the login user and
made here, in the survey that runs before any wave, so that a wave's bundle push is one file transfer with no command
before it (no temporary directory to make, no home to look up): on a fleet all hosts receive at once, and commands
before each transfer are what spread them. Making it is not reported as a change, as Ansible's own temporary
directories are not. A push directory another user could control (in a shared ``remote_tmp`` such as ``/tmp``) is
refused with a warning, and the push goes through a temporary directory.
"""
from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    PUSH_DIR_REFUSED, prepare_push_dir_command)

MODULE = "fleetops.codedeploy.deployment_group_info"
display = Display()


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        wanted = boolean(args.pop("prepare_push_dir", True), strict=False)
        result.update(self._execute_module(MODULE, module_args=args, task_vars=task_vars))
        if wanted and not (result.get("failed") or result.get("unreachable") or self._task.check_mode):
            push_dir, warning = self._prepare_push_dir()
            if push_dir:
                result["push_dir"] = push_dir
            if warning:
                display.warning(warning)
        return result

    def _prepare_push_dir(self) -> tuple[str | None, str | None]:
        """(the login user's push directory, None), or (None, why it was refused) when another user may control
        it, or (None, None) when it cannot be made; without one the push goes through a temporary directory, as
        for any Ansible transfer."""
        if self._is_become_unprivileged():
            # A module run as another unprivileged user could not read the login user's private directory.
            return None, None
        command = prepare_push_dir_command(self.get_shell_option("remote_tmp", default="~/.ansible/tmp"))
        if command is None:
            return None, None
        made = self._low_level_execute_command(command, sudoable=False)
        push_dir = made_push_dir(made)
        if push_dir:
            return push_dir, None
        lines = made.get("stdout", "").strip().splitlines()
        refusal = next((line for line in lines if line.startswith(PUSH_DIR_REFUSED)), None)
        if refusal:
            return None, (f"{refusal[len(PUSH_DIR_REFUSED):].strip()}: the push directory is not used, since it is "
                          "not a directory private to the login user (owned by it, no group or other access, not a "
                          "symlink) and another user may read or change what is pushed there; bundles go through a "
                          "temporary directory instead. Remove it, or set remote_tmp to a directory of the login "
                          "user's own.")
        display.vvv(f"push directory not made (rc {made.get('rc')}): {made.get('stderr', '').strip()}; "
                    "bundles go through a temporary directory", host=self._play_context.remote_addr)
        return None, None


def made_push_dir(made: dict) -> str | None:
    """The push directory from the result of its command (``rc``, ``stdout``): the last line it printed, an absolute
    path (a login banner may come before it), or None when the command failed or refused the directory."""
    lines = made.get("stdout", "").strip().splitlines()
    if made.get("rc") == 0 and lines and lines[-1].startswith("/"):
        return lines[-1]
    return None
