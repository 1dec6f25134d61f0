# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Identifiers of deployments and deployment groups, as the service makes them."""
from __future__ import annotations

import secrets
import uuid

DEPLOYMENT_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Fixed namespace so that an application + group name always gives the same deployment group ID.
DEPLOYMENT_GROUP_NAMESPACE = uuid.UUID("6f1c6f1e-2a44-5d0b-9a8e-0c0de9d3e7a1")


def new_deployment_id() -> str:
    """``d-`` and nine upper-case letters or digits."""
    return "d-" + "".join(secrets.choice(DEPLOYMENT_ID_ALPHABET) for _position in range(9))


def deployment_group_id(application_name: str, deployment_group_name: str) -> str:
    """A UUID stable for an application and group name (UUIDv5), for groups the inventory gives no ID."""
    return str(uuid.uuid5(DEPLOYMENT_GROUP_NAMESPACE, f"{application_name}/{deployment_group_name}"))
