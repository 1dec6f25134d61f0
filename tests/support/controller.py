# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a controller-side module as an operator does (``ansible localhost -m ...``) and read what it returned."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = str(Path(sys.executable).parent / "ansible")


def run_on_controller(module: str, args: dict, *options: str,
                      env: Optional[dict[str, str]] = None) -> tuple[int, dict, str]:
    """The exit code, the result the module returned (through the tree callback) and the terminal text."""
    with tempfile.TemporaryDirectory() as tree:
        run_env = dict(os.environ, **(env or {}), ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".venv" / "collections"),
                       ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_NOCOLOR="1", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                       ANSIBLE_CALLBACKS_ENABLED="tree", ANSIBLE_CALLBACK_TREE_DIR=tree,
                       PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        run = subprocess.run([ANSIBLE, "localhost", "-m", module, "-a", json.dumps(args), *options],
                             capture_output=True, text=True, check=False, env=run_env, timeout=300)
        result_file = Path(tree) / "localhost"
        assert result_file.exists(), run.stdout + run.stderr
        return run.returncode, json.loads(result_file.read_text()), run.stdout + run.stderr
