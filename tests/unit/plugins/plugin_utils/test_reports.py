# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JUnit report: a test case per instance, a failure with the failing event's diagnostics; both reports put into
the ledger's reports/."""
from __future__ import annotations

from xml.etree import ElementTree

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger import open_ledger
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.reports import junit_xml, write_reports

from sample_records import finished_record


def test_junit_has_a_case_per_instance_and_the_failure():
    suite = ElementTree.fromstring(junit_xml(finished_record(failing=["web-2"]))).find("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("webapp/prod d-AAAAAAAAA", "2", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert cases["web-1"].find("failure") is None
    failure = cases["web-2"].find("failure")
    assert (failure.get("type"), failure.text) == ("ScriptFailed", "validation failed on web-2\n")


def test_both_reports_land_in_the_ledger(tmp_path):
    warnings = []
    written = write_reports(open_ledger(str(tmp_path)), finished_record(), warnings)
    assert warnings == []
    assert written == {"report_path": str(tmp_path / "reports" / "d-AAAAAAAAA.xml"),
                       "html_report_path": str(tmp_path / "reports" / "d-AAAAAAAAA.html")}
    assert (tmp_path / "reports" / "d-AAAAAAAAA.xml").read_text().startswith("<?xml")
    assert (tmp_path / "reports" / "d-AAAAAAAAA.html").read_text().startswith("<!DOCTYPE html>")


def test_a_report_that_cannot_be_written_is_a_warning(tmp_path):
    (tmp_path / "reports").write_text("a file where the reports directory should be")
    warnings = []
    assert write_reports(open_ledger(str(tmp_path)), finished_record(), warnings) == {}
    assert len(warnings) == 2 and warnings[0].startswith(
        f"The XML report of deployment d-AAAAAAAAA could not be written to {tmp_path}: ")


def failed_with(record: dict, **diagnostics) -> dict:
    """``record`` with its failing event's diagnostics changed."""
    event = next(e for i in record["instances"] for e in i["lifecycle_events"] if e["status"] == "Failed")
    event["diagnostics"].update(diagnostics)
    return record


def test_junit_stays_well_formed_whatever_the_script_printed_and_shows_it():
    # Coloured output (ESC), a NUL, a form feed, a stray surrogate: characters XML 1.0 forbids.
    tail = "\x1b[31mERROR\x1b[0m disk full\x00\x0c\udc80\n"
    record = failed_with(finished_record(names=("web-1", "web\x1b[0m-2"), failing=["web\x1b[0m-2"]),
                         log_tail=tail, message="failed \x08\x08\x08\x08\x08\x08Succeeded")

    suite = ElementTree.fromstring(junit_xml(record)).find("testsuite")

    cases = [case.get("name") for case in suite.findall("testcase")]
    failure = suite.findall("testcase")[1].find("failure")
    assert cases == ["web-1", "web\\x1b[0m-2"]
    assert failure.text == "\\x1b[31mERROR\\x1b[0m disk full\\x00\\x0c\\udc80\n"
    assert failure.get("message") == "failed \\x08\\x08\\x08\\x08\\x08\\x08Succeeded"


def test_junit_shows_bidirectional_controls_as_escapes_not_as_reordered_text():
    record = failed_with(finished_record(names=("web-1", "web-2\u202edeliaF"), failing=["web-2\u202edeliaF"]),
                         log_tail="\u2067done\u2069\n")

    suite = ElementTree.fromstring(junit_xml(record)).find("testsuite")

    assert [case.get("name") for case in suite.findall("testcase")] == ["web-1", "web-2\\u202edeliaF"]
    assert suite.findall("testcase")[1].find("failure").text == "\\u2067done\\u2069\n"
