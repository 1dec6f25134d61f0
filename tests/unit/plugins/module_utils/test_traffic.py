# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic control: address and target parsing, HAProxy answers, per-target steps, the reconcile loop, and the
HAProxy runtime API against a real HAProxy (started from a temporary directory)."""
from __future__ import annotations

import re
import socket
import time
from dataclasses import replace

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.traffic import (
    DEREGISTERED,
    REGISTERED,
    UNREGISTERED,
    Elbv2Health,
    Elbv2Target,
    Elbv2TargetGroups,
    HaproxyBackend,
    HaproxyServer,
    Outcome,
    RuntimeApi,
    TargetGroup,
    TargetReport,
    TrafficError,
    check_load_balancer_info,
    elbv2_next_steps,
    elbv2_reached,
    haproxy_next_steps,
    haproxy_reached,
    haproxy_server,
    outcome_summary,
    parse_elbv2_target,
    parse_runtime_api_address,
    parse_servers_state,
    parse_show_stat,
    reconcile,
    state_diff,
    timeout_message,
    unknown_target_groups_message,
)
from support.haproxy import BackendApp, Haproxy

# Answers of HAProxy 2.6 (`show servers state app`, `show stat app 4 -1`, columns cut) for a server drained while
# its health check fails: `show stat` says only DOWN, the admin bits say drain.
SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight \
srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state
3 app 1 a 127.0.0.1 2 8 1 1 9 15 3 3 6 0
3 app 2 b 127.0.0.1 0 12 1 1 0 17 2 0 6 0
3 app 4 n 127.0.0.1 2 0 1 1 10 1 0 2 0 0

"""
SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,status,check_status,check_code,check_desc
app,a,0,0,2,5,DRAIN,L7OK,200,Layer7 check passed
app,b,1,1,0,1,DOWN,L7STS,503,"Layer7 wrong status, really"
app,n,0,0,0,0,no check,,,

