# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disks and hosts failing under a deployment, on the real fleet: a disk that fills up during DownloadBundle or
Install, a host lost in the middle of a hook, and the disk space deployments keep. Each scenario checks the
record, the files on the hosts and the next deployment."""
from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Callable

from conftest import REPO_ROOT, _bin, ansible_env
from support.deployments import (APP_DESTINATION, DEPLOYMENT_ROOT, HOLD_FILE, REPORT_CALLBACK, deploy,
                                 deployment_vars, example_revision, load_balancer, local, make_revision, path_digest,
                                 ran, records, serving_fleet, statuses)
from support.faults import bring_back_host, lose_host, seen_by_host, small_disk, wait_for
from support.load import LoadGenerator

ALL_AT_ONCE = {"deployment_config_name": "CodeDeployDefault.AllAtOnce"}
AUTO_ROLLBACK = {"auto_rollback": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}}
STORE = f"{DEPLOYMENT_ROOT}/fleetops-bundles"


def big_revision(root, version: str):
    """A revision with 3 MB that do not compress: more than the small disks below hold."""
    tree = make_revision(root, version)
    (tree / "app" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    return tree


def failed_event(record: dict, host: str) -> dict:
    (entry,) = [entry for entry in record["instances"] if entry["instance_id"] == host]
    return next(event for event in entry["lifecycle_events"] if event["status"] == "Failed")


def test_a_full_disk_fails_download_or_install_clearly_and_the_rollback_restores_the_revision(fleet, tmp_path):
    """fleet-h1's deployment root and fleet-h2's install destination are 1 MB disks; revision 2 does not fit."""
    two = fleet(2)
    full_root, full_destination = two.hosts
    ledger = tmp_path / "ledger"
    with small_disk(two, full_root, DEPLOYMENT_ROOT, "1m"), small_disk(two, full_destination, APP_DESTINATION, "1m"):
        app = {host: seen_by_host(two, host, APP_DESTINATION) for host in two.hosts}
        assert deploy(two, ledger, local(make_revision(tmp_path / "v1", "1")), **ALL_AT_ONCE).rc == 0
        installed = {host: path_digest(path) for host, path in app.items()}

        run = deploy(two, ledger, local(big_revision(tmp_path / "v2", "2")), **ALL_AT_ONCE, **AUTO_ROLLBACK)

        assert run.rc != 0, run.output
        _first, failed, rollback = records(ledger)
        assert statuses(failed) == {full_root: "Failed", full_destination: "Failed"}
        download = failed_event(failed, full_root)
        assert download["lifecycle_event_name"] == "DownloadBundle", download
        assert "No space left on device" in download["diagnostics"]["message"], download
        install = failed_event(failed, full_destination)
        assert install["lifecycle_event_name"] == "Install"
        assert "The Install stopped: [Errno 28] No space left on device" in install["diagnostics"]["message"]
        # The automatic rollback had room once the failed deployment's partial files were gone, and put revision 1
        # back byte for byte (modes and owners too); nothing half-copied is left in either place.
        assert (rollback["creator"], rollback["status"]) == ("codeDeployRollback", "Succeeded"), rollback
        assert rollback["revision"]["sha256"] == _first["revision"]["sha256"]
        assert {host: path_digest(path) for host, path in app.items()} == installed
        store = seen_by_host(two, full_root, STORE)
        assert not [name for name in os.listdir(store) if name.endswith(".partial")]
        failed_dir = seen_by_host(two, full_root,
                                  f"{DEPLOYMENT_ROOT}/{failed['deployment_group_id']}/{failed['deployment_id']}")
        assert not (failed_dir / "deployment-archive").exists() and not (failed_dir / "bundle.tar").exists()
        assert not [name for name in os.listdir(app[full_destination]) if name.startswith(".fleetops-install-")]


def hook_running(fleet_view, host: str, script: str) -> bool:
    namespace = os.readlink(f"/proc/{next(h.pid for h in fleet_view.fleet.load().hosts if h.name == host)}/ns/mnt")
    for pid in (entry for entry in os.listdir("/proc") if entry.isdigit()):
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") == namespace and script.encode() in open(
                    f"/proc/{pid}/cmdline", "rb").read():
                return True
        except OSError:
            continue
    return False


def deploy_losing_a_host(fleet_view, lost: str, running: Callable[[], bool], what: str, deployment: dict) -> str:
    """Run the deploy playbook with ``deployment`` (its extra vars) and the report; lose host ``lost`` as a power cut
    would, as soon as ``running()`` says its hook runs (``what``); once the run ends, bring the host back (a reboot:
    its files as the loss left them). Returns the run's output."""
    argv = [_bin("ansible-playbook"), "-i", str(fleet_view.inventory), "fleetops.codedeploy.deploy", "-e",
            json.dumps(deployment)]
    env = ansible_env(fleet_view.fleet, {**fleet_view.env_extra, **REPORT_CALLBACK})
    lost_it = False
    try:
        with subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as play:
            try:
                wait_for(running, 120, f"{what} to run on {lost}")
            except AssertionError as error:
                play.kill()
                raise AssertionError(f"{error}; the run printed:\n{play.communicate()[0]}") from None
            lose_host(fleet_view, lost)
            lost_it = True
            try:
                return play.communicate(timeout=300)[0]
            except subprocess.TimeoutExpired:
                play.kill()
                raise AssertionError(f"the run went on 300 s after {lost} was lost:\n{play.communicate()[0]}") from None
    finally:
        if lost_it:
            bring_back_host(fleet_view, lost)


