# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.codedeploy.revision_install on real fleet hosts: what a user finds on the host after an Install."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import normalise_appspec
from support.revisions import write_tree

MODULE = "fleetops.codedeploy.revision_install"
ROOT = "/opt/codedeploy-agent/deployment-root"
GROUP_ID = "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
INSTRUCTIONS = f"{ROOT}/deployment-instructions"
CLEANUP_FILE = f"{INSTRUCTIONS}/{GROUP_ID}-cleanup"
LAST_SUCCESSFUL = f"{INSTRUCTIONS}/{GROUP_ID}_last_successful_install"
WATCHED = ("/var/www", "/srv", "/etc/fleet-app", INSTRUCTIONS)


def appspec(files, permissions=(), **extra) -> dict:
    return normalise_appspec({"version": 0.0, "os": "linux", "files": list(files),
                              "permissions": list(permissions), **extra})[0]


def place_revisions(fleet, host: str, tmp_path: Path, revisions: dict[str, dict]) -> dict[str, str]:
    """Lay unpacked revisions out on the host where revision_bundle leaves them; return each archive directory."""
    local = tmp_path / "group"
    for deployment_id, tree in revisions.items():
        write_tree(local / deployment_id / "deployment-archive", tree)
    run = fleet.ansible(host, "ansible.builtin.copy",
                        {"src": f"{local}/", "dest": f"{ROOT}/{GROUP_ID}/", "mode": "preserve"})
    assert run.rc == 0, run.output
    return {deployment_id: f"{ROOT}/{GROUP_ID}/{deployment_id}/deployment-archive" for deployment_id in revisions}


def install(fleet, host: str, deployment_id: str, spec: dict | None, *options: str, **args) -> dict:
    module_args = {"deployment_id": deployment_id, "deployment_group_id": GROUP_ID,
                   "deployment_group_name": "web-production", "application_name": "web", **args}
    if spec is not None:
        module_args["appspec"] = spec
    return fleet.results(host, MODULE, module_args, *options)[host]


def read(fleet, host: str, path: str) -> str:
    return fleet.path(host, path).read_text()


def exists(fleet, host: str, path: str) -> bool:
    return os.path.lexists(fleet.path(host, path))


def mode_of(fleet, host: str, path: str) -> str:
    return oct(fleet.path(host, path).lstat().st_mode & 0o7777)


