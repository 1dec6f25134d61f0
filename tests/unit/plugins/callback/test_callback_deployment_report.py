# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report callback's lines, from the results the controller's steps return."""
from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.fleetops.codedeploy.plugins.callback.deployment_report import (
    CallbackModule, monitor_line, plan_lines, rollback_line, start_line, table_lines, wave_line)


def summary(**changes):
    line = {"wave": 2, "final_pass": False, "planned_waves": 3, "instances": 1, "deferred": 0, "succeeded": 0,
            "failed": 1, "healthy": 2, "minimum": 2, "stop": True, "zone": None, "stuck_zone": None}
    return {**line, **changes}


def event(name, status, **diagnostics):
    return {"lifecycle_event_name": name, "status": status, "diagnostics": diagnostics or None}


def test_a_wave_is_one_line_with_health_against_the_minimum_and_why_it_stops():
    assert wave_line(summary()) == ("Wave 2/3: 1 instance, 0 succeeded, 1 failed, healthy 2 ≥ 2 — stopping: the "
                                    "minimum healthy hosts would be broken")
    assert wave_line(summary(final_pass=True, stop=False, failed=0, succeeded=1, healthy=3)) == (
        "Final pass 2: 1 instance, 1 succeeded, 0 failed, healthy 3 ≥ 2")


def test_a_blue_green_wave_names_its_stage_and_a_zonal_one_its_zone():
    line = wave_line(summary(stage="reroute", stop=False, zone="a", zone_healthy=1, zone_minimum=1, deferred=2))
    assert line == ("Reroute to Green, wave 2/3 in zone a: 1 instance, 0 succeeded, 1 failed, healthy 2 ≥ 2 "
                    "(zone 1 ≥ 1); 2 deferred to the final pass")


def test_the_start_line_counts_instances_and_those_left_out():
    started = {"record": {"deployment_id": "d-ABC"}, "order": ["h1", "h2"], "wave_size": 1, "batches": [1, 1],
               "zones": None, "skipped_up_to_date": ["h3"]}
    assert start_line(started) == "Deployment d-ABC: 2 instances in waves of 1; 1 already up to date"


def test_a_blue_green_plan_says_the_events_and_scripts_of_the_stage_it_runs():
    entry = {"instance_id": "g1", "lifecycle_events": [event("BeforeAllowTraffic", "Pending"),
                                                       event("AllowTraffic", "Pending")]}
    record = {"deployment_id": "d-ABC", "minimum_healthy_hosts": {"count": 0}, "instances": [
        {"instance_id": "b1", "lifecycle_events": [event("BlockTraffic", "Pending")]}],
        "blue_green": {"stage": 1, "stages": [{}, {"instances": [entry]}]}}
    started = {"record": record, "order": ["g1"], "wave_size": 1, "batches": [1], "zones": None, "health": {}}

    lines = plan_lines(started, {"hooks": {"ApplicationStop": [{}], "BeforeAllowTraffic": [{}]}})

    assert "  Each instance runs: BeforeAllowTraffic → AllowTraffic" in lines
    assert "  Scripts from the AppSpec for: BeforeAllowTraffic" in lines


def test_a_bake_time_says_which_zones_it_separates():
    assert monitor_line({"setting": "monitor_duration_in_seconds", "seconds": 3, "after_zone": "a",
                         "before_zone": "b"}) == "Zone a done: waited 3 s (monitor_duration_in_seconds) before zone b"


def test_the_table_has_a_row_per_instance_and_the_failing_script_with_its_log_tail():
    record = {"instances": [
        {"instance_id": "h1", "status": "Succeeded", "lifecycle_events": [event("Install", "Succeeded"),
                                                                          event("ValidateService", "Succeeded")]},
        {"instance_id": "h2", "status": "Failed", "lifecycle_events": [
            event("Install", "Succeeded"),
            event("ValidateService", "Failed", script_name="scripts/validate.sh", message="exit code 1",
                  log_tail="LifecycleEvent - ValidateService\n[stderr]validation failed on h2\n")]}]}
    assert table_lines(record) == [
        "instance  status     Install  Validate",
        "h1        Succeeded  ok       ok      ",
        "h2        Failed     ok       FAILED  ",
        "h2 ValidateService (scripts/validate.sh): exit code 1",
        "    | LifecycleEvent - ValidateService",
        "    | [stderr]validation failed on h2",
    ]


