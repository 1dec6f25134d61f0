# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory plugin's logic: configuration checks, API groups, instance records, groups and host vars."""
from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_groups import (
    InventoryConfigError,
    OnPremisesInstance,
    api_group_record,
    application_vars,
    describe_filters_for,
    ec2_instance_record,
    group_from_api_record,
    parse_applications,
    parse_hostnames,
    parse_on_premises_instances,
    plan_inventory,
    sanitise_group_name,
)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_ids import deployment_group_id


def one_group(settings, app="webapp", name="prod"):
    return parse_applications({app: {"deployment_groups": {name: settings}}})[0]


def config_error(call, *args):
    with pytest.raises(InventoryConfigError) as error:
        call(*args)
    return str(error.value)


def instance(instance_id, tags, state="running", region="us-east-1", **extra):
    return {"id": instance_id, "region": region, "state": state, "availability_zone": region + "a", "tags": tags,
            "instance_type": "t3.micro", "private_ip_address": "10.0.0." + instance_id[-1], **extra}


# ----- configuration ---------------------------------------------------------------------------------------
def test_group_vars_are_the_deploy_roles_inputs():
    spec = one_group({"ec2_tag_filters": [{"key": "Env", "value": "prod"}],
                      "deployment_config_name": "CodeDeployDefault.HalfAtATime",
                      "vars": {"codedeploy_revision": {"source": "local", "path": "/r"}}})
    assert spec.group_vars == {
        "codedeploy_application_name": "webapp",
        "codedeploy_deployment_group_name": "prod",
        "codedeploy_deployment_group_id": deployment_group_id("webapp", "prod"),
        "codedeploy_deployment_config_name": "CodeDeployDefault.HalfAtATime",
        "codedeploy_revision": {"source": "local", "path": "/r"},
    }


def test_custom_minimum_and_given_group_id():
    spec = one_group({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 2},
                      "deployment_group_id": "4B3C2A1D-0E9F-4A8B-9C7D-6E5F4A3B2C1D"})
    assert spec.group_vars["codedeploy_minimum_healthy_hosts"] == {"type": "HOST_COUNT", "value": 2}
    assert spec.group_vars["codedeploy_deployment_group_id"] == "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
    assert "codedeploy_deployment_config_name" not in spec.group_vars


