# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load-balancer traffic control: register or deregister targets and wait until healthy or drained.

One reconcile loop (:func:`reconcile`) drives two providers:

* :class:`HaproxyBackend`: servers of one HAProxy backend through the runtime API (a unix socket or a TCP address,
  stdlib ``socket`` only, so that it also runs on the load balancer's host). Deregistering drains the server
  (``state drain``: no new connections), waits until it has no sessions left, then parks it in ``maint`` so that
  a stopped application and failing health checks change nothing. Registering never reports a server healthy
  before its health check has passed: HAProxy counts a server leaving ``maint`` as UP at once ("start OK but
  check immediately"), so a checked server is moved ``maint`` -> ``drain`` (still no traffic) -> ``health down``
  -> ``ready`` and becomes UP only after ``rise`` passing checks.
* :class:`Elbv2TargetGroups`: EC2 instances (or IPs) in ELBv2 target groups, given a boto3 ``elbv2`` client.
  Registered means ``healthy`` in ``describe_target_health``; deregistered means no longer listed there.

Each provider observes every target, says which step (if any) a target needs next, applies the steps, and says
when a target has reached the wanted state. The loop re-plans after every observation, so a target drained
halfway through a wait gets its next step (``maint``) without a second run.
"""
from __future__ import annotations

import csv
import difflib
import io
import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Protocol, Sequence

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import aws_client_from_options
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError

REGISTERED = "registered"
DEREGISTERED = "deregistered"
STATES = (REGISTERED, DEREGISTERED)

HAPROXY_POLL_SECONDS = 0.2
ELBV2_POLL_SECONDS = 5.0
# After an ELBv2 group's deregistration delay the load balancer drops the target; allow for its own lag.
ELBV2_DRAIN_MARGIN_SECONDS = 60
RUNTIME_API_TIMEOUT_SECONDS = 10.0


class TrafficError(OperatorError):
    """A failure with a message that names what is wrong and how to fix it."""


# --- the reconcile loop ---------------------------------------------------------------------------------------

Steps = tuple  # the actions one target needs now, in order, e.g. ("state drain",) or ("register",)


class Provider(Protocol):
    """What :func:`reconcile` needs from a load balancer."""

    place_key: str  # the name of the return key that says where a target is: "backend" or "target_group"
    poll_seconds: float

    def observe(self) -> dict[tuple[str, str], Any]: ...

    def next_steps(self, observed: Any, wanted: str) -> Steps: ...

    def apply(self, steps: dict[tuple[str, str], Steps]) -> None: ...

    def reached(self, observed: Any, wanted: str) -> bool: ...

    def wait_limit(self, wanted: str, wait_timeout: float) -> float: ...

    def expected_state(self, wanted: str, wait: bool) -> str: ...


@dataclass(frozen=True)
class TargetReport:
    target: str
    place: str
    state_before: str
    state: str
    detail: str
    changed: bool
    reached: bool

    def as_dict(self, place_key: str) -> dict[str, Any]:
        return {"target": self.target, place_key: self.place, "state_before": self.state_before,
                "state": self.state, "detail": self.detail, "changed": self.changed}


@dataclass(frozen=True)
class Outcome:
    reports: list[TargetReport]
    waited_seconds: float
    timed_out: bool
    limit_seconds: float

    @property
    def changed(self) -> bool:
        return any(report.changed for report in self.reports)


def reconcile(provider: Provider, wanted: str, wait: bool, wait_timeout: float, check_mode: bool,
              clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Bring every target of ``provider`` to ``wanted``; with ``wait``, until each has reached it or time is up.

    In check mode nothing is applied: ``changed`` says which targets would get a step, ``state`` is unchanged.
    """
    before = provider.observe()
    current = before
    changed: set[tuple[str, str]] = set()
    limit = provider.wait_limit(wanted, wait_timeout) if wait else 0.0
    started = clock()
    timed_out = False
    while True:
        steps = {key: step for key, step in ((key, provider.next_steps(observed, wanted))
                                             for key, observed in current.items()) if step}
        if check_mode:
            changed.update(steps)
            break
        if steps:
            provider.apply(steps)
            changed.update(steps)
            current = provider.observe()
        if not wait or all(provider.reached(observed, wanted) for observed in current.values()):
            break
        if clock() - started >= limit:
            timed_out = True
            break
        sleep(min(provider.poll_seconds, max(0.0, limit - (clock() - started))))
        current = provider.observe()
    reports = [TargetReport(target=key[1], place=key[0], state_before=before[key].state, state=current[key].state,
                            detail=current[key].detail, changed=key in changed,
                            reached=provider.reached(current[key], wanted))
               for key in before]
    return Outcome(reports, round(clock() - started, 1) if wait and not check_mode else 0.0, timed_out, limit)


def timeout_message(outcome: Outcome, wanted: str, place_key: str) -> str:
    """Which targets did not reach ``wanted`` in time, and the state each was last seen in."""
    goal = "registered and healthy" if wanted == REGISTERED else "deregistered and drained"
    late = [report for report in outcome.reports if not report.reached]
    where = place_key.replace("_", " ")
    lines = "; ".join(f"{report.target} ({where} {report.place}): {report.state}"
                      + (f" ({report.detail})" if report.detail else "") for report in late)
    return (f"{len(late)} of {len(outcome.reports)} targets did not become {goal} within "
            f"{outcome.limit_seconds:g} s; last seen: {lines}")


def state_diff(outcome: Outcome, provider: Provider, wanted: str, wait: bool, check_mode: bool) -> dict[str, str]:
    """Before/after text per target; in check mode "after" is the state each changed target would end in."""
    def line(report: TargetReport, state: str) -> str:
        return f"{report.target} ({provider.place_key.replace('_', ' ')} {report.place}): {state}\n"

    expected = provider.expected_state(wanted, wait)
    return {
        "before": "".join(line(report, report.state_before) for report in outcome.reports),
        "after": "".join(line(report, expected if check_mode and report.changed else report.state)
                         for report in outcome.reports),
    }


def unique(items: Iterable[str]) -> list[str]:
    """``items`` without repeats, in their first order."""
    return list(dict.fromkeys(items))


# --- HAProxy runtime API --------------------------------------------------------------------------------------

# `show servers state`: srv_op_state values and srv_admin_state bits (haproxy include/haproxy/server-t.h).
SRV_ST_RUNNING = 2
SRV_ADMF_MAINT = 0x23  # forced, inherited, or by a resolution failure
SRV_ADMF_DRAIN = 0x18  # forced or inherited
CHK_ST_ENABLED = 0x04
CHK_RES_PASSED = (3, 4)  # passed, or passed conditionally (http-check disable-on-404)


# The characters HAProxy allows in proxy and server names (haproxy src/tools.c invalid_char()): nothing that could
# end a runtime API command (';', a newline) or add an argument (a space).
HAPROXY_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def check_haproxy_names(backend: str, servers: Iterable[str]) -> None:
    """Refuse a backend or server name HAProxy could not have, before any command is sent."""
    for kind, name in [("backend", backend)] + [("server", server) for server in servers]:
        if not HAPROXY_NAME.fullmatch(name):
            raise TrafficError(f"HAProxy {kind} name {name!r} is not a name HAProxy allows: use only letters, digits "
                               "and '-', '_', '.', ':' (the name of the backend in haproxy.cfg, and each server's "
                               "codedeploy_haproxy_server or inventory name)")


def parse_runtime_api_address(address: str) -> tuple[int, Any]:
    """``(socket family, address)`` of a unix socket path or a ``host:port`` / ``[ipv6]:port`` address."""
    if "/" in address:
        return socket.AF_UNIX, address
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<port>\d+)|(?P<host>[^:\[\]]+):(?P<port4>\d+)", address)
    if not match:
        raise TrafficError(f"haproxy_socket {address!r} is neither a unix socket path nor host:port "
                           "(for example /run/haproxy/admin.sock or 127.0.0.1:9999)")
    if match.group("v6"):
        return socket.AF_INET6, (match.group("v6"), int(match.group("port")))
    return socket.AF_INET, (match.group("host"), int(match.group("port4")))


class RuntimeApi:
    """HAProxy's runtime API, one command per connection (its non-interactive mode)."""

    def __init__(self, address: str, timeout: float = RUNTIME_API_TIMEOUT_SECONDS) -> None:
        self.address = address
        self.family, self.target = parse_runtime_api_address(address)
        self.timeout = timeout

    def query(self, command: str) -> str:
        """The runtime API's whole answer to ``command``; a refusal for the socket's level is an error."""
        answer = self._exchange(command)
        if answer.startswith("Permission denied"):
            raise TrafficError(
                f"the HAProxy runtime API at {self.address} refused `{command}`: Permission denied. The socket's "
                f"level is too low: give it `level admin` in haproxy.cfg: `{self.config_line()}`")
        return answer

    def _exchange(self, command: str) -> str:
        if any(separator in command for separator in ";\r\n"):
            # One command per connection: a separator would smuggle a second one in.
            raise TrafficError(f"refusing to send {command!r} to the HAProxy runtime API: it holds a command "
                               "separator (';' or a newline)")
        try:
            if self.family == socket.AF_UNIX:
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.settimeout(self.timeout)
                connection.connect(self.target)
            else:
                connection = socket.create_connection(self.target, timeout=self.timeout)
            with connection:
                connection.sendall(command.encode() + b"\n")
                chunks = []
                while True:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError as error:
            raise TrafficError(
                f"cannot reach the HAProxy runtime API at {self.address}: {error}. Enable it in the global "
                f"section of haproxy.cfg (`{self.config_line()}`), and check that this user may open it"
            ) from None
        return b"".join(chunks).decode("utf-8", "replace")

    def config_line(self) -> str:
        """The haproxy.cfg line that opens this address with the level the module needs."""
        if self.family == socket.AF_UNIX:
            return f"stats socket {self.address} mode 660 level admin"
        host, port = self.target
        address = f"ipv6@[{host}]:{port}" if self.family == socket.AF_INET6 else f"ipv4@{host}:{port}"
        return f"stats socket {address} level admin"

    def admin(self, command: str) -> None:
        """Run a command that answers nothing on success; anything else is its error."""
        answer = self.query(command).strip()
        if answer:
            raise TrafficError(f"HAProxy runtime API at {self.address}: `{command}` failed: {answer}")


@dataclass(frozen=True)
class HaproxyServer:
    """One server of a backend, as `show servers state` and `show stat` report it."""

    name: str
    status: str  # `show stat` status as HAProxy shows it: UP, DOWN, MAINT, DRAIN, DOWN 1/2, no check, ...
    admin: str  # ready | drain | maint
    running: bool  # operational state RUNNING (not stopped, starting or stopping)
    checked: bool  # health checks enabled
    check_passed: bool  # the last health check passed
    sessions: int  # current sessions plus queued requests
    check_desc: str  # the last check's result, e.g. "Layer7 wrong status"
    check_code: str  # its code, e.g. the HTTP status

    @property
    def state(self) -> str:
        return self.status

    @property
    def detail(self) -> str:
        code = f" ({self.check_code})" if self.check_code else ""
        check = f", check: {self.check_desc}{code}" if self.checked and self.check_desc else ""
        return f"{self.admin}, {self.sessions} sessions{check}"

    @property
    def healthy(self) -> bool:
        return self.running and (not self.checked or self.check_passed)


def parse_servers_state(text: str) -> dict[str, dict[str, str]]:
    """`show servers state <backend>` -> {server name: {column: value}}."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((line[1:].split() for line in lines if line.startswith("#")), None)
    if header is None:
        raise TrafficError(f"unexpected answer to `show servers state`: {text.strip()[:200]!r}")
    rows = (dict(zip(header, line.split())) for line in lines if not line.startswith("#") and " " in line)
    return {row["srv_name"]: row for row in rows}


def parse_show_stat(text: str) -> dict[str, dict[str, str]]:
    """`show stat <backend> 4 -1` CSV -> {server name: {column: value}}."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise TrafficError(f"unexpected answer to `show stat`: {text.strip()[:200]!r}")
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *[line for line in lines[1:] if line]])))
    return {row["svname"]: row for row in reader if row.get("svname") not in (None, "FRONTEND", "BACKEND")}


