# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Steady HTTP traffic against the example web app, recorded request by request, for zero-dropped-request tests.

    with LoadGenerator("http://127.0.0.1:8000/", rate=60) as load:
        ...  # a deployment
    assert load.failures == []
    assert load.versions_after(cutover) == {"2.0.0"}

Open loop: requests are sent on a fixed schedule (``rate`` a second) by a pool of threads, whether or not the
earlier ones have been answered, as independent users would send them; a stalled server shows up as slow or
failed requests, not as a lower rate that hides the stall. Each request opens a new connection and sends
``Connection: close`` (no keep-alive), like many independent clients: every request is routed afresh by a load
balancer, and a connection refused or reset during a deployment is seen as the failure a user would see.

Times are wall-clock ``time.time()`` seconds, comparable with timestamps taken by the test or written in
deployment records. The app answers ``{"version": ..., "host": ...}``; a 200 without them is a failure too.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

BODY_EXCERPT = 200


@dataclass(frozen=True)
class Request:
    """One request: when it was sent and answered, and what came back."""

    sent: float
    ended: float
    status: Optional[int]  # None: no HTTP response (refused, reset, timed out)
    error: str  # empty when the request succeeded
    version: Optional[str]
    host: Optional[str]

    @property
    def ok(self) -> bool:
        return not self.error


class LoadGenerator:
    """``rate`` GET requests a second to ``url`` in background threads, from start() (or ``with``) to stop().

    Summaries: ``records``, ``count``, ``failures``, ``versions_after(t)``, ``hosts_after(t)``, ``rate()``."""

    def __init__(self, url: str, rate: float = 60, timeout: float = 5.0, workers: int = 32) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"LoadGenerator needs an http:// URL with a host, not {url!r}")
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.url = url
        self.target_rate = rate
        self.timeout = timeout
        self._address = (parts.hostname, parts.port or 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load")
        self._records: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scheduler: Optional[threading.Thread] = None
        self.started = 0.0
        self.stopped = 0.0

    def __enter__(self) -> "LoadGenerator":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        if self._scheduler is not None:
            raise RuntimeError("a LoadGenerator runs once; make a new one")
        self.started = time.time()
        self._scheduler = threading.Thread(target=self._schedule, name="load-scheduler", daemon=True)
        self._scheduler.start()

    def stop(self) -> None:
        """Send no more requests, wait for those in flight (at most ``timeout``), and keep the records."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.join()
        self._pool.shutdown(wait=True)
        if not self.stopped:
            self.stopped = time.time()

    # ----- summaries ----------------------------------------------------------------------------------------
    @property
    def records(self) -> list[Request]:
        """Every finished request, in the order they were sent."""
        with self._lock:
            return sorted(self._records, key=lambda request: request.sent)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._records)

    @property
    def failures(self) -> list[Request]:
        return [request for request in self.records if not request.ok]

    def versions_after(self, instant: float) -> set[str]:
        """The versions reported by the successful requests sent at or after ``instant``."""
        return {request.version for request in self.records if request.ok and request.sent >= instant}

    def hosts_after(self, instant: float) -> set[str]:
        """The hosts that answered the successful requests sent at or after ``instant``."""
        return {request.host for request in self.records if request.ok and request.sent >= instant}

    def rate(self) -> float:
        """Finished requests a second, over the time from start to stop (or to now while running)."""
        elapsed = (self.stopped or time.time()) - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    # ----- the work -----------------------------------------------------------------------------------------
    def _schedule(self) -> None:
        interval = 1.0 / self.target_rate
        sent = 0
        origin = time.monotonic()
        while not self._stopping.is_set():
            # The next send time is fixed by the schedule, so a late wake-up is caught up, not lost.
            delay = origin + sent * interval - time.monotonic()
            if delay > 0 and self._stopping.wait(delay):
                break
            self._pool.submit(self._send)
            sent += 1

    def _send(self) -> None:
        sent = time.time()
        status, error, version, host = None, "", None, None
        connection = http.client.HTTPConnection(*self._address, timeout=self.timeout)
        try:
            connection.request("GET", self._target, headers={"Connection": "close"})
            response = connection.getresponse()
            status, body = response.status, response.read()
            version, host, error = _reading(status, body)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with self._lock:
            self._records.append(Request(sent, time.time(), status, error, version, host))


def _reading(status: int, body: bytes) -> tuple[Optional[str], Optional[str], str]:
    """(version, host, error) from a response of the app."""
    excerpt = body[:BODY_EXCERPT].decode("utf-8", errors="replace")
    if status != 200:
        return None, None, f"HTTP {status}: {excerpt}"
    try:
        document = json.loads(body)
        return str(document["version"]), str(document["host"]), ""
    except (ValueError, TypeError, KeyError):
        return None, None, f"HTTP 200 without the app's version and host: {excerpt}"