@pytest.mark.parametrize("settings, message", [
    ({"ec2_tag_filter": []},
     "applications.webapp.deployment_groups.prod.ec2_tag_filter: unknown key: use ec2_tag_filters, ec2_tag_set, "
     "on_premises_tag_filters, on_premises_tag_set, auto_scaling_groups, deployment_config_name, "
     "minimum_healthy_hosts, deployment_group_id, vars"),
    ({"ec2_tag_filters": [{"key": "A"}], "ec2_tag_set": [[{"key": "A"}]]},
     "applications.webapp.deployment_groups.prod.ec2_tag_set: cannot be used together with ec2_tag_filters (the "
     "service's InvalidEC2TagCombinationException): keep one of them"),
    ({"on_premises_tag_filters": [{"key": "A"}], "on_premises_tag_set": [[{"key": "A"}]]},
     "applications.webapp.deployment_groups.prod.on_premises_tag_set: cannot be used together with "
     "on_premises_tag_filters (the service's InvalidOnPremisesTagCombinationException): keep one of them"),
    ({"ec2_tag_set": [[{"key": "A"}]] * 4},
     "applications.webapp.deployment_groups.prod.ec2_tag_set: has 4 tag groups; the maximum allowed limit is 3"),
    ({"on_premises_tag_filters": [{"key": "A", "type": "KEYONLY"}]},
     "applications.webapp.deployment_groups.prod.on_premises_tag_filters[0].type: 'KEYONLY' is not one of "
     "KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE"),
    ({"deployment_config_name": "CodeDeployDefault.TwoAtATime"},
     "applications.webapp.deployment_groups.prod.deployment_config_name: unknown deployment configuration "
     "'CodeDeployDefault.TwoAtATime': use one of CodeDeployDefault.OneAtATime, CodeDeployDefault.HalfAtATime, "
     "CodeDeployDefault.AllAtOnce, or give minimum_healthy_hosts {type: HOST_COUNT|FLEET_PERCENT, value}"),
    ({"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 100}},
     "applications.webapp.deployment_groups.prod.minimum_healthy_hosts: minimum_healthy_hosts.value 100 is not a "
     "valid FLEET_PERCENT: use 0 to 99 (0 deploys to all instances at once)"),
    ({"deployment_group_id": "prod-1"},
     "applications.webapp.deployment_groups.prod.deployment_group_id: 'prod-1' is not a UUID, e.g. "
     "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"),
    ({"auto_scaling_groups": "asg-1"},
     "applications.webapp.deployment_groups.prod.auto_scaling_groups: must be a list of names"),
    ({"vars": ["a"]},
     "applications.webapp.deployment_groups.prod.vars: must be a mapping of variable names to values, not a list"),
])
def test_configuration_errors_name_the_key(settings, message):
    assert config_error(one_group, settings) == message


def test_application_level_errors():
    assert config_error(parse_applications, {"webapp": {"groups": {}}}) == \
        "applications.webapp.groups: unknown key: use deployment_groups, vars"
    assert config_error(parse_applications, {"web app": {}}).startswith(
        "applications.web app: 'web app' is not a valid CodeDeploy application name")
    assert config_error(parse_applications, ["webapp"]) == \
        "applications: must be a mapping of application names to settings, not a list"


def test_application_vars():
    config = {"webapp": {"vars": {"team": "a"}, "deployment_groups": {}}, "api": {}}
    assert parse_applications(config) == []
    assert application_vars(config) == {"webapp": {"team": "a"}}


def test_on_premises_instances():
    parsed = parse_on_premises_instances([
        {"name": "dc1-web", "address": "10.1.0.1", "tags": {"Site": "dc1"}, "zone": "dc1-a",
         "vars": {"ansible_user": "deploy"}},
        {"name": "dc2-web"},
    ], "onprem.yml")
    assert parsed == [OnPremisesInstance("dc1-web", {"Site": "dc1"}, "10.1.0.1", "dc1-a", {"ansible_user": "deploy"}),
                      OnPremisesInstance("dc2-web", {})]


@pytest.mark.parametrize("data, message", [
    ({"name": "a"}, "onprem.yml: must be a list of instances {name, address, tags, zone, vars}"),
    ([{"address": "10.0.0.1"}], "onprem.yml[0].name: is required: the instance's registered name"),
    ([{"name": "a"}, {"name": "a"}], "onprem.yml[1].name: 'a' is listed twice"),
    ([{"name": "a", "tags": {"Tier": 1}}], "onprem.yml[0].tags.Tier: tag keys and values are strings; quote 1"),
    ([{"name": "a", "host": "x"}], "onprem.yml[0].host: unknown key: use name, address, tags, zone, vars"),
    ([{"name": "a", "address": 10}], "onprem.yml[0].address: must be a string, not 10"),
])
def test_on_premises_errors(data, message):
    assert config_error(parse_on_premises_instances, data, "onprem.yml") == message


def test_hostnames():
    assert parse_hostnames([]) == ("instance-id",)
    assert parse_hostnames(["tag:Name", "private-ip-address"]) == ("tag:Name", "private-ip-address")
    assert config_error(parse_hostnames, ["tag:Name", "public-ip"]) == (
        "hostnames[1]: 'public-ip' is not supported: use tag:<Key> or one of instance-id, private-ip-address, "
        "ip-address, private-dns-name, dns-name")


# ----- the CodeDeploy API ------------------------------------------------------------------------------------
API_INFO = {
    "applicationName": "webapp",
    "deploymentGroupId": "11111111-2222-3333-4444-555555555555",
    "deploymentGroupName": "prod",
    "deploymentConfigName": "CodeDeployDefault.HalfAtATime",
    "ec2TagSet": {"ec2TagSetList": [[{"Key": "Env", "Value": "prod", "Type": "KEY_AND_VALUE"}],
                                    [{"Key": "Role", "Value": "", "Type": "KEY_ONLY"}]]},
    "onPremisesInstanceTagFilters": [{"Key": "Site", "Value": "dc1", "Type": "KEY_AND_VALUE"}],
    "autoScalingGroups": [{"name": "web-asg", "hook": "CodeDeploy-managed-automatic-launch-deployment-hook"}],
    "serviceRoleArn": "arn:aws:iam::123456789012:role/cd",
    "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
    "blueGreenDeploymentConfiguration": {
        "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 5},
        "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}},
    "loadBalancerInfo": {"targetGroupInfoList": [{"name": "web-tg"}]},
    "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    "alarmConfiguration": {"enabled": True, "ignorePollAlarmFailure": False, "alarms": [{"name": "5xx"}]},
    "triggerConfigurations": [{"triggerName": "chat", "triggerTargetArn": "arn:aws:sns:us-east-1:123456789012:chat",
                               "triggerEvents": ["DeploymentFailure", "InstanceFailure"]}],
    "lastSuccessfulDeployment": {"deploymentId": "d-ABCDEFGHI", "endTime": datetime.datetime(2024, 1, 1)},
}


def test_api_group_becomes_a_spec_with_the_services_id_and_settings():
    record = api_group_record("webapp", API_INFO, "us-east-1")
    json.dumps(record)  # cacheable as JSON: no datetimes kept
    spec = group_from_api_record(record)
    assert (spec.application, spec.name, spec.region, spec.auto_scaling_groups) == \
        ("webapp", "prod", "us-east-1", ("web-asg",))
    assert spec.ec2 == one_group({"ec2_tag_set": [[{"key": "Env", "value": "prod"}], [{"key": "Role"}]]}).ec2
    assert spec.on_premises.matches({"Site": "dc1"})
    assert spec.group_vars == {
        "codedeploy_application_name": "webapp",
        "codedeploy_deployment_group_name": "prod",
        "codedeploy_deployment_group_id": "11111111-2222-3333-4444-555555555555",
        "codedeploy_auto_scaling_groups": ["web-asg"],
        "codedeploy_deployment_config_name": "CodeDeployDefault.HalfAtATime",
        "codedeploy_deployment_style": {"deployment_type": "BLUE_GREEN", "deployment_option": "WITH_TRAFFIC_CONTROL"},
        "codedeploy_blue_green_deployment_configuration": {
            "terminate_blue_instances_on_deployment_success": {"action": "TERMINATE",
                                                               "termination_wait_time_in_minutes": 5},
            "deployment_ready_option": {"action_on_timeout": "CONTINUE_DEPLOYMENT"},
            "green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"}},
        "codedeploy_load_balancer_info": {"target_groups": ["web-tg"]},
        "codedeploy_auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        "codedeploy_alarm_configuration": {"enabled": True, "ignore_poll_alarm_failure": False,
                                           "alarms": [{"name": "5xx"}]},
        "codedeploy_trigger_configurations": [{"trigger_name": "chat",
                                               "trigger_target_arn": "arn:aws:sns:us-east-1:123456789012:chat",
                                               "trigger_events": ["DeploymentFailure", "InstanceFailure"]}],
    }


