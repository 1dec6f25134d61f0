# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deployment group's history from the ledger's records, as ``list-deployments`` and ``get-deployment`` give it:
filtered by status and creation time, newest first, each deployment summarised (or one deployment whole)."""
from __future__ import annotations

import datetime
from typing import Any, Iterable, Optional

STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready", "Succeeded", "Failed", "Stopped")
SUMMARY_KEYS = ("deployment_id", "application_name", "deployment_group_name", "status", "error_information",
                "creator", "revision", "deployment_config_name", "create_time", "start_time", "complete_time",
                "deployment_overview", "rollback_info")
# The revision's appspec and environment stay in the record: a listing names the revision, it does not carry it.
REVISION_SUMMARY_DROPS = ("appspec", "bundle_env")


class HistoryError(Exception):
    """A filter the history cannot apply; the message names the option and the fix."""


def parse_instant(value: Any, option: str) -> Optional[datetime.datetime]:
    """An ISO 8601 date or time (UTC unless it says otherwise), or None."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise HistoryError(f"{option}: {value!r} is not an ISO 8601 date or time, e.g. 2026-01-31 or "
                               "2026-01-31T12:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def check_statuses(statuses: Optional[Iterable[str]]) -> list[str]:
    wanted = list(statuses or [])
    wrong = [status for status in wanted if status not in STATUSES]
    if wrong:
        raise HistoryError(f"statuses: {', '.join(map(str, wrong))} not known; the statuses are {', '.join(STATUSES)}")
    return wanted


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What ``list-deployments`` shows of a deployment (with the fields of its DeploymentInfo people filter on)."""
    found = {key: record.get(key) for key in SUMMARY_KEYS}
    if isinstance(found["revision"], dict):
        found["revision"] = {key: value for key, value in found["revision"].items()
                             if key not in REVISION_SUMMARY_DROPS}
    return found


def select(records: Iterable[dict[str, Any]], application_name: str, deployment_group_name: str,
           statuses: Optional[Iterable[str]] = None, created_after: Any = None, created_before: Any = None,
           max_results: Optional[int] = None) -> list[dict[str, Any]]:
    """The group's deployments that match, newest first, summarised; at most ``max_results``."""
    wanted = set(check_statuses(statuses))
    after = parse_instant(created_after, "created_after")
    before = parse_instant(created_before, "created_before")
    if max_results is not None and max_results < 1:
        raise HistoryError(f"max_results must be 1 or more, not {max_results}")
    found = []
    for record in records:
        if (record.get("application_name"), record.get("deployment_group_name")) != (application_name,
                                                                                     deployment_group_name):
            continue
        if wanted and record.get("status") not in wanted:
            continue
        created = parse_instant(record.get("create_time"), "create_time")
        if (after or before) and created is None:
            continue
        if (after and created < after) or (before and created > before):
            continue
        found.append(record)
    found.sort(key=lambda record: str(record.get("create_time") or ""), reverse=True)
    return [summary(record) for record in found[:max_results]]
