# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment_groups inventory plugin through the real ``ansible-inventory``, against the moto server.

AWS requests are counted by a small reverse proxy between the plugin and moto (moto keeps no request log): the
plugin's ``endpoint_url`` is the proxy, which forwards every request unchanged and records its action.
"""
from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import yaml

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_ids import deployment_group_id
from support.deployments import addresses, local, make_revision, records

REPO_ROOT = Path(__file__).resolve().parents[2]
AMI = "ami-12c6146b"
TARGET_STATES = ["pending", "running", "stopping", "stopped"]


class CountingProxy:
    """Forwards HTTP requests to ``upstream`` and counts them by AWS action."""

    def __init__(self, upstream: str) -> None:
        self.actions: Counter[str] = Counter()
        target = urllib.parse.urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_request(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.actions[proxy.action(self.headers, body)] += 1
                upstream_connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {key: value for key, value in self.headers.items() if key.lower() != "host"}
                upstream_connection.request(self.command, self.path, body=body, headers=headers)
                response = upstream_connection.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_request

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def action(headers, body: bytes) -> str:
        """EC2 (query protocol) names the action in the form body; CodeDeploy (JSON) in X-Amz-Target."""
        if headers.get("X-Amz-Target"):
            return headers["X-Amz-Target"].split(".")[-1]
        return urllib.parse.parse_qs(body.decode()).get("Action", ["?"])[0]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(aws):
    counting = CountingProxy(aws["endpoint_url"])
    yield counting
    counting.close()


@pytest.fixture
def clients(aws):
    def client(service: str, region: str = "us-east-1"):
        return boto3.client(service, region_name=region, endpoint_url=aws["endpoint_url"],
                            aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"])
    return client


def launch(ec2, tags: dict, count: int = 1) -> list[str]:
    reservation = ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    return [instance["InstanceId"] for instance in reservation["Instances"]]


def write_config(tmp_path: Path, config: dict, name: str = "fleet.codedeploy.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"plugin": "fleetops.codedeploy.deployment_groups", **config}, sort_keys=False))
    return path


def ansible_inventory(view, path: Path, *options: str, env: dict | None = None):
    """``ansible-inventory -i path ...`` as a user runs it; a source that fails to parse fails the command."""
    return view.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(path), *options],
                    env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", **(env or {})})


def inventory_list(view, path: Path, *options: str) -> dict:
    run = ansible_inventory(view, path, "--list", *options)
    assert run.rc == 0, run.output
    return json.loads(run.stdout)


def members(listing: dict, group: str) -> set[str]:
    return set(listing.get(group, {}).get("hosts", []))


def plain(value):
    """Host vars as ansible-inventory prints them, without its ``__ansible_unsafe`` wrappers."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def kv(key, value):
    return {"key": key, "value": value, "type": "KEY_AND_VALUE"}


def group_vars(listing: dict, group: str) -> dict:
    """A group's own variables (ansible-inventory --export keeps them on the group)."""
    return plain(listing.get(group, {}).get("vars", {}))


# ----- matching ------------------------------------------------------------------------------------------------
EXAMPLE_4_INSTANCES = {
    "beta-north-medium": ({"Environment": "Beta", "Region": "North", "Type": "t2.medium"}, True),
    "staging-east-large": ({"Environment": "Staging", "Region": "East", "Type": "t2.large"}, True),
    "beta-west-medium": ({"Environment": "Beta", "Region": "West", "Type": "t2.medium"}, False),
    "staging-east-micro": ({"Environment": "Staging", "Region": "East", "Type": "t2.micro"}, False),
    "production-south-large": ({"Environment": "Production", "Region": "South", "Type": "t2.large"}, False),
}


