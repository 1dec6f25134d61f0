# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renew a deployment's lease while its controller lives, also while a wave waits on long hooks.

The deployment's steps renew the lease between waves, but a wave can run hooks for hours. A small process of its
own, started when the deployment takes its group's lock, renews the lease every few seconds for as long as the
``ansible-playbook`` process runs and the lock is still this deployment's; it ends with either. When the
controller is killed (a cancelled AWX job, a lost container), renewals stop and the lease runs out.
"""
from __future__ import annotations

import os
import time
from typing import Any, Optional

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger import (
    HEARTBEAT_SECONDS, LockLostError, open_ledger, process_start_ticks)

POLL_SECONDS = 1.0


def keep_lease(location: Optional[str], aws: Optional[dict[str, Any]], group_id: str, deployment_id: str,
               controller_pid: int) -> None:
    """Start the keeper, detached (double fork: it is nobody's child to wait for), and return at once."""
    start_ticks = process_start_ticks(controller_pid)
    first = os.fork()
    if first:
        os.waitpid(first, 0)
        return
    try:
        os.setsid()
        if os.fork():
            # A forked child leaves without running the parent's cleanup.
            os._exit(0)  # pylint: disable=protected-access
        _detach_from_terminal()
        _renew_while_controller_lives(location, aws, group_id, deployment_id, controller_pid, start_ticks)
    finally:
        os._exit(0)  # pylint: disable=protected-access


def _renew_while_controller_lives(location: Optional[str], aws: Optional[dict[str, Any]], group_id: str,
                                  deployment_id: str, controller_pid: int, start_ticks: Optional[int]) -> None:
    ledger = open_ledger(location, aws)
    last = time.monotonic()
    while process_start_ticks(controller_pid) == start_ticks and start_ticks is not None:
        time.sleep(POLL_SECONDS)
        if time.monotonic() - last < HEARTBEAT_SECONDS:
            continue
        last = time.monotonic()
        try:
            ledger.renew(group_id, deployment_id)
        except LockLostError:
            return  # released, waiting in Ready, or taken over: nothing left to keep
        except Exception:  # pylint: disable=broad-exception-caught
            continue  # a store hiccup: try again at the next beat


def _detach_from_terminal() -> None:
    """No inherited descriptor stays open: a job runner waiting for the playbook's output must not wait for this."""
    null = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(null, descriptor)
    os.closerange(3, 65536)
