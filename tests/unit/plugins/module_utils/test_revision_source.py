# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revision specs, the deterministic tar, the AppSpec inside bundles, git fetches and the cache (real files,
real git repositories; S3 is covered against moto by tests/integration/test_revision_fetch.py)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import AppSpecError
from ansible_collections.fleetops.codedeploy.plugins.module_utils.revision_source import (
    MSG_LOCAL_BUNDLE_TYPE,
    MSG_S3_BUNDLE_TYPE,
    Cache,
    Git,
    RevisionError,
    bundle_env,
    bundle_type_from_name,
    cached_entry,
    etags_match,
    fetch_commit,
    fetch_revision,
    pack_directory,
    parse_revision,
    read_appspec,
    display_revision,
    redact_url,
    redact_urls,
    repository_url,
    scratch_dir,
    source_identity,
    write_index,
)
from support.revisions import archive_tree, write_tree

APPSPEC = "version: 0.0\nos: linux\n"


def no_s3():
    raise AssertionError("no S3 client may be made for this revision")


def run_command(argv, cwd=None, environ_update=None):
    """What AnsibleModule.run_command does with these arguments, without a module."""
    process = subprocess.run(argv, cwd=cwd, env=dict(os.environ, **(environ_update or {})), capture_output=True,
                             text=True, check=False)
    return process.returncode, process.stdout, process.stderr


GIT = Git(shutil.which("git"), run_command)


# --- the spec ---------------------------------------------------------------------------------------------------

def test_s3_spec_is_normalised():
    assert parse_revision({"source": "S3", "bucket": "b", "key": "k/app.zip", "bundle_type": "ZIP",
                           "version": None, "etag": '"abc"'}) == {
        "source": "s3", "bucket": "b", "key": "k/app.zip", "bundle_type": "zip", "version": None, "etag": '"abc"'}


def test_git_spec_resolves_github_shorthand_and_lowercases_the_commit():
    assert parse_revision({"source": "git", "repository": "acme/webapp", "commit_id": "ABCDEF12"}) == {
        "source": "git", "repository": "acme/webapp", "url": "https://github.com/acme/webapp.git",
        "commit_id": "abcdef12", "bundle_type": "tar"}


def test_local_spec_makes_the_path_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_revision({"source": "local", "path": "rev"}) == {
        "source": "local", "path": str(tmp_path / "rev"), "bundle_type": None}


@pytest.mark.parametrize("raw, message", [
    (None, "revision needs a source: s3, git, url or local"),
    ({"source": "ftp"}, "revision source 'ftp' is unknown: use s3, git, url or local"),
    ({"source": "s3", "bucket": "b"}, "revision source s3 needs bucket, key, bundle_type; missing: key, bundle_type"),
    ({"source": "s3", "bucket": "b", "key": "k", "bundle_type": "rar"}, MSG_S3_BUNDLE_TYPE + ", not 'rar'"),
    ({"source": "s3", "bucket": "b", "key": "k", "bundle_type": "directory"}, MSG_S3_BUNDLE_TYPE),
    ({"source": "local", "path": "/x", "bundle_type": "rar"}, MSG_LOCAL_BUNDLE_TYPE),
    ({"source": "s3", "bucket": "b", "key": "k", "bundle_type": "zip", "commit_id": "abcd"},
     "revision key(s) commit_id do not apply to source s3: it takes bucket, key, bundle_type, version, etag"),
    ({"source": "git", "repository": "acme/webapp", "commit_id": "main"}, "commit_id 'main' is not a commit SHA-1"),
    ({"source": "git", "repository": "acme/webapp", "commit_id": "abc"}, "commit_id 'abc' is not a commit SHA-1"),
    ({"source": "git", "repository": "acme/webapp", "commit_id": "abcd\n"}, "is not a commit SHA-1"),
    ({"source": "git", "repository": "acme/webapp", "commit_id": "abcd", "bundle_type": "zip"},
     "bundle_type 'zip' does not apply to a git revision"),
    ({"source": "git", "repository": "--upload-pack=touch /tmp/x", "commit_id": "abcd"}, "cannot start with '-'"),
])
def test_bad_specs_fail_with_one_clear_line(raw, message):
    with pytest.raises(RevisionError) as raised:
        parse_revision(raw)
    assert message in raised.value.message
    assert "\n" not in raised.value.message


