# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the scripts of one lifecycle event on a host, as the CodeDeploy agent's HookExecutor does.

``run_event(EventRequest) -> EventResult`` is the whole of it: choose the revision whose scripts run, build
each command and its environment, run the scripts in order under their timeouts, write ``scripts.log`` and the
deployments log, and report the agent's diagnostics. It takes and returns plain objects so that a caller can
run several events in one module call.

Where this differs from the agent, on purpose (README.md, "Differences from the CodeDeploy agent"):

- The AppSpec of a revision is found as at Install: ``appspec_filename``, else appspec.yaml, else appspec.yml.
- At a script's deadline its process group gets SIGTERM and, after ``kill_grace_seconds``, SIGKILL, so nothing
  it started in its group outlives the deadline; for ``runas``/``sudo`` scripts the groups of the processes
  below ``su``/``sudo`` are included (``su -c`` starts the script in a session of its own). A script whose
  background child holds its output fails as with the agent (``failed to close STDOUT``), at the deadline, but
  its group is stopped too and the message says how to detach the child.
- A script location that resolves outside the revision (through ``..`` or a symlink) is refused.
- The path given to ``su -c`` is shell-quoted; for ordinary paths the command line is the agent's.
- A succeeded event keeps its log tail (the agent sends an empty one), so that reports can show it.
- Scripts run with the environment of the agent's service (``service_environment``), not the SSH session's.
- The first 4 MiB of a script's output are logged; the rest is read and counted, so that a script that writes
  without end fills neither the disk nor the result.
- An error while a script runs (a full disk under its log, say) stops its process groups at once and fails the
  event with what happened; the agent reports it as a launch failure and leaves the script running.

