# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each input comes from, its conversion (survey answers are strings), and revision strings; against the
role's own argument specification."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_inputs import (
    InputError, derived_target_group, hosts_left_out, input_names, parse_revision, pick_values, resolve_inputs,
    revision_problem, unknown_input_warnings)

SPEC = Path(__file__).resolve().parents[4] / "roles" / "deploy" / "meta" / "argument_specs.yml"
OPTIONS = yaml.safe_load(SPEC.read_text())["argument_specs"]["main"]["options"]
NAMES = {"codedeploy_application_name": "webapp", "codedeploy_deployment_group_name": "prod"}


def resolve(first_host=None, controller=None, group_inputs=None, target="fleet", base_dir="/project"):
    return resolve_inputs(OPTIONS, first_host or {}, {**NAMES, **(controller or {})}, group_inputs or {}, target,
                          base_dir)


# ----- conversion ------------------------------------------------------------------------------------------------
def test_survey_strings_become_their_values():
    inputs = resolve(controller={
        "codedeploy_update_outdated_instances_only": "false",
        "codedeploy_strict": "true",
        "codedeploy_max_revisions": "50",
        "codedeploy_auto_rollback": '{"enabled": true, "events": ["DEPLOYMENT_FAILURE"]}',
        "codedeploy_instance_order": '["fleet-h2", "fleet-h1"]',
        "codedeploy_minimum_healthy_hosts": " ",
    })
    assert inputs["codedeploy_update_outdated_instances_only"] is False
    assert inputs["codedeploy_strict"] is True
    assert inputs["codedeploy_max_revisions"] == 50
    assert inputs["codedeploy_auto_rollback"] == {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    assert inputs["codedeploy_instance_order"] == ["fleet-h2", "fleet-h1"]
    assert inputs["codedeploy_minimum_healthy_hosts"] == {}


def test_defaults_fill_what_nothing_sets_and_dicts_keep_only_what_was_given():
    inputs = resolve(controller={"codedeploy_zonal_config": {"monitor_duration_in_seconds": 3}})
    assert inputs["codedeploy_file_exists_behavior"] == "DISALLOW"
    assert inputs["codedeploy_ledger"] == "~/.fleetops-codedeploy"
    assert inputs["codedeploy_auto_rollback"] == {"enabled": False, "events": []}
    assert inputs["codedeploy_zonal_config"] == {"monitor_duration_in_seconds": 3}
    assert resolve()["codedeploy_zonal_config"] == {}
    assert resolve()["codedeploy_alarm_configuration"] == {"enabled": False, "ignore_poll_alarm_failure": False,
                                                           "alarms": []}
    assert inputs["codedeploy_target_group"] == "fleet"


def test_an_empty_answer_is_the_default():
    inputs = resolve(controller={"codedeploy_max_revisions": "", "codedeploy_strict": ""})
    assert (inputs["codedeploy_max_revisions"], inputs["codedeploy_strict"]) == (5, False)


@pytest.mark.parametrize("given, expected", [
    ({"codedeploy_auto_rollback": '{"enabled": true,'}, "codedeploy_auto_rollback: not valid JSON"),
    ({"codedeploy_auto_rollback": "[1, 2]"}, "codedeploy_auto_rollback: the JSON text is not a JSON object"),
    ({"codedeploy_instance_order": '{"a": 1}'}, "codedeploy_instance_order: the JSON text is not a JSON array"),
    ({"codedeploy_strict": "perhaps"}, "codedeploy_strict"),
    ({"codedeploy_max_revisions": "many"}, "codedeploy_max_revisions"),
    ({"codedeploy_file_exists_behavior": "CLOBBER"}, "codedeploy_file_exists_behavior"),
])
def test_bad_inputs_are_refused_naming_the_input(given, expected):
    with pytest.raises(InputError, match=expected):
        resolve(controller=given)


def test_every_problem_is_listed_at_once():
    with pytest.raises(InputError) as raised:
        resolve(controller={"codedeploy_strict": "perhaps", "codedeploy_max_revisions": "many"})
    assert "codedeploy_strict" in str(raised.value) and "codedeploy_max_revisions" in str(raised.value)


def test_the_application_and_group_names_are_required():
    with pytest.raises(InputError, match="codedeploy_application_name"):
        resolve_inputs(OPTIONS, {}, {"codedeploy_deployment_group_name": "prod"}, {}, "fleet", "/")


def test_the_former_ledger_name_is_an_alias():
    assert resolve(controller={"codedeploy_ledger_dir": "/srv/ledger"})["codedeploy_ledger"] == "/srv/ledger"
    assert resolve(first_host={"codedeploy_ledger": "s3://b/p"})["codedeploy_ledger"] == "s3://b/p"


# ----- precedence ------------------------------------------------------------------------------------------------
def test_the_first_hosts_value_wins_over_the_controllers():
    inputs = resolve(first_host={"codedeploy_max_revisions": 3}, controller={"codedeploy_max_revisions": 7})
    assert inputs["codedeploy_max_revisions"] == 3


def test_a_value_from_another_deployment_group_gives_way_to_the_target_groups_own():
    groups = {"codedeploy_webapp_prod": {"codedeploy_file_exists_behavior": "RETAIN"},
              "codedeploy_api_prod": {"codedeploy_file_exists_behavior": "OVERWRITE"}}
    # The host is in both groups; Ansible kept the other group's value.
    picked = pick_values(OPTIONS, "codedeploy_webapp_prod", {"codedeploy_file_exists_behavior": "OVERWRITE"}, {},
                         groups)
    assert picked["codedeploy_file_exists_behavior"] == "RETAIN"


def test_an_extra_var_equal_to_a_groups_value_still_wins():
    groups = {"codedeploy_webapp_prod": {"codedeploy_file_exists_behavior": "RETAIN"},
              "codedeploy_api_prod": {"codedeploy_file_exists_behavior": "OVERWRITE"}}
    picked = pick_values(OPTIONS, "codedeploy_webapp_prod", {"codedeploy_file_exists_behavior": "OVERWRITE"},
                         {"codedeploy_file_exists_behavior": "OVERWRITE"}, groups)
    assert picked["codedeploy_file_exists_behavior"] == "OVERWRITE"


def test_a_group_without_its_own_value_falls_back_to_the_controller():
    groups = {"codedeploy_webapp_prod": {}, "codedeploy_api_prod": {"codedeploy_strict": True}}
    picked = pick_values(OPTIONS, "codedeploy_webapp_prod", {"codedeploy_strict": True}, {"codedeploy_strict": False},
                         groups)
    assert picked["codedeploy_strict"] is False


def test_the_default_target_group_is_the_inventory_plugins():
    assert derived_target_group("web-app", "prod.eu") == "codedeploy_web_app_prod_eu"


# ----- revisions -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, bundle_type, expected", [
    ("s3://builds/webapp/1.2.tgz", "", {"source": "s3", "bucket": "builds", "key": "webapp/1.2.tgz",
                                        "bundle_type": "tgz"}),
    ("s3://builds/webapp.tar.gz?versionId=3HL4k", "", {"source": "s3", "bucket": "builds", "key": "webapp.tar.gz",
                                                       "bundle_type": "tgz", "version": "3HL4k"}),
    ("s3://builds/webapp.ZIP", "", {"source": "s3", "bucket": "builds", "key": "webapp.ZIP", "bundle_type": "zip"}),
    ("s3://builds/webapp-latest", "tar", {"source": "s3", "bucket": "builds", "key": "webapp-latest",
                                          "bundle_type": "tar"}),
    ("https://git.example.com/team/webapp.git#4f2a9c1", "",
     {"source": "git", "repository": "https://git.example.com/team/webapp.git", "commit_id": "4f2a9c1"}),
    ("git@github.com:team/webapp.git#main", "",
     {"source": "git", "repository": "git@github.com:team/webapp.git", "commit_id": "main"}),
    ("build/webapp", "", {"source": "local", "path": "/project/build/webapp"}),
    ("./build/../dist/webapp.tgz", "", {"source": "local", "path": "/project/dist/webapp.tgz"}),
    ("/srv/webapp", "", {"source": "local", "path": "/srv/webapp"}),
    ("", "", {}),
])
def test_a_revision_string(text, bundle_type, expected):
    assert parse_revision(text, bundle_type, "/project") == expected


