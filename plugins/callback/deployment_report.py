# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_report
type: aggregate
short_description: Progress and per-instance, per-event report of fleetops.codedeploy deployments
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Prints the plan of a deployment in check mode (zones, waves, order, instances left out as up to date), one
    line per wave (instances, succeeded, failed, healthy against the minimum, the zone and its minimum), each
    zone's monitor wait, an alarm stop, and at the end a table of every instance and lifecycle event with the
    failing script and its log tail, then the rollback that follows, if any.
  - Names where the deployment's record and its reports are (the deployment writes its JUnit XML and HTML reports
    to C(<ledger>/reports/<deployment_id>.xml) and C(.html) itself, with or without this callback).
requirements:
  - enable it with C(callbacks_enabled = fleetops.codedeploy.deployment_report) in ansible.cfg, or
    E(ANSIBLE_CALLBACKS_ENABLED=fleetops.codedeploy.deployment_report)
"""

from ansible.plugins.callback import CallbackBase

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_record import current_stage
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import zone_label
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.untrusted_text import (
    padded, terminal_text, terminal_width)

EVENT_LABELS = {
    "BeforeBlockTraffic": "BeforeBlock", "BlockTraffic": "Block", "AfterBlockTraffic": "AfterBlock",
    "ApplicationStop": "AppStop", "DownloadBundle": "Download", "BeforeInstall": "BeforeInst",
    "Install": "Install", "AfterInstall": "AfterInst", "ApplicationStart": "AppStart",
    "ValidateService": "Validate", "BeforeAllowTraffic": "BeforeAllow", "AllowTraffic": "Allow",
    "AfterAllowTraffic": "AfterAllow",
}
STAGE_LABELS = {"install": "Install on Green", "reroute": "Reroute to Green", "block": "Block Blue",
                "reroute_back": "Reroute back to Blue", "block_replacement": "Block Green",
                "terminate": "Stop Blue (TERMINATE)"}
STATUS_MARKS = {"Succeeded": "ok", "Failed": "FAILED", "Skipped": "skip", "Pending": "-", "InProgress": "..."}


def compare(healthy: int, minimum: int) -> str:
    return f"{healthy} {'≥' if healthy >= minimum else '<'} {minimum}"


def wave_line(summary: dict) -> str:
    if summary["final_pass"]:
        label = f"Final pass {summary['wave']}"
    else:
        label = f"Wave {summary['wave']}/{summary.get('planned_waves') or '?'}"
    if summary.get("zone") is not None:
        label += f" in zone {summary['zone']}"
    if summary.get("stage"):
        label = f"{STAGE_LABELS.get(summary['stage'], summary['stage'])}, {label[0].lower()}{label[1:]}"
    line = (f"{label}: {summary['instances']} instance{'s' if summary['instances'] != 1 else ''}, "
            f"{summary['succeeded']} succeeded, {summary['failed']} failed, "
            f"healthy {compare(summary['healthy'], summary['minimum'])}")
    if summary.get("zone") is not None:
        line += f" (zone {compare(summary['zone_healthy'], summary['zone_minimum'])})"
    if summary.get("deferred"):
        line += f"; {summary['deferred']} deferred to the final pass"
    if summary["stop"] and summary.get("stuck_zone") is not None:
        line += f" — stopping: the minimum healthy hosts of zone {summary['stuck_zone']} would be broken"
    elif summary["stop"]:
        line += " — stopping: the minimum healthy hosts would be broken"
    return line


def monitor_line(waited: dict) -> str:
    if waited["setting"] == "termination_wait_time_in_minutes":
        return f"Traffic moved: waited {waited['seconds']:g} s (termination_wait_time_in_minutes) before stopping Blue"
    return (f"Zone {zone_label(waited['after_zone'])} done: waited {waited['seconds']} s "
            f"({waited['setting']}) before zone {zone_label(waited['before_zone'])}")


def wave_sizes(started: dict) -> str:
    """N - M, or with zones the size of every wave (they differ from zone to zone)."""
    return ", ".join(str(size) for size in started["batches"]) if started.get("zones") else str(started["wave_size"])


def plan_lines(started: dict, appspec: dict) -> list[str]:
    """What --check shows: zones, waves, their order, and which events run scripts on each host."""
    order, batches, zones = started["order"], started["batches"], started.get("zones")
    record = started["record"]
    instances = current_stage(record)["instances"]  # a blue/green stage's instances run that stage's events
    events = {event["lifecycle_event_name"] for event in instances[0]["lifecycle_events"]} if instances else set()
    hooks = [event for event in EVENT_LABELS if event in events and appspec.get("hooks", {}).get(event)]
    lines = [f"Plan: {len(order)} instances, minimum healthy {record['minimum_healthy_hosts']['count']}, "
             f"waves of {wave_sizes(started)}"]
    if started.get("skipped_up_to_date"):
        lines.append("  Already up to date, not deployed: " + ", ".join(started["skipped_up_to_date"]))
    zone_of = {name: zone["name"] for zone in zones or [] for name in zone["instances"]}
    if zones:
        config = record["zonal_config"]
        lines.append("  Zones in order: " + ", ".join(
            f"{zone_label(zone['name'])} ({len(zone['instances'])} instances, minimum healthy {zone['minimum']})"
            for zone in zones))
        lines.append(f"  Monitor after the first zone {config['first_zone_monitor_duration_in_seconds']} s, "
                     f"after the others {config['monitor_duration_in_seconds']} s")
    position = 0
    for number, size in enumerate(batches, start=1):
        wave = order[position:position + size]
        position += size
        zone = f" (zone {zone_label(zone_of[wave[0]])})" if zones else ""
        lines.append(f"  Wave {number}{zone}: " + ", ".join(
            f"{name} ({started['health'].get(name, 'Unknown')})" for name in wave))
    if instances:
        lines.append("  Each instance runs: " + " → ".join(
            event["lifecycle_event_name"] for event in instances[0]["lifecycle_events"]))
    lines.append("  Scripts from the AppSpec for: " + (", ".join(hooks) or "no event"))
    return lines


def label(instance: dict) -> str:
    """The instance's name as the table shows it (its column is as wide as the longest)."""
    kind = instance.get("instance_type")
    return terminal_text(f"{instance['instance_id']} ({kind})" if kind else instance["instance_id"])


