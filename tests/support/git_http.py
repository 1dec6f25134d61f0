# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A git server over HTTP that requires credentials, for tests: git's own ``git http-backend`` behind a small
HTTP server on 127.0.0.1 that answers 401 to any request without the right Basic credentials.

``with GitHttpServer(root, "ci", token) as server:`` serves the repositories under ``root`` at
``server.url("app")`` (``http://127.0.0.1:<port>/app``, no credentials in it); ``server.refused`` counts the
requests refused for want of credentials, ``server.served`` those answered.
"""
from __future__ import annotations

import base64
import os
import http.server
import subprocess
import threading
from pathlib import Path


class GitHttpServer:

    def __init__(self, root: Path, user: str, password: str) -> None:
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.refused = 0
        self.served = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, repository: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{repository}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.backend()

            def do_POST(self):
                self.backend()

            def backend(self):
                if self.headers.get("Authorization") != owner.expected:
                    owner.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                owner.served += 1
                path, query = (self.path.split("?", 1) + [""])[:2]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(owner.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                       "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": "ci",
                       "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "GATEWAY_INTERFACE": "CGI/1.1",
                       "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                       "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
                answer = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                                        check=False).stdout
                head, content = answer.split(b"\r\n\r\n", 1)
                headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
                status = next((value.strip() for name, value in headers if name.lower() == "status"), "200 OK")
                self.send_response(int(status.split()[0]))
                for name, value in headers:
                    if name.lower() != "status":
                        self.send_header(name, value.strip())
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self) -> GitHttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
