# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The arguments of each step of the fleetops.codedeploy.deployment action, as argument specifications (controller
only).

Each step takes its own arguments: ``STEP_ARGUMENT_SPECS`` is plain data, step -> the argument specification
Ansible's ``ArgumentSpecValidator`` reads (types, required, choices, defaults). ``validate_step_args`` checks a
task's arguments against its step's specification before the step runs, so that a missing, mistyped or unknown
argument is one clear message naming the step and the argument, not a traceback. A value that may be null (a
rollback's revision, a push's pull source) is left null: the validator converts only the values given.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import AWS_OPTIONS_SPEC
from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import CREATORS, CREATOR_USER
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import DEFAULT_DEPLOYMENT_ROOT

STEPS = ("create", "start", "record", "finish", "resume", "stop", "last_revision", "mark", "conclude")

# Every step: which step, and the ledger (a directory or s3://bucket/prefix, through ``aws``).
COMMON_SPEC: dict[str, dict[str, Any]] = {
    "step": {"type": "str", "required": True, "choices": list(STEPS)},
    "ledger": {"type": "str"},
    "ledger_dir": {"type": "str"},  # the former name of ledger, read when ledger is not given
    "aws": {"type": "dict", "no_log": True, "options": AWS_OPTIONS_SPEC},
}
# The deployment group, by its names (and its ID when given: default a UUIDv5 of the names).
GROUP_SPEC: dict[str, dict[str, Any]] = {
    "application_name": {"type": "str", "required": True},
    "deployment_group_name": {"type": "str", "required": True},
    "deployment_group_id": {"type": "str"},
}
# The inputs, as deployment_inputs decided them (create: their revision as fetched, or none for a rollback); they
# hold codedeploy_aws.
INPUTS_SPEC: dict[str, dict[str, Any]] = {
    "inputs": {"type": "dict", "required": True, "no_log": True},
}
DEPLOYMENT_SPEC: dict[str, dict[str, Any]] = {
    "deployment_id": {"type": "str", "required": True},
}

STEP_ARGUMENT_SPECS: dict[str, dict[str, dict[str, Any]]] = {
    "create": {
        **COMMON_SPEC,
        **INPUTS_SPEC,
        "fetched": {"type": "dict"},  # revision_fetch's result; null for a rollback: the last successful revision
        "targets": {"type": "list", "elements": "str"},
        "green_targets": {"type": "list", "elements": "str"},
        "creator": {"type": "str", "choices": list(CREATORS), "default": CREATOR_USER},
        "rollback_of": {"type": "str"},
    },
    "start": {
        **COMMON_SPEC, **DEPLOYMENT_SPEC,
        "record": {"type": "dict"},  # check mode: the record create returned, as nothing is stored
        "survey": {"type": "dict"},
        "zones": {"type": "dict"},
        "instance_order": {"type": "list", "elements": "str"},
        "deployment_root": {"type": "str", "default": DEFAULT_DEPLOYMENT_ROOT},
        "revision_cache_dir": {"type": "str"},
        "fetched_path": {"type": "str"},
        "pull": {"type": "dict"},
    },
    "record": {
        **COMMON_SPEC, **DEPLOYMENT_SPEC,
        "hosts": {"type": "list", "elements": "str"},
        "results": {"type": "dict"},
    },
    # The plan of the phase that ends, as the step before returned it; it holds the inputs.
    "finish": {**COMMON_SPEC, "plan": {"type": "dict", "required": True, "no_log": True}},
    "resume": {
        **COMMON_SPEC, **INPUTS_SPEC,
        "deployment_id": {"type": "str"},  # default the group's deployment waiting in Ready
    },
    "stop": {
        **COMMON_SPEC, **INPUTS_SPEC,
        "deployment_id": {"type": "str"},  # default the group's deployment running or waiting in Ready
        # The group's hosts (as create takes them), for the rollback a deployment stopped here asks for.
        "targets": {"type": "list", "elements": "str"},
        "green_targets": {"type": "list", "elements": "str"},
    },
    "last_revision": {**COMMON_SPEC, **GROUP_SPEC},
    # The run's outcomes, as the plan carries them: the deployment's, then its rollback's (deployment_plan).
    "conclude": {**COMMON_SPEC, "outcomes": {"type": "list", "elements": "dict", "required": True}},
    # An instance the run closes: marked as running the group's last successful revision, counted failed, or both.
    "mark": {
        **COMMON_SPEC,
        "deployment_group_id": {"type": "str"},
        "deployment_root": {"type": "str", "default": DEFAULT_DEPLOYMENT_ROOT},
        "marker": {"type": "dict", "options": {
            "deployment_id": {"type": "str", "required": True},
            "complete_time": {"type": "str"},
            "revision": {"type": "dict"},
        }},
        "failure": {"type": "str"},  # what the instance fails with: it failed in the run
    },
}
# What a step's arguments must hold together, as the validator's rules.
STEP_ARGUMENT_RULES: dict[str, dict[str, Any]] = {
    "mark": {"required_one_of": [["marker", "failure"]], "required_by": {"marker": ["deployment_group_id"]}},
}

# What any step takes: the action's _VALID_ARGS.
VALID_ARGS = frozenset(name for spec in STEP_ARGUMENT_SPECS.values() for name in spec)


class StepArgumentError(Exception):
    """A step's arguments do not fit its specification; the message names the step and the arguments."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def validate_step_args(step: Any, args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` validated against the specification of ``step``: converted to their types, with the defaults.

    Raises StepArgumentError, its message naming the step and each argument at fault.
    """
    if not isinstance(step, str) or step not in STEP_ARGUMENT_SPECS:
        raise StepArgumentError(f"step must be one of {', '.join(STEPS)}, not {step!r}")
    spec = STEP_ARGUMENT_SPECS[step]
    # Each argument copied on its own: the validator sets nested defaults (aws) in place, and neither the caller's
    # values nor another argument sharing one of them (inputs holds the aws options too) may change.
    validated = ArgumentSpecValidator(copy.deepcopy(spec), **STEP_ARGUMENT_RULES.get(step, {})).validate(
        {name: copy.deepcopy(value) for name, value in args.items()})
    messages = [f"unsupported arguments: {error.msg}" if isinstance(error, UnsupportedError) else error.msg
                for error in validated.errors]
    # The validator checks a required argument is there, not that it has a value: a null one would be read as "".
    null = sorted(name for name, option in spec.items() if option.get("required") and name in args
                  and args[name] is None)
    if null:
        # Said once, as null: not also as a null that no type converts.
        messages = [message for message in messages if not any(f"argument '{name}' " in message for name in null)]
        messages.append(f"required arguments are null: {', '.join(null)}")
    # One failure may be told twice (a value that is no dict: by the type check and by the no_log one): once.
    messages = [message for message in dict.fromkeys(messages)
                if not any(message != other and message in other for other in messages)]
    if messages:
        raise StepArgumentError(f"step {step}: " + "; ".join(messages))
    return validated.validated_parameters
