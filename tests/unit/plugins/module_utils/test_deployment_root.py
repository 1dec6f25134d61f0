# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's bundle store and the one-command file replacement used where no module runs."""
from __future__ import annotations

import subprocess
from pathlib import Path

from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    bundle_store_dir, held_bundles, replace_file_command)


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