@pytest.mark.parametrize("repository, url", [
    ("acme/webapp", "https://github.com/acme/webapp.git"),
    ("acme/webapp.git", "https://github.com/acme/webapp.git"),
    ("https://git.example.com/acme/webapp.git", "https://git.example.com/acme/webapp.git"),
    ("git@github.com:acme/webapp.git", "git@github.com:acme/webapp.git"),
    ("/srv/git/webapp", "/srv/git/webapp"),
])
def test_repository_url(repository, url):
    assert repository_url(repository) == url


def test_relative_local_repository_needs_dot_slash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert repository_url("./acme/webapp") == str(tmp_path / "acme" / "webapp")


@pytest.mark.parametrize("url, shown", [
    ("https://bot:ghp_secret@github.com/acme/webapp.git", "https://***@github.com/acme/webapp.git"),
    ("https://ghp_secret@github.com/acme/webapp.git", "https://***@github.com/acme/webapp.git"),
    ("http://user:p%40ss@git.example.com:8080/app.git", "http://***@git.example.com:8080/app.git"),
    ("https://releases.s3.amazonaws.com/webapp.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256"
     "&X-Amz-Credential=AKIAEXAMPLE%2F20261206%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261206T000000Z"
     "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoGZXIvYXdzE&X-Amz-Signature=abc123",
     "https://releases.s3.amazonaws.com/webapp.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
     "&X-Amz-Date=20261206T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=***"
     "&X-Amz-Signature=***"),
    ("https://cdn.example.com/app.zip?token=t0k&sig=s1g&version=3&Signature=v2&AWSAccessKeyId=AKIA",
     "https://cdn.example.com/app.zip?token=***&sig=***&version=3&Signature=***&AWSAccessKeyId=***"),
    ("https://example.com/app.zip#access_token=t0k", "https://example.com/app.zip#access_token=***"),
    ("https://github.com/acme/webapp.git", "https://github.com/acme/webapp.git"),
    ("git@github.com:acme/webapp.git", "git@github.com:acme/webapp.git"),
    ("/srv/git/webapp", "/srv/git/webapp"),
    ("http://[not-an-address/app.git?token=t0k", "http://***"),
])
def test_credentials_and_secret_query_values_in_a_url_are_redacted(url, shown):
    assert redact_url(url) == shown


def test_urls_in_a_message_are_redacted():
    message = "fatal: unable to access 'https://bot:t0k@git.example.com/app.git/': 403; see http://x/?sig=s1g"
    assert redact_urls(message) == ("fatal: unable to access 'https://***@git.example.com/app.git/': 403; see "
                                    "http://x/?sig=***")


def test_the_display_revision_redacts_every_url_and_keeps_the_rest():
    revision = parse_revision({"source": "git", "repository": "https://bot:t0k@git.example.com/app.git",
                               "commit_id": "a" * 40})
    shown = display_revision(revision)
    assert shown == dict(revision, repository="https://***@git.example.com/app.git",
                         url="https://***@git.example.com/app.git")
    assert revision["url"] == "https://bot:t0k@git.example.com/app.git"  # what the fetch uses, unchanged
    s3 = parse_revision({"source": "s3", "bucket": "b", "key": "k.zip", "bundle_type": "zip"})
    assert display_revision(s3) == s3


def test_a_git_revision_is_indexed_without_its_credentials():
    revision = parse_revision({"source": "git", "repository": "https://bot:t0k@git.example.com/app.git",
                               "commit_id": "a" * 40})
    identity = source_identity(revision)
    assert "t0k" not in identity and "https://***@git.example.com/app.git" in identity


