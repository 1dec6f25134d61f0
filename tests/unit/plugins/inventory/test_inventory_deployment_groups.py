# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment_groups inventory plugin in process, as ansible-core tests its inventory plugins: a real
InventoryData and DataLoader, configuration files on disk, and EC2 through the moto server."""
from __future__ import annotations

import boto3
import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_ids import deployment_group_id

PLUGIN = "fleetops.codedeploy.deployment_groups"
AMI = "ami-12c6146b"


def parse(tmp_path, config, name="fleet.codedeploy.yml"):
    """The inventory the plugin builds from ``config`` (written to ``name``)."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"plugin": PLUGIN, "cache": False, **config}))
    plugin = inventory_loader.get(PLUGIN)
    assert plugin.verify_file(str(path))
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), str(path), cache=False)
    return inventory


def host_vars(inventory, name):
    return inventory.get_host(name).get_vars()


def group_names(inventory, host):
    return sorted(group.name for group in inventory.get_host(host).get_groups())


ON_PREMISES = [
    {"name": "dc1-web-01", "address": "10.20.0.11", "tags": {"Site": "dc1", "Role": "web"}, "zone": "dc1-a",
     "vars": {"ansible_user": "deploy"}},
    {"name": "dc1-db-01", "address": "10.20.0.21", "tags": {"Site": "dc1", "Role": "db"}},
    {"name": "dc2-web-01", "address": "10.30.0.11", "tags": {"Site": "dc2", "Role": "web"}},
]


