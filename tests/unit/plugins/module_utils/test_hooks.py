# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hooks: revision choice, command lines, environment, logs, and real scripts run by the process runner."""
from __future__ import annotations

import datetime
import json
import os
import re
import time
from pathlib import Path

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils import hooks
from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import AppSpecError
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DeploymentRoot,
    DeploymentRootError,
    write_pointer,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.hooks import (
    CURRENT,
    LAST_SUCCESSFUL,
    MOST_RECENT,
    EventRequest,
    EventRequestError,
    HookScript,
    LogTail,
    ProcessInfo,
)
from support.revisions import write_tree

GROUP_ID = "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
CURRENT_ID = "d-CURRENT01"
PREVIOUS_ID = "d-PREVIOUS1"


def request(root: Path, event: str = "ApplicationStart", **changes) -> EventRequest:
    fields = dict(event=event, deployment_id=CURRENT_ID, deployment_group_id=GROUP_ID,
                  deployment_group_name="web-prod", application_name="web", deployment_root=str(root),
                  kill_grace_seconds=1.0)
    fields.update(changes)
    return EventRequest(**fields)


def appspec(event: str, *scripts: dict) -> dict:
    entries = [dict({"timeout": 3600, "runas": None, "sudo": False}, **script) for script in scripts]
    return {"version": "0.0", "os": "linux", "files": [], "permissions": [], "hooks": {event: entries}}


def revision(root: Path, deployment_id: str, files: dict, modes: dict | None = None) -> Path:
    """An unpacked revision of this deployment group under the deployment root."""
    archive = root / GROUP_ID / deployment_id / "deployment-archive"
    write_tree(archive, files, modes)
    return archive.parent


def scripts_log(root: Path) -> str:
    return (root / GROUP_ID / CURRENT_ID / "logs" / "scripts.log").read_text()


# Refused requests

@pytest.mark.parametrize("event", ["DownloadBundle", "Install", "BlockTraffic", "AllowTraffic"])
def test_events_without_scripts_are_refused_with_the_module_that_does_them(event, tmp_path):
    with pytest.raises(EventRequestError, match=f"{event} runs no scripts: it is carried out by fleetops"):
        hooks.run_event(request(tmp_path, event))


def test_unknown_event_bad_ids_and_unknown_bundle_variables_are_refused(tmp_path):
    with pytest.raises(EventRequestError, match="'AfterInstal' is not a lifecycle event"):
        hooks.check_event("AfterInstal")
    with pytest.raises(DeploymentRootError):
        hooks.run_event(request(tmp_path, deployment_id="../etc"))
    with pytest.raises(EventRequestError, match="bundle_env holds BUNDLE_COMMAND"):
        hooks.run_event(request(tmp_path, bundle_env={"BUNDLE_COMMAND": "x"}))


def test_a_catch_up_deployment_is_accepted_and_runs_its_scripts_as_a_user_deployment_does(tmp_path):
    hooks.check_request(request(tmp_path, deployment_creator="autoscaling"))
    for event in ("ApplicationStop", "BeforeBlockTraffic", "BeforeInstall", "BeforeAllowTraffic"):
        for deployment_type in ("IN_PLACE", "BLUE_GREEN"):
            assert (hooks.revision_source(event, deployment_type, "autoscaling")
                    == hooks.revision_source(event, deployment_type, "user"))
    with pytest.raises(EventRequestError, match="deployment_creator must be one of user, codeDeployRollback, "
                                                "autoscaling, not 'CodeDeployAutoUpdate'"):
        hooks.check_request(request(tmp_path, deployment_creator="CodeDeployAutoUpdate"))


# Which revision runs

