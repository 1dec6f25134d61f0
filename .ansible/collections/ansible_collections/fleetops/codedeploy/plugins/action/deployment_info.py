# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deployment group's history from the ledger (list-deployments), or one deployment whole (get-deployment).

Runs in the controller process and only reads the ledger, so check mode changes nothing either."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import AWS_OPTIONS_SPEC
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_history import (
    STATUSES, HistoryError, select)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger import LedgerError, open_ledger

ARGUMENT_SPEC = dict(
    ledger=dict(type="str", default="~/.fleetops-codedeploy", aliases=["ledger_dir"]),
    aws=dict(type="dict", default={}, options=AWS_OPTIONS_SPEC),
    application_name=dict(type="str"),
    deployment_group_name=dict(type="str"),
    deployment_id=dict(type="str"),
    statuses=dict(type="list", elements="str", default=[], choices=list(STATUSES)),
    created_after=dict(type="str"),
    created_before=dict(type="str"),
    max_results=dict(type="int"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validated, args = self.validate_argument_spec(
            ARGUMENT_SPEC, mutually_exclusive=[("deployment_id", "application_name"),
                                               ("deployment_id", "deployment_group_name")],
            required_together=[("application_name", "deployment_group_name")],
            required_one_of=[("deployment_id", "application_name")])
        ledger = open_ledger(args["ledger"], args["aws"])
        try:
            if args["deployment_id"]:
                deployments = [ledger.load(args["deployment_id"])]
            else:
                deployments = select(ledger.records(), args["application_name"], args["deployment_group_name"],
                                     statuses=args["statuses"], created_after=args["created_after"],
                                     created_before=args["created_before"], max_results=args["max_results"])
        except (LedgerError, HistoryError) as error:
            raise AnsibleActionFail(str(error))
        result.update(changed=False, deployments=deployments, ledger=ledger.location)
        if ledger.warnings:
            result["warnings"] = list(ledger.warnings)
        return result