def test_tag_examples_give_the_documented_membership(fleet, proxy, clients, tmp_path):
    view = fleet(1)
    east, west = clients("ec2"), clients("ec2", "eu-west-1")
    ids = {name: launch(east, {"Name": name, **tags})[0] for name, (tags, included) in EXAMPLE_4_INSTANCES.items()}
    example_4_members = {ids[name] for name, (tags, included) in EXAMPLE_4_INSTANCES.items() if included}
    ids["west-south"] = launch(west, {"Name": "west-south", "Region": "South"})[0]
    ids["lower-north"] = launch(east, {"Name": "lower-north", "Region": "north"})[0]
    for name, tags in {"A": {}, "B": {"Env": "x"}, "a": {}, "C": {}}.items():
        ids[f"name-{name}"] = launch(east, {"Name": name, **tags})[0]
    for name, tags in {"role-empty": {"Role": ""}, "role-db": {"Role": "db"}, "role-lower": {"role": "db"},
                       "role-as-value": {"Kind": "Role"}, "blue": {"Color": "blue"}, "blue-shade": {"Shade": "blue"},
                       "blue-upper": {"Color": "Blue"}, "blue-as-key": {"blue": "yes"}}.items():
        ids[name] = launch(east, {"Id": name, **tags})[0]
    config = write_config(tmp_path, {"regions": ["us-east-1", "eu-west-1"], "endpoint_url": proxy.url, "applications": {
        "shop": {"deployment_groups": {
            "example4": {"ec2_tag_set": [
                [kv("Environment", "Beta"), kv("Environment", "Staging")],
                [kv("Region", "North"), kv("Region", "South"), kv("Region", "East")],
                [kv("Type", "t2.medium"), kv("Type", "t2.large")]]},
            "example2": {"ec2_tag_set": [[kv("Region", "North"), kv("Region", "South"), kv("Region", "East")]]},
            "flat": {"ec2_tag_filters": [kv("Name", "A"), kv("Name", "B")]},
            "key-only": {"ec2_tag_filters": [{"key": "Role", "type": "KEY_ONLY"}]},
            "value-only": {"ec2_tag_filters": [{"value": "blue", "type": "VALUE_ONLY"}]},
        }}}})

    listing = inventory_list(view, config)

    def named(*names):
        return {ids[name] for name in names}

    assert members(listing, "codedeploy_shop_example4") == example_4_members
    assert members(listing, "codedeploy_shop_example2") == named(
        "beta-north-medium", "staging-east-large", "staging-east-micro", "production-south-large", "west-south")
    assert members(listing, "codedeploy_shop_flat") == named("name-A", "name-B")
    assert members(listing, "codedeploy_shop_key_only") == named("role-empty", "role-db")
    assert members(listing, "codedeploy_shop_value_only") == named("blue", "blue-shade")
    assert set(listing["codedeploy_shop"]["children"]) == {
        "codedeploy_shop_example4", "codedeploy_shop_example2", "codedeploy_shop_flat", "codedeploy_shop_key_only",
        "codedeploy_shop_value_only"}
    assert plain(listing["_meta"]["hostvars"][ids["west-south"]])["codedeploy_availability_zone"].startswith("eu-west-1")
    # One DescribeInstances per region for all five deployment groups, and nothing else.
    assert proxy.actions == Counter({"DescribeInstances": 2})