def test_a_relative_local_path_in_a_dict_is_relative_to_where_the_run_starts():
    assert parse_revision({"source": "local", "path": "build/webapp"}, "", "/project") == {
        "source": "local", "path": "/project/build/webapp"}
    kept = {"source": "local", "path": "~/webapp"}
    assert parse_revision(kept, "", "/project") == kept


@pytest.mark.parametrize("text, expected", [
    ("s3://builds/webapp", "cannot tell the bundle type of s3://builds/webapp"),
    ("s3://builds", "needs a bucket and a key"),
    ("s3://builds/a.tgz?versionid=1", "unknown parameter versionid"),
    ("https://git.example.com/team/webapp.git", "names no commit"),
])
def test_a_revision_string_that_cannot_be_read(text, expected):
    with pytest.raises(InputError, match=expected):
        parse_revision(text, "", "/project")


def test_the_revision_string_goes_through_resolution():
    inputs = resolve(controller={"codedeploy_revision": "s3://b/k", "codedeploy_revision_bundle_type": "zip"})
    assert inputs["codedeploy_revision"] == {"source": "s3", "bucket": "b", "key": "k", "bundle_type": "zip"}


def test_hosts_left_out_by_a_limit():
    assert hosts_left_out(["h1", "h2", "h3"], ["h3", "h1"]) == ["h2"]
    assert hosts_left_out(["h1"], ["h1", "localhost"]) == []