def test_on_premises_groups_host_and_group_variables(tmp_path):
    inventory = parse(tmp_path, {
        "on_premises_instances": ON_PREMISES,
        "applications": {"web-app": {
            "vars": {"codedeploy_revision": {"source": "local", "path": "build/webapp"}},
            "deployment_groups": {
                "dc1.web": {"on_premises_tag_set": [[{"key": "Site", "value": "dc1"}],
                                                    [{"key": "Role", "value": "web"}]],
                            "deployment_config_name": "CodeDeployDefault.HalfAtATime"},
                "any-web": {"on_premises_tag_filters": [{"key": "Role", "value": "web"}],
                            "minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 75}},
            }}}})
    # Characters other than letters, digits and _ become _.
    assert sorted(inventory.groups["codedeploy_web_app"].child_groups, key=str) == [
        inventory.groups["codedeploy_web_app_any_web"], inventory.groups["codedeploy_web_app_dc1_web"]]
    assert [host.name for host in inventory.groups["codedeploy_web_app_dc1_web"].get_hosts()] == ["dc1-web-01"]
    assert sorted(host.name for host in inventory.groups["codedeploy_web_app_any_web"].get_hosts()) == [
        "dc1-web-01", "dc2-web-01"]
    assert "dc1-db-01" not in inventory.hosts  # in no deployment group
    expected = {
        "codedeploy_instance_id": "dc1-web-01", "codedeploy_instance_kind": "on_premises",
        "codedeploy_availability_zone": "dc1-a", "codedeploy_tags": {"Site": "dc1", "Role": "web"},
        "codedeploy_instance_state": "registered", "ansible_host": "10.20.0.11", "ansible_user": "deploy"}
    dc1_web_01 = host_vars(inventory, "dc1-web-01")
    assert {key: dc1_web_01.get(key) for key in expected} == expected
    dc1_web = inventory.groups["codedeploy_web_app_dc1_web"].get_vars()
    assert dc1_web["codedeploy_application_name"] == "web-app"
    assert dc1_web["codedeploy_deployment_group_name"] == "dc1.web"
    assert dc1_web["codedeploy_deployment_group_id"] == deployment_group_id("web-app", "dc1.web")
    assert dc1_web["codedeploy_deployment_config_name"] == "CodeDeployDefault.HalfAtATime"
    assert inventory.groups["codedeploy_web_app_any_web"].get_vars()["codedeploy_minimum_healthy_hosts"] == {
        "type": "FLEET_PERCENT", "value": 75}
    assert inventory.groups["codedeploy_web_app"].get_vars()["codedeploy_revision"] == {
        "source": "local", "path": "build/webapp"}
    # A host in two groups keeps each group's own inputs.
    inputs = host_vars(inventory, "dc1-web-01")["codedeploy_deployment_group_inputs"]
    assert sorted(inputs) == ["codedeploy_web_app_any_web", "codedeploy_web_app_dc1_web"]
    assert inputs["codedeploy_web_app_dc1_web"]["codedeploy_deployment_group_name"] == "dc1.web"


def test_a_group_prefix_and_the_constructed_options(tmp_path):
    inventory = parse(tmp_path, {
        "on_premises_instances": ON_PREMISES, "group_prefix": "cd_",
        "applications": {"webapp": {"deployment_groups": {"web": {
            "on_premises_tag_filters": [{"key": "Role", "value": "web"}]}}}},
        "compose": {"site": "codedeploy_tags.Site"},
        "keyed_groups": [{"key": "codedeploy_tags.Site", "prefix": "site"}]})
    assert group_names(inventory, "dc2-web-01") == ["cd_webapp", "cd_webapp_web", "site_dc2"]
    assert host_vars(inventory, "dc2-web-01")["site"] == "dc2"


def test_on_premises_instances_from_a_file_beside_the_configuration(tmp_path):
    (tmp_path / "onprem.yml").write_text(yaml.safe_dump(ON_PREMISES))
    inventory = parse(tmp_path, {"on_premises_instances": "onprem.yml", "applications": {"webapp": {
        "deployment_groups": {"dc2": {"on_premises_tag_filters": [{"key": "Site", "value": "dc2"}]}}}}})
    assert [host.name for host in inventory.groups["codedeploy_webapp_dc2"].get_hosts()] == ["dc2-web-01"]


@pytest.mark.parametrize("config, message", [
    ({"applicatons": {}}, r"fleet\.codedeploy\.yml: applicatons: unknown key: see ansible-doc -t inventory "),
    ({"on_premises_instances": "missing.yml"},
     r"fleet\.codedeploy\.yml: on_premises_instances.*cannot read .*missing\.yml"),
    ({"applications": {"webapp": {"deployment_groups": {"web": {
        "ec2_tag_filters": [{"key": "Role", "value": "web"}], "ec2_tag_set": [[{"key": "Role", "value": "web"}]]}}}}},
     r"fleet\.codedeploy\.yml: applications\.webapp\.deployment_groups\.web\.ec2_tag_set: cannot be used together "
     r"with ec2_tag_filters"),
    ({"applications": {"webapp": {"deployment_groups": {"web": {
        "on_premises_tag_filters": [{"key": "Role", "value": "web", "type": "KEY_PLUS_VALUE"}]}}}}},
     r"fleet\.codedeploy\.yml: .*KEY_PLUS_VALUE"),
])
def test_a_bad_configuration_names_the_file_and_the_key(tmp_path, config, message):
    with pytest.raises(AnsibleParserError, match=message):
        parse(tmp_path, config)


def test_only_configuration_files_of_this_plugin_are_read(tmp_path):
    plugin = inventory_loader.get(PLUGIN)
    for name, accepted in [("fleet.codedeploy.yml", True), ("codedeploy.yaml", True), ("fleet.aws_ec2.yml", False),
                           ("hosts.yml", False)]:
        (tmp_path / name).write_text(f"plugin: {PLUGIN}\n")
        assert plugin.verify_file(str(tmp_path / name)) is accepted, name


def test_ec2_instances_by_tag_set_named_by_their_name_tag(tmp_path, aws_options):
    ec2 = boto3.client("ec2", endpoint_url=aws_options["endpoint_url"], region_name="us-east-1")
    tags = {"web-1": {"Env": "prod", "Role": "web"}, "web-2": {"Env": "prod", "Role": "api"},
            "stage-1": {"Env": "stage", "Role": "web"}}
    ids = {}
    for name, instance_tags in tags.items():
        # A Fleet tag of this test's own: the moto server is shared by the whole session.
        tag_list = [{"Key": key, "Value": value}
                    for key, value in {"Name": name, "Fleet": tmp_path.name, **instance_tags}.items()]
        ids[name] = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                      TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}],
                                      )["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[ids["web-2"]])
    inventory = parse(tmp_path, {
        "regions": ["us-east-1"], "endpoint_url": aws_options["endpoint_url"], "hostnames": ["tag:Name"],
        "applications": {"webapp": {"deployment_groups": {"prod": {"ec2_tag_set": [
            [{"key": "Fleet", "value": tmp_path.name}], [{"key": "Env", "value": "prod"}],
            [{"key": "Role", "type": "KEY_ONLY"}]]}}}}})
    assert sorted(host.name for host in inventory.groups["codedeploy_webapp_prod"].get_hosts()) == ["web-1", "web-2"]
    web_1 = host_vars(inventory, "web-1")
    assert (web_1["codedeploy_instance_id"], web_1["codedeploy_instance_kind"], web_1["codedeploy_instance_state"]) == (
        ids["web-1"], "ec2", "running")
    assert web_1["ansible_host"] == web_1["codedeploy_ec2"]["private_ip_address"]
    assert web_1["codedeploy_ec2"]["region"] == "us-east-1"
    assert web_1["codedeploy_availability_zone"].startswith("us-east-1")
    assert host_vars(inventory, "web-2")["codedeploy_instance_state"] == "stopped"


def test_an_aws_failure_is_one_line_naming_the_call(tmp_path, aws_options):
    with pytest.raises(Exception, match=r"fleet\.codedeploy\.yml: .*EC2 DescribeInstances") as raised:
        parse(tmp_path, {"regions": ["us-east-1"], "endpoint_url": "http://127.0.0.1:9", "max_attempts": 1,
                         "applications": {"webapp": {"deployment_groups": {"prod": {
                             "ec2_tag_filters": [{"key": "Env", "value": "prod"}]}}}}})
    assert "\n" not in str(raised.value)