def test_auto_scaling_members_and_stopped_but_not_terminated_instances(fleet, proxy, clients, tmp_path):
    view = fleet(1)
    ec2, autoscaling = clients("ec2"), clients("autoscaling")
    autoscaling.create_launch_configuration(LaunchConfigurationName="web", ImageId=AMI, InstanceType="t3.micro")
    for name, size in (("web-asg", 2), ("other-asg", 1)):
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName="web", MinSize=size,
                                              MaxSize=size, DesiredCapacity=size, AvailabilityZones=["us-east-1a"])
    asg_members = {i["InstanceId"] for group in autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"] for i in group["Instances"]}
    running, stopped, terminated = launch(ec2, {"Env": "prod"}, count=3)
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.terminate_instances(InstanceIds=[terminated])
    config = write_config(tmp_path, {"endpoint_url": proxy.url, "applications": {"web": {"deployment_groups": {
        "prod": {"ec2_tag_filters": [kv("Env", "prod")], "auto_scaling_groups": ["web-asg"]}}}}})

    listing = inventory_list(view, config)

    assert len(asg_members) == 2
    assert members(listing, "codedeploy_web_prod") == asg_members | {running, stopped}
    states = {host: plain(hostvars)["codedeploy_instance_state"]
              for host, hostvars in listing["_meta"]["hostvars"].items()}
    assert states == {**{member: "running" for member in asg_members}, running: "running", stopped: "stopped"}
    assert proxy.actions == Counter({"DescribeInstances": 1})


def test_on_premises_file_and_hosts_in_two_groups(fleet, proxy, clients, tmp_path):
    view = fleet(1)
    both = launch(clients("ec2"), {"Env": "prod", "Role": "web"})[0]
    only_env = launch(clients("ec2"), {"Env": "prod"})[0]
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "onprem.yml").write_text(yaml.safe_dump([
        {"name": "dc1-web-1", "address": "192.0.2.11", "tags": {"Site": "dc1", "Tier": "web"}, "zone": "dc1-a",
         "vars": {"ansible_user": "deploy", "rack": 7}},
        {"name": "dc1-db-1", "address": "192.0.2.12", "tags": {"Site": "dc1", "Tier": "db"}},
        {"name": "dc2-web-1", "address": "192.0.2.21", "tags": {"Site": "dc2", "Tier": "web"}},
        {"name": "dc3-web-1", "address": "192.0.2.31", "tags": {"Site": "dc3", "Tier": "web"}},
    ]))
    config = write_config(tmp_path, {
        "endpoint_url": proxy.url, "on_premises_instances": "sites/onprem.yml",
        "applications": {"web": {"deployment_groups": {
            "dc1": {"on_premises_tag_filters": [kv("Site", "dc1")]},
            "frontends": {"on_premises_tag_set": [[kv("Tier", "web")], [kv("Site", "dc1"), kv("Site", "dc2")]],
                          "ec2_tag_filters": [{"key": "Role", "type": "KEY_ONLY"}]},
            "prod": {"ec2_tag_filters": [kv("Env", "prod")]},
        }}}})

    listing = inventory_list(view, config, "--export")

    assert members(listing, "codedeploy_web_dc1") == {"dc1-web-1", "dc1-db-1"}
    assert members(listing, "codedeploy_web_frontends") == {"dc1-web-1", "dc2-web-1", both}
    assert members(listing, "codedeploy_web_prod") == {both, only_env}
    assert "dc3-web-1" not in listing["_meta"]["hostvars"]
    assert plain(listing["_meta"]["hostvars"]["dc1-web-1"]) == {
        "codedeploy_instance_id": "dc1-web-1", "codedeploy_instance_kind": "on_premises",
        "codedeploy_availability_zone": "dc1-a", "codedeploy_tags": {"Site": "dc1", "Tier": "web"},
        "codedeploy_instance_state": "registered", "ansible_host": "192.0.2.11", "ansible_user": "deploy", "rack": 7,
        # In two deployment groups, whose group vars clash on it: each group's inputs, by inventory group.
        "codedeploy_deployment_group_inputs": {
            f"codedeploy_web_{name}": {"codedeploy_application_name": "web", "codedeploy_deployment_group_name": name,
                                       "codedeploy_deployment_group_id": deployment_group_id("web", name)}
            for name in ("dc1", "frontends")}}
    assert "codedeploy_deployment_group_inputs" not in listing["_meta"]["hostvars"]["dc1-db-1"]
    assert group_vars(listing, "codedeploy_web_frontends") == {
        "codedeploy_application_name": "web", "codedeploy_deployment_group_name": "frontends",
        "codedeploy_deployment_group_id": deployment_group_id("web", "frontends")}


