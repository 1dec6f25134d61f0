# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each step of the deployment action takes its own arguments: what the role passes is accepted and converted, a
missing, mistyped or unknown argument is a message naming the step and the argument."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.fleetops.codedeploy.plugins.action.deployment import ActionModule
from ansible_collections.fleetops.codedeploy.plugins.modules import deployment as deployment_doc
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_steps import (
    STEP_ARGUMENT_SPECS, STEPS, VALID_ARGS, StepArgumentError, validate_step_args)

REPO_ROOT = Path(__file__).resolve().parents[4]
COLLECTIONS_PATH = REPO_ROOT / ".venv" / "collections"
ROLE_TASKS = REPO_ROOT / "roles" / "deploy" / "tasks"
ACTION = "fleetops.codedeploy.deployment"
DEPLOYMENT_ID = "d-ABCDEFGH1"
GROUP_ID = "5e6f1c2a-8a43-5d1e-9c4f-0a2b3c4d5e6f"
LEDGER = {"ledger": "/home/deployer/.fleetops-codedeploy", "aws": {"region": "eu-west-1"}}
# The aws options, validated: each one named, max_attempts by default 5.
AWS = {"region": "eu-west-1", "endpoint_url": None, "profile": None, "max_attempts": 5}
GROUP = {"application_name": "shop", "deployment_group_name": "web", "deployment_group_id": ""}
REVISION = {"source": "s3", "bucket": "releases", "key": "shop.zip", "bundle_type": "zip", "version": None,
            "etag": None, "sha256": "ab" * 32, "bundle_env": {}, "appspec": {"version": 0.0, "os": "linux"}}

# What deployment_inputs and revision_fetch return, in part.
INPUTS = {"codedeploy_application_name": "shop", "codedeploy_deployment_group_name": "web",
          "codedeploy_ledger": LEDGER["ledger"], "codedeploy_aws": LEDGER["aws"],
          "codedeploy_revision": {"source": "s3", "bucket": "releases", "key": "shop.zip", "bundle_type": "zip"}}
FETCHED = {"path": "/home/deployer/.fleetops-codedeploy/cache/" + "ab" * 32 + ".zip", "sha256": "ab" * 32,
           "bundle_type": "zip", "bundle_env": {}, "appspec": {"version": 0.0, "os": "linux"},
           "revision": INPUTS["codedeploy_revision"], "version_id": None}
# The plan of a phase, as the step before the finish step returned it (deployment_plan).
PLAN = {"deployment_id": DEPLOYMENT_ID, "inputs": INPUTS, "group_hosts": ["web1", "web2"], "green_hosts": [],
        "start_with": "phase", "outcomes": []}
# The arguments as the role's tasks (roles/deploy/tasks) pass them, once their templates are rendered.
ROLE_CALLS = {
    "create": {**LEDGER, "inputs": INPUTS, "fetched": FETCHED, "creator": "user", "rollback_of": None,
               "targets": ["web1", "web2"], "green_targets": []},
    "start": {**LEDGER, "deployment_id": DEPLOYMENT_ID,
              "survey": {"web1": {"instance": {"status": "Succeeded"}}, "web2": {"unreachable": True}},
              "zones": {"web1": "eu-west-1a", "web2": ""}, "instance_order": [],
              "deployment_root": "/opt/codedeploy-agent/deployment-root",
              "revision_cache_dir": "/home/deployer/.fleetops-codedeploy/cache", "fetched_path": "/cache/x.zip",
              "pull": None},
    "record": {**LEDGER, "deployment_id": DEPLOYMENT_ID, "hosts": ["web1"],
               "results": {"web1": {"status": "Succeeded", "lifecycle_events": []}}},
    "finish": {**LEDGER, "plan": PLAN},
    # deployment_id: given when the run names one (codedeploy_deployment_id), else omitted.
    "resume": {**LEDGER, "inputs": INPUTS, "deployment_id": DEPLOYMENT_ID},
    "stop": {**LEDGER, "inputs": INPUTS, "deployment_id": DEPLOYMENT_ID, "targets": ["web1", "web2"],
             "green_targets": []},
    "last_revision": {**LEDGER, **GROUP},
    "conclude": {"outcomes": [{"deployment_id": DEPLOYMENT_ID, "status": "Succeeded", "record_path": "/l/d.json"}]},
    "mark": {"deployment_root": "/opt/codedeploy-agent/deployment-root", "deployment_group_id": GROUP_ID,
             "marker": {"deployment_id": DEPLOYMENT_ID, "complete_time": "2026-12-06T06:00:00.000000+00:00",
                        "revision": {**REVISION, "bundle_path": f"/opt/x/{GROUP_ID}/{DEPLOYMENT_ID}/bundle.tar"}},
             "failure": f"web1 failed: deployment {DEPLOYMENT_ID}, ValidateService: exit code 1."},
}


def step_error(step, args) -> str:
    with pytest.raises(StepArgumentError) as raised:
        validate_step_args(step, {"step": step, **args})
    return raised.value.message


