# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.codedeploy.traffic run by the ansible CLI on the controller (implicit localhost), against a real
HAProxy fronting real HTTP servers on 127.0.0.1, and against the ELBv2 API of the test pool's moto server."""
from __future__ import annotations

import threading
import time
import urllib.request

import boto3
import pytest

from support.controller import run_on_controller
from support.haproxy import BackendApp, Haproxy

MODULE = "fleetops.codedeploy.traffic"


def run_traffic(args: dict, *options: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    """The module run as `ansible localhost -m ...`: exit code, the result it returned, and the terminal text."""
    return run_on_controller(MODULE, args, *options, env=env)


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.status, answer.read().decode()


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class Background(threading.Thread):
    """Runs ``step`` repeatedly until stopped, keeping what it returns."""

    def __init__(self, step, pause: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.step, self.pause = step, pause
        self.results: list = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.results.append(self.step())
            time.sleep(self.pause)

    def stop(self) -> list:
        self.stopping.set()
        self.join()
        return self.results


@pytest.fixture
def web(tmp_path):
    """HAProxy fronting web-1 and web-2 (healthy) and web-3 (its /health fails, in maint as at a deploy)."""
    apps = {name: BackendApp(tmp_path, name).start() for name in ("web-1", "web-2")}
    apps["web-3"] = BackendApp(tmp_path, "web-3", healthy=False).start()
    proxy = Haproxy(tmp_path, {name: app.address for name, app in apps.items()}, disabled=["web-3"]).start()
    try:
        wait_for(lambda: proxy.server_status("web-1") == "UP" and proxy.server_status("web-2") == "UP")
        yield proxy, apps
    finally:
        proxy.stop()
        for app in apps.values():
            app.stop()


def haproxy_args(proxy: Haproxy, state: str, targets: list[str], **extra) -> dict:
    return {"provider": "haproxy", "haproxy_socket": str(proxy.socket), "haproxy_backend": proxy.backend,
            "state": state, "targets": targets, **extra}


def in_thread(call) -> tuple[threading.Thread, list]:
    """``call()`` started in a thread; the list receives its result."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def test_deregister_lets_the_request_in_flight_finish_sends_no_new_ones_and_parks_in_maint(web):
    proxy, apps = web
    for app in apps.values():
        app.hold()
    held, held_answer = in_thread(lambda: get(f"{proxy.frontend_url}/held"))
    wait_for(lambda: any("/held" in app.requests() for app in apps.values()))
    busy = next(name for name, app in apps.items() if "/held" in app.requests())
    other = ({"web-1", "web-2"} - {busy}).pop()
    watcher = Background(lambda: proxy.server_status(busy))
    watcher.start()
    traffic = Background(lambda: get(proxy.frontend_url))
    try:
        module, outcome = in_thread(lambda: run_traffic(haproxy_args(proxy, "deregistered", [busy]), "--diff"))
        wait_for(lambda: "DRAIN" in watcher.results)
        # From the drain on, new requests go to the other server only, and the task waits for the one in flight.
        traffic.start()
        time.sleep(1.5)
        assert module.is_alive() and not held_answer
        apps[busy].release()
        module.join()
        held.join()
    finally:
        for app in apps.values():
            app.release()
        answered = traffic.stop() if traffic.is_alive() else traffic.results
        statuses = watcher.stop()
    rc, result, output = outcome[0]
    assert rc == 0, output
    assert held_answer == [(200, busy)]
    assert answered and set(answered) == {(200, other)}
    assert result["changed"] is True
    assert result["targets"] == [{"target": busy, "backend": "app", "state_before": "UP", "state": "MAINT",
                                  "detail": "maint, 0 sessions", "changed": True}]
    assert result["waited_seconds"] >= 1.0
    assert f"-{busy} (backend app): UP\n+{busy} (backend app): MAINT" in output
    assert "MAINT" not in statuses[:statuses.index("DRAIN")]  # drained first, parked after
    assert proxy.server_status(busy) == "MAINT"

    rc, again, output = run_traffic(haproxy_args(proxy, "deregistered", [busy]))
    assert (rc, again["changed"], again["targets"][0]["state"], again["waited_seconds"]) == (0, False, "MAINT", 0.0)


def test_register_reports_healthy_only_after_the_health_check_passes(web):
    proxy, apps = web
    watcher = Background(lambda: proxy.server_status("web-3"))
    watcher.start()
    try:
        rc, result, output = run_traffic(haproxy_args(proxy, "registered", ["web-3"], wait_timeout=2))
    finally:
        statuses = watcher.stop()
    assert rc != 0
    assert result["msg"] == ("1 of 1 targets did not become registered and healthy within 2 s; last seen: web-3 "
                             "(backend app): DOWN (ready, 0 sessions, check: Layer7 wrong status (503))")
    assert result["targets"][0]["state_before"] == "MAINT"
    assert not [status for status in statuses if status.startswith("UP")]  # never counted up, not even briefly
    assert {get(proxy.frontend_url)[1] for attempt in range(6)} == {"web-1", "web-2"}

    apps["web-3"].set_healthy(True)
    rc, result, output = run_traffic(haproxy_args(proxy, "registered", ["web-1", "web-3"], wait_timeout=10))
    assert rc == 0, output
    assert [(t["target"], t["state"], t["changed"]) for t in result["targets"]] == [
        ("web-1", "UP", False), ("web-3", "UP", False)]  # web-3 was set ready above and only waited for
    assert {get(proxy.frontend_url)[1] for attempt in range(6)} == {"web-1", "web-2", "web-3"}


def test_register_from_maint_and_check_mode(web):
    proxy, apps = web
    rc, result, output = run_traffic(haproxy_args(proxy, "deregistered", ["web-2"]), "--check", "--diff")
    assert rc == 0, output
    assert (result["changed"], result["targets"][0]["state"]) == (True, "UP")
    assert "-web-2 (backend app): UP\n+web-2 (backend app): MAINT" in output
    assert proxy.server_status("web-2") == "UP"

    apps["web-3"].set_healthy(True)
    rc, result, output = run_traffic(haproxy_args(proxy, "registered", ["web-3"]), "--check")
    assert (rc, result["changed"], proxy.server_status("web-3")) == (0, True, "MAINT")
    rc, result, output = run_traffic(haproxy_args(proxy, "registered", ["web-3"], wait_timeout=10))
    assert rc == 0, output
    assert (result["changed"], result["targets"][0]["state_before"], result["targets"][0]["state"]) == (
        True, "MAINT", "UP")
    rc, result, output = run_traffic(haproxy_args(proxy, "registered", ["web-3"]))
    assert (rc, result["changed"]) == (0, False)


def test_haproxy_errors_name_the_backend_the_server_and_the_socket(web, tmp_path):
    proxy, apps = web
    rc, result, output = run_traffic(haproxy_args(proxy, "deregistered", ["web-1"], haproxy_backend="webapp"))
    assert (rc, result["msg"]) == (2, "HAProxy has no backend 'webapp'; its backends: app")
    rc, result, output = run_traffic(haproxy_args(proxy, "deregistered", ["web-1", "fleet-h9"]))
    assert (rc, result["msg"]) == (2, "no server fleet-h9 in HAProxy backend 'app'; its servers: web-1, web-2, "
                                      "web-3")
    assert proxy.server_status("web-1") == "UP"  # nothing changed before the error
    missing = tmp_path / "no-such.sock"
    rc, result, output = run_traffic(haproxy_args(proxy, "deregistered", ["web-1"], haproxy_socket=str(missing)))
    assert rc == 2
    assert result["msg"].startswith(f"cannot reach the HAProxy runtime API at {missing}: [Errno 2]")
    assert f"`stats socket {missing} mode 660 level admin`" in result["msg"]


@pytest.fixture
def elbv2(aws):
    """Two running instances in a moto VPC, target groups `web-blue` (port 80, delay 5 s) and `web-admin`."""
    session = dict(endpoint_url=aws["endpoint_url"], region_name="us-east-1", aws_access_key_id="testing",
                   aws_secret_access_key="testing")
    ec2, client = boto3.client("ec2", **session), boto3.client("elbv2", **session)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    instances = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2,
                                                            SubnetId=subnet)["Instances"]]
    groups = {name: client.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc,
                                               TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
              for name in ("web-blue", "web-admin")}
    client.modify_target_group_attributes(TargetGroupArn=groups["web-blue"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
    env = {name: value for name, value in aws.items() if name.startswith("AWS_")}
    option = {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}
    return client, ec2, instances, groups, env, option


def registered_targets(client, arn: str) -> set[tuple[str, int, str]]:
    descriptions = client.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"]) for d in descriptions}


def test_elbv2_register_and_deregister_by_name_and_arn(elbv2):
    client, ec2, (first, second), groups, env, option = elbv2
    args = dict(provider="elbv2", state="registered", targets=[first, f"{second}:8080"],
                target_groups=["web-blue", groups["web-admin"]], aws=option)
    rc, result, output = run_traffic(args, "--diff", env=env)
    assert rc == 0, output
    assert result["changed"] is True
    assert [(t["target"], t["target_group"], t["state_before"], t["state"]) for t in result["targets"]] == [
        (first, "web-blue", "unregistered", "healthy"), (f"{second}:8080", "web-blue", "unregistered", "healthy"),
        (first, "web-admin", "unregistered", "healthy"), (f"{second}:8080", "web-admin", "unregistered", "healthy")]
    expected = {(first, 80, "healthy"), (second, 8080, "healthy")}
    assert registered_targets(client, groups["web-blue"]) == registered_targets(client, groups["web-admin"]) == expected
    assert f"+{first} (target group web-blue): healthy" in output

    rc, again, output = run_traffic(args, env=env)
    assert (rc, again["changed"]) == (0, False), output

    deregister = dict(args, state="deregistered", targets=[f"{second}:8080"], target_groups=[groups["web-blue"]])
    rc, result, output = run_traffic(deregister, "--check", env=env)
    assert (rc, result["changed"]) == (0, True), output
    assert registered_targets(client, groups["web-blue"]) == expected
    rc, result, output = run_traffic(deregister, env=env)
    assert rc == 0, output
    assert [(t["state_before"], t["state"], t["changed"]) for t in result["targets"]] == [
        ("healthy", "unregistered", True)]
    assert registered_targets(client, groups["web-blue"]) == {(first, 80, "healthy")}
    assert registered_targets(client, groups["web-admin"]) == expected
    rc, result, output = run_traffic(deregister, env=env)
    assert (rc, result["changed"]) == (0, False), output


def test_elbv2_stopped_instances_are_refused_or_time_out_with_their_state(elbv2):
    client, ec2, (first, second), groups, env, option = elbv2
    ec2.stop_instances(InstanceIds=[second])
    args = dict(provider="elbv2", targets=[first, second], target_groups=["web-blue"], wait_timeout=1, aws=option)
    rc, result, output = run_traffic(args, env=env)
    assert rc == 2, output
    assert result["msg"] == ("ELBv2 RegisterTargets failed: InvalidTarget (The following targets are not in a "
                             f"running state and cannot be registered: '{second}')")

    ec2.start_instances(InstanceIds=[second])
    client.register_targets(TargetGroupArn=groups["web-blue"], Targets=[{"Id": second}])
    ec2.stop_instances(InstanceIds=[second])
    rc, result, output = run_traffic(args, env=env)
    assert rc == 2, output
    assert result["msg"].startswith(f"1 of 2 targets did not become registered and healthy within 1 s; last seen: "
                                    f"{second} (target group web-blue): unused (Target.InvalidState")
    assert [t["state"] for t in result["targets"]] == ["healthy", "unused"]


def test_elbv2_unknown_target_group_is_named_with_close_ones(elbv2):
    client, ec2, instances, groups, env, option = elbv2
    args = dict(provider="elbv2", targets=instances, target_groups=["web-bleu", "web-admin"], aws=option)
    rc, result, output = run_traffic(args, env=env)
    assert rc == 2
    assert result["msg"] == ("target group not found in us-east-1: web-bleu (did you mean web-blue?); the target "
                             "groups there: web-admin, web-blue")
    assert registered_targets(client, groups["web-admin"]) == set()