def test_api_group_with_a_custom_configuration_carries_its_minimum():
    info = {"deploymentGroupName": "prod", "deploymentConfigName": "ThreeAtATime"}
    config = {"deploymentConfigName": "ThreeAtATime", "minimumHealthyHosts": {"type": "HOST_COUNT", "value": 3},
              "createTime": datetime.datetime(2024, 1, 1)}
    spec = group_from_api_record(api_group_record("webapp", info, "eu-west-1", config))
    assert spec.group_vars["codedeploy_minimum_healthy_hosts"] == {"type": "HOST_COUNT", "value": 3}
    assert spec.group_vars["codedeploy_deployment_group_id"] == deployment_group_id("webapp", "prod")


# ----- EC2 ---------------------------------------------------------------------------------------------------
def test_ec2_instance_record_keeps_what_the_inventory_needs():
    described = {"InstanceId": "i-1", "State": {"Code": 80, "Name": "stopped"},
                 "Placement": {"AvailabilityZone": "us-east-1b"}, "InstanceType": "t3.micro",
                 "Tags": [{"Key": "Name", "Value": "web-1"}], "PrivateIpAddress": "10.0.0.1", "PublicIpAddress": "",
                 "LaunchTime": datetime.datetime(2024, 1, 1), "BlockDeviceMappings": []}
    assert ec2_instance_record(described, "us-east-1") == {
        "id": "i-1", "region": "us-east-1", "state": "stopped", "availability_zone": "us-east-1b",
        "tags": {"Name": "web-1"}, "instance_type": "t3.micro", "private_ip_address": "10.0.0.1"}


def test_one_query_covers_every_group_and_asks_for_targets_only():
    specs = parse_applications({"webapp": {"deployment_groups": {
        "prod": {"ec2_tag_set": [[{"key": "Env", "value": "prod"}], [{"key": "App", "value": "web"}]]},
        "test": {"ec2_tag_set": [[{"key": "Env", "value": "test"}], [{"key": "App", "value": "web"}]]},
        "dc": {"on_premises_tag_filters": [{"key": "Site", "value": "dc1"}]},
    }}})
    assert describe_filters_for(specs) == [
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        {"Name": "tag:App", "Values": ["web"]},
        {"Name": "tag:Env", "Values": ["prod", "test"]},
    ]


