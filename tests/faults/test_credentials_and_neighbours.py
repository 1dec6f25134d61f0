# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile input and hostile neighbours on the real fleet: credentials in a revision's URL are used for the fetch
and shown or recorded nowhere; a push directory another user made first is not used; a deployment group ID that
would name a path outside the ledger is refused before anything is written."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from support.deployments import APP_DESTINATION, DEPLOYMENT_ROOT, deploy, local, make_revision, records
from support.git_http import GitHttpServer

TOKEN = "ghp_s3cr3tT0kenThatMustNotLeak"
PUSH_DIR = "/tmp/fleetops-codedeploy-push"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")).stdout.strip()


def files_holding(root: Path, secret: str) -> list[str]:
    """The files under ``root`` whose bytes contain ``secret``."""
    return [str(path) for path in root.rglob("*")
            if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes()]


def test_a_token_in_a_git_url_is_used_for_the_fetch_and_shown_or_recorded_nowhere(fleet, tmp_path):
    view = fleet(1)
    [host] = view.hosts
    source = make_revision(tmp_path / "source", "1")
    git(source, "init", "--quiet")
    git(source, "add", ".")
    git(source, "commit", "--quiet", "-m", "v1")
    commit = git(source, "rev-parse", "HEAD")
    served = tmp_path / "served"
    served.mkdir()
    git(tmp_path, "clone", "--quiet", "--bare", str(source), str(served / "app.git"))
    ledger = tmp_path / "ledger"

    with GitHttpServer(served, "ci", TOKEN) as server:
        url = server.url("app.git")
        revision = {"source": "git", "repository": url.replace("http://", f"http://ci:{TOKEN}@"), "commit_id": commit}
        run = deploy(view, ledger, revision, "-v")
    assert run.rc == 0, run.output
    assert server.served and server.refused, "the fetch did not need the credentials"
    shown = url.replace("http://", "http://***@")

    assert TOKEN not in run.output
    assert files_holding(ledger, TOKEN) == []
    assert files_holding(view.path(host, DEPLOYMENT_ROOT), TOKEN) == []
    [record] = records(ledger)
    assert record["status"] == "Succeeded"
    assert (record["revision"]["repository"], record["revision"]["commit_id"]) == (shown, commit)
    marker = next(view.path(host, DEPLOYMENT_ROOT).glob("deployment-instructions/*_last_successful_deployment.json"))
    assert json.loads(marker.read_text())["revision"]["repository"] == shown
    assert f'"repository": "{shown}"' in run.output  # -v shows the revision as recorded
    assert view.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "1\n"


def test_a_push_directory_another_user_made_in_a_shared_remote_tmp_is_not_used(fleet, tmp_path):
    view = fleet(1)
    [host] = view.hosts
    made = view.ssh(host, f"su deploy -c 'umask 0 && mkdir {PUSH_DIR}' && stat -c '%U %a' {PUSH_DIR}")
    assert made.stdout.strip() == "deploy 777", made.output

    run = deploy(view, tmp_path / "ledger", local(make_revision(tmp_path / "rev", "1")),
                 env={"ANSIBLE_REMOTE_TMP": "/tmp"})
    assert run.rc == 0, run.output
    assert f"{PUSH_DIR} drwxrwxrwx " in run.output
    assert "the push directory is not used" in run.output
    [record] = records(tmp_path / "ledger")
    assert record["status"] == "Succeeded"
    assert view.path(host, f"{APP_DESTINATION}/VERSION").read_text() == "1\n"
    # Untouched, and nothing was ever pushed into it for its owner to read.
    hijacked = view.path(host, PUSH_DIR)
    assert (oct(hijacked.stat().st_mode & 0o777), hijacked.stat().st_uid) == ("0o777", 1500)
    assert list(hijacked.iterdir()) == []


def test_a_deployment_group_id_naming_a_path_outside_the_ledger_is_refused_before_anything_is_written(
        fleet, tmp_path):
    view = fleet(1)
    ledger = tmp_path / "ledger"
    run = deploy(view, ledger, local(make_revision(tmp_path / "rev", "1")), deployment_group_id="../../escaped")
    assert run.rc != 0
    assert "deployment_group_id '../../escaped' is not a UUID" in run.output
    assert [path.name for path in tmp_path.iterdir() if "escaped" in path.name] == []
    assert records(ledger) == [] and list(ledger.glob("locks/*")) == []
    assert not view.path(view.hosts[0], DEPLOYMENT_ROOT).exists()