def test_hosts_in_two_applications_deploy_with_each_groups_own_inputs(fleet, proxy, tmp_path):
    """Two applications' deployment groups select the same two hosts, with different deployment configurations:
    each deployment gets its own group's, whichever group's variables Ansible kept on the hosts; extra vars win."""
    view = fleet(2)
    connection = {"ansible_user": "root", "ansible_ssh_private_key_file": str(view.fleet.client_key),
                  "ansible_ssh_common_args": "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no "
                                             "-o LogLevel=ERROR", "ansible_python_interpreter": "/usr/bin/python3"}
    config = write_config(tmp_path, {"endpoint_url": proxy.url, "on_premises_instances": [
        {"name": name, "address": address, "tags": {"Tier": "web"}, "vars": connection}
        for name, address in addresses(view).items()],
        "applications": {
            # The same files to the same place: the second application to install needs to overwrite them.
            "search": {"deployment_groups": {"prod": {"on_premises_tag_filters": [kv("Tier", "web")],
                                                      "deployment_config_name": "CodeDeployDefault.OneAtATime",
                                                      "vars": {"codedeploy_file_exists_behavior": "RETAIN"}}}},
            "shop": {"deployment_groups": {"prod": {"on_premises_tag_filters": [kv("Tier", "web")],
                                                    "deployment_config_name": "CodeDeployDefault.AllAtOnce",
                                                    "vars": {"codedeploy_file_exists_behavior": "OVERWRITE"}}}}}})
    revision = local(make_revision(tmp_path / "tree", "1"))
    ledger = tmp_path / "ledger"

    def deploy_app(application: str, **extra) -> dict:
        run = view.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(config),
                        "fleetops.codedeploy.deploy", "-e", json.dumps({
                            "codedeploy_application_name": application, "codedeploy_deployment_group_name": "prod",
                            "codedeploy_revision": revision, "codedeploy_ledger_dir": str(ledger), **extra})])
        assert run.rc == 0, run.output
        return records(ledger)[-1]

    search = deploy_app("search")
    assert (search["application_name"], search["deployment_config_name"]) == ("search", "CodeDeployDefault.OneAtATime")
    assert [len(wave["instances"]) for wave in search["waves"]] == [1, 1]
    shop = deploy_app("shop")
    assert (shop["application_name"], shop["deployment_config_name"]) == ("shop", "CodeDeployDefault.AllAtOnce")
    assert [len(wave["instances"]) for wave in shop["waves"]] == [2]
    assert shop["deployment_group_id"] == deployment_group_id("shop", "prod") != search["deployment_group_id"]
    given = deploy_app("search", codedeploy_deployment_config_name="CodeDeployDefault.AllAtOnce")
    assert given["deployment_config_name"] == "CodeDeployDefault.AllAtOnce"
    assert proxy.actions == Counter()


def test_on_premises_only_inventory_makes_no_aws_request(fleet, proxy, tmp_path):
    view = fleet(1)
    config = write_config(tmp_path, {"endpoint_url": proxy.url, "on_premises_instances": [
        {"name": "dc1-web-1", "tags": {"Site": "dc1"}}],
        "applications": {"web": {"deployment_groups": {"dc1": {"on_premises_tag_filters": [kv("Site", "dc1")]}}}}})
    assert members(inventory_list(view, config), "codedeploy_web_dc1") == {"dc1-web-1"}
    assert proxy.actions == Counter()


# ----- the CodeDeploy API ----------------------------------------------------------------------------------------
def test_from_codedeploy_api_reproduces_the_services_groups(fleet, proxy, clients, tmp_path):
    view = fleet(1)
    ec2, codedeploy = clients("ec2"), clients("codedeploy")
    prod_web = launch(ec2, {"Name": "web-1", "Env": "prod", "Role": "web"})[0]
    prod_norole = launch(ec2, {"Name": "web-2", "Env": "prod"})[0]
    codedeploy.create_application(applicationName="legacy", computePlatform="Server")
    role = "arn:aws:iam::123456789012:role/codedeploy"
    created = codedeploy.create_deployment_group(
        applicationName="legacy", deploymentGroupName="prod", serviceRoleArn=role,
        deploymentConfigName="CodeDeployDefault.HalfAtATime",
        ec2TagSet={"ec2TagSetList": [[{"Key": "Env", "Value": "prod", "Type": "KEY_AND_VALUE"}],
                                     [{"Key": "Role", "Type": "KEY_ONLY"}]]},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        loadBalancerInfo={"targetGroupInfoList": [{"name": "web-tg"}]},
        deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        triggerConfigurations=[{"triggerName": "chat", "triggerTargetArn": "arn:aws:sns:us-east-1:123456789012:chat",
                                "triggerEvents": ["DeploymentFailure", "InstanceFailure"]}])
    codedeploy.create_deployment_group(
        applicationName="legacy", deploymentGroupName="canary", serviceRoleArn=role,
        ec2TagFilters=[{"Key": "Name", "Value": "web-2", "Type": "KEY_AND_VALUE"}],
        onPremisesInstanceTagFilters=[{"Key": "Site", "Value": "dc1", "Type": "KEY_AND_VALUE"}])
    config = write_config(tmp_path, {
        "endpoint_url": proxy.url, "from_codedeploy_api": True,
        "on_premises_instances": [{"name": "dc1-web-1", "tags": {"Site": "dc1"}}],
        # A group written in the configuration wins over the API's group of the same name.
        "applications": {"legacy": {"deployment_groups": {"override": {"ec2_tag_filters": [kv("Name", "web-1")]}}}},
    })

    listing = inventory_list(view, config, "--export")

    assert members(listing, "codedeploy_legacy_prod") == {prod_web}
    assert members(listing, "codedeploy_legacy_canary") == {prod_norole, "dc1-web-1"}
    assert members(listing, "codedeploy_legacy_override") == {prod_web}
    assert group_vars(listing, "codedeploy_legacy_prod") == {
        "codedeploy_application_name": "legacy", "codedeploy_deployment_group_name": "prod",
        "codedeploy_deployment_group_id": created["deploymentGroupId"],
        "codedeploy_deployment_config_name": "CodeDeployDefault.HalfAtATime",
        "codedeploy_deployment_style": {"deployment_type": "IN_PLACE", "deployment_option": "WITH_TRAFFIC_CONTROL"},
        "codedeploy_load_balancer_info": {"target_groups": ["web-tg"]},
        "codedeploy_auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        "codedeploy_trigger_configurations": [{"trigger_name": "chat",
                                               "trigger_target_arn": "arn:aws:sns:us-east-1:123456789012:chat",
                                               "trigger_events": ["DeploymentFailure", "InstanceFailure"]}],
    }
    # (moto 5.2.5 does not keep alarmConfiguration; its mapping is covered by the unit tests.)
    assert proxy.actions == Counter({"ListApplications": 1, "ListDeploymentGroups": 1, "GetDeploymentGroup": 2,
                                     "DescribeInstances": 1})


