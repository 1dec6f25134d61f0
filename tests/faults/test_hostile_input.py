# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile revisions, run as an operator would deploy them: each is refused, naming what is wrong, and no host
changes. What the controller can refuse is refused there, before any host is touched (one playbook runs the
whole AppSpec corpus); what only a host can see (a bundle's member names, unpacked there) is refused by the host
before DownloadBundle writes anything."""
from __future__ import annotations

import tarfile

from support.deployments import (APP_DESTINATION, DEPLOYMENT_ROOT, deploy, fleet_digest, local,
                                 make_revision, records)
from support.faults import run_each_on_controller
from support.revisions import archive_tree, tar_with_members

VICTIM = "/srv/victim2"

# Run by BeforeInstall: a name with a newline put into the unpacked revision after DownloadBundle checked the
# bundle, so that Install copies it and records it in the cleanup file.
PLANT_NEWLINE_NAME = """#!/bin/sh
set -eu
planted="$(dirname "$0")/../app/nl/x
/srv"
mkdir -p "$planted"
echo planted > "$planted/victim2"
"""


def failed_event(record: dict, host: str) -> dict:
    (entry,) = [entry for entry in record["instances"] if entry["instance_id"] == host]
    return next(event for event in entry["lifecycle_events"] if event["status"] == "Failed")


def test_a_newline_in_a_bundle_name_never_deletes_a_file_outside_the_revision(fleet, tmp_path):
    one = fleet(1)
    host = one.hosts[0]
    victim = one.path(host, VICTIM)
    victim.write_text("not the revision's\n")
    ledger = tmp_path / "ledger"

    # The bundle holds "app/nl/x\n/srv/victim2": its cleanup line would have read as "…/nl/x" and "/srv/victim2".
    hostile = make_revision(tmp_path / "hostile", "1")
    (hostile / "app" / "nl" / "x\n" / "srv").mkdir(parents=True)
    (hostile / "app" / "nl" / "x\n" / "srv" / "victim2").write_text("planted\n")
    run = deploy(one, ledger, local(archive_tree(hostile, tmp_path / "hostile.tar", "tar")))

    assert run.rc != 0, run.output
    (refused,) = records(ledger)
    event = failed_event(refused, host)
    assert event["lifecycle_event_name"] == "DownloadBundle"
    assert event["diagnostics"]["message"] == (
        'bundle.tar member "app/nl/x\\n" has a newline (U+000A) in its name: names and link targets of a bundle may '
        "not hold control characters; rename it in the revision")
    assert not one.path(host, APP_DESTINATION).exists()
    assert not one.path(host, f"{DEPLOYMENT_ROOT}/{refused['deployment_group_id']}/{refused['deployment_id']}").exists()

    # A hook can still put such a name where Install copies from: its line in the cleanup file is escaped.
    planting = make_revision(tmp_path / "planting", "2")
    (planting / "scripts" / "before_install.sh").write_text(PLANT_NEWLINE_NAME)
    run = deploy(one, ledger, local(planting))
    assert run.rc == 0, run.output
    assert one.path(host, f"{APP_DESTINATION}/nl/x\n/srv/victim2").read_text() == "planted\n"
    group_id = records(ledger)[-1]["deployment_group_id"]
    cleanup = one.path(host, f"{DEPLOYMENT_ROOT}/deployment-instructions/{group_id}-cleanup").read_text()
    assert f"{APP_DESTINATION}/nl/x\\x0a/srv/victim2\n" in cleanup
    assert f"{APP_DESTINATION}/index.html\n" in cleanup, "ordinary paths are written as the agent writes them"
    assert "\n/srv" not in cleanup

    # The next, benign deployment removes exactly what was installed.
    run = deploy(one, ledger, local(make_revision(tmp_path / "benign", "3")))
    assert run.rc == 0, run.output
    assert victim.read_text() == "not the revision's\n"
    assert one.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "3\n"
    assert not one.path(host, f"{APP_DESTINATION}/nl").exists()


# ----- hosts refuse the bundles: one deployment per class ---------------------------------------------------------
def hostile_tar(tmp_path, name: str, member: tarfile.TarInfo, data: bytes | None):
    """A revision that would deploy fine but for one hand-made member."""
    good = archive_tree(make_revision(tmp_path / f"{name}-tree", "1"), tmp_path / f"{name}-base.tar", "tar")
    with tarfile.open(good) as base:
        members = [(info, base.extractfile(info).read() if info.isreg() else None) for info in base.getmembers()]
    return tar_with_members(tmp_path / f"{name}.tar", [*members, (member, data)])


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, 0o644
    return info


# (name of the hostile member, its tar type, a link's target, what the refusal says)
HOSTILE_MEMBERS = {
    "path escape": ("app/../../../../srv/evil", tarfile.REGTYPE, "",
                    'bundle.tar member "app/../../../../srv/evil" escapes the bundle'),
    "absolute name": ("/srv/evil", tarfile.REGTYPE, "", 'bundle.tar member "/srv/evil" escapes the bundle'),
    "symlink out": ("app/link", tarfile.SYMTYPE, "../../../../srv",
                    'bundle.tar member "app/link" is a symlink to "../../../../srv", outside the bundle'),
    "control character": ("app/a\x1b[2Jb", tarfile.REGTYPE, "",
                          'bundle.tar member "app/a\\x1b[2Jb" has a control character (U+001B) in its name'),
}


def test_hostile_bundles_are_refused_by_the_host_and_it_keeps_its_revision(fleet, tmp_path):
    """One deployment per class of member only a host sees (the bundle is unpacked there); the newline class is
    the scenario above."""
    one = fleet(1)
    host = one.hosts[0]
    ledger = tmp_path / "ledger"
    assert deploy(one, ledger, local(make_revision(tmp_path / "v1", "1"))).rc == 0
    installed = fleet_digest(one)
    srv = sorted(path.name for path in one.path(host, "/srv").iterdir())

    for number, (what, (name, kind, target, message)) in enumerate(HOSTILE_MEMBERS.items()):
        member = tar_member(name, kind, target)
        run = deploy(one, ledger, local(hostile_tar(tmp_path, f"hostile-{number}", member,
                                                    b"evil\n" if kind == tarfile.REGTYPE else None)))

        assert run.rc != 0, (what, run.output)
        refused = records(ledger)[-1]
        event = failed_event(refused, host)
        assert event["lifecycle_event_name"] == "DownloadBundle", (what, event)
        assert message in event["diagnostics"]["message"], (what, event)
        # Its directory holds at most the logs of the hooks that ran before DownloadBundle: nothing of the bundle.
        directory = one.path(host, f"{DEPLOYMENT_ROOT}/{refused['deployment_group_id']}/{refused['deployment_id']}")
        assert not directory.exists() or sorted(p.name for p in directory.iterdir()) == ["logs"], what
        assert fleet_digest(one) == installed, what
        assert sorted(path.name for path in one.path(host, "/srv").iterdir()) == srv, what


# ----- the controller refuses the AppSpecs, before any host ------------------------------------------------------
BASE = "version: 0.0\nos: linux\n"
HOOK = BASE + "hooks:\n  BeforeInstall:\n    - location: scripts/before_install.sh\n      timeout: {}\n"

# (name, appspec.yml, what the refusal must say)
HOSTILE_APPSPECS = [
    ("alias", BASE + "files:\n  - &a {source: app, destination: /var/www/webapp}\n  - *a\n", "alias"),
    ("source-escape", BASE + "files:\n  - source: ../../../etc\n    destination: /var/www/webapp\n",
     "points outside the revision bundle"),
    ("hook-escape", BASE + "hooks:\n  BeforeInstall:\n    - location: ../../../bin/sh\n", "outside"),
]
# Parser crashes, unbounded timeouts and sizes, which other changes refuse: each must end in a clean refusal.
CRASHING_APPSPECS = [
    ("deep-yaml", BASE + "hooks: " + "[" * 20000 + "]" * 20000 + "\n", "appspec.yml"),
    ("deep-json", '{"version": 0.0, "os": "linux", "x": ' + "[" * 200000 + "]" * 200000 + "}", "appspec.yml"),
    ("huge-int", HOOK.format("9" * 5000), "5000 digits"),
    ("huge-timeout", HOOK.format("9" * 400), "timeout"),
    ("oversized", BASE + ("# padding\n" * 1_200_000), "appspec.yml"),
]


def refuse_on_controller(tmp_path, corpus) -> None:
    items = []
    for name, text, _expected in corpus:
        tree = make_revision(tmp_path / name, "1")
        (tree / "appspec.yml").write_text(text)
        items.append({"revision": {"source": "local", "path": str(tree)}, "cache_dir": str(tmp_path / "cache")})
    results = run_each_on_controller("fleetops.codedeploy.revision_fetch", items)
    for (name, _text, expected), result in zip(corpus, results):
        assert result.get("failed") is True, (name, {key: str(value)[:300] for key, value in result.items()})
        message = result.get("msg", "")
        assert expected in message and len(message) < 2000, (name, message[:2000])
        assert "Traceback" not in str(result) and "exceeded" not in message, (name, message[:2000])
        assert not result.get("appspec_text"), name


def test_the_controller_refuses_hostile_appspecs_before_any_host_is_touched(fleet, tmp_path):
    refuse_on_controller(tmp_path / "corpus", HOSTILE_APPSPECS)
    # And a deployment of one of them touches no host.
    one = fleet(1)
    tree = make_revision(tmp_path / "alias-deployment", "1")
    (tree / "appspec.yml").write_text(HOSTILE_APPSPECS[0][1])
    run = deploy(one, tmp_path / "ledger", local(tree))
    assert run.rc != 0 and "alias" in run.output, run.output
    assert not one.path(one.hosts[0], DEPLOYMENT_ROOT).exists()
    assert not one.path(one.hosts[0], APP_DESTINATION).exists()


def test_the_controller_refuses_appspecs_that_crash_parsers_or_have_no_bounds(tmp_path):
    refuse_on_controller(tmp_path, CRASHING_APPSPECS)


def test_host_modules_refuse_a_group_id_that_is_a_path(fleet):
    one = fleet(1)
    run = one.ansible("fleet", "fleetops.codedeploy.deployment_group_info", {"deployment_group_id": "../../../etc"})
    assert run.rc != 0
    assert "deployment_group_id '../../../etc' is not a UUID" in run.output
    assert "passwd" not in run.output, "nothing of /etc is listed"