@pytest.mark.parametrize("name, bundle_type", [
    ("a.tar", "tar"), ("a.TGZ", "tgz"), ("a.tar.gz", "tgz"), ("a.zip", "zip"), ("a.tar.bz2", None), ("a", None)])
def test_bundle_type_from_name(name, bundle_type):
    assert bundle_type_from_name(name) == bundle_type


def test_etags_compare_without_quotes_or_case():
    assert etags_match('"0cc175b9c0f1b6a831c399e269772661"', "0CC175B9C0F1B6A831C399E269772661")
    assert not etags_match('"0cc175b9c0f1b6a831c399e269772661"', '"92eb5ffee6ae2fec3ad71c777531578f"')


def test_only_sources_that_cannot_change_have_an_identity():
    s3 = {"source": "s3", "bucket": "b", "key": "k", "bundle_type": "zip", "version": None, "etag": None}
    assert source_identity(s3) is None
    assert source_identity(dict(s3, etag='"ABC"')) == source_identity(dict(s3, etag="abc"))
    assert source_identity(dict(s3, version="v1")) != source_identity(dict(s3, version="v2"))
    git = {"source": "git", "url": "https://github.com/a/b.git", "commit_id": "abcd"}
    assert source_identity(git) is None
    assert source_identity(dict(git, commit_id="a" * 40)) is not None
    assert source_identity({"source": "local", "path": "/x", "bundle_type": None}) is None


def test_bundle_env_follows_the_agent():
    s3 = {"source": "s3", "bucket": "b", "key": "k", "bundle_type": "zip", "version": None, "etag": None}
    assert bundle_env(s3, '"abc"') == {"BUNDLE_BUCKET": "b", "BUNDLE_KEY": "k", "BUNDLE_VERSION": None,
                                       "BUNDLE_ETAG": "abc"}
    assert bundle_env({"source": "git", "commit_id": "f" * 40}) == {"BUNDLE_COMMIT": "f" * 40}
    assert bundle_env({"source": "local", "path": "/x"}) == {}


# --- the deterministic tar ------------------------------------------------------------------------------------------

def make_tree(root: Path) -> Path:
    write_tree(root, {"appspec.yml": APPSPEC, "scripts/start.sh": "#!/bin/sh\n", "b/z.txt": "z", "a.txt": "a"},
               {"a.txt": 0o600})
    (root / "link").symlink_to("a.txt")
    for path in [root, *root.rglob("*")]:
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pack_is_deterministic_sorted_and_owned_by_root(tmp_path):
    tree = make_tree(tmp_path / "tree")
    pack_directory(str(tree), str(tmp_path / "one.tar"))
    pack_directory(str(tree), str(tmp_path / "two.tar"))
    assert sha256(tmp_path / "one.tar") == sha256(tmp_path / "two.tar")
    with tarfile.open(tmp_path / "one.tar") as archive:
        members = {info.name: info for info in archive.getmembers()}
        assert list(members) == ["a.txt", "appspec.yml", "b", "b/z.txt", "link", "scripts", "scripts/start.sh"]
        assert {(info.uid, info.gid, info.uname, info.gname) for info in members.values()} == {(0, 0, "root", "root")}
        assert (members["a.txt"].mode, members["scripts/start.sh"].mode) == (0o600, 0o755)
        assert members["link"].issym() and members["link"].linkname == "a.txt"
        assert members["b"].isdir() and members["a.txt"].mtime == 1_700_000_000


@pytest.mark.parametrize("change", ["content", "mode", "mtime", "new file"])
def test_any_change_changes_the_sha256(tmp_path, change):
    tree = make_tree(tmp_path / "tree")
    pack_directory(str(tree), str(tmp_path / "before.tar"))
    target = tree / "a.txt"
    if change == "content":
        target.write_text("b")
        os.utime(target, (1_700_000_000, 1_700_000_000))
    elif change == "mode":
        target.chmod(0o644)
    elif change == "mtime":
        os.utime(target, (1_700_000_001, 1_700_000_001))
    else:
        (tree / "b" / "new").write_text("")
    pack_directory(str(tree), str(tmp_path / "after.tar"))
    assert sha256(tmp_path / "before.tar") != sha256(tmp_path / "after.tar")


