# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the create step makes of the inputs: the deployment's parameters, the revision it records, where the hosts
pull it, and the whole plan of the first phase that the deployment play runs."""
from __future__ import annotations

from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_plan import (
    deployment_outcome, deployment_parameters, ended_plan, fetched_problem, first_phase_plan, next_stage_plan,
    pull_source, resumed_plan, revision_fetched, stop_plan)

AWS = {"region": "eu-west-1", "endpoint_url": None, "profile": None, "max_attempts": 5}
INPUTS = {"codedeploy_application_name": "shop", "codedeploy_deployment_group_name": "web",
          "codedeploy_deployment_group_id": "", "codedeploy_deployment_config_name": "CodeDeployDefault.HalfAtATime",
          "codedeploy_minimum_healthy_hosts": {}, "codedeploy_lock_lease_seconds": 0, "codedeploy_aws": AWS,
          "codedeploy_deployment_style": {"deployment_type": "BLUE_GREEN", "deployment_option": "WITH_TRAFFIC_CONTROL"},
          "codedeploy_bundle_transport": "push", "codedeploy_bundle_pull_endpoint_url": "",
          "codedeploy_appspec_filename": "appspec.yml", "codedeploy_strict": True,
          # As given: it may hold credentials.
          "codedeploy_revision": {"source": "url", "url": "https://user:s3cr3t@releases.example/shop.tgz"}}
FETCHED = {"path": "/cache/" + "ab" * 32 + ".tgz", "sha256": "ab" * 32, "bundle_type": "tgz",
           "bundle_env": {"BUNDLE_COMMIT": ""}, "appspec": {"version": 0.0, "os": "linux", "hooks": {}},
           "revision": {"source": "url", "url": "https://***@releases.example/shop.tgz", "bundle_type": "tgz"},
           "version_id": None, "changed": True, "size": 10}
IN_PLACE_RECORD = {"deployment_id": "d-ABCDEFGH1", "deployment_group_id": "gid", "creator": "user",
                   "deployment_style": {"deployment_type": "IN_PLACE"}}


def test_the_deployment_is_what_the_inputs_ask_for():
    parameters = deployment_parameters(INPUTS)
    assert (parameters["application_name"], parameters["deployment_group_name"]) == ("shop", "web")
    assert parameters["deployment_config_name"] == "CodeDeployDefault.HalfAtATime"
    assert parameters["lease_seconds"] == 0
    options = parameters["options"]
    assert (options["deployment_type"], options["strict"], options["aws"]) == ("BLUE_GREEN", True, AWS)
    # Inputs unset are in the options, null: the record keeps every option.
    assert options["zonal_config"] is None and "auto_rollback" in options
    assert deployment_parameters({**INPUTS, "codedeploy_deployment_style": {}})["options"]["deployment_type"] \
        == "IN_PLACE"


def test_a_revision_without_an_appspec_is_refused_naming_the_file_looked_for():
    assert fetched_problem(INPUTS, FETCHED) is None
    assert fetched_problem(INPUTS, None) is None  # a rollback fetches nothing
    problem = fetched_problem({**INPUTS, "codedeploy_appspec_filename": "deploy/appspec.yml"},
                              {**FETCHED, "appspec": None})
    assert problem.startswith("The revision has no deploy/appspec.yml (nor appspec.yaml) at its root")
    assert problem.endswith("add one, or set codedeploy_appspec_filename.")


def test_the_revision_recorded_is_the_fetched_one_with_what_the_fetch_found():
    revision = revision_fetched(FETCHED)
    assert revision == {**FETCHED["revision"], "sha256": "ab" * 32, "bundle_type": "tgz",
                        "bundle_env": {"BUNDLE_COMMIT": ""}, "appspec": FETCHED["appspec"]}
    assert "s3cr3t" not in str(revision)
    assert revision_fetched(None) is None


def test_hosts_pull_the_very_object_validated_or_nothing_when_pushed():
    assert pull_source(INPUTS, FETCHED) is None
    pulling = {**INPUTS, "codedeploy_bundle_transport": "pull"}
    assert pull_source(pulling, FETCHED) == {"url": "https://***@releases.example/shop.tgz"}
    s3 = {**FETCHED, "revision": {"source": "s3", "bucket": "releases", "key": "shop.tgz"}, "version_id": "v7"}
    assert pull_source(pulling, s3) == {"bucket": "releases", "key": "shop.tgz", "version_id": "v7", "aws": AWS,
                                        "endpoint_url": None}
    assert pull_source({**pulling, "codedeploy_bundle_pull_endpoint_url": "http://10.0.0.1:5000"}, s3)[
        "endpoint_url"] == "http://10.0.0.1:5000"
    assert pull_source(pulling, None) is None


def test_an_in_place_plan_runs_every_instance_of_the_group_and_keeps_no_given_revision():
    plan = first_phase_plan(INPUTS, FETCHED, IN_PLACE_RECORD, {"instances": None, "events": ["ApplicationStop"]},
                            ["web1", "web2"], [])
    assert (plan["deployment_id"], plan["deployment_group_id"], plan["creator"]) == ("d-ABCDEFGH1", "gid", "user")
    assert (plan["targets"], plan["survey"], plan["group_hosts"]) == (["web1", "web2"],) * 3
    assert (plan["events"], plan["deployment_type"], plan["fetched_path"]) == (["ApplicationStop"], "IN_PLACE",
                                                                               FETCHED["path"])
    assert plan["inputs"]["codedeploy_revision"] == FETCHED["revision"]
    assert "s3cr3t" not in str(plan)
    assert plan["title"] == "Deploy to shop/web: d-ABCDEFGH1"
    assert plan["record"] == IN_PLACE_RECORD and plan["pull_source"] is None


def test_a_blue_green_plan_runs_its_first_stage_and_names_every_replacement_instance_once():
    record = {**IN_PLACE_RECORD, "deployment_style": {"deployment_type": "BLUE_GREEN"}}
    stage = {"instances": ["green1", "green2"], "events": ["BeforeInstall", "Install"]}
    plan = first_phase_plan(INPUTS, FETCHED, record, stage, ["blue1"], ["green1", "green2", "green2"])
    assert (plan["targets"], plan["survey"], plan["events"]) == (["green1", "green2"],) * 2 + (stage["events"],)
    assert (plan["group_hosts"], plan["green_hosts"]) == (["blue1"], ["green1", "green2"])


def test_a_rollback_plan_says_so_and_has_no_revision_of_its_own():
    record = {**IN_PLACE_RECORD, "creator": "codeDeployRollback"}
    plan = first_phase_plan(INPUTS, None, record, {"instances": None, "events": []}, ["web1"], [])
    assert plan["title"] == "Roll back shop/web: d-ABCDEFGH1"
    assert (plan["inputs"]["codedeploy_revision"], plan["fetched_path"], plan["pull_source"]) == ({}, None, None)


READY = {"deployment_id": "d-READY0001", "deployment_group_id": "gid", "creator": "user",
         "deployment_style": {"deployment_type": "BLUE_GREEN"}, "revision": {"source": "s3", "sha256": "cd" * 32},
         "blue_green": {"blue": ["blue1", "blue2"], "green": ["green1", "green2"]}}


def test_a_continued_deployment_runs_its_next_stage_on_the_fleets_its_record_names():
    stage = {"name": "reroute", "instances": ["green1", "green2"], "events": ["AllowTraffic"]}
    plan = resumed_plan(INPUTS, READY, stage, stopped=False)
    assert (plan["start_with"], plan["targets"], plan["survey"], plan["events"]) == (
        "phase", ["green1", "green2"], [], ["AllowTraffic"])
    assert (plan["group_hosts"], plan["green_hosts"]) == (["blue1", "blue2"], ["green1", "green2"])
    assert plan["title"] == "Continue shop/web: d-READY0001"
    assert plan["inputs"]["codedeploy_revision"] == READY["revision"] and "s3cr3t" not in str(plan)


def test_a_deployment_stopped_at_the_end_of_its_wait_runs_nothing_and_is_the_outcome():
    plan = resumed_plan(INPUTS, READY, None, stopped=True, record_path="/ledger/d-READY0001.json")
    assert (plan["start_with"], plan["targets"], plan["events"]) == ("idle", [], [])
    assert plan["outcomes"] == [{**READY, "rollback_requested": False, "record_path": "/ledger/d-READY0001.json"}]
    assert resumed_plan(INPUTS, READY, {"instances": ["green1"], "events": []}, stopped=False)["outcomes"] == []


def test_a_first_phase_runs_next_and_carries_the_outcomes_before_it():
    stopped = deployment_outcome({"deployment_id": "d-STOPPED01", "status": "Stopped"}, "/l/d.json", True)
    plan = first_phase_plan(INPUTS, None, IN_PLACE_RECORD, {"instances": None, "events": []}, ["web1"], [],
                            [stopped])
    assert (plan["start_with"], plan["outcomes"]) == ("phase", [stopped])
    assert first_phase_plan(INPUTS, FETCHED, IN_PLACE_RECORD, {"instances": None, "events": []}, ["web1"],
                            [])["outcomes"] == []


def test_a_blue_green_stage_is_followed_by_its_next_on_its_instances_surveying_none():
    plan = first_phase_plan(INPUTS, FETCHED, IN_PLACE_RECORD, {"instances": ["green1"], "events": ["Install"]},
                            ["blue1"], ["green1"])
    following = next_stage_plan(plan, {"name": "block", "instances": ["blue1"], "events": ["BlockTraffic"]})
    assert (following["targets"], following["events"], following["survey"]) == (["blue1"], ["BlockTraffic"], [])
    assert following["start_with"] == "phase" and following["deployment_id"] == plan["deployment_id"]
    assert plan["targets"] == ["green1"]  # the plan it follows is left as it was


def test_a_phase_with_nothing_after_it_adds_its_outcome_and_runs_nothing_more():
    plan = first_phase_plan(INPUTS, FETCHED, IN_PLACE_RECORD, {"instances": None, "events": []}, ["web1"], [])
    record = {**IN_PLACE_RECORD, "status": "Succeeded"}
    ended = ended_plan(plan, deployment_outcome(record, "/ledger/d-ABCDEFGH1.json"))
    assert ended["start_with"] == "idle"
    assert ended["outcomes"] == [{**record, "rollback_requested": False, "record_path": "/ledger/d-ABCDEFGH1.json"}]
    assert ended_plan(plan, None)["outcomes"] == [] and plan["outcomes"] == []  # check mode: nothing ended


def test_the_stop_playbooks_plan_runs_nothing_but_the_report_of_what_it_stopped_without_the_given_revision():
    stopped = {"deployment_id": "d-1", "status": "Stopped", "record_path": "/l/d-1.json", "stopped_on_request": True}
    plan = stop_plan(INPUTS, [stopped])
    assert (plan["start_with"], plan["title"], plan["outcomes"]) == ("idle", "Stop shop/web", [stopped])
    assert plan["inputs"]["codedeploy_revision"] == {}
    assert "s3cr3t" not in repr(plan)
    assert stop_plan(INPUTS, [])["outcomes"] == []