def test_auto_scaling_groups_widen_the_query_by_their_tag():
    specs = parse_applications({"webapp": {"deployment_groups": {
        "prod": {"ec2_tag_filters": [{"key": "Env", "value": "prod"}], "auto_scaling_groups": ["web-asg"]}}}})
    assert describe_filters_for(specs)[1:] == [{"Name": "tag-key", "Values": ["Env", "aws:autoscaling:groupName"]},
                                               {"Name": "tag-value", "Values": ["prod", "web-asg"]}]


def test_auto_scaling_groups_are_a_group_var_for_copy_auto_scaling_group():
    specs = parse_applications({"webapp": {"deployment_groups": {
        "prod": {"auto_scaling_groups": ["web-asg"]}, "dev": {"ec2_tag_filters": [{"key": "Env"}]}}}})
    assert {spec.name: spec.group_vars.get("codedeploy_auto_scaling_groups") for spec in specs} == {
        "prod": ["web-asg"], "dev": None}


def test_no_ec2_selector_means_no_ec2_query():
    specs = parse_applications({"webapp": {"deployment_groups": {
        "dc": {"on_premises_tag_filters": [{"key": "Site", "value": "dc1"}]}}}})
    assert describe_filters_for(specs) is None


# ----- the inventory ----------------------------------------------------------------------------------------
def test_groups_hosts_and_vars():
    specs = parse_applications({"web-app": {"deployment_groups": {
        "prod.eu": {"ec2_tag_filters": [{"key": "Env", "value": "prod"}],
                    "on_premises_tag_filters": [{"key": "Env", "value": "prod"}]},
        "all": {"ec2_tag_filters": [{"key": "Env"}], "auto_scaling_groups": ["asg-1"]},
    }}})
    instances = [instance("i-2", {"Env": "prod", "Name": "web"}, state="stopped"),
                 instance("i-1", {"Env": "test"}),
                 instance("i-3", {"aws:autoscaling:groupName": "asg-1"}),
                 instance("i-4", {"Other": "x"})]
    on_premises = [OnPremisesInstance("dc1", {"Env": "prod"}, "192.0.2.1", "dc-a", {"ansible_user": "deploy"}),
                   OnPremisesInstance("dc2", {"Env": "test"})]
    plan = plan_inventory(specs, instances, on_premises, ["tag:Name"], app_vars={"web-app": {"team": "x"}})
    assert list(plan.hosts) == ["dc1", "i-1", "web", "i-3"]
    assert plan.groups["codedeploy_web_app"].children == ["codedeploy_web_app_prod_eu", "codedeploy_web_app_all"]
    assert plan.groups["codedeploy_web_app"].group_vars == {"team": "x"}
    assert plan.groups["codedeploy_web_app_prod_eu"].hosts == ["dc1", "web"]
    assert plan.groups["codedeploy_web_app_all"].hosts == ["i-1", "web", "i-3"]
    assert plan.groups["codedeploy_web_app_prod_eu"].group_vars["codedeploy_deployment_group_name"] == "prod.eu"
    assert plan.hosts["web"] == {
        "codedeploy_instance_id": "i-2", "codedeploy_instance_kind": "ec2",
        "codedeploy_availability_zone": "us-east-1a", "codedeploy_tags": {"Env": "prod", "Name": "web"},
        "codedeploy_instance_state": "stopped", "ansible_host": "10.0.0.2",
        "codedeploy_ec2": {"region": "us-east-1", "instance_type": "t3.micro", "private_ip_address": "10.0.0.2"},
        # In both deployment groups: each group's inputs, with the application's variables.
        "codedeploy_deployment_group_inputs": {
            group: {"team": "x", **plan.groups[group].group_vars}
            for group in ("codedeploy_web_app_prod_eu", "codedeploy_web_app_all")}}
    assert plan.groups["codedeploy_web_app_all"].group_vars["codedeploy_deployment_group_name"] == "all"
    assert "codedeploy_deployment_group_inputs" not in plan.hosts["i-1"]  # in one group: its group vars are exact
    assert plan.hosts["dc1"] == {
        "codedeploy_instance_id": "dc1", "codedeploy_instance_kind": "on_premises",
        "codedeploy_availability_zone": "dc-a", "codedeploy_tags": {"Env": "prod"},
        "codedeploy_instance_state": "registered", "ansible_host": "192.0.2.1", "ansible_user": "deploy"}


