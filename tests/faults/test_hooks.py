# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hooks that misbehave, in real deployments on one fleet host: each fault ends its deployment as the record says,
leaves nothing running and nothing unbounded on the host, and the next deployment succeeds."""
from __future__ import annotations

import json
import time

from support.deployments import APP_DESTINATION, DEPLOYMENT_ROOT, deploy, local, make_revision, records
from support.faults import event_of, live_processes_naming, revision_with_hook
from support.revisions import write_tree

GRACE = {"kill_grace_seconds": 1}


def deploy_and_record(view, tmp_path, revision, **inputs) -> dict:
    ledger = tmp_path / "ledger"
    before = len(records(ledger))
    run = deploy(view, ledger, local(revision), **inputs)
    found = records(ledger)
    assert len(found) == before + 1, run.output
    return found[-1]


def assert_next_deployment_works(view, host: str, tmp_path) -> None:
    record = deploy_and_record(view, tmp_path, make_revision(tmp_path / "good", "9"), **GRACE)
    assert record["status"] == "Succeeded", record
    assert view.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "9\n"


def scripts_log(view, host: str, record: dict) -> str:
    group_id, deployment_id = record["deployment_group_id"], record["deployment_id"]
    return view.path(host, f"{DEPLOYMENT_ROOT}/{group_id}/{deployment_id}/logs/scripts.log").read_text()


def test_a_hook_that_ignores_sigterm_is_killed_at_its_deadline_with_all_it_started(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    marker = f": sigterm-{tmp_path.name}"
    script = (f"#!/bin/bash\ntrap '' TERM\nbash -c 'trap \"\" TERM; sleep 300; {marker}' &\n"
              f"echo ignoring SIGTERM\nsleep 301\n{marker}\n")
    record = deploy_and_record(view, tmp_path, revision_with_hook(tmp_path / "r", "2", script, timeout=2), **GRACE)

    assert record["status"] == "Failed", record
    event = event_of(record, "ApplicationStart")
    assert event["status"] == "Failed" and event["diagnostics"]["error_code"] == "ScriptTimedOut"
    assert event["diagnostics"]["message"] == "Script at specified location: scripts/fault.sh failed to complete in 2" \
        " seconds"
    assert "[stdout]ignoring SIGTERM" in event["diagnostics"]["log_tail"]
    assert live_processes_naming(marker) == []
    assert "Script - scripts/fault.sh" in scripts_log(view, host, record)
    assert not view.path(host, f"{DEPLOYMENT_ROOT}/ongoing-deployment/{record['deployment_id']}").exists()
    assert_next_deployment_works(view, host, tmp_path)


def test_a_hook_whose_daemon_holds_its_output_fails_at_the_deadline_and_says_how_to_detach(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    marker = f": daemon-{tmp_path.name}"
    script = f"#!/bin/sh\nbash -c 'sleep 300; {marker}' &\necho daemon started\nexit 0\n"
    record = deploy_and_record(view, tmp_path, revision_with_hook(tmp_path / "r", "2", script, timeout=2), **GRACE)

    assert record["status"] == "Failed", record
    diagnostics = event_of(record, "ApplicationStart")["diagnostics"]
    assert diagnostics["error_code"] == "OutputsLeftOpen"
    assert diagnostics["message"].startswith("Script at specified location: scripts/fault.sh failed to close STDOUT.")
    assert "Start background processes detached from the script's output, e.g. `cmd > /dev/null 2>&1 < /dev/null &`" \
        in diagnostics["message"]
    assert live_processes_naming(marker) == []
    assert "[stdout]daemon started" in scripts_log(view, host, record)
    assert_next_deployment_works(view, host, tmp_path)


def test_a_hook_writing_100_mb_leaves_the_host_and_the_controller_with_bounded_logs(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    # 100 MB in lines of 100 bytes, then a last word on stderr.
    script = "#!/bin/sh\nyes \"$(printf '%099d' 7)\" | head -c 100000000\necho done >&2\n"
    ledger = tmp_path / "ledger"
    run = deploy(view, ledger, local(revision_with_hook(tmp_path / "r", "2", script, timeout=300)), **GRACE)
    (record,) = records(ledger)

    assert record["status"] == "Succeeded", run.output
    tail = event_of(record, "ApplicationStart")["diagnostics"]["log_tail"]
    assert len(tail) <= 2048 and "more bytes of output were not logged" in tail
    log = scripts_log(view, host, record)
    assert log.count("[stdout]" + "0" * 98 + "7\n") == 4 * 1024 * 1024 // 100
    assert len(log) < 6 * 1024 * 1024 and "[stderr]done" not in log  # the first 4 MiB of output only
    assert f"{100_000_000 + 5 - 4 * 1024 * 1024} more bytes of output were not logged" in log
    deployments_log = view.path(host, f"{DEPLOYMENT_ROOT}/deployment-logs/codedeploy-agent-deployments.log")
    assert deployments_log.stat().st_size < 8 * 1024 * 1024
    # What reached the controller: the playbook's output and the record, a few kilobytes each.
    assert len(run.output) < 200_000 and sum(path.stat().st_size for path in ledger.rglob("*.json")) < 200_000
    assert_next_deployment_works(view, host, tmp_path)


def test_a_full_disk_under_a_running_hook_stops_it_at_once_and_says_so(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    group_id, deployment_id = "7e6d5c4b-3a29-4180-9f8e-7d6c5b4a3928", "d-FULLDISK1"
    deployment = f"{DEPLOYMENT_ROOT}/{group_id}/{deployment_id}"
    marker = f": full-disk-{tmp_path.name}"
    write_tree(view.path(host, f"{deployment}/deployment-archive"), {
        "chatty.sh": f"#!/bin/sh\nbash -c 'sleep 300; {marker}' &\nyes \"$(printf '%099d' 1)\" | head -c 1000000\n"
                     f"sleep 301\n{marker}\n",
        "quiet.sh": "#!/bin/sh\necho fine\n"})
    view.path(host, f"{deployment}/logs").mkdir()

    def run_event(location: str, timeout: int) -> dict:
        spec = {"version": "0.0", "os": "linux", "files": [], "permissions": [], "hooks": {
            "ApplicationStart": [{"location": location, "timeout": timeout, "runas": None, "sudo": False}]}}
        return view.results(host, "fleetops.codedeploy.lifecycle_event", {
            "event": "ApplicationStart", "deployment_id": deployment_id, "deployment_group_id": group_id,
            "deployment_group_name": "web", "application_name": "web", "appspec": spec,
            "kill_grace_seconds": 1})[host]

    # A 64 KiB file system under the deployment's logs, in the host's own mount namespace.
    mounted = view.ssh(host, f"mount -t tmpfs -o size=64k fleet-full-disk {deployment}/logs")
    assert mounted.rc == 0, mounted.output
    try:
        started = time.monotonic()
        failed = run_event("chatty.sh", 60)
        elapsed = time.monotonic() - started
        assert live_processes_naming(marker) == []
    finally:
        assert view.ssh(host, f"umount {deployment}/logs").rc == 0

    assert failed["status"] == "Failed" and failed["diagnostics"]["error_code"] == "ScriptFailed", failed
    assert failed["msg"] == (
        "Script at specified location: chatty.sh was stopped with every process it started, because of an error"
        f" on the host while it ran: {deployment}/logs/scripts.log: No space left on device (Errno::ENOSPC). Fix"
        " that on the host and deploy again.")
    assert "Traceback" not in json.dumps(failed) and elapsed < 30  # stopped at once, not at the 60 s deadline
    assert failed["scripts"][0]["rc"] is None and failed["scripts"][0]["duration"] < 30
    assert not view.path(host, f"{DEPLOYMENT_ROOT}/ongoing-deployment/{deployment_id}").exists()
    # With space again, the event runs; a timeout of 400 digits is a deadline never reached, not a crash.
    assert run_event("quiet.sh", int("9" * 400))["status"] == "Succeeded"
    assert "[stdout]fine" in view.path(host, f"{deployment}/logs/scripts.log").read_text()