@pytest.mark.parametrize("event, deployment_type, creator, expected", [
    ("ApplicationStop", "IN_PLACE", "user", LAST_SUCCESSFUL),
    ("BeforeBlockTraffic", "IN_PLACE", "user", LAST_SUCCESSFUL),
    ("AfterBlockTraffic", "BLUE_GREEN", "user", LAST_SUCCESSFUL),
    ("BeforeInstall", "IN_PLACE", "user", CURRENT),
    ("BeforeAllowTraffic", "IN_PLACE", "codeDeployRollback", CURRENT),
    ("BeforeBlockTraffic", "BLUE_GREEN", "codeDeployRollback", MOST_RECENT),
    ("AfterBlockTraffic", "BLUE_GREEN", "codeDeployRollback", MOST_RECENT),
    ("BeforeAllowTraffic", "BLUE_GREEN", "codeDeployRollback", LAST_SUCCESSFUL),
    ("AfterAllowTraffic", "BLUE_GREEN", "codeDeployRollback", LAST_SUCCESSFUL),
    ("ApplicationStop", "BLUE_GREEN", "codeDeployRollback", LAST_SUCCESSFUL),
    ("ValidateService", "BLUE_GREEN", "codeDeployRollback", CURRENT),
])
def test_revision_source_follows_the_agent_mapping(event, deployment_type, creator, expected):
    assert hooks.revision_source(event, deployment_type, creator) == expected


def test_choose_revision_dir():
    choose = hooks.choose_revision_dir
    assert choose(CURRENT, "/cur", False, "/last", "/recent") == "/cur"
    assert choose(LAST_SUCCESSFUL, "/cur", False, "/last", "/recent") == "/last"
    assert choose(LAST_SUCCESSFUL, "/cur", True, "/last", "/recent") == "/cur"  # archive already unpacked
    assert choose(LAST_SUCCESSFUL, "/cur", False, None, "/recent") is None
    assert choose(MOST_RECENT, "/cur", True, "/last", "/recent") == "/recent"
    assert choose(MOST_RECENT, "/cur", False, "/last", None) is None


# Scripts, commands, environment

def test_hook_scripts_reads_a_normalised_appspec_and_refuses_broken_entries():
    spec = appspec("ApplicationStart", {"location": " scripts/a.sh ", "timeout": 30, "runas": "deploy"},
                   {"location": "scripts/b.sh", "sudo": True})
    assert hooks.hook_scripts(spec, "ApplicationStart") == [
        HookScript("scripts/a.sh", 30, "deploy", False), HookScript("scripts/b.sh", 3600, None, True)]
    assert hooks.hook_scripts(spec, "ValidateService") == []
    with pytest.raises(AppSpecError, match=r"hooks.ApplicationStart\[0\]: a script needs a location"):
        hooks.hook_scripts(appspec("ApplicationStart", {"location": ""}), "ApplicationStart")
    with pytest.raises(AppSpecError, match="timeout must be a positive number of seconds, not 0"):
        hooks.hook_scripts(appspec("ApplicationStart", {"location": "a.sh", "timeout": 0}), "ApplicationStart")


def test_script_path_is_relative_to_the_revision_even_with_a_leading_slash(tmp_path):
    assert hooks.script_path("/r/deployment-archive", "/scripts/a.sh") == "/r/deployment-archive/scripts/a.sh"
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "out.sh").symlink_to("/bin/true")
    assert hooks.escapes_revision(str(tmp_path / "inside"), str(tmp_path / "inside" / "out.sh"))
    assert hooks.escapes_revision(str(tmp_path / "inside"), hooks.script_path(str(tmp_path / "inside"), "../x"))
    assert not hooks.escapes_revision(str(tmp_path / "inside"), str(tmp_path / "inside" / "a.sh"))


def test_script_command_is_the_agents_command_line_as_arguments():
    path = "/root/d/deployment-archive/scripts/a.sh"
    assert hooks.script_command(path, None, False) == [path]
    assert hooks.script_command(path, "deploy", False) == ["su", "deploy", "-c", path]
    assert hooks.script_command(path, None, True) == ["sudo", path]
    assert hooks.script_command(path, "deploy", True) == ["sudo", "su", "deploy", "-c", path]
    # su hands -c to a shell: a hostile file name stays one word.
    assert hooks.script_command("/a/x;id.sh", "deploy", False) == ["su", "deploy", "-c", "'/a/x;id.sh'"]


def test_scripts_get_the_service_environment_and_the_codedeploy_variables_only(tmp_path):
    base = hooks.service_environment("/root", hooks.parse_locale(
        '# written by localectl\nLANG="en_US.UTF-8"\nLC_TIME=C.UTF-8\nSSH_TTY=/dev/pts/0\n'))
    environment = hooks.script_environment(base, request(
        tmp_path, bundle_env={"BUNDLE_BUCKET": "releases", "BUNDLE_KEY": "web.tgz", "BUNDLE_VERSION": None,
                              "BUNDLE_ETAG": "abc"}))
    assert environment == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
        "LANG": "en_US.UTF-8", "LC_TIME": "C.UTF-8", "LIFECYCLE_EVENT": "ApplicationStart",
        "DEPLOYMENT_ID": CURRENT_ID, "APPLICATION_NAME": "web", "DEPLOYMENT_GROUP_NAME": "web-prod",
        "DEPLOYMENT_GROUP_ID": GROUP_ID, "BUNDLE_BUCKET": "releases", "BUNDLE_KEY": "web.tgz",
        "BUNDLE_ETAG": "abc"}


