# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Three successive deployments of one revision in three versions, event by event with the host modules, behave
as the CodeDeploy agent does: no ApplicationStop on the first, the previous revision's ApplicationStop on the next,
and _last_successful_install written at the end of Install even when ValidateService then fails."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import parse_appspec
from support.revisions import archive_tree, write_tree

GROUP_ID = "0d6c4f57-1f4e-4e5b-9a39-7d1c2b3a4e5f"
ROOT = "/opt/codedeploy-agent/deployment-root"
EVENTS_BEFORE_INSTALL = ["ApplicationStop"]
EVENTS_AFTER_INSTALL = ["AfterInstall", "ApplicationStart", "ValidateService"]

APPSPEC = """\
version: 0.0
os: linux
files:
  - source: app
    destination: /var/www/sample
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
  BeforeInstall:
    - location: scripts/record.sh
  AfterInstall:
    - location: scripts/record.sh
  ApplicationStart:
    - location: scripts/record.sh
  ValidateService:
    - location: scripts/validate.sh
"""
# Each script appends "<event> <version of the revision it belongs to>" to one journal per host.
RECORD = '#!/bin/sh\necho "$LIFECYCLE_EVENT {version}" >> /srv/journal\n'
VALIDATE = '#!/bin/sh\necho "$LIFECYCLE_EVENT {version}" >> /srv/journal\nexit {code}\n'

PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  module_defaults:
    group/fleetops.codedeploy.host:
      deployment_id: "{{{{ deployment_id }}}}"
      deployment_group_id: {group_id}
      deployment_group_name: sample-group
      application_name: sample
  tasks:
    - ansible.builtin.copy: {{src: "{{{{ bundle }}}}", dest: /srv/bundle.tgz, mode: "0600"}}
    - fleetops.codedeploy.lifecycle_event: {{event: ApplicationStop}}
    - fleetops.codedeploy.revision_bundle: {{src: /srv/bundle.tgz, bundle_type: tgz}}
    - fleetops.codedeploy.lifecycle_event: {{event: BeforeInstall}}
    - fleetops.codedeploy.revision_install: {{}}
    - fleetops.codedeploy.lifecycle_event: {{event: "{{{{ item }}}}"}}
      loop: {after}
""".format(group_id=GROUP_ID, after=json.dumps(EVENTS_AFTER_INSTALL))


def make_bundle(tmp_path, version: str, validate_exit: int):
    tree = write_tree(tmp_path / f"revision-{version}", {
        "appspec.yml": APPSPEC,
        "app/VERSION": f"{version}\n",
        "scripts/stop.sh": RECORD.format(version=version),
        "scripts/record.sh": RECORD.format(version=version),
        "scripts/validate.sh": VALIDATE.format(version=version, code=validate_exit),
    })
    return archive_tree(tree, tmp_path / f"revision-{version}.tgz", "tgz")


def test_three_versions_in_a_row_follow_the_agent(fleet, tmp_path):
    two = fleet(2)
    playbook = tmp_path / "deploy.yml"
    playbook.write_text(PLAYBOOK)
    deployments = [("d-SAMPLE001", "v1", 0), ("d-SAMPLE002", "v2", 0), ("d-SAMPLE003", "v3", 1)]
    runs = []
    for deployment_id, version, validate_exit in deployments:
        bundle = make_bundle(tmp_path, version, validate_exit)
        runs.append(two.playbook(playbook, extra_vars={"deployment_id": deployment_id, "bundle": str(bundle)}))
    assert runs[0].rc == 0, runs[0].output
    assert runs[1].rc == 0, runs[1].output
    assert runs[2].rc == 2 and "failed with exit code 1" in runs[2].output

    for host in two.hosts:
        journal = two.path(host, "/srv/journal").read_text().splitlines()
        assert journal == [
            # d-1: no earlier install, so no ApplicationStop at all.
            "BeforeInstall v1", "AfterInstall v1", "ApplicationStart v1", "ValidateService v1",
            # d-2: revision 1's ApplicationStop, then revision 2's hooks.
            "ApplicationStop v1", "BeforeInstall v2", "AfterInstall v2", "ApplicationStart v2",
            "ValidateService v2",
            # d-3: revision 2's ApplicationStop; its ValidateService fails.
            "ApplicationStop v2", "BeforeInstall v3", "AfterInstall v3", "ApplicationStart v3",
            "ValidateService v3",
        ]
        instructions = two.path(host, f"{ROOT}/deployment-instructions")
        # Written at the end of Install: d-3 counts as "last successful" although its ValidateService failed.
        assert (instructions / f"{GROUP_ID}_last_successful_install").read_text() == f"{ROOT}/{GROUP_ID}/d-SAMPLE003"
        assert two.path(host, "/var/www/sample/VERSION").read_text() == "v3\n"
        scripts_log = two.path(host, f"{ROOT}/{GROUP_ID}/d-SAMPLE002/logs/scripts.log").read_text()
        assert "LifecycleEvent - ApplicationStop" in scripts_log.splitlines()[0]


def lifecycle_with_push(bundle, sha256: str, events: tuple = ("DownloadBundle", "BeforeInstall", "Install"),
                        push_dir: str | None = None) -> dict:
    """instance_lifecycle as a playbook of one's own calls it: the bundle pushed from the controller, no survey."""
    return {
        "deployment_id": "d-PUSHED001", "deployment_group_id": GROUP_ID, "deployment_group_name": "sample-group",
        "application_name": "sample", "events": list(events),
        "appspec": parse_appspec(APPSPEC)[0],
        "bundle": {"src": f"{ROOT}/fleetops-bundles/{sha256}.tgz", "bundle_type": "tgz", "sha256": sha256,
                   "controller_src": str(bundle), "push_dir": push_dir}}


