# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger as the reports and history read it: a directory on the controller."""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import write_atomically
from ansible_collections.fleetops.codedeploy.plugins.module_utils.ledger import Ledger as DirectoryLedger


class LedgerError(Exception):
    """A record that is missing or damaged; the message names where it is."""


class Ledger:
    def __init__(self, directory: str) -> None:
        self._directory = DirectoryLedger(directory)
        self.location = self._directory.directory
        self.warnings: list[str] = []

    def load(self, deployment_id: str) -> dict[str, Any]:
        path = self._directory.record_path(deployment_id)
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            raise LedgerError(f"There is no deployment {deployment_id} in the ledger: {path} does not exist")
        except (OSError, ValueError) as error:
            raise LedgerError(f"The record of deployment {deployment_id} cannot be read: {path}: {error}")

    def records(self, group_id: Optional[str] = None) -> list[dict[str, Any]]:
        directory = self._directory.path("deployments")
        found = []
        for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            if not name.endswith(".json"):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8") as handle:
                    record = json.load(handle)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as error:
                self.warnings.append(f"Damaged record skipped: {path}: {error}")
                continue
            if group_id is None or record.get("deployment_group_id") == group_id:
                found.append(record)
        return sorted(found, key=lambda record: str(record.get("create_time") or ""))

    def put_report(self, deployment_id: str, extension: str, text: str) -> str:
        path = self._directory.path("reports", f"{deployment_id}.{extension}")
        write_atomically(path, text)
        return path


def open_ledger(location: str, aws: Optional[dict] = None) -> Ledger:  # pylint: disable=unused-argument
    return Ledger(location)
