# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_groups
short_description: CodeDeploy deployment groups as inventory groups
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Builds one group per application, C(codedeploy_<application>), containing one group per deployment group,
    C(codedeploy_<application>_<deployment group>) (characters other than letters, digits and C(_) become
    C(_)), with the hosts CodeDeploy would target.
  - EC2 instances are selected by tag filters or tag sets exactly as CodeDeploy selects them (a flat filter list
    matches an instance with ANY of its tags; a tag set needs a match in EVERY one of its at most three tag
    groups; C(KEY_ONLY), C(VALUE_ONLY), C(KEY_AND_VALUE); case-sensitive), and by Auto Scaling group membership
    (the C(aws:autoscaling:groupName) tag). Running and stopped instances are targets (a stopped one has
    C(codedeploy_instance_state=stopped), and the deploy role counts it failed, as CodeDeploy does); terminated
    and shutting-down ones are not.
  - On-premises instances come from a file or an inline list and are selected by on-premises tag filters or tag
    sets with the same rules.
  - Deployment groups are written in the configuration, or read from the CodeDeploy API
    (O(from_codedeploy_api)), or both; a group in the configuration wins over the API's group of the same name.
  - Each deployment group carries the deploy role's inputs as group variables (C(codedeploy_application_name),
    C(codedeploy_deployment_group_name), C(codedeploy_deployment_group_id), the deployment configuration,
    C(codedeploy_auto_scaling_groups) when it has Auto Scaling groups, and the group's O(applications) C(vars)),
    so C(fleetops.codedeploy.deploy) needs only the group's names.
  - EC2 is asked once per region, with server-side tag filters covering every deployment group, and the answer
    is paginated. The raw answers can be cached (O(cache)); groups and variables are rebuilt from them on every
    run, so changing the grouping needs no cache flush.
  - The configuration file name must end with C(codedeploy.yml) or C(codedeploy.yaml).
  - "Host variables: C(codedeploy_instance_id) (EC2 instance ID or on-premises name), C(codedeploy_instance_kind)
    (V(ec2) or V(on_premises)), C(codedeploy_availability_zone), C(codedeploy_tags), C(codedeploy_instance_state)
    (the EC2 state, V(registered) on premises), C(ansible_host) (EC2: private IP address, else public IP
    address, else public DNS name; on premises: C(address)), and for EC2 C(codedeploy_ec2) (region,
    instance_type, private_ip_address, public_ip_address, private_dns_name, public_dns_name, image_id, vpc_id,
    subnet_id, when set). Use O(compose) to set others, for example C(ansible_host: codedeploy_ec2.public_ip_address)."
  - On a host in more than one deployment group, whose group variables clash (Ansible keeps one group's value), the
    host variable C(codedeploy_deployment_group_inputs) holds each group's inputs (application variables included)
    by inventory group name; the deploy role reads its target group's inputs from it (extra vars still win).
extends_documentation_fragment:
  - constructed
  - inventory_cache
requirements:
  - boto3 (on the controller, when EC2 or the CodeDeploy API is read)
options:
  plugin:
    description: The name of this plugin; it marks the file as this plugin's configuration.
    required: true
    type: str
    choices: [fleetops.codedeploy.deployment_groups]
  regions:
    description:
      - The regions to read EC2 instances (and, with O(from_codedeploy_api), deployment groups) from.
      - Empty means the one region boto3 resolves (E(AWS_REGION), E(AWS_DEFAULT_REGION), the profile's region).
    type: list
    elements: str
    default: []
  endpoint_url:
    description:
      - The endpoint to send AWS requests to instead of AWS's, for example a moto server
        (V(http://127.0.0.1:5000)) or a VPC endpoint. Default is boto3's (E(AWS_ENDPOINT_URL), or AWS).
    type: str
  profile:
    description:
      - A profile of the shared AWS config and credentials files. Default is boto3's (E(AWS_PROFILE)).
      - Credentials are never options; they come from the environment, a profile or an instance role.
    type: str
  max_attempts:
    description:
      - How many times an AWS request is tried in all, with botocore's V(standard) retry mode (throttling, server
        errors and connection errors, with backoff).
    type: int
    default: 5
  on_premises_instances:
    description:
      - The on-premises instances, as a list of C({name, address, tags, zone, vars}), or the path of a YAML or
        JSON file holding that list (relative to this configuration file).
      - C(name) is the inventory host name and C(codedeploy_instance_id); C(address) becomes C(ansible_host);
        C(tags) is a mapping of tag keys to values; C(zone) becomes C(codedeploy_availability_zone); C(vars)
        are host variables (for example the connection variables), applied last.
    type: raw
  applications:
    description:
      - "Deployment groups per application: C({<application>: {deployment_groups: {<group>: {...}}, vars: {...}}}).
        An application's C(vars) are set on its C(codedeploy_<application>) group."
      - "A deployment group's keys: C(ec2_tag_filters) (a list of C({key, value, type}), OR) or C(ec2_tag_set)
        (a list of at most three tag groups, each a list of filters: AND across groups, OR within one), not
        both; C(on_premises_tag_filters) or C(on_premises_tag_set), the same for on-premises instances;
        C(auto_scaling_groups) (names); C(deployment_config_name); C(minimum_healthy_hosts) (C({type:
        HOST_COUNT|FLEET_PERCENT, value}), for a custom configuration); C(deployment_group_id) (a UUID; default
        a UUIDv5 of the application and group names); C(vars) (any group variables, for example
        C(codedeploy_revision))."
      - A filter's C(type) is V(KEY_ONLY), V(VALUE_ONLY) or V(KEY_AND_VALUE); left out, it follows from the
        keys given (C(key) and C(value) mean V(KEY_AND_VALUE)).
    type: dict
    default: {}
  from_codedeploy_api:
    description:
      - Also read every application's deployment groups from the CodeDeploy API in each of O(regions), with their
        tag filters, tag sets, Auto Scaling groups, the deployment configuration (with its minimum healthy hosts when
        custom), deployment style, blue/green, load balancer, automatic rollback, alarm and trigger settings
        (C(codedeploy_trigger_configurations)).
      - A group read from the API selects the EC2 instances of its own region only, and keeps the service's
        deployment group ID, under which hosts that ran the CodeDeploy agent keep their history.
    type: bool
    default: false
  hostnames:
    description:
      - Preference list for an EC2 instance's inventory name, as in amazon.aws's aws_ec2 plugin; the first that
        the instance has, and no other host uses, wins; otherwise the instance ID.
      - A value that is another selected instance's ID, starts with C(-), or holds white space, a comma or a control
        character is passed over (a tag may hold anything).
      - "Entries: C(tag:<Key>), V(instance-id), V(private-ip-address), V(ip-address), V(private-dns-name),
        V(dns-name)."
      - On-premises instances are named by their C(name).
    type: list
    elements: str
    default: [instance-id]
  group_prefix:
    description: The prefix of the application and deployment group names.
    type: str
    default: codedeploy_
"""

EXAMPLES = r"""
# fleet.codedeploy.yml: EC2 instances by tag set, on-premises instances from a file
plugin: fleetops.codedeploy.deployment_groups
regions: [us-east-1]
on_premises_instances: onprem.yml
hostnames: [tag:Name, private-ip-address]
applications:
  webapp:
    deployment_groups:
      prod:
        # Env=prod AND (any instance with a Role tag)
        ec2_tag_set:
          - [{key: Env, value: prod, type: KEY_AND_VALUE}]
          - [{key: Role, type: KEY_ONLY}]
        deployment_config_name: CodeDeployDefault.HalfAtATime
        vars:
          codedeploy_auto_rollback: {enabled: true, events: [DEPLOYMENT_FAILURE]}
      canary:
        ec2_tag_filters: [{key: Name, value: web-1}, {key: Name, value: web-2}]
        auto_scaling_groups: [web-canary-asg]
      datacenter:
        on_premises_tag_filters: [{key: Site, value: dc1}]
        minimum_healthy_hosts: {type: FLEET_PERCENT, value: 75}

# onprem.yml, beside it:
# - name: dc1-web-01
#   address: 10.20.0.11
#   tags: {Site: dc1}
#   zone: dc1-a
#   vars: {ansible_user: deploy}

# Reuse the deployment groups defined in CodeDeploy, cached for an hour, with extra grouping
plugin: fleetops.codedeploy.deployment_groups
regions: [eu-west-1]
from_codedeploy_api: true
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fleetops-inventory
compose:
  ansible_host: codedeploy_ec2.public_ip_address | default(ansible_host)
keyed_groups:
  - key: codedeploy_availability_zone
    prefix: az
"""

import hashlib
import json
import os

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
    AWS_ERRORS, BOTO3_IMPORT_ERROR, HAS_BOTO3, aws_client, describe_aws_error)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_groups import (
    InventoryConfigError, api_group_record, application_vars, describe_filters_for, ec2_instance_record,
    group_from_api_record, parse_applications, parse_hostnames, parse_on_premises_instances, plan_inventory)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.health import PREDEFINED_CONFIGS

CONFIG_SUFFIXES = ("codedeploy.yml", "codedeploy.yaml")
# A page as large as EC2 allows: fewer round trips (and moto re-filters everything for each page).
EC2_PAGE_SIZE = 1000
CACHE_FORMAT = 1


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = "fleetops.codedeploy.deployment_groups"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(CONFIG_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        config = self._read_config_data(path)
        unknown = sorted(key for key in config if key != "plugin" and key not in self._options)
        if unknown:
            raise AnsibleParserError(f"{path}: {unknown[0]}: unknown key: see "
                                     "ansible-doc -t inventory fleetops.codedeploy.deployment_groups")
        try:
            specs = parse_applications(self.get_option("applications"))
            hostnames = parse_hostnames(self.get_option("hostnames"))
            on_premises = self._on_premises_instances(path)
        except InventoryConfigError as error:
            raise AnsibleParserError(f"{path}: {error}") from None
        aws_data = self._aws_data(path, specs, use_cache=cache)
        named = {(spec.application, spec.name) for spec in specs}
        specs += [spec for spec in map(group_from_api_record, aws_data["api_groups"])
                  if (spec.application, spec.name) not in named]
        try:
            plan = plan_inventory(specs, aws_data["ec2"], on_premises, hostnames, self.get_option("group_prefix"),
                                  application_vars(self.get_option("applications")))
        except InventoryConfigError as error:
            raise AnsibleParserError(f"{path}: {error}") from None
        self._populate(plan)

    def _on_premises_instances(self, path):
        source = self.get_option("on_premises_instances")
        if source is None:
            return []
        if not isinstance(source, str):
            return parse_on_premises_instances(source, "on_premises_instances")
        file_path = os.path.join(os.path.dirname(path), os.path.expanduser(source))
        try:
            data = self.loader.load_from_file(file_path, cache="none", trusted_as_template=True)
        except Exception as error:  # the loader raises AnsibleFileNotFound, AnsibleParserError, OSError...
            raise InventoryConfigError("on_premises_instances",
                                       f"cannot read {file_path}: {str(error).splitlines()[0]}") from None
        try:
            return parse_on_premises_instances(data, file_path)
        except InventoryConfigError as error:
            raise InventoryConfigError("on_premises_instances", str(error)) from None

    # ----- AWS, through the cache -----------------------------------------------------------------------------
    def _aws_data(self, path, specs, use_cache):
        """``{"ec2": [instance records], "api_groups": [API group records]}``, from the cache when allowed."""
        query = self._query_fingerprint(specs)
        cache_key = self.get_cache_key(path)
        if use_cache and self.get_option("cache"):
            cached = self._cache.get(cache_key)
            if isinstance(cached, dict) and cached.get("query") == query:
                self.display.vvv(f"{self.NAME}: {path}: AWS data from the cache")
                return cached
        data = {"query": query, **self._read_aws(path, specs)}
        if self.get_option("cache"):
            self._cache[cache_key] = data
        return data

    def _query_fingerprint(self, specs):
        """What the cached AWS data depends on: where it was read, and what was asked."""
        query = {"format": CACHE_FORMAT, "regions": self.get_option("regions"),
                 "endpoint_url": self.get_option("endpoint_url"), "profile": self.get_option("profile"),
                 "from_codedeploy_api": self.get_option("from_codedeploy_api"),
                 "filters": describe_filters_for(specs)}
        return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()

    def _read_aws(self, path, specs):
        regions = list(dict.fromkeys(self.get_option("regions") or [None]))
        api_groups = []
        if self.get_option("from_codedeploy_api"):
            for region in regions:
                api_groups += self._call(path, "CodeDeploy ListApplications/ListDeploymentGroups/GetDeploymentGroup",
                                         "codedeploy", region, self._read_deployment_groups)
        filters = describe_filters_for(specs + [group_from_api_record(record) for record in api_groups])
        ec2 = []
        if filters is not None:
            for region in regions:
                ec2 += self._call(path, "EC2 DescribeInstances", "ec2", region, self._describe_instances, filters)
        return {"ec2": ec2, "api_groups": api_groups}

    def _call(self, path, what, service, region, read, *args):
        """``read(client, region, *args)`` with a client of ``service``; an AWS failure is one line naming ``what``."""
        if not HAS_BOTO3:
            raise AnsibleError(f"{path}: boto3 is required on the controller for {what}: install it in "
                               f"the Python that runs Ansible ({BOTO3_IMPORT_ERROR.strip().splitlines()[-1]})")
        try:
            client = aws_client(service, region=region, endpoint_url=self.get_option("endpoint_url"),
                                profile=self.get_option("profile"), max_attempts=self.get_option("max_attempts"))
            return read(client, client.meta.region_name, *args)
        except AWS_ERRORS as error:
            where = f" in {region}" if region else ""
            raise AnsibleError(f"{path}: {describe_aws_error(error, what + where)}") from None

    def _describe_instances(self, client, region, filters):
        pages = client.get_paginator("describe_instances").paginate(
            Filters=filters, PaginationConfig={"PageSize": EC2_PAGE_SIZE})
        records = [ec2_instance_record(instance, region)
                   for page in pages for reservation in page["Reservations"] for instance in reservation["Instances"]]
        self.display.vvv(f"{self.NAME}: EC2 DescribeInstances in {region} with {filters}: {len(records)} instances")
        return records

    def _read_deployment_groups(self, client, region):
        records = []
        config_infos = {}
        for page in client.get_paginator("list_applications").paginate():
            for application in page["applications"]:
                for group_page in client.get_paginator("list_deployment_groups").paginate(
                        applicationName=application):
                    for name in group_page["deploymentGroups"]:
                        info = client.get_deployment_group(applicationName=application, deploymentGroupName=name)
                        info = info["deploymentGroupInfo"]
                        config_name = info.get("deploymentConfigName")
                        if config_name and config_name not in PREDEFINED_CONFIGS and config_name not in config_infos:
                            config_infos[config_name] = client.get_deployment_config(
                                deploymentConfigName=config_name)["deploymentConfigInfo"]
                        records.append(api_group_record(application, info, region, config_infos.get(config_name)))
        self.display.vvv(f"{self.NAME}: CodeDeploy in {region}: {len(records)} deployment groups")
        return records

    # ----- the inventory ---------------------------------------------------------------------------------------
    def _populate(self, plan):
        for name, host_vars in plan.hosts.items():
            self.inventory.add_host(name)
            for key, value in host_vars.items():
                self.inventory.set_variable(name, key, value)
        for group, group_plan in plan.groups.items():
            self.inventory.add_group(group)
            for key, value in group_plan.group_vars.items():
                self.inventory.set_variable(group, key, value)
        for group, group_plan in plan.groups.items():
            for host in group_plan.hosts:
                self.inventory.add_child(group, host)
            for child in group_plan.children:
                self.inventory.add_child(group, child)
        strict = self.get_option("strict")
        for name, host_vars in plan.hosts.items():
            self._set_composite_vars(self.get_option("compose"), host_vars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), host_vars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, name, strict=strict)
