# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ledger directories with store faults that a fleet run cannot stage at the right moment."""
from __future__ import annotations

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger_store import (
    LedgerStoreError, LocalStore, VersionConflict)


class RefusingStore(LocalStore):
    """Documents as files, except that writes of keys under ``refused`` (``"locks/"``, ``"deployments/"``) fail once
    it is set — the next ``times`` of them, or all —, as an S3 outage of those keys or a full disk would; reads, and
    the other writes, go on."""
    refused = ""
    times = None

    def put(self, key, data, if_version=None):
        if self.refused and key.startswith(self.refused) and self.times != 0:
            self.times = None if self.times is None else self.times - 1
            raise LedgerStoreError(f"Cannot write {self.location(key)}: Service Unavailable")
        return super().put(key, data, if_version)


class AnswerLosingStore(LocalStore):
    """Documents as files, except that the next conditional write is applied and then refused, once: what a client
    that retries a write whose answer it lost (an S3 500, a reset connection) gets back, the 412 of its own write."""
    lose_next_answer = False

    def put(self, key, data, if_version=None):
        version = super().put(key, data, if_version)
        if self.lose_next_answer and if_version is not None:
            self.lose_next_answer = False
            raise VersionConflict(key)
        return version


class InterruptedStore(LocalStore):
    """Documents as files, except that ``interloper`` (set once) runs just before the next write of a key under
    ``interrupted``: another process's write landing between this ledger's read and its conditional write, as the
    lease keeper's renewal does every 15 s."""
    interrupted = "locks/"
    interloper = None

    def put(self, key, data, if_version=None):
        if self.interloper and key.startswith(self.interrupted):
            interloper, self.interloper = self.interloper, None
            interloper()
        return super().put(key, data, if_version)