def test_a_fifo_cannot_be_packed(tmp_path):
    tree = make_tree(tmp_path / "tree")
    os.mkfifo(tree / "pipe")
    with pytest.raises(RevisionError, match="pipe is not a file, directory or symlink"):
        pack_directory(str(tree), str(tmp_path / "x.tar"))


# --- the AppSpec inside a bundle ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bundle_type", ["tar", "tgz", "zip"])
def test_appspec_in_a_single_top_folder_is_found_as_the_agent_strips_it(tmp_path, bundle_type):
    tree = write_tree(tmp_path / "tree", {"appspec.yml": APPSPEC, "index.html": "x"})
    bundle = archive_tree(tree, tmp_path / f"b.{bundle_type}", bundle_type, top_folder="webapp-1.0")
    assert read_appspec(str(bundle), bundle_type) == (APPSPEC, "appspec.yml")


def test_appspec_falls_back_to_yaml_and_honours_the_filename(tmp_path):
    tree = write_tree(tmp_path / "tree", {"appspec.yaml": "yaml", "custom.yml": "custom"})
    bundle = archive_tree(tree, tmp_path / "b.tar", "tar")
    assert read_appspec(str(bundle), "tar") == ("yaml", "appspec.yaml")
    assert read_appspec(str(bundle), "tar", "custom.yml") == ("custom", "custom.yml")


@pytest.mark.parametrize("bundle_type", ["tgz", "zip"])
def test_an_appspec_larger_than_hosts_accept_is_refused_unread(tmp_path, bundle_type):
    tree = write_tree(tmp_path / "tree", {"appspec.yml": APPSPEC})
    with (tree / "appspec.yml").open("r+") as appspec:
        appspec.truncate(20 * 1024 * 1024)
    bundle = archive_tree(tree, tmp_path / f"b.{bundle_type}", bundle_type, top_folder="webapp")
    tracemalloc.start()
    try:
        with pytest.raises(AppSpecError) as caught:
            read_appspec(str(bundle), bundle_type)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.message == (
        f"Cannot read webapp/appspec.yml in {bundle}: it is 20971520 bytes, and an AppSpec file is at most 1048576"
        " bytes (1 MiB; real ones are a few kilobytes). Check that this file is the revision's AppSpec, and move"
        " anything else out of it.")
    assert peak < 4 * 1024 * 1024


def test_a_top_folder_is_not_stripped_without_an_appspec_in_it(tmp_path):
    tree = write_tree(tmp_path / "tree", {"inner/readme": "x"})
    bundle = archive_tree(tree, tmp_path / "b.zip", "zip")
    assert read_appspec(str(bundle), "zip") == (None, None)


def test_a_wrong_bundle_type_is_named(tmp_path):
    tree = write_tree(tmp_path / "tree", {"appspec.yml": APPSPEC})
    bundle = archive_tree(tree, tmp_path / "b.tar", "tar")
    with pytest.raises(RevisionError, match="is not a readable zip archive .*: check bundle_type"):
        read_appspec(str(bundle), "zip")


# --- git ------------------------------------------------------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    write_tree(repo, {"appspec.yml": APPSPEC, "scripts/start.sh": "#!/bin/sh\n"})
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "first")
    return repo


def test_commit_is_fetched_once_then_found_in_the_mirror(tmp_path, repo):
    full = git(repo, "rev-parse", "HEAD")
    mirror = str(tmp_path / "mirror")
    assert fetch_commit(GIT, mirror, str(repo), full[:7], str(repo)) == full
    # The mirror answers without the repository: nothing is fetched again.
    os.rename(repo, tmp_path / "gone")
    assert fetch_commit(GIT, mirror, str(repo), full, str(repo)) == full


