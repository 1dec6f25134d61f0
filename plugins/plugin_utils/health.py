# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CodeDeploy service's deployment configurations and minimum-healthy-hosts model, as pure functions.

N is the number of instances in the deployment, M the minimum number that must stay healthy, F the number that
failed so far. A deployment runs in waves of N - M instances (Ansible ``serial`` batches); at the start of a wave
only N - F - M instances may start, the rest of the wave is deferred to a final one-at-a-time pass, so the number
of healthy instances never drops below M. After each wave: stop when work is pending and N - F <= M.

With a zonal configuration every Availability Zone z is also a sub-fleet with its own Nz, Fz and minimum Mz: zones
are deployed one after the other, a wave never spans two zones, and both N - F - M and Nz - Fz - Mz limit who
starts.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Sequence

ONE_AT_A_TIME = "ONE_AT_A_TIME"
HOST_COUNT = "HOST_COUNT"
FLEET_PERCENT = "FLEET_PERCENT"

PREDEFINED_CONFIGS = {
    "CodeDeployDefault.OneAtATime": (ONE_AT_A_TIME, 1),
    "CodeDeployDefault.HalfAtATime": (FLEET_PERCENT, 50),
    "CodeDeployDefault.AllAtOnce": (HOST_COUNT, 0),
}
DEFAULT_CONFIG_NAME = "CodeDeployDefault.OneAtATime"
PREDEFINED_PREFIX = "CodeDeployDefault."

MSG_HEALTH_CONSTRAINTS = (
    "The overall deployment failed because too many individual instances failed deployment, too few healthy "
    "instances are available for deployment, or some instances in your deployment group are experiencing problems.")
MSG_NO_INSTANCES = (
    "The deployment failed because no instances were found for your deployment group. Check your deployment group "
    "settings to make sure the tags for your EC2 instances or Auto Scaling groups correctly identify the instances "
    "you want to deploy to, and then try again.")


class DeploymentConfigError(ValueError):
    """A deployment configuration that cannot be used; the message says which value and what is allowed."""


@dataclass(frozen=True)
class MinimumHealthyHosts:
    type: str
    value: int

    def count(self, instances: int) -> int:
        """M for a deployment of ``instances``: FLEET_PERCENT rounds up, OneAtATime keeps all but one healthy."""
        if self.type == ONE_AT_A_TIME:
            return max(instances - 1, 0)
        if self.type == FLEET_PERCENT:
            return math.ceil(instances * self.value / 100)
        return self.value


@dataclass(frozen=True)
class StartRefusal:
    code: str
    message: str


