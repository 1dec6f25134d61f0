# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A group's history: newest first, filtered by status and creation time, summarised, at most max_results."""
from __future__ import annotations

import pytest

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_history import (
    HistoryError, select, summary)

from sample_records import finished_record

FIRST = finished_record(deployment_id="d-111111111", created="2026-01-01T10:00:00.000Z")
SECOND = finished_record(deployment_id="d-222222222", failing=["web-2"], created="2026-01-02T10:00:00.000Z")
THIRD = finished_record(deployment_id="d-333333333", created="2026-01-03T10:00:00.000Z")
OTHER_GROUP = {**finished_record(deployment_id="d-999999999", created="2026-01-04T10:00:00.000Z"),
               "deployment_group_name": "staging"}
HISTORY = [FIRST, SECOND, THIRD, OTHER_GROUP]


def ids(found):
    return [deployment["deployment_id"] for deployment in found]


def test_newest_first_of_the_group_only():
    assert ids(select(HISTORY, "webapp", "prod")) == ["d-333333333", "d-222222222", "d-111111111"]
    assert ids(select(HISTORY, "webapp", "prod", max_results=2)) == ["d-333333333", "d-222222222"]


def test_filters():
    assert ids(select(HISTORY, "webapp", "prod", statuses=["Failed"])) == ["d-222222222"]
    assert ids(select(HISTORY, "webapp", "prod", created_after="2026-01-02")) == ["d-333333333", "d-222222222"]
    assert ids(select(HISTORY, "webapp", "prod", created_before="2026-01-02T09:00:00+00:00")) == ["d-111111111"]
    assert ids(select(HISTORY, "webapp", "prod", created_after="2026-01-01T11:00:00Z",
                      created_before="2026-01-02T11:00:00Z")) == ["d-222222222"]


def test_a_summary_names_the_revision_without_carrying_it():
    record = {**FIRST, "revision": {"source": "local", "path": "/srv/rev", "appspec": {"version": 0.0},
                                    "bundle_env": {"A": "1"}}}
    found = summary(record)
    assert found["revision"] == {"source": "local", "path": "/srv/rev"}
    assert found["deployment_overview"] == FIRST["deployment_overview"] and "instances" not in found


@pytest.mark.parametrize("options, message", [
    ({"statuses": ["Done"]}, "statuses: Done not known; the statuses are Created, Queued"),
    ({"created_after": "yesterday"}, "created_after: 'yesterday' is not an ISO 8601 date or time"),
    ({"max_results": 0}, "max_results must be 1 or more, not 0"),
])
def test_bad_filters_say_how_to_fix_them(options, message):
    with pytest.raises(HistoryError) as raised:
        select(HISTORY, "webapp", "prod", **options)
    assert message in str(raised.value)