def haproxy_server(name: str, state_row: dict[str, str], stat_row: dict[str, str]) -> HaproxyServer:
    admin_bits = int(state_row["srv_admin_state"])
    admin = "maint" if admin_bits & SRV_ADMF_MAINT else "drain" if admin_bits & SRV_ADMF_DRAIN else "ready"
    return HaproxyServer(
        name=name,
        status=stat_row.get("status", ""),
        admin=admin,
        running=int(state_row["srv_op_state"]) == SRV_ST_RUNNING,
        checked=bool(int(state_row["srv_check_state"]) & CHK_ST_ENABLED),
        check_passed=int(state_row["srv_check_result"]) in CHK_RES_PASSED,
        sessions=int(stat_row.get("scur") or 0) + int(stat_row.get("qcur") or 0),
        check_desc=stat_row.get("check_desc", ""),
        check_code=stat_row.get("check_code", ""),
    )


def haproxy_next_steps(server: HaproxyServer, wanted: str) -> Steps:
    """The `set server` actions ``server`` needs now to move towards ``wanted``."""
    if wanted == REGISTERED:
        if server.admin == "maint":
            # Leaving maint straight to ready counts the server UP before any check ran; through drain (no
            # traffic) and a forced DOWN it must pass `rise` checks first.
            return ("state drain", "health down", "state ready") if server.checked else ("state ready",)
        return ("state ready",) if server.admin == "drain" else ()
    if server.admin == "ready":
        return ("state drain",)
    if server.admin == "drain" and server.sessions == 0:
        return ("state maint",)
    return ()


