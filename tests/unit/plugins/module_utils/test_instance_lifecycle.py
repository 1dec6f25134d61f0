# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How an instance's events are cut around the load balancer's, and put back together."""
from __future__ import annotations

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import parse_appspec
from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import lifecycle_segments
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_record import in_place_events
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DeploymentRoot, instance_deployment_file, read_json_file)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.instance_lifecycle import (
    LifecycleRequest, combine_segments, event_record, failure_message, run_lifecycle, skipped_after_failure)


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


def test_combined_segments_keep_the_bundle_download_of_the_segment_that_ran_it():
    pull = {"bytes": 10, "start_time": "t0", "end_time": "t1"}
    download = {**succeeded("ApplicationStop", "DownloadBundle"), "bundle_pull": pull}
    assert combine_segments([succeeded("BeforeBlockTraffic"), download, succeeded("AllowTraffic")])["bundle_pull"] == pull
    assert "bundle_pull" not in combine_segments([succeeded("A"), succeeded("B")])


def test_the_failure_message_names_the_failed_event_and_its_diagnostics():
    failed = {"status": "Failed", "failed_event": "AllowTraffic",
              "lifecycle_events": [event_record("AllowTraffic", "Failed", "t2", "t3", "UnknownError", "late")]}
    combined = combine_segments([succeeded("BeforeAllowTraffic"), failed])
    assert failure_message(combined) == "AllowTraffic failed: late"


APPSPEC_WITHOUT_HOOKS = "version: 0.0\nos: linux\n"


def recorded_outcome(tmp_path, final_segment: bool, events: list[str]) -> tuple[str, str]:
    """Run hook events that have no scripts; return the run's status and the instance's recorded last deployment."""
    archive = tmp_path / "0d6c4f57-1f4e-4e5b-9a39-7d1c2b3a4e5f" / "d-SEGMENT01" / "deployment-archive"
    archive.mkdir(parents=True, exist_ok=True)
    (archive / "appspec.yml").write_text(APPSPEC_WITHOUT_HOOKS)
    request = LifecycleRequest(
        deployment_id="d-SEGMENT01", deployment_group_id="0d6c4f57-1f4e-4e5b-9a39-7d1c2b3a4e5f",
        deployment_group_name="prod", application_name="webapp", events=events,
        appspec=parse_appspec(APPSPEC_WITHOUT_HOOKS)[0], bundle={"sha256": "ab" * 32},
        deployment_root=str(tmp_path), final_segment=final_segment)
    result = run_lifecycle(request, run_command=None)
    layout = DeploymentRoot(str(tmp_path), request.deployment_group_id)
    return result["status"], read_json_file(instance_deployment_file(layout))["status"]


def test_a_part_of_the_events_that_succeeds_leaves_the_instance_in_progress(tmp_path):
    assert recorded_outcome(tmp_path, False, ["BeforeAllowTraffic"]) == ("Succeeded", "InProgress")
    assert recorded_outcome(tmp_path, True, ["AfterAllowTraffic"]) == ("Succeeded", "Succeeded")


def test_a_part_that_fails_records_the_instance_failed(tmp_path):
    assert recorded_outcome(tmp_path, False, ["NotAnEvent"])[1] == "Failed"


def test_an_unexpected_error_fails_its_event_by_name_and_skips_the_rest(tmp_path):
    request = LifecycleRequest(
        deployment_id="d-SEGMENT02", deployment_group_id="0d6c4f57-1f4e-4e5b-9a39-7d1c2b3a4e5f",
        deployment_group_name="prod", application_name="webapp", events=["DownloadBundle", "Install"],
        appspec=parse_appspec(APPSPEC_WITHOUT_HOOKS)[0], bundle={"sha256": "ab" * 32},  # no src: a KeyError
        deployment_root=str(tmp_path))
    result = run_lifecycle(request, run_command=None)
    assert result["status"] == "Failed" and result["failed_event"] == "DownloadBundle"
    download, install = result["lifecycle_events"]
    assert download["diagnostics"]["message"] == "DownloadBundle stopped on this host: KeyError: 'src'. Nothing more" \
        " of it ran."
    assert install["status"] == "Skipped"
