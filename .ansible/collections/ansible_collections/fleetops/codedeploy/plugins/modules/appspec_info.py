#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: appspec_info
short_description: Parse and validate a CodeDeploy AppSpec file
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Reads an EC2/On-Premises AppSpec (C(appspec.yml)), YAML or JSON, from a file, a revision directory or a
    string, validates it with the rules of the AWS CodeDeploy agent, and returns it normalised, with every
    default filled in.
  - An invalid AppSpec fails the task with the agent's own error message where the agent has one, and with
    the place of the fault in the document (RV(key_path), RV(line) and RV(column)).
  - "It differs from the agent on purpose: an unquoted C(mode: 0644) means 0644 (the agent reads it as the octal
    number 420 and applies 0420); a quoted C(version: \"0.0\") is accepted, as the AWS documentation says to
    write it; a C(files) source or hook C(location) that climbs out of the bundle with C(..) is an error; so is
    a hook C(timeout) above 3600 seconds, the longest CodeDeploy lets a lifecycle event run."
  - "A file the agent would refuse but that is read here warns so: one starting with a UTF-8 byte order mark (the
    agent reads only its first key), one holding a YAML date or timestamp (the agent refuses any)."
  - An AppSpec larger than 1 MiB, nested more than 64 levels deep, or with an integer of more than 4300 digits is
    refused with the place of the fault.
  - Scripts listed under the reserved events C(DownloadBundle), C(Install), C(BlockTraffic) and
    C(AllowTraffic), or under a name that is not a lifecycle event, never run; the module warns about them.
options:
  path:
    description:
      - An AppSpec file, or a directory holding one (an unpacked revision).
      - In a directory, C(appspec.yml) is read, or C(appspec.yaml) when there is no C(appspec.yml).
      - Mutually exclusive with O(content).
    type: path
  content:
    description:
      - The text of an AppSpec, YAML or JSON.
      - Mutually exclusive with O(path).
    type: str
  os:
    description:
      - The operating system of the hosts the revision is deployed to. The AppSpec's C(os) must name it.
      - A C(permissions) section is an error for V(windows), as with the agent.
    type: str
    default: linux
    choices: [linux, windows]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The module changes nothing.
  - "Works on hosts without PyYAML: YAML is then read by the collection's own loader, which reads what AppSpec
    files use (block and flow collections, quoted and block scalars, comments) and refuses the rest by line and
    column."
  - "YAML aliases are refused (\"Unknown alias\"), as the agent on Ruby 3.1 and later refuses them; an anchor
    alone is ignored, and a local tag such as C(!Ref) is read as if absent, as the agent reads them."
seealso:
  - name: AppSpec file reference
    description: The AWS CodeDeploy documentation of the AppSpec file.
    link: https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html
  - module: fleetops.codedeploy.revision_install
  - module: fleetops.codedeploy.lifecycle_event
"""

EXAMPLES = r"""
- name: Validate the AppSpec of a revision before deploying it
  fleetops.codedeploy.appspec_info:
    path: "{{ playbook_dir }}/revisions/webapp"
  delegate_to: localhost
  register: webapp_appspec

- name: Show the scripts of AfterInstall
  ansible.builtin.debug:
    var: webapp_appspec.appspec.hooks.AfterInstall | default([])

- name: Validate an AppSpec given inline
  fleetops.codedeploy.appspec_info:
    content: |
      version: 0.0
      os: linux
      files:
        - source: /
          destination: /var/www/html
      permissions:
        - object: /var/www/html
          owner: www-data
          mode: 0644
          type: [file]
      hooks:
        ApplicationStart:
          - location: scripts/start.sh
            timeout: 300
            runas: www-data

- name: Validate an AppSpec already parsed elsewhere, given as JSON
  fleetops.codedeploy.appspec_info:
    content: "{{ webapp_appspec.appspec | to_json }}"
"""

RETURN = r"""
appspec_path:
  description: The AppSpec file read.
  returned: when O(path) is given
  type: str
  sample: /srv/revisions/webapp/appspec.yml
