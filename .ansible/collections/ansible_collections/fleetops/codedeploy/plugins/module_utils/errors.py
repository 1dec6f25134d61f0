# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's error bases: each error carries the one message an operator reads (what is wrong and the fix)."""
from __future__ import annotations

import errno


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


def describe_error(error: BaseException) -> str:
    """An exception as one readable phrase, no traceback: an OS error with its file and errno name, else its type
    and text."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror} (Errno::{errno.errorcode.get(error.errno or 0, 'EUNKNOWN')})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def unexpected_error_message(event: str, error: BaseException) -> str:
    """What an operator reads when a host module meets an error of no known kind during ``event``."""
    return f"{event} stopped on this host: {describe_error(error)}. Nothing more of it ran."