def haproxy_reached(server: HaproxyServer, wanted: str) -> bool:
    if wanted == REGISTERED:
        return server.admin == "ready" and server.healthy
    return server.admin == "maint" and server.sessions == 0


class HaproxyBackend:
    """Servers of one HAProxy backend, through the runtime API."""

    place_key = "backend"
    poll_seconds = HAPROXY_POLL_SECONDS

    def __init__(self, api: RuntimeApi, backend: str, servers: Sequence[str]) -> None:
        check_haproxy_names(backend, servers)
        self.api = api
        self.backend = backend
        self.servers = unique(servers)

    def observe(self) -> dict[tuple[str, str], HaproxyServer]:
        states_text = self.api.query(f"show servers state {self.backend}")
        if states_text.startswith("Can't find backend"):
            raise TrafficError(f"HAProxy has no backend {self.backend!r}; its backends: "
                               f"{', '.join(self.backends()) or 'none'}")
        states = parse_servers_state(states_text)
        stats = parse_show_stat(self.api.query(f"show stat {self.backend} 4 -1"))
        missing = [name for name in self.servers if name not in states]
        if missing:
            raise TrafficError(f"no server {', '.join(missing)} in HAProxy backend {self.backend!r}; its servers: "
                               f"{', '.join(states) or 'none'}")
        return {(self.backend, name): haproxy_server(name, states[name], stats.get(name, {}))
                for name in self.servers}

    def backends(self) -> list[str]:
        lines = self.api.query("show backend").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def next_steps(self, observed: HaproxyServer, wanted: str) -> Steps:
        return haproxy_next_steps(observed, wanted)

    def apply(self, steps: dict[tuple[str, str], Steps]) -> None:
        for (backend, server), actions in steps.items():
            for action in actions:
                self.api.admin(f"set server {backend}/{server} {action}")

    def reached(self, observed: HaproxyServer, wanted: str) -> bool:
        return haproxy_reached(observed, wanted)

    def wait_limit(self, wanted: str, wait_timeout: float) -> float:
        return wait_timeout

    def expected_state(self, wanted: str, wait: bool) -> str:
        if wanted == REGISTERED:
            return "UP"
        return "MAINT" if wait else "DRAIN"