def test_the_host_service_environment_has_no_session_variables_or_credentials(monkeypatch):
    for name, value in (("SSH_TTY", "/dev/pts/1"), ("TERM", "xterm"), ("AWS_SECRET_ACCESS_KEY", "s")):
        monkeypatch.setenv(name, value)
    environment = hooks.host_service_environment()
    assert set(environment) - set(hooks.LOCALE_VARIABLES) == {"PATH", "HOME"}


# Logs

def test_log_tail_keeps_the_newest_whole_entries_within_2048_characters():
    tail = LogTail()
    entries = ["[stdout]line {:04d} {}\n".format(n, "x" * 40) for n in range(200)]
    for entry in entries:
        tail.append(entry)
    text = tail.text()
    assert len(text) <= 2048 and len(text) > 2048 - len(entries[0])
    assert text.endswith(entries[-1]) and text.startswith("[stdout]line ")
    assert text == "".join(entries[-len(text.splitlines()):])
    tail.append("y" * 5000 + "\n")  # one entry longer than the limit: its end is kept
    assert tail.text() == ("y" * 5000 + "\n")[-2048:]


def test_scripts_log_line_is_the_agents_format():
    now = datetime.datetime(2025, 3, 1, 9, 5, 7, 123456)
    assert hooks.scripts_log_line("Script - scripts/a.sh\n", now) == "2025-03-01 09:05:07 Script - scripts/a.sh\n"


def test_descendant_groups_follows_the_tree_below_a_process():
    table = [ProcessInfo(10, 1, 10, 10), ProcessInfo(11, 10, 11, 11), ProcessInfo(12, 11, 11, 11),
             ProcessInfo(13, 12, 13, 11), ProcessInfo(20, 1, 20, 20)]
    assert hooks.descendant_groups(table, 10) == {(11, 11), (13, 11)}


# The process runner, with real processes

def run(tmp_path: Path, body: str, timeout: float = 10, grace: float = 1.0, **kwargs):
    script = write_tree(tmp_path, {"s.sh": body}) / "s.sh"
    lines: list[str] = []
    outcome = hooks.run_process([str(script)], {"PATH": os.environ["PATH"], **kwargs.pop("env", {})}, "/",
                                timeout, grace, lines.append, **kwargs)
    return outcome, lines


def test_output_of_both_streams_is_logged_line_by_line(tmp_path):
    outcome, lines = run(tmp_path, "#!/bin/sh\necho out1\necho err1 >&2\nprintf 'no newline'\nexit 0\n")
    assert outcome.rc == 0 and not outcome.timed_out
    assert sorted(lines) == ["[stderr]err1\n", "[stdout]no newline\n", "[stdout]out1\n"]


def test_a_chatty_script_on_both_streams_does_not_block(tmp_path):
    body = "#!/bin/sh\ni=0\nwhile [ $i -lt 3000 ]; do echo \"out $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; " \
           "echo \"err $i yyyyyyyyyyyyyyyyyyyyyyyyyyyyy\" >&2; i=$((i+1)); done\n"
    outcome, lines = run(tmp_path, body, timeout=20)
    assert outcome.rc == 0
    assert [line for line in lines if line.startswith("[stdout]")] == [
        "[stdout]out {} {}\n".format(i, "x" * 34) for i in range(3000)]
    assert [line for line in lines if line.startswith("[stderr]")] == [
        "[stderr]err {} {}\n".format(i, "y" * 29) for i in range(3000)]


def test_exit_status_stdin_at_eof_and_own_session(tmp_path):
    outcome, lines = run(tmp_path, "#!/bin/sh\nread line || echo eof\nps -o pgid=,sid= -p $$\nexit 3\n")
    assert outcome.rc == 3
    pgid, sid = lines[1][len("[stdout]"):].split()
    assert lines[0] == "[stdout]eof\n" and pgid == sid and int(pgid) != os.getpgid(0)


