# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML report of a deployment: one self-contained page (inline CSS and SVG, nothing fetched, no script) with
the deployment's summary, a timeline (a row per instance, a bar per lifecycle event coloured by its status, waves
and blue/green stages marked on a time axis) and each instance's events with their diagnostics and log tails.

Everything that came from hosts, bundles or the operator is escaped. A big fleet gets a tall timeline in a
scrolling box: rows keep their height, however many there are.
"""
from __future__ import annotations

import datetime
import html
from typing import Any, Optional

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.untrusted_text import reader_text

STATUS_COLOURS = {"Succeeded": "#2e7d32", "Failed": "#c62828", "Skipped": "#9e9e9e", "Pending": "#cfd8dc",
                  "InProgress": "#1565c0", "Ready": "#6a1b9a", "Stopped": "#ef6c00", "Created": "#78909c"}
EVENT_HEADINGS = "".join(f"<th>{heading}</th>" for heading in (
    "Event", "Status", "Started (UTC)", "Duration", "Script", "Error code", "Message"))
LEGEND_STATUSES = ("Succeeded", "Failed", "Skipped", "InProgress", "Pending")
ROW_HEIGHT = 22
LABEL_WIDTH = 220
PLOT_WIDTH = 900
AXIS_HEIGHT = 34
AXIS_TICKS = 8
MIN_BAR_WIDTH = 2

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#212121;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
table.summary td{padding:2px 14px 2px 0;vertical-align:top}
table.summary td:first-child{color:#616161;white-space:nowrap}
table.events{border-collapse:collapse;margin:6px 0 12px} table.events td,table.events th{border:1px solid #e0e0e0;
padding:3px 8px;text-align:left;font-size:13px;vertical-align:top} table.events th{background:#f5f5f5}
.timeline{max-height:70vh;overflow:auto;border:1px solid #e0e0e0}
.legend span{display:inline-block;margin-right:14px;font-size:13px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
pre{background:#263238;color:#eceff1;padding:8px;overflow:auto;max-height:300px;font-size:12px}
details{margin:4px 0} summary{cursor:pointer} .messages li{margin:2px 0}
svg text{font-size:12px;font-family:inherit}
"""


def escape(value: Any) -> str:
    return html.escape(reader_text("" if value is None else value), quote=True)


def parse_time(text: Optional[str]) -> Optional[datetime.datetime]:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def seconds_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def time_of_day(text: Optional[str]) -> str:
    """``HH:MM:SS.mmm`` UTC of an event: its date is the deployment's, in the summary."""
    moment = parse_time(text)
    return moment.strftime("%H:%M:%S.%f")[:-3] if moment else ""


def duration_text(start: Optional[str], end: Optional[str]) -> str:
    begun, ended = parse_time(start), parse_time(end)
    if begun is None or ended is None:
        return ""
    return seconds_text((ended - begun).total_seconds())


def status_badge(status: Optional[str]) -> str:
    return (f'<span class="status" style="background:{STATUS_COLOURS.get(status or "", "#616161")}">'
            f"{escape(status)}</span>")


def revision_text(revision: Optional[dict]) -> str:
    if not revision:
        return "(none)"
    parts = [str(revision.get(key)) for key in ("source", "bucket", "key", "path", "repository", "commit_id", "url")
             if revision.get(key)]
    if revision.get("sha256"):
        parts.append(f"sha256 {str(revision['sha256'])[:12]}")
    return " ".join(parts) or "(inline)"