def role_calls():
    """(file, step, argument names) of every call of the action in the role's task files."""
    def tasks(node):
        if isinstance(node, list):
            for item in node:
                yield from tasks(item)
        elif isinstance(node, dict):
            yield node
            for key in ("block", "rescue", "always"):
                yield from tasks(node.get(key) or [])
    for path in sorted(ROLE_TASKS.glob("*.yml")):
        for task in tasks(yaml.safe_load(path.read_text())):
            if ACTION in task:
                yield path.name, task[ACTION]["step"], set(task[ACTION])


@pytest.mark.parametrize("step", STEPS)
def test_each_step_accepts_what_the_role_passes_as_it_is(step):
    args = {"step": step, **ROLE_CALLS[step]}
    validated = validate_step_args(step, args)
    assert {name: validated[name] for name in args} == ({**args, "aws": AWS} if "aws" in args else args)


def test_the_role_passes_each_step_only_its_own_arguments_and_all_it_requires():
    calls = list(role_calls())
    assert {step for _file, step, _names in calls} == set(STEPS)
    for file, step, names in calls:
        spec = STEP_ARGUMENT_SPECS[step]
        assert names <= set(spec), (file, step, names - set(spec))
        assert {name for name, option in spec.items() if option.get("required")} <= names, (file, step)
        # The rendered values of the role's calls above name the same arguments.
        assert names - {"record"} <= {"step", *ROLE_CALLS[step]}, (file, step)


def test_a_rollback_creates_without_a_revision_and_a_push_starts_without_a_pull():
    rollback = {**ROLE_CALLS["create"], "fetched": None, "creator": "codeDeployRollback", "rollback_of": None}
    validated = validate_step_args("create", {"step": "create", **rollback})
    assert validated["fetched"] is None and validated["rollback_of"] is None
    started = validate_step_args("start", {"step": "start", **ROLE_CALLS["start"], "fetched_path": None,
                                           "record": {"deployment_id": DEPLOYMENT_ID}})
    assert started["pull"] is None and started["fetched_path"] is None
    assert started["record"] == {"deployment_id": DEPLOYMENT_ID}


def test_what_is_left_out_takes_its_default_or_none():
    stop = validate_step_args("stop", {"step": "stop", "inputs": INPUTS})
    assert stop["deployment_id"] is None
    assert stop["ledger"] is None and stop["aws"] is None
    create = validate_step_args("create", {"step": "create", "inputs": INPUTS})
    assert (create["creator"], create["targets"], create["fetched"], create["aws"]) == ("user", None, None, None)
    start = validate_step_args("start", {"step": "start", "deployment_id": DEPLOYMENT_ID})
    assert start["deployment_root"] == "/opt/codedeploy-agent/deployment-root"


def test_values_are_converted_to_the_types_the_steps_read():
    create = validate_step_args("create", {"step": "create", "inputs": json.dumps(INPUTS), "targets": "web1,web2"})
    assert (create["inputs"], create["targets"]) == (INPUTS, ["web1", "web2"])
    last = validate_step_args("last_revision", {"step": "last_revision", **GROUP, "deployment_group_id": 7})
    assert last["deployment_group_id"] == "7"
    finish = validate_step_args("finish", {"step": "finish", "plan": PLAN,
                                           "aws": {"region": "eu-west-1", "max_attempts": "3"}})
    assert finish["aws"] == {"region": "eu-west-1", "endpoint_url": None, "profile": None, "max_attempts": 3}


def test_the_former_name_of_the_ledger_is_still_taken():
    validated = validate_step_args("finish", {"step": "finish", "plan": PLAN, "ledger_dir": "/srv/ledger"})
    assert validated["ledger_dir"] == "/srv/ledger"


@pytest.mark.parametrize("step, left_out, missing", [
    ("create", "inputs", "inputs"),
    ("start", "deployment_id", "deployment_id"),
    ("record", "deployment_id", "deployment_id"),
    ("finish", "plan", "plan"),
    ("resume", "inputs", "inputs"),
    ("stop", "inputs", "inputs"),
    ("last_revision", "deployment_group_name", "deployment_group_name"),
    ("conclude", "outcomes", "outcomes"),
])
def test_a_missing_required_argument_is_named_with_its_step(step, left_out, missing):
    args = {name: value for name, value in ROLE_CALLS[step].items() if name != left_out}
    assert step_error(step, args) == f"step {step}: missing required arguments: {missing}"


def test_the_create_step_without_its_inputs_says_so():
    assert step_error("create", {"targets": ["web1"]}) == "step create: missing required arguments: inputs"


def test_a_required_argument_given_null_is_refused():
    assert step_error("finish", {"plan": None}) == "step finish: required arguments are null: plan"
    assert step_error("record", {"deployment_id": None}) == "step record: required arguments are null: deployment_id"


def test_the_mark_step_closes_an_instance_by_marking_it_failing_it_or_both():
    marker_only = {name: value for name, value in ROLE_CALLS["mark"].items() if name != "failure"}
    assert validate_step_args("mark", {"step": "mark", **marker_only})["failure"] is None
    assert validate_step_args("mark", {"step": "mark", "failure": "web1 failed"})["marker"] is None
    assert step_error("mark", {"deployment_group_id": GROUP_ID}) == (
        "step mark: one of the following is required: marker, failure")
    assert step_error("mark", {"marker": ROLE_CALLS["mark"]["marker"]}) == (
        "step mark: missing parameter(s) required by 'marker': deployment_group_id")