# --- ELBv2 target groups ---------------------------------------------------------------------------------------

UNREGISTERED = "unregistered"  # not listed by describe_target_health: what ELB calls unused/Target.NotRegistered


@dataclass(frozen=True)
class Elbv2Target:
    id: str
    port: Optional[int]  # None: the target group's port


def parse_elbv2_target(text: str) -> Elbv2Target:
    """``i-0abc``, ``i-0abc:8080``, ``10.0.0.5:8080`` or ``[2001:db8::5]:8080`` (IP targets)."""
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\](?::(?P<v6port>\d+))?|(?P<id>[^:\[\]\s]+)(?::(?P<port>\d+))?",
                         text.strip())
    if not match:
        raise TrafficError(f"target {text!r} is not an instance ID or IP, optionally with :port "
                           "(i-0abc, i-0abc:8080, [2001:db8::5]:8080)")
    port = match.group("v6port") or match.group("port")
    return Elbv2Target(match.group("v6") or match.group("id"), int(port) if port else None)


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    port: Optional[int]
    deregistration_delay: int


@dataclass(frozen=True)
class Elbv2Health:
    state: str  # healthy, unhealthy, initial, draining, unused, unavailable, or unregistered
    detail: str


def resolve_target_groups(client: Any, names_or_arns: Sequence[str]) -> list[TargetGroup]:
    """Each target group by name or ARN, with its port and deregistration delay; unknown ones are an error."""
    found: list[dict[str, Any]] = []
    unknown: list[str] = []
    for name_or_arn in unique(names_or_arns):
        query = {"TargetGroupArns": [name_or_arn]} if name_or_arn.startswith("arn:") else {"Names": [name_or_arn]}
        try:
            found.extend(client.describe_target_groups(**query)["TargetGroups"])
        except client.exceptions.TargetGroupNotFoundException:
            unknown.append(name_or_arn)
    if unknown:
        raise TrafficError(unknown_target_groups_message(unknown, all_target_groups(client),
                                                         client.meta.region_name))
    return [TargetGroup(arn=group["TargetGroupArn"], name=group["TargetGroupName"], port=group.get("Port"),
                        deregistration_delay=deregistration_delay(client, group["TargetGroupArn"]))
            for group in found]


