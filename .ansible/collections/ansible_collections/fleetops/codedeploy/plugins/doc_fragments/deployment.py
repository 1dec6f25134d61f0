# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    """Options shared by the host-side modules (revision_bundle, revision_install, lifecycle_event)."""

    DOCUMENTATION = r"""
options:
  deployment_id:
    description:
      - The deployment ID, V(d-) followed by 9 upper-case letters or digits.
      - Names the deployment's directory under the deployment group's directory.
    type: str
    required: true
  deployment_group_id:
    description:
      - The deployment group ID, a UUID. Names the group's directory and its files under
        C(deployment-instructions), exactly as the CodeDeploy agent does.
    type: str
    required: true
  deployment_group_name:
    description: The deployment group name, given to hook scripts as E(DEPLOYMENT_GROUP_NAME).
    type: str
    required: true
  application_name:
    description: The application name, given to hook scripts as E(APPLICATION_NAME).
    type: str
    required: true
  deployment_root:
    description:
      - The agent's deployment root. The default is the CodeDeploy agent's, so a host it managed is taken over
        with its history.
    type: path
    default: /opt/codedeploy-agent/deployment-root
  appspec_filename:
    description:
      - The AppSpec file name inside the revision. When it is absent, C(appspec.yaml) and then C(appspec.yml)
        are tried.
    type: str
    default: appspec.yml
"""
