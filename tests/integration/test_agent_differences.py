# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where Install and hooks differ from the CodeDeploy agent on purpose, on a real fleet host: each difference the
README lists, as a user finds it (the task's message, the files on the host, what a hook script sees)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import normalise_appspec
from support.revisions import write_tree

ROOT = "/opt/codedeploy-agent/deployment-root"
GROUP_ID = "5c4d3e2f-1a0b-4c9d-8e7f-6a5b4c3d2e1f"
INSTRUCTIONS = f"{ROOT}/deployment-instructions"
CLEANUP_FILE = f"{INSTRUCTIONS}/{GROUP_ID}-cleanup"
NOBODY = 65534


def appspec(files, permissions=(), **extra) -> dict:
    return normalise_appspec({"version": 0.0, "os": "linux", "files": list(files),
                              "permissions": list(permissions), **extra})[0]


def place_revisions(fleet, host: str, revisions: dict[str, dict]) -> None:
    """Unpacked revisions where revision_bundle leaves them (written straight into the host's private tree)."""
    for deployment_id, tree in revisions.items():
        write_tree(fleet.path(host, f"{ROOT}/{GROUP_ID}/{deployment_id}/deployment-archive"), tree)


def install_task(name: str, deployment_id: str, spec: dict, behavior: str = "DISALLOW") -> dict:
    return {"name": name, "register": name, "ignore_errors": True,
            "fleetops.codedeploy.revision_install": {
                "deployment_id": deployment_id, "deployment_group_id": GROUP_ID,
                "deployment_group_name": "web-production", "application_name": "web", "appspec": spec,
                "file_exists_behavior": behavior}}


def run_installs(fleet, tmp_path: Path, tasks: list[dict]) -> dict[str, dict]:
    """The Installs in order in one playbook run (one SSH connection); each task's result by its name."""
    results = tmp_path / "results.json"
    collect = {"ansible.builtin.copy": {
        "content": "{{ {" + ", ".join(f"'{task['name']}': {task['name']}" for task in tasks) + "} | to_json }}",
        "dest": str(results)}, "delegate_to": "localhost"}
    playbook = tmp_path / "installs.yml"
    playbook.write_text(json.dumps([{"hosts": "fleet", "gather_facts": False, "tasks": tasks + [collect]}]))
    run = fleet.playbook(playbook)
    assert run.rc == 0, run.output
    return json.loads(results.read_text())


def test_install_refusals_numeric_owners_and_permissions_that_stay_in_the_installed_tree(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]

    def path(on_host: str) -> Path:
        return view.path(host, on_host)  # the host's file, as the machine sees it

    place_revisions(view, host, {
        "d-DIFFER001": {"site/index.html": "v1", "deep/a/b/c/page.html": "page"},
        "d-DIFFER002": {"site/index.html": "v2"},
        "d-DIFFER003": {"app/css/site.css": "body{}", "app/index.html": "one"},
        "d-DIFFER004": {"index.html": "two"},
        "d-DIFFER005": {"index.html": "three"}})
    # A bundle symlink that stays inside the bundle, but installed one level higher points at /srv/victim.
    os.symlink("../../../srv/victim", path(f"{ROOT}/{GROUP_ID}/d-DIFFER001/deployment-archive/deep/a/b/c/link"))
    path("/srv/victim").write_text("secret")
    path("/srv/victim").chmod(0o600)
    path("/var/www/one/css").parent.mkdir(parents=True)
    path("/var/www/one/css").write_text("a file where the revision has a directory")
    path("/var/www/two/index.html").mkdir(parents=True)
    path("/var/www/three").mkdir()
    os.symlink("../outside.html", path("/var/www/three/index.html"))  # dangling

    results = run_installs(view, tmp_path, [
        install_task("previous", "d-DIFFER001", appspec(
            [{"source": "site", "destination": "/var/www/site"}, {"source": "deep/a/b/c", "destination": "/var/www/app"}],
            [{"object": "/var/www/site/index.html", "owner": 33, "group": 33, "type": ["file"]},
             {"object": "/var/www/app", "mode": "0666", "owner": "nobody", "group": "nogroup", "type": ["file"]}])),
        install_task("context_without_range", "d-DIFFER002", appspec(
            [{"source": "site", "destination": "/var/www/site"}],
            [{"object": "/var/www/site", "context": {"type": "httpd_sys_content_t"}, "type": ["file"]}])),
        *[install_task(f"file_where_directory_{behavior.lower()}", "d-DIFFER003",
                       appspec([{"source": "app", "destination": "/var/www/one"}]), behavior)
          for behavior in ("DISALLOW", "OVERWRITE", "RETAIN")],
        install_task("directory_where_file", "d-DIFFER004",
                     appspec([{"source": "index.html", "destination": "/var/www/two"}]), "OVERWRITE"),
        install_task("dangling_link", "d-DIFFER005", appspec([{"source": "index.html", "destination": "/var/www/three"}])),
    ])

    # 4: an unquoted numeric owner or group is an id, as with chown(1).
    assert not results["previous"].get("failed"), results["previous"]["msg"]
    site = path("/var/www/site/index.html").stat()
    assert (site.st_uid, site.st_gid) == (33, 33)
    # Permissions on an installed symlink stay on the link: the file it points to keeps its mode and owner.
    assert os.readlink(path("/var/www/app/link")) == "../../../srv/victim"
    victim = path("/srv/victim").stat()
    assert (victim.st_mode & 0o7777, victim.st_uid) == (0o600, 0)
    assert path("/var/www/app/link").lstat().st_uid == NOBODY
    assert (path("/var/www/app/page.html").stat().st_mode & 0o7777, path("/var/www/app/page.html").stat().st_uid) \
        == (0o666, NOBODY)
    installed = path(CLEANUP_FILE).read_text()

    # 5: context without range on a host without SELinux tools is refused before the previous install is touched
    # (the agent removes the previous install, then crashes on the missing range).
    assert results["context_without_range"]["msg"] == (
        "context needs semanage and restorecon on the host: install SELinux's policycoreutils-python-utils package"
        " (the permissions section sets an SELinux context on /var/www/site/index.html).")
    # 1: a file where the revision needs a directory, under every file_exists_behavior.
    for behavior in ("disallow", "overwrite", "retain"):
        assert results[f"file_where_directory_{behavior}"]["msg"] == (
            "The revision needs a directory at /var/www/one/css, but a file stands there. No file_exists_behavior"
            " replaces a file by a directory (OVERWRITE and RETAIN apply to files only); nothing was installed."
            " Remove /var/www/one/css from the host, or change the destination in the files section of the AppSpec"
            " file.")
    assert path("/var/www/one/css").read_text() == "a file where the revision has a directory"
    assert os.listdir(path("/var/www/one")) == ["css"]
    # 2: a directory where a file must go, OVERWRITE: refused (the agent copies the file into the directory).
    assert results["directory_where_file"]["msg"].startswith(
        "Cannot overwrite the directory /var/www/two/index.html with the file ")
    assert os.listdir(path("/var/www/two/index.html")) == []
    # 3: a dangling symlink at a destination exists for DISALLOW (the agent writes through it).
    assert results["dangling_link"]["msg"] == (
        "The deployment failed because a specified file already exists at this location: /var/www/three/index.html")
    assert os.readlink(path("/var/www/three/index.html")) == "../outside.html"
    assert not os.path.lexists(path("/var/www/outside.html"))
    # Every refusal left the previous install as it was.
    assert path(CLEANUP_FILE).read_text() == installed
    assert path("/var/www/site/index.html").read_text() == "v1"


def test_hooks_see_the_service_environment_without_a_terminal_and_log_each_entry_on_its_own_line(fleet, tmp_path):
    view = fleet(1)
    host = view.hosts[0]
    report = ("#!/bin/sh\ntr '\\0' '\\n' < /proc/$$/environ | sort\n"
              "[ -t 0 ] || [ -t 1 ] || [ -t 2 ] && echo 'a terminal' || echo 'no terminal'\n"
              "(: < /dev/tty) 2>/dev/null && echo 'a controlling terminal' || echo 'no controlling terminal'\n")
    place_revisions(view, host, {"d-DIFFER006": {"s/a.sh": "#!/bin/sh\nprintf partial\n", "s/b.sh": report}})
    spec = normalise_appspec({"version": 0.0, "os": "linux", "hooks": {
        "AfterInstall": [{"location": "s/a.sh"}, {"location": "s/b.sh"}]}})[0]
    result = view.results(host, "fleetops.codedeploy.lifecycle_event", {
        "event": "AfterInstall", "deployment_id": "d-DIFFER006", "deployment_group_id": GROUP_ID,
        "deployment_group_name": "web-production", "application_name": "web", "appspec": spec,
        "bundle_env": {"BUNDLE_COMMIT": "5d41402a"}})[host]
    assert result["status"] == "Succeeded", result

    log = view.path(host, f"{ROOT}/{GROUP_ID}/d-DIFFER006/logs/scripts.log").read_text().splitlines()
    # 6: output without a final newline still ends its entry; the next entry starts a line of its own.
    assert [re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "", line) for line in log[:4]] == [
        "LifecycleEvent - AfterInstall", "Script - s/a.sh", "[stdout]partial", "Script - s/b.sh"]
    # 7: the service's environment (PATH, HOME, the system locale) plus the CodeDeploy variables; no SSH session
    # variables, no TERM, no terminal.
    output = [line.split(" [stdout]", 1)[1] for line in log if " [stdout]" in line][1:]
    environment = dict(line.split("=", 1) for line in output if "=" in line)
    codedeploy = {"LIFECYCLE_EVENT": "AfterInstall", "DEPLOYMENT_ID": "d-DIFFER006", "APPLICATION_NAME": "web",
                  "DEPLOYMENT_GROUP_NAME": "web-production", "DEPLOYMENT_GROUP_ID": GROUP_ID,
                  "BUNDLE_COMMIT": "5d41402a"}
    locale = {name: value for name, value in environment.items() if name == "LANGUAGE" or name.startswith(("LANG", "LC_"))}
    assert environment == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                           **locale, **codedeploy}
    assert output[-2:] == ["no terminal", "no controlling terminal"]
