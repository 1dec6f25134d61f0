# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    """The ``aws`` option of every module that calls AWS (module_utils/aws.py, AWS_ARGUMENT_SPEC)."""

    DOCUMENTATION = r"""
options:
  aws:
    description:
      - How to reach AWS, the same dict as the role input C(codedeploy_aws).
      - Anything left out is resolved by boto3 as usual, from the environment (E(AWS_REGION) or
        E(AWS_DEFAULT_REGION), E(AWS_ENDPOINT_URL), E(AWS_PROFILE), E(AWS_ACCESS_KEY_ID) and
        E(AWS_SECRET_ACCESS_KEY)), the shared config and credentials files, or an instance role.
      - Credentials are never options; they come from the environment, a profile or an instance role, and are
        never written into a result or a message.
    type: dict
    default: {}
    suboptions:
      region:
        description: The AWS region, for example V(eu-west-1).
        type: str
      endpoint_url:
        description:
          - The endpoint to send requests to instead of the AWS one, for example a moto or LocalStack server
            (V(http://127.0.0.1:5000)) or a VPC endpoint.
        type: str
      profile:
        description: A profile of the shared AWS config and credentials files.
        type: str
      max_attempts:
        description:
          - How many times a request is tried in all, with botocore's V(standard) retry mode (throttling,
            server errors and connection errors, with backoff).
        type: int
        default: 5
requirements:
  - boto3 (on the controller)
"""