def test_a_script_without_shebang_runs_through_sh(tmp_path):
    outcome, lines = run(tmp_path, "echo plain shell $((1+2))\n")
    assert outcome.rc == 0 and lines == ["[stdout]plain shell 3\n"]


def _live_processes_naming(marker: str) -> list[str]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                command = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in command and state != "Z":
                found.append(command)
    return found


def test_timeout_stops_the_whole_group_including_children_that_ignore_sigterm(tmp_path):
    marker = f": {tmp_path}/marker"  # a no-op command that names the processes of this test
    body = (f"#!/bin/bash\ntrap '' TERM\nbash -c 'sleep 300; {marker}' &\n"
            f"bash -c 'trap \"\" TERM; sleep 301; {marker}' &\necho started\nsleep 302\n")
    started = time.monotonic()
    outcome, lines = run(tmp_path, body, timeout=1, grace=0.5)
    assert time.monotonic() - started < 1 + 0.5 + 1
    assert outcome.rc is None and outcome.timed_out and lines == ["[stdout]started\n"]
    assert _live_processes_naming(marker) == []


def test_a_background_child_holding_stdout_is_outputs_left_open_and_stopped_at_the_deadline(tmp_path):
    marker = f": {tmp_path}/held"
    outcome, lines = run(tmp_path, f"#!/bin/sh\nbash -c 'sleep 300; {marker}' &\necho bye\nexit 0\n", timeout=1,
                         grace=0.5)
    assert outcome.rc == 0 and outcome.open_stream == "STDOUT" and outcome.timed_out
    assert 1 <= outcome.duration < 2.5 and lines == ["[stdout]bye\n"]
    assert _live_processes_naming(marker) == []