def test_instance_lifecycle_pushes_the_bundle_itself_and_refuses_a_damaged_one(fleet, tmp_path):
    """Without the survey's push directory the bundle goes through the task's temporary directory; a bundle whose
    sha256 is not the expected one fails DownloadBundle and is neither stored nor installed."""
    two = fleet(2)
    bundle = make_bundle(tmp_path, "v1", 0)
    sha256 = hashlib.sha256(bundle.read_bytes()).hexdigest()
    results = two.results("fleet", "fleetops.codedeploy.instance_lifecycle", lifecycle_with_push(bundle, sha256))
    for host in two.hosts:
        assert results[host]["status"] == "Succeeded", results[host]
        assert results[host]["bundle_push"]["bytes"] == bundle.stat().st_size
        assert two.path(host, f"{ROOT}/fleetops-bundles/{sha256}.tgz").read_bytes() == bundle.read_bytes()
        assert two.path(host, "/var/www/sample/VERSION").read_text() == "v1\n"

    wrong = "0" * 64
    damaged = two.results("fleet", "fleetops.codedeploy.instance_lifecycle", lifecycle_with_push(bundle, wrong))
    for host in two.hosts:
        assert (damaged[host]["status"], damaged[host]["failed_event"]) == ("Failed", "DownloadBundle"), damaged[host]
        assert f"has sha256 {sha256}, not {wrong}: it was damaged in transfer" in damaged[host]["msg"]
        assert not two.path(host, f"{ROOT}/fleetops-bundles/{wrong}.tgz").exists()
        assert sorted(p.name for p in two.path(host, f"{ROOT}/fleetops-bundles").iterdir()) == [f"{sha256}.tgz"]


def test_a_pushed_bundle_that_download_bundle_never_takes_is_removed(fleet, tmp_path):
    """Pushed into the survey's push directory for events that fail before DownloadBundle: the action removes it."""
    two = fleet(2)
    survey = two.results("fleet", "fleetops.codedeploy.deployment_group_info", {"deployment_group_id": GROUP_ID})
    push_dirs = {result["push_dir"] for result in survey.values()}
    # The fleet's login user is root, whose home the fleet hosts share with the controller.
    assert push_dirs == {"/root/.ansible/tmp/fleetops-codedeploy-push"}
    bundle = make_bundle(tmp_path, "never-taken", 0)
    sha256 = hashlib.sha256(bundle.read_bytes()).hexdigest()
    # BeforeInstall of a deployment that has no unpacked revision fails: DownloadBundle is Skipped.
    results = two.results("fleet", "fleetops.codedeploy.instance_lifecycle", lifecycle_with_push(
        bundle, sha256, events=("BeforeInstall", "DownloadBundle"), push_dir=push_dirs.pop()))
    for host in two.hosts:
        assert results[host]["failed_event"] == "BeforeInstall", results[host]
        assert results[host]["bundle_push"]["bytes"] == bundle.stat().st_size
        assert not two.path(host, f"{ROOT}/fleetops-bundles/{sha256}.tgz").exists()
    assert not list(Path("/root/.ansible/tmp/fleetops-codedeploy-push").glob(f"*-{sha256}.tgz"))