def summary_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, HTML) rows of the summary table."""
    error = record.get("error_information") or {}
    minimum = record.get("minimum_healthy_hosts") or {}
    style = record.get("deployment_style") or {}
    rows = [
        ("Application / group", escape(f"{record.get('application_name')} / {record.get('deployment_group_name')}")),
        ("Status", status_badge(record.get("status"))),
    ]
    if error:
        rows.append(("Error", escape(f"{error.get('code')}: {error.get('message')}")))
    rows += [
        ("Creator", escape(record.get("creator"))),
        ("Revision", escape(revision_text(record.get("revision")))),
        ("Deployment config", escape(f"{record.get('deployment_config_name')} (minimum healthy hosts "
                                     f"{minimum.get('type')} {minimum.get('value')}: {minimum.get('count')})")),
        ("Deployment style", escape(f"{style.get('deployment_type')}, {style.get('deployment_option')}")),
        ("Created", escape(record.get("create_time"))),
        ("Started", escape(record.get("start_time"))),
        ("Completed", escape(record.get("complete_time"))),
        ("Duration", escape(duration_text(record.get("create_time"), record.get("complete_time")))),
    ]
    overview = record.get("deployment_overview") or {}
    if overview:
        rows.append(("Instances", escape(", ".join(f"{key} {value}" for key, value in overview.items() if value))
                     or "none"))
    rollback = record.get("rollback_info") or {}
    # Reports of one ledger sit side by side: a rollback links to the deployment it undoes, and back.
    for key, title in (("rollback_deployment_id", "Rolled back by"),
                       ("rollback_triggering_deployment_id", "Rolls back")):
        if rollback.get(key):
            rows.append((title, f'<a href="{escape(rollback[key])}.html">{escape(rollback[key])}</a>'))
    if not rollback.get("rollback_deployment_id") and rollback.get("rollback_message"):
        rows.append(("Rollback", escape(rollback["rollback_message"])))  # why there is none
    return rows


def _bounds(record: dict[str, Any]) -> tuple[Optional[datetime.datetime], float]:
    """The timeline's first instant and its length in seconds (at least one)."""
    instants = [parse_time(event.get(key)) for entry in record.get("instances") or []
                for event in entry.get("lifecycle_events") or [] for key in ("start_time", "end_time")]
    instants += [parse_time(wave.get(key)) for wave in record.get("waves") or [] for key in ("start_time", "end_time")]
    instants += [parse_time(record.get(key)) for key in ("start_time", "complete_time")]
    known = [moment for moment in instants if moment is not None]
    if not known:
        return None, 1.0
    first = min(known)
    return first, max((max(known) - first).total_seconds(), 1.0)


