# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start, stop and check the example web app on this host; the revision's hook scripts call it.

    python3 webapp_service.py start          ApplicationStart: start the app detached, wait until it serves
    python3 webapp_service.py stop           ApplicationStop: stop it gracefully, wait until its port is free
    python3 webapp_service.py check VERSION  ValidateService: /health answers 200 with VERSION

The app (/var/www/webapp/server.py) runs as the owner of its files, in a session of its own with stdin from
/dev/null and its output in /etc/fleet-app/webapp.log, so that the hook that starts it can finish. Its PID is in
/etc/fleet-app/webapp.pid. It listens on this host's own address (what the host's name resolves to, /etc/hosts
first) port 8080, unless /etc/fleet-app/webapp.env says otherwise, one KEY=VALUE a line:

    WEBAPP_ADDRESS=10.0.0.5
    WEBAPP_PORT=8081

Python 3.9+ standard library only: it runs on the fleet's hosts, under the Python that runs it (the hooks use
/usr/bin/python3, which the app's user can run too).
"""
from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

APP_DIR = Path("/var/www/webapp")
SERVER = APP_DIR / "server.py"
STATE_DIR = Path("/etc/fleet-app")
SETTINGS_FILE = STATE_DIR / "webapp.env"
PID_FILE = STATE_DIR / "webapp.pid"
LOG_FILE = STATE_DIR / "webapp.log"
DEFAULT_PORT = 8080
START_SECONDS = 20  # ApplicationStart's timeout in appspec.yml is 60
STOP_SECONDS = 15  # longer than the server's idle timeout (10 s); ApplicationStop's timeout is 30
PORT_FREE_SECONDS = 5
POLL_SECONDS = 0.02
LOG_TAIL_LINES = 10


class ServiceError(Exception):
    """The app cannot be started, stopped or validated; the message says why and what to do."""


@dataclass(frozen=True)
class Settings:
    address: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


def parse_settings(text: str, source: str, own_address: Callable[[], str]) -> Settings:
    """Settings from KEY=VALUE lines (# comments, blank lines); the host's own address unless one is given."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        if not separator or key.strip() not in ("WEBAPP_ADDRESS", "WEBAPP_PORT"):
            raise ServiceError(f"{source} line {number}: expected WEBAPP_ADDRESS=... or WEBAPP_PORT=..., "
                               f"found {line!r}")
        values[key.strip()] = value.strip().strip("'\"")
    port_text = values.get("WEBAPP_PORT", str(DEFAULT_PORT))
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ServiceError(f"{source}: WEBAPP_PORT={port_text} is not a port number (1-65535)")
    return Settings(values.get("WEBAPP_ADDRESS") or own_address(), int(port_text))


def host_address() -> str:
    """The address this host's name resolves to: each fleet host has its own, on a shared network."""
    name = socket.gethostname()
    try:
        return socket.gethostbyname(name)
    except OSError as error:
        raise ServiceError(f"cannot resolve this host's name {name} ({error}); add it to /etc/hosts or set "
                           f"WEBAPP_ADDRESS in {SETTINGS_FILE}") from error


def load_settings() -> Settings:
    text = SETTINGS_FILE.read_text() if SETTINGS_FILE.exists() else ""
    return parse_settings(text, str(SETTINGS_FILE), host_address)


# ----- the running app ---------------------------------------------------------------------------------------
def running_pid() -> Optional[int]:
    """The PID in the pid file when that process is this host's app, still running; else None."""
    try:
        pid = int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_app_process(pid) else None


def is_app_process(pid: int) -> bool:
    """Whether ``pid`` is alive and runs our server in our mount namespace (PIDs are reused; and hosts that
    share a kernel, as the test fleet's do, see each other's processes)."""
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes().split(b"\0")
        same_host = os.readlink(proc / "ns" / "mnt") == os.readlink("/proc/self/ns/mnt")
    except FileNotFoundError:
        return False
    except PermissionError as error:
        raise ServiceError(f"cannot inspect process {pid} of {PID_FILE}: {error.strerror}; run the hook as root "
                           "or as the app's user") from error
    return state != "Z" and str(SERVER).encode() in command and same_host


def get(url: str, timeout: float = 2.0) -> tuple[int, dict]:
    """Status and JSON document of a GET; raises OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, {}


def serving_version(settings: Settings) -> Optional[str]:
    """The version /health reports with a 200, or None when the app does not answer so."""
    try:
        status, document = get(f"{settings.url}/health")
    except (OSError, ValueError):
        return None
    return document.get("version") if status == 200 else None


def port_in_use(settings: Settings) -> bool:
    """Whether something listens there: it accepts, or its full backlog lets the connection time out."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((settings.address, settings.port)) in (0, errno.EAGAIN, errno.ETIMEDOUT)


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def log_tail() -> str:
    lines = LOG_FILE.read_text(errors="replace").splitlines() if LOG_FILE.exists() else []
    return "\n".join(lines[-LOG_TAIL_LINES:])


def app_owner() -> dict:
    """Popen arguments that run the app as the owner of its files when the hook runs as root."""
    if os.geteuid() != 0:
        return {}
    owner = SERVER.stat()
    return {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": []}


# ----- the commands --------------------------------------------------------------------------------------------
def start(settings: Settings) -> str:
    if not SERVER.exists():
        raise ServiceError(f"{SERVER} is missing: the revision's files are not installed")
    if running_pid() is not None:
        # ApplicationStop did not stop it (it failed and was ignored, or the last revision's script predates it).
        print(f"webapp still running: {stop(settings)} before the start")
    version = (APP_DIR / "VERSION").read_text().strip()
    command = [sys.executable, str(SERVER), "--address", settings.address, "--port", str(settings.port)]
    try:
        with open(LOG_FILE, "ab") as log:
            process = subprocess.Popen(  # detached: the hook must not wait for the app or hold its output
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(APP_DIR),
                start_new_session=True, close_fds=True, **app_owner())
    except OSError as error:
        raise ServiceError(f"cannot run {' '.join(command)} as the owner of {SERVER}: {error}; run this script "
                           "with a Python that user can execute (the hooks use /usr/bin/python3)") from error
    PID_FILE.write_text(f"{process.pid}\n")
    if wait_for(lambda: process.poll() is not None or serving_version(settings) == version, START_SECONDS):
        failure = f"exited at start with code {process.returncode}" if process.poll() is not None else ""
    else:
        process.kill()
        process.wait()
        failure = f"did not answer {settings.url}/health with its version within {START_SECONDS} s and was killed"
    if failure:
        PID_FILE.unlink()
        raise ServiceError(f"webapp {version} {failure}; the end of {LOG_FILE}:\n{log_tail()}")
    return f"webapp {version} serving on {settings.url}/ as pid {process.pid}"


def stop(settings: Settings) -> str:
    pid = running_pid()
    if pid is None:
        message = "webapp was not running"
    else:
        os.kill(pid, signal.SIGTERM)
        if wait_for(lambda: not is_app_process(pid), STOP_SECONDS):
            message = f"webapp (pid {pid}) stopped gracefully"
        else:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not is_app_process(pid), STOP_SECONDS)
            message = f"webapp (pid {pid}) did not stop within {STOP_SECONDS} s of SIGTERM and was killed"
    PID_FILE.unlink(missing_ok=True)
    if not wait_for(lambda: not port_in_use(settings), PORT_FREE_SECONDS):
        raise ServiceError(f"{message}, but {settings.address}:{settings.port} is still in use by another process; "
                           f"stop it, or set WEBAPP_PORT in {SETTINGS_FILE}")
    return message


def check(settings: Settings, expected_version: str) -> str:
    try:
        status, document = get(f"{settings.url}/health")
    except (OSError, ValueError) as error:
        raise ServiceError(f"webapp does not answer {settings.url}/health: {error}; the end of {LOG_FILE}:\n"
                           f"{log_tail()}") from error
    if status != 200 or document.get("version") != expected_version:
        raise ServiceError(f"webapp {settings.url}/health answered {status} {json.dumps(document)}; expected 200 "
                           f"with version {expected_version}")
    return f"webapp {expected_version} healthy on {settings.url}/"


def main(argv: list[str]) -> int:
    commands = {"start": 1, "stop": 1, "check": 2}
    if not argv or commands.get(argv[0]) != len(argv):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        if argv[0] == "start":
            print(start(settings))
        elif argv[0] == "stop":
            print(stop(settings))
        else:
            print(check(settings, argv[1]))
    except ServiceError as error:
        print(f"webapp_service {argv[0]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
