# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's bundle store, the one-command file replacement used where no module runs, the cleanup record's
lines and identifiers."""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    PUSH_DIR_REFUSED, DeploymentRootError, bundle_store_dir, decode_cleanup_path, encode_cleanup_path, held_bundles,
    prepare_push_dir_command, replace_file_command, validate_deployment_group_id, validate_identifiers)


def test_held_bundles_lists_complete_bundles_only(tmp_path: Path):
    store = Path(bundle_store_dir(str(tmp_path)))
    store.mkdir()
    for name in ("b" * 64 + ".tar", "a" * 64 + ".zip", "c" * 64 + ".tgz.partial"):
        (store / name).write_bytes(b"x")
    assert held_bundles(str(tmp_path)) == ["a" * 64 + ".zip", "b" * 64 + ".tar"]


def test_held_bundles_of_a_new_host_is_empty(tmp_path: Path):
    assert held_bundles(str(tmp_path / "absent")) == []


def run_replacement(path: Path, content: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", replace_file_command(str(path), ".d-ABCDEFGHI")], input=content,
                          capture_output=True, check=False)


def test_replace_file_command_creates_directories_and_replaces_the_file(tmp_path: Path):
    target = tmp_path / "deployment-instructions" / "marker.json"
    assert run_replacement(target, b'{"a": 1}\n').returncode == 0
    assert run_replacement(target, b'{"a": 2}\n').returncode == 0
    assert target.read_bytes() == b'{"a": 2}\n'
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in target.parent.iterdir()) == ["marker.json"]


def test_replace_file_command_quotes_hostile_paths(tmp_path: Path):
    target = tmp_path / "a dir; touch pwned" / "$(touch pwned2)'x.json"
    assert run_replacement(target, b"content").returncode == 0
    assert target.read_bytes() == b"content"
    assert not (tmp_path / "pwned").exists() and not Path("pwned2").exists()


def prepare_push_dir(home: Path, remote_tmp: str = "~/.ansible/tmp") -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", prepare_push_dir_command(remote_tmp)],
                          env=dict(os.environ, HOME=str(home), FLEET_USER="deploy"),
                          capture_output=True, text=True, check=False)


def test_the_push_directory_is_made_private_under_remote_tmp_and_its_path_printed(tmp_path: Path):
    made = prepare_push_dir(tmp_path)
    push_dir = tmp_path / ".ansible" / "tmp" / "fleetops-codedeploy-push"
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == str(push_dir.resolve())
    for directory in (push_dir, push_dir.parent, push_dir.parent.parent):
        assert oct(directory.stat().st_mode & 0o777) == "0o700", directory


def test_a_remote_tmp_outside_home_is_honoured_and_expanded_as_ansible_does(tmp_path: Path):
    made = prepare_push_dir(tmp_path / "home", f"{tmp_path}/shared/.ansible-${{FLEET_USER}}/tmp/")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == str(tmp_path / "shared" / ".ansible-deploy" / "tmp" / "fleetops-codedeploy-push")


def test_remote_tmp_settings_this_cannot_quote_safely_get_no_push_directory():
    for setting in ("~deploy/.ansible/tmp", '/tmp/"x', "/tmp/`id`", "/tmp/a\\b", ""):
        assert prepare_push_dir_command(setting) is None, setting


def test_preparing_the_push_directory_again_keeps_recent_pushes_and_drops_day_old_ones(tmp_path: Path):
    assert prepare_push_dir(tmp_path).returncode == 0
    push_dir = tmp_path / ".ansible" / "tmp" / "fleetops-codedeploy-push"
    recent, stale = push_dir / "1-recent.tar", push_dir / "2-stale.tar"
    recent.write_bytes(b"in flight")
    stale.write_bytes(b"left by a killed push")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    assert prepare_push_dir(tmp_path).returncode == 0
    assert sorted(p.name for p in push_dir.iterdir()) == ["1-recent.tar"]
    assert oct(push_dir.stat().st_mode & 0o777) == "0o700"


def refused_push_dir(tmp_path: Path, push_dir: Path) -> str:
    made = prepare_push_dir(tmp_path, str(push_dir.parent))
    assert made.returncode != 0
    assert made.stdout.startswith(f"{PUSH_DIR_REFUSED} {push_dir} "), made.stdout
    return made.stdout


def test_a_push_directory_others_may_use_is_refused_and_left_alone(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    push_dir = shared / "fleetops-codedeploy-push"
    push_dir.mkdir()
    push_dir.chmod(0o777)
    planted = push_dir / "planted.tar"
    planted.write_bytes(b"planted")
    two_days_ago = time.time() - 2 * 86400
    os.utime(planted, (two_days_ago, two_days_ago))
    assert " drwxrwxrwx " in refused_push_dir(tmp_path, push_dir)
    assert oct(push_dir.stat().st_mode & 0o777) == "0o777" and planted.exists()
    push_dir.chmod(0o750)
    assert " drwxr-x--- " in refused_push_dir(tmp_path, push_dir)


def test_a_push_directory_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path: Path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    old = target / "old-file"
    old.write_bytes(b"keep")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "fleetops-codedeploy-push").symlink_to(target)
    assert f"-> {target}" in refused_push_dir(tmp_path, shared / "fleetops-codedeploy-push")
    assert old.read_bytes() == b"keep"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory of another user needs root")
def test_a_private_push_directory_of_another_user_is_refused(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    push_dir = shared / "fleetops-codedeploy-push"
    push_dir.mkdir(mode=0o700)
    os.chown(push_dir, 1500, 1500)
    assert " drwx------ 2 1500 1500 " in refused_push_dir(tmp_path, push_dir)


@pytest.mark.parametrize("group_id", ["../../outside", "a/b", "", "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d/.."])
def test_a_deployment_group_id_that_is_not_a_uuid_is_refused_with_the_fix(group_id):
    with pytest.raises(DeploymentRootError, match=f"^deployment_group_id {re.escape(repr(group_id))} is not a UUID, "
                                                  "e.g. .*: set codedeploy_deployment_group_id to the group's UUID"):
        validate_deployment_group_id(group_id)
    with pytest.raises(DeploymentRootError, match="is not a UUID"):
        validate_identifiers("d-A1B2C3D4E", group_id)


def test_a_uuid_deployment_group_id_is_accepted():
    validate_deployment_group_id("4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d")


@pytest.mark.parametrize("path, line", [
    ("/var/www/app/index.html", "/var/www/app/index.html"),
    ("/var/www/café/naïve file.txt", "/var/www/café/naïve file.txt"),
    ("/var/www/nl/x\n/srv/victim2", "/var/www/nl/x\\x0a/srv/victim2"),
    ("/w/back\\slash\\x0a", "/w/back\\\\slash\\\\x0a"),
    ("/w/trailing space ", "/w/trailing space\\x20"),
    ("/w/tab\tcr\rnul\0del\x7fcsi\x9b", "/w/tab\\x09cr\\x0dnul\\x00del\\x7fcsi\\x9b"),
])
def test_cleanup_paths_are_one_line_each_and_read_back_exactly(path, line):
    assert encode_cleanup_path(path) == line
    assert decode_cleanup_path(line) == path
    assert not any(character in line for character in "\n\r\0")


def test_a_cleanup_line_read_back_never_gains_a_slash_or_a_dot():
    # Only the characters the writer escapes are unescaped: an agent-written name stays in its directory.
    assert decode_cleanup_path("/w/a\\x2f..\\x2e/b\\q") == "/w/a\\x2f..\\x2e/b\\q"
