# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment groups as inventory: configuration checks, instance records, and the groups and host vars.

The ``fleetops.codedeploy.deployment_groups`` inventory plugin is a thin shell over this module:

* :func:`parse_applications`, :func:`parse_on_premises_instances`, :func:`parse_hostnames` check the
  configuration and raise :class:`InventoryConfigError` naming the key that is wrong;
* :func:`api_group_record` / :func:`group_from_api_record` turn a deployment group read from the CodeDeploy
  API into the same :class:`DeploymentGroupSpec` as one written in the configuration;
* :func:`ec2_instance_record` keeps what the inventory needs of a ``DescribeInstances`` instance (JSON-safe,
  so the raw data can be cached);
* :func:`plan_inventory` decides the hosts, their variables, and the groups with their variables.

Everything here is pure; the AWS reads (one ``DescribeInstances`` per region) are the plugin's.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping, Optional, Sequence

from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import KeyPathError
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import (
    DeploymentConfigError, resolve_minimum_healthy_hosts)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_ids import deployment_group_id
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.tag_filters import (
    KEY_AND_VALUE, TagFilter, TagFilterError, TagSelector, api_tag_selector, describe_instances_filters,
    parse_tag_filters, parse_tag_set)

# The tag EC2 Auto Scaling puts on every instance of a group (also on attached ones).
ASG_NAME_TAG = "aws:autoscaling:groupName"
# CodeDeploy targets running and stopped instances (stopped ones count as failed); terminated and
# shutting-down ones are not targets.
TARGET_STATES = ("pending", "running", "stopping", "stopped")
ON_PREMISES_STATE = "registered"
DEFAULT_GROUP_PREFIX = "codedeploy_"
# CodeDeploy's rule for application and deployment group names.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,100}$")

APPLICATION_KEYS = ("deployment_groups", "vars")
DEPLOYMENT_GROUP_KEYS = ("ec2_tag_filters", "ec2_tag_set", "on_premises_tag_filters", "on_premises_tag_set",
                         "auto_scaling_groups", "deployment_config_name", "minimum_healthy_hosts",
                         "deployment_group_id", "vars")
ON_PREMISES_KEYS = ("name", "address", "tags", "zone", "vars")

# hostnames: a DescribeInstances filter name (or tag:<Key>) -> the field of an instance record.
HOSTNAME_FIELDS = {
    "instance-id": "id",
    "private-ip-address": "private_ip_address",
    "ip-address": "public_ip_address",
    "private-dns-name": "private_dns_name",
    "dns-name": "public_dns_name",
}
DEFAULT_HOSTNAMES = ("instance-id",)
# ansible_host of an EC2 instance: the first of these it has (compose can set another).
# The host variable with each deployment group's inputs, on hosts in more than one (read by the deploy role).
SHARED_HOST_INPUTS = "codedeploy_deployment_group_inputs"
ANSIBLE_HOST_FIELDS = ("private_ip_address", "public_ip_address", "public_dns_name")


class InventoryConfigError(KeyPathError):
    """A configuration the plugin cannot use: ``where`` is the key path, ``message`` what is wrong and the fix."""


