# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The example web app: it says which version runs on which host, so that a load test can tell who answered.

    python3 server.py --address 127.0.0.1 --port 8080

``GET /`` answers ``{"version": "<VERSION>", "host": "<hostname>"}``; ``GET /health`` answers 200 while the app
serves and 503 once it is stopping. VERSION is the file beside this one, read once at start: a running app
reports the revision it was started from. Every request runs in a thread of its own; HTTP/1.0, one request a
connection, so that a stop has no idle keep-alive connections to wait for.

SIGTERM (or SIGINT) stops it gracefully: it stops accepting, answers the connections the kernel had already
accepted, waits for the requests in flight, then exits 0. A client that sends nothing for IDLE_TIMEOUT_SECONDS
is dropped, so a stop never waits longer than that. ``scripts/webapp_service.py`` of the revision starts and stops
it for the hooks. Python 3.9+ standard library only.
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

VERSION_FILE = Path(__file__).resolve().parent / "VERSION"
IDLE_TIMEOUT_SECONDS = 10
# How soon the accept loop notices a stop request.
POLL_SECONDS = 0.1


class WebappServer(ThreadingHTTPServer):
    """The HTTP server, with what it reports and whether it is stopping."""

    daemon_threads = False  # so that server_close() waits for the requests in flight
    request_queue_size = 128  # socketserver's 5 drops connections of a burst (clients retry a second later)

    def __init__(self, address: tuple[str, int], version: str, host: str) -> None:
        self.version = version
        self.host = host
        self.stopping = False
        super().__init__(address, WebappHandler)

    def identity(self) -> dict:
        return {"version": self.version, "host": self.host}

    def request_stop(self) -> None:
        """Leave serve_forever() soon; safe from a signal handler (shutdown() blocks, so it runs in a thread)."""
        self.stopping = True
        threading.Thread(target=self.shutdown, daemon=True).start()

    def answer_accepted(self) -> int:
        """Hand the connections the kernel accepted before the stop to request threads; return how many."""
        self.socket.setblocking(False)
        answered = 0
        while True:
            try:
                request, client = self.get_request()
            except (BlockingIOError, InterruptedError):
                return answered
            request.setblocking(True)
            self.process_request(request, client)
            answered += 1


class WebappHandler(BaseHTTPRequestHandler):
    server: WebappServer
    timeout = IDLE_TIMEOUT_SECONDS
    server_version = "webapp"

    def do_GET(self) -> None:
        self._respond(with_body=True)

    def do_HEAD(self) -> None:
        self._respond(with_body=False)

    def _respond(self, with_body: bool) -> None:
        status, document = route(self.path, self.server)
        body = (json.dumps(document) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)


def route(path: str, server: WebappServer) -> tuple[int, dict]:
    """The status and JSON document of a GET of ``path``."""
    page = path.split("?", 1)[0]
    if page == "/":
        return 200, server.identity()
    if page == "/health":
        return (503, {"status": "stopping", **server.identity()}) if server.stopping else \
            (200, {"status": "serving", **server.identity()})
    return 404, {"error": f"no page {page}: the app serves / and /health"}


def serve(server: WebappServer) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: server.request_stop())
    server.serve_forever(poll_interval=POLL_SECONDS)
    answered = server.answer_accepted()
    server.server_close()  # closes the listening socket, then joins the request threads
    print(f"webapp {server.version} stopped gracefully ({answered} accepted connection(s) answered at the stop)",
          flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--address", required=True, help="the address to listen on (this host's own)")
    parser.add_argument("--port", type=int, required=True, help="the port to listen on (0: any free port)")
    args = parser.parse_args(argv)
    version = VERSION_FILE.read_text().strip()
    try:
        server = WebappServer((args.address, args.port), version, socket.gethostname())
    except OSError as error:
        print(f"webapp {version} cannot listen on {args.address}:{args.port}: {error.strerror}; free the port or "
              "set WEBAPP_ADDRESS/WEBAPP_PORT in /etc/fleet-app/webapp.env", file=sys.stderr)
        return 1
    address, port = server.server_address[:2]
    print(f"webapp {version} serving on http://{address}:{port}/", flush=True)
    serve(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