def all_target_groups(client: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator("describe_target_groups").paginate()
    return [group for page in pages for group in page["TargetGroups"]]


def unknown_target_groups_message(unknown: Sequence[str], existing: Sequence[dict[str, Any]], region: str) -> str:
    names = sorted(group["TargetGroupName"] for group in existing)
    arns = [group["TargetGroupArn"] for group in existing]
    hints = []
    for name_or_arn in unknown:
        close = difflib.get_close_matches(name_or_arn, arns if name_or_arn.startswith("arn:") else names, n=3)
        hints.append(f"{name_or_arn}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    listing = f"the target groups there: {', '.join(names)}" if names else "there are no target groups there"
    return f"target group not found in {region}: {'; '.join(hints)}; {listing}"


def deregistration_delay(client: Any, arn: str) -> int:
    attributes = client.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    values = {attribute["Key"]: attribute["Value"] for attribute in attributes}
    return int(values.get("deregistration_delay.timeout_seconds", 300))


def elbv2_next_steps(health: Elbv2Health, wanted: str) -> Steps:
    if wanted == REGISTERED:
        return ("register",) if health.state in (UNREGISTERED, "draining") else ()
    return ("deregister",) if health.state not in (UNREGISTERED, "draining") else ()


def elbv2_reached(health: Elbv2Health, wanted: str) -> bool:
    return health.state == ("healthy" if wanted == REGISTERED else UNREGISTERED)


class Elbv2TargetGroups:
    """Targets in ELBv2 target groups, through a boto3 ``elbv2`` client (one call per group and action)."""

    place_key = "target_group"
    poll_seconds = ELBV2_POLL_SECONDS

    def __init__(self, client: Any, groups: Sequence[TargetGroup], targets: Sequence[str]) -> None:
        self.client = client
        self.groups = {group.name: group for group in groups}
        self.targets = {label: parse_elbv2_target(label) for label in unique(targets)}

    def registration(self, group: TargetGroup, target: Elbv2Target) -> dict[str, Any]:
        port = target.port if target.port is not None else group.port
        return {"Id": target.id, "Port": port} if port is not None else {"Id": target.id}

    def observe(self) -> dict[tuple[str, str], Elbv2Health]:
        observed = {}
        for group in self.groups.values():
            listed = {}
            for description in self.client.describe_target_health(TargetGroupArn=group.arn)[
                    "TargetHealthDescriptions"]:
                target, health = description["Target"], description["TargetHealth"]
                reason = ": ".join(part for part in (health.get("Reason"), health.get("Description")) if part)
                listed[(target["Id"], target.get("Port"))] = Elbv2Health(health["State"], reason)
            for label, target in self.targets.items():
                key = tuple(self.registration(group, target).get(field) for field in ("Id", "Port"))
                observed[(group.name, label)] = listed.get(key, Elbv2Health(UNREGISTERED, ""))
        return observed

    def next_steps(self, observed: Elbv2Health, wanted: str) -> Steps:
        return elbv2_next_steps(observed, wanted)

    def apply(self, steps: dict[tuple[str, str], Steps]) -> None:
        calls: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (group_name, label), actions in steps.items():
            group = self.groups[group_name]
            for action in actions:
                calls.setdefault((group_name, action), []).append(self.registration(group, self.targets[label]))
        for (group_name, action), registrations in calls.items():
            call = self.client.register_targets if action == "register" else self.client.deregister_targets
            call(TargetGroupArn=self.groups[group_name].arn, Targets=registrations)

    def reached(self, observed: Elbv2Health, wanted: str) -> bool:
        return elbv2_reached(observed, wanted)

    def wait_limit(self, wanted: str, wait_timeout: float) -> float:
        if wanted == REGISTERED:
            return wait_timeout
        longest_delay = max(group.deregistration_delay for group in self.groups.values())
        return min(wait_timeout, longest_delay + ELBV2_DRAIN_MARGIN_SECONDS)

    def expected_state(self, wanted: str, wait: bool) -> str:
        return "healthy" if wanted == REGISTERED else UNREGISTERED


# --- opening a provider ---------------------------------------------------------------------------------------

def open_provider(provider: str, targets: Sequence[str], target_groups: Optional[Sequence[str]] = None,
                  haproxy_socket: Optional[str] = None, haproxy_backend: Optional[str] = None,
                  aws: Optional[dict[str, Any]] = None) -> Provider:
    """The provider for ``targets``: an HAProxy backend through its runtime API, or ELBv2 target groups."""
    if provider == "haproxy":
        return HaproxyBackend(RuntimeApi(haproxy_socket or ""), haproxy_backend or "", targets)
    client = aws_client_from_options("elbv2", aws)
    return Elbv2TargetGroups(client, resolve_target_groups(client, target_groups or []), targets)


def check_load_balancer_info(info: Optional[dict[str, Any]]) -> Optional[str]:
    """The provider a deployment group's load balancer (the role's ``codedeploy_load_balancer_info``) uses, or None
    without one; an unusable description is an error before any instance is touched."""
    if not info:
        return None
    if info.get("classic_load_balancers"):
        raise TrafficError(
            f"codedeploy_load_balancer_info names Classic Load Balancers ({', '.join(info['classic_load_balancers'])}),"
            " which traffic control does not support: use ELBv2 target_groups or an haproxy backend")
    haproxy = info.get("haproxy")
    if haproxy and info.get("target_groups"):
        raise TrafficError("codedeploy_load_balancer_info gives both target_groups and haproxy: choose one")
    if haproxy:
        missing = [key for key in ("socket", "backend") if not haproxy.get(key)]
        if missing:
            raise TrafficError(f"codedeploy_load_balancer_info.haproxy needs {' and '.join(missing)}, e.g. "
                               "{socket: /run/haproxy/admin.sock, backend: webapp}")
        check_haproxy_names(str(haproxy["backend"]), ())
        return "haproxy"
    if info.get("target_groups"):
        return "elbv2"
    raise TrafficError("codedeploy_load_balancer_info needs target_groups: [names or ARNs] or "
                       "haproxy: {socket, backend}")


def load_balancer_provider(info: dict[str, Any], targets: Sequence[str],
                           aws: Optional[dict[str, Any]] = None) -> Provider:
    """The provider of a deployment group's load balancer, for instances (EC2 IDs or HAProxy server names)."""
    if check_load_balancer_info(info) == "haproxy":
        return open_provider("haproxy", targets, haproxy_socket=info["haproxy"]["socket"],
                             haproxy_backend=info["haproxy"]["backend"])
    return open_provider("elbv2", targets, target_groups=info["target_groups"], aws=aws)


def load_balancer_target(info: dict[str, Any], host_vars: dict[str, Any], inventory_name: str) -> str:
    """An instance's target: its ``codedeploy_haproxy_server`` (HAProxy) or ``codedeploy_instance_id`` (ELBv2) host
    variable, else its inventory name."""
    variable = "codedeploy_haproxy_server" if (info or {}).get("haproxy") else "codedeploy_instance_id"
    return str(host_vars.get(variable) or inventory_name)


def verify_load_balancer(info: dict[str, Any], targets: Sequence[str], aws: Optional[dict[str, Any]] = None) -> None:
    """Before any instance is touched: the target groups exist, or the HAProxy runtime API answers and its backend
    has a server for every instance."""
    load_balancer_provider(info, targets, aws).observe()


def outcome_summary(outcome: Outcome, place_key: str) -> str:
    """One line for the lifecycle event's diagnostics: where each target went, and how long it took."""
    where = place_key.replace("_", " ")
    states = "; ".join(f"{report.target} ({where} {report.place}): {report.state_before} -> {report.state}"
                       for report in outcome.reports)
    return f"{states} ({outcome.waited_seconds:g} s)"
