# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deployment's inputs, decided once on the controller: where each comes from, its type, its revision.

Inputs reach a run from extra vars (an AWX survey's answers are strings), from the target group's host and group
vars (the deployment_groups inventory plugin sets them on each deployment group) and from the role's argument
specification (the defaults). ``resolve_inputs`` picks each input's value, converts it to the type the
specification names (``"false"`` is false, ``"50"`` is 50, a JSON text is a dict or a list), validates it, and reads
a revision given as a string; everything a run decides is decided here, before anything is created.
"""
from __future__ import annotations

import copy
import difflib
import json
import os
import re
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import parse_qs, urlsplit

from ansible.inventory.manager import InventoryManager
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_flow import RUN_STATS_NAMES
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.ledger import revision_cache_dir

# The name of the target group when no codedeploy_target_group is given: the group the inventory plugin makes.
TARGET_GROUP_PATTERN = "codedeploy_{application}_{group}"
# Bundle types by file name ending, longest first.
BUNDLE_EXTENSIONS = ((".tar.gz", "tgz"), (".tgz", "tgz"), (".tar", "tar"), (".zip", "zip"))
# Inputs renamed: the former name is still read (the role's argument specification has no aliases).
FORMER_NAMES = {"codedeploy_ledger": ("codedeploy_ledger_dir",)}
# What the playbooks read besides the inputs (playbooks/vars/controller.yml), which an extra var overrides: where the
# controller's steps run, the switch to plain linear, and the strategy it picks.
PLAYBOOK_VARIABLES = frozenset({"codedeploy_controller_host", "codedeploy_show_includes", "codedeploy_strategy"})
# How the role's inputs are named: an extra var named so that is none of them is likely a misspelt input.
INPUT_PREFIX = "codedeploy_"
JSON_KINDS = {"dict": 'a JSON object, e.g. {"enabled": true}', "list": 'a JSON array, e.g. ["a", "b"]'}
GIT_URL = re.compile(r"^(?:(?:https?|ssh|git|file)://|[\w.-]+@[\w.-]+:)")


class InputError(Exception):
    """Inputs that cannot make a deployment; the message lists every problem and its fix."""


def derived_target_group(application: str, group: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", TARGET_GROUP_PATTERN.format(application=application, group=group))


def input_names(key: str) -> list[str]:
    """The names an input is read under: its own, then its former ones."""
    return [key, *FORMER_NAMES.get(key, ())]


def unknown_input_warnings(given: Iterable[str], inputs: Iterable[str]) -> list[str]:
    """A warning for each extra var named like an input (``codedeploy_…``) that is none: not an input (``inputs``,
    former names included), a playbook variable, or a stat an AWX workflow's earlier node handed on. A misspelt
    input would otherwise be ignored, and the deployment run without it; the warning names the known name nearest to
    it, if one is close."""
    known = sorted({*inputs, *PLAYBOOK_VARIABLES, *RUN_STATS_NAMES})
    warnings = []
    for name in sorted(set(given) - set(known)):
        if not name.startswith(INPUT_PREFIX):
            continue
        nearest = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        guess = f" Did you mean {nearest[0]}?" if nearest else ""
        warnings.append(f"{name} (an extra var) is not an input of a deployment.{guess} "
                        "The inputs: ansible-doc -t role fleetops.codedeploy.deploy")
    return warnings


def _first_set(values: Mapping[str, Any], names: Iterable[str]) -> tuple[bool, Any]:
    for name in names:
        if name in values:
            return True, values[name]
    return False, None


def pick_values(options: Mapping[str, Mapping[str, Any]], target: str, first_host: Mapping[str, Any],
                controller: Mapping[str, Any], group_inputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Each input's raw value (before conversion), or its absence when nothing sets it.

    ``first_host``: the target group's first host's vars (extra vars, host vars, group vars); ``controller``: the
    controller's (extra vars, play vars); ``group_inputs``: each deployment group's own inputs by target group
    (codedeploy_deployment_group_inputs). On a host in several deployment groups the groups' vars clash (Ansible
    keeps one group's value), so a value the host has is its own when it came from above the groups (the same value
    on the controller: extra vars; or a value no group has: host vars), else the target group's own value is taken,
    else the controller's.
    """
    own = group_inputs.get(target, {})
    picked: dict[str, Any] = {}
    for key in options:
        names = input_names(key)
        host_set, host_value = _first_set(first_host, names)
        controller_set, controller_value = _first_set(controller, names)
        group_values = [value for inputs in group_inputs.values() for name, value in inputs.items() if name in names]
        from_another_group = (host_set and host_value in group_values
                              and not (controller_set and controller_value == host_value))
        own_set, own_value = _first_set(own, names)
        if from_another_group and own_set:
            picked[key] = own_value
        elif host_set and not from_another_group:
            picked[key] = host_value
        elif controller_set:
            picked[key] = controller_value
    return picked


def _from_text(key: str, value: str, kind: str) -> Any:
    """A dict or list given as text: JSON (a survey's textarea), or empty for none."""
    if not value.strip():
        return {} if kind == "dict" else []
    if value.lstrip()[:1] not in ("{", "["):
        return value  # left to the validator (k=v pairs for a dict, comma-separated items for a list)
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise InputError(f"{key}: not valid JSON ({error}); give {JSON_KINDS[kind]}") from None
    if not isinstance(parsed, dict if kind == "dict" else list):
        raise InputError(f"{key}: the JSON text is not {JSON_KINDS[kind]}")
    return parsed


def convert(options: Mapping[str, Mapping[str, Any]], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every input of ``options`` converted to its type and validated; defaults fill what ``raw`` lacks.

    An empty string for an input that is not a string (an unanswered optional survey question) is its default.
    """
    errors: list[str] = []
    given: dict[str, Any] = {}
    for key, option in options.items():
        if key not in raw:
            continue
        value, kind = raw[key], option.get("type", "str")
        if isinstance(value, str) and kind not in ("str", "raw", "path"):
            if not value.strip() and "default" in option:
                continue
            if kind in ("dict", "list"):
                try:
                    value = _from_text(key, value, kind)
                except InputError as error:
                    errors.append(str(error))
                    continue
        given[key] = value
    # A copy: the validator fills unset sub-options into the default dicts themselves.
    result = ArgumentSpecValidator(copy.deepcopy(dict(options))).validate(given)
    errors += [str(error) for error in result.errors]
    if errors:
        raise InputError("Invalid inputs: " + "; ".join(errors))
    values = {}
    for key, option in options.items():
        validated = result.validated_parameters.get(key)
        if option.get("type") in ("dict", "list") and not isinstance(given.get(key), str):
            # The value given, converted ("false" inside a dict is false), or the default: the validator's would
            # have every unset sub-option added (as None, or its default).
            values[key] = (only_given(validated, given[key]) if key in given
                           else copy.deepcopy(option.get("default")))
        else:
            values[key] = validated
    return values


def only_given(validated: Any, given: Any) -> Any:
    """``validated`` (the validator's conversion of ``given``) with only the keys ``given`` has, at every level."""
    if isinstance(validated, dict) and isinstance(given, dict):
        return {name: only_given(validated[name], value) for name, value in given.items() if name in validated}
    if isinstance(validated, list) and isinstance(given, list) and len(validated) == len(given):
        return [only_given(item, given_item) for item, given_item in zip(validated, given)]
    return validated


def bundle_type_of(name: str) -> Optional[str]:
    lowered = name.lower()
    return next((kind for ending, kind in BUNDLE_EXTENSIONS if lowered.endswith(ending)), None)


def parse_revision(value: Any, bundle_type: str, base_dir: str) -> Any:
    """A revision from its string form; a local path made absolute against ``base_dir`` (where the operator
    runs: the AWX project). A dict is returned as it is, but for its relative local path."""
    if isinstance(value, dict):
        path = value.get("path")
        if value.get("source") == "local" and isinstance(path, str) and path and not _is_absolute(path):
            return {**value, "path": os.path.normpath(os.path.join(base_dir, path))}
        return value
    if not isinstance(value, str):
        raise InputError(f"codedeploy_revision: a dict or a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        return {}
    if text.startswith("s3://"):
        return _s3_revision(text, bundle_type)
    if GIT_URL.match(text):
        repository, hash_mark, commit = text.rpartition("#")
        if not hash_mark or not repository or not commit:
            raise InputError(f"codedeploy_revision: {text} names no commit; write the git URL with #<commit> "
                             f"(e.g. {text}#main or a commit SHA), or an s3:// URL, or a local path")
        return {"source": "git", "repository": repository, "commit_id": commit}
    path = text if _is_absolute(text) else os.path.normpath(os.path.join(base_dir, text))
    return {"source": "local", "path": path}


def _is_absolute(path: str) -> bool:
    return os.path.isabs(path) or path.startswith("~")


def _s3_revision(text: str, bundle_type: str) -> dict[str, Any]:
    url = urlsplit(text)
    key = url.path.lstrip("/")
    if not url.netloc or not key:
        raise InputError(f"codedeploy_revision: {text} needs a bucket and a key: s3://bucket/key.tgz")
    query = parse_qs(url.query)
    unknown = sorted(set(query) - {"versionId"})
    if unknown:
        raise InputError(f"codedeploy_revision: {text}: unknown parameter {', '.join(unknown)} (only versionId)")
    kind = bundle_type or bundle_type_of(key)
    if not kind:
        raise InputError(f"codedeploy_revision: cannot tell the bundle type of {text} from its name; name it "
                         "*.tar, *.tgz, *.tar.gz or *.zip, or set codedeploy_revision_bundle_type (tar, tgz, zip)")
    revision = {"source": "s3", "bucket": url.netloc, "key": key, "bundle_type": kind}
    if query.get("versionId"):
        revision["version"] = query["versionId"][0]
    return revision


def revision_problem(inputs: Mapping[str, Any]) -> Optional[str]:
    """Why the inputs cannot deploy a revision, or None: there is none, or the hosts are to pull one that only the
    controller has (git, local)."""
    revision = inputs.get("codedeploy_revision") or {}
    if not revision:
        return ("codedeploy_revision is required: {source: s3, bucket, key, bundle_type}, {source: git, repository, "
                "commit_id}, {source: local, path} or {source: url, url}")
    if inputs.get("codedeploy_bundle_transport") == "pull" and revision.get("source") not in ("s3", "url"):
        return (f"codedeploy_bundle_transport pull needs an s3 or url revision: a {revision.get('source')} revision "
                "is only on the controller. Use codedeploy_bundle_transport push, or publish the bundle to S3 or an "
                "HTTP(S) server.")
    return None


def hosts_in_limit(loader, groups: Mapping[str, list[str]], limit: str, pattern: str) -> list[str]:
    """The hosts of ``pattern`` that the run's ``limit`` keeps, by Ansible's own host patterns, from the inventory's
    ``groups`` (group -> hosts); ``loader``: the run's data loader."""
    inventory = InventoryManager(loader, parse=False)
    for group, hosts in groups.items():
        inventory.add_group(group)
        for host in hosts:
            inventory.add_host(host, group=group)
    inventory.subset(limit)
    return [host.name for host in inventory.get_hosts(pattern=pattern)]


def hosts_left_out(members: list[str], in_play: list[str]) -> list[str]:
    """The group's hosts that the run's limit (a --limit, an AWX Limit) leaves out, in inventory order."""
    kept = set(in_play)
    return [host for host in members if host not in kept]


def partial_group_message(limit: str, application: str, group: str, target: str, left_out: list[str],
                          kept: list[str]) -> str:
    return (f"The limit {limit!r} leaves out {len(left_out)} of the {len(left_out) + len(kept)} instances of "
            f"deployment group {application}/{group} (inventory group {target}): {', '.join(left_out)}. A deployment "
            "counts the whole group for its minimum healthy hosts, so a limited run (a --limit, an AWX Limit, a "
            "sliced job) would take down more than the minimum allows. Run without a limit (in AWX: an empty Limit "
            "and a slice count of 1), or set codedeploy_allow_partial_group: true to deploy to "
            f"{', '.join(kept) or 'no instance'} alone.")


def resolve_inputs(options: Mapping[str, Mapping[str, Any]], first_host: Mapping[str, Any],
                   controller: Mapping[str, Any], group_inputs: Mapping[str, Mapping[str, Any]],
                   target: str, base_dir: str) -> dict[str, Any]:
    """The deployment's inputs, each from where it is set, converted, validated; the revision read."""
    inputs = convert(options, pick_values(options, target, first_host, controller, group_inputs))
    inputs["codedeploy_target_group"] = target
    if "codedeploy_revision" in inputs:
        inputs["codedeploy_revision"] = parse_revision(inputs["codedeploy_revision"],
                                                       inputs.get("codedeploy_revision_bundle_type") or "", base_dir)
    if "codedeploy_ledger" in inputs:
        inputs["codedeploy_revision_cache_dir"] = (inputs.get("codedeploy_revision_cache_dir")
                                                   or revision_cache_dir(inputs["codedeploy_ledger"]))
    return inputs
