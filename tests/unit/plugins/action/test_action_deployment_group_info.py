# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment_group_info action reads the push directory from the output of the real command that makes it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ansible_collections.fleetops.codedeploy.plugins.action.deployment_group_info import made_push_dir
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import prepare_push_dir_command


def run(command: str, home: Path) -> dict:
    """What Ansible's low-level command execution returns: rc, stdout, stderr."""
    done = subprocess.run(["sh", "-c", command], env=dict(os.environ, HOME=str(home)), capture_output=True,
                          text=True, check=False)
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def test_the_push_directory_is_the_path_the_command_printed(tmp_path):
    made = run(prepare_push_dir_command("~/.ansible/tmp"), tmp_path)
    assert made_push_dir(made) == str((tmp_path / ".ansible/tmp/fleetops-codedeploy-push").resolve())


def test_a_login_banner_before_the_path_is_ignored(tmp_path):
    made = run("echo 'Welcome to web-1'; " + prepare_push_dir_command("~/.ansible/tmp"), tmp_path)
    assert made_push_dir(made) == str((tmp_path / ".ansible/tmp/fleetops-codedeploy-push").resolve())


def test_no_push_directory_when_the_command_fails(tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    made = run(prepare_push_dir_command(f"{tmp_path}/not-a-directory/tmp"), tmp_path)
    assert made["rc"] != 0
    assert made_push_dir(made) is None


def test_no_push_directory_from_output_that_is_not_a_path():
    assert made_push_dir({"rc": 0, "stdout": "", "stderr": ""}) is None
    assert made_push_dir({"rc": 0, "stdout": "mkdir: done\n", "stderr": ""}) is None