def test_config_group_replaces_the_api_group_of_the_same_name(fleet, proxy, clients, tmp_path):
    view = fleet(1)
    web1 = launch(clients("ec2"), {"Name": "web-1"})[0]
    launch(clients("ec2"), {"Name": "web-2"})
    codedeploy = clients("codedeploy")
    codedeploy.create_application(applicationName="legacy", computePlatform="Server")
    codedeploy.create_deployment_group(applicationName="legacy", deploymentGroupName="prod",
                                       serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
                                       ec2TagFilters=[{"Key": "Name", "Value": "web-2", "Type": "KEY_AND_VALUE"}])
    config = write_config(tmp_path, {"endpoint_url": proxy.url, "from_codedeploy_api": True, "applications": {
        "legacy": {"deployment_groups": {"prod": {"ec2_tag_filters": [kv("Name", "web-1")]}}}}})

    listing = inventory_list(view, config, "--export")

    assert members(listing, "codedeploy_legacy_prod") == {web1}
    assert group_vars(listing, "codedeploy_legacy_prod")["codedeploy_deployment_group_id"] == \
        deployment_group_id("legacy", "prod")


# ----- constructed, hostnames, cache -----------------------------------------------------------------------------
def test_compose_keyed_groups_groups_and_hostnames(fleet, proxy, clients, tmp_path):
    view = fleet(1)
    ec2 = clients("ec2")
    web = launch(ec2, {"Name": "web-1", "Env": "prod", "Role": "web"})[0]
    db = launch(ec2, {"Env": "prod", "Role": "db"})[0]
    ec2.stop_instances(InstanceIds=[db])
    public_ip = ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    config = write_config(tmp_path, {
        "endpoint_url": proxy.url, "hostnames": ["tag:Name", "instance-id"],
        "applications": {"web": {"deployment_groups": {"prod": {"ec2_tag_filters": [kv("Env", "prod")]}}}},
        "compose": {"ansible_host": "codedeploy_ec2.public_ip_address | default(ansible_host)",
                    "role": "codedeploy_tags.Role"},
        "groups": {"webservers": "codedeploy_tags.Role == 'web'"},
        "keyed_groups": [{"key": "codedeploy_instance_state", "prefix": "state"},
                         {"key": "codedeploy_tags.Role", "prefix": "role"}],
    })

    listing = inventory_list(view, config)

    assert members(listing, "codedeploy_web_prod") == {"web-1", db}
    assert members(listing, "webservers") == {"web-1"}
    assert members(listing, "state_running") == {"web-1"}
    assert members(listing, "state_stopped") == {db}
    assert members(listing, "role_db") == {db}
    web_vars = plain(listing["_meta"]["hostvars"]["web-1"])
    assert (web_vars["ansible_host"], web_vars["role"], web_vars["codedeploy_instance_id"]) == (public_ip, "web", web)


