# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How an instance's events are cut around the load balancer's, and put back together."""
from __future__ import annotations

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_record import in_place_events
from ansible_collections.fleetops.codedeploy.plugins.module_utils.instance_lifecycle import (
    combine_segments, event_record, failure_message, lifecycle_segments, skipped_after_failure)


def test_in_place_events_behind_a_load_balancer_make_five_segments():
    assert lifecycle_segments(in_place_events(True)) == [
        ("host", ["BeforeBlockTraffic"]),
        ("traffic", ["BlockTraffic"]),
        ("host", ["AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install",
                  "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic"]),
        ("traffic", ["AllowTraffic"]),
        ("host", ["AfterAllowTraffic"]),
    ]


def test_events_without_a_load_balancer_are_one_segment():
    assert lifecycle_segments(in_place_events(False)) == [("host", in_place_events(False))]


def test_traffic_events_alone_and_back_to_back():
    assert lifecycle_segments(["BlockTraffic", "AllowTraffic"]) == [("traffic", ["BlockTraffic"]),
                                                                    ("traffic", ["AllowTraffic"])]


def succeeded(*names):
    return {"status": "Succeeded", "failed_event": None,
            "lifecycle_events": [event_record(name, "Succeeded", "t0", "t1") for name in names]}


def test_combined_segments_keep_the_order_and_the_first_failure():
    failed = {"status": "Failed", "failed_event": "AllowTraffic",
              "lifecycle_events": [event_record("AllowTraffic", "Failed", "t2", "t3", "UnknownError", "late")]}
    combined = combine_segments([succeeded("BeforeAllowTraffic"), failed, skipped_after_failure(["AfterAllowTraffic"])])
    assert combined["status"] == "Failed"
    assert combined["failed_event"] == "AllowTraffic"
    assert [(e["lifecycle_event_name"], e["status"]) for e in combined["lifecycle_events"]] == [
        ("BeforeAllowTraffic", "Succeeded"), ("AllowTraffic", "Failed"), ("AfterAllowTraffic", "Skipped")]
    assert combined["lifecycle_events"][2]["start_time"] is None


def test_combined_segments_succeed_when_every_segment_does():
    assert combine_segments([succeeded("A"), succeeded("B", "C")])["status"] == "Succeeded"


def test_the_failure_message_names_the_failed_event_and_its_diagnostics():
    failed = {"status": "Failed", "failed_event": "AllowTraffic",
              "lifecycle_events": [event_record("AllowTraffic", "Failed", "t2", "t3", "UnknownError", "late")]}
    combined = combine_segments([succeeded("BeforeAllowTraffic"), failed])
    assert failure_message(combined) == "AllowTraffic failed: late"