class Scale:
    """Where an instant falls on the plot."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.first, self.span = _bounds(record)

    def x(self, text: Optional[str]) -> Optional[float]:
        moment = parse_time(text)
        if moment is None or self.first is None:
            return None
        return LABEL_WIDTH + PLOT_WIDTH * (moment - self.first).total_seconds() / self.span

    def extent(self, start: Optional[str], end: Optional[str]) -> Optional[tuple[float, float]]:
        """(x, width) of what ran from ``start`` to ``end`` (to the end of the plot while it runs)."""
        begin = self.x(start)
        if begin is None:
            return None
        finish = self.x(end)
        return begin, max((finish if finish is not None else begin) - begin, MIN_BAR_WIDTH)


def _axis(scale: Scale, height: int) -> list[str]:
    parts = []
    for tick in range(AXIS_TICKS + 1):
        x = LABEL_WIDTH + PLOT_WIDTH * tick / AXIS_TICKS
        parts.append(f'<line x1="{x:.1f}" y1="{AXIS_HEIGHT - 6}" x2="{x:.1f}" y2="{height}" stroke="#e0e0e0"/>'
                     f'<text x="{x:.1f}" y="{AXIS_HEIGHT - 10}" text-anchor="middle">'
                     f"{seconds_text(scale.span * tick / AXIS_TICKS)}</text>")
    return parts


def _waves(record: dict[str, Any], scale: Scale, height: int) -> list[str]:
    """Each wave as a shaded band from its start to its end, its start a dashed line named W1, W2, ..."""
    parts = []
    for wave in record.get("waves") or []:
        placed = scale.extent(wave.get("start_time"), wave.get("end_time"))
        if placed is None:
            continue
        x, width = placed
        name = f"W{wave.get('index')}" + (" final" if wave.get("final_pass") else "")
        title = (f"Wave {wave.get('index')}" + (f", stage {wave['stage']}" if wave.get("stage") else "")
                 + (f", zone {wave['zone']}" if wave.get("zone") else "")
                 + f": {', '.join(map(str, wave.get('instances') or []))}")
        parts.append(f'<g class="wave"><title>{escape(title)}</title>'
                     f'<rect x="{x:.1f}" y="{AXIS_HEIGHT}" width="{width:.1f}" height="{height - AXIS_HEIGHT}" '
                     'fill="#e8eaf6" fill-opacity="0.6"/>'
                     f'<line x1="{x:.1f}" y1="12" x2="{x:.1f}" y2="{height}" stroke="#5c6bc0" '
                     'stroke-dasharray="4 3"/>'
                     f'<text x="{x + 2:.1f}" y="10" fill="#3949ab">{escape(name)}</text></g>')
    for stage in (record.get("blue_green") or {}).get("stages") or []:
        placed = scale.extent(stage.get("start_time"), stage.get("complete_time"))
        if placed is not None:
            parts.append(f'<g class="stage"><title>{escape("Stage " + str(stage.get("name")))}</title>'
                         f'<rect x="{placed[0]:.1f}" y="{AXIS_HEIGHT - 4}" width="{placed[1]:.1f}" height="3" '
                         'fill="#8d6e63"/></g>')
    return parts


def _instance_row(entry: dict[str, Any], y: int, scale: Scale) -> str:
    name = str(entry.get("instance_id"))
    label = name + (f" ({entry['instance_type']})" if entry.get("instance_type") else "")
    parts = [f'<g class="instance-row" data-instance="{escape(name)}" data-status="{escape(entry.get("status"))}">'
             f'<circle cx="8" cy="{y + ROW_HEIGHT / 2}" r="4" '
             f'fill="{STATUS_COLOURS.get(entry.get("status") or "", "#616161")}"/>'
             f'<text x="16" y="{y + 15}">{escape(label[:32])}</text>']
    for event in entry.get("lifecycle_events") or []:
        placed = scale.extent(event.get("start_time"), event.get("end_time"))
        if placed is None:
            continue
        title = (f"{name} {event.get('lifecycle_event_name')}: {event.get('status')} "
                 f"{duration_text(event.get('start_time'), event.get('end_time'))}")
        parts.append(f'<rect class="event" x="{placed[0]:.1f}" y="{y + 4}" width="{placed[1]:.1f}" '
                     f'height="{ROW_HEIGHT - 8}" fill="{STATUS_COLOURS.get(event.get("status") or "", "#616161")}" '
                     f'stroke="#fff" stroke-width="0.5"><title>{escape(title)}</title></rect>')
    parts.append("</g>")
    return "".join(parts)


def timeline_svg(record: dict[str, Any]) -> str:
    """A row per instance, a bar per lifecycle event that ran, waves (and stages) marked on the time axis."""
    instances = record.get("instances") or []
    scale = Scale(record)
    height = AXIS_HEIGHT + ROW_HEIGHT * max(len(instances), 1) + 6
    width = LABEL_WIDTH + PLOT_WIDTH + 20
    # Painted in layers: row stripes, then waves and the axis over them, then the rows' labels and bars on top.
    stripes = [f'<rect x="0" y="{AXIS_HEIGHT + ROW_HEIGHT * row}" width="{width}" height="{ROW_HEIGHT}" '
               'fill="#f7f7f7"/>' for row in range(1, len(instances), 2)]
    rows = [_instance_row(entry, AXIS_HEIGHT + ROW_HEIGHT * row, scale) for row, entry in enumerate(instances)]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline-chart" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="Timeline of the lifecycle events">'
            + "".join(stripes + _waves(record, scale, height) + _axis(scale, height) + rows) + "</svg>")


def instance_details(entry: dict[str, Any]) -> str:
    """An instance's events, their durations and diagnostics; a failed instance's details start open."""
    name = escape(entry.get("instance_id"))
    rows = []
    tails = []
    for event in entry.get("lifecycle_events") or []:
        diagnostics = event.get("diagnostics") or {}
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in (
            escape(event.get("lifecycle_event_name")), status_badge(event.get("status")),
            escape(time_of_day(event.get("start_time"))),
            escape(duration_text(event.get("start_time"), event.get("end_time"))),
            escape(diagnostics.get("script_name")), escape(diagnostics.get("error_code")),
            escape(diagnostics.get("message")))) + "</tr>")
        if diagnostics.get("log_tail"):
            tails.append(f"<p>{escape(event.get('lifecycle_event_name'))} log tail:</p>"
                         f"<pre>{escape(diagnostics['log_tail'])}</pre>")
    kind = f" ({escape(entry['instance_type'])})" if entry.get("instance_type") else ""
    return (f'<details class="instance" id="instance-{name}"{" open" if entry.get("status") == "Failed" else ""}>'
            f"<summary>{name}{kind} {status_badge(entry.get('status'))}</summary>"
            f'<table class="events"><tr>{EVENT_HEADINGS}</tr>{"".join(rows)}</table>{"".join(tails)}</details>')


def render_html(record: dict[str, Any]) -> str:
    """The whole page for ``record``."""
    deployment_id = escape(record.get("deployment_id"))
    summary = "".join(f"<tr><td>{escape(label)}</td><td>{value}</td></tr>" for label, value in summary_rows(record))
    messages = record.get("deployment_status_messages") or []
    items = "".join(f"<li>{escape(message)}</li>" for message in messages)
    message_list = f'<h2>Messages</h2><ul class="messages">{items}</ul>' if messages else ""
    legend = "".join(f'<span><i style="background:{STATUS_COLOURS[status]}"></i>{status}</span>'
                     for status in LEGEND_STATUSES)
    details = "".join(instance_details(entry) for entry in record.get("instances") or [])
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>Deployment {deployment_id}</title>'
        # Nothing is fetched: no script, style, font or image from anywhere.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Deployment {deployment_id} {status_badge(record.get('status'))}</h1>"
        f'<table class="summary">{summary}</table>{message_list}'
        f'<h2>Timeline</h2><div class="legend">{legend}<span>- - - wave start</span></div>'
        f'<div class="timeline">{timeline_svg(record)}</div>'
        f"<h2>Instances ({len(record.get('instances') or [])})</h2>{details}"
        "</body></html>\n")