def test_the_deploy_roles_target_group_rule():
    assert sanitise_group_name("codedeploy_web-app_prod.eu@1") == "codedeploy_web_app_prod_eu_1"
    plan = plan_inventory(parse_applications({"a": {"deployment_groups": {"b": {}}}}), [], [], prefix="cd-")
    assert list(plan.groups) == ["cd_a", "cd_a_b"]
    assert plan.groups["cd_a_b"].hosts == []


def test_api_groups_select_instances_of_their_region_only():
    spec = group_from_api_record(api_group_record("webapp", {
        "deploymentGroupName": "prod", "ec2TagFilters": [{"Key": "Env", "Value": "prod", "Type": "KEY_AND_VALUE"}]},
        "eu-west-1"))
    plan = plan_inventory([spec], [instance("i-1", {"Env": "prod"}), instance("i-2", {"Env": "prod"}, region="eu-west-1")], [])
    assert plan.groups["codedeploy_webapp_prod"].hosts == ["i-2"]


def test_host_names_stay_unique():
    group = {"ec2_tag_filters": [{"key": "Name"}], "on_premises_tag_filters": [{"key": "Name"}]}
    specs = parse_applications({"a": {"deployment_groups": {"b": group}}})
    instances = [instance("i-1", {"Name": "web"}), instance("i-2", {"Name": "web"}), instance("i-3", {"Name": "dc1"})]
    plan = plan_inventory(specs, instances, [OnPremisesInstance("dc1", {"Name": "x"})], ["tag:Name", "private-ip-address"])
    assert plan.groups["codedeploy_a_b"].hosts == ["dc1", "web", "10.0.0.2", "10.0.0.3"]


def test_two_groups_sharing_an_inventory_name_is_an_error():
    specs = parse_applications({"web-app": {"deployment_groups": {"x": {}}}, "web_app": {"deployment_groups": {"x": {}}}})
    assert config_error(plan_inventory, specs, [], []) == (
        "applications: application 'web-app' and application 'web_app' both make the inventory group "
        "'codedeploy_web_app': rename one, or set a different group_prefix")


def test_a_tag_holding_another_instances_id_does_not_take_that_instances_host_name():
    # Anyone who may tag an instance could otherwise name it after another one: both would be one inventory host.
    groups = {"prod": {"ec2_tag_filters": [{"key": "Env", "value": "prod"}]},
              "dev": {"ec2_tag_filters": [{"key": "Env", "value": "dev"}]}}
    specs = parse_applications({"a": {"deployment_groups": groups}})
    instances = [instance("i-1", {"Env": "prod", "Name": "i-2"}), instance("i-2", {"Env": "dev"})]
    plan = plan_inventory(specs, instances, [], ["tag:Name"])
    assert plan.groups["codedeploy_a_prod"].hosts == ["i-1"]
    assert plan.groups["codedeploy_a_dev"].hosts == ["i-2"]
    assert plan.hosts["i-1"]["codedeploy_tags"] == {"Env": "prod", "Name": "i-2"}


def test_an_on_premises_instance_named_like_an_ec2_instance_is_an_error():
    specs = parse_applications({"a": {"deployment_groups": {"b": {"ec2_tag_filters": [{"key": "Env"}],
                                                                  "on_premises_tag_filters": [{"key": "Env"}]}}}})
    message = config_error(plan_inventory, specs, [instance("i-1", {"Env": "prod"})],
                           [OnPremisesInstance("i-1", {"Env": "prod"})])
    assert "on-premises instance 'i-1' has the name of EC2 instance i-1" in message


@pytest.mark.parametrize("name", ["-oProxyCommand=touch /tmp/x", "web 1", "web,db", "web\n1", "web\x1b[0m"])
def test_a_tag_that_cannot_name_a_host_is_passed_over_for_the_next_preference(name):
    # A leading "-" would reach ssh as an option for a host without an address; a comma splits a host pattern.
    specs = parse_applications({"a": {"deployment_groups": {"b": {"ec2_tag_filters": [{"key": "Env"}]}}}})
    tagged = instance("i-1", {"Env": "prod", "Name": name})
    plan = plan_inventory(specs, [tagged], [], ["tag:Name", "private-ip-address"])
    assert list(plan.hosts) == ["10.0.0.1"]