Standard library only, Python 3.9+: this runs on the target hosts.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import os
import pwd
import selectors
import shlex
import signal
import stat
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, TextIO

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import (
    DEFAULT_TIMEOUT,
    MSG_ESCAPES_BUNDLE,
    MSG_NOT_FOUND,
    AppSpecError,
    load_revision_appspec,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import (
    describe_error,
    unexpected_error_message,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import (
    BLUE_GREEN, CREATOR_ROLLBACK, CREATOR_USER, CREATORS, DEPLOYMENT_TYPES, FAILED, LIFECYCLE_EVENTS, OUTPUTS_LEFT_OPEN,
    SCRIPT_FAILED, SCRIPT_MISSING, SCRIPT_NOT_EXECUTABLE, SCRIPT_TIMED_OUT, SKIPPED, SUCCEEDED, SUCCESS, UNKNOWN_ERROR)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DEFAULT_DEPLOYMENT_ROOT,
    DeploymentRoot,
    DeploymentRootError,
    deployments_log_line,
    ongoing,
    utc_timestamp,
    validate_identifiers,
)

# The events no script runs for, and what carries each of them out instead.
EVENTS_WITHOUT_SCRIPTS = {
    "DownloadBundle": "fleetops.codedeploy.revision_bundle",
    "Install": "fleetops.codedeploy.revision_install",
    "BlockTraffic": "fleetops.codedeploy.traffic",
    "AllowTraffic": "fleetops.codedeploy.traffic",
}
SCRIPT_EVENTS = tuple(event for event in LIFECYCLE_EVENTS if event not in EVENTS_WITHOUT_SCRIPTS)
DEPLOYMENT_CREATORS = CREATORS  # on a host, only a rollback differs (blue/green: which revision a hook runs)
BUNDLE_ENV_NAMES = ("BUNDLE_BUCKET", "BUNDLE_KEY", "BUNDLE_VERSION", "BUNDLE_ETAG", "BUNDLE_COMMIT")
# The agent runs as a service: systemd's PATH, root's HOME and the system locale, whatever session started us.
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOCALE_FILES = ("/etc/locale.conf", "/etc/default/locale")
LOCALE_VARIABLES = ("LANG", "LANGUAGE", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY",
                    "LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT",
                    "LC_IDENTIFICATION")
# The agent's cwd under its init script (`cd /opt/codedeploy-agent/`), which hooks inherit (agent issue #67).
AGENT_WORKING_DIRECTORY = "/opt/codedeploy-agent"
LOG_TAIL_LIMIT = 2048
DEFAULT_KILL_GRACE_SECONDS = 5.0
SCRIPT_OUTPUT_LOG_LIMIT = 4 * 1024 * 1024  # bytes of one script's output written to the logs
# A deadline further away than this is as good as none; it keeps an absurd timeout from overflowing a float.
_LONGEST_TIMEOUT = 10 ** 9

STATUS_SUCCEEDED, STATUS_FAILED, STATUS_SKIPPED = SUCCEEDED, FAILED, SKIPPED

# Where an event's scripts come from [agent: hook_executor.rb]: the current deployment, or the revision named
# by one of the deployment group's pointer files.
CURRENT, LAST_SUCCESSFUL, MOST_RECENT = "current", "last_successful", "most_recent"
_REVISION_SOURCES = {
    "ApplicationStop": LAST_SUCCESSFUL,
    "BeforeBlockTraffic": LAST_SUCCESSFUL,
    "AfterBlockTraffic": LAST_SUCCESSFUL,
}
_BLUE_GREEN_ROLLBACK_REVISION_SOURCES = {
    "ApplicationStop": LAST_SUCCESSFUL,
    "BeforeBlockTraffic": MOST_RECENT,
    "AfterBlockTraffic": MOST_RECENT,
    "BeforeAllowTraffic": LAST_SUCCESSFUL,
    "AfterAllowTraffic": LAST_SUCCESSFUL,
}

_POLL_SECONDS = 0.05
_DRAIN_SECONDS = 0.5  # after the kill: how long to wait for the last output of the stopped processes
_MAX_ENTRY_BYTES = 65536  # a longer line without a newline is logged in pieces of this size
_DETACH_HINT = (
    ". The script exited, but a process it started in the background still held its output open at the"
    " deadline, and was stopped. Start background processes detached from the script's output, e.g."
    " `cmd > /dev/null 2>&1 < /dev/null &`."
)


class EventRequestError(Exception):
    """A request this module cannot run at all (wrong event, bad option); the message says which and why."""


@dataclass(frozen=True)
class EventRequest:
    """One lifecycle event of one deployment on this host."""

    event: str
    deployment_id: str
    deployment_group_id: str
    deployment_group_name: str
    application_name: str
    deployment_root: str = DEFAULT_DEPLOYMENT_ROOT
    appspec_filename: str = "appspec.yml"
    appspec: Optional[Mapping[str, Any]] = None
    previous_appspec: Optional[Mapping[str, Any]] = None
    bundle_env: Mapping[str, Optional[str]] = field(default_factory=dict)
    deployment_type: str = "IN_PLACE"
    deployment_creator: str = CREATOR_USER
    kill_grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS
    check_mode: bool = False


@dataclass(frozen=True)
class HookScript:
    """One entry of an event in the AppSpec's hooks section."""

    location: str
    timeout: int = DEFAULT_TIMEOUT
    runas: Optional[str] = None
    sudo: bool = False


@dataclass
class ScriptRun:
    """What became of one script. ``rc`` is None if it never exited by itself, negative if a signal ended it;
    ``timed_out`` means its deadline passed (still running, or its output still held open)."""

    location: str
    rc: Optional[int]
    duration: float
    timed_out: bool


@dataclass
class Diagnostics:
    """The agent's per-event diagnostics: error code, failing script, message, tail of the script log."""

    error_code: str
    script_name: str
    message: str
    log_tail: str


@dataclass
class EventResult:
    status: str
    scripts: list
    diagnostics: Diagnostics
    revision_dir: Optional[str]
    start_time: str
    end_time: str
    warnings: list = field(default_factory=list)
    changed: bool = False

    def as_dict(self) -> dict:
        """The module's return values (without ``changed``/``warnings``, which Ansible reports itself)."""
        result = asdict(self)
        del result["warnings"], result["changed"]
        return result


# Validation and planning (pure)

def check_event(event: str) -> None:
    if event in EVENTS_WITHOUT_SCRIPTS:
        raise EventRequestError(
            "{} runs no scripts: it is carried out by {}, not by lifecycle_event. Scripts listed under it in the"
            " AppSpec never run, as with the CodeDeploy agent.".format(event, EVENTS_WITHOUT_SCRIPTS[event]))
    if event not in SCRIPT_EVENTS:
        raise EventRequestError("{!r} is not a lifecycle event; expected one of {}.".format(
            event, ", ".join(SCRIPT_EVENTS)))


def check_request(request: EventRequest) -> None:
    """Refuse a request before anything on the host is read or written."""
    check_event(request.event)
    validate_identifiers(request.deployment_id, request.deployment_group_id)
    if request.deployment_type not in DEPLOYMENT_TYPES:
        raise EventRequestError("deployment_type must be one of {}, not {!r}.".format(
            ", ".join(DEPLOYMENT_TYPES), request.deployment_type))
    if request.deployment_creator not in DEPLOYMENT_CREATORS:
        raise EventRequestError("deployment_creator must be one of {}, not {!r}.".format(
            ", ".join(DEPLOYMENT_CREATORS), request.deployment_creator))
    unknown = sorted(set(request.bundle_env) - set(BUNDLE_ENV_NAMES))
    if unknown:
        raise EventRequestError("bundle_env holds {}; the bundle variables of a hook are {}.".format(
            ", ".join(unknown), ", ".join(BUNDLE_ENV_NAMES)))
    if request.kill_grace_seconds < 0:
        raise EventRequestError("kill_grace_seconds must be 0 or more, not {}.".format(request.kill_grace_seconds))


def revision_source(event: str, deployment_type: str, deployment_creator: str) -> str:
    """CURRENT, LAST_SUCCESSFUL or MOST_RECENT: where ``event`` takes its scripts from."""
    if deployment_type == BLUE_GREEN and deployment_creator == CREATOR_ROLLBACK:
        return _BLUE_GREEN_ROLLBACK_REVISION_SOURCES.get(event, CURRENT)
    return _REVISION_SOURCES.get(event, CURRENT)


def choose_revision_dir(source: str, current_dir: str, current_archive_exists: bool,
                        last_successful_dir: Optional[str], most_recent_dir: Optional[str]) -> Optional[str]:
    """The deployment directory whose scripts run; None when the pointer it needs does not exist (a no-op).

    As in the agent, an event that runs the last successful revision runs the current one instead once the
    current deployment's archive exists.
    """
    if source == CURRENT or (source == LAST_SUCCESSFUL and current_archive_exists):
        return current_dir
    return last_successful_dir if source == LAST_SUCCESSFUL else most_recent_dir


def hook_scripts(appspec: Mapping[str, Any], event: str) -> list[HookScript]:
    """The scripts listed for ``event`` in a normalised AppSpec (as appspec_info returns it)."""
    hooks = appspec.get("hooks") or {}
    if not isinstance(hooks, Mapping):
        raise AppSpecError("The AppSpec's hooks must be a mapping of event names to lists of scripts.")
    scripts = []
    for index, entry in enumerate(hooks.get(event) or []):
        where = "hooks.{}[{}]".format(event, index)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("location"), str) \
                or not entry["location"].strip():
            raise AppSpecError("{}: a script needs a location, e.g. {{location: scripts/stop.sh}}.".format(where))
        timeout = entry.get("timeout")
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            raise AppSpecError("{}: timeout must be a positive number of seconds, not {!r}.".format(where, timeout))
        runas = entry.get("runas")
        scripts.append(HookScript(entry["location"].strip(), timeout, runas.strip() if runas else None,
                                  bool(entry.get("sudo"))))
    return scripts