def parse_minimum(custom, name: str = "minimum_healthy_hosts") -> MinimumHealthyHosts:
    """A custom ``{type: HOST_COUNT|FLEET_PERCENT, value}``; ``name`` is how error messages call it."""
    if not isinstance(custom, Mapping):
        raise DeploymentConfigError(f"{name} must be a dict {{type: HOST_COUNT|FLEET_PERCENT, value}}, not {custom!r}")
    unknown = sorted(set(custom) - {"type", "value"})
    if unknown:
        raise DeploymentConfigError(f"{name} has unknown key(s) {', '.join(unknown)}: use type and value")
    kind = custom.get("type")
    value = custom.get("value")
    if kind not in (HOST_COUNT, FLEET_PERCENT):
        raise DeploymentConfigError(f"{name}.type must be HOST_COUNT or FLEET_PERCENT, not {kind!r}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DeploymentConfigError(f"{name}.value must be a whole number of 0 or more, not {value!r}")
    if kind == FLEET_PERCENT and value >= 100:
        raise DeploymentConfigError(
            f"{name}.value {value} is not a valid FLEET_PERCENT: use 0 to 99 (0 deploys to all instances at once)")
    return MinimumHealthyHosts(kind, value)


def resolve_minimum_healthy_hosts(config_name: Optional[str], custom: Optional[dict]) -> tuple[str, MinimumHealthyHosts]:
    """The configuration's name and minimum: a predefined name, or a custom ``{type, value}``."""
    if custom:
        minimum = parse_minimum(custom)
        if config_name and config_name.startswith(PREDEFINED_PREFIX):
            # The service keeps these names for its own configurations: a record naming one with another minimum
            # would say one thing and do another.
            raise DeploymentConfigError(
                f"deployment configuration {config_name!r} is predefined, its minimum healthy hosts fixed: a custom "
                f"minimum_healthy_hosts needs a configuration name of its own (not {PREDEFINED_PREFIX}*), or none "
                f"(Custom.{minimum.type}.{minimum.value})")
        return config_name or f"Custom.{minimum.type}.{minimum.value}", minimum
    name = config_name or DEFAULT_CONFIG_NAME
    if name not in PREDEFINED_CONFIGS:
        raise DeploymentConfigError(
            f"unknown deployment configuration {name!r}: use one of {', '.join(PREDEFINED_CONFIGS)}, or give "
            "minimum_healthy_hosts {type: HOST_COUNT|FLEET_PERCENT, value}")
    kind, value = PREDEFINED_CONFIGS[name]
    return name, MinimumHealthyHosts(kind, value)


def refuse_start(instances: int, minimum: int, config_name: str) -> Optional[StartRefusal]:
    """Why a deployment cannot start (nothing touched), or None."""
    if instances == 0:
        return StartRefusal("NO_INSTANCES", MSG_NO_INSTANCES)
    if instances <= minimum:
        return StartRefusal(
            "HEALTH_CONSTRAINTS_INVALID",
            f"The deployment can't start because the minimum number of healthy instances required by {config_name} "
            f"({minimum}) is not available: the deployment group has {instances} instance(s), and at least one must "
            "be taken out of service to deploy. Lower the minimum healthy hosts or add instances.")
    return None


def wave_size(instances: int, minimum: int) -> int:
    return max(instances - minimum, 1)


def instances_allowed_to_start(instances: int, minimum: int, failed: int) -> int:
    """How many more instances may be taken out of service now without dropping below the minimum."""
    return max(instances - failed - minimum, 0)


def split_wave(batch: Sequence[str], instances: int, minimum: int, failed: int) -> tuple[list[str], list[str]]:
    """(instances that start now, instances deferred to the final one-at-a-time pass)."""
    allowed = instances_allowed_to_start(instances, minimum, failed)
    return list(batch[:allowed]), list(batch[allowed:])


def must_stop(instances: int, minimum: int, failed: int, pending: int) -> bool:
    """After instances finish: stop launching when work is pending and the healthy count is at the minimum."""
    return pending > 0 and instances - failed <= minimum


def final_status(minimum: int, succeeded: int) -> str:
    return "Succeeded" if succeeded >= minimum and succeeded >= 1 else "Failed"


# Order of instances (docs/codedeploy-service.md, 1.5): unhealthy first, then unknown revision, old, current.
HEALTH_ORDER = {"Unhealthy": 0, "Unknown": 1, "Old": 2, "Current": 3}


def order_instances(names: Sequence[str], health: dict[str, str], explicit: Optional[Sequence[str]] = None
                    ) -> list[str]:
    """Instances in deployment order: ``explicit`` first (in its order), then by health rank, stable."""
    # A name listed twice is one instance: counted twice, it would inflate N and a zone's Nz and shift the waves.
    explicit = list(dict.fromkeys(name for name in (explicit or []) if name in names))
    rest = [name for name in names if name not in explicit]
    return explicit + sorted(rest, key=lambda name: HEALTH_ORDER.get(health.get(name, "Unknown"), 1))


def instance_health(last_deployment_succeeded: Optional[bool], revision: Optional[str],
                    group_revision: Optional[str]) -> str:
    """The persistent health class of an instance, from what its host recorded."""
    if last_deployment_succeeded is None or last_deployment_succeeded is False:
        return "Unhealthy"
    if revision is None:
        return "Unknown"
    return "Current" if revision == group_revision else "Old"


# ----- zonal configuration (docs/codedeploy-service.md, 1.6) ----------------------------------------------------------
ZONAL_CONFIG_KEYS = ("minimum_healthy_hosts_per_zone", "monitor_duration_in_seconds",
                     "first_zone_monitor_duration_in_seconds")
# The service's default per-zone minimum: 0 percent.
NO_MINIMUM_PER_ZONE = MinimumHealthyHosts(FLEET_PERCENT, 0)


@dataclass(frozen=True)
class ZonalConfig:
    minimum_per_zone: MinimumHealthyHosts
    monitor_duration: int
    first_zone_monitor_duration: int


@dataclass(frozen=True)
class Zone:
    """One Availability Zone of a deployment: its instances in deployment order and its minimum Mz."""

    name: str  # "" for the hosts without a zone
    instances: tuple
    minimum: int


def resolve_zonal_config(config) -> Optional[ZonalConfig]:
    """The zonal configuration, or None when there is none (an empty or null value)."""
    if not config:
        return None
    if not isinstance(config, Mapping):
        raise DeploymentConfigError(
            f"zonal_config must be a dict {{{', '.join(ZONAL_CONFIG_KEYS)}}}, not {config!r}")
    unknown = sorted(set(config) - set(ZONAL_CONFIG_KEYS))
    if unknown:
        raise DeploymentConfigError(
            f"zonal_config has unknown key(s) {', '.join(unknown)}: use {', '.join(ZONAL_CONFIG_KEYS)}")
    per_zone = config.get("minimum_healthy_hosts_per_zone")
    minimum = NO_MINIMUM_PER_ZONE if per_zone is None else parse_minimum(
        per_zone, "zonal_config.minimum_healthy_hosts_per_zone")
    monitor = _duration(config, "monitor_duration_in_seconds", 0)
    return ZonalConfig(minimum, monitor, _duration(config, "first_zone_monitor_duration_in_seconds", monitor))


def _duration(config: Mapping, key: str, default: int) -> int:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DeploymentConfigError(f"zonal_config.{key} must be a whole number of seconds, 0 or more, not {value!r}")
    return value


def plan_zones(order: Sequence[str], zone_of: Mapping[str, Optional[str]], minimum_per_zone: MinimumHealthyHosts
               ) -> list[Zone]:
    """The instances grouped by zone, in deployment order within each zone; zones sorted by name, the hosts
    without a zone last, as one unnamed zone. Mz rounds up like the global minimum."""
    members: dict[str, list[str]] = {}
    for name in order:
        members.setdefault(zone_of.get(name) or "", []).append(name)
    names = sorted(members, key=lambda zone: (zone == "", zone))
    return [Zone(zone, tuple(members[zone]), minimum_per_zone.count(len(members[zone]))) for zone in names]


def zone_label(name: str) -> str:
    return name or "(no zone)"


def refuse_zones(zones: Sequence[Zone]) -> Optional[StartRefusal]:
    """A zone whose minimum leaves no instance to take out of service can never be deployed: refuse at start."""
    for zone in zones:
        if len(zone.instances) <= zone.minimum:
            return StartRefusal(
                "HEALTH_CONSTRAINTS_INVALID",
                f"The deployment can't start because the minimum number of healthy instances per zone "
                f"({zone.minimum}) is not available in zone {zone_label(zone.name)}: it has {len(zone.instances)} "
                "instance(s), and at least one must be taken out of service to deploy. Lower "
                "minimum_healthy_hosts_per_zone or add instances to the zone.")
    return None


def batch_sizes(instances: int, size: int) -> list[int]:
    """Ansible ``serial`` batch sizes that take ``instances`` in waves of ``size``."""
    return [min(size, instances - start) for start in range(0, instances, size)]


def zonal_batch_sizes(zones: Sequence[Zone], size: int) -> list[int]:
    """Waves zone after zone, none spanning two zones: N - M capped at Nz - Mz within each zone."""
    sizes: list[int] = []
    for zone in zones:
        sizes += batch_sizes(len(zone.instances), max(min(size, len(zone.instances) - zone.minimum), 1))
    return sizes


def split_wave_by_zone(batch: Sequence[str], allowed: int, allowed_in_zone: Mapping[str, int],
                       zone_of: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(instances that start now, instances deferred): each start uses one of the ``allowed`` slots (N - F - M) and
    one of its zone's (Nz - Fz - Mz)."""
    left = dict(allowed_in_zone)
    started: list[str] = []
    deferred: list[str] = []
    for name in batch:
        zone = zone_of[name]
        if len(started) < allowed and left.get(zone, 0) > 0:
            started.append(name)
            left[zone] -= 1
        else:
            deferred.append(name)
    return started, deferred