def test_cache_avoids_a_second_aws_call(fleet, proxy, clients, tmp_path):
    view = fleet(1)
    ec2 = clients("ec2")
    first = launch(ec2, {"Env": "prod"})[0]
    config = write_config(tmp_path, {
        "endpoint_url": proxy.url, "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(tmp_path / "cache"), "cache_timeout": 600,
        "applications": {"web": {"deployment_groups": {"prod": {"ec2_tag_filters": [kv("Env", "prod")]}}}}})

    assert members(inventory_list(view, config), "codedeploy_web_prod") == {first}
    assert proxy.actions == Counter({"DescribeInstances": 1})
    second = launch(ec2, {"Env": "prod"})[0]
    # From the cache: no request, and the new instance is not seen yet.
    assert members(inventory_list(view, config), "codedeploy_web_prod") == {first}
    assert proxy.actions == Counter({"DescribeInstances": 1})
    # A flush reads AWS again and refreshes the cache.
    assert members(inventory_list(view, config, "--flush-cache"), "codedeploy_web_prod") == {first, second}
    assert proxy.actions == Counter({"DescribeInstances": 2})
    assert members(inventory_list(view, config), "codedeploy_web_prod") == {first, second}
    assert proxy.actions == Counter({"DescribeInstances": 2})
    # Groups are rebuilt from the cached data on every run: a new group asking for the same data needs no request;
    # one asking for other data makes the cached answer unusable.
    settings = yaml.safe_load(config.read_text())
    settings["applications"]["web"]["deployment_groups"]["again"] = {"ec2_tag_filters": [kv("Env", "prod")]}
    config.write_text(yaml.safe_dump(settings))
    assert members(inventory_list(view, config), "codedeploy_web_again") == {first, second}
    assert proxy.actions == Counter({"DescribeInstances": 2})
    settings["applications"]["web"]["deployment_groups"]["test"] = {"ec2_tag_filters": [kv("Env", "test")]}
    config.write_text(yaml.safe_dump(settings))
    assert members(inventory_list(view, config), "codedeploy_web_prod") == {first, second}
    assert proxy.actions == Counter({"DescribeInstances": 3})