def script_path(archive_dir: str, location: str) -> str:
    """The script's absolute path: the location is relative to the revision even with a leading / (as the
    agent's File.join does)."""
    return os.path.normpath(os.path.join(archive_dir, location.lstrip("/")))


def escapes_revision(archive_dir: str, path: str) -> bool:
    """Whether ``path``, symlinks resolved, lies outside the unpacked revision."""
    archive = os.path.realpath(archive_dir)
    return os.path.commonpath([archive, os.path.realpath(path)]) != archive


def script_command(path: str, runas: Optional[str], sudo: bool) -> list[str]:
    """The agent's command line for a script, as an argument list [agent: linux_util.rb]."""
    if runas:
        # su hands the -c argument to the user's shell: quote it so that the path stays one word.
        command = ["su", runas, "-c", shlex.quote(path)]
        return ["sudo"] + command if sudo else command
    return ["sudo", path] if sudo else [path]


def parse_locale(text: str) -> dict[str, str]:
    """The locale variables of a locale file (``NAME=value`` lines, values optionally quoted)."""
    found = {}
    for line in text.splitlines():
        name, equals, value = line.strip().partition("=")
        if equals and name in LOCALE_VARIABLES:
            found[name] = value.strip().strip("\"'")
    return found


def service_environment(home: str, locale: Mapping[str, str]) -> dict[str, str]:
    """The environment the agent's service gives its hooks before the CodeDeploy variables: PATH, HOME and the
    system locale. No session variables (SSH_*, TERM, ...) and no AWS credentials."""
    return {"PATH": SERVICE_PATH, "HOME": home, **locale}


def host_service_environment() -> dict[str, str]:
    """``service_environment`` for this host: the home of the user running the module, the first locale file."""
    locale: dict[str, str] = {}
    for path in LOCALE_FILES:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                locale = parse_locale(handle.read())
        except OSError:
            continue
        break
    return service_environment(pwd.getpwuid(os.geteuid()).pw_dir, locale)