def test_missing_commit_and_missing_repository_are_clear(tmp_path, repo):
    mirror = str(tmp_path / "mirror")
    with pytest.raises(RevisionError) as raised:
        fetch_commit(GIT, mirror, str(repo), "deadbeef", str(repo))
    assert raised.value.message == f"commit deadbeef not found in {repo}"
    with pytest.raises(RevisionError, match=f"git fetch from {tmp_path}/nowhere failed: .*"):
        fetch_commit(GIT, str(tmp_path / "other"), str(tmp_path / "nowhere"), "deadbeef", str(tmp_path / "nowhere"))


def test_git_revision_is_cached_by_commit(tmp_path, repo):
    cache = Cache(str(tmp_path / "cache"))
    short = git(repo, "rev-parse", "--short", "HEAD")
    revision = parse_revision({"source": "git", "repository": str(repo), "commit_id": short})
    with scratch_dir(cache, False) as scratch:
        first = fetch_revision(revision, cache, scratch, False, no_s3, GIT)
    assert (first.cached, first.written, first.revision["commit_id"]) == (False, True, git(repo, "rev-parse", "HEAD"))
    with tarfile.open(first.path) as archive:
        assert sorted(archive.getnames()) == ["appspec.yml", "scripts", "scripts/start.sh"]
    with scratch_dir(cache, False) as scratch:
        again = fetch_revision(revision, cache, scratch, False, no_s3, GIT)
    assert (again.cached, again.written, again.sha256) == (True, False, first.sha256)


# --- the cache and check mode ---------------------------------------------------------------------------------------

def test_local_directory_lands_on_the_same_bundle(tmp_path):
    cache = Cache(str(tmp_path / "cache"))
    revision = parse_revision({"source": "local", "path": str(make_tree(tmp_path / "tree"))})
    with scratch_dir(cache, False) as scratch:
        first = fetch_revision(revision, cache, scratch, False, no_s3, GIT)
    with scratch_dir(cache, False) as scratch:
        again = fetch_revision(revision, cache, scratch, False, no_s3, GIT)
    assert (first.cached, first.written, again.cached, again.written) == (False, True, True, False)
    assert first.path == again.path == cache.bundle_path(first.sha256, "tar")
    assert again.revision["bundle_type"] == "directory"
    assert sorted(os.listdir(cache.root)) == [os.path.basename(first.path)]


def test_a_damaged_cached_bundle_is_replaced_and_check_mode_sees_a_good_one(tmp_path):
    cache = Cache(str(tmp_path / "cache"))
    revision = parse_revision({"source": "local", "path": str(make_tree(tmp_path / "tree"))})
    with scratch_dir(cache, False) as scratch:
        first = fetch_revision(revision, cache, scratch, False, no_s3, GIT)
    Path(first.path).write_bytes(b"damaged")
    with scratch_dir(cache, True) as scratch:
        checked = fetch_revision(revision, cache, scratch, True, no_s3, GIT)
    assert (checked.cached, checked.written) == (False, True)
    with scratch_dir(cache, False) as scratch:
        repaired = fetch_revision(revision, cache, scratch, False, no_s3, GIT)
    assert (repaired.cached, repaired.written, sha256(Path(repaired.path))) == (False, True, first.sha256)
    with scratch_dir(cache, True) as scratch:
        checked = fetch_revision(revision, cache, scratch, True, no_s3, GIT)
    assert (checked.cached, checked.written, checked.readable) == (True, False, first.path)


