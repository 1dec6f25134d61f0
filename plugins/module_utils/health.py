# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CodeDeploy service's deployment configurations and minimum-healthy-hosts model, as pure functions.

N is the number of instances in the deployment, M the minimum number that must stay healthy, F the number that
failed so far. A deployment runs in waves of N - M instances (Ansible ``serial`` batches); at the start of a wave
only N - F - M instances may start, the rest of the wave is deferred to a final one-at-a-time pass, so the number
of healthy instances never drops below M. After each wave: stop when work is pending and N - F <= M.
"""
from __future__ import annotations

import math
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


def resolve_minimum_healthy_hosts(config_name: Optional[str], custom: Optional[dict]) -> tuple[str, MinimumHealthyHosts]:
    """The configuration's name and minimum: a predefined name, or a custom ``{type, value}``."""
    if custom:
        kind = custom.get("type")
        value = custom.get("value")
        if kind not in (HOST_COUNT, FLEET_PERCENT):
            raise DeploymentConfigError(
                f"minimum_healthy_hosts.type must be HOST_COUNT or FLEET_PERCENT, not {kind!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DeploymentConfigError(
                f"minimum_healthy_hosts.value must be a whole number of 0 or more, not {value!r}")
        if kind == FLEET_PERCENT and value >= 100:
            raise DeploymentConfigError(
                f"minimum_healthy_hosts.value {value} is not a valid FLEET_PERCENT: use 0 to 99 (0 deploys to all "
                "instances at once)")
        return config_name or f"Custom.{kind}.{value}", MinimumHealthyHosts(kind, value)
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


# Order of instances (service-semantics 1.4): unhealthy first, then unknown revision, old, current.
HEALTH_ORDER = {"Unhealthy": 0, "Unknown": 1, "Old": 2, "Current": 3}


def order_instances(names: Sequence[str], health: dict[str, str], explicit: Optional[Sequence[str]] = None
                    ) -> list[str]:
    """Instances in deployment order: ``explicit`` first (in its order), then by health rank, stable."""
    explicit = [name for name in (explicit or []) if name in names]
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
