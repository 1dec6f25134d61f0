# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.codedeploy.appspec_info run by the ansible CLI against localhost, as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
ANSIBLE = str(Path(sys.executable).parent / "ansible")


def run_appspec_info(args: dict, *options: str) -> tuple[int, dict, str]:
    """The exit code, the module result and stderr (where Ansible prints warnings)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".venv" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0")
    run = subprocess.run([ANSIBLE, "localhost", "-m", "fleetops.codedeploy.appspec_info", "-a", json.dumps(args),
                          *options], capture_output=True, text=True, check=False, env=env, timeout=120)
    result = run.stdout.partition(" => ")[2]
    return run.returncode, json.loads(result), run.stderr


def test_reads_a_revision_directory_in_check_mode_and_warns(tmp_path: Path):
    (tmp_path / "appspec.yaml").write_text(
        "version: 0.0\nos: linux\npermissions:\n  - {object: /srv, mode: 0644}\n"
        "hooks:\n  Install:\n    - location: install.sh\n")
    rc, result, stderr = run_appspec_info({"path": str(tmp_path)}, "--check")
    assert rc == 0, result
    assert (result["changed"], result["appspec_path"]) == (False, str(tmp_path / "appspec.yaml"))
    assert result["appspec"]["permissions"][0]["mode"] == "0644"
    assert "hooks.Install: the scripts listed under Install never run." in " ".join(stderr.split())


def test_invalid_content_fails_with_the_agent_message_and_its_place():
    content = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 0\n"
    rc, result, _output = run_appspec_info({"content": content})
    assert rc == 2
    assert result["msg"] == (
        "The deployment failed because an invalid timeout value was provided for a script in the application"
        " specification file. Make corrections in the hooks section of the AppSpec file, and then try again.")
    assert (result["error_code"], result["key_path"], result["line"], result["column"]) == (
        "UnknownError", "hooks.AfterInstall[0].timeout", 6, 16)


def test_host_without_pyyaml_reads_json_and_yaml(tmp_path: Path):
    # A real interpreter that cannot import PyYAML: Python without its site-packages.
    interpreter = tmp_path / "python-without-pyyaml"
    interpreter.write_text('#!/bin/sh\nexec "{}" -S "$@"\n'.format(sys.executable))
    interpreter.chmod(0o755)
    host = "ansible_python_interpreter={}".format(interpreter)
    (tmp_path / "appspec.json").write_text('{"version": 0.0, "os": "linux", "files": [{"source": "/", '
                                           '"destination": "/srv"}]}')
    (tmp_path / "appspec.yml").write_text("version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    mode: 0644\n")

    rc, result, _output = run_appspec_info({"path": str(tmp_path / "appspec.json")}, "-e", host)
    assert rc == 0, result
    assert result["appspec"]["files"] == [{"source": "/", "destination": "/srv"}]

    rc, result, _output = run_appspec_info({"path": str(tmp_path)}, "-e", host)
    assert rc == 0, result
    assert result["appspec"]["permissions"][0]["mode"] == "0644"

    (tmp_path / "appspec.yml").write_text("version: 0.0\nos: linux\nhooks:\n  A: &x\n    - location: a\n  B: *x\n")
    rc, result, _output = run_appspec_info({"path": str(tmp_path)}, "-e", host)
    assert rc == 2
    assert result["msg"] == ("Cannot read {} at line 6, column 6: Unknown alias: x. The CodeDeploy agent does not"
                             " follow YAML aliases such as *x; write the value out in full."
                             .format(tmp_path / "appspec.yml"))
