# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.codedeploy.lifecycle_event on real fleet hosts: what a hook script sees, and what a user sees after."""
from __future__ import annotations

import re
from pathlib import Path

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import parse_appspec
from support.revisions import write_tree

MODULE = "fleetops.codedeploy.lifecycle_event"
ROOT = "/opt/codedeploy-agent/deployment-root"
GROUP_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CURRENT_ID = "d-LIFECYCL1"
PREVIOUS_ID = "d-LIFECYCL0"
LAST_SUCCESSFUL = f"{ROOT}/deployment-instructions/{GROUP_ID}_last_successful_install"
CODEDEPLOY_VARIABLES = re.compile(r"^(LIFECYCLE_EVENT|DEPLOYMENT_|APPLICATION_NAME|BUNDLE_)")


def place_revisions(fleet, host: str, tmp_path: Path, revisions: dict[str, dict]) -> None:
    """Lay unpacked revisions out on the host where revision_bundle leaves them."""
    local = tmp_path / "group"
    for deployment_id, tree in revisions.items():
        write_tree(local / deployment_id / "deployment-archive", tree)
    run = fleet.ansible(host, "ansible.builtin.copy",
                        {"src": f"{local}/", "dest": f"{ROOT}/{GROUP_ID}/", "mode": "preserve"})
    assert run.rc == 0, run.output


def hooks_spec(text: str) -> dict:
    """The normalised AppSpec the role passes, parsed on the controller as appspec_info does."""
    return parse_appspec("version: 0.0\nos: linux\nhooks:\n" + text)[0]


def run_event(fleet, host: str, event: str, *options: str, deployment_id: str = CURRENT_ID, **args) -> dict:
    module_args = {"event": event, "deployment_id": deployment_id, "deployment_group_id": GROUP_ID,
                   "deployment_group_name": "web-production", "application_name": "web", **args}
    return fleet.results(host, MODULE, module_args, *options)[host]


def stdout_lines(result: dict) -> list[str]:
    return [line[len("[stdout]"):] for line in result["diagnostics"]["log_tail"].splitlines()
            if line.startswith("[stdout]")]