"""


def server(**fields) -> HaproxyServer:
    base = HaproxyServer(name="web-1", status="UP", admin="ready", running=True, checked=True, check_passed=True,
                         sessions=0, check_desc="Layer7 check passed", check_code="200")
    return replace(base, **fields)


@pytest.mark.parametrize("address, expected", [
    ("/run/haproxy/admin.sock", (socket.AF_UNIX, "/run/haproxy/admin.sock")),
    ("./admin.sock", (socket.AF_UNIX, "./admin.sock")),
    ("127.0.0.1:9999", (socket.AF_INET, ("127.0.0.1", 9999))),
    ("lb-1.example.com:9999", (socket.AF_INET, ("lb-1.example.com", 9999))),
    ("[::1]:9999", (socket.AF_INET6, ("::1", 9999))),
])
def test_runtime_api_addresses(address, expected):
    assert parse_runtime_api_address(address) == expected


@pytest.mark.parametrize("address", ["admin.sock", "127.0.0.1", "::1:9999", "host:port"])
def test_a_runtime_api_address_that_is_neither_is_refused_with_examples(address):
    with pytest.raises(TrafficError, match="neither a unix socket path nor host:port"):
        parse_runtime_api_address(address)


def test_config_line_matches_the_address_kind():
    assert RuntimeApi("/run/haproxy/admin.sock").config_line() == (
        "stats socket /run/haproxy/admin.sock mode 660 level admin")
    assert RuntimeApi("127.0.0.1:9999").config_line() == "stats socket ipv4@127.0.0.1:9999 level admin"
    assert RuntimeApi("[::1]:9999").config_line() == "stats socket ipv6@[::1]:9999 level admin"


@pytest.mark.parametrize("text, expected", [
    ("i-0abc", Elbv2Target("i-0abc", None)),
    ("i-0abc:8080", Elbv2Target("i-0abc", 8080)),
    ("10.0.0.5:80", Elbv2Target("10.0.0.5", 80)),
    ("[2001:db8::5]:8080", Elbv2Target("2001:db8::5", 8080)),
    ("[2001:db8::5]", Elbv2Target("2001:db8::5", None)),
])
def test_elbv2_targets_with_and_without_port(text, expected):
    assert parse_elbv2_target(text) == expected


@pytest.mark.parametrize("text", ["i-0abc:http", "2001:db8::5", "", "a b"])
def test_an_elbv2_target_that_is_not_id_or_ip_with_port_is_refused(text):
    with pytest.raises(TrafficError, match="not an instance ID or IP"):
        parse_elbv2_target(text)


def test_drained_server_that_fails_its_check_is_drain_with_its_queue_counted():
    states, stats = parse_servers_state(SERVERS_STATE), parse_show_stat(SHOW_STAT)
    drained_down = haproxy_server("b", states["b"], stats["b"])
    assert (drained_down.status, drained_down.admin, drained_down.running, drained_down.sessions) == (
        "DOWN", "drain", False, 1)
    assert drained_down.detail == "drain, 1 sessions, check: Layer7 wrong status, really (503)"
    draining = haproxy_server("a", states["a"], stats["a"])
    assert (draining.admin, draining.sessions, draining.healthy) == ("drain", 2, True)
    unchecked = haproxy_server("n", states["n"], stats["n"])
    assert (unchecked.checked, unchecked.healthy, unchecked.detail) == (False, True, "ready, 0 sessions")


def test_unexpected_answers_are_errors_that_quote_them():
    with pytest.raises(TrafficError, match="show servers state.*Unknown command"):
        parse_servers_state("Unknown command.\n")
    with pytest.raises(TrafficError, match="show stat.*No such proxy"):
        parse_show_stat("No such proxy.\n")


@pytest.mark.parametrize("observed, steps", [
    (server(admin="maint", status="MAINT", running=False), ("state drain", "health down", "state ready")),
    (server(admin="maint", status="MAINT", checked=False), ("state ready",)),
    (server(admin="drain", status="DRAIN"), ("state ready",)),
    (server(), ()),
    (server(status="DOWN", running=False, check_passed=False), ()),  # registered, its check decides
])
def test_haproxy_steps_to_register(observed, steps):
    assert haproxy_next_steps(observed, REGISTERED) == steps


@pytest.mark.parametrize("observed, steps", [
    (server(), ("state drain",)),
    (server(status="DOWN", running=False), ("state drain",)),
    (server(admin="drain", status="DRAIN", sessions=3), ()),
    (server(admin="drain", status="DRAIN", sessions=0), ("state maint",)),
    (server(admin="maint", status="MAINT", sessions=1), ()),
    (server(admin="maint", status="MAINT"), ()),
])
def test_haproxy_steps_to_deregister(observed, steps):
    assert haproxy_next_steps(observed, DEREGISTERED) == steps


def test_haproxy_registered_needs_a_passed_check_and_deregistered_needs_maint_and_no_sessions():
    assert haproxy_reached(server(), REGISTERED)
    assert not haproxy_reached(server(check_passed=False), REGISTERED)  # UP 1/2 right after leaving maint
    assert not haproxy_reached(server(admin="drain"), REGISTERED)
    assert haproxy_reached(server(checked=False, check_passed=False), REGISTERED)
    assert haproxy_reached(server(admin="maint", running=False), DEREGISTERED)
    assert not haproxy_reached(server(admin="maint", sessions=1), DEREGISTERED)
    assert not haproxy_reached(server(admin="drain"), DEREGISTERED)


@pytest.mark.parametrize("state, registered_steps, deregistered_steps", [
    (UNREGISTERED, ("register",), ()),
    ("draining", ("register",), ()),
    ("initial", (), ("deregister",)),
    ("healthy", (), ("deregister",)),
    ("unhealthy", (), ("deregister",)),
    ("unused", (), ("deregister",)),
])
def test_elbv2_steps(state, registered_steps, deregistered_steps):
    health = Elbv2Health(state, "")
    assert elbv2_next_steps(health, REGISTERED) == registered_steps
    assert elbv2_next_steps(health, DEREGISTERED) == deregistered_steps
    assert elbv2_reached(health, REGISTERED) == (state == "healthy")
    assert elbv2_reached(health, DEREGISTERED) == (state == UNREGISTERED)


def test_elbv2_deregistration_wait_ends_at_the_longest_delay_plus_a_margin():
    groups = [TargetGroup("arn:a", "a", 80, 30), TargetGroup("arn:b", "b", 80, 120)]
    provider = Elbv2TargetGroups(None, groups, ["i-1"])
    assert provider.wait_limit(DEREGISTERED, 3600) == 180
    assert provider.wait_limit(DEREGISTERED, 100) == 100
    assert provider.wait_limit(REGISTERED, 3600) == 3600


def test_elbv2_registration_uses_the_groups_port_unless_the_target_has_one():
    provider = Elbv2TargetGroups(None, [TargetGroup("arn:a", "a", 80, 300)], ["i-1", "i-2:8080", "i-1"])
    group = provider.groups["a"]
    assert list(provider.targets) == ["i-1", "i-2:8080"]
    assert provider.registration(group, provider.targets["i-1"]) == {"Id": "i-1", "Port": 80}
    assert provider.registration(group, provider.targets["i-2:8080"]) == {"Id": "i-2", "Port": 8080}


def test_unknown_target_groups_name_close_ones_or_say_there_are_none():
    existing = [{"TargetGroupName": name, "TargetGroupArn": f"arn:aws:elasticloadbalancing:r:1:targetgroup/{name}/1"}
                for name in ("web-blue", "web-green", "admin")]
    message = unknown_target_groups_message(["web-bleu", "zzz"], existing, "eu-west-1")
    assert message == ("target group not found in eu-west-1: web-bleu (did you mean web-blue?); zzz; "
                       "the target groups there: admin, web-blue, web-green")
    assert unknown_target_groups_message(["web"], [], "us-east-1") == (
        "target group not found in us-east-1: web; there are no target groups there")


class Switch:
    """A load balancer in memory: each target has a state that steps move along a fixed path."""

    place_key = "backend"
    poll_seconds = 1.0

    def __init__(self, states: dict[str, str], drains_after: int = 0) -> None:
        self.states = dict(states)
        self.polls_until_drained = drains_after
        self.applied: list[tuple[str, tuple]] = []

    def observe(self):
        self.polls_until_drained -= 1
        return {("app", name): Elbv2Health(state, "") for name, state in self.states.items()}

    def next_steps(self, observed, wanted):
        if wanted == REGISTERED:
            return ("ready",) if observed.state != "up" else ()
        return {"up": ("drain",), "drain": ("maint",) if self.polls_until_drained < 0 else ()}.get(observed.state, ())

    def apply(self, steps):
        for (_backend, name), actions in steps.items():
            self.applied.append((name, actions))
            self.states[name] = {"ready": "up", "drain": "drain", "maint": "maint"}[actions[-1]]

    def reached(self, observed, wanted):
        return observed.state == ("up" if wanted == REGISTERED else "maint")

    def wait_limit(self, wanted, wait_timeout):
        return wait_timeout

    def expected_state(self, wanted, wait):
        return "up" if wanted == REGISTERED else "maint"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_reconcile_replans_after_each_poll_until_every_target_is_there():
    switch, clock = Switch({"web-1": "up", "web-2": "maint"}, drains_after=3), Clock()
    outcome = reconcile(switch, DEREGISTERED, True, 60, False, clock=clock, sleep=clock.sleep)
    assert switch.applied == [("web-1", ("drain",)), ("web-1", ("maint",))]
    assert [(r.target, r.state_before, r.state, r.changed, r.reached) for r in outcome.reports] == [
        ("web-1", "up", "maint", True, True), ("web-2", "maint", "maint", False, True)]
    assert (outcome.changed, outcome.timed_out, outcome.waited_seconds) == (True, False, 2.0)


def test_reconcile_in_check_mode_applies_nothing_and_says_what_would_change():
    switch = Switch({"web-1": "up", "web-2": "maint"})
    outcome = reconcile(switch, DEREGISTERED, True, 60, True)
    assert switch.applied == []
    assert [(r.state, r.changed) for r in outcome.reports] == [("up", True), ("maint", False)]
    assert state_diff(outcome, switch, DEREGISTERED, True, True) == {
        "before": "web-1 (backend app): up\nweb-2 (backend app): maint\n",
        "after": "web-1 (backend app): maint\nweb-2 (backend app): maint\n"}


def test_reconcile_without_wait_applies_the_first_step_only():
    switch, clock = Switch({"web-1": "up"}, drains_after=0), Clock()
    outcome = reconcile(switch, DEREGISTERED, False, 60, False, clock=clock, sleep=clock.sleep)
    assert switch.applied == [("web-1", ("drain",))]
    assert (outcome.reports[0].state, outcome.timed_out, outcome.waited_seconds) == ("drain", False, 0.0)


def test_reconcile_times_out_naming_the_late_targets_and_their_last_state():
    switch, clock = Switch({"web-1": "up", "web-2": "up"}, drains_after=1000), Clock()
    outcome = reconcile(switch, DEREGISTERED, True, 5, False, clock=clock, sleep=clock.sleep)
    assert (outcome.timed_out, outcome.waited_seconds) == (True, 5.0)
    assert timeout_message(outcome, DEREGISTERED, "backend") == (
        "2 of 2 targets did not become deregistered and drained within 5 s; "
        "last seen: web-1 (backend app): drain; web-2 (backend app): drain")


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory):
    """A real HAProxy fronting a healthy and an unhealthy app; both servers start in maint."""
    workdir = tmp_path_factory.mktemp("haproxy")
    with BackendApp(workdir, "good") as good, BackendApp(workdir, "bad", healthy=False) as bad:
        with Haproxy(workdir, {"good": good.address, "bad": bad.address}, disabled=["good", "bad"],
                     socket_level="admin", tcp_runtime_api=True) as proxy:
            yield proxy


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_haproxy_counts_a_server_leaving_maint_up_before_any_check(haproxy):
    """Why registration goes maint -> drain -> health down -> ready: plain `ready` is UP unchecked."""
    haproxy.command("set server app/bad state ready")
    assert haproxy.server_status("bad").startswith("UP")
    wait_for(lambda: haproxy.server_status("bad") == "DOWN")
    haproxy.command("set server app/bad state maint")


def test_registration_of_a_failing_server_never_reports_it_up(haproxy):
    backend = HaproxyBackend(RuntimeApi(str(haproxy.socket)), "app", ["bad"])
    outcome = reconcile(backend, REGISTERED, True, 1, False)
    assert outcome.timed_out
    assert (outcome.reports[0].state_before, outcome.reports[0].state) == ("MAINT", "DOWN")
    # HAProxy's words for the failing check; the code is the app's 503, or once in a while 0 (seen in one full
    # run out of many: HAProxy read no status line in time), so only the words are asserted.
    assert "check: Layer7 wrong status (" in outcome.reports[0].detail
    backend.apply({("app", "bad"): ("state maint",)})


def test_registration_and_deregistration_over_tcp(haproxy):
    backend = HaproxyBackend(RuntimeApi(haproxy.tcp_address), "app", ["good"])
    registered = reconcile(backend, REGISTERED, True, 10, False)
    assert (registered.timed_out, registered.reports[0].state, registered.reports[0].changed) == (False, "UP", True)
    assert reconcile(backend, REGISTERED, True, 10, False).changed is False
    deregistered = reconcile(backend, DEREGISTERED, True, 10, False)
    assert (deregistered.reports[0].state, deregistered.reports[0].changed) == ("MAINT", True)


def test_missing_backend_and_server_are_named_with_what_exists(haproxy):
    api = RuntimeApi(str(haproxy.socket))
    with pytest.raises(TrafficError, match=r"^HAProxy has no backend 'web'; its backends: app$"):
        HaproxyBackend(api, "web", ["good"]).observe()
    with pytest.raises(TrafficError, match=r"^no server web-9 in HAProxy backend 'app'; its servers: good, bad$"):
        HaproxyBackend(api, "app", ["good", "web-9"]).observe()


def test_an_admin_command_haproxy_rejects_is_an_error_with_its_answer(haproxy):
    with pytest.raises(TrafficError, match="`set server app/good state nap` failed: 'set server <srv> state' "
                                           "expects 'ready', 'drain' and 'maint'."):
        RuntimeApi(str(haproxy.socket)).admin("set server app/good state nap")


def test_a_backend_name_smuggling_a_command_changes_no_server(haproxy):
    before = {name: haproxy.server_status(name) for name in ("good", "bad")}
    hostile = "app;set server app/good state ready"
    with pytest.raises(TrafficError, match=r"^HAProxy backend name 'app;set server app/good state ready' is not a "
                                           r"name HAProxy allows: use only letters, digits and '-', '_', '\.', ':'"):
        reconcile(HaproxyBackend(RuntimeApi(str(haproxy.socket)), hostile, ["bad"]), DEREGISTERED, True, 1, False)
    time.sleep(0.5)  # a smuggled `state ready` would show as UP at once
    assert {name: haproxy.server_status(name) for name in ("good", "bad")} == before


@pytest.mark.parametrize("backend, servers, bad", [
    ("app\nset server app/good state ready", ["good"], "backend name 'app\\nset server app/good state ready'"),
    ("app", ["good;show info"], "server name 'good;show info'"),
    ("app", ["web 1"], "server name 'web 1'"),
    ("", ["good"], "backend name ''"),
])
def test_names_haproxy_could_not_have_are_refused_before_anything_is_sent(tmp_path, backend, servers, bad):
    # No runtime API listens at this address: a name that got through would fail on connecting instead.
    api = RuntimeApi(str(tmp_path / "admin.sock"))
    with pytest.raises(TrafficError, match=f"^HAProxy {re.escape(bad)} is not a name HAProxy allows"):
        HaproxyBackend(api, backend, servers)


def test_names_with_every_character_haproxy_allows_are_accepted(tmp_path):
    HaproxyBackend(RuntimeApi(str(tmp_path / "admin.sock")), "web_app-2.prod:blue", ["ip-10-0-0-1.ec2.internal"])


def test_a_command_with_a_separator_is_never_sent(tmp_path):
    for command in ("show info; disable server app/good", "show info\ndisable server app/good"):
        with pytest.raises(TrafficError, match="holds a command separator"):
            RuntimeApi(str(tmp_path / "admin.sock")).query(command)


def test_an_unreachable_runtime_api_names_the_address_and_the_config_line(tmp_path):
    missing = tmp_path / "admin.sock"
    with pytest.raises(TrafficError, match=f"cannot reach the HAProxy runtime API at {missing}: .*No such file.*"
                                           f"`stats socket {missing} mode 660 level admin`"):
        RuntimeApi(str(missing)).query("show info")


def test_an_operator_level_socket_refuses_set_server_and_says_which_level(tmp_path):
    with BackendApp(tmp_path, "web-1") as app, Haproxy(tmp_path, {"web-1": app.address},
                                                       socket_level="operator") as proxy:
        with pytest.raises(TrafficError, match="refused `set server app/web-1 state drain`: Permission denied.*"
                                               "level admin"):
            RuntimeApi(str(proxy.socket)).admin("set server app/web-1 state drain")


@pytest.mark.parametrize("info, provider", [
    ({}, None),
    (None, None),
    ({"target_groups": ["web"]}, "elbv2"),
    ({"haproxy": {"socket": "/run/haproxy/admin.sock", "backend": "web"}}, "haproxy"),
])
def test_a_deployment_groups_load_balancer_names_its_provider(info, provider):
    assert check_load_balancer_info(info) == provider


@pytest.mark.parametrize("info, message", [
    ({"classic_load_balancers": ["old-elb"]},
     "codedeploy_load_balancer_info names Classic Load Balancers (old-elb), which traffic control does not support: "
     "use ELBv2 target_groups or an haproxy backend"),
    ({"target_groups": ["web"], "haproxy": {"socket": "/s", "backend": "b"}},
     "codedeploy_load_balancer_info gives both target_groups and haproxy: choose one"),
    ({"haproxy": {"socket": "/s"}},
     "codedeploy_load_balancer_info.haproxy needs backend, e.g. {socket: /run/haproxy/admin.sock, backend: webapp}"),
    ({"target_groups": []},
     "codedeploy_load_balancer_info needs target_groups: [names or ARNs] or haproxy: {socket, backend}"),
    ({"haproxy": {"socket": "/s", "backend": "web;disable server web/web-2"}},
     "HAProxy backend name 'web;disable server web/web-2' is not a name HAProxy allows: use only letters, digits and "
     "'-', '_', '.', ':' (the name of the backend in haproxy.cfg, and each server's codedeploy_haproxy_server or "
     "inventory name)"),
])
def test_an_unusable_load_balancer_is_refused_with_the_fix(info, message):
    with pytest.raises(TrafficError) as error:
        check_load_balancer_info(info)
    assert error.value.message == message


def test_the_outcome_summary_names_each_target_and_the_wait():
    outcome = Outcome([TargetReport("web-1", "webapp", "UP", "MAINT", "", True, True)], 1.5, False, 10)
    assert outcome_summary(outcome, "backend") == "web-1 (backend webapp): UP -> MAINT (1.5 s)"
