# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real HAProxy for tests, and small real HTTP apps for it to front.

``Haproxy(workdir, {"web-1": "127.81.0.10:8080", ...})`` writes a config with one HTTP frontend on a free
127.0.0.1 port and one backend of those servers (``option httpchk GET /health``, checks every 200 ms,
``rise 2 fall 2``, ``option redispatch``, ``retries 3``), an admin-level runtime API socket in ``workdir``, and
runs ``haproxy -db`` as a child process. Servers named in ``disabled`` start in maintenance. Use it as a context
manager, or call ``start()`` and ``stop()``.

``BackendApp(workdir, "web-1")`` is a plain ``http.server`` process on a free 127.0.0.1 port: ``GET /`` answers
its name, ``GET /slow?seconds=N`` answers after N seconds, ``GET /held`` answers once the test calls ``app.release()``
after ``app.hold()``, ``GET /health`` answers 200, or 503 after ``app.set_healthy(False)``.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping, Optional

from ansible_collections.fleetops.codedeploy.plugins.module_utils.traffic import RuntimeApi, parse_show_stat

START_TIMEOUT = 10.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1 (all probes held open together, so none is handed out twice)."""
    probes = [socket.socket() for probe_number in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def wait_for_port(port: int, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} does not listen on 127.0.0.1:{port} after {START_TIMEOUT} s: {log.read_text()}")


def stop_process(process: Optional[subprocess.Popen]) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Haproxy:
    """A running HAProxy: ``.socket``, ``.frontend_url``, ``.backend``, ``.command()``, ``.stop()``."""

    def __init__(self, workdir: Path, servers: Mapping[str, str], disabled: Iterable[str] = (),
                 backend: str = "app", health_path: str = "/health", check_interval_ms: int = 200,
                 rise: int = 2, fall: int = 2, socket_level: str = "admin", tcp_runtime_api: bool = False) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.servers = dict(servers)
        self.disabled = set(disabled)
        self.backend = backend
        self.health_path = health_path
        self.check_interval_ms = check_interval_ms
        self.rise, self.fall = rise, fall
        self.socket_level = socket_level
        self.socket = self.workdir / "admin.sock"
        self.frontend_port, tcp_port = free_ports(2)
        # A second runtime API endpoint on TCP, as `host:port`, when asked for.
        self.tcp_address = f"127.0.0.1:{tcp_port}" if tcp_runtime_api else None
        self.frontend_url = f"http://127.0.0.1:{self.frontend_port}"
        self.config_path = self.workdir / "haproxy.cfg"
        self.log_path = self.workdir / "haproxy.log"
        self.process: Optional[subprocess.Popen] = None

    def config(self) -> str:
        tcp_socket = f"    stats socket ipv4@{self.tcp_address} level {self.socket_level}\n" if self.tcp_address else ""
        servers = "".join(f"    server {name} {address}{' disabled' if name in self.disabled else ''}\n"
                          for name, address in self.servers.items())
        return (
            "global\n"
            f"    stats socket {self.socket} mode 600 level {self.socket_level}\n"
            f"{tcp_socket}"
            "defaults\n"
            "    mode http\n"
            "    timeout connect 2s\n"
            "    timeout client 30s\n"
            "    timeout server 30s\n"
            # Checks every `inter`, but a loaded test machine may take longer than that to answer one.
            "    timeout check 2s\n"
            "frontend web\n"
            f"    bind 127.0.0.1:{self.frontend_port}\n"
            f"    default_backend {self.backend}\n"
            f"backend {self.backend}\n"
            f"    option httpchk GET {self.health_path}\n"
            "    option redispatch\n"
            "    retries 3\n"
            f"    default-server check inter {self.check_interval_ms}ms rise {self.rise} fall {self.fall}\n"
            f"{servers}"
        )

    def start(self) -> Haproxy:
        self.config_path.write_text(self.config())
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen([binary, "-f", str(self.config_path), "-db"], stdout=log,
                                            stderr=subprocess.STDOUT)
        wait_for_port(self.frontend_port, self.process, self.log_path, "haproxy")
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def command(self, line: str) -> str:
        """A runtime API command's answer, through the admin socket."""
        return RuntimeApi(str(self.socket)).query(line)

    def server_status(self, name: str) -> str:
        """The server's status as `show stat` shows it (UP, DOWN, MAINT, DRAIN, ...)."""
        return parse_show_stat(self.command(f"show stat {self.backend} 4 -1"))[name]["status"]

    def __enter__(self) -> Haproxy:
        """Starts HAProxy unless it runs already (a second one would share its port: SO_REUSEPORT)."""
        return self if self.process is not None and self.process.poll() is None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


BACKEND_APP = r"""
import http.server, os, sys, time, urllib.parse
name, port, unhealthy_flag, hold_flag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with open(unhealthy_flag + ".log", "a") as log:
            log.write(self.path + "\n")
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/health" and os.path.exists(unhealthy_flag):
            return self.answer(503, "unhealthy")
        if url.path == "/slow":
            time.sleep(float(urllib.parse.parse_qs(url.query).get("seconds", ["2"])[0]))
        deadline = time.monotonic() + 60
        while url.path == "/held" and os.path.exists(hold_flag) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.answer(200, name)

    def answer(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class BackendApp:
    """A real HTTP server process on 127.0.0.1 that answers its name; ``.requests()`` lists the paths it served."""

    def __init__(self, workdir: Path, name: str, healthy: bool = True) -> None:
        self.name = name
        self.port = free_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.unhealthy_flag = self.workdir / f"{name}.unhealthy"
        self.hold_flag = self.workdir / f"{name}.hold"
        self.set_healthy(healthy)
        self.process: Optional[subprocess.Popen] = None

    def set_healthy(self, healthy: bool) -> None:
        if healthy:
            self.unhealthy_flag.unlink(missing_ok=True)
        else:
            self.unhealthy_flag.touch()

    def hold(self) -> None:
        """From now on ``GET /held`` waits (at most 60 s) until :meth:`release`."""
        self.hold_flag.touch()

    def release(self) -> None:
        self.hold_flag.unlink(missing_ok=True)

    def requests(self) -> list[str]:
        """The paths this app was asked for (health checks included), in arrival order."""
        log = Path(f"{self.unhealthy_flag}.log")
        return log.read_text().splitlines() if log.exists() else []

    def start(self) -> BackendApp:
        log = self.workdir / f"{self.name}.out"
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BACKEND_APP, self.name, str(self.port), str(self.unhealthy_flag),
                 str(self.hold_flag)],
                stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, log, f"app {self.name}")
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> BackendApp:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