def test_check_mode_writes_nothing(tmp_path, repo):
    cache = Cache(str(tmp_path / "cache"))
    for raw in ({"source": "local", "path": str(make_tree(tmp_path / "tree"))},
                {"source": "git", "repository": str(repo), "commit_id": git(repo, "rev-parse", "HEAD")}):
        with scratch_dir(cache, True) as scratch:
            fetched = fetch_revision(parse_revision(raw), cache, scratch, True, no_s3, GIT)
            assert read_appspec(fetched.readable, fetched.bundle_type) == (APPSPEC, "appspec.yml")
        assert (fetched.written, fetched.cached) == (True, False)
        assert not os.path.exists(fetched.readable)
        assert not os.path.exists(cache.root)


def test_local_archive_type_comes_from_its_name(tmp_path):
    cache = Cache(str(tmp_path / "cache"))
    bundle = archive_tree(write_tree(tmp_path / "tree", {"appspec.yml": APPSPEC}), tmp_path / "rev.tar.gz", "tgz")
    with scratch_dir(cache, False) as scratch:
        fetched = fetch_revision(parse_revision({"source": "local", "path": str(bundle)}), cache, scratch, False,
                                 no_s3, GIT)
    assert (fetched.bundle_type, fetched.sha256) == ("tgz", sha256(bundle))
    unnamed = tmp_path / "revision"
    unnamed.write_bytes(bundle.read_bytes())
    with scratch_dir(cache, False) as scratch, pytest.raises(RevisionError, match="cannot tell the bundle type"):
        fetch_revision(parse_revision({"source": "local", "path": str(unnamed)}), cache, scratch, False, no_s3, GIT)


def test_git_must_be_installed_for_git_revisions(tmp_path):
    cache = Cache(str(tmp_path / "cache"))
    revision = parse_revision({"source": "git", "repository": "acme/webapp", "commit_id": "abcd"})
    with scratch_dir(cache, False) as scratch, pytest.raises(RevisionError) as raised:
        fetch_revision(revision, cache, scratch, False, no_s3, Git(None, run_command))
    assert raised.value.message == "git is required on the controller for git revisions: install git"


def test_missing_local_path(tmp_path):
    cache = Cache(str(tmp_path / "cache"))
    with scratch_dir(cache, False) as scratch, pytest.raises(RevisionError) as raised:
        fetch_revision(parse_revision({"source": "local", "path": str(tmp_path / "none")}), cache, scratch, False,
                       no_s3, GIT)
    assert raised.value.message == (f"local revision path {tmp_path}/none does not exist: give a directory or a tar, "
                                    "tgz or zip file")


def test_an_index_entry_whose_bundle_changed_is_not_trusted(tmp_path):
    cache = Cache(str(tmp_path / "cache"))
    os.makedirs(cache.root)
    bundle = Path(cache.bundle_path("0" * 64, "zip"))
    bundle.write_bytes(b"not what was indexed")
    write_index(cache, "identity", {"sha256": "0" * 64, "bundle_type": "zip", "etag": '"x"', "version_id": None})
    assert cached_entry(cache, "identity") is None
    good = hashlib.sha256(bundle.read_bytes()).hexdigest()
    bundle.rename(cache.bundle_path(good, "zip"))
    write_index(cache, "identity", {"sha256": good, "bundle_type": "zip", "etag": '"x"', "version_id": None})
    assert cached_entry(cache, "identity")["sha256"] == good


def test_a_short_commit_id_is_never_taken_for_a_branch_or_tag_of_that_name(tmp_path, repo):
    first = git(repo, "rev-parse", "HEAD")
    short = first[:7]
    write_tree(repo, {"scripts/start.sh": "#!/bin/sh\necho pushed by someone else\n"})
    git(repo, "commit", "--quiet", "-am", "second")
    # Anyone who can push may name a branch or tag after a commit's abbreviation; git prefers the ref.
    git(repo, "branch", short, "HEAD")
    mirror = str(tmp_path / "mirror")
    with pytest.raises(RevisionError, match=f"commit_id {short} of {repo} names a branch, a tag or a tag object"):
        fetch_commit(GIT, mirror, str(repo), short, str(repo))
    assert fetch_commit(GIT, mirror, str(repo), first, str(repo)) == first