def test_a_marker_without_its_deployment_is_refused():
    marker = {"complete_time": "2026-12-06T06:00:00Z", "revision": {}}
    message = step_error("mark", {**ROLE_CALLS["mark"], "marker": marker})
    assert message.startswith("step mark: ") and "deployment_id" in message and "marker" in message


@pytest.mark.parametrize("step, extra", [
    ("record", "batch"),        # the wave to record is the open one: not named
    ("create", "marker"),       # another step's
    ("finish", "hosts"),
    ("mark", "deployment_id"),  # mark takes it inside marker
    ("start", "lease_seconds"),
])
def test_an_argument_the_step_does_not_take_is_named_with_its_step(step, extra):
    message = step_error(step, {**ROLE_CALLS[step], extra: "x"})
    assert message.startswith(f"step {step}: unsupported arguments: {extra}. Supported parameters include: ")


def test_an_argument_no_step_takes_is_refused_by_its_step():
    assert step_error("finish", {"plan": PLAN, "deploymentid": "x"}).startswith(
        "step finish: unsupported arguments: deploymentid.")


def test_a_value_that_cannot_be_converted_is_named_with_its_step():
    message = step_error("create", {"inputs": "shop/web"})
    assert message.startswith("step create: argument 'inputs' is of type str and we were unable to convert to dict")
    message = step_error("stop", {"inputs": ["shop", "web"]})
    assert message.startswith("step stop: argument 'inputs' is of type list and we were unable to convert")
    assert "step record: " in step_error("record", {"deployment_id": DEPLOYMENT_ID, "results": ["web1"]})


def test_a_creator_out_of_the_services_is_refused():
    message = step_error("create", {"inputs": INPUTS, "creator": "robot"})
    assert message == ("step create: value of creator must be one of: user, codeDeployRollback, autoscaling, "
                       "got: robot")


def test_an_unknown_step_is_refused():
    with pytest.raises(StepArgumentError, match="step must be one of create, start, record, finish, resume, "
                                                "stop, last_revision, mark, conclude, not 'open'"):
        validate_step_args("open", {"step": "open"})
    with pytest.raises(StepArgumentError, match="not None"):
        validate_step_args(None, {})


def test_the_aws_options_are_no_log_and_never_in_a_message():
    assert all(spec["aws"].get("no_log") for spec in STEP_ARGUMENT_SPECS.values())
    message = step_error("finish", {"deployment_id": DEPLOYMENT_ID, "aws": "profile-secret-1234"})
    assert "'aws'" in message and "profile-secret-1234" not in message
    message = step_error("finish", {"deployment_id": DEPLOYMENT_ID, "aws": {"secret_key": "hunter2"}})
    assert "aws.secret_key" in message and "hunter2" not in message


def test_the_action_takes_the_union_of_the_steps_arguments():
    assert ActionModule._VALID_ARGS == VALID_ARGS == frozenset().union(*STEP_ARGUMENT_SPECS.values())
    assert set(STEP_ARGUMENT_SPECS) == set(STEPS)


def test_every_argument_is_documented_as_its_specification_has_it():
    options = yaml.safe_load(deployment_doc.DOCUMENTATION)["options"]
    assert set(options) == VALID_ARGS
    assert options["step"]["choices"] == list(STEPS)
    for spec in STEP_ARGUMENT_SPECS.values():
        for name, option in spec.items():
            documented = options[name]
            assert documented["type"] == option["type"], name
            assert documented.get("elements") == option.get("elements"), name
            assert documented.get("choices", option.get("choices")) == option.get("choices"), name
            assert documented.get("default", option.get("default")) == option.get("default"), name
            assert set(documented.get("suboptions") or {}) == set(option.get("options") or {}), name


def run_action(args, *options):
    """The action as a playbook runs it: ansible-playbook's ad-hoc twin on localhost, where the action runs anyway
    (the controller); returns the output, which fails the run as the step's message."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    run = subprocess.run([str(Path(sys.executable).parent / "ansible"), "localhost", "-m", ACTION,
                          "-a", json.dumps(args), *options], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert run.returncode != 0, run.stdout
    return " ".join((run.stdout + run.stderr).split())


def test_the_action_fails_with_the_steps_message_before_running_it():
    assert "step create: missing required arguments: inputs" in run_action(
        {"step": "create", "targets": ["web1"]})
    assert "step finish: unsupported arguments: marker" in run_action(
        {"step": "finish", "plan": PLAN, "marker": {}}, "--check")


def test_the_action_runs_the_step_with_the_converted_arguments(tmp_path):
    # last_revision reads the ledger only: an empty one has no successful deployment, which the message says.
    assert f"The Deployment Group 'web' has no successful deployment in the ledger ({tmp_path})" in run_action(
        {"step": "last_revision", "ledger_dir": str(tmp_path), **GROUP})