def test_scripts_see_exactly_the_codedeploy_environment_and_run_as_asked(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    report = "#!/bin/sh\necho \"$(id -un) in $(pwd)\"\nenv | grep -E '^(LIFECYCLE_EVENT|DEPLOYMENT_|APPLICATION_NAME|BUNDLE_)' | sort\n"
    place_revisions(view, host, tmp_path, {CURRENT_ID: {
        "scripts/report.sh": report, "scripts/whoami.sh": "#!/bin/sh\necho \"as $(id -un)\"\n",
        "scripts/plain": "echo no shebang $((6*7))\n"}})
    spec = hooks_spec("  AfterInstall:\n    - location: scripts/report.sh\n"
                      "    - {location: scripts/whoami.sh, runas: deploy}\n"
                      "    - {location: scripts/whoami.sh, sudo: true}\n"
                      "    - {location: scripts/whoami.sh, runas: deploy, sudo: true}\n"
                      "    - location: scripts/plain\n")
    result = run_event(view, host, "AfterInstall", appspec=spec, bundle_env={
        "BUNDLE_BUCKET": "releases", "BUNDLE_KEY": "web/web-1.tgz", "BUNDLE_VERSION": None, "BUNDLE_ETAG": "e1"})
    assert result["status"] == "Succeeded", result
    assert result["changed"] and result["diagnostics"]["error_code"] == "Success"
    assert result["revision_dir"] == f"{ROOT}/{GROUP_ID}/{CURRENT_ID}"
    assert stdout_lines(result) == [
        "root in /opt/codedeploy-agent",
        "APPLICATION_NAME=web", "BUNDLE_BUCKET=releases", "BUNDLE_ETAG=e1", "BUNDLE_KEY=web/web-1.tgz",
        f"DEPLOYMENT_GROUP_ID={GROUP_ID}", "DEPLOYMENT_GROUP_NAME=web-production", f"DEPLOYMENT_ID={CURRENT_ID}",
        "LIFECYCLE_EVENT=AfterInstall",
        "as deploy", "as root", "as deploy", "no shebang 42"]
    assert [script["rc"] for script in result["scripts"]] == [0, 0, 0, 0, 0]
    plain = view.path(host, f"{ROOT}/{GROUP_ID}/{CURRENT_ID}/deployment-archive/scripts/plain")
    assert plain.stat().st_mode & 0o777 == 0o755  # made executable (a+x), as the agent does
    log = view.path(host, f"{ROOT}/{GROUP_ID}/{CURRENT_ID}/logs/scripts.log").read_text().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d LifecycleEvent - AfterInstall", log[0])
    assert log[1].endswith(" Script - scripts/report.sh") and log[2].endswith(" [stdout]root in /opt/codedeploy-agent")


def test_failures_report_the_agents_codes_and_stop_the_event(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    place_revisions(view, host, tmp_path, {CURRENT_ID: {
        "fail.sh": "#!/bin/sh\necho about to fail >&2\nexit 3\n",
        "next.sh": "#!/bin/sh\ntouch /srv/next-ran\n"}})
    failed = run_event(view, host, "ValidateService", appspec=hooks_spec(
        "  ValidateService:\n    - location: fail.sh\n    - location: next.sh\n"))
    assert failed["status"] == "Failed" and failed["msg"] == "Script at specified location: fail.sh failed with exit code 3"
    assert failed["diagnostics"] == {
        "error_code": "ScriptFailed", "script_name": "fail.sh", "message": failed["msg"],
        "log_tail": "LifecycleEvent - ValidateService\nScript - fail.sh\n[stderr]about to fail\n"}
    assert [script["location"] for script in failed["scripts"]] == ["fail.sh"]
    assert not view.path(host, "/srv/next-ran").exists()

    as_deploy = run_event(view, host, "ValidateService", appspec=hooks_spec(
        "  ValidateService:\n    - {location: fail.sh, runas: deploy}\n"))
    assert as_deploy["msg"] == "Script at specified location: fail.sh run as user deploy failed with exit code 3"

    missing = run_event(view, host, "BeforeInstall", appspec=hooks_spec(
        "  BeforeInstall:\n    - location: scripts/gone.sh\n"))
    assert missing["diagnostics"]["error_code"] == "ScriptMissing"
    assert missing["msg"] == ("Script does not exist at specified location: "
                              f"{ROOT}/{GROUP_ID}/{CURRENT_ID}/deployment-archive/scripts/gone.sh")


def processes_in_group(view, host: str, pgid: int) -> list[str]:
    """The live members of a process group (an exited, not yet reaped process is dead: it holds nothing)."""
    listing = view.ssh(host, "ps -eo pgid,pid,stat,args").stdout.splitlines()[1:]
    return [line for line in listing if int(line.split()[0]) == pgid and not line.split()[2].startswith("Z")]


def test_a_timeout_stops_the_script_and_everything_in_its_group(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    # The grandchild ignores SIGTERM: only the SIGKILL after the grace period stops it.
    grandchild = "bash -c 'trap \"\" TERM; sleep 120; :' &"
    place_revisions(view, host, tmp_path, {CURRENT_ID: {
        "slow.sh": f"#!/bin/bash\n{grandchild}\necho group $(ps -o pgid= -p $$)\nsleep 121\n",
        "held.sh": f"#!/bin/sh\n{grandchild}\necho group $$\nexit 0\n"}})
    timed_out = run_event(view, host, "ApplicationStart", kill_grace_seconds=1, appspec=hooks_spec(
        "  ApplicationStart:\n    - {location: slow.sh, timeout: 2}\n"))
    assert timed_out["diagnostics"]["error_code"] == "ScriptTimedOut"
    assert timed_out["msg"] == "Script at specified location: slow.sh failed to complete in 2 seconds"
    script = timed_out["scripts"][0]
    assert script["timed_out"] and script["rc"] is None and 2 <= script["duration"] < 2 + 1 + 1
    group = int(stdout_lines(timed_out)[0].split()[1])
    assert processes_in_group(view, host, group) == []

    held = run_event(view, host, "ApplicationStart", kill_grace_seconds=1, appspec=hooks_spec(
        "  ApplicationStart:\n    - {location: held.sh, timeout: 2}\n"))
    assert held["diagnostics"]["error_code"] == "OutputsLeftOpen"
    assert held["msg"].startswith("Script at specified location: held.sh failed to close STDOUT. ")
    assert "cmd > /dev/null 2>&1 < /dev/null &" in held["msg"]
    assert held["scripts"][0]["rc"] == 0 and held["scripts"][0]["timed_out"]
    assert processes_in_group(view, host, int(stdout_lines(held)[0].split()[1])) == []

    # su -c starts the script in a session of its own: its group is stopped all the same.
    as_deploy = run_event(view, host, "ApplicationStart", kill_grace_seconds=1, appspec=hooks_spec(
        "  ApplicationStart:\n    - {location: slow.sh, timeout: 2, runas: deploy}\n"))
    assert as_deploy["diagnostics"]["error_code"] == "ScriptTimedOut"
    assert as_deploy["scripts"][0]["duration"] < 2 + 1 + 1
    group = int(stdout_lines(as_deploy)[0].split()[1])
    assert group != int(stdout_lines(timed_out)[0].split()[1]) and processes_in_group(view, host, group) == []


def test_the_log_tail_is_the_newest_whole_entries_within_2048_characters(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    place_revisions(view, host, tmp_path, {CURRENT_ID: {
        "chatty.sh": "#!/bin/sh\nfor i in $(seq 1 200); do echo \"line $i of a chatty script\"; done\n"}})
    result = run_event(view, host, "ApplicationStart", appspec=hooks_spec(
        "  ApplicationStart:\n    - location: chatty.sh\n"))
    tail = result["diagnostics"]["log_tail"]
    entries = [f"[stdout]line {i} of a chatty script\n" for i in range(1, 201)]
    assert 2048 - len(entries[0]) < len(tail) <= 2048
    assert tail == "".join(entries[-tail.count("\n"):])
    logged = view.path(host, f"{ROOT}/{GROUP_ID}/{CURRENT_ID}/logs/scripts.log").read_text()
    assert logged.count("[stdout]line ") == 200


def test_application_stop_runs_the_previous_revision_and_nothing_on_a_first_deployment(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    stop_spec = hooks_spec("  ApplicationStop:\n    - location: stop.sh\n")
    place_revisions(view, host, tmp_path, {PREVIOUS_ID: {
        # JSON is YAML: the agent reads it from appspec.yml, and so does this host without PyYAML.
        "appspec.yml": '{"version": 0.0, "os": "linux", "hooks": {"ApplicationStop": [{"location": "stop.sh"}]}}',
        "stop.sh": "#!/bin/sh\necho \"$0 for $DEPLOYMENT_ID\" > /srv/stopped\n"}})

    first = run_event(view, host, "ApplicationStop", previous_appspec=stop_spec)
    assert first["status"] == "Skipped" and not first["changed"] and first["scripts"] == []
    assert first["revision_dir"] is None and not view.path(host, "/srv/stopped").exists()
    assert not view.path(host, f"{ROOT}/{GROUP_ID}/{CURRENT_ID}").exists()

    previous_dir = f"{ROOT}/{GROUP_ID}/{PREVIOUS_ID}"
    pointer = view.ssh(host, f"mkdir -p {Path(LAST_SUCCESSFUL).parent} && printf %s {previous_dir} > {LAST_SUCCESSFUL}")
    assert pointer.rc == 0, pointer.output
    checked = run_event(view, host, "ApplicationStop", "--check", previous_appspec=stop_spec)
    assert checked["status"] == "Skipped" and checked["scripts"][0]["location"] == "stop.sh"
    assert not view.path(host, "/srv/stopped").exists()

    stopped = run_event(view, host, "ApplicationStop")  # without previous_appspec: read on the host
    assert stopped["status"] == "Succeeded" and stopped["revision_dir"] == previous_dir
    assert view.path(host, "/srv/stopped").read_text() == \
        f"{previous_dir}/deployment-archive/stop.sh for {CURRENT_ID}\n"
    assert "Script - stop.sh" in view.path(host, f"{ROOT}/{GROUP_ID}/{CURRENT_ID}/logs/scripts.log").read_text()

    view.ssh(host, f"rm -rf {previous_dir}")
    vanished = run_event(view, host, "ApplicationStop", previous_appspec=stop_spec)
    assert vanished["status"] == "Failed" and vanished["msg"].startswith(
        "The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory")


def test_reserved_events_are_refused(fleet):
    view = fleet(1)
    host = view.hosts[0]
    refused = run_event(view, host, "Install")
    assert refused["msg"].startswith("Install runs no scripts: it is carried out by fleetops.codedeploy.revision_install")