def start_line(started: dict) -> str:
    line = (f"Deployment {started['record']['deployment_id']}: {len(started['order'])} instances in waves of "
            f"{wave_sizes(started)}")
    if started.get("zones"):
        line += " across zones " + ", ".join(zone_label(zone["name"]) for zone in started["zones"])
    if started.get("skipped_up_to_date"):
        line += f"; {len(started['skipped_up_to_date'])} already up to date"
    return line


def rollback_line(plan: dict) -> str:
    """The rollback the finish step created, which the play runs next."""
    return f"Rolling back: deployment {plan['deployment_id']} ({plan['creator']}) created, it runs next"


def table_lines(record: dict) -> list[str]:
    """One row per instance, one column per event any instance has (blue/green instances differ: Blue ones block
    traffic, Green ones install and take traffic), instances labelled Blue or Green when they are."""
    events = list(dict.fromkeys(e["lifecycle_event_name"] for i in record["instances"] for e in i["lifecycle_events"]))
    width = max([len("instance")] + [terminal_width(label(i)) for i in record["instances"]])
    columns = [EVENT_LABELS.get(name, name) for name in events]
    lines = ["  ".join([f"{'instance':<{width}}", f"{'status':<9}"] + columns)]
    for instance in record["instances"]:
        status_of = {e["lifecycle_event_name"]: e["status"] for e in instance["lifecycle_events"]}
        marks = [f"{STATUS_MARKS.get(status_of[name], status_of[name]) if name in status_of else '':<{len(col)}}"
                 for name, col in zip(events, columns)]
        lines.append("  ".join([padded(label(instance), width), f"{instance['status']:<9}"] + marks))
    for instance in record["instances"]:
        for event in instance["lifecycle_events"]:
            diagnostics = event.get("diagnostics") or {}
            if event["status"] == "Failed":
                script = f" ({diagnostics['script_name']})" if diagnostics.get("script_name") else ""
                lines.append(f"{instance['instance_id']} {event['lifecycle_event_name']}{script}: "
                             f"{diagnostics.get('message', '')}")
                for tail_line in (diagnostics.get("log_tail") or "").splitlines()[-10:]:
                    lines.append(f"    | {tail_line}")
    return lines


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleetops.codedeploy.deployment_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._appspec: dict = {}

    def v2_runner_on_ok(self, result) -> None:
        self._handle(result)

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._handle(result)

    def _handle(self, result) -> None:
        task = result._task  # pylint: disable=protected-access
        if (getattr(task, "resolved_action", None) or task.action) != "fleetops.codedeploy.deployment":
            return
        outcome = result._result  # pylint: disable=protected-access
        step = task.args.get("step")
        if outcome.get("failed") and not outcome.get("refused"):
            return  # a step that failed holds only its message, which ansible-core prints
        if step == "start" and outcome.get("refused"):
            if outcome.get("record"):
                self._report(outcome["record"], None, None)
        elif step == "start" and task.check_mode:
            for line in plan_lines(outcome, self._appspec_of(outcome)):
                self._show(line)
        elif step == "start":
            self._show(start_line(outcome))
            self._opened(outcome)
        elif step == "record":
            if outcome.get("summary"):
                self._show(wave_line(outcome["summary"]), color="red" if outcome["summary"]["failed"] else None)
            self._opened(outcome)
        elif step == "finish":
            ended = outcome.get("ended_phase") or {}
            if ended.get("record") and not ended.get("ended_before"):
                self._report(ended["record"], ended.get("report_path"), ended.get("record_path"),
                             ended.get("html_report_path"))
            if ended.get("rollback_requested") and outcome.get("start_with") == "phase":
                self._show(rollback_line(outcome))

    def _opened(self, outcome: dict) -> None:
        """What opening the next wave waited for, or why it stopped instead."""
        if outcome.get("monitor_wait"):
            self._show(monitor_line(outcome["monitor_wait"]))
        if outcome.get("alarms"):
            self._show(f"Stopping: alarm(s) {', '.join(outcome['alarms'])} in ALARM", color="red")
        elif outcome.get("alarm_poll_failure"):
            self._show(f"Stopping: the alarm states could not be read: {outcome['alarm_poll_failure']}", color="red")

    def _show(self, line: str, color=None) -> None:
        # Host names, script paths, messages and log tails are the hosts' and the bundle's: shown, never obeyed.
        self._display.display(terminal_text(line), color=color)

    @staticmethod
    def _appspec_of(outcome: dict) -> dict:
        return (outcome.get("revision") or {}).get("appspec") or {}

    def _report(self, record: dict, report_path, record_path, html_report_path=None) -> None:
        error = record.get("error_information") or {}
        headline = (f"Deployment {record['deployment_id']} ({record['application_name']}/"
                    f"{record['deployment_group_name']}, {record['creator']}) {record['status']}")
        if error:
            headline += f": {error['code']}: {error['message']}"
        self._show(headline, color="green" if record["status"] == "Succeeded" else "red")
        for message in record.get("deployment_status_messages") or []:
            self._show(message)
        for line in table_lines(record):
            self._show(line)
        if report_path:
            self._show(f"Record: {record_path}; reports: {report_path} (JUnit), {html_report_path} (HTML)")