def script_environment(base: Mapping[str, str], request: EventRequest) -> dict[str, str]:
    """``base`` plus the CodeDeploy variables; bundle variables whose value is null are left unset, as with the
    agent."""
    environment = dict(base)
    environment.update({
        "LIFECYCLE_EVENT": request.event,
        "DEPLOYMENT_ID": request.deployment_id,
        "APPLICATION_NAME": request.application_name,
        "DEPLOYMENT_GROUP_NAME": request.deployment_group_name,
        "DEPLOYMENT_GROUP_ID": request.deployment_group_id,
    })
    environment.update({name: str(value) for name, value in request.bundle_env.items() if value is not None})
    return environment


def hook_working_directory() -> str:
    """Hooks run where the agent's init script starts it, or at / where that directory does not exist."""
    return AGENT_WORKING_DIRECTORY if os.path.isdir(AGENT_WORKING_DIRECTORY) else "/"


# Messages (the agent's wording)

def missing_message(path: str) -> str:
    return "Script does not exist at specified location: {}".format(path)


def not_executable_warning(location: str) -> str:
    return "Script at specified location: {} is not executable.  Trying to make it executable.".format(location)


def not_executable_message(location: str) -> str:
    return "Unable to set script at specified location: {} as executable".format(location)


def timed_out_message(location: str, timeout: int) -> str:
    return "Script at specified location: {} failed to complete in {} seconds".format(location, timeout)


def outputs_left_open_message(location: str, stream: str) -> str:
    return "Script at specified location: {} failed to close {}{}".format(location, stream, _DETACH_HINT)


def exit_code_message(script: HookScript, rc: Optional[int]) -> str:
    # A script ended by a signal has no exit status: the agent's message then ends in "exit code ".
    code = "" if rc is None or rc < 0 else str(rc)
    if script.runas:
        return "Script at specified location: {} run as user {} failed with exit code {}".format(
            script.location, script.runas, code)
    return "Script at specified location: {} failed with exit code {}".format(script.location, code)


def interrupted_message(location: str, error: BaseException) -> str:
    return ("Script at specified location: {} was stopped with every process it started, because of an error on"
            " the host while it ran: {}. Fix that on the host and deploy again.".format(
                location, describe_error(error)))


def launch_error_message(location: str, error: OSError, command: str) -> str:
    name = errno.errorcode.get(error.errno or 0, "EUNKNOWN")
    return "Script at specified location: {} failed with error Errno::{} with message {} - {}".format(
        location, name, error.strerror, command)


# Logs

def unlogged_output_entry(dropped: int) -> str:
    return "[fleetops] {} more bytes of output were not logged (only the first {} bytes of a script's output" \
        " are)\n".format(dropped, SCRIPT_OUTPUT_LOG_LIMIT)


def scripts_log_line(entry: str, now: datetime.datetime) -> str:
    """A scripts.log line: local time to the second, a space, the entry (which ends in a newline)."""
    return "{} {}".format(now.strftime("%Y-%m-%d %H:%M:%S"), entry if entry.endswith("\n") else entry + "\n")


class LogTail:
    """The newest whole log entries totalling at most ``limit`` characters (the diagnostics log tail).

    Should the newest entry alone be longer, its end is kept rather than nothing.
    """

    def __init__(self, limit: int = LOG_TAIL_LIMIT) -> None:
        self.limit = limit
        self.entries: list[str] = []
        self.size = 0

    def append(self, entry: str) -> None:
        self.entries.append(entry)
        self.size += len(entry)
        while self.size > self.limit and len(self.entries) > 1:
            self.size -= len(self.entries.pop(0))

    def text(self) -> str:
        return "".join(self.entries)[-self.limit:]


class ScriptLog:
    """One event's log: the current deployment's scripts.log, the deployments log and the log tail.

    The first entry that cannot be written raises; after that, entries only go to the tail, so that stopping
    the script and reporting the failure do not fail again.
    """

    def __init__(self, layout: DeploymentRoot, deployment_id: str) -> None:
        self.layout = layout
        self.deployment_id = deployment_id
        self.tail = LogTail()
        self.failed = False
        self.path = layout.scripts_log(deployment_id)
        # Both logs stay open for the event: opening one per line made a script's every line cost more than the
        # script itself, and a chatty script run out its timeout.
        self.deployments_path = layout.deployments_log
        self.handle = _open_log(self.path)
        try:
            self.deployments_handle = _open_log(self.deployments_path)
        except OSError:
            self.handle.close()
            raise

    def append(self, entry: str) -> None:
        self.tail.append(entry)
        if self.failed:
            return
        writing = self.path
        try:
            self.handle.write(scripts_log_line(entry, datetime.datetime.now()))
            self.handle.flush()
            writing = self.deployments_path
            self.deployments_handle.write(deployments_log_line(self.deployment_id, entry.strip()))
            self.deployments_handle.flush()
        except OSError as error:
            self.failed = True
            raise OSError(error.errno, error.strerror, writing) from error

    def close(self) -> None:
        for handle in (self.handle, self.deployments_handle):
            try:
                handle.close()
            except OSError:
                if not self.failed:
                    raise


