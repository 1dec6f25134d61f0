# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the fault-injection suite: revisions with a faulty hook and what a fault left running; faults
injected into the test fleet from outside, as the machine or a person would cause them: a module run over a corpus
of hostile inputs, a full disk on one host, a controller whose ledger refuses writes, a host that is lost and comes
back."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from support.controller import ANSIBLE, REPO_ROOT
from support.deployments import APPSPEC, make_revision

ANSIBLE_PLAYBOOK = str(Path(ANSIBLE).parent / "ansible-playbook")


def run_each_on_controller(module: str, items: list[dict], timeout: float = 600) -> list[dict]:
    """Run ``module`` on the controller once per item of ``items`` (its arguments), in one ansible-playbook, and
    return each run's result as the module returned it, failures included."""
    with tempfile.TemporaryDirectory() as work:
        results = Path(work) / "results.json"
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Run the module on each item", module: "{{ item }}", "loop": items, "register": "each",
             "ignore_errors": True, "loop_control": {"label": "{{ ansible_loop.index }}", "extended": True}},
            {"name": "Keep the results", "ansible.builtin.copy": {"content": "{{ each.results | to_json }}",
                                                                  "dest": str(results)}}]}]
        playbook = Path(work) / "play.yml"
        playbook.write_text(json.dumps(play))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".venv" / "collections"),
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_NOCOLOR="1",
                   PATH=f"{Path(ANSIBLE).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        run = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(playbook)],
                             capture_output=True, text=True, check=False, env=env, timeout=timeout)
        assert results.exists(), run.stdout + run.stderr
        return json.loads(results.read_text())


# ----- a host's own mount namespace -------------------------------------------------------------------------------
def _host(fleet_view, name: str):
    return next(host for host in fleet_view.fleet.load().hosts if host.name == name)


def in_host_namespace(fleet_view, name: str, *argv: str) -> subprocess.CompletedProcess:
    """Run ``argv`` in host ``name``'s mount namespace (what its sshd, modules and hooks see)."""
    return subprocess.run(["nsenter", "--target", str(_host(fleet_view, name).pid), "--mount", "--", *argv],
                          capture_output=True, text=True, check=True)


def seen_by_host(fleet_view, name: str, path: str) -> Path:
    """Where the machine sees ``path`` as host ``name`` sees it, mounts of its own namespace included."""
    return Path(f"/proc/{_host(fleet_view, name).pid}/root{path}")


@contextmanager
def small_disk(fleet_view, name: str, path: str, size: str) -> Iterator[None]:
    """An empty tmpfs of ``size`` (e.g. "1m") mounted over ``path`` in host ``name``'s namespace only, unmounted
    on leaving: a disk that fills up while the host's other paths do not."""
    in_host_namespace(fleet_view, name, "mkdir", "-p", path)
    in_host_namespace(fleet_view, name, "mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path)
    try:
        yield
    finally:
        in_host_namespace(fleet_view, name, "umount", "--lazy", path)


# ----- a controller whose disk refuses writes ------------------------------------------------------------------
def read_only(path: Path) -> tuple[str, ...]:
    """A command prefix: what follows it runs in a mount namespace of its own where ``path`` (a directory) is
    read-only, as on a full or read-only disk; the rest of the machine, and every other process, as they are."""
    return _own_mount(path, 'mount -o remount,bind,ro "$0" "$0" && ')


def mounted_apart(path: Path) -> tuple[str, ...]:
    """A command prefix: what follows it runs in a mount namespace of its own where ``path`` (a directory) is a mount
    of its own, writable until ``refuse_writes`` makes it read-only for that process alone."""
    return _own_mount(path, "")


def refuse_writes(pid: int, path: Path) -> None:
    """``path`` read-only from now on in the mount namespace of process ``pid`` (started under ``mounted_apart``): a
    disk that fills or fails in the middle of a run."""
    subprocess.run(["nsenter", f"--mount=/proc/{pid}/ns/mnt", "mount", "-o", "remount,bind,ro", str(path),
                    str(path)], check=True, capture_output=True)


def _own_mount(path: Path, then: str) -> tuple[str, ...]:
    script = 'mount --bind "$0" "$0" && ' + then + 'exec "$@"'
    return ("unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(path))


# ----- a lost host -----------------------------------------------------------------------------------------------
def lose_host(fleet_view, name: str) -> None:
    """Kill host ``name`` as a power cut would: its sshd and every process in its namespace, at once (SIGKILL)."""
    host = _host(fleet_view, name)
    namespace = host.mnt_ns
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/mnt") == namespace:
                os.kill(int(entry), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue


def bring_back_host(fleet_view, name: str) -> None:
    """Start host ``name`` again on its own address, with its files as the lost one left them (a reboot)."""
    fleet = fleet_view.fleet
    state = fleet.load()
    host = next(host for host in state.hosts if host.name == name)
    host.pid = fleet._start_host(host)  # pylint: disable=protected-access
    fleet._wait_for_ssh(host)  # pylint: disable=protected-access
    host.mnt_ns = os.readlink(f"/proc/{host.pid}/ns/mnt")
    fleet.save(state)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


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