def test_the_rollback_created_is_named_before_it_runs():
    assert rollback_line({"deployment_id": "d-ROLLBACK1", "creator": "codeDeployRollback"}) == (
        "Rolling back: deployment d-ROLLBACK1 (codeDeployRollback) created, it runs next")


def test_a_step_that_failed_prints_nothing_more_than_its_message(capsys):
    report = CallbackModule()
    for step in ("start", "record", "finish"):
        task = SimpleNamespace(action="fleetops.codedeploy.deployment", args={"step": step}, check_mode=False)
        failed = SimpleNamespace(_task=task, _result={"failed": True, "changed": False,
                                                      "msg": "Cannot read /ledger/deployments/d-X.json: Permission denied"})
        report.v2_runner_on_failed(failed)  # ansible-core prints the message; the report adds nothing, and no error
    assert capsys.readouterr().out == ""


def finish_result(record):
    task = SimpleNamespace(action="fleetops.codedeploy.deployment", args={"step": "finish"}, check_mode=False)
    return SimpleNamespace(_task=task, _result={"ended_phase": {"record": record, "report_path": "/l/r.xml",
                                                                "record_path": "/l/d.json",
                                                                "html_report_path": "/l/r.html"}})


def test_what_a_script_printed_cannot_move_the_cursor_recolour_or_rewrite_the_report(capsys):
    # A failed script erases the headline and the FAILED row and prints its own; a path in the AppSpec carries a
    # carriage return and a hyperlink; a host name from a tag a newline.
    tail = ("\x1b[3A\x1b[2K\x1b[32mDeployment d-X Succeeded\x1b[0m\n"
            "\x1b]8;;https://evil.example/\x1b\\docs\x1b]8;;\x1b\\ \x08\x08ok\n")
    record = {"deployment_id": "d-X", "application_name": "app", "deployment_group_name": "prod", "creator": "user",
              "status": "Failed", "error_information": {"code": "HEALTH_CONSTRAINTS", "message": "1 failed\x1b[0m"},
              "deployment_status_messages": ["\x1b[2J"], "instances": [
                  {"instance_id": "web\n1 Succeeded", "status": "Failed", "lifecycle_events": [
                      event("ValidateService", "Failed", script_name="scripts/v.sh\rSucceeded", message="exit 1",
                            log_tail=tail)]}]}

    CallbackModule().v2_runner_on_ok(finish_result(record))

    printed = capsys.readouterr().out  # not a terminal: the report's own lines are not coloured
    assert not any(char in printed for char in "\x1b\r\x08"), repr(printed)
    assert "    | \\x1b[3A\\x1b[2K\\x1b[32mDeployment d-X Succeeded\\x1b[0m" in printed.splitlines()
    assert "web\\n1 Succeeded ValidateService (scripts/v.sh\\rSucceeded): exit 1" in printed.splitlines()


def test_a_host_name_or_log_line_cannot_reorder_the_report_with_bidirectional_controls(capsys):
    record = {"deployment_id": "d-X", "application_name": "app", "deployment_group_name": "prod", "creator": "user",
              "status": "Failed", "error_information": {"code": "HEALTH_CONSTRAINTS", "message": "1 failed"},
              "deployment_status_messages": [], "instances": [
                  {"instance_id": "web-1\u202edeliaF", "status": "Failed", "lifecycle_events": [
                      event("ValidateService", "Failed", script_name="scripts/v.sh", message="exit 1",
                            log_tail="\u2066ok\u2069\n")]}]}

    CallbackModule().v2_runner_on_ok(finish_result(record))

    printed = capsys.readouterr().out
    assert "\u202e" not in printed and "\u2066" not in printed and "\u2069" not in printed, repr(printed)
    assert "web-1\\u202edeliaF ValidateService (scripts/v.sh): exit 1" in printed.splitlines()
    assert "    | \\u2066ok\\u2069" in printed.splitlines()


def test_the_table_keeps_its_columns_under_wide_and_combining_host_names():
    record = {"instances": [
        {"instance_id": "ウェブ1", "status": "Succeeded", "lifecycle_events": [event("Install", "Succeeded")]},
        {"instance_id": "cafe\u0301-2", "status": "Failed", "lifecycle_events": [event("Install", "Failed")]},
        {"instance_id": "web-3", "status": "Succeeded", "lifecycle_events": [event("Install", "Succeeded")]}]}

    assert table_lines(record)[:4] == [
        "instance  status     Install",
        "ウェブ1   Succeeded  ok     ",  # seven columns wide on a terminal
        "cafe\u0301-2    Failed     FAILED ",
        "web-3     Succeeded  ok     ",
    ]