def _open_log(path: str) -> TextIO:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return open(path, "a", encoding="utf-8")


# Processes

@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    pgid: int
    sid: int


def process_table() -> list[ProcessInfo]:
    """The live (not zombie) processes of this host, from /proc."""
    table = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/{}/stat".format(name), "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != b"Z":
            table.append(ProcessInfo(int(name), int(fields[1]), int(fields[2]), int(fields[3])))
    return table


def descendant_groups(table: Iterable[ProcessInfo], root_pid: int) -> set[tuple[int, int]]:
    """The (process group, session) of every process below ``root_pid``."""
    children: dict[int, list[ProcessInfo]] = {}
    for process in table:
        children.setdefault(process.ppid, []).append(process)
    groups, pending = set(), [root_pid]
    while pending:
        for child in children.get(pending.pop(), ()):
            groups.add((child.pgid, child.sid))
            pending.append(child.pid)
    return groups


def output_holder_groups(table: Iterable[ProcessInfo], pipe_inodes: set[int]) -> set[tuple[int, int]]:
    """The (process group, session) of every other process that has one of these pipes open, from /proc.

    A background child holding a script's output may have left the script's groups (``setsid``, or the session
    ``su -c`` made for a script that has since exited); the pipe it holds still names it.
    """
    links = {"pipe:[{}]".format(inode) for inode in pipe_inodes}
    groups = set()
    for process in table:
        if process.pid == os.getpid() or process.pgid == os.getpgrp():
            continue  # we hold the reading ends
        try:
            descriptors = os.listdir("/proc/{}/fd".format(process.pid))
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        for descriptor in descriptors:
            with contextlib.suppress(OSError):
                if os.readlink("/proc/{}/fd/{}".format(process.pid, descriptor)) in links:
                    groups.add((process.pgid, process.sid))
                    break
    return groups


class ProcessGroups:
    """The process groups a script runs in, and how to stop them all.

    The script leads a session and group of its own (pgid = sid = its pid). ``su -c`` starts the user's shell
    in yet another session, so for wrapped commands the groups below the leader are followed while it runs.
    """

    _REFRESH_SECONDS = 0.5

    def __init__(self, leader_pid: int, follow_descendants: bool) -> None:
        self.leader_pid = leader_pid
        self.follow_descendants = follow_descendants
        self.groups = {(leader_pid, leader_pid)}
        self._refreshed = 0.0

    def refresh(self, force: bool = False) -> None:
        if not self.follow_descendants:
            return
        now = time.monotonic()
        if force or now - self._refreshed >= self._REFRESH_SECONDS:
            self.groups |= descendant_groups(process_table(), self.leader_pid)
            self._refreshed = now

    def include_output_holders(self, pipes: Iterable[Any]) -> None:
        """Add the groups of the processes that hold one of ``pipes`` (file objects) open."""
        self.groups |= output_holder_groups(process_table(), {os.fstat(pipe.fileno()).st_ino for pipe in pipes})

    def alive(self) -> set[int]:
        """The groups that still have a live member (matched with their session, so a reused number is not)."""
        return {process.pgid for process in process_table() if (process.pgid, process.sid) in self.groups}

    def stop(self, grace: float, reap: Callable[[], object]) -> None:
        """SIGTERM to every group; SIGKILL to those with a member left after ``grace`` seconds."""
        self.refresh(force=True)
        self._signal(self.alive(), signal.SIGTERM)
        give_up = time.monotonic() + grace
        while time.monotonic() < give_up:
            reap()  # the leader is our child: reap it, or its zombie would look alive to killpg
            if not self.alive():
                return
            time.sleep(_POLL_SECONDS)
        self._signal(self.alive(), signal.SIGKILL)

    @staticmethod
    def _signal(pgids: Iterable[int], signum: int) -> None:
        for pgid in pgids:
            try:
                os.killpg(pgid, signum)
            except ProcessLookupError:
                pass


@dataclass
class ProcessOutcome:
    rc: Optional[int]  # None: still running at the deadline
    open_stream: Optional[str]  # "STDOUT"/"STDERR": the process exited, but this stream was open at the deadline
    duration: float
    unlogged_bytes: int = 0  # output beyond the log limit, read and dropped

    @property
    def timed_out(self) -> bool:
        return self.rc is None or self.open_stream is not None


