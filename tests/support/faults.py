# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the fault-injection suite: revisions with a faulty hook, and what a fault left running."""
from __future__ import annotations

from pathlib import Path

from support.deployments import APPSPEC, make_revision


def revision_with_hook(root: Path, version: str, script: str, timeout: int) -> Path:
    """The test revision whose ApplicationStart also runs ``script`` (scripts/fault.sh) under ``timeout``."""
    appspec = APPSPEC.replace("  ApplicationStart:\n", "  ApplicationStart:\n    - location: scripts/fault.sh\n"
                              f"      timeout: {timeout}\n")
    tree = make_revision(root, version, appspec=appspec)
    (tree / "scripts" / "fault.sh").write_text(script)
    (tree / "scripts" / "fault.sh").chmod(0o755)
    return tree


def live_processes_naming(marker: str) -> list[str]:
    """The live processes of the machine (the fleet hosts share its process table) whose command line holds
    ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in command and state != "Z":
            found.append(command)
    return found


def event_of(record: dict, name: str) -> dict:
    """The lifecycle event ``name`` of the record's only instance."""
    (instance,) = record["instances"]
    return next(event for event in instance["lifecycle_events"] if event["lifecycle_event_name"] == name)
