# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The example revision's web app on a real fleet, deployed by the deploy playbook; and the load generator the
traffic tests use, measured against it.

Each host's app listens on the host's own loopback address, port 8080: the hosts share one network, so a test on
the machine reaches every host's app directly.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support.deployments import DEPLOYMENT_ROOT, EXAMPLE_REVISION, addresses, deploy, example_revision, local, records
from support.load import LoadGenerator

PORT = 8080
LOAD_SECONDS = 3
ALL_AT_ONCE = {"deployment_config_name": "CodeDeployDefault.AllAtOnce"}


def get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def refuses(address: str, port: int = PORT) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((address, port)) != 0


def app_pid(group, host: str) -> int:
    return int(group.path(host, "/etc/fleet-app/webapp.pid").read_text())


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def event_output(record: dict, host: str, event: str) -> str:
    entry = next(entry for entry in record["instances"] if entry["instance_id"] == host)
    found = next(found for found in entry["lifecycle_events"] if found["lifecycle_event_name"] == event)
    assert found["status"] == "Succeeded", found
    return found["diagnostics"]["log_tail"]


def test_the_example_app_through_two_deployments_and_a_graceful_application_stop(fleet, tmp_path):
    group = fleet(2)
    ledger = tmp_path / "ledger"
    urls = {host: f"http://{address}:{PORT}" for host, address in addresses(group).items()}

    first = deploy(group, ledger, local(example_revision(tmp_path / "v1", "1.0.0")), **ALL_AT_ONCE)

    assert first.rc == 0, first.output
    for host, url in urls.items():
        assert get(f"{url}/") == (200, {"version": "1.0.0", "host": host})
        assert get(f"{url}/health") == (200, {"status": "serving", "version": "1.0.0", "host": host})
    first_pids = {host: app_pid(group, host) for host in group.hosts}

    # The load generator against one host's app, no deployment running.
    with LoadGenerator(f"{urls['fleet-h1']}/", rate=60) as idle_load:
        time.sleep(LOAD_SECONDS)
    assert idle_load.failures == []
    assert idle_load.rate() >= 50, idle_load.rate()
    assert (idle_load.versions_after(0), idle_load.hosts_after(0)) == ({"1.0.0"}, {"fleet-h1"})

    # The second deployment, with the load generator measured against an app on the machine meanwhile.
    with local_app(tmp_path / "local-app") as local_url, LoadGenerator(local_url, rate=60) as busy_load:
        second = deploy(group, ledger, local(example_revision(tmp_path / "v2", "2.0.0")), **ALL_AT_ONCE)

    assert second.rc == 0, second.output
    assert busy_load.failures == []
    assert busy_load.rate() >= 50, busy_load.rate()
    record = records(ledger)[-1]
    for host, url in urls.items():
        assert get(f"{url}/") == (200, {"version": "2.0.0", "host": host})
        # ApplicationStop (1.0.0's script) stopped the old app; ApplicationStart did not have to.
        assert not alive(first_pids[host]), host
        assert f"webapp (pid {first_pids[host]}) stopped gracefully" in event_output(record, host, "ApplicationStop")
        started = event_output(record, host, "ApplicationStart")
        assert "started webapp 2.0.0" in started and "still running" not in started, started
        assert "webapp 2.0.0 healthy" in event_output(record, host, "ValidateService")

    # ApplicationStop as the next deployment runs it (this revision's script, as root), with a request in flight.
    host, address = "fleet-h1", addresses(group)["fleet-h1"]
    pid = app_pid(group, host)
    root = group.path(host, DEPLOYMENT_ROOT)
    (script,) = root.glob(f"*/{record['deployment_id']}/deployment-archive/scripts/stop.sh")
    application_stop = f"DEPLOYMENT_ID=d-STOPTEST01 {DEPLOYMENT_ROOT}/{script.relative_to(root)}"
    in_flight = socket.create_connection((address, PORT), timeout=10)
    in_flight.sendall(b"GET / HTTP/1.0\r\n")  # accepted by the app, but not complete yet

    with ThreadPoolExecutor(max_workers=1) as background:
        stopping = background.submit(group.ssh, host, application_stop)
        assert wait_until(lambda: refuses(address), seconds=10), "the stopping app still accepts connections"
        assert not stopping.done(), stopping.result().output
        in_flight.sendall(b"\r\n")
        reply = in_flight.makefile("rb").read()
        stopped = stopping.result(timeout=60)

    assert reply.startswith(b"HTTP/1.0 200 "), reply
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {"version": "2.0.0", "host": host}
    assert stopped.rc == 0, stopped.output
    assert f"webapp (pid {pid}) stopped gracefully" in stopped.stdout
    assert not alive(pid)
    assert refuses(address)
    # What the load generator records when nothing answers: every request a failure.
    with LoadGenerator(f"{urls[host]}/", rate=60) as refused_load:
        time.sleep(0.5)
    assert refused_load.count > 0 and refused_load.failures == refused_load.records
    assert "ConnectionRefusedError" in refused_load.failures[0].error
    assert not group.path(host, "/etc/fleet-app/webapp.pid").exists()
    assert not group.path(host, "/etc/fleet-app/webapp.status").exists()
    assert get(f"{urls['fleet-h2']}/")[1]["version"] == "2.0.0"  # the other host's app is untouched
    # Nothing running: a second ApplicationStop succeeds.
    again = group.ssh(host, application_stop)
    assert again.rc == 0, again.output
    assert "webapp was not running" in again.stdout


@contextlib.contextmanager
def local_app(root: Path):
    """The example app's server on 127.0.0.1 (any free port) on this machine; yields its URL."""
    app = shutil.copytree(EXAMPLE_REVISION / "app", root)
    server = subprocess.Popen([sys.executable, str(app / "server.py"), "--address", "127.0.0.1", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        announced = server.stdout.readline()  # webapp <version> serving on http://127.0.0.1:<port>/
        assert " serving on " in announced, announced
        yield announced.split(" serving on ", 1)[1].strip()
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