class ScriptInterrupted(Exception):
    """An error while a script ran; its process groups have been stopped. ``error`` is what went wrong."""

    def __init__(self, error: BaseException, duration: float) -> None:
        super().__init__(str(error))
        self.error = error
        self.duration = duration


class OutputBudget:
    """How many more bytes of a script's output (both streams) are logged, and how many were dropped."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.dropped = 0

    def take(self, chunk: bytes) -> bytes:
        """The part of ``chunk`` still to be logged; the rest is counted as dropped."""
        kept = chunk[:self.remaining]
        self.remaining -= len(kept)
        self.dropped += len(chunk) - len(kept)
        return kept


def character_cut(data: bytes, cut: int) -> int:
    """``cut``, or the start of the UTF-8 character it would split: a piece of a long line decoded alone would
    show that character as two replacement characters."""
    for start in range(cut - 1, max(cut - 4, 0), -1):
        lead = data[start]
        if lead & 0xC0 != 0x80:
            length = 2 if lead & 0xE0 == 0xC0 else 3 if lead & 0xF0 == 0xE0 else 4 if lead & 0xF8 == 0xF0 else 1
            return start if start + length > cut else cut
    return cut  # not UTF-8 here: any cut will do


class _LineSplitter:
    """Turns the bytes of one stream into log entries: ``[stdout]<line>\\n``."""

    def __init__(self, stream: str, emit: Callable[[str], None], budget: OutputBudget) -> None:
        self.prefix = "[{}]".format(stream)
        self.emit = emit
        self.budget = budget
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        self.pending += self.budget.take(chunk)
        while True:
            end = self.pending.find(b"\n")
            if end < 0 and len(self.pending) < _MAX_ENTRY_BYTES:
                return
            cut = end + 1 if end >= 0 else character_cut(self.pending, _MAX_ENTRY_BYTES)
            line, self.pending = self.pending[:cut], self.pending[cut:]
            self._emit(line)

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending + b"\n")
            self.pending = b""

    def _emit(self, line: bytes) -> None:
        self.emit(self.prefix + line.decode("utf-8", errors="replace"))


def run_process(command: list[str], environment: Mapping[str, str], cwd: str, timeout: float, grace: float,
                emit: Callable[[str], None], follow_descendants: bool = False,
                log_limit: int = SCRIPT_OUTPUT_LOG_LIMIT) -> ProcessOutcome:
    """Run ``command`` in a session of its own with stdin at EOF, logging its output line by line.

    One deadline covers the process and its output, as in the agent. At the deadline the process's groups
    are stopped (SIGTERM, then SIGKILL after ``grace``), whether it is still running or has exited with its
    output still held open. A command the kernel cannot execute for lack of a ``#!`` line runs through
    /bin/sh, as Ruby (and so the agent) does. Output beyond ``log_limit`` bytes is read and counted, not
    logged. Raises OSError when the command cannot be started at all, and ScriptInterrupted, with its groups
    stopped, for any error once it has started (a log that cannot be written, say).
    """
    started = time.monotonic()
    deadline = started + min(timeout, _LONGEST_TIMEOUT)
    try:
        process = _spawn(command, environment, cwd)
    except OSError as error:
        if error.errno != errno.ENOEXEC:
            raise
        process = _spawn(["/bin/sh"] + command, environment, cwd)
    groups = ProcessGroups(process.pid, follow_descendants)
    selector = selectors.DefaultSelector()
    budget = OutputBudget(log_limit)
    splitters = {}
    try:
        for stream, pipe in (("STDOUT", process.stdout), ("STDERR", process.stderr)):
            selector.register(pipe, selectors.EVENT_READ, stream)
            splitters[stream] = _LineSplitter(stream.lower(), emit, budget)
        outcome = _supervise(process, groups, selector, splitters, deadline, grace)
        for splitter in splitters.values():
            splitter.close()
    except Exception as error:  # pylint: disable=broad-exception-caught
        # Whatever went wrong, nothing the script started may outlive this call.
        with contextlib.suppress(Exception):
            groups.stop(grace, process.poll)
        process.kill()
        process.wait()
        raise ScriptInterrupted(error, time.monotonic() - started) from error
    finally:
        for key in list(selector.get_map().values()):
            selector.unregister(key.fileobj)
        selector.close()
        process.stdout.close()
        process.stderr.close()
    outcome.duration = time.monotonic() - started
    outcome.unlogged_bytes = budget.dropped
    return outcome


def _supervise(process: subprocess.Popen, groups: ProcessGroups, selector: selectors.BaseSelector,
               splitters: dict, deadline: float, grace: float) -> ProcessOutcome:
    """Log the output until the process exits and closes its output, or the deadline passes and it is stopped."""
    while selector.get_map() or process.poll() is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if groups.follow_descendants and process.poll() is None:
            groups.refresh()
        if selector.get_map():
            _read_ready(selector, splitters, min(remaining, _POLL_SECONDS * 2))
        else:
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                pass
    else:
        return ProcessOutcome(process.returncode, None, 0.0)
    open_streams = {key.data for key in selector.get_map().values()}
    # The agent waits for stdout before stderr, so it names stdout when both are held.
    held_stream = next((stream for stream in ("STDOUT", "STDERR") if stream in open_streams), None)
    exited = process.poll() is not None
    # What holds the output is stopped too, wherever it went: nothing outlives the deadline (README, "Differences
    # from the CodeDeploy agent").
    groups.include_output_holders(key.fileobj for key in selector.get_map().values())
    groups.stop(grace, process.poll)
    process.wait()
    drain_until = time.monotonic() + _DRAIN_SECONDS
    while selector.get_map() and time.monotonic() < drain_until:
        _read_ready(selector, splitters, _POLL_SECONDS)
    return ProcessOutcome(process.returncode if exited else None, held_stream if exited else None, 0.0)


def _spawn(command: list[str], environment: Mapping[str, str], cwd: str) -> subprocess.Popen:
    # Not AnsibleModule.run_command: a hook needs a session of its own, a deadline covering its output, and its
    # lines logged as they come.
    return subprocess.Popen(  # pylint: disable=ansible-bad-function
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
        env=dict(environment), start_new_session=True, close_fds=True)


def _read_ready(selector: selectors.BaseSelector, splitters: dict, wait: float) -> None:
    for key, _events in selector.select(wait):
        chunk = os.read(key.fd, 65536)
        if chunk:
            splitters[key.data].feed(chunk)
        else:
            selector.unregister(key.fileobj)
            splitters[key.data].close()


# The event

class _Event:
    """The running state of one event: its result so far, and its log once scripts start."""

    def __init__(self, request: EventRequest) -> None:
        self.request = request
        self.layout = DeploymentRoot(request.deployment_root, request.deployment_group_id)
        self.start_time = utc_timestamp()
        self.revision_dir: Optional[str] = None
        self.runs: list[ScriptRun] = []
        self.warnings: list[str] = []
        self.log: Optional[ScriptLog] = None

    def finish(self, status: str, diagnostics: Diagnostics, changed: bool) -> EventResult:
        return EventResult(status, self.runs, diagnostics, self.revision_dir, self.start_time, utc_timestamp(),
                           self.warnings, changed)

    def skipped(self, message: str, changed: bool = False) -> EventResult:
        return self.finish(STATUS_SKIPPED, Diagnostics(SUCCESS, "", message, ""), changed)

    def failed(self, error_code: str, message: str, script_name: str = "") -> EventResult:
        tail = self.log.tail.text() if self.log else ""
        return self.finish(STATUS_FAILED, Diagnostics(error_code, script_name, message, tail), bool(self.runs))


def run_event(request: EventRequest, base_environment: Optional[Mapping[str, str]] = None) -> EventResult:
    """Run the scripts of one lifecycle event; the result carries the agent's status and diagnostics.

    Scripts get ``base_environment`` (by default ``host_service_environment()``) plus the CodeDeploy variables.
    Raises EventRequestError or DeploymentRootError for a request that cannot be run at all; everything that
    goes wrong on the host is reported in the result, as the agent reports it or, for an error of no known
    kind, as a failure that names the event and the error.
    """
    check_request(request)
    event = _Event(request)
    try:
        return _run_event(event, base_environment)
    except (EventRequestError, DeploymentRootError):
        raise
    except Exception as error:  # pylint: disable=broad-exception-caught
        return event.failed(UNKNOWN_ERROR, unexpected_error_message(request.event, error))


def _run_event(event: _Event, base_environment: Optional[Mapping[str, str]]) -> EventResult:
    request = event.request
    layout, deployment_id = event.layout, request.deployment_id
    current_dir = layout.deployment_dir(deployment_id)
    source = revision_source(request.event, request.deployment_type, request.deployment_creator)
    event.revision_dir = choose_revision_dir(
        source, current_dir, os.path.isdir(layout.archive_dir(deployment_id)),
        layout.last_successful_dir(), layout.most_recent_dir())
    if event.revision_dir is None:
        pointer = layout.last_successful_file if source == LAST_SUCCESSFUL else layout.most_recent_file
        return event.skipped("Skipped: {} does not exist (no earlier install of this deployment group on this"
                             " host), so there are no {} scripts to run.".format(pointer, request.event))
    archive_dir = os.path.join(event.revision_dir, "deployment-archive")
    is_current = event.revision_dir == current_dir
    try:
        scripts = _event_scripts(event, archive_dir, is_current)
    except AppSpecError as error:
        return event.failed(UNKNOWN_ERROR, error.message)
    if not scripts:
        return event.skipped("Skipped: the AppSpec of {} lists no scripts for {}.".format(
            event.revision_dir, request.event))
    if request.check_mode:
        event.runs = [ScriptRun(script.location, None, 0.0, False) for script in scripts]
        return event.skipped("Check mode: {} would run {}.".format(
            request.event, ", ".join(script.location for script in scripts)), changed=True)
    environment = script_environment(host_service_environment() if base_environment is None else base_environment,
                                     request)
    with ongoing(layout, deployment_id, request.event):
        event.log = ScriptLog(layout, deployment_id)
        try:
            return _run_scripts(event, scripts, archive_dir, environment)
        finally:
            event.log.close()


def _event_scripts(event: _Event, archive_dir: str, is_current: bool) -> list[HookScript]:
    request = event.request
    appspec = request.appspec if is_current else request.previous_appspec
    # The current revision may not be unpacked yet in check mode; any other missing revision is the agent's
    # "did not find an AppSpec file" failure.
    if not os.path.isdir(archive_dir) and not (request.check_mode and is_current and appspec is not None):
        raise AppSpecError(MSG_NOT_FOUND.format(path=request.appspec_filename, archive=archive_dir))
    if appspec is None:
        appspec, warnings = load_revision_appspec(archive_dir, request.appspec_filename)
        event.warnings.extend(warnings)
    return hook_scripts(appspec, request.event)


def _run_scripts(event: _Event, scripts: list[HookScript], archive_dir: str,
                 environment: Mapping[str, str]) -> EventResult:
    request, log = event.request, event.log
    log.append("LifecycleEvent - {}\n".format(request.event))
    cwd = hook_working_directory()
    for script in scripts:
        path = script_path(archive_dir, script.location)
        if escapes_revision(archive_dir, path):
            return event.failed(UNKNOWN_ERROR, MSG_ESCAPES_BUNDLE.format(
                what="hook script location", path=script.location, section="hooks"), script.location)
        if not os.path.exists(path):
            return event.failed(SCRIPT_MISSING, missing_message(path), script.location)
        if not _make_executable(path, script.location, event.warnings):
            return event.failed(SCRIPT_NOT_EXECUTABLE, not_executable_message(script.location), script.location)
        log.append("Script - {}\n".format(script.location))
        command = script_command(path, script.runas, script.sudo)
        try:
            outcome = run_process(command, environment, cwd, script.timeout, request.kill_grace_seconds,
                                  log.append, follow_descendants=command[0] != path)
        except OSError as error:
            event.runs.append(ScriptRun(script.location, None, 0.0, False))
            return event.failed(SCRIPT_FAILED, launch_error_message(script.location, error, command[0]),
                                script.location)
        except ScriptInterrupted as interrupted:
            event.runs.append(ScriptRun(script.location, None, round(interrupted.duration, 3), False))
            return event.failed(SCRIPT_FAILED, interrupted_message(script.location, interrupted.error),
                                script.location)
        event.runs.append(ScriptRun(script.location, outcome.rc, round(outcome.duration, 3), outcome.timed_out))
        if outcome.unlogged_bytes:
            log.append(unlogged_output_entry(outcome.unlogged_bytes))
        if outcome.rc is None:
            return event.failed(SCRIPT_TIMED_OUT, timed_out_message(script.location, script.timeout),
                                script.location)
        if outcome.open_stream:
            return event.failed(OUTPUTS_LEFT_OPEN, outputs_left_open_message(script.location, outcome.open_stream),
                                script.location)
        if outcome.rc != 0:
            return event.failed(SCRIPT_FAILED, exit_code_message(script, outcome.rc), script.location)
    return event.finish(STATUS_SUCCEEDED, Diagnostics(SUCCESS, "", "Succeeded", log.tail.text()), True)


def _make_executable(path: str, location: str, warnings: list[str]) -> bool:
    """chmod a+x a script without any execute bit, with the agent's warning; False if that fails."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        return True
    warnings.append(not_executable_warning(location))
    try:
        os.chmod(path, stat.S_IMODE(mode) | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except OSError:
        return False
    return True
