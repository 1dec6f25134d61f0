# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's error bases: each error carries the one message an operator reads (what is wrong and the fix)."""
from __future__ import annotations


class OperatorError(Exception):
    """An error whose ``message`` is shown to the operator as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class KeyPathError(ValueError):
    """A configuration value that cannot be used: ``where`` is its key path, ``message`` what is wrong and the fix."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message
