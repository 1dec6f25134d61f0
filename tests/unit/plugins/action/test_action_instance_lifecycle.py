# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The instance_lifecycle action's own parts: whether DownloadBundle ran (who removes a pushed bundle), and the
traffic events it runs from the controller, against a real HAProxy and the moto server's ELBv2."""
from __future__ import annotations

import pytest

from ansible_collections.fleetops.codedeploy.plugins.action.instance_lifecycle import (
    download_bundle_ran, traffic_event)
from support.haproxy import BackendApp, Haproxy


def events(*statuses):
    return {"lifecycle_events": [{"lifecycle_event_name": name, "status": status} for name, status in statuses]}


@pytest.mark.parametrize("result, ran", [
    (events(("ApplicationStop", "Succeeded"), ("DownloadBundle", "Succeeded"), ("BeforeInstall", "Failed")), True),
    (events(("ApplicationStop", "Succeeded"), ("DownloadBundle", "Failed")), True),
    (events(("ApplicationStop", "Failed"), ("DownloadBundle", "Skipped")), False),
    (events(("BlockTraffic", "Succeeded")), False),
    ({"unreachable": True, "msg": "Failed to connect to the host via ssh"}, False),
    ({"failed": True, "lifecycle_events": None}, False),
])
def test_download_bundle_ran_only_when_the_event_succeeded_or_failed(result, ran):
    assert download_bundle_ran(result) is ran


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory):
    """A real HAProxy fronting a healthy and an unhealthy app; both servers start in maint."""
    workdir = tmp_path_factory.mktemp("haproxy")
    with BackendApp(workdir, "good") as good, BackendApp(workdir, "bad", healthy=False) as bad:
        with Haproxy(workdir, {"good": good.address, "bad": bad.address}, disabled=["good", "bad"]) as proxy:
            yield proxy


def haproxy_traffic(proxy, target, wait_timeout=20):
    return {"load_balancer_info": {"haproxy": {"socket": str(proxy.socket), "backend": "app"}}, "target": target,
            "wait_timeout": wait_timeout}


def test_allow_then_block_traffic_move_the_server_and_reuse_one_provider(haproxy):
    providers = []
    allowed = traffic_event("AllowTraffic", haproxy_traffic(haproxy, "good"), providers)
    assert (allowed["status"], allowed["failed_event"]) == ("Succeeded", None)
    [event] = allowed["lifecycle_events"]
    assert (event["lifecycle_event_name"], event["status"], event["diagnostics"]["error_code"]) == (
        "AllowTraffic", "Succeeded", "Success")
    assert event["diagnostics"]["message"].startswith("good (backend app): MAINT -> UP (")
    assert haproxy.server_status("good").startswith("UP")
    blocked = traffic_event("BlockTraffic", haproxy_traffic(haproxy, "good"), providers)
    assert blocked["status"] == "Succeeded"
    assert blocked["lifecycle_events"][0]["diagnostics"]["message"].startswith("good (backend app): UP -> MAINT (")
    assert len(providers) == 1


def test_a_server_that_never_turns_healthy_fails_allow_traffic_at_the_timeout(haproxy):
    failed = traffic_event("AllowTraffic", haproxy_traffic(haproxy, "bad", wait_timeout=1), [])
    assert (failed["status"], failed["failed_event"]) == ("Failed", "AllowTraffic")
    [event] = failed["lifecycle_events"]
    assert (event["status"], event["diagnostics"]["error_code"]) == ("Failed", "UnknownError")
    assert event["diagnostics"]["message"].startswith("1 of 1 targets did not become registered and healthy within 1 s")
    assert "bad (backend app)" in event["diagnostics"]["message"]
    haproxy.command("set server app/bad state maint")


def test_an_unreachable_runtime_api_fails_the_event_with_the_address(tmp_path):
    missing = tmp_path / "admin.sock"
    traffic = {"load_balancer_info": {"haproxy": {"socket": str(missing), "backend": "app"}}, "target": "web-1"}
    failed = traffic_event("BlockTraffic", traffic, [])
    assert (failed["status"], failed["failed_event"]) == ("Failed", "BlockTraffic")
    message = failed["lifecycle_events"][0]["diagnostics"]["message"]
    assert f"cannot reach the HAProxy runtime API at {missing}" in message


def test_an_unknown_target_group_fails_the_event_naming_the_ones_there(aws_options):
    traffic = {"load_balancer_info": {"target_groups": ["webapp-tg-missing"]}, "target": "i-0123456789abcdef0",
               "aws": aws_options}
    failed = traffic_event("AllowTraffic", traffic, [])
    assert (failed["status"], failed["failed_event"]) == ("Failed", "AllowTraffic")
    assert failed["lifecycle_events"][0]["diagnostics"]["message"].startswith(
        "target group not found in us-east-1: webapp-tg-missing")