def test_a_host_lost_in_a_hook_fails_alone_and_the_next_deployment_starts_with_it(fleet, tmp_path):
    three = fleet(3)
    lost = three.hosts[1]
    ledger = tmp_path / "ledger"
    # ValidateService waits on the lost host while its hold file exists.
    three.path(lost, HOLD_FILE).write_text("")
    deployment = deployment_vars(ledger, local(make_revision(tmp_path / "v1", "1")), **ALL_AT_ONCE)
    output = deploy_losing_a_host(three, lost, lambda: hook_running(three, lost, "validate.sh"), "ValidateService",
                                  deployment)
    (record,) = records(ledger)
    # AllAtOnce needs one healthy instance: the two others finished and decide the outcome.
    assert record["status"] == "Succeeded", output
    assert statuses(record) == {three.hosts[0]: "Succeeded", lost: "Failed", three.hosts[2]: "Succeeded"}, record
    (entry,) = [entry for entry in record["instances"] if entry["instance_id"] == lost]
    failed = [event for event in entry["lifecycle_events"] if event["status"] == "Failed"]
    assert len(failed) == 1 and "could not be reached" in failed[0]["diagnostics"]["message"], entry
    assert {event["status"] for event in entry["lifecycle_events"] if event is not failed[0]} <= {"Skipped"}

    # Back again (its files as the loss left them), it is the first the next deployment takes.
    three.path(lost, HOLD_FILE).unlink()
    run = deploy(three, ledger, local(make_revision(tmp_path / "v2", "2")),
                 deployment_config_name="CodeDeployDefault.OneAtATime")
    assert run.rc == 0, run.output
    second = records(ledger)[-1]
    assert ran(second)[0] == lost
    assert statuses(second) == {host: "Succeeded" for host in three.hosts}
    assert three.path(lost, f"{APP_DESTINATION}/VERSION").read_text() == "2\n"


# The hold hook below waits while HOLD_BEFORE_INSTALL exists on its host, and leaves HOLDING_FILE once it holds.
HOLD_BEFORE_INSTALL = "/srv/hold-before-install"
HOLDING_FILE = "/srv/holding"


def revision_held_in_before_install(root, version: str):
    """The example revision whose BeforeInstall first waits while HOLD_BEFORE_INSTALL exists on the host
    (scripts/hold.sh), saying so in HOLDING_FILE."""
    tree = example_revision(root, version)
    appspec = tree / "appspec.yml"
    appspec.write_text(appspec.read_text().replace(
        "  BeforeInstall:\n", "  BeforeInstall:\n    - location: scripts/hold.sh\n      timeout: 300\n", 1))
    hold = tree / "scripts" / "hold.sh"
    hold.write_text(f"#!/bin/sh\ntouch {HOLDING_FILE}\nwhile [ -e {HOLD_BEFORE_INSTALL} ]; do sleep 0.2; done\n")
    hold.chmod(0o755)
    return tree


