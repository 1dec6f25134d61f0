# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push the bundle, when the host lacks it, and run the instance's lifecycle events: one task per instance.

The bundle goes over the task's own connection (one file transfer into the remote temporary directory, no
module round trip); the module then checks its sha256 and stores it under its content address before
DownloadBundle. With ``become``, the transfer is made as the login user and the module, run as root, moves it.
"""
from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import utc_timestamp

MODULE = "fleetops.codedeploy.instance_lifecycle"


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        module_args = dict(self._task.args)
        bundle = dict(module_args.get("bundle") or {})
        controller_src = bundle.pop("controller_src", None)
        push = None
        try:
            if controller_src:
                bundle["pushed"], push = self._push(controller_src, os.path.basename(bundle["src"]))
            module_args["bundle"] = bundle
            result.update(self._execute_module(MODULE, module_args=module_args, task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if push:
            result["bundle_push"] = push
        return result

    def _push(self, controller_src: str, name: str) -> tuple[str, dict]:
        """Transfer the bundle into the remote temporary directory; return its path there and the transfer's times."""
        if not os.path.isfile(controller_src):
            raise AnsibleActionFail(f"bundle.controller_src {controller_src} is not a file on the controller: "
                                    "fetch the revision again (fleetops.codedeploy.revision_fetch)")
        remote_tmp = self._connection._shell.tmpdir or self._make_tmp_path()
        pushed = self._connection._shell.join_path(remote_tmp, name)
        start = utc_timestamp()
        self._transfer_file(controller_src, pushed)
        end = utc_timestamp()
        self._fixup_perms2([remote_tmp, pushed], execute=False)
        return pushed, {"bytes": os.path.getsize(controller_src), "start_time": start, "end_time": end}