def tree_digest(fleet, host: str) -> str:
    """A hash of every path, kind, mode, owner, mtime, content and link under the watched directories."""
    digest = hashlib.sha256()
    for top in WATCHED:
        base = fleet.path(host, top)
        for path in sorted([base, *base.rglob("*")]) if base.exists() else []:
            info = path.lstat()
            digest.update(f"{path.relative_to(base.parent)} {info.st_mode} {info.st_uid} {info.st_gid} "
                          f"{info.st_mtime_ns}".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def host(fleet):
    one = fleet(1)
    return one, one.hosts[0]


def test_install_copies_records_each_path_and_points_last_successful(host, tmp_path):
    fleet, name = host
    archive = place_revisions(fleet, name, tmp_path, {"d-AAAAAAAA1": {
        "appspec.yml": "version: 0.0\n", "index.html": "<h1>v1</h1>", "css/site.css": "body{}",
        "scripts/start.sh": "#!/bin/sh\n"}})["d-AAAAAAAA1"]
    spec = appspec([{"source": "/", "destination": "/var/www/app"},
                    {"source": "scripts/start.sh", "destination": "/srv/app/bin"}])

    result = install(fleet, name, "d-AAAAAAAA1", spec)

    assert result["changed"] is True, result
    assert read(fleet, name, "/var/www/app/index.html") == "<h1>v1</h1>"
    assert read(fleet, name, "/var/www/app/appspec.yml") == "version: 0.0\n"
    assert mode_of(fleet, name, "/srv/app/bin/start.sh") == "0o755"
    assert sorted(result["created_dirs"]) == ["/srv/app", "/srv/app/bin", "/var/www/app", "/var/www/app/css",
                                              "/var/www/app/scripts"]
    recorded = read(fleet, name, CLEANUP_FILE).splitlines()  # bundle order is the filesystem's: compare as sets
    assert sorted(recorded) == sorted(result["created_dirs"] + result["copied"]) and len(recorded) == 10
    assert all(recorded.index(os.path.dirname(path)) < index for index, path in enumerate(recorded)
               if os.path.dirname(path) in recorded)  # each directory is recorded before what goes in it
    instructions = json.loads(read(fleet, name, f"{INSTRUCTIONS}/{GROUP_ID}-install.json"))["instructions"]
    assert {"type": "copy", "source": f"{archive}/scripts/start.sh", "destination": "/srv/app/bin/start.sh"} in \
        instructions
    assert read(fleet, name, LAST_SUCCESSFUL) == f"{ROOT}/{GROUP_ID}/d-AAAAAAAA1"
    assert result["last_successful_install"] == f"{ROOT}/{GROUP_ID}/d-AAAAAAAA1"


def test_the_next_install_removes_what_the_previous_one_installed_and_keeps_other_files(host, tmp_path):
    fleet, name = host
    assert fleet.ssh(name, "mkdir -p /srv/site").rc == 0  # a directory the deployments did not create
    place_revisions(fleet, name, tmp_path, {
        "d-AAAAAAAA1": {"index.html": "v1", "old.html": "old", "assets/a.css": "a", "legacy/x.txt": "x",
                        "uploads/.keep": ""},
        "d-AAAAAAAA2": {"index.html": "v2", "assets/b.css": "b"}})
    spec = appspec([{"source": "/", "destination": "/srv/site"}])
    assert install(fleet, name, "d-AAAAAAAA1", spec)["changed"] is True
    assert fleet.ssh(name, "echo mine > /srv/site/uploads/user.txt").rc == 0

    result = install(fleet, name, "d-AAAAAAAA2", spec)

    assert "msg" not in result, result
    assert read(fleet, name, "/srv/site/index.html") == "v2"
    assert read(fleet, name, "/srv/site/assets/b.css") == "b"
    for gone in ("/srv/site/old.html", "/srv/site/assets/a.css", "/srv/site/legacy", "/srv/site/uploads/.keep"):
        assert not exists(fleet, name, gone), gone
    assert read(fleet, name, "/srv/site/uploads/user.txt") == "mine\n"  # its directory was not emptied: kept
    assert exists(fleet, name, "/srv/site")
    assert "/srv/site/legacy" in result["removed"] and "/srv/site" not in result["removed"]
    assert read(fleet, name, LAST_SUCCESSFUL) == f"{ROOT}/{GROUP_ID}/d-AAAAAAAA2"


def test_file_exists_behavior_disallow_retain_and_overwrite_at_file_and_nested_level(host, tmp_path):
    fleet, name = host
    preexisting = "mkdir -p /var/www/app/static/css && echo old > /var/www/app/static/css/site.css && " \
                  "echo old > /etc/fleet-app/app.conf"
    assert fleet.ssh(name, preexisting).rc == 0
    revision = {"conf/app.conf": "new", "web/index.html": "new", "web/static/css/site.css": "new"}
    place_revisions(fleet, name, tmp_path, dict.fromkeys(("d-AAAAAAAA1", "d-AAAAAAAA2", "d-AAAAAAAA3"), revision))
    files = [{"source": "conf/app.conf", "destination": "/etc/fleet-app"},
             {"source": "web", "destination": "/var/www/app"}]
    permissions = [{"object": "/var/www/app", "type": ["file"], "mode": "0600"},
                   {"object": "/etc/fleet-app/app.conf", "type": ["file"], "mode": "0600"}]
    before = tree_digest(fleet, name)

    refused = install(fleet, name, "d-AAAAAAAA1", appspec(files, permissions))
    assert refused["msg"] == ("The deployment failed because a specified file already exists at this location:"
                              " /etc/fleet-app/app.conf")
    nested = install(fleet, name, "d-AAAAAAAA1", appspec(files[1:]), file_exists_behavior="DISALLOW")
    assert nested["msg"] == ("The deployment failed because a specified file already exists at this location:"
                             " /var/www/app/static/css/site.css")
    assert tree_digest(fleet, name) == before  # refused before anything was touched

    retained = install(fleet, name, "d-AAAAAAAA1", appspec(files, permissions), file_exists_behavior="RETAIN")
    assert retained["retained"] == ["/etc/fleet-app/app.conf", "/var/www/app/static/css/site.css"]
    assert read(fleet, name, "/etc/fleet-app/app.conf") == "old\n"
    assert read(fleet, name, "/var/www/app/static/css/site.css") == "old\n"
    assert mode_of(fleet, name, "/var/www/app/static/css/site.css") == "0o644"  # no permissions on kept files
    assert read(fleet, name, "/var/www/app/index.html") == "new"
    assert mode_of(fleet, name, "/var/www/app/index.html") == "0o600"

    # The AppSpec's own key wins over the deployment's DISALLOW.
    overwritten = install(fleet, name, "d-AAAAAAAA2", appspec(files, permissions, file_exists_behavior="OVERWRITE"))
    assert overwritten["removed"] == ["/var/www/app/index.html"]
    assert read(fleet, name, "/etc/fleet-app/app.conf") == "new"
    assert read(fleet, name, "/var/www/app/static/css/site.css") == "new"
    assert mode_of(fleet, name, "/etc/fleet-app/app.conf") == "0o600"

    # Overwritten files are recorded, so the next Install removes them first and DISALLOW has nothing to refuse.
    again = install(fleet, name, "d-AAAAAAAA3", appspec(files, permissions))
    assert "/etc/fleet-app/app.conf" in again["removed"] and again["copied"][0] == "/etc/fleet-app/app.conf"


def test_permissions_patterns_except_owner_and_four_digit_modes(host, tmp_path):
    fleet, name = host
    place_revisions(fleet, name, tmp_path, {
        "d-AAAAAAAA1": {"app/run.sh": "#!/bin/sh\n", "app/skip.sh": "#!/bin/sh\n", "app/README.md": "r",
                        "app/lib/util.sh": "u", "app/lib/deep/data.txt": "d"},
        "d-AAAAAAAA2": {"app/run.sh": "#!/bin/sh\n"}})
    permissions = [
        {"object": "/srv/app", "pattern": "**", "type": ["directory"], "mode": "2750", "owner": "deploy",
         "group": "deploy"},
        {"object": "/srv/app", "pattern": "*.sh", "except": ["skip.sh"], "type": ["file"], "mode": "4755"},
        {"object": "/srv/app/lib", "type": ["file"], "mode": "0640", "owner": "deploy"},
        {"object": "/srv/app/README.md", "type": ["file"], "mode": "0444"},
    ]
    files = [{"source": "app", "destination": "/srv/app"}]

    result = install(fleet, name, "d-AAAAAAAA1", appspec(files, permissions))

    assert "msg" not in result, result
    assert mode_of(fleet, name, "/srv/app") == "0o755"  # the object directory itself is untouched
    assert fleet.path(name, "/srv/app").stat().st_uid == 0
    for directory in ("/srv/app/lib", "/srv/app/lib/deep"):
        assert mode_of(fleet, name, directory) == "0o2750"
        assert fleet.path(name, directory).stat().st_uid == 1500
    assert mode_of(fleet, name, "/srv/app/run.sh") == "0o4755"
    assert mode_of(fleet, name, "/srv/app/skip.sh") == "0o755"
    for file in ("/srv/app/lib/util.sh", "/srv/app/lib/deep/data.txt"):
        assert mode_of(fleet, name, file) == "0o640"
        assert fleet.path(name, file).stat().st_uid == 1500 and fleet.path(name, file).stat().st_gid == 0
    assert mode_of(fleet, name, "/srv/app/README.md") == "0o444"
    assert [entry["path"] for entry in result["permissions_applied"]] == [
        "/srv/app/lib", "/srv/app/lib/deep", "/srv/app/run.sh", "/srv/app/lib/util.sh",
        "/srv/app/lib/deep/data.txt", "/srv/app/README.md"]

    before = tree_digest(fleet, name)
    twice = permissions[1:2] + [{"object": "/srv/app/run.sh", "type": ["file"], "owner": "nobody"}]
    refused = install(fleet, name, "d-AAAAAAAA2", appspec(files, twice))
    assert refused["msg"] == (
        "The deployment failed because the permissions setting for (/srv/app/run.sh) is specified more than once in"
        " the application specification file. Update the files section of the AppSpec file, and then try again.")
    unknown = install(fleet, name, "d-AAAAAAAA2", appspec(files, [{"object": "/srv/app", "owner": "nosuchuser"}]))
    assert unknown["msg"] == "can't find user for nosuchuser"
    assert tree_digest(fleet, name) == before


def test_acls_are_set_with_setfacl_and_a_context_without_semanage_is_refused(host, tmp_path):
    fleet, name = host
    place_revisions(fleet, name, tmp_path, {"d-AAAAAAAA1": {"app/data.txt": "d"}})
    files = [{"source": "app", "destination": "/srv/app"}]
    acl = [{"object": "/srv/app", "type": ["file"], "mode": "0640", "acls": ["u:deploy:rw"]}]

    before = tree_digest(fleet, name)
    context = [{"object": "/srv/app", "type": ["file"], "context": {"type": "httpd_sys_content_t"}}]
    refused = install(fleet, name, "d-AAAAAAAA1", appspec(files, context))
    assert refused["msg"].startswith("context needs semanage and restorecon on the host: install")
    assert tree_digest(fleet, name) == before

    result = install(fleet, name, "d-AAAAAAAA1", appspec(files, acl))
    assert "msg" not in result, result
    shown = fleet.ssh(name, "getfacl --omit-header --no-effective /srv/app/data.txt").stdout
    # The agent's full ACL: base entries from the mode, and a mask from its group bits.
    assert shown.split() == ["user::rw-", "user:deploy:rw-", "group::r--", "mask::r--", "other::---"]


def test_check_mode_reports_the_install_and_changes_nothing(host, tmp_path):
    fleet, name = host
    place_revisions(fleet, name, tmp_path, {"d-AAAAAAAA1": {"index.html": "v1", "old.html": "old"},
                                            "d-AAAAAAAA2": {"index.html": "v2", "assets/app.js": "js"}})
    files = [{"source": "/", "destination": "/var/www/app"}]
    assert install(fleet, name, "d-AAAAAAAA1", appspec(files))["changed"] is True
    before = tree_digest(fleet, name)

    result = install(fleet, name, "d-AAAAAAAA2", appspec(files, [{"object": "/var/www/app", "mode": "0640",
                                                                  "type": ["file"]}]),
                     "--check", "--diff", "-vvv")  # callbacks drop the diff from results below -vvv

    assert tree_digest(fleet, name) == before
    assert result["changed"] is True
    assert sorted(result["removed"][:2]) == ["/var/www/app/index.html", "/var/www/app/old.html"]
    assert result["removed"][2:] == ["/var/www/app"]  # the directory last, once emptied
    assert result["created_dirs"] == ["/var/www/app", "/var/www/app/assets"]
    assert sorted(result["copied"]) == ["/var/www/app/assets/app.js", "/var/www/app/index.html"]
    assert {entry["path"]: entry["mode"] for entry in result["permissions_applied"]} == {
        "/var/www/app/index.html": "0640", "/var/www/app/assets/app.js": "0640"}
    assert result["diff"]["before"] == "/var/www/app\n/var/www/app/index.html\n/var/www/app/old.html\n"
    assert "/var/www/app/assets/app.js (mode=0640)\n" in result["diff"]["after"]
    assert read(fleet, name, LAST_SUCCESSFUL) == f"{ROOT}/{GROUP_ID}/d-AAAAAAAA1"


def test_owners_and_symlinks_to_files_are_kept_links_to_directories_followed_and_links_out_refused(host, tmp_path):
    fleet, name = host
    archives = place_revisions(fleet, name, tmp_path, {"d-AAAAAAAA1": {"app/v2.conf": "v2", "lib/util.sh": "u"},
                                                       "d-AAAAAAAA2": {"app/v3.conf": "v3"}})
    links = (f"cd {archives['d-AAAAAAAA1']}/app && ln -s v2.conf current.conf && ln -s ../lib shared && "
             f"chown deploy:deploy v2.conf && ln -s /etc/shadow {archives['d-AAAAAAAA2']}/app/secrets")
    assert fleet.ssh(name, links).rc == 0
    files = [{"source": "app", "destination": "/srv/app"}]

    result = install(fleet, name, "d-AAAAAAAA1", appspec(files))

    assert "msg" not in result, result
    assert os.readlink(fleet.path(name, "/srv/app/current.conf")) == "v2.conf"
    assert fleet.path(name, "/srv/app/v2.conf").stat().st_uid == 1500  # the bundle's owner, kept by the copy
    shared = fleet.path(name, "/srv/app/shared")
    assert shared.is_dir() and not shared.is_symlink() and (shared / "util.sh").read_text() == "u"

    before = tree_digest(fleet, name)
    refused = install(fleet, name, "d-AAAAAAAA2", appspec(files))
    assert refused["msg"].startswith("The revision's symbolic link app/secrets points to /etc/shadow, outside the"
                                     " revision bundle")
    assert tree_digest(fleet, name) == before


def test_without_the_appspec_option_the_appspec_is_read_on_the_host_json_or_yaml(host, tmp_path):
    fleet, name = host
    document = {"version": 0.0, "os": "linux", "files": [{"source": "index.html", "destination": "/var/www/app"}]}
    place_revisions(fleet, name, tmp_path, {
        "d-AAAAAAAA1": {"appspec.yml": json.dumps(document), "index.html": "json"},
        "d-AAAAAAAA2": {"appspec.yml": "version: 0.0\nos: linux\nfiles:\n  - source: index.html\n"
                                       "    destination: /var/www/yaml\n", "index.html": "y"}})

    assert install(fleet, name, "d-AAAAAAAA1", None)["copied"] == ["/var/www/app/index.html"]
    # The hosts have no PyYAML: the collection's own YAML loader reads it.
    assert install(fleet, name, "d-AAAAAAAA2", None)["copied"] == ["/var/www/yaml/index.html"]
