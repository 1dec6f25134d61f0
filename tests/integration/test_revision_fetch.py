# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.codedeploy.revision_fetch run by the ansible CLI on the controller (implicit localhost), against the
moto server of the test pool for S3 and real git repositories made in tmp_path."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from support.controller import run_on_controller
from support.revisions import archive_tree, write_tree

MODULE = "fleetops.codedeploy.revision_fetch"
APPSPEC = "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /var/www/html\n"


def controller_results(module: str, args: dict, env: dict[str, str], *options: str) -> tuple[int, dict]:
    """Run ``module`` on the controller as ``ansible localhost`` does; its exit code and returned JSON."""
    rc, result, _output = run_on_controller(module, args, *options, env=env)
    return rc, result


@pytest.fixture
def s3(aws):
    """A boto3 S3 client on the moto server, the environment the module needs, and its ``aws`` option."""
    credentials = {name: value for name, value in aws.items() if name.startswith("AWS_")}
    client = boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, credentials, {"endpoint_url": aws["endpoint_url"], "region": "us-east-1"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundle_bytes(tmp_path: Path, name: str, files: dict[str, str], bundle_type: str, top_folder=None) -> bytes:
    tree = write_tree(tmp_path / f"{name}-tree", files)
    return archive_tree(tree, tmp_path / f"{name}.{bundle_type}", bundle_type, top_folder=top_folder).read_bytes()


def test_s3_version_and_etag_pin_the_revision_and_reuse_the_cache(tmp_path, s3):
    client, env, aws_option = s3
    client.create_bucket(Bucket="releases")
    client.put_bucket_versioning(Bucket="releases", VersioningConfiguration={"Status": "Enabled"})
    first = bundle_bytes(tmp_path, "first", {"appspec.yml": APPSPEC, "index.html": "1"}, "zip", top_folder="webapp")
    put = client.put_object(Bucket="releases", Key="webapp.zip", Body=first)
    client.put_object(Bucket="releases", Key="webapp.zip", Body=b"a later upload")
    version, etag = put["VersionId"], put["ETag"]
    assert etag.startswith('"')
    revision = {"source": "s3", "bucket": "releases", "key": "webapp.zip", "bundle_type": "zip",
                "version": version, "etag": etag}
    args = {"revision": revision, "cache_dir": str(tmp_path / "cache"), "aws": aws_option}

    rc, result = controller_results(MODULE, args, env)
    assert rc == 0, result
    assert (result["changed"], result["cached"], result["sha256"], result["size"]) == (
        True, False, sha256(first), len(first))
    assert Path(result["path"]).read_bytes() == first
    assert result["path"] == str(tmp_path / "cache" / f"{sha256(first)}.zip")
    assert result["bundle_env"] == {"BUNDLE_BUCKET": "releases", "BUNDLE_KEY": "webapp.zip",
                                    "BUNDLE_VERSION": version, "BUNDLE_ETAG": etag.strip('"')}
    assert (result["etag"], result["version_id"]) == (etag, version)
    # The AppSpec sits in a single top-level folder, which the agent strips.
    assert (result["appspec"]["files"], result["appspec_filename_found"]) == (
        [{"source": "/", "destination": "/var/www/html"}], "appspec.yml")

    # The same pin, the ETag now without quotes: the bundle is reused even after the object is gone from S3.
    client.delete_object(Bucket="releases", Key="webapp.zip", VersionId=version)
    rc, again = controller_results(MODULE, dict(args, revision=dict(revision, etag=etag.strip('"'))), env)
    assert rc == 0, again
    assert (again["changed"], again["cached"], again["path"], again["etag"]) == (False, True, result["path"], etag)


def test_s3_etag_mismatch_and_missing_key_fail_clearly(tmp_path, s3):
    client, env, aws_option = s3
    client.create_bucket(Bucket="releases")
    actual = client.put_object(Bucket="releases", Key="webapp.tar", Body=bundle_bytes(
        tmp_path, "b", {"appspec.yml": APPSPEC}, "tar"))["ETag"]
    expected = '"0123456789abcdef0123456789abcdef"'
    revision = {"source": "s3", "bucket": "releases", "key": "webapp.tar", "bundle_type": "tar", "etag": expected}
    args = {"revision": revision, "cache_dir": str(tmp_path / "cache"), "aws": aws_option}

    rc, result = controller_results(MODULE, args, env)
    assert rc != 0
    assert result["msg"] == (f"Expected deployment artifact bundle etag {expected} but was actually {actual} "
                             "(s3://releases/webapp.tar): the object changed, or the etag is wrong")
    assert not list((tmp_path / "cache").glob("*.tar"))

    rc, result = controller_results(MODULE, dict(args, revision=dict(revision, key="missing.tar", etag=None)), env)
    assert rc != 0
    assert result["msg"] == "S3 GetObject s3://releases/missing.tar failed: NoSuchKey (The specified key does not exist.)"


def test_unpinned_s3_key_is_downloaded_every_time(tmp_path, s3):
    client, env, aws_option = s3
    client.create_bucket(Bucket="releases")
    client.put_object(Bucket="releases", Key="webapp.tgz", Body=bundle_bytes(
        tmp_path, "b", {"appspec.yaml": APPSPEC}, "tgz"))
    args = {"revision": {"source": "s3", "bucket": "releases", "key": "webapp.tgz", "bundle_type": "tgz"},
            "cache_dir": str(tmp_path / "cache"), "aws": aws_option}
    rc, first = controller_results(MODULE, args, env)
    assert rc == 0, first
    assert (first["changed"], first["appspec_filename_found"], first["bundle_env"]["BUNDLE_VERSION"]) == (
        True, "appspec.yaml", None)
    rc, second = controller_results(MODULE, args, env)
    assert (rc, second["changed"], second["cached"], second["sha256"]) == (0, False, False, first["sha256"])
    # Without a pin the object may have been replaced: it is asked for again, and now it is gone.
    client.delete_object(Bucket="releases", Key="webapp.tgz")
    rc, third = controller_results(MODULE, args, env)
    assert rc != 0 and "NoSuchKey" in third["msg"]


def test_unreachable_endpoint(tmp_path, s3):
    _client, env, _aws_option = s3
    args = {"revision": {"source": "s3", "bucket": "releases", "key": "webapp.zip", "bundle_type": "zip"},
            "cache_dir": str(tmp_path / "cache"), "aws": {"endpoint_url": "http://127.0.0.1:9", "max_attempts": 1}}
    rc, result = controller_results(MODULE, args, env)
    assert rc != 0
    assert result["msg"].startswith("S3 GetObject s3://releases/webapp.zip failed: cannot reach http://127.0.0.1:9: ")


def test_without_boto3_s3_fails_with_what_to_install(tmp_path):
    # A real interpreter that cannot import boto3: Python without its site-packages.
    interpreter = tmp_path / "python-without-boto3"
    interpreter.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    interpreter.chmod(0o755)
    args = {"revision": {"source": "s3", "bucket": "releases", "key": "webapp.zip", "bundle_type": "zip"},
            "cache_dir": str(tmp_path / "cache")}
    rc, result = controller_results(MODULE, args, {}, "-e", f"ansible_python_interpreter={interpreter}")
    assert rc != 0
    assert "Failed to import the required Python library (boto3)" in result["msg"]
    assert "This is required on the controller to fetch S3 revisions." in result["msg"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")).stdout.strip()


def test_git_by_full_and_short_sha_and_a_missing_commit(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    write_tree(repo, {"appspec.yml": APPSPEC, "scripts/start.sh": "#!/bin/sh\n"})
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    write_tree(repo, {"appspec.yml": APPSPEC + "hooks: {AfterInstall: [{location: a.sh}]}\n"})
    git(repo, "commit", "--quiet", "-am", "second")
    args = {"revision": {"source": "git", "repository": str(repo), "commit_id": first[:8]},
            "cache_dir": str(tmp_path / "cache")}

    rc, short = controller_results(MODULE, args, {})
    assert rc == 0, short
    assert (short["changed"], short["cached"], short["bundle_type"]) == (True, False, "tar")
    assert short["revision"]["commit_id"] == first and short["bundle_env"] == {"BUNDLE_COMMIT": first}
    assert short["appspec"]["hooks"] == {}  # the first commit's, not the working tree's

    rc, full = controller_results(MODULE, dict(args, revision=dict(args["revision"], commit_id=first)), {})
    assert (rc, full["cached"], full["changed"], full["sha256"]) == (0, True, False, short["sha256"])

    rc, missing = controller_results(MODULE, dict(args, revision=dict(args["revision"], commit_id="0badc0de")), {})
    assert rc != 0
    assert missing["msg"] == f"commit 0badc0de not found in {repo}"


def test_local_directory_archive_and_check_mode(tmp_path):
    tree = write_tree(tmp_path / "tree", {"appspec.yml": APPSPEC, "index.html": "v1"})
    cache = tmp_path / "cache"
    args = {"revision": {"source": "local", "path": str(tree)}, "cache_dir": str(cache)}

    rc, checked = controller_results(MODULE, args, {}, "--check")
    assert (rc, checked["changed"], checked["appspec"]["version"]) == (0, True, "0.0")
    assert "appspec_text" not in checked  # the AppSpec's text never travels in the result
    assert not cache.exists()

    rc, first = controller_results(MODULE, args, {})
    assert (rc, first["changed"], first["cached"], first["sha256"]) == (0, True, False, checked["sha256"])
    assert (first["bundle_type"], first["revision"]["bundle_type"], first["bundle_env"]) == ("tar", "directory", {})
    rc, same = controller_results(MODULE, args, {})
    assert (rc, same["changed"], same["cached"], same["sha256"]) == (0, False, True, first["sha256"])

    (tree / "index.html").write_text("v2")
    rc, changed = controller_results(MODULE, args, {})
    assert (rc, changed["changed"]) == (0, True) and changed["sha256"] != first["sha256"]

    archive = archive_tree(tree, tmp_path / "webapp.zip", "zip")
    rc, from_archive = controller_results(MODULE, dict(args, revision={"source": "local", "path": str(archive)}), {})
    assert rc == 0, from_archive
    assert (from_archive["bundle_type"], from_archive["sha256"]) == ("zip", sha256(archive.read_bytes()))

    rc, missing = controller_results(MODULE, dict(args, revision={"source": "local", "path": str(tmp_path / "no")}),
                                     {})
    assert rc != 0
    assert missing["msg"].startswith(f"local revision path {tmp_path}/no does not exist")


def test_an_appspec_larger_than_hosts_accept_is_refused_unread(tmp_path):
    tree = write_tree(tmp_path / "tree", {"appspec.yml": APPSPEC})
    with (tree / "appspec.yml").open("r+") as appspec:
        appspec.truncate(100 * 1024 * 1024)
    bundle = archive_tree(tree, tmp_path / "webapp.tgz", "tgz")
    args = {"revision": {"source": "local", "path": str(bundle)}, "cache_dir": str(tmp_path / "cache")}
    rc, result = controller_results(MODULE, args, {})
    assert rc != 0
    assert result["msg"].startswith(f"Cannot read appspec.yml in {tmp_path}/cache/")
    assert result["msg"].endswith(": it is 104857600 bytes, and an AppSpec file is at most 1048576 bytes (1 MiB; real"
                                  " ones are a few kilobytes). Check that this file is the revision's AppSpec, and move"
                                  " anything else out of it.")
