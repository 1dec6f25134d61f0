# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployments behind a real HAProxy with steady traffic: no request may fail.

The example revision's web app runs on every fleet host (on the host's own address, port 8080); HAProxy on
127.0.0.1 fronts them; a load generator sends 60 requests/s through it for the whole deployment.
"""
from __future__ import annotations

import time

from support.deployments import addresses, deploy, example_revision, local, records, statuses
from support.haproxy import Haproxy
from support.load import LoadGenerator

PORT = 8080
RATE = 60
ALL_AT_ONCE = {"deployment_config_name": "CodeDeployDefault.AllAtOnce"}
TRAFFIC_EVENTS = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle",
                  "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService",
                  "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]


def serving_fleet(fleet, count: int, tmp_path, version: str = "1.0.0"):
    """``count`` hosts running the example app at ``version``, and an HAProxy in front of them (all UP)."""
    group = fleet(count)
    ledger = tmp_path / "ledger"
    first = deploy(group, ledger, local(example_revision(tmp_path / f"v{version}", version)), **ALL_AT_ONCE)
    assert first.rc == 0, first.output
    proxy = Haproxy(tmp_path / "haproxy", {host: f"{address}:{PORT}" for host, address in addresses(group).items()},
                    backend="webapp").start()
    deadline = time.monotonic() + 20
    while any(not proxy.server_status(host).startswith("UP") for host in group.hosts):
        assert time.monotonic() < deadline, {host: proxy.server_status(host) for host in group.hosts}
        time.sleep(0.2)
    return group, ledger, proxy


def load_balancer(proxy: Haproxy) -> dict:
    return {"haproxy": {"socket": str(proxy.socket), "backend": proxy.backend}}


def test_rolling_in_place_behind_haproxy_drops_no_request(fleet, tmp_path):
    group, ledger, proxy = serving_fleet(fleet, 4, tmp_path)
    with proxy:
        with LoadGenerator(proxy.frontend_url, rate=RATE) as load:
            time.sleep(1)
            run = deploy(group, ledger, local(example_revision(tmp_path / "v2", "2.0.0")),
                         deployment_config_name="CodeDeployDefault.HalfAtATime",
                         load_balancer_info=load_balancer(proxy))
            finished = time.time()
            time.sleep(1)
        assert run.rc == 0, run.output
        assert load.failures == [], load.failures[:5]
        assert load.rate() >= 50, load.rate()
        assert load.versions_after(finished) == {"2.0.0"}
        assert load.hosts_after(finished) == set(group.hosts)
        assert all(proxy.server_status(host).startswith("UP") for host in group.hosts)

    record = records(ledger)[-1]
    assert record["status"] == "Succeeded"
    assert record["deployment_style"]["deployment_option"] == "WITH_TRAFFIC_CONTROL"
    assert set(statuses(record).values()) == {"Succeeded"}
    for entry in record["instances"]:
        events = {event["lifecycle_event_name"]: event for event in entry["lifecycle_events"]}
        assert list(events) == TRAFFIC_EVENTS
        assert events["BlockTraffic"]["status"] == events["AllowTraffic"]["status"] == "Succeeded"
        # Drained before the application stopped; registered only after it validated.
        assert events["BlockTraffic"]["end_time"] <= events["ApplicationStop"]["start_time"]
        assert events["ValidateService"]["end_time"] <= events["AllowTraffic"]["start_time"]
        assert "MAINT" in events["BlockTraffic"]["diagnostics"]["message"]
        assert "UP" in events["AllowTraffic"]["diagnostics"]["message"]
    # Half at a time: never more than two of the four out of the backend at once.
    assert [len(wave["instances"]) for wave in record["waves"]] == [2, 2]


def test_an_instance_that_never_turns_healthy_fails(fleet, tmp_path):
    group, ledger, proxy = serving_fleet(fleet, 1, tmp_path)
    with proxy:
        # The new revision will serve on another port than the one HAProxy sends to: it never turns healthy there.
        group.path("fleet-h1", "/etc/fleet-app/webapp.env").write_text(f"WEBAPP_PORT={PORT + 1}\n")
        run = deploy(group, ledger, local(example_revision(tmp_path / "v2", "2.0.0")),
                     load_balancer_info=load_balancer(proxy), traffic_wait_timeout=3)
    assert run.rc != 0
    record = records(ledger)[-1]
    assert record["status"] == "Failed"
    assert statuses(record) == {"fleet-h1": "Failed"}
    events = {event["lifecycle_event_name"]: event for event in record["instances"][0]["lifecycle_events"]}
    assert events["AllowTraffic"]["status"] == "Failed"
    assert "did not become registered and healthy within 3 s" in events["AllowTraffic"]["diagnostics"]["message"]
    assert events["AfterAllowTraffic"]["status"] == "Skipped"
    assert "AllowTraffic failed" in run.output
