# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reports a finished deployment leaves in its ledger: JUnit XML for CI, and the HTML page for people."""
from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.report_html import render_html
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.untrusted_text import xml_text


def junit_xml(record: dict[str, Any]) -> str:
    """A test suite for the deployment, a test case per instance: failed with its failing event's diagnostics and
    log tail, or skipped."""
    counts = record.get("deployment_overview", {})
    # Every value goes through xml_text: ElementTree writes control characters (a script's coloured output) as
    # they are, and the file would not parse.
    suite = ElementTree.Element("testsuite", {
        "name": xml_text(f"{record['application_name']}/{record['deployment_group_name']} {record['deployment_id']}"),
        "tests": str(len(record["instances"])), "failures": str(counts.get("Failed", 0)),
        "skipped": str(counts.get("Skipped", 0)), "timestamp": record.get("create_time") or ""})
    for instance in record["instances"]:
        case = ElementTree.SubElement(suite, "testcase", {
            "classname": xml_text(f"{record['application_name']}.{record['deployment_group_name']}"),
            "name": xml_text(instance["instance_id"])})
        failed = [e for e in instance["lifecycle_events"] if e["status"] == "Failed"]
        if instance["status"] == "Failed":
            diagnostics = (failed[0].get("diagnostics") or {}) if failed else {}
            node = ElementTree.SubElement(case, "failure", {
                "message": xml_text(diagnostics.get("message", "failed")),
                "type": xml_text(diagnostics.get("error_code", "UnknownError"))})
            node.text = xml_text(diagnostics.get("log_tail") or "")
        elif instance["status"] == "Skipped":
            ElementTree.SubElement(case, "skipped")
    root = ElementTree.Element("testsuites")
    root.append(suite)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def write_reports(ledger: Any, record: dict[str, Any], warnings: list[str]) -> dict[str, str]:
    """Both reports of ``record`` into the ledger's ``reports/``; where each one is. A report that cannot be written
    is a warning (added to ``warnings``): the deployment it reports on is over."""
    deployment_id = record["deployment_id"]
    written = {}
    for key, extension, render in (("report_path", "xml", junit_xml), ("html_report_path", "html", render_html)):
        try:
            written[key] = ledger.put_report(deployment_id, extension, render(record))
        except Exception as error:  # pylint: disable=broad-except  # a report never fails a finished deployment
            warnings.append(f"The {extension.upper()} report of deployment {deployment_id} could not be written to "
                            f"{ledger.location}: {error}")
    return written