def sanitise_group_name(name: str) -> str:
    """The deploy role's rule for its default target group: anything not ``[A-Za-z0-9_]`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass(frozen=True)
class DeploymentGroupSpec:
    """One deployment group: what selects its instances, and the group variables the deploy role reads."""

    application: str
    name: str
    ec2: TagSelector = TagSelector()
    on_premises: TagSelector = TagSelector()
    auto_scaling_groups: tuple[str, ...] = ()
    group_vars: Mapping[str, Any] = field(default_factory=dict)
    # Set for groups read from the CodeDeploy API: their EC2 instances are in that region only.
    region: Optional[str] = None
    origin: str = "configuration"

    @cached_property
    def ec2_alternatives(self) -> list[TagSelector]:
        """Selectors of which any one selects an EC2 instance: the tags, and Auto Scaling group membership."""
        alternatives = [self.ec2] if self.ec2 else []
        if self.auto_scaling_groups:
            alternatives.append(TagSelector((tuple(TagFilter(KEY_AND_VALUE, ASG_NAME_TAG, name)
                                                   for name in self.auto_scaling_groups),)))
        return alternatives

    def selects_ec2(self, instance: Mapping[str, Any]) -> bool:
        if self.region is not None and instance["region"] != self.region:
            return False
        return any(selector.matches(instance["tags"]) for selector in self.ec2_alternatives)


@dataclass(frozen=True)
class OnPremisesInstance:
    name: str
    tags: Mapping[str, str]
    address: Optional[str] = None
    zone: Optional[str] = None
    host_vars: Mapping[str, Any] = field(default_factory=dict)


# ----- configuration ----------------------------------------------------------------------------------------
def _mapping(data: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InventoryConfigError(where, f"must be a mapping of {what}, not {_kind(data)}")
    return data


def _kind(data: Any) -> str:
    """What YAML wrote, in its words (Ansible's loader returns its own subclasses of list, str...)."""
    for kind, name in ((list, "a list"), (str, "a string"), (bool, "a boolean"), (int, "a number"),
                       (float, "a number")):
        if isinstance(data, kind):
            return name
    return "null" if data is None else type(data).__name__


def _check_keys(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise InventoryConfigError(f"{where}.{unknown[0]}", f"unknown key: use {', '.join(allowed)}")


def _check_name(name: Any, where: str, what: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InventoryConfigError(where, f"{name!r} is not a valid {what} name: 1 to 100 characters among "
                                          "letters, digits and + = , . @ _ -")
    return name


def _string_list(data: Any, where: str) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(isinstance(item, str) and item for item in data):
        raise InventoryConfigError(where, "must be a list of names")
    return tuple(data)


def parse_applications(data: Any, where: str = "applications") -> list[DeploymentGroupSpec]:
    """The ``applications`` option: ``{app: {deployment_groups: {group: {...}}, vars: {...}}}``."""
    specs = []
    for app, app_config in _mapping(data or {}, where, "application names to settings").items():
        app_where = f"{where}.{app}"
        _check_name(app, app_where, "CodeDeploy application")
        app_config = _mapping(app_config or {}, app_where, "deployment_groups and vars")
        _check_keys(app_config, APPLICATION_KEYS, app_where)
        groups = _mapping(app_config.get("deployment_groups") or {}, f"{app_where}.deployment_groups",
                          "deployment group names to settings")
        for name, group_config in groups.items():
            specs.append(parse_deployment_group(app, name, group_config,
                                                f"{app_where}.deployment_groups.{name}"))
    return specs


def application_vars(data: Any) -> dict[str, dict[str, Any]]:
    """The ``vars`` of each application in ``applications`` (checked by :func:`parse_applications`)."""
    return {app: dict(config["vars"]) for app, config in (data or {}).items()
            if isinstance(config, Mapping) and config.get("vars")}


def parse_deployment_group(app: str, name: Any, data: Any, where: str) -> DeploymentGroupSpec:
    _check_name(name, where, "CodeDeploy deployment group")
    data = _mapping(data or {}, where, "deployment group settings")
    _check_keys(data, DEPLOYMENT_GROUP_KEYS, where)
    try:
        ec2 = _selector(data, "ec2_tag_filters", "ec2_tag_set", "InvalidEC2TagCombinationException", where)
        on_premises = _selector(data, "on_premises_tag_filters", "on_premises_tag_set",
                                "InvalidOnPremisesTagCombinationException", where)
    except TagFilterError as error:
        raise InventoryConfigError(error.where, error.message) from None
    asgs = _string_list(data["auto_scaling_groups"], f"{where}.auto_scaling_groups") \
        if data.get("auto_scaling_groups") is not None else ()
    group_vars: dict[str, Any] = {"codedeploy_application_name": app, "codedeploy_deployment_group_name": name,
                                  "codedeploy_deployment_group_id": _group_id(app, name, data, where)}
    if asgs:
        group_vars["codedeploy_auto_scaling_groups"] = list(asgs)
    group_vars.update(_deployment_config_vars(data, where))
    group_vars.update(_mapping(data.get("vars") or {}, f"{where}.vars", "variable names to values"))
    return DeploymentGroupSpec(app, name, ec2, on_premises, asgs, group_vars)


def _selector(data: Mapping[str, Any], filters_key: str, set_key: str, service_error: str,
              where: str) -> TagSelector:
    if data.get(filters_key) is not None and data.get(set_key) is not None:
        raise InventoryConfigError(f"{where}.{set_key}", f"cannot be used together with {filters_key} (the "
                                                         f"service's {service_error}): keep one of them")
    if data.get(set_key) is not None:
        return parse_tag_set(data[set_key], f"{where}.{set_key}")
    if data.get(filters_key) is not None:
        return parse_tag_filters(data[filters_key], f"{where}.{filters_key}")
    return TagSelector()


def _group_id(app: str, name: str, data: Mapping[str, Any], where: str) -> str:
    given = data.get("deployment_group_id")
    if given is None:
        return deployment_group_id(app, name)
    try:
        return str(uuid.UUID(str(given)))
    except ValueError:
        raise InventoryConfigError(f"{where}.deployment_group_id",
                                   f"{given!r} is not a UUID, e.g. 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d") from None


def _deployment_config_vars(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The deployment configuration, checked now so that a typo fails the inventory, not the deployment."""
    name, custom = data.get("deployment_config_name"), data.get("minimum_healthy_hosts")
    if name is None and custom is None:
        return {}
    if custom is not None and not isinstance(custom, Mapping):
        raise InventoryConfigError(f"{where}.minimum_healthy_hosts", "must be a mapping {type, value}")
    try:
        resolve_minimum_healthy_hosts(name, custom)
    except DeploymentConfigError as error:
        key = "minimum_healthy_hosts" if custom else "deployment_config_name"
        raise InventoryConfigError(f"{where}.{key}", str(error)) from None
    found: dict[str, Any] = {}
    if name is not None:
        found["codedeploy_deployment_config_name"] = name
    if custom:
        found["codedeploy_minimum_healthy_hosts"] = {"type": custom["type"], "value": custom["value"]}
    return found


def parse_on_premises_instances(data: Any, where: str) -> list[OnPremisesInstance]:
    """On-premises instances: a list of ``{name, address, tags, zone, vars}``."""
    if not isinstance(data, list):
        raise InventoryConfigError(where, "must be a list of instances {name, address, tags, zone, vars}")
    instances: list[OnPremisesInstance] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        entry_where = f"{where}[{index}]"
        entry = _mapping(entry, entry_where, "name, address, tags, zone and vars")
        _check_keys(entry, ON_PREMISES_KEYS, entry_where)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InventoryConfigError(f"{entry_where}.name", "is required: the instance's registered name")
        if name in seen:
            raise InventoryConfigError(f"{entry_where}.name", f"{name!r} is listed twice")
        seen.add(name)
        for key in ("address", "zone"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise InventoryConfigError(f"{entry_where}.{key}", f"must be a string, not {entry[key]!r}")
        tags = _mapping(entry.get("tags") or {}, f"{entry_where}.tags", "tag keys to values")
        for key, value in tags.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InventoryConfigError(f"{entry_where}.tags.{key}",
                                           f"tag keys and values are strings; quote {value!r}")
        host_vars = _mapping(entry.get("vars") or {}, f"{entry_where}.vars", "variable names to values")
        instances.append(OnPremisesInstance(name, dict(tags), entry.get("address"), entry.get("zone"),
                                            dict(host_vars)))
    return instances


def parse_hostnames(data: Any, where: str = "hostnames") -> tuple[str, ...]:
    """The ``hostnames`` preference list; every entry must be one this plugin knows."""
    if not data:
        return DEFAULT_HOSTNAMES
    if not isinstance(data, list):
        raise InventoryConfigError(where, "must be a list")
    for index, entry in enumerate(data):
        if not isinstance(entry, str) or not (entry in HOSTNAME_FIELDS or (entry.startswith("tag:") and entry[4:])):
            raise InventoryConfigError(f"{where}[{index}]", f"{entry!r} is not supported: use tag:<Key> or one of "
                                                            f"{', '.join(HOSTNAME_FIELDS)}")
    return tuple(data)


# ----- the CodeDeploy API -----------------------------------------------------------------------------------
def api_group_record(application: str, info: Mapping[str, Any], region: str,
                     config_info: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The JSON-safe part of a ``DeploymentGroupInfo`` (and of its custom deployment config's info)."""
    record = {"application": application, "region": region}
    for key in ("deploymentGroupName", "deploymentGroupId", "deploymentConfigName", "ec2TagFilters",
                "ec2TagSet", "onPremisesInstanceTagFilters", "onPremisesTagSet", "autoScalingGroups",
                "deploymentStyle", "blueGreenDeploymentConfiguration", "loadBalancerInfo",
                "autoRollbackConfiguration", "alarmConfiguration", "triggerConfigurations"):
        if info.get(key):
            record[key] = info[key]
    if config_info:
        record["deploymentConfig"] = {key: config_info[key] for key in ("minimumHealthyHosts", "zonalConfig")
                                      if config_info.get(key)}
    return record


def group_from_api_record(record: Mapping[str, Any]) -> DeploymentGroupSpec:
    app, name = record["application"], record["deploymentGroupName"]
    ec2 = api_tag_selector(record.get("ec2TagFilters"), (record.get("ec2TagSet") or {}).get("ec2TagSetList"))
    on_premises = api_tag_selector(record.get("onPremisesInstanceTagFilters"),
                                   (record.get("onPremisesTagSet") or {}).get("onPremisesTagSetList"))
    asgs = tuple(group["name"] for group in record.get("autoScalingGroups") or [])
    group_vars: dict[str, Any] = {
        "codedeploy_application_name": app,
        "codedeploy_deployment_group_name": name,
        # The service's own ID: hosts that ran the CodeDeploy agent keep their history under it.
        "codedeploy_deployment_group_id": record.get("deploymentGroupId") or deployment_group_id(app, name),
    }
    if asgs:
        group_vars["codedeploy_auto_scaling_groups"] = list(asgs)
    group_vars.update(_api_settings(record))
    return DeploymentGroupSpec(app, name, ec2, on_premises, asgs, group_vars, record["region"],
                               f"the CodeDeploy API ({record['region']})")


def _api_settings(record: Mapping[str, Any]) -> dict[str, Any]:
    """The deploy role's inputs for the group's settings, in its names (snake_case)."""
    found: dict[str, Any] = {}
    if record.get("deploymentConfigName"):
        found["codedeploy_deployment_config_name"] = record["deploymentConfigName"]
    config = record.get("deploymentConfig") or {}
    if config.get("minimumHealthyHosts"):
        found["codedeploy_minimum_healthy_hosts"] = snake_case(config["minimumHealthyHosts"])
    if config.get("zonalConfig"):
        found["codedeploy_zonal_config"] = snake_case(config["zonalConfig"])
    if record.get("deploymentStyle"):
        found["codedeploy_deployment_style"] = snake_case(record["deploymentStyle"])
    if record.get("blueGreenDeploymentConfiguration"):
        found["codedeploy_blue_green_deployment_configuration"] = snake_case(
            record["blueGreenDeploymentConfiguration"])
    if record.get("loadBalancerInfo"):
        found["codedeploy_load_balancer_info"] = load_balancer_info(record["loadBalancerInfo"])
    rollback = record.get("autoRollbackConfiguration")
    if rollback:
        found["codedeploy_auto_rollback"] = {"enabled": bool(rollback.get("enabled")),
                                             "events": list(rollback.get("events") or [])}
    alarms = record.get("alarmConfiguration")
    if alarms:
        found["codedeploy_alarm_configuration"] = {
            "enabled": bool(alarms.get("enabled")),
            "ignore_poll_alarm_failure": bool(alarms.get("ignorePollAlarmFailure")),
            "alarms": [{"name": alarm["name"]} for alarm in alarms.get("alarms") or []],
        }
    triggers = record.get("triggerConfigurations")
    if triggers:
        found["codedeploy_trigger_configurations"] = [
            {"trigger_name": trigger.get("triggerName"), "trigger_events": list(trigger.get("triggerEvents") or []),
             "trigger_target_arn": trigger.get("triggerTargetArn")} for trigger in triggers]
    return found


def load_balancer_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """``loadBalancerInfo`` as the role's ``codedeploy_load_balancer_info``: target group names first."""
    found: dict[str, Any] = {}
    if info.get("targetGroupInfoList"):
        found["target_groups"] = [group["name"] for group in info["targetGroupInfoList"]]
    if info.get("elbInfoList"):
        found["classic_load_balancers"] = [elb["name"] for elb in info["elbInfoList"]]
    if info.get("targetGroupPairInfoList"):
        found["target_group_pairs"] = snake_case(info["targetGroupPairInfoList"])
    return found


def snake_case(data: Any) -> Any:
    """API data with camelCase keys in snake_case (``terminationWaitTimeInMinutes`` ->
    ``termination_wait_time_in_minutes``); values are kept."""
    if isinstance(data, Mapping):
        return {re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower(): snake_case(value)
                for key, value in data.items()}
    if isinstance(data, list):
        return [snake_case(item) for item in data]
    return data


# ----- EC2 --------------------------------------------------------------------------------------------------
def ec2_instance_record(instance: Mapping[str, Any], region: str) -> dict[str, Any]:
    """What the inventory keeps of a ``DescribeInstances`` instance (JSON-safe)."""
    record = {
        "id": instance["InstanceId"],
        "region": region,
        "state": instance.get("State", {}).get("Name", ""),
        "availability_zone": instance.get("Placement", {}).get("AvailabilityZone", ""),
        "tags": {tag["Key"]: tag.get("Value", "") for tag in instance.get("Tags") or []},
        "instance_type": instance.get("InstanceType", ""),
    }
    for field_name, key in (("private_ip_address", "PrivateIpAddress"), ("public_ip_address", "PublicIpAddress"),
                            ("private_dns_name", "PrivateDnsName"), ("public_dns_name", "PublicDnsName"),
                            ("image_id", "ImageId"), ("vpc_id", "VpcId"), ("subnet_id", "SubnetId")):
        if instance.get(key):
            record[field_name] = instance[key]
    return record


def describe_filters_for(specs: Sequence[DeploymentGroupSpec]) -> Optional[list[dict[str, Any]]]:
    """``DescribeInstances`` filters for every group's EC2 instances at once, or None when none selects EC2."""
    alternatives = [selector for spec in specs for selector in spec.ec2_alternatives]
    if not alternatives:
        return None
    return [{"Name": "instance-state-name", "Values": list(TARGET_STATES)},
            *describe_instances_filters(alternatives)]


# ----- the inventory ----------------------------------------------------------------------------------------
@dataclass
class GroupPlan:
    group_vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class InventoryPlan:
    # Host name -> host vars, in a stable order (on-premises instances as listed, then EC2 by instance ID).
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, GroupPlan] = field(default_factory=dict)


def plan_inventory(specs: Sequence[DeploymentGroupSpec], ec2_instances: Sequence[Mapping[str, Any]],
                   on_premises: Sequence[OnPremisesInstance], hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
                   prefix: str = DEFAULT_GROUP_PREFIX,
                   app_vars: Optional[Mapping[str, Mapping[str, Any]]] = None) -> InventoryPlan:
    """The hosts selected by at least one deployment group, and the groups ``<prefix><app>`` containing
    ``<prefix><app>_<group>`` (sanitised); a host may be in several deployment groups."""
    plan = InventoryPlan()
    names = _group_names(specs, prefix)
    ec2_sorted = sorted(ec2_instances, key=lambda instance: instance["id"])
    members = {(spec.application, spec.name): (
        [instance for instance in on_premises if spec.on_premises.matches(instance.tags)],
        [instance for instance in ec2_sorted if spec.selects_ec2(instance)]) for spec in specs}
    selected_on_premises = {instance.name for found in members.values() for instance in found[0]}
    selected_ec2 = {instance["id"] for found in members.values() for instance in found[1]}
    for instance in on_premises:
        if instance.name in selected_on_premises:
            plan.hosts[instance.name] = on_premises_host_vars(instance)
    host_names = {}
    for instance in ec2_sorted:
        if instance["id"] in selected_ec2:
            host_names[instance["id"]] = name = _ec2_host_name(instance, hostnames, plan.hosts, selected_ec2)
            plan.hosts[name] = ec2_host_vars(instance)
    for spec in specs:
        app_group, group = names[(spec.application, spec.name)]
        app_plan = plan.groups.setdefault(app_group, GroupPlan(dict((app_vars or {}).get(spec.application) or {})))
        app_plan.children.append(group)
        on_prem, ec2 = members[(spec.application, spec.name)]
        plan.groups[group] = GroupPlan(dict(spec.group_vars), [instance.name for instance in on_prem]
                                       + [host_names[instance["id"]] for instance in ec2])
    _add_shared_host_inputs(plan)
    return plan


def _add_shared_host_inputs(plan: InventoryPlan) -> None:
    """On a host in several deployment groups the groups' variables clash (Ansible keeps one group's value), so it
    also gets each group's inputs, application variables included, by inventory group name (SHARED_HOST_INPUTS)."""
    by_host: dict[str, dict[str, dict[str, Any]]] = {}
    for app_plan in plan.groups.values():
        for group in app_plan.children:
            for host in plan.groups[group].hosts:
                by_host.setdefault(host, {})[group] = {**app_plan.group_vars, **plan.groups[group].group_vars}
    for host, inputs in by_host.items():
        if len(inputs) > 1:
            plan.hosts[host][SHARED_HOST_INPUTS] = inputs


def _group_names(specs: Sequence[DeploymentGroupSpec], prefix: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(application, group) -> (application group, deployment group); two things may not share a name."""
    owners: dict[str, str] = {}
    names = {}
    for spec in specs:
        pair = (sanitise_group_name(prefix + spec.application),
                sanitise_group_name(f"{prefix}{spec.application}_{spec.name}"))
        for group, owner in ((pair[0], f"application {spec.application!r}"),
                             (pair[1], f"deployment group {spec.application}/{spec.name} (from {spec.origin})")):
            if owners.setdefault(group, owner) != owner:
                raise InventoryConfigError(
                    "applications", f"{owners[group]} and {owner} both make the inventory group {group!r}: "
                                    "rename one, or set a different group_prefix")
        names[(spec.application, spec.name)] = pair
    return names


# What a tag's value must not hold to name a host: a leading "-" (ssh takes a host without an address as its
# destination, and would read it as an option), white space or a control character, or a comma (a host pattern's
# separator). A tag may hold anything; such a value is passed over.
UNUSABLE_HOST_NAME = re.compile(r"^-|[\s,\x00-\x1f\x7f]")


def _ec2_host_name(instance: Mapping[str, Any], hostnames: Sequence[str], taken: Mapping[str, Any],
                   ec2_ids: set[str]) -> str:
    """The first preference the instance has that no other host uses and that can name a host; else its instance ID.

    Another selected instance's ID is never taken: it is that instance's fallback, and a tag may hold anything.
    """
    for preference in hostnames:
        value = instance["tags"].get(preference[4:]) if preference.startswith("tag:") \
            else instance.get(HOSTNAME_FIELDS[preference])
        if value and not UNUSABLE_HOST_NAME.search(value) and value not in taken \
                and (value == instance["id"] or value not in ec2_ids):
            return value
    if instance["id"] in taken:
        # Only an on-premises instance can hold it: EC2 names never take another instance's ID.
        raise InventoryConfigError("on_premises_instances", f"on-premises instance {instance['id']!r} has the name "
                                   f"of EC2 instance {instance['id']}: rename the on-premises instance")
    return instance["id"]


def ec2_host_vars(instance: Mapping[str, Any]) -> dict[str, Any]:
    host_vars = {
        "codedeploy_instance_id": instance["id"],
        "codedeploy_instance_kind": "ec2",
        "codedeploy_availability_zone": instance["availability_zone"],
        "codedeploy_tags": dict(instance["tags"]),
        "codedeploy_instance_state": instance["state"],
        "codedeploy_ec2": {key: value for key, value in instance.items()
                           if key not in ("id", "state", "availability_zone", "tags")},
    }
    address = next((instance[key] for key in ANSIBLE_HOST_FIELDS if instance.get(key)), None)
    if address:
        host_vars["ansible_host"] = address
    return host_vars


def on_premises_host_vars(instance: OnPremisesInstance) -> dict[str, Any]:
    host_vars: dict[str, Any] = {
        "codedeploy_instance_id": instance.name,
        "codedeploy_instance_kind": "on_premises",
        "codedeploy_tags": dict(instance.tags),
        "codedeploy_instance_state": ON_PREMISES_STATE,
    }
    if instance.zone:
        host_vars["codedeploy_availability_zone"] = instance.zone
    if instance.address:
        host_vars["ansible_host"] = instance.address
    host_vars.update(instance.host_vars)
    return host_vars