appspec:
  description: The AppSpec, validated and normalised, defaults filled in.
  returned: success
  type: dict
  contains:
    version:
      description: The AppSpec version, always V(0.0).
      type: str
      returned: success
      sample: "0.0"
    os:
      description: The operating system the AppSpec targets.
      type: str
      returned: success
      sample: linux
    file_exists_behavior:
      description: V(DISALLOW), V(OVERWRITE) or V(RETAIN), or V(null) when the AppSpec does not say.
      type: str
      returned: success
      sample: OVERWRITE
    files:
      description: What the Install copies, in order.
      type: list
      elements: dict
      returned: success
      contains:
        source:
          description: A file or directory of the bundle, relative to the bundle root (V(/) is the whole bundle).
          type: str
          returned: success
          sample: /
        destination:
          description: The directory on the host the source is copied into.
          type: str
          returned: success
          sample: /var/www/html
    permissions:
      description: The permissions the Install applies, in order.
      type: list
      elements: dict
      returned: success
      contains:
        object:
          description: The file or directory on the host.
          type: str
          returned: success
          sample: /var/www/html
        pattern:
          description: The names under RV(appspec.permissions[].object) it applies to; V(**) for all.
          type: str
          returned: success
          sample: "**"
        except:
          description: Names under RV(appspec.permissions[].object) it does not apply to.
          type: list
          elements: str
          returned: success
          sample: []
        type:
          description: The kinds of objects it applies to, V(file) and/or V(directory).
          type: list
          elements: str
          returned: success
          sample: [file, directory]
        owner:
          description: The owner's user name, or V(null).
          type: str
          returned: success
          sample: www-data
        group:
          description: The group name, or V(null).
          type: str
          returned: success
          sample: www-data
        mode:
          description:
            - The mode as octal digits, at least 3 of them (V(7) becomes V(007)), or V(null).
            - An unquoted V(0644) in the AppSpec is V(0644) here.
          type: str
          returned: success
          sample: "0644"
        acls:
          description: ACL entries, as written.
          type: list
          elements: str
          returned: success
          sample: ["u:deploy:rwx", "d:g:web:r-x"]
        context:
          description: The SELinux context, or V(null).
          type: dict
          returned: success
          contains:
            name:
              description: The SELinux user, read from the C(name) key as the agent does, or V(null).
              type: str
              returned: success
              sample: system_u
            type:
              description: The SELinux type.
              type: str
              returned: success
              sample: httpd_sys_content_t
            range:
              description: The SELinux range, or V(null).
              type: str
              returned: success
              sample: s0
    hooks:
      description:
        - "The scripts of each lifecycle event, events in the order of the file; an event without a value is
          left out, and an empty list (C(BeforeInstall: [])) is kept, as the agent keeps it."
        - Each script is a dict with C(location) (relative to the bundle root, spaces stripped), C(timeout)
          (seconds, default 3600), C(runas) (a user name or V(null)) and C(sudo) (a boolean).
      type: dict
      returned: success
      sample:
        ApplicationStart:
          - location: scripts/start.sh
            timeout: 300
            runas: www-data
            sudo: false
error_code:
  description: V(UnknownError), the CodeDeploy error code of an invalid AppSpec.
  returned: failure
  type: str
  sample: UnknownError
key_path:
  description: Where in the AppSpec the fault is; empty for the whole document.
  returned: failure
  type: str
  sample: permissions[1].mode
line:
  description: The line of the fault in the AppSpec text, from 1, when known.
  returned: failure
  type: int
  sample: 12
column:
  description: The column of the fault in the AppSpec text, from 1, when known.
  returned: failure
  type: int
  sample: 11
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import (
    AppSpecError,
    parse_appspec,
    read_appspec_file,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            content=dict(type="str"),
            os=dict(type="str", default="linux", choices=["linux", "windows"]),
        ),
        mutually_exclusive=[("path", "content")],
        required_one_of=[("path", "content")],
        supports_check_mode=True,
    )
    path = module.params["path"]
    result = dict(changed=False)
    try:
        if path is None:
            text, source_name = module.params["content"], "appspec.yml"
        else:
            result["appspec_path"], text = read_appspec_file(path)
            source_name = result["appspec_path"]
        result["appspec"], warnings = parse_appspec(text, module.params["os"], source_name)
    except AppSpecError as error:
        module.fail_json(msg=error.message, error_code=error.error_code, key_path=error.key_path,
                         line=error.line, column=error.column, **result)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