def _kill_processes_naming(marker: str) -> None:
    """Clean up after a failing assertion: the processes this test started that outlived the deadline."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" "):
                    os.killpg(os.getpgid(int(name)), 9)
            except OSError:
                continue


def test_a_child_holding_stdout_from_a_session_of_its_own_is_stopped_at_the_deadline(tmp_path):
    marker = f": {tmp_path}/left-session"
    try:
        outcome, lines = run(tmp_path, f"#!/bin/sh\nsetsid bash -c 'sleep 300; {marker}' &\necho bye\nexit 0\n",
                             timeout=1, grace=0.5)
        assert outcome.rc == 0 and outcome.open_stream == "STDOUT" and lines == ["[stdout]bye\n"]
        assert _live_processes_naming(marker) == []
    finally:
        _kill_processes_naming(marker)


def test_a_child_holding_stdout_of_a_wrapped_script_that_exited_is_stopped_at_the_deadline(tmp_path):
    # `setsid --wait` starts the script in a session of its own and waits for it, as `su <user> -c` does.
    marker = f": {tmp_path}/wrapped"
    script = write_tree(tmp_path, {"s.sh": f"#!/bin/sh\nbash -c 'sleep 300; {marker}' &\necho bye\nexit 0\n"}) / "s.sh"
    lines: list[str] = []
    try:
        outcome = hooks.run_process(["setsid", "--wait", str(script)], {"PATH": os.environ["PATH"]}, "/", 1, 0.5,
                                    lines.append, follow_descendants=True)
        assert outcome.rc == 0 and outcome.open_stream == "STDOUT" and lines == ["[stdout]bye\n"]
        assert _live_processes_naming(marker) == []
    finally:
        _kill_processes_naming(marker)


def test_an_error_once_the_script_runs_stops_its_group_at_once(tmp_path):
    marker = f": {tmp_path}/disk-full"
    script = write_tree(tmp_path, {"s.sh": f"#!/bin/sh\nbash -c 'sleep 300; {marker}' &\necho one\nsleep 301\n"}) / "s.sh"

    def full_disk(entry: str) -> None:
        raise OSError(28, "No space left on device", "/var/log/scripts.log")

    started = time.monotonic()
    with pytest.raises(hooks.ScriptInterrupted) as caught:
        hooks.run_process([str(script)], {"PATH": os.environ["PATH"]}, "/", 60, 0.5, full_disk)
    assert time.monotonic() - started < 5 and _live_processes_naming(marker) == []
    assert hooks.interrupted_message("s.sh", caught.value.error) == (
        "Script at specified location: s.sh was stopped with every process it started, because of an error on the"
        " host while it ran: /var/log/scripts.log: No space left on device (Errno::ENOSPC). Fix that on the host"
        " and deploy again.")


def test_output_beyond_the_log_limit_is_read_and_counted_not_logged(tmp_path):
    outcome, lines = run(tmp_path, "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' 'x'\necho\necho tail >&2\n",
                         log_limit=1000)
    assert outcome.rc == 0 and outcome.unlogged_bytes == 300001 + 5 - 1000
    assert "".join(lines) == "[stdout]" + "x" * 1000 + "\n"


def test_a_line_logged_in_pieces_is_cut_between_characters_never_inside_one(tmp_path):
    # 30,000 three-byte characters without a newline: the 65,536-byte piece ends inside one.
    outcome, lines = run(tmp_path, "#!/bin/sh\nhead -c 30000 /dev/zero | tr '\\0' x | sed 's/x/\\xe2\\x82\\xac/g'\n")
    assert outcome.rc == 0 and len(lines) == 2
    assert "\ufffd" not in "".join(lines)
    assert "".join(line[len("[stdout]"):] for line in lines) == "\u20ac" * 30000 + "\n"


def test_an_absurd_timeout_is_a_deadline_never_reached(tmp_path):
    outcome, lines = run(tmp_path, "#!/bin/sh\necho fine\n", timeout=10 ** 400)
    assert outcome.rc == 0 and lines == ["[stdout]fine\n"]


def test_a_command_that_cannot_start_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        hooks.run_process([str(tmp_path / "absent")], {}, "/", 5, 1, print)


# Whole events on a deployment root in tmp_path

def test_first_deployment_skips_application_stop_without_writing_anything(tmp_path):
    revision(tmp_path, PREVIOUS_ID, {"scripts/stop.sh": "#!/bin/sh\ntouch /nonexistent/ran\n"})
    result = hooks.run_event(request(tmp_path, "ApplicationStop"))
    assert result.status == "Skipped" and not result.changed and result.scripts == []
    assert result.diagnostics.error_code == "Success" and "_last_successful_install does not exist" in \
        result.diagnostics.message
    assert result.revision_dir is None
    assert not (tmp_path / GROUP_ID / CURRENT_ID).exists() and not (tmp_path / "deployment-logs").exists()


def test_application_stop_runs_the_previous_revision_and_logs_in_the_current_deployment(tmp_path):
    previous_dir = revision(tmp_path, PREVIOUS_ID, {
        "appspec.json": json.dumps({"version": 0.0, "os": "linux",
                                    "hooks": {"ApplicationStop": [{"location": "scripts/stop.sh"}]}}),
        "scripts/stop.sh": "#!/bin/sh\necho stopping $LIFECYCLE_EVENT $DEPLOYMENT_ID from $(dirname $0)\n"})
    layout = DeploymentRoot(str(tmp_path), GROUP_ID)
    write_pointer(layout.last_successful_file, str(previous_dir))
    result = hooks.run_event(request(tmp_path, "ApplicationStop", appspec_filename="appspec.json"), {})
    assert result.status == "Succeeded" and result.changed, result
    assert result.revision_dir == str(previous_dir)
    assert [(run.location, run.rc, run.timed_out) for run in result.scripts] == [("scripts/stop.sh", 0, False)]
    expected = ("LifecycleEvent - ApplicationStop\nScript - scripts/stop.sh\n"
                f"[stdout]stopping ApplicationStop {CURRENT_ID} from {previous_dir}/deployment-archive/scripts\n")
    assert result.diagnostics == hooks.Diagnostics("Success", "", "Succeeded", expected)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert re.fullmatch("".join(stamp + re.escape(line) + "\n" for line in expected.splitlines()),
                        scripts_log(tmp_path))
    deployments_log = (tmp_path / "deployment-logs" / "codedeploy-agent-deployments.log").read_text()
    assert re.search(rf"\] \[{CURRENT_ID}\]Script - scripts/stop.sh\n", deployments_log)
    assert not (tmp_path / "ongoing-deployment" / CURRENT_ID).exists()
    assert not (previous_dir / "logs").exists()


def test_application_stop_runs_the_current_revision_once_its_archive_exists(tmp_path):
    previous_dir = revision(tmp_path, PREVIOUS_ID, {"scripts/stop.sh": "#!/bin/sh\nexit 9\n"})
    current_dir = revision(tmp_path, CURRENT_ID, {"scripts/stop.sh": "#!/bin/sh\necho current\n"})
    write_pointer(DeploymentRoot(str(tmp_path), GROUP_ID).last_successful_file, str(previous_dir))
    result = hooks.run_event(request(tmp_path, "ApplicationStop",
                                     appspec=appspec("ApplicationStop", {"location": "scripts/stop.sh"}),
                                     previous_appspec=appspec("ApplicationStop", {"location": "nope.sh"})))
    assert result.status == "Succeeded" and result.revision_dir == str(current_dir)


def test_a_pointer_to_a_vanished_revision_fails_with_the_agents_message(tmp_path):
    gone = tmp_path / GROUP_ID / PREVIOUS_ID
    write_pointer(DeploymentRoot(str(tmp_path), GROUP_ID).last_successful_file, str(gone))
    result = hooks.run_event(request(tmp_path, "BeforeBlockTraffic",
                                     previous_appspec=appspec("BeforeBlockTraffic", {"location": "a.sh"})))
    assert result.status == "Failed" and result.diagnostics.error_code == "UnknownError"
    assert result.diagnostics.message.startswith(
        'The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at '
        f'revision-relative path "appspec.yml". The revision was unpacked to directory "{gone}/deployment-archive"')


def test_an_event_without_scripts_is_skipped(tmp_path):
    revision(tmp_path, CURRENT_ID, {"appspec.yaml": "version: 0.0\nos: linux\n"})
    result = hooks.run_event(request(tmp_path, "ValidateService"))  # found as appspec.yaml, read with PyYAML
    assert result.status == "Skipped" and "lists no scripts for ValidateService" in result.diagnostics.message
    assert not (tmp_path / GROUP_ID / CURRENT_ID / "logs").exists()


def test_failures_stop_the_event_with_the_agents_codes_and_messages(tmp_path):
    current_dir = revision(tmp_path, CURRENT_ID, {
        "ok.sh": "#!/bin/sh\necho fine\n", "three.sh": "#!/bin/sh\necho failing >&2\nexit 3\n",
        "never.sh": "#!/bin/sh\ntouch \"$(dirname $0)/never-ran\"\n"})
    spec = appspec("AfterInstall", {"location": "ok.sh"}, {"location": "three.sh"}, {"location": "never.sh"})
    result = hooks.run_event(request(tmp_path, "AfterInstall", appspec=spec))
    assert result.status == "Failed" and result.changed
    assert result.diagnostics == hooks.Diagnostics(
        "ScriptFailed", "three.sh", "Script at specified location: three.sh failed with exit code 3",
        "LifecycleEvent - AfterInstall\nScript - ok.sh\n[stdout]fine\nScript - three.sh\n[stderr]failing\n")
    assert [run.rc for run in result.scripts] == [0, 3]
    assert not (current_dir / "deployment-archive" / "never-ran").exists()

    missing = hooks.run_event(request(tmp_path, "AfterInstall",
                                      appspec=appspec("AfterInstall", {"location": "/scripts/gone.sh"})))
    assert (missing.diagnostics.error_code, missing.diagnostics.message) == (
        "ScriptMissing",
        f"Script does not exist at specified location: {current_dir}/deployment-archive/scripts/gone.sh")
    assert missing.diagnostics.log_tail == "LifecycleEvent - AfterInstall\n" and missing.scripts == []

    runas = hooks.exit_code_message(HookScript("a.sh", runas="deploy"), 4)
    assert runas == "Script at specified location: a.sh run as user deploy failed with exit code 4"
    assert hooks.exit_code_message(HookScript("a.sh"), -9).endswith("failed with exit code ")


def test_timeouts_and_held_outputs_fail_with_the_agents_messages(tmp_path):
    revision(tmp_path, CURRENT_ID, {"slow.sh": "#!/bin/sh\nsleep 30\n",
                                    "held.sh": "#!/bin/sh\nsleep 30 &\nexit 0\n"})
    timed_out = hooks.run_event(request(tmp_path, "ApplicationStart", kill_grace_seconds=0.2,
                                        appspec=appspec("ApplicationStart", {"location": "slow.sh", "timeout": 1})))
    assert (timed_out.diagnostics.error_code, timed_out.diagnostics.message) == (
        "ScriptTimedOut", "Script at specified location: slow.sh failed to complete in 1 seconds")
    assert timed_out.scripts[0].rc is None and timed_out.scripts[0].timed_out
    held = hooks.run_event(request(tmp_path, "ApplicationStart", kill_grace_seconds=0.2,
                                   appspec=appspec("ApplicationStart", {"location": "held.sh", "timeout": 1})))
    assert held.diagnostics.error_code == "OutputsLeftOpen"
    assert held.diagnostics.message.startswith("Script at specified location: held.sh failed to close STDOUT. ")
    assert "`cmd > /dev/null 2>&1 < /dev/null &`" in held.diagnostics.message
    assert held.scripts[0].rc == 0 and held.scripts[0].timed_out


def test_a_script_printing_many_short_lines_has_each_in_both_logs(tmp_path):
    # seq prints 150,000 lines (1 MB, under the log limit); the logs stay open for the event and take each line
    # as it comes (how fast is bench/'s to say, not a test's).
    revision(tmp_path, CURRENT_ID, {"count.sh": "#!/bin/sh\nseq 150000\n"})
    result = hooks.run_event(request(tmp_path, appspec=appspec("ApplicationStart", {"location": "count.sh"})))
    assert result.status == "Succeeded", result.diagnostics
    assert result.diagnostics.log_tail.endswith("[stdout]149999\n[stdout]150000\n")
    assert scripts_log(tmp_path).count("[stdout]") == 150000
    deployments_log = (tmp_path / "deployment-logs" / "codedeploy-agent-deployments.log").read_text()
    assert deployments_log.endswith(f"[{CURRENT_ID}][stdout]150000\n")


def test_a_script_without_execute_bit_is_made_executable_with_a_warning(tmp_path):
    current_dir = revision(tmp_path, CURRENT_ID, {"run.sh": "#!/bin/sh\necho ran\n"}, {"run.sh": 0o640})
    result = hooks.run_event(request(tmp_path, appspec=appspec("ApplicationStart", {"location": "run.sh"})))
    assert result.status == "Succeeded"
    assert result.warnings == ["Script at specified location: run.sh is not executable.  Trying to make it "
                               "executable."]
    assert (current_dir / "deployment-archive" / "run.sh").stat().st_mode & 0o777 == 0o751


def test_a_location_through_a_symlink_out_of_the_revision_is_refused(tmp_path):
    archive = revision(tmp_path, CURRENT_ID, {"x": ""}) / "deployment-archive"
    (archive / "evil.sh").symlink_to("/bin/true")
    result = hooks.run_event(request(tmp_path, appspec=appspec("ApplicationStart", {"location": "evil.sh"})))
    assert result.status == "Failed" and "points outside the revision bundle" in result.diagnostics.message


def test_check_mode_reports_the_scripts_and_runs_none(tmp_path):
    spec = appspec("ApplicationStart", {"location": "a.sh"}, {"location": "b.sh"})
    result = hooks.run_event(request(tmp_path, check_mode=True, appspec=spec))  # not unpacked yet: fine
    assert result.status == "Skipped" and result.changed
    assert [(run.location, run.rc) for run in result.scripts] == [("a.sh", None), ("b.sh", None)]
    assert result.diagnostics.message == "Check mode: ApplicationStart would run a.sh, b.sh."
    assert not (tmp_path / GROUP_ID).exists() and not (tmp_path / "ongoing-deployment").exists()


def test_an_unexpected_error_on_the_host_fails_the_event_with_its_name_and_the_error(tmp_path):
    current_dir = revision(tmp_path, CURRENT_ID, {"ok.sh": "#!/bin/sh\necho fine\n"})
    (current_dir / "logs").write_text("a file where the log directory goes\n")
    result = hooks.run_event(request(tmp_path, "AfterInstall", appspec=appspec("AfterInstall", {"location": "ok.sh"})))
    assert result.status == "Failed" and result.diagnostics.error_code == "UnknownError"
    assert result.diagnostics.message == (
        f"AfterInstall stopped on this host: {current_dir}/logs: File exists (Errno::EEXIST). Nothing more of it ran.")
    assert not (tmp_path / "ongoing-deployment" / CURRENT_ID).exists()
