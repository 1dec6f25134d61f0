# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local test fleet is a fleet of real, separate SSH hosts, and `fleet down` leaves nothing behind."""
from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from pathlib import Path

from conftest import POOL_OCTET2, REPO_ROOT
from fleet import state_root

FLEET_SCRIPT = REPO_ROOT / "tests" / "fleet" / "fleet"


def test_five_hosts_answer_ansible_ping(fleet):
    five = fleet(5)
    run = five.ansible("fleet", "ansible.builtin.ping")
    assert run.rc == 0, run.output
    for host in five.hosts:
        assert f"{host} | SUCCESS" in run.stdout


def test_a_file_on_one_host_is_absent_on_the_others_and_on_the_machine(fleet):
    five = fleet(5)
    first, *others = five.hosts
    assert not os.path.exists("/srv/x")
    run = five.ansible(first, "ansible.builtin.copy", {"dest": "/srv/x", "content": "only here\n"})
    assert run.rc == 0, run.output
    seen = five.ansible("fleet", "ansible.builtin.stat", {"path": "/srv/x"})
    assert seen.rc == 0, seen.output
    assert five.ssh(first, "cat /srv/x").stdout == "only here\n"
    for host in others:
        assert five.ssh(host, "test -e /srv/x").rc == 1
    assert not os.path.exists("/srv/x")


def test_hosts_look_like_separate_machines_without_pyyaml(fleet):
    three = fleet(3)
    for host in three.hosts:
        assert three.ssh(host, "hostname").stdout.strip() == host
        assert three.ssh(host, "su deploy -c id").stdout.startswith("uid=1500(deploy)")
        assert three.ssh(host, "sudo -n true").rc == 0
        no_yaml = three.ssh(host, "/usr/bin/python3 -c 'import yaml'")
        assert no_yaml.rc == 1 and "ImportError" in no_yaml.stderr


def _live_pids_in(namespaces: set[str]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            namespace = os.readlink(f"/proc/{entry}/ns/mnt")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if namespace in namespaces and state != "Z":
            found.append(int(entry))
    return found


# A fleet of this test's own, on addresses no test pool uses (each pytest-xdist worker has the pool octet after the
# previous one's).
LIFECYCLE_OCTET2 = POOL_OCTET2 + 100


def _fleet_cli(state: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FLEET_STATE=str(state), FLEET_OCTET2=str(LIFECYCLE_OCTET2))
    return subprocess.run([str(FLEET_SCRIPT), *args], env=env, capture_output=True, text=True, check=False,
                          timeout=120)


def _recorded(state: Path) -> dict:
    import json

    return json.loads((state / "fleet.json").read_text())


def test_down_leaves_no_sshd_no_mount_no_moto_and_up_recovers_after_a_crash():
    state = state_root() / f"test-lifecycle-{LIFECYCLE_OCTET2}"
    up = _fleet_cli(state, "up", "2")
    assert up.returncode == 0, up.stderr
    recorded = _recorded(state)
    namespaces = {h["mnt_ns"] for h in recorded["hosts"]}
    key = state / "id_ed25519"
    # A daemon left behind by a "hook", detached from the SSH session, must still be stopped by `down`.
    subprocess.run(["ssh", "-i", str(key), "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
                    f"root@127.{LIFECYCLE_OCTET2}.0.11", "setsid sleep 600 </dev/null >/dev/null 2>&1 &"], check=True, timeout=30)
    hosts_processes = _live_pids_in(namespaces)
    assert len(hosts_processes) >= 3

    # Crash: kill the fleet's processes without `down`, leaving its state behind; `up` must recover.
    for host in recorded["hosts"]:
        os.kill(host["pid"], signal.SIGKILL)
    os.kill(recorded["moto_pid"], signal.SIGKILL)
    again = _fleet_cli(state, "up", "2")
    assert again.returncode == 0, again.stderr
    # (Namespace identifiers are reused, so compare processes, not namespaces.)
    survivors = set(hosts_processes) & set(_live_pids_in(namespaces))
    assert not survivors, "up after a crash must stop what the crashed fleet left running"
    recorded = _recorded(state)
    namespaces = {h["mnt_ns"] for h in recorded["hosts"]}
    endpoint = f"http://127.0.0.1:{recorded['moto_port']}"
    urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=5).read()

    down = _fleet_cli(state, "down")
    assert down.returncode == 0, down.stderr
    assert not _live_pids_in(namespaces)
    assert not state.exists()
    with open("/proc/self/mounts") as mounts:
        assert str(state) not in mounts.read()
    for pid in [h["pid"] for h in recorded["hosts"]] + [recorded["moto_pid"]]:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    ps = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True, check=True).stdout
    live = [line for line in ps.splitlines() if not line.startswith("Z")]
    assert not [line for line in live if str(state) in line or f"-p {recorded['moto_port']}" in line]