def test_a_host_lost_after_block_traffic_stays_out_of_the_load_balancer_until_the_next_deployment(fleet, tmp_path):
    two, ledger, proxy = serving_fleet(fleet, 2, tmp_path)
    kept, lost = two.hosts
    # BeforeInstall waits on the lost host while its hold file exists: the host is drained, its application stopped.
    two.path(lost, HOLD_BEFORE_INSTALL).write_text("")
    deployment = deployment_vars(ledger, local(revision_held_in_before_install(tmp_path / "v2", "2.0.0")),
                                 deployment_config_name="CodeDeployDefault.OneAtATime", instance_order=[kept],
                                 load_balancer_info=load_balancer(proxy), traffic_wait_timeout=60)
    with proxy:
        with LoadGenerator(proxy.frontend_url, rate=60) as load:
            output = deploy_losing_a_host(two, lost, two.path(lost, HOLDING_FILE).exists, "BeforeInstall", deployment)
            finished = time.time()
            time.sleep(1)
        # Drained before its hooks ran, the lost host took no request, and it stays out of the backend.
        assert load.failures == [], load.failures[:5]
        assert load.versions_after(finished) == {"2.0.0"}
        assert proxy.server_status(lost).startswith("MAINT"), proxy.server_status(lost)
        assert proxy.server_status(kept).startswith("UP"), proxy.server_status(kept)

        record = records(ledger)[-1]
        assert statuses(record) == {kept: "Succeeded", lost: "Failed"}, output
        (entry,) = [entry for entry in record["instances"] if entry["instance_id"] == lost]
        events = {event["lifecycle_event_name"]: event for event in entry["lifecycle_events"]}
        # The controller's BlockTraffic is known to have run; of the host's events after it, the record says which
        # were to run when the host was lost, and where the host tells which ran.
        assert events["BlockTraffic"]["status"] == "Succeeded", entry
        lost_at = events["AfterBlockTraffic"]
        assert lost_at["status"] == "Failed", entry
        assert "could not be reached" in lost_at["diagnostics"]["message"], lost_at
        assert "AfterBlockTraffic to BeforeAllowTraffic were to run" in lost_at["diagnostics"]["message"], lost_at
        assert {event["status"] for name, event in events.items() if list(events).index(name) > 2} == {"Skipped"}
        log = two.path(lost, f"{DEPLOYMENT_ROOT}/{record['deployment_group_id']}/{record['deployment_id']}"
                             "/logs/scripts.log").read_text()
        assert "LifecycleEvent - ApplicationStop" in log and "LifecycleEvent - BeforeInstall" in log, log

        # Back again (a reboot: its application not running), it is the first the next deployment takes, and it
        # serves again once AllowTraffic finds it healthy.
        two.path(lost, HOLD_BEFORE_INSTALL).unlink()
        run = deploy(two, ledger, local(example_revision(tmp_path / "v3", "3.0.0")),
                     deployment_config_name="CodeDeployDefault.OneAtATime", load_balancer_info=load_balancer(proxy))
        assert run.rc == 0, run.output
        assert ran(records(ledger)[-1])[0] == lost
        assert proxy.server_status(lost).startswith("UP"), proxy.server_status(lost)


def test_the_host_keeps_only_the_pushed_bundles_of_the_revisions_it_keeps(fleet, tmp_path):
    one = fleet(1)
    host = one.hosts[0]
    ledger = tmp_path / "ledger"
    store = one.path(host, STORE)
    for version in ("1", "2"):
        run = deploy(one, ledger, local(make_revision(tmp_path / f"v{version}", version)), max_revisions=1)
        assert run.rc == 0, run.output
    # Copies into the store that a killed run left: one from an hour ago, one that may still be in progress.
    stale, young = store / f"{'0' * 64}.tar.killed.partial", store / f"{'1' * 64}.tar.running.partial"
    for partial in (stale, young):
        partial.write_bytes(b"half a bundle")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    run = deploy(one, ledger, local(make_revision(tmp_path / "v3", "3")), max_revisions=1)
    assert run.rc == 0, run.output

    first, second, third = records(ledger)
    group_dir = one.path(host, f"{DEPLOYMENT_ROOT}/{third['deployment_group_id']}")
    # max_revisions 1 keeps the new revision and the last successful one before it.
    assert sorted(os.listdir(group_dir)) == sorted([second["deployment_id"], third["deployment_id"]])
    assert sorted(os.listdir(store)) == sorted([f"{second['revision']['sha256']}.tar",
                                                f"{third['revision']['sha256']}.tar", young.name])
    assert first["revision"]["sha256"] not in {second["revision"]["sha256"], third["revision"]["sha256"]}