# ----- errors ------------------------------------------------------------------------------------------------------
class NotAws:
    """An HTTP server that answers every request with an HTML page, like a wrong endpoint_url would."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                page = b"<!doctype html><html><title>Welcome</title></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


EC2_GROUP = {"web": {"deployment_groups": {"prod": {"ec2_tag_filters": [kv("Env", "prod")]}}}}
GROUP_KEY = "applications.web.deployment_groups.prod"
NO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_EC2_METADATA_DISABLED": "true",
                  "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}


@pytest.mark.parametrize("config, env, message", [
    ({"region": "us-east-1"}, {}, "{file}: region: unknown key: see ansible-doc -t inventory "
                                  "fleetops.codedeploy.deployment_groups"),
    ({"applications": {"web": {"deployment_groups": {"prod": {"ec2_tag_filters": [
        {"key": "Env", "value": "prod", "type": "KEY_VALUE"}]}}}}}, {},
     f"{{file}}: {GROUP_KEY}.ec2_tag_filters[0].type: 'KEY_VALUE' is not one of KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE"),
    ({"applications": {"web": {"deployment_groups": {"prod": {"ec2_tag_set": [[kv("A", "1")]] * 4}}}}}, {},
     f"{{file}}: {GROUP_KEY}.ec2_tag_set: has 4 tag groups; the maximum allowed limit is 3"),
    ({"applications": {"web": {"deployment_groups": {"prod": {
        "ec2_tag_filters": [kv("A", "1")], "ec2_tag_set": [[kv("A", "1")]]}}}}}, {},
     f"{{file}}: {GROUP_KEY}.ec2_tag_set: cannot be used together with ec2_tag_filters (the service's "
     "InvalidEC2TagCombinationException): keep one of them"),
    ({"applications": {"web": {"deployment_groups": {"prod": {"ec2_tag_filters": [kv("A", "1")], "tags": []}}}}}, {},
     f"{{file}}: {GROUP_KEY}.tags: unknown key: use ec2_tag_filters, ec2_tag_set, on_premises_tag_filters, "
     "on_premises_tag_set, auto_scaling_groups, deployment_config_name, minimum_healthy_hosts, "
     "deployment_group_id, vars"),
    ({"on_premises_instances": "missing.yml", "applications": EC2_GROUP}, {},
     "{file}: on_premises_instances: cannot read {dir}/missing.yml: "),
    ({"on_premises_instances": "bad.yml", "applications": EC2_GROUP}, {},
     "{file}: on_premises_instances: {dir}/bad.yml[0].tags: must be a mapping of tag keys to values, not a list"),
    ({"endpoint_url": "{closed}", "max_attempts": 1, "applications": EC2_GROUP}, {},
     "{file}: EC2 DescribeInstances failed: cannot reach {closed}: "),
    ({"endpoint_url": "{not_aws}", "max_attempts": 1, "applications": EC2_GROUP}, {},
     "{file}: EC2 DescribeInstances failed: the endpoint's answer is not an AWS response (check endpoint_url): "),
    ({"endpoint_url": "{moto}", "applications": EC2_GROUP}, NO_CREDENTIALS,
     "{file}: EC2 DescribeInstances failed: no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
     "a profile, or an instance role"),
], ids=["unknown-key", "bad-type", "four-tag-groups", "filters-and-set", "unknown-group-key", "no-onprem-file",
        "bad-onprem-file", "endpoint-down", "endpoint-not-aws", "no-credentials"])
def test_errors_are_one_line_naming_the_file_and_key(fleet, aws, tmp_path, config, env, message):
    view = fleet(1)
    (tmp_path / "bad.yml").write_text(yaml.safe_dump([{"name": "dc1", "tags": ["Site", "dc1"]}]))
    urls = {"{closed}": closed_port_url(), "{not_aws}": NotAws().url, "{moto}": aws["endpoint_url"]}
    config = {key: urls.get(value, value) if isinstance(value, str) else value for key, value in config.items()}
    path = write_config(tmp_path, config)

    run = ansible_inventory(view, path, "--list", env={"ANSIBLE_INVENTORY_ENABLED": "auto", **env})

    expected = message.format(file=path, dir=tmp_path, **{key.strip("{}"): url for key, url in urls.items()})
    assert run.rc != 0
    assert f"Failed to parse inventory with 'auto' plugin: {expected}" in run.stderr, run.stderr
    assert "Traceback" not in run.output


# ----- a mixed inventory, and a deployment through it -------------------------------------------------------------
def test_mixed_inventory_graph_and_a_deployment_to_on_premises_fleet_hosts(fleet, proxy, clients, tmp_path):
    view = fleet(2)
    fleet_inventory = yaml.safe_load(view.inventory.read_text())["all"]["children"]["fleet"]
    connection = fleet_inventory["vars"]
    web = launch(clients("ec2"), {"Name": "web-1", "Env": "prod"})[0]
    config = write_config(tmp_path, {
        "endpoint_url": proxy.url, "hostnames": ["tag:Name"],
        "on_premises_instances": [{"name": host, "address": fleet_inventory["hosts"][host]["ansible_host"],
                                   "tags": {"Site": "lab"}, "vars": connection} for host in view.hosts],
        "applications": {"webapp": {"deployment_groups": {
            "cloud": {"ec2_tag_filters": [kv("Env", "prod")]},
            "lab": {"on_premises_tag_filters": [kv("Site", "lab")],
                    "deployment_config_name": "CodeDeployDefault.AllAtOnce",
                    "vars": {"codedeploy_ledger_dir": str(tmp_path / "ledger"),
                             "codedeploy_revision": {"source": "local",
                                                     "path": str(REPO_ROOT / "examples" / "revisions" / "webapp")}}},
        }}}})

    graph = ansible_inventory(view, config, "--graph")

    assert graph.rc == 0, graph.output
    assert graph.stdout.splitlines() == [
        "@all:", "  |--@ungrouped:", "  |--@codedeploy_webapp:", "  |  |--@codedeploy_webapp_cloud:",
        "  |  |  |--web-1", "  |  |--@codedeploy_webapp_lab:", *[f"  |  |  |--{host}" for host in view.hosts]]
    assert web

    # The group's variables carry everything the deploy playbook needs but the group's names.
    run = view.run([str(Path(sys.executable).parent / "ansible-playbook"), "fleetops.codedeploy.deploy", "-i",
                    str(config), "-e", "codedeploy_application_name=webapp",
                    "-e", "codedeploy_deployment_group_name=lab"])

    assert run.rc == 0, run.output
    for host in view.hosts:
        assert view.path(host, "/var/www/webapp/VERSION").read_text() == \
            (REPO_ROOT / "examples/revisions/webapp/app/VERSION").read_text()
        assert view.path(host, "/etc/fleet-app/webapp.status").read_text().startswith("running ")
