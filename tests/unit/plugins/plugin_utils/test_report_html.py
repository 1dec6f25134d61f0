# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML report: self-contained, everything from hosts and bundles escaped, a timeline row per instance and a
bar per event that ran, readable for hundreds of instances.

Rendering in a real browser (headless Chromium) is in tests/integration/test_reports_triggers.py."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.report_html import (
    ROW_HEIGHT, render_html, timeline_svg)

from sample_records import finished_record


class Structure(HTMLParser):
    """Tags and attributes as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parsed(page: str) -> list:
    parser = Structure()
    parser.feed(page)
    return parser.tags


def test_page_has_summary_timeline_and_details():
    record = finished_record(failing=["web-2"])
    record["rollback_info"] = {"rollback_deployment_id": "d-RRRRRRRRR"}
    page = render_html(record)
    tags = parsed(page)
    rows = [attrs for tag, attrs in tags if tag == "g" and attrs.get("class") == "instance-row"]
    assert [(row["data-instance"], row["data-status"]) for row in rows] == [
        ("web-1", "Succeeded"), ("web-2", "Failed")]
    assert len([attrs for tag, attrs in tags if tag == "rect" and attrs.get("class") == "event"]) == 12
    assert len([attrs for tag, attrs in tags if tag == "g" and attrs.get("class") == "wave"]) == 1
    assert ("details", {"class": "instance", "id": "instance-web-2", "open": None}) in tags
    assert "HEALTH_CONSTRAINTS" in page and "validation failed on web-2" in page and "scripts/validate.sh" in page
    assert ("a", {"href": "d-RRRRRRRRR.html"}) in tags


def test_a_deployment_whose_rollback_could_not_be_created_says_why():
    record = finished_record(failing=["web-2"])
    record["rollback_info"] = {"rollback_deployment_id": None, "rollback_triggering_deployment_id": None,
                               "rollback_message": "The rollback could not be created: <TargetGroupNotFound>."}
    page = render_html(record)
    assert "The rollback could not be created: &lt;TargetGroupNotFound&gt;." in page
    assert "Rolled back by" not in page


def test_nothing_is_fetched():
    page = render_html(finished_record())
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", page)
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"]  # the SVG namespace only


def test_what_came_from_hosts_is_escaped():
    record = finished_record(names=("web-1", "<b>x</b>"), failing=["<b>x</b>"])
    record["instances"][1]["lifecycle_events"][-1]["diagnostics"]["log_tail"] = "</pre><script>alert(1)</script>"
    record["deployment_status_messages"].append('"><img src=x onerror=alert(1)>')
    page = render_html(record)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-instance="&lt;b&gt;x&lt;/b&gt;"' in page


def test_bidirectional_controls_from_hosts_cannot_reorder_what_the_page_shows():
    # "web-1\u202egnp.exe" reads as "web-1exe.png" with the override in place.
    record = finished_record(names=("web-1\u202egnp.exe", "web-2"), failing=["web-1\u202egnp.exe"])
    record["instances"][0]["lifecycle_events"][-1]["diagnostics"]["log_tail"] = "ok \u2067\u2066done\u2069\u2069"
    page = render_html(record)
    assert not any(character in page for character in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "web-1\\u202egnp.exe" in page and "ok \\u2067\\u2066done\\u2069\\u2069" in page


def test_hundreds_of_instances_keep_their_row_height():
    names = [f"web-{number:03d}" for number in range(300)]
    svg = timeline_svg(finished_record(names=names))
    height = int(re.search(r'height="(\d+)"', svg).group(1))
    assert height >= 300 * ROW_HEIGHT
    assert svg.count('class="instance-row"') == 300


def test_a_record_with_no_times_still_renders():
    record = finished_record()
    for entry in record["instances"]:
        for event in entry["lifecycle_events"]:
            event.update(start_time=None, end_time=None, status="Skipped")
    record["waves"] = []
    page = render_html(record)
    assert page.count('class="instance-row"') == 2 and 'class="event"' not in page