@pytest.mark.parametrize("revision, transport, problem", [
    ({}, "push", "codedeploy_revision is required: {source: s3, bucket, key, bundle_type}"),
    ({"source": "local", "path": "/srv/app"}, "pull",
     "codedeploy_bundle_transport pull needs an s3 or url revision: a local revision is only on the controller."),
    ({"source": "git", "repository": "https://git.example/app.git", "commit_id": "a" * 40}, "pull",
     "a git revision is only on the controller"),
    ({"source": "s3", "bucket": "b", "key": "app.tgz", "bundle_type": "tgz"}, "pull", None),
    ({"source": "url", "url": "https://releases.example/app.tgz"}, "pull", None),
    ({"source": "local", "path": "/srv/app"}, "push", None),
])
def test_a_deployment_needs_a_revision_its_hosts_can_receive(revision, transport, problem):
    found = revision_problem({"codedeploy_revision": revision, "codedeploy_bundle_transport": transport})
    assert (found is None) if problem is None else (problem in found), found


def test_the_values_inside_a_dict_are_converted_too():
    # A disabled rollback written as text ("false", "no") would read as enabled: every failure rolled back.
    inputs = resolve(controller={
        "codedeploy_auto_rollback": '{"enabled": "false", "events": ["DEPLOYMENT_FAILURE"]}',
        "codedeploy_alarm_configuration": {"enabled": "true", "alarms": [{"name": "webapp-5xx"}]},
    })
    assert inputs["codedeploy_auto_rollback"] == {"enabled": False, "events": ["DEPLOYMENT_FAILURE"]}
    assert inputs["codedeploy_alarm_configuration"] == {"enabled": True, "alarms": [{"name": "webapp-5xx"}]}
    assert resolve(first_host={"codedeploy_auto_rollback": {"enabled": "no"}})["codedeploy_auto_rollback"] == {
        "enabled": False}


def test_an_unknown_rollback_event_is_refused():
    # A misspelt event would never roll back, silently.
    with pytest.raises(InputError, match="codedeploy_auto_rollback"):
        resolve(controller={"codedeploy_auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILUR"]}})


# ----- extra vars that no input has --------------------------------------------------------------------------------
INPUT_NAMES = [name for option in OPTIONS for name in input_names(option)]


def test_a_misspelt_input_is_named_with_the_input_it_resembles():
    assert unknown_input_warnings(["codedeploy_minimum_healty_hosts"], INPUT_NAMES) == [
        "codedeploy_minimum_healty_hosts (an extra var) is not an input of a deployment. Did you mean "
        "codedeploy_minimum_healthy_hosts? The inputs: ansible-doc -t role fleetops.codedeploy.deploy"]


def test_a_name_like_no_input_is_named_without_a_guess():
    assert unknown_input_warnings(["codedeploy_colour"], INPUT_NAMES) == [
        "codedeploy_colour (an extra var) is not an input of a deployment. The inputs: ansible-doc -t role "
        "fleetops.codedeploy.deploy"]


def test_inputs_former_names_playbook_variables_stats_and_other_names_pass_unremarked():
    given = ["codedeploy_revision", "codedeploy_ledger_dir", "codedeploy_show_includes",
             "codedeploy_deployment_status", "codedeploy_rollback_deployment_id", "release", "awx_job_id"]
    assert unknown_input_warnings(given, INPUT_NAMES) == []


def test_every_variable_of_the_playbooks_passes_unremarked():
    # An extra var overrides a vars_files variable: the playbooks read it, so it is no misspelling.
    controller = yaml.safe_load((SPEC.parents[3] / "playbooks" / "vars" / "controller.yml").read_text())
    assert unknown_input_warnings(controller, INPUT_NAMES) == []
